import CTernKernels
import TernKernels
import XCTest

/// How MatMul cuts work over the pool: fused dispatches of several matrices, and part counts.
final class DispatchTests: XCTestCase {
    /// Q/K/V-style fused products of different kinds and ragged row counts, on every ISA path with
    /// two threads (the split falls inside the middle matrix), equal bit for bit the same products
    /// dispatched one by one: each output row is computed by the same kernel call either way.
    func testFusedProductsEqualSeparateOnes() {
        var rng = RNG(s: 11)
        let cols = 512
        let shapes: [(QuantKind, Int)] = [(.q4k, 13), (.q6, 66), (.q8, 7)]
        let ws = shapes.map { kind, rows in
            rng.floats(rows * cols, 2).withUnsafeBufferPointer { QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols) }
        }
        for batch in [1, 3, 5] {
            let acts = QuantizedActivations(cols: cols, capacity: batch)
            rng.floats(batch * cols, 3).withUnsafeBufferPointer {
                acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar)
            }
            ws[0].withUnsafeBytes { b0 in ws[1].withUnsafeBytes { b1 in ws[2].withUnsafeBytes { b2 in
                let ms = zip(shapes, [b0, b1, b2]).map { QMatrix(kind: $0.0, rows: $0.1, cols: cols, base: $1.baseAddress!) }
                for isa in KernelISA.supported {
                    let par = Parallel(threads: 2)
                    // One output buffer per matrix, each with a guard value past its end.
                    let fused = ms.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * $0.rows + 1) }
                    defer { fused.forEach { $0.deallocate() } }
                    for i in 0..<3 {
                        fused[i].initialize(repeating: .nan)
                        fused[i][batch * ms[i].rows] = 12345
                    }
                    MatMul.run(.init(ms[0], out: fused[0].baseAddress!, outStride: ms[0].rows),
                               .init(ms[1], out: fused[1].baseAddress!, outStride: ms[1].rows),
                               .init(ms[2], out: fused[2].baseAddress!, outStride: ms[2].rows),
                               acts, batch: batch, parallel: par, isa: isa)
                    var alone = ms.map { [Float](repeating: .nan, count: batch * $0.rows) }
                    for i in 0..<3 {
                        alone[i].withUnsafeMutableBufferPointer {
                            MatMul.run(ms[i], acts, batch: batch, out: $0.baseAddress!, outStride: ms[i].rows, parallel: par, isa: isa)
                        }
                        XCTAssertEqual(fused[i][batch * ms[i].rows], 12345, "\(isa) wrote past matrix \(i)")
                        XCTAssertEqual(Array(fused[i][..<(batch * ms[i].rows)]), Array(alone[i][..<(batch * ms[i].rows)]),
                                       "\(isa) batch \(batch) matrix \(i) (\(ms[i].kind))")
                        XCTAssertFalse(fused[i][..<(batch * ms[i].rows)].contains { $0.isNaN }, "\(isa) left outputs unset")
                    }
                }
            } } }
        }
    }

    /// The AVX-512 set kernels (tern_gemm_set_fn), which pair a dispatch part's groups across the
    /// matrices of a set (Q with K, the tail of Q with V, ...) at batches of 2-7, give every row the
    /// bits of its matrix multiplied alone, on every kind: whole and in 2, 3 or 5 parts (pairs in
    /// one matrix or across two, an odd last group, a ragged last matrix, parts too short to pair),
    /// with and without software prefetch.
    func testSetsPairAcrossMatrices() throws {
        try XCTSkipUnless(KernelISA.avx512vnni.isSupported, "no AVX-512 VNNI on this CPU")
        var rng = RNG(s: 23)
        let cols = 1024, rows = [1040, 256, 263], par = Parallel(threads: 1)
        for kind in QuantKind.allCases {
            let ws = rows.map { r in
                rng.floats(r * cols, 2).withUnsafeBufferPointer { QMatrix.quantize(kind, $0.baseAddress!, rows: r, cols: cols) }
            }
            ws[0].withUnsafeBytes { b0 in ws[1].withUnsafeBytes { b1 in ws[2].withUnsafeBytes { b2 in
                let ms = zip(rows, [b0, b1, b2]).map { QMatrix(kind: kind, rows: $0, cols: cols, base: $1.baseAddress!) }
                for batch in [1, 2, 3, 4, 5, 7, 8] {
                    let acts = QuantizedActivations(cols: cols, capacity: batch)
                    rng.floats(batch * cols, 3).withUnsafeBufferPointer {
                        acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .avx512vnni)
                    }
                    let alone = ms.map { m in
                        var o = [Float](repeating: .nan, count: batch * m.rows)
                        MatMul.run(m, acts, batch: batch, out: &o, outStride: m.rows, parallel: par, isa: .avx512vnni)
                        return o
                    }
                    let outs = ms.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * $0.rows) }
                    defer { outs.forEach { $0.deallocate() } }
                    for parts in [1, 2, 3, 5] {
                        for prefetch in [0, 4096] {
                            outs.forEach { $0.initialize(repeating: .nan) }
                            KernelISA.withPrefetch(prefetch) {
                                MatMul.run(.init(ms[0], out: outs[0].baseAddress!, outStride: ms[0].rows),
                                           .init(ms[1], out: outs[1].baseAddress!, outStride: ms[1].rows),
                                           .init(ms[2], out: outs[2].baseAddress!, outStride: ms[2].rows),
                                           acts, batch: batch, parallel: par, isa: .avx512vnni, parts: parts)
                            }
                            for i in 0..<3 {
                                XCTAssertEqual(Array(outs[i]), alone[i],
                                               "\(kind) batch \(batch) \(parts) parts prefetch \(prefetch) matrix \(i)")
                            }
                        }
                    }
                }
                checkSetKernelDeclines(kind, ms)
            } } }
        }
    }

    /// A set kernel called directly runs where it applies (so the products above went through it,
    /// and on halves 96 KB apart) and declines, writing nothing, at batches of 1 and 8, on halves
    /// under 64 KB apart, with a ragged matrix before the last, and on a range past the set's end.
    func checkSetKernelDeclines(_ kind: QuantKind, _ ms: [QMatrix]) {
        guard let set = KernelISA.avx512vnni.gemmSet(kind) else { return XCTFail("\(kind): no set kernel") }
        let cols = ms[0].cols, total = ms.reduce(0) { $0 + $1.groups }
        let acts = QuantizedActivations(cols: cols, capacity: 8)
        var rng = RNG(s: 24)
        rng.floats(8 * cols, 3).withUnsafeBufferPointer {
            acts.quantize($0.baseAddress!, batch: 8, stride: cols, isa: .avx512vnni)
        }
        let outs = ms.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: 8 * $0.rows) }
        defer { outs.forEach { $0.deallocate() } }
        func call(_ rows: [Int], _ g: Range<Int>, batch: Int) -> (ran: Int32, wrote: Bool) {
            outs.forEach { $0.initialize(repeating: .nan) }
            let members = zip(ms, zip(rows, outs)).map { m, ro in
                tern_gemm_part(w: m.base.assumingMemoryBound(to: UInt8.self), rows: ro.0, out: ro.1.baseAddress!,
                               out_stride: ro.0)
            }
            let ran = withUnsafePointer(to: acts.cAct) { a in
                set(members, Int32(members.count), ms[0].groupBytes, g.lowerBound, g.upperBound, ms[0].blocks, a, Int32(batch))
            }
            return (ran, outs.contains { $0.contains { !$0.isNaN } })
        }
        let rows = ms.map(\.rows)
        let whole = call(rows, 0..<total, batch: 3)
        XCTAssertEqual(whole.ran, 1, "\(kind): the whole set pairs")
        XCTAssertTrue(whole.wrote, "\(kind)")
        // Halves 96 KB apart pair at 2-7 vectors (PAIR_MIN_DISTANCE_SMALL; 128 KB for one vector).
        let near = call(rows, 0..<(2 * ((96 << 10) / ms[0].groupBytes)), batch: 3)
        XCTAssertEqual(near.ran, 1, "\(kind): halves 96 KB apart pair")
        for (r, g, batch, why) in [(rows, 0..<total, 1, "one vector"), (rows, 0..<total, 8, "8 vectors"),
                                   (rows, 0..<20, 3, "halves too close"), (rows, 1..<(total + 1), 3, "past the end"),
                                   ([rows[0], rows[1] - 1, rows[2]], 0..<total, 3, "a ragged matrix before the last")] {
            let (ran, wrote) = call(r, g, batch: batch)
            XCTAssertEqual(ran, 0, "\(kind): \(why)")
            XCTAssertFalse(wrote, "\(kind): \(why)")
        }
    }

    /// A matrix multiplied whole (where the AVX-512 path runs its groups in pairs: first half with
    /// second half, for batches of eight and more or groups 64 KB apart (128 KB for one vector);
    /// batches of 5-8 in one call per pair, larger ones four vectors at a time) equals the same matrix
    /// multiplied one four-row group at a time, bit for bit, on every kind and ISA path: odd group
    /// counts (a last group alone), a partial last group inside a pair, every batch tail.
    func testGroupPairsEqualSingleGroups() {
        checkGroupPairsEqualSingleGroups()
    }

    /// The AVX-512 q5 pairs with GFNI (the fifth bits moved by gf2p8affine) and without it (shifts
    /// and masks) give the same bits as the four-row groups, and so each other.
    func testGroupPairsWithAndWithoutGFNI() throws {
        try XCTSkipUnless(KernelISA.avx512vnni.isSupported, "no AVX-512 VNNI on this CPU")
        if !KernelISA.hasGFNI { print("DispatchTests: this CPU has no GFNI; only the shift path runs") }
        for on in [false, true] { KernelISA.withGFNI(on) { checkGroupPairsEqualSingleGroups(kinds: [.q5]) } }
    }

    /// The x86 kernels' software prefetch (any distance, lines past the matrix's end included)
    /// leaves every product's bits as they are without it, on every kind, ISA path and batch
    /// (up to 16 vectors prefetch, 17 and more do not); the distance is kept in whole
    /// cache lines from 0 to 64 KB.
    func testPrefetchKeepsTheBits() {
        for (asked, kept) in [(100, 64), (-5, 0), (1 << 30, 1 << 16), (4096, 4096)] {
            XCTAssertEqual(KernelISA.withPrefetch(asked) { KernelISA.prefetchDistance }, kept, "\(asked)")
        }
        #if arch(x86_64)  // only the x86 kernels prefetch
        KernelISA.withPrefetch(0) { checkGroupPairsEqualSingleGroups(comparedTo: [64, 4096, 1 << 16]) }
        #endif
    }

    /// The per-CPU default distance on AMD, by cpuid family and model (bench/README.md measured
    /// each): Zen 5 and later 4096, Zen 3 2048 (EPYC Milan, Ryzen 5000 and 6000), Zen 4 and Zen 1-2 0.
    func testAMDPrefetchDefaults() {
        let cases: [(family: UInt32, model: UInt32, bytes: Int)] = [
            (0x1A, 0x02, 4096), (0x1A, 0x44, 4096), (0x19, 0x01, 2048), (0x19, 0x21, 2048), (0x19, 0x44, 2048),
            (0x19, 0x50, 2048), (0x19, 0x11, 0), (0x19, 0x61, 0), (0x19, 0x74, 0), (0x19, 0xA0, 0), (0x17, 0x01, 0),
            (0x17, 0x31, 0),
        ]
        for c in cases {
            XCTAssertEqual(tern_amd_prefetch_default(c.family, c.model), c.bytes, "family \(c.family) model \(c.model)")
        }
    }

    /// Each product is also run with the kernels prefetching each distance of `comparedTo` ahead,
    /// which must give the same bits.
    func checkGroupPairsEqualSingleGroups(kinds: [QuantKind] = QuantKind.allCases, comparedTo distances: [Int] = []) {
        var rng = RNG(s: 12)
        let par = Parallel(threads: 1)
        for kind in kinds {
            for (rows, cols) in [(26, 512), (22, 512), (522, 2048), (518, 2048)] {
                let w = rng.floats(rows * cols, 2).withUnsafeBufferPointer {
                    QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols)
                }
                for batch in [1, 2, 5, 6, 7, 8, 11, 16, 17] {
                    let acts = QuantizedActivations(cols: cols, capacity: batch)
                    rng.floats(batch * cols, 3).withUnsafeBufferPointer {
                        acts.quantize($0.baseAddress!, batch: batch, stride: cols, isa: .scalar)
                    }
                    w.withUnsafeBytes { wb in
                        let m = QMatrix(kind: kind, rows: rows, cols: cols, base: wb.baseAddress!)
                        for isa in KernelISA.supported where isa != .scalar || rows < 100 {
                            var whole = [Float](repeating: .nan, count: batch * rows), alone = whole
                            MatMul.run(m, acts, batch: batch, out: &whole, outStride: rows, parallel: par, isa: isa)
                            alone.withUnsafeMutableBufferPointer { o in
                                for g in 0..<m.groups {
                                    let one = QMatrix(kind: kind, rows: min(4, rows - 4 * g), cols: cols, base: m.group(g))
                                    MatMul.run(one, acts, batch: batch, out: o.baseAddress! + 4 * g, outStride: rows,
                                               parallel: par, isa: isa)
                                }
                            }
                            XCTAssertFalse(whole.contains { $0.isNaN }, "\(isa) \(kind) left outputs unset")
                            XCTAssertEqual(whole, alone, "\(isa) \(kind) \(rows)x\(cols) batch \(batch)")
                            // In one part the whole range pairs (its halves lie 128 KB and more apart
                            // on the larger shapes), so batches of 5-7 run the wide pair calls too.
                            var onePart = [Float](repeating: .nan, count: batch * rows)
                            MatMul.run(m, acts, batch: batch, out: &onePart, outStride: rows, parallel: par, isa: isa, parts: 1)
                            XCTAssertEqual(onePart, whole, "\(isa) \(kind) \(rows)x\(cols) batch \(batch) in one part")
                            for prefetch in distances {
                                var ahead = [Float](repeating: .nan, count: batch * rows)
                                KernelISA.withPrefetch(prefetch) {
                                    MatMul.run(m, acts, batch: batch, out: &ahead, outStride: rows, parallel: par, isa: isa)
                                }
                                XCTAssertEqual(ahead, whole, "\(isa) \(kind) \(rows)x\(cols) batch \(batch) prefetch \(prefetch)")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Each vector of a batch gets the bits it gets alone (a batch of one), on every kind and ISA
    /// path, one thread and two, with and without the per-256 activations: a verification pass
    /// then scores each drafted position exactly as plain decoding would, which is what makes
    /// speculative decoding's tokens plain decoding's. Shapes: short rows (four-row groups), long
    /// ones (pairs; x86's quads at one vector) and a ragged last group.
    func testEveryVectorOfABatchHasItsOwnBits() {
        var rng = RNG(s: 31)
        for kind in QuantKind.allCases {
            for (rows, cols) in [(26, 512), (518, 2048), (1030, 4096)] {
                let w = rng.floats(rows * cols, 2).withUnsafeBufferPointer {
                    QMatrix.quantize(kind, $0.baseAddress!, rows: rows, cols: cols)
                }
                let batch = 9, x = rng.floats(batch * cols, 3)
                for superBlocks in [true, false] {
                    // vectors first ..< first + n of x, quantized by the scalar reference
                    func quantized(_ first: Int, _ n: Int) -> QuantizedActivations {
                        let a = QuantizedActivations(cols: cols, capacity: n, superBlocks: superBlocks)
                        x.withUnsafeBufferPointer {
                            a.quantize($0.baseAddress! + first * cols, batch: n, stride: cols, isa: .scalar)
                        }
                        return a
                    }
                    let acts = quantized(0, batch), ones = (0..<batch).map { quantized($0, 1) }
                    w.withUnsafeBytes { wb in
                        let m = QMatrix(kind: kind, rows: rows, cols: cols, base: wb.baseAddress!)
                        for isa in KernelISA.supported where isa != .scalar || rows < 100 {
                            for threads in [1, 2] {
                                let par = Parallel(threads: threads)
                                let alone = ones.map { one in
                                    var o = [Float](repeating: .nan, count: rows)
                                    MatMul.run(m, one, batch: 1, out: &o, outStride: rows, parallel: par, isa: isa)
                                    return o
                                }
                                for b in [2, 3, 4, 5, 7, 8, 9] {
                                    var out = [Float](repeating: .nan, count: b * rows)
                                    MatMul.run(m, acts, batch: b, out: &out, outStride: rows, parallel: par, isa: isa)
                                    let what = "\(isa) \(kind) \(rows)x\(cols) batch \(b) \(threads) threads"
                                        + (superBlocks ? "" : ", per-32 only")
                                    let differ = (0..<b).first { j in
                                        (0..<rows).contains { out[j * rows + $0].bitPattern != alone[j][$0].bitPattern }
                                    }
                                    XCTAssertNil(differ, "\(what): vector \(differ ?? -1)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One part per thread for small matrices (each part a new prefetch stream and a claim on a
    /// shared line), up to four per thread for large ones, never parts under four groups.
    func testPartCounts() {
        XCTAssertEqual(MatMul.parts(bytes: 200_000, groups: 144, batch: 1, threads: 2), 2)
        XCTAssertEqual(MatMul.parts(bytes: 3 << 20, groups: 800, batch: 1, threads: 2), 2, "a multiple of the threads")
        XCTAssertEqual(MatMul.parts(bytes: 5 << 20, groups: 800, batch: 1, threads: 2), 4)
        XCTAssertEqual(MatMul.parts(bytes: 190 << 20, groups: 38_000, batch: 1, threads: 2), 8)
        XCTAssertEqual(MatMul.parts(bytes: 190 << 20, groups: 38_000, batch: 1, threads: 1), 4)
        XCTAssertEqual(MatMul.parts(bytes: 200_000, groups: 144, batch: 16, threads: 2), 8, "a batch is balanced, not streamed")
        XCTAssertEqual(MatMul.parts(bytes: 8 << 20, groups: 6, batch: 1, threads: 4), 1)
        XCTAssertEqual(MatMul.parts(bytes: 100, groups: 1, batch: 1, threads: 2), 1)
    }

    /// A verification-sized batch on the pair kernels: parts of at least 256 KB (so that a part's
    /// halves lie 64 KB and more apart and run in pairs), at least one and at most four per thread;
    /// elsewhere, and from 8 vectors on, four per thread.
    func testPartCountsForSmallBatches() {
        // SmolLM2-135M's Q/K/V (345 KB), gate/up (1.1 MB), Qwen2.5-Coder-1.5B's gate/up (15.5 MB)
        XCTAssertEqual(MatMul.parts(bytes: 345_600, groups: 240, batch: 3, threads: 2, pairKernels: true), 2)
        XCTAssertEqual(MatMul.parts(bytes: 345_600, groups: 240, batch: 3, threads: 1, pairKernels: true), 1)
        XCTAssertEqual(MatMul.parts(bytes: 1_105_920, groups: 768, batch: 7, threads: 2, pairKernels: true), 4)
        XCTAssertEqual(MatMul.parts(bytes: 1_105_920, groups: 768, batch: 2, threads: 1, pairKernels: true), 4)
        XCTAssertEqual(MatMul.parts(bytes: 15_482_880, groups: 4480, batch: 4, threads: 2, pairKernels: true), 8)
        XCTAssertEqual(MatMul.parts(bytes: 345_600, groups: 240, batch: 8, threads: 2, pairKernels: true), 8,
                       "from 8 vectors the pairs need no distance: balanced")
        XCTAssertEqual(MatMul.parts(bytes: 345_600, groups: 240, batch: 3, threads: 2), 8, "four-row kernels: balanced")
        XCTAssertEqual(MatMul.parts(bytes: 345_600, groups: 6, batch: 3, threads: 2, pairKernels: true), 1)
    }
}
