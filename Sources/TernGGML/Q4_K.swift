import TernKernels

/// ggml Q4_K: super-blocks of 256 = [d: f16][dmin: f16][scales: 12 bytes of packed 6-bit
/// (scale, min) pairs for 8 sub-blocks][qs: 128 bytes]. Sub-block k covers elements
/// 32k..<32k+32; its quants are the low (k even) or high (k odd) nibbles of qs[32*(k/2) ..< +32].
/// x = d * sc_k * q - dmin * m_k.
enum GGMLQ4_K {
    static let bytes = 144

    /// The 6-bit (scale, min) of sub-block j (ggml's get_scale_min_k4).
    @inline(__always) static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        func b(_ i: Int) -> UInt8 { s.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (b(j) & 63, b(j + 4) & 63) }
        return ((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4))
    }

    @inline(__always) static func quant(_ p: UnsafeRawPointer, _ k: Int, _ l: Int) -> UInt8 {
        let q = p.load(fromByteOffset: 16 + 32 * (k / 2) + l, as: UInt8.self)
        return k % 2 == 0 ? q & 0xF : q >> 4
    }

    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for sb in 0..<count / 256 {
            let p = src + sb * bytes
            let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
            for k in 0..<8 {
                let (sc, m) = scaleMin(p + 4, k)
                let d1 = d * Float(sc), m1 = dmin * Float(m)
                for l in 0..<32 { out[sb * 256 + k * 32 + l] = d1 * Float(quant(p, k, l)) - m1 }
            }
        }
    }

    /// To tern q4: the same 4-bit quants; each sub-block's d*sc and -dmin*m folded into
    /// its f16 scale and min (exact up to that f16 rounding).
    static func toQ4(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) {
        for sb in 0..<count / 256 {
            let p = src + sb * bytes
            let d = halfToFloat(u16(p, 0)), dmin = halfToFloat(u16(p, 2))
            for k in 0..<8 {
                let (sc, m) = scaleMin(p + 4, k)
                let o = dst + (sb * 8 + k) * Q4.blockBytes
                o.storeBytes(of: floatToHalf(d * Float(sc)).littleEndian, toByteOffset: 0, as: UInt16.self)
                o.storeBytes(of: floatToHalf(-(dmin * Float(m))).littleEndian, toByteOffset: 2, as: UInt16.self)
                for j in 0..<16 {
                    o.storeBytes(of: quant(p, k, j) | (quant(p, k, j + 16) << 4), toByteOffset: 4 + j, as: UInt8.self)
                }
            }
        }
    }

    /// To tern q4k, bit for bit: each row's super-blocks written into their four-row group's lane.
    static func toQ4K(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q4k, rows: rows, cols: cols) { r, s, sb, lane in
            Q4K.store(sb, lane: lane, fromQ4K: src + (r * cols / 256 + s) * bytes)
        }
    }
}
