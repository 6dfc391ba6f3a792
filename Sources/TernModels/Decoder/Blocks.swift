import TernKernels

/// One layer's weights. Every family has the seven matrices and the two pre-norms; the optional
/// vectors are there when the configuration asks for them.
struct DecoderLayer {
    let attnNorm, ffnNorm: UnsafePointer<Float>
    /// Per-head Q/K RMSNorm (Gemma 3, Qwen3), norms of the attention and FFN outputs (Gemma 3),
    /// Q/K/V biases (Qwen2).
    let qNorm, kNorm, postAttnNorm, postFfnNorm, qBias, kBias, vBias: UnsafePointer<Float>?
    let wq, wk, wv, wo, gate, up, down: QMatrix

    /// The matrices multiplied together, by index in ``matrixShapes(_:)``: Q/K/V (one fused
    /// dispatch), O, gate/up (fused), down. A streamed layer is read set by set.
    static let dispatchSets = [[0, 1, 2], [3], [4, 5], [6]]

    /// Matrix names in the order the layer binds them, with their [rows, cols].
    static func matrixShapes(_ c: DecoderConfig) -> [(String, Int, Int)] {
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        return [("attn_q", q, c.width), ("attn_k", kv, c.width), ("attn_v", kv, c.width), ("attn_output", c.width, q),
                ("ffn_gate", c.ffn, c.width), ("ffn_up", c.ffn, c.width), ("ffn_down", c.width, c.ffn)]
    }
}

/// One layer's pass over a batch of `n` positions: the blocks a family's layer math is built
/// from (as llama.cpp's `build_norm`/`build_attn`/`build_ffn`). The residual stream is
/// `s.hidden`; attention and FFN leave their output in buffer `o` for ``residual(postNorm:)``.
struct LayerPass {
    let c: DecoderConfig
    let L: DecoderLayer
    let l: Int, n: Int, startPos: Int
    let s: ModelState
    let parallel: Parallel
    /// RoPE tables per position (distinct bases) and the one this layer uses.
    let ropeTables: Int, ropeRow: Int
    /// Where this layer's matrices come from when it is streamed (nil: in place).
    let stream: StreamedWeights?

    typealias B = DecoderModel.B

    /// Runs `body(b)` for each batch row, in parallel for prefill-sized batches. A few rows (a
    /// decode step, a verification pass) run on the calling thread: the row work is small, and
    /// dispatching a closure to the pool allocates its context.
    @inline(__always) func rows(_ body: (Int) -> Void) {
        if n <= 8 { for b in 0..<n { body(b) }; return }
        parallel.forEach(n, minChunk: 1) { r in for b in r { body(b) } }
    }

    /// The products of dispatch set `set` (``DecoderLayer/dispatchSets``) into their targets: one
    /// fused dispatch for a layer in place, chunk by chunk for a streamed one.
    func product(_ set: Int, _ t0: MatMul.Target, _ t1: MatMul.Target?, _ t2: MatMul.Target?, _ x: QuantizedActivations) {
        if let stream, stream.streams(layer: l) {
            stream.run(layer: l, set: set, (t0, t1, t2), x, batch: n, parallel: parallel, state: s)
        } else {
            MatMul.run(t0, t1, t2, x, batch: n, parallel: parallel)
        }
    }

    /// RMSNorm of the residual stream with `w`, quantized into activations 0 for the next matrices.
    func normInput(_ w: UnsafePointer<Float>) {
        let x = UnsafeSendable(s.hidden), xn = UnsafeSendable(s.buffers[B.xn]), a0 = s.acts[0], width = c.width, eps = c.eps
        rows { b in
            Ops.rmsNorm(x.value + b * width, w, count: width, eps: eps, out: xn.value + b * width)
            a0.quantizeOne(xn.value + b * width, into: b)
        }
    }

