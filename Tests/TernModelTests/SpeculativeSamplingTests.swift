import Foundation
import Tern
import TernTestSupport
import XCTest

/// Speculative sampling keeps plain sampling's distribution: on a tiny random Gemma 3, the
/// second and third sampled tokens over thousands of seeds match their exact distribution
/// (computed by enumerating every prefix) by a chi-square test, for each drafter. Seeds are
/// fixed, so the test is deterministic.
final class SpeculativeSamplingTests: XCTestCase {
    /// Exact marginal distributions of the 1st, 2nd and 3rd token after `prompt` under `params`.
    func exactMarginals(_ model: TernModel, prompt: [Int32], params: SamplingParameters) throws -> [[Double]] {
        let gen = Generator(model: model, threads: 1)
        let v = model.model.vocabSize
        var sampler = Sampler(params)
        var dist: [(Int32, Float)] = []
        func next(_ prefix: [Int32]) throws -> [Double] {
            let s = Session(model: model, parallel: gen.parallel, capacity: 16)
            try s.append(prefix)
            var out = [Double](repeating: 0, count: v)
            sampler.distribution(s.logits, into: &dist)
            for (id, p) in dist { out[Int(id)] = Double(p) }
            return out
        }
        var m = [[Double]](repeating: [Double](repeating: 0, count: v), count: 3)
        let p1 = try next(prompt)
        for a in 0..<v where p1[a] > 0 {
            m[0][a] += p1[a]
            let p2 = try next(prompt + [Int32(a)])
            for b in 0..<v where p2[b] > 0 {
                m[1][b] += p1[a] * p2[b]
                let p3 = try next(prompt + [Int32(a), Int32(b)])
                for c in 0..<v { m[2][c] += p1[a] * p2[b] * p3[c] }
            }
        }
        return m
    }

    /// Pearson's chi-square of `counts` against `probs` (cells expecting fewer than 5 pooled),
    /// and the 0.1% critical value for its degrees of freedom (Wilson-Hilferty).
    func chiSquare(_ counts: [Int], _ probs: [Double]) -> (stat: Double, critical: Double) {
        let n = Double(counts.reduce(0, +))
        var stat = 0.0, cells = 0, pooledObs = 0.0, pooledExp = 0.0
        for i in counts.indices {
            let e = probs[i] * n
            if e < 5 { pooledObs += Double(counts[i]); pooledExp += e; continue }
            stat += (Double(counts[i]) - e) * (Double(counts[i]) - e) / e
            cells += 1
        }
        if pooledExp > 0 { stat += (pooledObs - pooledExp) * (pooledObs - pooledExp) / max(pooledExp, 1e-9); cells += 1 }
        let df = Double(max(1, cells - 1)), z = 3.090
        let critical = df * pow(1 - 2 / (9 * df) + z * (2 / (9 * df)).squareRoot(), 3)
        return (stat, critical)
    }

    func testSpeculativeSamplingMatchesTheExactDistribution() throws {
        let model = try TinyGemma.load("tiny.tern")
        let gen = Generator(model: model, threads: 1)
        // Lookup's fixed schedule: the cost gate decides from pass times, so with it the drafts
        // would differ from run to run (and it stops drafting this model's weak matches, which
        // would leave the residual draw untested).
        gen.draftGate = nil
        let promptText = "a b a b a"
        let prompt = model.tokenizer.encode(promptText)
        for (params, modes) in [(SamplingParameters(temperature: 1, topK: 0, topP: 1), ["vocab:5", "early-exit:1", "lookup", "early-exit:1+vocab:6+lookup", "skip:1"]),
                                (SamplingParameters(temperature: 0.8, topK: 6, topP: 0.9), ["vocab:5", "lookup"])] {
            let exact = try exactMarginals(model, prompt: prompt, params: params)
            // The control: the same test rejects a distribution that is only slightly off.
            var hot = params
            hot.temperature *= 1.5
            let wrong = try exactMarginals(model, prompt: prompt, params: hot)
            for mode in modes {
                gen.maxDraft = 2
                var counts = [[Int]](repeating: [Int](repeating: 0, count: model.model.vocabSize), count: 3)
                var drafted = 0, accepted = 0
                for seed in 0..<20000 {
                    var p = params
                    p.seed = UInt64(seed)
                    let s = try gen.generate(prompt: promptText, maxTokens: 3, sampling: p, speculation: try Speculation(parsing: mode))
                    XCTAssertEqual(s.tokens.count, 3)
                    for (i, t) in s.tokens.enumerated() { counts[i][Int(t)] += 1 }
                    drafted += s.speculation?.drafted ?? 0
                    accepted += s.speculation?.accepted ?? 0
                }
                XCTAssertGreaterThan(accepted, 100, "\(mode): drafts are accepted")
                XCTAssertLessThan(accepted, drafted, "\(mode): and some rejected, so the residual draw is exercised")
                for pos in 1...2 {
                    let (stat, critical) = chiSquare(counts[pos], exact[pos])
                    print(String(format: "SpeculativeSamplingTests: %@ T=%.1f token %d: chi2 %.1f (critical %.1f), %d/%d drafts accepted",
                                 mode, params.temperature, pos + 1, stat, critical, accepted, drafted))
                    XCTAssertLessThan(stat, critical, "\(mode) token \(pos + 1): \(counts[pos]) vs \(exact[pos])")
                    XCTAssertGreaterThan(chiSquare(counts[pos], wrong[pos]).stat, critical, "\(mode): the test has power")
                }
            }
        }
    }
}
