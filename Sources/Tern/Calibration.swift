import Foundation
import TernDecoding
import TernFormat
import TernKernels
import TernModels

/// Finds the fastest self-speculative drafting settings for a model on this machine (`tern
/// calibrate`): counts token frequencies in calibration text and in the model's own greedy
/// continuations of varied seed prompts, ranks the vocabulary by them (FR-Spec's frequency
/// ranking), then times draft settings on held-out prompts and keeps the fastest.
public struct Calibrator {
    /// One timed setting.
    public struct Trial: Sendable {
        public var speculation: String
        public var maxDraft: Int
        public var minProbability: Float
        public var tokensPerSecond: Double
        public var acceptance: Double
        /// Against plain decoding of the same prompts, timed alternately with the trial (the
        /// machine's speed drifts, so settings are compared by this ratio).
        public var plainTokensPerSecond: Double
        public var speedup: Double { tokensPerSecond / max(plainTokensPerSecond, 1e-9) }
    }

    public let model: TernModel
    public let threads: Int
    /// Tokens generated per seed prompt for the frequency counts, and per timing prompt.
    public var countTokens = 96
    public var timingTokens = 64

    public init(model: TernModel, threads: Int) {
        self.model = model
        self.threads = threads
    }

    /// Seed prompts for counting: prose, dialogue, code, lists, numbers, markup. (Distinct from
    /// the benchmark's bench/prompts.txt.)
    public static let seedPrompts = [
        "The history of the printing press begins", "She opened the letter and read:", "Here is a recipe for bread.\n\nIngredients:\n",
        "class Stack:\n    def __init__(self):\n", "for (int i = 0; i < n; i++) {\n", "function add(a, b) {\n  return",
        "Chapter 1\n\nIt was a cold morning when", "The three primary colors are", "Q: How do airplanes fly?\nA:",
        "10, 20, 30, 40,", "January, February, March,", "{\n  \"name\": \"example\",\n  \"version\":",
        "The weather today is", "In mathematics, a prime number is", "# Installation\n\nTo install the package, run",
        "User: Can you help me write an email?\nAssistant:",
    ]
    /// Prompts the settings are timed on.
    public static let timingPrompts = [
        "The city of Rome was founded", "def is_even(n):\n    return", "Apples, oranges, bananas,", "A good night's sleep helps",
    ]

