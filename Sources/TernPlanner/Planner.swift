/// What the planner needs to know about a model: the decoded bytes of each layer's weights, of
/// the LM head (streamable in row chunks) and of the small always-resident tensors, plus the
/// bytes of the per-sequence state (KV cache, scratch, logits) for the requested context.
public struct MemoryShape: Sendable {
    public var layerBytes: [Int]
    /// The largest unit a streamed layer is read in (its slot size): layers stream in chunks of
    /// about ``Planner/layerChunkTarget`` bytes. Defaults to the whole layer.
    public var layerSlotBytes: [Int]
    public var lmHeadBytes: Int
    /// Bytes of one LM-head row group (chunks are whole groups).
    public var lmHeadGroupBytes: Int
    public var residentBytes: Int
    public var stateBytes: Int
    /// The state's bytes with a q8 KV cache (nil: the model offers only f16).
    public var stateBytesQ8KV: Int?
    public var tokenizerBytes: Int
    /// What speculation costs per unit: one more logits row (a drafted position verified at
    /// once), one row of a reduced-vocabulary draft head (its weights and logit), one kept
    /// hidden state.
    public var logitsRowBytes = 0
    public var draftHeadRowBytes = 0
    public var hiddenRowBytes = 0
    /// Streamed weights are used in place from the map, a unit at a time (Linux, raw tensors):
    /// one unit's folios are held at once instead of ``Planner/streamSlots`` slots, layer units
    /// are ``Planner/mappedChunkTarget`` bytes, and `layerSlotBytes` are the folios a unit maps.
    public var streamsInPlace = false
    /// Target bytes of a streamed layer's chunks: ``Planner/mappedChunkTarget`` in place,
    /// ``Planner/layerChunkTarget`` copied.
    public var layerChunkTarget: Int { Planner.chunkTarget(inPlace: streamsInPlace) }

    public init(layerBytes: [Int], lmHeadBytes: Int, lmHeadGroupBytes: Int, residentBytes: Int, stateBytes: Int,
                stateBytesQ8KV: Int? = nil, tokenizerBytes: Int) {
        self.stateBytesQ8KV = stateBytesQ8KV
        self.layerBytes = layerBytes
        layerSlotBytes = layerBytes
        self.lmHeadBytes = lmHeadBytes
        self.lmHeadGroupBytes = lmHeadGroupBytes
        self.residentBytes = residentBytes
        self.stateBytes = stateBytes
        self.tokenizerBytes = tokenizerBytes
    }
}

/// Where the weights live and what every part costs, decided once from one budget.
///
/// Resident tensors are used in place from the memory map (they count in the resident set once
/// touched). Streamed ones are either used in place a unit at a time, each unit's folios dropped
/// from the resident set after its product (``MemoryShape/streamsInPlace``), or read with `pread`
/// (or decompressed from their zstd chunks) into a bounded cache of ``Planner/streamSlots``
/// slots, the next units prefetched on background threads while the current one is used.
public struct Plan: Sendable, Equatable {
    public enum Placement: String, Sendable, Equatable { case resident, streamed }

    public var budget: Int?
    public var layers: [Placement]
    public var lmHead: Placement
    /// Decoded bytes of one LM-head chunk when the head is streamed.
    public var lmHeadChunkBytes: Int
    /// Bytes of each streaming slot, or of the folios a unit used in place maps plus a folio at
    /// each end of the streamed span (0 when nothing is streamed).
    public var slotBytes: Int
    /// Streamed units are used in place from the map (``MemoryShape/streamsInPlace``).
    public var streamsInPlace = false
    public var residentWeightBytes: Int
    public var streamedBytesPerToken: Int
    public var stateBytes: Int
    /// The KV cache's precision: "f16", or "q8" when the budget cannot hold f16.
    public var kvPrecision = "f16"
    public var overheadBytes: Int
    /// Predicted peak resident set.
    public var peakBytes: Int
    /// The smallest budget this model and context can run in.
    public var minimumBytes: Int
    /// Speculation's allowance (SpecMemo-style: it shrinks before anything else has to):
    /// drafts per verification pass (0: no speculation fits) and reduced draft-head rows.
    public var maxDraft = 0
    public var draftVocab = 0
    /// Bytes reserved for them (included in `peakBytes`).
    public var draftBytes = 0

