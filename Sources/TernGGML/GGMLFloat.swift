import TernKernels

/// F32, F16 and BF16 rows (ggml's plain float types).
enum GGMLFloat {
    static func dequantize(_ type: Int, _ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case 0:
            for i in 0..<count {
                out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        case 1: for i in 0..<count { out[i] = halfToFloat(u16(src, i * 2)) }
        default: for i in 0..<count { out[i] = bf16ToFloat(u16(src, i * 2)) }
        }
    }
}

@inline(__always) func u16(_ p: UnsafeRawPointer, _ off: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}
