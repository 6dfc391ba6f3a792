/// The weight quantization formats of a `.tern` file, as seen by kernels.
///
/// All store rows interleaved in groups of four (docs/format.md): for each group and each block
/// of columns, the four rows' scales then their values, arranged so that one 32-byte load holds
/// 8 consecutive columns of all four rows. One int8 dot instruction then serves four rows and
/// the float scaling is shared by them. q5, q5_1, q6, q4k and q5k keep the bits of ggml's Q5_0,
/// Q5_1, Q6_K, Q4_K and Q5_K, so a model reads no more bytes per token than its GGUF. The raw values are the names of
/// the file's dtypes (`QuantKind(rawValue: dtype.description)`).
public enum QuantKind: String, Sendable, CaseIterable {
    case q8, q4, q5, q6, q4k, q5k, q5_1

    /// Columns per block of the layout: 32, or 256 for the super-blocks of q6, q4k and q5k.
    public var blockColumns: Int { self == .q6 || self == .q4k || self == .q5k ? 256 : 32 }
    /// Bytes per block (``blockColumns``) of one row, averaged over the group.
    public var blockBytes: Int {
        switch self {
        case .q8: Q8.blockBytes
        case .q4: Q4.blockBytes
        case .q5: Q5.blockBytes
        case .q6: Q6.blockBytes
        case .q4k: Q4K.blockBytes
        case .q5k: Q5K.blockBytes
        case .q5_1: Q5_1.blockBytes
        }
    }
    /// Bytes per block (``blockColumns``) of a four-row group.
    public var groupBlockBytes: Int { 4 * blockBytes }
}

/// A quantized weight matrix in the interleaved layout, used in place (usually from the file map).
public struct QMatrix: @unchecked Sendable {
    public let kind: QuantKind
    public let rows: Int
    public let cols: Int
    public let base: UnsafeRawPointer

    public init(kind: QuantKind, rows: Int, cols: Int, base: UnsafeRawPointer) {
        precondition(cols % kind.blockColumns == 0 && rows > 0)
        self.kind = kind
        self.rows = rows
        self.cols = cols
        self.base = base
    }

    /// Blocks of 32 columns per row (the kernels' unit; q6 has eight per super-block).
    public var blocks: Int { cols / 32 }
    public var groups: Int { (rows + 3) / 4 }
    public var groupBytes: Int { cols / kind.blockColumns * kind.groupBlockBytes }
    /// Bytes of the whole matrix (the last group padded to four rows).
    public var byteSize: Int { groups * groupBytes }
    @inline(__always) public func group(_ g: Int) -> UnsafeRawPointer { base + g * groupBytes }

    /// Dequantizes row `r` into `out` (`cols` floats).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch kind {
        case .q8: Q8.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q4: Q4.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q5: Q5.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q6: Q6.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q4k: Q4K.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q5k: Q5K.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        case .q5_1: Q5_1.dequantizeRow(group(r / 4), lane: r % 4, blocks: blocks, into: out)
        }
    }

    /// Row `r` . `v` by the format's scalar reference (`Q8.dot` and its kin).
    public func referenceDot(_ r: Int, _ v: QuantizedVector) -> Float {
        let grp = group(r / 4), lane = r % 4
        switch kind {
        case .q8: return Q8.dot(grp, lane: lane, v, blocks: blocks)
        case .q4: return Q4.dot(grp, lane: lane, v, blocks: blocks)
        case .q5: return Q5.dot(grp, lane: lane, v, blocks: blocks)
        case .q6: return Q6.dot(grp, lane: lane, v, blocks: blocks)
        case .q4k: return Q4K.dot(grp, lane: lane, v, blocks: blocks)
        case .q5k: return Q5K.dot(grp, lane: lane, v, blocks: blocks)
        case .q5_1: return Q5_1.dot(grp, lane: lane, v, blocks: blocks)
        }
    }

    /// Quantizes a row-major float matrix into a new interleaved buffer (tests, benchmarks).
    public static func quantize(_ kind: QuantKind, _ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        if kind == .q5 { return Q5.quantize(x, rows: rows, cols: cols) }
        if kind == .q6 { return Q6.quantize(x, rows: rows, cols: cols) }
        if kind == .q4k { return Q4K.quantize(x, rows: rows, cols: cols) }
        if kind == .q5k { return Q5K.quantize(x, rows: rows, cols: cols) }
        if kind == .q5_1 { return Q5_1.quantize(x, rows: rows, cols: cols) }
        let rowMajor = [UInt8](unsafeUninitializedCapacity: rows * cols / 32 * kind.blockBytes) { b, n in
            n = rows * cols / 32 * kind.blockBytes
            switch kind {
            case .q8: Q8.quantize(x, count: rows * cols, into: b.baseAddress!)
            case .q4: Q4.quantize(x, count: rows * cols, into: b.baseAddress!)
            case .q5, .q6, .q4k, .q5k, .q5_1: fatalError("unreachable")
            }
        }
        return Repack.interleave(kind, rowMajor, rows: rows, cols: cols)
    }
}

