import TernFormat
import TernGGML
import TernKernels
import TernTestSupport
import XCTest

/// Dequantizes a tern tensor `data` of `dtype`, `rows` x `cols` (quantized types interleaved).
func ternDequantize(_ dtype: DType, _ data: [UInt8], rows: Int, cols: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * cols)
    data.withUnsafeBytes { src in
        out.withUnsafeMutableBufferPointer { o in
            switch dtype {
            case .q8, .q4, .q5, .q6, .q4k, .q5k, .q5_1:
                let m = QMatrix(kind: QuantKind(rawValue: dtype.description)!, rows: rows, cols: cols, base: src.baseAddress!)
                for r in 0..<rows { m.dequantizeRow(r, into: o.baseAddress! + r * cols) }
            case .f32: for i in 0..<rows * cols { o[i] = src.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
            case .f16: for i in 0..<rows * cols { o[i] = halfToFloat(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            }
        }
    }
    return out
}

/// The stored scale and min (0 for q8) of element `i` of an interleaved q8/q4 tensor.
func blockScale(_ dtype: DType, _ data: [UInt8], cols: Int, _ i: Int) -> (Float, Float) {
    let r = i / cols, k = (i % cols) / 32, blocks = cols / 32
    let gbBytes = dtype == .q8 ? 136 : 80
    let gb = ((r / 4) * blocks + k) * gbBytes, lane = r % 4
    let h = { (o: Int) in halfToFloat(UInt16(data[o]) | UInt16(data[o + 1]) << 8) }
    return (h(gb + 2 * lane), dtype == .q4 ? h(gb + 8 + 2 * lane) : 0)
}

/// The largest |a - b| / bound over elements; <= 1 means within bound everywhere.
func worstRatio(_ a: [Float], _ b: [Float], bound: (Int) -> Float) -> Float {
    var w: Float = 0
    for i in a.indices { w = max(w, abs(a[i] - b[i]) / bound(i)) }
    return w
}

final class GGMLConvertTests: XCTestCase {
    /// 30 rows (not a multiple of the four-row group) x `cols` columns, random bits with sane scales.
    func exact(_ type: GGMLType, scaleAt: [Int], cols: Int = 64, to target: DType? = nil) {
        var rng = TestRNG(UInt64(type.rawValue) + 100)
        let rows = 30
        let src = validBlocks(&rng, count: rows * cols / type.blockElements, bytes: type.blockBytes, scaleAt: scaleAt)
        let n = rows * cols
        let target = target ?? GGMLConvert.exactTarget(type)!
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(type, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(type, $0, rows: rows, cols: cols, to: target) }
        XCTAssertEqual(conv.count, target.byteSize(rows: rows, cols: cols))
        let got = ternDequantize(target, conv, rows: rows, cols: cols)
        XCTAssertEqual(got.map { $0.bitPattern }, ref.map { $0.bitPattern }, "\(type) -> \(target) must be bit-exact")
    }

    func testQ8_0ToQ8IsBitExact() { exact(.q8_0, scaleAt: [0]) }
    func testQ5_0ToQ5IsBitExact() { exact(.q5_0, scaleAt: [0]) }
    func testQ5_0ToQ8IsBitExact() { exact(.q5_0, scaleAt: [0], to: .q8) }
    func testQ6_KToQ6IsBitExact() { exact(.q6_K, scaleAt: [208], cols: 512) }
    func testQ4_KToQ4KIsBitExact() { exact(.q4_K, scaleAt: [0, 2], cols: 512) }
    func testQ5_KToQ5KIsBitExact() { exact(.q5_K, scaleAt: [0, 2], cols: 512) }
    func testQ5_1ToQ5_1IsBitExact() { exact(.q5_1, scaleAt: [0, 2]) }

    /// The converter's defaults keep the GGUF's bits per weight. Not Q4_0 (absent from the
    /// models here): its q4 adds a min, 4.5 -> 5 bits per weight.
    func testExactTargetsKeepTheGGUFBits() {
        XCTAssertEqual(GGMLConvert.exactTarget(.q5_0), .q5)
        XCTAssertEqual(GGMLConvert.exactTarget(.q6_K), .q6)
        XCTAssertEqual(GGMLConvert.exactTarget(.q4_K), .q4k)
        XCTAssertEqual(GGMLConvert.exactTarget(.q5_K), .q5k)
        XCTAssertEqual(GGMLConvert.exactTarget(.q5_1), .q5_1)
        for kind in QuantKind.allCases { XCTAssertNotNil(DType(name: kind.rawValue), "every kernel format is a file dtype") }
        for t in [GGMLType.q8_0, .q5_0, .q6_K, .q4_1, .q4_K, .q5_K, .q5_1] {
            let dt = GGMLConvert.exactTarget(t)!
            XCTAssertEqual(Double(dt.blockBytes) / Double(dt.blockElements), Double(t.blockBytes) / Double(t.blockElements), "\(t) -> \(dt)")
        }
    }
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
        let rows = 31, cols = 256
        let src = validBlocks(&rng, count: rows, bytes: 144, scaleAt: [0, 2])
        let n = rows * cols
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(.q4_K, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(.q4_K, $0, rows: rows, cols: cols, to: .q4) }  // --type q4
        let got = ternDequantize(.q4, conv, rows: rows, cols: cols)
        let ratio = worstRatio(got, ref) { i in
            // Bound from the folded block's own (exact) scale and min magnitudes.
            let (ds, ms) = blockScale(.q4, conv, cols: cols, i)
            let d = abs(ds), m = abs(ms)
            let e = { (x: Float) in max(x * 0x1p-11, 0x1p-25) * 1.001 }
            return 15 * e(d) + e(m) + abs(ref[i]) * 0x1p-22 + 1e-30
        }
        XCTAssertLessThanOrEqual(ratio, 1)
        XCTAssertNotEqual(got, [Float](repeating: 0, count: n))
    }

    /// Q6_K is requantized to q8 by rounding to nearest: |err| <= d/2 per element, d the block's scale.
    func testQ6_KToQ8WithinRoundingBound() {
        var rng = TestRNG(4)
        let rows = 33, cols = 256
        let src = validBlocks(&rng, count: rows, bytes: 210, scaleAt: [208])
        let n = rows * cols
        let ref = src.withUnsafeBytes { GGMLConvert.dequantize(.q6_K, $0, count: n) }
        let conv = src.withUnsafeBytes { GGMLConvert.convert(.q6_K, $0, rows: rows, cols: cols, to: .q8) }
        let got = ternDequantize(.q8, conv, rows: rows, cols: cols)
        let ratio = worstRatio(got, ref) { i in
            let d = blockScale(.q8, conv, cols: cols, i).0
            return 0.5 * d * 1.0001 + abs(ref[i]) * 0x1p-22 + 1e-30
        }
        XCTAssertLessThanOrEqual(ratio, 1)
    }

    func testFloatTypesToF32AreExact() {
        var rng = TestRNG(9)
        let vals = (0..<64).map { _ in rng.float(-3, 3) }
        let f32 = vals.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        let r = f32.withUnsafeBytes { GGMLConvert.convert(.f32, $0, rows: 2, cols: 32, to: .f32) }
        XCTAssertEqual(r, f32)
        let halves = vals.map { Float16($0) }
        let f16 = halves.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        XCTAssertEqual(ternDequantize(.f32, f16.withUnsafeBytes { GGMLConvert.convert(.f16, $0, rows: 2, cols: 32, to: .f32) }, rows: 2, cols: 32),
                       halves.map { Float($0) })
        let bf = vals.map { UInt16($0.bitPattern >> 16) }
        let bfBytes = bf.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        XCTAssertEqual(ternDequantize(.f32, bfBytes.withUnsafeBytes { GGMLConvert.convert(.bf16, $0, rows: 2, cols: 32, to: .f32) }, rows: 2, cols: 32),
                       bf.map { Float(bitPattern: UInt32($0) << 16) })
    }
}

final class RepackTests: XCTestCase {
    /// Interleaving keeps every value, scale and min: dequantizing row-major blocks equals
    /// dequantizing the interleaved groups row by row (ragged row counts pad with zero rows).
    func testInterleavePreservesEveryRow() {
        var rng = TestRNG(21)
        for kind in [QuantKind.q8, .q4] {
            for rows in [1, 3, 4, 5, 9] {
                let cols = 96
                let flat = validBlocks(&rng, count: rows * cols / 32, bytes: kind.blockBytes, scaleAt: kind == .q8 ? [0] : [0, 2])
                var ref = [Float](repeating: 0, count: rows * cols)
                flat.withUnsafeBytes { s in
                    ref.withUnsafeMutableBufferPointer { o in
                        if kind == .q8 { Q8.dequantize(s.baseAddress!, count: rows * cols, into: o.baseAddress!) } else { Q4.dequantize(s.baseAddress!, count: rows * cols, into: o.baseAddress!) }
                    }
                }
                let inter = Repack.interleave(kind, flat, rows: rows, cols: cols)
                XCTAssertEqual(inter.count, (rows + 3) / 4 * 4 * cols / 32 * kind.blockBytes)
                let got = ternDequantize(kind == .q8 ? .q8 : .q4, inter, rows: rows, cols: cols)
                XCTAssertEqual(got.map { $0.bitPattern }, ref.map { $0.bitPattern }, "\(kind) rows \(rows)")
            }
        }
    }
}
