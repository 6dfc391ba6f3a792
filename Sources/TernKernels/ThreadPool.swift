import CTernKernels
import Foundation
import Synchronization

/// A persistent pool of worker threads. `run` hands every thread (the caller is thread 0) the
/// same job and returns when all have finished. Workers spin briefly between jobs (the gaps
/// between ops of one token are microseconds), then sleep on a condition variable. The per-job
/// path creates no thread and allocates nothing; it takes a lock only to wake sleepers.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let shared: Shared

    /// State the workers share with the pool. Workers own it strongly, so the pool can be freed
    /// while they wind down.
    private final class Shared: @unchecked Sendable {
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        var job: ((Int) -> Void)?
        let cond = NSCondition()

        func worker(_ index: Int) {
            var seen = 0
            while true {
                var spins = 0
                while generation.load(ordering: .acquiring) == seen {
                    if stopping.load(ordering: .acquiring) { return }
                    spins += 1
                    if spins < 20_000 {
                        tern_cpu_relax()
                    } else {
                        cond.lock()
                        while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .acquiring) { cond.wait() }
                        cond.unlock()
                    }
                }
                if stopping.load(ordering: .acquiring) { return }
                seen = generation.load(ordering: .acquiring)
                job?(index)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    public init(threads: Int) {
        self.threads = max(1, threads)
        let s = Shared()
        shared = s
        for t in 1..<self.threads {
            let th = Thread { s.worker(t) }
            th.stackSize = 1 << 20
            th.start()
        }
    }

    deinit {
        shared.stopping.store(true, ordering: .releasing)
        shared.cond.lock()
        shared.cond.broadcast()
        shared.cond.unlock()
    }

    /// Runs `body(t)` for every thread index t in 0..<threads, concurrently, and waits.
    public func run(_ body: (Int) -> Void) {
        if threads == 1 {
            body(0)
            return
        }
        let s = shared
        withoutActuallyEscaping(body) { body in
            s.job = body
            s.pending.store(threads - 1, ordering: .releasing)
            s.generation.add(1, ordering: .releasing)
            s.cond.lock()
            s.cond.broadcast()
            s.cond.unlock()
            body(0)
            while s.pending.load(ordering: .acquiring) != 0 { tern_cpu_relax() }
            s.job = nil
        }
    }
}
