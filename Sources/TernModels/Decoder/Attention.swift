import TernKernels

/// Causal GQA attention for `n` new positions over the layer's cache. A work item is one
/// position and a run of the query heads that share a KV head (all of them unless that leaves
/// threads idle): each pass over a K/V row serves the whole run, in place (no copies), and
/// windowed layers read only the last `window` positions.
///
/// When a decode step has fewer KV heads than threads, a long context is attended in parts
/// (``AttentionSplit/contextParts(items:count:threads:)``), each part's softmax state merged into
/// the next in order. A decode step (one position) makes each part an item of its own, so that
/// the threads share a KV head's context; a batch (prefill, verification) runs a position's parts
/// in its item. Either way the same parts are merged in the same order, so the bits do not depend
/// on the batch and speculative decoding's verification reproduces plain decoding.
/// Preallocated per sequence so dispatching allocates nothing.
final class AttentionJob: PoolJob, @unchecked Sendable {
    let c: DecoderConfig
    unowned(unsafe) let s: ModelState
    var layer = 0, n = 0, startPos = 0, threads = 1
    /// One row group of the LM head or of an untied embedding, for the embedding lookup when it
    /// is read from the file.
    let rowBuffer: UnsafeMutableRawPointer
    let kv: KVPrecision
    /// Bytes of one cached K or V vector (all KV heads of a position).
    let kvRow: Int

    /// A decode step's parts: part p's unnormalized rows of all heads
    /// ([maxContextParts][heads][headDim]) and softmax states ([maxContextParts][heads][2]).
    let partRows: UnsafeMutablePointer<Float>
    let partStates: UnsafeMutablePointer<Float>
    /// A batch item's parts, per pool part: rows [maxContextParts][group][headDim], then states
    /// [maxContextParts][group][2].
    private var itemScratch: UnsafeMutablePointer<Float>
    private var scratchParts = 0
    /// Parts each item of this dispatch is (1: whole contexts, the items' own parts if long).
    private(set) var contextParts = 1
    /// Query heads per work item, set by ``dispatch(layer:n:startPos:pool:)``.
    private(set) var headsPerItem = 1

    init(config: DecoderConfig, rowBytes: Int, kv: KVPrecision, state: ModelState) {
        c = config
        self.kv = kv
        kvRow = config.kvHeads * kv.rowBytes(dim: config.headDim)
        s = state
        rowBuffer = UnsafeMutableRawPointer.allocate(byteCount: max(64, rowBytes), alignment: 64)
        let parts = AttentionSplit.maxContextParts
        partRows = .allocate(capacity: parts * config.heads * config.headDim)
        partStates = .allocate(capacity: parts * config.heads * 2)
        itemScratch = .allocate(capacity: 1)
    }

    /// Positions layer `l`'s K/V holds (position p lives in slot p % slots(l)), as the state records them.
    func slots(_ l: Int) -> Int { s.kvLayers[l].slots }

    deinit {
        rowBuffer.deallocate()
        partRows.deallocate()
        partStates.deallocate()
        itemScratch.deallocate()
    }

    /// Runs the layer's attention for `n` positions from `startPos` on `pool`.
    func dispatch(layer: Int, n: Int, startPos: Int, pool: ThreadPool) {
        self.layer = layer
        self.n = n
        self.startPos = startPos
        threads = pool.threads
        let group = c.heads / c.kvHeads, whole = min(group, Ops.attendMaxHeads)
        contextParts = n == 1 ? splitParts(context(startPos).count) : 1
        headsPerItem = contextParts > 1 ? whole
            : AttentionSplit.headsPerItem(group: group, kvHeads: c.kvHeads, n: n, threads: pool.threads)
        let items = n * c.kvHeads * ((group + headsPerItem - 1) / headsPerItem) * contextParts
        let poolParts = min(items, 4 * pool.threads)
        if 4 * pool.threads > scratchParts {
            // Once per sequence (and thread count): room for the most parts a dispatch has.
            itemScratch.deallocate()
            itemScratch = .allocate(capacity: 4 * pool.threads * scratchPerPart)
            scratchParts = 4 * pool.threads
        }
        pool.run(job: self, parts: poolParts)
        if contextParts > 1 {
            let hd = c.headDim, out = s.buffers[DecoderModel.B.att]
            for h in 0..<c.heads {
                Ops.combineAttention(parts: contextParts, rows: partRows + h * hd, rowStride: c.heads * hd,
                                     states: partStates + 2 * h, stateStride: 2 * c.heads, dim: hd, out: out + h * hd)
            }
        }
    }

