import Foundation
import Tern
import TernFormat
import TernKernels
import TernTemplate
import TernTokenizer

/// Set by SIGINT while a reply streams: the reply stops, the session goes on.
nonisolated(unsafe) var chatInterrupted: sig_atomic_t = 0

enum ChatCommand {
    static let usage = """
    usage: tern chat -m MODEL.tern [options]

    A conversation in the model's own chat format (its tokenizer.chat_template, or its family's
    default when it has none, said on stderr). Each line read from standard input is a user
    message; the reply streams to standard output. The KV cache keeps the conversation: each
    turn prefills only its new tokens. When the context fills, the oldest turns are dropped
    (with a notice). Lines /reset (forget the conversation) and /quit are commands; Ctrl-C
    stops the current reply without ending the session. Works piped, too.

    options:
      -m, --model PATH     checkpoint
      -c, --ctx-size N     positions the conversation may use (default 4096)
      -n, --n-predict N    most tokens per reply (default 512)
      -t, --threads N      worker threads (default: physical cores)
      --system TEXT        a system message first
      --chat-template FILE use this Jinja template instead of the model's
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            (default 40)
      --top-p P            (default 0.95)
      --seed S             random seed (default: from the clock)
      --speculate MODE     as for tern run (default off)
      --mem-budget SIZE    stay within SIZE of resident memory (see tern plan)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      --json               after each reply, one JSON line of its statistics on stderr
    """

    struct TurnReport: Encodable {
        let prompt_tokens: Int, prefilled: Int, generated: Int, dropped_messages: Int
        let tokens: [Int32]
        let gen_tps: Double, positions_left: Int
    }

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-c", "--ctx-size"], ["-n", "--n-predict"], ["-t", "--threads"],
                                             ["--temp"], ["--top-k"], ["--top-p"], ["--seed"], ["--mem-budget"], ["--kv"],
                                             ["--system"], ["--chat-template"], ["--speculate"], ["--draft-max"]],
                              flagNames: [["--json"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let ctx = try a.int("-c", default: 4096, range: 16...1 << 22)
        let n = try a.int("-n", default: 512, range: 1...1 << 22)
        let threads = try threadCount(a)
        let sp = try samplingParameters(a)
        let json = a.flags.contains("--json")
        let spec = a.string("--speculate") == nil ? Speculation.off : try speculation(a)
        var options = LoadOptions(memoryBudget: try memoryBudget(a), context: ctx, kv: try kvPrecision(a))
        (options.speculation, options.maxDraft) = (spec, try draftMax(a))
        let model = try TernModel(path: path, options: options)
        let template = try ChatSession.template(for: model, file: a.string("--chat-template"))
        let chat = try ChatSession(model: model, threads: threads, sampling: sp, template: template, system: a.string("--system"),
                                   speculation: spec)
        chat.generator.maxDraft = try draftMax(a)
        let interactive = isatty(0) != 0
        if model.file.metadata.string("tokenizer.chat_template") == nil || a.string("--chat-template") != nil {
            writeStderr("tern chat: using \(template.origin) as the chat template\n")
        }
        signal(SIGINT) { _ in chatInterrupted = 1 }
        if interactive {
            writeStderr("tern chat: \(path), \(ctx) positions. /reset forgets, /quit ends, Ctrl-C stops a reply.\n> ")
        }
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
            chatInterrupted = 0
            var decoder = StreamingDecoder(model.tokenizer)
            let stats: ChatTurnStats
            do {
                stats = try chat.send(text, maxTokens: n) { id in
                    FileHandle.standardOutput.write(Data(decoder.push(id).utf8))
                    return chatInterrupted == 0
                }
            } catch let e as TernError {
                writeStderr("tern chat: \(e)\n" + (interactive ? "> " : ""))
                continue
            } catch let e as TemplateError {
                writeStderr("tern chat: \(e)\n" + (interactive ? "> " : ""))
                continue
            }
            FileHandle.standardOutput.write(Data((decoder.flush() + "\n").utf8))
            if stats.droppedMessages > 0 {
                writeStderr("tern chat: the context is full; dropped the \(stats.droppedMessages) oldest messages\n")
            }
            if chatInterrupted != 0 { writeStderr("(reply stopped)\n") }
            if json {
                let r = TurnReport(prompt_tokens: stats.promptTokens, prefilled: stats.prefilled, generated: stats.tokens.count,
                                   dropped_messages: stats.droppedMessages, tokens: stats.tokens, gen_tps: stats.generationTPS,
                                   positions_left: chat.remaining)
                writeStderr(try jsonLine(r) + "\n")
            } else {
                writeStderr(String(format: "[prefilled %d of %d prompt tokens, %d tokens, %.1f t/s, %d positions left]\n",
                                   stats.prefilled, stats.promptTokens, stats.tokens.count, stats.generationTPS, chat.remaining))
            }
            if interactive { writeStderr("> ") }
        }
    }
}
