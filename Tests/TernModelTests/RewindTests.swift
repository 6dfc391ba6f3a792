import Foundation
import Tern
import TernKernels
import TernModels
import TernTestSupport
import XCTest

/// Moving a sequence back (`Session.rewind`, what chat does to reuse a cached prefix) on a model
/// whose windowed layers keep their K/V in ring buffers of window + batch - 1 slots.
final class RewindTests: XCTestCase {
    /// TinyGemma: window 4 on its sliding layer; with batches of 4 that ring has 7 slots.
    func tiny() throws -> TernModel {
        try TinyGemma.load("tiny-rewind.tern", options: LoadOptions(maxBatch: 4))
    }

    let ids: [Int32] = (0..<40).map { (i: Int) -> Int32 in Int32(4 + (i * 5 + i / 3) % 8) }

    /// A move back that the rings allow continues exactly as a sequence that never went further;
    /// one they do not allow is refused, and a control shows what it would have read: positions
    /// 21-23 had reused the slots of 14-16, which position 17 attends to.
    func testRewindOnlyWhereTheRingsHoldTheWindow() throws {
        let model = try tiny(), par = Parallel(threads: 1)
        let s = Session(model: model, parallel: par, capacity: 64)
        try s.append(Array(ids[0..<24]))
        XCTAssertTrue(s.canRewind(to: 20), "a batch back: the ring holds 17-23")
        XCTAssertFalse(s.canRewind(to: 19), "more than a batch back: 16 is gone")
        XCTAssertThrowsError(try s.rewind(to: 25))
        XCTAssertThrowsError(try s.rewind(to: -1))
        try s.rewind(to: 20)
        XCTAssertEqual(s.position, 20)
        // 21-23 are still written (the ring holds 17-23): 17 would attend to 14-16, whose slots they reused.
        XCTAssertFalse(s.canRewind(to: 17))
        XCTAssertThrowsError(try s.rewind(to: 17)) { XCTAssertTrue("\($0)".contains("ring buffer"), "\($0)") }
        XCTAssertEqual(s.position, 20, "a refused move back changes nothing")
        try s.append(Array(ids[20..<30]))
        let fresh = Session(model: model, parallel: par, capacity: 64)
        try fresh.append(Array(ids[0..<30]))
        XCTAssertEqual(Array(s.logits), Array(fresh.logits), "moved back and continued = never went further, bit for bit")
        // After reset nothing stale counts: the same sequence may move back a batch again.
        s.reset()
        try s.append(Array(ids[0..<8]))
        XCTAssertTrue(s.canRewind(to: 4))

        // The control, through the model directly: continuing from 17 after 24 reads wrong keys.
        let lm = model.model
        func run(_ st: ModelState, _ from: Int, _ to: Int) throws {
            var p = from
            while p < to {
                let n = min(4 - p % 4, to - p)  // Session's batch boundaries are multiples of 4 from 0
                try lm.forward(tokens: Array(ids[p..<p + n]), startPos: p, layers: 0..<lm.layerCount, embed: true,
                               allLogits: false, state: st, parallel: par)
                p += n
            }
        }
        let wrong = lm.makeState(capacity: 64, maxBatch: 4, options: StateOptions(logitsRows: 1))
        try run(wrong, 0, 24)
        XCTAssertFalse(wrong.canRewind(from: 24, to: 19))
        try run(wrong, 17, 30)
        let diff = zip(wrong.logitsRow(0), fresh.logits).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(diff, 1e-3, "the refused move back would have changed the logits")
    }

    /// Without ring buffers (every position kept), any position back is allowed.
    func testWithoutRingsAnyPositionBack() throws {
        let lm = try tiny().model, par = Parallel(threads: 1)
        let st = lm.makeState(capacity: 64, maxBatch: 4, options: StateOptions(ringBuffers: false, logitsRows: 1))
        for p in stride(from: 0, to: 24, by: 4) {
            try lm.forward(tokens: Array(ids[p..<p + 4]), startPos: p, layers: 0..<lm.layerCount, embed: true,
                           allLogits: false, state: st, parallel: par)
        }
        XCTAssertTrue(st.canRewind(from: 24, to: 0))
        XCTAssertTrue(st.canRewind(from: 24, to: 13))
        XCTAssertFalse(st.canRewind(from: 24, to: 25))
    }
}