    public var streamedLayers: Int { layers.filter { $0 == .streamed }.count }
    /// Streamed units held at once: ``Planner/streamSlots`` slots, or the one used in place.
    public var streamUnitsHeld: Int { streamsInPlace ? 1 : Planner.streamSlots }
    /// Target bytes of a streamed layer's chunks (``MemoryShape/layerChunkTarget``).
    public var layerChunkTarget: Int { Planner.chunkTarget(inPlace: streamsInPlace) }
}

public struct PlanError: Error, CustomStringConvertible, Equatable {
    public let description: String
}

/// The speculation a plan should make room for: up to `maxDraft` drafts per pass, a draft head
/// over `vocab` tokens (0: none, e.g. lookup drafts or the full head).
public struct DraftRequest: Sendable, Equatable {
    public var maxDraft: Int
    public var vocab: Int
    public init(maxDraft: Int, vocab: Int) {
        self.maxDraft = maxDraft
        self.vocab = vocab
    }

    /// Bytes of this request for `shape`.
    public func bytes(_ shape: MemoryShape) -> Int {
        maxDraft <= 0 ? 0
            : maxDraft * shape.logitsRowBytes + vocab * shape.draftHeadRowBytes + (maxDraft + 1) * shape.hiddenRowBytes
    }

    /// Smaller requests to try when this one does not fit, largest first: fewer drafts, then a
    /// smaller head, down to a single lookup draft.
    public var shrinking: [DraftRequest] {
        var out: [DraftRequest] = [self]
        var r = self
        while r.maxDraft > 1 || r.vocab > 0 {
            if r.maxDraft > 2 {
                r.maxDraft = max(2, r.maxDraft / 2)
            } else if r.vocab > 2048 {
                r.vocab /= 2
            } else if r.vocab > 0 {
                r.vocab = 0
            } else {
                r.maxDraft -= 1
            }
            out.append(r)
        }
        return out
    }
}

public enum Planner {
    /// Process memory that is not weights or sequence state: the Swift runtime and libraries,
    /// code, thread stacks and parsed metadata (measured: ~26 MiB for `tern` on x86-64 Linux with
    /// Gemma 3 270M loaded and nothing else), with headroom for allocator slack.
    public static let runtimeBytes = 40 << 20
    /// LM-head chunk target when streamed (cache-sized, as ``layerChunkTarget``).
    public static let headChunkTarget = 2 << 20
    /// Slots of the streaming cache: the unit in use and two loaded ahead, each by its own
    /// thread (one copying thread could not keep up with a 2-core decode).
    public static let streamSlots = 3
    /// Target bytes of the chunks a streamed layer's matrices are read in. Small enough that the
    /// slots stay in the cache between the copy into one and the kernels' pass over it, so a
    /// streamed byte crosses memory once: over the 1.5B model's file, `pread` into two
    /// alternating slots plus a read pass ran at 10.0 GB/s with 1-4 MiB slots and 6.6 GB/s with
    /// the 32 MiB of a whole layer (AVX-512 VM, one thread); its decode under 256M ran at 11.2,
    /// 12.6 and 12.5 t/s with 1, 2 and 4 MiB chunks.
    public static let layerChunkTarget = 2 << 20
    /// Target bytes of the units streamed weights are used in place in (layer chunks and LM-head
    /// chunks; ``MemoryShape/streamsInPlace``). Nothing is copied, so cache size does not matter;
    /// larger units wake the threads and drop folios less often, but the plan holds one unit's
    /// folios. Qwen2.5-Coder-1.5B under 256 MiB, 2 threads, AVX2: 14.9, 16.8, 17.8 and 15.6 t/s
    /// at 2, 4, 8 and 16 MiB (bench/README.md "Streaming in place").
    public static let mappedChunkTarget = 8 << 20
    /// The chunk target of streamed units: in place, or copied.
    public static func chunkTarget(inPlace: Bool) -> Int { inPlace ? mappedChunkTarget : layerChunkTarget }
    /// The folio size streaming in place plans with (``TernFormat/MappedFile/folioBytes`` must
    /// be this: 4 KiB pages), and what a unit's folios can hold beyond its bytes: a folio at each end.
    public static let mappedFolioBytes = 2 << 20
    public static let mappedSlack = 2 * mappedFolioBytes

