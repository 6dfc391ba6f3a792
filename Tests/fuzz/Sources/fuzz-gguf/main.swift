// libFuzzer harness: arbitrary bytes as a GGUF file. Parsing it, reading every tensor's bytes,
// and the vocabulary and tokenizer it may carry must succeed or throw, never trap.
import CFuzz
import Foundation
import TernFormat
import TernTokenizer

func fuzzGGUF(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0, let map = try? MappedFile(copying: Array(UnsafeBufferPointer(start: data, count: size)), path: "fuzz.gguf"),
          let gguf = try? GGUFFile(map: map) else { return 0 }
    var sum: UInt8 = 0
    for t in gguf.tensors { for b in gguf.bytes(t).prefix(4096) { sum &+= b } }
    _ = sum
    if let tok = try? loadTokenizer(metadata: gguf.metadata, file: "fuzz.gguf") {  // SentencePiece or byte-level BPE
        let ids = tok.encode("Hello, world! <start_of_turn> 日本 \u{1F600}", parseSpecial: true)
        _ = tok.decode(ids)
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzGGUF($0, size) } ?? 0 })
