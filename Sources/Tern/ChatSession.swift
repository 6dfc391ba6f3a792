import Foundation
import TernModels
import TernTokenizer

/// A multi-turn conversation that keeps its KV cache between turns: each message is appended
/// after what came before, so earlier turns are never recomputed. Turns use Gemma's format
/// (`<start_of_turn>user ... <end_of_turn>`, then `<start_of_turn>model`); a reply stops at
/// `<end_of_turn>` or end of sequence.
public final class ChatSession {
    public let generator: Generator
    let sequence: Session
    var sampler: Sampler
    let stops: Set<Int32>

    public init(model: TernModel, threads: Int, sampling: SamplingParameters, capacity: Int? = nil) {
        generator = Generator(model: model, threads: threads)
        sequence = Session(model: model, parallel: generator.parallel, capacity: capacity ?? model.options.context,
                            options: generator.stateOptions)
        sampler = Sampler(sampling)
        stops = model.tokenizer.endOfGeneration
    }

    /// Forgets the conversation (the cache is reused, not reallocated).
    public func reset() { sequence.reset() }

    /// Positions left in the cache.
    public var remaining: Int { sequence.remaining }

    /// Sends `message` as the user's turn and generates the model's reply (at most `maxTokens`),
    /// calling `onToken` for each reply token (return false to stop).
    public func send(_ message: String, maxTokens: Int, onToken: (Int32) -> Bool = { _ in true }) throws -> GenerationStats {
        let tok = generator.model.tokenizer
        let turn = "<start_of_turn>user\n\(message)<end_of_turn>\n<start_of_turn>model\n"
        var ids = tok.encode(turn, addSpecial: false, parseSpecial: true)
        if sequence.position == 0, let bos = tok.bos, tok.addBOS { ids.insert(bos, at: 0) }
        guard ids.count + 2 <= sequence.remaining else {
            throw TernError.contextFull("the conversation is full (\(sequence.capacity) positions); /reset to start again or raise -c")
        }
        var stats = GenerationStats()
        stats.promptTokens = ids
        let t0 = Date()
        try sequence.append(ids)
        stats.promptSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        var stopped = false
        try sequence.decode(maxTokens: maxTokens, sampler: &sampler) { next in
            if stops.contains(next) { stopped = true; return false }
            stats.tokens.append(next)
            return onToken(next)
        }
        // Close the model's turn so the next message follows a well-formed history (a sampled
        // stop token is replaced by the closing text itself).
        if stopped { sequence.discardPending() }
        let close = tok.encode("<end_of_turn>\n", addSpecial: false, parseSpecial: true)
        if close.count + (sequence.pending == nil ? 0 : 1) <= sequence.capacity - sequence.position { try sequence.append(close) }
        stats.generationSeconds = Date().timeIntervalSince(t1)
        return stats
    }
}
