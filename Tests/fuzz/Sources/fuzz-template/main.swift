// libFuzzer harness: arbitrary bytes as a chat template (parsed, then rendered over a small
// conversation). A malformed, unsupported, raising or oversized template must be a
// TemplateError, never a crash, a hang or unbounded memory.
import CFuzz
import Foundation
import TernTemplate

let messages = [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi {{ x }} 日本"),
                ChatMessage(role: "assistant", content: "Hello!"), ChatMessage(role: "user", content: "Bye")]

func fuzzTemplate(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let source = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let t = try? ChatTemplate(source: source, origin: "fuzz") else { return 0 }
    _ = try? t.apply(messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzTemplate($0, size) } ?? 0 })
