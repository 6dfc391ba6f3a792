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
