import Foundation
import Tern
import TernFormat
import TernGGML
import TernKernels
import TernModels
import TernTestSupport
import XCTest

/// Every registered family on a tiny random GGUF (Tests/reference/make_tiny.py), converted with
/// tern-quantize and checked against an independent float64 numpy forward pass of the same GGUF
/// (Tests/reference/decoder_ref.py): all positions of one batched pass, and the same positions
/// decoded one token at a time through the KV cache (ring buffers on windowed layers).
final class FamilyTests: XCTestCase {
    /// 40 positions: past Gemma's window of 4 and through several ring-buffer wraps.
    static let prompt: [Int32] = [1, 7, 12, 30, 4, 19, 22, 8, 41, 17, 3, 26, 9, 33, 50, 11, 6, 28, 14, 5,
                                  36, 21, 45, 10, 16, 2, 39, 24, 13, 48, 27, 31, 18, 44, 15, 35, 20, 52, 25, 38]

    struct Reference: Decodable { let all_logits: [[Double]] }

    static var scripts: String { TestSupport.packageRoot.appendingPathComponent("Tests/reference").path }

    /// Writes Tests/reference/make_tiny.py's `variant` into `dir` and converts it with
    /// tern-quantize: the paths of the GGUF and the .tern.
    static func tinyModel(_ variant: String, in dir: String) throws -> (gguf: String, tern: String) {
        let gguf = dir + "/\(variant).gguf", tern = dir + "/\(variant).tern"
        var r = try TestSupport.run("/usr/bin/env", ["python3", scripts + "/make_tiny.py", variant, gguf])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try TestSupport.run(TestSupport.binary("tern-quantize"), [gguf, tern])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (gguf, tern)
    }

