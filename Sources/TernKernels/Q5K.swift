/// q5k: ggml's Q5_K bit for bit (5.5 bits per weight): q4k with a fifth bit per value, x = d * sc
/// * q - dmin * m, q in 0...31. Stored interleaved (``QuantKind``): per four-row group and
/// super-block, q4k's 64 bytes of factors ([d0..d3][dmin0..dmin3][three 16-byte scale planes]),
/// then eight 32-column blocks of 80 bytes, each laid out as a q5 block without its scales:
/// [fifth bits: 16 bytes][two 32-byte nibble halves] = 704 bytes. So the kernels take the
/// factors as for q4k and the values as for q5 (unsigned here, with the min term of q4k).
public enum Q5K {
    /// Bytes per row per super-block of 256 columns, as in the GGUF.
    public static let blockBytes = 176
    static let groupBlockBytes = 4 * blockBytes

    /// Block `j`'s bytes as a q5 group block would have them (its scales 8 bytes before the
    /// fifth bits), so ``Q5``'s accessors read and write its values.
    @inline(__always) static func q5Block(_ sb: UnsafeRawPointer, _ j: Int) -> UnsafeRawPointer { sb + 64 + 80 * j - 8 }

    /// The 5-bit value (0...31) of row `lane`, column `col` (0..<256) of one group super-block.
    @inline(__always) static func value(_ sb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        Q5.value(q5Block(sb, col / 32), lane: lane, col: col % 32)
    }

    /// Writes row `lane` of a group super-block from one GGUF Q5_K block (176 bytes: d, dmin, the
    /// 12 scale bytes of Q4_K, qh[32], qs[128]); the values of the lane must be zero. Column
    /// 32j + l has the nibble of qs[32 (j / 2) + l] (low for even j) and bit j of qh[l].
    public static func store(_ sb: UnsafeMutableRawPointer, lane: Int, fromQ5K p: UnsafeRawPointer) {
        Q4K.storeFactors(sb, lane: lane, fromBlock: p)
        for col in 0..<256 {
            let j = col / 32, l = col % 32
            let q = p.load(fromByteOffset: 48 + 32 * (j / 2) + l, as: UInt8.self)
            let h = p.load(fromByteOffset: 16 + l, as: UInt8.self) >> j & 1
            Q5.store(UnsafeMutableRawPointer(mutating: q5Block(sb, j)), lane: lane, col: l,
                     (j % 2 == 0 ? q & 0xF : q >> 4) | h << 4)
        }
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        Q4K.dequantizeRow(group, groupBlockBytes: groupBlockBytes, lane: lane, blocks: blocks, into: out, value: value)
    }

    /// Quantization into interleaved groups (tests, benchmarks): ``Q4K/superBlock(_:levels:)`` with
    /// 31 levels, the quants packed as Q5_K's.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        precondition(cols % 256 == 0)
        return Repack.byLane(.q5k, rows: rows, cols: cols) { r, s, sb, lane in
            let (head, q) = Q4K.superBlock(x + r * cols + s * 256, levels: 31)
            var blk = head + [UInt8](repeating: 0, count: 160)
            for j in 0..<8 {
                for l in 0..<32 {
                    let v = q[32 * j + l]
                    blk[48 + 32 * (j / 2) + l] |= j % 2 == 0 ? v & 0xF : (v & 0xF) << 4
                    blk[16 + l] |= (v >> 4) << j
                }
            }
            blk.withUnsafeBytes { store(sb, lane: lane, fromQ5K: $0.baseAddress!) }
        }
    }

    /// Scalar reference: per block of 32, d sc * da * sum(q * qa) - dmin m * da * sum(qa).
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        Q4K.dot(group, groupBlockBytes: groupBlockBytes, lane: lane, a, blocks: blocks, value: value)
    }

    /// Copies lane `sl` of the group super-block at `s` to lane `dl` of `d` (zeroed or same-kind).
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        Q4K.copyFactors(s, sl, d, dl)
        for col in 0..<256 {
            let j = col / 32, block = UnsafeMutableRawPointer(mutating: q5Block(d, j))
            Q5.clear(block, lane: dl, col: col % 32)
            Q5.store(block, lane: dl, col: col % 32, UInt8(value(s, lane: sl, col: col)))
        }
    }
}
