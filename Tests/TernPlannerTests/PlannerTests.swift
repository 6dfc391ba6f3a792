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
}
