/// q4k: ggml's Q4_K bit for bit (4.5 bits per weight): super-blocks of 256 columns with an f16 d
/// and dmin and, per 32 columns, 6-bit scale sc and min m: x = d * sc * q - dmin * m, q in 0...15.
/// Stored interleaved (``QuantKind``): per four-row group and super-block, [d0..d3: f16]
/// [dmin0..dmin3: f16][three 16-byte planes: byte 4j + r of plane i = byte 4i + j of row r's 12
/// packed scale bytes][eight 32-column blocks of 64 bytes: the q4 nibble halves] = 576 bytes.
/// The planes put the four rows side by side, so a kernel unpacks all 64 scales and mins of a
/// group's super-block with a few 16-byte operations (ggml's get_scale_min_k4, vectorized).
public enum Q4K {
    /// Bytes per row per super-block of 256 columns, as in the GGUF.
    public static let blockBytes = 144
    static let groupBlockBytes = 4 * blockBytes

    /// The 4-bit value of row `lane`, column `col` (0..<256) of one group super-block.
    @inline(__always) static func value(_ sb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        let c = col % 32, b = sb.load(fromByteOffset: 64 + (col / 32) * 64 + (c / 16) * 32 + 8 * lane + c % 8, as: UInt8.self)
        return Int32(c % 16 >= 8 ? b >> 4 : b & 0xF)
    }

    /// Row `lane`'s 6-bit (scale, min) of sub-block `j` (columns 32j ..< 32j + 32).
    @inline(__always) static func scaleMin(_ sb: UnsafeRawPointer, lane: Int, _ j: Int) -> (Int32, Int32) {
        func p(_ i: Int, _ jj: Int) -> UInt8 { sb.load(fromByteOffset: 16 + 16 * i + 4 * jj + lane, as: UInt8.self) }
        if j < 4 { return (Int32(p(0, j) & 63), Int32(p(1, j) & 63)) }
        return (Int32((p(2, j - 4) & 0xF) | (p(0, j - 4) >> 6) << 4), Int32((p(2, j - 4) >> 4) | (p(1, j - 4) >> 6) << 4))
    }

    /// Row `lane`'s d * sc and dmin * m of sub-block `j`, as ggml's dequantization forms them.
    @inline(__always) static func factors(_ sb: UnsafeRawPointer, lane: Int, _ j: Int) -> (Float, Float) {
        let (sc, m) = scaleMin(sb, lane: lane, j)
        return (halfToFloat(loadU16(sb, 2 * lane)) * Float(sc), halfToFloat(loadU16(sb, 8 + 2 * lane)) * Float(m))
    }

    /// Writes row `lane`'s factors into a group super-block from the first 16 bytes of a GGUF
    /// Q4_K or Q5_K block (d, dmin, 12 packed scale bytes): byte 4i + j to byte 4j + lane of plane i.
    static func storeFactors(_ sb: UnsafeMutableRawPointer, lane: Int, fromBlock p: UnsafeRawPointer) {
        (sb + 2 * lane).copyMemory(from: p, byteCount: 2)
        (sb + 8 + 2 * lane).copyMemory(from: p + 2, byteCount: 2)
        for i in 0..<3 {
            for j in 0..<4 { (sb + 16 + 16 * i + 4 * j + lane).copyMemory(from: p + 4 + 4 * i + j, byteCount: 1) }
        }
    }

    /// Writes row `lane` of a group super-block from one GGUF Q4_K block (144 bytes); the
    /// nibbles of the lane must be zero.
    public static func store(_ sb: UnsafeMutableRawPointer, lane: Int, fromQ4K p: UnsafeRawPointer) {
        storeFactors(sb, lane: lane, fromBlock: p)
        for col in 0..<256 {
            // Q4_K: sub-block k's quants are the low (k even) or high (k odd) nibbles of qs[32 (k / 2) ..< +32].
            let k = col / 32, l = col % 32
            let q = p.load(fromByteOffset: 16 + 32 * (k / 2) + l, as: UInt8.self)
            let v = k % 2 == 0 ? q & 0xF : q >> 4
            let c = col % 32, dst = sb + 64 + k * 64 + (c / 16) * 32 + 8 * lane + c % 8
            dst.storeBytes(of: dst.load(as: UInt8.self) | (c % 16 >= 8 ? v << 4 : v), as: UInt8.self)
        }
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        dequantizeRow(group, groupBlockBytes: groupBlockBytes, lane: lane, blocks: blocks, into: out, value: value)
    }

    /// A q4k or q5k row: per sub-block j, d * sc * q - dmin * m with the factors as ggml forms them.
    @inline(__always) static func dequantizeRow(_ group: UnsafeRawPointer, groupBlockBytes: Int, lane: Int, blocks: Int,
                                                into out: UnsafeMutablePointer<Float>,
                                                value: (UnsafeRawPointer, Int, Int) -> Int32) {
        for s in 0..<blocks / 8 {
            let sb = group + s * groupBlockBytes
            for j in 0..<8 {
                let (d1, m1) = factors(sb, lane: lane, j)
                for l in 0..<32 { out[s * 256 + j * 32 + l] = d1 * Float(value(sb, lane, 32 * j + l)) - m1 }
            }
        }
    }

