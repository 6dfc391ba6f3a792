#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a whole file. Tensors are used in place from it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FormatError(file: path, field: "open", String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw FormatError(file: path, field: "stat", String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FormatError(file: path, field: "open", "not a regular file")
        }
        let size = Int(st.st_size)
        guard size > 0 else { throw FormatError(file: path, field: "size", "file is empty") }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FormatError(file: path, field: "mmap", String(cString: strerror(errno)))
        }
        #if os(Linux)
        // 4 KB page-table entries until a range is used in place (useHugePages): a file cached
        // in 2 MiB folios (AtomicFile) would otherwise map 2 MiB at every touch, of metadata
        // parsed once or of a small vector between streamed matrices, into the resident set.
        _ = madvise(p, size, MADV_NOHUGEPAGE)
        #endif
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        owned = false
    }

    private let owned: Bool

    /// Whether the bytes are a memory map of the file (not an in-memory copy).
    public var isFileMapping: Bool { !owned }

    /// Drops the pages wholly inside `range` from the resident set (they are re-read from the
    /// file if touched again). Used for parsed metadata and for tensors copied elsewhere.
    public func release(_ range: Range<Int>) {
        guard !owned, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (range.lowerBound + page - 1) / page * page, hi = range.upperBound / page * page
        guard hi > lo else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, MADV_DONTNEED)
    }

    /// Gives `range` (widened to whole pages) a mapping of its own, read ahead sequentially, so
    /// that touching it maps no page outside it: for bytes read through the map but not kept,
    /// the header, metadata and table, and chunk indexes. Linux maps a whole page-cache folio on
    /// a fault, up to the mapping's end: in a file cached as 2 MiB folios (AtomicFile, or the
    /// kernel's own readahead) one byte read would otherwise bring up to 2 MiB of neighbouring,
    /// perhaps streamed, weights into the resident set.
    /// Ranges given apart that touch merge into one mapping, where a fault maps whole folios
    /// back into pages already released: so not tensor after tensor (`TernFile.verify` doing
    /// that raised tern-quantize's peak from 60 to 103 MB on Gemma; a C loop over its tensors:
    /// 17.8 against 44.3 MB).
    public func mapApart(_ range: Range<Int>) {
        advise(range, MADV_SEQUENTIAL)
    }

    /// madvise of `range` widened to whole pages (Linux; nothing elsewhere or for copies).
    private func advise(_ range: Range<Int>, _ advice: Int32) {
        #if os(Linux)
        guard !owned, let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = max(0, range.lowerBound) / page * page, hi = min(bytes.count, (range.upperBound + page - 1) / page * page)
        guard hi > lo else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, advice)
        #endif
    }

    /// The largest page-cache folio a fault can map at once: what one page-middle-directory
    /// entry spans (Linux's `hpage_pmd_size`): 2 MiB with 4 KiB pages, but 32 MiB with the 16 KiB
    /// pages of Raspberry Pi 5 kernels and 512 MiB with 64 KiB pages.
    public static let folioBytes: Int = {
        #if os(Linux)
        let fd = open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 32)
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, 31) }
            if n > 0, let v = Int(String(decoding: buf[..<n], as: UTF8.self).filter(\.isNumber)), v > 0 { return v }
        }
        #endif
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return page * (page / 8)
    }()

    /// `range` widened to whole folios (``folioBytes``) and clipped to the file: what touching
    /// `range` can bring into the resident set, and what ``unmapFolios(_:)`` drops.
    public func folioRange(_ range: Range<Int>) -> Range<Int> {
        let f = MappedFile.folioBytes
        let lo = max(0, range.lowerBound) / f * f
        let hi = min(bytes.count, (range.upperBound + f - 1) / f * f)
        return lo..<max(lo, hi)
    }

    /// Drops the mapping of ``folioRange(_:)`` of `range` from the resident set. The page cache
    /// keeps the bytes, so touching them again maps them again (without reading the file when
    /// they are still cached); a neighbour in the same folios is faulted back in when next used.
    /// Whole folios, because a fault maps a whole folio: dropping only `range`'s pages would
    /// leave the rest of its end folios mapped.
    public func unmapFolios(_ range: Range<Int>) {
        #if os(Linux)
        guard !owned, let base = bytes.baseAddress else { return }
        let r = folioRange(range)
        guard !r.isEmpty else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + r.lowerBound), r.count, MADV_DONTNEED)
        #endif
    }

    /// Lets `range` (widened to whole pages) be mapped with 2 MiB entries, for bytes used in
    /// place for the whole run: one entry per aligned 2 MiB wholly inside such ranges, where the
    /// page cache holds 2 MiB folios (see AtomicFile), and pages read in from now on come as
    /// 2 MiB folios. Decoding reads every weight per token; on 4 KB pages that walks a page
    /// table every 4 KB (bench/README.md, "Huge pages for the weights").
    public func useHugePages(_ range: Range<Int>) {
        advise(range, MADV_HUGEPAGE)
    }

    /// An in-memory copy of `data` presented as if mapped from `path` (tests, fuzzing, pipes).
    public init(copying data: [UInt8], path: String) throws {
        guard !data.isEmpty else { throw FormatError(file: path, field: "size", "file is empty") }
        self.path = path
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 64)
        p.copyBytes(from: data)
        bytes = UnsafeRawBufferPointer(p)
        owned = true
    }

    deinit {
        if owned { UnsafeMutableRawBufferPointer(mutating: bytes).deallocate() } else {
            munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count)
        }
    }
}

/// Peak resident set size of this process (VmHWM from /proc/self/status), in bytes; 0 where
/// the kernel does not report it.
public func peakRSSBytes() -> Int {
    let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: 8192)
    var n = 0
    while n < buf.count {
        let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + n, $0.count - n) }
        if r <= 0 { break }
        n += r
    }
    let s = String(decoding: buf[..<n], as: UTF8.self)
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kb * 1024
    }
    return 0
}
