/// How many of a lookup proposal's tokens to verify (or whether to draft with the model instead):
/// the count that maximizes the expected tokens per unit of time, from what a verification pass
/// of each size has cost here and how often proposals from an n-gram match of that length were
/// right.
///
/// A pass over `r` rows yields 1 + a + a² + … + a^(r-1) tokens on average when each draft after
/// a right one is right with probability `a`, and costs `cost(r)` plain steps: the expected
/// tokens per run and the walltime model of Leviathan et al. 2023, "Fast Inference from
/// Transformers via Speculative Decoding", section 3, with a measured `cost(r)` in place of
/// their linear 1 + (r - 1) c (a free draft: lookup costs nothing to propose). Where a batched
/// pass costs little more than one token (a core waiting on memory) drafting pays at low
/// acceptance; where every row costs nearly a step (a core short of compute: a Zen 1 verifies 2
/// rows in 1.6 steps) it pays only on text that repeats itself, and the gate drafts nothing
/// otherwise — so lookup drafting is never much slower than plain decoding, and keeps its gains
/// where they are.
///
/// Beside a model drafter, the same rate is weighed against the model drafter's measured tokens
/// per unit of time (its steps' tokens and times, averaged over its last ~16 steps), and the step goes to
/// whichever yields more, or to plain decoding where neither pays (``choose(match:proposed:)``).
///
/// Both figures are learned while decoding: each pass's time by its rows (an exponential average,
/// an outlier counting at most twice the estimate), and per match length the drafts kept and
/// tried, decayed so that a context that starts or stops repeating is followed within a few
/// passes. A proposal that was not verified (or not all of it) is still scored against the tokens
/// decoding produced — lookup's guesses cost nothing to check — so the gate sees a context start
/// repeating while it drafts nothing. Fixed storage: nothing allocates after `init`.
public struct DraftGate: Sendable, Equatable {
    /// Most rows (drafts + 1) and match lengths tracked; larger values share the last entry.
    public static let maxRows = 65, maxMatch = 8
    /// An unmeasured pass of r rows is taken to cost 1 + `priorSlope` (r - 1) steps, or is
    /// extrapolated from the largest measured size below it.
    public static let priorSlope = 0.3
    /// Weight of a new pass time in its size's average, and the decay of the kept/tried counts
    /// per scored proposal.
    static let timeWeight = 0.25, decay = 0.9
    /// Weight of a model drafter step in its averages: its tokens per step swing from one to all
    /// drafts kept, so its record spans more steps than a pass time's.
    static let modelWeight = 1.0 / 16
    /// Model drafter steps on record before plain decoding may take its place, and the choices
    /// after which it runs again to renew its record.
    public static let modelTrust = 16, modelProbe = 32

    /// Average nanoseconds of a pass by rows (index = rows; 0 = not measured).
    private var passNanos: [Double]
    /// Per match length (index = length): decayed drafts kept and tried.
    private var kept: [Double], tried: [Double]
    /// Model drafting's steps: averaged tokens produced and nanoseconds taken (0: none yet), the
    /// steps on record, and the choices made since its last step.
    private var modelTokens = 0.0, modelNanos = 0.0
    private var modelSteps = 0, sinceModel = 0

    public init() {
        passNanos = [Double](repeating: 0, count: Self.maxRows + 1)
        kept = [Double](repeating: 0, count: Self.maxMatch + 1)
        tried = kept
    }

    /// A pass over `rows` rows took `nanoseconds`.
    public mutating func recordPass(rows: Int, nanoseconds: UInt64) {
        guard rows >= 1 else { return }
        let r = min(rows, Self.maxRows), t = Double(nanoseconds)
        let old = passNanos[r]
        passNanos[r] = old == 0 ? t : old + Self.timeWeight * (min(t, 2 * old) - old)
    }

    /// A proposal from a match of `match` tokens, scored against what decoding produced: its
    /// first `right` tokens were right, and `wrong` says whether the next one was checked and
    /// wrong (false when the proposal ran out first).
    public mutating func recordProposal(match: Int, right: Int, wrong: Bool) {
        let m = min(max(match, 1), Self.maxMatch)
        kept[m] = Self.decay * kept[m] + Double(right)
        tried[m] = Self.decay * tried[m] + Double(right + (wrong ? 1 : 0))
    }

    /// The chance that a draft from a match of `match` tokens is right after a right one (a prior
    /// of one right in two tries: 0.5 before anything is known).
    public func acceptance(match: Int) -> Double {
        let m = min(max(match, 1), Self.maxMatch)
        return (kept[m] + 1) / (tried[m] + 2)
    }

