import TernKernels

/// ggml Q8_0: [d: f16][32 x i8]; x = q * d. Identical to tern q8 byte for byte.
enum GGMLQ8_0 {
    static func dequantize(_ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let p = src + b * 34
            let d = halfToFloat(u16(p, 0))
            for i in 0..<32 { out[b * 32 + i] = Float(p.load(fromByteOffset: 2 + i, as: Int8.self)) * d }
        }
    }

    static func toQ8(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: src, byteCount: count / 32 * 34)
    }
}