    func check(_ variant: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scripts = FamilyTests.scripts
        let (gguf, tern) = try FamilyTests.tinyModel(variant, in: dir)
        // Every matrix keeps its GGUF type's bits (no widening, no requantizing).
        let converted = try TernFile(path: tern)
        for g in try GGUFFile(path: gguf).tensors where g.shape.count == 2 {
            XCTAssertEqual(converted.tensor(g.name)?.dtype, GGMLConvert.exactTarget(g.type), "\(variant) \(g.name) (\(g.type))",
                           file: file, line: line)
        }
        let ids = "[" + FamilyTests.prompt.map(String.init).joined(separator: ",") + "]"
        let r = try TestSupport.run("/usr/bin/env", ["python3", scripts + "/decoder_ref.py", gguf, ids, "--all"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let want = try JSONDecoder().decode(Reference.self, from: Data(r.stdout.utf8)).all_logits

        let m = try TernModel(path: tern, options: LoadOptions(logitsRows: nil))
        let lm = m.model, n = FamilyTests.prompt.count, par = Parallel(threads: 2)
        XCTAssertEqual(want.count, n)
        // Logits are compared relative to their spread; int8 activations cost a few % of it.
        var worst = 0.0, flips = 0
        func compare(_ got: UnsafeBufferPointer<Float>, _ ref: [Double], _ what: String) {
            let mean = ref.reduce(0, +) / Double(ref.count)
            let sd = (ref.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(ref.count)).squareRoot()
            let err = zip(got, ref).map { abs(Double($0) - $1) }.max()! / sd
            worst = max(worst, err)
            XCTAssertLessThan(err, 0.1, "\(variant) \(what): max error \(err) of the logits' spread", file: file, line: line)
            // The reference's top token wins unless the race is a near-tie at this precision.
            let top = ref.indices.max { ref[$0] < ref[$1] }!, mine = got.indices.max { got[$0] < got[$1] }!
            if mine != top {
                flips += 1
                XCTAssertLessThan(ref[top] - ref[mine], 0.05 * sd, "\(variant) \(what): top token \(mine), reference \(top)", file: file, line: line)
            }
        }
        let batch = lm.makeState(capacity: 64, maxBatch: n, options: StateOptions(logitsRows: nil))
        try lm.forward(tokens: FamilyTests.prompt, startPos: 0, layers: 0..<lm.layerCount, embed: true, allLogits: true,
                       state: batch, parallel: par)
        for p in 0..<n { compare(batch.logitsRow(p), want[p], "batched position \(p)") }
        let step = lm.makeState(capacity: 64, maxBatch: 1, options: StateOptions(logitsRows: 1))
        for p in 0..<n {
            try lm.forward(tokens: [FamilyTests.prompt[p]], startPos: p, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: step, parallel: par)
            compare(step.logitsRow(0), want[p], "decoded position \(p)")
        }
        print("FamilyTests: \(variant): worst logit error \(String(format: "%.4f", worst)) of the spread, "
              + "\(flips) of \(2 * n) top tokens differ (near-ties)")
    }

    func testLlama() throws { try check("llama") }
    /// Llama 3 frequency factors (`rope_freqs.weight`), linear RoPE scaling, an untied head.
    func testLlama3RoPEScaling() throws { try check("llama3") }
    func testQwen2() throws { try check("qwen2") }
    func testQwen3() throws { try check("qwen3") }
    func testGemma3() throws { try check("gemma3") }
    /// A Q5_K_M-like mix: Q5_K matrices and head (kept as q5k), Q5_1 where rows are not whole
    /// super-blocks (ffn_down, the embedding; kept as q5_1).
    func testQ5KMWeights() throws { try check("llama-q5km") }

    struct LastLogits: Decodable { let logits: [Double] }

    /// With fewer KV heads than threads a long context is attended in parts
    /// (AttentionSplit.contextParts), which a decode step shares out over the threads and a batch
    /// runs in turn: on the tiny one-KV-head model, 600 positions through the cache, the last one
    /// decoded on two threads and in a batch of two (a verification pass) give the same bits, and
    /// agree with one thread (no parts) and with the numpy reference.
    func testSplitContextDecodingMatchesReference() throws {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scripts = FamilyTests.scripts
        let (gguf, tern) = try FamilyTests.tinyModel("llama3", in: dir)
        let prompt: [Int32] = (0..<600).map { (i: Int) -> Int32 in Int32(3 + (i * 37 + i / 7) % 61) }
        let r = try TestSupport.run("/usr/bin/env", ["python3", scripts + "/decoder_ref.py", gguf,
                                                 "[" + prompt.map(String.init).joined(separator: ",") + "]"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let want = try JSONDecoder().decode(LastLogits.self, from: Data(r.stdout.utf8)).logits

        let lm = try TernModel(path: tern, options: LoadOptions(logitsRows: nil)).model
        XCTAssertEqual(AttentionSplit.contextParts(items: 1, count: prompt.count, threads: 2), 2)
        /// Logits of the last position: the prompt but its last `tail` tokens in batches of 64, then
        /// those one at a time (`step`) or as one batch.
        func last(threads: Int, tail: Int, step: Bool) throws -> [Float] {
            let par = Parallel(threads: threads)
            XCTAssertEqual(par.threads, threads, "this test needs two CPUs")
            let state = lm.makeState(capacity: 640, maxBatch: 64, options: StateOptions(logitsRows: nil))
            var pos = 0
            while pos < prompt.count {
                let end = pos < prompt.count - tail ? min(pos + 64, prompt.count - tail) : step ? pos + 1 : prompt.count
                try lm.forward(tokens: Array(prompt[pos..<end]), startPos: pos, layers: 0..<lm.layerCount, embed: true,
                               allLogits: true, state: state, parallel: par)
                pos = end
            }
            let rows = step ? 1 : tail
            return Array(state.logitsRow(rows - 1))
        }
        let split = try last(threads: 2, tail: 2, step: true)
        XCTAssertEqual(split, try last(threads: 2, tail: 2, step: false), "decode steps vs a batch of 2")
        let mean = want.reduce(0, +) / Double(want.count)
        let sd = (want.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(want.count)).squareRoot()
        let whole = try last(threads: 1, tail: 2, step: true)
        XCTAssertNotEqual(split, whole, "the parts are merged, not one pass: their sums round differently")
        let apart = zip(split, whole).map { abs(Double($0) - Double($1)) }.max()! / sd
        XCTAssertLessThan(apart, 0.01, "decode step, 2 threads (2 parts) vs 1 (whole context)")
        let err = zip(split, want).map { abs(Double($0) - $1) }.max()! / sd
        XCTAssertLessThan(err, 0.1, "split decode: max error \(err) of the logits' spread")
        print("FamilyTests: context in parts at 600 positions: error \(String(format: "%.4f", err)) of the spread")
    }
}
