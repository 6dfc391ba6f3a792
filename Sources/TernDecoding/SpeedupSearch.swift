import Foundation

/// Decides between speculative-decoding settings from timings taken on a machine that may be
/// busy. Each sample is one prompt's log speedup, log(speculative tokens/s / plain tokens/s),
/// plain and speculative decoding of that prompt timed back to back, so drift in the machine's
/// speed between samples cancels. Two settings are compared on the same prompts in the same
/// order (paired differences, which also cancel how well each prompt suits drafting); a
/// comparison is decided when the mean difference is more than ``z`` standard errors from zero
/// (a two-sided test at about 95%), or when its whole interval lies within ±``margin`` (the
/// settings are equivalent for drafting's purposes: two one-sided tests, as in bioequivalence);
/// otherwise more rounds are measured, up to ``maxRounds``. Still undecided then, the verdict
/// depends on how finely the timings could resolve: within ±``noiseLimit`` it is `undecided` (any
/// difference is too small to matter: keep what you have); wider, it is `tooNoisy` (the machine
/// cannot rank the settings: store nothing).
public struct SpeedupSearch<Setting: Hashable> {
    public enum Verdict: Equatable, Sendable { case faster, slower, equivalent, undecided, tooNoisy }

    /// Standard errors a mean must clear to count as decided.
    public var z = 2.0
    /// Log-speedup difference below which two settings count as equivalent (0.095: 10%).
    public var margin = 0.095
    /// Widest confidence half-width (log units, 0.18: ±20%) at which a comparison still
    /// undecided after every round is taken as "no difference that matters" rather than noise.
    public var noiseLimit = 0.18
    /// Rounds (passes over the prompts) a setting is measured at most.
    public var maxRounds = 3
    /// One round of `setting`: one log speedup per prompt, prompts always in the same order.
    let measure: (Setting) throws -> [Double]
    public private(set) var samples: [Setting: [Double]] = [:]

    public init(z: Double = 2.0, maxRounds: Int = 3, measure: @escaping (Setting) throws -> [Double]) {
        self.z = z
        self.maxRounds = maxRounds
        self.measure = measure
    }

    /// Mean, standard error and count of `x`.
    public static func stats(_ x: [Double]) -> (mean: Double, se: Double, n: Int) {
        guard !x.isEmpty else { return (0, .infinity, 0) }
        let m = x.reduce(0, +) / Double(x.count)
        guard x.count > 1 else { return (m, .infinity, 1) }
        let v = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
        return (m, (v / Double(x.count)).squareRoot(), x.count)
    }

    func verdict(_ x: [Double], final: Bool) -> Verdict {
        let s = Self.stats(x)
        if s.mean - z * s.se > 0 { return .faster }
        if s.mean + z * s.se < 0 { return .slower }
        if abs(s.mean) + z * s.se < margin { return .equivalent }
        if final { return z * s.se > noiseLimit ? .tooNoisy : .undecided }
        return .undecided
    }

    /// The speedup over plain decoding measured so far (geometric mean), with its standard
    /// error in log units.
    public func speedup(_ s: Setting) -> (speedup: Double, logSE: Double) {
        let st = Self.stats(samples[s] ?? [])
        return (exp(st.mean), st.se)
    }

    /// Whether `s` is faster than plain decoding (`equivalent`: within ±``margin`` of it):
    /// measured (once, then more rounds while undecided) until decided or at ``maxRounds``.
    public mutating func versusPlain(_ s: Setting) throws -> Verdict {
        if roundsDone(s) == 0 { try measureRound(s) }
        while true {
            let v = verdict(samples[s]!, final: roundsDone(s) >= maxRounds)
            if v != .undecided || roundsDone(s) >= maxRounds { return v }
            try measureRound(s)
        }
    }

    /// Whether `a` is faster than `b`, from paired samples: both measured to the same number of
    /// rounds, then one more round of each while undecided, up to ``maxRounds``.
    public mutating func compare(_ a: Setting, _ b: Setting) throws -> Verdict {
        while true {
            let ra = roundsDone(a), rb = roundsDone(b)
            if ra < rb { try measureRound(a); continue }
            if rb < ra { try measureRound(b); continue }
            if ra > 0 {
                let x = samples[a]!, y = samples[b]!
                let v = verdict(zip(x, y).map { $0 - $1 }, final: ra >= maxRounds)
                if v != .undecided || ra >= maxRounds { return v }
            }
            try measureRound(a)
            try measureRound(b)
        }
    }

    /// Rounds measured of each setting.
    private var roundCount: [Setting: Int] = [:]
    public func roundsDone(_ s: Setting) -> Int { roundCount[s] ?? 0 }

    /// Measures one more round of `s` (one sample per prompt).
    public mutating func measureRound(_ s: Setting) throws {
        samples[s, default: []] += try measure(s)
        roundCount[s, default: 0] += 1
    }
}
