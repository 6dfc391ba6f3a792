import Dispatch
import TernDecoding
import TernKernels
import TernModels

/// The drafters one speculative decode may use, chosen per step.
public struct Drafters {
    /// N-gram lookup in the context (free to draft, so it goes first): with a model drafter too,
    /// used where the gate says it pays (or, without a gate, when its proposal comes from a match
    /// of at least `lookupMinimumMatch` tokens).
    public var lookup: LookupDrafter?
    public var lookupMinimumMatch = 1
    /// Drafts from the model's own weights (early exit and/or a reduced-vocabulary head).
    public var model: ModelDrafter?
    /// Recent acceptance of lookup drafts (exponential average). With a model drafter, lookup
    /// goes first only while this stays at or above `lookupFloor`; model steps pull it back
    /// towards 0.5, so a context that starts repeating gets lookup again.
    public var lookupScore = 0.5
    public var lookupFloor = 0.25
    /// How many of a lookup proposal to verify: the count with the most tokens per unit of time,
    /// from this machine's pass times and the proposals' record (``DraftGate``), so drafting
    /// stops where verifying costs more than it gains. With a model drafter too, lookup takes the
    /// step only where that beats the model drafter's measured rate (until both are timed,
    /// `lookupMinimumMatch` and `lookupScore` decide), and plain decoding takes the model
    /// drafter's turn where that drafter measures slower than plain decoding.
    public var gate: DraftGate? = DraftGate()
    /// Without a gate, the most lookup drafts per pass when lookup drafts alone: +2 after a pass
    /// that kept them all, down to what was kept + 1 after one that did not, so weak matches cost
    /// a short verification batch (the schedule of Hugging Face transformers' assisted
    /// generation, `num_assistant_tokens_schedule="heuristic"`).
    public var lookupLimit = 2

    public init(lookup: LookupDrafter? = nil, lookupMinimumMatch: Int = 1, model: ModelDrafter? = nil) {
        self.lookup = lookup
        self.lookupMinimumMatch = lookupMinimumMatch
        self.model = model
    }
}

