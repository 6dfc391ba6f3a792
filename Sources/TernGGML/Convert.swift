import TernFormat
import TernKernels

/// Dequantization and conversion of GGUF tensors to tern dtypes.
public enum GGMLConvert {
    /// Dequantizes a whole GGUF tensor to f32 exactly as ggml's reference dequantization does.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { out, n in
            dequantize(type, src.baseAddress!, count: count, into: out.baseAddress!)
            n = count
        }
    }

    static func dequantize(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: GGMLFloat.dequantize(0, src, count: count, into: out)
        case .f16: GGMLFloat.dequantize(1, src, count: count, into: out)
        case .bf16: GGMLFloat.dequantize(2, src, count: count, into: out)
        case .q4_0: GGMLQ4_0.dequantize(src, count: count, into: out)
        case .q4_1: GGMLQ4_1.dequantize(src, count: count, into: out)
        case .q5_0: GGMLQ5_0.dequantize(src, count: count, into: out)
        case .q5_1: GGMLQ5_1.dequantize(src, count: count, into: out)
        case .q8_0: GGMLQ8_0.dequantize(src, count: count, into: out)
        case .q4_K: GGMLQ4_K.dequantize(src, count: count, into: out)
        case .q5_K: GGMLQ5_K.dequantize(src, count: count, into: out)
        case .q6_K: GGMLQ6_K.dequantize(src, count: count, into: out)
        }
    }

    /// The tern dtype a GGML type maps to without requantizing or widening, if any.
    public static func exactTarget(_ type: GGMLType) -> DType? {
        switch type {
        case .q8_0: .q8
        case .q5_0: .q5
        case .q5_1: .q5_1
        case .q6_K: .q6
        case .q4_K: .q4k
        case .q5_K: .q5k
        case .q4_0, .q4_1: .q4
        case .f32, .f16, .bf16: nil
        }
    }

    /// Whether converting `type` to `target` keeps every value: its exact mapping, Q5_0
    /// widened to q8 (q - 16 fits int8 under the same scale), or Q4_K folded into q4 (exact up to
    /// the f16 rounding of d * sc and dmin * m, as it always was).
    public static func isLossless(_ type: GGMLType, to target: DType) -> Bool {
        exactTarget(type) == target || (type == .q5_0 && target == .q8) || (type == .q4_K && target == .q4)
    }

    /// Converts `src` (a GGUF tensor's bytes, `rows` x `cols`) to `target` in the `.tern` layout.
    /// Uses the lossless mapping when there is one, otherwise dequantizes and requantizes with
    /// round-to-nearest (or stores floats for f32/f16). q8/q4 results are produced as row-major
    /// blocks, then interleaved into four-row groups; q5/q5_1/q6/q4k/q5k are written interleaved.
    public static func convert(_ type: GGMLType, _ src: UnsafeRawBufferPointer, rows: Int, cols: Int,
                               to target: DType) -> [UInt8] {
        let count = rows * cols
        if type == .q5_0 && target == .q5 { return GGMLQ5_0.toQ5(src.baseAddress!, rows: rows, cols: cols) }
        if type == .q6_K && target == .q6 { return GGMLQ6_K.toQ6(src.baseAddress!, rows: rows, cols: cols) }
        if type == .q4_K && target == .q4k { return GGMLQ4_K.toQ4K(src.baseAddress!, rows: rows, cols: cols) }
        if type == .q5_K && target == .q5k { return GGMLQ5_K.toQ5K(src.baseAddress!, rows: rows, cols: cols) }
        if type == .q5_1 && target == .q5_1 { return GGMLQ5_1.toQ5_1(src.baseAddress!, rows: rows, cols: cols) }
        if target == .q5 || target == .q6 || target == .q4k || target == .q5k || target == .q5_1 {
            let f = dequantize(type, src, count: count)
            return f.withUnsafeBufferPointer {
                QMatrix.quantize(QuantKind(rawValue: target.description)!, $0.baseAddress!, rows: rows, cols: cols)
            }
        }
        let bytes = target == .f32 ? count * 4 : target == .f16 ? count * 2 : count / 32 * target.blockBytes
        let flat = [UInt8](unsafeUninitializedCapacity: bytes) { out, n in
            n = bytes
            let s = src.baseAddress!, d = UnsafeMutableRawPointer(out.baseAddress!)
            if isLossless(type, to: target) {
                switch type {
                case .q8_0: GGMLQ8_0.toQ8(s, count: count, into: d)
                case .q5_0: GGMLQ5_0.toQ8(s, count: count, into: d)
                case .q4_0: GGMLQ4_0.toQ4(s, count: count, into: d)
                case .q4_1: GGMLQ4_1.toQ4(s, count: count, into: d)
                case .q4_K: GGMLQ4_K.toQ4(s, count: count, into: d)
                default: fatalError("unreachable: no exact mapping for \(type)")
                }
                return
            }
            let f = dequantize(type, src, count: count)
            f.withUnsafeBufferPointer { x in
                let x = x.baseAddress!
                switch target {
                case .f32: d.copyMemory(from: x, byteCount: count * 4)
                case .f16:
                    for i in 0..<count { d.storeBytes(of: floatToHalf(x[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self) }
                case .q8: Q8.quantize(x, count: count, into: d)
                case .q4: Q4.quantize(x, count: count, into: d)
                case .q5, .q6, .q4k, .q5k, .q5_1: fatalError("unreachable: written above")
                }
            }
        }
        switch target {
        case .q8: return Repack.interleave(.q8, flat, rows: rows, cols: cols)
        case .q4: return Repack.interleave(.q4, flat, rows: rows, cols: cols)
        case .f32, .f16, .q5, .q6, .q4k, .q5k, .q5_1: return flat
        }
    }
}
