// libFuzzer harness: arbitrary text through a real vocabulary (TERN_FUZZ_VOCAB: a .gguf or
// .tern file; Tests/fuzz/run.sh passes Gemma 3's), with and without special-token parsing, and
// arbitrary token ids (in range or not) through the decoder and the streaming decoder.
import CFuzz
import Foundation
import TernFormat
import TernTokenizer

nonisolated(unsafe) var tokenizer: SentencePieceTokenizer?

func fuzzInit() -> Int32 {
    guard let path = ProcessInfo.processInfo.environment["TERN_FUZZ_VOCAB"] else {
        fatalError("fuzz-tokenizer: set TERN_FUZZ_VOCAB to a .gguf or .tern file with a vocabulary")
    }
    do {
        let map = try MappedFile(path: path)
        let meta = GGUFFile.hasMagic(map) ? try GGUFFile(map: map).metadata : try TernFile(map: map).metadata
        tokenizer = try SentencePieceTokenizer(metadata: meta, file: path)
    } catch {
        fatalError("fuzz-tokenizer: \(error)")
    }
    return 0
}

func fuzzTokenizer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let tok = tokenizer else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    for special in [false, true] {
        let ids = tok.encode(text, addSpecial: special, parseSpecial: special)
        let back = tok.decode(ids)
        // Without special tokens, text comes back exactly (after the space prefix the vocabulary
        // may add); U+2581 is the one character that does not, as it stands for a space.
        if !special, !text.unicodeScalars.contains("\u{2581}"), back != text, back != " " + text {
            fatalError("round trip lost text: \(Array(text.utf8)) -> \(ids) -> \(Array(back.utf8))")
        }
    }
    var ids: [Int32] = []
    var i = 0
    while i + 4 <= size {
        ids.append(Int32(bitPattern: UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24))
        i += 4
    }
    _ = tok.decode(ids)
    var stream = StreamingDecoder(tok)
    var streamed = ""
    for id in ids { streamed += stream.push(id) }
    streamed += stream.flush()
    _ = streamed
    return 0
}

_ = fuzzInit()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzTokenizer($0, size) } ?? 0 })
