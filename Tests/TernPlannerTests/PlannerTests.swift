import TernPlanner
import XCTest

final class PlannerTests: XCTestCase {
    let MiB = 1 << 20
    /// Shaped like Gemma 3 270M as converted: 18 layers of ~5.4 MiB, a 170 MiB LM head.
    var shape: MemoryShape {
        MemoryShape(layerBytes: [Int](repeating: 5_400_000, count: 18), lmHeadBytes: 178_257_920, lmHeadGroupBytes: 2720,
                    residentBytes: 140_000, stateBytes: 3 * MiB, tokenizerBytes: 8 * MiB)
    }

    func testNoBudgetKeepsEverythingResident() throws {
        let p = try Planner.plan(shape, budget: nil)
        XCTAssertEqual(p.streamedLayers, 0)
        XCTAssertEqual(p.lmHead, .resident)
        XCTAssertEqual(p.slotBytes, 0)
        XCTAssertEqual(p.residentWeightBytes, 18 * 5_400_000 + 178_257_920 + 140_000)
        XCTAssertEqual(p.peakBytes, p.overheadBytes + p.stateBytes + p.residentWeightBytes)
    }

    func testEveryBudgetFromMinimumUpIsKept() throws {
        let minimum = try Planner.plan(shape, budget: nil).minimumBytes
        var previousStreamed = Int.max
        for budget in stride(from: minimum, through: 400 * MiB, by: 3 * MiB) {
            let p = try Planner.plan(shape, budget: budget)
            XCTAssertLessThanOrEqual(p.peakBytes, budget, "budget \(budget)")
            // More memory never means more streaming.
            XCTAssertLessThanOrEqual(p.streamedBytesPerToken, previousStreamed)
            previousStreamed = p.streamedBytesPerToken
            if p.lmHead == .resident {
                // Streamed layers are the last ones.
                let first = p.layers.firstIndex(of: .streamed) ?? p.layers.count
                XCTAssertTrue(p.layers[first...].allSatisfy { $0 == .streamed })
            }
        }
        XCTAssertEqual(try Planner.plan(shape, budget: 400 * MiB).streamedBytesPerToken, 0)
    }

    func testTightBudgetStreamsTheHeadAndPicksTheLeastStreaming() throws {
        let p = try Planner.plan(shape, budget: 160 * MiB)
        XCTAssertEqual(p.lmHead, .streamed, "170 MiB of head cannot stay resident in 160 MiB")
        XCTAssertEqual(p.lmHeadChunkBytes % 2720, 0)
        XCTAssertLessThanOrEqual(p.peakBytes, 160 * MiB)
        // With the head streamed, every layer fits resident.
        XCTAssertEqual(p.streamedLayers, 0)
        XCTAssertEqual(p.streamedBytesPerToken, 178_257_920)
        // Just above the resident total, only the last layers stream.
        let all = try Planner.plan(shape, budget: nil).peakBytes
        let q = try Planner.plan(shape, budget: all - 8 * MiB)
        XCTAssertEqual(q.lmHead, .resident)
        XCTAssertGreaterThan(q.streamedLayers, 0)
        XCTAssertEqual(q.layers.last, .streamed)
    }

    /// Streamed in place, a plan holds one unit's folios instead of three slots: a layer's
    /// (its `layerSlotBytes`, the folios its largest chunk maps) or an LM-head chunk of about
    /// `mappedChunkTarget` bytes plus a folio at each end; and the folios at the streamed span's ends.
    func testStreamingInPlaceHoldsOneUnitsFolios() throws {
        var s = shape
        s.streamsInPlace = true
        s.layerSlotBytes = [Int](repeating: 6 * MiB, count: 18)
        let p = try Planner.plan(s, budget: 160 * MiB)
        XCTAssertTrue(p.streamsInPlace)
        XCTAssertEqual(p.streamUnitsHeld, 1)
        XCTAssertEqual(p.lmHead, .streamed)
        XCTAssertEqual(p.lmHeadChunkBytes, Planner.mappedChunkTarget / 2720 * 2720)
        // The chunk's folios, and a folio at each end of the streamed span (resident neighbours).
        XCTAssertEqual(p.slotBytes, p.lmHeadChunkBytes + 2 * Planner.mappedSlack)
        XCTAssertEqual(p.peakBytes, p.overheadBytes + p.stateBytes + p.residentWeightBytes + p.slotBytes + 2720)
        let all = try Planner.plan(s, budget: nil)
        XCTAssertEqual(all.minimumBytes, all.overheadBytes + all.stateBytes + 140_000 + max(6 * MiB + Planner.mappedSlack, p.slotBytes) + 2720)
        // Copied, the same shape holds three slots of the 2 MiB head chunks.
        let copied = try Planner.plan(shape, budget: 160 * MiB)
        XCTAssertFalse(copied.streamsInPlace)
        XCTAssertEqual(copied.streamUnitsHeld, Planner.streamSlots)
        XCTAssertEqual(copied.peakBytes, copied.overheadBytes + copied.stateBytes + copied.residentWeightBytes
                       + Planner.streamSlots * copied.slotBytes + 2720)
        for budget in stride(from: all.minimumBytes, through: 400 * MiB, by: 5 * MiB) {
            XCTAssertLessThanOrEqual(try Planner.plan(s, budget: budget).peakBytes, budget)
        }
    }

