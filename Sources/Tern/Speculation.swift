import TernDecoding
import TernModels

/// Which self-speculative drafters a generation uses (see TernDecoding), as given to
/// `tern run --speculate`: `off`, `auto`, or drafters joined by `+`: `lookup`,
/// `early-exit[:E]`, `vocab[:N]` (e.g. `vocab:16384+lookup`).
public struct Speculation: Sendable, Equatable, CustomStringConvertible {
    /// The calibrated settings plus lookup; lookup alone until the checkpoint is calibrated.
    public var auto = false
    /// N-gram lookup drafts from the context.
    public var lookup = false
    /// The model drafter runs this many layers (0: calibrated or all); set with `early-exit`.
    public var earlyExit: Int?
    /// The model drafter's head keeps this many most-frequent tokens (0: calibrated or 16384).
    public var vocab: Int?

    public init(auto: Bool = false, lookup: Bool = false, earlyExit: Int? = nil, vocab: Int? = nil) {
        self.auto = auto
        self.lookup = lookup
        self.earlyExit = earlyExit
        self.vocab = vocab
    }

    public static let off = Speculation()
    public static let automatic = Speculation(auto: true)
    public static let lookupOnly = Speculation(lookup: true)

    public var isOff: Bool { !auto && !lookup && earlyExit == nil && vocab == nil }
    public var usesModelDrafter: Bool { earlyExit != nil || vocab != nil }

    /// Parses the `--speculate` syntax; errors say what is accepted.
    public init(parsing text: String) throws {
        let usage = "--speculate takes off, auto, or lookup, early-exit[:E], vocab[:N] joined by '+' (got '\(text)')"
        switch text {
        case "off": self.init(); return
        case "auto": self.init(auto: true); return
        default: self.init()
        }
        for part in text.split(separator: "+", omittingEmptySubsequences: false) {
            let kv = part.split(separator: ":", maxSplits: 1).map(String.init)
            func number() throws -> Int {
                guard kv.count == 2 else { return 0 }
                guard let n = Int(kv[1]), n > 0 else { throw TernError.usage(usage) }
                return n
            }
            switch kv.first ?? "" {
            case "lookup" where kv.count == 1: lookup = true
            case "early-exit": earlyExit = try number()
            case "vocab": vocab = try number()
            default: throw TernError.usage(usage)
            }
        }
    }

    public var description: String {
        if isOff { return "off" }
        if auto { return "auto" }
        var parts: [String] = []
        if let e = earlyExit { parts.append(e > 0 ? "early-exit:\(e)" : "early-exit") }
        if let v = vocab { parts.append(v > 0 ? "vocab:\(v)" : "vocab") }
        if lookup { parts.append("lookup") }
        return parts.joined(separator: "+")
    }
}

/// Drafters and draft length resolved for one model.
struct SpeculationSetup {
    var drafters: Drafters
    var maxDraft: Int
    /// What ran, e.g. "vocab:16384+lookup".
    var label: String
}

extension TernModel {
    /// The calibration stored in the checkpoint, if any.
    public func draftCalibration() throws -> DraftCalibration? {
        try DraftCalibration(metadata: file.metadata, file: file.path, vocabSize: model.vocabSize, layers: model.layerCount)
    }

    /// Token ids by frequency: the calibrated ranking, else tokenizer merge order.
    public func draftRanking(_ n: Int, calibration: DraftCalibration?) -> [Int32] {
        if let c = calibration, c.ranking.count >= n { return Array(c.ranking.prefix(n)) }
        let v = tokenizer.vocab
        return DraftCalibration.rank(counts: [Int](repeating: 0, count: v.count), scores: v.scores,
                                     excluded: { [.control, .unused, .unknown].contains(v.kinds[$0]) }, limit: n)
    }
}

extension Generator {
    /// Resolves `speculation` against the checkpoint's calibration into drafters.
    func speculationSetup(_ s: Speculation) throws -> SpeculationSetup? {
        let lm = model.model
        let cal = calibration
        var want = s
        var minProb: Float = 0
        if s.auto {
            want = .lookupOnly
            // A calibration that found no faster model draft stores neither (lookup only).
            if let cal {
                want.earlyExit = cal.exitLayer < lm.layerCount ? cal.exitLayer : nil
                want.vocab = cal.vocab > 0 ? cal.vocab : nil
                minProb = cal.minProbability
            }
        } else if let cal {
            minProb = cal.minProbability
        }
        let k = maxDraft ?? (s.auto ? cal?.maxDraft : nil) ?? 6
        guard k > 0 else { return nil }
        var drafters = Drafters(lookup: want.lookup ? LookupDrafter() : nil)
        if want.usesModelDrafter {
            // Lookup drafts are free, but a one-token lookup guess is weaker than the model's own.
            drafters.lookupMinimum = 2
            let exit = (want.earlyExit ?? 0) > 0 ? min(want.earlyExit!, lm.layerCount) : (want.earlyExit == nil ? lm.layerCount : cal?.exitLayer ?? lm.layerCount)
            let vocab = want.vocab.map { $0 > 0 ? min($0, lm.vocabSize) : (cal.map { $0.vocab > 0 ? $0.vocab : 16384 } ?? 16384) }
            let key = "\(exit)/\(vocab ?? 0)/\(k)"
            if let c = cachedDrafter, c.key == key {
                drafters.model = c.drafter
            } else {
                let d = try ExitDrafter(model: lm, exitLayer: exit, ids: vocab.map { model.draftRanking($0, calibration: cal) }, maxDraft: k)
                cachedDrafter = (key, d)
                drafters.model = d
            }
            drafters.model!.minProbability = minProb
            want.earlyExit = exit
            want.vocab = vocab
        }
        var label = Speculation(lookup: want.lookup, earlyExit: want.earlyExit.flatMap { $0 < lm.layerCount ? $0 : nil }, vocab: want.vocab)
        if label.isOff { label.earlyExit = lm.layerCount }
        return SpeculationSetup(drafters: drafters, maxDraft: k, label: label.description)
    }
}
