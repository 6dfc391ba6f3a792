/// q5_1: ggml's Q5_1 bit for bit (6 bits per weight): 5-bit values in blocks of 32 with an f16
/// scale and min, x = d * q + m, q in 0...31. Stored interleaved (``QuantKind``): per four-row
/// group and block, [d0..d3: f16][m0..m3: f16] as q4, then a q5 block's fifth bits and nibble
/// halves: [fifth bits: 16 bytes][two 32-byte nibble halves] = 96 bytes. The kernels take the
/// factors as for q4 and the values as for q5 (unsigned here: the min term takes the offset).
public enum Q5_1 {
    /// Bytes per row per block of 32 columns, as in the GGUF.
    public static let blockBytes = 24
    static let groupBlockBytes = 4 * blockBytes

    /// The block's values where ``Q5``'s accessors find them (a q5 block's scales are 8 bytes).
    @inline(__always) static func q5Block(_ gb: UnsafeRawPointer) -> UnsafeRawPointer { gb + 8 }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for k in 0..<blocks {
            let gb = group + k * groupBlockBytes
            let d = halfToFloat(loadU16(gb, 2 * lane)), m = halfToFloat(loadU16(gb, 8 + 2 * lane))
            for i in 0..<32 { out[k * 32 + i] = Float(Q5.value(q5Block(gb), lane: lane, col: i)) * d + m }
        }
    }

    /// Round-to-nearest asymmetric quantization into interleaved groups (tests, benchmarks), as
    /// ``Q4/quantize(_:count:into:)`` with 31 steps: m = min, d = (max - min) / 31.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int) -> [UInt8] {
        Repack.byLane(.q5_1, rows: rows, cols: cols) { r, k, gb, lane in
            let src = x + r * cols + k * 32
            var lo = src[0], hi = src[0]
            for i in 0..<32 { lo = min(lo, src[i]); hi = max(hi, src[i]) }
            let dh = floatToHalf((hi - lo) / 31), mh = floatToHalf(lo)
            let d = halfToFloat(dh), m = halfToFloat(mh)
            let inv: Float = d == 0 ? 0 : 1 / d
            gb.storeBytes(of: dh.littleEndian, toByteOffset: 2 * lane, as: UInt16.self)
            gb.storeBytes(of: mh.littleEndian, toByteOffset: 8 + 2 * lane, as: UInt16.self)
            let values = UnsafeMutableRawPointer(mutating: q5Block(gb))
            for i in 0..<32 { Q5.store(values, lane: lane, col: i, UInt8(max(0, min(31, ((src[i] - m) * inv).rounded())))) }
        }
    }

    /// Scalar reference: sum over blocks of d * da * sum(q * qa) + m * da * sum(qa).
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let gb = group + k * groupBlockBytes
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= Q5.value(q5Block(gb), lane: lane, col: i) &* Int32(a.q[k * 32 + i]) }
            sum += halfToFloat(loadU16(gb, 2 * lane)) * a.scale[k] * Float(acc)
                + halfToFloat(loadU16(gb, 8 + 2 * lane)) * a.scaledSum[k]
        }
        return sum
    }

    /// Copies lane `sl` of the group block at `s` to lane `dl` of `d` (a zeroed or same-kind block).
    static func copyLane(_ s: UnsafeRawPointer, _ sl: Int, _ d: UnsafeMutableRawPointer, _ dl: Int) {
        (d + 2 * dl).copyMemory(from: s + 2 * sl, byteCount: 2)
        (d + 8 + 2 * dl).copyMemory(from: s + 8 + 2 * sl, byteCount: 2)
        let values = UnsafeMutableRawPointer(mutating: q5Block(d))
        for col in 0..<32 {
            Q5.clear(values, lane: dl, col: col)
            Q5.store(values, lane: dl, col: col, UInt8(Q5.value(q5Block(s), lane: sl, col: col)))
        }
    }
}
