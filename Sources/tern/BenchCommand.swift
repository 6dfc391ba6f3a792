import Foundation
import Tern
import TernKernels
import TernPlanner
import TernFormat

enum BenchCommand {
    static let usage = """
    usage: tern bench -m MODEL.tern [options]

    Measures prefill (pp) and decode (tg) tokens/s like llama-bench, the weight bytes read per
    decoded token, and the share of a read-bandwidth roofline measured on this machine.

    options:
      -m, --model PATH      checkpoint
      -p, --n-prompt N      prompt tokens for pp (default 128, 0 = skip)
      -n, --n-gen N         generated tokens for tg (default 64, 0 = skip)
      -d, --n-depth N       tokens of context before tg, prefilled untimed (default 0; llama-bench -d)
      -t, --threads N       worker threads (default: physical cores)
      -r, --repetitions N   timed repetitions after one warm-up (default 5)
      --mem-budget SIZE     run within SIZE of resident memory (weights streamed as planned)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      --no-roofline         skip the bandwidth measurement
      --kernels             instead: single-thread in-cache GEMM speed of every ISA path, for
                            1, 4, 8 (a verification pass), 16 and 64 vectors
      --batch-sweep         instead: time of one forward pass of 1 to 8 and 16 tokens at decode
                            time (the cost of verifying drafted tokens), best of -r
      --speculate MODE      instead: greedy decoding of -n tokens after each prompt of -f (or
                            built-in prompts), plainly and with MODE (as for tern run): tokens/s
                            of each, acceptance, mean accepted drafts per pass, identical outputs,
                            the time of lookup, draft and verification passes, and the most
                            model drafting could gain (its time per token with every draft kept)
      --draft-max N         drafts per pass with --speculate (default: calibrated, else 6)
      -f, --file PATH       prompts for --speculate, one per line (\\n for a newline)
      --json                print one JSON object
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-p", "--n-prompt"], ["-n", "--n-gen"],
                                             ["-d", "--n-depth"], ["-t", "--threads"], ["-r", "--repetitions"],
                                             ["--mem-budget"], ["--kv"],
                                             ["--speculate"], ["--draft-max"], ["-f", "--file"]],
                              flagNames: [["--json"], ["--no-roofline"], ["--kernels"], ["--batch-sweep"]], usage: usage)
        if a.flags.contains("--kernels") {
            print("single thread, 512 x 768 weights in cache; GMAC/s (int8 multiply-accumulates)")
            let columns = KernelISA.supported.map { $0.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) }
            print("kind  batch  " + columns.joined())
            let rows = KernelBenchmark.run()
            for kind in QuantKind.allCases {
                for b in KernelBenchmark.batches {
                    let cells = KernelISA.supported.map { isa in
                        String(format: "%-11.2f", rows.first { $0.isa == isa && $0.kind == kind && $0.batch == b }?.gmacs ?? 0)
                    }
                    let label = "\(kind)".padding(toLength: 6, withPad: " ", startingAt: 0)
                        + String(b).padding(toLength: 7, withPad: " ", startingAt: 0)
                    print(label + cells.joined())
                }
            }
            return
        }
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let p = try a.int("-p", default: 128, range: 0...32768)
        let n = try a.int("-n", default: 64, range: 0...32768)
        let depth = try a.int("-d", default: 0, range: 0...32768)
        let threads = try threadCount(a)
        let reps = try a.int("-r", default: 5, range: 1...1000)
        let budget = try memoryBudget(a)
        if let mode = a.string("--speculate") {
            try speculate(a, path: path, mode: mode, n: n, threads: threads, budget: budget)
            return
        }
        let sweep = a.flags.contains("--batch-sweep")
        let options = LoadOptions(memoryBudget: budget, context: max(p, depth + n + 1, 80),
                                  maxBatch: sweep ? 32 : min(Generator.prefillBatch, max(p, depth, 1)),
                                  logitsRows: sweep ? nil : 1, kv: try kvPrecision(a))
        let model = try TernModel(path: path, options: options)
        let gen = Generator(model: model, threads: threads)
        if sweep {
            print("forward pass at position 64, logits for every token, \(threads) threads, best of \(reps + 1)")
            let rows = try gen.batchSweep(batches: Array(1...8) + [16], reps: reps)
            let base = rows[0].1
            for (n, ms) in rows {
                print(String(format: "batch %2d: %7.2f ms  (%.2fx batch 1, %.1f tokens/s)",
                             n, ms, ms / base, Double(n) / ms * 1000))
            }
            return
        }
        let r = try gen.bench(promptTokens: p, genTokens: n, reps: reps, depth: depth)
        let (pp, ppSD) = BenchResult.meanSD(r.ppTPS)
        let (tg, tgSD) = BenchResult.meanSD(r.tgTPS)
        let bpt = model.model.bytesPerToken
        let rss = peakRSSBytes()
        let bw = a.flags.contains("--no-roofline") ? 0 : childBandwidth(threads: threads)
        let roof = bw > 0 ? bw / Double(bpt) : 0
        let isa = KernelISA.active.rawValue
        // GFNI changes the AVX-512 q5 kernel (same bits, faster): results tables should say so.
        let gfni = KernelISA.active == .avx512vnni && KernelISA.hasGFNI
        // So does the x86 kernels' software prefetch (TERN_PREFETCH; per-CPU default).
        let prefetch = [.avx2, .avx512vnni].contains(KernelISA.active) ? KernelISA.prefetchDistance : 0
        if a.flags.contains("--json") {
            try printJSON(BenchReport(model: path, isa: isa, gfni: gfni, prefetch_bytes: prefetch, threads: threads,
                                      n_prompt: p, n_gen: n, n_depth: depth,
                                      reps: reps, pp_tps: pp, pp_sd: ppSD, tg_tps: tg, tg_sd: tgSD, bytes_per_token: bpt,
                                      read_bw_gbs: bw / 1e9, roofline_tps: roof,
                                      roofline_pct: roof > 0 ? 100 * tg / roof : 0, peak_rss_bytes: rss,
                                      mem_budget_bytes: budget ?? 0,
                                      streamed_bytes_per_token: model.plan.streamedBytesPerToken))
        } else {
            let kernels = isa + (gfni ? " (+gfni)" : "") + (prefetch > 0 ? "  prefetch: \(prefetch) B" : "")
            print("model: \(path)  isa: \(kernels)  threads: \(threads)  reps: \(reps)")
            if p > 0 { print(String(format: "pp%-5d %9.1f ± %.1f t/s", p, pp, ppSD)) }
            if n > 0 {
                let name = depth > 0 ? "tg\(n) @ d\(depth)" : "tg\(n)"
                print(name.padding(toLength: max(7, name.count), withPad: " ", startingAt: 0)
                      + String(format: " %9.1f ± %.1f t/s", tg, tgSD))
            }
            print(String(format: "weights read per decoded token: %.1f MB", Double(bpt) / 1e6))
            if bw > 0 {
                print(String(format: "read bandwidth: %.1f GB/s -> roofline %.0f t/s; tg is %.0f%% of it",
                             bw / 1e9, roof, 100 * tg / roof))
            }
            let streamed = Planner.mib(model.plan.streamedBytesPerToken)
            print(String(format: "peak RSS: %.1f MiB", Double(rss) / 1048576)
                  + (budget.map { " (budget \(Planner.mib($0)), \(streamed) streamed per token)" } ?? ""))
        }
    }
}

extension BenchCommand {
    static func speculate(_ a: Arguments, path: String, mode: String, n: Int, threads: Int, budget: Int?) throws {
        var prompts = Calibrator.timingPrompts
        if let f = a.string("-f") {
            prompts = try readUTF8Text(f, what: "prompts file").split(separator: "\n")
                .map { $0.replacingOccurrences(of: "\\n", with: "\n") }
        }
        var options = LoadOptions(memoryBudget: budget, context: 512 + n, kv: try kvPrecision(a))
        options.speculation = try Speculation(parsing: mode)
        options.maxDraft = try draftMax(a)
        let model = try TernModel(path: path, options: options)
        let gen = Generator(model: model, threads: threads)
        gen.maxDraft = options.maxDraft
        let r = try gen.benchSpeculation(prompts: prompts, tokens: n, speculation: options.speculation)
        let rss = peakRSSBytes()
        if a.flags.contains("--json") {
            try printJSON(SpeculationReport(drafters: r.drafters, prompts: r.prompts, n_gen: n,
                                            plain_tps: r.plainTPS, spec_tps: r.speculativeTPS,
                                            speedup: r.speculativeTPS / max(r.plainTPS, 1e-9),
                                            acceptance: r.stats.acceptanceRate, mean_accepted: r.meanAccepted,
                                            tokens_per_pass: r.stats.tokensPerStep, drafted: r.stats.drafted,
                                            accepted: r.stats.accepted, lookup_passes: r.stats.lookupSteps,
                                            model_passes: r.stats.modelSteps, plain_passes: r.stats.plainSteps,
                                            identical: r.identical, peak_rss_bytes: rss, mem_budget_bytes: budget ?? 0,
                                            times: SpeculationTimes(r)))
            return
        }
        print("model: \(path)  threads: \(threads)  \(r.prompts) prompts x \(n) greedy tokens"
              + (budget.map { "  budget \(Planner.mib($0))" } ?? ""))
        print(String(format: "plain decoding:        %7.1f t/s", r.plainTPS))
        print(String(format: "speculative (%@): %7.1f t/s  = %.2fx plain",
                     r.drafters, r.speculativeTPS, r.speculativeTPS / max(r.plainTPS, 1e-9)))
        print(String(format: "drafts: %d, accepted %d (%.0f%%), %.2f accepted per pass, %.2f tokens per pass "
                     + "(%d lookup + %d model passes, %d plain steps)",
                     r.stats.drafted, r.stats.accepted, 100 * r.stats.acceptanceRate, r.meanAccepted, r.stats.tokensPerStep,
                     r.stats.lookupSteps, r.stats.modelSteps, r.stats.plainSteps))
        let t = SpeculationTimes(r)
        // Lines by the drafters in use, not by which of them happened to run: the same output for
        // any number of tokens (CLITests counts a whole run's mallocs at two lengths).
        let used = (try? Speculation(parsing: r.drafters)) ?? Speculation()
        if used.lookup {
            print(String(format: "lookup passes: %d, %.2f ms each (%.1f tokens verified); plain decoding %.2f ms per token",
                         r.stats.lookupSteps, t.lookupMsPerPass, Double(r.stats.lookupRows) / Double(max(1, r.stats.lookupSteps)),
                         t.plainMsPerToken))
        }
        if used.usesModelDrafter {
            let passes = Double(max(1, r.stats.modelSteps))
            print(String(format: "model passes: %d, drafting %.2f ms (%.1f single-token passes of %.2f ms), "
                         + "verification %.2f ms (%.1f rows)",
                         r.stats.modelSteps, t.draftMsPerPass, Double(r.stats.draftRows) / passes, t.draftMsPerRow,
                         t.verifyMsPerPass, Double(r.stats.verifyRows) / passes))
            print(String(format: "model drafting's ceiling: with every draft kept, %.2f ms per token (a draft pass "
                         + "plus its share of verification) against plain decoding's %.2f: at most %.2fx plain",
                         t.modelFloorMs, t.plainMsPerToken, t.modelCeiling))
        }
        print("identical output: \(r.identical) of \(r.prompts) prompts"
              + String(format: "; peak RSS %.1f MiB", Double(rss) / 1048576))
    }
}

/// Where a speculative bench's time went, per pass and per row (``SpeculationStats``), and the
/// most model drafting can gain: with every draft kept each token still costs one draft pass
/// through the draft's layers and head plus its row of verification, so plain decoding's time
/// per token over that bounds the speedup (before lookup's share, which needs no draft pass).
struct SpeculationTimes: Encodable {
    let plainMsPerToken, lookupMsPerPass, draftMsPerPass, draftMsPerRow, verifyMsPerPass, modelFloorMs, modelCeiling: Double

    enum CodingKeys: String, CodingKey {
        case plainMsPerToken = "plain_ms_per_token", lookupMsPerPass = "lookup_ms_per_pass", draftMsPerPass = "draft_ms_per_pass"
        case draftMsPerRow = "draft_ms_per_row", verifyMsPerPass = "verify_ms_per_pass"
        case modelFloorMs = "model_floor_ms_per_token", modelCeiling = "model_ceiling_speedup"
    }

    init(_ r: SpeculationBench) {
        let s = r.stats
        func ms(_ ns: UInt64, _ n: Int) -> Double { n > 0 ? Double(ns) / 1e6 / Double(n) : 0 }
        plainMsPerToken = r.plainTPS > 0 ? 1000 / r.plainTPS : 0
        lookupMsPerPass = ms(s.lookupNanoseconds, s.lookupSteps)
        draftMsPerPass = ms(s.draftNanoseconds, s.modelSteps)
        draftMsPerRow = ms(s.draftNanoseconds, s.draftRows)
        verifyMsPerPass = ms(s.verifyNanoseconds, s.modelSteps)
        modelFloorMs = draftMsPerRow + ms(s.verifyNanoseconds, s.verifyRows)
        modelCeiling = modelFloorMs > 0 ? plainMsPerToken / modelFloorMs : 0
    }
}

/// Read bandwidth measured by a child `tern _membw` (0 if it fails).
func childBandwidth(threads: Int) -> Double {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/proc/self/exe")
    p.arguments = ["_membw", String(threads)]
    let out = Pipe()
    p.standardOutput = out
    guard (try? p.run()) != nil else { return 0 }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}

/// `tern bench --json`: speeds, the weights read per decoded token and the roofline they imply.
struct BenchReport: Encodable {
    let model, isa: String
    /// Whether the AVX-512 q5 kernel runs with GFNI.
    let gfni: Bool
    /// How far ahead the x86 GEMM kernels prefetch weights (0: not at all).
    let prefetch_bytes: Int
    let threads, n_prompt, n_gen, n_depth, reps: Int
    let pp_tps, pp_sd, tg_tps, tg_sd: Double
    let bytes_per_token: Int
    let read_bw_gbs, roofline_tps, roofline_pct: Double
    let peak_rss_bytes, mem_budget_bytes, streamed_bytes_per_token: Int
}

/// `tern bench --speculate MODE --json`.
struct SpeculationReport: Encodable {
    let drafters: String
    let prompts, n_gen: Int
    let plain_tps, spec_tps, speedup, acceptance, mean_accepted, tokens_per_pass: Double
    let drafted, accepted, lookup_passes, model_passes, plain_passes, identical, peak_rss_bytes, mem_budget_bytes: Int
    /// Milliseconds, and the ceiling as a speedup.
    let times: SpeculationTimes
}
