/// The order a decoding step reads a checkpoint's tensors, by their GGUF names: the embedding,
/// then layer by layer what `LayerPass` (Blocks.swift) reads — the attention norm, Q, K and V
/// (and their biases and norms), the output projection, then the FFN norm, gate, up and down —
/// then the final norm and the head. `tern-quantize` writes tensors in this order, so that each
/// matrix starts where the one before ended: the hardware prefetchers' stream runs on, instead of
/// restarting after a jump back. GGUF files list a layer's tensors alphabetically or FFN first.
/// SmolLM2-135M at one thread, 8 alternating runs of `tern bench -p 0 -n 64 -t 1 -r 3` on the two
/// files: median +5% (its Q, K and V are 69-207 KB each, so a restart is a large part of their
/// time); Gemma 3 270M and Qwen2.5-Coder-0.5B within the noise (bench/README.md). Readers find
/// tensors by name; the order is only this.
public enum ReadingOrder {
    /// A layer's tensor kinds in the order a step reads them; others go after these.
    static let layer = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output",
                        "post_attention_norm", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "post_ffw_norm"]

    /// A sort key: tensors whose keys are ordered read in that order (equal keys: keep the source's
    /// order). Outside the layers, the head and final norm come last and everything else first.
    static func key(_ name: String) -> [Int] {
        let parts = name.split(separator: ".")
        if parts.count >= 3, parts[0] == "blk", let l = Int(parts[1]), l >= 0 {
            let kind = layer.firstIndex(of: String(parts[2])) ?? layer.count
            return [1, l, kind, parts.last == "bias" ? 1 : 0]
        }
        switch name {
        case "output_norm.weight": return [2, 0, 0, 0]
        case "output.weight": return [2, 1, 0, 0]
        default: return [0, 0, 0, 0]
        }
    }

    /// `names` indices in reading order (stable).
    public static func order(_ names: [String]) -> [Int] {
        let keys = names.map(key)
        return names.indices.sorted { (keys[$0] + [$0]).lexicographicallyPrecedes(keys[$1] + [$1]) }
    }
}
