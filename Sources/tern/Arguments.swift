import Foundation
import Tern
import TernKernels
import TernPlanner
import TernFormat

/// A command-line usage error (exit status 2).
struct UsageError: Error { let message: String }

/// Minimal option parser: `-x VALUE`, `--long VALUE`, `--long=VALUE`, flags and positionals.
struct Arguments {
    var values: [String: String] = [:]
    var flags: Set<String> = []
    var positional: [String] = []

    /// `valued` lists options that take a value, `flagNames` those that do not; the first
    /// spelling of each alias group is the key.
    init(_ args: [String], valued: [[String]], flagNames: [[String]], usage: String) throws {
        func key(_ a: String, in groups: [[String]]) -> String? { groups.first { $0.contains(a) }?.first }
        var i = 0
        while i < args.count {
            var a = args[i]
            var inline: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                inline = String(a[a.index(after: eq)...])
                a = String(a[..<eq])
            }
            if a == "-h" || a == "--help" {
                print(usage)
                exit(0)
            } else if let k = key(a, in: valued) {
                if let inline { values[k] = inline } else {
                    i += 1
                    guard i < args.count else { throw UsageError(message: "\(a) needs a value (see --help)") }
                    values[k] = args[i]
                }
            } else if let k = key(a, in: flagNames), inline == nil {
                flags.insert(k)
            } else if a.hasPrefix("-") && a.count > 1 {
                throw UsageError(message: "unknown option \(a) (see --help)")
            } else {
                positional.append(a)
            }
            i += 1
        }
    }

    func string(_ k: String) -> String? { values[k] }

    func int(_ k: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let s = values[k] else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError(message: "\(k) must be an integer in \(range.lowerBound)...\(range.upperBound), got " +
                "'\(s)'")
        }
        return v
    }

    func float(_ k: String, default d: Float, range: ClosedRange<Float>) throws -> Float {
        guard let s = values[k] else { return d }
        guard let v = Float(s), range.contains(v) else {
            throw UsageError(message: "\(k) must be a number in \(range.lowerBound)...\(range.upperBound), got '\(s)'")
        }
        return v
    }
}

/// `value` as one line of JSON: keys sorted, slashes unescaped, and a number that is not finite
/// (the speed of a run too short to time, a malformed model's output) as the string "inf",
/// "-inf" or "nan" instead of an encoding error.
func jsonLine<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                  nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Prints `value` as one line of JSON (``jsonLine(_:)``).
func printJSON<T: Encodable>(_ value: T) throws { print(try jsonLine(value)) }


/// `--mem-budget SIZE` (e.g. 160M, 1.5G), nil when absent.
func memoryBudget(_ a: Arguments) throws -> Int? {
    guard let v = a.string("--mem-budget") else { return nil }
    guard let n = parseByteSize(v) else {
        throw UsageError(message: "--mem-budget must be a size like 160M or 1.5G, got '\(v)'")
    }
    return n
}

/// `--kv f16|q8`, nil when absent.
func kvPrecision(_ a: Arguments) throws -> KVPrecision? {
    guard let v = a.string("--kv") else { return nil }
    guard let k = KVPrecision(rawValue: v) else { throw UsageError(message: "--kv must be f16 or q8, got '\(v)'") }
    return k
}

/// `-t N` (default: the physical cores), capped to the CPUs this process may use, with a
/// notice: threads beyond them only take turns and make every barrier wait for a time slice.
func threadCount(_ a: Arguments) throws -> Int {
    let requested = try a.int("-t", default: ThreadPool.physicalCores, range: 1...100_000)
    let usable = ThreadPool.usableThreads(requested)
    if usable < requested {
        writeStderr("tern: -t \(requested) capped to \(usable) threads, the CPUs available to this process\n")
    }
    return usable
}

/// `--speculate MODE` (default auto).
func speculation(_ a: Arguments) throws -> Speculation {
    try Speculation(parsing: a.string("--speculate") ?? "auto")
}

/// `--draft-max N` (0...64), nil when absent (the calibrated length, else 6).
func draftMax(_ a: Arguments) throws -> Int? {
    a.string("--draft-max") == nil ? nil : try a.int("--draft-max", default: 6, range: 0...64)
}

/// The UTF-8 text in the file at `path`; `what` names it in the errors.
func readUTF8Text(_ path: String, what: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw UsageError(message: "cannot read \(what) \(path)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw UsageError(message: "\(what) \(path) is not valid UTF-8")
    }
    return text
}

/// `--temp`, `--top-k`, `--top-p`, `--seed` (default seed: from the clock).
func samplingParameters(_ a: Arguments) throws -> SamplingParameters {
    var sp = SamplingParameters()
    sp.temperature = try a.float("--temp", default: 0.8, range: 0...100)
    sp.topK = try a.int("--top-k", default: 40, range: 0...Int(Int32.max))
    sp.topP = try a.float("--top-p", default: 0.95, range: 0...1)
    if let s = a.string("--seed") {
        guard let v = UInt64(s) else { throw UsageError(message: "--seed must be a non-negative integer, got '\(s)'") }
        sp.seed = v
    } else {
        sp.seed = UInt64(Date().timeIntervalSince1970 * 1e6)
    }
    return sp
}
