import Foundation
import TernFormat
import TernKernels

/// Gemma 3 (text) hyperparameters, read from checkpoint metadata (`gemma3.*` keys).
public struct Gemma3Configuration: Sendable {
    public var width: Int, layers: Int, ffn: Int, heads: Int, kvHeads: Int, headDim: Int
    public var vocab: Int, context: Int, eps: Float
    public var ropeBase: Float, ropeBaseLocal: Float, window: Int, pattern: Int

    public init(metadata m: Metadata, file: String, vocab: Int) throws {
        func need(_ k: String) throws -> Int {
            guard let v = m.int("gemma3." + k), v > 0, v < 1 << 24 else {
                throw FormatError(file: file, field: "metadata 'gemma3.\(k)'", "missing or out of range")
            }
            return v
        }
        width = try need("embedding_length")
        layers = try need("block_count")
        ffn = try need("feed_forward_length")
        heads = try need("attention.head_count")
        kvHeads = try need("attention.head_count_kv")
        headDim = try need("attention.key_length")
        context = try need("context_length")
        window = try need("attention.sliding_window")
        pattern = try need("attention.sliding_window_pattern")
        eps = Float(m.float("gemma3.attention.layer_norm_rms_epsilon") ?? 1e-6)
        ropeBase = Float(m.float("gemma3.rope.freq_base") ?? 1e6)
        ropeBaseLocal = Float(m.float("gemma3.rope.freq_base_swa") ?? 1e4)
        self.vocab = vocab
        guard heads % kvHeads == 0, headDim % 2 == 0, width % 32 == 0, ffn % 32 == 0, (heads * headDim) % 32 == 0 else {
            throw FormatError(file: file, field: "metadata 'gemma3.*'", "inconsistent head counts or widths (heads \(heads), kv heads \(kvHeads), head dim \(headDim), width \(width))")
        }
    }

    /// Every `pattern`-th layer attends globally; the others use a sliding window.
    public func isSliding(_ layer: Int) -> Bool { layer % pattern < pattern - 1 }
}

/// Gemma 3 text model (Gemma Team, "Gemma 3 Technical Report", 2025): pre- and post-norms
/// around attention and FFN, per-head Q/K RMSNorm, GeGLU, 5:1 local:global attention, tied
/// embeddings scaled by sqrt(width). Norm weights in GGUF-derived files already include the +1.
public final class Gemma3Model: LanguageModel, @unchecked Sendable {
    struct Layer {
        let attnNorm, qNorm, kNorm, postAttnNorm, ffnNorm, postFfnNorm: UnsafePointer<Float>
        let wq, wk, wv, wo, gate, up, down: QMatrix
    }

    public let config: Gemma3Configuration
    let store: WeightStore
    let embedding: QMatrix
    let outputNorm: UnsafePointer<Float>
    let layers: [Layer]
    let invFreqGlobal: [Float]
    let invFreqLocal: [Float]

    public var vocabSize: Int { config.vocab }
    public var layerCount: Int { config.layers }
    public var contextLength: Int { config.context }
    public let bytesPerToken: Int

    public init(store: WeightStore, vocab: Int) throws {
        let c = try Gemma3Configuration(metadata: store.file.metadata, file: store.file.path, vocab: vocab)
        config = c
        self.store = store
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        embedding = try store.matrix("token_embd.weight", rows: c.vocab, cols: c.width)
        outputNorm = try store.vector("output_norm.weight", count: c.width)
        var ls: [Layer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            ls.append(Layer(
                attnNorm: try store.vector(p + "attn_norm.weight", count: c.width),
                qNorm: try store.vector(p + "attn_q_norm.weight", count: c.headDim),
                kNorm: try store.vector(p + "attn_k_norm.weight", count: c.headDim),
                postAttnNorm: try store.vector(p + "post_attention_norm.weight", count: c.width),
                ffnNorm: try store.vector(p + "ffn_norm.weight", count: c.width),
                postFfnNorm: try store.vector(p + "post_ffw_norm.weight", count: c.width),
                wq: try store.matrix(p + "attn_q.weight", rows: q, cols: c.width),
                wk: try store.matrix(p + "attn_k.weight", rows: kv, cols: c.width),
                wv: try store.matrix(p + "attn_v.weight", rows: kv, cols: c.width),
                wo: try store.matrix(p + "attn_output.weight", rows: c.width, cols: q),
                gate: try store.matrix(p + "ffn_gate.weight", rows: c.ffn, cols: c.width),
                up: try store.matrix(p + "ffn_up.weight", rows: c.ffn, cols: c.width),
                down: try store.matrix(p + "ffn_down.weight", rows: c.width, cols: c.ffn)))
        }
        layers = ls
        let half = c.headDim / 2
        invFreqGlobal = (0..<half).map { Float(pow(Double(c.ropeBase), -2 * Double($0) / Double(c.headDim))) }
        invFreqLocal = (0..<half).map { Float(pow(Double(c.ropeBaseLocal), -2 * Double($0) / Double(c.headDim))) }
        let mats = ls.flatMap { [$0.wq, $0.wk, $0.wv, $0.wo, $0.gate, $0.up, $0.down] } + [embedding]
        bytesPerToken = mats.reduce(0) { $0 + $1.rows * $1.rowBytes } + c.layers * (4 * c.width + 2 * c.headDim) * 4
    }

