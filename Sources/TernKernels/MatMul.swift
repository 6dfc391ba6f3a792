import CTernKernels

/// Quantized matrix products: out[b][r] = W[r] . x[b] for a batch of activation vectors.
/// Work is split by output rows across the pool; the inner loop is the active ISA's.
public enum MatMul {
    /// `out` has `batch` rows of `outStride` floats; row r of W writes column r.
    public static func run(_ w: QMatrix, _ x: QuantizedActivations, batch: Int, out: UnsafeMutablePointer<Float>,
                           outStride: Int, parallel: Parallel, isa: KernelISA = .active) {
        precondition(x.cols == w.cols && batch <= x.capacity)
        let blocks = w.cols / 32
        let o = UnsafeSendable(out)
        if let fn = isa.gemm(w.kind) {
            var acts = x.cAct
            let base = w.base.assumingMemoryBound(to: UInt8.self)
            withUnsafePointer(to: &acts) { ap in
                let a = UnsafeSendable(ap)
                parallel.forEach(w.rows, minChunk: 16) { rows in
                    fn(base, w.rowBytes, rows.lowerBound, rows.upperBound, blocks, a.value, Int32(batch), o.value, outStride)
                }
            }
            return
        }
        let simd = isa == .swiftSIMD
        parallel.forEach(w.rows, minChunk: 16) { rows in
            for r in rows {
                let row = w.row(r)
                for b in 0..<batch {
                    let v = x.vector(b)
                    let d: Float
                    switch (w.kind, simd) {
                    case (.q8, false): d = Q8.dot(row, v, blocks: blocks)
                    case (.q4, false): d = Q4.dot(row, v, blocks: blocks)
                    case (.q8, true): d = QuantSIMD.dotQ8(row, v, blocks: blocks)
                    case (.q4, true): d = QuantSIMD.dotQ4(row, v, blocks: blocks)
                    }
                    o.value[b * outStride + r] = d
                }
            }
        }
    }
}
