import TernKernels
import TernModels

/// Drafts with a cheaper view of the model's own weights: the first `exitLayer` layers (early
/// exit, LayerSkip: Elhoushi et al. 2024, arXiv 2404.16710) and/or logits over only the `N` most
/// frequent tokens (a row subset of the LM head, FR-Spec: Zhao et al. 2025, arXiv 2502.14856).
///
/// The draft pass of each token is a real forward pass through layers 0..<exitLayer, so its KV
/// entries for those layers are exactly the model's and stay in the cache; the hidden state at
/// the exit is kept, and verification runs only layers exitLayer..<L over the drafted positions
/// (all of them at once) before the full LM head. With `exitLayer == L` verification is the LM
/// head alone. Memory: the reduced head, its logits row and `maxDraft` hidden rows.
public final class ExitDrafter: @unchecked Sendable {
    /// Layers the draft runs (the model's layer count for a full-depth draft).
    public let exitLayer: Int
    /// Token ids of the reduced head's rows; empty for the full head.
    public let ids: [Int32]
    /// A draft whose probability (softmax over the draft logits) falls below this ends the draft.
    public var minProbability: Float
    let head: OwnedQMatrix?
    let draftLogits: UnsafeMutablePointer<Float>
    let hiddenRows: UnsafeMutablePointer<Float>
    let width: Int
    public let maxDraft: Int

    /// `ids` nil drafts with the full LM head. `maxDraft` bounds the hidden rows kept.
    public init(model: any LanguageModel, exitLayer: Int, ids: [Int32]?, maxDraft: Int, minProbability: Float = 0) throws {
        self.exitLayer = max(1, min(model.layerCount, exitLayer))
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

    /// Bytes this drafter holds for `n` reduced-vocabulary rows (0 for the full head) of `kind`.
    public static func memoryBytes(rows n: Int, width: Int, kind: QuantKind, maxDraft: Int) -> Int {
        let head = n > 0 ? (n + 3) / 4 * (width / 32) * kind.groupBlockBytes + 4 * n : 0
        return head + 4 * (maxDraft + 1) * width
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
    public func draftLogits(model: any LanguageModel, state: ModelState, parallel: Parallel) throws -> UnsafeBufferPointer<Float> {
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
    public func draft(model: any LanguageModel, state: ModelState, parallel: Parallel) throws -> (token: Int32, probability: Float) {
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
