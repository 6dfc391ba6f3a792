/// q8: int8 in blocks of 32 with an f16 scale, x = d * q. Stored interleaved (``QuantKind``):
/// per four-row group and block, [d0 d1 d2 d3: f16][chunk c = 0..3: rows 0..3 x 8 int8] = 136 bytes.
/// The row-major block form (34 bytes: f16 d, 32 int8; ggml's Q8_0) is what quantizers produce.
public enum Q8 {
    public static let blockBytes = 34

    /// Dequantizes row `lane` (0...3) of an interleaved group.
    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for k in 0..<blocks {
            let gb = group + k * 4 * blockBytes
            let d = halfToFloat(loadU16(gb, 2 * lane))
            for c in 0..<4 {
                let q = (gb + 8 + c * 32 + lane * 8).assumingMemoryBound(to: Int8.self)
                for j in 0..<8 { out[k * 32 + c * 8 + j] = d * Float(q[j]) }
            }
        }
    }

    /// Dequantizes `count` elements of row-major blocks.
    public static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * blockBytes
            let d = halfToFloat(loadU16(p, 0))
            let q = (p + 2).assumingMemoryBound(to: Int8.self)
            for i in 0..<32 { out[b * 32 + i] = d * Float(q[i]) }
        }
    }

    /// Round-to-nearest quantization of `count` floats into row-major blocks:
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

    /// Scalar reference: row `lane` of an interleaved group . one activation vector.
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let gb = group + k * 4 * blockBytes
            var acc: Int32 = 0
            for c in 0..<4 {
                let q = (gb + 8 + c * 32 + lane * 8).assumingMemoryBound(to: Int8.self)
                let aq = a.q + k * 32 + c * 8
                for j in 0..<8 { acc &+= Int32(q[j]) &* Int32(aq[j]) }
            }
            sum += halfToFloat(loadU16(gb, 2 * lane)) * a.scale[k] * Float(acc)
        }
        return sum
    }
}
