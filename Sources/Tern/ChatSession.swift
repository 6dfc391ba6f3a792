import Foundation
import TernModels
import TernTokenizer

/// A multi-turn conversation that keeps its KV cache between turns: each message is prefilled
/// after what came before, so earlier turns are never recomputed. Turns use Gemma's format
/// (`<start_of_turn>user ... <end_of_turn>`, then `<start_of_turn>model`); generation stops at
/// `<end_of_turn>` or end of sequence.
public final class ChatSession {
    public let generator: Generator
    public let capacity: Int
    let state: ModelState
    var position = 0
    var sampler: Sampler
    let stops: Set<Int32>

    public init(model: TernModel, threads: Int, sampling: SamplingParameters, capacity: Int? = nil) {
        generator = Generator(model: model, threads: threads)
        self.capacity = capacity ?? model.options.context
        state = model.model.makeState(capacity: self.capacity, maxBatch: min(model.options.maxBatch, self.capacity),
                                      options: generator.stateOptions)
        sampler = Sampler(sampling)
        var s: Set<Int32> = []
        if let eos = model.tokenizer.vocab.eos { s.insert(eos) }
        if let eot = model.tokenizer.vocab.tokens.id(of: Array("<end_of_turn>".utf8)) { s.insert(eot) }
        stops = s
    }

    /// Forgets the conversation (the cache is reused, not reallocated).
    public func reset() { position = 0 }

    /// Positions left in the cache.
    public var remaining: Int { capacity - position }

    /// Sends `message` as the user's turn and generates the model's reply (at most `maxTokens`),
    /// calling `onToken` for each reply token (return false to stop).
    public func send(_ message: String, maxTokens: Int, onToken: (Int32) -> Bool = { _ in true }) throws -> GenerationStats {
        let tok = generator.model.tokenizer
        let turn = "<start_of_turn>user\n\(message)<end_of_turn>\n<start_of_turn>model\n"
        var ids = tok.encode(turn, addSpecial: false, parseSpecial: true)
        if position == 0, let bos = tok.vocab.bos, tok.vocab.addBOS { ids.insert(bos, at: 0) }
        guard position + ids.count + 1 <= capacity else {
            throw TernError.usage("the conversation is full (\(capacity) positions); /reset to start again or raise -c")
        }
        var stats = GenerationStats()
        stats.promptTokens = ids
        let lm = generator.model.model
        let t0 = Date()
        var i = 0
        while i < ids.count {
            let chunk = Array(ids[i..<min(ids.count, i + state.maxBatch)])
            try lm.forward(tokens: chunk, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: generator.parallel)
            position += chunk.count
            i += chunk.count
        }
        stats.promptSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        var one: [Int32] = [0]
        while stats.tokens.count < maxTokens {
            let next = sampler.sample(state.logitsRow(0))
            if stops.contains(next) { break }
            stats.tokens.append(next)
            if !onToken(next) || position >= capacity { break }
            one[0] = next
            try lm.forward(tokens: one, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: generator.parallel)
            position += 1
        }
        // Close the model's turn in the cache so the next message follows a well-formed history.
        let close = tok.encode("<end_of_turn>\n", addSpecial: false, parseSpecial: true)
        if position + close.count <= capacity {
            try lm.forward(tokens: close, startPos: position, layers: 0..<lm.layerCount, embed: true, allLogits: false,
                           state: state, parallel: generator.parallel)
            position += close.count
        }
        stats.generationSeconds = Date().timeIntervalSince(t1)
        return stats
    }
}
