import Foundation

extension Builtins {
    static func kwarg(_ k: [(String, Value)], _ name: String) -> Value? { k.first { $0.0 == name }?.1 }

    /// The key Jinja2's unique, min, max and dictsort compare: an attribute of the item if given,
    /// lowercased when a string and not case-sensitive.
    static func sortKey(caseSensitive: Bool, attribute attr: Value?, _ r: Renderer) -> (Value) throws -> Value {
        { x in
            let y = try attr.map { try attribute(x, $0.pythonString, r) } ?? x
            if !caseSensitive, case .string(let s) = y { return .string(s.lowercased()) }
            return y
        }
    }

    /// `items` sorted by key, equal keys in their first order (Python's sorted is stable, also
    /// with reverse=True).
    static func stableSorted<T>(_ items: [(key: Value, item: T)], reverse: Bool) throws -> [(key: Value, item: T)] {
        var indexed = Array(items.enumerated())
        var failure: Error?
        indexed.sort { a, b in
            do {
                if try compare("<", a.element.key, b.element.key) { return !reverse }
                if try compare("<", b.element.key, a.element.key) { return reverse }
            } catch { failure = failure ?? error }
            return a.offset < b.offset
        }
        if let failure { throw failure }
        return indexed.map(\.element)
    }

    /// Python's `int(s, base)` for base 0 or 2...36: optional sign, the base's prefix (0b, 0o, 0x;
    /// base 0 reads it to pick the base), digits with single underscores between them; nil if not one.
    static func pyInt(_ s: String, base: Int) -> Int? {
        guard base == 0 || (2...36).contains(base) else { return nil }
        var t = Substring(s), negative = false
        if let c = t.first, c == "+" || c == "-" { negative = c == "-"; t = t.dropFirst() }
        var b = base
        let prefixes: [(String, Int)] = [("0b", 2), ("0o", 8), ("0x", 16)]
        if let (_, pb) = prefixes.first(where: { t.lowercased().hasPrefix($0.0) }), base == 0 || base == pb,
           t.count > 2 {
            b = pb
            t = t.dropFirst(2)
            if t.first == "_" { t = t.dropFirst() }  // Python allows 0x_1f
        } else if base == 0 {
            b = 10
            // Python reads no leading zeros in base 0 ("010" is an error, "00" zero).
            if t.count > 1, t.first == "0", t.contains(where: { $0 != "0" && $0 != "_" }) { return nil }
        }
        guard !t.isEmpty, t.first != "_", t.last != "_", !t.contains("__") else { return nil }
        guard let magnitude = UInt(t.replacingOccurrences(of: "_", with: ""), radix: b) else { return nil }
        return negative ? (magnitude <= UInt(Int.max) + 1 ? Int(truncatingIfNeeded: 0 &- magnitude) : nil)
                        : (magnitude <= UInt(Int.max) ? Int(magnitude) : nil)
    }

