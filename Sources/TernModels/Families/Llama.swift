/// Llama 2/3/3.x and the models built like it (SmolLM2, TinyLlama, Mistral-style): pre-norm
/// attention with GQA and SwiGLU, RoPE on adjacent pairs (llama.cpp's converter permutes the Q/K
/// rows for it), optional Llama 3 frequency factors (`rope_freqs.weight`) or linear scaling,
/// tied or untied head.
enum Llama: DecoderFamily {
    static let architecture = "llama"

    static func configuration(_ r: DecoderConfig.Reader, vocab: Int) throws -> DecoderConfig {
        var c = try DecoderConfig(r, vocab: vocab)
        c.rope = .adjacentPairs
        return c
    }
}
