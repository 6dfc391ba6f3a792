import Foundation
import Tern
import TernDecoding
import TernKernels
import TernModels
import XCTest

/// The lookup gate inside a speculative decode (TinyGemma, greedy): where verification is priced
/// far above a step it drafts nothing yet scores every proposal against the tokens produced;
/// where it is priced at one step it drafts; the tokens are plain greedy decoding's either way.
final class DraftGateDecodeTests: XCTestCase {
    let ids: [Int32] = (0..<24).map { (i: Int) -> Int32 in Int32(4 + (i * 5 + i / 3) % 8) }

    func decode(_ model: TernModel, gate: DraftGate?, plain: Bool = false, drafter: ModelDrafter? = nil,
                lookup: Bool = true) throws -> ([Int32], SpeculationStats, DraftGate?) {
        let s = Session(model: model, parallel: Parallel(threads: 1), capacity: 64,
                        options: StateOptions(logitsRows: 4))
        try s.append(ids)
        var sampler = Sampler(SamplingParameters(temperature: 0))
        var got: [Int32] = [], stats = SpeculationStats()
        if plain {
            try s.decode(maxTokens: 14, sampler: &sampler) { got.append($0); return true }
            return (got, stats, nil)
        }
        var drafters = Drafters(lookup: lookup ? LookupDrafter() : nil, model: drafter)
        drafters.gate = gate
        var history = ids
        try s.decodeSpeculative(maxTokens: 14, sampler: &sampler, drafters: &drafters, maxDraft: 3,
                                history: &history, stats: &stats) { got.append($0); return true }
        return (got, stats, drafters.gate)
    }

    func testTheGateDraftsOnlyWhereItPays() throws {
        let model = try TinyGemma.load("tiny-draft-gate.tern", options: LoadOptions(maxBatch: 4))
        let (plain, _, _) = try decode(model, gate: nil, plain: true)
        XCTAssertEqual(plain.count, 14)

        // Verifying 2-4 rows priced at 10^9 steps: real passes of one row move its estimate up by at most
        // 2x each, so nothing is ever drafted.
        var costly = DraftGate()
        costly.recordPass(rows: 1, nanoseconds: 1_000)
        for r in 2...4 { costly.recordPass(rows: r, nanoseconds: 1_000_000_000_000) }
        let (tokens, stats, learned) = try decode(model, gate: costly)
        XCTAssertEqual(tokens, plain)
        XCTAssertEqual(stats.drafted, 0)
        XCTAssertEqual(stats.lookupSteps, stats.steps)
        XCTAssertEqual(stats.steps, 13)
        // Every step's proposal was still scored: its first token against the token decoding
        // produced next, per match length (replayed here with the gate's decay).
        var kept = [Double](repeating: 0, count: 4), tried = kept, scored = 0
        for i in 0..<13 {
            var lk = LookupDrafter()
            let proposal = lk.propose(after: ids + plain[0...i], limit: 1)
            guard let first = proposal.first else { continue }
            let m = lk.matchLength, right = first == plain[i + 1]
            kept[m] = 0.9 * kept[m] + (right ? 1 : 0)
            tried[m] = 0.9 * tried[m] + 1
            scored += 1
        }
        XCTAssertGreaterThan(scored, 5)
        let gate = try XCTUnwrap(learned)
        for m in 1...3 {
            XCTAssertEqual(gate.acceptance(match: m), (kept[m] + 1) / (tried[m] + 2), accuracy: 1e-12, "match \(m)")
        }
        XCTAssertNotEqual((1...3).map { gate.acceptance(match: $0) }, [0.5, 0.5, 0.5])

        // Priced at one step, the first proposal is verified whole.
        var cheap = DraftGate()
        for r in 1...4 { cheap.recordPass(rows: r, nanoseconds: 1_000_000) }
        let (tokens2, stats2, _) = try decode(model, gate: cheap)
        XCTAssertEqual(tokens2, plain)
        XCTAssertGreaterThan(stats2.drafted, 0)
        XCTAssertGreaterThan(stats2.lookupRows, stats2.steps)
    }

