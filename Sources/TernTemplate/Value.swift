import Foundation

/// A template value, with Python's semantics as Jinja2 gives them (truthiness, `str()`, equality).
public indirect enum Value: Sendable {
    case undefined(String)          // the name or attribute that was missing
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case dict(Dict)
    case namespace(Namespace)
    case function(Function)

    /// A dictionary that keeps insertion order, as Python's does.
    public struct Dict: Sendable {
        public private(set) var keys: [String] = []
        public private(set) var storage: [String: Value] = [:]
        public init() {}
        public init(_ pairs: [(String, Value)]) { for (k, v) in pairs { self[k] = v } }
        public subscript(key: String) -> Value? {
            get { storage[key] }
            set {
                if storage[key] == nil, newValue != nil { keys.append(key) }
                if newValue == nil { keys.removeAll { $0 == key } }
                storage[key] = newValue
            }
        }
        public var items: [(String, Value)] { keys.map { ($0, storage[$0]!) } }
    }

    /// `namespace()`: the one mutable object templates have (`{% set ns.x = ... %}` inside loops).
    public final class Namespace: @unchecked Sendable {
        var values = Dict()
        init(_ d: Dict) { values = d }
    }

    /// A callable: a global (`range`, `raise_exception`), or a bound method (`s.strip`).
    public struct Function: Sendable {
        let name: String
        let call: @Sendable ([Value], [(String, Value)]) throws -> Value
    }

    /// Python truthiness.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.keys.isEmpty
        case .namespace, .function: true
        }
    }

    public var isUndefined: Bool { if case .undefined = self { return true }; return false }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .list: "list"
        case .dict: "dict"
        case .namespace: "Namespace"
        case .function: "function"
        }
    }

    /// `str(value)` as Python prints it (what `{{ value }}` outputs).
    public var pythonString: String {
        switch self {
        case .undefined: ""
        case .string(let s): s
        default: pythonRepr
        }
    }

    /// `repr(value)`: lists and dicts print their items this way.
    var pythonRepr: String {
        switch self {
        case .undefined: ""
        case .none: "None"
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): Value.pythonFloat(d)
        case .string(let s): Value.pythonQuoted(s)
        case .list(let l): "[" + l.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.items.map { Value.pythonQuoted($0.0) + ": " + $0.1.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let n): "<Namespace " + Value.dict(n.values).pythonRepr + ">"
        case .function(let f): "<function \(f.name)>"
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    /// Python's string repr: single quotes unless the text has one and no double quote.
    static func pythonQuoted(_ s: String) -> String {
        let q: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(q)
        for ch in s.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where Character(ch) == q: out += "\\" + String(q)
            case _ where ch.value < 0x20 || ch.value == 0x7F: out += String(format: "\\x%02x", ch.value)
            default: out.unicodeScalars.append(ch)
            }
        }
        out.append(q)
        return out
    }

    /// Python `==` (1 == 1.0 == True; undefined equals only undefined).
    public func equals(_ o: Value) -> Bool {
        switch (self, o) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a == b
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.keys.count == b.keys.count && a.items.allSatisfy { k, v in b[k].map { v.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        default:
            if let x = number, let y = o.number { return x == y }
            return false
        }
    }

    /// Whether `target` can be reached from this value (is it, or is inside one of its lists,
    /// dicts or namespaces). `{% set ns.x = v %}` refuses a `v` that reaches `ns`: the namespace
    /// would contain itself, and printing or freeing it would never end.
    func reaches(_ target: Namespace) -> Bool {
        var seen = Set<ObjectIdentifier>()
        func walk(_ v: Value) -> Bool {
            switch v {
            case .list(let l): return l.contains(where: walk)
            case .dict(let d): return d.storage.values.contains(where: walk)
            case .namespace(let n):
                if n === target { return true }
                return seen.insert(ObjectIdentifier(n)).inserted && n.values.storage.values.contains(where: walk)
            default: return false
            }
        }
        return walk(self)
    }

    /// Numeric value (bools count, as in Python).
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    var int: Int? {
        switch self {
        case .int(let i): i
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }
}

extension Value: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral {
    public init(stringLiteral s: String) { self = .string(s) }
    public init(booleanLiteral b: Bool) { self = .bool(b) }
    public init(integerLiteral i: Int) { self = .int(i) }
}
