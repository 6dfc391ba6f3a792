import CTernKernels

/// Quantized matrix products: out[b][r] = W[r] . x[b] for a batch of activation vectors.
/// Work is split by four-row groups across the pool; the inner loop is the active ISA's.
public enum MatMul {
    /// One product of a dispatch: `out` has a row of `outStride` floats per batch vector, and
    /// row r of `w` writes column r.
    public struct Target {
        public var w: QMatrix
        public var out: UnsafeMutablePointer<Float>
        public var outStride: Int
        public init(_ w: QMatrix, out: UnsafeMutablePointer<Float>, outStride: Int) {
            self.w = w
            self.out = out
            self.outStride = outStride
        }
    }

    /// `out` has `batch` rows of `outStride` floats; row r of W writes column r.
    public static func run(_ w: QMatrix, _ x: QuantizedActivations, batch: Int, out: UnsafeMutablePointer<Float>,
                           outStride: Int, parallel: Parallel, isa: KernelISA = .active, parts: Int? = nil) {
        run(Target(w, out: out, outStride: outStride), nil, nil, x, batch: batch, parallel: parallel, isa: isa, parts: parts)
    }

    /// Up to three products of the same activations (Q, K and V; gate and up) in one dispatch:
    /// their row groups are split over the pool as one range, so the threads meet once instead
    /// of once per matrix. Allocation-free. `parts` overrides ``parts(bytes:groups:batch:threads:)``
    /// (1: on the calling thread alone, the pool not woken).
    public static func run(_ t0: Target, _ t1: Target?, _ t2: Target?, _ x: QuantizedActivations, batch: Int,
                           parallel: Parallel, isa: KernelISA = .active, parts: Int? = nil) {
        precondition(batch <= x.capacity)
        let job = parallel.matmul
        job.acts = x.cAct
        job.batch = batch
        job.isa = isa
        job.count = 0
        job.add(t0, cols: x.cols)
        if let t1 { job.add(t1, cols: x.cols) }
        if let t2 { job.add(t2, cols: x.cols) }
        let n = parts ?? Self.parts(bytes: job.bytes, groups: job.groups, batch: batch, threads: parallel.threads,
                                    pairKernels: isa == .avx512vnni)
        parallel.pool.run(job: job, parts: n)
    }

    /// Bytes of weights per part in decoding, above which a dispatch is cut into more parts than
    /// threads.
    public static let partBytes = 1 << 20

    /// Bytes of weights per part, at least, for a batch of 2-``smallBatchMax`` vectors where the
    /// kernels run groups in pairs (AVX-512).
    public static let smallBatchPartBytes = 256 << 10
    /// The largest batch below the AVX-512 pair kernels' `TERN_PAIR_MIN_BATCH` (tern_kernels.h): a
    /// verification pass of up to 6 drafts.
    public static let smallBatchMax = Int(TERN_PAIR_MIN_BATCH) - 1

    /// How many parts a dispatch over `bytes` of weights in `groups` row groups is cut into,
    /// never parts of fewer than four groups, a multiple of the thread count otherwise.
    /// - Decoding one vector is a stream over the weights: one part per thread up to `partBytes`
    ///   per thread, then up to four per thread (so a descheduled thread holds up little). Each
    ///   part starts a new read stream the hardware prefetcher has to pick up, and each claim is an
    ///   atomic on a shared line: cutting SmolLM2-135M's 0.2-1 MB matrices into 8 parts instead of
    ///   2 cost 12% of its decode speed at 2 threads (257.6 vs 306.1 t/s alternating, AVX-512 VM).
    /// - A batch of 8 and more (prefill) is compute: four parts per thread balance it best.
    /// - A batch of 2-7 (a verification pass) where `pairKernels`: parts of at least
    ///   `smallBatchPartBytes`, up to four per thread. Below 8 vectors the pair kernels pair a
    ///   part's first half with its second only if the halves lie 64 KB apart
    ///   (PAIR_MIN_DISTANCE_SMALL; 128 KB when this was measured), else they run four-row groups,
    ///   which take twice the instructions per weight; four parts per thread cut small models'
    ///   matrices below that. With the set kernels (MatMulJob.run), which pair a part's groups
    ///   across Q, K and V or gate and up, a pass of 2-7 rows took
    ///   0.75-0.87x the time on SmolLM2-135M and 0.80-0.89x for 4-7 rows on Gemma 3 270M, the
    ///   Qwen2.5-Coder models 0.90-1.02x (Zen 4 VM, `tern bench --batch-sweep -t 2`, 6-8
    ///   alternating runs, medians of the paired ratios; bench/README.md).
    public static func parts(bytes: Int, groups: Int, batch: Int, threads: Int, pairKernels: Bool = false) -> Int {
        let perThread: Int
        if batch == 1 {
            perThread = max(1, min(4, bytes / partBytes / threads))
        } else if pairKernels && batch <= smallBatchMax {
            perThread = max(1, min(4, bytes / smallBatchPartBytes / threads))
        } else {
            perThread = 4
        }
        return max(1, min(perThread * threads, groups / 4))
    }
}

