import TernFormat

/// Token kinds, as GGUF's `tokenizer.ggml.token_type` numbers them.
public enum TokenKind: Int32, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// A tokenizer vocabulary read from checkpoint metadata (GGUF or .tern keys `tokenizer.ggml.*`).
public struct Vocabulary: Sendable {
    public let tokens: TokenTable
    public let scores: [Float]
    public let kinds: [TokenKind]
    public let bos: Int32?
    public let eos: Int32?
    public let unk: Int32?
    public let addBOS: Bool
    public let addEOS: Bool
    public let addSpacePrefix: Bool

    public var count: Int { tokens.count }

    public init(metadata m: Metadata, file: String) throws {
        guard let model = m.string("tokenizer.ggml.model") else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.model'", "missing: the file carries no tokenizer")
        }
        guard model == "llama" else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.model'", "tokenizer '\(model)' is not supported (supported: llama (SentencePiece))")
        }
        guard let toks = m.strings("tokenizer.ggml.tokens"), !toks.isEmpty, toks.count <= Int(Int32.max) else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.tokens'", "missing or empty")
        }
        let n = toks.count
        tokens = TokenTable(toks)
        let sc = m.floats("tokenizer.ggml.scores") ?? [Float](repeating: 0, count: n)
        guard sc.count == n else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.scores'", "has \(sc.count) entries for \(n) tokens")
        }
        scores = sc
        let ty = m.ints("tokenizer.ggml.token_type") ?? [Int32](repeating: 1, count: n)
        guard ty.count == n else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.token_type'", "has \(ty.count) entries for \(n) tokens")
        }
        kinds = ty.map { TokenKind(rawValue: $0) ?? .normal }
        func id(_ key: String) throws -> Int32? {
            guard let v = m.int(key) else { return nil }
            guard v >= 0, v < n else {
                throw FormatError(file: file, field: "metadata '\(key)'", "token id \(v) is outside the \(n)-token vocabulary")
            }
            return Int32(v)
        }
        bos = try id("tokenizer.ggml.bos_token_id")
        eos = try id("tokenizer.ggml.eos_token_id")
        unk = try id("tokenizer.ggml.unknown_token_id")
        addBOS = m.bool("tokenizer.ggml.add_bos_token") ?? true
        addEOS = m.bool("tokenizer.ggml.add_eos_token") ?? false
        addSpacePrefix = m.bool("tokenizer.ggml.add_space_prefix") ?? true
    }
}