    /// Beside a model drafter, each step goes to lookup, the model drafter or plain decoding by
    /// their measured rates; the tokens stay plain greedy decoding's.
    func testLookupModelOrPlainByTheirRates() throws {
        let model = try TinyGemma.load("tiny-draft-gate-mixed.tern", options: LoadOptions(maxBatch: 4))
        let (plain, _, _) = try decode(model, gate: nil, plain: true)
        func drafter() throws -> ModelDrafter {
            try ModelDrafter(model: model.model, exitLayer: model.model.layerCount, ids: nil, maxDraft: 3)
        }
        // A plain step priced at a second, lookup's passes at 10^9 of them and the model drafter
        // at two tokens per step: real model steps (far under a second) only make it look better,
        // so lookup never gets a step, yet its proposals are scored.
        var costly = DraftGate()
        costly.recordPass(rows: 1, nanoseconds: 1_000_000_000)
        for r in 2...4 { costly.recordPass(rows: r, nanoseconds: 1_000_000_000_000_000_000) }
        costly.recordModelStep(tokens: 2, nanoseconds: 1_000_000_000)
        let (tokens, stats, learned) = try decode(model, gate: costly, drafter: try drafter())
        XCTAssertEqual(tokens, plain)
        XCTAssertEqual(stats.lookupSteps, 0)
        XCTAssertEqual(stats.modelSteps, stats.steps)
        XCTAssertGreaterThan(stats.drafted, 0)
        let gate = try XCTUnwrap(learned)
        XCTAssertNotEqual((1...3).map { gate.acceptance(match: $0) }, [0.5, 0.5, 0.5], "proposals scored")

        // The model drafter at 10^-6 tokens per step (one step on record, not yet trusted):
        // every step with a proposal goes to lookup, the others to the model drafter.
        var slowModel = DraftGate()
        for r in 1...4 { slowModel.recordPass(rows: r, nanoseconds: 1_000_000) }
        slowModel.recordModelStep(tokens: 1, nanoseconds: 1_000_000_000_000)
        let (tokens2, stats2, _) = try decode(model, gate: slowModel, drafter: try drafter())
        XCTAssertEqual(tokens2, plain)
        XCTAssertGreaterThan(stats2.lookupSteps, stats2.modelSteps)
        XCTAssertGreaterThan(stats2.modelSteps, 0)
        XCTAssertGreaterThan(stats2.lookupRows, stats2.lookupSteps, "lookup steps verify drafts")

        // The same with its record trusted and lookup's passes priced at 10^9 steps: plain decoding.
        var neither = DraftGate()
        neither.recordPass(rows: 1, nanoseconds: 1_000_000)
        for r in 2...4 { neither.recordPass(rows: r, nanoseconds: 1_000_000_000_000_000) }
        for _ in 0..<DraftGate.modelTrust { neither.recordModelStep(tokens: 1, nanoseconds: 1_000_000_000_000) }
        let (tokens3, stats3, _) = try decode(model, gate: neither, drafter: try drafter())
        XCTAssertEqual(tokens3, plain)
        XCTAssertEqual(stats3.drafted, 0)
        XCTAssertEqual(stats3.modelSteps, 0)
        XCTAssertEqual(stats3.lookupSteps, 0)
        XCTAssertEqual(stats3.lookupRows, 0)
        XCTAssertEqual(stats3.plainSteps, 13)

        // The model drafter alone: the same record gives its steps to plain decoding; a fresh gate
        // gives it every step but one, the plain step that times a pass to compare it with.
        let (tokens4, stats4, _) = try decode(model, gate: neither, drafter: try drafter(), lookup: false)
        XCTAssertEqual(tokens4, plain)
        XCTAssertEqual(stats4.plainSteps, 13)
        XCTAssertEqual(stats4.modelSteps, 0)
        let (tokens5, stats5, learned5) = try decode(model, gate: DraftGate(), drafter: try drafter(), lookup: false)
        XCTAssertEqual(tokens5, plain)
        XCTAssertEqual(stats5.plainSteps, 1)
        XCTAssertEqual(stats5.lookupSteps, 0)
        XCTAssertEqual(stats5.modelSteps, stats5.steps - 1)
        XCTAssertGreaterThan(stats5.drafted, 0)
        XCTAssertNotNil(try XCTUnwrap(learned5).modelRate)
    }
}
