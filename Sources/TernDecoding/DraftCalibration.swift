import TernFormat

/// Drafting settings measured by `tern calibrate` and stored in a checkpoint's metadata
/// (`tern.draft.*` keys), so `--speculate auto` uses what was fastest on this model.
public struct DraftCalibration: Sendable, Equatable {
    /// Token ids, most frequent first (calibration text counts, then tokenizer merge order).
    public var ranking: [Int32]
    /// Rows of the reduced draft head (0: the full head).
    public var vocab: Int
    /// Layers the draft runs (the layer count: full depth).
    public var exitLayer: Int
    /// Layers the draft skips (empty: none).
    public var skipLayers: [Int]
    /// Drafts per verification pass; 0: calibration measured drafting slower than plain decoding
    /// on this machine (``decodesPlainly``).
    public var maxDraft: Int
    /// With a model drafter, lookup drafts are used when they come from an n-gram match of at
    /// least this many tokens.
    public var lookupMatch: Int
    /// Adaptive draft length: stop drafting below this draft probability.
    public var minProbability: Float
    /// What calibration measured (tokens/s with these settings and plainly, draft acceptance).
    public var tokensPerSecond: Double
    public var plainTokensPerSecond: Double
    public var acceptance: Double

    public init(ranking: [Int32], vocab: Int, exitLayer: Int, skipLayers: [Int] = [], maxDraft: Int, minProbability: Float,
                lookupMatch: Int = 2, tokensPerSecond: Double = 0, plainTokensPerSecond: Double = 0, acceptance: Double = 0) {
        self.skipLayers = skipLayers
        self.lookupMatch = lookupMatch
        self.ranking = ranking
        self.vocab = vocab
        self.exitLayer = exitLayer
        self.maxDraft = maxDraft
        self.minProbability = minProbability
        self.tokensPerSecond = tokensPerSecond
        self.plainTokensPerSecond = plainTokensPerSecond
        self.acceptance = acceptance
    }

    static let prefix = "tern.draft."

    /// Calibration measured drafting slower than plain decoding (`tern.draft.max` = 0):
    /// `--speculate auto` decodes plainly. The ranking is still there for named drafters.
    public var decodesPlainly: Bool { maxDraft == 0 }

    /// The calibration that says "decode plainly": the vocabulary ranking (for drafters named
    /// later) and plain decoding's measured speed, no drafter.
    public static func plain(ranking: [Int32], layers: Int, plainTokensPerSecond: Double) -> DraftCalibration {
        DraftCalibration(ranking: ranking, vocab: 0, exitLayer: layers, maxDraft: 0, minProbability: 0,
                         tokensPerSecond: plainTokensPerSecond, plainTokensPerSecond: plainTokensPerSecond)
    }

    /// The stored calibration, nil when the file was never calibrated. Values out of range for a
    /// model of `vocabSize` tokens and `layers` layers are errors naming the key.
    public init?(metadata m: Metadata, file: String, vocabSize: Int, layers: Int) throws {
        guard let ranking = m.ints(Self.prefix + "ranking") else { return nil }
        func bad(_ key: String, _ why: String) -> FormatError {
            FormatError(file: file, field: "metadata '\(Self.prefix)\(key)'", why + "; re-run tern calibrate")
        }
        guard ranking.allSatisfy({ $0 >= 0 && Int($0) < vocabSize }), ranking.count <= vocabSize else {
            throw bad("ranking", "holds a token id outside the \(vocabSize)-token vocabulary")
        }
        let vocab = m.int(Self.prefix + "vocab") ?? 0
        guard vocab >= 0, vocab <= ranking.count else {
            throw bad("vocab", "is \(vocab), the ranking has \(ranking.count) tokens")
        }
        let exit = m.int(Self.prefix + "exit_layer") ?? layers
        guard exit >= 1, exit <= layers else { throw bad("exit_layer", "is \(exit), the model has \(layers) layers") }
        let skip = (m.ints(Self.prefix + "skip_layers") ?? []).map(Int.init)
        guard skip.allSatisfy({ $0 >= 0 && $0 < layers }) else {
            throw bad("skip_layers", "names a layer outside 0...\(layers - 1)")
        }
        let maxDraft = m.int(Self.prefix + "max") ?? 6
        guard maxDraft >= 0, maxDraft <= 64 else { throw bad("max", "is \(maxDraft), expected 0...64") }
        let match = m.int(Self.prefix + "lookup_match") ?? 2
        guard match >= 1, match <= 64 else { throw bad("lookup_match", "is \(match), expected 1...64") }
        let p = m.float(Self.prefix + "min_probability") ?? 0
        guard p >= 0, p <= 1 else { throw bad("min_probability", "is \(p), expected 0...1") }
        self.init(ranking: ranking, vocab: vocab, exitLayer: exit, skipLayers: skip, maxDraft: maxDraft, minProbability: Float(p),
                  lookupMatch: match,
                  tokensPerSecond: m.float(Self.prefix + "tokens_per_second") ?? 0,
                  plainTokensPerSecond: m.float(Self.prefix + "plain_tokens_per_second") ?? 0,
                  acceptance: m.float(Self.prefix + "acceptance") ?? 0)
    }

    /// `m` with this calibration's keys set (replacing earlier ones).
    public func store(in m: inout Metadata) {
        m[Self.prefix + "ranking"] = .ints(ranking)
        m[Self.prefix + "vocab"] = .int(Int64(vocab))
        m[Self.prefix + "exit_layer"] = .int(Int64(exitLayer))
        m[Self.prefix + "skip_layers"] = .ints(skipLayers.map { Int32($0) })
        m[Self.prefix + "max"] = .int(Int64(maxDraft))
        m[Self.prefix + "min_probability"] = .float(Double(minProbability))
        m[Self.prefix + "lookup_match"] = .int(Int64(lookupMatch))
        m[Self.prefix + "tokens_per_second"] = .float(tokensPerSecond)
        m[Self.prefix + "plain_tokens_per_second"] = .float(plainTokensPerSecond)
        m[Self.prefix + "acceptance"] = .float(acceptance)
    }

    /// Token ids ranked by `counts` (descending; ties by id), then every other token by
    /// `scores` (SentencePiece scores follow merge order, a proxy for corpus frequency),
    /// skipping ids in `excluded` (control and unused tokens). At most `limit` ids.
    public static func rank(counts: [Int], scores: [Float], excluded: (Int) -> Bool, limit: Int) -> [Int32] {
        let n = counts.count
        let seen = (0..<n).filter { counts[$0] > 0 && !excluded($0) }
            .sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        // Score descending, then id ascending. (Written out: Swift 6.2 gives up type-checking the
        // tuple-comparison closure this once was.)
        func score(_ i: Int) -> Float { scores.indices.contains(i) ? scores[i] : 0 }
        func before(_ a: Int, _ b: Int) -> Bool { score(a) != score(b) ? score(a) > score(b) : a < b }
        let rest = (0..<n).filter { counts[$0] == 0 && !excluded($0) }.sorted(by: before)
        return (seen + rest).prefix(limit).map { Int32($0) }
    }
}
