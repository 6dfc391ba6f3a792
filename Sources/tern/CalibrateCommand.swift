import Foundation
import Tern
import TernDecoding
import TernFormat
import TernKernels

enum CalibrateCommand {
    static let usage = """
    usage: tern calibrate -m MODEL.tern [-f TEXT] [options]

    Finds the fastest self-speculative drafting settings for MODEL on this machine and stores
    them in the checkpoint (metadata keys tern.draft.*), for `tern run --speculate auto`:
    ranks the vocabulary by token frequency (in TEXT, if given, and in the model's own greedy
    continuations of built-in seed prompts), then times draft-head sizes, draft lengths, the
    adaptive stop and exit depths on held-out prompts, checking each gives exactly the tokens
    plain decoding does; each setting is compared with plain decoding of the same prompts timed
    alternately with it (the machine's speed drifts). Takes about a minute and a half. The file is rewritten atomically: tensors are
    copied unchanged, and the new file replaces the old only after it was read back.

    options:
      -m, --model PATH     checkpoint (.tern)
      -f, --file PATH      extra calibration text (UTF-8) to count tokens in
      -o, --output PATH    write the calibrated checkpoint here instead of over MODEL
      -t, --threads N      worker threads (default: physical cores)
      --dry-run            measure and report, write nothing
      --json               print the chosen settings as JSON
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["-f", "--file"], ["-o", "--output"], ["-t", "--threads"]],
                              flagNames: [["--dry-run"], ["--json"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let threads = try threadCount(a)
        var texts: [String] = []
        if let f = a.string("-f") { texts.append(try readUTF8Text(f, what: "calibration text")) }
        let model = try TernModel(path: path)
        let start = Date()
        let (best, _) = try Calibrator(model: model, threads: threads).run(texts: texts) { line in
            writeStderr(String(format: "[%5.1fs] ", Date().timeIntervalSince(start)) + line + "\n")
        }
        let L = model.model.layerCount
        let chosen = best.vocab == 0 && best.exitLayer == L && best.skipLayers.isEmpty ? "lookup"
            : Speculation(lookup: true, earlyExit: best.exitLayer < L ? best.exitLayer : nil, vocab: best.vocab > 0 ? best.vocab : nil,
                          skip: best.skipLayers.isEmpty ? nil : best.skipLayers).description
        writeStderr(String(format: "chosen: %@, draft %d, min-p %.2f: %.1f tokens/s = %.2fx plain (%.1f)\n",
                           chosen, best.maxDraft, best.minProbability, best.tokensPerSecond, best.tokensPerSecond / max(best.plainTokensPerSecond, 1e-9), best.plainTokensPerSecond))
        if a.flags.contains("--json") {
            print(String(format: "{\"drafters\":%@,\"vocab\":%d,\"exit_layer\":%d,\"skip_layers\":[%@],\"lookup_match\":%d,\"max_draft\":%d,\"min_probability\":%.2f,\"tokens_per_second\":%.2f,\"plain_tokens_per_second\":%.2f,\"acceptance\":%.3f}",
                         jsonString(chosen), best.vocab, best.exitLayer, best.skipLayers.map(String.init).joined(separator: ","), best.lookupMatch, best.maxDraft, best.minProbability, best.tokensPerSecond, best.plainTokensPerSecond, best.acceptance))
        }
        guard !a.flags.contains("--dry-run") else { return }
        var meta = model.file.metadata
        best.store(in: &meta)
        let out = a.string("-o") ?? path
        try TernWriter.rewrite(model.file, metadata: meta, to: out)
        writeStderr("wrote the calibration to \(out)\n")
    }
}
