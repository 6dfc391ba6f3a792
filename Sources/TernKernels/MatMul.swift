import CTernKernels

/// Quantized matrix products: out[b][r] = W[r] . x[b] for a batch of activation vectors.
/// Work is split by four-row groups across the pool; the inner loop is the active ISA's.
public enum MatMul {
    /// `out` has `batch` rows of `outStride` floats; row r of W writes column r.
    public static func run(_ w: QMatrix, _ x: QuantizedActivations, batch: Int, out: UnsafeMutablePointer<Float>,
                           outStride: Int, parallel: Parallel, isa: KernelISA = .active) {
        precondition(x.cols == w.cols && batch <= x.capacity)
        let job = parallel.matmul
        job.w = w
        job.acts = x.cAct
        job.batch = batch
        job.out = out
        job.outStride = outStride
        job.isa = isa
        job.fn = isa.gemm(w.kind)
        // Parts of at least four groups; four per thread, so a descheduled thread holds up little.
        parallel.pool.run(job: job, parts: min(4 * parallel.threads, max(1, w.groups / 4)))
    }
}

/// One MatMul's parameters, set before each dispatch; each part is a share of the row groups.
final class MatMulJob: PoolJob, @unchecked Sendable {
    var w = QMatrix(kind: .q8, rows: 1, cols: 32, base: UnsafeRawPointer(bitPattern: 64)!)
    var acts = tern_acts()
    var batch = 0
    var out = UnsafeMutablePointer<Float>(bitPattern: 64)!
    var outStride = 0
    var isa = KernelISA.scalar
    var fn: tern_gemm_fn?

    func run(part: Int, of parts: Int) {
        let g = Parallel.share(w.groups, part, parts)
        if g.isEmpty { return }
        if let fn {
            withUnsafePointer(to: acts) { a in
                fn(w.base.assumingMemoryBound(to: UInt8.self), w.groupBytes, g.lowerBound, g.upperBound, w.rows, w.blocks,
                   a, Int32(batch), out, outStride)
            }
            return
        }
        portable(g)
    }

    /// The Swift paths (scalar reference and SIMD), reading the same activations.
    func portable(_ groups: Range<Int>) {
        let q = UnsafeMutablePointer(mutating: acts.q!), sc = UnsafeMutablePointer(mutating: acts.scale!)
        let ss = UnsafeMutablePointer(mutating: acts.ssum!)
        let cols = acts.q_stride, nb = acts.s_stride
        for g in groups {
            let grp = w.group(g)
            let valid = min(4, w.rows - 4 * g)
            for b in 0..<batch {
                let v = QuantizedVector(q: q + b * cols, scale: sc + b * nb, scaledSum: ss + b * nb)
                let dst = out + b * outStride + 4 * g
                if isa == .swiftSIMD {
                    QuantSIMD.group(w.kind, grp, blocks: w.blocks, v, valid: valid, out: dst, stride: 1)
                    continue
                }
                for lane in 0..<valid {
                    switch w.kind {
                    case .q8: dst[lane] = Q8.dot(grp, lane: lane, v, blocks: w.blocks)
                    case .q4: dst[lane] = Q4.dot(grp, lane: lane, v, blocks: w.blocks)
                    case .q5: dst[lane] = Q5.dot(grp, lane: lane, v, blocks: w.blocks)
                    case .q6: dst[lane] = Q6.dot(grp, lane: lane, v, blocks: w.blocks)
                    case .q4k: dst[lane] = Q4K.dot(grp, lane: lane, v, blocks: w.blocks)
                    }
                }
            }
        }
    }
}