    /// A pass over `rows` rows in plain steps (one row: 1).
    public func cost(rows: Int) -> Double {
        let r = min(max(rows, 1), Self.maxRows)
        if r == 1 { return 1 }
        guard let one = oneRowNanos else { return 1 + Self.priorSlope * Double(r - 1) }
        if passNanos[r] > 0 { return max(1, passNanos[r] / one) }
        // Extrapolate from the largest measured size below r, else the prior slope.
        var slope = Self.priorSlope
        if let below = (2..<r).last(where: { passNanos[$0] > 0 }) {
            slope = max(0, (passNanos[below] / one - 1) / Double(below - 1))
        }
        return 1 + slope * Double(r - 1)
    }

    /// Nanoseconds of a one-row pass: measured, else taken from the smallest measured size by the
    /// prior slope (with a model drafter beside lookup, lookup passes always carry drafts); nil
    /// before any pass.
    var oneRowNanos: Double? {
        if passNanos[1] > 0 { return passNanos[1] }
        guard let r = passNanos.indices.first(where: { passNanos[$0] > 0 }) else { return nil }
        return passNanos[r] / (1 + Self.priorSlope * Double(r - 1))
    }

    /// How many of `proposed` lookup tokens from a match of `match` tokens to verify (0: decode
    /// plainly this step).
    public func draftCount(match: Int, proposed: Int) -> Int {
        let (n, rate) = bestLookup(match: match, proposed: proposed)
        return rate > 1 ? n : 0
    }

    /// The draft count n >= 1 with the most expected tokens per plain step, and that rate.
    func bestLookup(match: Int, proposed: Int) -> (count: Int, rate: Double) {
        let a = acceptance(match: match)
        var best = 0, bestRate = 0.0, expected = 1.0, term = 1.0
        for n in stride(from: 1, through: min(proposed, Self.maxRows - 1), by: 1) {
            term *= a
            expected += term
            let rate = expected / cost(rows: n + 1)
            if rate > bestRate { best = n; bestRate = rate }
        }
        return (best, bestRate)
    }

    /// A step drafted by the model drafter produced `tokens` tokens (its kept drafts and the
    /// verifier's own) in `nanoseconds` (drafting and verification).
    public mutating func recordModelStep(tokens: Int, nanoseconds: UInt64) {
        guard tokens >= 1 else { return }
        let t = Double(nanoseconds), k = Double(tokens)
        if modelNanos == 0 {
            modelNanos = t
            modelTokens = k
        } else {
            modelNanos += Self.modelWeight * (min(t, 2 * modelNanos) - modelNanos)
            modelTokens += Self.modelWeight * (k - modelTokens)
        }
        modelSteps += 1
        sinceModel = 0
    }

    /// Forgets the model drafter's record (another drafter is about to run); lookup's stays.
    public mutating func forgetModelSteps() {
        modelTokens = 0
        modelNanos = 0
        modelSteps = 0
        sinceModel = 0
    }

    /// Model drafting's tokens per plain step, from its steps' record; nil until both a model
    /// step and a lookup pass have been timed.
    public var modelRate: Double? {
        guard modelNanos > 0, let one = oneRowNanos else { return nil }
        return modelTokens / (modelNanos / one)
    }

    /// What a step beside a model drafter does.
    public enum Choice: Equatable, Sendable {
        /// Verify this many of lookup's proposal (>= 1).
        case lookup(Int)
        /// Draft with the model drafter.
        case model
        /// Decode one token plainly.
        case plain
    }

    /// With a model drafter beside lookup: lookup's best count from a proposal of `proposed`
    /// tokens from a match of `match` tokens (the same expected-tokens model as
    /// ``draftCount(match:proposed:)``), the model drafter, or plain decoding — whichever yields
    /// the most tokens per unit of time by the record. Plain decoding is weighed only once the
    /// model drafter has `modelTrust` steps on record, and every `modelProbe` steps without it the
    /// model drafter gets one step, so a stale record is renewed. With the model drafter alone,
    /// pass `proposed` 0. Nil until the model drafter has run once (the caller's own rule
    /// decides); then, until a pass has been timed to compare with, plain decoding to time one.
    public mutating func choose(match: Int, proposed: Int) -> Choice? {
        guard let model = modelRate else { return modelNanos > 0 ? .plain : nil }
        let (n, rate) = bestLookup(match: match, proposed: proposed)
        let trusted = modelSteps >= Self.modelTrust && sinceModel < Self.modelProbe
        let plain = trusted ? 1.0 : 0
        sinceModel += 1
        if n > 0 && rate > model && rate > plain { return .lookup(n) }
        return model > plain ? .model : .plain
    }
}
