import Foundation

/// A Jinja template, parsed once and rendered with a context of values, in the environment Hugging
/// Face renders chat templates in (`trim_blocks`, `lstrip_blocks`, loop controls, `tojson` without
/// HTML escaping, `raise_exception`, `strftime_now`), so a checkpoint's `tokenizer.chat_template`
/// renders as the model was trained to read it.
///
/// What is implemented: `{{ }}`, `{% if/elif/else %}`, `{% for %}` (with `loop.*`, an `if` filter,
/// `else`, `break`/`continue`), `{% set %}` (names, tuples, `ns.attr`, blocks), `{% macro %}`,
/// `{% raw %}`, comments, whitespace control, the expression grammar with filters and tests
/// (Builtins.swift), string and dict methods. Anything else is a ``TemplateError`` naming the
/// construct and its line.
public struct Template: Sendable {
    let body: [Stmt]

    /// Most bytes a render may produce and loop iterations it may run.
    public static let maxOutput = 16 << 20
    public static let maxIterations = 1_000_000

    public init(_ source: String) throws {
        var lexer = Lexer(source)
        var parser = Parser(try lexer.segments())
        body = try parser.parse()
    }

    public func render(_ context: [String: Value]) throws -> String {
        let r = Renderer(globals: context)
        try r.run(body)
        return r.out
    }
}

extension Stmt: @unchecked Sendable {}
extension Expr: @unchecked Sendable {}

/// Control flow out of a loop body.
enum LoopSignal: Error { case breakLoop, continueLoop }

/// One render: scopes, output, limits.
final class Renderer: @unchecked Sendable {
    var scopes: [[String: Value]]
    var out = ""
    var iterations = 0
    var callDepth = 0
    var line = 0

    init(globals: [String: Value]) {
        scopes = [Builtins.globals.merging(globals) { $1 }]
    }

    func error(_ kind: TemplateError.Kind, _ m: String) -> TemplateError { TemplateError(kind, line: line, m) }

    func lookup(_ name: String) -> Value {
        for s in scopes.reversed() { if let v = s[name] { return v } }
        return .undefined(name)
    }

    func assign(_ name: String, _ v: Value) { scopes[scopes.count - 1][name] = v }

    func emit(_ s: String) throws {
        out += s
        if out.utf8.count > Template.maxOutput { throw error(.limit, "output exceeds \(Template.maxOutput) bytes") }
    }

    func run(_ body: [Stmt]) throws {
        for s in body {
            switch s {
            case .text(let t): try emit(t)
            case .output(let e, let l):
                line = l
                try emit(try eval(e).pythonString)
            case .ifChain(let branches, let otherwise, let l):
                line = l
                var done = false
                for (cond, b) in branches where try eval(cond).isTruthy {
                    try run(b)
                    done = true
                    break
                }
                if !done { try run(otherwise) }
            case .forLoop(let targets, let iterable, let condition, let body, let otherwise, let l):
                line = l
                try forLoop(targets, try eval(iterable), condition, body, otherwise)
            case .set(let targets, let attribute, let e, let l):
                line = l
                let v = try eval(e)
                if let attribute {
                    guard case .namespace(let ns) = lookup(targets[0]) else {
                        throw error(.type, "cannot set '\(attribute)' on '\(targets[0])': only namespace() objects " +
                            "take attributes")
                    }
                    guard !v.reaches(ns) else {
                        let name = targets[0]
                        throw error(.type, "cannot set '\(attribute)' on '\(name)': the value contains '\(name)' " +
                            "itself")
                    }
                    ns.values[attribute] = v
                } else if targets.count == 1 {
                    assign(targets[0], v)
                } else {
                    let items = try iterate(v)
                    guard items.count == targets.count else {
                        throw error(.type, "cannot unpack \(items.count) values into \(targets.count) names")
                    }
                    for (t, x) in zip(targets, items) { assign(t, x) }
                }
            case .setBlock(let name, let body, let l):
                line = l
                let saved = out
                out = ""
                try run(body)
                let captured = out
                out = saved
                assign(name, .string(captured))
            case .macro(let name, let params, let body, let l):
                assign(name, macro(name, params, body, l))
            case .loopBreak(let l):
                line = l
                throw LoopSignal.breakLoop
            case .loopContinue(let l):
                line = l
                throw LoopSignal.continueLoop
            }
        }
    }