/// One dispatch's parameters, set before each run: up to three products, whose row groups
/// form one range 0..<groups (target i owns start[i]..<start[i + 1]); each part is a share of it.
final class MatMulJob: PoolJob, @unchecked Sendable {
    /// Fixed slots, not an array: setting them allocates nothing.
    private var targets: (MatMul.Target, MatMul.Target, MatMul.Target)
    private var fns: (tern_gemm_fn?, tern_gemm_fn?, tern_gemm_fn?) = (nil, nil, nil)
    private var start = (0, 0, 0)
    /// The targets as the set kernels (ISA.gemmSet) take them.
    private let members = UnsafeMutablePointer<tern_gemm_part>.allocate(capacity: 3)
    var count = 0
    var acts = tern_acts()
    var batch = 0
    var isa = KernelISA.scalar
    /// Total row groups and weight bytes of the current targets.
    var groups: Int { count == 0 ? 0 : slot(count - 1).start + slot(count - 1).target.w.groups }
    private(set) var bytes = 0

    init() {
        let none = MatMul.Target(QMatrix(kind: .q8, rows: 1, cols: 32, base: UnsafeRawPointer(bitPattern: 64)!),
                                 out: UnsafeMutablePointer<Float>(bitPattern: 64)!, outStride: 0)
        targets = (none, none, none)
    }

    deinit { members.deallocate() }

    func add(_ t: MatMul.Target, cols: Int) {
        precondition(count < 3 && t.w.cols == cols)
        let first = groups, fn = isa.gemm(t.w.kind)
        switch count {
        case 0: targets.0 = t; fns.0 = fn; start.0 = first; bytes = 0
        case 1: targets.1 = t; fns.1 = fn; start.1 = first
        default: targets.2 = t; fns.2 = fn; start.2 = first
        }
        members[count] = tern_gemm_part(w: t.w.base.assumingMemoryBound(to: UInt8.self), rows: t.w.rows, out: t.out,
                                        out_stride: t.outStride)
        bytes += t.w.byteSize
        count += 1
    }

    @inline(__always) private func slot(_ i: Int) -> (target: MatMul.Target, fn: tern_gemm_fn?, start: Int) {
        switch i {
        case 0: (targets.0, fns.0, start.0)
        case 1: (targets.1, fns.1, start.1)
        default: (targets.2, fns.2, start.2)
        }
    }

    func run(part: Int, of parts: Int) {
        let share = Parallel.share(groups, part, parts)
        var i = 0
        while i < count {
            // Targets i ..< e are consecutive ones of one kind: at 2-7 vectors the set kernel takes
            // their groups in this part as one range, paired across it (it declines where the
            // range is too short for pairs); otherwise, or declined, each target's kernel its own.
            var e = i + 1
            while e < count && slot(e).target.w.kind == slot(i).target.w.kind { e += 1 }
            if batch > 1 && batch <= MatMul.smallBatchMax, let setFn = isa.gemmSet(slot(i).target.w.kind) {
                let first = slot(i).start, end = slot(e - 1).start + slot(e - 1).target.w.groups, w = slot(i).target.w
                let lo = max(share.lowerBound, first), hi = min(share.upperBound, end)
                let ran = lo < hi && withUnsafePointer(to: acts) { a in
                    setFn(members + i, Int32(e - i), w.groupBytes, lo - first, hi - first, w.blocks, a, Int32(batch)) != 0
                }
                if ran { i = e; continue }
            }
            for k in i..<e { runTarget(k, share) }
            i = e
        }
    }

    /// Target i's groups in `share`, by its kind's kernel.
    @inline(__always) private func runTarget(_ i: Int, _ share: Range<Int>) {
        let (t, fn, first) = slot(i)
        let lo = max(share.lowerBound, first), hi = min(share.upperBound, first + t.w.groups)
        if lo >= hi { return }
        let g = (lo - first)..<(hi - first)
        if let fn {
            withUnsafePointer(to: acts) { a in
                fn(t.w.base.assumingMemoryBound(to: UInt8.self), t.w.groupBytes, g.lowerBound, g.upperBound, t.w.rows,
                   t.w.blocks, a, Int32(batch), t.out, t.outStride)
            }
        } else {
            portable(t, g)
        }
    }

    /// The Swift paths (scalar reference and SIMD), reading the same activations.
    func portable(_ t: MatMul.Target, _ groups: Range<Int>) {
        let w = t.w
        let q = UnsafeMutablePointer(mutating: acts.q!), sc = UnsafeMutablePointer(mutating: acts.scale!)
        let ss = UnsafeMutablePointer(mutating: acts.ssum!)
        let cols = acts.q_stride, nb = acts.s_stride
        for g in groups {
            let grp = w.group(g)
            let valid = min(4, w.rows - 4 * g)
            for b in 0..<batch {
                let v = QuantizedVector(q: q + b * cols, scale: sc + b * nb, scaledSum: ss + b * nb)
                let dst = t.out + b * t.outStride + 4 * g
                if isa == .swiftSIMD {
                    QuantSIMD.group(w.kind, grp, blocks: w.blocks, v, valid: valid, out: dst, stride: 1)
                    continue
                }
                for lane in 0..<valid { dst[lane] = w.referenceDot(4 * g + lane, v) }
            }
        }
    }
}
