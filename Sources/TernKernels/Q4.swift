/// q4: uint4 in blocks of 32 with f16 scale and min, x = d * q + m. Stored interleaved
/// (``QuantKind``): per four-row group and block, [d0..d3: f16][m0..m3: f16] then two 32-byte
/// halves h whose byte 8r + j holds row r's column 16h + j (low nibble) and 16h + 8 + j (high
/// nibble) = 80 bytes. The row-major block form (20 bytes: d, m, 16 bytes with element j low and
/// j + 16 high; ggml's Q4_1) is what quantizers produce.
public enum Q4 {
    public static let blockBytes = 20

    /// Value of row `lane`, column `col` (0..<32) of one interleaved group block.
    @inline(__always) static func nibble(_ gb: UnsafeRawPointer, lane: Int, col: Int) -> UInt8 {
        let h = col / 16, j = col % 8, hi = (col % 16) >= 8
        let b = gb.load(fromByteOffset: 16 + h * 32 + lane * 8 + j, as: UInt8.self)
        return hi ? b >> 4 : b & 0xF
    }

    public static func dequantizeRow(_ group: UnsafeRawPointer, lane: Int, blocks: Int, into out: UnsafeMutablePointer<Float>) {
        for k in 0..<blocks {
            let gb = group + k * 4 * blockBytes
            let d = halfToFloat(loadU16(gb, 2 * lane)), m = halfToFloat(loadU16(gb, 8 + 2 * lane))
            for i in 0..<32 { out[k * 32 + i] = d * Float(nibble(gb, lane: lane, col: i)) + m }
        }
    }

    /// Dequantizes `count` elements of row-major blocks.
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

    /// Round-to-nearest asymmetric quantization into row-major blocks:
    /// m = min, d = (max - min) / 15, q = round((x - m) / d).
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

    /// Scalar reference: sum over blocks of d * da * sum(q * qa) + m * da * sum(qa).
    public static func dot(_ group: UnsafeRawPointer, lane: Int, _ a: QuantizedVector, blocks: Int) -> Float {
        var sum: Float = 0
        for k in 0..<blocks {
            let gb = group + k * 4 * blockBytes
            var acc: Int32 = 0
            for i in 0..<32 { acc &+= Int32(nibble(gb, lane: lane, col: i)) &* Int32(a.q[k * 32 + i]) }
            sum += halfToFloat(loadU16(gb, 2 * lane)) * a.scale[k] * Float(acc)
                + halfToFloat(loadU16(gb, 8 + 2 * lane)) * a.scaledSum[k]
        }
        return sum
    }
}
