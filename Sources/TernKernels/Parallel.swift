/// Splits work over a persistent ``ThreadPool``. Kernels see only `forEach`.
public final class Parallel: @unchecked Sendable {
    public let pool: ThreadPool
    public var threads: Int { pool.threads }
    /// Reused by every ``MatMul/run(_:_:batch:out:outStride:parallel:isa:)`` on this pool.
    let matmul = MatMulJob()

    public init(threads: Int) { pool = ThreadPool(threads: threads) }

    /// The sub-range of `0..<total` that thread `t` of `parts` handles.
    @inline(__always) public static func share(_ total: Int, _ t: Int, _ parts: Int) -> Range<Int> {
        total * t / parts..<total * (t + 1) / parts
    }

    /// Calls `body` on disjoint sub-ranges covering `0..<total` (up to four per thread, at
    /// least `minChunk` items each) in parallel, and waits.
    public func forEach(_ total: Int, minChunk: Int = 16, _ body: (Range<Int>) -> Void) {
        let parts = min(4 * threads, max(1, total / max(1, minChunk)))
        if parts <= 1 || threads == 1 {
            body(0..<total)
            return
        }
        pool.run(parts: parts) { t in
            let r = Parallel.share(total, t, parts)
            if !r.isEmpty { body(r) }
        }
    }
}

/// Carries a non-Sendable value (a pointer into buffers that the work items use disjointly)
/// into a parallel closure.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ v: T) { value = v }
}
