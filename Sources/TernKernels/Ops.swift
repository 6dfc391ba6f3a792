import CTernKernels
import Foundation

/// Element-wise float operations of the forward pass. Vectorized in C where the active ISA has
/// a path; the Swift versions compute the same formulas (they are the reference).
public enum Ops {
    /// out = x / sqrt(mean(x^2) + eps) * w   (w may be nil: no weight). `out` may alias `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, count n: Int, eps: Float,
                               out: UnsafeMutablePointer<Float>) {
        // The sum of squares in sixteen lanes: one float accumulator was a chain of n dependent
        // adds (0.6 us for 576 values, 1.1% of SmolLM2's decode step at one thread).
        var lanes = SIMD16<Float>(), i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes += v * v
            i += 16
        }
        var ss = lanes.sum()
        while i < n { ss += x[i] * x[i]; i += 1 }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        if let w {
            for i in 0..<n { out[i] = x[i] * scale * w[i] }
        } else {
            for i in 0..<n { out[i] = x[i] * scale }
        }
    }

    /// The index of the largest of `x[0..<n]`, the lowest on ties; NaNs are never the largest, and
    /// 0 when nothing exceeds -infinity. The same answer as the scalar scan `if x[i] > best`, in two
    /// vector passes (the maximum, then its first index): 0.22 -> 0.05 ms over Gemma 3's 262k logits
    /// in a micro-benchmark, scanned once per token by the greedy sampler and once per drafted
    /// position by verification.
    public static func argmax(_ x: UnsafePointer<Float>, count n: Int) -> Int {
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes.replace(with: v, where: v .> lanes)
            i += 16
        }
        var best = -Float.infinity
        for l in 0..<16 where lanes[l] > best { best = lanes[l] }
        for j in i..<n where x[j] > best { best = x[j] }
        if best == -.infinity { return 0 }
        for j in 0..<n where x[j] == best { return j }
        return 0
    }

    /// Fills `cos`/`sin` (dim/2 each) for position `pos`: angle i = pos * inv[i].
    public static func ropeTable(pos: Int, inv: UnsafePointer<Float>, half: Int,
                                 cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        for i in 0..<half {
            let theta = Float(pos) * inv[i]
            c[i] = Foundation.cos(theta)
            s[i] = Foundation.sin(theta)
        }
    }

    /// Rotary embedding, NEOX layout (pairs i and i + dim/2), in place on `heads` vectors of `dim`,
    /// with a table from ``ropeTable(pos:inv:half:cos:sin:)``.
    public static func ropeNeox(_ x: UnsafeMutablePointer<Float>, heads: Int, dim: Int,
                                cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>) {
        let half = dim / 2
        for h in 0..<heads {
            let p = x + h * dim
            for i in 0..<half {
                let a = p[i], b = p[i + half]
                p[i] = a * c[i] - b * s[i]
                p[i + half] = a * s[i] + b * c[i]
            }
        }
    }

    /// Rotary embedding on adjacent pairs (2i, 2i + 1), llama.cpp's "normal" RoPE for Llama,
    /// whose GGUF Q/K rows are permuted for it; same table as ``ropeNeox(_:heads:dim:cos:sin:)``.
    public static func ropeAdjacent(_ x: UnsafeMutablePointer<Float>, heads: Int, dim: Int,
                                    cos c: UnsafePointer<Float>, sin s: UnsafePointer<Float>) {
        for h in 0..<heads {
            let p = x + h * dim
            for i in 0..<dim / 2 {
                let a = p[2 * i], b = p[2 * i + 1]
                p[2 * i] = a * c[i] - b * s[i]
                p[2 * i + 1] = a * s[i] + b * c[i]
            }
        }
    }

    /// Rotary embedding computing its own angles (tests and one-off use).
    public static func ropeNeox(_ x: UnsafeMutablePointer<Float>, heads: Int, dim: Int, pos: Int, inv: UnsafePointer<Float>) {
        let half = dim / 2
        let c = UnsafeMutablePointer<Float>.allocate(capacity: dim)
        defer { c.deallocate() }
        ropeTable(pos: pos, inv: inv, half: half, cos: c, sin: c + half)
        ropeNeox(x, heads: heads, dim: dim, cos: c, sin: c + half)
    }

    /// tanh as the rational function the C path uses (odd degree-13 over even degree-6, the
    /// approximation Eigen uses for float), with the same fused multiply-adds in the same order,
    /// so every ISA computes bit-identical GELUs.
    @inline(__always) static func tanhRational(_ x: Float) -> Float {
        let x = min(max(x, -7.905_311_107_635_498), 7.905_311_107_635_498)
        let x2 = x * x
        var p: Float = -2.760_768_477_423_55e-16
        for c: Float in [2.000_187_904_824_77e-13, -8.604_671_522_137_35e-11, 5.122_297_090_371_14e-08,
                         1.485_722_357_179_79e-05, 6.372_619_288_754_36e-04, 4.893_524_558_917_86e-03] {
            p = c.addingProduct(x2, p)
        }
        p = x * p
        var q: Float = 1.198_258_394_667_02e-06
        for c: Float in [1.185_347_056_866_54e-04, 2.268_434_632_439_00e-03, 4.893_525_185_543_85e-03] {
            q = c.addingProduct(x2, q)
        }
        return p / q
    }

    /// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    @inline(__always) public static func gelu(_ x: Float) -> Float {
        let inner = 0.797_884_56 * x.addingProduct(0.044715 * x, x * x)
        return (0.5 * x) * (1 + tanhRational(inner))
    }

    /// g[i] = gelu(g[i]) * u[i].
    public static func geluMul(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count n: Int,
                               isa: KernelISA = .active) {
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni { tern_gelu_mul_avx2(g, u, n); return }
        #elseif arch(arm64)
        if isa.isARM { tern_gelu_mul_neon(g, u, n); return }
        #endif
        for i in 0..<n { g[i] = gelu(g[i]) * u[i] }
    }

    /// exp(x) for x clamped to ±87, as the C kernels compute it: x = n·ln2 + r with
    /// n = round(x·log2 e) and ln2 in two parts (Cody-Waite), exp(r) by the polynomial of Cephes'
    /// expf (S. Moshier), times 2^n built in the exponent bits. Same fused operations, same order.
    @inline(__always) static func expApprox(_ x: Float) -> Float {
        let x = min(max(x, -87), 87)
        let n = (x * 1.442_695_040_888_963_41).rounded(.toNearestOrEven)
        var r = x.addingProduct(n, -0.693_359_375)
        r = r.addingProduct(n, 2.121_944_40e-4)
        let z = r * r
        var y: Float = 1.987_569_150_0e-4
        y = Float(1.398_199_950_7e-3).addingProduct(y, r)
        y = Float(8.333_451_907_3e-3).addingProduct(y, r)
        y = Float(4.166_579_589_4e-2).addingProduct(y, r)
        y = Float(1.666_666_545_9e-1).addingProduct(y, r)
        y = Float(5.000_000_120_1e-1).addingProduct(y, r)
        y = r.addingProduct(y, z) + 1
        return y * Float(bitPattern: UInt32(bitPattern: Int32(n) + 127) << 23)
    }

    /// SiLU (swish): x / (1 + exp(-x)).
    @inline(__always) public static func silu(_ x: Float) -> Float { x / (1 + expApprox(-x)) }

    /// g[i] = silu(g[i]) * u[i]: the SwiGLU gate of Llama-style FFNs.
    public static func siluMul(_ g: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, count n: Int,
                               isa: KernelISA = .active) {
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni { tern_silu_mul_avx2(g, u, n); return }
        #elseif arch(arm64)
        if isa.isARM { tern_silu_mul_neon(g, u, n); return }
        #endif
        for i in 0..<n { g[i] = silu(g[i]) * u[i] }
    }

    /// f32 -> f16 (round to nearest even).
    public static func toHalf(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count n: Int,
                              isa: KernelISA = .active) {
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni { tern_f32_to_f16_avx2(x, y, n); return }
        #elseif arch(arm64)
        if isa.isARM { tern_f32_to_f16_neon(x, y, n); return }
        #endif
        for i in 0..<n { y[i] = floatToHalf(x[i]) }
    }

    /// Fused attention for `heads` query heads that share one KV head (their rows of `dim` floats
    /// one after another in `q` and in `out`) over `count` positions of f16 K/V:
    /// out_h = sum_t softmax(scale * q_h.k_t) v_t. Positions are `stride` elements apart; when the
    /// positions wrap around a ring buffer, `wrapped` more follow from `k2`/`v2`. The C kernels
    /// serve up to `TERN_ATTEND_MAX_HEADS` heads per pass over K and V. With `state`, the rows
    /// are left unnormalized and each head's softmax state (max score, sum of weights) is written
    /// there, two floats per head: one part of a split context, for `combineAttention`.
    public static func attend(q: UnsafePointer<Float>, heads: Int = 1, k: UnsafePointer<UInt16>, v: UnsafePointer<UInt16>,
                              stride: Int, count: Int, k2: UnsafePointer<UInt16>? = nil, v2: UnsafePointer<UInt16>? = nil,
                              wrapped: Int = 0, dim: Int, scale: Float, out: UnsafeMutablePointer<Float>,
                              state: UnsafeMutablePointer<Float>? = nil, isa: KernelISA = .active) {
        segments(q: q, heads: heads, dim: dim, out: out, state: state) { qh, n, oh, st in
            attendSegment(qh, n, k, v, stride, count, dim, scale, oh, st, isa)
            if wrapped > 0, let k2, let v2 { attendSegment(qh, n, k2, v2, stride, wrapped, dim, scale, oh, st, isa) }
        }
    }

    /// ``attend(q:heads:k:v:stride:count:k2:v2:wrapped:dim:scale:out:isa:)`` over q8 K/V rows of
    /// ``KVPrecision/rowBytes(dim:)`` bytes each.
    public static func attendQ8(q: UnsafePointer<Float>, heads: Int = 1, k: UnsafeRawPointer, v: UnsafeRawPointer,
                                rowBytes: Int, count: Int, k2: UnsafeRawPointer? = nil, v2: UnsafeRawPointer? = nil,
                                wrapped: Int = 0, dim: Int, scale: Float, out: UnsafeMutablePointer<Float>,
                                state: UnsafeMutablePointer<Float>? = nil, isa: KernelISA = .active) {
        segments(q: q, heads: heads, dim: dim, out: out, state: state) { qh, n, oh, st in
            attendQ8Segment(qh, n, k, v, rowBytes, count, dim, scale, oh, st, isa)
            if wrapped > 0, let k2, let v2 { attendQ8Segment(qh, n, k2, v2, rowBytes, wrapped, dim, scale, oh, st, isa) }
        }
    }

    /// Query heads one C attention call serves.
    public static let attendMaxHeads = Int(TERN_ATTEND_MAX_HEADS)

    /// Runs `body(q of the run, heads, out of the run, state)` for the heads in runs of up to
    /// ``attendMaxHeads``, each with a fresh online-softmax state (max, sum per head) over a zeroed
    /// `out`, then normalizes every head's row; with `state` given, the states go there and the
    /// rows stay unnormalized. Otherwise the state lives on the stack.
    @inline(__always) static func segments(q: UnsafePointer<Float>, heads: Int, dim: Int, out: UnsafeMutablePointer<Float>,
                                           state: UnsafeMutablePointer<Float>?,
                                           _ body: (UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>,
                                                    UnsafeMutablePointer<Float>) -> Void) {
        out.initialize(repeating: 0, count: heads * dim)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * attendMaxHeads) { tmp in
            var h0 = 0
            while h0 < heads {
                let n = min(attendMaxHeads, heads - h0)
                // The kernels update the state once per block: on this thread's stack, not on a line
                // another thread's part writes too.
                let st = tmp.baseAddress!
                for h in 0..<n { st[2 * h] = -.infinity; st[2 * h + 1] = 0 }
                body(q + h0 * dim, n, out + h0 * dim, st)
                if let state {
                    (state + 2 * h0).update(from: st, count: 2 * n)
                } else {
                    for h in 0..<n {
                        let inv = 1 / st[2 * h + 1], o = out + (h0 + h) * dim
                        for i in 0..<dim { o[i] *= inv }
                    }
                }
                h0 += n
            }
        }
    }

    /// One head's attention over a context attended in `parts` parts, each from `attend` or
    /// `attendQ8` with a state: part p's unnormalized row at `rows + p * rowStride`, its (max score,
    /// weight sum) at `states + p * stateStride`. The parts are merged in order into `out` and it is
    /// normalized (Flash-Decoding's reduction, Dao, Haziza, Massa and Sizov 2023): with m' the larger
    /// max, acc = e^(m - m') acc + e^(mp - m') row_p and the sum likewise. A part with no positions
    /// (max -inf) adds nothing. Every split context goes through here, so the same parts always give
    /// the same bits.
    public static func combineAttention(parts: Int, rows: UnsafePointer<Float>, rowStride: Int,
                                        states: UnsafePointer<Float>, stateStride: Int, dim: Int,
                                        out: UnsafeMutablePointer<Float>) {
        out.update(from: rows, count: dim)
        var m = states[0], l = states[1]
        for p in 1..<max(1, parts) {
            let row = rows + p * rowStride, mp = states[p * stateStride], lp = states[p * stateStride + 1]
            if mp == -.infinity { continue }
            if m == -.infinity {
                out.update(from: row, count: dim)
                (m, l) = (mp, lp)
                continue
            }
            let mx = max(m, mp), ca = exp(m - mx), cp = exp(mp - mx)
            for i in 0..<dim { out[i] = out[i] * ca + row[i] * cp }
            l = l * ca + lp * cp
            m = mx
        }
        let inv = 1 / l
        for i in 0..<dim { out[i] *= inv }
    }

    /// The Swift online-softmax segment: `key(t, i)` and `value(t, i)` read element i of position t.
    @inline(__always) static func onlineSoftmax(_ q: UnsafePointer<Float>, count: Int, dim: Int, scale: Float,
                                                out: UnsafeMutablePointer<Float>, state st: UnsafeMutablePointer<Float>,
                                                key: (Int, Int) -> Float, value: (Int, Int) -> Float) {
        var m = st[0], l = st[1]
        for t in 0..<count {
            var s: Float = 0
            for i in 0..<dim { s += q[i] * key(t, i) }
            s *= scale
            if s > m {
                let c = exp(m - s)
                for i in 0..<dim { out[i] *= c }
                l *= c
                m = s
            }
            let p = exp(s - m)
            l += p
            for i in 0..<dim { out[i] += p * value(t, i) }
        }
        st[0] = m
        st[1] = l
    }

    static func attendQ8Segment(_ q: UnsafePointer<Float>, _ heads: Int, _ k: UnsafeRawPointer, _ v: UnsafeRawPointer,
                                _ rowBytes: Int, _ count: Int, _ dim: Int, _ scale: Float,
                                _ out: UnsafeMutablePointer<Float>, _ st: UnsafeMutablePointer<Float>, _ isa: KernelISA) {
        let k8 = k.assumingMemoryBound(to: UInt8.self), v8 = v.assumingMemoryBound(to: UInt8.self)
        #if arch(x86_64)
        if isa == .avx512vnni { tern_attend_q8_avx512vnni(q, heads, k8, v8, rowBytes, count, dim, scale, out, st); return }
        if isa == .avx2 { tern_attend_q8_avx2(q, heads, k8, v8, rowBytes, count, dim, scale, out, st); return }
        #elseif arch(arm64)
        if isa.isARM { tern_attend_q8_neon(q, heads, k8, v8, rowBytes, count, dim, scale, out, st); return }
        #endif
        @inline(__always) func element(_ row: UnsafeRawPointer, _ i: Int) -> Float {
            row.loadUnaligned(fromByteOffset: 4 * (i / 32), as: Float.self)
                * Float(row.load(fromByteOffset: dim / 8 + i, as: Int8.self))
        }
        for h in 0..<heads {
            onlineSoftmax(q + h * dim, count: count, dim: dim, scale: scale, out: out + h * dim, state: st + 2 * h,
                          key: { element(k + $0 * rowBytes, $1) }, value: { element(v + $0 * rowBytes, $1) })
        }
    }

    /// A rounded x / scale as int8. Finite inputs are within -127...127; NaN, infinities, or a
    /// 1 / scale that overflowed, as a malformed model can produce, must not trap: clamped, NaN as 0.
    @inline(__always) public static func int8Clamped(_ r: Float) -> Int8 { r.isNaN ? 0 : Int8(max(-128, min(127, r))) }

    /// Stores one K or V vector (`dim` floats) as a cache row of `precision`.
    public static func storeKV(_ x: UnsafePointer<Float>, dim: Int, into row: UnsafeMutableRawPointer, precision: KVPrecision,
                               isa: KernelISA = .active) {
        switch precision {
        case .f16:
            toHalf(x, row.assumingMemoryBound(to: UInt16.self), count: dim, isa: isa)
        case .q8:
            // Symmetric int8 per 32 values with an f32 scale; round half to even.
            for g in 0..<dim / 32 {
                var amax: Float = 0
                for i in 0..<32 { amax = max(amax, abs(x[g * 32 + i])) }
                let d = amax / 127
                let inv: Float = d == 0 ? 0 : 1 / d
                row.storeBytes(of: d, toByteOffset: 4 * g, as: Float.self)
                for i in 0..<32 {
                    let q = int8Clamped((x[g * 32 + i] * inv).rounded(.toNearestOrEven))
                    row.storeBytes(of: q, toByteOffset: dim / 8 + g * 32 + i, as: Int8.self)
                }
            }
        }
    }

    static func attendSegment(_ q: UnsafePointer<Float>, _ heads: Int, _ k: UnsafePointer<UInt16>,
                              _ v: UnsafePointer<UInt16>, _ stride: Int, _ count: Int, _ dim: Int, _ scale: Float,
                              _ out: UnsafeMutablePointer<Float>, _ st: UnsafeMutablePointer<Float>, _ isa: KernelISA) {
        #if arch(x86_64)
        if isa == .avx512vnni { tern_attend_f16_avx512vnni(q, heads, k, v, stride, count, dim, scale, out, st); return }
        if isa == .avx2 { tern_attend_f16_avx2(q, heads, k, v, stride, count, dim, scale, out, st); return }
        #elseif arch(arm64)
        if isa.isARM { tern_attend_f16_neon(q, heads, k, v, stride, count, dim, scale, out, st); return }
        #endif
        for h in 0..<heads {
            onlineSoftmax(q + h * dim, count: count, dim: dim, scale: scale, out: out + h * dim, state: st + 2 * h,
                          key: { halfToFloat(k[$0 * stride + $1]) }, value: { halfToFloat(v[$0 * stride + $1]) })
        }
    }
}

