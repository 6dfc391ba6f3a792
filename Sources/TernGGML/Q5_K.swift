import TernKernels

/// ggml Q5_K: super-blocks of 256 = [d: f16][dmin: f16][scales: 12 bytes, Q4_K's packed 6-bit
/// (scale, min) pairs][qh: 32 bytes][qs: 128 bytes]. Element 32k + l has the nibble of
/// qs[32 (k / 2) + l] (low for even k) and fifth bit k of qh[l]; x = d * sc_k * q - dmin * m_k.
enum GGMLQ5_K {
    static let bytes = 176

    @inline(__always) static func quant(_ p: UnsafeRawPointer, _ k: Int, _ l: Int) -> UInt8 {
        let q = p.load(fromByteOffset: 48 + 32 * (k / 2) + l, as: UInt8.self)
        let h = p.load(fromByteOffset: 16 + l, as: UInt8.self) >> k & 1
        return (k % 2 == 0 ? q & 0xF : q >> 4) | h << 4
    }

    /// As ggml's dequantize_row_q5_K: d1 = d * sc and m1 = dmin * m in float, then d1 * q - m1.
    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for sb in 0..<count / 256 {
            let p = src + sb * bytes
            let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
            for k in 0..<8 {
                let (sc, m) = GGMLQ4_K.scaleMin(p + 4, k)
                let d1 = d * Float(sc), m1 = dmin * Float(m)
                for l in 0..<32 { out[sb * 256 + k * 32 + l] = d1 * Float(quant(p, k, l)) - m1 }
            }
        }
    }

    /// To tern q5k, bit for bit: each row's super-blocks written into their four-row group's lane.
    static func toQ5K(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5k, rows: rows, cols: cols) { r, s, sb, lane in
            Q5K.store(sb, lane: lane, fromQ5K: src + (r * cols / 256 + s) * bytes)
        }
    }
}
