import CTernKernels
import Foundation

/// Work for a ``ThreadPool``, split into parts. Hot-path jobs are preallocated objects whose
/// fields are set before each `run(job:parts:)`, so dispatching allocates nothing (a closure
/// handed to another thread needs a heap context).
public protocol PoolJob: AnyObject {
    /// Called once for each part in 0..<parts, on whichever thread claimed it; parts run
    /// concurrently, so each must touch only its own share of the output.
    func run(part: Int, of parts: Int)
}

/// A persistent pool of worker threads that degrades gracefully when it does not have the CPU
/// to itself.
///
/// A job is cut into more parts than threads; every thread, the caller included, claims parts
/// until none is left (dynamic scheduling, as in OpenMP's `schedule(dynamic)`), so a worker the
/// scheduler took away delays the job by at most the part it holds, and one that never got to
/// run delays it not at all: the caller does its share. Waiting threads spin for a bounded time,
/// then sleep on a futex (`tern_pool.h`) and leave the core to others. The spin budget adapts
/// per thread: it doubles after a wait that ended while spinning and halves after one that had
/// to sleep, so on a quiet machine the microsecond gaps between the ops of one token are bridged
/// by spinning and under load the threads stop burning the CPU someone else needs.
/// The pool never has more threads than the CPUs the process may run on (``usableThreads(_:)``).
/// The per-job path creates no thread, allocates nothing and takes no lock.
public final class ThreadPool: @unchecked Sendable {
    public let threads: Int
    private let shared: Shared
    private var generation: UInt32 = 0
    private var callerSpin = Shared.maxSpin

    /// State the workers share with the pool. Workers own it strongly, so the pool can be freed
    /// while they wind down.
    private final class Shared: @unchecked Sendable {
        static let minSpin: UInt32 = 256
        static let maxSpin: UInt32 = 1 << 15

        /// The next spin budget: halved after a wait that had to sleep, doubled after one that
        /// ended while spinning, within minSpin...maxSpin.
        static func adapt(_ spin: UInt32, slept: Bool) -> UInt32 {
            slept ? max(minSpin, spin / 2) : min(maxSpin, spin * 2)
        }
        let sync: OpaquePointer
        /// The current job and its part count, written only while no part of a job is claimable.
        /// Not retained: `run(job:parts:)` keeps the job alive until every part has finished, and
        /// a worker touches it only after claiming a part. Reference counting here would bounce
        /// the job's header between cores twice per dispatch.
        unowned(unsafe) var job: PoolJob?
        var parts: UInt32 = 1

        init() {
            guard let s = tern_pool_sync_create() else { fatalError("tern: out of memory creating the thread pool") }
            sync = s
        }

        deinit { tern_pool_sync_destroy(sync) }

        func worker() {
            var seen: UInt32 = 0
            var spin = Shared.maxSpin
            var slept: Int32 = 0
            while true {
                let gen = tern_pool_wait_job(sync, seen, spin, &slept)
                spin = Shared.adapt(spin, slept: slept != 0)
                if tern_pool_stopping(sync) != 0 { return }
                seen = gen
                work(gen)
            }
        }

        /// Claims and runs parts of job `gen` until none is left.
        @inline(__always) func work(_ gen: UInt32) {
            while true {
                let p = tern_pool_claim(sync, gen)
                if p < 0 { return }
                // A successful claim means the job is still current: `job` and `parts` are its.
                let n = parts
                job?.run(part: Int(p), of: Int(n))
                tern_pool_finish(sync, n)
            }
        }
    }

    /// The CPUs this process may run on (its affinity mask), at least 1.
    public static var availableCPUs: Int { Int(tern_available_cpus()) }

    /// `requested` threads capped to ``availableCPUs``: more threads than CPUs only take turns
    /// on them, and every barrier then waits for a scheduler time slice.
    public static func usableThreads(_ requested: Int) -> Int { max(1, min(requested, availableCPUs)) }

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
            let trim = { (s: String) in s.trimmingCharacters(in: .whitespacesAndNewlines) }
            cores.insert(trim(pkg) + ":" + trim(core))
        }
        return max(1, min(logical, cores.count, availableCPUs))
    }

    /// A pool of `threads` threads (the caller counts as one), capped by ``usableThreads(_:)``.
    public init(threads: Int) {
        self.threads = ThreadPool.usableThreads(threads)
        let s = Shared()
        shared = s
        for _ in 1..<self.threads {
            let th = Thread { s.worker() }
            th.stackSize = 1 << 20
            th.start()
        }
    }

    deinit { tern_pool_stop(shared.sync) }

    /// Runs `job` over `parts` parts (default: four per thread) on the pool, the caller
    /// included, and returns when all have finished. Allocation-free.
    public func run(job: PoolJob, parts: Int? = nil) {
        let n = max(1, min(parts ?? 4 * threads, Int(UInt32.max >> 1)))
        if threads == 1 || n == 1 {
            for p in 0..<n { job.run(part: p, of: n) }
            return
        }
        let s = shared
        generation &+= 1
        if generation & 0x8000_0000 != 0 { generation = 1 }  // the high bit is the stop signal's
        s.job = job
        s.parts = UInt32(n)
        tern_pool_publish(s.sync, generation, UInt32(n))
        s.work(generation)
        let slept = tern_pool_wait_done(s.sync, UInt32(n), callerSpin)
        callerSpin = Shared.adapt(callerSpin, slept: slept != 0)
        s.job = nil
    }

    /// Tells the workers that the caller will run alone for a while (a streamed chunk of weights
    /// multiplied on the calling thread, say), so that they sleep now instead of spinning out
    /// their budget on a core the caller's helpers need. The next job wakes them.
    public func rest() {
        if threads > 1 { tern_pool_rest(shared.sync) }
    }

    /// Runs `body(part)` for every part in 0..<parts (default: one per thread), concurrently,
    /// and waits. Convenient, but allocates a closure context per call: hot paths use
    /// ``run(job:parts:)``.
    public func run(parts: Int? = nil, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let job = ClosureJob(body)
            run(job: job, parts: parts ?? threads)
        }
    }
}

private final class ClosureJob: PoolJob {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
    func run(part: Int, of parts: Int) { body(part) }
}
