import Foundation
import TernKernels
import TernModels

/// Prefill and decode throughput of a model, measured as llama-bench does: `pp` = a prompt of
/// `promptTokens` tokens in one go, `tg` = `genTokens` single-token steps from an empty context.
public struct BenchResult: Sendable {
    public var ppTPS: [Double] = []
    public var tgTPS: [Double] = []

    public static func meanSD(_ x: [Double]) -> (Double, Double) {
        guard !x.isEmpty else { return (0, 0) }
        let m = x.reduce(0, +) / Double(x.count)
        let v = x.count > 1 ? x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1) : 0
        return (m, v.squareRoot())
    }
}

extension Generator {
    /// Runs `reps` repetitions of pp and tg (after one untimed warm-up of each).
    public func bench(promptTokens: Int, genTokens: Int, reps: Int) throws -> BenchResult {
        let lm = model.model
        // Deterministic token ids spread over the vocabulary, as llama-bench uses random ones.
        let ids = (0..<max(promptTokens, 1)).map { Int32(truncatingIfNeeded: (($0 &* 7919) &+ 1000) % lm.vocabSize) }
        var result = BenchResult()
        // One sequence at a time, so the benchmark stays inside what the plan allowed for.
        if promptTokens > 0 {
            let pp = Session(model: model, parallel: parallel, capacity: promptTokens, options: stateOptions)
            for rep in 0...reps {
                pp.reset()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try pp.append(ids)
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { result.ppTPS.append(Double(promptTokens) / dt) }
            }
        }
        if genTokens > 0 {
            // tg: the first token is fed alone, then greedy decoding: genTokens single-token passes.
            let tg = Session(model: model, parallel: parallel, capacity: genTokens + 1, options: stateOptions)
            var greedy = Sampler(SamplingParameters(temperature: 0))
            for rep in 0...reps {
                tg.reset()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try tg.append([ids[0]])
                try tg.decode(maxTokens: genTokens, sampler: &greedy) { _ in true }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { result.tgTPS.append(Double(genTokens) / dt) }
            }
        }
        return result
    }
}

extension Generator {
    /// Milliseconds per forward pass of `n` tokens at decode time (after `context` tokens of
    /// history, logits for every position), for each n in `batches`: what verifying n drafted
    /// tokens costs compared with one decode step.
    public func batchSweep(batches: [Int], context: Int = 64, reps: Int = 5) throws -> [(Int, Double)] {
        let lm = model.model
        let maxB = batches.max() ?? 1
        let seq = Session(model: model, parallel: parallel, capacity: context + maxB, options: StateOptions(logitsRows: maxB, kv: model.kvPrecision))
        let ids = (0..<context + maxB).map { Int32(($0 * 7919 + 1000) % lm.vocabSize) }
        try seq.append(Array(ids[0..<context]))
        return try batches.map { n in
            let toks = Array(ids[context..<context + n])
            var best = Double.infinity
            for _ in 0...reps {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try lm.forward(tokens: toks, startPos: context, layers: 0..<lm.layerCount, embed: true, allLogits: true, state: seq.state, parallel: parallel)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return (n, best)
        }
    }
}
