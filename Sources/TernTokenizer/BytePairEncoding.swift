import Foundation
import TernFormat

/// Byte-level BPE, GGUF `tokenizer.ggml.model = gpt2` (GPT-2's scheme, used by Llama 3, Qwen2,
/// SmolLM and others), following llama.cpp's implementation so token ids match it: user-defined
/// (and, with `parseSpecial`, control) tokens are split out first; the rest is cut into words by
/// the vocabulary's pre-tokenizer (`tokenizer.ggml.pre`, the published regular expressions);
/// each word's UTF-8 bytes are mapped to printable characters (GPT-2's byte-to-unicode table)
/// and merged pairwise by rank (`tokenizer.ggml.merges`, lowest first, leftmost on ties); a
/// piece with no token falls back to its single-byte tokens.
///
/// Checked against llama.cpp: its vectors for its Llama 3 vocabulary (`llama-bpe`), and
/// llama-tokenize on SmolLM2's and Qwen2.5's vocabularies with their own and every other
/// pre-tokenizer listed here (TokenizerTests).
public final class BytePairTokenizer: Tokenizer, @unchecked Sendable {
    /// Pre-tokenizers by `tokenizer.ggml.pre`: the regular expressions applied in turn (each
    /// splits the pieces the previous ones left), as llama.cpp's llama-vocab.cpp lists them;
    /// `default` when a vocabulary names none, as there. deepseek-llm's letter class spells six
    /// scalars as escapes (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A): each is canonically
    /// equivalent to another character, so a normalizing editor silently changes them, and Swift's
    /// regex parser refuses them as range bounds (ranges end one before and list them singly).
    public static let preTokenizers: [String: [String]] = [
        "llama-bpe": [llama3], "llama3": [llama3], "smaug-bpe": [llama3],
        "qwen2": [#"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#],
        "smollm": [#"\p{N}"#, gpt2],
        "gpt-2": [gpt2],
        "default": [#"[\p{P}\$\+<=>\^~\|]+"#, gpt2, #"\p{N}+"#, #"[0-9][0-9][0-9]"#],
        "starcoder": [#"\p{N}"#, gpt2],
        "deepseek-llm": [#"[\r\n]"#, #"\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7C}\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD2}\u{1FD3}ῖ-\u{1FDA}\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}\u{212B}ℬ-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+"#,
                         #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#, #"\s+$"#, #"[一-龥ࠀ-一가-퟿]+"#, #"\p{N}+"#],
    ]
    static let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#

    public let tokens: TokenTable
    public let kinds: [TokenKind]
    public let bos: Int32?
    public let eos: Int32?
    public let addBOS: Bool
    public let addEOS: Bool
    public let pre: String
    public let endOfGeneration: Set<Int32>
    public var count: Int { tokens.count }
    /// Earlier ids first: GGUF BPE vocabularies list tokens in merge order and carry no scores.
    public let scores: [Float]
    /// Merge ranks by "left right" (the merge list's own text).
    private let ranks: [String: Int]
    private let splitters: [Regex<AnyRegexOutput>]
    /// Llama 3's vocabularies take a word that is a token as is, before any merge.
    private let ignoreMerges: Bool
    /// GPT-2's byte-to-unicode map: byte b is written as the character `byteChars[b]`, and back.
    private let byteChars: [Character]
    private let byteOf: [UInt32: UInt8]
    private var specials: [([UInt8], Int32, Bool)] = []

    public init(metadata m: Metadata, file: String) throws {
        guard m.string("tokenizer.ggml.model") == "gpt2" else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.model'", "is not 'gpt2' (byte-level BPE)")
        }
        guard let toks = m.strings("tokenizer.ggml.tokens"), !toks.isEmpty, toks.count <= Int(Int32.max) else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.tokens'", "missing or empty")
        }
        guard let merges = m.strings("tokenizer.ggml.merges") else {
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.merges'", "missing: byte-level BPE needs " +
                "its merges")
        }
        let n = toks.count
        tokens = TokenTable(toks)
        scores = (0..<n).map { -Float($0) }
        kinds = try Vocabulary.kinds(m, count: n, file: file)
        bos = try Vocabulary.tokenID(m, "tokenizer.ggml.bos_token_id", count: n, file: file)
        eos = try Vocabulary.tokenID(m, "tokenizer.ggml.eos_token_id", count: n, file: file)
        pre = m.string("tokenizer.ggml.pre") ?? "default"
        // llama.cpp's defaults when the file does not say: BOS for Llama 3's pre-tokenizer only.
        addBOS = m.bool("tokenizer.ggml.add_bos_token") ?? ["llama-bpe", "llama3", "smaug-bpe"].contains(pre)
        addEOS = m.bool("tokenizer.ggml.add_eos_token") ?? false
        guard let patterns = BytePairTokenizer.preTokenizers[pre] else {
            let known = BytePairTokenizer.preTokenizers.keys.sorted().joined(separator: ", ")
            throw FormatError(file: file, field: "metadata 'tokenizer.ggml.pre'", "pre-tokenizer '\(pre)' is not " +
                "supported (supported: \(known))")
        }
        splitters = try patterns.map { try Regex($0).matchingSemantics(.unicodeScalar) }
        ignoreMerges = ["llama-bpe", "llama3", "smaug-bpe"].contains(pre)
        var r: [String: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, line) in merges.enumerated() where r[line] == nil { r[line] = i }
        ranks = r
        var chars = [Character](repeating: " ", count: 256)
        var next = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            chars[b] = Character(Unicode.Scalar(printable ? b : next)!)
            if !printable { next += 1 }
        }
        byteChars = chars
        var back: [UInt32: UInt8] = [:]
        for (b, c) in chars.enumerated() { back[c.unicodeScalars.first!.value] = UInt8(b) }
        byteOf = back
        for (i, k) in kinds.enumerated() where (k == .control || k == .userDefined) && !tokens[i].isEmpty {
            specials.append((Array(tokens[i]), Int32(i), k == .userDefined))
        }
        specials.sort { $0.0.count > $1.0.count }
        endOfGeneration = endOfGenerationSet(tokens: tokens, kinds: kinds, eos: eos, metadata: m)
    }

    /// Encodes `text`. `addSpecial` adds BOS/EOS as the vocabulary asks; `parseSpecial` lets
    /// control-token text (e.g. `<|im_start|>`) become those tokens.
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        if addSpecial, addBOS, let bos { out.append(bos) }
        for fragment in SpecialSplitter.split(Array(text.utf8), specials: specials, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id): out.append(id)
            case .text(let bytes): for word in words(String(decoding: bytes, as: UTF8.self)) { out += merge(word) }
            }
        }
        if addSpecial, addEOS, let eos { out.append(eos) }
        return out
    }

    /// The pre-tokenizer's words: each expression splits every piece further, keeping the text
    /// between matches as pieces too (llama.cpp's unicode_regex_split).
    ///
    /// llama.cpp runs its expressions over a copy of the text in which every non-ASCII white-space
    /// scalar is U+000B (its std::regex `\s` knows only ASCII), so such a scalar matches `\s` and
    /// nothing else, not a literal range that spans it: deepseek-llm's `ࠀ-一` holds U+2028,
    /// U+2029 and U+3000, and its punctuation class starts at U+3000. The same is done here, and
    /// the words are cut from the original text at the same scalar offsets.
    func words(_ text: String) -> [Substring] {
        guard text.unicodeScalars.contains(where: BytePairTokenizer.isWideSpace) else { return split(text) }
        let scalars = text.unicodeScalars.map { BytePairTokenizer.isWideSpace($0) ? "\u{0B}" : $0 }
        let masked = String(String.UnicodeScalarView(scalars))
        var out: [Substring] = []
        var at = text.unicodeScalars.startIndex
        for w in split(masked) {
            let end = text.unicodeScalars.index(at, offsetBy: w.unicodeScalars.count)
            out.append(text[at..<end])
            at = end
        }
        return out
    }

    /// White space above ASCII, as llama.cpp's unicode tables list it (the Unicode White_Space
    /// property).
    static func isWideSpace(_ c: Unicode.Scalar) -> Bool {
        c.value > 0x7F && c.properties.isWhitespace
    }

    private func split(_ text: String) -> [Substring] {
        var pieces = [Substring(text)]
        for re in splitters {
            var next: [Substring] = []
            for p in pieces {
                var at = p.startIndex
                for m in p.matches(of: re) where !m.range.isEmpty {
                    if at < m.range.lowerBound { next.append(p[at..<m.range.lowerBound]) }
                    next.append(p[m.range])
                    at = m.range.upperBound
                }
                if at < p.endIndex { next.append(p[at..<p.endIndex]) }
            }
            pieces = next
        }
        return pieces
    }

    /// One word's tokens: its bytes as GPT-2 characters, merged by rank.
    func merge(_ word: Substring) -> [Int32] {
        let mapped = String(word.utf8.map { byteChars[Int($0)] })
        if ignoreMerges, let id = tokens.id(of: Array(mapped.utf8)) { return [id] }
        var symbols = mapped.map { String($0) }
        while symbols.count > 1 {
            var best = Int.max, at = -1
            for i in 0..<symbols.count - 1 {
                if let r = ranks[symbols[i] + " " + symbols[i + 1]], r < best { best = r; at = i }
            }
            if at < 0 { break }
            symbols[at] += symbols[at + 1]
            symbols.remove(at: at + 1)
        }
        var out: [Int32] = []
        for s in symbols {
            if let id = tokens.id(of: Array(s.utf8)) {
                out.append(id)
            } else {
                for c in s { if let id = tokens.id(of: Array(String(c).utf8)) { out.append(id) } }
            }
        }
        return out
    }

    /// The bytes token `id` stands for in text (GPT-2 characters mapped back to bytes; control
    /// tokens as nothing unless `special`). Unknown ids give no bytes.
    public func appendPiece(_ id: Int32, special: Bool, to out: inout [UInt8]) {
        guard id >= 0, Int(id) < tokens.count else { return }
        let t = tokens[Int(id)]
        switch kinds[Int(id)] {
        case .control: if special { out += t }
        case .userDefined: out += t
        default:
            // The token's characters, decoded in place (no String made per token); invalid UTF-8
            // in a malformed vocabulary becomes U+FFFD, as String(decoding:) gives.
            var it = t.makeIterator(), utf8 = Unicode.UTF8()
            decoding: while true {
                let c: Unicode.Scalar
                switch utf8.decode(&it) {
                case .scalarValue(let v): c = v
                case .error: c = "\u{FFFD}"
                case .emptyInput: break decoding
                }
                if let b = byteOf[c.value] { out.append(b) } else { Unicode.UTF8.encode(c) { out.append($0) } }
            }
        }
    }

}
