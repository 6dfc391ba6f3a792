import Foundation
import TernFormat
import TernTemplate

enum InspectCommand {
    static let usage = """
    usage: tern inspect MODEL.tern [--verify] [--tensors] [--chat-template]

    Shows a checkpoint's format version, metadata, sizes by dtype and (with --tensors) the tensor table.

    options:
      --verify    check every tensor's checksum (and every zstd chunk's)
      --tensors   list every tensor (name, dtype, shape, codec, stored bytes)
      --chat-template  print only the chat template (tokenizer.chat_template), whole
    """

    /// An array value as its first eight items (`first`) and its length.
    static func preview(_ first: [String], count: Int, _ what: String) -> String {
        "[\(first.joined(separator: ", "))\(count > 8 ? ", ..." : "")] (\(count) \(what))"
    }

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [], flagNames: [["--verify"], ["--tensors"], ["--chat-template"]], usage: usage)
        guard a.positional.count == 1 else { throw UsageError(message: "expected one MODEL path (see --help)") }
        let f = try TernFile(path: a.positional[0])
        if a.flags.contains("--chat-template") {
            guard let t = f.metadata.string("tokenizer.chat_template") else {
                throw UsageError(message: "\(f.path) has no tokenizer.chat_template (tern chat uses its family's " +
                    "default)")
            }
            print(t)
            return
        }
        print("file: \(f.path)")
        print("format version: \(f.version), \(f.tensors.count) tensors, \(f.map.bytes.count) bytes")
        print("metadata:")
        for k in f.metadata.keys {
            let v: String
            switch f.metadata[k]! {
            case .int(let x): v = String(x)
            case .float(let x): v = String(x)
            case .bool(let x): v = String(x)
            case .string(let s):
                v = s.count > 80 ? jsonQuoted(String(s.prefix(80))) + "... (\(s.utf8.count) bytes)" : jsonQuoted(s)
            case .ints(let x): v = preview(x.prefix(8).map(String.init), count: x.count, "ints")
            case .floats(let x): v = preview(x.prefix(8).map { String($0) }, count: x.count, "floats")
            case .strings(let x): v = preview(x.prefix(8).map(jsonQuoted), count: x.count, "strings")
            }
            print("  \(k) = \(v)")
        }
        var by: [String: (Int, Int, Int)] = [:]
        for t in f.tensors {
            let k = "\(t.dtype)/\(t.codec)"
            let o = by[k] ?? (0, 0, 0)
            by[k] = (o.0 + 1, o.1 + t.byteSize, o.2 + t.storedSize)
        }
        print("sizes by dtype/codec:")
        for (k, v) in by.sorted(by: { $0.key < $1.key }) {
            print("  \(k.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(v.0).leftPad(5)) tensors "
                  + "\(String(v.1).leftPad(12)) bytes in memory \(String(v.2).leftPad(12)) bytes stored")
        }
        if a.flags.contains("--tensors") {
            print("tensors:")
            for t in f.tensors {
                let name = t.name.padding(toLength: 34, withPad: " ", startingAt: 0)
                print("  \(name) \(t.dtype) \(t.shape) \(t.codec) \(t.storedSize) bytes @ \(t.offset)")
            }
        }
        if a.flags.contains("--verify") {
            try f.verifyAll()
            print("verify: all \(f.tensors.count) tensor checksums OK")
        }
    }
}
