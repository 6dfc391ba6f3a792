import Foundation
import TernDecoding
import TernFormat
import TernKernels
import TernModels

/// Finds the fastest self-speculative drafting settings for a model on this machine (`tern
/// calibrate`): counts token frequencies in calibration text and in the model's own greedy
/// continuations of varied seed prompts, ranks the vocabulary by them (FR-Spec's frequency
/// ranking), then compares draft settings on held-out prompts with ``SpeedupSearch`` (paired,
/// repeated until decided), so a busy machine's noise cannot pick a setting, and times the winner
/// again on fresh prompts: what is not clearly faster than plain decoding there is not stored,
/// and a model drafter is stored only where it is also clearly faster there than lookup alone
/// (what an uncalibrated `auto` drafts with), or lookup alone is not clearly faster than plain
/// decoding; where the best and lookup alone both measure slower than plain decoding, plain
/// decoding is stored instead (``DraftCalibration/decodesPlainly``), so `--speculate auto`
/// stops drafting on a machine where drafting does not pay.
public struct Calibrator {
    /// `full` searches every setting (about 4 minutes for Gemma 3 270M on a quiet 2-core
    /// machine, at most ``maxSeconds`` of timing); `quick` compares a few likely settings on
    /// shorter runs (seconds), for a first run.
    public enum Mode: Sendable { case full, quick }

    /// One drafting configuration.
    public struct Setting: Hashable, Sendable, CustomStringConvertible {
        public var exitLayer: Int, vocab: Int, maxDraft: Int, minProbability: Float
        public var skip: [Int] = []
        public var lookupMatch = 2
        /// Lookup drafts only (no model drafter).
        public var lookupOnly = false

        public init(exitLayer: Int, vocab: Int, maxDraft: Int, minProbability: Float, skip: [Int] = [],
                    lookupMatch: Int = 2, lookupOnly: Bool = false) {
            self.exitLayer = exitLayer
            self.vocab = vocab
            self.maxDraft = maxDraft
            self.minProbability = minProbability
            self.skip = skip
            self.lookupMatch = lookupMatch
            self.lookupOnly = lookupOnly
        }

        /// Lookup drafts alone, 6 per pass: what `auto` drafts with on an uncalibrated checkpoint.
        static func lookupAlone(layers: Int) -> Setting {
            Setting(exitLayer: layers, vocab: 0, maxDraft: 6, minProbability: 0, lookupOnly: true)
        }

        func speculation(layers: Int) -> Speculation {
            if lookupOnly { return .lookupOnly }
            return Speculation(lookup: true, earlyExit: exitLayer < layers ? exitLayer : nil, vocab: vocab > 0 ? vocab : nil,
                               skip: skip.isEmpty ? nil : skip)
        }

        /// The setting `tern calibrate --speculate` names: drafters as `--speculate` takes them
        /// (bare names take `tern run`'s defaults: exit L - 2, 16384 rows, skip layer L / 2), with
        /// lookup beside any model drafter, as every stored setting has it.
        public init(_ s: Speculation, layers L: Int, maxDraft: Int) throws {
            guard !s.auto, !s.isOff else {
                throw TernError.usage("calibrate --speculate takes drafters (e.g. lookup or vocab:16384+lookup), " +
                    "not '\(s)'")
            }
            self.init(exitLayer: L, vocab: 0, maxDraft: maxDraft, minProbability: 0, lookupOnly: !s.usesModelDrafter)
            guard s.usesModelDrafter else { return }
            let d = try s.modelDrafter(layers: L, calibration: nil)
            exitLayer = max(d.exit, 1)  // a stored exit is at least 1 (DraftCalibration)
            vocab = d.vocab ?? 0
            skip = Array(Set(d.skip ?? [])).sorted()
        }

        public var description: String {
            if lookupOnly { return "lookup draft \(maxDraft)" }
            return String(format: "exit %d vocab %d skip [%@] draft %d min-p %.2f match %d", exitLayer, vocab,
                          skip.map(String.init).joined(separator: ","), maxDraft, minProbability, lookupMatch)
        }
    }

