import TernKernels
import XCTest

/// The two x86 paths against each other where they must agree bit for bit.
final class X86AgreementTests: XCTestCase {
    /// q4k against the per-256 activations: the AVX-512 kernels (the pairs and the four-row groups,
    /// x86_avx512_pairs.inc q4k_sb_pair and x86_gemm.inc q4k_sb_group) and AVX2's hold the same
    /// int32 sum per lane and apply the same float operations per super-block, so the GEMMs give
    /// the same bits on both kinds of x86 machine. Ragged shapes, thread splits mid-matrix, the
    /// batches that take each form of the pair kernel (unrolled 1-2, rolled 3-8, fours and the
    /// rest beyond), and the largest sums a lane holds (every level at its top against +-127,
    /// 16 * 15 * 127: within the int16 the AVX-512 scale multiply reads).
    func testQ4KPerSuperBlockIsTheSameBitsOnAVX2AndAVX512() throws {
        try checkAgreement(.q4k)
    }

    /// q6 against the per-256 activations (x86_gemm.inc q6_sb_group on both paths, and on AVX-512
    /// x86_avx512_pairs.inc q6_sb_pair): AVX2's madds and AVX-512's vpdpwssd give the same int32
    /// sums, so the same bits; the largest two-chunk pair sums (63 against +-127) fill the int16
    /// they widen from.
    func testQ6PerSuperBlockIsTheSameBitsOnAVX2AndAVX512() throws {
        try checkAgreement(.q6)
    }

    /// One vector on long rows runs in quads on AVX-512 (x86_avx512_quads.inc: two pairs sharing
    /// each activation broadcast), whose rows take their pair kernel's operations: a vector's
    /// results are the bits it gets as the first of two, which run in pairs. q4k and q6, against
    /// the per-256 and the per-32 activations; ranges of quads with a remainder of 0-3 groups (by
    /// the four-row kernel) and a partial last group in a quad's fourth place or in the remainder,
    /// one thread and two.
    func testQuadsGiveThePairsBits() throws {
        try XCTSkipUnless(KernelISA.supported.contains(.avx512vnni), "needs a CPU with AVX-512 VNNI")
        var rng = RNG(s: 29)
        for kind in [QuantKind.q4k, .q6] {
            for (rows, cols) in [(1022, 4096), (1030, 4096), (1536, 8960), (1033, 8192)] {
                let wq = rng.floats(rows * cols, 2).withUnsafeBufferPointer {
                    QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols)
                }
                let x = rng.floats(2 * cols, 3)
                for superBlocks in [true, false] {
                    let acts = QuantizedActivations(cols: cols, capacity: 2, superBlocks: superBlocks)
                    x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: 2, stride: cols, isa: .scalar) }
                    XCTAssertEqual(acts.superBlockVector(0) != nil, superBlocks)
                    for threads in [1, 2] {
                        let outs = [1, 2].map { batch in
                            var out = [Float](repeating: .nan, count: batch * rows)
                            wq.withUnsafeBytes { base in
                                let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                                out.withUnsafeMutableBufferPointer {
                                    MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows,
                                               parallel: Parallel(threads: threads), isa: .avx512vnni)
                                }
                            }
                            return out[0..<rows].map(\.bitPattern)
                        }
                        let what = "\(kind) \(rows)x\(cols) per-\(superBlocks ? 256 : 32) \(threads) threads"
                        XCTAssertFalse(outs[0].contains(Float.nan.bitPattern), "\(what): a row not written")
                        let first = outs[0].indices.first { outs[0][$0] != outs[1][$0] }
                        XCTAssertNil(first, "\(what): one vector differs from the first of two at row \(first ?? -1)")
                    }
                }
            }
        }
    }

    private func checkAgreement(_ kind: QuantKind) throws {
        try XCTSkipUnless(KernelISA.supported.contains(.avx512vnni), "needs a CPU with AVX-512 VNNI (and so AVX2)")
        var rng = RNG(s: 23)
        let level: [Float] = [1, 0.5, 0.02, 1, 0.001, 0.3, 1, 0.7, 0.06]
        // (1030, 2048): each thread's groups are far enough apart to run in pairs at every batch;
        // (1030, 4096): long rows, one vector in quads (x86_avx512_quads.inc).
        for (rows, cols) in [(5, 256), (66, 512), (517, 1536), (1030, 2048), (1030, 4096)] {
            var w = rng.floats(rows * cols, 2)
            // row 0: the top level (q4k 15, q6 63) but at the first of each block
            for i in 0..<cols { w[i] = i % 32 == 0 ? (kind == .q6 ? -1 : 0) : 1 }
            let wq = w.withUnsafeBufferPointer { QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols) }
            for batch in [1, 2, 3, 4, 5, 8, 9, 17] {
                var x = rng.floats(batch * cols, 3).enumerated().map { $0.element * level[($0.offset / 32) % level.count] }
                for i in 0..<256 { x[i] = 1 }  // vector 0's first super-block: every activation 127
                if batch > 1 { for i in 0..<256 { x[cols + i] = -1 } }
                let acts = QuantizedActivations(cols: cols, capacity: batch)
                x.withUnsafeBufferPointer { acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar) }
                XCTAssertNotNil(acts.superBlockVector(0), "the per-256 form is kept for width \(cols)")
                XCTAssertEqual(acts.superBlockVector(0)?.v.q[1], 127)
                let outs = [KernelISA.avx2, .avx512vnni].map { isa in
                    var out = [Float](repeating: .nan, count: batch * rows)
                    wq.withUnsafeBytes { base in
                        let m = QMatrix(kind: kind, rows: rows, cols: cols, base: base.baseAddress!)
                        out.withUnsafeMutableBufferPointer {
                            MatMul.run(m, acts, batch: batch, out: $0.baseAddress!, outStride: rows,
                                       parallel: Parallel(threads: 2), isa: isa)
                        }
                    }
                    return out.map(\.bitPattern)
                }
                XCTAssertFalse(outs[0].contains(Float.nan.bitPattern), "\(kind) \(rows)x\(cols) batch \(batch): a row not written")
                let first = outs[0].indices.first { outs[0][$0] != outs[1][$0] }
                XCTAssertNil(first, "\(kind) \(rows)x\(cols) batch \(batch): AVX2 and AVX-512 differ at output \(first ?? -1)")
            }
        }
    }
}
