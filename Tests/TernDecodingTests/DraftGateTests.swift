import Foundation
import TernDecoding
import XCTest

/// The lookup gate's arithmetic: pass costs from measured times (extrapolated, outliers bounded),
/// acceptance per match length, and the draft count with the most tokens per unit of time.
final class DraftGateTests: XCTestCase {
    /// The count the gate should pick, worked out apart from it: the n in 0...proposed with the
    /// most tokens (1 + a + ... + a^n) per step of cost(n + 1), the first of equals.
    func bestCount(_ g: DraftGate, match: Int, proposed: Int) -> Int {
        let a = g.acceptance(match: match)
        let rate = { (n: Int) in (0...n).reduce(0.0) { $0 + pow(a, Double($1)) } / g.cost(rows: n + 1) }
        return (0...proposed).reduce(0) { rate($1) > rate($0) ? $1 : $0 }
    }

    func testBeforeAnythingIsMeasured() {
        let g = DraftGate()
        XCTAssertEqual(g.acceptance(match: 1), 0.5)
        XCTAssertEqual(g.cost(rows: 1), 1)
        XCTAssertEqual(g.cost(rows: 4), 1 + 3 * DraftGate.priorSlope, accuracy: 1e-12)
        // 1.5 tokens for 1.3 steps beats 1.75 for 1.6 and 1 for 1.
        XCTAssertEqual(g.draftCount(match: 1, proposed: 5), 1)
        XCTAssertEqual(g.draftCount(match: 1, proposed: 0), 0)
    }

    func testCostsFromPassTimes() {
        var g = DraftGate()
        g.recordPass(rows: 1, nanoseconds: 10_000)
        XCTAssertEqual(g.cost(rows: 3), 1 + 2 * DraftGate.priorSlope, accuracy: 1e-12, "nothing measured above one row")
        g.recordPass(rows: 2, nanoseconds: 16_000)
        g.recordPass(rows: 3, nanoseconds: 22_000)
        XCTAssertEqual(g.cost(rows: 2), 1.6, accuracy: 1e-12)
        XCTAssertEqual(g.cost(rows: 3), 2.2, accuracy: 1e-12)
        XCTAssertEqual(g.cost(rows: 5), 1 + 4 * 0.6, accuracy: 1e-12, "extrapolated from 3 rows")
        // A slow outlier (the thread descheduled) counts as at most twice the estimate.
        g.recordPass(rows: 1, nanoseconds: 1_000_000)
        XCTAssertEqual(g.cost(rows: 2), 16_000 / 12_500, accuracy: 1e-12)
        // A faster pass moves the average a quarter of the way.
        var h = DraftGate()
        h.recordPass(rows: 1, nanoseconds: 8_000)
        h.recordPass(rows: 1, nanoseconds: 4_000)
        h.recordPass(rows: 2, nanoseconds: 6_000)
        XCTAssertEqual(h.cost(rows: 2), 1, "7000 ns for one row: never below one step")
        let before = h
        h.recordPass(rows: 0, nanoseconds: 1)
        XCTAssertEqual(h, before, "zero rows is ignored")
    }

    /// Where verifying rows costs nearly a step each (a compute-bound core), only proposals that
    /// are nearly always right are worth verifying, and only those of their match length.
    func testDraftsOnlyWhatPays() {
        var g = DraftGate()
        for r in 1...5 { g.recordPass(rows: r, nanoseconds: UInt64(10_000 + 6_000 * (r - 1))) }
        XCTAssertEqual(g.draftCount(match: 1, proposed: 4), 0, "at 0.5, one draft yields 1.5 tokens for 1.6 steps")
        for _ in 0..<20 { g.recordProposal(match: 3, right: 4, wrong: false) }
        let a = g.acceptance(match: 3)
        XCTAssertGreaterThan(a, 0.95)
        // With a -> 1 the longest is best here.
        XCTAssertEqual(g.draftCount(match: 3, proposed: 4), bestCount(g, match: 3, proposed: 4))
        XCTAssertEqual(bestCount(g, match: 3, proposed: 4), 4)
        XCTAssertEqual(g.draftCount(match: 3, proposed: 2), 2, "no more than proposed")
        XCTAssertEqual(g.draftCount(match: 1, proposed: 4), 0, "other match lengths keep their own record")
        XCTAssertEqual(g.acceptance(match: 99), g.acceptance(match: DraftGate.maxMatch),
                       "long matches share the last entry")
        // Proposals that turn wrong bring the count back to none (a below 0.6 here: 1 + a tokens
        // for 1.6 steps) after a dozen.
        for _ in 0..<11 { g.recordProposal(match: 3, right: 0, wrong: true) }
        XCTAssertGreaterThan(g.draftCount(match: 3, proposed: 4), 0)
        g.recordProposal(match: 3, right: 0, wrong: true)
        XCTAssertLessThan(g.acceptance(match: 3), 0.6)
        XCTAssertEqual(g.draftCount(match: 3, proposed: 4), 0)
    }

