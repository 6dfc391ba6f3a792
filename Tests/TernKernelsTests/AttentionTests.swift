import TernKernels
import XCTest

/// Grouped attention (query heads sharing one KV head, one pass over K and V) on every ISA
/// path against a double-precision reference, f16 and q8 rows.
final class AttentionTests: XCTestCase {
    /// One case: `heads` query heads over `count` positions, read whole and as two ring segments
    /// split at `split`. Keys lean toward query 0 more and more along the positions (`ramp`), so
    /// the running maximum moves inside and across the kernels' blocks of 32 positions.
    func check(dim: Int, count: Int, heads: Int, split: Int, ramp: Float, seed: UInt64) {
        var rng = RNG(s: seed)
        let q = rng.floats(heads * dim, 1)
        let stride = dim + 32
        var kf = rng.floats(count * stride, 1)
        let vf = rng.floats(count * stride, 1)
        for t in 0..<count {
            for i in 0..<dim { kf[t * stride + i] += ramp * Float(t) / Float(count) * q[i] }
        }
        let k16 = kf.map { Float16($0).bitPattern }, v16 = vf.map { Float16($0).bitPattern }
        let rowBytes = KVPrecision.q8.rowBytes(dim: dim)
        let k8 = UnsafeMutableRawPointer.allocate(byteCount: count * rowBytes, alignment: 64)
        let v8 = UnsafeMutableRawPointer.allocate(byteCount: count * rowBytes, alignment: 64)
        defer { k8.deallocate(); v8.deallocate() }
        for t in 0..<count {
            for (src, dst) in [(kf, k8), (vf, v8)] {
                src.withUnsafeBufferPointer {
                    Ops.storeKV($0.baseAddress! + t * stride, dim: dim, into: dst + t * rowBytes, precision: .q8)
                }
            }
        }
        func q8(_ row: UnsafeRawPointer, _ i: Int) -> Double {
            let scale = Double(row.load(fromByteOffset: 4 * (i / 32), as: Float.self))
            return scale * Double(row.load(fromByteOffset: dim / 8 + i, as: Int8.self))
        }
        for quantized in [false, true] {
            let key: (Int, Int) -> Double = quantized ? { q8(k8 + $0 * rowBytes, $1) }
                : { Double(Float16(bitPattern: k16[$0 * stride + $1])) }
            let value: (Int, Int) -> Double = quantized ? { q8(v8 + $0 * rowBytes, $1) }
                : { Double(Float16(bitPattern: v16[$0 * stride + $1])) }
            var want = [Double](repeating: 0, count: heads * dim)
            for h in 0..<heads {
                var sc = (0..<count).map { t in
                    (0..<dim).reduce(0.0) { $0 + Double(q[h * dim + $1]) * key(t, $1) } * 0.125
                }
                let mx = sc.max()!
                sc = sc.map { Foundation.exp($0 - mx) }
                let tot = sc.reduce(0, +)
                for i in 0..<dim { want[h * dim + i] = (0..<count).reduce(0.0) { $0 + sc[$1] / tot * value($1, i) } }
            }
            for isa in KernelISA.supported {
                for segmented in [false, true] {
                    var out = [Float](repeating: .nan, count: heads * dim)
                    let first = segmented ? split : count
                    out.withUnsafeMutableBufferPointer { o in
                        if quantized {
                            Ops.attendQ8(q: q, heads: heads, k: k8, v: v8, rowBytes: rowBytes, count: first,
                                         k2: k8 + first * rowBytes, v2: v8 + first * rowBytes, wrapped: count - first,
                                         dim: dim, scale: 0.125, out: o.baseAddress!, isa: isa)
                        } else {
                            k16.withUnsafeBufferPointer { kp in
                                v16.withUnsafeBufferPointer { vp in
                                    let k = kp.baseAddress!, v = vp.baseAddress!
                                    Ops.attend(q: q, heads: heads, k: k, v: v, stride: stride, count: first,
                                               k2: k + first * stride, v2: v + first * stride, wrapped: count - first,
                                               dim: dim, scale: 0.125, out: o.baseAddress!, isa: isa)
                                }
                            }
                        }
                    }
                    let worst = zip(out, want).map { abs(Double($0) - $1) }.max()!
                    XCTAssertLessThan(worst, 1e-5, "\(isa) \(quantized ? "q8" : "f16") dim \(dim) heads \(heads) "
                                      + "positions \(count)\(segmented ? " split at \(split)" : "")")
                }
                // The context in two parts (positions ..< split and split...), each with its state,
                // then combined; a third part with no positions must add nothing.
                var rows = [Float](repeating: .nan, count: 3 * heads * dim)
                var states = [Float](repeating: .nan, count: 3 * 2 * heads)
                var out = [Float](repeating: .nan, count: heads * dim)
                rows.withUnsafeMutableBufferPointer { r in
                    states.withUnsafeMutableBufferPointer { st in
                        for (p, range) in [0..<split, split..<count, count..<count].enumerated() {
                            let row = r.baseAddress! + p * heads * dim, state = st.baseAddress! + p * 2 * heads
                            if quantized {
                                Ops.attendQ8(q: q, heads: heads, k: k8 + range.lowerBound * rowBytes,
                                             v: v8 + range.lowerBound * rowBytes, rowBytes: rowBytes, count: range.count,
                                             dim: dim, scale: 0.125, out: row, state: state, isa: isa)
                            } else {
                                k16.withUnsafeBufferPointer { kp in
                                    v16.withUnsafeBufferPointer { vp in
                                        let o = range.lowerBound * stride
                                        Ops.attend(q: q, heads: heads, k: kp.baseAddress! + o, v: vp.baseAddress! + o,
                                                   stride: stride, count: range.count, dim: dim, scale: 0.125, out: row,
                                                   state: state, isa: isa)
                                    }
                                }
                            }
                        }
                        out.withUnsafeMutableBufferPointer { o in
                            for h in 0..<heads {
                                Ops.combineAttention(parts: 3, rows: r.baseAddress! + h * dim, rowStride: heads * dim,
                                                     states: st.baseAddress! + 2 * h, stateStride: 2 * heads, dim: dim,
                                                     out: o.baseAddress! + h * dim)
                            }
                        }
                    }
                }
                let worst = zip(out, want).map { abs(Double($0) - $1) }.max()!
                XCTAssertLessThan(worst, 1e-5, "\(isa) \(quantized ? "q8" : "f16") dim \(dim) heads \(heads) "
                                  + "positions \(count) in parts split at \(split), combined")
            }
        }
    }

