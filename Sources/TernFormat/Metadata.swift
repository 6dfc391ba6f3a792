/// One metadata value in a `.tern` file.
public enum MetadataValue: Equatable, Sendable {
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case ints([Int32])
    case floats([Float])
    case strings([String])

    var tag: UInt8 {
        switch self {
        case .int: 1
        case .float: 2
        case .bool: 3
        case .string: 4
        case .ints: 5
        case .floats: 6
        case .strings: 7
        }
    }
}

/// Ordered key/value metadata: architecture, hyperparameters, tokenizer, provenance.
public struct Metadata: Equatable, Sendable {
    public private(set) var keys: [String] = []
    public private(set) var values: [String: MetadataValue] = [:]

    public init() {}

    public subscript(key: String) -> MetadataValue? {
        get { values[key] }
        set {
            if values[key] == nil, newValue != nil { keys.append(key) }
            if newValue == nil { keys.removeAll { $0 == key } }
            values[key] = newValue
        }
    }

    public func int(_ key: String) -> Int? {
        switch values[key] {
        case .int(let v): return Int(exactly: v)
        case .float(let v): return Int(exactly: v)
        default: return nil
        }
    }

    public func float(_ key: String) -> Double? {
        switch values[key] {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: return nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        if case .bool(let v) = values[key] { return v }
        return nil
    }

    public func string(_ key: String) -> String? {
        if case .string(let v) = values[key] { return v }
        return nil
    }

    public func strings(_ key: String) -> [String]? {
        if case .strings(let v) = values[key] { return v }
        return nil
    }

    public func floats(_ key: String) -> [Float]? {
        if case .floats(let v) = values[key] { return v }
        return nil
    }

    public func ints(_ key: String) -> [Int32]? {
        if case .ints(let v) = values[key] { return v }
        return nil
    }

    func encode(into w: inout ByteWriter) {
        w.u64(UInt64(keys.count))
        for k in keys {
            let v = values[k]!
            w.string32(k)
            w.u8(v.tag)
            switch v {
            case .int(let x): w.u64(UInt64(bitPattern: x))
            case .float(let x): w.f64(x)
            case .bool(let x): w.u8(x ? 1 : 0)
            case .string(let x): w.string32(x)
            case .ints(let x): w.u64(UInt64(x.count)); for e in x { w.u32(UInt32(bitPattern: e)) }
            case .floats(let x): w.u64(UInt64(x.count)); for e in x { w.f32(e) }
            case .strings(let x): w.u64(UInt64(x.count)); for e in x { w.string32(e) }
            }
        }
    }

    static func decode(_ r: inout ByteReader, file: String) throws -> Metadata {
        var m = Metadata()
        let n = try r.count("metadata: count", limit: r.remaining / 6)
        for i in 0..<n {
            let key = try r.string("metadata[\(i)]: key", lengthBytes: 4)
            let f = "metadata '\(key)'"
            let tag = try r.u8(f + ": type")
            let v: MetadataValue
            switch tag {
            case 1: v = .int(Int64(bitPattern: try r.u64(f)))
            case 2: v = .float(Double(bitPattern: try r.u64(f)))
            case 3:
                let b = try r.u8(f)
                guard b <= 1 else { throw FormatError(file: file, field: f, "bool value \(b) is neither 0 nor 1") }
                v = .bool(b == 1)
            case 4: v = .string(try r.string(f, lengthBytes: 4))
            case 5:
                let c = try r.count(f + ": count", limit: r.remaining / 4)
                let raw = try r.bytes(c * 4, f)
                v = .ints((0..<c).map {
                    Int32(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                })
            case 6:
                let c = try r.count(f + ": count", limit: r.remaining / 4)
                let raw = try r.bytes(c * 4, f)
                v = .floats((0..<c).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
                })
            case 7:
                let c = try r.count(f + ": count", limit: r.remaining / 4)
                var a: [String] = []
                a.reserveCapacity(c)
                for j in 0..<c { a.append(try r.string(f + "[\(j)]", lengthBytes: 4)) }
                v = .strings(a)
            default:
                throw FormatError(file: file, field: f, "unknown value type \(tag) (known: 1-7); the file may be " +
                    "corrupt or from a newer Tern")
            }
            guard m[key] == nil else { throw FormatError(file: file, field: f, "key appears twice") }
            m[key] = v
        }
        return m
    }
}
