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

extension QuantKind {
    /// A test width for this kind: `cols` rounded up to whole blocks (q6: super-blocks of 256).
    func width(_ cols: Int) -> Int { (cols + blockColumns - 1) / blockColumns * blockColumns }
}

final class KernelTests: XCTestCase {
    /// q5 and q6 round trips: every value within half a step of its (sub-)block, plus the scale's
    /// f16 rounding (and for q6 the int8 sub-scale's rounding) times the largest level.
    func testQ5Q6QuantizeRoundTrip() {
        var rng = RNG(s: 11)
        for kind in [QuantKind.q5, .q6] {
            let rows = 5, cols = 512
            let x = rng.floats(rows * cols, 3)
            let q = quantized(kind, x, rows: rows, cols: cols)
            XCTAssertEqual(q.count, 2 * cols / kind.blockColumns * kind.groupBlockBytes)
            var back = [Float](repeating: 0, count: x.count)
            q.withUnsafeBytes { src in
                back.withUnsafeMutableBufferPointer { b in
                    let m = QMatrix(kind: kind, rows: rows, cols: cols, base: src.baseAddress!)
                    for r in 0..<rows { m.dequantizeRow(r, into: b.baseAddress! + r * cols) }
                }
            }
            let n = kind == .q5 ? 32 : 16
            for b in 0..<rows * cols / n {
                let amax = x[b * n..<b * n + n].map(abs).max()!
                let step = kind == .q5 ? amax / 15 : amax / 31
                // q6: the sub-scale is d * round(s / d) with d = (max s) / 127: off by up to d / 2 <= s_max / 254.
                let superMax = kind == .q6 ? x[(b / 16) * 256..<(b / 16) * 256 + 256].map(abs).max()! / 31 : 0
                for i in b * n..<b * n + n {
                    let bound = step * 0.5 + amax * 0x1p-10 + 32 * superMax / 254 + 1e-6
                    XCTAssertLessThanOrEqual(abs(back[i] - x[i]), bound, "\(kind) elem \(i)")
                }
            }
        }
    }

