import Foundation
import TernFormat
import TernKernels
import TernPlanner

/// A decoder-only transformer of any registered family: what they all share (weight placement
/// and streaming, state, embedding lookup, RoPE tables, the head) lives here; the family's
/// ``DecoderFamily/layer(_:)`` composes each layer from the blocks in ``LayerPass``.
public final class DecoderModel: LanguageModel, @unchecked Sendable {
    public let config: DecoderConfig
    let family: any DecoderFamily.Type
    let store: WeightStore
    /// The LM head: `output.weight`, or the token embedding when the two are tied.
    let head: QMatrix
    /// An untied embedding table, read one row group per token from the file (never resident);
    /// nil when the embedding is the head.
    let untiedEmbedding: (info: TensorInfo, kind: QuantKind)?
    /// Reads single row groups when they are not in memory: embedding rows (untied, or a streamed
    /// tied head) and draft-head rows of a streamed head. Its own reader: the streamer's loader
    /// thread uses the streamer's.
    let rowReader: TensorReader?
    let outputNorm: UnsafePointer<Float>
    let layers: [DecoderLayer]
    let streamed: StreamedWeights?
    /// RoPE inverse frequencies of each distinct base (position scaling and frequency factors
    /// applied), and the table each layer uses.
    let invFreq: [[Float]]
    let ropeOfLayer: [Int]

    public var vocabSize: Int { config.vocab }
    public var layerCount: Int { config.layers }
    public var contextLength: Int { config.context }
    public var width: Int { config.width }
    public let bytesPerToken: Int

    /// The LM head's tensor name in `file`.
    static func headName(_ file: TernFile) -> String {
        file.tensor("output.weight") != nil ? "output.weight" : "token_embd.weight"
    }

    /// Loads the model; `placement` says which layers and whether the LM head are streamed
    /// (read into a bounded cache of a few slots as they are used) instead of used in place.
    init(family: any DecoderFamily.Type, config c: DecoderConfig, store: WeightStore, placement: WeightPlacement) throws {
        config = c
        self.family = family
        self.store = store
        let file = store.file, headName = DecoderModel.headName(file)
        let shapes = DecoderLayer.matrixShapes(c)
        var headInfo: TensorInfo
        if placement.streamHead {
            let (t, kind) = try store.streamedMatrix(headName, rows: c.vocab, cols: c.width)
            headInfo = t
            head = QMatrix(kind: kind, rows: c.vocab, cols: c.width, base: DecoderModel.unbound)
        } else {
            head = try store.matrix(headName, rows: c.vocab, cols: c.width)
            headInfo = try store.info(headName)
        }
        if headName == "output.weight" {
            untiedEmbedding = try store.streamedMatrix("token_embd.weight", rows: c.vocab, cols: c.width)
        } else {
            untiedEmbedding = nil
        }
        rowReader = untiedEmbedding != nil || placement.streamHead ? try TensorReader(file: file) : nil
        outputNorm = try store.vector("output_norm.weight", count: c.width)
        func optional(_ name: String, _ count: Int, if present: Bool) throws -> UnsafePointer<Float>? {
            present ? try store.vector(name, count: count) : nil
        }
        var streamedInfo: [[TensorInfo]] = []
        var ls: [DecoderLayer] = []
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        for i in 0..<c.layers {
            let p = "blk.\(i)."
            var mats: [QMatrix] = []
            var infos: [TensorInfo] = []
            for (name, rows, cols) in shapes {
                if placement.streamedLayers.contains(i) {
                    let (t, kind) = try store.streamedMatrix(p + name + ".weight", rows: rows, cols: cols)
                    infos.append(t)
                    mats.append(QMatrix(kind: kind, rows: rows, cols: cols, base: DecoderModel.unbound))
                } else {
                    mats.append(try store.matrix(p + name + ".weight", rows: rows, cols: cols))
                }
            }
            streamedInfo.append(infos)
            ls.append(DecoderLayer(
                attnNorm: try store.vector(p + "attn_norm.weight", count: c.width),
                ffnNorm: try store.vector(p + "ffn_norm.weight", count: c.width),
                qNorm: try optional(p + "attn_q_norm.weight", c.headDim, if: c.qkNorm),
                kNorm: try optional(p + "attn_k_norm.weight", c.headDim, if: c.qkNorm),
                postAttnNorm: try optional(p + "post_attention_norm.weight", c.width, if: c.postNorms),
                postFfnNorm: try optional(p + "post_ffw_norm.weight", c.width, if: c.postNorms),
                qBias: try optional(p + "attn_q.bias", qd, if: c.qkvBias),
                kBias: try optional(p + "attn_k.bias", kvd, if: c.qkvBias),
                vBias: try optional(p + "attn_v.bias", kvd, if: c.qkvBias),
                wq: mats[0], wk: mats[1], wv: mats[2], wo: mats[3], gate: mats[4], up: mats[5], down: mats[6]))
        }
        layers = ls
        streamed = placement.streamsAnything
            ? try StreamedWeights(file: file, layerTensors: streamedInfo, head: headInfo, placement: placement) : nil
        // Llama 3 style frequency factors (`rope_freqs.weight`) divide each pair's frequency.
        let half = c.headDim / 2
        let factors = file.tensor("rope_freqs.weight") != nil ? try store.vector("rope_freqs.weight", count: half) : nil
        let (bases, of) = c.ropeTables
        invFreq = bases.map { base in
            (0..<half).map { i in
                // Scaling by 1 and dividing by 1 are exact: without either, these are the plain frequencies.
                Float(Double(c.ropeScale) * pow(Double(base), -2 * Double(i) / Double(c.headDim)) / Double(factors?[i] ?? 1))
            }
        }
        ropeOfLayer = of
        let smallPerToken = file.tensors.filter { $0.shape.count == 1 }.reduce(0) { $0 + $1.byteSize }
        bytesPerToken = ls.reduce(0) { t, L in [L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down].reduce(t) { $0 + $1.byteSize } }
            + head.byteSize + smallPerToken + (untiedEmbedding?.info.groupBytes ?? 0)
    }

