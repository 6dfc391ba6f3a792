import Foundation
import Tern
import TernFormat
import TernKernels
import TernTokenizer

enum ChatCommand {
    static let usage = """
    usage: tern chat -m MODEL.tern [options]

    A conversation: each line read from standard input is a user message; the reply streams to
    standard output. The cache keeps the whole conversation, so earlier turns are not recomputed.
    Lines /reset (forget the conversation) and /quit are commands. Works piped, too.

    options:
      -m, --model PATH     checkpoint
      -c, --ctx-size N     positions the conversation may use (default 4096)
      -n, --n-predict N    most tokens per reply (default 512)
      -t, --threads N      worker threads (default: physical cores)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            (default 40)
      --top-p P            (default 0.95)
      --seed S             random seed (default: from the clock)
      --mem-budget SIZE    stay within SIZE of resident memory (see tern plan)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-c", "--ctx-size"], ["-n", "--n-predict"], ["-t", "--threads"],
                                             ["--temp"], ["--top-k"], ["--top-p"], ["--seed"], ["--mem-budget"], ["--kv"]],
                              flagNames: [], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let ctx = try a.int("-c", default: 4096, range: 16...1 << 22)
        let n = try a.int("-n", default: 512, range: 1...1 << 22)
        let threads = try threadCount(a)
        let sp = try samplingParameters(a)
        let model = try TernModel(path: path, options: LoadOptions(memoryBudget: try memoryBudget(a), context: ctx, kv: try kvPrecision(a)))
        let chat = ChatSession(model: model, threads: threads, sampling: sp)
        let interactive = isatty(0) != 0
        if interactive { writeStderr("tern chat: \(path), \(ctx) positions. /reset forgets, /quit ends.\n> ") }
        while let line = readLine() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text == "/quit" { break }
            if text == "/reset" {
                chat.reset()
                if interactive { writeStderr("(conversation reset)\n> ") }
                continue
            }
            if text.isEmpty {
                if interactive { writeStderr("> ") }
                continue
            }
            var decoder = StreamingDecoder(model.tokenizer)
            let stats = try chat.send(text, maxTokens: n) { id in
                FileHandle.standardOutput.write(Data(decoder.push(id).utf8))
                return true
            }
            FileHandle.standardOutput.write(Data((decoder.flush() + "\n").utf8))
            writeStderr(String(format: "[%d tokens, %.1f t/s, %d positions left]\n", stats.tokens.count, stats.generationTPS, chat.remaining)
                        + (interactive ? "> " : ""))
        }
    }
}
