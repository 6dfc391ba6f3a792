import Foundation
import TernFormat
import TernKernels

/// A decoder-only transformer's shape and the choices that distinguish its family. A family
/// (``DecoderFamily``) builds one from checkpoint metadata; ``DecoderModel`` runs any of them.
public struct DecoderConfig: Sendable {
    public enum RoPEStyle: Sendable { case neox, adjacentPairs }
    public enum Activation: Sendable { case gelu, silu }

    public var architecture: String
    public var width: Int, layers: Int, ffn: Int, heads: Int, kvHeads: Int, headDim: Int
    public var vocab: Int, context: Int, eps: Float

    /// How rotary embedding pairs dimensions: NEOX (i, i + d/2; Gemma, Qwen) or adjacent
    /// (2i, 2i + 1; Llama, whose GGUF Q/K rows are permuted for it).
    public var rope: RoPEStyle = .neox
    /// RoPE base of each layer (Gemma 3's local and global layers differ).
    public var ropeBase: [Float]
    /// Positions scaled by this factor (linear RoPE scaling: 1 / scaling factor).
    public var ropeScale: Float = 1
    /// Attention window of each layer (0: the whole context).
    public var window: [Int]
    /// Scale applied to the token embedding (Gemma: sqrt(width)).
    public var embeddingScale: Float?
    public var activation: Activation = .silu
    /// Tensors a layer carries besides the seven matrices and two norms.
    public var qkNorm = false, postNorms = false, qkvBias = false
    public var attentionScale: Float

    /// Reads `<architecture>.<key>` values, with errors that name the key.
    public struct Reader {
        public let metadata: Metadata, file: String, architecture: String
        public func int(_ k: String) throws -> Int {
            guard let v = metadata.int(architecture + "." + k), v > 0, v < 1 << 24 else {
                throw FormatError(file: file, field: "metadata '\(architecture).\(k)'", "missing or out of range")
            }
            return v
        }
        public func int(_ k: String, default d: Int) throws -> Int { metadata[architecture + "." + k] == nil ? d : try int(k) }
        public func float(_ k: String, default d: Double) -> Float { Float(metadata.float(architecture + "." + k) ?? d) }
        public func string(_ k: String) -> String? { metadata.string(architecture + "." + k) }
    }

    /// The fields every family reads the same way (llama.cpp's `LLM_KV_*` names).
    public init(_ r: Reader, vocab: Int, epsDefault: Double = 1e-5, ropeBaseDefault: Double = 10_000) throws {
        architecture = r.architecture
        width = try r.int("embedding_length")
        layers = try r.int("block_count")
        ffn = try r.int("feed_forward_length")
        heads = try r.int("attention.head_count")
        kvHeads = try r.int("attention.head_count_kv", default: heads)
        headDim = try r.int("attention.key_length", default: width / heads)
        context = try r.int("context_length")
        eps = r.float("attention.layer_norm_rms_epsilon", default: epsDefault)
        ropeBase = Array(repeating: r.float("rope.freq_base", default: ropeBaseDefault), count: layers)
        window = Array(repeating: 0, count: layers)
        self.vocab = vocab
        attentionScale = 1 / Float(headDim).squareRoot()
        let field = "metadata '\(r.architecture).*'"
        if let v = try? r.int("attention.value_length"), v != headDim {
            throw FormatError(file: r.file, field: field, "value length \(v) differs from key length \(headDim); " +
                "not supported")
        }
        if let d = try? r.int("rope.dimension_count"), d != headDim {
            throw FormatError(file: r.file, field: field, "partial rotary embedding (\(d) of \(headDim) dimensions) " +
                "is not supported")
        }
        switch r.string("rope.scaling.type") {
        case nil, "none": break
        case "linear": ropeScale = 1 / r.float("rope.scaling.factor", default: 1)
        case let t?:
            throw FormatError(file: r.file, field: "metadata '\(r.architecture).rope.scaling.type'",
                              "'\(t)' is not supported (linear, none)")
        }
        guard heads % kvHeads == 0, headDim % 32 == 0, width % 32 == 0, ffn % 32 == 0, ropeScale > 0, ropeScale.isFinite else {
            throw FormatError(file: r.file, field: field,
                              "inconsistent head counts or widths (heads \(heads), kv heads \(kvHeads), head dim "
                              + "\(headDim), width \(width), ffn \(ffn)); head dim, width and ffn must be multiples of 32")
        }
    }

