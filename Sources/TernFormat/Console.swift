#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes `s` to standard error unbuffered (progress, timings, diagnostics).
public func writeStderr(_ s: String) {
    var s = s
    s.withUTF8 { b in
        var off = 0
        while off < b.count {
            let n = write(2, b.baseAddress! + off, b.count - off)
            if n <= 0 { return }
            off += n
        }
    }
}
