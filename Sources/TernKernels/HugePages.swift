#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory the kernels read over and over (decompressed weights, streaming slots, the bandwidth
/// probe's buffer): aligned to 2 MiB and, on Linux, asked for 2 MiB pages (`MADV_HUGEPAGE`), as
/// the weights used in place from the map are (see bench/README.md, "Huge pages for the
/// weights"). Only whole aligned 2 MiB inside the buffer can become huge pages, so the resident
/// size is the bytes touched, as for any allocation. Free it with `deallocate()`.
public func allocateHugePages(byteCount: Int) -> UnsafeMutableRawPointer {
    let huge = 2 << 20
    let n = max(64, byteCount)
    let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: n >= huge ? huge : 64)
    #if os(Linux)
    if n >= huge { _ = madvise(p, n / huge * huge, MADV_HUGEPAGE) }
    #endif
    return p
}