    // Scratch buffer indices in ModelState.buffers.
    enum B { static let xn = 0, q = 1, k = 2, v = 3, att = 4, o = 5, gate = 6, up = 7, scores = 8, kv = 9 }

    public func makeState(capacity: Int, maxBatch: Int) -> ModelState {
        let c = config
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        var sizes = [maxBatch * c.width, maxBatch * q, maxBatch * kv, maxBatch * kv, maxBatch * q,
                     maxBatch * c.width, maxBatch * c.ffn, maxBatch * c.ffn, maxBatch * c.heads * capacity]
        for _ in 0..<c.layers { sizes += [capacity * kv, capacity * kv] }
        return ModelState(capacity: capacity, maxBatch: maxBatch, width: c.width, vocab: c.vocab, scratch: sizes,
                          activationWidths: [c.width, q, c.ffn])
    }

    public func forward(tokens: [Int32], startPos: Int, layers range: Range<Int>, embed: Bool, allLogits: Bool,
                        state s: ModelState, parallel: Parallel) {
        let n = tokens.count
        precondition(n > 0 && n <= s.maxBatch && startPos + n <= s.capacity)
        let c = config
        let x = s.hidden
        if embed {
            let scale = Float(c.width).squareRoot()
            for (b, t) in tokens.enumerated() {
                embedding.dequantizeRow(Int(t), into: x + b * c.width)
                for i in 0..<c.width { x[b * c.width + i] *= scale }
            }
        }
        for l in range { layer(l, n: n, startPos: startPos, s, parallel) }
        guard range.upperBound == c.layers else { return }
        let first = allLogits ? 0 : n - 1
        let xn = s.buffers[B.xn]
        for b in first..<n { Ops.rmsNorm(x + b * c.width, outputNorm, count: c.width, eps: c.eps, out: xn + (b - first) * c.width) }
        s.acts[0].quantize(xn, batch: n - first, stride: c.width)
        MatMul.run(embedding, s.acts[0], batch: n - first, out: s.logits, outStride: c.vocab, parallel: parallel)
    }

