#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written under a temporary name in the target directory, fsynced and renamed
/// into place only when the body succeeds. On failure nothing is left at `path`.
///
/// The bytes reach the file in whole, aligned blocks of ``blockBytes`` (2 MiB, the huge-page
/// size of x86-64 and of arm64 with 4 KB pages) through one buffer; only the last block is
/// short. Linux keeps what such writes create in the page cache as 2 MiB folios, where the
/// filesystem has large folios (xfs; ext4 in recent kernels, as 6.18 here), and a later mmap
/// maps each of them with a single page-table entry. The same file written in smaller pieces
/// stays in small folios until the kernel evicts it: decoding from it then walks page tables
/// every 4 KB (see bench/README.md, "Huge pages for the weights").
public final class AtomicFile {
    /// The size and alignment of every write but the last.
    public static let blockBytes = 2 << 20

    let fd: Int32
    public let tempPath: String
    let path: String
    /// Bytes written so far, whether still in the buffer or already in the file.
    public var position: Int { flushed + buffered }
    /// The file offset the buffer starts at: everything before it is in the file.
    private var flushed = 0
    /// Bytes waiting in `buffer`, less than one block.
    private var buffered = 0
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: AtomicFile.blockBytes, alignment: 4096)

    /// The temporary path being written, for a signal handler that must unlink it.
    nonisolated(unsafe) public static var currentTemp: UnsafeMutablePointer<CChar>?

    init(path: String) throws {
        self.path = path
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = path.split(separator: "/").last.map(String.init) ?? path
        tempPath = (dir.isEmpty ? "/" : dir + "/") + ".\(base).partial-\(getpid())"
        fd = open(tempPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FormatError(file: path, field: "create", "cannot create \(tempPath): " +
                "\(String(cString: strerror(errno))); check the directory exists and is writable")
        }
        AtomicFile.currentTemp = strdup(tempPath)
    }

    deinit { buffer.deallocate() }  // also when init throws: every property is set by then

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends `b`: whole blocks go to the file straight from `b` when nothing is buffered,
    /// the rest through the buffer, which is written when it holds a whole block.
    public func write(_ b: UnsafeRawBufferPointer) throws {
        guard var src = b.baseAddress else { return }
        var left = b.count
        while left > 0 {
            if buffered == 0 && left >= Self.blockBytes {
                // One block per call: one write of several blocks left all but the first block
                // in small folios (Linux 6.18, ext4).
                try writeFully(src, Self.blockBytes, at: flushed)
                flushed += Self.blockBytes; src += Self.blockBytes; left -= Self.blockBytes
                continue
            }
            let n = min(left, Self.blockBytes - buffered)
            (buffer + buffered).copyMemory(from: src, byteCount: n)
            buffered += n; src += n; left -= n
            if buffered == Self.blockBytes { try flush() }
        }
    }

    /// Overwrites bytes already written at `offset` (the position does not move): in the file
    /// below the buffer, in the buffer above.
    public func write(_ bytes: [UInt8], at offset: Int) throws {
        precondition(offset >= 0 && offset + bytes.count <= position)
        try bytes.withUnsafeBytes { b in
            guard let p = b.baseAddress else { return }
            let inFile = max(0, min(b.count, flushed - offset))
            if inFile > 0 { try writeFully(p, inFile, at: offset) }
            if inFile < b.count {
                (buffer + (offset + inFile - flushed)).copyMemory(from: p + inFile, byteCount: b.count - inFile)
            }
        }
    }

    /// XXH64 of `count` bytes written at `offset`: the part in the file read back through
    /// temporary mappings of at most 16 MiB (the pages stay in the page cache, not in this
    /// process), the part still buffered from the buffer.
    public func checksum(offset: Int, count: Int) throws -> UInt64 {
        precondition(offset >= 0 && count >= 0 && offset + count <= position)
        let page = Int(sysconf(Int32(_SC_PAGESIZE))), window = 16 << 20
        var hasher = XXH64.Streaming()
        var at = offset
        let fileEnd = min(offset + count, flushed)
        while at < fileEnd {
            let n = min(window, fileEnd - at)
            let lo = at / page * page, len = at + n - lo
            guard let p = mmap(nil, len, PROT_READ, MAP_SHARED, fd, off_t(lo)), p != MAP_FAILED else {
                throw FormatError(file: path, field: "mmap", String(cString: strerror(errno)))
            }
            hasher.update(UnsafeRawBufferPointer(start: p + (at - lo), count: n))
            munmap(p, len)
            at += n
        }
        if offset + count > flushed {
            let from = max(offset, flushed)
            hasher.update(UnsafeRawBufferPointer(start: buffer + (from - flushed), count: offset + count - from))
        }
        return hasher.finish()
    }

    public func pad(to offset: Int) throws {
        if offset > position { try write([UInt8](repeating: 0, count: offset - position)) }
    }

    /// Writes out what is buffered (a whole block, or the file's short last one).
    private func flush() throws {
        try writeFully(buffer, buffered, at: flushed)
        flushed += buffered
        buffered = 0
    }

    private func writeFully(_ p: UnsafeRawPointer, _ count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pwrite(fd, p + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw FormatError(file: path, field: "write", String(cString: strerror(errno))) }
            done += n
        }
    }

    /// Runs `body` on the temporary file, fsyncs and closes it, runs `check` on the temporary
    /// path (e.g. reading it back), and only then renames it to `path`. If anything throws or the
    /// process is interrupted before the rename, nothing is left at `path`.
    public static func write(path: String, check: (String) throws -> Void = { _ in }, body: (AtomicFile) throws -> Void) throws {
        let f = try AtomicFile(path: path)
        var closed = false, renamed = false
        defer {
            if !closed { close(f.fd) }
            if !renamed { unlink(f.tempPath) }
            free(AtomicFile.currentTemp); AtomicFile.currentTemp = nil
        }
        try body(f)
        try f.flush()
        guard fsync(f.fd) == 0 else { throw FormatError(file: path, field: "fsync", String(cString: strerror(errno))) }
        close(f.fd)
        closed = true
        try check(f.tempPath)
        guard rename(f.tempPath, path) == 0 else {
            throw FormatError(file: path, field: "rename", String(cString: strerror(errno)))
        }
        renamed = true
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
