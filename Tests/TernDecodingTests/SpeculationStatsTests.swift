import TernDecoding
import XCTest

final class SpeculationStatsTests: XCTestCase {
    /// `add` sums every field: one decode's figures added to zero give them back, twice give
    /// double, and the summed key paths cover every stored field (a new one must be added there).
    func testAddSumsEveryField() {
        var s = SpeculationStats()
        for (i, k) in SpeculationStats.counts.enumerated() { s[keyPath: k] = 3 + i }
        for (i, k) in SpeculationStats.times.enumerated() { s[keyPath: k] = UInt64(1_000 + i) }
        XCTAssertEqual(Mirror(reflecting: s).children.count, SpeculationStats.counts.count + SpeculationStats.times.count)
        var t = SpeculationStats()
        t.add(s)
        XCTAssertEqual(t, s)
        t.add(s)
        for k in SpeculationStats.counts { XCTAssertEqual(t[keyPath: k], 2 * s[keyPath: k]) }
        for k in SpeculationStats.times { XCTAssertEqual(t[keyPath: k], 2 * s[keyPath: k]) }
        XCTAssertEqual(t.acceptanceRate, s.acceptanceRate, accuracy: 1e-12)
    }
}
