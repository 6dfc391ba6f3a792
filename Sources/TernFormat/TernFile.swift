/// The `.tern` container: constants shared by reader and writer. docs/format.md is the byte-level spec.
public enum TernContainer {
    public static let magic: [UInt8] = Array("TERNCKPT".utf8)
    /// Version 2: q8/q4 rows interleaved in groups of four (see ``DType``). Version 1 files
    /// (row-major blocks) are refused with the command that re-converts them.
    public static let version: UInt32 = 2
    public static let headerSize = 64
    public static let alignment = 64
    /// Bytes of one chunk-index entry of a zstd tensor: offset, size, xxh64 (u64 each).
    public static let chunkEntryBytes = 24

    /// XXH64 of the metadata and table (bytes 64..<tableEnd) seeded with the XXH64 of header
    /// bytes 0..<56: covers every structural byte without copying them together.
    public static func structureChecksum(_ file: UnsafeRawBufferPointer, tableEnd: Int) -> UInt64 {
        let seed = XXH64.hash(UnsafeRawBufferPointer(rebasing: file[0..<56]))
        return XXH64.hash(UnsafeRawBufferPointer(rebasing: file[headerSize..<tableEnd]), seed: seed)
    }
}

/// One entry of the tensor table, validated against the file.
public struct TensorInfo: Sendable {
    public let name: String
    public let dtype: DType
    public let codec: Codec
    /// Dimensions, outermost first; the last is the row length.
    public let shape: [Int]
    /// Absolute file offset of the stored bytes.
    public let offset: Int
    /// Stored (possibly compressed) byte count.
    public let storedSize: Int
    /// XXH64 of the stored bytes.
    public let checksum: UInt64
    /// Rows per zstd chunk (0 for raw).
    public let rowsPerChunk: Int

    public var cols: Int { shape.last ?? 1 }
    public var rows: Int { shape.dropLast().reduce(1, *) }
    public var elementCount: Int { rows * cols }
    /// Bytes of one decoded row group (``DType/groupRows`` rows).
    public var groupBytes: Int { dtype.groupBytes(cols: cols)! }
    /// Row groups (the last one zero-padded).
    public var groups: Int { (rows + dtype.groupRows - 1) / dtype.groupRows }
    /// Bytes of the decoded tensor in memory.
    public var byteSize: Int { groups * groupBytes }
    /// Row groups per zstd chunk.
    public var groupsPerChunk: Int { rowsPerChunk / dtype.groupRows }
    public var chunkCount: Int { codec == .raw ? 1 : (groups + groupsPerChunk - 1) / groupsPerChunk }
    /// The row groups chunk `c` holds.
    public func chunkGroups(_ c: Int) -> Range<Int> { c * groupsPerChunk..<min(groups, (c + 1) * groupsPerChunk) }
}

