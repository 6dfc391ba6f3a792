import Tern
import TernDecoding
import XCTest

/// What `tern calibrate` writes (``Calibrator/decision(given:verdict:settled:speedup:lookupVerdict:)``)
/// from the verdicts on the fresh prompts. No model and no timing.
final class CalibrationDecisionTests: XCTestCase {
    func decide(_ verdict: SpeedupSearch<Calibrator.Setting>.Verdict, _ speedup: Double,
                lookup: SpeedupSearch<Calibrator.Setting>.Verdict?, given: Bool = false, settled: Bool = true) -> Calibrator.Decision {
        Calibrator.decision(given: given, verdict: verdict, settled: settled, speedup: speedup, lookupVerdict: lookup)
    }

    /// A setting given with --speculate is stored whatever it measured; a searched one when
    /// clearly faster and every comparison of the search was decided.
    func testFasterOrGivenIsStored() {
        XCTAssertEqual(decide(.faster, 1.3, lookup: nil), .store)
        XCTAssertEqual(decide(.faster, 1.3, lookup: nil, settled: false), .unranked)
        XCTAssertEqual(decide(.slower, 0.8, lookup: .slower, given: true), .store)
        XCTAssertEqual(decide(.tooNoisy, 1.1, lookup: nil, given: true), .store)
        XCTAssertEqual(decide(.tooNoisy, 1.1, lookup: .tooNoisy), .tooNoisy)
    }

    /// Plain decoding is stored only where the best setting measured below plain decoding and
    /// lookup alone (gated, what `auto` drafts with uncalibrated) measured clearly slower.
    func testPlainOnlyWhereLookupIsClearlySlower() {
        XCTAssertEqual(decide(.slower, 0.88, lookup: .slower), .plain)
        XCTAssertEqual(decide(.equivalent, 0.97, lookup: .slower), .plain)
        XCTAssertEqual(decide(.undecided, 0.95, lookup: .slower), .plain)
        // The search's best is lookup alone, clearly slower (its verdict is lookup's).
        XCTAssertEqual(decide(.slower, 0.9, lookup: .slower), .plain)
    }

    /// Lookup alone merely even with plain decoding (Qwen2.5-Coder-1.5B on a Zen 4: 0.98x ± 1%
    /// on the four fresh prompts, 1.10x on bench/prompts.txt) keeps what `auto` does uncalibrated:
    /// nothing is written.
    func testLookupEvenWithPlainDecodingWritesNothing() {
        XCTAssertEqual(decide(.equivalent, 0.98, lookup: .equivalent), .even)
        XCTAssertEqual(decide(.slower, 0.88, lookup: .equivalent), .even)
        XCTAssertEqual(decide(.slower, 0.88, lookup: .undecided), .even)
        // Not below plain decoding: nothing either, however lookup did.
        XCTAssertEqual(decide(.equivalent, 1.02, lookup: .slower), .even)
    }

    /// A model drafter clearly faster than plain decoding is kept only where it is also clearly
    /// faster than lookup alone on the same fresh prompts; otherwise lookup alone replaces it
    /// where that is clearly faster than plain decoding (SmolLM2-135M on a Zen 4: the drafter with
    /// 6 drafts, 1.09x on the timing prompts, ran 1.00x on bench/prompts.txt, lookup alone 1.11-1.16x).
    func testDrafterMustBeatLookupAlone() {
        typealias Verdict = SpeedupSearch<Calibrator.Setting>.Verdict
        func prefers(_ d: Verdict, _ l: Verdict?) -> Bool {
            Calibrator.prefersLookup(drafterVersusLookup: d, lookupVersusPlain: l)
        }
        XCTAssertFalse(prefers(.faster, nil), "a drafter clearly faster than lookup stays (lookup not timed against plain)")
        XCTAssertFalse(prefers(.faster, .faster))
        for d in [Verdict.slower, .equivalent, .undecided, .tooNoisy] {
            XCTAssertTrue(prefers(d, .faster), "\(d): lookup alone, clearly faster than plain, replaces the drafter")
            for l in [Verdict.slower, .equivalent, .undecided, .tooNoisy] {
                XCTAssertFalse(prefers(d, l), "\(d), lookup \(l): the drafter, clearly faster than plain, stays")
            }
            XCTAssertFalse(prefers(d, nil))
        }
    }
}
