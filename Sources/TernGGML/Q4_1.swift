import TernKernels

/// ggml Q4_1: [d: f16][m: f16][16 bytes]; x = q * d + m. Identical to tern q4 byte for byte.
enum GGMLQ4_1 {
    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * 20
            let d = halfToFloat(u16(p, 0)), m = halfToFloat(u16(p, 2))
            for j in 0..<16 {
                let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                out[b * 32 + j] = Float(q & 0xF) * d + m
                out[b * 32 + j + 16] = Float(q >> 4) * d + m
            }
        }
    }

    static func toQ4(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: src, byteCount: count / 32 * 20)
    }
}
