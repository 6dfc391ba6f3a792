import Foundation
import Tern
import TernFormat
import TernKernels
import TernModels
import TernPlanner

enum PlanCommand {
    static let usage = """
    usage: tern plan -m MODEL.tern [--mem-budget SIZE] [-c CTX] [--speculate MODE] [--json]
           tern plan --shape llama-3.2-1b [--mem-budget SIZE] [-c CTX] [--json]

    Shows how MODEL runs within a memory budget: which weights stay mapped in place and which
    are streamed from the file (used in place a chunk at a time and dropped from memory after, or
    copied through a cache of a few slots), the KV cache and scratch, the predicted
    peak resident memory and tokens/s (from read bandwidths and the kernels' speed measured now) at
    the start of a sequence and at its last position (with the attention over the cache, timed now),
    and the minimum budget.

    options:
      -m, --model PATH      checkpoint
      --shape NAME          instead of a checkpoint, size a model from its published shape, as
                            tern-quantize would convert its Q4_K_M GGUF (computed, no weights
                            read): llama-3.2-1b
      --mem-budget SIZE     budget, e.g. 160M or 1.5G (default: none, everything resident)
      --kv f16|q8          KV cache precision (default: f16 unless the budget needs q8)
      -c, --ctx-size N      positions a sequence may reach (default 2048)
      -b, --batch N         prefill batch (default 128)
      --speculate MODE      speculation to make room for, as for tern run (default auto);
                            under a budget it shrinks, then goes, before anything else must
      --draft-max N         drafts per pass to make room for (default: calibrated, else 6)
      --no-measure          skip the bandwidth, kernel and attention measurements (no tokens/s
                            prediction, or with --mem-bw none at the last position)
      --mem-bw GB/S         predict with this memory read bandwidth instead of measuring it
                            (e.g. a board's, to see what Tern will do there; the kernels' speed
                            here is then left out)
      --read-bw GB/S        predict with this rate of bringing in streamed weights (page cache
                            or storage: mapping them in place, or copying them) instead of
                            measuring it
      --json                print one JSON object
    """

