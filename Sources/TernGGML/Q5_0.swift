import TernKernels

/// ggml Q5_0: [d: f16][qh: u32 high bits][16 bytes low nibbles]; x = (q - 16) * d, q in 0...31.
enum GGMLQ5_0 {
    @inline(__always) static func values(_ p: UnsafeRawPointer, _ body: (Int, Int) -> Void) {
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = UInt32(p.load(fromByteOffset: 6 + j, as: UInt8.self))
            let h0 = ((qh >> UInt32(j)) << 4) & 0x10
            let h1 = (qh >> UInt32(j + 12)) & 0x10
            body(j, Int((q & 0xF) | h0) - 16)
            body(j + 16, Int((q >> 4) | h1) - 16)
        }
    }

    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * 22
            let d = halfToFloat(u16(p, 0))
            values(p) { j, q in out[b * 32 + j] = Float(q) * d }
        }
    }

    /// To tern q8 without requantizing: q - 16 fits int8, same scale.
    static func toQ8(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) {
        for b in 0..<count / 32 {
            let p = src + b * 22, o = dst + b * Q8.blockBytes
            o.copyMemory(from: p, byteCount: 2)
            values(p) { j, q in o.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self) }
        }
    }

    /// To tern q5, bit for bit: each row's blocks written into their four-row group's lane.
    static func toQ5(_ src: UnsafeRawPointer, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5, rows: rows, cols: cols) { r, k, gb, lane in
            let p = src + (r * cols / 32 + k) * 22
            (gb + 2 * lane).copyMemory(from: p, byteCount: 2)
            values(p) { j, q in Q5.store(gb, lane: lane, col: j, UInt8(q + 16)) }
        }
    }
}
