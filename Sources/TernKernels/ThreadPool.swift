import CTernKernels
import Foundation
import Synchronization

/// Work for every thread of a ``ThreadPool``. Hot-path jobs are preallocated objects whose
/// fields are set before each `run(job:)`, so dispatching allocates nothing (a closure handed to
/// another thread needs a heap context).
public protocol PoolJob: AnyObject {
    /// Called once on each thread, `thread` in 0..<threads.
    func run(thread: Int, threads: Int)
}

/// A persistent pool of worker threads. `run` hands every thread (the caller is thread 0) the
/// same job and returns when all have finished. Workers spin briefly between jobs (the gaps
/// between ops of one token are microseconds), then sleep on a condition variable. The per-job
/// path creates no thread, allocates nothing and takes no lock unless a worker went to sleep.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let shared: Shared

    /// State the workers share with the pool. Workers own it strongly, so the pool can be freed
    /// while they wind down.
    private final class Shared: @unchecked Sendable {
        let generation = Atomic<Int>(0)
        let pending = Atomic<Int>(0)
        let stopping = Atomic<Bool>(false)
        let sleepers = Atomic<Int>(0)
        /// The current job, set while `run` waits. A strong reference: a worker's release of
        /// its copy may land after it reported done, so the job must not be freed under it
        /// (a transient job, such as a ClosureJob, is then freed by whichever lets go last).
        var job: PoolJob?
        var threads = 1
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
                        // Announce the sleep before re-checking: `run` bumps the generation before
                        // reading `sleepers`, so either it sees us and wakes us, or we see its job.
                        cond.lock()
                        sleepers.add(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen && !stopping.load(ordering: .acquiring) { cond.wait() }
                        sleepers.subtract(1, ordering: .sequentiallyConsistent)
                        cond.unlock()
                    }
                }
                if stopping.load(ordering: .acquiring) { return }
                seen = generation.load(ordering: .acquiring)
                job?.run(thread: index, threads: threads)
                pending.subtract(1, ordering: .releasing)
            }
        }
    }

    /// Physical cores of this machine (distinct core ids on online CPUs, from sysfs), or the
    /// logical CPU count where topology is not available. The default thread count: SMT
    /// siblings share the load/store units memory-bound decoding needs.
    public static var physicalCores: Int {
        let logical = ProcessInfo.processInfo.activeProcessorCount
        var cores = Set<String>()
        for cpu in 0..<logical {
            let base = "/sys/devices/system/cpu/cpu\(cpu)/topology/"
            guard let core = try? String(contentsOfFile: base + "core_id", encoding: .utf8),
                  let pkg = try? String(contentsOfFile: base + "physical_package_id", encoding: .utf8) else { return logical }
            cores.insert(pkg.trimmingCharacters(in: .whitespacesAndNewlines) + ":" + core.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return max(1, min(logical, cores.count))
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

    /// Runs `job` on every thread (the caller is thread 0) and waits. Allocation-free.
    public func run(job: PoolJob) {
        if threads == 1 {
            job.run(thread: 0, threads: 1)
            return
        }
        let s = shared
        s.job = job
        s.threads = threads
        s.pending.store(threads - 1, ordering: .releasing)
        s.generation.add(1, ordering: .sequentiallyConsistent)
        if s.sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            s.cond.lock()
            s.cond.broadcast()
            s.cond.unlock()
        }
        job.run(thread: 0, threads: threads)
        while s.pending.load(ordering: .acquiring) != 0 { tern_cpu_relax() }
        s.job = nil
    }

    /// Runs `body(t)` for every thread index t in 0..<threads, concurrently, and waits.
    /// Convenient, but allocates a closure context per call: hot paths use ``run(job:)``.
    public func run(_ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let job = ClosureJob(body)
            run(job: job)
        }
    }
}

private final class ClosureJob: PoolJob {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
    func run(thread: Int, threads: Int) { body(thread) }
}