/// A read-only, validated `.tern` checkpoint, memory-mapped. Opening checks the
/// header, metadata, tensor table and every offset and size against the file; data
/// checksums are checked on demand (``verify(_:)``) and always for zstd chunks as they are read.
public final class TernFile: @unchecked Sendable {
    public let path: String
    public let version: Int
    public let metadata: Metadata
    public let tensors: [TensorInfo]
    public let map: MappedFile
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(map: MappedFile(path: path))
    }

    public init(map: MappedFile) throws {
        self.map = map
        let path = map.path
        self.path = path
        let file = map.bytes
        map.mapApart(0..<TernContainer.headerSize)
        var r = ByteReader(file, file: path)
        let magic = try r.bytes(8, "header: magic")
        guard Array(magic) == TernContainer.magic else {
            throw FormatError(file: path, field: "header: magic", "not a .tern checkpoint (expected 'TERNCKPT'); " +
                "convert GGUF files with tern-quantize")
        }
        let ver = try r.u32("header: version")
        guard ver == TernContainer.version else {
            let how = ver < TernContainer.version
                ? "it predates the interleaved q8/q4 layout; re-convert the GGUF with this tern-quantize"
                : "it is newer than this Tern; upgrade Tern or re-convert with this tern-quantize"
            throw FormatError(file: path, field: "header: version", "format version \(ver) is not supported (this " +
                "Tern reads version \(TernContainer.version)): \(how)")
        }
        version = Int(ver)
        let hsize = try r.u32("header: header size")
        guard hsize == UInt32(TernContainer.headerSize) else {
            throw FormatError(file: path, field: "header: header size", "is \(hsize), expected " +
                "\(TernContainer.headerSize)")
        }
        let metaOff = try r.count("header: metadata offset", limit: file.count)
        let metaSize = try r.count("header: metadata size", limit: file.count)
        let tableOff = try r.count("header: tensor table offset", limit: file.count)
        let tableSize = try r.count("header: tensor table size", limit: file.count)
        let tensorCount = try r.count("header: tensor count", limit: file.count / 40)
        let structSum = try r.u64("header: checksum")
        guard metaOff == TernContainer.headerSize, let metaEnd = safeAdd(metaOff, metaSize), metaEnd == tableOff,
              let tableEnd = safeAdd(tableOff, tableSize), tableEnd <= file.count else {
            throw FormatError(file: path, field: "header: section offsets", "metadata [\(metaOff), +\(metaSize)) " +
                "and tensor table [\(tableOff), +\(tableSize)) do not fit the \(file.count)-byte file")
        }
        map.mapApart(0..<tableEnd)
        guard TernContainer.structureChecksum(file, tableEnd: tableEnd) == structSum else {
            throw FormatError(file: path, field: "header: checksum", "header, metadata or tensor table is corrupt " +
                "(checksum mismatch)")
        }
        var mr = ByteReader(UnsafeRawBufferPointer(rebasing: file[0..<metaEnd]), offset: metaOff, file: path)
        metadata = try Metadata.decode(&mr, file: path)
        guard mr.remaining == 0 else {
            throw FormatError(file: path, field: "metadata", "\(mr.remaining) unexpected trailing bytes")
        }
        var tr = ByteReader(UnsafeRawBufferPointer(rebasing: file[0..<tableEnd]), offset: tableOff, file: path)
        var list: [TensorInfo] = []
        var idx: [String: Int] = [:]
        var lastEnd = tableEnd
        for i in 0..<tensorCount {
            let t = try Self.readEntry(&tr, i: i, map: map, dataStart: tableEnd, lastEnd: &lastEnd)
            guard idx[t.name] == nil else {
                throw FormatError(file: path, field: "tensor \(t.name)", "name appears twice in the tensor table")
            }
            idx[t.name] = list.count
            list.append(t)
        }
        guard tr.remaining == 0 else {
            throw FormatError(file: path, field: "tensor table", "\(tr.remaining) unexpected trailing bytes")
        }
        tensors = list
        index = idx
        // Parsed: the metadata and table pages need not stay resident.
        map.release(TernContainer.headerSize..<tableEnd)
    }

    private static func readEntry(_ r: inout ByteReader, i: Int, map: MappedFile, dataStart: Int,
                                  lastEnd: inout Int) throws -> TensorInfo {
        let file = map.bytes, path = map.path
        let name = try r.string("tensor[\(i)]: name", lengthBytes: 4)
        let f = "tensor \(name)"
        let dt = try r.u8(f + ": dtype")
        guard let dtype = DType(rawValue: dt) else {
            let known = DType.allCases.map(\.description).joined(separator: ", ")
            throw FormatError(file: path, field: f + ": dtype", "unknown dtype \(dt) (known: \(known))")
        }
        let cd = try r.u8(f + ": codec")
        guard let codec = Codec(rawValue: cd) else {
            throw FormatError(file: path, field: f + ": codec", "unknown codec \(cd) (known: raw, zstd)")
        }
        let ndim = Int(try r.u8(f + ": ndim"))
        guard (1...4).contains(ndim) else {
            throw FormatError(file: path, field: f + ": ndim", "\(ndim) dimensions (1 to 4 allowed)")
        }
        _ = try r.u8(f + ": reserved")
        var shape: [Int] = []
        var elements = 1
        for d in 0..<ndim {
            let v = try r.count(f + ": shape[\(d)]", limit: Int(Int32.max))
            guard v > 0, let e = safeMul(elements, v) else {
                throw FormatError(file: path, field: f + ": shape[\(d)]", "dimension \(v) is zero or the element " +
                    "count overflows")
            }
            elements = e
            shape.append(v)
        }
        let cols = shape.last!
        guard let size = dtype.byteSize(rows: elements / cols, cols: cols) else {
            throw FormatError(file: path, field: f + ": shape", "row length \(cols) is not a multiple of the " +
                "\(dtype) block size \(dtype.blockElements)")
        }
        let offset = try r.count(f + ": offset", limit: file.count)
        let stored = try r.count(f + ": stored size", limit: file.count)
        let sum = try r.u64(f + ": checksum")
        let rpc = Int(try r.u32(f + ": rows per chunk"))
        _ = try r.u32(f + ": reserved")
        guard offset % TernContainer.alignment == 0, offset >= lastEnd,
              let end = safeAdd(offset, stored), end <= file.count else {
            throw FormatError(file: path, field: f + ": offset", "data [\(offset), +\(stored)) is unaligned, " +
                "overlaps earlier data or runs past the end of the \(file.count)-byte file")
        }
        _ = dataStart
        lastEnd = end
        let groups = (elements / cols + dtype.groupRows - 1) / dtype.groupRows
        switch codec {
        case .raw:
            guard stored == size, rpc == 0 else {
                throw FormatError(file: path, field: f + ": stored size", "is \(stored) bytes, expected \(size) for " +
                    "\(dtype) \(shape)")
            }
        case .zstd:
            guard rpc > 0, rpc % dtype.groupRows == 0 else {
                throw FormatError(file: path, field: f + ": rows per chunk", "is \(rpc), not a positive multiple of " +
                    "\(dtype.groupRows) for \(dtype)")
            }
            let gpc = rpc / dtype.groupRows
            let chunks = (groups + gpc - 1) / gpc
            guard let indexBytes = safeMul(chunks, TernContainer.chunkEntryBytes), indexBytes <= stored else {
                throw FormatError(file: path, field: f + ": chunk index", "\(chunks) chunks do not fit in \(stored) " +
                    "stored bytes")
            }
            map.mapApart(offset..<offset + indexBytes)
            var cr = ByteReader(UnsafeRawBufferPointer(rebasing: file[offset..<end]), file: path)
            var prev = indexBytes
            for c in 0..<chunks {
                let co = try cr.count(f + ": chunk \(c) offset", limit: stored)
                let cs = try cr.count(f + ": chunk \(c) size", limit: stored)
                _ = try cr.u64(f + ": chunk \(c) checksum")
                guard co >= prev, let ce = safeAdd(co, cs), ce <= stored, cs > 0 else {
                    throw FormatError(file: path, field: f + ": chunk \(c)", "compressed bytes [\(co), +\(cs)) fall " +
                        "outside the tensor's \(stored) stored bytes")
                }
                prev = ce
            }
        }
        return TensorInfo(name: name, dtype: dtype, codec: codec, shape: shape, offset: offset,
                          storedSize: stored, checksum: sum, rowsPerChunk: rpc)
    }

    public func tensor(_ name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// The stored bytes of `t`, in place in the map.
    public func stored(_ t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: map.bytes[t.offset..<t.offset + t.storedSize])
    }

    /// Checks the whole-tensor checksum (and every chunk's, for zstd). With `releasing`, the
    /// pages read leave the resident set 16 MiB at a time.
    public func verify(_ t: TensorInfo, releasing: Bool = false) throws {
        var hasher = XXH64.Streaming()
        let s = stored(t), window = 16 << 20
        for a in stride(from: 0, to: s.count, by: window) {
            hasher.update(UnsafeRawBufferPointer(rebasing: s[a..<min(s.count, a + window)]))
            if releasing { map.release(t.offset + a..<t.offset + min(s.count, a + window)) }
        }
        guard hasher.finish() == t.checksum else {
            throw FormatError(file: path, field: "tensor \(t.name): checksum", "data is corrupt (checksum " +
                "mismatch); re-convert or re-download the file")
        }
        guard t.codec == .zstd else { return }
        for c in 0..<t.chunkCount {
            try checkChunk(t, c, compressed: mappedChunk(t, c))
            if releasing, c % 64 == 63 || c == t.chunkCount - 1 {
                let e = chunkEntry(t, c)
                map.release(t.offset..<t.offset + e.offset + e.size)
            }
        }
    }

    /// Chunk `c`'s index entry (validated when the file was opened): where its compressed bytes
    /// lie within the tensor's stored bytes, and their checksum.
    public func chunkEntry(_ t: TensorInfo, _ c: Int) -> (offset: Int, size: Int, checksum: UInt64) {
        let s = stored(t)
        let e = c * TernContainer.chunkEntryBytes
        return (Int(s.loadUnaligned(fromByteOffset: e, as: UInt64.self).littleEndian),
                Int(s.loadUnaligned(fromByteOffset: e + 8, as: UInt64.self).littleEndian),
                s.loadUnaligned(fromByteOffset: e + 16, as: UInt64.self).littleEndian)
    }

    /// Checks chunk `c`'s `compressed` bytes against its checksum, then decompresses them into
    /// `dst`, which must hold exactly the chunk's row groups. Every reader of zstd chunks (from the
    /// map or by pread) goes through here.
    public func decodeChunk(_ t: TensorInfo, _ c: Int, compressed: UnsafeRawBufferPointer,
                            into dst: UnsafeMutableRawBufferPointer) throws {
        try checkChunk(t, c, compressed: compressed)
        let groups = t.chunkGroups(c)
        guard dst.count == groups.count * t.groupBytes, Zstd.decompress(compressed, into: dst) else {
            throw FormatError(file: path, field: "tensor \(t.name): chunk \(c)", "does not decompress to " +
                "\(groups.count) row groups of \(t.groupBytes) bytes")
        }
    }

    /// Throws unless `compressed` matches chunk `c`'s checksum.
    func checkChunk(_ t: TensorInfo, _ c: Int, compressed: UnsafeRawBufferPointer) throws {
        guard XXH64.hash(compressed) == chunkEntry(t, c).checksum else {
            throw FormatError(file: path, field: "tensor \(t.name): chunk \(c)", "compressed data is corrupt " +
                "(checksum mismatch); re-convert or re-download the file")
        }
    }

    /// Chunk `c`'s compressed bytes, in place in the map.
    func mappedChunk(_ t: TensorInfo, _ c: Int) -> UnsafeRawBufferPointer {
        let e = chunkEntry(t, c)
        return UnsafeRawBufferPointer(rebasing: stored(t)[e.offset..<e.offset + e.size])
    }

    /// Decodes chunk `c` of a zstd tensor from the map into `dst`, which must hold exactly its row groups.
    public func readChunk(_ t: TensorInfo, _ c: Int, into dst: UnsafeMutableRawBufferPointer) throws {
        guard t.codec == .zstd, c >= 0, c < t.chunkCount else {
            throw FormatError(file: path, field: "tensor \(t.name)", "chunk \(c) does not exist")
        }
        try decodeChunk(t, c, compressed: mappedChunk(t, c), into: dst)
        // The compressed pages were read once; only the caller's decoded copy stays resident.
        let e = chunkEntry(t, c)
        map.release(t.offset + e.offset..<t.offset + e.offset + e.size)
    }

    /// Copies or decompresses the whole tensor into `dst` (exactly ``TensorInfo/byteSize`` bytes).
    public func read(_ t: TensorInfo, into dst: UnsafeMutableRawBufferPointer) throws {
        guard dst.count == t.byteSize else {
            throw FormatError(file: path, field: "tensor \(t.name)", "destination holds \(dst.count) bytes, tensor " +
                "needs \(t.byteSize)")
        }
        if t.codec == .raw {
            dst.copyMemory(from: stored(t))
            return
        }
        for c in 0..<t.chunkCount {
            let g = t.chunkGroups(c)
            let bytes = g.lowerBound * t.groupBytes..<g.upperBound * t.groupBytes
            try readChunk(t, c, into: UnsafeMutableRawBufferPointer(rebasing: dst[bytes]))
        }
    }

    /// Verifies every tensor; `progress` is called with (index, tensor) before each.
    /// Checks every tensor (``verify(_:)``); with `releasing`, each tensor's pages leave the
    /// resident set once checked, so verifying a large file needs little memory.
    public func verifyAll(releasing: Bool = false, progress: (Int, TensorInfo) -> Void = { _, _ in }) throws {
        for (i, t) in tensors.enumerated() {
            progress(i, t)
            try verify(t, releasing: releasing)
        }
    }
}
