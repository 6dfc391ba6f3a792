import Foundation
import TernFormat
import TernTokenizer

enum TokenizeCommand {
    static let usage = """
    usage: tern tokenize -m MODEL -p TEXT [options]

    Tokenizes TEXT with the vocabulary of MODEL (a .tern or a .gguf, vocabulary-only files too).

    options:
      -m, --model PATH     checkpoint or vocabulary file
      -p, --prompt TEXT    text to tokenize
      -f, --file PATH      read the text from a file instead
      --ids                print only the ids, as [id, id, ...]
      --no-bos             add no special tokens (BOS/EOS)
      --parse-special      let control-token text in the input become those tokens
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-p", "--prompt"], ["-f", "--file"]],
                              flagNames: [["--ids"], ["--no-bos"], ["--parse-special"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let text: String
        if let p = a.string("-p") {
            text = p
        } else if let f = a.string("-f") {
            guard let d = FileManager.default.contents(atPath: f) else { throw UsageError(message: "cannot read \(f)") }
            text = String(decoding: d, as: UTF8.self)
        } else {
            throw UsageError(message: "missing -p TEXT or -f FILE (see --help)")
        }
        let tok = try loadTokenizer(metadata: loadMetadata(path: path), file: path)
        let ids = tok.encode(text, addSpecial: !a.flags.contains("--no-bos"), parseSpecial: a.flags.contains("--parse-special"))
        if a.flags.contains("--ids") {
            print("[" + ids.map(String.init).joined(separator: ", ") + "]")
        } else {
            for id in ids {
                print("\(String(id).leftPad(6)) -> '\(String(decoding: tok.piece(id, special: true), as: UTF8.self))'")
            }
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
