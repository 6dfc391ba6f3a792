/// Element types of tensors in a `.tern` file. See docs/format.md for byte layouts.
public enum DType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary32, little-endian.
    case f32 = 0
    /// IEEE 754 binary16, little-endian.
    case f16 = 1
    /// int8 in blocks of 32 with an f16 scale `d`: x = d * q. Rows are interleaved in groups of
    /// four: per group and block, 4 f16 scales then 4 chunks of [4 rows x 8 int8] (136 bytes).
    case q8 = 2
    /// uint4 in blocks of 32 with f16 scale `d` and min `m`: x = d * q + m. Rows interleaved in
    /// groups of four: per group and block, 4 scales, 4 mins, then two 32-byte halves whose byte
    /// 8r + j holds row r's column 16h + j (low nibble) and 16h + 8 + j (high nibble) (80 bytes).
    case q4 = 3
    /// ggml Q5_0's bits: 5-bit q in blocks of 32 with an f16 scale, x = d * (q - 16). Rows
    /// interleaved in groups of four: per group and block, 4 scales, 16 bytes of fifth bits, then
    /// the two nibble halves of q4 (88 bytes).
    case q5 = 4
    /// ggml Q6_K's bits: 6-bit q in super-blocks of 256 with an f16 d and 16 int8 scales,
    /// x = d * sc * (q - 32). Rows interleaved in groups of four: per group and super-block, 4 d,
    /// 64 scales, then 8 blocks of nibble halves and 32 bytes of top-bit pairs (840 bytes).
    case q6 = 5
    /// ggml Q4_K's bits: 4-bit q in super-blocks of 256 with f16 d and dmin and 6-bit scales and
    /// mins per 32, x = d * sc * q - dmin * m. Rows interleaved in groups of four: per group and
    /// super-block, 4 d, 4 dmin, the 4 rows' packed scales as three 16-byte planes, then 8
    /// blocks of q4 nibble halves (576 bytes).
    case q4k = 6
    /// ggml Q5_K's bits: q4k with a fifth bit, x = d * sc * q - dmin * m, q in 0...31. Per group
    /// and super-block, q4k's 64 bytes of factors, then 8 blocks of 16 bytes of fifth bits (as in
    /// q5) and the q4 nibble halves (704 bytes).
    case q5k = 7
    /// ggml Q5_1's bits: 5-bit q in blocks of 32 with an f16 scale and min, x = d * q + m. Per
    /// group and block, q4's 4 scales and 4 mins, then q5's 16 bytes of fifth bits and the two
    /// nibble halves (96 bytes).
    case q5_1 = 8

    public var description: String { ["f32", "f16", "q8", "q4", "q5", "q6", "q4k", "q5k", "q5_1"][Int(rawValue)] }

    /// A quantized (group-interleaved) type.
    public var isQuantized: Bool { groupRows == 4 }

    public init?(name: String) {
        guard let t = DType.allCases.first(where: { $0.description == name }) else { return nil }
        self = t
    }

    /// Elements per block (1 for float types).
    public var blockElements: Int {
        switch self {
        case .f32, .f16: 1
        case .q8, .q4, .q5, .q5_1: 32
        case .q6, .q4k, .q5k: 256
        }
    }
    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16: 2
        case .q8: 34
        case .q4: 20
        case .q5: 22
        case .q5_1: 24
        case .q6: 210
        case .q4k: 144
        case .q5k: 176
        }
    }

    /// Rows stored together (interleaved): 4 for the quantized types, 1 for floats.
    public var groupRows: Int { self == .f32 || self == .f16 ? 1 : 4 }

    /// Bytes for one group of ``groupRows`` rows of `cols` elements; nil when `cols` is not a
    /// whole number of blocks or the size overflows.
    public func groupBytes(cols: Int) -> Int? {
        guard cols > 0, cols % blockElements == 0, let r = safeMul(cols / blockElements, blockBytes) else { return nil }
        return safeMul(r, groupRows)
    }

    /// Bytes of a `rows` x `cols` tensor (the last group zero-padded to ``groupRows`` rows).
    public func byteSize(rows: Int, cols: Int) -> Int? {
        guard rows > 0, let g = groupBytes(cols: cols) else { return nil }
        return safeMul((rows + groupRows - 1) / groupRows, g)
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
