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

/// One tensor to write, produced a slice at a time so a whole model never has to be in memory:
/// `bytes(groups)` returns the tensor's bytes for those row groups (``DType/groupRows`` rows each,
/// in the layout of its dtype).
public struct TensorSource {
    public var name: String
    public var dtype: DType
    public var shape: [Int]
    public var bytes: (Range<Int>) throws -> [UInt8]

    public init(name: String, dtype: DType, shape: [Int], bytes: @escaping (Range<Int>) throws -> [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// A tensor already in memory.
    public init(_ t: PendingTensor) {
        let gb = t.dtype.groupBytes(cols: t.shape.last ?? 1) ?? 1
        self.init(name: t.name, dtype: t.dtype, shape: t.shape) { g in Array(t.data[g.lowerBound * gb..<g.upperBound * gb]) }
    }

    /// Rows of the tensor (every dimension but the last), bytes per row group and group count;
    /// nil when the shape is not one a .tern file can hold.
    var layout: (groupBytes: Int, groups: Int, bytes: Int)? {
        guard !shape.isEmpty, shape.count <= 4, shape.allSatisfy({ $0 > 0 }) else { return nil }
        var rows = 1
        for d in shape.dropLast() { guard let r = safeMul(rows, d) else { return nil }; rows = r }
        guard let gb = dtype.groupBytes(cols: shape.last!), let total = dtype.byteSize(rows: rows, cols: shape.last!) else {
            return nil
        }
        return (gb, total / gb, total)
    }
}

/// Writes `.tern` files atomically (temp file in the target directory, fsync, rename) and with
/// bounded memory: tensors are produced, compressed and written one slice at a time, the table
/// is filled in once every tensor's size and checksum is known.
public enum TernWriter {
    /// Target uncompressed bytes per zstd chunk.
    public static let chunkTarget = 256 * 1024
    /// Bytes a raw tensor is produced and written in at a time.
    public static let sliceTarget = 4 << 20

    /// Writes `tensors` with `metadata` to `path`, as the sources-taking `write` does.
    public static func write(path: String, metadata: Metadata, tensors: [PendingTensor], compressLevel: Int32? = nil,
                             minCompressBytes: Int = 64 * 1024, chunkBytes: Int = chunkTarget, verify: Bool = true,
                             progress: (String, Int, Int) -> Void = { _, _, _ in }) throws {
        for t in tensors where t.data.count != TensorSource(t).layout?.bytes {
            throw FormatError(file: path, field: "tensor \(t.name)", "data size \(t.data.count) does not match " +
                "\(t.dtype) \(t.shape)")
        }
        try write(path: path, metadata: metadata, sources: tensors.map(TensorSource.init), compressLevel: compressLevel,
                  minCompressBytes: minCompressBytes, chunkBytes: chunkBytes, verify: verify, progress: progress)
    }

    /// Writes the tensors of `sources` with `metadata` to `path`. `compressLevel` nil writes raw
    /// tensors; otherwise every tensor of at least `minCompressBytes` is zstd-chunked, about
    /// `chunkBytes` per chunk. `progress(name, bytesDone, bytesTotal)` is called after each
    /// tensor. Raw tensors are produced about `sliceBytes` at a time. With `verify`, the written
    /// file is read back and every checksum checked before it is renamed into place.
    /// `opened(tempPath)` is called once the temporary file exists.
    public static func write(path: String, metadata: Metadata, sources: [TensorSource], compressLevel: Int32? = nil,
                             minCompressBytes: Int = 64 * 1024, chunkBytes: Int = chunkTarget, sliceBytes: Int = sliceTarget,
                             verify: Bool = true, opened: (String) -> Void = { _ in },
                             progress: (String, Int, Int) -> Void = { _, _, _ in }) throws {
        var layouts: [(groupBytes: Int, groups: Int, bytes: Int)] = []
        for t in sources {
            guard let l = t.layout else {
                throw FormatError(file: path, field: "tensor \(t.name)", "shape \(t.shape) cannot hold \(t.dtype)")
            }
            layouts.append(l)
        }
        let total = layouts.reduce(0) { $0 + $1.bytes }
        var done = 0
        try withoutActuallyEscaping(progress) { progress in
            let entries = zip(sources, layouts).map { t, l in
                let level = l.bytes >= minCompressBytes ? compressLevel : nil
                let gpc = max(1, chunkBytes / l.groupBytes)
                let rowsPerChunk = level == nil ? 0 : gpc * t.dtype.groupRows
                return Entry(name: t.name, dtype: t.dtype, shape: t.shape, rowsPerChunk: rowsPerChunk) { out in
                    if let level {
                        try emitCompressed(t, l, groupsPerChunk: gpc, level: level, out)
                    } else {
                        let step = max(1, sliceBytes / l.groupBytes)
                        for g in stride(from: 0, to: l.groups, by: step) {
                            let r = g..<min(l.groups, g + step)
                            try out.write(try produce(t, r, l.groupBytes))
                        }
                    }
                    done += l.bytes
                    progress(t.name, done, total)
                }
            }
            try writeContainer(path: path, metadata: metadata, verify: verify, opened: opened, entries: entries)
        }
    }

    /// `t`'s bytes for `groups`, checked to be exactly that many groups.
    static func produce(_ t: TensorSource, _ groups: Range<Int>, _ groupBytes: Int) throws -> [UInt8] {
        let b = try t.bytes(groups)
        guard b.count == groups.count * groupBytes else {
            throw FormatError(file: t.name, field: "tensor \(t.name)",
                              "produced \(b.count) bytes for \(groups.count) row groups of \(groupBytes)")
        }
        return b
    }

    /// A chunk index (offset, size, checksum per chunk) followed by independently decompressible
    /// zstd frames of `groupsPerChunk` row groups; the index is written last, in place.
    static func emitCompressed(_ t: TensorSource, _ l: (groupBytes: Int, groups: Int, bytes: Int), groupsPerChunk gpc: Int,
                               level: Int32, _ out: AtomicFile) throws {
        let chunks = (l.groups + gpc - 1) / gpc
        let start = out.position
        try out.write([UInt8](repeating: 0, count: chunks * TernContainer.chunkEntryBytes))
        var index = ByteWriter()
        for c in 0..<chunks {
            let data = try produce(t, c * gpc..<min(l.groups, (c + 1) * gpc), l.groupBytes)
            guard let z = data.withUnsafeBytes({ Zstd.compress($0, level: level) }) else {
                throw FormatError(file: t.name, field: "zstd", "compression failed at level \(level)")
            }
            index.u64(UInt64(out.position - start)); index.u64(UInt64(z.count)); index.u64(XXH64.hash(z))
            try out.write(z)
        }
        try out.write(index.bytes, at: start)
    }

    /// One tensor as the container lays it out: its table fields and a writer of its stored
    /// bytes (which may fill in what it wrote earlier, at or after where it started).
    struct Entry {
        let name: String, dtype: DType, shape: [Int], rowsPerChunk: Int
        let emit: (AtomicFile) throws -> Void
    }

    /// Writes `file`'s tensors, stored bytes unchanged (raw or compressed), under new `metadata`
    /// to `path` (which may be `file`'s own path: the new file is renamed over it only after it
    /// was written and read back). Used by `tern calibrate` to store its settings.
    public static func rewrite(_ file: TernFile, metadata: Metadata, to path: String) throws {
        let entries = file.tensors.map { t in
            Entry(name: t.name, dtype: t.dtype, shape: t.shape, rowsPerChunk: t.codec == .raw ? 0 : t.rowsPerChunk) { out in
                try out.write(file.stored(t))
                file.map.release(t.offset..<t.offset + t.storedSize)
            }
        }
        try writeContainer(path: path, metadata: metadata, verify: true, entries: entries)
    }

    static func writeContainer(path: String, metadata: Metadata, verify: Bool, opened: (String) -> Void = { _ in },
                               entries: [Entry]) throws {
        var meta = ByteWriter()
        metadata.encode(into: &meta)
        // Table entries have a fixed size given the name and ndim: the table is written as zeros
        // first and filled in once every tensor's offset, size and checksum is known.
        let tableSize = entries.reduce(0) { $0 + 4 + $1.name.utf8.count + 4 + 8 * $1.shape.count + 32 }
        let tableOffset = TernContainer.headerSize + meta.bytes.count
        // Read back and verify every checksum before the file takes its name.
        try AtomicFile.write(path: path, check: { if verify { try TernFile(path: $0).verifyAll(releasing: true) } }) { out in
            opened(out.tempPath)
            try out.write([UInt8](repeating: 0, count: TernContainer.headerSize))
            try out.write(meta.bytes)
            try out.write([UInt8](repeating: 0, count: tableSize))
            var table = ByteWriter()
            for t in entries {
                try out.pad(to: (out.position + TernContainer.alignment - 1) / TernContainer.alignment * TernContainer.alignment)
                let offset = out.position
                try t.emit(out)
                let size = out.position - offset
                table.string32(t.name)
                table.u8(t.dtype.rawValue)
                table.u8(t.rowsPerChunk == 0 ? Codec.raw.rawValue : Codec.zstd.rawValue)
                table.u8(UInt8(t.shape.count))
                table.u8(0)
                for d in t.shape { table.u64(UInt64(d)) }
                table.u64(UInt64(offset))
                table.u64(UInt64(size))
                table.u64(try out.checksum(offset: offset, count: size))
                table.u32(UInt32(t.rowsPerChunk))
                table.u32(0)
            }
            precondition(table.bytes.count == tableSize)
            var header = ByteWriter()
            header.bytes.append(contentsOf: TernContainer.magic)
            header.u32(TernContainer.version)
            header.u32(UInt32(TernContainer.headerSize))
            header.u64(UInt64(TernContainer.headerSize))
            header.u64(UInt64(meta.bytes.count))
            header.u64(UInt64(tableOffset))
            header.u64(UInt64(tableSize))
            header.u64(UInt64(entries.count))
            let structure = header.bytes + [UInt8](repeating: 0, count: 8) + meta.bytes + table.bytes
            header.u64(structure.withUnsafeBytes { TernContainer.structureChecksum($0, tableEnd: structure.count) })
            try out.write(table.bytes, at: tableOffset)
            try out.write(header.bytes, at: 0)
        }
    }
}
