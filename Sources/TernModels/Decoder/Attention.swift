import TernKernels

/// Causal GQA attention for `n` new positions over the layer's cache, one (position, head) pair
/// per work item; query heads share their K/V head in place (no copies), and windowed layers
/// read only the last `window` positions. Preallocated per sequence so dispatching allocates
/// nothing.
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

    func run(part: Int, of parts: Int) {
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, hd = c.headDim
        let qb = s.buffers[DecoderModel.B.q], out = s.buffers[DecoderModel.B.att]
        let kc = s.raw[2 * layer], vc = s.raw[2 * layer + 1]
        let window = c.window[layer]
        let scale = c.attentionScale
        let group = c.heads / c.kvHeads
        let ring = slots[layer]
        for job in Parallel.share(n * c.heads, part, parts) {
            let b = job / c.heads, h = job % c.heads
            let pos = startPos + b
            let lo = window > 0 ? max(0, pos - window + 1) : 0
            let kvOff = (h / group) * hd
            // Positions lo...pos start at slot lo % ring and may wrap to slot 0.
            let first = lo % ring, count = pos - lo + 1
            let head = min(count, ring - first)
            switch kv {
            case .f16:
                let k16 = kc.assumingMemoryBound(to: UInt16.self), v16 = vc.assumingMemoryBound(to: UInt16.self)
                Ops.attend(q: qb + b * qd + h * hd, k: k16 + first * kvd + kvOff, v: v16 + first * kvd + kvOff, stride: kvd,
                           count: head, k2: k16 + kvOff, v2: v16 + kvOff, wrapped: count - head, dim: hd, scale: scale,
                           out: out + b * qd + h * hd)
            case .q8:
                // Each KV head's row is its own [scales][values] block of kvRow / kvHeads bytes.
                let hr = kvRow / c.kvHeads, ho = (h / group) * hr
                Ops.attendQ8(q: qb + b * qd + h * hd, k: kc + first * kvRow + ho, v: vc + first * kvRow + ho, rowBytes: kvRow,
                             count: head, k2: kc + ho, v2: vc + ho, wrapped: count - head, dim: hd, scale: scale,
                             out: out + b * qd + h * hd)
            }
        }
    }
}
