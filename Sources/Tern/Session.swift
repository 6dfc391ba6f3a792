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
public final class Session {
    public let model: TernModel
    public let parallel: Parallel
    let state: ModelState
    /// Positions in the KV cache.
    public internal(set) var position = 0
    /// Sampled, handed out, not yet in the cache.
    public internal(set) var pending: Int32?
    var one: [Int32] = [0]

    /// `options` defaults to one logits row and the model's KV precision.
    public init(model: TernModel, parallel: Parallel, capacity: Int, options: StateOptions? = nil) {
        self.model = model
        self.parallel = parallel
        state = model.model.makeState(capacity: capacity, maxBatch: min(model.options.maxBatch, capacity),
                                      options: options ?? StateOptions(logitsRows: 1, kv: model.kvPrecision))
    }

    public var capacity: Int { state.capacity }
    /// The model's logits after the last token fed (what the next token is drawn from).
    public var logits: UnsafeBufferPointer<Float> { state.logitsRow(0) }
    /// Positions left, counting the pending token as used.
    public var remaining: Int { capacity - position - (pending == nil ? 0 : 1) }

    public func reset() {
        position = 0
        pending = nil
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
    public func rewind(to p: Int) throws {
        guard p >= 0, p <= position else {
            throw TernError.usage("cannot move back to position \(p): the sequence is at \(position)")
        }
        guard canRewind(to: p) else {
            throw TernError.usage("cannot move back to position \(p): a windowed layer's ring buffer no longer holds "
                                  + "the positions it attends to; reset and append again")
        }
        position = p
        pending = nil
    }

    /// Drops the pending token (e.g. a stop token the caller will not keep in the history).
    public func discardPending() { pending = nil }

    /// Feeds the pending token (if any) and `ids` to the model, in batches.
    public func append(_ ids: [Int32]) throws {
        var all = ids
        if let p = pending { all.insert(p, at: 0) }
        guard position + all.count <= capacity else {
            throw TernError.contextFull("\(position) positions used + \(all.count) new tokens exceeds the context of \(capacity)")
        }
        pending = nil
        let lm = model.model
        var i = 0
        while i < all.count {
            let chunk = Array(all[i..<min(all.count, i + state.maxBatch)])
            try lm.forward(tokens: chunk, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: parallel)
            position += chunk.count
            i += chunk.count
        }
    }

    /// Samples up to `maxTokens` tokens after the last appended one. Each goes to `onToken`, which
    /// returns false to stop; every token handed out except the last is fed back to the model, and
    /// the last one stays `pending`. Allocates nothing per token.
    public func decode(maxTokens: Int, sampler: inout Sampler, onToken: (Int32) throws -> Bool) throws {
        guard maxTokens > 0 else { return }
        if pending != nil { try append([]) }
        guard position > 0 else { throw TernError.usage("nothing to continue: append a prompt first") }
        guard position < capacity else { throw TernError.contextFull("the context of \(capacity) is full") }
        let lm = model.model
        var count = 0
        while true {
            let next = sampler.sample(state.logitsRow(0))
            pending = next
            count += 1
            if try !onToken(next) || count >= maxTokens || position + 1 >= capacity { return }
            one[0] = next
            try lm.forward(tokens: one, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: parallel)
            position += 1
            pending = nil
        }
    }
}