extension QMatrix {
    /// Copies row `r` of this matrix, bit for bit, into lane `lane` of the four-row group at
    /// `dst` (a matrix of the same kind and width). Building a row subset this way (a
    /// reduced-vocabulary draft head) keeps every scale and quant of the source rows.
    public func copyRow(_ r: Int, toGroup dst: UnsafeMutableRawPointer, lane: Int) {
        QMatrix.copyLane(kind, blocks: blocks, from: group(r / 4), lane: r % 4, to: dst, lane: lane)
    }

    /// Copies lane `sl` of the group at `src` to lane `dl` of the group at `dst` (`blocks` blocks of 32 columns).
    public static func copyLane(_ kind: QuantKind, blocks: Int, from src: UnsafeRawPointer, lane sl: Int,
                                to dst: UnsafeMutableRawPointer, lane dl: Int) {
        let gbb = kind.groupBlockBytes
        switch kind {
        case .q5:
            for k in 0..<blocks { Q5.copyLane(src + k * gbb, sl, dst + k * gbb, dl) }
            return
        case .q6:
            for s in 0..<blocks / 8 { Q6.copyLane(src + s * gbb, sl, dst + s * gbb, dl) }
            return
        case .q4k:
            for s in 0..<blocks / 8 { Q4K.copyLane(src + s * gbb, sl, dst + s * gbb, dl) }
            return
        case .q5k:
            for s in 0..<blocks / 8 { Q5K.copyLane(src + s * gbb, sl, dst + s * gbb, dl) }
            return
        case .q5_1:
            for k in 0..<blocks { Q5_1.copyLane(src + k * gbb, sl, dst + k * gbb, dl) }
            return
        case .q8, .q4: break
        }
        for k in 0..<blocks {
            let s = src + k * gbb, d = dst + k * gbb
            // Layout of one group block (docs/format.md): q8 = 4 f16 scales, then 4 chunks of 8
            // columns x 4 lanes x 8 bytes; q4 = 4 scales, 4 mins, then 2 halves x 4 lanes x 8 bytes.
            (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
            switch kind {
            case .q8:
                for c in 0..<4 { (d + 8 + c * 32 + dl * 8).copyMemory(from: s + 8 + c * 32 + sl * 8, byteCount: 8) }
            case .q4:
                (d + 8 + 2 * dl).copyMemory(from: s + 8 + 2 * sl, byteCount: 2)
                for h in 0..<2 { (d + 16 + h * 32 + dl * 8).copyMemory(from: s + 16 + h * 32 + sl * 8, byteCount: 8) }
            case .q5, .q6, .q4k, .q5k, .q5_1: break
            }
        }
    }
}

/// A quantized matrix that owns its memory (e.g. a row subset built at load time).
public final class OwnedQMatrix: @unchecked Sendable {
    public let matrix: QMatrix
    private let storage: UnsafeMutableRawPointer

