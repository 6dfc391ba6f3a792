import TernKernels

/// ggml Q6_K: super-blocks of 256 = [ql: 128][qh: 64][scales: 16 x i8][d: f16];
/// x = d * scale[i/16] * (q - 32) with 6-bit q split over ql (low 4 bits) and qh (high 2).
/// Tern's q6 keeps these bits (``toQ6(_:rows:cols:)``).
enum GGMLQ6_K {
    static let bytes = 210

    /// Calls body(i, q, scale index) for the 256 values of one super-block (q in 0...63).
    @inline(__always) static func values(_ p: UnsafeRawPointer, _ body: (Int, UInt8) -> Void) {
        for n in 0..<2 {
            let ql = p + 64 * n, qh = p + 128 + 32 * n
            func b(_ q: UnsafeRawPointer, _ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
            for l in 0..<32 {
                let h = b(qh, l)
                body(128 * n + l, (b(ql, l) & 0xF) | (h & 3) << 4)
                body(128 * n + l + 32, (b(ql, l + 32) & 0xF) | ((h >> 2) & 3) << 4)
                body(128 * n + l + 64, (b(ql, l) >> 4) | ((h >> 4) & 3) << 4)
                body(128 * n + l + 96, (b(ql, l + 32) >> 4) | ((h >> 6) & 3) << 4)
            }
        }
    }

    /// To tern q6, bit for bit: d, the 16 scales and the 6-bit values of each row's
    /// super-blocks written into their four-row group's lane.
    static func toQ6(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q6, rows: rows, cols: cols) { r, s, sb, lane in
            let p = src + (r * cols / 256 + s) * bytes
            (sb + 2 * lane).copyMemory(from: p + 208, byteCount: 2)
            for i in 0..<16 { Q6.storeScale(sb, lane: lane, col: 16 * i, p.load(fromByteOffset: 192 + i, as: Int8.self)) }
            values(p) { i, q in Q6.store(sb, lane: lane, col: i, q) }
        }
    }

    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for sb in 0..<count / 256 {
            let p = src + sb * bytes
            let d = halfToFloat(u16(p, 208))
            let y = out + sb * 256
            for n in 0..<2 {
                let ql = p + 64 * n, qh = p + 128 + 32 * n, sc = p + 192 + 8 * n
                func b(_ q: UnsafeRawPointer, _ i: Int) -> Int { Int(q.load(fromByteOffset: i, as: UInt8.self)) }
                func s(_ i: Int) -> Float { Float(sc.load(fromByteOffset: i, as: Int8.self)) }
                for l in 0..<32 {
                    let i = l / 16
                    let q1 = ((b(ql, l) & 0xF) | (((b(qh, l) >> 0) & 3) << 4)) - 32
                    let q2 = ((b(ql, l + 32) & 0xF) | (((b(qh, l) >> 2) & 3) << 4)) - 32
                    let q3 = ((b(ql, l) >> 4) | (((b(qh, l) >> 4) & 3) << 4)) - 32
                    let q4 = ((b(ql, l + 32) >> 4) | (((b(qh, l) >> 6) & 3) << 4)) - 32
                    y[128 * n + l] = d * s(i) * Float(q1)
                    y[128 * n + l + 32] = d * s(i + 2) * Float(q2)
                    y[128 * n + l + 64] = d * s(i + 4) * Float(q3)
                    y[128 * n + l + 96] = d * s(i + 6) * Float(q4)
                }
            }
        }
    }
}
