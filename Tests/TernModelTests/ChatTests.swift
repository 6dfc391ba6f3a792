import Foundation
import TernTestSupport
import XCTest

/// `tern chat` and `tern run --chat` on the instruct models, in their own chat templates: the
/// greedy replies of a 3-turn conversation equal llama.cpp's (`llama-completion -cnv --jinja
/// --temp 0` on the same GGUF and lines), and turns after the first prefill only their new tokens.
final class ChatTests: XCTestCase {
    let tern = TestSupport.binary("tern")
    static let lines = ["What is the capital of France? Answer in one sentence.", "And of Italy?", "Thanks!"]

    struct Turn: Decodable { let prompt_tokens: Int, prefilled: Int, generated: Int, dropped_messages: Int }

    func chat(_ model: String, _ lines: [String], extra: [String] = []) throws -> (replies: [String], turns: [Turn], stderr: String) {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/in.txt"
        try (lines.joined(separator: "\n") + "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let r = try TestSupport.run("/bin/sh", ["-c", "\"$0\" chat -m \"$1\" --temp 0 -n 400 --json \"$@\" < \"$2\"", tern, model, input] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        let turns = try r.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }.map {
            try JSONDecoder().decode(Turn.self, from: Data($0.utf8))
        }
        return (r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init), turns, r.stderr)
    }

    func check(_ name: String, replies want: [String]) throws {
        let model = try TestSupport.converted(name)
        let (replies, turns, _) = try chat(model, ChatTests.lines)
        XCTAssertEqual(replies, want, "\(name): llama.cpp's replies")
        XCTAssertEqual(turns.count, 3)
        guard turns.count == 3 else { return }
        XCTAssertEqual(turns[0].prefilled, turns[0].prompt_tokens, "the first turn prefills everything")
        for t in turns.dropFirst() {
            XCTAssertLessThan(t.prefilled, 20, "\(name): a later turn prefills only its new tokens (\(t.prefilled) of \(t.prompt_tokens))")
        }
        print("ChatTests: \(name): replies as llama.cpp; prefilled " + turns.map { "\($0.prefilled)/\($0.prompt_tokens)" }.joined(separator: ", "))
        // One-shot: the same first reply from tern run --chat.
        let r = try TestSupport.run(tern, ["run", "-m", model, "--chat", "-p", ChatTests.lines[0], "--temp", "0", "-n", "400",
                                           "--speculate", "off"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .newlines), want[0], "\(name): tern run --chat")
    }

    func testQwenChatMatchesLlamaCpp() throws {
        try check("qwen2.5-coder-0.5b-instruct", replies: ["The capital of France is Paris.", "The capital of Italy is Rome.",
            "You're welcome! I'm glad I could help. If you have any other questions, feel free to ask."])
    }

    func testSmolLM2ChatMatchesLlamaCpp() throws {
        try check("smollm2-135m-instruct", replies: ["The capital of France is Paris.", "The capital of Italy is Rome.",
                                                     "The capital of France is Paris."])
    }

    /// /reset forgets the conversation (the next turn prefills everything again and answers as the
    /// first did); a checkpoint without a template says which default it uses; speculation and a
    /// budget give the same replies.
    func testResetDefaultTemplateSpeculationAndBudget() throws {
        let qwen = try TestSupport.converted("qwen2.5-coder-0.5b-instruct")
        let (replies, turns, _) = try chat(qwen, [ChatTests.lines[0], "/reset", ChatTests.lines[0]])
        XCTAssertEqual(replies.count, 2)
        XCTAssertEqual(replies.first, replies.last)
        XCTAssertEqual(turns.map(\.prefilled), turns.map(\.prompt_tokens))
        let spec = try chat(qwen, ChatTests.lines, extra: ["--speculate", "lookup", "--mem-budget", "256M"])
        XCTAssertEqual(spec.replies, try chat(qwen, ChatTests.lines).replies, "speculation and --mem-budget keep the replies")
        // A small context: the oldest turns give way (with a notice), the conversation goes on.
        let many = [ChatTests.lines[0], "And of Italy?", "And of Spain?", "And of Germany?", "And of Japan?", "And of Peru?", "Thanks!"]
        let small = try chat(qwen, many, extra: ["-c", "160", "-n", "30"])
        XCTAssertEqual(small.replies.count, many.count)
        XCTAssertTrue(small.stderr.contains("the context is full; dropped the 2 oldest messages"), small.stderr)
        XCTAssertTrue(small.turns.allSatisfy { $0.prompt_tokens + $0.generated <= 160 })
        let gemma = try TestSupport.convertedGemma()
        let g = try chat(gemma, ["Hello"])
        XCTAssertTrue(g.stderr.contains("using the gemma default (Gemma turns) as the chat template"), g.stderr)
        XCTAssertEqual(g.turns.count, 1)
    }

    /// Ctrl-C during a reply stops that reply and keeps the session: the next line is answered.
    func testInterruptStopsTheReplyNotTheSession() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tern)
        p.arguments = ["chat", "-m", try TestSupport.converted("qwen2.5-coder-0.5b-instruct"), "--temp", "0", "-n", "400", "--json"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (input, output, errors)
        try p.run()
        nonisolated(unsafe) var err = Data()
        let t = Thread { err = errors.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        input.fileHandleForWriting.write(Data("Count from 1 to 300, one number per line.\n".utf8))
        // An event, not a delay: interrupt once the reply has started streaming.
        var out = output.fileHandleForReading.availableData
        while !String(decoding: out, as: UTF8.self).contains("\n") { out += output.fileHandleForReading.availableData }
        p.interrupt()
        input.fileHandleForWriting.write(Data((ChatTests.lines[0] + "\n/quit\n").utf8))
        out += output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { usleep(1000) }
        let stderr = String(decoding: err, as: UTF8.self), stdout = String(decoding: out, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, stderr)
        XCTAssertTrue(stderr.contains("(reply stopped)"), stderr)
        let turns = stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        XCTAssertEqual(turns.count, 2, stderr)
        XCTAssertLessThan(stdout.split(separator: "\n").count, 250, "the count was cut short")
        XCTAssertTrue(stdout.contains("Paris"), stdout)
    }

    /// --chat-template FILE replaces the model's template (and says so); a template that raises is
    /// an error for that turn, reported with its line, and the session goes on.
    func testChatTemplateFileAndTemplateErrors() throws {
        let qwen = try TestSupport.converted("qwen2.5-coder-0.5b-instruct")
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plain = dir + "/plain.jinja", raising = dir + "/raise.jinja"
        try "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:".write(toFile: plain, atomically: true, encoding: .utf8)
        try "x\n{{ raise_exception('roles must alternate') }}".write(toFile: raising, atomically: true, encoding: .utf8)
        let p = try chat(qwen, ["Hi"], extra: ["--chat-template", plain, "-n", "8"])
        XCTAssertTrue(p.stderr.contains("using \(plain) as the chat template"), p.stderr)
        XCTAssertEqual(p.turns.count, 1)
        let r = try chat(qwen, ["Hi", "Again"], extra: ["--chat-template", raising])
        XCTAssertEqual(r.stderr.components(separatedBy: "chat template raised an exception (line 2): roles must alternate").count, 3, r.stderr)
        XCTAssertTrue(r.turns.isEmpty)
    }
}
