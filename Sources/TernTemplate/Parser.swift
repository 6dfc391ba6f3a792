/// Expressions, with Jinja2's precedence (lowest first): `a if c else b`, `or`, `and`, `not`,
/// comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary `- +`, then postfix `.x [i] (..)`,
/// filters `|f` and tests `is t`.
indirect enum Expr {
    case literal(Value)
    case name(String)
    case list([Expr])
    case dict([(Expr, Expr)])
    case attr(Expr, String)
    case item(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case not(Expr)
    case negate(Expr)
    case binary(String, Expr, Expr)
    case and(Expr, Expr)
    case or(Expr, Expr)
    case compare(Expr, [(String, Expr)])
    case conditional(Expr, Expr, Expr?)
}

/// Template statements; `line` is where each tag starts (for errors).
indirect enum Stmt {
    case text(String)
    case output(Expr, line: Int)
    case ifChain([(Expr, [Stmt])], otherwise: [Stmt], line: Int)
    case forLoop(targets: [String], iterable: Expr, condition: Expr?, body: [Stmt], otherwise: [Stmt], line: Int)
    case set(targets: [String], attribute: String?, Expr, line: Int)
    case setBlock(String, [Stmt], line: Int)
    case macro(name: String, params: [(String, Expr?)], body: [Stmt], line: Int)
    case loopBreak(line: Int), loopContinue(line: Int)
}

/// Parses segments into statements. Nesting deeper than `maxDepth` (blocks or expressions) is an
/// error rather than a stack overflow.
struct Parser {
    var segments: [Segment]
    var at = 0
    var depth = 0
    static let maxDepth = 200

    init(_ segments: [Segment]) { self.segments = segments }

    /// The whole template.
    mutating func parse() throws -> [Stmt] {
        let (body, end, line) = try block(until: [])
        if let end { throw TemplateError(.syntax, line: line, "unexpected {% \(end) %}") }
        return body
    }

    /// Statements up to one of the `until` tags (returned with its tokens' tail), or the end.
    mutating func block(until: Set<String>) throws -> (body: [Stmt], end: String?, line: Int) {
        depth += 1
        defer { depth -= 1 }
        guard depth < Parser.maxDepth else {
            throw TemplateError(.limit, line: 0, "blocks nested more than \(Parser.maxDepth) deep")
        }
        var out: [Stmt] = []
        while at < segments.count {
            let seg = segments[at]
            at += 1
            switch seg {
            case .text(let t): out.append(.text(t))
            case .output(let toks, let line):
                var e = ExprParser(toks, line: line)
                out.append(.output(try e.parseAll(), line: line))
            case .statement(let toks, let line):
                guard case .name(let kw)? = toks.first else {
                    throw TemplateError(.syntax, line: line, "empty or malformed {% %} tag")
                }
                if until.contains(kw) {
                    at -= 1
                    return (out, kw, line)
                }
                out.append(try statement(kw, Array(toks.dropFirst()), line))
            }
        }
        return (out, nil, 0)
    }

    /// Consumes the tag `block` stopped at, returning its tokens after the keyword.
    mutating func takeTag() -> [Token] {
        guard case .statement(let toks, _) = segments[at] else { return [] }
        at += 1
        return Array(toks.dropFirst())
    }

    mutating func statement(_ kw: String, _ rest: [Token], _ line: Int) throws -> Stmt {
        var e = ExprParser(rest, line: line)
        switch kw {
        case "if":
            var branches: [(Expr, [Stmt])] = []
            var cond = try e.parseAll()
            while true {
                let (body, end, endLine) = try block(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                guard let end else {
                    throw TemplateError(.syntax, line: line, "{% if %} is never closed with {% endif %}")
                }
                let tail = takeTag()
                switch end {
                case "elif":
                    var c = ExprParser(tail, line: endLine)
                    cond = try c.parseAll()
                case "else":
                    let (other, end2, _) = try block(until: ["endif"])
                    guard end2 != nil else {
                        throw TemplateError(.syntax, line: line, "{% if %} is never closed with {% endif %}")
                    }
                    _ = takeTag()
                    return .ifChain(branches, otherwise: other, line: line)
                default:
                    return .ifChain(branches, otherwise: [], line: line)
                }
            }
        case "for":
            var targets: [String] = []
            repeat { targets.append(try e.name()) } while e.skip(.op(","))
            try e.expect(.name("in"))
            let iterable = try e.parseOr()  // `if` after the iterable filters items, it is not a conditional
            let condition = e.skip(.name("if")) ? try e.parseOr() : nil
            try e.end()
            let (body, end, _) = try block(until: ["else", "endfor"])
            guard let end else {
                throw TemplateError(.syntax, line: line, "{% for %} is never closed with {% endfor %}")
            }
            _ = takeTag()
            var other: [Stmt] = []
            if end == "else" {
                (other, _, _) = try block(until: ["endfor"])
                guard at < segments.count else {
                    throw TemplateError(.syntax, line: line, "{% for %} is never closed with {% endfor %}")
                }
                _ = takeTag()
            }
            return .forLoop(targets: targets, iterable: iterable, condition: condition, body: body, otherwise: other, line: line)
        case "set":
            var targets = [try e.name()]
            var attribute: String?
            if e.skip(.op(".")) { attribute = try e.name() }
            while e.skip(.op(",")) { targets.append(try e.name()) }
            if e.atEnd, attribute == nil, targets.count == 1 {
                let (body, end, _) = try block(until: ["endset"])
                guard end != nil else {
                    throw TemplateError(.syntax, line: line, "{% set %} block is never closed with {% endset %}")
                }
                _ = takeTag()
                return .setBlock(targets[0], body, line: line)
            }
            try e.expect(.op("="))
            return .set(targets: targets, attribute: attribute, try e.parseAll(), line: line)
        case "macro":
            let name = try e.name()
            try e.expect(.op("("))
            var params: [(String, Expr?)] = []
            while !e.skip(.op(")")) {
                let p = try e.name()
                params.append((p, e.skip(.op("=")) ? try e.parseExpr() : nil))
                if !e.skip(.op(",")) { try e.expect(.op(")")); break }
            }
            try e.end()
            let (body, end, _) = try block(until: ["endmacro"])
            guard end != nil else {
                throw TemplateError(.syntax, line: line, "{% macro %} is never closed with {% endmacro %}")
            }
            _ = takeTag()
            return .macro(name: name, params: params, body: body, line: line)
        case "break": try e.end(); return .loopBreak(line: line)
        case "continue": try e.end(); return .loopContinue(line: line)
        case "elif", "else", "endif", "endfor", "endset", "endmacro":
            throw TemplateError(.syntax, line: line, "{% \(kw) %} without its opening tag")
        default:
            throw TemplateError(.unsupported, line: line, "the {% \(kw) %} statement is not supported")
        }
    }
}

/// Recursive descent over one tag's tokens.
struct ExprParser {
    let toks: [Token]
    var p = 0
    let line: Int
    var depth = 0

    init(_ toks: [Token], line: Int) {
        self.toks = toks
        self.line = line
    }

    var atEnd: Bool { p >= toks.count }

    /// One more level of the tree being built (a nested expression, or one more operand of a
    /// chain like a + b + c, which nests too): evaluation recurses as deep, so it is bounded.
    mutating func deeper() throws {
        depth += 1
        guard depth < Parser.maxDepth else {
            throw TemplateError(.limit, line: line, "expression nested more than \(Parser.maxDepth) deep")
        }
    }
    var peek: Token? { p < toks.count ? toks[p] : nil }
    func error(_ m: String) -> TemplateError { TemplateError(.syntax, line: line, m) }

    mutating func skip(_ t: Token) -> Bool {
        if peek == t { p += 1; return true }
        return false
    }

    mutating func expect(_ t: Token) throws {
        guard skip(t) else {
            throw error("expected \(ExprParser.show(t)), found \(peek.map(ExprParser.show) ?? "the end of the tag")")
        }
    }

    mutating func end() throws {
        if let t = peek { throw error("unexpected \(ExprParser.show(t))") }
    }

    mutating func name() throws -> String {
        guard case .name(let n)? = peek else {
            throw error("expected a name, found \(peek.map(ExprParser.show) ?? "the end of the tag")")
        }
        p += 1
        return n
    }

    static func show(_ t: Token) -> String {
        switch t {
        case .name(let n): "'\(n)'"
        case .string(let s): "string '\(s)'"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .op(let o): "'\(o)'"
        }
    }

    mutating func parseAll() throws -> Expr {
        let e = try parseExpr()
        try end()
        return e
    }

    /// A full expression; a bare comma list is a tuple (a list here).
    mutating func parseExpr() throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Parser.maxDepth else {
            throw TemplateError(.limit, line: line, "expression nested more than \(Parser.maxDepth) deep")
        }
        var e = try parseOr()
        while skip(.name("if")) {
            let cond = try parseOr()
            let other = skip(.name("else")) ? try parseExpr() : nil
            e = .conditional(e, cond, other)
        }
        return e
    }

    mutating func parseOr() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parseAnd()
        while skip(.name("or")) { try deeper(); e = .or(e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parseNot()
        while skip(.name("and")) { try deeper(); e = .and(e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws -> Expr {
        if skip(.name("not")) {
            depth += 1
            defer { depth -= 1 }
            guard depth < Parser.maxDepth else {
                throw TemplateError(.limit, line: line, "expression nested more than \(Parser.maxDepth) deep")
            }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        let first = try parseMath1()
        var ops: [(String, Expr)] = []
        while let t = peek {
            try deeper()
            if case .op(let o) = t, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                p += 1
                ops.append((o, try parseMath1()))
            } else if t == .name("in") {
                p += 1
                ops.append(("in", try parseMath1()))
            } else if t == .name("not"), p + 1 < toks.count, toks[p + 1] == .name("in") {
                p += 2
                ops.append(("not in", try parseMath1()))
            } else { break }
        }
        return ops.isEmpty ? first : .compare(first, ops)
    }

    mutating func parseMath1() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parseConcat()
        while case .op(let o)? = peek, o == "+" || o == "-" {
            try deeper()
            p += 1
            e = .binary(o, e, try parseConcat())
        }
        return e
    }

    mutating func parseConcat() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parseMath2()
        while skip(.op("~")) { try deeper(); e = .binary("~", e, try parseMath2()) }
        return e
    }

    mutating func parseMath2() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parsePow()
        while case .op(let o)? = peek, ["*", "/", "//", "%"].contains(o) {
            try deeper()
            p += 1
            e = .binary(o, e, try parsePow())
        }
        return e
    }

    mutating func parsePow() throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = try parseUnary()
        while skip(.op("**")) { try deeper(); e = .binary("**", e, try parseUnary()) }
        return e
    }

    mutating func parseUnary(withFilters: Bool = true) throws -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Parser.maxDepth else {
            throw TemplateError(.limit, line: line, "expression nested more than \(Parser.maxDepth) deep")
        }
        var e: Expr
        if skip(.op("-")) {
            e = .negate(try parseUnary(withFilters: false))
        } else if skip(.op("+")) {
            e = try parseUnary(withFilters: false)
        } else {
            e = try parsePrimary()
        }
        e = try parsePostfix(e)
        return withFilters ? try parseFilters(e) : e
    }

    mutating func parsePrimary() throws -> Expr {
        guard let t = peek else { throw error("expected an expression, found the end of the tag") }
        p += 1
        switch t {
        case .name("true"), .name("True"): return .literal(.bool(true))
        case .name("false"), .name("False"): return .literal(.bool(false))
        case .name("none"), .name("None"): return .literal(.none)
        case .name(let n): return .name(n)
        case .string(var s):
            while case .string(let more)? = peek { s += more; p += 1 }  // adjacent literals concatenate
            return .literal(.string(s))
        case .int(let i): return .literal(.int(i))
        case .double(let d): return .literal(.double(d))
        case .op("("):
            if skip(.op(")")) { return .list([]) }
            let e = try parseExpr()
            if skip(.op(",")) {
                var items = [e]
                while !skip(.op(")")) {
                    items.append(try parseExpr())
                    if !skip(.op(",")) { try expect(.op(")")); break }
                }
                return .list(items)
            }
            try expect(.op(")"))
            return e
        case .op("["):
            var items: [Expr] = []
            while !skip(.op("]")) {
                items.append(try parseExpr())
                if !skip(.op(",")) { try expect(.op("]")); break }
            }
            return .list(items)
        case .op("{"):
            var pairs: [(Expr, Expr)] = []
            while !skip(.op("}")) {
                let k = try parseExpr()
                try expect(.op(":"))
                pairs.append((k, try parseExpr()))
                if !skip(.op(",")) { try expect(.op("}")); break }
            }
            return .dict(pairs)
        default:
            throw error("unexpected \(ExprParser.show(t))")
        }
    }

    mutating func parsePostfix(_ base: Expr) throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = base
        while true {
            try deeper()
            if skip(.op(".")) {
                if case .int(let i)? = peek { p += 1; e = .item(e, .literal(.int(i))); continue }
                e = .attr(e, try name())
            } else if skip(.op("[")) {
                var parts: [Expr?] = [nil]
                var isSlice = false
                while !skip(.op("]")) {
                    if skip(.op(":")) { isSlice = true; parts.append(nil); continue }
                    parts[parts.count - 1] = try parseExpr()
                }
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                } else {
                    guard let i = parts[0] else { throw error("empty subscript []") }
                    e = .item(e, i)
                }
            } else if peek == .op("(") {
                e = try parseCall(e)
            } else {
                return e
            }
        }
    }

    mutating func parseArgs() throws -> ([Expr], [(String, Expr)]) {
        try expect(.op("("))
        var args: [Expr] = [], kwargs: [(String, Expr)] = []
        while !skip(.op(")")) {
            if case .name(let n)? = peek, p + 1 < toks.count, toks[p + 1] == .op("=") {
                p += 2
                kwargs.append((n, try parseExpr()))
            } else {
                args.append(try parseExpr())
            }
            if !skip(.op(",")) { try expect(.op(")")); break }
        }
        return (args, kwargs)
    }

    mutating func parseCall(_ callee: Expr) throws -> Expr {
        let (a, k) = try parseArgs()
        return .call(callee, a, k)
    }

    mutating func parseFilters(_ base: Expr) throws -> Expr {
        let saved = depth
        defer { depth = saved }
        var e = base
        while true {
            try deeper()
            if skip(.op("|")) {
                var n = try name()
                while skip(.op(".")) { n += "." + (try name()) }
                if peek == .op("(") {
                    let (a, k) = try parseArgs()
                    e = .filter(e, n, a, k)
                } else {
                    e = .filter(e, n, [], [])
                }
            } else if skip(.name("is")) {
                let negated = skip(.name("not"))
                let n = try name()
                var args: [Expr] = []
                if peek == .op("(") {
                    args = try parseArgs().0
                } else if let t = peek, ExprParser.startsPrimary(t) {
                    args = [try parseUnary(withFilters: false)]
                }
                e = .test(e, n, args, negated: negated)
            } else if peek == .op("(") {
                e = try parseCall(e)
            } else {
                return e
            }
        }
    }

    /// Whether a token can start a test's bare argument (`x is sameas false`, `x is divisibleby 3`).
    static func startsPrimary(_ t: Token) -> Bool {
        switch t {
        case .string, .int, .double: return true
        case .name(let n): return !["and", "or", "not", "in", "is", "if", "else"].contains(n)
        case .op(let o): return o == "(" || o == "[" || o == "{"
        }
    }
}
