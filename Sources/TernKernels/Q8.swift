/// q8: blocks of 32 int8 with an f16 scale: [d: f16][q: 32 x i8], x = d * q.
public enum Q8 {
    public static let blockBytes = 34

    /// Dequantizes `count` elements (a multiple of 32) starting at `src`.
    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * blockBytes
            let d = halfToFloat(loadU16(p, 0))
            let q = (p + 2).assumingMemoryBound(to: Int8.self)
            for i in 0..<32 { out[b * 32 + i] = d * Float(q[i]) }
        }
    }

    /// Round-to-nearest quantization of `count` floats (a multiple of 32) into blocks at `dst`:
    /// d = max|x| / 127, q = round(x / d).
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        for b in 0..<count / 32 {
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(x[b * 32 + i])) }
            let dh = floatToHalf(amax / 127)
            let d = halfToFloat(dh)
            let inv: Float = d == 0 ? 0 : 1 / d
            let p = dst + b * blockBytes
            p.storeBytes(of: dh.littleEndian, toByteOffset: 0, as: UInt16.self)
            for i in 0..<32 {
                let v = (x[b * 32 + i] * inv).rounded(.toNearestOrAwayFromZero)
                p.storeBytes(of: Int8(max(-127, min(127, v))), toByteOffset: 2 + i, as: Int8.self)
            }
        }
    }

    /// Dot product of one q8 weight row with one quantized activation vector.
    @inline(__always)
    public static func dot(_ w: UnsafeRawPointer, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for b in 0..<blocks {
            let p = w + b * blockBytes
            let q = (p + 2).assumingMemoryBound(to: Int8.self)
            let aq = a.q + b * 32
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= Int32(q[i]) &* Int32(aq[i]) }
            sum += halfToFloat(loadU16(p, 0)) * a.scale[b] * Float(acc)
        }
        return sum
    }
}