    /// Positions layer `l` keeps: all `capacity` for global layers; for windowed layers with ring
    /// buffers, the window plus room for a batch's new positions (so writing a batch never
    /// overwrites keys an earlier query of the same batch still reads).
    func kvSlots(_ l: Int, capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        guard options.ringBuffers, window[l] > 0 else { return capacity }
        return min(capacity, window[l] + maxBatch - 1)
    }

    /// Query heads times cached positions that a token at the last of `context` positions attends
    /// over, summed over the layers: every position for global layers, the window for windowed ones
    /// (the span ``AttentionJob`` reads).
    public func attendedHeadPositions(context: Int) -> Int {
        window.map { $0 > 0 ? min($0, context) : context }.reduce(0, +) * heads
    }

    /// Distinct RoPE bases and the table each layer uses.
    var ropeTables: (bases: [Float], ofLayer: [Int]) {
        var bases: [Float] = []
        let of = ropeBase.map { b in
            if let i = bases.firstIndex(of: b) { return i }
            bases.append(b)
            return bases.count - 1
        }
        return (bases, of)
    }

    /// The widths of the state's quantized activation buffers: the normed hidden state (the input
    /// of Q, K, V, the FFN's gate and up, and the head), the attention output (`attn_output`'s),
    /// and the gated FFN product (`ffn_down`'s).
    var activationWidths: [Int] { [width, heads * headDim, ffn] }

    /// Which of them may keep activations quantized per 256 columns (QuantizedActivations), for the
    /// x86 and aarch64 q4k kernels: the normed hidden state only. The attention output and the gated FFN
    /// product have outlying values that one scale per 256 columns leaves the rest few levels of.
    /// Measured with `tern perplexity -f GPL-3 -c 512 --chunks 8 -t 2` (2026-12-03, AVX2), from
    /// per-32 activations everywhere (Gemma 3 270M 14.9097, Qwen2.5-Coder-1.5B 1.7946): all three
    /// per 256 gave 14.9683 (+0.39%) and 1.8042 (+0.54%); the first two 14.9155 (+0.04%) and
    /// 1.7962 (+0.09%), and Gemma with `--kv q8` then left its golden at a 0.155 margin; the first
    /// alone leaves Gemma as it was (its width, 640, is no multiple of 256) and gave the 1.5B model
    /// 1.7896 (on AVX-512, 1.7964 against 1.7955 per-32). The 1.5B model's pp128 at 2 threads:
    /// 89.2-89.7 t/s with the first alone, 87.8-92.9 with two or three, 78.0-78.5 with none
    /// (`tern bench -p 128 -n 32 -t 2 -r 3`, AVX2).
    var superBlockInputs: [Bool] { [true, false, false] }

    func stateSizes(capacity: Int, maxBatch: Int, options: StateOptions) -> (floats: [Int], kvBytes: [Int]) {
        let q = heads * headDim, kv = kvHeads * headDim
        let floats = [maxBatch * width, maxBatch * q, maxBatch * kv, maxBatch * kv, maxBatch * q,
                      maxBatch * width, maxBatch * ffn, maxBatch * ffn, maxBatch * ropeTables.bases.count * headDim]
        let row = kvHeads * options.kv.rowBytes(dim: headDim)
        // K then V for each layer. Built at its exact size: growing an array by appends reallocates
        // a number of times that depends on the heap's state, which made allocation counts vary.
        let kvBytes = (0..<2 * layers).map { kvSlots($0 / 2, capacity: capacity, maxBatch: maxBatch, options: options) * row }
        return (floats, kvBytes)
    }

    public func stateBytes(capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        let (f, h) = stateSizes(capacity: capacity, maxBatch: maxBatch, options: options)
        // Quantized activations; the per-256 form counted where allowed, whether or not a matrix
        // reads it (DecoderModel keeps it only where a q4k or, on x86, a q6 one does). Where it is
        // dropped, the x86 q6-order copy it stood in for (cols bytes) is smaller: an upper bound.
        let acts = zip(activationWidths, superBlockInputs).reduce(0) {
            $0 + maxBatch * QuantizedActivations.bytesPerVector(cols: $1.0, superBlocks: $1.1)
        }
        return 4 * f.reduce(0, +) + h.reduce(0, +) + 4 * (maxBatch * width + (options.logitsRows ?? maxBatch) * vocab) + acts
    }
}
