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
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.model'", "missing: the file carries no " +
                "tokenizer")
        }
        guard model == "llama" else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.model'", "tokenizer '\(model)' is not " +
                "supported (supported: llama (SentencePiece))")
        }
        guard let toks = m.strings("tokenizer.ggml.tokens"), !toks.isEmpty, toks.count <= Int(Int32.max) else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.tokens'", "missing or empty")
        }
        let n = toks.count
        tokens = TokenTable(toks)
        let sc = m.floats("tokenizer.ggml.scores") ?? [Float](repeating: 0, count: n)
        guard sc.count == n else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.scores'", "has \(sc.count) entries for " +
                "\(n) tokens")
        }
        scores = sc
        kinds = try Vocabulary.kinds(m, count: n, file: file)
        bos = try Vocabulary.tokenID(m, "tokenizer.ggml.bos_token_id", count: n, file: file)
        eos = try Vocabulary.tokenID(m, "tokenizer.ggml.eos_token_id", count: n, file: file)
        unk = try Vocabulary.tokenID(m, "tokenizer.ggml.unknown_token_id", count: n, file: file)
        addBOS = m.bool("tokenizer.ggml.add_bos_token") ?? true
        addEOS = m.bool("tokenizer.ggml.add_eos_token") ?? false
        addSpacePrefix = m.bool("tokenizer.ggml.add_space_prefix") ?? true
    }

    /// `tokenizer.ggml.token_type` (normal where absent), one per token.
    static func kinds(_ m: Metadata, count n: Int, file: String) throws -> [TokenKind] {
        let ty = m.ints("tokenizer.ggml.token_type") ?? [Int32](repeating: 1, count: n)
        guard ty.count == n else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.token_type'", "has \(ty.count) entries " +
                "for \(n) tokens")
        }
        return ty.map { TokenKind(rawValue: $0) ?? .normal }
    }

    /// The token id at metadata `key`, nil when absent, an error when outside the vocabulary.
    static func tokenID(_ m: Metadata, _ key: String, count n: Int, file: String) throws -> Int32? {
        guard let v = m.int(key) else { return nil }
        guard v >= 0, v < n else {
            throw FormatError(file: file, field: "metadata '\(key)'", "token id \(v) is outside the \(n)-token " +
                "vocabulary")
        }
        return Int32(v)
    }
}
