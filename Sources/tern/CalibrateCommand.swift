import Foundation
import Tern
import TernDecoding
import TernFormat
import TernKernels

enum CalibrateCommand {
    static let usage = """
    usage: tern calibrate -m MODEL.tern [-f TEXT] [options]
           tern calibrate -m MODEL.tern --speculate DRAFTERS [--draft-max N] [options]

    Finds the fastest self-speculative drafting settings for MODEL on this machine and stores
    them in the checkpoint (metadata keys tern.draft.*), for `tern run --speculate auto`:
    ranks the vocabulary by token frequency (in TEXT, if given, and in the model's own greedy
    continuations of built-in seed prompts), then times lookup drafting, draft-head sizes,
    draft lengths, the adaptive stop, exit depths and skipped layers on held-out prompts,
    checking each gives exactly the tokens plain decoding does, and times the fastest again
    on fresh prompts (the fastest of many noisy timings overstates itself).

    Timing is built for a busy machine: every prompt is decoded plainly and speculatively back
    to back, settings are compared on the same prompts (paired), and a comparison is repeated
    (up to 3 rounds) until it is decided at about 95% confidence; what stays undecided counts
    as no difference. A setting is stored only if it is clearly faster than plain decoding on
    the fresh prompts. A setting that drafts with the model must also be clearly faster there
    than lookup alone (paired), or lookup alone is stored where it is clearly faster than plain
    decoding. If the best is not faster, it measures below plain decoding there, and lookup alone
    (what `auto` drafts with until calibrated) measures clearly slower than plain decoding,
    plain decoding is stored: `--speculate auto` then decodes without drafting on this
    checkpoint (named drafters still use the stored token ranking). Lookup alone merely even
    with plain decoding is kept: it drafts only where its measured costs say it pays.
    Otherwise (no clear winner either way, or a machine too noisy to tell) nothing is written,
    the checkpoint keeps its previous calibration, and the exit status is 3 with the reason.

    With --speculate, nothing is searched: the vocabulary is ranked as above, and DRAFTERS (as
    `tern run --speculate` takes them; lookup always joins a model drafter) is checked against
    plain decoding's tokens, timed on the fresh prompts, and stored whatever its speed (a note
    says when it was not clearly faster): a setting chosen with `tern bench --speculate`, or
    measured once on one board and stored for boards like it.

    Time: --quick takes ~10-45 s for models of 135M-500M parameters on 2 cores (~2 minutes for
    a 1.5B); the full search about 4 minutes for Gemma 3 270M, and never times new settings for
    longer than --max-time.
    The file is rewritten atomically: tensors are copied unchanged, and the new file replaces
    the old only after it was read back.

    options:
      -m, --model PATH     checkpoint (.tern)
      -f, --file PATH      extra calibration text (UTF-8) to count tokens in
      -o, --output PATH    write the calibrated checkpoint here instead of over MODEL
      -t, --threads N      worker threads (default: physical cores)
      --quick              compare a few likely settings on short runs (under a minute for small models)
      --max-time SECONDS   stop timing new settings after this long (default 300, quick 60)
      --speculate DRAFTERS store these drafters instead of searching (e.g. lookup, vocab:16384+lookup)
      --draft-max N        drafts per pass with --speculate (default 6)
      --dry-run            measure and report, write nothing
      --json               print the outcome as JSON
    """

