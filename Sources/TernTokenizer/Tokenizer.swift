import TernFormat

/// What the engine, the CLI and the C API need of a tokenizer. SentencePiece
/// (`tokenizer.ggml.model = llama`) and byte-level BPE (`gpt2`) implement it; ``loadTokenizer(metadata:file:)``
/// picks by the checkpoint's metadata.
public protocol Tokenizer: AnyObject, Sendable {
    /// Tokens in the vocabulary.
    var count: Int { get }
    var bos: Int32? { get }
    var eos: Int32? { get }
    var addBOS: Bool { get }
    /// Each token's kind (control, byte, ...).
    var kinds: [TokenKind] { get }
    /// A per-token score that follows merge order (SentencePiece's scores; for BPE, earlier ids
    /// first): a proxy for corpus frequency where nothing was counted.
    var scores: [Float] { get }
    /// The ids that end generation: EOS and the vocabulary's end-of-turn tokens.
    var endOfGeneration: Set<Int32> { get }
    /// Encodes `text`; `addSpecial` adds BOS/EOS as the vocabulary asks, `parseSpecial` lets
    /// control-token text become those tokens.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32]
    /// Appends the bytes token `id` stands for in text (control tokens only when `special`) to
    /// `out`, allocating nothing when `out` has the room: what streaming output calls per token.
    func appendPiece(_ id: Int32, special: Bool, to out: inout [UInt8])
}

extension Tokenizer {
    public func encode(_ text: String) -> [Int32] { encode(text, addSpecial: true, parseSpecial: false) }
    public func encode(_ text: String, addSpecial: Bool) -> [Int32] { encode(text, addSpecial: addSpecial, parseSpecial: false) }
    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        encode(text, addSpecial: true, parseSpecial: parseSpecial)
    }
    public func piece(_ id: Int32) -> [UInt8] { piece(id, special: false) }
    /// The bytes token `id` stands for in text (control tokens only when `special`).
    public func piece(_ id: Int32, special: Bool) -> [UInt8] {
        var out: [UInt8] = []
        appendPiece(id, special: special, to: &out)
        return out
    }

    /// Decodes ids to text (invalid UTF-8 becomes U+FFFD).
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids { appendPiece(id, special: false, to: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The tokenizer a checkpoint's metadata describes (`tokenizer.ggml.model`).
public func loadTokenizer(metadata m: Metadata, file: String) throws -> any Tokenizer {
    switch m.string("tokenizer.ggml.model") {
    case "gpt2": return try BytePairTokenizer(metadata: m, file: file)
    default: return try SentencePieceTokenizer(metadata: m, file: file)  // "llama", or the error naming what is there
    }
}

/// End-of-generation ids, as llama.cpp gathers them: EOS, the `eot`/`eom` ids the metadata names,
/// and control or user-defined tokens whose text marks the end of a turn or of text.
func endOfGenerationSet(tokens: TokenTable, kinds: [TokenKind], eos: Int32?, metadata m: Metadata) -> Set<Int32> {
    var s: Set<Int32> = []
    if let eos { s.insert(eos) }
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let v = m.int(key), v >= 0, v < tokens.count { s.insert(Int32(v)) }
    }
    let texts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
                 "<|eom_id|>", "<end_of_utterance>"]
    for t in texts {
        if let id = tokens.id(of: Array(t.utf8)), [.control, .userDefined].contains(kinds[Int(id)]) { s.insert(id) }
    }
    return s
}
