import Foundation
import TernKernels
import TernDecoding
import TernModels

/// Prefill and decode throughput of a model, measured as llama-bench does: `pp` = a prompt of
/// `promptTokens` tokens in one go, `tg` = `genTokens` single-token steps after a context of
/// `depth` tokens (llama-bench `-d`; 0 = an empty context), which are prefilled untimed.
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
    /// Runs `reps` repetitions of pp and tg (after one untimed warm-up of each); tg decodes after
    /// `depth` tokens of context.
    public func bench(promptTokens: Int, genTokens: Int, reps: Int, depth: Int = 0) throws -> BenchResult {
        let lm = model.model
        // Deterministic token ids spread over the vocabulary, as llama-bench uses random ones.
        let ids = (0..<max(promptTokens, depth, 1)).map {
            Int32(truncatingIfNeeded: (($0 &* 7919) &+ 1000) % lm.vocabSize)
        }
        var result = BenchResult()
        // One sequence at a time, so the benchmark stays inside what the plan allowed for.
        if promptTokens > 0 {
            let pp = Session(model: model, parallel: parallel, capacity: promptTokens, options: stateOptions)
            let prompt = Array(ids[..<promptTokens])
            for rep in 0...reps {
                pp.reset()
                let t0 = DispatchTime.now().uptimeNanoseconds
                try pp.append(prompt)
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { result.ppTPS.append(Double(promptTokens) / dt) }
            }
        }
        if genTokens > 0 {
            // tg: the context (untimed), the first token fed alone, then greedy decoding: genTokens
            // single-token passes.
            let tg = Session(model: model, parallel: parallel, capacity: depth + genTokens + 1,
                             options: stateOptions)
            var greedy = Sampler(SamplingParameters(temperature: 0))
            let context = Array(ids[..<depth])
            for rep in 0...reps {
                tg.reset()
                if depth > 0 { try tg.append(context) }
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
        let seq = Session(model: model, parallel: parallel, capacity: context + maxB,
                          options: StateOptions(logitsRows: maxB, kv: model.kvPrecision))
        let ids = (0..<context + maxB).map { Int32(($0 * 7919 + 1000) % lm.vocabSize) }
        try seq.append(Array(ids[0..<context]))
        return try batches.map { n in
            let toks = Array(ids[context..<context + n])
            var best = Double.infinity
            for _ in 0...reps {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try lm.forward(tokens: toks, startPos: context, layers: 0..<lm.layerCount, embed: true, allLogits: true,
                               state: seq.state, parallel: parallel)
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return (n, best)
        }
    }
}

/// Plain vs speculative decoding on real prompts (``Generator/benchSpeculation(prompts:tokens:speculation:)``).
public struct SpeculationBench: Sendable {
    public var plainTPS = 0.0
    public var speculativeTPS = 0.0
    public var stats = SpeculationStats()
    /// Prompts whose greedy tokens differed between the two (none, unless a bug).
    public var differing: [String] = []
    public var prompts = 0
    /// Prompts whose greedy tokens were identical both ways.
    public var identical: Int { prompts - differing.count }
    public var drafters = ""
    /// Tokens/s of each prompt, plainly and speculatively (timed back to back).
    public var perPrompt: [(plain: Double, speculative: Double)] = []
    /// Accepted drafts per verification pass.
    public var meanAccepted: Double { stats.steps > 0 ? Double(stats.accepted) / Double(stats.steps) : 0 }
}

extension Generator {
    /// Greedy decoding of `tokens` tokens after each prompt, plainly and with `speculation`,
    /// alternately (after one untimed warm-up of each when `warmUp`); tokens/s are total tokens
    /// over total decode time.
    public func benchSpeculation(prompts: [String], tokens: Int, speculation: Speculation,
                                 warmUp: Bool = true) throws -> SpeculationBench {
        var r = SpeculationBench()
        r.prompts = prompts.count
        let greedy = SamplingParameters(temperature: 0)
        if warmUp, let p = prompts.first {
            _ = try generate(prompt: p, maxTokens: tokens, sampling: greedy)
            _ = try generate(prompt: p, maxTokens: tokens, sampling: greedy, speculation: speculation)
        }
        var plainTime = 0.0, specTime = 0.0, plainCount = 0, specCount = 0
        for p in prompts {
            let a = try generate(prompt: p, maxTokens: tokens, sampling: greedy)
            let b = try generate(prompt: p, maxTokens: tokens, sampling: greedy, speculation: speculation)
            plainTime += a.generationSeconds
            plainCount += max(0, a.tokens.count - 1)
            specTime += b.generationSeconds
            specCount += max(0, b.tokens.count - 1)
            r.perPrompt.append((Double(max(0, a.tokens.count - 1)) / max(a.generationSeconds, 1e-9),
                                Double(max(0, b.tokens.count - 1)) / max(b.generationSeconds, 1e-9)))
            if a.tokens != b.tokens { r.differing.append(p) }
            if let s = b.speculation { r.stats.add(s) }
            r.drafters = b.drafters ?? "off"
        }
        r.plainTPS = Double(plainCount) / max(plainTime, 1e-9)
        r.speculativeTPS = Double(specCount) / max(specTime, 1e-9)
        return r
    }
}