    /// The base of a streamed matrix until its slot is bound; never dereferenced.
    nonisolated(unsafe) static let unbound = UnsafeRawPointer(bitPattern: 64)!

    /// What the planner needs: decoded bytes per layer, of the LM head and of the small tensors,
    /// and the state for `capacity` positions in batches of `maxBatch`. An untied embedding
    /// table is not counted: it is read a row group per token and never held.
    static func memoryShape(config c: DecoderConfig, file: TernFile, capacity: Int, maxBatch: Int,
                            options: StateOptions) -> MemoryShape {
        func size(_ n: String) -> Int { file.tensor(n)?.byteSize ?? 0 }
        let shapes = DecoderLayer.matrixShapes(c)
        let layerBytes = (0..<c.layers).map { i in shapes.reduce(0) { $0 + size("blk.\(i).\($1.0).weight") } }
        let headName = headName(file)
        let layerMatrices = (0..<c.layers).flatMap { i in shapes.map { "blk.\(i).\($0.0).weight" } }
        let matrices = Set(layerMatrices + ["token_embd.weight", headName])
        let small = file.tensors.filter { !matrices.contains($0.name) }.reduce(0) { $0 + $1.byteSize }
        let head = file.tensor(headName)
        var q8 = options
        q8.kv = .q8
        var shape = MemoryShape(layerBytes: layerBytes, lmHeadBytes: head?.byteSize ?? 0, lmHeadGroupBytes: head?.groupBytes ?? 1,
                                residentBytes: small, stateBytes: c.stateBytes(capacity: capacity, maxBatch: maxBatch,
                                                                               options: options),
                                stateBytesQ8KV: c.stateBytes(capacity: capacity, maxBatch: maxBatch, options: q8),
                                tokenizerBytes: c.vocab * 48)
        let inPlace = StreamReads.choose(file: file, matrices: matrices.compactMap { file.tensor($0) }) == .map
        shape.streamsInPlace = inPlace
        shape.layerSlotBytes = (0..<c.layers).map { i in
            let ts = shapes.compactMap { file.tensor("blk.\(i).\($0.0).weight") }
            guard ts.count == shapes.count else { return layerBytes[i] }
            return inPlace ? LayerChunks.mappedBytes(ts, target: shape.layerChunkTarget, map: file.map)
                : LayerChunks.slotBytes(ts, target: shape.layerChunkTarget)
        }
        shape.logitsRowBytes = 4 * c.vocab
        shape.draftHeadRowBytes = (head?.groupBytes ?? 0) / 4 + 4
        shape.hiddenRowBytes = 4 * c.width
        return shape
    }

