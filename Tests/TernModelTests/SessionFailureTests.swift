import Foundation
import Tern
import TernDecoding
import TernKernels
import TernModels
import TernTestSupport
import XCTest

/// What a `Session` holds after a call that fails, a move back, or a token it drops: the tokens
/// of a failed `append` are not in the sequence, and nothing samples from logits that are not the
/// current position's. A token id outside the vocabulary makes a batch fail where wanted.
final class SessionFailureTests: XCTestCase {
    /// TinyGemma (12 tokens): window 4 on its sliding layer; with batches of 4 that ring has 7 slots.
    func tiny() throws -> TernModel {
        try TinyGemma.load("tiny-session-failure.tern", options: LoadOptions(maxBatch: 4))
    }

    let ids: [Int32] = (0..<40).map { (i: Int) -> Int32 in Int32(4 + (i * 5 + i / 3) % 8) }
    let bad: Int32 = 9999

    /// The logits after feeding `tokens` from position 0 to a fresh session.
    func reference(_ model: TernModel, _ tokens: [Int32], ringBuffers: Bool = true) throws -> [Float] {
        let s = Session(model: model, parallel: Parallel(threads: 1), capacity: 64,
                        options: StateOptions(ringBuffers: ringBuffers, logitsRows: 1))
        try s.append(tokens)
        return Array(s.logits)
    }

    /// A failed batch puts the sequence back where it was, pending token included, and what
    /// follows is what a sequence that never saw the failed call gives, bit for bit. Before the
    /// fix the position moved on over the batches that ran, and the next prompt followed them.
    func testFailedAppendLeavesTheSequenceWhereItWas() throws {
        let model = try tiny(), par = Parallel(threads: 1)
        let s = Session(model: model, parallel: par, capacity: 64)
        try s.append(Array(ids[0..<10]))
        // One batch, failing on its last token: positions 10 and 11 were written, then rolled back.
        XCTAssertThrowsError(try s.append([ids[10], ids[11], bad])) { XCTAssertTrue("\($0)".contains("9999"), "\($0)") }
        XCTAssertEqual(s.position, 10)
        XCTAssertNil(s.pending)
        XCTAssertTrue(s.logits.isEmpty, "the failed batch's logits are not position 10's")
        XCTAssertThrowsError(try s.decode(maxTokens: 1, sampler: &greedy) { _ in true }) {
            XCTAssertTrue("\($0)".contains("append a token first"), "\($0)")
        }
        try s.append(Array(ids[10..<14]))
        XCTAssertEqual(Array(s.logits), try reference(model, Array(ids[0..<14])))

        // A pending token is fed first; when its batch fails it is pending again.
        var t: Int32 = -1
        try s.decode(maxTokens: 1, sampler: &greedy) { t = $0; return true }
        XCTAssertEqual(s.pending, t)
        XCTAssertThrowsError(try s.append([bad]))
        XCTAssertEqual(s.position, 14)
        XCTAssertEqual(s.pending, t)
        try s.append(Array(ids[14..<17]))
        XCTAssertEqual(s.position, 18)
        XCTAssertEqual(Array(s.logits), try reference(model, Array(ids[0..<14]) + [t] + Array(ids[14..<17])))
    }

    /// Where the batches that ran have reused ring slots the old position needs, the sequence
    /// starts again from 0 (and says so through `position`); without rings it always goes back.
    func testFailedLongAppendResetsOnlyWhereTheRingsLostTheWindow() throws {
        let model = try tiny(), par = Parallel(threads: 1)
        let s = Session(model: model, parallel: par, capacity: 64)
        try s.append(Array(ids[0..<10]))
        // Batches 10-13 and 14-16 ran, then the failing one: the 7-slot ring holds 12-18, and
        // position 10 attends back to 7.
        XCTAssertThrowsError(try s.append(Array(ids[10..<17]) + [bad]))
        XCTAssertEqual(s.position, 0)
        XCTAssertNil(s.pending)
        try s.append(Array(ids[0..<12]))
        XCTAssertEqual(Array(s.logits), try reference(model, Array(ids[0..<12])))

        let flat = Session(model: model, parallel: par, capacity: 64,
                           options: StateOptions(ringBuffers: false, logitsRows: 1))
        try flat.append(Array(ids[0..<10]))
        XCTAssertThrowsError(try flat.append(Array(ids[10..<21]) + [bad]))
        XCTAssertEqual(flat.position, 10, "every position kept: three batches back is fine")
        try flat.append(Array(ids[10..<12]))
        XCTAssertEqual(Array(flat.logits), try reference(model, Array(ids[0..<12]), ringBuffers: false))
    }

    /// After a move back the state's logits are an earlier position's: decoding refuses until a
    /// token is fed (before the fix it sampled from them).
    func testNoDecodingFromStaleLogitsAfterAMoveBack() throws {
        let model = try tiny(), par = Parallel(threads: 1)
        let s = Session(model: model, parallel: par, capacity: 64)
        XCTAssertThrowsError(try s.decode(maxTokens: 1, sampler: &greedy) { _ in true }) {
            XCTAssertTrue("\($0)".contains("append a prompt first"), "\($0)")
        }
        try s.append(Array(ids[0..<10]))
        try s.rewind(to: 10)
        XCTAssertFalse(s.logits.isEmpty, "moving to the same position keeps its logits")
        try s.rewind(to: 8)
        XCTAssertTrue(s.logits.isEmpty)
        XCTAssertThrowsError(try s.decode(maxTokens: 1, sampler: &greedy) { _ in true }) {
            XCTAssertTrue("\($0)".contains("no logits at position 8"), "\($0)")
        }
        try s.append([ids[8]])
        XCTAssertEqual(Array(s.logits), try reference(model, Array(ids[0..<9])))
    }

    /// Speculative decoding leaves the current position's logits in the row of the last kept
    /// draft. After a token is dropped (a stop token, a cancel) they are still current, and
    /// decoding goes on from them. Before the fix it sampled from row 0, an earlier position's.
    func testLogitsAfterSpeculationAreTheCurrentPositions() throws {
        let model = try tiny(), par = Parallel(threads: 1)
        let s = Session(model: model, parallel: par, capacity: 64, options: StateOptions(logitsRows: 4))
        let prompt = Array(ids[0..<24])
        try s.append(prompt)
        var drafters = Drafters(lookup: LookupDrafter())
        drafters.gate = nil  // the fixed schedule, which ends on a pass with kept drafts here
        var history = prompt, stats = SpeculationStats(), got: [Int32] = []
        try s.decodeSpeculative(maxTokens: 14, sampler: &greedy, drafters: &drafters, maxDraft: 3,
                                history: &history, stats: &stats) { got.append($0); return true }
        XCTAssertGreaterThan(stats.accepted, 0)  // row 0 would differ by 0.36 here
        XCTAssertEqual(s.position, 37)
        s.discardPending()
        let want = try reference(model, prompt + got[0..<13])
        let diff = zip(s.logits, want).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertEqual(s.logits.count, want.count)
        XCTAssertLessThan(diff, 1e-3, "position 37's logits (batches differ from the reference's, so not bit for bit)")
        var again: Int32 = -1
        try s.decode(maxTokens: 1, sampler: &greedy) { again = $0; return true }
        XCTAssertEqual(again, got[13], "the dropped token, drawn again from the same logits")
    }

    var greedy = Sampler(SamplingParameters(temperature: 0, topK: 40, topP: 1, seed: 0))
}
