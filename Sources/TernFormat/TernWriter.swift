#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor ready to be written: decoded bytes in the layout of its dtype (q8/q4 interleaved
/// in groups of four rows, see ``DType``).
public struct PendingTensor: Sendable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var data: [UInt8]

    public init(name: String, dtype: DType, shape: [Int], data: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }
}

/// Writes `.tern` files atomically: temp file in the target directory, fsync, rename.
public enum TernWriter {
    /// Target uncompressed bytes per zstd chunk.
    public static let chunkTarget = 256 * 1024

    /// Encodes one tensor's stored bytes: raw, or a chunk index followed by zstd frames.
    static func encode(_ t: PendingTensor, level: Int32?, chunkBytes: Int) throws -> (stored: [UInt8], rowsPerChunk: Int) {
        guard let level else { return (t.data, 0) }
        let groupBytes = t.dtype.groupBytes(cols: t.shape.last ?? 1)!
        let groups = t.data.count / groupBytes
        let gpc = max(1, chunkBytes / groupBytes)
        let chunks = (groups + gpc - 1) / gpc
        var index = ByteWriter()
        var body: [UInt8] = []
        var pos = chunks * TernContainer.chunkEntryBytes
        try t.data.withUnsafeBytes { src in
            for c in 0..<chunks {
                let a = c * gpc * groupBytes, b = min(groups, (c + 1) * gpc) * groupBytes
                guard let z = Zstd.compress(UnsafeRawBufferPointer(rebasing: src[a..<b]), level: level) else {
                    throw FormatError(file: t.name, field: "zstd", "compression failed at level \(level)")
                }
                index.u64(UInt64(pos)); index.u64(UInt64(z.count)); index.u64(XXH64.hash(z))
                body.append(contentsOf: z)
                pos += z.count
            }
        }
        return (index.bytes + body, gpc * t.dtype.groupRows)
    }

    /// Writes `tensors` with `metadata` to `path`. `compressLevel` nil writes raw tensors;
    /// otherwise every tensor of at least `minCompressBytes` is zstd-chunked, about `chunkBytes` per chunk.
    /// `progress(name, bytesDone, bytesTotal)` is called after each tensor. With `verify`, the
    /// written file is read back and every checksum checked before it is renamed into place.
    public static func write(path: String, metadata: Metadata, tensors: [PendingTensor], compressLevel: Int32? = nil,
                             minCompressBytes: Int = 64 * 1024, chunkBytes: Int = chunkTarget, verify: Bool = true,
                             progress: (String, Int, Int) -> Void = { _, _, _ in }) throws {
        let total = tensors.reduce(0) { $0 + $1.data.count }
        var done = 0
        var encoded: [(PendingTensor, [UInt8], Int)] = []
        for t in tensors {
            guard !t.shape.isEmpty, t.shape.count <= 4, t.shape.allSatisfy({ $0 > 0 }),
                  t.data.count == t.dtype.byteSize(rows: t.shape.dropLast().reduce(1, *), cols: t.shape.last!) else {
                throw FormatError(file: path, field: "tensor \(t.name)", "data size \(t.data.count) does not match \(t.dtype) \(t.shape)")
            }
            let level = t.data.count >= minCompressBytes ? compressLevel : nil
            let (stored, rpc) = try encode(t, level: level, chunkBytes: chunkBytes)
            encoded.append((t, stored, rpc))
            done += t.data.count
            progress(t.name, done, total)
        }
        try writeContainer(path: path, metadata: metadata, verify: verify,
                           entries: encoded.map { (t, stored, rpc) in
                               Entry(name: t.name, dtype: t.dtype, shape: t.shape, rowsPerChunk: rpc, bytes: stored) })
    }

    /// One tensor as the container lays it out: its table fields and a writer of its stored bytes.
    struct Entry {
        let name: String, dtype: DType, shape: [Int], rowsPerChunk: Int
        let storedSize: Int
        let checksum: UInt64
        let emit: (AtomicFile) throws -> Void

        init(name: String, dtype: DType, shape: [Int], rowsPerChunk: Int, stored: UnsafeRawBufferPointer) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.rowsPerChunk = rowsPerChunk
            storedSize = stored.count
            checksum = XXH64.hash(stored)
            emit = { try $0.write(stored) }
        }

