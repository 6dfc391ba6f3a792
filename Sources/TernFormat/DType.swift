/// Element types of tensors in a `.tern` file. See docs/format.md for byte layouts.
public enum DType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary32, little-endian.
    case f32 = 0
    /// IEEE 754 binary16, little-endian.
    case f16 = 1
    /// int8 in groups of 32: per block an f16 scale `d` then 32 int8 `q`; x = d * q (34 bytes).
    case q8 = 2
    /// uint4 in groups of 32: per block f16 scale `d`, f16 min `m`, then 16 bytes where
    /// byte j holds element j (low nibble) and element j+16 (high nibble); x = d * q + m (20 bytes).
    case q4 = 3

    public var description: String { ["f32", "f16", "q8", "q4"][Int(rawValue)] }

    public init?(name: String) {
        guard let t = DType.allCases.first(where: { $0.description == name }) else { return nil }
        self = t
    }

    /// Elements per block (1 for float types).
    public var blockElements: Int { self == .q8 || self == .q4 ? 32 : 1 }
    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q8: 34
        case .q4: 20
        }
    }

    /// Bytes for one row of `cols` elements, nil when `cols` is not a whole number of blocks or overflows.
    public func rowBytes(cols: Int) -> Int? {
        guard cols >= 0, cols % blockElements == 0 else { return nil }
        return safeMul(cols / blockElements, blockBytes)
    }
}

/// How a tensor's bytes are stored.
public enum Codec: UInt8, Sendable, CustomStringConvertible {
    /// The bytes as used in memory; mapped in place.
    case raw = 0
    /// Independently decompressible zstd chunks of whole rows, each with its own checksum.
    case zstd = 1

    public var description: String { self == .raw ? "raw" : "zstd" }
}