    func layer(_ l: Int, n: Int, startPos: Int, _ s: ModelState, _ parallel: Parallel) {
        let c = config, L = layers[l]
        let x = s.hidden, xn = s.buffers[B.xn]
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        let qb = s.buffers[B.q], kb = s.buffers[B.k], vb = s.buffers[B.v]
        let kc = s.buffers[B.kv + 2 * l], vc = s.buffers[B.kv + 2 * l + 1]

        for b in 0..<n { Ops.rmsNorm(x + b * c.width, L.attnNorm, count: c.width, eps: c.eps, out: xn + b * c.width) }
        s.acts[0].quantize(xn, batch: n, stride: c.width)
        MatMul.run(L.wq, s.acts[0], batch: n, out: qb, outStride: qd, parallel: parallel)
        MatMul.run(L.wk, s.acts[0], batch: n, out: kb, outStride: kvd, parallel: parallel)
        MatMul.run(L.wv, s.acts[0], batch: n, out: vb, outStride: kvd, parallel: parallel)
        let inv = c.isSliding(l) ? invFreqLocal : invFreqGlobal
        inv.withUnsafeBufferPointer { inv in
            for b in 0..<n {
                for h in 0..<c.heads { let p = qb + b * qd + h * c.headDim; Ops.rmsNorm(p, L.qNorm, count: c.headDim, eps: c.eps, out: p) }
                for h in 0..<c.kvHeads { let p = kb + b * kvd + h * c.headDim; Ops.rmsNorm(p, L.kNorm, count: c.headDim, eps: c.eps, out: p) }
                Ops.ropeNeox(qb + b * qd, heads: c.heads, dim: c.headDim, pos: startPos + b, inv: inv.baseAddress!)
                Ops.ropeNeox(kb + b * kvd, heads: c.kvHeads, dim: c.headDim, pos: startPos + b, inv: inv.baseAddress!)
                (kc + (startPos + b) * kvd).update(from: kb + b * kvd, count: kvd)
                (vc + (startPos + b) * kvd).update(from: vb + b * kvd, count: kvd)
            }
        }
        attention(l, n: n, startPos: startPos, s, parallel)
        s.acts[1].quantize(s.buffers[B.att], batch: n, stride: qd)
        let o = s.buffers[B.o]
        MatMul.run(L.wo, s.acts[1], batch: n, out: o, outStride: c.width, parallel: parallel)
        for b in 0..<n {
            let ob = o + b * c.width
            Ops.rmsNorm(ob, L.postAttnNorm, count: c.width, eps: c.eps, out: ob)
            for i in 0..<c.width { x[b * c.width + i] += ob[i] }
            Ops.rmsNorm(x + b * c.width, L.ffnNorm, count: c.width, eps: c.eps, out: xn + b * c.width)
        }
        s.acts[0].quantize(xn, batch: n, stride: c.width)
        let g = s.buffers[B.gate], u = s.buffers[B.up]
        MatMul.run(L.gate, s.acts[0], batch: n, out: g, outStride: c.ffn, parallel: parallel)
        MatMul.run(L.up, s.acts[0], batch: n, out: u, outStride: c.ffn, parallel: parallel)
        for i in 0..<n * c.ffn { g[i] = Ops.gelu(g[i]) * u[i] }
        s.acts[2].quantize(g, batch: n, stride: c.ffn)
        MatMul.run(L.down, s.acts[2], batch: n, out: o, outStride: c.width, parallel: parallel)
        for b in 0..<n {
            let ob = o + b * c.width
            Ops.rmsNorm(ob, L.postFfnNorm, count: c.width, eps: c.eps, out: ob)
            for i in 0..<c.width { x[b * c.width + i] += ob[i] }
        }
    }

    /// Causal GQA attention for `n` new positions; sliding layers see only the last `window` keys.
    func attention(_ l: Int, n: Int, startPos: Int, _ s: ModelState, _ parallel: Parallel) {
        let c = config
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, hd = c.headDim
        let qb = UnsafeSendable(s.buffers[B.q]), out = UnsafeSendable(s.buffers[B.att])
        let kc = UnsafeSendable(s.buffers[B.kv + 2 * l]), vc = UnsafeSendable(s.buffers[B.kv + 2 * l + 1])
        let scores = UnsafeSendable(s.buffers[B.scores])
        let sliding = c.isSliding(l), cap = s.capacity
        let scale = 1 / Float(hd).squareRoot()
        let group = c.heads / c.kvHeads
        parallel.forEach(n * c.heads, minChunk: 1) { range in
            for job in range {
                let b = job / c.heads, h = job % c.heads
                let pos = startPos + b
                let lo = sliding ? max(0, pos - c.window + 1) : 0
                let q = qb.value + b * qd + h * hd
                let kvOff = (h / group) * hd
                let sc = scores.value + job * cap
                for t in lo...pos {
                    let k = kc.value + t * kvd + kvOff
                    var d: Float = 0
                    for i in 0..<hd { d += q[i] * k[i] }
                    sc[t - lo] = d * scale
                }
                Ops.softmax(sc, pos - lo + 1)
                let o = out.value + b * qd + h * hd
                o.initialize(repeating: 0, count: hd)
                for t in lo...pos {
                    let v = vc.value + t * kvd + kvOff, p = sc[t - lo]
                    for i in 0..<hd { o[i] += p * v[i] }
                }
            }
        }
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
