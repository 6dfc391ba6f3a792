import TernKernels

/// ggml Q5_0: [d: f16][qh: u32 high bits][16 bytes low nibbles]; x = (q - 16) * d, q in 0...31.
enum GGMLQ5_0 {
    @inline(__always) static func values(_ p: UnsafeRawPointer, _ body: (Int, Int) -> Void) {
        fiveBit(p + 2) { j, q in body(j, q - 16) }
    }

    /// The 32 five-bit values (0...31) of a Q5_0 / Q5_1 block whose qh (a little-endian u32) is at
    /// `qh`, followed by its 16 bytes of nibbles: element j < 16 the low nibble of byte j with bit
    /// j of qh, j + 16 its high nibble with bit j + 16.
    @inline(__always) static func fiveBit(_ qh: UnsafeRawPointer, _ body: (Int, Int) -> Void) {
        let h = UInt32(littleEndian: qh.loadUnaligned(as: UInt32.self))
        for j in 0..<16 {
            let q = UInt32(qh.load(fromByteOffset: 4 + j, as: UInt8.self))
            body(j, Int((q & 0xF) | ((h >> UInt32(j)) << 4) & 0x10))
            body(j + 16, Int((q >> 4) | (h >> UInt32(j + 12)) & 0x10))
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
