import TernFormat
import TernGGML
import TernKernels
import TernTestSupport
import XCTest

/// Dequantizes tern `data` of `dtype`.
func ternDequantize(_ dtype: DType, _ data: [UInt8], count: Int) -> [Float] {
    var out = [Float](repeating: 0, count: count)
    data.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { o in
            switch dtype {
            case .q8: Q8.dequantize(src.baseAddress!, count: count, into: o.baseAddress!)
            case .q4: Q4.dequantize(src.baseAddress!, count: count, into: o.baseAddress!)
            case .f32: for i in 0..<count { o[i] = src.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .f16: for i in 0..<count { o[i] = halfToFloat(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            }
        }
    }
    return out
}

/// The largest |a - b| / bound over elements; <= 1 means within bound everywhere.
func worstRatio(_ a: [Float], _ b: [Float], bound: (Int) -> Float) -> Float {
    var w: Float = 0
    for i in a.indices { w = max(w, abs(a[i] - b[i]) / bound(i)) }
    return w
}

final class GGMLConvertTests: XCTestCase {
    func exact(_ type: GGMLType, scaleAt: [Int], blocks: Int = 64) {
        var rng = TestRNG(UInt64(type.rawValue) + 100)
        let src = validBlocks(&rng, count: blocks, bytes: type.blockBytes, scaleAt: scaleAt)
        let n = blocks * type.blockElements
        let target = GGMLConvert.exactTarget(type)!
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(type, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(type, $0, count: n, to: target) }
        let got = ternDequantize(target, conv, count: n)
        XCTAssertEqual(got.map(\.bitPattern), ref.map(\.bitPattern), "\(type) -> \(target) must be bit-exact")
    }

    func testQ8_0ToQ8IsBitExact() { exact(.q8_0, scaleAt: [0]) }
    func testQ5_0ToQ8IsBitExact() { exact(.q5_0, scaleAt: [0]) }
    func testQ4_0ToQ4IsBitExact() { exact(.q4_0, scaleAt: [0]) }
    func testQ4_1ToQ4IsBitExact() { exact(.q4_1, scaleAt: [0, 2]) }

    func testQ4_0ReferenceValues() {
        // d = 0.5, nibbles 0..15: x_j = (j - 8) * 0.5 for the low nibble of byte j.
        var b: [UInt8] = [0x00, 0x38]  // f16 0.5
        for j in 0..<16 { b.append(UInt8(j) | UInt8(15 - j) << 4) }
        let v = b.withUnsafeBytes { GGMLConvert.dequantize(.q4_0, $0, count: 32) }
        XCTAssertEqual(Array(v[0..<3]), [-4, -3.5, -3])
        XCTAssertEqual(v[16], 3.5)
    }

    /// Q4_K folds d*sc and dmin*m into f16: each is off by at most half an f16 ulp
    /// (relative 2^-11, or 2^-25 absolute in the subnormal range), so per element
    /// |err| <= 15 * e(d*sc) + e(dmin*m), plus f32 rounding of the result.
    func testQ4_KToQ4WithinFoldingBound() {
        var rng = TestRNG(3)
        let blocks = 32
        let src = validBlocks(&rng, count: blocks, bytes: 144, scaleAt: [0, 2])
        let n = blocks * 256
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(.q4_K, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(.q4_K, $0, count: n, to: .q4) }
        let got = ternDequantize(.q4, conv, count: n)
        let ratio = worstRatio(got, ref) { i in
            // Bound from the folded block's own (exact) scale and min magnitudes.
            let blk = conv.withUnsafeBytes { $0.baseAddress! + (i / 32) * 20 }
            let d = abs(halfToFloat(blk.loadUnaligned(as: UInt16.self))), m = abs(halfToFloat(blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let e = { (x: Float) in max(x * 0x1p-11, 0x1p-25) * 1.001 }
            return 15 * e(d) + e(m) + abs(ref[i]) * 0x1p-22 + 1e-30
        }
        XCTAssertLessThanOrEqual(ratio, 1)
        XCTAssertNotEqual(got, [Float](repeating: 0, count: n))
    }

    /// Q6_K is requantized to q8 by rounding to nearest: |err| <= d/2 per element, d the block's scale.
    func testQ6_KToQ8WithinRoundingBound() {
        var rng = TestRNG(4)
        let blocks = 32
        let src = validBlocks(&rng, count: blocks, bytes: 210, scaleAt: [208])
        let n = blocks * 256
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(.q6_K, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(.q6_K, $0, count: n, to: .q8) }
        let got = ternDequantize(.q8, conv, count: n)
        let ratio = worstRatio(got, ref) { i in
            let d = conv.withUnsafeBytes { halfToFloat($0.loadUnaligned(fromByteOffset: (i / 32) * 34, as: UInt16.self)) }
            return 0.5 * d * 1.0001 + abs(ref[i]) * 0x1p-22 + 1e-30
        }
        XCTAssertLessThanOrEqual(ratio, 1)
    }

    func testFloatTypesToF32AreExact() {
        var rng = TestRNG(9)
        let vals = (0..<64).map { _ in rng.float(-3, 3) }
        let f32 = vals.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        let r = f32.withUnsafeBytes { GGMLConvert.convert(.f32, $0, count: 64, to: .f32) }
        XCTAssertEqual(r, f32)
        let halves = vals.map { Float16($0) }
        let f16 = halves.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        XCTAssertEqual(ternDequantize(.f32, f16.withUnsafeBytes { GGMLConvert.convert(.f16, $0, count: 64, to: .f32) }, count: 64),
                       halves.map { Float($0) })
        let bf = vals.map { UInt16($0.bitPattern >> 16) }
        let bfBytes = bf.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        XCTAssertEqual(ternDequantize(.f32, bfBytes.withUnsafeBytes { GGMLConvert.convert(.bf16, $0, count: 64, to: .f32) }, count: 64),
                       bf.map { Float(bitPattern: UInt32($0) << 16) })
    }
}