    func quantized(_ kind: QuantKind, _ w: [Float], rows: Int, cols: Int) -> [UInt8] {
        w.withUnsafeBufferPointer { QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols) }
    }

    func testQuantizeRoundTripWithinHalfStep() {
        var rng = RNG(s: 1)
        for kind in [QuantKind.q8, .q4] {
            let rows = 3, cols = 32 * 20
            let x = rng.floats(rows * cols, 3)
            let q = quantized(kind, x, rows: rows, cols: cols)
            XCTAssertEqual(q.count, 1 * 4 * cols / 32 * kind.blockBytes, "one padded four-row group")
            var back = [Float](repeating: 0, count: x.count)
            q.withUnsafeBytes { src in
                back.withUnsafeMutableBufferPointer { b in
                    let m = QMatrix(kind: kind, rows: rows, cols: cols, base: src.baseAddress!)
                    for r in 0..<rows { m.dequantizeRow(r, into: b.baseAddress! + r * cols) }
                }
            }
            for b in 0..<rows * cols / 32 {
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

    /// The scalar reference MatMul against a double-precision dot of the dequantized weights and
    /// dequantized activations. The integer sums are exact, so the only error is f32 accumulation
    /// over blocks: bound (n_blocks + 2) * 2^-22 * sum|terms|.
    func testScalarMatMulMatchesDoubleReference() {
        var rng = RNG(s: 2)
        for kind in QuantKind.allCases {
            for (rows, cols, batch) in [(1, 32, 1), (7, 64, 3), (13, 96, 17), (33, 640, 5), (5, 2048, 2), (67, 160, 9)] {
                let cols = kind.width(cols)
                let wq = quantized(kind, rng.floats(rows * cols), rows: rows, cols: cols)
                let x = rng.floats(batch * cols, 4)
                let acts = QuantizedActivations(cols: cols, capacity: batch)
                x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
                var out = [Float](repeating: .nan, count: batch * rows)
                wq.withUnsafeBytes { base in
                    let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                    out.withUnsafeMutableBufferPointer {
                        MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows, parallel: Parallel(threads: 2), isa: .scalar)
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

    /// Every ISA path this CPU runs against the scalar reference, on ragged shapes (rows not a
    /// multiple of the four-row group, batch 1...17, thread splits mid-matrix). Both compute the
    /// same exact integer block sums; they differ only in the order of f32 operations per block
    /// (scale products, FMA, pairwise lane sums), so the bound is a few f32 roundings of each
    /// block's magnitude: 8 * 2^-24 * sum over blocks of |d * da * isum| + |m * ssum|.
    func testEveryISAMatchesScalarReference() {
        var rng = RNG(s: 5)
        print("KernelTests: ISA paths on this CPU: \(KernelISA.supported.map(\.rawValue))")
        XCTAssertTrue(KernelISA.supported.contains(.scalar) && KernelISA.supported.contains(.swiftSIMD))
        // Activations with groups of 32 at magnitudes up to 1000 apart, as real activations' are.
        let level: [Float] = [1, 0.5, 0.3, 0.1, 0.02, 0.001, 1, 0.7, 0.06]
        for kind in QuantKind.allCases {
            for (rows, cols) in [(1, 32), (2, 64), (3, 96), (5, 640), (7, 160), (13, 2048), (66, 640), (129, 96)] {
                let cols = kind.width(cols)
                let wq = quantized(kind, rng.floats(rows * cols, 2), rows: rows, cols: cols)
                for batch in [1, 2, 3, 4, 5, 8, 17] {
                    let x = rng.floats(batch * cols, 3).enumerated().map { $0.element * level[($0.offset / 32) % level.count] }
                    let acts = QuantizedActivations(cols: cols, capacity: batch)
                    x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
                    // Without the per-256 form, a kernel that reads it where kept takes the per-32 one.
                    let per32 = QuantizedActivations(cols: cols, capacity: batch, superBlocks: false)
                    x.withUnsafeBufferPointer { per32.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
                    wq.withUnsafeBytes { base in
                        let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                        var ref = [Float](repeating: .nan, count: batch * rows)
                        ref.withUnsafeMutableBufferPointer {
                            MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows, parallel: Parallel(threads: 1), isa: .scalar)
                        }
                        // Per-output magnitude bound from the dequantized terms.
                        var bound = [Double](repeating: 0, count: batch * rows)
                        var wrow = [Float](repeating: 0, count: cols)
                        for r in 0..<rows {
                            wrow.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                            for b in 0..<batch {
                                let v = acts.vector(b)
                                var mag = 0.0
                                for k in 0..<cols / 32 {
                                    var blk = 0.0, wmax = 0.0
                                    for i in k * 32..<k * 32 + 32 {
                                        let term: Double = Double(wrow[i]) * Double(v.scale[k]) * Double(v.q[i])
                                        blk += term
                                        wmax = max(wmax, abs(Double(wrow[i])))
                                    }
                                    let minTerm: Double = Double(abs(v.scaledSum[k])) * wmax
                                    mag += abs(blk) + minTerm
                                }
                                bound[b * rows + r] = 8 * 0x1p-24 * mag + 1e-30
                            }
                        }
                        let runs = KernelISA.supported.filter { $0 != .scalar }.flatMap { isa in
                            isa.readsSuperBlockActivations(kind) ? [(isa, acts), (isa, per32)] : [(isa, acts)]
                        }
                        for (isa, a) in runs {
                            var out = [Float](repeating: .nan, count: batch * rows + 1)
                            out[batch * rows] = 12345  // a guard past the end must stay untouched
                            out.withUnsafeMutableBufferPointer {
                                MatMul.run(m, a, batch: batch, out: $0.baseAddress!, outStride: rows, parallel: Parallel(threads: 2), isa: isa)
                            }
                            XCTAssertEqual(out[batch * rows], 12345, "\(isa) wrote past the output")
                            if isa.readsSuperBlockActivations(kind) && a === acts {
                                checkSuperBlockKernel(m, acts, batch: batch, out, "\(isa) \(kind) \(rows)x\(cols) batch \(batch)")
                                continue
                            }
                            for i in 0..<batch * rows {
                                XCTAssertEqual(Double(out[i]), Double(ref[i]), accuracy: bound[i],
                                               "\(isa) \(kind) \(rows)x\(cols) batch \(batch) out \(i)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// A kernel reading the per-256 activations against the scalar reference reading the same
    /// activations: the same integer sums, a few f32 roundings of each block's magnitude apart
    /// (the bound of the test above).
    func checkSuperBlockKernel(_ m: QMatrix, _ acts: QuantizedActivations, batch: Int, _ out: [Float], _ what: String) {
        var wrow = [Float](repeating: 0, count: m.cols)
        for r in 0..<m.rows {
            wrow.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
            for b in 0..<batch {
                guard let v = acts.superBlockVector(b)?.v else { return XCTFail("\(what): no per-256 activations") }
                let ref = m.referenceDot(r, v)
                var mag = 0.0
                for k in 0..<m.cols / 32 {
                    var blk = 0.0, wmax = 0.0
                    for i in k * 32..<k * 32 + 32 {
                        blk += Double(wrow[i]) * Double(v.scale[k]) * Double(v.q[i])
                        wmax = max(wmax, abs(Double(wrow[i])))
                    }
                    mag += abs(blk) + Double(abs(v.scaledSum[k])) * wmax
                }
                XCTAssertEqual(Double(out[b * m.rows + r]), Double(ref), accuracy: 8 * 0x1p-24 * mag + 1e-30, "\(what) b\(b) r\(r)")
            }
        }
    }

    /// The per-256 activations (the x86 q4k and AVX2 q6 kernels', aarch64's q4k) follow their rule
    /// and are the same bytes on every path: per super-block D = max|x| / 127, stored for each of its
    /// groups; |q - x / D| <= 1/2; per group scaled sum = D * sum(q) and bsum = sum(q); per 16
    /// columns hsum = sum(q).
    func testSuperBlockActivationQuantizationIsIdenticalOnEveryISA() throws {
        var rng = RNG(s: 11)
        let cols = 768, batch = 3
        var x = rng.floats(batch * cols, 5)
        for i in 96..<128 { x[i] *= 1e-4 }  // a group far below its super-block's largest value
        x[9] = 0.5 * (x[0..<256].map(abs).max()! / 127) * 5  // a near-tie of the rounding
        for i in 256..<512 { x[i] = 0 }  // an all-zero super-block
        let ref = QuantizedActivations(cols: cols, capacity: batch)
        try XCTSkipIf(ref.superBlockVector(0) == nil, "the per-256 form is kept on aarch64 and on x86 with AVX2 only")
        x.withUnsafeBufferPointer { ref.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
        for b in 0..<batch {
            let (v, bsum, hsum) = try XCTUnwrap(ref.superBlockVector(b))
            for s in 0..<cols / 256 {
                let d = x[b * cols + 256 * s..<b * cols + 256 * s + 256].map(abs).max()! / 127
                for k in 8 * s..<8 * s + 8 {
                    XCTAssertEqual(v.scale[k], d)
                    var sum: Int32 = 0
                    for i in 32 * k..<32 * k + 32 {
                        sum += Int32(v.q[i])
                        if d > 0 { XCTAssertLessThanOrEqual(abs(Double(v.q[i]) - Double(x[b * cols + i] / d)), 0.5 + 1e-4) }
                    }
                    XCTAssertEqual(v.scaledSum[k], d * Float(sum))
                    XCTAssertEqual(Int32(bsum[k]), sum)
                    XCTAssertEqual(Int32(hsum[2 * k]), (32 * k..<32 * k + 16).reduce(0) { $0 + Int32(v.q[$1]) })
                    XCTAssertEqual(Int32(hsum[2 * k]) + Int32(hsum[2 * k + 1]), sum)
                }
            }
        }
        XCTAssertEqual((96..<128).map { ref.superBlockVector(0)!.v.q[$0] }, Array(repeating: 0, count: 32))
        XCTAssertEqual(ref.superBlockVector(0)?.v.scale[8], 0)
        for isa in KernelISA.supported where isa != .avx512vnni {
            let a = QuantizedActivations(cols: cols, capacity: batch)
            x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, batch: batch, stride: cols, isa: isa) }
            for b in 0..<batch {
                let u = try XCTUnwrap(a.superBlockVector(b)), v = try XCTUnwrap(ref.superBlockVector(b))
                XCTAssertEqual((0..<cols).map { u.v.q[$0] }, (0..<cols).map { v.v.q[$0] }, "\(isa) q of vector \(b)")
                XCTAssertEqual((0..<cols / 32).map { u.v.scale[$0].bitPattern }, (0..<cols / 32).map { v.v.scale[$0].bitPattern }, "\(isa)")
                XCTAssertEqual((0..<cols / 32).map { u.v.scaledSum[$0].bitPattern }, (0..<cols / 32).map { v.v.scaledSum[$0].bitPattern }, "\(isa)")
                XCTAssertEqual((0..<cols / 32).map { u.bsum[$0] }, (0..<cols / 32).map { v.bsum[$0] }, "\(isa)")
                XCTAssertEqual((0..<cols / 16).map { u.hsum[$0] }, (0..<cols / 16).map { v.hsum[$0] }, "\(isa)")
            }
        }
    }

    /// The largest integer sums a kernel meets: every stored level at its top (15, 31 or 63) against
    /// activations all +-127. AVX2 adds four chunks' pair sums (q6: two) in int16 before widening,
    /// within 32768 only by the bounds x86_avx2.c states (q5 and q6 reach 96-98% of it here); a
    /// wrap would be off by 65536 integer steps. Two weight patterns per block cover both
    /// quantizers' shapes: [0, 1, 1, ...] puts a min-based format's other levels at the top, and
    /// [-1, 15/16, ...] a symmetric one's (its scale set by the negative value); q6 repeats it
    /// per 16-column sub-block.
    func testEveryISAOnTheLargestIntegerSums() {
        let cols = 512, rows = 8
        for kind in QuantKind.allCases {
            var w = [Float](repeating: 0, count: rows * cols)
            for r in 0..<rows {
                for i in 0..<cols {
                    let first = i % 16 == 0
                    w[r * cols + i] = r % 2 == 0 ? (first && i % 32 == 0 ? 0 : 1) : (first ? -1 : 15 / 16)
                }
            }
            let wq = quantized(kind, w, rows: rows, cols: cols)
            for sign: Float in [1, -1] {
                let x = [Float](repeating: sign, count: cols)
                let acts = QuantizedActivations(cols: cols, capacity: 1)
                x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: 1, stride: cols, isa: .scalar) }
                XCTAssertEqual(acts.vector(0).q[5], Int8(127 * sign))
                let da = Double(acts.vector(0).scale[0]) * 127  // every activation is +-da
                wq.withUnsafeBytes { base in
                    let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                    func product(_ isa: KernelISA) -> [Float] {
                        var out = [Float](repeating: .nan, count: rows)
                        out.withUnsafeMutableBufferPointer {
                            MatMul.run(m, acts, batch: 1, out: $0.baseAddress!, outStride: rows,
                                       parallel: Parallel(threads: 1), isa: isa)
                        }
                        return out
                    }
                    let ref = product(.scalar)
                    let others = KernelISA.supported.filter { $0 != .scalar }.map { ($0, product($0)) }
                    var wrow = [Float](repeating: 0, count: cols)
                    for r in 0..<rows {
                        wrow.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                        let sum = wrow.reduce(0.0) { $0 + Double($1) }
                        let mag = wrow.reduce(0.0) { $0 + abs(Double($1)) } * da
                        XCTAssertEqual(Double(ref[r]), sum * da * Double(sign), accuracy: 1e-5 * mag,
                                       "scalar \(kind) row \(r)")
                        for (isa, out) in others {
                            XCTAssertEqual(Double(out[r]), Double(ref[r]), accuracy: 8 * 0x1p-24 * mag + 1e-30,
                                           "\(isa) \(kind) row \(r)")
                        }
                    }
                }
            }
        }
    }

    /// q8 KV rows: storing keeps each value within half a step, and fused attention over q8 rows
    /// matches, on every ISA, the Swift reference and a double-precision computation on the
    /// dequantized rows (contiguous and as two ring segments).
    func testQ8KVAttentionOnEveryISA() {
        var rng = RNG(s: 11)
        let dim = 256, count = 29, rowBytes = KVPrecision.q8.rowBytes(dim: dim)
        XCTAssertEqual(rowBytes, 288)
        let q = rng.floats(dim, 1)
        let kf = rng.floats(count * dim, 2), vf = rng.floats(count * dim, 2)
        let k = UnsafeMutableRawPointer.allocate(byteCount: count * rowBytes, alignment: 64)
        let v = UnsafeMutableRawPointer.allocate(byteCount: count * rowBytes, alignment: 64)
        defer { k.deallocate(); v.deallocate() }
        for t in 0..<count {
            kf.withUnsafeBufferPointer { Ops.storeKV($0.baseAddress! + t * dim, dim: dim, into: k + t * rowBytes, precision: .q8) }
            vf.withUnsafeBufferPointer { Ops.storeKV($0.baseAddress! + t * dim, dim: dim, into: v + t * rowBytes, precision: .q8) }
        }
        func deq(_ row: UnsafeRawPointer, _ i: Int) -> Double {
            Double(row.load(fromByteOffset: 4 * (i / 32), as: Float.self)) * Double(row.load(fromByteOffset: dim / 8 + i, as: Int8.self))
        }
        for t in 0..<count {
            for g in 0..<dim / 32 {
                let d = Double(k.load(fromByteOffset: t * rowBytes + 4 * g, as: Float.self))
                for i in g * 32..<g * 32 + 32 { XCTAssertEqual(deq(k + t * rowBytes, i), Double(kf[t * dim + i]), accuracy: d * 0.5001 + 1e-9) }
            }
        }
        var sc = (0..<count).map { t in (0..<dim).reduce(0.0) { $0 + Double(q[$1]) * deq(k + t * rowBytes, $1) } * 0.0625 }
        let mx = sc.max()!
        sc = sc.map { exp($0 - mx) }
        let tot = sc.reduce(0, +)
        let want = (0..<dim).map { i in (0..<count).reduce(0.0) { $0 + sc[$1] / tot * deq(v + $1 * rowBytes, i) } }
        for isa in KernelISA.supported {
            var out = [Float](repeating: .nan, count: dim), split = out
            out.withUnsafeMutableBufferPointer {
                Ops.attendQ8(q: q, k: k, v: v, rowBytes: rowBytes, count: count, dim: dim, scale: 0.0625, out: $0.baseAddress!, isa: isa)
            }
            split.withUnsafeMutableBufferPointer {
                Ops.attendQ8(q: q, k: k, v: v, rowBytes: rowBytes, count: 11, k2: k + 11 * rowBytes, v2: v + 11 * rowBytes,
                             wrapped: count - 11, dim: dim, scale: 0.0625, out: $0.baseAddress!, isa: isa)
            }
            for i in 0..<dim {
                XCTAssertEqual(Double(out[i]), want[i], accuracy: 1e-5, "\(isa) q8 attend \(i)")
                XCTAssertEqual(Double(split[i]), want[i], accuracy: 1e-5, "\(isa) q8 two-segment attend \(i)")
            }
        }
    }

    /// The vectorized activation quantizer gives the same bytes as the Swift one.
    func testActivationQuantizationIsIdenticalOnEveryISA() {
        var rng = RNG(s: 6)
        let cols = 640, batch = 3
        var x = rng.floats(batch * cols, 5)
        x[7] = 0.5 * (x[0...31].map(abs).max()! / 127) * 3  // exercise a near-tie
        for i in 64..<96 { x[i] = 0 }  // an all-zero group
        let ref = QuantizedActivations(cols: cols, capacity: batch)
        x.withUnsafeBufferPointer { ref.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
        for isa in KernelISA.supported {
            let a = QuantizedActivations(cols: cols, capacity: batch)
            x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, batch: batch, stride: cols, isa: isa) }
            for b in 0..<batch {
                let u = a.vector(b), v = ref.vector(b)
                for i in 0..<cols { XCTAssertEqual(u.q[i], v.q[i], "\(isa) q[\(b)][\(i)]") }
                for g in 0..<cols / 32 {
                    XCTAssertEqual(u.scale[g], v.scale[g], "\(isa)")
                    XCTAssertEqual(u.scaledSum[g], v.scaledSum[g], "\(isa)")
                }
            }
            // The sums of byte subsets the VNNI kernels start from (q8 and q5: bytes 0-3 and 4-7 of
            // each 8-column chunk; q6: columns 0-15 and 16-31) are not public: the ISA's own
            // products must come out the same bits from either quantization.
            for kind in [QuantKind.q8, .q5, .q6] {
                let rows = 6, kc = kind.width(cols)
                let wq = quantized(kind, rng.floats(rows * kc, 2), rows: rows, cols: kc)
                let xs = (0..<batch).flatMap { b in (0..<kc).map { x[(b * kc + $0) % x.count] } }
                var outs: [[Float]] = []
                for quantizer in [KernelISA.scalar, isa] {
                    let acts = QuantizedActivations(cols: kc, capacity: batch)
                    xs.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: kc, isa: quantizer) }
                    var out = [Float](repeating: .nan, count: batch * rows)
                    wq.withUnsafeBytes { base in
                        let m = QMatrix(kind: kind, rows: rows, cols: kc, base: base.baseAddress!)
                        out.withUnsafeMutableBufferPointer {
                            MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows,
                                       parallel: Parallel(threads: 1), isa: isa)
                        }
                    }
                    outs.append(out)
                }
                XCTAssertEqual(outs[0].map(\.bitPattern), outs[1].map(\.bitPattern), "\(isa) \(kind)")
            }
        }
    }

    /// Activations a malformed model can produce (NaN, infinities, a group too small for 1 / scale)
    /// quantize without trapping on every path, and a normal group beside them is unaffected.
    func testActivationQuantizationOfNonFiniteValuesDoesNotTrap() {
        let cols = 128
        var x = [Float](repeating: 0.25, count: cols)
        x[3] = .nan
        x[40] = .infinity
        x[41] = -.infinity
        for i in 64..<96 { x[i] = Float.leastNormalMagnitude / 16 }  // 1 / (max / 127) overflows
        for isa in KernelISA.supported {
            let a = QuantizedActivations(cols: cols, capacity: 1)
            x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, batch: 1, stride: cols, isa: isa) }
            let v = a.vector(0)
            for i in 96..<128 { XCTAssertEqual(v.q[i], 127, "\(isa)") }  // the normal group
            XCTAssertEqual(v.scale[3], 0.25 / 127, "\(isa)")
        }
        // The same vector into a q8 KV-cache row (--kv q8).
        let row = UnsafeMutableRawPointer.allocate(byteCount: KVPrecision.q8.rowBytes(dim: cols), alignment: 64)
        defer { row.deallocate() }
        x.withUnsafeBufferPointer { Ops.storeKV($0.baseAddress!, dim: cols, into: row, precision: .q8) }
        XCTAssertEqual(row.load(fromByteOffset: cols / 8 + 100, as: Int8.self), 127)
    }

    /// GELU-gated product and fused f16 attention: every ISA against the Swift reference.
    func testElementwiseKernelsOnEveryISA() {
        var rng = RNG(s: 8)
        let n = 2048 + 5
        let g0 = rng.floats(n, 6), u = rng.floats(n, 2)
        var ref = g0
        ref.withUnsafeMutableBufferPointer { Ops.geluMul($0.baseAddress!, u, count: n, isa: .scalar) }
        // SiLU over its whole range: tiny, ordinary, and past the ±87 clamp of exp.
        let s0: [Float] = (0..<n).map { (i: Int) -> Float in
            if i % 97 == 0 { return i % 2 == 0 ? 120 : -120 }
            return g0[i] * (i % 5 == 0 ? 4 : 1)
        }
        var sref = s0
        sref.withUnsafeMutableBufferPointer { Ops.siluMul($0.baseAddress!, u, count: n, isa: .scalar) }
        for i in 0..<n {
            let x = Double(s0[i]), uu = Double(u[i])
            let want: Double = x / (1 + Foundation.exp(-x)) * uu
            XCTAssertEqual(Double(sref[i]), want, accuracy: 4e-7 * max(1, abs(want)), "silu(\(x))")
        }
        let dim = 256, count = 37, stride = 256 + 8
        let q = rng.floats(dim, 1)
        let kf = rng.floats(count * stride, 1), vf = rng.floats(count * stride, 1)
        let k = kf.map { Float16($0).bitPattern }, v = vf.map { Float16($0).bitPattern }
        var aref = [Float](repeating: 0, count: dim)
        aref.withUnsafeMutableBufferPointer { Ops.attend(q: q, k: k, v: v, stride: stride, count: count, dim: dim, scale: 0.0625, out: $0.baseAddress!, isa: .scalar) }
        // Reference attention in double.
        var sc = (0..<count).map { t in (0..<dim).reduce(0.0) { $0 + Double(q[$1]) * Double(Float16(bitPattern: k[t * stride + $1])) } * 0.0625 }
        let mx = sc.max()!
        sc = sc.map { exp($0 - mx) }
        let tot = sc.reduce(0, +)
        for i in 0..<dim {
            let want = (0..<count).reduce(0.0) { $0 + sc[$1] / tot * Double(Float16(bitPattern: v[$1 * stride + i])) }
            XCTAssertEqual(Double(aref[i]), want, accuracy: 1e-5)
        }
        for isa in KernelISA.supported {
            var g = g0
            g.withUnsafeMutableBufferPointer { Ops.geluMul($0.baseAddress!, u, count: n, isa: isa) }
            // Same formula, same fused operations in the same order: bit-identical on every path.
            XCTAssertEqual(g.map { $0.bitPattern }, ref.map { $0.bitPattern }, "\(isa) gelu")
            var sg = s0
            sg.withUnsafeMutableBufferPointer { Ops.siluMul($0.baseAddress!, u, count: n, isa: isa) }
            XCTAssertEqual(sg.map { $0.bitPattern }, sref.map { $0.bitPattern }, "\(isa) silu")
            var out = [Float](repeating: .nan, count: dim)
            out.withUnsafeMutableBufferPointer { Ops.attend(q: q, k: k, v: v, stride: stride, count: count, dim: dim, scale: 0.0625, out: $0.baseAddress!, isa: isa) }
            for i in 0..<dim { XCTAssertEqual(out[i], aref[i], accuracy: 1e-5, "\(isa) attend \(i)") }
            // The same positions as two segments (a wrapped ring buffer) give the same result.
            var split = [Float](repeating: .nan, count: dim)
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    split.withUnsafeMutableBufferPointer {
                        Ops.attend(q: q, k: kp.baseAddress!, v: vp.baseAddress!, stride: stride, count: 13,
                                   k2: kp.baseAddress! + 13 * stride, v2: vp.baseAddress! + 13 * stride, wrapped: count - 13,
                                   dim: dim, scale: 0.0625, out: $0.baseAddress!, isa: isa)
                    }
                }
            }
            for i in 0..<dim { XCTAssertEqual(split[i], aref[i], accuracy: 1e-5, "\(isa) two-segment attend \(i)") }
            var h = [UInt16](repeating: 0, count: n)
            g0.withUnsafeBufferPointer { Ops.toHalf($0.baseAddress!, &h, count: n, isa: isa) }
            XCTAssertEqual(h, g0.map { Float16($0).bitPattern }, "\(isa) f16 conversion rounds to nearest even")
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
                    XCTAssertLessThanOrEqual(abs(Float(v.q[idx]) * v.scale[g] - x[b * cols + idx]), v.scale[g] * 0.5001 + 1e-7)
                    s += Int32(v.q[idx])
                }
                XCTAssertEqual(v.scaledSum[g], v.scale[g] * Float(s))
            }
        }
    }

    /// The vector argmax returns what the scalar scan `if x[i] > best` returns: ragged lengths,
    /// ties (the lowest index wins, in the vector body and in the tail), NaNs, all -infinity.
    func testArgmaxMatchesScalarScan() {
        func scan(_ x: [Float]) -> Int {
            var best = 0, bv = -Float.infinity
            for i in x.indices where x[i] > bv { (best, bv) = (i, x[i]) }
            return best
        }
        var rng = RNG(s: 11)
        var cases: [[Float]] = (0..<70).map { rng.floats($0, 3) } + [rng.floats(262_144, 20)]
        // Coarse values: many ties for the maximum at once.
        cases += (1..<40).map { n in (0..<n).map { _ in Float(Int.random(in: 0..<3, using: &rng)) } }
        var tail = [Float](repeating: 1, count: 37)
        tail[35] = 2; tail[36] = 2
        cases += [tail, [Float](repeating: -.infinity, count: 33), [.nan, .nan, 1, .nan], [Float](repeating: .nan, count: 20)]
        var nanFirst = rng.floats(48, 1)
        nanFirst[0] = .nan; nanFirst[17] = 5; nanFirst[40] = 5
        cases += [nanFirst, [-.infinity, .nan, -5], [1, .infinity, 3, .infinity]]
        for x in cases {
            let got = x.withUnsafeBufferPointer { Ops.argmax($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, count: x.count) }
            XCTAssertEqual(got, scan(x), "n \(x.count)")
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
        // GELU (tanh form) against libm's tanh.
        for x: Double in [-8, -3, -1, -0.1, 0, 0.3, 1, 2.5, 9] {
            let want = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
            XCTAssertEqual(Double(Ops.gelu(Float(x))), want, accuracy: 2e-6 * max(1, abs(x)))
        }
    }

    /// A row subset (the reduced-vocabulary draft head) copied lane by lane is bit-identical:
    /// each chosen row dequantizes to exactly the source row, in any order, with repeats, on a
    /// ragged row count.
    func testRowSubsetCopyIsBitExact() {
        var rng = RNG(s: 7)
        for kind in QuantKind.allCases {
            let rows = 13, cols = kind.width(96)
            let q = quantized(kind, rng.floats(rows * cols, 2), rows: rows, cols: cols)
            let pick = [12, 0, 5, 5, 7, 3, 1]
            q.withUnsafeBytes { src in
                let m = QMatrix(kind: kind, rows: rows, cols: cols, base: src.baseAddress!)
                let dst = UnsafeMutableRawPointer.allocate(byteCount: (pick.count + 3) / 4 * m.groupBytes, alignment: 64)
                defer { dst.deallocate() }
                for (i, r) in pick.enumerated() { m.copyRow(r, toGroup: dst + i / 4 * m.groupBytes, lane: i % 4) }
                let sub = QMatrix(kind: kind, rows: pick.count, cols: cols, base: dst)
                var a = [Float](repeating: 0, count: cols), b = a
                for (i, r) in pick.enumerated() {
                    m.dequantizeRow(r, into: &a)
                    sub.dequantizeRow(i, into: &b)
                    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(kind) row \(r) -> \(i)")
                }
            }
        }
    }
}
