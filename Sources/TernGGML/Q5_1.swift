import TernKernels

/// ggml Q5_1: [d: f16][m: f16][qh: u32 fifth bits][16 bytes of nibbles]; x = q * d + m, q in
/// 0...31: element j < 16 the low nibble of byte j with bit j of qh, j + 16 its high nibble with
/// bit j + 16.
enum GGMLQ5_1 {
    static let bytes = 24

    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * bytes
            let d = halfToFloat(u16(p, 0)), m = halfToFloat(u16(p, 2))
            GGMLQ5_0.fiveBit(p + 4) { j, q in out[b * 32 + j] = Float(q) * d + m }
        }
    }

    /// To tern q5_1, bit for bit: each row's blocks written into their four-row group's lane.
    static func toQ5_1(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5_1, rows: rows, cols: cols) { r, k, gb, lane in
            let p = src + (r * cols / 32 + k) * bytes
            (gb + 2 * lane).copyMemory(from: p, byteCount: 2)
            (gb + 8 + 2 * lane).copyMemory(from: p + 2, byteCount: 2)
            GGMLQ5_0.fiveBit(p + 4) { j, q in Q5.store(gb + 8, lane: lane, col: j, UInt8(q)) }
        }
    }
}