    /// The outcome as `--json` prints it.
    struct Report: Encodable {
        var stored: Bool
        /// Why nothing was stored (the timings could not tell).
        var declined: String?
        /// Why plain decoding was stored (`drafters` "off", `max_draft` 0) instead of a drafting setting.
        var declined_drafting: String?
        var drafters: String
        var vocab: Int
        var exit_layer: Int
        var skip_layers: [Int]
        var lookup_match: Int
        var max_draft: Int
        var min_probability: Float
        /// On the confirmation prompts; `search_speedup` on the timing prompts that chose the setting
        /// (absent with --speculate: no search).
        var speedup: Double
        var speedup_log_se: Double
        /// The best drafting setting's speedup on the confirmation prompts (= `speedup` unless
        /// plain decoding was stored).
        var best_drafting_speedup: Double
        var search_speedup: Double?
        var plain_tokens_per_second: Double
        var plain_spread: Double
        var seconds: Double
    }

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-f", "--file"], ["-o", "--output"], ["-t", "--threads"],
                                             ["--max-time"], ["--speculate"], ["--draft-max"]],
                              flagNames: [["--dry-run"], ["--json"], ["--quick"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let threads = try threadCount(a)
        var texts: [String] = []
        if let f = a.string("-f") { texts.append(try readUTF8Text(f, what: "calibration text")) }
        let model = try TernModel(path: path)
        let start = Date()
        var cal = Calibrator(model: model, threads: threads, mode: a.flags.contains("--quick") ? .quick : .full)
        cal.maxSeconds = Double(try a.int("--max-time", default: Int(cal.maxSeconds), range: 1...86_400))
        if let s = a.string("--speculate") {
            cal.fixed = try Calibrator.Setting(Speculation(parsing: s), layers: model.model.layerCount,
                                             maxDraft: try a.int("--draft-max", default: 6, range: 1...64))
        } else if a.string("--draft-max") != nil {
            throw UsageError(message: "--draft-max goes with --speculate (the search times draft lengths itself)")
        }
        // A test hook: multiply every timing by log-normal noise, as a busy machine would.
        let env = ProcessInfo.processInfo.environment
        if let n = env["TERN_CALIBRATE_NOISE"], let sd = Double(n) { cal.timingNoise = sd }
        // Another: scale every speculative timing, as a machine where drafting does not pay would measure.
        if let f = env["TERN_CALIBRATE_SPECULATIVE_FACTOR"], let x = Double(f), x > 0 { cal.speculativeFactor = x }
        let what = cal.fixed.map { "timing \($0)" } ?? (cal.mode == .quick ? "quick" : "full search")
        writeStderr("tern calibrate: measuring drafting speed on this machine (\(what)); "
                    + "other programs using the CPU now make it slower and less decisive\n")
        let outcome = try cal.run(texts: texts) { line in
            writeStderr(String(format: "[%5.1fs] ", Date().timeIntervalSince(start)) + line + "\n")
        }
        let L = model.model.layerCount
        let best = outcome.best
        let chosen = outcome.plainChosen != nil ? "off" : best.lookupOnly ? "lookup"
            : Speculation(lookup: true, earlyExit: best.exitLayer < L ? best.exitLayer : nil,
                          vocab: best.vocab > 0 ? best.vocab : nil, skip: best.skip.isEmpty ? nil : best.skip).description
        if let why = outcome.declined {
            writeStderr("not stored: \(why); \(path) keeps its previous calibration\n")
        } else if let why = outcome.plainChosen {
            writeStderr("chosen: plain decoding: \(why); --speculate auto will not draft\n")
        } else {
            writeStderr(String(format: "chosen: %@, draft %d, min-p %.2f: %.2fx plain decoding (%.1f tokens/s plain)\n",
                               chosen, best.maxDraft, best.minProbability, outcome.speedup, outcome.plainTokensPerSecond))
        }
        if a.flags.contains("--json") {
            let stored = outcome.calibration != nil && !a.flags.contains("--dry-run")
            // Plain decoding stored: no drafter; the speedup is plain's own, the best drafting's
            // measurement is in `declined_drafting`.
            let plain = outcome.plainChosen != nil
            let r = Report(stored: stored, declined: outcome.declined, declined_drafting: outcome.plainChosen, drafters: chosen,
                           vocab: best.lookupOnly || plain ? 0 : best.vocab,
                           exit_layer: best.lookupOnly || plain ? L : best.exitLayer,
                           skip_layers: best.lookupOnly || plain ? [] : best.skip, lookup_match: best.lookupMatch,
                           max_draft: plain ? 0 : best.maxDraft, min_probability: plain ? 0 : best.minProbability,
                           speedup: plain ? 1 : outcome.speedup, speedup_log_se: plain ? 0 : outcome.logSE,
                           best_drafting_speedup: outcome.speedup, search_speedup: outcome.searchSpeedup,
                           plain_tokens_per_second: outcome.plainTokensPerSecond, plain_spread: outcome.plainSpread,
                           seconds: Date().timeIntervalSince(start))
            try printJSON(r)
        }
        guard let calibration = outcome.calibration else { exit(3) }
        guard !a.flags.contains("--dry-run") else { return }
        var meta = model.file.metadata
        calibration.store(in: &meta)
        let out = a.string("-o") ?? path
        try TernWriter.rewrite(model.file, metadata: meta, to: out)
        writeStderr("wrote the calibration to \(out)\n")
    }
}
