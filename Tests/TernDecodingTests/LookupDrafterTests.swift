import TernDecoding
import XCTest

final class LookupDrafterTests: XCTestCase {
    func testProposesWhatFollowedTheLatestMatch() {
        var d = LookupDrafter()
        // "1 2 3 4 5 ... 1 2 3" -> the trigram 1 2 3 was followed by 4 5 9
        XCTAssertEqual(d.propose(after: [1, 2, 3, 4, 5, 9, 7, 1, 2, 3], limit: 3), [4, 5, 9])
        XCTAssertEqual(d.propose(after: [1, 2, 3, 4, 5, 9, 7, 1, 2, 3], limit: 1), [4])
        // The most recent earlier occurrence wins.
        XCTAssertEqual(d.propose(after: [8, 1, 6, 8, 2, 8], limit: 2), [2, 8])
        // Falls back to shorter n-grams; nothing when no token repeats.
        XCTAssertEqual(d.propose(after: [5, 6, 7, 6], limit: 2), [7, 6])
        XCTAssertEqual(d.propose(after: [1, 2, 3], limit: 4), [])
        XCTAssertEqual(d.propose(after: [], limit: 4), [])
        XCTAssertEqual(d.propose(after: [4, 4], limit: 0), [])
        XCTAssertEqual(d.propose(after: [4, 4], limit: 3), [4])
    }

    func testStatsArithmetic() {
        var s = SpeculationStats()
        s.steps = 4
        s.drafted = 10
        s.accepted = 6
        s.produced = 10
        XCTAssertEqual(s.acceptanceRate, 0.6)
        XCTAssertEqual(s.tokensPerStep, 2.5)
    }
}
