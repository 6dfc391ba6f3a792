import Foundation
import Tern
import TernFormat
import TernTestSupport
import XCTest

/// `--mem-budget` on the real model: the promise is about the process's resident memory, so each
/// case runs `tern run` as a child and reads its own VmHWM (peak RSS) from /proc/self/status.
final class BudgetTests: XCTestCase {
    let tern = TestSupport.binary("tern")
    let ctx = TestSupport.capitalPrompt.utf8.count + 1 + 24

    func run(_ model: String, budget: String?, env: [String: String] = [:]) throws -> (tokens: [Int], rss: Int, stderr: String, status: Int32) {
        var args = ["run", "-m", model, "-p", TestSupport.capitalPrompt, "-n", "24", "--temp", "0", "--json"]
        if let budget { args += ["--mem-budget", budget] }
        let r = try TestSupport.run(tern, args, env: env)
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            return ([], 0, r.stderr, r.status)
        }
        return (obj["tokens"] as? [Int] ?? [], obj["peak_rss_bytes"] as? Int ?? 0, r.stderr, r.status)
    }

    /// The plan's minimum budget and how it streams ("map": in place, "copy": through slots).
    func plannedMinimum(_ model: String, env: [String: String] = [:]) throws -> (bytes: Int, reads: String) {
        let r = try TestSupport.run(tern, ["plan", "-m", model, "-c", String(ctx), "--no-measure", "--json"], env: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return (try XCTUnwrap(obj["minimum_bytes"] as? Int), try XCTUnwrap(obj["stream_reads"] as? String))
    }

    /// Each budget and the planned minimum keep the golden tokens within the budget, streamed by
    /// `reads`. At the minimum everything streams: streamed folios left mapped, or slots not
    /// reused, would take the peak far past it (Gemma's layers and head are ~240 MiB).
    func checkBudgets(_ model: String, _ budgets: [String], label: String, reads: String, env: [String: String] = [:]) throws {
        let golden = TestSupport.capitalGolden.map(Int.init)
        let (minimum, planned) = try plannedMinimum(model, env: env)
        XCTAssertEqual(planned, reads, label)
        for b in budgets + [String(minimum)] {
            let r = try run(model, budget: b, env: env)
            XCTAssertEqual(r.status, 0, "budget \(b): \(r.stderr)")
            XCTAssertEqual(r.tokens, golden, "budget \(b)")
            let limit = Int(b) ?? (Int(b.dropLast())! << 20)
            XCTAssertLessThanOrEqual(r.rss, limit, "budget \(b): peak RSS \(r.rss)")
            print("BudgetTests: \(label) budget \(b): peak RSS \(r.rss >> 20) MiB")
        }
    }

    /// Raw tensors stream in place from the map on Linux (a chunk at a time, its folios dropped
    /// after); elsewhere they are copied.
    func testBudgetsKeepTokensAndPeakRSS() throws {
        #if os(Linux)
        let reads = "map"
        #else
        let reads = "copy"
        #endif
        try checkBudgets(try TestSupport.convertedGemma(), ["512M", "256M", "160M"], label: "raw", reads: reads)
    }

    /// `TERN_STREAM=copy` copies raw tensors through the slots instead (the comparison's baseline).
    func testCopiedStreamingKeepsTokensAndPeakRSS() throws {
        try checkBudgets(try TestSupport.convertedGemma(), ["160M"], label: "raw copied", reads: "copy", env: ["TERN_STREAM": "copy"])
    }

    /// zstd tensors are decoded, so they are always copied.
    func testBudgetsOnCompressedCheckpoint() throws {
        try checkBudgets(try TestSupport.convertedGemma(["--compress"]), ["160M"], label: "zstd", reads: "copy")
    }

    /// A compressed chunk that fails its checksum in a streamed layer is an error when the layer
    /// is read, not a crash and not wrong tokens: the layer pass keeps the read error in the
    /// sequence's state and the step throws it after the layer.
    func testCorruptStreamedChunkIsAnError() throws {
        let (model, t) = try lastStreamedChunk(context: ctx)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: model)))
        bytes[t.offset + t.storedSize - 1] ^= 0x40
        let bad = TestSupport.tempDir() + "/corrupt-chunk.tern"
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        let r = try run(bad, budget: "80M")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(t.name) && r.stderr.contains("chunk \(t.chunkCount - 1)"), r.stderr)
        XCTAssertEqual(r.tokens, [])
    }

    /// The compressed Gemma checkpoint and the zstd tensor whose last chunk an 80M budget streams
    /// last (the last streamed layer's ffn_down), planned for `context` positions.
    func lastStreamedChunk(context: Int) throws -> (model: String, tensor: TensorInfo) {
        let model = try TestSupport.convertedGemma(["--compress"])
        let file = try TernFile(path: model)
        let plan = try TestSupport.run(tern, ["plan", "-m", model, "--mem-budget", "80M", "-c", String(context),
                                              "--no-measure", "--json"])
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let l = try XCTUnwrap((obj["streamed_layers"] as? [Int])?.last, "80M streams no layer: \(plan.stdout)")
        return (model, try XCTUnwrap(file.tensors.first { $0.name == "blk.\(l).ffn_down.weight" && $0.codec == .zstd }))
    }

    /// A chat turn that fails on a streamed chunk's read error leaves the conversation as it was
    /// before the turn: once the file reads right again, the next turn gets the reply of a
    /// conversation that never had the failed one (not a conversation holding its user message,
    /// nor a cache assumed to hold its tokens).
    func testFailedChatTurnLeavesTheConversationAsItWas() throws {
        let (model, t) = try lastStreamedChunk(context: 256)
        let flaky = TestSupport.tempDir() + "/flaky-chunk.tern"
        try? FileManager.default.removeItem(atPath: flaky)
        try FileManager.default.copyItem(atPath: model, toPath: flaky)
        func flip() throws {
            let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: flaky))
            defer { try? h.close() }
            try h.seek(toOffset: UInt64(t.offset + t.storedSize - 1))
            let b = try XCTUnwrap(h.readData(ofLength: 1).first)
            try h.seek(toOffset: UInt64(t.offset + t.storedSize - 1))
            try h.write(contentsOf: Data([b ^ 0x40]))
        }
        let options = LoadOptions(memoryBudget: 80 << 20, context: 256), greedy = SamplingParameters(temperature: 0)
        let chat = try ChatSession(model: try TernModel(path: flaky, options: options), threads: 2, sampling: greedy)
        let first = try chat.send("Hello", maxTokens: 6)
        try flip()
        XCTAssertThrowsError(try chat.send("What is the capital of France?", maxTokens: 6)) { error in
            XCTAssertTrue("\(error)".contains(t.name), "\(error)")
        }
        XCTAssertEqual(chat.messages.count, 2, "the failed turn is not part of the conversation")
        try flip()
        let third = try chat.send("And of Italy?", maxTokens: 6)
        let clean = try ChatSession(model: try TernModel(path: model, options: options), threads: 2, sampling: greedy)
        XCTAssertEqual(try clean.send("Hello", maxTokens: 6).tokens, first.tokens)
        XCTAssertEqual(try clean.send("And of Italy?", maxTokens: 6).tokens, third.tokens)
        XCTAssertLessThan(third.prefilled, third.promptTokens, "the first turn's cache is kept")
    }

    /// The q8 KV cache keeps the greedy golden on the real model, alone and with a budget.
    func testQ8KVCacheKeepsTheGolden() throws {
        let model = try TestSupport.convertedGemma()
        for extra in [["--kv", "q8"], ["--kv", "q8", "--mem-budget", "100M"]] {
            let r = try TestSupport.run(tern, ["run", "-m", model, "-p", TestSupport.capitalPrompt, "-n", "24", "--temp", "0", "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            XCTAssertEqual(obj["tokens"] as? [Int], TestSupport.capitalGolden.map(Int.init), "\(extra)")
        }
        let bad = try TestSupport.run(tern, ["run", "-m", model, "-p", "hi", "--kv", "q4"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--kv must be f16 or q8"), bad.stderr)
    }

    func testTooSmallBudgetIsRefusedWithTheMinimum() throws {
        let model = try TestSupport.convertedGemma()
        let minimum = try plannedMinimum(model).bytes
        let r = try run(model, budget: "32M")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("needs at least \((minimum + (1 << 20) - 1) >> 20) MiB for this model and context"), r.stderr)
        XCTAssertTrue(r.stderr.contains("(given 32 MiB)"), r.stderr)
        let bad = try TestSupport.run(tern, ["run", "-m", model, "-p", "hi", "--mem-budget", "lots"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--mem-budget must be a size like 160M"), bad.stderr)
    }

    /// `tern plan` predicts decoding at the context's last position slower by the attention over
    /// every cached position: Gemma 3 270M's 18 layers of 4 query heads, 15 of them windowed to 512
    /// positions, at 4096 positions cover (15 * 512 + 3 * 4096) * 4 head-positions, each at the cost
    /// timed on the spot. With a given memory bandwidth, the start-of-sequence prediction is the
    /// mapped weights' bytes over it.
    func testPlanPredictsDecodeAtDepth() throws {
        let model = try TestSupport.convertedGemma()
        let r = try TestSupport.run(tern, ["plan", "-m", model, "-c", "4096", "--mem-bw", "10", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let tps = try XCTUnwrap(obj["predicted_tps"] as? Double), atCtx = try XCTUnwrap(obj["predicted_tps_at_ctx"] as? Double)
        let ns = try XCTUnwrap(obj["attention_ns"] as? Double), weights = try XCTUnwrap(obj["resident_weight_bytes"] as? Int)
        XCTAssertEqual(tps, 10e9 / Double(weights), accuracy: 1e-9 * tps)
        XCTAssertTrue(ns > 0.05 && ns < 1000, "attention \(ns) ns per head and position")
        let headPositions = Double((15 * 512 + 3 * 4096) * 4)
        XCTAssertEqual(1 / atCtx - 1 / tps, headPositions * ns * 1e-9, accuracy: 1e-9 / tps)
        // --no-measure times nothing: with a given bandwidth only the start is predicted.
        let off = try TestSupport.run(tern, ["plan", "-m", model, "-c", "4096", "--mem-bw", "10", "--no-measure", "--json"])
        let offObj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(off.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(offObj["predicted_tps"] as? Double), tps, accuracy: 1e-9 * tps)
        XCTAssertEqual(offObj["predicted_tps_at_ctx"] as? Double, 0)
        XCTAssertEqual(offObj["attention_ns"] as? Double, 0)
        XCTAssertEqual(obj["compute_ms"] as? Double, 0, "a given bandwidth is another machine's: no kernels timed here")
        // Measured: a step is, matrix by matrix, the longer of its bytes at memory speed and its
        // products at the kernels' speed (nothing streamed without a budget): at least the longer
        // of all bytes and all products, at most both.
        let m = try TestSupport.run(tern, ["plan", "-m", model, "--json"])
        XCTAssertEqual(m.status, 0, m.stderr)
        let mObj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(m.stdout.utf8)) as? [String: Any])
        let computeMs = try XCTUnwrap(mObj["compute_ms"] as? Double), bw = try XCTUnwrap(mObj["memory_bw_gbs"] as? Double)
        let mTps = try XCTUnwrap(mObj["predicted_tps"] as? Double)
        // Gemma 3 270M multiplies ~0.27 G weights per token: 0.3-300 ms at 1-1000 GMAC/s.
        XCTAssertTrue(computeMs > 0.3 && computeMs < 300, "kernels \(computeMs) ms per token")
        let bytesSeconds = Double(weights) / (bw * 1e9)
        XCTAssertGreaterThanOrEqual(1 / mTps, max(bytesSeconds, computeMs / 1e3) * (1 - 1e-9))
        XCTAssertLessThanOrEqual(1 / mTps, (bytesSeconds + computeMs / 1e3) * (1 + 1e-9))
    }

    func testPlanPutsPeakWithinBudget() throws {
        let model = try TestSupport.convertedGemma()
        for b in ["512M", "200M", "120M"] {
            let r = try TestSupport.run(tern, ["plan", "-m", model, "--mem-budget", b, "--no-measure", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            let peak = try XCTUnwrap(o["peak_bytes"] as? Int), budget = try XCTUnwrap(o["budget_bytes"] as? Int)
            XCTAssertLessThanOrEqual(peak, budget, b)
            XCTAssertEqual(budget, Int(b.dropLast())! << 20)
        }
        let text = try TestSupport.run(tern, ["plan", "-m", model, "--mem-budget", "160M", "--no-measure"])
        XCTAssertTrue(text.stdout.contains("LM head in"), "160M streams the LM head: \(text.stdout)")
    }
}