    /// Zeroed storage for `rows` x `cols`; fill it through ``groupPointer(_:)``.
    public init(kind: QuantKind, rows: Int, cols: Int) {
        let probe = QMatrix(kind: kind, rows: rows, cols: cols, base: UnsafeRawPointer(bitPattern: 64)!)
        storage = .allocate(byteCount: max(64, probe.byteSize), alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: max(64, probe.byteSize))
        matrix = QMatrix(kind: kind, rows: rows, cols: cols, base: storage)
    }

    deinit { storage.deallocate() }

    public func groupPointer(_ g: Int) -> UnsafeMutableRawPointer { storage + g * matrix.groupBytes }
}

/// Conversion between row-major blocks (ggml's Q8_0 / Q4_1 byte layouts, which the converter
/// produces first) and the interleaved four-row groups of the `.tern` format.
public enum Repack {
    /// A zeroed interleaved `rows` x `cols` buffer of `kind`, filled by `body(row, block, groupBlock,
    /// lane)` once per row and block of ``QuantKind/blockColumns`` columns: the writers of q5, q5_1, q6,
    /// q4k and q5k place each row's values straight into its lane of the four-row group block.
    public static func byLane(_ kind: QuantKind, rows: Int, cols: Int,
                              _ body: (Int, Int, UnsafeMutableRawPointer, Int) -> Void) -> [UInt8] {
        let blocks = cols / kind.blockColumns, gbb = kind.groupBlockBytes
        var out = [UInt8](repeating: 0, count: (rows + 3) / 4 * blocks * gbb)
        out.withUnsafeMutableBytes { o in
            for r in 0..<rows {
                for k in 0..<blocks { body(r, k, o.baseAddress! + ((r / 4) * blocks + k) * gbb, r % 4) }
            }
        }
        return out
    }

    /// Row-major blocks -> interleaved groups (the last group zero-padded).
    public static func interleave(_ kind: QuantKind, _ src: [UInt8], rows: Int, cols: Int) -> [UInt8] {
        precondition(kind == .q8 || kind == .q4, "q5, q5_1, q6, q4k and q5k are written interleaved by their " +
            "converters")
        let blocks = cols / 32, bb = kind.blockBytes
        let groups = (rows + 3) / 4
        var out = [UInt8](repeating: 0, count: groups * blocks * 4 * bb)
        src.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { o in
                for r in 0..<rows {
                    let g = r / 4, lane = r % 4
                    for k in 0..<blocks {
                        let blk = s.baseAddress! + (r * blocks + k) * bb
                        let gb = o.baseAddress! + (g * blocks + k) * 4 * bb
                        switch kind {
                        case .q8:
                            (gb + 2 * lane).copyMemory(from: blk, byteCount: 2)
                            for c in 0..<4 { (gb + 8 + c * 32 + lane * 8).copyMemory(from: blk + 2 + c * 8, byteCount: 8) }
                        case .q4:
                            (gb + 2 * lane).copyMemory(from: blk, byteCount: 2)
                            (gb + 8 + 2 * lane).copyMemory(from: blk + 2, byteCount: 2)
                            // Source byte j: element j (low) and j + 16 (high).
                            func v(_ e: Int) -> UInt8 {
                                let b = blk.load(fromByteOffset: 4 + e % 16, as: UInt8.self)
                                return e < 16 ? b & 0xF : b >> 4
                            }
                            for h in 0..<2 {
                                for j in 0..<8 {
                                    let byte = v(16 * h + j) | v(16 * h + 8 + j) << 4
                                    gb.storeBytes(of: byte, toByteOffset: 16 + h * 32 + lane * 8 + j, as: UInt8.self)
                                }
                            }
                        case .q5, .q6, .q4k, .q5k, .q5_1: break
                        }
                    }
                }
            }
        }
        return out
    }
}