    func testGroupedAttentionOnEveryISA() {
        check(dim: 64, count: 100, heads: 3, split: 45, ramp: 6, seed: 1)  // SmolLM2's group
        check(dim: 64, count: 70, heads: 7, split: 64, ramp: 6, seed: 2)   // Qwen2.5 0.5B's
        check(dim: 256, count: 41, heads: 4, split: 1, ramp: 3, seed: 3)   // Gemma 3's
        check(dim: 128, count: 33, heads: 9, split: 32, ramp: 6, seed: 4)  // more heads than one call takes
        check(dim: 96, count: 5, heads: 1, split: 2, ramp: 0, seed: 5)     // fewer positions than a block
    }

    /// The work split: a KV head's whole group per item unless threads would sit idle.
    func testHeadsPerItem() {
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 3, kvHeads: 3, n: 1, threads: 2), 3)
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 4, kvHeads: 1, n: 1, threads: 2), 2)
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 4, kvHeads: 1, n: 1, threads: 4), 1)
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 7, kvHeads: 2, n: 1, threads: 4), 4)
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 4, kvHeads: 1, n: 16, threads: 2), 4)
        XCTAssertEqual(AttentionSplit.headsPerItem(group: 12, kvHeads: 1, n: 8, threads: 2), 6)
    }

    /// A long context is attended in parts only when a decode step's items (KV heads) leave a
    /// thread without one: powers of two of at least 256 positions, at most 8, that cover the
    /// positions exactly.
    func testContextParts() {
        let want = [(1, 2, 1000, 2), (1, 2, 511, 1), (1, 2, 512, 2), (1, 4, 4096, 4), (1, 4, 700, 2), (3, 4, 4096, 2),
                    (3, 2, 4096, 1), (2, 2, 4096, 1), (1, 1, 4096, 1), (1, 64, 100_000, 8)]
        for (items, threads, count, parts) in want {
            XCTAssertEqual(AttentionSplit.contextParts(items: items, count: count, threads: threads), parts,
                           "\(items) items, \(threads) threads, \(count) positions")
            let ranges = (0..<parts).map { AttentionSplit.part($0, of: parts, 7..<7 + count) }
            XCTAssertEqual(ranges.first?.lowerBound, 7)
            XCTAssertEqual(ranges.last?.upperBound, 7 + count)
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
            XCTAssertGreaterThanOrEqual(ranges.map(\.count).min()!, min(count, 256))
        }
    }
}
