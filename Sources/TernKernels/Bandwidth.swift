import CTernKernels
import Foundation

/// Measures sustained read bandwidth (bytes/s) with `threads` threads over a buffer of `bytes`,
/// best of `passes`: the roofline for memory-bound decoding (same method as shared/tools/membw.c).
/// The buffer is on 2 MiB pages where Linux gives them, as the weights are: on 4 KB pages the
/// same loop read 3-18% less on the AMD EPYC VM of bench/README.md.
public func measureReadBandwidth(bytes: Int = 512 << 20, threads: Int, passes: Int = 6) -> Double {
    let words = bytes / 8
    let raw = allocateHugePages(byteCount: words * 8)
    defer { raw.deallocate() }
    let buf = raw.bindMemory(to: UInt64.self, capacity: words)
    for i in 0..<words { buf[i] = UInt64(i) }
    let par = Parallel(threads: threads)
    let b = UnsafeSendable(buf)
    var best = 0.0
    for _ in 0..<passes {
        let t0 = DispatchTime.now().uptimeNanoseconds
        par.forEach(words, minChunk: 1 << 16) { r in
            _ = tern_read_probe(b.value + r.lowerBound, r.count)
        }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        best = max(best, Double(words * 8) / dt)
    }
    return best
}

/// Seconds per query head and cached position that `threads` threads attending at once take
/// over a KV cache of `precision` rows of `dim` values, `group` query heads sharing each KV head
/// (wall time over all the head-positions they cover): what decoding pays per token for attention
/// at depth, besides the weights' bytes. The threads (a pool of `threads`, as decoding and
/// ``measureReadBandwidth(bytes:threads:passes:)`` use) share 64 MiB of cache (out of the caches, as a
/// long context's is), best of `passes`. At depth attention is compute-bound, not read-bound:
/// SmolLM2 at 4096 positions spent 7.7 ms of an 11 ms token on it at one thread, reading its 94 MB
/// of cache at 12 GB/s of the 32 a thread can read.
public func measureAttentionCost(dim: Int, group: Int, precision: KVPrecision, threads: Int, passes: Int = 3) -> Double {
    let dim = max(32, dim / 32 * 32), heads = max(1, min(group, Ops.attendMaxHeads)), threads = max(1, threads)
    let positions = 4096, rowBytes = precision.rowBytes(dim: dim)
    let perThread = max(1, (64 << 20) / (2 * positions * rowBytes) / threads), segments = perThread * threads
    let cache = UnsafeMutableRawPointer.allocate(byteCount: 2 * segments * positions * rowBytes, alignment: 64)
    defer { cache.deallocate() }
    // Small values (f16 0x2c00 = 1/16; q8 scales 1/16 with int8 16): finite scores and sums.
    if precision == .f16 {
        cache.initializeMemory(as: UInt16.self, repeating: 0x2C00, count: segments * positions * rowBytes)
    } else {
        cache.initializeMemory(as: UInt8.self, repeating: 16, count: 2 * segments * positions * rowBytes)
        for r in 0..<(2 * segments * positions) {
            for g in 0..<dim / 32 { cache.storeBytes(of: Float(1) / 16, toByteOffset: r * rowBytes + 4 * g, as: Float.self) }
        }
    }
    let base = UnsafeSendable(cache)
    func attendSegments(_ t: Int) {
        let q = [Float](repeating: 0.01, count: heads * dim)
        var out = [Float](repeating: 0, count: heads * dim)
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                for s in t * perThread..<(t + 1) * perThread {
                    let k = base.value + 2 * s * positions * rowBytes, v = k + positions * rowBytes
                    if precision == .f16 {
                        Ops.attend(q: qp.baseAddress!, heads: heads, k: k.assumingMemoryBound(to: UInt16.self),
                                   v: v.assumingMemoryBound(to: UInt16.self), stride: dim, count: positions, dim: dim,
                                   scale: 0.125, out: op.baseAddress!)
                    } else {
                        Ops.attendQ8(q: qp.baseAddress!, heads: heads, k: k, v: v, rowBytes: rowBytes, count: positions,
                                     dim: dim, scale: 0.125, out: op.baseAddress!)
                    }
                }
            }
        }
    }
    let par = Parallel(threads: threads)
    var best = Double.infinity
    for _ in 0..<passes {
        let t0 = DispatchTime.now().uptimeNanoseconds
        par.forEach(threads, minChunk: 1) { r in for t in r { attendSegments(t) } }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return best / Double(segments * heads * positions)
}
