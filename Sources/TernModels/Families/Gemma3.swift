import TernFormat

/// Gemma 3 text models (Gemma Team, "Gemma 3 Technical Report", 2025): pre- and post-norms around
/// attention and FFN, per-head Q/K RMSNorm, GeGLU, 5 local (sliding-window) layers per global
/// one with their own RoPE bases, tied embeddings scaled by sqrt(width). Norm weights in
/// GGUF-derived files already include Gemma's +1.
enum Gemma3: DecoderFamily {
    static let architecture = "gemma3"

    static func configuration(_ r: DecoderConfig.Reader, vocab: Int) throws -> DecoderConfig {
        var c = try DecoderConfig(r, vocab: vocab, epsDefault: 1e-6, ropeBaseDefault: 1e6)
        let window = try r.int("attention.sliding_window"), pattern = try r.int("attention.sliding_window_pattern")
        let local = r.float("rope.freq_base_swa", default: 1e4), global = c.ropeBase[0]
        // Every `pattern`-th layer attends globally; the others use the sliding window.
        let sliding = (0..<c.layers).map { $0 % pattern < pattern - 1 }
        c.window = sliding.map { $0 ? window : 0 }
        c.ropeBase = sliding.map { $0 ? local : global }
        c.embeddingScale = Float(c.width).squareRoot()
        c.activation = .gelu
        c.qkNorm = true
        c.postNorms = true
        return c
    }

    static func layer(_ p: LayerPass) {
        p.attention()
        p.residual(postNorm: p.L.postAttnNorm)
        p.feedForward()
        p.residual(postNorm: p.L.postFfnNorm)
    }

    static func completeMetadata(_ m: inout Metadata) {
        // llama.cpp's defaults for Gemma 3 that GGUF files do not carry.
        if m["gemma3.rope.freq_base_swa"] == nil { m["gemma3.rope.freq_base_swa"] = .float(10_000) }
        if m["gemma3.attention.sliding_window_pattern"] == nil { m["gemma3.attention.sliding_window_pattern"] = .int(6) }
    }
}
