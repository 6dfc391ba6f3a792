/// q5k: ggml's Q5_K bit for bit (5.5 bits per weight): q4k with a fifth bit per value, x = d * sc
/// * q - dmin * m, q in 0...31. Stored interleaved (``QuantKind``): per four-row group and
/// super-block, q4k's 64 bytes of factors ([d0..d3][dmin0..dmin3][three 16-byte scale planes]),
/// then eight 32-column blocks of 80 bytes, each laid out as a q5 block without its scales:
/// [fifth bits: 16 bytes][two 32-byte nibble halves] = 704 bytes. So the kernels take the
/// factors as for q4k and the values as for q5 (unsigned here, with the min term of q4k).
public enum Q5K {
    /// Bytes per row per super-block of 256 columns, as in the GGUF.
    public static let blockBytes = 176
    static let groupBlockBytes = 4 * blockBytes

    /// Block `j`'s bytes as a q5 group block would have them (its scales 8 bytes before the
    /// fifth bits), so ``Q5``'s accessors read and write its values.
    @inline(__always) static func q5Block(_ sb: UnsafeRawPointer, _ j: Int) -> UnsafeRawPointer { sb + 64 + 80 * j - 8 }

    /// The 5-bit value (0...31) of row `lane`, column `col` (0..<256) of one group super-block.
    @inline(__always) static func value(_ sb: UnsafeRawPointer, lane: Int, col: Int) -> Int32 {
        Q5.value(q5Block(sb, col / 32), lane: lane, col: col % 32)
    }

    /// Writes row `lane` of a group super-block from one GGUF Q5_K block (176 bytes: d, dmin, the
    /// 12 scale bytes of Q4_K, qh[32], qs[128]); the values of the lane must be zero. Column
    /// 32j + l has the nibble of qs[32 (j / 2) + l] (low for even j) and bit j of qh[l].
    public static func store(_ sb: UnsafeMutableRawPointer, lane: Int, fromQ5K p: UnsafeRawPointer) {
        (sb + 2 * lane).copyMemory(from: p, byteCount: 2)
        (sb + 8 + 2 * lane).copyMemory(from: p + 2, byteCount: 2)
        for i in 0..<3 {
            for j in 0..<4 { (sb + 16 + 16 * i + 4 * j + lane).copyMemory(from: p + 4 + 4 * i + j, byteCount: 1) }
        }
        for col in 0..<256 {
            let j = col / 32, l = col % 32
            let q = p.load(fromByteOffset: 48 + 32 * (j / 2) + l, as: UInt8.self)
            let h = p.load(fromByteOffset: 16 + l, as: UInt8.self) >> j & 1
            Q5.store(UnsafeMutableRawPointer(mutating: q5Block(sb, j)), lane: lane, col: l, (j % 2 == 0 ? q & 0xF : q >> 4) | h << 4)
        }
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for s in 0..<blocks / 8 {
            let sb = group + s * groupBlockBytes
            for j in 0..<8 {
                let (d1, m1) = Q4K.factors(sb, lane: lane, j)
                for l in 0..<32 { out[s * 256 + j * 32 + l] = d1 * Float(value(sb, lane: lane, col: 32 * j + l)) - m1 }
            }
        }
    }

    /// Quantization into interleaved groups (tests, benchmarks), as ``Q4K/quantize(_:rows:cols:)``
    /// with 31 steps per sub-block instead of 15.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        precondition(cols % 256 == 0)
        return Repack.byLane(.q5k, rows: rows, cols: cols) { r, s, sb, lane in
            let src = x + r * cols + s * 256
            var steps = [Float](repeating: 0, count: 8), mins = steps
            for j in 0..<8 {
                var lo: Float = 0, hi: Float = 0
                for l in 0..<32 { lo = min(lo, src[32 * j + l]); hi = max(hi, src[32 * j + l]) }
                steps[j] = (hi - lo) / 31
                mins[j] = -lo
            }
            let dh = floatToHalf(steps.max()! / 63), mh = floatToHalf(mins.max()! / 63)
            let d = halfToFloat(dh), dmin = halfToFloat(mh)
            var blk = [UInt8](repeating: 0, count: 176)
            blk[0] = UInt8(dh & 0xFF); blk[1] = UInt8(dh >> 8); blk[2] = UInt8(mh & 0xFF); blk[3] = UInt8(mh >> 8)
            var sc = [UInt8](repeating: 0, count: 8), mq = sc
            for j in 0..<8 {
                sc[j] = d == 0 ? 0 : UInt8(min(63, (steps[j] / d).rounded()))
                mq[j] = dmin == 0 ? 0 : UInt8(min(63, (mins[j] / dmin).rounded()))
            }
            for j in 0..<4 {
                blk[4 + j] = (sc[j] & 63) | (sc[j + 4] >> 4) << 6
                blk[8 + j] = (mq[j] & 63) | (mq[j + 4] >> 4) << 6
                blk[12 + j] = (sc[j + 4] & 0xF) | (mq[j + 4] & 0xF) << 4
            }
            for j in 0..<8 {
                let step = d * Float(sc[j]), m1 = dmin * Float(mq[j]), inv: Float = step == 0 ? 0 : 1 / step
                for l in 0..<32 {
                    let q = UInt8(max(0, min(31, ((src[32 * j + l] + m1) * inv).rounded())))
                    blk[48 + 32 * (j / 2) + l] |= j % 2 == 0 ? q & 0xF : (q & 0xF) << 4
                    blk[16 + l] |= (q >> 4) << j
                }
            }
            blk.withUnsafeBytes { store(sb, lane: lane, fromQ5K: $0.baseAddress!) }
        }
    }

    /// Scalar reference: per block of 32, d sc * da * sum(q * qa) - dmin m * da * sum(qa).
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let sb = group + (k / 8) * groupBlockBytes
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= value(sb, lane: lane, col: (k % 8) * 32 + i) &* Int32(a.q[k * 32 + i]) }
            let (d1, m1) = Q4K.factors(sb, lane: lane, k % 8)
            sum += d1 * a.scale[k] * Float(acc) - m1 * a.scaledSum[k]
        }
        return sum
    }

    /// Copies lane `sl` of the group super-block at `s` to lane `dl` of `d` (zeroed or same-kind).
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
        (d + 8 + 2 * dl).copyMemory(from: s + 8 + 2 * sl, byteCount: 2)
        for i in 0..<12 { (d + 16 + 4 * i + dl).copyMemory(from: s + 16 + 4 * i + sl, byteCount: 1) }
        for col in 0..<256 {
            let j = col / 32, block = UnsafeMutableRawPointer(mutating: q5Block(d, j))
            Q5.clear(block, lane: dl, col: col % 32)
            Q5.store(block, lane: dl, col: col % 32, UInt8(value(s, lane: sl, col: col)))
        }
    }
}