    func testBudgetBelowMinimumIsRefusedWithTheMinimum() throws {
        let minimum = try Planner.plan(shape, budget: nil).minimumBytes
        XCTAssertThrowsError(try Planner.plan(shape, budget: 16 * MiB)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix("needs at least \(Planner.mibUp(minimum)) for"), s)
            XCTAssertGreaterThanOrEqual(Int(s.split(separator: " ")[3])! << 20, minimum, "the stated minimum is enough")
            XCTAssertTrue(s.contains("(given 16 MiB)"), s)
        }
        XCTAssertNoThrow(try Planner.plan(shape, budget: minimum))
        XCTAssertThrowsError(try Planner.plan(shape, budget: minimum - 1))
    }

    /// Below the f16 minimum but above the q8 one, the KV cache goes q8; `kv` forces a precision.
    func testQ8KVOnlyWhenTheBudgetNeedsIt() throws {
        var s = shape
        s.stateBytes = 40 * MiB
        s.stateBytesQ8KV = 24 * MiB
        let f16Min = try Planner.plan(s, budget: nil).minimumBytes
        XCTAssertEqual(try Planner.plan(s, budget: f16Min).kvPrecision, "f16")
        let tight = try Planner.plan(s, budget: f16Min - 8 * MiB)
        XCTAssertEqual(tight.kvPrecision, "q8")
        XCTAssertLessThanOrEqual(tight.peakBytes, f16Min - 8 * MiB)
        XCTAssertEqual(try Planner.plan(s, budget: nil, kv: "q8").kvPrecision, "q8")
        XCTAssertThrowsError(try Planner.plan(s, budget: f16Min - 30 * MiB)) { e in
            XCTAssertTrue("\(e)".contains("needs at least"), "\(e)")
        }
    }

    func testByteSizes() {
        XCTAssertEqual(parseByteSize("160M"), 160 << 20)
        XCTAssertEqual(parseByteSize("1.5G"), 3 << 29)
        XCTAssertEqual(parseByteSize("512MiB"), 512 << 20)
        XCTAssertEqual(parseByteSize("64k"), 64 << 10)
        XCTAssertEqual(parseByteSize("4096"), 4096)
        for bad in ["", "M", "-5M", "12Q", "1e30G", "nan"] { XCTAssertNil(parseByteSize(bad), bad) }
    }

    /// Speculation's allowance (SpecMemo-style): granted in full without a budget; under one it
    /// comes out of what the rest leaves, shrinks (fewer drafts, then a smaller head, then
    /// nothing) as the budget tightens, never breaks the budget, never raises the minimum and
    /// never changes the KV precision.
    func testDraftAllowanceShrinksBeforeAnythingFails() throws {
        var s = shape
        s.logitsRowBytes = 4 * 262_144
        s.draftHeadRowBytes = 684
        s.hiddenRowBytes = 4 * 640
        s.stateBytesQ8KV = 2 * MiB
        let want = DraftRequest(maxDraft: 6, vocab: 16384)
        XCTAssertEqual(want.bytes(s), 6 * 4 * 262_144 + 16384 * 684 + 7 * 4 * 640)
        let free = try Planner.plan(s, budget: nil, draft: want)
        XCTAssertEqual([free.maxDraft, free.draftVocab, free.draftBytes], [6, 16384, want.bytes(s)])
        XCTAssertEqual(free.peakBytes, try Planner.plan(s, budget: nil).peakBytes + want.bytes(s))
        let minimum = try Planner.plan(s, budget: nil).minimumBytes
        XCTAssertEqual(try Planner.plan(s, budget: minimum, draft: want).maxDraft, 0, "nothing left at the minimum")
        XCTAssertEqual(try Planner.plan(s, budget: minimum, draft: want).kvPrecision, try Planner.plan(s, budget: minimum).kvPrecision)
        for budget in stride(from: minimum - 4 * MiB, through: minimum, by: 256 << 10) {
            XCTAssertEqual((try? Planner.plan(s, budget: budget, draft: want)) == nil, (try? Planner.plan(s, budget: budget)) == nil,
                           "speculation never changes whether a budget fits (\(budget))")
        }
        var sawPartial = false, previous = 0
        for budget in stride(from: minimum, through: 400 * MiB, by: MiB) {
            let p = try Planner.plan(s, budget: budget, draft: want)
            XCTAssertLessThanOrEqual(p.peakBytes, budget)
            XCTAssertEqual(p.kvPrecision, try Planner.plan(s, budget: budget).kvPrecision, "budget \(budget)")
            XCTAssertEqual(p.draftBytes, DraftRequest(maxDraft: p.maxDraft, vocab: p.draftVocab).bytes(s))
            XCTAssertGreaterThanOrEqual(p.draftBytes, previous, "more memory never means less speculation")
            previous = p.draftBytes
            if p.maxDraft > 0 && p.draftBytes < want.bytes(s) { sawPartial = true }
        }
        XCTAssertTrue(sawPartial, "between the minimum and plenty, a shrunken allowance")
        XCTAssertEqual(want.shrinking.first, want)
        XCTAssertEqual(want.shrinking.last, DraftRequest(maxDraft: 1, vocab: 0))
    }
}