    static func main(_ argv: [String]) throws {
        let valued = [["-m", "--model"], ["--mem-budget"], ["--kv"], ["-c", "--ctx-size"], ["-b", "--batch"],
                      ["--speculate"], ["--draft-max"], ["--shape"], ["--mem-bw"], ["--read-bw"]]
        let a = try Arguments(argv, valued: valued, flagNames: [["--json"], ["--no-measure"]], usage: usage)
        if let name = a.string("--shape") {
            try hypothetical(a, name: name)
            return
        }
        guard let path = a.string("-m") else { throw UsageError(message: "missing -m MODEL (see --help)") }
        let budget = try memoryBudget(a)
        let ctx = try a.int("-c", default: 2048, range: 1...1 << 22)
        let batch = try a.int("-b", default: Generator.prefillBatch, range: 1...4096)
        var options = LoadOptions(memoryBudget: budget, context: ctx, maxBatch: batch, kv: try kvPrecision(a))
        options.speculation = try speculation(a)
        options.maxDraft = try draftMax(a)
        let (plan, file, tokenizer, _) = try TernModel.plan(path: path, options: options)
        let config = try Architectures.configuration(file.metadata, file: path, vocab: tokenizer.count)
        var memBW = Double(try a.float("--mem-bw", default: 0, range: 0...10_000)) * 1e9
        var readBW = Double(try a.float("--read-bw", default: 0, range: 0...10_000)) * 1e9
        let given = memBW > 0, measure = !a.flags.contains("--no-measure")
        if measure {
            if memBW == 0 { memBW = childBandwidth(threads: ThreadPool.physicalCores) }
            if readBW == 0 {
                let probe = min(file.map.bytes.count, 128 << 20)
                readBW = plan.streamsInPlace ? mapInPlaceRate(path: path, bytes: probe)
                                             : fileReadBandwidth(path: path, bytes: probe)
            }
        }
        // A streamed byte used in place costs the kernels' pass, like a resident byte, plus its
        // share of the fault that maps its folio and of the folio's drop after (mapInPlaceRate).
        // A copied byte costs its pread into a slot (page cache -> slot) and then the kernels' pass
        // over the slot, like a resident byte. The loaders' copies and the kernels share the cores,
        // so the two barely overlap: charging only the copy over-predicted every model by 10-68%
        // (bench/README.md), charging both was within -17%..+6% except SmolLM2 (+32%). The kernels'
        // pass is, matrix by matrix, the longer of its bytes at memory speed and its products at
        // the kernels' own speed (timed now in cache, per format): on AVX2 without VNNI at 30+ GB/s
        // the layers' products bound it (the 1.5B model: +38% over-predicted without them), while
        // a large q8 LM head is still read at memory speed (without a budget, Gemma +15-23% and
        // Qwen 0.5B +15-22% when the whole step was the longer of all bytes and all products,
        // +12-13% and +3-22% matrix by matrix; bench/README.md).
        let weightBytes = Double(plan.residentWeightBytes + plan.streamedBytesPerToken)
        var compute = 0.0, kernels = 0.0, productBytes = 0.0
        if measure && !given && memBW > 0 {
            var rates: [QuantKind: Double] = [:]
            for p in Architectures.decodeProducts(file: file, config: config) {
                let rate = rates[p.kind] ?? KernelBenchmark.decodeRate(p.kind, threads: ThreadPool.physicalCores)
                rates[p.kind] = rate
                let t = Double(p.macs) / rate
                compute += t
                kernels += max(Double(p.bytes) / memBW, t)
                productBytes += Double(p.bytes)
            }
        }
        // The rest of the bytes (norms, an embedding row) at memory speed.
        let weightSeconds = compute > 0 ? kernels + max(0, weightBytes - productBytes) / memBW
            : (memBW > 0 ? weightBytes / memBW : 0)
        let seconds = weightSeconds + (readBW > 0 ? Double(plan.streamedBytesPerToken) / readBW : 0)
        let tps = memBW > 0 && seconds > 0 ? 1 / seconds : 0
        // At depth a token also attends over every cached position of every layer (up to a
        // layer's window), which costs compute more than bytes (measureAttentionCost), spread
        // over the threads as decoding spreads it.
        let headPositions = config.attendedHeadPositions(context: ctx)
        let threads = ThreadPool.physicalCores
        let attention = tps > 0 && measure
            ? measureAttentionCost(dim: config.headDim, group: config.heads / config.kvHeads,
                                   precision: KVPrecision(rawValue: plan.kvPrecision) ?? .f16, threads: threads) : 0
        let tpsAtCtx = attention > 0 ? 1 / (seconds + Double(headPositions) * attention) : 0
        let streamed = plan.layers.indices.filter { plan.layers[$0] == .streamed }
        let compressed = file.tensors.contains { $0.codec == .zstd }
        if a.flags.contains("--json") {
            try printJSON(PlanReport(model: path, budget_bytes: budget ?? 0, context: ctx, batch: batch,
                                     minimum_bytes: plan.minimumBytes, peak_bytes: plan.peakBytes,
                                     resident_weight_bytes: plan.residentWeightBytes,
                                     streamed_bytes_per_token: plan.streamedBytesPerToken, streamed_layers: streamed,
                                     layers: plan.layers.count,
                                     lm_head: plan.lmHead.rawValue, lm_head_chunk_bytes: plan.lmHeadChunkBytes,
                                     stream_reads: plan.streamsInPlace ? "map" : "copy", slot_bytes: plan.slotBytes,
                                     stream_units_held: plan.streamUnitsHeld,
                                     state_bytes: plan.stateBytes, overhead_bytes: plan.overheadBytes,
                                     kv_precision: "\(plan.kvPrecision)", compressed: compressed,
                                     draft_max: plan.maxDraft, draft_vocab: plan.draftVocab, draft_bytes: plan.draftBytes,
                                     memory_bw_gbs: memBW / 1e9, read_bw_gbs: readBW / 1e9, compute_ms: compute * 1e3,
                                     predicted_tps: tps,
                                     attention_ns: attention * 1e9, predicted_tps_at_ctx: tpsAtCtx))
            return
        }
        func row(_ what: String, _ bytes: Int, _ note: String = "") {
            print("  \(what.padding(toLength: 40, withPad: " ", startingAt: 0)) \(Planner.mib(bytes).leftPad(10))  \(note)")
        }
        print("plan for \(path) (\(compressed ? "zstd-compressed" : "raw")), context \(ctx), batch \(batch), "
              + "budget \(budget.map(Planner.mib) ?? "none")")
        row("weights mapped in place", plan.residentWeightBytes,
            "\(plan.layers.count - streamed.count) of \(plan.layers.count) layers"
                + "\(plan.lmHead == .resident ? ", LM head" : ""), norms")
        row(plan.streamsInPlace ? "streamed in place (one chunk's folios)" : "streaming cache (\(plan.streamUnitsHeld) slots)",
            plan.streamUnitsHeld * plan.slotBytes,
            streamed.isEmpty && plan.lmHead == .resident ? "nothing streamed"
                : "layers \(streamed.isEmpty ? "none" : "\(streamed.first!)...\(streamed.last!)")"
                    + (plan.lmHead == .streamed ? ", LM head in \(Planner.mib(plan.lmHeadChunkBytes)) chunks" : ""))
        row("KV cache (\(plan.kvPrecision), ring buffers) + scratch", plan.stateBytes)
        row("runtime, tokenizer, metadata", plan.overheadBytes)
        row("speculation (drafts, draft head)", plan.draftBytes,
            plan.maxDraft == 0 ? "none" : "\(plan.maxDraft) drafts per pass"
                + (plan.draftVocab > 0 ? ", \(plan.draftVocab)-token draft head" : ""))
        row("predicted peak", plan.peakBytes, budget.map { "of \(Planner.mib($0))" } ?? "")
        row("minimum budget", plan.minimumBytes, "(everything streamed)")
        row("streamed per token", plan.streamedBytesPerToken)
        if memBW > 0 {
            print(String(format: "  predicted decode speed: %.0f tokens/s "
                                 + "(memory %.1f GB/s, %@ %.1f GB/s, kernels %.1f ms, %@%@)",
                         tps, memBW / 1e9, plan.streamsInPlace ? "mapping in place" : "file reads", readBW / 1e9,
                         compute * 1e3,
                         given ? "memory bandwidth given" : "measured now",
                         compressed && plan.streamedBytesPerToken > 0 ? "; zstd decompression not included" : ""))
            if attention > 0 {
                print(String(format: "  at position %d: %.0f tokens/s (attention over the KV cache: %.2f ns per head "
                             + "and position with %d threads, measured now)", ctx, tpsAtCtx, attention * 1e9, threads))
            }
        }
    }
}

