import Foundation
import TernFormat

/// Shared helpers for Tern's tests: the real model, built binaries, temp files, subprocesses.
public enum TestSupport {
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// The Gemma 3 270M Q4_K_M GGUF. Model tests must not be skipped: when it is absent they fail
    /// with the command that fetches it.
    public static func gemmaGGUF() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let home = env["HOME"] ?? "/root"
        let cache = env["XDG_CACHE_HOME"] ?? home + "/.cache"
        let path = env["TERN_TEST_GGUF"] ?? cache + "/tern-models/gemma-3-270m-q4_k_m.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Missing(description: "model not found at \(path): run scripts/fetch-model.sh (or set TERN_TEST_GGUF)")
        }
        return path
    }

    /// Files `scripts/fetch-model.sh NAME` writes, by model name.
    public static let modelFiles = [
        "gemma-3-270m": "gemma-3-270m-q4_k_m.gguf",
        "smollm2-135m-instruct": "smollm2-135m-instruct-q4_1.gguf",
        "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    ]

    /// A real model's GGUF from the models folder (TERN_MODELS, else the cache). Like
    /// ``gemmaGGUF()``, a missing file is a failure naming the command that fetches it.
    public static func modelGGUF(_ name: String) throws -> String {
        let env = ProcessInfo.processInfo.environment
        let cache = (env["XDG_CACHE_HOME"] ?? (env["HOME"] ?? "/root") + "/.cache") + "/tern-models"
        guard let file = modelFiles[name] else { throw Missing(description: "unknown model \(name)") }
        let path = (env["TERN_MODELS"] ?? cache) + "/" + file
        guard FileManager.default.fileExists(atPath: path) else {
            throw Missing(description: "model not found at \(path): run scripts/fetch-model.sh \(name) (or set TERN_MODELS)")
        }
        return path
    }

    /// The package root: derived from this source file's location, or where that holds no package
    /// (tests built in another tree, as Tests/arm/swift-aarch64.sh builds them in a chroot's /src), the
    /// current directory.
    public static var packageRoot: URL {
        let built = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: built.appendingPathComponent("Package.swift").path) { return built }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// `../shared/peer/tokenizer` beside the package, when present.
    public static var peerTokenizerDir: String? {
        let d = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/peer/tokenizer").path
        return FileManager.default.fileExists(atPath: d) ? d : nil
    }

    /// Directory holding the built products (tern, tern-quantize) next to the test bundle.
    public static var productsDir: URL {
        var u = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        while u.path != "/" {
            if FileManager.default.isExecutableFile(atPath: u.appendingPathComponent("tern-quantize").path) { return u }
            u.deleteLastPathComponent()
        }
        for c in [".build/release", ".build/debug"] where FileManager.default.isExecutableFile(atPath: c + "/tern-quantize") {
            return URL(fileURLWithPath: c)
        }
        return URL(fileURLWithPath: ".build/release")
    }

    public static func binary(_ name: String) -> String { productsDir.appendingPathComponent(name).path }

    /// This test process's directory for temporary files, removed when the process exits: converted
    /// models are hundreds of MB each, and repeated runs must not fill the disk.
    static let tempRoot: String = {
        let d = NSTemporaryDirectory() + "tern-test-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestSupport.tempRoot) }
        return d
    }()

    /// A fresh temporary directory (inside ``tempRoot``).
    public static func tempDir() -> String {
        let d = tempRoot + "/" + UUID().uuidString.prefix(8)
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    public struct Result {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// `TERN_TEST_EMULATOR`: a command (words separated by spaces) that runs the built products
    /// (`tern`, `tern-quantize`) when the tests are built for another architecture, as CMake's
    /// CROSSCOMPILING_EMULATOR: Tests/arm/swift-aarch64.sh sets it to qemu-aarch64 and its options.
    static let emulator: [String] = (ProcessInfo.processInfo.environment["TERN_TEST_EMULATOR"] ?? "")
        .split(separator: " ").map(String.init)

    /// Runs a program to completion; `env` adds to the inherited environment. The built products
    /// run through `TERN_TEST_EMULATOR` where it is set.
    public static func run(_ path: String, _ args: [String], env: [String: String] = [:]) throws -> Result {
        let p = Process()
        if let first = emulator.first, path.hasPrefix(productsDir.path + "/") {
            p.executableURL = URL(fileURLWithPath: first)
            p.arguments = emulator.dropFirst() + [path] + args
        } else {
            p.executableURL = URL(fileURLWithPath: path)
            p.arguments = args
        }
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        try p.run()
        // Read both pipes concurrently so a chatty child cannot block.
        nonisolated(unsafe) var errData = Data()
        let t = Thread { errData = e.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = o.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    nonisolated(unsafe) static var converted: [String: String] = [:]
    static let lock = NSLock()

    /// The real GGUF converted with `tern-quantize` and `args`, once per test process.
    public static func convertedGemma(_ args: [String] = []) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = args.joined(separator: " ")
        if let p = converted[key] { return p }
        let out = tempDir() + "/gemma.tern"
        let r = try run(binary("tern-quantize"), [try gemmaGGUF(), out] + args)
        guard r.status == 0 else { throw Missing(description: "tern-quantize failed: \(r.stderr)") }
        converted[key] = out
        return out
    }

    /// A real model (by ``modelFiles`` name) converted with `tern-quantize` and `args`, once per test process.
    public static func converted(_ name: String, _ args: [String] = []) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = ([name] + args).joined(separator: " ")
        if let p = converted[key] { return p }
        let out = tempDir() + "/\(name).tern"
        let r = try run(binary("tern-quantize"), [try modelGGUF(name), out] + args)
        guard r.status == 0 else { throw Missing(description: "tern-quantize failed: \(r.stderr)") }
        converted[key] = out
        return out
    }

    /// The capital prompt and llama.cpp's greedy continuation (24 tokens) on the Gemma 3 270M GGUF.
    public static let capitalPrompt = "The capital of France is Paris. The capital of Germany is"
    public static let capitalPromptIds: [Int32] = [2, 818, 5279, 529, 7001, 563, 9079, 236761, 669, 5279, 529, 9405, 563]
    public static let capitalGolden: [Int32] = [15687, 236761, 669, 5279, 529, 506, 3640, 4184, 563, 7693, 236764, 622,
                                                236761, 236780, 236761, 108, 818, 5279, 529, 506, 3640, 15305, 563, 5860]
}

/// Writes small GGUF v3 files for tests (metadata of every scalar kind, string arrays, tensors).
public struct GGUFBuilder {
    public var kv: [(String, UInt32, [UInt8])] = []
    public var tensors: [(String, [Int], UInt32, [UInt8])] = []
    public var alignment = 32

    public init() {}

    public mutating func string(_ k: String, _ v: String) { var w = ByteWriter(); w.string64(v); kv.append((k, 8, w.bytes)) }
    public mutating func u32(_ k: String, _ v: UInt32) { var w = ByteWriter(); w.u32(v); kv.append((k, 4, w.bytes)) }
    public mutating func f32(_ k: String, _ v: Float) { var w = ByteWriter(); w.f32(v); kv.append((k, 6, w.bytes)) }
    public mutating func bool(_ k: String, _ v: Bool) { kv.append((k, 7, [v ? 1 : 0])) }
    public mutating func strings(_ k: String, _ v: [String]) {
        var w = ByteWriter(); w.u32(8); w.u64(UInt64(v.count)); for s in v { w.string64(s) }; kv.append((k, 9, w.bytes))
    }
    public mutating func floats(_ k: String, _ v: [Float]) {
        var w = ByteWriter(); w.u32(6); w.u64(UInt64(v.count)); for s in v { w.f32(s) }; kv.append((k, 9, w.bytes))
    }
    public mutating func ints(_ k: String, _ v: [Int32]) {
        var w = ByteWriter(); w.u32(5); w.u64(UInt64(v.count)); for s in v { w.u32(UInt32(bitPattern: s)) }; kv.append((k, 9, w.bytes))
    }
    /// `shape` outermost first; `type` is the ggml type id.
    public mutating func tensor(_ name: String, shape: [Int], type: UInt32, data: [UInt8]) { tensors.append((name, shape, type, data)) }

    public func bytes() -> [UInt8] {
        var w = ByteWriter()
        w.u32(0x4655_4747); w.u32(3); w.u64(UInt64(tensors.count)); w.u64(UInt64(kv.count))
        for (k, t, v) in kv { w.string64(k); w.u32(t); w.bytes += v }
        var off = 0
        var offs: [Int] = []
        for (name, shape, type, data) in tensors {
            w.string64(name); w.u32(UInt32(shape.count))
            for d in shape.reversed() { w.u64(UInt64(d)) }
            w.u32(type); w.u64(UInt64(off))
            offs.append(off)
            off = (off + data.count + alignment - 1) / alignment * alignment
        }
        w.pad(to: alignment)
        let start = w.bytes.count
        for (i, t) in tensors.enumerated() {
            while w.bytes.count < start + offs[i] { w.u8(0) }
            w.bytes += t.3
        }
        return w.bytes
    }
}

/// Deterministic pseudo-random numbers for tests (SplitMix64).
public struct TestRNG: RandomNumberGenerator {
    var s: UInt64
    public init(_ seed: UInt64) { s = seed }
    public mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func float(_ lo: Float, _ hi: Float) -> Float { Float.random(in: lo..<hi, using: &self) }
    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

public func writeFile(_ path: String, _ bytes: [UInt8]) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

public func readFile(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }
