import Foundation

/// An error from a builtin, given its line by the renderer.
struct BuiltinError: Error {
    let kind: TemplateError.Kind
    let message: String
    init(_ kind: TemplateError.Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    init(_ message: String) { self.init(.type, message) }
}

/// Globals, filters, tests, operators and methods, with Python's and Jinja2's behaviour.
enum Builtins {
    /// Where Python would need an integer wider than 64 bits.
    static func overflow(_ op: String) -> BuiltinError {
        BuiltinError(.limit, "the result of \(op) does not fit a 64-bit integer")
    }

    /// The items of Python's `range(lo, hi, step)` (step != 0), counted without overflow: the
    /// distance from the smaller bound to the larger is exact as a UInt where hi - lo overflows Int.
    /// `lo + k * step` for k below the count stays between the bounds, so it cannot overflow either.
    static func stepCount(_ lo: Int, _ hi: Int, _ step: Int) -> UInt {
        guard step > 0 ? hi > lo : hi < lo else { return 0 }
        return (UInt(bitPattern: step > 0 ? hi &- lo : lo &- hi) - 1) / step.magnitude + 1
    }

    /// `b` to the power `e` (e >= 0) by squaring, nil when it does not fit an Int.
    static func power(_ b: Int, _ e: Int) -> Int? {
        var result = 1, base = b, e = e
        while e > 0 {
            if e & 1 == 1 {
                let (r, o) = result.multipliedReportingOverflow(by: base)
                if o { return nil }
                result = r
            }
            e >>= 1
            if e > 0 {  // a square that overflows would be used, and |result| >= 1
                let (sq, o) = base.multipliedReportingOverflow(by: base)
                if o { return nil }
                base = sq
            }
        }
        return result
    }

    /// Built per render (a static table of closures would be a one-time allocation that leak
    /// checkers report).
    static var globals: [String: Value] { [
        "range": .function(.init(name: "range") { a, _ in
            let n = try a.map { v -> Int in
                guard let i = v.int else { throw BuiltinError("arguments must be integers") }
                return i
            }
            let (lo, hi, step) = n.count == 1 ? (0, n[0], 1)
                : n.count == 2 ? (n[0], n[1], 1)
                : n.count == 3 ? (n[0], n[1], n[2]) : (0, 0, 0)
            guard !n.isEmpty, n.count <= 3, step != 0 else {
                throw BuiltinError("expected 1 to 3 arguments and a nonzero step")
            }
            let count = stepCount(lo, hi, step)
            guard count <= UInt(Template.maxIterations) else {
                throw BuiltinError(.limit, "range of more than \(Template.maxIterations) items")
            }
            return .list((0..<Int(count)).map { .int(lo + $0 * step) })
        }),
        "namespace": .function(.init(name: "namespace") { a, k in
            var d = Value.Dict()
            if case .dict(let init0)? = a.first { for (key, v) in init0.items { d[key] = v } }
            for (key, v) in k { d[key] = v }
            return .namespace(Value.Namespace(d))
        }),
        "dict": .function(.init(name: "dict") { _, k in .dict(Value.Dict(k)) }),
        "raise_exception": .function(.init(name: "raise_exception") { a, _ in
            throw BuiltinError(.raised, a.first?.pythonString ?? "")
        }),
        "strftime_now": .function(.init(name: "strftime_now") { a, _ in
            guard case .string(let f)? = a.first else { throw BuiltinError("expects a format string") }
            return .string(strftime(f, Date()))
        }),
    ] }

    /// C strftime on the local time (what Python's `datetime.now().strftime` gives).
    static func strftime(_ format: String, _ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmv = tm()
        localtime_r(&t, &tmv)
        var buf = [CChar](repeating: 0, count: 256)
        let n = Foundation.strftime(&buf, buf.count, format, &tmv)
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func method(_ name: String, _ body: @escaping @Sendable ([Value], [(String, Value)]) throws -> Value) -> Value {
        .function(.init(name: name, call: body))
    }

    /// `obj.name`: a dict's item (then its methods), a namespace's attribute, a string's method.
    static func attribute(_ obj: Value, _ name: String, _ r: Renderer) throws -> Value {
        switch obj {
        case .undefined(let n): throw r.error(.type, "'\(n)' is undefined (reading its attribute '\(name)')")
        case .dict(let d):
            if let v = d[name] { return v }
            switch name {
            case "items": return method("items") { _, _ in .list(d.items.map { .list([.string($0.0), $0.1]) }) }
            case "keys": return method("keys") { _, _ in .list(d.keys.map { .string($0) }) }
            case "values": return method("values") { _, _ in .list(d.items.map { $0.1 }) }
            case "get": return method("get") { a, _ in
                guard case .string(let k)? = a.first else { return a.count > 1 ? a[1] : .none }
                return d[k] ?? (a.count > 1 ? a[1] : .none)
            }
            default: return .undefined(name)
            }
        case .namespace(let ns): return ns.values[name] ?? .undefined(name)
        case .string(let s): return stringMethod(s, name) ?? .undefined(name)
        default: return .undefined(name)
        }
    }

    static func stringMethod(_ s: String, _ name: String) -> Value? {
        @Sendable func chars(_ a: [Value]) -> Set<Character>? {
            if case .string(let c)? = a.first { return Set(c) }
            return nil
        }
        switch name {
        case "strip": return method(name) { a, _ in .string(pyStrip(s, chars(a), left: true, right: true)) }
        case "lstrip": return method(name) { a, _ in .string(pyStrip(s, chars(a), left: true, right: false)) }
        case "rstrip": return method(name) { a, _ in .string(pyStrip(s, chars(a), left: false, right: true)) }
        case "upper": return method(name) { _, _ in .string(s.uppercased()) }
        case "lower": return method(name) { _, _ in .string(s.lowercased()) }
        case "title": return method(name) { _, _ in .string(pyTitle(s)) }
        case "capitalize": return method(name) { _, _ in .string(s.prefix(1).uppercased() + s.dropFirst().lowercased()) }
        case "startswith", "endswith":
            return method(name) { a, _ in
                let options: [Value]
                switch a.first {
                case .string?: options = [a[0]]
                case .list(let l)?: options = l
                default: throw BuiltinError("expects a string or a tuple of strings")
                }
                return .bool(options.contains { o in
                    guard case .string(let p) = o else { return false }
                    return name == "startswith" ? s.hasPrefix(p) || p.isEmpty : s.hasSuffix(p) || p.isEmpty
                })
            }
        case "split":
            return method(name) { a, _ in
                let maxSplit = a.count > 1 ? a[1].int ?? -1 : -1
                if case .string(let sep)? = a.first {
                    guard !sep.isEmpty else { throw BuiltinError("empty separator") }
                    var parts = s.components(separatedBy: sep)
                    if maxSplit >= 0, parts.count > maxSplit + 1 {
                        parts = Array(parts[..<maxSplit]) + [parts[maxSplit...].joined(separator: sep)]
                    }
                    return .list(parts.map { .string($0) })
                }
                return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            }
        case "replace":
            return method(name) { a, _ in
                guard a.count >= 2, case .string(let old) = a[0], case .string(let new) = a[1] else {
                    throw BuiltinError("expects two strings")
                }
                return .string(try pyReplace(s, old, new, count: a.count > 2 ? a[2].int : nil))
            }
        case "join":
            return method(name) { a, _ in
                guard case .list(let l)? = a.first else { throw BuiltinError("expects a list") }
                return .string(l.map(\.pythonString).joined(separator: s))
            }
        default: return nil
        }
    }

    /// Python's `str.strip()`: whitespace, or the given characters.
    static func pyStrip(_ s: String, _ chars: Set<Character>?, left: Bool, right: Bool) -> String {
        let drop: (Character) -> Bool = { c in chars.map { $0.contains(c) } ?? c.isWhitespace }
        var sub = Substring(s)
        if left { sub = sub.drop(while: drop) }
        if right { while let l = sub.last, drop(l) { sub = sub.dropLast() } }
        return String(sub)
    }

    /// Python's `str.replace(old, new, count)`: the first `count` occurrences (all when nil or
    /// negative), left to right; an empty `old` matches before every code point and at the end.
    /// A result beyond the output limit is a limit error, found while it is built.
    static func pyReplace(_ s: String, _ old: String, _ new: String, count: Int?) throws -> String {
        let limit = count.flatMap { $0 < 0 ? nil : $0 } ?? Int.max
        var out = "", n = 0
        func insert() throws {
            out += new
            n += 1
            if out.utf8.count > Template.maxOutput {
                throw BuiltinError(.limit, "the result would exceed \(Template.maxOutput) bytes")
            }
        }
        if old.isEmpty {
            for c in s.unicodeScalars {
                if n < limit { try insert() }
                out.unicodeScalars.append(c)
            }
            if n < limit { try insert() }
            return out
        }
        var from = s.startIndex
        while n < limit, let r = s.range(of: old, options: .literal, range: from..<s.endIndex) {
            out += s[from..<r.lowerBound]
            try insert()
            from = r.upperBound
        }
        return out + s[from...]
    }

    /// Jinja2's `title` filter (not Python's `str.title`): a word begins only after whitespace or
    /// one of - ( { [ <, so "o'neil" becomes "O'neil".
    static func jinjaTitle(_ s: String) -> String {
        var out = "", atStart = true
        for c in s {
            let separator = c.isWhitespace || "-({[<".contains(c)
            out += atStart || separator ? c.uppercased() : c.lowercased()
            atStart = separator
        }
        return out
    }

    static func pyTitle(_ s: String) -> String {
        var out = "", prevCased = false
        for c in s {
            out += prevCased ? c.lowercased() : c.uppercased()
            prevCased = c.isLetter
        }
        return out
    }

    /// `obj[key]`: dict item, list/string index (negative from the end); missing is undefined.
    static func item(_ obj: Value, _ key: Value, _ r: Renderer) throws -> Value {
        switch (obj, key) {
        case (.undefined(let n), _): throw r.error(.type, "'\(n)' is undefined (reading an item of it)")
        case (.dict(let d), .string(let k)): return d[k] ?? .undefined(k)
        case (.namespace(let ns), .string(let k)): return ns.values[k] ?? .undefined(k)
        case (.list(let l), _):
            guard let i = key.int else { return .undefined("item") }
            let j = i < 0 ? l.count + i : i
            return l.indices.contains(j) ? l[j] : .undefined("item")
        case (.string(let s), _):
            guard let i = key.int else { return .undefined("item") }
            let chars = Array(s), j = i < 0 ? chars.count + i : i
            return chars.indices.contains(j) ? .string(String(chars[j])) : .undefined("item")
        case (_, .string(let k)): return try attribute(obj, k, r)
        default: return .undefined("item")
        }
    }

    /// `obj[a:b:c]` on lists and strings, with Python's clamping.
    static func slice(_ obj: Value, _ a: Value?, _ b: Value?, _ c: Value?, _ r: Renderer) throws -> Value {
        func indices(_ n: Int) throws -> [Int] {
            let step = c?.int ?? 1
            guard step != 0 else { throw r.error(.type, "slice step cannot be zero") }
            func norm(_ v: Value?, _ def: Int) -> Int {
                guard let i = v?.int else { return def }
                let j = i < 0 ? i + n : i
                return step > 0 ? min(max(j, 0), n) : min(max(j, -1), n - 1)
            }
            let lo = norm(a, step > 0 ? 0 : n - 1), hi = norm(b, step > 0 ? n : -1)
            // From the count, not by striding: a step near Int.max would overflow stepping past hi.
            return (0..<Int(stepCount(lo, hi, step))).map { lo + $0 * step }
        }
        switch obj {
        case .list(let l): return .list(try indices(l.count).map { l[$0] })
        case .string(let s):
            let chars = Array(s)
            return .string(String(try indices(chars.count).map { chars[$0] }))
        default: throw r.error(.type, "'\(obj.typeName)' object is not subscriptable")
        }
    }

    static func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        func checked(_ x: String, _ y: String) throws -> Value {
            guard x.utf8.count + y.utf8.count <= Template.maxOutput else {
                throw BuiltinError(.limit, "a string longer than \(Template.maxOutput) bytes")
            }
            return .string(x + y)
        }
        if op == "~" { return try checked(a.pythonString, b.pythonString) }
        switch (op, a, b) {
        case ("+", .string(let x), .string(let y)): return try checked(x, y)
        case ("+", .list(let x), .list(let y)):
            guard x.count + y.count <= Template.maxIterations else {
                throw BuiltinError(.limit, "a list longer than \(Template.maxIterations) items")
            }
            return .list(x + y)
        case ("*", .string(let x), _) where b.int != nil:
            guard x.utf8.count.multipliedReportingOverflow(by: max(0, b.int!)).partialValue <= Template.maxOutput,
                  b.int! <= Template.maxOutput else {
                throw BuiltinError(.limit, "a string repeated \(b.int!) times exceeds \(Template.maxOutput) bytes")
            }
            return .string(String(repeating: x, count: max(0, b.int!)))
        case ("*", .list(let x), _) where b.int != nil:
            guard x.count.multipliedReportingOverflow(by: max(0, b.int!)).partialValue <= Template.maxIterations,
                  b.int! <= Template.maxIterations else {
                throw BuiltinError(.limit, "a list repeated \(b.int!) times exceeds \(Template.maxIterations) items")
            }
            return .list(Array(repeatElement(x, count: max(0, b.int!)).joined()))
        default: break
        }
        guard let x = a.number, let y = b.number else {
            throw BuiltinError("unsupported operand types for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        if let i = a.int, let j = b.int, case .int = a.isBoolOrInt, case .int = b.isBoolOrInt {
            switch op {
            // Python's integers do not overflow; Tern's are 64-bit, and a result that does not
            // fit is an error rather than a wrapped number.
            case "+", "-", "*":
                let (r, o) = op == "+" ? i.addingReportingOverflow(j) : op == "-" ? i.subtractingReportingOverflow(j)
                    : i.multipliedReportingOverflow(by: j)
                guard !o else { throw Self.overflow(op) }
                return .int(r)
            case "//":  // Python's floor division
                guard j != 0 else { throw BuiltinError("integer division by zero") }
                let (q, overflow) = i.dividedReportingOverflow(by: j)
                guard !overflow else { throw Self.overflow("//") }
                return .int(i % j != 0 && (i < 0) != (j < 0) ? q - 1 : q)
            case "%":  // Python's: the sign of the divisor
                guard j != 0 else { throw BuiltinError("integer modulo by zero") }
                let r = i.remainderReportingOverflow(dividingBy: j).partialValue  // Int.min % -1 is 0
                return .int(r != 0 && (r < 0) != (j < 0) ? r + j : r)
            case "**" where j >= 0:
                guard let p = Self.power(i, j) else { throw Self.overflow("**") }
                return .int(p)
            default: break
            }
        }
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw BuiltinError("division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw BuiltinError("division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw BuiltinError("modulo by zero") }
            return .double(x - y * (x / y).rounded(.down))
        case "**": return .double(pow(x, y))
        default: throw BuiltinError(.unsupported, "operator \(op)")
        }
    }

    static func compare(_ op: String, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "in", "not in":
            let found: Bool
            switch b {
            case .string(let s):
                guard case .string(let x) = a else {
                    throw BuiltinError("'in <string>' requires a string on the left, not '\(a.typeName)'")
                }
                found = x.isEmpty || s.contains(x)
            case .list(let l): found = l.contains { $0.equals(a) }
            case .dict(let d): if case .string(let k) = a { found = d[k] != nil } else { found = false }
            case .undefined: found = false
            default: throw BuiltinError("argument of type '\(b.typeName)' is not iterable")
            }
            return op == "in" ? found : !found
        default:
            let ord: Bool
            if case .string(let x) = a, case .string(let y) = b {
                ord = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else if let x = a.number, let y = b.number {
                ord = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else {
                throw BuiltinError("'\(op)' not supported between '\(a.typeName)' and '\(b.typeName)'")
            }
            return ord
        }
    }
}

extension Value {
    /// int for ints (bools included, as in Python arithmetic), else self.
    var isBoolOrInt: Value {
        switch self {
        case .int, .bool: return .int(0)
        default: return self
        }
    }
}