    func forLoop(_ targets: [String], _ seq: Value, _ condition: Expr?, _ body: [Stmt], _ otherwise: [Stmt]) throws {
        var items = try iterate(seq)
        scopes.append([:])
        defer { scopes.removeLast() }
        if let condition {
            items = try items.filter { x in
                try bind(targets, x)
                return try eval(condition).isTruthy
            }
        }
        let n = items.count
        for (i, x) in items.enumerated() {
            iterations += 1
            if iterations > Template.maxIterations {
                throw error(.limit, "more than \(Template.maxIterations) loop iterations")
            }
            try bind(targets, x)
            let cycle = Value.Function(name: "loop.cycle") { args, _ in args.isEmpty ? .none : args[i % args.count] }
            assign("loop", .dict(Value.Dict([
                ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(n - i)), ("revindex0", .int(n - i - 1)),
                ("first", .bool(i == 0)), ("last", .bool(i == n - 1)), ("length", .int(n)),
                ("previtem", i > 0 ? items[i - 1] : .undefined("previtem")),
                ("nextitem", i + 1 < n ? items[i + 1] : .undefined("nextitem")), ("cycle", .function(cycle)),
            ])))
            do {
                try run(body)
            } catch LoopSignal.breakLoop {
                break
            } catch LoopSignal.continueLoop {
                continue
            }
        }
        if n == 0 { try run(otherwise) }
    }

    func bind(_ targets: [String], _ x: Value) throws {
        if targets.count == 1 { assign(targets[0], x); return }
        let parts = try iterate(x)
        guard parts.count == targets.count else {
            throw error(.type, "cannot unpack \(parts.count) values into \(targets.count) loop variables")
        }
        for (t, v) in zip(targets, parts) { assign(t, v) }
    }

    /// What `for` walks: list items, dict keys, string characters; undefined walks nothing.
    func iterate(_ v: Value) throws -> [Value] {
        switch v {
        case .list(let l): return l
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined: return []
        default: throw error(.type, "'\(v.typeName)' object is not iterable")
        }
    }

    func macro(_ name: String, _ params: [(String, Expr?)], _ body: [Stmt], _ defLine: Int) -> Value {
        .function(Value.Function(name: name) { [unowned self] args, kwargs in
            self.callDepth += 1
            defer { self.callDepth -= 1 }
            guard self.callDepth < Parser.maxDepth else {
                throw self.error(.limit, "macro calls nested more than \(Parser.maxDepth) deep")
            }
            var scope: [String: Value] = [:]
            for (i, (p, d)) in params.enumerated() {
                if i < args.count { scope[p] = args[i] }
                else if let v = kwargs.first(where: { $0.0 == p })?.1 { scope[p] = v }
                else if let d { scope[p] = try self.eval(d) }
                else { scope[p] = .undefined(p) }
            }
            let saved = self.out, savedLine = self.line
            self.out = ""
            self.scopes.append(scope)
            defer { self.scopes.removeLast(); self.line = savedLine }
            try self.run(body)
            let result = self.out
            self.out = saved
            return .string(result)
        })
    }

    func eval(_ e: Expr) throws -> Value {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items): return .list(try items.map(eval))
        case .dict(let pairs):
            var d = Value.Dict()
            for (k, v) in pairs {
                guard case .string(let key) = try eval(k) else {
                    throw error(.unsupported, "dict keys other than strings are not supported")
                }
                d[key] = try eval(v)
            }
            return .dict(d)
        case .attr(let base, let name): return try Builtins.attribute(try eval(base), name, self)
        case .item(let base, let index): return try Builtins.item(try eval(base), try eval(index), self)
        case .slice(let base, let a, let b, let c):
            return try Builtins.slice(try eval(base), try a.map(eval), try b.map(eval), try c.map(eval), self)
        case .call(let callee, let args, let kwargs):
            let f = try eval(callee)
            guard case .function(let fn) = f else {
                if case .undefined(let n) = f {
                    throw error(.unsupported, "'\(n)' is undefined (not a function this interpreter knows)")
                }
                throw error(.type, "'\(f.typeName)' object is not callable")
            }
            let a = try args.map(eval), k = try kwargs.map { ($0.0, try eval($0.1)) }
            do { return try fn.call(a, k) } catch let b as BuiltinError {
                throw error(b.kind, b.kind == .raised ? b.message : "\(fn.name): \(b.message)")
            }
        case .filter(let base, let name, let args, let kwargs):
            let v = try eval(base), a = try args.map(eval), k = try kwargs.map { ($0.0, try eval($0.1)) }
            do {
                return try Builtins.filter(name, v, a, k, self)
            } catch let b as BuiltinError {
                throw error(b.kind, "filter '\(name)': \(b.message)")
            }
        case .test(let base, let name, let args, let negated):
            let v = try eval(base), a = try args.map(eval)
            do {
                return .bool(try Builtins.test(name, v, a) != negated)
            } catch let b as BuiltinError {
                throw error(b.kind, "test '\(name)': \(b.message)")
            }
        case .not(let x): return .bool(!(try eval(x).isTruthy))
        case .negate(let x):
            switch try eval(x) {
            case .int(let i):
                guard i != .min else { let e = Builtins.overflow("unary -"); throw error(e.kind, e.message) }
                return .int(-i)
            case .double(let d): return .double(-d)
            case .bool(let b): return .int(b ? -1 : 0)
            case let v: throw error(.type, "bad operand type for unary -: '\(v.typeName)'")
            }
        case .and(let a, let b):
            let x = try eval(a)
            return x.isTruthy ? try eval(b) : x
        case .or(let a, let b):
            let x = try eval(a)
            return x.isTruthy ? x : try eval(b)
        case .binary(let op, let a, let b):
            do {
                return try Builtins.binary(op, try eval(a), try eval(b))
            } catch let x as BuiltinError {
                throw error(x.kind, x.message)
            }
        case .compare(let first, let ops):
            var left = try eval(first)
            for (op, rhs) in ops {
                let right = try eval(rhs)
                let ok: Bool
                do { ok = try Builtins.compare(op, left, right) } catch let x as BuiltinError { throw error(x.kind, x.message) }
                if !ok { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let then, let cond, let other):
            if try eval(cond).isTruthy { return try eval(then) }
            return try other.map(eval) ?? .undefined("conditional")
        }
    }
}
