/// How the KV cache stores keys and values.
public enum KVPrecision: String, Sendable, CaseIterable {
    /// IEEE binary16 (2 bytes a value).
    case f16
    /// int8 in groups of 32 with an f32 scale: a row of `dim` values is [dim/32 f32 scales][dim int8]
    /// (1.125 bytes a value).
    case q8

    /// Bytes of one cached vector of `dim` values (`dim` a multiple of 32).
    public func rowBytes(dim: Int) -> Int { self == .f16 ? 2 * dim : dim / 32 * 4 + dim }
}