    /// Floats of ``itemScratch`` per pool part.
    private var scratchPerPart: Int { AttentionSplit.maxContextParts * (c.heads / c.kvHeads) * (c.headDim + 2) }

    /// A decode step's items when each is a KV head's whole group (runs of up to attendMaxHeads).
    private var decodeItems: Int {
        let group = c.heads / c.kvHeads, whole = min(group, Ops.attendMaxHeads)
        return c.kvHeads * ((group + whole - 1) / whole)
    }

    /// Parts a position's context of `count` positions is attended in.
    @inline(__always) func splitParts(_ count: Int) -> Int {
        AttentionSplit.contextParts(items: decodeItems, count: count, threads: threads)
    }

    /// The positions position `pos` attends to: the last `window` of them on a windowed layer.
    @inline(__always) func context(_ pos: Int) -> Range<Int> {
        let window = c.window[layer]
        return (window > 0 ? max(0, pos - window + 1) : 0)..<pos + 1
    }

    func run(part: Int, of parts: Int) {
        let qd = c.heads * c.headDim, hd = c.headDim
        let qb = s.buffers[DecoderModel.B.q], out = s.buffers[DecoderModel.B.att]
        let group = c.heads / c.kvHeads, per = headsPerItem
        let runs = (group + per - 1) / per, cp = contextParts
        let scratch = itemScratch + part * scratchPerPart
        for item in Parallel.share(n * c.kvHeads * runs * cp, part, parts) {
            let p = item % cp, run = item / cp
            let b = run / (c.kvHeads * runs), kvh = run / runs % c.kvHeads, r = run % runs
            let h = kvh * group + r * per, heads = min(per, group - r * per)
            let q = qb + b * qd + h * hd, positions = context(startPos + b)
            if cp > 1 {
                // One part of a decode step's context, merged after the dispatch.
                let i = p * c.heads + h
                attend(q, heads, kvh, AttentionSplit.part(p, of: cp, positions), partRows + i * hd, partStates + 2 * i)
                continue
            }
            let o = out + b * qd + h * hd, own = splitParts(positions.count)
            if own == 1 {
                attend(q, heads, kvh, positions, o, nil)
                continue
            }
            // A batch's long context: its parts one after another, combined as a decode step's are.
            let states = scratch + own * heads * hd
            for p in 0..<own {
                attend(q, heads, kvh, AttentionSplit.part(p, of: own, positions), scratch + p * heads * hd,
                       states + 2 * p * heads)
            }
            for j in 0..<heads {
                Ops.combineAttention(parts: own, rows: scratch + j * hd, rowStride: heads * hd, states: states + 2 * j,
                                     stateStride: 2 * heads, dim: hd, out: o + j * hd)
            }
        }
    }

    /// Attention of query heads h ..< h + heads (at `q`, sharing KV head `kvh`) over `positions`
    /// into `o`: normalized, or with `state` unnormalized and the softmax states there.
    @inline(__always) func attend(_ q: UnsafePointer<Float>, _ heads: Int, _ kvh: Int, _ positions: Range<Int>,
                                  _ o: UnsafeMutablePointer<Float>, _ state: UnsafeMutablePointer<Float>?) {
        let hd = c.headDim, ring = slots(layer), scale = c.attentionScale
        let kc = s.raw[2 * layer], vc = s.raw[2 * layer + 1]
        // The positions start at slot `first` and may wrap to slot 0.
        let first = positions.lowerBound % ring, count = positions.count, head = min(count, ring - first)
        // The cache is head-major (KV head kvh's `ring` rows one after another).
        switch kv {
        case .f16:
            let k16 = kc.assumingMemoryBound(to: UInt16.self) + kvh * ring * hd
            let v16 = vc.assumingMemoryBound(to: UInt16.self) + kvh * ring * hd
            Ops.attend(q: q, heads: heads, k: k16 + first * hd, v: v16 + first * hd, stride: hd, count: head,
                       k2: k16, v2: v16, wrapped: count - head, dim: hd, scale: scale, out: o, state: state)
        case .q8:
            // Rows of [scales][values], kvRow / kvHeads bytes each.
            let rowBytes = kvRow / c.kvHeads, k8 = kc + kvh * ring * rowBytes, v8 = vc + kvh * ring * rowBytes
            Ops.attendQ8(q: q, heads: heads, k: k8 + first * rowBytes, v: v8 + first * rowBytes, rowBytes: rowBytes,
                         count: head, k2: k8, v2: v8, wrapped: count - head, dim: hd, scale: scale, out: o,
                         state: state)
        }
    }
}
