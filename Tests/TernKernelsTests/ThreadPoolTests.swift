import CTernKernels
import Foundation
import Synchronization
import XCTest
import TernKernels

/// Counts how often each part of a job ran.
private final class CountingJob: PoolJob, @unchecked Sendable {
    let hits: UnsafeMutablePointer<Int>
    let capacity: Int
    var delayPart = -1
    init(capacity: Int) {
        self.capacity = capacity
        hits = .allocate(capacity: capacity)
        hits.initialize(repeating: 0, count: capacity)
    }
    deinit { hits.deallocate() }
    func run(part: Int, of parts: Int) {
        precondition(parts <= capacity && part < parts)
        if part == delayPart { usleep(20_000) }
        hits[part] += 1  // each part runs on one thread at a time, so no race on its own slot
    }
    func reset(_ n: Int) { hits.update(repeating: 0, count: n) }
}

final class ThreadPoolTests: XCTestCase {
    /// Every part of every job runs exactly once, for part counts below, at and above the
    /// thread count, over many back-to-back jobs (the decode loop's pattern).
    func testEveryPartRunsOnce() {
        let pool = ThreadPool(threads: 2)
        let job = CountingJob(capacity: 64)
        for i in 0..<20_000 {
            let parts = 1 + i % 37
            job.reset(parts)
            pool.run(job: job, parts: parts)
            for p in 0..<parts where job.hits[p] != 1 {
                XCTFail("job \(i): part \(p) of \(parts) ran \(job.hits[p]) times")
                return
            }
        }
    }

    /// A part that stalls (as a descheduled thread would) delays only itself: the job still
    /// completes with every part run once, and the jobs after it are unaffected.
    func testStalledPartCompletes() {
        let pool = ThreadPool(threads: 2)
        let job = CountingJob(capacity: 8)
        job.delayPart = 3
        for _ in 0..<5 {
            job.reset(8)
            pool.run(job: job, parts: 8)
            XCTAssertEqual((0..<8).map { job.hits[$0] }, [Int](repeating: 1, count: 8))
        }
    }

    /// Workers that went to sleep (long gaps between jobs) are woken for the next job.
    func testJobsAfterIdleGaps() {
        let pool = ThreadPool(threads: 2)
        let job = CountingJob(capacity: 16)
        let ran = Atomic<Int>(0)
        for _ in 0..<4 {
            usleep(30_000)  // longer than any spin budget: the worker sleeps on its futex
            job.reset(16)
            pool.run(job: job, parts: 16)
            XCTAssertEqual((0..<16).map { job.hits[$0] }, [Int](repeating: 1, count: 16))
            pool.run(parts: 2) { _ in ran.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(ran.load(ordering: .relaxed), 8)
    }

    /// `rest` sends a worker that is spinning for a job to sleep at once, and the next job still
    /// wakes it. The worker waits with a spin budget it would take minutes to exhaust, so without
    /// the rest flag it would still be spinning when the job comes and report that it never slept.
    func testRestSendsASpinningWorkerToSleep() {
        guard let created = tern_pool_sync_create() else { return XCTFail("out of memory") }
        nonisolated(unsafe) let sync = created  // the C functions synchronise through atomics
        defer { tern_pool_sync_destroy(sync) }
        let entered = DispatchSemaphore(value: 0), finished = DispatchSemaphore(value: 0)
        let result = Mutex<(gen: UInt32, slept: Int32)>((0, -1))
        let worker = Thread {
            entered.signal()
            var slept: Int32 = -1
            let gen = tern_pool_wait_job(sync, 0, UInt32.max, &slept)
            result.withLock { $0 = (gen, slept) }
            finished.signal()
        }
        worker.start()
        entered.wait()
        usleep(50_000)  // the worker is spinning now
        tern_pool_rest(sync)
        usleep(50_000)  // and asleep on its futex
        tern_pool_publish(sync, 1, 1)
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "the job did not wake the resting worker")
        let r = result.withLock { $0 }
        XCTAssertEqual(r.gen, 1)
        XCTAssertEqual(r.slept, 1, "the worker kept spinning after tern_pool_rest")
        // The pool's own `rest`, between jobs, loses none.
        let pool = ThreadPool(threads: 2)
        let job = CountingJob(capacity: 8)
        for i in 0..<2_000 {
            if i % 2 == 0 { pool.rest() }
            job.reset(8)
            pool.run(job: job, parts: 8)
            XCTAssertEqual((0..<8).map { job.hits[$0] }, [Int](repeating: 1, count: 8))
        }
    }

    /// More threads than CPUs are capped to the CPUs (oversubscription only costs time slices),
    /// and a pool freed right after use winds its workers down without a hang.
    func testThreadCountIsCappedAndPoolsWindDown() {
        let cpus = ThreadPool.availableCPUs
        XCTAssertGreaterThanOrEqual(cpus, 1)
        XCTAssertEqual(ThreadPool.usableThreads(1000), cpus)
        XCTAssertEqual(ThreadPool.usableThreads(1), 1)
        XCTAssertEqual(ThreadPool(threads: 1000).threads, cpus)
        for _ in 0..<50 {
            let pool = ThreadPool(threads: 2)
            let job = CountingJob(capacity: 4)
            pool.run(job: job, parts: 4)
            XCTAssertEqual((0..<4).map { job.hits[$0] }, [1, 1, 1, 1])
        }
    }
}
