import TernKernels

/// One layer's weights. Every family has the seven matrices and the two pre-norms; the optional
/// vectors are there when the configuration asks for them.
struct DecoderLayer {
    let attnNorm, ffnNorm: UnsafePointer<Float>
    /// Per-head Q/K RMSNorm (Gemma 3, Qwen3), norms of the attention and FFN outputs (Gemma 3),
    /// Q/K/V biases (Qwen2).
    let qNorm, kNorm, postAttnNorm, postFfnNorm, qBias, kBias, vBias: UnsafePointer<Float>?
    let wq, wk, wv, wo, gate, up, down: QMatrix

    /// Matrix names in the order a streaming slot packs them, with their [rows, cols].
    static func matrixShapes(_ c: DecoderConfig) -> [(String, Int, Int)] {
        let q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        return [("attn_q", q, c.width), ("attn_k", kv, c.width), ("attn_v", kv, c.width), ("attn_output", c.width, q),
                ("ffn_gate", c.ffn, c.width), ("ffn_up", c.ffn, c.width), ("ffn_down", c.width, c.ffn)]
    }

    /// The same layer with its matrices at `base + offsets[i]` (a streaming slot), in the
    /// order of ``matrixShapes(_:)``. Builds no arrays: it runs per layer per token.
    func rebound(to base: UnsafeRawPointer, offsets o: [Int]) -> DecoderLayer {
        func at(_ m: QMatrix, _ i: Int) -> QMatrix { QMatrix(kind: m.kind, rows: m.rows, cols: m.cols, base: base + o[i]) }
        return DecoderLayer(attnNorm: attnNorm, ffnNorm: ffnNorm, qNorm: qNorm, kNorm: kNorm, postAttnNorm: postAttnNorm,
                            postFfnNorm: postFfnNorm, qBias: qBias, kBias: kBias, vBias: vBias, wq: at(wq, 0), wk: at(wk, 1),
                            wv: at(wv, 2), wo: at(wo, 3), gate: at(gate, 4), up: at(up, 5), down: at(down, 6))
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

    typealias B = DecoderModel.B

    /// Runs `body(b)` for each batch row, in parallel for prefill-sized batches. A few rows (a
    /// decode step, a verification pass) run on the calling thread: the row work is small, and
    /// dispatching a closure to the pool allocates its context.
    @inline(__always) func rows(_ body: (Int) -> Void) {
        if n <= 8 { for b in 0..<n { body(b) }; return }
        parallel.forEach(n, minChunk: 1) { r in for b in r { body(b) } }
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
        MatMul.run(.init(L.wq, out: qb.value, outStride: qd), .init(L.wk, out: kb.value, outStride: kvd),
                   .init(L.wv, out: vb.value, outStride: kvd), a0, batch: n, parallel: parallel)
        let kc = UnsafeSendable(s.raw[2 * l]), vc = UnsafeSendable(s.raw[2 * l + 1])
        let job = s.auxiliary as! AttentionJob
        let slots = job.slots[l], kvRow = job.kvRow, precision = job.kv, startPos = startPos
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
                for h in 0..<c.kvHeads { Ops.rmsNorm(k + h * c.headDim, kn, count: c.headDim, eps: c.eps, out: k + h * c.headDim) }
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
            // Each KV head its own row block ([scales][values] for q8), as attention reads them.
            let headRow = kvRow / c.kvHeads
            for h in 0..<c.kvHeads {
                Ops.storeKV(k + h * c.headDim, dim: c.headDim, into: kc.value + slot * kvRow + h * headRow, precision: precision)
                Ops.storeKV(v + h * c.headDim, dim: c.headDim, into: vc.value + slot * kvRow + h * headRow, precision: precision)
            }
        }
        job.layer = l
        job.n = n
        job.startPos = startPos
        parallel.pool.run(job: job, parts: min(n * c.heads, 4 * parallel.threads))
        let att = UnsafeSendable(s.buffers[B.att]), a1 = s.acts[1]
        rows { b in a1.quantizeOne(att.value + b * qd, into: b) }
        MatMul.run(L.wo, a1, batch: n, out: s.buffers[B.o], outStride: c.width, parallel: parallel)
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
        MatMul.run(.init(L.gate, out: g.value, outStride: c.ffn), .init(L.up, out: u.value, outStride: c.ffn), nil,
                   s.acts[0], batch: n, parallel: parallel)
        let a2 = s.acts[2]
        rows { b in
            switch c.activation {
            case .gelu: Ops.geluMul(g.value + b * c.ffn, u.value + b * c.ffn, count: c.ffn)
            case .silu: Ops.siluMul(g.value + b * c.ffn, u.value + b * c.ffn, count: c.ffn)
            }
            a2.quantizeOne(g.value + b * c.ffn, into: b)
        }
        MatMul.run(L.down, a2, batch: n, out: s.buffers[B.o], outStride: c.width, parallel: parallel)
    }
}
