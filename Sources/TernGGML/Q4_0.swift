import TernKernels

/// ggml Q4_0: [d: f16][16 bytes: element j low nibble, j+16 high nibble]; x = (q - 8) * d.
enum GGMLQ4_0 {
    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * 18
            let d = halfToFloat(u16(p, 0))
            for j in 0..<16 {
                let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                out[b * 32 + j] = Float(Int(q & 0xF) - 8) * d
                out[b * 32 + j + 16] = Float(Int(q >> 4) - 8) * d
            }
        }
    }

    /// To tern q4 without requantizing: the same nibbles, scale d, min -8d (exact: a power-of-two multiple).
    static func toQ4(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) {
        for b in 0..<count / 32 {
            let p = src + b * 18, o = dst + b * Q4.blockBytes
            let dh = u16(p, 0)
            o.storeBytes(of: dh.littleEndian, toByteOffset: 0, as: UInt16.self)
            o.storeBytes(of: floatToHalf(-8 * halfToFloat(dh)).littleEndian, toByteOffset: 2, as: UInt16.self)
            (o + 4).copyMemory(from: p + 2, byteCount: 16)
        }
    }
}
