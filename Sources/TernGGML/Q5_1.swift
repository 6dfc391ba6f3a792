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
            let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0..<16 {
                let q = UInt32(p.load(fromByteOffset: 8 + j, as: UInt8.self))
                out[b * 32 + j] = Float((q & 0xF) | ((qh >> UInt32(j)) << 4) & 0x10) * d + m
                out[b * 32 + j + 16] = Float((q >> 4) | (qh >> UInt32(j + 12)) & 0x10) * d + m
            }
        }
    }

    /// To tern q5_1, bit for bit: each row's blocks written into their four-row group's lane.
    static func toQ5_1(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5_1, rows: rows, cols: cols) { r, k, gb, lane in
            Q5_1.store(gb, lane: lane, fromQ5_1: src + (r * cols / 32 + k) * bytes)
        }
    }
}
