/// GGML tensor types that GGUF files carry and Tern can read.
/// Block sizes and byte counts are those of ggml (ggml/src/ggml-common.h).
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .bf16: "BF16"
        }
    }

    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    public static var supportedList: String { allCases.map(\.description).joined(separator: ", ") }
}

/// One tensor of a GGUF file, validated against the file.
public struct GGUFTensor: Sendable {
    public let name: String
    public let type: GGMLType
    /// Dimensions outermost first (GGUF stores them innermost first).
    public let shape: [Int]
    /// Absolute offset in the file.
    public let offset: Int
    public let byteSize: Int
    public var cols: Int { shape.last! }
    public var rows: Int { shape.dropLast().reduce(1, *) }
}

/// A GGUF v2/v3 file (llama.cpp's format), memory-mapped and validated: metadata of
/// every value type (converted to ``Metadata``), tensor infos and alignment.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: Int
    public let metadata: Metadata
    public let tensors: [GGUFTensor]
    public let map: MappedFile

    public convenience init(path: String) throws { try self.init(map: MappedFile(path: path)) }

    public init(map: MappedFile) throws {
        self.map = map
        path = map.path
        let file = map.bytes
        var r = ByteReader(file, file: path)
        guard try r.u32("header: magic") == GGUFFile.magic else {
            throw FormatError(file: path, field: "header: magic", "not a GGUF file (expected 'GGUF')")
        }
        let v = try r.u32("header: version")
        guard v == 2 || v == 3 else {
            throw FormatError(file: path, field: "header: version", "GGUF version \(v) is not supported (2 and 3 are)")
        }
        version = Int(v)
        let nTensors = try r.count("header: tensor count", limit: file.count / 24)
        let nKV = try r.count("header: metadata count", limit: file.count / 12)
        var meta = Metadata()
        for i in 0..<nKV {
            let key = try r.string("metadata[\(i)]: key", lengthBytes: 8, strict: false)
            let type = try r.u32("metadata '\(key)': type")
            if let value = try Self.readValue(&r, type: type, field: "metadata '\(key)'", path: path) {
                meta[key] = value
            }
        }
        metadata = meta
        var alignment = 32
        if let a = meta.int("general.alignment") {
            guard a > 0, a <= 1 << 20, a & (a - 1) == 0 else {
                throw FormatError(file: path, field: "metadata 'general.alignment'", "\(a) is not a power of two up " +
                    "to 1 MiB")
            }
            alignment = a
        }
        var infos: [(String, [Int], GGMLType, Int)] = []
        for i in 0..<nTensors {
            let name = try r.string("tensor[\(i)]: name", lengthBytes: 8, strict: false)
            let f = "tensor \(name)"
            let nd = Int(try r.u32(f + ": n_dims"))
            guard (1...4).contains(nd) else {
                throw FormatError(file: path, field: f + ": n_dims", "\(nd) dimensions (1 to 4 allowed)")
            }
            var dims: [Int] = []
            for d in 0..<nd { dims.append(try r.count(f + ": ne[\(d)]", limit: Int(Int32.max))) }
            let t = try r.u32(f + ": type")
            guard let type = GGMLType(rawValue: t) else {
                throw FormatError(file: path, field: f + ": type", "ggml type \(t) is not supported (supported: " +
                    "\(GGMLType.supportedList))")
            }
            let off = try r.count(f + ": offset", limit: file.count)
            infos.append((name, dims.reversed(), type, off))
        }
        // A vocabulary-only file may end right after the tensor infos, before any padding.
        guard let dataStart = safeAdd(r.offset, alignment - 1).map({ $0 / alignment * alignment }),
              infos.isEmpty || dataStart <= file.count else {
            throw FormatError(file: path, field: "tensor data", "data section starts past the end of the file " +
                "(truncated)")
        }
        var list: [GGUFTensor] = []
        for (name, shape, type, off) in infos {
            let f = "tensor \(name)"
            var elements = 1
            for d in shape {
                guard d > 0, let e = safeMul(elements, d) else {
                    throw FormatError(file: path, field: f + ": shape", "dimension \(d) is zero or the element " +
                        "count overflows")
                }
                elements = e
            }
            let cols = shape.last!
            guard cols % type.blockElements == 0 else {
                throw FormatError(file: path, field: f + ": shape", "row length \(cols) is not a multiple of the " +
                    "\(type) block size \(type.blockElements)")
            }
            guard let size = safeMul(elements / type.blockElements, type.blockBytes),
                  off % alignment == 0, let start = safeAdd(dataStart, off), let end = safeAdd(start, size),
                  end <= file.count else {
                throw FormatError(file: path, field: f + ": offset", "data at offset \(off) is misaligned or runs " +
                    "past the end of the \(file.count)-byte file (truncated?)")
            }
            list.append(GGUFTensor(name: name, type: type, shape: shape, offset: start, byteSize: size))
        }
        tensors = list
    }

    public func tensor(_ name: String) -> GGUFTensor? { tensors.first { $0.name == name } }

    /// The GGUF magic ('GGUF', little-endian u32).
    static let magic: UInt32 = 0x4655_4747

    /// Whether `map` starts with the GGUF magic (the file may still be invalid).
    public static func hasMagic(_ map: MappedFile) -> Bool {
        map.bytes.count >= 4 && map.bytes.loadUnaligned(as: UInt32.self) == magic
    }

    public func bytes(_ t: GGUFTensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: map.bytes[t.offset..<t.offset + t.byteSize])
    }

    /// Reads one value of GGUF type `type`. Nested arrays are skipped (returns nil).
    static func readValue(_ r: inout ByteReader, type: UInt32, field f: String, path: String) throws -> MetadataValue? {
        switch type {
        case 0: return .int(Int64(try r.u8(f)))
        case 1: return .int(Int64(Int8(bitPattern: try r.u8(f))))
        case 2: return .int(Int64(try r.u16(f)))
        case 3: return .int(Int64(Int16(bitPattern: try r.u16(f))))
        case 4: return .int(Int64(try r.u32(f)))
        case 5: return .int(Int64(Int32(bitPattern: try r.u32(f))))
        case 6: return .float(Double(Float(bitPattern: try r.u32(f))))
        case 7:
            let b = try r.u8(f)
            guard b <= 1 else { throw FormatError(file: path, field: f, "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case 8: return .string(try r.string(f, lengthBytes: 8, strict: false))
        case 10:
            let u = try r.u64(f)
            return .int(Int64(bitPattern: u))
        case 11: return .int(Int64(bitPattern: try r.u64(f)))
        case 12: return .float(Double(bitPattern: try r.u64(f)))
        case 9:
            let et = try r.u32(f + ": element type")
            let n = try r.count(f + ": element count", limit: r.remaining)
            switch et {
            case 8:
                var a: [String] = []
                a.reserveCapacity(n)
                for j in 0..<n { a.append(try r.string(f + "[\(j)]", lengthBytes: 8, strict: false)) }
                return .strings(a)
            case 6:
                let raw = try r.bytes(try mul(n, 4, f, path), f)
                return .floats((0..<n).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                })
            case 0...5, 7, 10, 11:
                var a: [Int32] = []
                a.reserveCapacity(n)
                for _ in 0..<n {
                    switch try readValue(&r, type: et, field: f, path: path) {
                    case .int(let x)?: a.append(Int32(truncatingIfNeeded: x))
                    case .bool(let b)?: a.append(b ? 1 : 0)
                    default: break
                    }
                }
                return .ints(a)
            case 12:
                var a: [Float] = []
                for _ in 0..<n { a.append(Float(Double(bitPattern: try r.u64(f)))) }
                return .floats(a)
            case 9:
                for _ in 0..<n { _ = try readValue(&r, type: 9, field: f, path: path) }
                return nil
            default:
                throw FormatError(file: path, field: f, "unknown array element type \(et)")
            }
        default:
            throw FormatError(file: path, field: f, "unknown value type \(type) (GGUF defines 0-12)")
        }
    }

    static func mul(_ a: Int, _ b: Int, _ f: String, _ path: String) throws -> Int {
        guard let v = safeMul(a, b) else { throw FormatError(file: path, field: f, "size overflows") }
        return v
    }
}

/// Opens either checkpoint kind for its metadata (tokenizer vocabularies, `tern tokenize`).
public func loadMetadata(path: String) throws -> Metadata {
    let map = try MappedFile(path: path)
    if GGUFFile.hasMagic(map) {
        return try GGUFFile(map: map).metadata
    }
    return try TernFile(map: map).metadata
}
