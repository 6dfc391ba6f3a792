/// Qwen3 (Qwen Team, "Qwen3 Technical Report", 2025): Qwen2 without the Q/K/V biases and with a
/// per-head RMSNorm on queries and keys before RoPE; head width from `attention.key_length`.
enum Qwen3: DecoderFamily {
    static let architecture = "qwen3"

    static func configuration(_ r: DecoderConfig.Reader, vocab: Int) throws -> DecoderConfig {
        var c = try DecoderConfig(r, vocab: vocab, epsDefault: 1e-6, ropeBaseDefault: 1e6)
        c.qkNorm = true
        return c
    }
}
