import Foundation
import TernFormat
import TernKernels
import TernPlanner

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

    /// Positions layer `l` keeps: all `capacity` for global layers; for sliding layers with ring
    /// buffers, the window plus room for a batch's new positions (so writing a batch never
    /// overwrites keys an earlier query of the same batch still reads).
    func kvSlots(_ l: Int, capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        guard options.ringBuffers, isSliding(l) else { return capacity }
        return min(capacity, window + maxBatch - 1)
    }

    func stateSizes(capacity: Int, maxBatch: Int, options: StateOptions) -> (floats: [Int], kvBytes: [Int]) {
        let c = self
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        let floats = [maxBatch * c.width, maxBatch * q, maxBatch * kv, maxBatch * kv, maxBatch * q,
                      maxBatch * c.width, maxBatch * c.ffn, maxBatch * c.ffn, maxBatch * 2 * c.headDim]
        let row = c.kvHeads * options.kv.rowBytes(dim: c.headDim)
        // K then V for each layer. Built at its exact size: growing an array by appends reallocates
        // a number of times that depends on the heap's state, which made allocation counts vary.
        let kvBytes = (0..<2 * c.layers).map { kvSlots($0 / 2, capacity: capacity, maxBatch: maxBatch, options: options) * row }
        return (floats, kvBytes)
    }

    public func stateBytes(capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        let (f, h) = stateSizes(capacity: capacity, maxBatch: maxBatch, options: options)
        let c = self
        let acts = [c.width, c.heads * c.headDim, c.ffn].reduce(0) { $0 + maxBatch * ($1 + $1 / 32 * 16) }
        return 4 * f.reduce(0, +) + h.reduce(0, +) + 4 * (maxBatch * c.width + (options.logitsRows ?? maxBatch) * c.vocab) + acts
    }
}

/// Gemma 3 text model (Gemma Team, "Gemma 3 Technical Report", 2025): pre- and post-norms
/// around attention and FFN, per-head Q/K RMSNorm, GeGLU, 5:1 local:global attention, tied
/// embeddings scaled by sqrt(width). Norm weights in GGUF-derived files already include the +1.
public final class Gemma3Model: LanguageModel, @unchecked Sendable {
    struct Layer {
        let attnNorm, qNorm, kNorm, postAttnNorm, ffnNorm, postFfnNorm: UnsafePointer<Float>
        let wq, wk, wv, wo, gate, up, down: QMatrix

        /// The same layer with its matrices at `base + offsets[i]` (a streaming slot), in the
        /// order wq, wk, wv, wo, gate, up, down. Builds no arrays: it runs per layer per token.
        func rebound(to base: UnsafeRawPointer, offsets o: [Int]) -> Layer {
            func at(_ m: QMatrix, _ i: Int) -> QMatrix { QMatrix(kind: m.kind, rows: m.rows, cols: m.cols, base: base + o[i]) }
            return Layer(attnNorm: attnNorm, qNorm: qNorm, kNorm: kNorm, postAttnNorm: postAttnNorm, ffnNorm: ffnNorm,
                         postFfnNorm: postFfnNorm, wq: at(wq, 0), wk: at(wk, 1), wv: at(wv, 2), wo: at(wo, 3),
                         gate: at(gate, 4), up: at(up, 5), down: at(down, 6))
        }
    }

    public let config: Gemma3Configuration
    let store: WeightStore
    let embedding: QMatrix
    let outputNorm: UnsafePointer<Float>
    let layers: [Layer]
    let streamed: StreamedWeights?
    let invFreqGlobal: [Float]
    let invFreqLocal: [Float]

    public var vocabSize: Int { config.vocab }
    public var layerCount: Int { config.layers }
    public var contextLength: Int { config.context }
    public let bytesPerToken: Int

    /// The seven matrices of a layer: name suffix and [rows, cols].
    static func matrixShapes(_ c: Gemma3Configuration) -> [(String, Int, Int)] {
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        return [("attn_q", q, c.width), ("attn_k", kv, c.width), ("attn_v", kv, c.width), ("attn_output", c.width, q),
                ("ffn_gate", c.ffn, c.width), ("ffn_up", c.ffn, c.width), ("ffn_down", c.width, c.ffn)]
    }

