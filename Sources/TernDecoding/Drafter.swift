/// A source of draft tokens for self-speculative decoding: given the tokens so far, guess up to
/// `limit` next tokens. Drafts are only guesses — the verifier keeps exactly the tokens plain
/// decoding would produce — so a drafter affects speed, never output.
public protocol Drafter {
    /// Up to `limit` proposed continuations of `history` (possibly none), into `proposal`
    /// (replacing its contents; its storage is reused, so a decode loop allocates nothing).
    mutating func propose(after history: [Int32], limit: Int, into proposal: inout [Int32])
}

extension Drafter {
    /// Up to `limit` proposed continuations of `history` (possibly none), as a new array.
    public mutating func propose(after history: [Int32], limit: Int) -> [Int32] {
        var out: [Int32] = []
        propose(after: history, limit: limit, into: &out)
        return out
    }
}

/// Running acceptance figures of a speculative decode.
public struct SpeculationStats: Sendable, Equatable {
    /// Verification passes (each yields at least one token).
    public var steps = 0
    public var drafted = 0
    public var accepted = 0
    /// Steps drafted by lookup and by the model, and steps the gate gave to plain decoding in the
    /// model drafter's place (one row, no drafts; lookup's own zero-draft passes count as lookup's).
    public var lookupSteps = 0
    public var modelSteps = 0
    public var plainSteps = 0
    /// Where a speculative decode's time went (nanoseconds): lookup passes (one batched pass
    /// each), the model drafter's single-token passes (`draftRows` of them: the token fed plus
    /// each draft, through the draft's layers and head) and its verifications (the layers the
    /// draft did not run and the full head over `verifyRows` rows). Diagnostics for tuning.
    public var lookupNanoseconds: UInt64 = 0
    public var draftNanoseconds: UInt64 = 0
    public var verifyNanoseconds: UInt64 = 0
    public var draftRows = 0
    public var verifyRows = 0
    public var lookupRows = 0
    public init() {}
    /// Accepted / drafted.
    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
    /// Tokens handed out by verification passes (accepted drafts and the verifier's own tokens).
    public var produced = 0
    /// Tokens produced per verification pass.
    public var tokensPerStep: Double { steps > 0 ? Double(produced) / Double(steps) : 0 }

    /// Adds another decode's figures to these (totals over several prompts).
    public mutating func add(_ o: SpeculationStats) {
        for k in Self.counts { self[keyPath: k] += o[keyPath: k] }
        for k in Self.times { self[keyPath: k] += o[keyPath: k] }
    }

    /// Every count and every time above: the fields ``add(_:)`` sums.
    public static var counts: [WritableKeyPath<SpeculationStats, Int>] {
        [\.steps, \.drafted, \.accepted, \.produced, \.lookupSteps, \.modelSteps, \.plainSteps, \.draftRows, \.verifyRows,
         \.lookupRows]
    }
    public static var times: [WritableKeyPath<SpeculationStats, UInt64>] {
        [\.lookupNanoseconds, \.draftNanoseconds, \.verifyNanoseconds]
    }
}