    /// The products of a decoded token: every layer's matrices and the LM head (an untied
    /// embedding table is looked up a row per token, not multiplied).
    static func decodeProducts(config c: DecoderConfig, file: TernFile) -> [DecodeProduct] {
        let shapes = DecoderLayer.matrixShapes(c)
        let names = (0..<c.layers).flatMap { i in shapes.map { "blk.\(i).\($0.0).weight" } } + [headName(file)]
        return names.compactMap { file.tensor($0) }.compactMap { t in
            QuantKind(rawValue: t.dtype.description).map { DecodeProduct(kind: $0, macs: t.elementCount, bytes: t.byteSize) }
        }
    }

    // Scratch buffer indices in ModelState.buffers; the K/V cache of layer l is raw[2l], raw[2l+1],
    // head-major: KV head h's rows fill slots h * slots ..< (h + 1) * slots (Blocks.attention).
    enum B { static let xn = 0, q = 1, k = 2, v = 3, att = 4, o = 5, gate = 6, up = 7, rope = 8 }

    public func stateBytes(capacity: Int, maxBatch: Int, options: StateOptions) -> Int {
        config.stateBytes(capacity: capacity, maxBatch: maxBatch, options: options)
    }

    /// Which of the state's activation buffers (``DecoderConfig/activationWidths``) keep a per-256
    /// form for the kernels that read it (``QuantizedActivations``): those a q4k matrix multiplies,
    /// or a q6 one where the active path's q6 kernel reads it (x86), but not the gated FFN product
    /// `ffn_down` reads (``DecoderConfig/superBlockInputs``).
    var superBlockInputs: [Bool] {
        let readers = [layers.flatMap { [$0.wq, $0.wk, $0.wv, $0.gate, $0.up] } + [head], layers.map(\.wo), []]
        let reads = { (m: QMatrix) in m.kind == .q4k || KernelISA.active.readsSuperBlockActivations(m.kind) }
        return zip(readers, config.superBlockInputs).map { mats, allowed in allowed && mats.contains(where: reads) }
    }

    public func makeState(capacity: Int, maxBatch: Int, options: StateOptions) -> ModelState {
        let c = config
        let (floats, kvBytes) = c.stateSizes(capacity: capacity, maxBatch: maxBatch, options: options)
        let s = ModelState(capacity: capacity, maxBatch: maxBatch, width: c.width, vocab: c.vocab,
                           logitsRows: min(maxBatch, options.logitsRows ?? maxBatch), scratch: floats,
                           byteScratch: kvBytes, activationWidths: c.activationWidths, superBlocks: superBlockInputs)
        let rowBytes = max(untiedEmbedding?.info.groupBytes ?? 0, streamed?.head.groupBytes ?? 0)
        s.kvLayers = (0..<c.layers).map {
            (slots: c.kvSlots($0, capacity: capacity, maxBatch: maxBatch, options: options), window: c.window[$0])
        }
        s.auxiliary = AttentionJob(config: c, rowBytes: rowBytes, kv: options.kv, state: s)
        return s
    }

    /// Row `t` of the token embedding, dequantized (and scaled, for families that scale it) into `out`.
    func embed(_ t: Int32, into out: UnsafeMutablePointer<Float>, _ s: ModelState) throws {
        let c = config
        guard t >= 0, Int(t) < c.vocab else {
            throw FormatError(file: store.file.path, field: "token", "id \(t) is outside the \(c.vocab)-token " +
                "vocabulary")
        }
        if let reader = rowReader {
            // Not in memory: read just this row's group (into this sequence's buffer) rather than touch the map.
            let info = untiedEmbedding?.info ?? streamed!.head, kind = untiedEmbedding?.kind ?? head.kind
            let row = (s.auxiliary as! AttentionJob).rowBuffer
            try reader.read(info, from: Int(t) / 4 * info.groupBytes, count: info.groupBytes, into: row)
            QMatrix(kind: kind, rows: 4, cols: c.width, base: row).dequantizeRow(Int(t) % 4, into: out)
        } else {
            head.dequantizeRow(Int(t), into: out)
        }
        if let scale = c.embeddingScale { for i in 0..<c.width { out[i] *= scale } }
    }

