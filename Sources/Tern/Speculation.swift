import TernDecoding
import TernModels
import TernPlanner

/// Which self-speculative drafters a generation uses (see TernDecoding), as given to
/// `tern run --speculate`: `off`, `auto`, or drafters joined by `+`: `lookup`,
/// `early-exit[:E]`, `skip[:L1,L2,...]`, `vocab[:N]` (e.g. `vocab:16384+lookup`).
public struct Speculation: Sendable, Equatable, CustomStringConvertible {
    /// The calibrated settings plus lookup; lookup alone until the checkpoint is calibrated; plain
    /// decoding where calibration measured drafting slower (``DraftCalibration/decodesPlainly``).
    public var auto = false
    /// N-gram lookup drafts from the context.
    public var lookup = false
    /// The model drafter runs this many layers (0: calibrated or all); set with `early-exit`.
    public var earlyExit: Int?
    /// The model drafter's head keeps this many most-frequent tokens (0: calibrated or 16384).
    public var vocab: Int?
    /// The model drafter skips these layers (empty: the calibrated set); set with `skip`.
    public var skip: [Int]?

    public init(auto: Bool = false, lookup: Bool = false, earlyExit: Int? = nil, vocab: Int? = nil, skip: [Int]? = nil) {
        self.auto = auto
        self.lookup = lookup
        self.earlyExit = earlyExit
        self.vocab = vocab
        self.skip = skip
    }

    public static let off = Speculation()
    public static let automatic = Speculation(auto: true)
    public static let lookupOnly = Speculation(lookup: true)

    public var isOff: Bool { !auto && !lookup && !usesModelDrafter }
    public var usesModelDrafter: Bool { earlyExit != nil || vocab != nil || skip != nil }

    /// Parses the `--speculate` syntax; errors say what is accepted.
    public init(parsing text: String) throws {
        let usage = "--speculate takes off, auto, or lookup, early-exit[:E], skip[:L1,L2,...], vocab[:N] joined by " +
            "'+' (got '\(text)')"
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
            case "skip":
                let list = kv.count == 2 ? kv[1].split(separator: ",", omittingEmptySubsequences: false).map { Int($0) } : []
                guard list.allSatisfy({ $0 != nil && $0! >= 0 }) else { throw TernError.usage(usage) }
                skip = list.map { $0! }
            default: throw TernError.usage(usage)
            }
        }
    }

    /// What to plan memory for: drafts per pass and draft-head rows, from the calibration for
    /// `auto` and bare names.
    public func request(calibration cal: DraftCalibration?, maxDraft: Int?) -> DraftRequest? {
        if isOff { return nil }
        if auto {
            guard let cal else { return DraftRequest(maxDraft: maxDraft ?? 6, vocab: 0) }
            if cal.decodesPlainly { return nil }
            return DraftRequest(maxDraft: maxDraft ?? cal.maxDraft, vocab: cal.vocab)
        }
        return DraftRequest(maxDraft: maxDraft ?? 6, vocab: draftVocab(calibration: cal) ?? 0)
    }

    /// The model drafter asked for, for a model of `L` layers: the layers it runs (`early-exit:E`
    /// gives E; bare `early-exit` the calibrated exit, else L - 2; without it all L), its head's
    /// rows (``draftVocab(calibration:)``) and the layers it skips (bare `skip`: the calibrated
    /// set, else L / 2; nil without `skip`). A skipped layer that does not exist is an error.
    func modelDrafter(layers L: Int, calibration cal: DraftCalibration?) throws -> (exit: Int, vocab: Int?, skip: [Int]?) {
        let exit = earlyExit.map { $0 > 0 ? min($0, L) : cal.map { $0.exitLayer < L ? $0.exitLayer : L - 2 } ?? L - 2 } ?? L
        let skip = skip.map { $0.isEmpty ? (cal?.skipLayers.isEmpty == false ? cal!.skipLayers : [L / 2]) : $0 }
        if let bad = skip?.first(where: { $0 >= L }) {
            throw TernError.usage("--speculate skip: layer \(bad) does not exist (the model has layers 0...\(L - 1))")
        }
        return (exit, draftVocab(calibration: cal), skip)
    }

    /// Rows of the draft head asked for: `vocab:N` gives N; bare `vocab` the calibrated size,
    /// else 16384; nil without `vocab`.
    func draftVocab(calibration cal: DraftCalibration?) -> Int? {
        vocab.map { $0 > 0 ? $0 : cal.map { $0.vocab > 0 ? $0.vocab : 16384 } ?? 16384 }
    }

    public var description: String {
        if isOff { return "off" }
        if auto { return "auto" }
        var parts: [String] = []
        if let e = earlyExit { parts.append(e > 0 ? "early-exit:\(e)" : "early-exit") }
        if let l = skip { parts.append(l.isEmpty ? "skip" : "skip:" + l.map(String.init).joined(separator: ",")) }
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
    /// Token ids by frequency: the calibrated ranking, else tokenizer merge order.
    public func draftRanking(_ n: Int, calibration: DraftCalibration?) -> [Int32] {
        if let c = calibration, c.ranking.count >= n { return Array(c.ranking.prefix(n)) }
        return rankVocabulary(counts: nil, limit: n)
    }

    /// At most `limit` token ids, by `counts` (nil: none counted) and then tokenizer merge order;
    /// control, unused and unknown tokens are never drafted.
    public func rankVocabulary(counts: [Int]?, limit: Int) -> [Int32] {
        let t = tokenizer, kinds = t.kinds
        return DraftCalibration.rank(counts: counts ?? [Int](repeating: 0, count: t.count), scores: t.scores,
                                     excluded: { [.control, .unused, .unknown].contains(kinds[$0]) }, limit: limit)
    }
}

