/// q5: 5-bit values in blocks of 32 with an f16 scale, x = d * (q - 16), q in 0...31: ggml's Q5_0
/// bit for bit (5.5 bits per weight). Stored interleaved (``QuantKind``): per four-row group and
/// block, [d0..d3: f16][qh: 16 bytes][two 32-byte nibble halves, as q4] = 88 bytes. The nibble
/// byte 8r + j of half h holds row r's column 16h + j (low) and 16h + 8 + j (high), so column
/// 8c + j of row r is "chunk" c at position p = 8r + j; its fifth bit is bit c of qh byte p
/// (p < 16) or bit 4 + c of qh byte p - 16. One 16-byte load then shifts give every chunk's bits.
public enum Q5 {
    /// Bytes per row per block of 32 columns, as in the GGUF.
    public static let blockBytes = 22
    static let groupBlockBytes = 4 * blockBytes

    /// The 5-bit value (0...31) of row `lane`, column `col` (0..<32) of one interleaved group block.
    @inline(__always) static func value(_ gb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        let c = col / 8, p = 8 * lane + col % 8
        let b = gb.load(fromByteOffset: 24 + (c / 2) * 32 + p, as: UInt8.self)
        let low = c % 2 == 0 ? b & 0xF : b >> 4
        let hb = gb.load(fromByteOffset: 8 + p % 16, as: UInt8.self) >> (c + 4 * (p / 16)) & 1
        return Int32(low | hb << 4)
    }

    /// Sets the value of row `lane`, column `col` in a zeroed group block.
    public static func store(_ gb: UnsafeMutableRawPointer, lane: Int, col: Int, _ q: UInt8) {
        let c = col / 8, p = 8 * lane + col % 8
        let nb = gb + 24 + (c / 2) * 32 + p, hb = gb + 8 + p % 16
        nb.storeBytes(of: nb.load(as: UInt8.self) | (c % 2 == 0 ? q & 0xF : (q & 0xF) << 4), as: UInt8.self)
        hb.storeBytes(of: hb.load(as: UInt8.self) | ((q >> 4) & 1) << (c + 4 * (p / 16)), as: UInt8.self)
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for k in 0..<blocks {
            let gb = group + k * groupBlockBytes
            let d = halfToFloat(loadU16(gb, 2 * lane))
            for i in 0..<32 { out[k * 32 + i] = d * Float(value(gb, lane: lane, col: i) - 16) }
        }
    }

    /// Round-to-nearest quantization straight into interleaved groups (tests, benchmarks):
    /// d = max|x| / 15, q = clamp(round(x / d) + 16, 0, 31).
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5, rows: rows, cols: cols) { r, k, gb, lane in
            let src = x + r * cols + k * 32
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(src[i])) }
            let dh = floatToHalf(amax / 15), d = halfToFloat(dh)
            let inv: Float = d == 0 ? 0 : 1 / d
            gb.storeBytes(of: dh.littleEndian, toByteOffset: 2 * lane, as: UInt16.self)
            for i in 0..<32 { store(gb, lane: lane, col: i, UInt8(max(0, min(31, (src[i] * inv).rounded() + 16)))) }
        }
    }

    /// Scalar reference: sum over blocks of d * da * sum((q - 16) * qa), the integer sum exact.
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let gb = group + k * groupBlockBytes
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= (value(gb, lane: lane, col: i) - 16) &* Int32(a.q[k * 32 + i]) }
            sum += halfToFloat(loadU16(gb, 2 * lane)) * a.scale[k] * Float(acc)
        }
        return sum
    }

    /// Copies lane `sl` of the group block at `s` to lane `dl` of `d` (a zeroed or same-kind block).
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
        for col in 0..<32 { clear(d, lane: dl, col: col); store(d, lane: dl, col: col, UInt8(value(s, lane: sl, col: col))) }
    }

    static func clear(_ gb: UnsafeMutableRawPointer, lane: Int, col: Int) {
        let c = col / 8, p = 8 * lane + col % 8
        let nb = gb + 24 + (c / 2) * 32 + p, hb = gb + 8 + p % 16
        nb.storeBytes(of: nb.load(as: UInt8.self) & (c % 2 == 0 ? 0xF0 : 0x0F), as: UInt8.self)
        hb.storeBytes(of: hb.load(as: UInt8.self) & ~(1 << (c + 4 * (p / 16))), as: UInt8.self)
    }
}