    /// Where a batch costs little more than one token (a core waiting on memory), drafting pays
    /// even at middling acceptance.
    func testCheapVerificationDraftsAtMiddlingAcceptance() {
        var g = DraftGate()
        for r in 1...7 { g.recordPass(rows: r, nanoseconds: UInt64(10_000 + 500 * (r - 1))) }
        for _ in 0..<10 { g.recordProposal(match: 1, right: 1, wrong: true) }  // a = (k+1)/(t+2) close to 1/2
        XCTAssertEqual(g.acceptance(match: 1), 0.5, accuracy: 0.02)
        let n = g.draftCount(match: 1, proposed: 6)
        XCTAssertGreaterThanOrEqual(n, 3)
        XCTAssertEqual(n, bestCount(g, match: 1, proposed: 6), "the count with the most tokens per step")
    }

    /// Beside a model drafter (lookup passes always carry drafts there): a one-row pass is taken
    /// from the smallest measured size, the model drafter's rate from its steps, and the step
    /// goes to whichever of the two yields more tokens per unit of time.
    func testLookupAgainstTheModelDrafter() {
        var g = DraftGate()
        XCTAssertNil(g.choose(match: 2, proposed: 6), "nothing timed")
        g.recordPass(rows: 4, nanoseconds: 19_000)  // one row: 19000 / (1 + 3 x 0.3) = 10000
        XCTAssertEqual(g.cost(rows: 4), 1.9, accuracy: 1e-12)
        XCTAssertEqual(g.cost(rows: 2), 1.3, accuracy: 1e-12, "below the smallest measured: the prior")
        g.recordPass(rows: 7, nanoseconds: 40_000)
        XCTAssertEqual(g.cost(rows: 7), 4, accuracy: 1e-12)
        XCTAssertEqual(g.cost(rows: 6), 2.5, accuracy: 1e-12, "extrapolated from 4 rows")
        XCTAssertNil(g.modelRate)
        XCTAssertNil(g.choose(match: 2, proposed: 6), "no model step timed")
        g.recordModelStep(tokens: 3, nanoseconds: 20_000)  // 3 tokens in two one-row passes' time
        XCTAssertEqual(try XCTUnwrap(g.modelRate), 1.5, accuracy: 1e-12)
        // Worked out apart: the best n >= 1 by tokens per step, and lookup only above the model's rate.
        func expected(match: Int, proposed: Int) -> DraftGate.Choice {
            let a = g.acceptance(match: match)
            let rate = { (n: Int) in (0...n).reduce(0.0) { $0 + pow(a, Double($1)) } / g.cost(rows: n + 1) }
            let n = (1...proposed).reduce(1) { rate($1) > rate($0) ? $1 : $0 }
            return rate(n) > g.modelRate! ? .lookup(n) : .model
        }
        XCTAssertEqual(g.choose(match: 2, proposed: 6), .model, "a = 0.5: at best 1.5 tokens for 1.3 steps")
        XCTAssertEqual(expected(match: 2, proposed: 6), .model)
        for _ in 0..<30 { g.recordProposal(match: 3, right: 6, wrong: false) }
        XCTAssertEqual(g.choose(match: 3, proposed: 6), .lookup(5), "five drafts by the extrapolated 2.5 steps")
        XCTAssertEqual(expected(match: 3, proposed: 6), .lookup(5))
        XCTAssertEqual(g.choose(match: 3, proposed: 3), expected(match: 3, proposed: 3))
        XCTAssertEqual(g.choose(match: 3, proposed: 0), .model, "no proposal: the model")
        // The model drafter getting better takes the steps back.
        for _ in 0..<100 { g.recordModelStep(tokens: 6, nanoseconds: 20_000) }
        XCTAssertEqual(try XCTUnwrap(g.modelRate), 3, accuracy: 0.01)
        XCTAssertEqual(g.choose(match: 3, proposed: 6), .model)
        // A descheduled step counts as at most twice the time; zero tokens is ignored.
        let before = g
        g.recordModelStep(tokens: 0, nanoseconds: 5)
        XCTAssertEqual(g, before)
        g.recordModelStep(tokens: 6, nanoseconds: 1_000_000_000)
        XCTAssertEqual(try XCTUnwrap(g.modelRate), 6 / ((20_000 + 20_000 / 16) / 10_000), accuracy: 0.01)
        g.forgetModelSteps()
        XCTAssertNil(g.modelRate)
        XCTAssertEqual(g.cost(rows: 7), 4, accuracy: 1e-12, "lookup's record stays")
    }

