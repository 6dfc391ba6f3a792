import CTernKernels

/// Quantized matrix products: out[b][r] = W[r] . x[b] for a batch of activation vectors.
/// Work is split by four-row groups across the pool; the inner loop is the active ISA's.
public enum MatMul {
    /// `out` has `batch` rows of `outStride` floats; row r of W writes column r.
    public static func run(_ w: QMatrix, _ x: QuantizedActivations, batch: Int, out: UnsafeMutablePointer<Float>,
                           outStride: Int, parallel: Parallel, isa: KernelISA = .active) {
        precondition(x.cols == w.cols && batch <= x.capacity)
        let o = UnsafeSendable(out)
        if let fn = isa.gemm(w.kind) {
            var acts = x.cAct
            let base = w.base.assumingMemoryBound(to: UInt8.self)
            withUnsafePointer(to: &acts) { ap in
                let a = UnsafeSendable(ap)
                parallel.forEach(w.groups, minChunk: 4) { g in
                    fn(base, w.groupBytes, g.lowerBound, g.upperBound, w.rows, w.blocks, a.value, Int32(batch), o.value, outStride)
                }
            }
            return
        }
        let simd = isa == .swiftSIMD
        parallel.forEach(w.groups, minChunk: 4) { groups in
            for g in groups {
                let grp = w.group(g)
                let valid = min(4, w.rows - 4 * g)
                for b in 0..<batch {
                    let v = x.vector(b), dst = o.value + b * outStride + 4 * g
                    if simd {
                        QuantSIMD.group(w.kind, grp, blocks: w.blocks, v, valid: valid, out: dst, stride: 1)
                        continue
                    }
                    for lane in 0..<valid {
                        dst[lane] = w.kind == .q8 ? Q8.dot(grp, lane: lane, v, blocks: w.blocks) : Q4.dot(grp, lane: lane, v, blocks: w.blocks)
                    }
                }
            }
        }
    }
}
