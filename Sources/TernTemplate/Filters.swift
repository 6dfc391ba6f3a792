import Foundation

extension Builtins {
    static func kwarg(_ k: [(String, Value)], _ name: String) -> Value? { k.first { $0.0 == name }?.1 }

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
            guard scaled.isFinite else { throw BuiltinError(.limit, "round: cannot round \(Value.double(scaled).pythonString)") }
            // Python's floor/ceil give an int, so a negative zero loses its sign.
            return .double((scaled.rounded(method == "floor" ? .down : .up) + 0) / m)
        }
        if let i = v.int {
            guard places < 0 else { return .int(i) }
            // A multiple of 10 ** -places, ties to the even multiple; 0 once that exceeds every Int.
            guard -places <= 18, let q = power(10, -places) else { return .int(0) }
            let r = ((i % q) + q) % q, base = i - r
            let up = 2 * r > q || (2 * r == q && (base / q) % 2 != 0)
            guard up else { return .int(base) }
            let (sum, over) = base.addingReportingOverflow(q)
            if over { throw overflow("round") }
            return .int(sum)
        }
        guard x.isFinite, places <= 323 else { return .double(x) }
        if places >= 0 {
            // printf rounds the exact binary value, ties to even, as Python's round does (dtoa).
            return .double(Double(String(format: "%.*f", places, x)) ?? x)
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
        case "title": return .string(pyTitle(v.pythonString))
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
            var seen: [Value] = []
            for x in try r.iterate(v) where !seen.contains(where: { $0.equals(x) }) { seen.append(x) }
            return .list(seen)
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
                let t = s.trimmingCharacters(in: .whitespaces)
                let n = Int(t) ?? Double(t).flatMap { Int(exactly: $0.rounded(.towardZero)) }
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
            guard let places = precision.int else { throw BuiltinError("round precision must be an integer, got \(precision.typeName)") }
            return try round(v, places, method: arg(1, "method")?.pythonString ?? "common")
        case "replace":
            guard a.count >= 2 else { throw BuiltinError("expects old and new strings") }
            let s = v.pythonString, old = a[0].pythonString, new = a[1].pythonString
            guard s.utf8.count.multipliedReportingOverflow(by: max(1, new.utf8.count)).partialValue <= Template.maxOutput || old.isEmpty == false && !s.contains(old) else {
                throw BuiltinError(.limit, "the result could exceed \(Template.maxOutput) bytes")
            }
            return .string(old.isEmpty ? s : s.replacingOccurrences(of: old, with: new))
        case "indent":
            // A negative width pads nothing (Python's ' ' * -1); a huge one is a limit error.
            let width = max(0, arg(0, "width")?.int ?? 4), first = arg(1, "first")?.isTruthy ?? false
            let lines = v.pythonString.components(separatedBy: "\n")
            let (padding, overflow) = width.multipliedReportingOverflow(by: lines.count)
            guard !overflow, padding <= Template.maxOutput else {
                throw BuiltinError(.limit, "indenting by \(width) would exceed \(Template.maxOutput) bytes")
            }
            let pad = String(repeating: " ", count: width)
            return .string(lines.enumerated().map { i, l in (i == 0 && !first) || l.isEmpty ? l : pad + l }.joined(separator: "\n"))
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
            var total: Value = .int(0)
            for x in try r.iterate(v) { total = try binary("+", total, x) }
            return total
        case "min", "max":
            let items = try r.iterate(v)
            guard var best = items.first else { return .undefined(name) }
            for x in items.dropFirst() where try compare(name == "min" ? "<" : ">", x, best) { best = x }
            return best
        case "dictsort":
            guard case .dict(let d) = v else { throw BuiltinError("expects a mapping") }
            return .list(d.items.sorted { $0.0.lowercased() < $1.0.lowercased() }.map { .list([.string($0.0), $0.1]) })
        case "wordcount": return .int(v.pythonString.split(whereSeparator: { $0.isWhitespace }).count)
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
