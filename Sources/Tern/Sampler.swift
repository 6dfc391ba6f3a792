import Foundation

/// Sampling settings. `temperature == 0` is greedy (argmax, lowest id on ties).
public struct SamplingParameters: Sendable {
    public var temperature: Float = 0.8
    public var topK: Int = 40
    public var topP: Float = 0.95
    public var seed: UInt64 = 0

    public init(temperature: Float = 0.8, topK: Int = 40, topP: Float = 0.95, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, seedable, reproducible across platforms.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Picks the next token from logits: greedy, or temperature + top-k + top-p.
public struct Sampler: Sendable {
    public let params: SamplingParameters
    var rng: SplitMix64
    var candidates: [(Int32, Float)] = []
    /// Reused for the candidates' weights, so sampling allocates nothing per token.
    var probs: [Float] = []

    public init(_ params: SamplingParameters) {
        self.params = params
        rng = SplitMix64(seed: params.seed)
    }

    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bv = -Float.infinity
        for i in 0..<logits.count where logits[i] > bv {
            bv = logits[i]
            best = i
        }
        return Int32(best)
    }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if params.temperature <= 0 { return Sampler.argmax(logits) }
        let k = params.topK > 0 ? min(params.topK, logits.count) : logits.count
        candidates.removeAll(keepingCapacity: true)
        // Keep the k largest (ties broken by lower id) with a partial selection.
        for i in 0..<logits.count {
            let v = logits[i]
            if candidates.count < k {
                candidates.append((Int32(i), v))
                if candidates.count == k { candidates.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) } }
            } else if v > candidates[k - 1].1 {
                var j = k - 1
                while j > 0 && candidates[j - 1].1 < v { candidates[j] = candidates[j - 1]; j -= 1 }
                candidates[j] = (Int32(i), v)
            }
        }
        if candidates.count < k { candidates.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) } }
        let m = candidates[0].1
        probs.removeAll(keepingCapacity: true)
        for c in candidates { probs.append(exp((c.1 - m) / params.temperature)) }
        let total = probs.reduce(0, +)
        var keep = probs.count
        if params.topP < 1 {
            var cum: Float = 0
            for (i, p) in probs.enumerated() {
                cum += p / total
                if cum >= params.topP { keep = i + 1; break }
            }
        }
        probs.removeLast(probs.count - keep)
        let sum = probs.reduce(0, +)
        let r = Float(Double(rng.next() >> 11) / Double(1 << 53)) * sum
        var acc: Float = 0
        for (i, p) in probs.enumerated() {
            acc += p
            if r < acc { return candidates[i].0 }
        }
        return candidates[keep - 1].0
    }
}