        init(name: String, dtype: DType, shape: [Int], rowsPerChunk: Int, bytes: [UInt8]) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.rowsPerChunk = rowsPerChunk
            storedSize = bytes.count
            checksum = XXH64.hash(bytes)
            emit = { try $0.write(bytes) }
        }
    }

    /// Writes `file`'s tensors, stored bytes unchanged (raw or compressed), under new `metadata`
    /// to `path` (which may be `file`'s own path: the new file is renamed over it only after it
    /// was written and read back). Used by `tern calibrate` to store its settings.
    public static func rewrite(_ file: TernFile, metadata: Metadata, to path: String) throws {
        let entries = file.tensors.map { t in
            Entry(name: t.name, dtype: t.dtype, shape: t.shape, rowsPerChunk: t.codec == .raw ? 0 : t.rowsPerChunk, stored: file.stored(t))
        }
        try writeContainer(path: path, metadata: metadata, verify: true, entries: entries)
    }

    static func writeContainer(path: String, metadata: Metadata, verify: Bool, entries: [Entry]) throws {
        var meta = ByteWriter()
        metadata.encode(into: &meta)
        // Table entries have a fixed size given the name and ndim, so offsets can be laid out first.
        let tableSize = entries.reduce(0) { $0 + 4 + $1.name.utf8.count + 4 + 8 * $1.shape.count + 32 }
        var offset = TernContainer.headerSize + meta.bytes.count + tableSize
        var table = ByteWriter()
        var offsets: [Int] = []
        for t in entries {
            offset = (offset + TernContainer.alignment - 1) / TernContainer.alignment * TernContainer.alignment
            offsets.append(offset)
            table.string32(t.name)
            table.u8(t.dtype.rawValue)
            table.u8(t.rowsPerChunk == 0 ? Codec.raw.rawValue : Codec.zstd.rawValue)
            table.u8(UInt8(t.shape.count))
            table.u8(0)
            for d in t.shape { table.u64(UInt64(d)) }
            table.u64(UInt64(offset))
            table.u64(UInt64(t.storedSize))
            table.u64(t.checksum)
            table.u32(UInt32(t.rowsPerChunk))
            table.u32(0)
            offset += t.storedSize
        }
        precondition(table.bytes.count == tableSize)
        var header = ByteWriter()
        header.bytes.append(contentsOf: TernContainer.magic)
        header.u32(TernContainer.version)
        header.u32(UInt32(TernContainer.headerSize))
        header.u64(UInt64(TernContainer.headerSize))
        header.u64(UInt64(meta.bytes.count))
        header.u64(UInt64(TernContainer.headerSize + meta.bytes.count))
        header.u64(UInt64(tableSize))
        header.u64(UInt64(entries.count))
        let structure = header.bytes + [UInt8](repeating: 0, count: 8) + meta.bytes + table.bytes
        header.u64(structure.withUnsafeBytes { TernContainer.structureChecksum($0, tableEnd: structure.count) })

        // Read back and verify every checksum before the file takes its name.
        try AtomicFile.write(path: path, check: { if verify { try TernFile(path: $0).verifyAll() } }) { out in
            try out.write(header.bytes)
            try out.write(meta.bytes)
            try out.write(table.bytes)
            for (i, t) in entries.enumerated() {
                try out.pad(to: offsets[i])
                try t.emit(out)
            }
        }
    }
}

/// A file written under a temporary name in the target directory, fsynced and renamed
/// into place only when the body succeeds. On failure nothing is left at `path`.
public final class AtomicFile {
    let fd: Int32
    let tempPath: String
    let path: String
    public private(set) var position = 0

    /// The temporary path being written, for a signal handler that must unlink it.
    nonisolated(unsafe) public static var currentTemp: UnsafeMutablePointer<CChar>?

    init(path: String) throws {
        self.path = path
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = path.split(separator: "/").last.map(String.init) ?? path
        tempPath = (dir.isEmpty ? "/" : dir + "/") + ".\(base).partial-\(getpid())"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw FormatError(file: path, field: "create", "cannot create \(tempPath): \(String(cString: strerror(errno))); check the directory exists and is writable")
        }
        AtomicFile.currentTemp = strdup(tempPath)
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ b: UnsafeRawBufferPointer) throws {
        do {
            var off = 0
            while off < b.count {
                let n = Glibc.write(fd, b.baseAddress! + off, b.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw FormatError(file: path, field: "write", String(cString: strerror(errno)))
                }
                off += n
            }
        }
        position += b.count
    }

    public func pad(to offset: Int) throws {
        if offset > position { try write([UInt8](repeating: 0, count: offset - position)) }
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
