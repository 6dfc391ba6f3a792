import TernKernels
import TernModels

/// Drafts with a cheaper view of the model's own weights (no second model, no extra file):
/// - early exit: only layers 0..<`exitLayer`, then the shared final norm and head (LayerSkip:
///   Elhoushi et al. 2024, arXiv 2404.16710);
/// - layer skip: every layer except a calibrated `skip` set (Draft & Verify: Zhang et al. 2024,
///   arXiv 2309.08168; SWIFT: Xia et al. 2024, arXiv 2410.06916);
/// - a reduced-vocabulary head: logits over only the `N` most frequent tokens, a row subset of
///   the LM head (FR-Spec: Zhao et al. 2025, arXiv 2502.14856).
/// They combine freely.
///
/// Without skipped layers, the draft pass of each token is a real forward pass through layers
/// 0..<exitLayer, so its KV entries for those layers are exactly the model's and stay in the
/// cache; the hidden state at the exit is kept, and verification runs only layers
/// exitLayer..<L over the drafted positions (all at once) before the full LM head: with
/// `exitLayer == L` verification is the LM head alone. With skipped layers the draft's states
/// are not the model's, and verification is a full batched pass. Memory: the reduced head, its
/// logits row and `maxDraft + 1` hidden rows.
public final class ModelDrafter: @unchecked Sendable {
    /// Layers the draft runs: 0..<exitLayer except `skip`.
    public let exitLayer: Int
    public let skip: Set<Int>
    /// Token ids of the reduced head's rows; empty for the full head.
    public let ids: [Int32]
    /// A draft whose probability (softmax over the draft logits) falls below this ends the draft.
    public var minProbability: Float
    let head: OwnedQMatrix?
    let draftLogits: UnsafeMutablePointer<Float>
    let hiddenRows: UnsafeMutablePointer<Float>
    let width: Int
    /// Maximal runs of layers the draft runs.
    let runs: [Range<Int>]
    public let maxDraft: Int

    /// `ids` nil drafts with the full LM head. `maxDraft` bounds the hidden rows kept.
    public init(model: any LanguageModel, exitLayer: Int, skip: Set<Int> = [], ids: [Int32]?, maxDraft: Int,
                minProbability: Float = 0) throws {
        self.exitLayer = max(1, min(model.layerCount, exitLayer))
        self.skip = skip.filter { $0 >= 0 && $0 < model.layerCount }
        var runs: [Range<Int>] = []
        var l = 0
        while l < self.exitLayer {
            if self.skip.contains(l) { l += 1; continue }
            var e = l
            while e < self.exitLayer && !self.skip.contains(e) { e += 1 }
            runs.append(l..<e)
            l = e
        }
        self.runs = runs
        self.ids = ids ?? []
        head = try ids.map { try model.headRows($0) }
        self.minProbability = minProbability
        width = model.width
        self.maxDraft = max(1, maxDraft)
        draftLogits = .allocate(capacity: max(1, self.ids.count))
        hiddenRows = .allocate(capacity: (self.maxDraft + 1) * width)
    }

    deinit {
        draftLogits.deallocate()
        hiddenRows.deallocate()
    }

    /// Whether the draft's cache entries and exit states are the model's own (no skipped
    /// layers), so verification continues from them.
    public var reusesState: Bool { skip.isEmpty }

    /// The draft pass of `tokens` (one token) at `position`: the draft's layers, no logits.
    public func run(_ tokens: [Int32], at position: Int, model: any LanguageModel, state: ModelState, parallel: Parallel) throws {
        guard !runs.isEmpty else {
            // Every layer skipped: the draft is the embedding straight into the head.
            try model.forwardLayers(tokens: tokens, startPos: position, layers: 0..<0, embed: true, state: state,
                                    parallel: parallel)
            return
        }
        for (i, r) in runs.enumerated() {
            try model.forwardLayers(tokens: tokens, startPos: position, layers: r, embed: i == 0, state: state,
                                    parallel: parallel)
        }
    }

    /// Keeps row 0 of `state.hidden` (the exit hidden state of the token at draft position `j`).
    @inline(__always) public func save(_ state: ModelState, at j: Int) {
        (hiddenRows + j * width).update(from: state.hidden, count: width)
    }

    /// Puts kept rows 0..<n back into `state.hidden` rows 0..<n for verification.
    @inline(__always) public func restore(_ state: ModelState, rows n: Int) {
        state.hidden.update(from: hiddenRows, count: n * width)
    }

    /// The draft's logits after the hidden row 0 of `state`: over the reduced head's rows (index
    /// i is token ``ids``[i]) or, for the full head, over the vocabulary.
    public func draftLogits(model: any LanguageModel, state: ModelState,
                            parallel: Parallel) throws -> UnsafeBufferPointer<Float> {
        if let head {
            model.logits(row: 0, head: head.matrix, out: draftLogits, state: state, parallel: parallel)
            return UnsafeBufferPointer(start: draftLogits, count: ids.count)
        }
        try model.logits(rows: 0..<1, state: state, parallel: parallel)
        return state.logitsRow(0)
    }

    /// The token id of draft-logits index `i`.
    @inline(__always) public func token(_ i: Int32) -> Int32 { head == nil ? i : ids[Int(i)] }

    /// The draft's greedy next token after the hidden row 0 of `state`, and its draft
    /// probability (computed only when ``minProbability`` is set; else 1).
    public func draft(model: any LanguageModel, state: ModelState,
                      parallel: Parallel) throws -> (token: Int32, probability: Float) {
        let logits = try draftLogits(model: model, state: state, parallel: parallel)
        var best = 0, top = -Float.infinity
        for i in logits.indices where logits[i] > top { top = logits[i]; best = i }
        var p: Float = 1
        if minProbability > 0 {
            var sum: Float = 0
            for v in logits { sum += expf(v - top) }
            p = 1 / sum
        }
        return (token(Int32(best)), p)
    }
}

#if canImport(Glibc)
import Glibc
#endif
