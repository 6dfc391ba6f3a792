import TernFormat

/// SentencePiece-style tokenizer (GGUF `tokenizer.ggml.model = llama`): spaces become U+2581,
/// adjacent symbols merge by highest vocabulary score (ties: leftmost first), unknown pieces
/// fall back to `<0xNN>` byte tokens. Behaviour follows llama.cpp's SPM tokenizer so token ids
/// match it, including splitting out user-defined (and, with `parseSpecial`, control) tokens first.
public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    public let vocab: Vocabulary
    public let endOfGeneration: Set<Int32>
    public var count: Int { vocab.count }
    public var bos: Int32? { vocab.bos }
    public var eos: Int32? { vocab.eos }
    public var addBOS: Bool { vocab.addBOS }
    public var kinds: [TokenKind] { vocab.kinds }
    public var scores: [Float] { vocab.scores }
    private var byteTokens = [Int32](repeating: -1, count: 256)
    /// Special tokens to split out, longest text first: (text, id, isUserDefined).
    private var specials: [([UInt8], Int32, Bool)] = []

    public init(vocab: Vocabulary, metadata: Metadata = Metadata()) {
        self.vocab = vocab
        endOfGeneration = endOfGenerationSet(tokens: vocab.tokens, kinds: vocab.kinds, eos: vocab.eos, metadata: metadata)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in 0..<256 {
            let name: [UInt8] = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15]] + [UInt8(ascii: ">")]
            if let id = vocab.tokens.id(of: name) { byteTokens[b] = id }
        }
        for (i, k) in vocab.kinds.enumerated()
        where (k == .control || k == .userDefined || k == .unknown) && !vocab.tokens[i].isEmpty {
            specials.append((Array(vocab.tokens[i]), Int32(i), k == .userDefined))
        }
        specials.sort { $0.0.count > $1.0.count }
    }

    public convenience init(metadata: Metadata, file: String) throws {
        self.init(vocab: try Vocabulary(metadata: metadata, file: file), metadata: metadata)
    }

    /// Encodes `text`. `addSpecial` adds BOS/EOS as the vocabulary asks; `parseSpecial`
    /// lets control-token text (e.g. `<start_of_turn>`) in the input become those tokens.
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        let frags = SpecialSplitter.split(Array(text.utf8), specials: specials, parseSpecial: parseSpecial)
        var out: [Int32] = []
        if addSpecial, vocab.addBOS, let b = vocab.bos { out.append(b) }
        var prevSpecial = true
        for f in frags {
            switch f {
            case .token(let id):
                out.append(id)
                prevSpecial = true
            case .text(let t):
                var bytes: [UInt8] = vocab.addSpacePrefix && prevSpecial ? [0x20] : []
                bytes.append(contentsOf: t)
                var escaped: [UInt8] = []
                escaped.reserveCapacity(bytes.count * 3)
                for c in bytes { if c == 0x20 { escaped += [0xE2, 0x96, 0x81] } else { escaped.append(c) } }
                tokenize(escaped, into: &out)
                prevSpecial = false
            }
        }
        if addSpecial, vocab.addEOS, let e = vocab.eos { out.append(e) }
        return out
    }

    struct Symbol { var start: Int; var n: Int; var prev: Int; var next: Int }
    struct Bigram: Comparable {
        var left: Int, right: Int, score: Float, size: Int
        // Max-heap order: higher score first, then the leftmost pair.
        static func < (a: Bigram, b: Bigram) -> Bool { a.score < b.score || (a.score == b.score && a.left > b.left) }
    }

    func tokenize(_ text: [UInt8], into out: inout [Int32]) {
        if text.isEmpty { return }
        var sym: [Symbol] = []
        var off = 0
        while off < text.count {
            let lead = text[off]
            let len = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let n = min(len, text.count - off)
            sym.append(Symbol(start: off, n: n, prev: sym.count - 1, next: off + n == text.count ? -1 : sym.count + 1))
            off += n
        }
        var heap = Heap<Bigram>()
        var revMerge: [ArraySlice<UInt8>: (Int, Int)] = [:]
        func tryAdd(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let piece = text[sym[l].start..<sym[l].start + sym[l].n + sym[r].n]
            guard let id = vocab.tokens.id(of: piece) else { return }
            heap.push(Bigram(left: l, right: r, score: vocab.scores[Int(id)], size: piece.count))
            revMerge[piece] = (l, r)
        }
        for i in 1..<sym.count { tryAdd(i - 1, i) }
        while let b = heap.pop() {
            let l = sym[b.left], r = sym[b.right]
            if l.n == 0 || r.n == 0 || l.n + r.n != b.size { continue }
            sym[b.left].n += r.n
            sym[b.right].n = 0
            sym[b.left].next = r.next
            if r.next >= 0 { sym[r.next].prev = b.left }
            tryAdd(sym[b.left].prev, b.left)
            tryAdd(b.left, sym[b.left].next)
        }
        func resegment(_ s: Symbol) {
            let piece = text[s.start..<s.start + s.n]
            if let id = vocab.tokens.id(of: piece) { out.append(id); return }
            if let (l, r) = revMerge[piece] {
                resegment(sym[l]); resegment(sym[r])
                return
            }
            for c in piece {
                let id = byteTokens[Int(c)]
                if id >= 0 { out.append(id) } else if let u = vocab.unk { out.append(u) }
            }
        }
        var i = 0
        while i != -1 {
            resegment(sym[i])
            i = sym[i].next
        }
    }

    /// The bytes token `id` stands for in text (U+2581 as space, byte tokens as their byte,
    /// control tokens as nothing unless `special`). Unknown ids give no bytes.
    public func appendPiece(_ id: Int32, special: Bool, to out: inout [UInt8]) {
        guard id >= 0, Int(id) < vocab.count else { return }
        let t = vocab.tokens[Int(id)]
        switch vocab.kinds[Int(id)] {
        case .normal, .userDefined, .unused:
            var i = t.startIndex
            while i < t.endIndex {
                if i + 2 < t.endIndex, t[i] == 0xE2, t[i + 1] == 0x96, t[i + 2] == 0x81 {
                    out.append(0x20)
                    i += 3
                } else {
                    out.append(t[i])
                    i += 1
                }
            }
        case .byte:
            // "<0xAB>"
            if t.count == 6, let hi = hexDigit(t[t.startIndex + 3]), let lo = hexDigit(t[t.startIndex + 4]) {
                out.append(hi << 4 | lo)
            }
        case .unknown: out += "\u{2585}".utf8
        case .control: if special { out += t }
        }
    }

    private func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

}

/// Turns a stream of token ids into text without splitting UTF-8 sequences: bytes of an
/// incomplete character are held until the token that completes it arrives.
public struct StreamingDecoder {
    let tokenizer: any Tokenizer
    var pending: [UInt8] = []

    public init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        pending.reserveCapacity(64)  // a token's text and up to 3 held bytes: pushing allocates nothing
    }

    /// Text that became complete with token `id` (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        tokenizer.appendPiece(id, special: false, to: &pending)
        // Hold back a trailing incomplete sequence (at most 3 bytes).
        var cut = pending.count
        var back = 1
        while back <= min(3, pending.count) {
            let c = pending[pending.count - back]
            if c & 0xC0 == 0x80 { back += 1; continue }
            let need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
            if need > back { cut = pending.count - back }
            break
        }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeSubrange(..<cut)  // in place: the buffer is kept for the next token
        return text
    }

    /// Whatever is still held (as U+FFFD if incomplete).
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
