/// Quantized matrix products: out[b][r] = W[r] . x[b] for a batch of activation vectors.
public enum MatMul {
    /// `out` has `batch` rows of `outStride` floats; row r of W writes column r.
    public static func run(_ w: QMatrix, _ x: QuantizedActivations, batch: Int,
                           out: UnsafeMutablePointer<Float>, outStride: Int, parallel: Parallel) {
        precondition(x.cols == w.cols && batch <= x.capacity)
        let blocks = w.cols / 32
        let o = UnsafeSendable(out)
        parallel.forEach(w.rows, minChunk: 8) { rows in
            for r in rows {
                let row = w.row(r)
                for b in 0..<batch {
                    let v = x.vector(b)
                    o.value[b * outStride + r] = w.kind == .q8 ? Q8.dot(row, v, blocks: blocks) : Q4.dot(row, v, blocks: blocks)
                }
            }
        }
    }
}