extension Generator {
    /// The drafters `speculation` resolves to for this model, and drafts per pass (nil: plain
    /// decoding), for callers that drive a ``Session`` themselves with
    /// ``Session/decodeSpeculative(maxTokens:sampler:drafters:maxDraft:history:stats:onToken:)``
    /// (its state needs `maxDraft + 1` logits rows). The model drafter's buffers belong to one
    /// sequence: call this once per sequence.
    public func drafters(for speculation: Speculation) throws -> (drafters: Drafters, maxDraft: Int)? {
        guard let s = try speculationSetup(speculation, capacity: model.options.context) else { return nil }
        cachedDrafter = nil
        return (s.drafters, s.maxDraft)
    }

    /// Resolves `speculation` against the checkpoint's calibration into drafters, for a sequence
    /// of `capacity` positions (verification needs a batch of the drafts + 1). Nil: plain decoding.
    func speculationSetup(_ s: Speculation, capacity: Int) throws -> SpeculationSetup? {
        guard !s.isOff else { return nil }
        let lm = model.model
        let cal = calibration
        var want = s
        let L = lm.layerCount
        var minProb: Float = 0
        if s.auto {
            // Calibration measured drafting slower than plain decoding here (whatever --draft-max
            // says: there is nothing to draft with).
            if cal?.decodesPlainly == true { return nil }
            want = .lookupOnly
            // A calibration that found no faster model draft stores none (lookup only).
            if let cal {
                want.earlyExit = cal.exitLayer < L ? cal.exitLayer : nil
                want.vocab = cal.vocab > 0 ? cal.vocab : nil
                want.skip = cal.skipLayers.isEmpty ? nil : cal.skipLayers
                minProb = cal.minProbability
            }
        } else if let cal {
            minProb = cal.minProbability
        }
        var k = maxDraft ?? (s.auto ? cal?.maxDraft : nil) ?? 6
        // Under a budget, speculation gets what the plan set aside for it, no more.
        let budgeted = model.plan.budget != nil
        if budgeted {
            k = min(k, model.plan.maxDraft)
            if let v = want.draftVocab(calibration: cal), model.plan.draftVocab < v {
                want.vocab = model.plan.draftVocab > 0 ? model.plan.draftVocab : nil
                if want.vocab == nil { want.earlyExit = nil; want.skip = nil }
            }
            if !want.usesModelDrafter && !want.lookup { return nil }
        }
        guard k > 0 else { return nil }
        var drafters = Drafters(lookup: want.lookup ? LookupDrafter() : nil)
        if want.usesModelDrafter {
            // Lookup drafts are free (verified in one batched pass, where the model's drafts each
            // need a pass through the layers), but a guess from a short match is weaker.
            drafters.lookupMinimumMatch = cal?.lookupMatch ?? 2
            // Bare names take the calibrated value (or a default).
            let (exit, rows, skip) = try want.modelDrafter(layers: L, calibration: cal)
            let vocab = rows.map { min($0, lm.vocabSize) }
            let key = "\(exit)/\(vocab ?? 0)/\(k)/\(skip ?? [])"
            if let c = cachedDrafter, c.key == key {
                drafters.model = c.drafter
            } else {
                // An empty ranking (no ordinary tokens at all) drafts with the full head.
                let ids = vocab.map { model.draftRanking($0, calibration: cal) }.flatMap { $0.isEmpty ? nil : $0 }
                let d = try ModelDrafter(model: lm, exitLayer: exit, skip: Set(skip ?? []), ids: ids, maxDraft: k)
                cachedDrafter = (key, d)
                draftGate?.forgetModelSteps()  // its record was another drafter's
                drafters.model = d
            }
            drafters.model!.minProbability = minProb
            want.earlyExit = exit < L ? exit : nil
            want.vocab = vocab
            want.skip = skip
        }
        var label = Speculation(lookup: want.lookup, earlyExit: want.earlyExit, vocab: want.vocab, skip: want.skip)
        if label.isOff { label.earlyExit = L }
        let perPass = min(k, min(model.options.maxBatch, capacity) - 1)
        return perPass > 0 ? SpeculationSetup(drafters: drafters, maxDraft: perPass, label: label.description) : nil
    }
}
