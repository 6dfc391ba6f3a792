import Foundation
import Tern
import TernFormat
import TernKernels
import TernTestSupport

/// A tiny random Gemma 3 checkpoint the tests write themselves (12 tokens, width 64, 2 layers,
/// sliding window 4), for properties that need many runs of a real forward pass.
enum TinyGemma {
    static let tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "▁a", "▁b", "▁c", "▁d", "▁e", "▁f", "▁g", "▁h"]

    /// Writes the checkpoint to a file named `name` in the tests' temporary folder and loads it.
    static func load(_ name: String, options: LoadOptions = LoadOptions()) throws -> TernModel {
        let path = TestSupport.tempDir() + "/" + name
        try write(to: path)
        return try TernModel(path: path, options: options)
    }

    static func write(to path: String, seed: UInt64 = 1, scale: Float = 0.35) throws {
        var rng = SplitMix64(seed: seed)
        let width = 64, ffn = 64, heads = 2, kvHeads = 1, headDim = 32, layers = 2, vocab = tokens.count
        var m = Metadata()
        m["general.architecture"] = .string("gemma3")
        for (k, v) in [("embedding_length", width), ("block_count", layers), ("feed_forward_length", ffn), ("attention.head_count", heads),
                       ("attention.head_count_kv", kvHeads), ("attention.key_length", headDim), ("context_length", 64),
                       ("attention.sliding_window", 4), ("attention.sliding_window_pattern", 2)] {
            m["gemma3." + k] = .int(Int64(v))
        }
        m["tokenizer.ggml.model"] = .string("llama")
        m["tokenizer.ggml.tokens"] = .strings(tokens)
        m["tokenizer.ggml.scores"] = .floats(tokens.indices.map { -Float($0) })
        m["tokenizer.ggml.token_type"] = .ints(tokens.indices.map { $0 < 3 ? 3 : $0 == 3 ? 2 : 1 })
        m["tokenizer.ggml.bos_token_id"] = .int(2)
        m["tokenizer.ggml.unknown_token_id"] = .int(3)
        var ts: [PendingTensor] = []
        func matrix(_ name: String, _ rows: Int, _ cols: Int, scale: Float = scale) {
            let w = (0..<rows * cols).map { _ in rng.float() * scale }
            let q = w.withUnsafeBufferPointer { QMatrix.quantize(.q8, $0.baseAddress!, rows: rows, cols: cols) }
            ts.append(PendingTensor(name: name, dtype: .q8, shape: [rows, cols], data: q))
        }
        func vector(_ name: String, _ n: Int) {
            let v = (0..<n).map { _ in 1 + 0.1 * rng.float() }
            ts.append(PendingTensor(name: name, dtype: .f32, shape: [n], data: v.withUnsafeBytes { Array($0) }))
        }
        // Small tied embeddings keep the logits moderate: the next-token distributions stay spread.
        matrix("token_embd.weight", vocab, width, scale: 0.15)
        vector("output_norm.weight", width)
        for l in 0..<layers {
            let p = "blk.\(l)."
            for n in ["attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"] { vector(p + n + ".weight", width) }
            vector(p + "attn_q_norm.weight", headDim)
            vector(p + "attn_k_norm.weight", headDim)
            matrix(p + "attn_q.weight", heads * headDim, width)
            matrix(p + "attn_k.weight", kvHeads * headDim, width)
            matrix(p + "attn_v.weight", kvHeads * headDim, width)
            matrix(p + "attn_output.weight", width, heads * headDim)
            matrix(p + "ffn_gate.weight", ffn, width)
            matrix(p + "ffn_up.weight", ffn, width)
            matrix(p + "ffn_down.weight", width, ffn)
        }
        try TernWriter.write(path: path, metadata: m, tensors: ts)
    }
}

extension SplitMix64 {
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) * 2 - 1 }
}
