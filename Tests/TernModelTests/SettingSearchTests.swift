import Tern
import XCTest

/// `tern calibrate`'s staged search (``Calibrator/SettingSearch``) on synthetic speeds: which
/// settings it times, from where, and what it ends with. No model and no timing.
final class SettingSearchTests: XCTestCase {
    typealias Setting = Calibrator.Setting

    /// Runs a search where `speed` is each setting's true speed and every comparison is decided
    /// by it; returns the search and the candidates it timed, in order.
    func search(_ mode: Calibrator.Mode, layers: Int = 24, order: [Int]? = nil, speed: (Setting) -> Double) throws
        -> (Calibrator.SettingSearch, [Setting]) {
        var s = Calibrator.SettingSearch(layers: layers, vocabSize: 49152, mode: mode)
        var timed: [Setting] = []
        var askedOrder = 0
        try s.run(isFaster: { c, best in
            XCTAssertNotEqual(c, best, "a setting is never timed against itself")
            timed.append(c)
            return speed(c) > speed(best)
        }, layerOrder: {
            askedOrder += 1
            return order ?? [5, 3, 9, 1] + (0..<layers).filter { ![5, 3, 9, 1].contains($0) }
        })
        XCTAssertEqual(askedOrder, mode == .full ? 1 : 0)
        return (s, timed)
    }

    /// Lookup alone beats the full-depth draft head, but a draft that exits two layers early
    /// beats lookup: the exit stage refines the model drafter though lookup leads, and wins.
    func testModelDrafterStagesRunWhenLookupLeads() throws {
        let (s, timed) = try search(.full) { c in
            if c.lookupOnly { return 1.2 }
            var v = c.exitLayer == 22 ? 1.4 : 1.0
            if c.maxDraft != 6 || c.minProbability != 0 || !c.skip.isEmpty || c.lookupMatch != 2 { v -= 0.05 }
            return v
        }
        XCTAssertEqual(s.best, Setting(exitLayer: 22, vocab: 16384, maxDraft: 6, minProbability: 0))
        XCTAssertEqual(s.bestModel, s.best)
        // The stages after lookup took the lead started from the model drafter, not from lookup.
        let afterLookup = timed.drop { !$0.lookupOnly }.dropFirst()
        let exits = afterLookup.filter { $0.exitLayer < 24 && $0.lookupMatch == 2 }
        XCTAssertEqual(exits.map(\.exitLayer), [23, 22, 20])
        XCTAssertTrue(exits.allSatisfy { !$0.lookupOnly && $0.vocab == 16384 })
        XCTAssertEqual(afterLookup.filter { !$0.skip.isEmpty }.map(\.skip), [[5], [3, 5], [1, 3, 5, 9]])
        // The exit won, so the match-length stage ran on it.
        XCTAssertEqual(timed.suffix(2).map(\.lookupMatch), [1, 3])
        XCTAssertTrue(timed.suffix(2).allSatisfy { $0.exitLayer == 22 })
    }

    /// When lookup alone stays best, the model-drafter stages are still timed against it, and
    /// the match-length stage (which only orders lookup before a model drafter) is not.
    func testLookupStaysBestAfterEveryModelStage() throws {
        let (s, timed) = try search(.full) { c in c.lookupOnly ? (c.maxDraft == 8 ? 1.3 : 1.2) : 1.0 }
        XCTAssertTrue(s.best.lookupOnly)
        XCTAssertEqual(s.best.maxDraft, 8)
        XCTAssertEqual(s.bestModel, Setting(exitLayer: 24, vocab: 16384, maxDraft: 6, minProbability: 0))
        XCTAssertEqual(timed.filter { $0.minProbability > 0 }.count, 2)
        XCTAssertEqual(timed.filter { $0.exitLayer < 24 }.count, 3)
        XCTAssertEqual(timed.filter { !$0.skip.isEmpty }.count, 3)
        XCTAssertFalse(timed.contains { $0.lookupMatch != 2 })
    }

    /// Lookup alone is timed first (a search cut short by its time limit has it), and when it
    /// leads, the vocabulary stage times model drafters against it: a larger draft head can win.
    func testLookupFirstThenVocabularyFromTheModelDrafter() throws {
        let (s, timed) = try search(.full) { c in
            if c.lookupOnly { return 1.2 }
            return c.vocab == 32768 && c.maxDraft == 6 && c.minProbability == 0 && c.exitLayer == 24 && c.skip.isEmpty
                && c.lookupMatch == 2 ? 1.3 : 1.0
        }
        XCTAssertTrue(timed[0].lookupOnly)
        XCTAssertEqual(timed[1...3].map(\.vocab), [4096, 8192, 32768])
        XCTAssertTrue(timed[1...3].allSatisfy { !$0.lookupOnly && $0.exitLayer == 24 && $0.maxDraft == 6 })
        XCTAssertEqual(s.best, Setting(exitLayer: 24, vocab: 32768, maxDraft: 6, minProbability: 0))
        XCTAssertEqual(s.bestModel, s.best)
    }

    /// The chosen setting is confirmed on prompts that neither chose it nor fed the frequency
    /// counts, and that the benchmark's held-out prompts (bench/prompts.txt) do not contain.
    func testConfirmationPromptsAreFresh() throws {
        let confirm = Set(Calibrator.confirmationPrompts)
        XCTAssertEqual(confirm.count, Calibrator.confirmationPrompts.count)
        XCTAssertGreaterThanOrEqual(confirm.count, 4)
        XCTAssertTrue(confirm.isDisjoint(with: Calibrator.timingPrompts))
        XCTAssertTrue(confirm.isDisjoint(with: Calibrator.seedPrompts))
        let held = try SpeculationTests.benchPrompts()
        XCTAssertEqual(held.count, 20)
        XCTAssertTrue(confirm.isDisjoint(with: held))
    }

    /// No layer order (calibration ran out of time before measuring one): no skip setting is timed.
    func testEmptyLayerOrderSkipsTheSkipStage() throws {
        let (s, timed) = try search(.full, order: []) { c in c.exitLayer == 22 ? 2 : 1 }
        // lookup, 3 vocabularies, 4 draft lengths, 2 min-p, 3 exits, 2 match lengths: no skip stage
        XCTAssertEqual(timed.count, 15)
        XCTAssertFalse(timed.contains { !$0.skip.isEmpty })
        XCTAssertEqual(s.best.exitLayer, 22)
        XCTAssertEqual(timed.suffix(2).map(\.lookupMatch), [1, 3])
    }

    /// Quick mode: lookup alone and a draft length of 4, nothing else.
    func testQuickModeTimesTwoSettings() throws {
        let (s, timed) = try search(.quick) { c in c.maxDraft == 4 ? 2 : 1 }
        XCTAssertEqual(timed.count, 2)
        XCTAssertTrue(timed[0].lookupOnly)
        XCTAssertEqual(s.best, Setting(exitLayer: 24, vocab: 16384, maxDraft: 4, minProbability: 0))
    }
}