    /// What calibration concluded: settings to store, or why none are.
    public struct Outcome: Sendable {
        /// The settings to store (``DraftCalibration/decodesPlainly`` when ``plainChosen``); nil
        /// when ``declined``.
        public var calibration: DraftCalibration?
        /// The best setting found and its speedup on the confirmation prompts (geometric mean
        /// over prompts) with the standard error of its log.
        public var best: Setting
        public var speedup: Double
        public var logSE: Double
        /// The best setting's speedup on the timing prompts that chose it. Picked as the largest
        /// of many noisy measurements, it overstates the setting (the winner's curse), which is
        /// why ``speedup`` is measured again on other prompts. Nil for a ``Calibrator/fixed`` setting.
        /// (It is the search's best setting's; ``best`` is lookup alone instead where lookup
        /// replaced it on the fresh prompts: see ``Calibrator/prefersLookup(drafterVersusLookup:lookupVersusPlain:)``.)
        public var searchSpeedup: Double?
        /// Why nothing is stored (when `calibration` is nil): the timings could not tell.
        public var declined: String?
        /// Why plain decoding is stored: the best drafting setting and lookup alone both measured
        /// slower than plain decoding.
        public var plainChosen: String?
        /// Plain decoding's tokens/s and its relative spread (coefficient of variation) over
        /// every timed prompt: how busy the machine was.
        public var plainTokensPerSecond: Double
        public var plainSpread: Double
    }

    public let model: TernModel
    public let threads: Int
    public var mode: Mode
    /// Timing stops considering new settings after this many seconds (the decision on the best
    /// so far is still made).
    public var maxSeconds: Double
    /// Tokens generated per seed prompt for the frequency counts, and per timing prompt.
    public var countTokens: Int
    public var timingTokens: Int
    /// Tests: log-normal noise (this standard deviation, in log units) multiplied into every
    /// timing, as a busy machine would; 0 = none.
    public var timingNoise = 0.0
    public var noiseSeed: UInt64 = 1
    /// Tests: every speculative timing's tokens/s multiplied by this, as a machine where drafting
    /// does not pay would measure; 1 = none.
    public var speculativeFactor = 1.0
    /// A setting to store instead of searching (`tern calibrate --speculate`): it is still
    /// checked to give plain decoding's tokens and timed against plain decoding on the fresh
    /// prompts, and stored whatever its speed, as asked.
    public var fixed: Setting?

    public init(model: TernModel, threads: Int, mode: Mode = .full) {
        self.model = model
        self.threads = threads
        self.mode = mode
        maxSeconds = mode == .quick ? 60 : 300
        countTokens = mode == .quick ? 48 : 96
        timingTokens = mode == .quick ? 40 : 64
    }

