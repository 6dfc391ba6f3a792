import TernDecoding
import TernKernels
import TernModels

/// The drafters one speculative decode may use, chosen per step.
public struct Drafters {
    /// N-gram lookup in the context: used whenever it proposes at least `lookupMinimum` tokens
    /// (free to draft, so it goes first).
    public var lookup: LookupDrafter?
    public var lookupMinimum = 1
    /// Drafts from the model's own weights (early exit and/or a reduced-vocabulary head).
    public var model: ExitDrafter?

    public init(lookup: LookupDrafter? = nil, lookupMinimum: Int = 1, model: ExitDrafter? = nil) {
        self.lookup = lookup
        self.lookupMinimum = lookupMinimum
        self.model = model
    }
}

extension Session {
    /// Greedy decoding with self-speculation (Leviathan et al. 2023; Chen et al. 2023, greedy
    /// case): each step drafts up to `maxDraft` tokens, the full model checks them all in one
    /// pass, drafts are kept while they equal the model's own argmax, and the model's token after
    /// the last kept draft comes free. Output is exactly plain greedy decoding's.
    ///
    /// Lookup drafts are verified by one batched forward pass over [next] + drafts. Model drafts
    /// (``ExitDrafter``) already ran layers 0..<E for each drafted position, so verification runs
    /// only layers E..<L over them, batched, then the full LM head. Rejected drafts' cache
    /// entries lie beyond the new position and are simply overwritten later (ring buffers hold a
    /// window plus a batch, so no draft overwrites a key still needed).
    ///
    /// The state must keep `maxDraft + 1` logits rows and batches. `history` is every token so
    /// far (the lookup drafter reads it) and grows with each emitted token.
    public func decodeGreedySpeculative(maxTokens: Int, drafters: inout Drafters, maxDraft: Int, history: inout [Int32],
                                        stats: inout SpeculationStats, onToken: (Int32) throws -> Bool) throws {
        guard maxTokens > 0 else { return }
        precondition(state.logitsRows > maxDraft && state.maxBatch > maxDraft, "state too small for \(maxDraft) drafts")
        if let m = drafters.model { precondition(m.maxDraft >= maxDraft, "model drafter keeps \(m.maxDraft) rows, \(maxDraft) asked for") }
        if pending != nil { try append([]) }
        guard position > 0 else { throw TernError.usage("nothing to continue: append a prompt first") }
        guard position < capacity else { throw TernError.contextFull("the context of \(capacity) is full") }
        let lm = model.model, L = lm.layerCount
        // d[0] is the token to feed, d[1...] the drafts; batch[h] is an array of h tokens (its
        // ids matter only for a lookup batch), so no step allocates.
        var d = [Int32](repeating: 0, count: maxDraft + 2)
        var batches = (0...maxDraft + 1).map { [Int32](repeating: 0, count: $0) }
        var next = Sampler.argmax(state.logitsRow(0))
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
            let p = position
            d[0] = next
            var drafted = 0, rows = 0
            var lookupDrafts = 0
            if room > 0, var lk = drafters.lookup {
                let proposal = lk.propose(after: history, limit: room)
                drafters.lookup = lk
                if proposal.count >= drafters.lookupMinimum || drafters.model == nil {
                    lookupDrafts = proposal.count
                    for (j, t) in proposal.enumerated() { d[j + 1] = t }
                }
            }
            if lookupDrafts > 0 || drafters.model == nil {
                // One batched pass over next + lookup drafts.
                drafted = lookupDrafts
                rows = drafted + 1
                for j in 0..<rows { batches[rows][j] = d[j] }
                try lm.forward(tokens: batches[rows], startPos: p, layers: 0..<L, embed: true, allLogits: true, state: state, parallel: parallel)
                stats.lookupSteps += 1
            } else if let md = drafters.model {
                // Draft: layers 0..<E for d[0], d[1], ... one at a time, each exit state kept.
                let E = md.exitLayer
                while true {
                    one[0] = d[rows]
                    try lm.forwardLayers(tokens: one, startPos: p + rows, layers: 0..<E, embed: true, state: state, parallel: parallel)
                    md.save(state, at: rows)
                    rows += 1
                    if rows > room { break }
                    let (t, prob) = try md.draft(model: lm, state: state, parallel: parallel)
                    if prob < md.minProbability { break }
                    d[rows] = t
                    drafted = rows
                    if rows == room { break }
                }
                // Verify: the rest of the layers over every kept exit state at once, then the head.
                md.restore(state, rows: rows)
                if E < L {
                    try lm.forwardLayers(tokens: batches[rows], startPos: p, layers: E..<L, embed: false, state: state, parallel: parallel)
                }
                try lm.logits(rows: 0..<rows, state: state, parallel: parallel)
                stats.modelSteps += 1
            }
            var accepted = 0
            while accepted < drafted && Sampler.argmax(state.logitsRow(accepted)) == d[accepted + 1] { accepted += 1 }
            stats.steps += 1
            stats.drafted += drafted
            stats.accepted += accepted
            // Rows 0..<rows have logits. When every draft was kept and the last one has no row
            // (a model draft ends on a drafted token), it becomes the next token to feed.
            let kept = min(accepted, rows - 1)
            for j in 0..<kept {
                count += 1
                stats.produced += 1
                history.append(d[j + 1])
                if try !onToken(d[j + 1]) || count >= maxTokens {
                    position = p + j + 1  // d[0...j] are in the cache; d[j + 1] was handed out, not yet fed
                    pending = d[j + 1]
                    return
                }
            }
            position = p + kept + 1
            pending = nil
            next = accepted == rows ? d[rows] : Sampler.argmax(state.logitsRow(kept))
        }
    }
}
