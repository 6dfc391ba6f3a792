import CTernKernels
import Foundation
import Synchronization

/// A persistent pool of worker threads. `run` hands every thread (the caller is thread 0) the
/// same job and returns when all have finished. Workers spin briefly between jobs (the gaps
/// between ops of one token are microseconds), then sleep on a condition variable. No thread
/// creation, allocation or lock on the per-job fast path except the wake-up broadcast.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var job: ((Int) -> Void)?
    private let mutex = NSCondition()

    public init(threads: Int) {
        self.threads = max(1, threads)
        for t in 1..<self.threads {
            let th = Thread { [unowned self] in self.worker(t) }
            th.stackSize = 1 << 20
            th.start()
        }
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        mutex.lock()
        mutex.broadcast()
        mutex.unlock()
    }

    private func worker(_ index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                if stopping.load(ordering: .acquiring) { return }
                spins += 1
                if spins < 20_000 {
                    spinHint()
                } else {
                    mutex.lock()
                    while generation.load(ordering: .acquiring) == seen && !stopping.load(ordering: .acquiring) { mutex.wait() }
                    mutex.unlock()
                }
            }
            if stopping.load(ordering: .acquiring) { return }
            seen = generation.load(ordering: .acquiring)
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `body(t)` for every thread index t in 0..<threads, concurrently, and waits.
    public func run(_ body: (Int) -> Void) {
        if threads == 1 {
            body(0)
            return
        }
        withoutActuallyEscaping(body) { body in
            job = body
            pending.store(threads - 1, ordering: .releasing)
            generation.add(1, ordering: .releasing)
            mutex.lock()
            mutex.broadcast()
            mutex.unlock()
            body(0)
            while pending.load(ordering: .acquiring) != 0 { spinHint() }
            job = nil
        }
    }
}

@inline(__always) func spinHint() { tern_cpu_relax() }