    public func forwardLayers(tokens: [Int32], startPos: Int, layers range: Range<Int>, embed: Bool,
                              state s: ModelState, parallel: Parallel) throws {
        let n = tokens.count
        precondition(n > 0 && n <= s.maxBatch && startPos + n <= s.capacity)
        if !range.isEmpty { s.kvHighWater = max(s.kvHighWater, startPos + n) }
        let c = config
        if embed { for (b, t) in tokens.enumerated() { try self.embed(t, into: s.hidden + b * c.width, s) } }
        // RoPE angles once per position for each distinct base: per row, [cos|sin] of each table.
        let rope = s.buffers[B.rope], half = c.headDim / 2, tables = invFreq.count
        for (j, inv) in invFreq.enumerated() {
            inv.withUnsafeBufferPointer { inv in
                for b in 0..<n {
                    let r = rope + (b * tables + j) * c.headDim
                    Ops.ropeTable(pos: startPos + b, inv: inv.baseAddress!, half: half, cos: r, sin: r + half)
                }
            }
        }
        for l in range {
            family.layer(LayerPass(c: c, L: layers[l], l: l, n: n, startPos: startPos, s: s, parallel: parallel,
                                   ropeTables: tables, ropeRow: ropeOfLayer[l], stream: streamed))
            if let e = s.streamFailure { s.streamFailure = nil; throw e }
        }
    }

    /// The final norm of hidden rows `rows`, quantized into `s.acts[0]` rows 0..<rows.count:
    /// what every head (full, streamed or a draft subset) multiplies.
    func headInput(_ rows: Range<Int>, _ s: ModelState) {
        let c = config, xn = s.buffers[B.xn]
        for b in rows {
            Ops.rmsNorm(s.hidden + b * c.width, outputNorm, count: c.width, eps: c.eps,
                        out: xn + (b - rows.lowerBound) * c.width)
        }
        s.acts[0].quantize(xn, batch: rows.count, stride: c.width)
    }

    public func logits(rows: Range<Int>, state s: ModelState, parallel: Parallel) throws {
        let c = config, n = rows.count
        precondition(n > 0 && rows.upperBound <= s.maxBatch && n <= s.logitsRows, "state keeps \(s.logitsRows) " +
            "logits rows; \(n) asked for")
        headInput(rows, s)
        guard let st = streamed, !st.headUnits.isEmpty else {
            MatMul.run(head, s.acts[0], batch: n, out: s.logits, outStride: c.vocab, parallel: parallel)
            return
        }
        for (u, groups) in st.headUnits {
            let r0 = groups.lowerBound * 4, r1 = min(c.vocab, groups.upperBound * 4)
            try st.using(u, batch: n, pool: parallel.pool, state: s) { piece, parts in
                MatMul.run(QMatrix(kind: head.kind, rows: r1 - r0, cols: c.width, base: piece(0)), s.acts[0], batch: n,
                           out: s.logits + r0, outStride: c.vocab, parallel: parallel, parts: parts)
            }
        }
    }

    public func logits(row: Int, head: QMatrix, out: UnsafeMutablePointer<Float>, state s: ModelState, parallel: Parallel) {
        headInput(row..<row + 1, s)
        MatMul.run(head, s.acts[0], batch: 1, out: out, outStride: head.rows, parallel: parallel)
    }

    public func headRows(_ ids: [Int32]) throws -> OwnedQMatrix {
        let c = config
        let m = OwnedQMatrix(kind: head.kind, rows: max(1, ids.count), cols: c.width)
        let gb = head.groupBytes
        // A streamed head is read one four-row group at a time (never through the map).
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: gb, alignment: 64)
        defer { buffer.deallocate() }
        for (i, t) in ids.enumerated() {
            guard t >= 0, Int(t) < c.vocab else {
                throw FormatError(file: store.file.path, field: "draft vocabulary", "token id \(t) is outside the " +
                    "\(c.vocab)-token vocabulary; re-run tern calibrate")
            }
            if let st = streamed, !st.headUnits.isEmpty {
                try rowReader!.read(st.head, from: Int(t) / 4 * gb, count: gb, into: buffer)
                QMatrix.copyLane(head.kind, blocks: head.blocks, from: buffer, lane: Int(t) % 4,
                                 to: m.groupPointer(i / 4), lane: i % 4)
            } else {
                head.copyRow(Int(t), toGroup: m.groupPointer(i / 4), lane: i % 4)
            }
        }
        return m
    }
}