    /// A model drafter slower than plain decoding: it keeps the steps until `modelTrust` of them
    /// are on record, then plain decoding takes them, but for one model step every `modelProbe`.
    func testPlainDecodingWhereTheModelDrafterLoses() {
        var g = DraftGate()
        g.recordPass(rows: 1, nanoseconds: 10_000)
        g.recordPass(rows: 2, nanoseconds: 17_000)
        for i in 1..<DraftGate.modelTrust {
            g.recordModelStep(tokens: 2, nanoseconds: 40_000)  // 2 tokens in 4 steps
            XCTAssertEqual(g.choose(match: 1, proposed: 0), .model, "\(i) steps on record")
        }
        g.recordModelStep(tokens: 2, nanoseconds: 40_000)
        XCTAssertEqual(try XCTUnwrap(g.modelRate), 0.5, accuracy: 1e-12)
        XCTAssertEqual(g.choose(match: 1, proposed: 1), .plain, "lookup: 1.5 tokens for 1.7 steps")
        for _ in 0..<20 { g.recordProposal(match: 2, right: 1, wrong: false) }
        XCTAssertEqual(g.choose(match: 2, proposed: 1), .lookup(1), "1.9 tokens for 1.7 steps")
        var choices: [DraftGate.Choice] = []
        for _ in 0..<2 * DraftGate.modelProbe {
            let c = g.choose(match: 1, proposed: 0)
            choices.append(c!)
            if c == .model { g.recordModelStep(tokens: 2, nanoseconds: 40_000) }
        }
        XCTAssertEqual(choices.filter { $0 == .model }.count, 2, "one probe per \(DraftGate.modelProbe) choices")
        XCTAssertEqual(choices.firstIndex(of: .model), DraftGate.modelProbe - 2)
        XCTAssertEqual(choices.filter { $0 == .plain }.count, 2 * DraftGate.modelProbe - 2)
    }

    /// A model step on record but no pass to compare it with: one plain step times a pass.
    func testAPlainStepTimesAPassForTheModelDrafter() {
        var g = DraftGate()
        XCTAssertNil(g.choose(match: 0, proposed: 0), "nothing on record: the caller's rule")
        g.recordModelStep(tokens: 3, nanoseconds: 30_000)
        XCTAssertNil(g.modelRate)
        XCTAssertEqual(g.choose(match: 0, proposed: 0), .plain)
        g.recordPass(rows: 1, nanoseconds: 12_000)
        XCTAssertEqual(try XCTUnwrap(g.modelRate), 1.2, accuracy: 1e-12)
        XCTAssertEqual(g.choose(match: 0, proposed: 0), .model)
    }
}