    /// Quantization into interleaved groups (tests, benchmarks): ``superBlock(_:levels:)`` with
    /// 15 levels, the quants packed as Q4_K's.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        precondition(cols % 256 == 0)
        return Repack.byLane(.q4k, rows: rows, cols: cols) { r, s, sb, lane in
            let (head, q) = superBlock(x + r * cols + s * 256, levels: 15)
            var blk = head + [UInt8](repeating: 0, count: 128)
            for j in 0..<8 { for l in 0..<32 { blk[16 + 32 * (j / 2) + l] |= j % 2 == 0 ? q[32 * j + l] : q[32 * j + l] << 4 } }
            blk.withUnsafeBytes { store(sb, lane: lane, fromQ4K: $0.baseAddress!) }
        }
    }

    /// Round-to-nearest K-quantization of 256 values (tests, benchmarks): per 32 columns min and
    /// step as for q4 (m = -min clamped at 0, step = range / levels), then sc = round(step / d) and
    /// m = round(-min / dmin) with d, dmin = the largest of them / 63; q = round((x + dmin m) / (d sc)).
    /// Gives the first 16 bytes of a GGUF Q4_K / Q5_K block (d, dmin, the packed 6-bit scales) and the q.
    static func superBlock(_ src: UnsafePointer<Float>, levels: Float) -> (head: [UInt8], q: [UInt8]) {
        var steps = [Float](repeating: 0, count: 8), mins = steps
        for j in 0..<8 {
            var lo: Float = 0, hi: Float = 0
            for l in 0..<32 { lo = min(lo, src[32 * j + l]); hi = max(hi, src[32 * j + l]) }
            steps[j] = (hi - lo) / levels
            mins[j] = -lo
        }
        let dh = floatToHalf(steps.max()! / 63), mh = floatToHalf(mins.max()! / 63)
        let d = halfToFloat(dh), dmin = halfToFloat(mh)
        var head = [UInt8](repeating: 0, count: 16)
        head[0] = UInt8(dh & 0xFF); head[1] = UInt8(dh >> 8); head[2] = UInt8(mh & 0xFF); head[3] = UInt8(mh >> 8)
        var sc = [UInt8](repeating: 0, count: 8), mq = sc
        for j in 0..<8 {
            sc[j] = d == 0 ? 0 : UInt8(min(63, (steps[j] / d).rounded()))
            mq[j] = dmin == 0 ? 0 : UInt8(min(63, (mins[j] / dmin).rounded()))
        }
        for j in 0..<4 {
            head[4 + j] = (sc[j] & 63) | (sc[j + 4] >> 4) << 6
            head[8 + j] = (mq[j] & 63) | (mq[j + 4] >> 4) << 6
            head[12 + j] = (sc[j + 4] & 0xF) | (mq[j + 4] & 0xF) << 4
        }
        var q = [UInt8](repeating: 0, count: 256)
        for j in 0..<8 {
            let step = d * Float(sc[j]), m1 = dmin * Float(mq[j]), inv: Float = step == 0 ? 0 : 1 / step
            for l in 0..<32 { q[32 * j + l] = UInt8(max(0, min(levels, ((src[32 * j + l] + m1) * inv).rounded()))) }
        }
        return (head, q)
    }

    /// Scalar reference: per block of 32, d sc * da * sum(q * qa) - dmin m * da * sum(qa).
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        dot(group, groupBlockBytes: groupBlockBytes, lane: lane, a, blocks: blocks, value: value)
    }

    /// The scalar dot of a q4k or q5k row, its values read by `value(superBlock, lane, col)`.
    @inline(__always) static func dot(_ group: UnsafeRawPointer, groupBlockBytes: Int, lane: Int, _ a: QuantizedVector,
                                      blocks: Int, value: (UnsafeRawPointer, Int, Int) -> Int32) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let sb = group + (k / 8) * groupBlockBytes
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= value(sb, lane, (k % 8) * 32 + i) &* Int32(a.q[k * 32 + i]) }
            let (d1, m1) = factors(sb, lane: lane, k % 8)
            sum += d1 * a.scale[k] * Float(acc) - m1 * a.scaledSum[k]
        }
        return sum
    }

    /// Copies the factors (d, dmin, the scale planes) of lane `sl` at `s` to lane `dl` at `d`.
    static func copyFactors(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
        (d + 8 + 2 * dl).copyMemory(from: s + 8 + 2 * sl, byteCount: 2)
        for i in 0..<12 { (d + 16 + 4 * i + dl).copyMemory(from: s + 16 + 4 * i + sl, byteCount: 1) }
    }

    /// Copies lane `sl` of the group super-block at `s` to lane `dl` of `d`.
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        copyFactors(s, sl, d, dl)
        for half in 0..<16 {  // 8 blocks x 2 nibble halves of 32 bytes
            let off: Int = 64 + 32 * half
            (d + off + 8 * dl).copyMemory(from: s + off + 8 * sl, byteCount: 8)
        }
    }
}
