import TernKernels
import XCTest

struct RNG: RandomNumberGenerator {
    var s: UInt64
    mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func floats(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in Float.random(in: -scale..<scale, using: &self) } }
}

final class KernelTests: XCTestCase {
    func quantized(_ kind: QuantKind, _ w: [Float], rows: Int, cols: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: rows * cols / 32 * kind.blockBytes)
        w.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBytes { d in
                switch kind {
                case .q8: Q8.quantize(x.baseAddress!, count: rows * cols, into: d.baseAddress!)
                case .q4: Q4.quantize(x.baseAddress!, count: rows * cols, into: d.baseAddress!)
                }
            }
        }
        return out
    }

    func testQuantizeRoundTripWithinHalfStep() {
        var rng = RNG(s: 1)
        for kind in [QuantKind.q8, .q4] {
            let x = rng.floats(32 * 20, 3)
            let q = quantized(kind, x, rows: 1, cols: x.count)
            var back = [Float](repeating: 0, count: x.count)
            q.withUnsafeBytes { src in
                back.withUnsafeMutableBufferPointer { QMatrix(kind: kind, rows: 1, cols: x.count, base: src.baseAddress!).dequantizeRow(0, into: $0.baseAddress!) }
            }
            for b in 0..<20 {
                let blk = Array(x[b * 32..<b * 32 + 32])
                let range = kind == .q8 ? 2 * blk.map(abs).max()! : blk.max()! - blk.min()!
                let step = range / (kind == .q8 ? 254 : 15)
                for i in 0..<32 {
                    // Half a step, plus the f16 rounding of scale (and min) times the largest level.
                    let bound = step * 0.5 + range * 0x1p-10 + 1e-6
                    XCTAssertLessThanOrEqual(abs(back[b * 32 + i] - x[b * 32 + i]), bound, "\(kind) block \(b) elem \(i)")
                }
            }
        }
    }

    /// MatMul on ragged shapes (rows not a multiple of anything, batch 1...17) against a
    /// double-precision dot of the dequantized weights and dequantized activations. The integer
    /// sums are exact, so the only error is f32 accumulation over blocks: bound n_blocks * 2^-22 * sum|terms|.
    func testMatMulMatchesReferenceOnRaggedShapes() {
        var rng = RNG(s: 2)
        for kind in [QuantKind.q8, .q4] {
            for (rows, cols, batch) in [(1, 32, 1), (7, 64, 3), (13, 96, 17), (33, 640, 5), (5, 2048, 2), (67, 160, 9)] {
                let w = rng.floats(rows * cols)
                let wq = quantized(kind, w, rows: rows, cols: cols)
                let x = rng.floats(batch * cols, 4)
                let acts = QuantizedActivations(cols: cols, capacity: batch)
                x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: cols) }
                var out = [Float](repeating: .nan, count: batch * rows)
                wq.withUnsafeBytes { base in
                    let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                    out.withUnsafeMutableBufferPointer {
                        MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows, parallel: Parallel(threads: 2))
                    }
                    var wrow = [Float](repeating: 0, count: cols)
                    for r in 0..<rows {
                        wrow.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                        for b in 0..<batch {
                            let v = acts.vector(b)
                            var ref = 0.0, mag = 0.0
                            for i in 0..<cols {
                                let a = Double(v.scale[i / 32]) * Double(v.q[i])
                                ref += Double(wrow[i]) * a
                                mag += abs(Double(wrow[i]) * a)
                            }
                            let tol = Double(cols / 32 + 2) * 0x1p-22 * mag + 1e-30
                            XCTAssertEqual(Double(out[b * rows + r]), ref, accuracy: tol, "\(kind) \(rows)x\(cols) b\(b) r\(r)")
                        }
                    }
                }
            }
        }
    }

    func testActivationQuantizationWithinHalfStep() {
        var rng = RNG(s: 3)
        let cols = 96
        let x = rng.floats(cols * 2, 10)
        let a = QuantizedActivations(cols: cols, capacity: 2)
        x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, batch: 2, stride: cols) }
        for b in 0..<2 {
            let v = a.vector(b)
            for g in 0..<cols / 32 {
                var s: Int32 = 0
                for i in 0..<32 {
                    let idx = g * 32 + i
                    XCTAssertLessThanOrEqual(abs(Float(v.q[idx]) * v.scale[g] - x[b * cols + idx]), v.scale[g] * 0.5001)
                    s += Int32(v.q[idx])
                }
                XCTAssertEqual(v.scaledSum[g], v.scale[g] * Float(s))
            }
        }
    }

    func testElementwiseOpsAgainstDoubleReference() {
        var rng = RNG(s: 4)
        let n = 640
        let x = rng.floats(n, 2), w = rng.floats(n, 1)
        var out = [Float](repeating: 0, count: n)
        Ops.rmsNorm(x, w, count: n, eps: 1e-6, out: &out)
        let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
        for i in 0..<n { XCTAssertEqual(Double(out[i]), Double(x[i]) / (ms + 1e-6).squareRoot() * Double(w[i]), accuracy: 1e-5) }

        var s = rng.floats(50, 20)
        let ref = s.map { exp(Double($0)) }
        let tot = ref.reduce(0, +)
        Ops.softmax(&s, 50)
        for i in 0..<50 { XCTAssertEqual(Double(s[i]), ref[i] / tot, accuracy: 1e-6) }

        // NEOX RoPE rotates pairs (i, i + d/2) by pos * inv[i].
        let d = 8
        var h = rng.floats(2 * d)
        let orig = h
        let inv: [Float] = (0..<d / 2).map { Float(pow(10000.0, -2.0 * Double($0) / Double(d))) }
        Ops.ropeNeox(&h, heads: 2, dim: d, pos: 5, inv: inv)
        for hd in 0..<2 {
            for i in 0..<d / 2 {
                let t = 5 * Double(inv[i]), a = Double(orig[hd * d + i]), b = Double(orig[hd * d + i + d / 2])
                XCTAssertEqual(Double(h[hd * d + i]), a * cos(t) - b * sin(t), accuracy: 1e-5)
                XCTAssertEqual(Double(h[hd * d + i + d / 2]), a * sin(t) + b * cos(t), accuracy: 1e-5)
            }
        }
        XCTAssertEqual(Double(Ops.gelu(1)), 0.8411920, accuracy: 1e-6)
        XCTAssertEqual(Double(Ops.gelu(-3)), -0.0036373, accuracy: 1e-6)
    }
}
