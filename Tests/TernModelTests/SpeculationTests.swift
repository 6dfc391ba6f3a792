import Foundation
import Tern
import TernDecoding
import TernTestSupport
import XCTest

/// Self-speculative decoding on the real Gemma 3 270M: every drafter gives exactly the tokens of
/// plain greedy decoding.
final class SpeculationTests: XCTestCase {
    static func benchPrompts() throws -> [String] {
        let file = TestSupport.packageRoot.appendingPathComponent("bench/prompts.txt").path
        let text = try String(contentsOfFile: file, encoding: .utf8)
        return text.split(separator: "\n").map { $0.replacingOccurrences(of: "\\n", with: "\n") }
    }

    /// 20 varied prompts (bench/prompts.txt) x 64 tokens, for lookup, reduced-vocabulary heads
    /// (a small one that is often wrong, a larger one), early exit with the full head, early exit
    /// combined with a reduced head, layer skip, and auto with the adaptive stop (a calibration
    /// set here):
    /// token for token the same as plain greedy decoding, every token accounted for.
    func testEveryDrafterEqualsPlainGreedy() throws {
        let model = try TernModel(path: try TestSupport.convertedGemma())
        let gen = Generator(model: model, threads: 2)
        let prompts = try Self.benchPrompts()
        XCTAssertEqual(prompts.count, 20)
        let modes = ["lookup", "vocab:2048", "vocab:16384", "early-exit:9", "early-exit:15+vocab:8192+lookup", "skip:8,9+vocab:16384", "auto"]
        var totals = [String: SpeculationStats]()
        let ranking = model.draftRanking(32768, calibration: nil)
        for p in prompts {
            gen.calibration = nil
            let plain = try gen.generate(prompt: p, maxTokens: 64, sampling: SamplingParameters(temperature: 0))
            for mode in modes {
                gen.calibration = mode == "auto"
                    ? DraftCalibration(ranking: ranking, vocab: 8192, exitLayer: 18, maxDraft: 7, minProbability: 0.3) : nil
                let spec = try gen.generate(prompt: p, maxTokens: 64, sampling: SamplingParameters(temperature: 0),
                                            speculation: try Speculation(parsing: mode))
                XCTAssertEqual(spec.tokens, plain.tokens, "--speculate \(mode), prompt \(p.debugDescription)")
                let st = try XCTUnwrap(spec.speculation, mode)
                XCTAssertEqual(st.produced, spec.tokens.count - 1, "\(mode): every token after the first comes from a verification pass")
                XCTAssertLessThanOrEqual(st.accepted, st.drafted)
                var t = totals[mode] ?? SpeculationStats()
                t.steps += st.steps; t.drafted += st.drafted; t.accepted += st.accepted
                t.lookupSteps += st.lookupSteps; t.modelSteps += st.modelSteps
                totals[mode] = t
            }
        }
        for mode in modes {
            let t = totals[mode]!
            print("SpeculationTests: \(mode): \(t.accepted) of \(t.drafted) drafts accepted, \(t.lookupSteps) lookup + \(t.modelSteps) model steps")
            XCTAssertGreaterThan(t.accepted, 0, mode)
        }
        XCTAssertEqual(totals["vocab:16384"]!.lookupSteps, 0, "no lookup unless asked")
        XCTAssertGreaterThan(totals["auto"]!.lookupSteps, 0, "auto drafts by lookup when the context repeats")
        XCTAssertGreaterThan(totals["auto"]!.modelSteps, 0, "and by the model otherwise")
        XCTAssertGreaterThan(totals["vocab:16384"]!.acceptanceRate, totals["vocab:2048"]!.acceptanceRate)
    }

    /// A draft through every layer and the full head is the model itself: every draft is
    /// accepted, so reusing the draft's KV entries and hidden states is exactly right.
    func testFullDepthFullHeadDraftIsAlwaysAccepted() throws {
        let model = try TernModel(path: try TestSupport.convertedGemma())
        let gen = Generator(model: model, threads: 2)
        gen.maxDraft = 5
        for p in try Self.benchPrompts().prefix(3) {
            let s = try gen.generate(prompt: p, maxTokens: 40, sampling: SamplingParameters(temperature: 0), speculation: try Speculation(parsing: "early-exit:18"))
            let st = try XCTUnwrap(s.speculation)
            XCTAssertEqual(st.accepted, st.drafted, p)
            XCTAssertGreaterThan(st.drafted, 20)
        }
    }

    func testSpeculateSyntax() throws {
        XCTAssertEqual(try Speculation(parsing: "off"), .off)
        XCTAssertEqual(try Speculation(parsing: "auto"), .automatic)
        XCTAssertEqual(try Speculation(parsing: "vocab:4096+lookup"), Speculation(lookup: true, vocab: 4096))
        XCTAssertEqual(try Speculation(parsing: "early-exit").earlyExit, 0)
        XCTAssertEqual(try Speculation(parsing: "early-exit:12+vocab").description, "early-exit:12+vocab")
        XCTAssertEqual(try Speculation(parsing: "skip:3,5+vocab:100").skip, [3, 5])
        XCTAssertEqual(try Speculation(parsing: "skip").skip, [])
        for bad in ["", "vocab:0", "vocab:x", "lookup:3", "skip:a", "skip:1,", "auto+lookup", "bogus"] {
            XCTAssertThrowsError(try Speculation(parsing: bad), bad)
        }
    }
}
