/// What went wrong rendering a template; a C API or CLI can switch on `kind`, the message says
/// what and where (1-based line of the template).
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Malformed template text.
        case syntax
        /// Valid Jinja this interpreter does not implement (named in the message).
        case unsupported
        /// The template called `raise_exception(message)`.
        case raised
        /// An operation on the wrong kind of value (e.g. a string plus a number).
        case type
        /// Nesting, output size or loop iterations beyond the interpreter's limits.
        case limit
    }
    public let kind: Kind
    public let line: Int
    public let message: String
    public init(_ kind: Kind, line: Int, _ message: String) {
        self.kind = kind
        self.line = line
        self.message = message
    }
    public var description: String {
        kind == .raised ? "chat template raised an exception (line \(line)): \(message)"
            : "chat template, line \(line): \(message)"
    }
}

/// An expression token inside `{{ }}` or `{% %}`.
enum Token: Equatable {
    case name(String), string(String), int(Int), double(Double), op(String)
}

/// The template cut into text and tags, with whitespace control applied to the text: `-` on a tag
/// strips the whitespace beside it, and (as Hugging Face renders chat templates) `trimBlocks`
/// drops the newline after a block tag and `lstripBlocks` the indentation before one.
enum Segment {
    case text(String)
    case output([Token], line: Int)
    case statement([Token], line: Int)
}

struct Lexer {
    let src: [UInt8]
    var trimBlocks = true, lstripBlocks = true
    var i = 0, line = 1

    /// As Jinja2's lexer reads a source: every line break (\r\n, \r, \n) becomes \n, string
    /// literals included, and one line break at the very end is dropped (`keep_trailing_newline`
    /// is off by default).
    init(_ text: String) {
        var s: [UInt8] = []
        s.reserveCapacity(text.utf8.count)
        var cr = false
        for c in text.utf8 {
            if c == 10 && cr { cr = false; continue }  // the \n of a \r\n
            cr = c == 13
            s.append(cr ? 10 : c)
        }
        if s.last == 10 { s.removeLast() }
        src = s
    }

    func error(_ m: String) -> TemplateError { TemplateError(.syntax, line: line, m) }

