import Foundation
import TernDecoding
import TernKernels
import TernModels

/// One sequence in progress over a model: its state (KV cache, scratch) and position, with the
/// two moves every front end needs: append tokens (prefilled in batches) and decode (sample,
/// hand each token to a callback, feed it back). `Generator.generate`, `ChatSession` and the C API
/// are built on it.
///
/// A token sampled but not yet fed to the model is kept as `pending`: the next `append` or decode
/// step feeds it first, so a sequence continued later (another prompt, another call) loses nothing.
///
/// A call that throws leaves no half-done work behind: `append` puts the sequence back where it
/// was (or, where a windowed layer's ring buffer no longer holds that, resets it to position 0:
/// see ``append(_:)``), and nothing samples from logits that are not the current position's.
public final class Session {
    public let model: TernModel
    public let parallel: Parallel
    let state: ModelState
    /// Positions in the KV cache.
    public internal(set) var position = 0
    /// Sampled, handed out, not yet in the cache.
    public internal(set) var pending: Int32?
    /// The row of the state's logits that holds the current position's (what the token after the
    /// last one fed is drawn from), or nil where none does: nothing fed yet, a move back, a pass
    /// that failed. Speculative decoding leaves them in the row of the last kept draft.
    var logitsRow: Int?
    var one: [Int32] = [0]

    /// `options` defaults to one logits row and the model's KV precision.
    public init(model: TernModel, parallel: Parallel, capacity: Int, options: StateOptions? = nil) {
        self.model = model
        self.parallel = parallel
        state = model.model.makeState(capacity: capacity, maxBatch: min(model.options.maxBatch, capacity),
                                      options: options ?? StateOptions(logitsRows: 1, kv: model.kvPrecision))
    }

    public var capacity: Int { state.capacity }
    /// The model's logits after the last token fed (what the next token is drawn from); empty where
    /// the state holds none for this position (nothing fed yet, after ``rewind(to:)`` or a call
    /// that failed: append a token first).
    public var logits: UnsafeBufferPointer<Float> {
        guard let r = logitsRow else { return UnsafeBufferPointer(start: nil, count: 0) }
        return state.logitsRow(r)
    }

    /// The current position's logits for sampling, or a usage error saying why there are none.
    func currentLogits() throws -> UnsafeBufferPointer<Float> {
        guard let r = logitsRow else {
            if position == 0 { throw TernError.usage("nothing to continue: append a prompt first") }
            throw TernError.usage("no logits at position \(position) (after a move back or a failed call): "
                                  + "append a token first")
        }
        return state.logitsRow(r)
    }
    /// Positions left, counting the pending token as used.
    public var remaining: Int { capacity - position - (pending == nil ? 0 : 1) }

    public func reset() {
        position = 0
        pending = nil
        logitsRow = nil
        state.forgetPositions()
    }

    /// Whether this sequence's state can verify `drafts` drafted tokens in one pass.
    public func canVerify(_ drafts: Int) -> Bool { state.logitsRows > drafts && state.maxBatch > drafts }

    /// Largest batch of positions per forward pass.
    public var maxBatch: Int { state.maxBatch }

    /// Whether ``rewind(to:)`` can move back to `p`: within 0...position, and every windowed
    /// layer's ring buffer still holds the positions before `p` that the next ones attend to
    /// (``ModelState/canRewind(from:to:)``). Any p in 0...position on a model without windowed layers.
    public func canRewind(to p: Int) -> Bool { state.canRewind(from: position, to: p) }

    /// Forgets positions `p...` (they will be written again). Throws if `p` is outside
    /// 0...position, or if a windowed layer's ring has reused the slot of a position before `p`
    /// that the next ones attend to (moving back more than a batch, or after positions beyond this
    /// one were written: rejected drafts, an earlier move back); `reset()` and append again then.
    /// A move to an earlier position leaves no logits: append a token before decoding.
    public func rewind(to p: Int) throws {
        guard p >= 0, p <= position else {
            throw TernError.usage("cannot move back to position \(p): the sequence is at \(position)")
        }
        guard canRewind(to: p) else {
            throw TernError.usage("cannot move back to position \(p): a windowed layer's ring buffer no longer holds "
                                  + "the positions it attends to; reset and append again")
        }
        if p != position { logitsRow = nil }
        position = p
        pending = nil
    }

    /// Drops the pending token (e.g. a stop token the caller will not keep in the history).
    public func discardPending() { pending = nil }

    /// Feeds the pending token (if any) and `ids` to the model, in batches.
    ///
    /// If a batch fails (a bad token id, a read error of streamed weights), the call leaves none of
    /// its tokens in the sequence, as llama.cpp's `llama_decode` restores its cache: the position
    /// and the pending token are as before the call, and where no token was pending the logits are
    /// gone (append again). Where the batches that did run have overwritten a windowed layer's ring
    /// slots that the old position needs (``canRewind(to:)``: only when more than one batch ran),
    /// the sequence is reset to position 0 instead; `position` tells which.
    public func append(_ ids: [Int32]) throws {
        var all = ids
        if let p = pending { all.insert(p, at: 0) }
        guard position + all.count <= capacity else {
            throw TernError.contextFull("\(position) positions used + \(all.count) new tokens exceeds the context " +
                "of \(capacity)")
        }
        guard !all.isEmpty else { return }
        let start = position, wasPending = pending
        pending = nil
        logitsRow = nil
        let lm = model.model
        var i = 0
        do {
            while i < all.count {
                let chunk = Array(all[i..<min(all.count, i + state.maxBatch)])
                try lm.forward(tokens: chunk, startPos: position, layers: 0..<lm.layerCount, embed: true,
                               allLogits: false, state: state, parallel: parallel)
                position += chunk.count
                i += chunk.count
            }
        } catch {
            if canRewind(to: start) {
                position = start
                pending = wasPending
            } else {
                reset()
            }
            throw error
        }
        logitsRow = 0
    }

    /// Samples up to `maxTokens` tokens after the last appended one. Each goes to `onToken`, which
    /// returns false to stop; every token handed out except the last is fed back to the model, and
    /// the last one stays `pending`. Allocates nothing per token.
    public func decode(maxTokens: Int, sampler: inout Sampler, onToken: (Int32) throws -> Bool) throws {
        guard maxTokens > 0 else { return }
        if pending != nil { try append([]) }
        var logits = try currentLogits()
        guard position < capacity else { throw TernError.contextFull("the context of \(capacity) is full") }
        let lm = model.model
        var count = 0
        while true {
            let next = sampler.sample(logits)
            pending = next
            count += 1
            if try !onToken(next) || count >= maxTokens || position + 1 >= capacity { return }
            one[0] = next
            logitsRow = nil
            try lm.forward(tokens: one, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: parallel)
            position += 1
            pending = nil
            logitsRow = 0
            logits = state.logitsRow(0)
        }
    }
}
