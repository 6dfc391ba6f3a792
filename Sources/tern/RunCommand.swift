import Foundation
import Tern
import TernKernels
import TernFormat
import TernPlanner
import TernTemplate
import TernTokenizer

enum RunCommand {
    static let usage = """
    usage: tern run -m MODEL.tern -p PROMPT [options]

    Generates text after PROMPT and streams it to stdout; timings go to stderr.

    options:
      -m, --model PATH     checkpoint (.tern; a .gguf gets the command to convert it)
      -p, --prompt TEXT    prompt text
      -n, --n-predict N    tokens to generate (default 128)
      -t, --threads N      worker threads (default: physical cores)
      --temp T             temperature, 0 = greedy (default 0.8)
      --top-k K            keep the K most likely tokens, 0 = all (default 40)
      --top-p P            nucleus sampling threshold (default 0.95)
      --seed S             random seed (default: from the clock)
      --mem-budget SIZE    stay within SIZE of resident memory (e.g. 160M); weights that do
                           not fit are streamed from the file (see tern plan)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      -c, --ctx-size N     positions to plan for with --mem-budget (default: prompt + n)
      --speculate MODE     off | auto | drafters joined by '+': lookup, early-exit[:E] (draft
                           with the first E layers), vocab[:N] (draft head over the N most
                           frequent tokens). Default auto: the settings `tern calibrate`
                           stored (possibly plain decoding), lookup alone until then.
                           Greedy output is identical either way; sampled output has the
                           same distribution
      --draft-max N        drafts per verification pass (default: calibrated, else 6); lookup
                           verifies only as many as its measured costs here say pay, and
                           beside a model drafter each step takes lookup's drafts, the
                           model's or none, by their measured tokens per unit of time (a
                           model drafter alone: its drafts or none)
      --chat               PROMPT is a user message: apply the model's chat template (its
                           tokenizer.chat_template, else its family's default) first
      --system TEXT        with --chat: a system message before it
      --chat-template FILE with --chat: this Jinja template instead of the model's
      --json               print one JSON object instead of streaming text
    """

    static func main(_ argv: [String]) throws {
        let valued = [["-m", "--model"], ["-p", "--prompt"], ["-n", "--n-predict"], ["-t", "--threads"],
                      ["--temp"], ["--top-k"], ["--top-p"], ["--seed"], ["--mem-budget"], ["--kv"], ["-c", "--ctx-size"],
                      ["--speculate"], ["--draft-max"], ["--system"], ["--chat-template"]]
        let a = try Arguments(argv, valued: valued, flagNames: [["--json"], ["--chat"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        guard let prompt = a.string("-p") else { throw UsageError(message: "missing -p PROMPT (see --help)") }
        let n = try a.int("-n", default: 128, range: 0...1_000_000)
        let threads = try threadCount(a)
        let sp = try samplingParameters(a)
        let json = a.flags.contains("--json")

        let budget = try memoryBudget(a)
        // With a budget, plan for the prompt (its UTF-8 bytes bound its tokens) + BOS + n.
        let chat = a.flags.contains("--chat")
        if !chat, a.string("--system") != nil || a.string("--chat-template") != nil {
            throw UsageError(message: "--system and --chat-template go with --chat")
        }
        // With --chat, room for the template's text as well (its markup is a few hundred bytes).
        let extra = chat ? (a.string("--system")?.utf8.count ?? 0) + 1024 : 0
        let ctx = try a.int("-c", default: budget == nil ? 0 : prompt.utf8.count + extra + 1 + n, range: 0...1 << 22)
        let speculation = try speculation(a)
        let maxDraft = try draftMax(a)
        var options = LoadOptions(memoryBudget: budget, context: ctx, kv: try kvPrecision(a))
        (options.speculation, options.maxDraft) = (speculation, maxDraft)
        let model = try TernModel(path: path, options: options)
        let gen = Generator(model: model, threads: threads)
        gen.maxDraft = maxDraft
        var decoder = StreamingDecoder(model.tokenizer)
        var text = ""
        var pieces: [String] = []
        let promptIds: [Int32]
        if chat {
            let template = try ChatSession.template(for: model, file: a.string("--chat-template"))
            let messages = (a.string("--system").map { [ChatMessage(role: "system", content: $0)] } ?? [])
                + [ChatMessage(role: "user", content: prompt)]
            promptIds = try ChatSession.promptIds(messages, template: template, tokenizer: model.tokenizer)
        } else {
            promptIds = model.tokenizer.encode(prompt)
        }
        let stats = try gen.generate(promptIds: promptIds, maxTokens: n, sampling: sp, speculation: speculation) { id in
            let piece = decoder.push(id)
            text += piece
            if json {
                pieces.append(piece)
            } else {
                FileHandle.standardOutput.write(Data(piece.utf8))
            }
            return true
        }
        let rest = decoder.flush()
        text += rest
        if json, !pieces.isEmpty { pieces[pieces.count - 1] += rest }
        let rss = peakRSSBytes()
        if json {
            let spec = stats.speculation.map {
                RunReport.Speculation(drafters: stats.drafters ?? "", steps: $0.steps, drafted: $0.drafted, accepted: $0.accepted,
                                      acceptance: $0.acceptanceRate, tokens_per_step: $0.tokensPerStep)
            }
            let report = RunReport(prompt_tokens: stats.promptTokens, tokens: stats.tokens, text: text, pieces: pieces,
                                   prompt_tps: stats.promptTPS, gen_tps: stats.generationTPS, peak_rss_bytes: rss,
                                   speculation: spec)
            try printJSON(report)
        } else {
            FileHandle.standardOutput.write(Data((rest + "\n").utf8))
        }
        writeStderr(String(format: "\ntern: prompt %d tokens, %.1f t/s | generated %d tokens, %.1f t/s | %d threads "
                                   + "| peak RSS %.1f MiB%@\n",
                           stats.promptTokens.count, stats.promptTPS, stats.tokens.count, stats.generationTPS, threads,
                           Double(rss) / 1048576, budget.map { " (budget \(Planner.mib($0)))" } ?? "")
                    + (stats.speculation.map {
                        String(format: "tern: speculation (%@): %d drafted, %d accepted (%.0f%%), %.2f accepted and %.2f tokens "
                                   + "per pass\n", stats.drafters ?? "", $0.drafted, $0.accepted, 100 * $0.acceptanceRate,
                               Double($0.accepted) / Double(max(1, $0.steps)), $0.tokensPerStep)
                    } ?? ""))
    }
}

/// `tern run --json`: the prompt's and the generated token ids, the text (also per token, as
/// streamed: a piece may be empty while a UTF-8 sequence is incomplete), speeds and memory.
struct RunReport: Encodable {
    struct Speculation: Encodable {
        let drafters: String
        let steps: Int, drafted: Int, accepted: Int
        let acceptance: Double, tokens_per_step: Double
    }
    let prompt_tokens: [Int32]
    let tokens: [Int32]
    let text: String
    let pieces: [String]
    let prompt_tps: Double, gen_tps: Double
    let peak_rss_bytes: Int
    let speculation: Speculation?
}
