/// A bounds-checked little-endian cursor over bytes. Every read checks the
/// remaining length first and throws a ``FormatError`` naming `field` instead of trapping.
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    public private(set) var offset: Int
    let file: String

    public init(_ base: UnsafeRawBufferPointer, offset: Int = 0, file: String) {
        self.base = base
        self.offset = offset
        self.file = file
    }

    public var remaining: Int { base.count - offset }

    @inline(__always) mutating func need(_ n: Int, _ field: @autoclosure () -> String) throws {
        guard n >= 0, offset <= base.count, n <= base.count - offset else {
            throw FormatError(file: file, field: field(),
                              "needs \(n) bytes at offset \(offset) but the file has \(max(0, base.count - offset)) " +
                                  "left (truncated or corrupt)")
        }
    }

    public mutating func skip(_ n: Int, _ field: @autoclosure () -> String) throws {
        try need(n, field())
        offset += n
    }

    public mutating func u8(_ field: @autoclosure () -> String) throws -> UInt8 {
        try need(1, field())
        defer { offset += 1 }
        return base[offset]
    }

    public mutating func u16(_ field: @autoclosure () -> String) throws -> UInt16 {
        try need(2, field())
        defer { offset += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    public mutating func u32(_ field: @autoclosure () -> String) throws -> UInt32 {
        try need(4, field())
        defer { offset += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    public mutating func u64(_ field: @autoclosure () -> String) throws -> UInt64 {
        try need(8, field())
        defer { offset += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A u64 that must fit in Int and be at most `limit`.
    public mutating func count(_ field: @autoclosure () -> String, limit: Int) throws -> Int {
        let f = field()
        let v = try u64(f)
        guard let n = intFrom(v), n <= limit else {
            throw FormatError(file: file, field: f, "value \(v) is out of range (at most \(limit))")
        }
        return n
    }

    public mutating func bytes(_ n: Int, _ field: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, field())
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: base[offset..<offset + n])
    }

    /// A length-prefixed string; `lengthBytes` is 4 (tern) or 8 (GGUF).
    /// Invalid UTF-8 is an error when `strict`, otherwise repaired with U+FFFD.
    public mutating func string(_ field: @autoclosure () -> String, lengthBytes: Int, strict: Bool = true) throws -> String {
        let f = field()
        let n = lengthBytes == 4 ? Int(try u32(f)) : try count(f, limit: remaining)
        let raw = try bytes(n, f)
        if strict {
            guard let s = String(validating: raw, as: UTF8.self) else {
                throw FormatError(file: file, field: f, "string is not valid UTF-8")
            }
            return s
        }
        return String(decoding: raw, as: UTF8.self)
    }
}

/// A growable little-endian byte sink used by the writers.
public struct ByteWriter {
    public var bytes: [UInt8] = []
    public init() {}
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }
    public mutating func f64(_ v: Double) { u64(v.bitPattern) }
    public mutating func string32(_ s: String) { let u = Array(s.utf8); u32(UInt32(u.count)); bytes.append(contentsOf: u) }
    public mutating func string64(_ s: String) { let u = Array(s.utf8); u64(UInt64(u.count)); bytes.append(contentsOf: u) }
    public mutating func pad(to alignment: Int) { while bytes.count % alignment != 0 { bytes.append(0) } }
}