    /// Seed prompts for counting: prose, dialogue, code, lists, numbers, markup. (Distinct from
    /// the benchmark's bench/prompts.txt.)
    public static let seedPrompts = [
        "The history of the printing press begins", "She opened the letter and read:",
        "Here is a recipe for bread.\n\nIngredients:\n",
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
    /// Prompts the chosen setting is timed on again, against plain decoding, before it is stored
    /// (distinct from the seed and timing prompts, and from bench/prompts.txt).
    public static let confirmationPrompts = [
        "The Great Wall of China stretches", "struct Point {\n    int x;\n", "Red, green, blue, yellow,",
        "Regular exercise is good for the heart because",
    ]

    /// Measures and compares drafting settings. `texts` are extra calibration texts to count.
    /// `progress` gets one line per stage.
    public func run(texts: [String], progress: (String) -> Void) throws -> Outcome {
        let lm = model.model, L = lm.layerCount
        let gen = Generator(model: model, threads: threads)
        gen.calibration = nil
        var counts = [Int](repeating: 0, count: lm.vocabSize)
        for t in texts { for id in model.tokenizer.encode(t) { counts[Int(id)] += 1 } }
        var sample: [Int32] = []
        let seeds = mode == .quick ? Array(Calibrator.seedPrompts.prefix(6)) : Calibrator.seedPrompts
        for (i, p) in seeds.enumerated() {
            let s = try gen.generate(prompt: p, maxTokens: countTokens, sampling: SamplingParameters(temperature: 0),
                                     speculation: .off)
            for id in s.promptTokens + s.tokens { counts[Int(id)] += 1 }
            if sample.count < 128 { sample += s.promptTokens + s.tokens }
            progress("counting tokens: seed prompt \(i + 1)/\(seeds.count)")
        }
        let ranking = model.rankVocabulary(counts: counts, limit: min(lm.vocabSize, 65536))
        gen.calibration = DraftCalibration(ranking: ranking, vocab: 0, exitLayer: L, maxDraft: 6, minProbability: 0)

        // Timing: each round decodes every timing prompt plainly and speculatively, back to back.
        var plainSpeeds: [Double] = []
        var acceptance: [Setting: Double] = [:]
        var rng = SplitMix64(seed: noiseSeed)
        let noise = timingNoise, factor = speculativeFactor
        func gaussian() -> Double {
            let u = max(Double(rng.next() >> 11) / Double(1 << 53), 1e-300), v = Double(rng.next() >> 11) / Double(1 << 53)
            return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
        }
        let start = Date()
        /// One round of setting `s` over `prompts`: a log speedup per prompt.
        func timeRound(_ s: Setting, _ prompts: [String]) throws -> [Double] {
            gen.maxDraft = s.maxDraft
            gen.calibration?.minProbability = s.minProbability
            gen.calibration?.lookupMatch = s.lookupMatch
            let spec = s.speculation(layers: L)
            let r = try gen.benchSpeculation(prompts: prompts, tokens: timingTokens, speculation: spec, warmUp: false)
            if let differing = r.differing.first {
                throw TernError.usage("calibration: --speculate \(spec) gave different tokens from plain decoding " +
                    "on \"\(differing)\"; please report this")
            }
            acceptance[s] = r.stats.acceptanceRate
            return r.perPrompt.map { p in
                let plain = p.plain * exp(noise * gaussian()), spec = p.speculative * factor * exp(noise * gaussian())
                plainSpeeds.append(plain)
                return log(max(spec, 1e-9) / max(plain, 1e-9))
            }
        }
        var best: Setting
        /// The best setting's speedup on the timing prompts (nil: no search, a fixed setting).
        var searchSpeedup: Double?
        var undecided: [Setting] = []
        if let fixed {
            best = fixed
        } else {
            let found = try searchSettings(gen: gen, sample: sample, start: start, plainSpeeds: { plainSpeeds },
                                           timeRound: timeRound, progress: progress)
            (best, searchSpeedup, undecided) = (found.best, found.speedup, found.undecided)
        }

        // The winner's speedup on the prompts that chose it is the largest of many noisy
        // measurements and overstates it; it is stored only if it is faster on fresh prompts too.
        var confirm = SpeedupSearch<Setting> { s in
            try timeRound(s, Calibrator.confirmationPrompts)
        }
        func onFresh(_ s: Setting) -> String {
            let (x, se) = confirm.speedup(s)
            return String(format: "on %d fresh prompts: %.2fx plain ± %.0f%% (%d rounds", Calibrator.confirmationPrompts.count,
                          x, 100 * (exp(se) - 1), confirm.roundsDone(s))
        }
        var verdict = try confirm.versusPlain(best)
        if let searchSpeedup {
            progress("confirming \(best) " + onFresh(best)
                     + String(format: "; %.2fx on the prompts that chose it)", searchSpeedup))
        } else {
            progress("timing \(best) (given with --speculate) " + onFresh(best) + ")")
        }
        // Lookup alone is what `auto` drafts with on an uncalibrated checkpoint, and cheap: before
        // storing plain decoding over it, it is timed on the fresh prompts too (the search keeps a
        // model drafter that lookup merely equals, and lookup may still be clearly faster).
        let lookup = Setting.lookupAlone(layers: L), searchedBest = best
        var lookupSpeedup: Double?
        // Lookup alone's verdict against plain decoding (the search's best's where that is lookup alone).
        var lookupVerdict: SpeedupSearch<Setting>.Verdict? = best.lookupOnly ? verdict : nil
        // A model drafter clearly faster than plain decoding on the fresh prompts must also beat
        // lookup alone there (paired), or lookup alone is stored where it too is clearly faster:
        // the search ranked the two on its four timing prompts, which can favour a drafter whose
        // lead does not carry over (SmolLM2-135M, Zen 4: vocab:16384+lookup with 6 drafts, 1.09x
        // on them, ran 1.00x and 1.02x on bench/prompts.txt, where lookup alone ran 1.11-1.16x).
        if fixed == nil, !best.lookupOnly, verdict == .faster {
            let versusLookup = try confirm.compare(best, lookup)
            progress("comparing with \(lookup) " + onFresh(lookup) + "): the best is " + Self.verdictText(versusLookup))
            if versusLookup != .faster {
                let v = try confirm.versusPlain(lookup)
                lookupVerdict = v
                if Self.prefersLookup(drafterVersusLookup: versusLookup, lookupVersusPlain: v) {
                    (best, verdict) = (lookup, v)
                } else {
                    lookupSpeedup = confirm.speedup(lookup).speedup
                }
            }
        }
        if fixed == nil, !best.lookupOnly, [.slower, .equivalent, .undecided].contains(verdict) {
            let v = try confirm.versusPlain(lookup)
            progress("confirming \(lookup) (what auto drafts with uncalibrated) " + onFresh(lookup) + ")")
            lookupVerdict = v
            if v == .faster || v == .tooNoisy {
                (best, verdict) = (lookup, v)
            } else {
                lookupSpeedup = confirm.speedup(lookup).speedup
            }
        }
        let (speedup, se) = confirm.speedup(best)
        let plainAt = BenchResult.meanSD(plainSpeeds)
        var outcome = Outcome(calibration: nil, best: best, speedup: speedup, logSE: se, searchSpeedup: searchSpeedup,
                              declined: nil, plainChosen: nil, plainTokensPerSecond: plainAt.0,
                              plainSpread: plainAt.1 / max(plainAt.0, 1e-9))
        let searched = searchSpeedup.map { x in
            best == searchedBest ? String(format: "(%.2fx on the timing prompts)", x)
                : String(format: "(over the search's best, %@: %.2fx on the fresh prompts, %.2fx on the timing prompts)",
                         searchedBest.description, confirm.speedup(searchedBest).speedup, x)
        } ?? "(no search)"
        var measured = String(format: "%@ measured %.2fx plain ± %.0f%% over %d rounds of fresh prompts %@; "
                              + "plain decoding spread ±%.0f%%", best.description, speedup, 100 * (exp(se) - 1),
                              confirm.roundsDone(best), searched, 100 * outcome.plainSpread)
        if let lookupSpeedup { measured += String(format: "; lookup alone %.2fx", lookupSpeedup) }
        switch Self.decision(given: fixed != nil, verdict: verdict, settled: undecided.isEmpty, speedup: speedup,
                             lookupVerdict: lookupVerdict) {
        case .store:
            if verdict != .faster { progress("note: \(measured); stored as asked") }
            outcome.calibration = DraftCalibration(
                ranking: ranking, vocab: best.lookupOnly ? 0 : best.vocab, exitLayer: best.lookupOnly ? L : best.exitLayer,
                skipLayers: best.lookupOnly ? [] : best.skip, maxDraft: best.maxDraft, minProbability: best.minProbability,
                lookupMatch: best.lookupMatch, tokensPerSecond: plainAt.0 * speedup, plainTokensPerSecond: plainAt.0,
                acceptance: acceptance[best] ?? 0)
        case .unranked:
            outcome.declined = "the machine is too busy or noisy to rank the settings: \(undecided.count) comparison(s) "
                + "stayed undecided after \(confirm.maxRounds) rounds (" + measured + ")"
        case .plain:
            outcome.plainChosen = "drafting is slower than plain decoding on this machine (" + measured + ")"
            outcome.calibration = .plain(ranking: ranking, layers: L, plainTokensPerSecond: plainAt.0)
        case .even:
            outcome.declined = "no drafting setting is clearly faster than plain decoding on this machine, nor is "
                + "drafting clearly slower (" + measured + ")"
        case .tooNoisy:
            outcome.declined = "the machine is too busy or noisy to tell whether drafting is faster (" + measured + ")"
        }
        return outcome
    }

    /// Whether lookup alone replaces the search's best, a model drafter clearly faster than plain
    /// decoding on the fresh prompts: where the drafter was not clearly faster than lookup alone
    /// there (`drafterVersusLookup`, paired on the same prompts) and lookup alone is clearly faster
    /// than plain decoding (`lookupVersusPlain`; nil: not timed). Lookup alone costs no draft
    /// memory and is gated (DraftGate), so a drafter is kept only for a lead the timings can show.
    /// A drafter that measured even slower than lookup alone still stays where lookup alone was
    /// not shown faster than plain decoding: of the two, only the drafter was.
    public static func prefersLookup(drafterVersusLookup: SpeedupSearch<Setting>.Verdict,
                                     lookupVersusPlain: SpeedupSearch<Setting>.Verdict?) -> Bool {
        drafterVersusLookup != .faster && lookupVersusPlain == .faster
    }

    static func verdictText(_ v: SpeedupSearch<Setting>.Verdict) -> String {
        switch v {
        case .faster: return "faster"
        case .slower: return "slower"
        case .equivalent: return "equivalent (within 10%)"
        case .undecided: return "not told apart"
        case .tooNoisy: return "undecided (too noisy)"
        }
    }

    /// What a calibration writes.
    public enum Decision: Equatable, Sendable {
        /// The setting (given with --speculate, or searched and clearly faster on fresh prompts).
        case store
        /// Nothing: the setting is faster, but the search left comparisons undecided.
        case unranked
        /// Plain decoding (`tern.draft.max` = 0).
        case plain
        /// Nothing: no setting clearly faster, nor drafting clearly slower (the best setting no
        /// slower than plain decoding, or lookup alone not clearly slower).
        case even
        /// Nothing: too noisy to tell the setting from plain decoding.
        case tooNoisy
    }

    /// The decision from the best setting's `verdict` and `speedup` against plain decoding on
    /// the fresh prompts, whether it was `given` with --speculate, whether the search `settled`
    /// every comparison, and lookup alone's verdict there (nil: not timed). Lookup alone is gated
    /// (DraftGate): where its drafts do not pay it decodes plainly, so it loses little on text
    /// that does not repeat and gains where text does. Plain decoding replaces it only where it
    /// measured clearly slower, not where it merely measured even (within the 10% margin) on four
    /// prompts whose text may not repeat.
    public static func decision(given: Bool, verdict: SpeedupSearch<Setting>.Verdict, settled: Bool, speedup: Double,
                                lookupVerdict: SpeedupSearch<Setting>.Verdict?) -> Decision {
        if given { return .store }
        switch verdict {
        case .faster: return settled ? .store : .unranked
        case .slower, .equivalent, .undecided: return speedup < 1 && lookupVerdict == .slower ? .plain : .even
        case .tooNoisy: return .tooNoisy
        }
    }

    /// The staged search (``SettingSearch``) on the timing prompts: the best setting, its
    /// speedup there, and the comparisons that stayed undecided on a noisy machine.
    private func searchSettings(gen: Generator, sample: [Int32], start: Date, plainSpeeds: () -> [Double],
                                timeRound: @escaping (Setting, [String]) throws -> [Double],
                                progress: (String) -> Void) throws -> (best: Setting, speedup: Double, undecided: [Setting]) {
        let L = model.model.layerCount
        var undecided: [Setting] = []
        var search = SpeedupSearch<Setting> { s in try timeRound(s, Calibrator.timingPrompts) }
        func report(_ s: Setting, _ verdict: String) {
            let (x, se) = search.speedup(s)
            progress(String(format: "measuring %@: %.2fx plain ± %.0f%% (%d rounds)%@", s.description, x, 100 * (exp(se) - 1),
                            search.roundsDone(s), verdict))
        }
        var stopped = false
        var stages = Calibrator.SettingSearch(layers: L, vocabSize: model.model.vocabSize, mode: mode)
        try search.measureRound(stages.best)
        report(stages.best, "")
        let plainAt = BenchResult.meanSD(plainSpeeds())
        progress(String(format: "plain decoding: %.1f tokens/s, spread ±%.0f%% over the timed prompts", plainAt.0,
                        100 * plainAt.1 / max(plainAt.0, 1e-9)))
        try stages.run(isFaster: { c, best in
            guard !stopped else { return false }
            if Date().timeIntervalSince(start) > maxSeconds {
                stopped = true
                progress(String(format: "timing limit (%.0f s) reached: keeping the best setting so far", maxSeconds))
                return false
            }
            switch try search.compare(c, best) {
            case .faster: report(c, " — faster than the best so far"); return true
            case .slower: report(c, " — slower")
            case .equivalent: report(c, " — equivalent (within 10%)")
            case .undecided: report(c, " — not told apart (any difference is within the timings' ±20%)")
            case .tooNoisy: report(c, " — undecided: the timings vary too much to rank it"); undecided.append(c)
            }
            return false
        }, layerOrder: {
            guard !stopped else { return [] }
            // Layer skip: the layers that change the residual stream least, by block influence.
            let influence = try Calibrator.layerInfluence(model: model, tokens: Array(sample.prefix(128)), parallel: gen.parallel)
            let order = influence.indices.sorted { influence[$0] < influence[$1] }
            progress("layers by block influence (least first): "
                     + order.map { String(format: "%d (%.3f)", $0, influence[$0]) }.joined(separator: ", "))
            return order
        })
        return (stages.best, search.speedup(stages.best).speedup, undecided)
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

extension Calibrator {
    /// The staged search over drafting settings, each stage starting from the best so far:
    /// lookup alone, vocabulary size, draft length, then (full mode) the adaptive stop, exit depth,
    /// skipped layers and the lookup match length. Lookup alone has no depth, vocabulary or skipped
    /// layers to refine, so when it leads, those stages refine the best setting that drafts with the
    /// model and time it against lookup: a draft made cheaper by an exit or skipped layers can still
    /// beat lookup. Lookup goes first because it is the likeliest winner on a model whose layers
    /// outweigh its head (a full-depth draft then costs most of a plain step) and cheap to time,
    /// so a search cut short by ``Calibrator/maxSeconds`` has it: on Qwen2.5-Coder 1.5B the
    /// vocabulary stage alone took 117 s of the 300.
    public struct SettingSearch {
        public let layers: Int, vocabSize: Int, mode: Mode
        /// The best setting so far, and the best so far that drafts with the model.
        public private(set) var best: Setting
        public private(set) var bestModel: Setting

        public init(layers: Int, vocabSize: Int, mode: Calibrator.Mode) {
            self.layers = layers
            self.vocabSize = vocabSize
            self.mode = mode
            best = Setting(exitLayer: layers, vocab: 16384, maxDraft: 6, minProbability: 0)
            bestModel = best
        }

        /// Runs the stages. `isFaster(candidate, best)` times a candidate against the best so far;
        /// `layerOrder` gives the layers least influential first, asked for once, in full mode (an
        /// empty order skips the layer-skip stage).
        public mutating func run(isFaster: (Setting, Setting) throws -> Bool, layerOrder: () throws -> [Int]) throws {
            let L = layers
            func consider(_ c: Setting) throws {
                guard c != best, try isFaster(c, best) else { return }
                best = c
                if !c.lookupOnly { bestModel = c }
            }
            /// The setting the model-drafter stages start from.
            var base: Setting { best.lookupOnly ? bestModel : best }
            try consider(.lookupAlone(layers: L))
            for n in mode == .quick ? [] : [4096, 8192, 32768] where n <= vocabSize {
                var c = base; c.vocab = n; try consider(c)
            }
            for k in mode == .quick ? [4] : [3, 4, 8, 10] { var c = best; c.maxDraft = k; try consider(c) }
            guard mode == .full else { return }
            for p in [Float(0.2), 0.5] {
                var c = base
                c.maxDraft = max(c.maxDraft, 8)
                c.minProbability = p
                try consider(c)
            }
            for e in [L - 1, L - 2, L - 4] where e >= 1 { var c = base; c.exitLayer = e; try consider(c) }
            let order = try layerOrder()
            for size in [1, 2, 4] where size < L && size <= order.count {
                var c = base; c.exitLayer = L; c.skip = Array(order.prefix(size)).sorted(); try consider(c)
            }
            // How long a context match must be for lookup drafts to go first (beside a model drafter).
            if !best.lookupOnly { for m in [1, 3] { var c = best; c.lookupMatch = m; try consider(c) } }
        }
    }
}
