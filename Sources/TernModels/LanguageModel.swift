import TernKernels

/// What the engine needs from an architecture. One type per model family implements it.
public protocol LanguageModel: AnyObject, Sendable {
    var vocabSize: Int { get }
    var layerCount: Int { get }
    var contextLength: Int { get }
    /// Bytes of weights read to decode one token (matrices and vectors, LM head included).
    var bytesPerToken: Int { get }

    /// Per-sequence state (KV cache, scratch) for up to `capacity` positions, batches of up to `maxBatch`.
    func makeState(capacity: Int, maxBatch: Int, options: StateOptions) -> ModelState

    /// Bytes ``makeState(capacity:maxBatch:options:)`` allocates (KV cache and scratch).
    func stateBytes(capacity: Int, maxBatch: Int, options: StateOptions) -> Int

    /// Runs `tokens` at positions `startPos...` through `layers`; `embed` starts from the token
    /// embeddings (else from `state.hidden`). Computes no logits: the rows of `state.hidden` are
    /// the residual stream after the last layer run.
    func forwardLayers(tokens: [Int32], startPos: Int, layers: Range<Int>, embed: Bool,
                       state: ModelState, parallel: Parallel) throws

    /// Final norm and the full LM head for rows `rows` of `state.hidden`, into `state.logits`
    /// rows 0..<rows.count.
    func logits(rows: Range<Int>, state: ModelState, parallel: Parallel) throws

    /// Final norm and `head` (a row subset of the LM head, from ``headRows(_:)``) for row `row` of
    /// `state.hidden`, into `out` (`head.rows` floats). For a reduced-vocabulary draft.
    func logits(row: Int, head: QMatrix, out: UnsafeMutablePointer<Float>, state: ModelState, parallel: Parallel)

    /// Rows `ids` of the LM head, bit for bit, as a new matrix.
    func headRows(_ ids: [Int32]) throws -> OwnedQMatrix

    /// Width of the residual stream (floats per row of `ModelState.hidden`).
    var width: Int { get }
}

/// How a sequence's state is laid out.
public struct StateOptions: Sendable, Equatable {
    /// Sliding-window layers keep only the positions they can still see, in a ring buffer.
    public var ringBuffers = true
    /// Rows of logits kept per forward pass: 1 (the last position) for generation; `nil` means
    /// one per batch position, for callers that ask for every position's logits.
    public var logitsRows: Int?
    /// KV cache precision.
    public var kv: KVPrecision

    public init(ringBuffers: Bool = true, logitsRows: Int? = nil, kv: KVPrecision = .f16) {
        self.ringBuffers = ringBuffers
        self.logitsRows = logitsRows
        self.kv = kv
    }
}

extension LanguageModel {
    /// Runs `tokens` at positions `startPos...` through `layers`; `embed` starts from the token
    /// embeddings (else from `state.hidden`), and when `layers` ends at the last layer, logits
    /// are computed for the last position (or every position when `allLogits`).
    public func forward(tokens: [Int32], startPos: Int, layers: Range<Int>, embed: Bool, allLogits: Bool,
                        state: ModelState, parallel: Parallel) throws {
        try forwardLayers(tokens: tokens, startPos: startPos, layers: layers, embed: embed, state: state, parallel: parallel)
        guard layers.upperBound == layerCount else { return }
        try logits(rows: (allLogits ? 0 : tokens.count - 1)..<tokens.count, state: state, parallel: parallel)
    }

    public func makeState(capacity: Int, maxBatch: Int) -> ModelState {
        makeState(capacity: capacity, maxBatch: maxBatch, options: StateOptions())
    }
}

/// Per-sequence buffers, allocated once and reused for every step.
public final class ModelState: @unchecked Sendable {
    public let capacity: Int
    public let maxBatch: Int
    /// Residual stream, `maxBatch` rows of the model width.
    public let hidden: UnsafeMutablePointer<Float>
    /// Logits, one row of `vocab` per position asked for.
    public let logits: UnsafeMutablePointer<Float>
    public let vocab: Int
    let buffers: [UnsafeMutablePointer<Float>]
    /// Byte buffers (the KV cache).
    let raw: [UnsafeMutableRawPointer]
    let acts: [QuantizedActivations]
    /// Architecture-owned per-sequence objects (e.g. preallocated pool jobs).
    var auxiliary: AnyObject?
    /// The first read error of this sequence's streamed layer pass (a pass cannot throw), thrown
    /// after the layer. Per sequence: sessions decoding one model at once share its streamed
    /// weights, not their errors.
    var streamFailure: Error?
    /// Folios of streamed units used in place that this sequence has left mapped.
    var mappedWindow = MappedWindow()

    /// Rows of ``logits`` (see ``StateOptions/logitsRows``).
    public let logitsRows: Int
    /// One past the highest position whose keys and values a forward pass has written since the
    /// state was made or ``forgetPositions()`` was called, drafts rejected later included: what a
    /// windowed layer's ring buffer may have written over.
    public internal(set) var kvHighWater = 0
    /// The positions each layer's K/V holds (`slots`; a ring buffer where that is fewer than the
    /// capacity) and the window it attends over (0: every position): the record the attention
    /// reads its slots from. Every layer, ring or not, so that making a state allocates the same
    /// whatever its capacity.
    var kvLayers: [(slots: Int, window: Int)] = []

    /// Whether a sequence at `position` can move back to `p` (0...position) and go on from there:
    /// every key and value a position from `p` on attends to is still in its ring. A ring of R
    /// slots holds positions kvHighWater - R ..< kvHighWater, and position p attends back to
    /// p - window + 1 (a layer that keeps every position has R = capacity >= kvHighWater).
    /// Moving back up to a batch after writing only up to the position is always possible (a
    /// ring holds its window plus a batch); after drafts were written beyond the position, or
    /// after an earlier move back, less.
    public func canRewind(from position: Int, to p: Int) -> Bool {
        guard p >= 0, p <= position else { return false }
        return kvLayers.allSatisfy { kvHighWater <= $0.slots || p - $0.window + 1 >= kvHighWater - $0.slots }
    }

    /// Declares every cached position stale (a sequence starting again from position 0).
    public func forgetPositions() { kvHighWater = 0 }

    init(capacity: Int, maxBatch: Int, width: Int, vocab: Int, logitsRows: Int, scratch: [Int], byteScratch: [Int],
         activationWidths: [Int], superBlocks: [Bool]) {
        self.logitsRows = logitsRows
        raw = byteScratch.map { n in
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(64, n), alignment: 64)
            p.initializeMemory(as: UInt8.self, repeating: 0, count: max(64, n))
            return p
        }
        acts = zip(activationWidths, superBlocks).map { QuantizedActivations(cols: $0, capacity: maxBatch, superBlocks: $1) }
        self.capacity = capacity
        self.maxBatch = maxBatch
        self.vocab = vocab
        hidden = .allocate(capacity: maxBatch * width)
        logits = .allocate(capacity: logitsRows * vocab)
        buffers = scratch.map { n in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            return p
        }
    }

    deinit {
        mappedWindow.flush()
        hidden.deallocate()
        logits.deallocate()
        for b in buffers { b.deallocate() }
        for b in raw { b.deallocate() }
    }

    /// Logits row `i` of the last forward call.
    public func logitsRow(_ i: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits + i * vocab, count: vocab)
    }
}