extension PlanCommand {
    static func hypothetical(_ a: Arguments, name: String) throws {
        let ctx = try a.int("-c", default: 2048, range: 1...1 << 22)
        let batch = try a.int("-b", default: Generator.prefillBatch, range: 1...4096)
        guard let shape = HypotheticalShape.shape(name, context: ctx, batch: min(batch, ctx)) else {
            let known = HypotheticalShape.names.joined(separator: ", ")
            throw UsageError(message: "unknown --shape '\(name)' (known: \(known))")
        }
        let budget = try memoryBudget(a)
        let plan: Plan
        do {
            plan = try Planner.plan(shape, budget: budget, kv: try kvPrecision(a)?.rawValue,
                                    draft: DraftRequest(maxDraft: 6, vocab: 16384))
        } catch let e as PlanError {
            throw TernError.budget("--mem-budget: \(e.description)")
        }
        let streamed = plan.layers.indices.filter { plan.layers[$0] == .streamed }
        if a.flags.contains("--json") {
            try printJSON(ShapePlanReport(shape: name, computed: true, budget_bytes: budget ?? 0, context: ctx,
                                          minimum_bytes: plan.minimumBytes, peak_bytes: plan.peakBytes,
                                          resident_weight_bytes: plan.residentWeightBytes,
                                          streamed_bytes_per_token: plan.streamedBytesPerToken, streamed_layers: streamed.count,
                                          layers: plan.layers.count, lm_head: plan.lmHead.rawValue, state_bytes: plan.stateBytes,
                                          kv_precision: "\(plan.kvPrecision)", draft_max: plan.maxDraft,
                                          draft_vocab: plan.draftVocab,
                                          draft_bytes: plan.draftBytes))
            return
        }
        print("plan for \(name) (computed from its published shape; no checkpoint read), context \(ctx), "
              + "budget \(budget.map(Planner.mib) ?? "none")")
        print("  weights \(Planner.mib(shape.layerBytes.reduce(0, +) + shape.lmHeadBytes)) (\(plan.layers.count) " +
            "layers of \(Planner.mib(shape.layerBytes[0])), LM head \(Planner.mib(shape.lmHeadBytes)))")
        print("  mapped in place \(Planner.mib(plan.residentWeightBytes)); "
              + "streamed \(streamed.count) of \(plan.layers.count) layers"
              + (plan.lmHead == .streamed ? " and the LM head" : "")
              + ", \(Planner.mib(plan.streamedBytesPerToken)) per token")
        print("  KV cache (\(plan.kvPrecision)) + scratch \(Planner.mib(plan.stateBytes)); "
              + "speculation \(Planner.mib(plan.draftBytes))"
              + (plan.maxDraft > 0 ? " (\(plan.maxDraft) drafts, \(plan.draftVocab)-token head)" : " (none)"))
        print("  predicted peak \(Planner.mib(plan.peakBytes)); minimum budget \(Planner.mibUp(plan.minimumBytes))")
    }
}

