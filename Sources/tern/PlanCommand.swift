import Foundation
import Tern
import TernKernels
import TernPlanner

enum PlanCommand {
    static let usage = """
    usage: tern plan -m MODEL.tern [--mem-budget SIZE] [-c CTX] [--speculate MODE] [--json]

    Shows how MODEL runs within a memory budget: which weights stay mapped in place and which
    are streamed from the file through a two-slot cache, the KV cache and scratch, the predicted
    peak resident memory and tokens/s (from read bandwidths measured now), and the minimum budget.

    options:
      -m, --model PATH      checkpoint
      --mem-budget SIZE     budget, e.g. 160M or 1.5G (default: none, everything resident)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      -c, --ctx-size N      positions a sequence may reach (default 2048)
      -b, --batch N         prefill batch (default 128)
      --speculate MODE      speculation to make room for, as for tern run (default auto);
                            under a budget it shrinks, then goes, before anything else must
      --draft-max N         drafts per pass to make room for (default: calibrated, else 6)
      --no-measure          skip the bandwidth measurements (no tokens/s prediction)
      --json                print one JSON object
    """

    static func main(_ argv: [String]) throws {
        let a = try Arguments(argv, valued: [["-m", "--model"], ["--mem-budget"], ["--kv"], ["-c", "--ctx-size"], ["-b", "--batch"],
                                             ["--speculate"], ["--draft-max"]],
                              flagNames: [["--json"], ["--no-measure"]], usage: usage)
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let budget = try memoryBudget(a)
        let ctx = try a.int("-c", default: 2048, range: 1...1 << 22)
        let batch = try a.int("-b", default: Generator.prefillBatch, range: 1...4096)
        var options = LoadOptions(memoryBudget: budget, context: ctx, maxBatch: batch, kv: try kvPrecision(a))
        options.speculation = try Speculation(parsing: a.string("--speculate") ?? "auto")
        options.maxDraft = a.string("--draft-max") != nil ? try a.int("--draft-max", default: 6, range: 0...64) : nil
        let (plan, file, _, _) = try TernModel.plan(path: path, options: options)
        var memBW = 0.0, readBW = 0.0
        if !a.flags.contains("--no-measure") {
            memBW = childBandwidth(threads: ThreadPool.physicalCores)
            readBW = fileReadBandwidth(path: path, bytes: min(file.map.bytes.count, 128 << 20))
        }
        let seconds = (memBW > 0 ? Double(plan.residentWeightBytes) / memBW : 0) + (readBW > 0 ? Double(plan.streamedBytesPerToken) / readBW : 0)
        let tps = memBW > 0 && seconds > 0 ? 1 / seconds : 0
        let streamed = plan.layers.indices.filter { plan.layers[$0] == .streamed }
        let compressed = file.tensors.contains { $0.codec == .zstd }
        if a.flags.contains("--json") {
            print("{\"model\":\(jsonString(path)),\"budget_bytes\":\(budget ?? 0),\"context\":\(ctx),\"batch\":\(batch),"
                + "\"minimum_bytes\":\(plan.minimumBytes),\"peak_bytes\":\(plan.peakBytes),"
                + "\"resident_weight_bytes\":\(plan.residentWeightBytes),\"streamed_bytes_per_token\":\(plan.streamedBytesPerToken),"
                + "\"streamed_layers\":[\(streamed.map(String.init).joined(separator: ","))],\"layers\":\(plan.layers.count),"
                + "\"lm_head\":\"\(plan.lmHead.rawValue)\",\"lm_head_chunk_bytes\":\(plan.lmHeadChunkBytes),"
                + "\"slot_bytes\":\(plan.slotBytes),\"state_bytes\":\(plan.stateBytes),\"overhead_bytes\":\(plan.overheadBytes),"
                + "\"kv_precision\":\"\(plan.kvPrecision)\",\"compressed\":\(compressed),"
                + "\"draft_max\":\(plan.maxDraft),\"draft_vocab\":\(plan.draftVocab),\"draft_bytes\":\(plan.draftBytes),"
                + String(format: "\"memory_bw_gbs\":%.2f,\"read_bw_gbs\":%.2f,\"predicted_tps\":%.1f}", memBW / 1e9, readBW / 1e9, tps))
            return
        }
        func row(_ what: String, _ bytes: Int, _ note: String = "") {
            print("  \(what.padding(toLength: 40, withPad: " ", startingAt: 0)) \(Planner.mib(bytes).leftPad(10))  \(note)")
        }
        print("plan for \(path) (\(compressed ? "zstd-compressed" : "raw")), context \(ctx), batch \(batch), budget \(budget.map(Planner.mib) ?? "none")")
        row("weights mapped in place", plan.residentWeightBytes,
            "\(plan.layers.count - streamed.count) of \(plan.layers.count) layers\(plan.lmHead == .resident ? ", LM head" : ""), norms")
        row("streaming cache (2 slots)", 2 * plan.slotBytes,
            streamed.isEmpty && plan.lmHead == .resident ? "nothing streamed"
                : "layers \(streamed.isEmpty ? "none" : "\(streamed.first!)...\(streamed.last!)")\(plan.lmHead == .streamed ? ", LM head in \(Planner.mib(plan.lmHeadChunkBytes)) chunks" : "")")
        row("KV cache (\(plan.kvPrecision), ring buffers) + scratch", plan.stateBytes)
        row("runtime, tokenizer, metadata", plan.overheadBytes)
        row("speculation (drafts, draft head)", plan.draftBytes,
            plan.maxDraft == 0 ? "none" : "\(plan.maxDraft) drafts per pass" + (plan.draftVocab > 0 ? ", \(plan.draftVocab)-token draft head" : ""))
        row("predicted peak", plan.peakBytes, budget.map { "of \(Planner.mib($0))" } ?? "")
        row("minimum budget", plan.minimumBytes, "(everything streamed)")
        row("streamed per token", plan.streamedBytesPerToken)
        if memBW > 0 {
            print(String(format: "  predicted decode speed: %.0f tokens/s (memory %.1f GB/s, file reads %.1f GB/s, measured now%@)",
                         tps, memBW / 1e9, readBW / 1e9, compressed && plan.streamedBytesPerToken > 0 ? "; zstd decompression not included" : ""))
        }
    }
}

/// Bytes/s of reading `path` with pread in 4 MiB pieces, best of two passes (the second usually
/// from the page cache, as streaming rereads are).
func fileReadBandwidth(path: String, bytes: Int) -> Double {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    let piece = 4 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: piece, alignment: 64)
    defer { buf.deallocate() }
    var best = 0.0
    for _ in 0..<2 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var off = 0
        while off < bytes {
            let n = pread(fd, buf, min(piece, bytes - off), off_t(off))
            if n <= 0 { break }
            off += n
        }
        best = max(best, Double(off) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
    }
    return best
}