    /// Measures and returns the fastest settings (with every trial, for the report). `texts` are
    /// extra calibration texts to count. `progress` gets one line per stage.
    public func run(texts: [String], progress: (String) -> Void) throws -> (best: DraftCalibration, trials: [Trial]) {
        let lm = model.model, L = lm.layerCount
        let gen = Generator(model: model, threads: threads)
        gen.calibration = nil
        var counts = [Int](repeating: 0, count: lm.vocabSize)
        for t in texts { for id in model.tokenizer.encode(t) { counts[Int(id)] += 1 } }
        var sample: [Int32] = []
        for (i, p) in Calibrator.seedPrompts.enumerated() {
            let s = try gen.generate(prompt: p, maxTokens: countTokens, sampling: SamplingParameters(temperature: 0), speculation: .off)
            for id in s.promptTokens + s.tokens { counts[Int(id)] += 1 }
            if sample.count < 128 { sample += s.promptTokens + s.tokens }
            progress("counting tokens: seed prompt \(i + 1)/\(Calibrator.seedPrompts.count)")
        }
        let ranking = model.rankVocabulary(counts: counts, limit: min(lm.vocabSize, 65536))
        var rankOf = [Int32: Int]()
        for (i, id) in ranking.enumerated() { rankOf[id] = i }
        gen.calibration = DraftCalibration(ranking: ranking, vocab: 0, exitLayer: L, maxDraft: 6, minProbability: 0)

        // Plain decoding on the timing prompts: its speed, and its tokens for the coverage below.
        var reference: [[Int32]] = []
        var plainTime = 0.0, plainCount = 0
        for p in Calibrator.timingPrompts {
            let s = try gen.generate(prompt: p, maxTokens: timingTokens, sampling: SamplingParameters(temperature: 0), speculation: .off)
            reference.append(s.tokens)
            plainTime += s.generationSeconds
            plainCount += max(0, s.tokens.count - 1)
        }
        let plain = Double(plainCount) / max(plainTime, 1e-9)
        progress(String(format: "plain decoding: %.1f tokens/s", plain))
        // How often the greedy token of held-out text is inside the top N (a full-depth draft
        // over N tokens is right exactly then).
        let held = reference.flatMap { $0 }
        for n in [2048, 4096, 8192, 16384, 32768] {
            let covered = held.filter { (rankOf[$0] ?? .max) < n }.count
            progress(String(format: "top %5d tokens hold %.1f%% of the held-out greedy tokens", n, 100 * Double(covered) / Double(max(1, held.count))))
        }

        var trials: [Trial] = []
        func time(_ spec: Speculation, k: Int, p: Float) throws -> Trial {
            gen.maxDraft = k
            gen.calibration?.minProbability = p
            let r = try gen.benchSpeculation(prompts: Calibrator.timingPrompts, tokens: timingTokens, speculation: spec, warmUp: false)
            if let differing = r.differing.first {
                throw TernError.usage("calibration: --speculate \(spec) gave different tokens from plain decoding on \"\(differing)\"; please report this")
            }
            let t = Trial(speculation: spec.description, maxDraft: k, minProbability: p, tokensPerSecond: r.speculativeTPS,
                          acceptance: r.stats.acceptanceRate, plainTokensPerSecond: r.plainTPS)
            trials.append(t)
            progress(String(format: "%@ draft %d min-p %.2f: %.1f tokens/s = %.2fx plain (%.1f, same prompts, alternating), acceptance %.0f%%",
                            t.speculation, k, p, t.tokensPerSecond, t.speedup, t.plainTokensPerSecond, 100 * t.acceptance))
            return t
        }
        func spec(_ e: Int, _ n: Int, _ skip: [Int] = []) -> Speculation {
            Speculation(lookup: true, earlyExit: e < L ? e : nil, vocab: n > 0 ? n : nil, skip: skip.isEmpty ? nil : skip)
        }
        // Staged search: vocabulary size, then draft length, then the adaptive stop, then depth.
        var best = (e: L, n: 16384, k: 6, p: Float(0), t: try time(spec(L, 16384), k: 6, p: 0))
        func consider(_ e: Int, _ n: Int, _ k: Int, _ p: Float) throws {
            let t = try time(spec(e, n), k: k, p: p)
            if t.speedup > best.t.speedup { best = (e, n, k, p, t) }
        }
        for n in [4096, 8192, 32768] { try consider(L, n, 6, 0) }
        for k in [3, 4, 8, 10] { try consider(best.e, best.n, k, 0) }
        for p in [Float(0.2), 0.5] { try consider(best.e, best.n, max(best.k, 8), p) }
        for e in [L - 1, L - 2, L - 4] where e >= 1 { try consider(e, best.n, best.k, best.p) }
        // Layer skip: the layers that change the residual stream least, by block influence.
        let influence = try Calibrator.layerInfluence(model: model, tokens: Array(sample.prefix(128)), parallel: gen.parallel)
        let order = influence.indices.sorted { influence[$0] < influence[$1] }
        progress("layers by block influence (least first): " + order.map { String(format: "%d (%.3f)", $0, influence[$0]) }.joined(separator: ", "))
        var bestSkip: [Int] = []
        for size in [1, 2, 4] where size < L {
            let set = Array(order.prefix(size)).sorted()
            let t = try time(Speculation(lookup: true, vocab: best.n, skip: set), k: best.k, p: best.p)
            if t.speedup > best.t.speedup { best = (L, best.n, best.k, best.p, t); bestSkip = set }
        }
        let lookupOnly = try time(.lookupOnly, k: 6, p: 0)
        // How long a context match must be for lookup drafts to go first.
        var bestMatch = 2
        for m in [1, 3] {
            gen.calibration?.lookupMatch = m
            let t = try time(spec(best.e, best.n, bestSkip), k: best.k, p: best.p)
            if t.speedup > best.t.speedup { best.t = t; bestMatch = m }
        }
        var result = DraftCalibration(ranking: ranking, vocab: best.n, exitLayer: best.e, skipLayers: bestSkip, maxDraft: best.k, minProbability: best.p,
                                      lookupMatch: bestMatch,
                                      tokensPerSecond: best.t.tokensPerSecond, plainTokensPerSecond: best.t.plainTokensPerSecond, acceptance: best.t.acceptance)
        if lookupOnly.speedup >= best.t.speedup {
            // No model draft beats lookup alone here: store that (auto then drafts by lookup only).
            result = DraftCalibration(ranking: ranking, vocab: 0, exitLayer: L, maxDraft: 6, minProbability: 0,
                                      tokensPerSecond: lookupOnly.tokensPerSecond, plainTokensPerSecond: lookupOnly.plainTokensPerSecond, acceptance: lookupOnly.acceptance)
        }
        return (result, trials)
    }

    /// Block influence of each layer (Men et al. 2024, "ShortGPT", arXiv 2403.03853): one minus
    /// the cosine similarity of the residual stream before and after the layer, averaged over
    /// the positions of `tokens`. Layers with the least influence are the ones to skip.
    public static func layerInfluence(model: TernModel, tokens: [Int32], parallel: Parallel) throws -> [Double] {
        let lm = model.model, w = lm.width, n = tokens.count
        guard n > 0 else { return [Double](repeating: 0, count: lm.layerCount) }
        let state = lm.makeState(capacity: n, maxBatch: n, options: StateOptions(logitsRows: 1, kv: model.kvPrecision))
        var before = [Float](repeating: 0, count: n * w)
        var influence: [Double] = []
        for l in 0..<lm.layerCount {
            before.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: state.hidden, count: n * w) }
            try lm.forwardLayers(tokens: tokens, startPos: 0, layers: l..<l + 1, embed: l == 0, state: state, parallel: parallel)
            if l == 0 { influence.append(1); continue }  // the embedding is no residual to keep
            var total = 0.0
            for b in 0..<n {
                var dot = 0.0, a2 = 0.0, b2 = 0.0
                for i in 0..<w {
                    let x = Double(before[b * w + i]), y = Double(state.hidden[b * w + i])
                    dot += x * y; a2 += x * x; b2 += y * y
                }
                total += 1 - dot / max((a2 * b2).squareRoot(), 1e-30)
            }
            influence.append(total / Double(n))
        }
        return influence
    }
}