/// Bytes/s of bringing `path`'s bytes in as streaming in place does: map each 8 MiB window
/// (a touch per 4 KiB page, so a fault per folio not yet mapped) and drop its folios after,
/// best of four passes. The kernels' own pass over the bytes is not in it (it is charged as a
/// resident byte's).
func mapInPlaceRate(path: String, bytes: Int) -> Double {
    guard let map = try? MappedFile(path: path), map.isFileMapping, bytes > 0 else { return 0 }
    let window = Planner.mappedChunkTarget, n = min(bytes, map.bytes.count)
    map.useHugePages(0..<n)
    let base = map.bytes.baseAddress!
    var best = 0.0, sink: UInt8 = 0
    for _ in 0..<4 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var off = 0
        while off < n {
            let end = min(n, off + window)
            for p in stride(from: off, to: end, by: 4096) { sink &+= base.load(fromByteOffset: p, as: UInt8.self) }
            map.unmapFolios(off..<end)
            off = end
        }
        best = max(best, Double(n) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
    }
    return sink == 1 && best < 0 ? 0 : best
}

/// Bytes/s of reading `path` with pread in 4 MiB pieces, best of four passes (all but the first
/// usually from the page cache, as streaming rereads are).
func fileReadBandwidth(path: String, bytes: Int) -> Double {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    let piece = 4 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: piece, alignment: 64)
    defer { buf.deallocate() }
    var best = 0.0
    for _ in 0..<4 {  // best of four: one pass swings by tens of percent on a shared machine
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

/// Model shapes `tern plan --shape` can size without a checkpoint, from their published
/// configuration, as tern-quantize converts their Q4_K_M GGUF, keeping its bits: Q4_K matrices ->
/// q4k (144 bytes per row and 256 weights), Q6_K -> q6 (210), taken here for every attn_v and
/// ffn_down and the tied embedding (llama-quantize gives Q6_K to about half of those layers' attn_v
/// and ffn_down, so the layers are an upper bound).
enum HypotheticalShape {
    static let names = ["llama-3.2-1b"]

    /// Llama 3.2 1B (Meta's published config: 16 layers, width 2048, FFN 8192, 32 heads, 8 KV
    /// heads of 64, 131072-token context, 128256-token vocabulary, tied embeddings, no sliding
    /// window) at `context` positions in batches of `batch`.
    static func shape(_ name: String, context: Int, batch: Int) -> MemoryShape? {
        guard name == "llama-3.2-1b" else { return nil }
        let layers = 16, width = 2048, ffn = 8192, heads = 32, kvHeads = 8, headDim = 64, vocab = 128_256
        let q = heads * headDim, kv = kvHeads * headDim
        func q4k(_ r: Int, _ c: Int) -> Int { (r + 3) / 4 * 4 * c / 256 * 144 }
        func q6(_ r: Int, _ c: Int) -> Int { (r + 3) / 4 * 4 * c / 256 * 210 }
        let layer = q4k(q, width) + q4k(kv, width) + q6(kv, width) + q4k(width, q) + 2 * q4k(ffn, width) + q6(width, ffn)
        let kvBytes = layers * 2 * context * kv * 2  // f16 K and V for every position
        let scratch = 4 * batch * (3 * width + 2 * q + 2 * kv + 2 * ffn + 2 * headDim) + 4 * (batch + 1) * width
        // the quantized activations as a loaded model keeps them (DecoderConfig.activationWidths)
        let acts = zip([width, q, ffn], [true, false, false]).reduce(0) {
            $0 + batch * QuantizedActivations.bytesPerVector(cols: $1.0, superBlocks: $1.1)
        }
        let logits = 4 * vocab
        let headGroup = width / 256 * 840  // four q6 rows
        var s = MemoryShape(layerBytes: [Int](repeating: layer, count: layers), lmHeadBytes: q6(vocab, width),
                            lmHeadGroupBytes: headGroup, residentBytes: 4 * width * (2 * layers + 1),
                            stateBytes: kvBytes + scratch + acts + logits,
                            stateBytesQ8KV: kvBytes * 34 / 64 + scratch + acts + logits,
                            tokenizerBytes: vocab * 48)
        // Streamed in place (Linux, raw tensors) in chunks of about the target size, each mapping
        // whole 2 MiB folios (a q6 group of 8192 columns is 26 KiB).
        s.streamsInPlace = true
        s.layerSlotBytes = s.layerBytes.map { min($0, Planner.mappedChunkTarget) + Planner.mappedSlack }
        s.logitsRowBytes = 4 * vocab
        s.draftHeadRowBytes = headGroup / 4 + 4
        s.hiddenRowBytes = 4 * width
        return s
    }
}

/// `tern plan -m MODEL --json`: what stays mapped, what streams, and the predicted decode speed.
struct PlanReport: Encodable {
    let model: String
    let budget_bytes, context, batch, minimum_bytes, peak_bytes, resident_weight_bytes, streamed_bytes_per_token: Int
    let streamed_layers: [Int]
    let layers: Int
    let lm_head: String
    let lm_head_chunk_bytes: Int
    /// "map": streamed weights used in place a unit at a time; "copy": copied through slots.
    let stream_reads: String
    /// Bytes of a slot (or of the folios a unit maps in place) and how many are held at once.
    let slot_bytes, stream_units_held, state_bytes, overhead_bytes: Int
    let kv_precision: String
    let compressed: Bool
    let draft_max, draft_vocab, draft_bytes: Int
    let memory_bw_gbs, read_bw_gbs: Double
    /// The products of one decode step at the kernels' in-cache speed (0: not measured).
    let compute_ms: Double
    let predicted_tps: Double
    /// Attention's time per query head and cached position (all threads at once), and the decode
    /// speed predicted at the context's last position with it.
    let attention_ns, predicted_tps_at_ctx: Double
}

/// `tern plan --shape NAME --json`: the plan of a published shape, no checkpoint read.
struct ShapePlanReport: Encodable {
    let shape: String
    let computed: Bool
    let budget_bytes, context, minimum_bytes, peak_bytes, resident_weight_bytes: Int
    let streamed_bytes_per_token, streamed_layers, layers: Int
    let lm_head: String
    let state_bytes: Int
    let kv_precision: String
    let draft_max, draft_vocab, draft_bytes: Int
}
