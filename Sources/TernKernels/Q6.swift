/// q6: 6-bit values in super-blocks of 256 columns: x = d * sc[i / 16] * (q - 32), q in 0...63,
/// one f16 d and sixteen int8 scales per row and super-block: ggml's Q6_K bit for bit (6.5625
/// bits per weight). Stored interleaved (``QuantKind``): per four-row group and super-block,
/// [d0..d3: f16][scales: byte 8k + 4h + r = row r's scale of columns 32k + 16h ..< +16][eight
/// 32-column blocks k of 96 bytes: two 32-byte nibble halves as q4, then qh: 32 bytes whose byte
/// p = 8r + j holds, in bits 2c and 2c + 1, the top two bits of row r's column 8c + j] = 840 bytes.
/// A kernel takes the integer dots of each 16-column half separately and weights them by the
/// int8 scales before the one float multiply per block.
public enum Q6 {
    /// Bytes per row per super-block of 256 columns, as in the GGUF.
    public static let blockBytes = 210
    static let groupBlockBytes = 4 * blockBytes

    @inline(__always) static func block(_ sb: UnsafeRawPointer, _ col: Int) -> UnsafeRawPointer { sb + 72 + (col / 32) * 96 }

    /// The 6-bit value (0...63) of row `lane`, column `col` (0..<256) of one group super-block.
    @inline(__always) static func value(_ sb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        let gb = block(sb, col), c = (col % 32) / 8, p = 8 * lane + col % 8
        let b = gb.load(fromByteOffset: (c / 2) * 32 + p, as: UInt8.self)
        let low = c % 2 == 0 ? b & 0xF : b >> 4
        let high = gb.load(fromByteOffset: 64 + p, as: UInt8.self) >> (2 * c) & 3
        return Int32(low | high << 4)
    }

    /// Row `lane`'s int8 scale of column `col` (0..<256).
    @inline(__always) static func scale(_ sb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        Int32(sb.load(fromByteOffset: 8 + 8 * (col / 32) + 4 * ((col % 32) / 16) + lane, as: Int8.self))
    }

    /// Sets the value of row `lane`, column `col` in a group super-block whose bits there are zero.
    public static func store(_ sb: UnsafeMutableRawPointer, lane: Int, col: Int, _ q: UInt8) {
        let gb = UnsafeMutableRawPointer(mutating: block(sb, col)), c = (col % 32) / 8, p = 8 * lane + col % 8
        let nb = gb + (c / 2) * 32 + p, hb = gb + 64 + p
        nb.storeBytes(of: nb.load(as: UInt8.self) | (c % 2 == 0 ? q & 0xF : (q & 0xF) << 4), as: UInt8.self)
        hb.storeBytes(of: hb.load(as: UInt8.self) | ((q >> 4) & 3) << (2 * c), as: UInt8.self)
    }

    public static func storeScale(_ sb: UnsafeMutableRawPointer, lane: Int, col: Int, _ s: Int8) {
        sb.storeBytes(of: s, toByteOffset: 8 + 8 * (col / 32) + 4 * ((col % 32) / 16) + lane, as: Int8.self)
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for s in 0..<blocks / 8 {
            let sb = group + s * groupBlockBytes
            let d = halfToFloat(loadU16(sb, 2 * lane))
            for i in 0..<256 {
                out[s * 256 + i] = d * Float(scale(sb, lane: lane, col: i)) * Float(value(sb, lane: lane, col: i) - 32)
            }
        }
    }

    /// Round-to-nearest quantization straight into interleaved groups (tests, benchmarks): per 16
    /// columns s = max|x| / 31; per 256, d = max s / 127, sc = round(s / d), q = round(x / (d sc)) + 32.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        precondition(cols % 256 == 0)
        return Repack.byLane(.q6, rows: rows, cols: cols) { r, s, sb, lane in
            let src = x + r * cols + s * 256
            var sub = [Float](repeating: 0, count: 16)
            for i in 0..<256 { sub[i / 16] = max(sub[i / 16], abs(src[i]) / 31) }
            let dh = floatToHalf(sub.max()! / 127), d = halfToFloat(dh)
            sb.storeBytes(of: dh.littleEndian, toByteOffset: 2 * lane, as: UInt16.self)
            for i in 0..<256 {
                let sc = d == 0 ? 0 : max(-128, min(127, (sub[i / 16] / d).rounded()))
                if i % 16 == 0 { storeScale(sb, lane: lane, col: i, Int8(sc)) }
                let step = d * sc, inv: Float = step == 0 ? 0 : 1 / step
                store(sb, lane: lane, col: i, UInt8(max(0, min(63, (src[i] * inv).rounded() + 32))))
            }
        }
    }

    /// Scalar reference: per block of 32, d * da * (sc0 * sum0 + sc1 * sum1) with each half's
    /// integer sum of (q - 32) * qa exact.
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let sb = group + (k / 8) * groupBlockBytes, c0 = (k % 8) * 32
            var acc: Int32 = 0
            for h in 0..<2 {
                var half: Int32 = 0
                for i in c0 + 16 * h..<c0 + 16 * h + 16 {
                    half &+= (value(sb, lane: lane, col: i) - 32) &* Int32(a.q[(k / 8) * 256 + i])
                }
                acc &+= scale(sb, lane: lane, col: c0 + 16 * h) &* half
            }
            sum += halfToFloat(loadU16(sb, 2 * lane)) * a.scale[k] * Float(acc)
        }
        return sum
    }

    /// Copies lane `sl` of the group super-block at `s` to lane `dl` of `d`.
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
        for col in 0..<256 {
            if col % 16 == 0 { storeScale(d, lane: dl, col: col, Int8(scale(s, lane: sl, col: col))) }
            clear(d, lane: dl, col: col)
            store(d, lane: dl, col: col, UInt8(value(s, lane: sl, col: col)))
        }
    }

    /// Zeroes the value bits of row `lane`, column `col`.
    static func clear(_ sb: UnsafeMutableRawPointer, lane: Int, col: Int) {
        let gb = UnsafeMutableRawPointer(mutating: block(sb, col)), c = (col % 32) / 8, p = 8 * lane + col % 8
        let nb = gb + (c / 2) * 32 + p, hb = gb + 64 + p
        nb.storeBytes(of: nb.load(as: UInt8.self) & (c % 2 == 0 ? 0xF0 : 0x0F), as: UInt8.self)
        hb.storeBytes(of: hb.load(as: UInt8.self) & ~(3 << (2 * c)), as: UInt8.self)
    }
}