    /// Loads the model; `placement` says which layers and whether the LM head are streamed
    /// (read into a bounded two-slot cache as they are used) instead of used in place.
    public init(store: WeightStore, vocab: Int, placement: WeightPlacement = WeightPlacement()) throws {
        let c = try Gemma3Configuration(metadata: store.file.metadata, file: store.file.path, vocab: vocab)
        config = c
        self.store = store
        let shapes = Gemma3Model.matrixShapes(c)
        var streamedInfo: [[TensorInfo]] = []
        var head: TensorInfo
        if placement.streamHead {
            let (t, kind) = try store.streamedMatrix("token_embd.weight", rows: c.vocab, cols: c.width)
            head = t
            embedding = QMatrix(kind: kind, rows: c.vocab, cols: c.width, base: Gemma3Model.unbound)
        } else {
            embedding = try store.matrix("token_embd.weight", rows: c.vocab, cols: c.width)
            head = try store.info("token_embd.weight")
        }
        outputNorm = try store.vector("output_norm.weight", count: c.width)
        var ls: [Layer] = []
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            var mats: [QMatrix] = []
            var infos: [TensorInfo] = []
            for (name, rows, cols) in shapes {
                if placement.streamedLayers.contains(i) {
                    let (t, kind) = try store.streamedMatrix(p + name + ".weight", rows: rows, cols: cols)
                    infos.append(t)
                    mats.append(QMatrix(kind: kind, rows: rows, cols: cols, base: Gemma3Model.unbound))
                } else {
                    mats.append(try store.matrix(p + name + ".weight", rows: rows, cols: cols))
                }
            }
            streamedInfo.append(infos)
            ls.append(Layer(
                attnNorm: try store.vector(p + "attn_norm.weight", count: c.width),
                qNorm: try store.vector(p + "attn_q_norm.weight", count: c.headDim),
                kNorm: try store.vector(p + "attn_k_norm.weight", count: c.headDim),
                postAttnNorm: try store.vector(p + "post_attention_norm.weight", count: c.width),
                ffnNorm: try store.vector(p + "ffn_norm.weight", count: c.width),
                postFfnNorm: try store.vector(p + "post_ffw_norm.weight", count: c.width),
                wq: mats[0], wk: mats[1], wv: mats[2], wo: mats[3], gate: mats[4], up: mats[5], down: mats[6]))
        }
        layers = ls
        streamed = placement.streamsAnything
            ? try StreamedWeights(file: store.file, layerTensors: streamedInfo, head: head, placement: placement) : nil
        let half = c.headDim / 2
        invFreqGlobal = (0..<half).map { Float(pow(Double(c.ropeBase), -2 * Double($0) / Double(c.headDim))) }
        invFreqLocal = (0..<half).map { Float(pow(Double(c.ropeBaseLocal), -2 * Double($0) / Double(c.headDim))) }
        let mats = ls.flatMap { [$0.wq, $0.wk, $0.wv, $0.wo, $0.gate, $0.up, $0.down] } + [embedding]
        bytesPerToken = mats.reduce(0) { $0 + $1.byteSize } + c.layers * (4 * c.width + 2 * c.headDim) * 4
    }

    /// The base of a streamed matrix until its slot is bound; never dereferenced.
    nonisolated(unsafe) static let unbound = UnsafeRawPointer(bitPattern: 64)!

    /// What the planner needs: decoded bytes per layer, of the LM head and of the small tensors,
    /// and the state for `capacity` positions in batches of `maxBatch`.
    public static func memoryShape(file: TernFile, vocab: Int, capacity: Int, maxBatch: Int, options: StateOptions) throws -> MemoryShape {
        let c = try Gemma3Configuration(metadata: file.metadata, file: file.path, vocab: vocab)
        func size(_ n: String) -> Int { file.tensor(n)?.byteSize ?? 0 }
        let layerBytes = (0..<c.layers).map { i in matrixShapes(c).reduce(0) { $0 + size("blk.\(i).\($1.0).weight") } }
        let matrices = Set((0..<c.layers).flatMap { i in matrixShapes(c).map { "blk.\(i).\($0.0).weight" } } + ["token_embd.weight"])
        let small = file.tensors.filter { !matrices.contains($0.name) }.reduce(0) { $0 + $1.byteSize }
        let head = file.tensor("token_embd.weight")
        var shape = MemoryShape(layerBytes: layerBytes, lmHeadBytes: head?.byteSize ?? 0, lmHeadGroupBytes: head?.groupBytes ?? 1,
                           residentBytes: small, stateBytes: c.stateBytes(capacity: capacity, maxBatch: maxBatch, options: options),
                           stateBytesQ8KV: c.stateBytes(capacity: capacity, maxBatch: maxBatch,
                                                        options: StateOptions(ringBuffers: options.ringBuffers, logitsRows: options.logitsRows, kv: .q8)),
                           tokenizerBytes: vocab * 48)
        shape.logitsRowBytes = 4 * vocab
        shape.draftHeadRowBytes = (head?.groupBytes ?? 0) / 4 + 4
        shape.hiddenRowBytes = 4 * c.width
        return shape
    }

    // Scratch buffer indices in ModelState.buffers; the K/V cache of layer l is raw[2l], raw[2l+1].
    enum B { static let xn = 0, q = 1, k = 2, v = 3, att = 4, o = 5, gate = 6, up = 7, rope = 8 }

    public func stateBytes(capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        config.stateBytes(capacity: capacity, maxBatch: maxBatch, options: options)
    }

    public func makeState(capacity: Int, maxBatch: Int, options: StateOptions) -> ModelState {
        let c = config
        let (floats, kvBytes) = c.stateSizes(capacity: capacity, maxBatch: maxBatch, options: options)
        let s = ModelState(capacity: capacity, maxBatch: maxBatch, width: c.width, vocab: c.vocab,
                           logitsRows: min(maxBatch, options.logitsRows ?? maxBatch), scratch: floats,
                           byteScratch: kvBytes, activationWidths: [c.width, c.heads * c.headDim, c.ffn])
        s.auxiliary = AttentionJob(config: c, slots: (0..<c.layers).map { c.kvSlots($0, capacity: capacity, maxBatch: maxBatch, options: options) },
                                   rowBytes: streamed?.head.groupBytes ?? 0, kv: options.kv, state: s)
        return s
    }

    public var width: Int { config.width }

    public func forwardLayers(tokens: [Int32], startPos: Int, layers range: Range<Int>, embed: Bool,
                              state s: ModelState, parallel: Parallel) throws {
        let n = tokens.count
        precondition(n > 0 && n <= s.maxBatch && startPos + n <= s.capacity)
        let c = config
        let x = s.hidden
        if embed {
            let scale = Float(c.width).squareRoot()
            for (b, t) in tokens.enumerated() {
                guard t >= 0, Int(t) < c.vocab else { throw FormatError(file: store.file.path, field: "token", "id \(t) is outside the \(c.vocab)-token vocabulary") }
                if let st = streamed, !st.headUnits.isEmpty {
                    // The head is streamed: read just this row's group (into this sequence's buffer)
                    // rather than touch the map.
                    let g = Int(t) / 4, row = (s.auxiliary as! AttentionJob).rowBuffer
                    try st.rowReader.read(st.head, from: g * st.head.groupBytes, count: st.head.groupBytes, into: row)
                    QMatrix(kind: embedding.kind, rows: 4, cols: c.width, base: row).dequantizeRow(Int(t) % 4, into: x + b * c.width)
                } else {
                    embedding.dequantizeRow(Int(t), into: x + b * c.width)
                }
                for i in 0..<c.width { x[b * c.width + i] *= scale }
            }
        }
        // RoPE angles once per position for both bases: rows of [cos|sin] local, then global.
        let rope = s.buffers[B.rope], half = c.headDim / 2
        invFreqLocal.withUnsafeBufferPointer { loc in
            invFreqGlobal.withUnsafeBufferPointer { glob in
                for b in 0..<n {
                    let r = rope + b * 2 * c.headDim
                    Ops.ropeTable(pos: startPos + b, inv: loc.baseAddress!, half: half, cos: r, sin: r + half)
                    Ops.ropeTable(pos: startPos + b, inv: glob.baseAddress!, half: half, cos: r + c.headDim, sin: r + c.headDim + half)
                }
            }
        }
        for l in range {
            if let st = streamed, let (u, offsets) = st.layerUnits[l] {
                let (slot, base) = try st.streamer.acquire(u)
                st.streamer.prefetch(st.next(u))
                layer(l, layers[l].rebound(to: base, offsets: offsets), n: n, startPos: startPos, s, parallel)
                st.streamer.release(slot: slot)
            } else {
                layer(l, layers[l], n: n, startPos: startPos, s, parallel)
            }
        }
    }

    /// The final norm of hidden rows `rows`, quantized into `s.acts[0]` rows 0..<rows.count:
    /// what every head (full, streamed or a draft subset) multiplies.
    func headInput(_ rows: Range<Int>, _ s: ModelState) {
        let c = config, xn = s.buffers[B.xn]
        for b in rows { Ops.rmsNorm(s.hidden + b * c.width, outputNorm, count: c.width, eps: c.eps, out: xn + (b - rows.lowerBound) * c.width) }
        s.acts[0].quantize(xn, batch: rows.count, stride: c.width)
    }

    public func logits(rows: Range<Int>, state s: ModelState, parallel: Parallel) throws {
        let c = config, n = rows.count
        precondition(n > 0 && rows.upperBound <= s.maxBatch && n <= s.logitsRows, "state keeps \(s.logitsRows) logits rows; \(n) asked for")
        headInput(rows, s)
        guard let st = streamed, !st.headUnits.isEmpty else {
            MatMul.run(embedding, s.acts[0], batch: n, out: s.logits, outStride: c.vocab, parallel: parallel)
            return
        }
        for (u, groups) in st.headUnits {
            let (slot, base) = try st.streamer.acquire(u)
            st.streamer.prefetch(st.next(u))
            let r0 = groups.lowerBound * 4, r1 = min(c.vocab, groups.upperBound * 4)
            MatMul.run(QMatrix(kind: embedding.kind, rows: r1 - r0, cols: c.width, base: base), s.acts[0], batch: n,
                       out: s.logits + r0, outStride: c.vocab, parallel: parallel)
            st.streamer.release(slot: slot)
        }
    }

    public func logits(row: Int, head: QMatrix, out: UnsafeMutablePointer<Float>, state s: ModelState, parallel: Parallel) {
        headInput(row..<row + 1, s)
        MatMul.run(head, s.acts[0], batch: 1, out: out, outStride: head.rows, parallel: parallel)
    }

    public func headRows(_ ids: [Int32]) throws -> OwnedQMatrix {
        let c = config
        let m = OwnedQMatrix(kind: embedding.kind, rows: max(1, ids.count), cols: c.width)
        let gb = embedding.groupBytes
        // A streamed head is read one four-row group at a time (never through the map).
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: gb, alignment: 64)
        defer { buffer.deallocate() }
        for (i, t) in ids.enumerated() {
            guard t >= 0, Int(t) < c.vocab else { throw FormatError(file: store.file.path, field: "draft vocabulary", "token id \(t) is outside the \(c.vocab)-token vocabulary; re-run tern calibrate") }
            if let st = streamed, !st.headUnits.isEmpty {
                try st.rowReader.read(st.head, from: Int(t) / 4 * gb, count: gb, into: buffer)
                QMatrix.copyLane(embedding.kind, blocks: embedding.blocks, from: buffer, lane: Int(t) % 4, to: m.groupPointer(i / 4), lane: i % 4)
            } else {
                embedding.copyRow(Int(t), toGroup: m.groupPointer(i / 4), lane: i % 4)
            }
        }
        return m
    }

    /// Runs `body(b)` for each batch row, in parallel for prefill-sized batches. A few rows (a
    /// decode step, a verification pass) run on the calling thread: the row work is small, and
    /// dispatching a closure to the pool allocates its context.
    @inline(__always) func rows(_ n: Int, _ parallel: Parallel, _ body: (Int) -> Void) {
        if n <= 8 { for b in 0..<n { body(b) }; return }
        parallel.forEach(n, minChunk: 1) { r in for b in r { body(b) } }
    }

    func layer(_ l: Int, _ L: Layer, n: Int, startPos: Int, _ s: ModelState, _ parallel: Parallel) {
        let c = config
        let x = UnsafeSendable(s.hidden), xn = UnsafeSendable(s.buffers[B.xn])
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, w = c.width
        let qb = UnsafeSendable(s.buffers[B.q]), kb = UnsafeSendable(s.buffers[B.k]), vb = s.buffers[B.v]
        let kc = UnsafeSendable(s.raw[2 * l]), vc = UnsafeSendable(s.raw[2 * l + 1])
        let job = s.auxiliary as! AttentionJob
        let slots = job.slots[l], kvRow = job.kvRow, precision = job.kv
        let rope = UnsafeSendable(s.buffers[B.rope] + (c.isSliding(l) ? 0 : c.headDim))
        let a0 = s.acts[0]

        rows(n, parallel) { b in
            Ops.rmsNorm(x.value + b * w, L.attnNorm, count: w, eps: c.eps, out: xn.value + b * w)
            a0.quantizeOne(xn.value + b * w, into: b)
        }
        MatMul.run(L.wq, a0, batch: n, out: qb.value, outStride: qd, parallel: parallel)
        MatMul.run(L.wk, a0, batch: n, out: kb.value, outStride: kvd, parallel: parallel)
        MatMul.run(L.wv, a0, batch: n, out: vb, outStride: kvd, parallel: parallel)
        let vbs = UnsafeSendable(vb)
        rows(n, parallel) { b in
            let q = qb.value + b * qd, k = kb.value + b * kvd
            for h in 0..<c.heads { Ops.rmsNorm(q + h * c.headDim, L.qNorm, count: c.headDim, eps: c.eps, out: q + h * c.headDim) }
            for h in 0..<c.kvHeads { Ops.rmsNorm(k + h * c.headDim, L.kNorm, count: c.headDim, eps: c.eps, out: k + h * c.headDim) }
            let r = rope.value + b * 2 * c.headDim
            Ops.ropeNeox(q, heads: c.heads, dim: c.headDim, cos: r, sin: r + c.headDim / 2)
            Ops.ropeNeox(k, heads: c.kvHeads, dim: c.headDim, cos: r, sin: r + c.headDim / 2)
            let slot = (startPos + b) % slots
            // Each KV head its own row block ([scales][values] for q8), as attention reads them.
            let headRow = kvRow / c.kvHeads
            for h in 0..<c.kvHeads {
                Ops.storeKV(k + h * c.headDim, dim: c.headDim, into: kc.value + slot * kvRow + h * headRow, precision: precision)
                Ops.storeKV(vbs.value + b * kvd + h * c.headDim, dim: c.headDim, into: vc.value + slot * kvRow + h * headRow, precision: precision)
            }
        }
        attention(l, n: n, startPos: startPos, s, parallel)
        let o = UnsafeSendable(s.buffers[B.o]), att = s.buffers[B.att]
        let a1 = s.acts[1]
        rows(n, parallel) { b in a1.quantizeOne(att + b * qd, into: b) }
        MatMul.run(L.wo, a1, batch: n, out: o.value, outStride: w, parallel: parallel)
        rows(n, parallel) { b in
            let ob = o.value + b * w, xb = x.value + b * w
            Ops.rmsNorm(ob, L.postAttnNorm, count: w, eps: c.eps, out: ob)
            for i in 0..<w { xb[i] += ob[i] }
            Ops.rmsNorm(xb, L.ffnNorm, count: w, eps: c.eps, out: xn.value + b * w)
            a0.quantizeOne(xn.value + b * w, into: b)
        }
        let g = UnsafeSendable(s.buffers[B.gate]), u = UnsafeSendable(s.buffers[B.up])
        MatMul.run(L.gate, a0, batch: n, out: g.value, outStride: c.ffn, parallel: parallel)
        MatMul.run(L.up, a0, batch: n, out: u.value, outStride: c.ffn, parallel: parallel)
        let a2 = s.acts[2]
        rows(n, parallel) { b in
            Ops.geluMul(g.value + b * c.ffn, u.value + b * c.ffn, count: c.ffn)
            a2.quantizeOne(g.value + b * c.ffn, into: b)
        }
        MatMul.run(L.down, a2, batch: n, out: o.value, outStride: w, parallel: parallel)
        rows(n, parallel) { b in
            let ob = o.value + b * w, xb = x.value + b * w
            Ops.rmsNorm(ob, L.postFfnNorm, count: w, eps: c.eps, out: ob)
            for i in 0..<w { xb[i] += ob[i] }
        }
    }

    func attention(_ l: Int, n: Int, startPos: Int, _ s: ModelState, _ parallel: Parallel) {
        let job = s.auxiliary as! AttentionJob
        job.layer = l
        job.n = n
        job.startPos = startPos
        parallel.pool.run(job: job, parts: min(n * job.c.heads, 4 * parallel.threads))
    }
}

