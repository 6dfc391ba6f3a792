/// q4: blocks of 32 uint4 with f16 scale and min: [d: f16][m: f16][16 bytes], byte j holds
/// element j in its low nibble and element j + 16 in its high nibble; x = d * q + m.
/// (The nibble order is ggml's Q4_0/Q4_1 order, so those convert byte for byte.)
public enum Q4 {
    public static let blockBytes = 20

    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * blockBytes
            let d = halfToFloat(loadU16(p, 0)), m = halfToFloat(loadU16(p, 2))
            let q = (p + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                out[b * 32 + j] = d * Float(q[j] & 0xF) + m
                out[b * 32 + j + 16] = d * Float(q[j] >> 4) + m
            }
        }
    }

    /// Round-to-nearest asymmetric quantization: m = min, d = (max - min) / 15, q = round((x - m) / d).
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        for b in 0..<count / 32 {
            var lo = x[b * 32], hi = x[b * 32]
            for i in 0..<32 { lo = min(lo, x[b * 32 + i]); hi = max(hi, x[b * 32 + i]) }
            let dh = floatToHalf((hi - lo) / 15), mh = floatToHalf(lo)
            let d = halfToFloat(dh), m = halfToFloat(mh)
            let inv: Float = d == 0 ? 0 : 1 / d
            let p = dst + b * blockBytes
            p.storeBytes(of: dh.littleEndian, toByteOffset: 0, as: UInt16.self)
            p.storeBytes(of: mh.littleEndian, toByteOffset: 2, as: UInt16.self)
            for j in 0..<16 {
                let a = UInt8(max(0, min(15, ((x[b * 32 + j] - m) * inv).rounded())))
                let c = UInt8(max(0, min(15, ((x[b * 32 + j + 16] - m) * inv).rounded())))
                p.storeBytes(of: a | (c << 4), toByteOffset: 4 + j, as: UInt8.self)
            }
        }
    }

    /// Dot product of one q4 weight row with one quantized activation vector:
    /// sum over blocks of d * da * sum(q * qa) + m * da * sum(qa).
    @inline(__always)
    public static func dot(_ w: UnsafeRawPointer, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for b in 0..<blocks {
            let p = w + b * blockBytes
            let q = (p + 4).assumingMemoryBound(to: UInt8.self)
            let aq = a.q + b * 32
            var acc: Int32 = 0
            for j in 0..<16 {
                acc &+= Int32(q[j] & 0xF) &* Int32(aq[j]) &+ Int32(q[j] >> 4) &* Int32(aq[j + 16])
            }
            sum += halfToFloat(loadU16(p, 0)) * a.scale[b] * Float(acc) + halfToFloat(loadU16(p, 2)) * a.scaledSum[b]
        }
        return sum
    }
}