    /// Plans `shape` into `budget` bytes (nil: no limit, everything resident). The KV cache is
    /// f16 unless `kv` says otherwise or the budget is below the f16 minimum but not the q8 one.
    ///
    /// With `draft`, room for speculation comes out of what the rest leaves: the weights and
    /// cache are planned into the budget minus the draft's bytes, and when that does not fit the
    /// draft shrinks (fewer drafts, a smaller head) and finally goes; it never raises the minimum.
    public static func plan(_ shape: MemoryShape, budget: Int?, kv: String? = nil, draft: DraftRequest?) throws -> Plan {
        let base = try plan(shape, budget: budget, kv: kv)
        guard let draft, draft.maxDraft > 0 else { return base }
        for r in draft.shrinking {
            let bytes = r.bytes(shape)
            guard let b = budget else {
                var p = base
                (p.maxDraft, p.draftVocab, p.draftBytes) = (r.maxDraft, r.vocab, bytes)
                p.peakBytes += bytes
                return p
            }
            // Plan the rest into what the draft leaves. That may stream a layer more than
            // without the draft: verification reads each streamed byte once per pass of several
            // tokens, which more than pays for it.
            // The KV precision stays what it is without speculation (it would change the output).
            guard b - bytes >= base.minimumBytes, var p = try? plan(shape, budget: b - bytes, kv: base.kvPrecision) else {
                continue
            }
            (p.maxDraft, p.draftVocab, p.draftBytes) = (r.maxDraft, r.vocab, bytes)
            p.budget = b
            p.peakBytes += bytes
            return p
        }
        return base
    }

    public static func plan(_ shape: MemoryShape, budget: Int?, kv: String? = nil) throws -> Plan {
        var q8 = shape
        if let b = shape.stateBytesQ8KV { q8.stateBytes = b }
        if kv == "q8" {
            guard shape.stateBytesQ8KV != nil else { throw PlanError(description: "this model has no q8 KV cache") }
            var p = try planFixed(q8, budget: budget)
            p.kvPrecision = "q8"
            return p
        }
        do {
            return try planFixed(shape, budget: budget)
        } catch let e as PlanError where kv == nil && shape.stateBytesQ8KV != nil {
            guard var p = try? planFixed(q8, budget: budget) else { throw e }
            p.kvPrecision = "q8"
            return p
        }
    }