extension Session {
    /// Decoding with self-speculation: each step drafts up to `maxDraft` tokens, the full model
    /// checks them all in one pass, and the output has exactly plain decoding's distribution.
    ///
    /// Greedy (Leviathan et al. 2023; Chen et al. 2023, greedy case): drafts are kept while they
    /// equal the model's argmax, then the model's own token comes free; the tokens are plain
    /// greedy decoding's. Sampling: speculative sampling (Leviathan et al. 2023, Algorithm 1;
    /// Chen et al. 2023): draft x drawn from the draft's distribution q (a lookup draft: q = 1 on
    /// x) is kept with probability min(1, p(x)/q(x)), p being the distribution plain sampling
    /// would draw from at that position (same temperature, top-k, top-p); the first rejected
    /// position draws from max(0, p - q) renormalized; after all drafts are kept, the next token
    /// is drawn from p.
    ///
    /// Lookup and layer-skip drafts are verified by one batched forward pass over [next] + drafts.
    /// Early-exit / reduced-head drafts (``ModelDrafter`` without skipped layers) already ran
    /// layers 0..<E for each drafted position, so verification runs only layers E..<L over them,
    /// batched, then the full LM head. Rejected drafts' cache
    /// entries lie beyond the new position and are simply overwritten later (ring buffers hold a
    /// window plus a batch, so no draft overwrites a key still needed): rollback is moving the
    /// position back, nothing is copied.
    ///
    /// The state must keep `maxDraft + 1` logits rows and batches. `history` is every token so
    /// far (the lookup drafter reads it) and grows with each emitted token.
    public func decodeSpeculative(maxTokens: Int, sampler: inout Sampler, drafters: inout Drafters, maxDraft: Int,
                                  history: inout [Int32], stats: inout SpeculationStats, onToken: (Int32) throws -> Bool) throws {
        guard maxTokens > 0 else { return }
        guard maxDraft >= 1, state.logitsRows > maxDraft, state.maxBatch > maxDraft else {
            throw TernError.usage("speculative decoding with \(maxDraft) drafts needs a session with at least " +
                "\(maxDraft + 1) logits rows and batch positions (it has \(state.logitsRows) and \(state.maxBatch))")
        }
        if let m = drafters.model, m.maxDraft < maxDraft {
            throw TernError.usage("the model drafter keeps \(m.maxDraft) drafts, \(maxDraft) asked for")
        }
        if pending != nil { try append([]) }
        let logits = try currentLogits()
        guard position < capacity else { throw TernError.contextFull("the context of \(capacity) is full") }
        let lm = model.model, L = lm.layerCount
        let greedy = sampler.isGreedy
        // d[0] is the token to feed, d[1...] the drafts; batch[h] is an array of h tokens (its
        // ids matter only for a lookup batch). Draft distributions q[j] (for d[j + 1]) and the
        // target distribution p reuse their storage, so no step allocates.
        var d = [Int32](repeating: 0, count: maxDraft + 2)
        var batches = (0...maxDraft + 1).map { [Int32](repeating: 0, count: $0) }
        var q = greedy ? [] : (0...maxDraft).map { _ in [(Int32, Float)]() }
        var p: [(Int32, Float)] = []
        var proposal: [Int32] = []
        proposal.reserveCapacity(maxDraft + 1)
        var qDense = [Float](repeating: 0, count: greedy ? 0 : lm.vocabSize)
        /// One batched pass over next + `n` drafts (d[0...n]) through every layer, logits for
        /// each row; returns the rows.
        func fullPass(_ n: Int, at start: Int) throws -> Int {
            for j in 0...n { batches[n + 1][j] = d[j] }
            try lm.forward(tokens: batches[n + 1], startPos: start, layers: 0..<L, embed: true, allLogits: true,
                           state: state, parallel: parallel)
            return n + 1
        }
        var next = sampler.sample(logits)
        var count = 0
        var first = true
        while true {
            pending = next
            count += 1
            if !first { stats.produced += 1 }
            first = false
            history.append(next)
            if try !onToken(next) || count >= maxTokens || position + 1 >= capacity { return }
            let room = min(maxDraft, maxTokens - count, capacity - position - 2)
            let start = position
            logitsRow = nil  // the passes below write the rows
            d[0] = next
            var drafted = 0, rows = 0
            var lookupDrafts = 0
            let alone = drafters.model == nil
            var gatedMatch = 0  // the match length of a proposal the gate weighed (0: none)
            var plainStep = false  // the gate gave the model drafter's turn to plain decoding
            if room > 0, var lk = drafters.lookup {
                let limit = alone && drafters.gate == nil ? min(room, drafters.lookupLimit) : room
                lk.propose(after: history, limit: limit, into: &proposal)
                drafters.lookup = lk
                if drafters.gate != nil, !proposal.isEmpty { gatedMatch = lk.matchLength }
                if alone, let gate = drafters.gate {
                    lookupDrafts = gate.draftCount(match: lk.matchLength, proposed: proposal.count)
                } else if !alone, let c = drafters.gate?.choose(match: lk.matchLength, proposed: proposal.count) {
                    if case .lookup(let n) = c { lookupDrafts = n }
                    plainStep = c == .plain
                } else if alone
                    || (lk.matchLength >= drafters.lookupMinimumMatch && drafters.lookupScore >= drafters.lookupFloor) {
                    lookupDrafts = proposal.count
                }
                for j in 0..<lookupDrafts { d[j + 1] = proposal[j] }
            } else if room > 0, !alone, let c = drafters.gate?.choose(match: 0, proposed: 0) {
                plainStep = c == .plain  // the model drafter alone, or plain decoding where it loses
            }
            let byLookup = lookupDrafts > 0 || alone || plainStep
            let t0 = DispatchTime.now().uptimeNanoseconds
            if byLookup {
                drafted = lookupDrafts
                rows = try fullPass(drafted, at: start)
                let dt = DispatchTime.now().uptimeNanoseconds - t0
                if plainStep {
                    stats.plainSteps += 1
                } else {
                    stats.lookupSteps += 1
                    stats.lookupRows += rows
                    stats.lookupNanoseconds += dt
                }
                drafters.gate?.recordPass(rows: rows, nanoseconds: dt)
            } else if let md = drafters.model {
                // Draft one token at a time; without skipped layers, keep each exit state.
                while true {
                    one[0] = d[rows]
                    try md.run(one, at: start + rows, model: lm, state: state, parallel: parallel)
                    if md.reusesState { md.save(state, at: rows) }
                    rows += 1
                    if rows > room { break }
                    let t: Int32, prob: Float
                    if greedy {
                        (t, prob) = try md.draft(model: lm, state: state, parallel: parallel)
                    } else {
                        sampler.distribution(try md.draftLogits(model: lm, state: state, parallel: parallel), into: &q[rows - 1])
                        for i in q[rows - 1].indices { q[rows - 1][i].0 = md.token(q[rows - 1][i].0) }
                        t = sampler.pick(q[rows - 1])
                        prob = q[rows - 1].first { $0.0 == t }?.1 ?? 0
                    }
                    if prob < md.minProbability { break }
                    d[rows] = t
                    drafted = rows
                    if rows == room { break }
                }
                let t1 = DispatchTime.now().uptimeNanoseconds
                stats.draftNanoseconds += t1 - t0
                stats.draftRows += rows
                if md.reusesState {
                    // Verify: the rest of the layers over every kept exit state at once, then the head.
                    md.restore(state, rows: rows)
                    if md.exitLayer < L {
                        try lm.forwardLayers(tokens: batches[rows], startPos: start, layers: md.exitLayer..<L, embed: false,
                                             state: state, parallel: parallel)
                    }
                    try lm.logits(rows: 0..<rows, state: state, parallel: parallel)
                } else {
                    // The draft's states are not the model's.
                    rows = try fullPass(drafted, at: start)
                }
                stats.modelSteps += 1
                stats.verifyRows += rows
                stats.verifyNanoseconds += DispatchTime.now().uptimeNanoseconds - t1
            }
            let stepNanoseconds = DispatchTime.now().uptimeNanoseconds - t0
            var accepted = 0
            var correction: Int32?
            if greedy {
                while accepted < drafted && Sampler.argmax(state.logitsRow(accepted)) == d[accepted + 1] { accepted += 1 }
            } else {
                while accepted < drafted {
                    sampler.distribution(state.logitsRow(accepted), into: &p)
                    let x = d[accepted + 1]
                    let px = p.first { $0.0 == x }?.1 ?? 0
                    let qx = byLookup ? 1 : q[accepted].first { $0.0 == x }?.1 ?? 1
                    if sampler.uniform() < px / qx { accepted += 1; continue }
                    // Rejected: draw from the residual max(0, p - q).
                    if byLookup { qDense[Int(x)] = 1 } else { for (id, v) in q[accepted] { qDense[Int(id)] = v } }
                    var mass: Float = 0
                    for i in p.indices {
                        p[i].1 = max(0, p[i].1 - qDense[Int(p[i].0)])
                        mass += p[i].1
                    }
                    if byLookup { qDense[Int(x)] = 0 } else { for (id, _) in q[accepted] { qDense[Int(id)] = 0 } }
                    // p <= q everywhere cannot reject; a zero residual is float rounding: draw from p.
                    if mass <= 0 { sampler.distribution(state.logitsRow(accepted), into: &p) }
                    correction = sampler.pick(p)
                    break
                }
            }
            stats.steps += 1
            stats.drafted += drafted
            stats.accepted += accepted
            if byLookup && drafted > 0 {
                drafters.lookupScore = 0.7 * drafters.lookupScore + 0.3 * Double(accepted) / Double(drafted)
                drafters.lookupLimit = accepted == drafted ? min(maxDraft, drafted + 2) : max(1, accepted + 1)
            } else if !byLookup {
                drafters.lookupScore = 0.95 * drafters.lookupScore + 0.05 * 0.5
            }
            // Rows 0..<rows have logits. When every draft was kept and the last one has no row
            // (a model draft ends on a drafted token), it becomes the next token to feed.
            let kept = min(accepted, rows - 1)
            if !byLookup { drafters.gate?.recordModelStep(tokens: kept + 1, nanoseconds: stepNanoseconds) }
            for j in 0..<kept {
                count += 1
                stats.produced += 1
                history.append(d[j + 1])
                if try !onToken(d[j + 1]) || count >= maxTokens {
                    position = start + j + 1  // d[0...j] are in the cache; d[j + 1] was handed out, not yet fed
                    pending = d[j + 1]
                    logitsRow = j  // what d[j + 1] was checked against
                    return
                }
            }
            position = start + kept + 1
            pending = nil
            logitsRow = kept
            next = correction ?? (accepted == rows ? d[rows] : sampler.sample(state.logitsRow(kept)))
            if gatedMatch > 0 {
                // The whole proposal scored against the tokens this step produced (d[1...kept],
                // then next), whichever drafter ran: its first difference decides, and a proposal
                // longer than what was produced is not wrong past that.
                var right = 0
                while right < proposal.count, right <= kept,
                      proposal[right] == (right < kept ? d[right + 1] : next) { right += 1 }
                let wrong = right < proposal.count && right <= kept
                drafters.gate?.recordProposal(match: gatedMatch, right: right, wrong: wrong)
            }
        }
    }
}
