import Foundation
import TernKernels

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
    /// Reused for the candidates, so sampling allocates nothing per token.
    var candidates: [(Int32, Float)] = []

    public init(_ params: SamplingParameters) {
        self.params = params
        rng = SplitMix64(seed: params.seed)
    }

    /// The greedy token: the largest logit, the lowest id on ties (``Ops/argmax(_:count:)``).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        guard let base = logits.baseAddress else { return 0 }
        return Int32(Ops.argmax(base, count: logits.count))
    }

    public var isGreedy: Bool { params.temperature <= 0 }

    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int32 {
        if isGreedy { return Sampler.argmax(logits) }
        var c: [(Int32, Float)] = []
        swap(&c, &candidates)
        defer { swap(&c, &candidates) }
        distribution(logits, into: &c)
        return pick(c)
    }

    /// The distribution plain sampling draws from: temperature, then the top-k (ties broken by
    /// lower index), then the smallest prefix reaching top-p; (index, probability) pairs, most
    /// likely first, summing to 1. Greedy: the argmax with probability 1. Reuses `out`'s storage.
    public mutating func distribution(_ logits: UnsafeBufferPointer<Float>, into out: inout [(Int32, Float)]) {
        out.removeAll(keepingCapacity: true)
        if isGreedy { out.append((Sampler.argmax(logits), 1)); return }
        let k = params.topK > 0 ? min(params.topK, logits.count) : logits.count
        // Keep the k largest (ties broken by lower id) with a partial selection.
        for i in 0..<logits.count {
            let v = logits[i]
            if out.count < k {
                out.append((Int32(i), v))
                if out.count == k { out.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) } }
            } else if v > out[k - 1].1 {
                var j = k - 1
                while j > 0 && out[j - 1].1 < v { out[j] = out[j - 1]; j -= 1 }
                out[j] = (Int32(i), v)
            }
        }
        if out.count < k { out.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) } }
        let m = out[0].1
        var total: Float = 0
        for i in out.indices { out[i].1 = exp((out[i].1 - m) / params.temperature); total += out[i].1 }
        var keep = out.count
        if params.topP < 1 {
            var cum: Float = 0
            for i in out.indices {
                cum += out[i].1 / total
                if cum >= params.topP { keep = i + 1; break }
            }
        }
        out.removeLast(out.count - keep)
        var sum: Float = 0
        for i in out.indices { sum += out[i].1 }
        for i in out.indices { out[i].1 /= sum }
    }

    /// A uniform number in [0, 1).
    public mutating func uniform() -> Float { Float(Double(rng.next() >> 11) / Double(1 << 53)) }

    /// Draws from `(index, weight)` pairs (weights need not sum to 1).
    public mutating func pick(_ dist: [(Int32, Float)]) -> Int32 {
        var sum: Float = 0
        for d in dist { sum += d.1 }
        let r = uniform() * sum
        var acc: Float = 0
        for d in dist {
            acc += d.1
            if r < acc { return d.0 }
        }
        return dist[dist.count - 1].0
    }
}