    static func planFixed(_ shape: MemoryShape, budget: Int?) throws -> Plan {
        let overhead = runtimeBytes + shape.tokenizerBytes
        let fixed = overhead + shape.stateBytes + shape.residentBytes
        let headGroups = max(1, shape.lmHeadBytes / max(1, shape.lmHeadGroupBytes))
        let target = shape.streamsInPlace ? mappedChunkTarget : headChunkTarget
        let chunkGroups = max(1, min(headGroups, target / max(1, shape.lmHeadGroupBytes)))
        let chunk = chunkGroups * shape.lmHeadGroupBytes
        // What a head chunk holds: its slot, or the folios it maps in place.
        let headSlot = chunk + (shape.streamsInPlace ? mappedSlack : 0)
        let held = shape.streamsInPlace ? 1 : streamSlots
        // In place, a resident tensor touched next to the streamed span maps the folio they share,
        // streamed bytes included, until a streamed unit's drop takes it: a folio at each end of
        // the span (Qwen2.5-Coder-0.5B under 256M peaked 1.7 MiB above the plan without it).
        let edges = shape.streamsInPlace ? mappedSlack : 0
        let maxLayer = shape.layerSlotBytes.max() ?? 0
        // The smallest footprint: every layer and the head streamed.
        let minimum = fixed + held * max(maxLayer, headSlot) + edges + shape.lmHeadGroupBytes

        func make(_ streamed: Set<Int>, head: Bool) -> Plan {
            let resident = shape.layerBytes.enumerated().reduce(0) { $0 + (streamed.contains($1.offset) ? 0 : $1.element) }
                + (head ? 0 : shape.lmHeadBytes) + shape.residentBytes
            let unit = max(streamed.map { shape.layerSlotBytes[$0] }.max() ?? 0, head ? headSlot : 0)
            let slot = unit > 0 ? unit + edges : 0
            let streamedBytes = streamed.reduce(0) { $0 + shape.layerBytes[$1] } + (head ? shape.lmHeadBytes : 0)
            let peak = overhead + shape.stateBytes + resident + held * slot + (head ? shape.lmHeadGroupBytes : 0)
            return Plan(budget: budget, layers: shape.layerBytes.indices.map { streamed.contains($0) ? .streamed : .resident },
                        lmHead: head ? .streamed : .resident, lmHeadChunkBytes: head ? chunk : 0, slotBytes: slot,
                        streamsInPlace: shape.streamsInPlace, residentWeightBytes: resident, streamedBytesPerToken: streamedBytes,
                        stateBytes: shape.stateBytes, overheadBytes: overhead, peakBytes: peak, minimumBytes: minimum)
        }

        guard let budget else { return make([], head: false) }
        guard budget >= minimum else {
            throw PlanError(description: "needs at least \(mibUp(minimum)) for this model and context "
                + "(\(mib(shape.stateBytes)) KV cache and scratch, \(mib(overhead)) runtime and tokenizer, "
                + "\(mib(shape.residentBytes)) small tensors, \(mib(held * max(maxLayer, headSlot) + edges)) streaming cache) "
                + "(given \(mib(budget))); raise --mem-budget or lower the context (-c)")
        }
        // Stream as few bytes per token as fit: the last layers first (the prefetcher then has the
        // whole front of the network to hide their reads behind), the LM head only if needed.
        var best: Plan?
        for head in [false, true] {
            for k in 0...shape.layerBytes.count {
                let streamed = Set((shape.layerBytes.count - k)..<shape.layerBytes.count)
                let p = make(streamed, head: head)
                if p.peakBytes <= budget, best == nil || p.streamedBytesPerToken < best!.streamedBytesPerToken {
                    best = p
                }
                if p.peakBytes <= budget { break }
            }
        }
        return best ?? make(Set(shape.layerBytes.indices), head: true)
    }

    /// `n` in whole MiB, rounded up (for minimums: the number printed is always enough).
    public static func mibUp(_ n: Int) -> String { "\((n + (1 << 20) - 1) >> 20) MiB" }

    public static func mib(_ n: Int) -> String {
        n >= 10 << 20 ? "\(n >> 20) MiB" : String(format: "%.1f MiB", Double(n) / 1048576)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Parses sizes like `160M`, `1.5G`, `512MiB`, `4096` (bytes). Binary units (K = 1024).
public func parseByteSize(_ s: String) -> Int? {
    let t = s.trimmingCharacters(in: .whitespaces).uppercased()
    var num = t
    var mult = 1.0
    for (suffix, m) in [("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
                        ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)] where t.hasSuffix(suffix) {
        num = String(t.dropLast(suffix.count))
        mult = Double(m)
        break
    }
    guard let v = Double(num), v.isFinite, v > 0, v * mult < 1e18 else { return nil }
    return Int(v * mult)
}
