import Foundation

/// Single-thread throughput of the quantized GEMM on in-cache data, per ISA path: separates
/// kernel speed from memory bandwidth and thread-pool effects.
public enum KernelBenchmark {
    public struct Row: Sendable {
        public let isa: KernelISA
        public let kind: QuantKind
        public let batch: Int
        /// Multiply-accumulates per second (1e9).
        public let gmacs: Double
    }

    /// Activation vectors timed by default: decoding, a prefill tile, a verification pass, prefill.
    public static let batches = [1, 4, 8, 16, 64]

    public static func run(isas: [KernelISA] = KernelISA.supported, batches: [Int] = KernelBenchmark.batches,
                           rows: Int = 512, cols: Int = 768, seconds: Double = 0.2) -> [Row] {
        var out: [Row] = []
        let par = Parallel(threads: 1)
        for kind in QuantKind.allCases {
            let w = randomWeights(kind, rows: rows, cols: cols)
            w.withUnsafeBytes { wb in
            let m = QMatrix(kind: kind, rows: rows, cols: cols, base: wb.baseAddress!)
            for batch in batches {
                let acts = randomActivations(cols: cols, batch: batch)
                let o = UnsafeMutablePointer<Float>.allocate(capacity: batch * rows)
                defer { o.deallocate() }
                for isa in isas {
                    var iters = 0
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    var dt = 0.0
                    while dt < seconds {
                        MatMul.run(m, acts, batch: batch, out: o, outStride: rows, parallel: par, isa: isa)
                        iters += 1
                        dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                    }
                    out.append(Row(isa: isa, kind: kind, batch: batch, gmacs: Double(iters * rows * cols * batch) / dt / 1e9))
                }
            }
            }
        }
        return out
    }

    /// The GEMM's speed (multiply-accumulates per second) on one vector, as decoding runs it, on
    /// `threads` threads and the active ISA, over weights that stay in cache (1024 x 768: 0.8 MB
    /// as q8): what a decode step's products cost when the kernels, not memory, bound it, as on
    /// AVX2 without VNNI at 30+ GB/s. Best of `passes` runs of 64 products.
    public static func decodeRate(_ kind: QuantKind, threads: Int, passes: Int = 5) -> Double {
        let rows = 1024, cols = 768
        let w = randomWeights(kind, rows: rows, cols: cols), acts = randomActivations(cols: cols, batch: 1)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: rows)
        defer { out.deallocate() }
        let par = Parallel(threads: max(1, threads)), runs = 64
        return w.withUnsafeBytes { wb in
            let m = QMatrix(kind: kind, rows: rows, cols: cols, base: wb.baseAddress!)
            var best = Double.infinity
            for _ in 0..<passes {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<runs {
                    MatMul.run(m, acts, batch: 1, out: out, outStride: rows, parallel: par, isa: KernelISA.active)
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return Double(runs * rows * cols) / best
        }
    }

    /// A rows x cols matrix of uniform values in [-1, 1) quantized as `kind`.
    static func randomWeights(_ kind: QuantKind, rows: Int, cols: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        let f = (0..<rows * cols).map { _ in Float.random(in: -1..<1, using: &rng) }
        return f.withUnsafeBufferPointer { QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols) }
    }

    /// `batch` vectors of `cols` uniform values in [-1, 1), quantized.
    static func randomActivations(cols: Int, batch: Int) -> QuantizedActivations {
        var rng = SystemRandomNumberGenerator()
        let acts = QuantizedActivations(cols: cols, capacity: batch)
        let xs = (0..<batch * cols).map { _ in Float.random(in: -1..<1, using: &rng) }
        xs.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
        return acts
    }
}