    /// Python's `str.splitlines()`: lines without their breaks (\n, \r, \r\n, \v, \f, \x1c-\x1e,
    /// \x85, \u2028, \u2029); a break at the very end starts no new line.
    static func pySplitLines(_ s: String) -> [String] {
        var lines: [String] = [], cur = String.UnicodeScalarView(), pendingCR = false
        for u in s.unicodeScalars {
            if pendingCR {
                pendingCR = false
                if u == "\n" { continue }
            }
            switch u.value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(String(cur))
                cur = String.UnicodeScalarView()
                pendingCR = u == "\r"
            default: cur.append(u)
            }
        }
        if !cur.isEmpty { lines.append(String(cur)) }
        return lines
    }

    /// Jinja2's `round(precision, method)`. "common" is Python's `round(value, precision)`: ties to
    /// even on the value's exact binary expansion, an int staying an int; "floor" and "ceil" are
    /// `math.floor/ceil(value * 10 ** precision) / 10 ** precision`, always a float.
    static func round(_ v: Value, _ places: Int, method: String) throws -> Value {
        guard method == "common" || method == "floor" || method == "ceil" else {
            throw BuiltinError("round method must be common, ceil or floor, got '\(method)'")
        }
        guard let x = v.number else { throw BuiltinError("round expects a number, got \(v.typeName)") }
        // 10 ** p as the nearest double (as Python converts it), exact up to 1e22.
        func tenTo(_ p: Int) -> Double { Double("1e\(p)")! }
        if method != "common" {
            guard places <= 308 else { throw BuiltinError(.limit, "round: 10 ** \(places) is too large for a float") }
            let m = tenTo(places), scaled = x * m
            guard m > 0 else { throw BuiltinError("round: float division by zero (10 ** \(places) is 0.0)") }
            guard scaled.isFinite else {
                throw BuiltinError(.limit, "round: cannot round \(Value.double(scaled).pythonString)")
            }
            // Python's floor/ceil give an int, so a negative zero loses its sign.
            return .double((scaled.rounded(method == "floor" ? .down : .up) + 0) / m)
        }
        if let i = v.int {
            guard places < 0 else { return .int(i) }
            // A multiple of 10 ** -places, ties to the even multiple; 0 once that exceeds every Int.
            // (places is compared, never negated: it may be Int.min.)
            guard places >= -18, let q = power(10, -places) else { return .int(0) }
            let r = ((i % q) + q) % q
            let (base, below) = i.subtractingReportingOverflow(r)
            let up = 2 * r > q || (2 * r == q && (base / q) % 2 != 0)
            let (result, above) = up ? base.addingReportingOverflow(q) : (base, false)
            if below || above { throw overflow("round") }
            return .int(result)
        }
        guard x.isFinite, places <= 323 else { return .double(x) }
        if places >= 0 {
            // printf rounds the exact binary value, ties to even, as Python's round does (dtoa).
            return .double(Double(String(format: "%.*f", Int32(places), x)) ?? x)
        }
        guard places >= -308 else { return .double(0 * x) }
        let m = tenTo(-places)
        return .double((x / m).rounded(.toNearestOrEven) * m)
    }

    /// `value | name(args)`.
    static func filter(_ name: String, _ v: Value, _ a: [Value], _ k: [(String, Value)], _ r: Renderer) throws -> Value {
        func arg(_ i: Int, _ key: String) -> Value? { i < a.count ? a[i] : kwarg(k, key) }
        switch name {
        case "trim":
            let chars: Set<Character>? = { if case .string(let c)? = arg(0, "chars") { return Set(c) }; return nil }()
            return .string(pyStrip(v.pythonString, chars, left: true, right: true))
        case "upper": return .string(v.pythonString.uppercased())
        case "lower": return .string(v.pythonString.lowercased())
        case "capitalize":
            let s = v.pythonString
            return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(jinjaTitle(v.pythonString))
        case "string": return .string(v.pythonString)
        case "safe": return v
        case "escape", "e":
            var s = ""
            for c in v.pythonString {
                switch c {
                case "&": s += "&amp;"
                case "<": s += "&lt;"
                case ">": s += "&gt;"
                case "\"": s += "&#34;"
                case "'": s += "&#39;"
                default: s.append(c)
                }
            }
            return .string(s)
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.keys.count)
            case .undefined: return .int(0)
            default: throw BuiltinError("object of type '\(v.typeName)' has no len()")
            }
        case "first", "last":
            let items = try r.iterate(v)
            return (name == "first" ? items.first : items.last) ?? .undefined(name)
        case "list": return .list(try r.iterate(v))
        case "reverse":
            if case .string(let s) = v { return .string(String(s.reversed())) }
            return .list(try r.iterate(v).reversed())
        case "unique":
            // By default strings count as equal whatever their case; the first one is kept.
            let caseSensitive = arg(0, "case_sensitive")?.isTruthy ?? false
            let key = sortKey(caseSensitive: caseSensitive, attribute: arg(1, "attribute"), r)
            var out: [Value] = [], seen: [Value] = []
            for x in try r.iterate(v) {
                let kx = try key(x)
                if !seen.contains(where: { $0.equals(kx) }) { seen.append(kx); out.append(x) }
            }
            return .list(out)
        case "join":
            let sep = arg(0, "d")?.pythonString ?? ""
            var items = try r.iterate(v)
            if case .string(let attr)? = arg(1, "attribute") { items = try items.map { try attribute($0, attr, r) } }
            return .string(items.map(\.pythonString).joined(separator: sep))
        case "default", "d":
            let fallback = arg(0, "default_value") ?? .string("")
            let boolean = arg(1, "boolean")?.isTruthy ?? false
            return v.isUndefined || (boolean && !v.isTruthy) ? fallback : v
        case "items":
            switch v {
            case .dict(let d): return .list(d.items.map { .list([.string($0.0), $0.1]) })
            case .undefined: return .list([])
            default: throw BuiltinError("expects a mapping, got '\(v.typeName)'")
            }
        case "int":
            switch v {
            case .int, .bool: return .int(v.int!)
            // NaN, infinities and values beyond 64 bits give the default (Jinja2's for what
            // Python's int() rejects).
            case .double(let d):
                return Int(exactly: d.rounded(.towardZero)).map { .int($0) } ?? arg(0, "default") ?? .int(0)
            case .string(let s):
                // Python's int(s, base), then int(float(s)), then the default.
                let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
                let n = pyInt(t, base: arg(1, "base")?.int ?? 10)
                    ?? Double(t).flatMap { Int(exactly: $0.rounded(.towardZero)) }
                return n.map { .int($0) } ?? arg(0, "default") ?? .int(0)
            default: return arg(0, "default") ?? .int(0)
            }
        case "float":
            if let n = v.number { return .double(n) }
            if case .string(let s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return arg(0, "default") ?? .double(0)
        case "abs":
            switch v {
            case .int(let i):
                guard i != .min else { throw Builtins.overflow("abs") }
                return .int(abs(i))
            case .double(let d): return .double(abs(d))
            default: throw BuiltinError("bad operand type for abs(): '\(v.typeName)'")
            }
        case "round":
            let precision = arg(0, "precision") ?? .int(0)
            guard let places = precision.int else {
                throw BuiltinError("round precision must be an integer, got \(precision.typeName)")
            }
            return try round(v, places, method: arg(1, "method")?.pythonString ?? "common")
        case "replace":
            guard a.count >= 2 else { throw BuiltinError("expects old and new strings") }
            let count = arg(2, "count")
            return .string(try pyReplace(v.pythonString, a[0].pythonString, a[1].pythonString, count: count?.int))
        case "indent":
            // Jinja2's do_indent: the width is spaces (a negative one pads nothing, as Python's
            // ' ' * -1) or a string; lines are Python's splitlines of the text plus a newline;
            // blank lines are padded only with blank=true.
            let w = arg(0, "width") ?? .int(4), first = arg(1, "first")?.isTruthy ?? false
            let blank = arg(2, "blank")?.isTruthy ?? false
            let lines = pySplitLines(v.pythonString + "\n")
            let padBytes = w.int.map { max(0, $0) } ?? w.pythonString.utf8.count
            let (padding, overflow) = padBytes.multipliedReportingOverflow(by: lines.count + 1)
            guard !overflow, padding <= Template.maxOutput else {
                throw BuiltinError(.limit, "indenting by \(padBytes) would exceed \(Template.maxOutput) bytes")
            }
            let pad = w.int != nil ? String(repeating: " ", count: padBytes) : w.pythonString
            let body = lines.enumerated().map { i, l in i == 0 || (l.isEmpty && !blank) ? l : pad + l }
            return .string((first ? pad : "") + body.joined(separator: "\n"))
        case "tojson":
            var out = ""
            // A negative indent is newlines without spaces, as Python's json.dumps.
            let indent = arg(0, "indent")?.int.map { max(0, $0) }
            try json(v, indent: indent, level: 0, sortKeys: kwarg(k, "sort_keys")?.isTruthy ?? false, into: &out)
            return .string(out)
        case "selectattr", "rejectattr", "select", "reject":
            let byAttr = name.hasSuffix("attr")
            var rest = a
            var attr: String?
            if byAttr {
                guard case .string(let s)? = rest.first else { throw BuiltinError("expects an attribute name") }
                attr = s
                rest.removeFirst()
            }
            let testName = rest.first.map(\.pythonString)
            let testArgs = Array(rest.dropFirst())
            return .list(try r.iterate(v).filter { x in
                let subject = try attr.map { try attribute(x, $0, r) } ?? x
                let ok = try testName.map { try test($0, subject, testArgs) } ?? subject.isTruthy
                return ok == name.hasPrefix("select")
            })
        case "map":
            if case .string(let attr)? = kwarg(k, "attribute") {
                let def = kwarg(k, "default")
                return .list(try r.iterate(v).map { x in
                    let y = try attribute(x, attr, r)
                    return y.isUndefined ? def ?? y : y
                })
            }
            guard case .string(let f)? = a.first else { throw BuiltinError("expects a filter name or attribute=") }
            return .list(try r.iterate(v).map { try filter(f, $0, Array(a.dropFirst()), [], r) })
        case "sum":
            var total = arg(1, "start") ?? .int(0)
            let attr = arg(0, "attribute")
            for x in try r.iterate(v) {
                total = try binary("+", total, try attr.map { try attribute(x, $0.pythonString, r) } ?? x)
            }
            return total
        case "min", "max":
            // The first smallest (largest) item by its key: strings without case by default.
            let caseSensitive = arg(0, "case_sensitive")?.isTruthy ?? false
            let key = sortKey(caseSensitive: caseSensitive, attribute: arg(1, "attribute"), r)
            let items = try r.iterate(v)
            guard var best = items.first else { return .undefined(name) }
            var bestKey = try key(best)
            for x in items.dropFirst() {
                let kx = try key(x)
                if try compare(name == "min" ? "<" : ">", kx, bestKey) { best = x; bestKey = kx }
            }
            return best
        case "dictsort":
            guard case .dict(let d) = v else { throw BuiltinError("expects a mapping") }
            let byValue: Bool
            switch arg(1, "by")?.pythonString ?? "key" {
            case "key": byValue = false
            case "value": byValue = true
            default: throw BuiltinError("You can only sort by either 'key' or 'value'")
            }
            let key = sortKey(caseSensitive: arg(0, "case_sensitive")?.isTruthy ?? false, attribute: nil, r)
            var pairs: [(key: Value, item: Value)] = []
            for (k, x) in d.items { pairs.append((try key(byValue ? x : .string(k)), .list([.string(k), x]))) }
            let reverse = arg(2, "reverse")?.isTruthy ?? false
            return .list(try stableSorted(pairs, reverse: reverse).map(\.item))
        case "wordcount":
            // Runs of word characters (Python's \w: letters, digits, underscore).
            var n = 0, inWord = false
            for c in v.pythonString {
                let w = c.isLetter || c.isNumber || c == "_"
                if w && !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        default:
            throw BuiltinError(.unsupported, "not supported by this interpreter")
        }
    }

    /// `value is name(args)`.
    static func test(_ name: String, _ v: Value, _ a: [Value]) throws -> Bool {
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": if case .none = v { return true }; return false
        case "string": if case .string = v { return true }; return false
        case "number": return v.number != nil
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "mapping": if case .dict = v { return true }; return false
        case "sequence":
            switch v { case .list, .string, .dict: return true; default: return false }
        case "iterable":
            switch v { case .list, .string, .dict: return true; default: return false }
        case "callable": if case .function = v { return true }; return false
        case "odd", "even":
            guard let i = v.int else { throw BuiltinError("expects an integer") }
            return (i % 2 != 0) == (name == "odd")
        case "divisibleby":
            guard let i = v.int, let j = a.first?.int, j != 0 else { throw BuiltinError("expects integers") }
            return i.remainderReportingOverflow(dividingBy: j).partialValue == 0  // Int.min % -1 is 0
        case "equalto", "eq", "==": return v.equals(a.first ?? .none)
        case "ne", "!=": return !v.equals(a.first ?? .none)
        case "lt", "<", "gt", ">", "le", "<=", "ge", ">=":
            let op = ["lt": "<", "gt": ">", "le": "<=", "ge": ">="][name] ?? name
            return try compare(op, v, a.first ?? .none)
        case "in": return try compare("in", v, a.first ?? .list([]))
        case "sameas":
            switch (v, a.first ?? .none) {
            case (.none, .none): return true
            case (.bool(let x), .bool(let y)): return x == y
            default: return false
            }
        case "lower": if case .string(let s) = v { return s == s.lowercased() }; return false
        case "upper": if case .string(let s) = v { return s == s.uppercased() }; return false
        default: throw BuiltinError(.unsupported, "not supported by this interpreter")
        }
    }

    /// `json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=...)` as Hugging Face's `tojson`
    /// calls it: separators ", " and ": " without indent, "," and ": " with it.
    static func json(_ v: Value, indent: Int?, level: Int, sortKeys: Bool, into out: inout String) throws {
        func newline(_ l: Int) throws {
            guard let indent else { return }
            let (n, o) = indent.multipliedReportingOverflow(by: l)
            guard !o, n <= Template.maxOutput - out.utf8.count else {
                throw BuiltinError(.limit, "tojson's indent would exceed \(Template.maxOutput) bytes")
            }
            out += "\n" + String(repeating: " ", count: n)
        }
        let sep = indent == nil ? ", " : ","
        switch v {
        case .none, .undefined: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            out += d.isNaN ? "NaN" : d.isInfinite ? (d > 0 ? "Infinity" : "-Infinity") : Value.pythonFloat(d)
        case .string(let s): jsonString(s, into: &out)
        case .list(let l):
            if l.isEmpty { out += "[]"; return }
            out += "["
            for (i, x) in l.enumerated() {
                if i > 0 { out += sep }
                try newline(level + 1)
                try json(x, indent: indent, level: level + 1, sortKeys: sortKeys, into: &out)
            }
            try newline(level)
            out += "]"
        case .dict(let d):
            if d.keys.isEmpty { out += "{}"; return }
            out += "{"
            let keys = sortKeys ? d.keys.sorted() : d.keys
            for (i, k) in keys.enumerated() {
                if i > 0 { out += sep }
                try newline(level + 1)
                jsonString(k, into: &out)
                out += ": "
                try json(d[k]!, indent: indent, level: level + 1, sortKeys: sortKeys, into: &out)
            }
            try newline(level)
            out += "}"
        case .namespace, .function: throw BuiltinError("Object of type \(v.typeName) is not JSON serializable")
        }
    }

    /// `s` as a JSON string literal with json.dumps' escapes (non-ASCII kept), appended to `out`.
    static func jsonString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

/// `s` as a JSON string literal, escaped as `tojson` escapes it (for display, e.g. `tern inspect`).
public func jsonQuoted(_ s: String) -> String {
    var out = ""
    Builtins.jsonString(s, into: &out)
    return out
}