/// Causal GQA attention for `n` new positions over the f16 cache, one (position, head) pair per
/// work item; query heads share their K/V head in place (no copies), and sliding layers read only
/// the last `window` positions. Preallocated per sequence so dispatching allocates nothing.
final class AttentionJob: PoolJob, @unchecked Sendable {
    let c: Gemma3Configuration
    /// Positions each layer's K/V holds (position p lives in slot p % slots[l]).
    let slots: [Int]
    unowned(unsafe) let s: ModelState
    var layer = 0, n = 0, startPos = 0
    /// One LM-head row group, for embedding lookups when the head is streamed.
    let rowBuffer: UnsafeMutableRawPointer
    let kv: KVPrecision
    /// Bytes of one cached K or V vector (all KV heads of a position).
    let kvRow: Int

    init(config: Gemma3Configuration, slots: [Int], rowBytes: Int, kv: KVPrecision, state: ModelState) {
        c = config
        self.slots = slots
        self.kv = kv
        kvRow = config.kvHeads * kv.rowBytes(dim: config.headDim)
        s = state
        rowBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(64, rowBytes), alignment: 64)
    }

    deinit { rowBuffer.deallocate() }

    func run(part: Int, of parts: Int) {
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, hd = c.headDim
        let qb = s.buffers[Gemma3Model.B.q], out = s.buffers[Gemma3Model.B.att]
        let kc = s.raw[2 * layer], vc = s.raw[2 * layer + 1]
        let sliding = c.isSliding(layer)
        let scale = 1 / Float(hd).squareRoot()
        let group = c.heads / c.kvHeads
        let ring = slots[layer]
        for job in Parallel.share(n * c.heads, part, parts) {
            let b = job / c.heads, h = job % c.heads
            let pos = startPos + b
            let lo = sliding ? max(0, pos - c.window + 1) : 0
            let kvOff = (h / group) * hd
            // Positions lo...pos start at slot lo % ring and may wrap to slot 0.
            let first = lo % ring, count = pos - lo + 1
            let head = min(count, ring - first)
            switch kv {
            case .f16:
                let k16 = kc.assumingMemoryBound(to: UInt16.self), v16 = vc.assumingMemoryBound(to: UInt16.self)
                Ops.attend(q: qb + b * qd + h * hd, k: k16 + first * kvd + kvOff, v: v16 + first * kvd + kvOff, stride: kvd, count: head,
                           k2: k16 + kvOff, v2: v16 + kvOff, wrapped: count - head, dim: hd, scale: scale, out: out + b * qd + h * hd)
            case .q8:
                // Each KV head's row is its own [scales][values] block of kvRow / kvHeads bytes.
                let hr = kvRow / c.kvHeads, ho = (h / group) * hr
                Ops.attendQ8(q: qb + b * qd + h * hd, k: kc + first * kvRow + ho, v: vc + first * kvRow + ho, rowBytes: kvRow, count: head,
                             k2: kc + ho, v2: vc + ho, wrapped: count - head, dim: hd, scale: scale, out: out + b * qd + h * hd)
            }
        }
    }
}

