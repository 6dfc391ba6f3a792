import Dispatch

/// Splits work over `threads` workers. (A persistent pool replaces this in the kernels issue;
/// callers only see `forEach`.)
public struct Parallel: Sendable {
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// Calls `body` on disjoint sub-ranges covering `0..<total`, in parallel, and waits.
    public func forEach(_ total: Int, minChunk: Int = 16, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, total / max(1, minChunk)))
        if parts <= 1 {
            body(0..<total)
            return
        }
        withoutActuallyEscaping(body) { body in
            let work = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { i in
                let a = total * i / parts, b = total * (i + 1) / parts
                work.value(a..<b)
            }
        }
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
