import Foundation
import Tern
import TernKernels
import TernFormat

enum PerplexityCommand {
    static let usage = """
    usage: tern perplexity -m MODEL.tern -f TEXT [-c CTX] [options]

    Perplexity of MODEL on a text file, computed as llama-perplexity does (non-overlapping chunks
    of CTX tokens, BOS first, the second half of each chunk scored), so the two compare directly.

    options:
      -m, --model PATH     checkpoint
      -f, --file PATH      text file
      -c, --ctx-size N     tokens per chunk (default 512)
      --chunks N           evaluate at most N chunks
      -t, --threads N      worker threads (default: physical cores)
      --mem-budget SIZE    run within SIZE of resident memory
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      --json               print one JSON object
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-f", "--file"], ["-c", "--ctx-size"], ["--chunks"],
                                             ["-t", "--threads"], ["--mem-budget"], ["--kv"]],
                              flagNames: [["--json"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        guard let file = a.string("-f") else { throw UsageError(message: "missing -f TEXT (see --help)") }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw UsageError(message: "cannot read \(file)")
        }
        let ctx = try a.int("-c", default: 512, range: 4...1 << 20)
        let maxChunks = a.string("--chunks") == nil ? nil : try a.int("--chunks", default: 0, range: 1...1 << 20)
        let threads = try threadCount(a)
        let options = LoadOptions(memoryBudget: try memoryBudget(a), context: ctx, maxBatch: 32, logitsRows: 32,
                                  kv: try kvPrecision(a))
        let model = try TernModel(path: path, options: options)
        let gen = Generator(model: model, threads: threads)
        let json = a.flags.contains("--json")
        let r = try gen.perplexity(text: String(decoding: data, as: UTF8.self), context: ctx, maxChunks: maxChunks) { i, n, ppl in
            if !json { writeStderr(String(format: "[%d/%d] %.4f\n", i, n, ppl)) }
        }
        if json {
            // A model that produces NaN logits (a malformed file) gives null, which JSON can carry.
            func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }
            try printJSON(PerplexityReport(perplexity: finite(r.perplexity), std_error: finite(r.stdError),
                                           chunks: r.chunks.count, ctx: ctx, scored_tokens: r.scoredTokens,
                                           tokens_per_second: r.tokensPerSecond))
        } else {
            print(String(format: "Final estimate: PPL = %.4f +/- %.5f  (%d chunks of %d, %d scored tokens, %.0f t/s)",
                         r.perplexity, r.stdError, r.chunks.count, ctx, r.scoredTokens, r.tokensPerSecond))
        }
    }
}

/// `tern perplexity --json`.
struct PerplexityReport: Encodable {
    let perplexity, std_error: Double?
    let chunks, ctx, scored_tokens: Int
    let tokens_per_second: Double

    func encode(to encoder: Encoder) throws {  // nil as null, not left out
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(perplexity, forKey: .perplexity)
        try c.encode(std_error, forKey: .std_error)
        try c.encode(chunks, forKey: .chunks)
        try c.encode(ctx, forKey: .ctx)
        try c.encode(scored_tokens, forKey: .scored_tokens)
        try c.encode(tokens_per_second, forKey: .tokens_per_second)
    }

    enum CodingKeys: String, CodingKey { case perplexity, std_error, chunks, ctx, scored_tokens, tokens_per_second }
}
