/// Qwen2 and Qwen2.5 (Qwen Team, "Qwen2 Technical Report", 2024): Llama's layer with biases on
/// the Q/K/V projections and NEOX RoPE; untied head except in the smallest models.
enum Qwen2: DecoderFamily {
    static let architecture = "qwen2"

    static func configuration(_ r: DecoderConfig.Reader, vocab: Int) throws -> DecoderConfig {
        var c = try DecoderConfig(r, vocab: vocab, epsDefault: 1e-6, ropeBaseDefault: 1e6)
        c.qkvBias = true
        return c
    }
}
