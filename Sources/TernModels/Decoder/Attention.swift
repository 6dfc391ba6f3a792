import TernKernels

/// Causal GQA attention for `n` new positions over the layer's cache. A work item is one
/// position and a run of the query heads that share a KV head (all of them unless that leaves
/// threads idle): each pass over a K/V row serves the whole run, in place (no copies), and
/// windowed layers read only the last `window` positions. Preallocated per sequence so
/// dispatching allocates nothing.
final class AttentionJob: PoolJob, @unchecked Sendable {
    let c: DecoderConfig
    /// Positions each layer's K/V holds (position p lives in slot p % slots[l]).
    let slots: [Int]
    unowned(unsafe) let s: ModelState
    var layer = 0, n = 0, startPos = 0
    /// One row group of the LM head or of an untied embedding, for the embedding lookup when it
    /// is read from the file.
    let rowBuffer: UnsafeMutableRawPointer
    let kv: KVPrecision
    /// Bytes of one cached K or V vector (all KV heads of a position).
    let kvRow: Int

    init(config: DecoderConfig, slots: [Int], rowBytes: Int, kv: KVPrecision, state: ModelState) {
        c = config
        self.slots = slots
        self.kv = kv
        kvRow = config.kvHeads * kv.rowBytes(dim: config.headDim)
        s = state
        rowBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(64, rowBytes), alignment: 64)
    }

    deinit { rowBuffer.deallocate() }

    /// Query heads per work item, set by ``dispatch(layer:n:startPos:pool:)``.
    private(set) var headsPerItem = 1

    /// Runs the layer's attention for `n` positions from `startPos` on `pool`.
    func dispatch(layer: Int, n: Int, startPos: Int, pool: ThreadPool) {
        self.layer = layer
        self.n = n
        self.startPos = startPos
        let group = c.heads / c.kvHeads
        headsPerItem = AttentionSplit.headsPerItem(group: group, kvHeads: c.kvHeads, n: n, threads: pool.threads)
        let items = n * c.kvHeads * ((group + headsPerItem - 1) / headsPerItem)
        pool.run(job: self, parts: min(items, 4 * pool.threads))
    }

    func run(part: Int, of parts: Int) {
        let qd = c.heads * c.headDim, hd = c.headDim
        let qb = s.buffers[DecoderModel.B.q], out = s.buffers[DecoderModel.B.att]
        let kc = s.raw[2 * layer], vc = s.raw[2 * layer + 1]
        let window = c.window[layer]
        let scale = c.attentionScale
        let group = c.heads / c.kvHeads, per = headsPerItem
        let runs = (group + per - 1) / per
        let ring = slots[layer]
        for item in Parallel.share(n * c.kvHeads * runs, part, parts) {
            let b = item / (c.kvHeads * runs), kvh = item / runs % c.kvHeads, r = item % runs
            let h = kvh * group + r * per, heads = min(per, group - r * per)
            let pos = startPos + b
            let lo = window > 0 ? max(0, pos - window + 1) : 0
            // Positions lo...pos start at slot lo % ring and may wrap to slot 0.
            let first = lo % ring, count = pos - lo + 1
            let head = min(count, ring - first)
            let q = qb + b * qd + h * hd, o = out + b * qd + h * hd
            // The cache is head-major (KV head kvh's `ring` rows one after another).
            switch kv {
            case .f16:
                let k16 = kc.assumingMemoryBound(to: UInt16.self) + kvh * ring * hd
                let v16 = vc.assumingMemoryBound(to: UInt16.self) + kvh * ring * hd
                Ops.attend(q: q, heads: heads, k: k16 + first * hd, v: v16 + first * hd, stride: hd,
                           count: head, k2: k16, v2: v16, wrapped: count - head, dim: hd, scale: scale, out: o)
            case .q8:
                // Rows of [scales][values], kvRow / kvHeads bytes each.
                let rowBytes = kvRow / c.kvHeads, k8 = kc + kvh * ring * rowBytes, v8 = vc + kvh * ring * rowBytes
                Ops.attendQ8(q: q, heads: heads, k: k8 + first * rowBytes, v: v8 + first * rowBytes, rowBytes: rowBytes,
                             count: head, k2: k8, v2: v8, wrapped: count - head, dim: hd, scale: scale, out: o)
            }
        }
    }
}