    /// Self-attention: pre-norm, Q/K/V projections (+ biases), per-head Q/K norms, RoPE, the KV
    /// cache write, causal attention, and the output projection into `o`.
    func attention() {
        let c = c, L = L
        normInput(L.attnNorm)
        let qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim
        let qb = UnsafeSendable(s.buffers[B.q]), kb = UnsafeSendable(s.buffers[B.k]), vb = UnsafeSendable(s.buffers[B.v])
        let a0 = s.acts[0]
        product(0, .init(L.wq, out: qb.value, outStride: qd), .init(L.wk, out: kb.value, outStride: kvd),
                .init(L.wv, out: vb.value, outStride: kvd), a0)
        let kc = UnsafeSendable(s.raw[2 * l]), vc = UnsafeSendable(s.raw[2 * l + 1])
        let job = s.auxiliary as! AttentionJob
        let slots = job.slots(l), kvRow = job.kvRow, precision = job.kv, startPos = startPos
        let tables = ropeTables
        let rope = UnsafeSendable(s.buffers[B.rope] + ropeRow * c.headDim)
        rows { b in
            let q = qb.value + b * qd, k = kb.value + b * kvd, v = vb.value + b * kvd
            if let bq = L.qBias, let bk = L.kBias, let bv = L.vBias {
                for i in 0..<qd { q[i] += bq[i] }
                for i in 0..<kvd { k[i] += bk[i] }
                for i in 0..<kvd { v[i] += bv[i] }
            }
            if let qn = L.qNorm, let kn = L.kNorm {
                for h in 0..<c.heads { Ops.rmsNorm(q + h * c.headDim, qn, count: c.headDim, eps: c.eps, out: q + h * c.headDim) }
                for h in 0..<c.kvHeads {
                    Ops.rmsNorm(k + h * c.headDim, kn, count: c.headDim, eps: c.eps, out: k + h * c.headDim)
                }
            }
            let r = rope.value + b * tables * c.headDim, half = c.headDim / 2
            switch c.rope {
            case .neox:
                Ops.ropeNeox(q, heads: c.heads, dim: c.headDim, cos: r, sin: r + half)
                Ops.ropeNeox(k, heads: c.kvHeads, dim: c.headDim, cos: r, sin: r + half)
            case .adjacentPairs:
                Ops.ropeAdjacent(q, heads: c.heads, dim: c.headDim, cos: r, sin: r + half)
                Ops.ropeAdjacent(k, heads: c.kvHeads, dim: c.headDim, cos: r, sin: r + half)
            }
            let slot = (startPos + b) % slots
            // Head-major: KV head h's rows ([scales][values] for q8) fill slots h * slots ..< (h + 1) *
            // slots, so attention reads each head's positions as one sequential stream.
            let headRow = kvRow / c.kvHeads
            for h in 0..<c.kvHeads {
                let row = (h * slots + slot) * headRow
                Ops.storeKV(k + h * c.headDim, dim: c.headDim, into: kc.value + row, precision: precision)
                Ops.storeKV(v + h * c.headDim, dim: c.headDim, into: vc.value + row, precision: precision)
            }
        }
        job.dispatch(layer: l, n: n, startPos: startPos, pool: parallel.pool)
        let att = UnsafeSendable(s.buffers[B.att]), a1 = s.acts[1]
        rows { b in a1.quantizeOne(att.value + b * qd, into: b) }
        product(1, .init(L.wo, out: s.buffers[B.o], outStride: c.width), nil, nil, a1)
    }

    /// x += o, with `o` normed by `postNorm` first when given.
    func residual(postNorm: UnsafePointer<Float>? = nil) {
        let x = UnsafeSendable(s.hidden), o = UnsafeSendable(s.buffers[B.o]), w = c.width, eps = c.eps
        rows { b in
            let ob = o.value + b * w, xb = x.value + b * w
            if let postNorm { Ops.rmsNorm(ob, postNorm, count: w, eps: eps, out: ob) }
            for i in 0..<w { xb[i] += ob[i] }
        }
    }

    /// Gated FFN: pre-norm, gate and up projections, act(gate) * up, down projection into `o`.
    func feedForward() {
        let c = c, L = L
        normInput(L.ffnNorm)
        let g = UnsafeSendable(s.buffers[B.gate]), u = UnsafeSendable(s.buffers[B.up])
        product(2, .init(L.gate, out: g.value, outStride: c.ffn), .init(L.up, out: u.value, outStride: c.ffn), nil, s.acts[0])
        let a2 = s.acts[2]
        rows { b in
            switch c.activation {
            case .gelu: Ops.geluMul(g.value + b * c.ffn, u.value + b * c.ffn, count: c.ffn)
            case .silu: Ops.siluMul(g.value + b * c.ffn, u.value + b * c.ffn, count: c.ffn)
            }
            a2.quantizeOne(g.value + b * c.ffn, into: b)
        }
        product(3, .init(L.down, out: s.buffers[B.o], outStride: c.width), nil, nil, a2)
    }
}