    static func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 10 || c == 13 || c == 11 || c == 12 }

    mutating func segments() throws -> [Segment] {
        var out: [Segment] = []
        var text: [UInt8] = []
        var textStart = 0  // where the current text began in the source
        func flush() { if !text.isEmpty { out.append(.text(String(decoding: text, as: UTF8.self))); text = [] } }
        while i < src.count {
            guard src[i] == UInt8(ascii: "{"), i + 1 < src.count,
                  let kind = [UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "#")].first(where: { $0 == src[i + 1] }) else {
                if src[i] == 10 { line += 1 }
                text.append(src[i])
                i += 1
                continue
            }
            let tagLine = line
            i += 2
            var plus = false
            if i < src.count, src[i] == UInt8(ascii: "-") {
                while let l = text.last, Lexer.isSpace(l) { text.removeLast() }
                i += 1
            } else {
                if i < src.count, src[i] == UInt8(ascii: "+") { plus = true; i += 1 }
                if lstripBlocks, kind != UInt8(ascii: "{"), !plus {
                    // Only when the tag is the first thing on its line.
                    // Only when nothing but spaces precede the tag on its line (as Jinja2 decides it:
                    // text that begins at a line start counts, e.g. after a trimmed newline).
                    var j = text.count
                    while j > 0, text[j - 1] == 32 || text[j - 1] == 9 { j -= 1 }
                    let lineStart = j > 0 ? text[j - 1] == 10 : textStart == 0 || src[textStart - 1] == 10
                    if lineStart { text.removeSubrange(j...) }
                }
            }
            flush()
            var rstrip = false
            if kind == UInt8(ascii: "#") {
                while true {
                    guard i + 1 < src.count else { throw TemplateError(.syntax, line: tagLine, "unclosed comment") }
                    if src[i] == UInt8(ascii: "#"), src[i + 1] == UInt8(ascii: "}") {
                        rstrip = i > 0 && src[i - 1] == UInt8(ascii: "-")
                        i += 2
                        break
                    }
                    if src[i] == 10 { line += 1 }
                    i += 1
                }
            } else {
                let (tokens, r) = try tokens(until: kind == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "%"),
                                             tagLine: tagLine)
                rstrip = r
                if kind == UInt8(ascii: "{") {
                    out.append(.output(tokens, line: tagLine))
                } else if tokens == [.name("raw")] {
                    try raw(&out, &rstrip, tagLine)
                } else {
                    out.append(.statement(tokens, line: tagLine))
                }
            }
            if rstrip {
                while i < src.count, Lexer.isSpace(src[i]) { if src[i] == 10 { line += 1 }; i += 1 }
            } else if trimBlocks, kind != UInt8(ascii: "{") {
                if i < src.count, src[i] == 10 { i += 1; line += 1 }
                else if i + 1 < src.count, src[i] == 13, src[i + 1] == 10 { i += 2; line += 1 }
            }
            textStart = i
        }
        flush()
        return out
    }

    /// `{% raw %}...{% endraw %}`: the text between, untouched.
    mutating func raw(_ out: inout [Segment], _ rstrip: inout Bool, _ tagLine: Int) throws {
        let start = i
        while i + 1 < src.count {
            if src[i] == UInt8(ascii: "{"), src[i + 1] == UInt8(ascii: "%") {
                var j = i + 2
                let strip = j < src.count && src[j] == UInt8(ascii: "-")
                if strip { j += 1 }
                while j < src.count, Lexer.isSpace(src[j]) { j += 1 }
                if src[j...].starts(with: Array("endraw".utf8)) {
                    var body = Array(src[start..<i])
                    if strip { while let l = body.last, Lexer.isSpace(l) { body.removeLast() } }
                    out.append(.text(String(decoding: body, as: UTF8.self)))
                    i = j
                    let (_, r) = try tokens(until: UInt8(ascii: "%"), tagLine: line)
                    rstrip = r
                    return
                }
            }
            if src[i] == 10 { line += 1 }
            i += 1
        }
        throw TemplateError(.syntax, line: tagLine, "unclosed {% raw %} block")
    }

    /// Tokens up to the closing `}}` or `%}` (`close` is its first byte) outside brackets and strings;
    /// returns whether the tag ended with `-`.
    mutating func tokens(until close: UInt8, tagLine: Int) throws -> ([Token], Bool) {
        var toks: [Token] = []
        var depth = 0
        let closeName = close == UInt8(ascii: "}") ? "}}" : "%}"
        while true {
            while i < src.count, Lexer.isSpace(src[i]) { if src[i] == 10 { line += 1 }; i += 1 }
            guard i < src.count else { throw TemplateError(.syntax, line: tagLine, "tag not closed with \(closeName)") }
            let c = src[i]
            if depth == 0, i + 1 < src.count, c == close, src[i + 1] == UInt8(ascii: "}") { i += 2; return (toks, false) }
            if depth == 0, c == UInt8(ascii: "-"), i + 2 < src.count, src[i + 1] == close, src[i + 2] == UInt8(ascii: "}") {
                i += 3
                return (toks, true)
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                toks.append(.string(try string(quote: c)))
            } else if (48...57).contains(c) {
                toks.append(number())
            } else if c == 95 || (65...90).contains(c) || (97...122).contains(c) {
                let s = i
                while i < src.count,
                      src[i] == 95 || (48...57).contains(src[i]) || (65...90).contains(src[i]) || (97...122).contains(src[i]) {
                    i += 1
                }
                toks.append(.name(String(decoding: src[s..<i], as: UTF8.self)))
            } else {
                let two = i + 1 < src.count ? String(decoding: src[i...i + 1], as: UTF8.self) : ""
                if ["**", "//", "==", "!=", "<=", ">="].contains(two) {
                    toks.append(.op(two))
                    i += 2
                } else if "+-*/%~<>=()[]{},.:|".utf8.contains(c) {
                    if c == UInt8(ascii: "(") || c == UInt8(ascii: "[") || c == UInt8(ascii: "{") { depth += 1 }
                    if c == UInt8(ascii: ")") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") { depth = max(0, depth - 1) }
                    toks.append(.op(String(UnicodeScalar(c))))
                    i += 1
                } else {
                    throw error("unexpected character '\(String(decoding: [c], as: UTF8.self))'")
                }
            }
        }
    }

    mutating func number() -> Token {
        let s = i
        var isFloat = false
        while i < src.count, (48...57).contains(src[i]) || src[i] == 95 { i += 1 }
        if i + 1 < src.count, src[i] == UInt8(ascii: "."), (48...57).contains(src[i + 1]) {
            isFloat = true
            i += 1
            while i < src.count, (48...57).contains(src[i]) { i += 1 }
        }
        if i < src.count, src[i] == UInt8(ascii: "e") || src[i] == UInt8(ascii: "E") {
            var j = i + 1
            if j < src.count, src[j] == UInt8(ascii: "+") || src[j] == UInt8(ascii: "-") { j += 1 }
            if j < src.count, (48...57).contains(src[j]) {
                isFloat = true
                i = j
                while i < src.count, (48...57).contains(src[i]) { i += 1 }
            }
        }
        let text = String(decoding: src[s..<i], as: UTF8.self).replacingOccurrences(of: "_", with: "")
        if isFloat { return .double(Double(text) ?? 0) }
        return Int(text).map { .int($0) } ?? .double(Double(text) ?? 0)
    }

    /// A quoted string with Python's escapes.
    mutating func string(quote: UInt8) throws -> String {
        let startLine = line
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < src.count else { throw TemplateError(.syntax, line: startLine, "unterminated string") }
            let c = src[i]
            if c == quote { i += 1; break }
            if c == 10 { line += 1 }
            if c == UInt8(ascii: "\\"), i + 1 < src.count {
                let e = src[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "r"): out.append(13)
                case UInt8(ascii: "0"): out.append(0)
                case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
                case UInt8(ascii: "u"), UInt8(ascii: "x"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "x") ? 2 : e == UInt8(ascii: "u") ? 4 : 8
                    guard i + n <= src.count, let v = UInt32(String(decoding: src[i..<i + n], as: UTF8.self), radix: 16),
                          let scalar = UnicodeScalar(v) else {
                        throw error("bad \\\(UnicodeScalar(e)) escape in a string")
                    }
                    out += Array(String(Character(scalar)).utf8)
                    i += n
                case 10: line += 1  // backslash-newline continues the string
                default: out += [UInt8(ascii: "\\"), e]
                }
                continue
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