/// How attention work is cut into items (one position and a run of query heads each).
public enum AttentionSplit {
    /// Query heads per item for `n` positions on `threads` threads: a KV head's whole group (up
    /// to ``Ops/attendMaxHeads``), unless there would be fewer items than threads; then the
    /// groups are cut into equal runs until every thread has one.
    public static func headsPerItem(group: Int, kvHeads: Int, n: Int, threads: Int) -> Int {
        var runs = (group + Ops.attendMaxHeads - 1) / Ops.attendMaxHeads
        while runs < group && n * kvHeads * runs < threads { runs += 1 }
        return (group + runs - 1) / runs
    }

    /// Positions a part of a split context has at least (see ``contextParts(items:count:threads:)``).
    public static let minPartPositions = 256
    /// The most parts a context is split into.
    public static let maxContextParts = 8

    /// Parts the context of a position is attended in when a decode step has `items` work items
    /// (a KV head's query heads each) for `threads` threads: 1 when every thread has an item,
    /// else the smallest power of two that gives each thread one, as far as every part keeps
    /// ``minPartPositions`` of the `count` positions. Gemma 3 has one KV head: its four query heads
    /// were cut into runs of two, and both threads read the whole KV cache (split-K over positions
    /// instead, as Flash-Decoding does: Dao, Haziza, Massa, Sizov 2023). Where every thread has an
    /// item already, parts only cost: each part's first block of K/V rows starts without its
    /// prefetch (in a C loop over SmolLM2's caches at 1024 positions, 4 parts took 8-10% longer and
    /// 8 parts 20%), and more items on SmolLM2's three KV heads did not make two threads faster.
    /// The parts depend on the thread count, so at 512 positions and more the last bits of a
    /// result may too; for a given thread count decoding and verification split alike.
    public static func contextParts(items: Int, count: Int, threads: Int) -> Int {
        var parts = 1
        while items * parts < threads && parts < maxContextParts && count >= 2 * parts * minPartPositions {
            parts *= 2
        }
        return parts
    }

    /// Part `p` of `parts` of `positions`.
    @inline(__always) public static func part(_ p: Int, of parts: Int, _ positions: Range<Int>) -> Range<Int> {
        let n = positions.count
        return positions.lowerBound + n * p / parts..<positions.lowerBound + n * (p + 1) / parts
    }
}
