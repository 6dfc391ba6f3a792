import Foundation
import TernDecoding
import TernModels
import TernTemplate
import TernTokenizer

/// What one chat turn did.
public struct ChatTurnStats: Sendable {
    /// Tokens prefilled for this turn: the new text only, the rest came from the cache.
    public var prefilled = 0
    /// Tokens of the whole rendered conversation.
    public var promptTokens = 0
    public var tokens: [Int32] = []
    public var promptSeconds = 0.0
    public var generationSeconds = 0.0
    /// Oldest turns dropped to fit the context.
    public var droppedMessages = 0
    public var speculation: SpeculationStats?
    public var generationTPS: Double { generationSeconds > 0 ? Double(tokens.count) / generationSeconds : 0 }
}

/// A multi-turn conversation in the model's own chat format (its `tokenizer.chat_template`, or a
/// default for its family), keeping the KV cache between turns: each turn renders the whole
/// conversation, keeps the cached tokens it shares with the new rendering, and prefills only the
/// rest. A reply stops on the end-of-generation set; the oldest turns are dropped (after any
/// system message) when the conversation would not leave room for a reply.
public final class ChatSession {
    public let generator: Generator
    public let template: ChatTemplate
    let sequence: Session
    var sampler: Sampler
    let stops: Set<Int32>
    /// The conversation so far (system message first, if any).
    public private(set) var messages: [ChatMessage] = []
    /// Tokens in the KV cache, in order.
    var cached: [Int32] = []
    var speculation: SpeculationSetup?
    /// Sampling for the next replies.
    public var sampling: SamplingParameters {
        get { sampler.params }
        set { sampler = Sampler(newValue) }
    }
    /// Positions a turn keeps free for its reply when old turns must be dropped.
    public var replyReserve = 256

    /// `generator` and `sequence` reuse an existing thread pool and sequence (its KV cache; it is
    /// reset, and needs `maxDraft + 1` logits rows to speculate); by default the session makes its own.
    public init(model: TernModel, threads: Int, sampling: SamplingParameters, capacity: Int? = nil,
                template: ChatTemplate? = nil, system: String? = nil, speculation: Speculation = .off,
                generator: Generator? = nil, sequence: Session? = nil) throws {
        let generator = generator ?? Generator(model: model, threads: threads)
        self.generator = generator
        self.template = try template ?? ChatSession.template(for: model)
        let cap = sequence?.capacity ?? capacity ?? model.options.context
        self.speculation = try generator.speculationSetup(speculation, capacity: cap)
        if let sequence {
            sequence.reset()
            if let s = self.speculation, !sequence.canVerify(s.maxDraft) { self.speculation = nil }
            self.sequence = sequence
        } else {
            self.sequence = Session(model: model, parallel: generator.parallel, capacity: cap,
                                    options: generator.stateOptions(verifying: self.speculation?.maxDraft ?? 0))
        }
        sampler = Sampler(sampling)
        stops = model.tokenizer.endOfGeneration
        if let system { messages = [ChatMessage(role: "system", content: system)] }
    }

    /// The checkpoint's chat template, or its family's default (``ChatTemplate/fallback``).
    public static func template(for model: TernModel) throws -> ChatTemplate {
        if let src = model.file.metadata.string("tokenizer.chat_template") {
            return try ChatTemplate(source: src, origin: "the checkpoint's tokenizer.chat_template")
        }
        let tok = model.tokenizer
        return ChatTemplate.fallback(architecture: model.file.metadata.string("general.architecture") ?? "") { text in
            tok.encode(text, addSpecial: false, parseSpecial: true).count == 1
        }
    }

    /// Forgets the conversation but its system message (the cache is reused, not reallocated).
    public func reset() {
        messages = messages.first?.role == "system" ? [messages[0]] : []
        cached = []
        sequence.reset()
    }

    /// Positions left in the cache.
    public var remaining: Int { sequence.remaining }

    /// The conversation rendered with a generation prompt, as token ids.
    func renderedIds() throws -> [Int32] {
        try ChatSession.promptIds(messages, template: template, tokenizer: generator.model.tokenizer)
    }

    /// `messages` rendered by `template` with a generation prompt, as token ids: special-token
    /// text is parsed and nothing is added (the template writes any BOS itself).
    public static func promptIds(_ messages: [ChatMessage], template: ChatTemplate,
                                 tokenizer tok: any Tokenizer) throws -> [Int32] {
        tok.encode(try render(messages, template: template, tokenizer: tok), addSpecial: false, parseSpecial: true)
    }

    /// `messages` rendered by `template`, with the vocabulary's BOS and EOS text as `bos_token` and `eos_token`.
    public static func render(_ messages: [ChatMessage], template: ChatTemplate, tokenizer tok: any Tokenizer,
                              addGenerationPrompt: Bool = true) throws -> String {
        let special = { (id: Int32?) in id.map { String(decoding: tok.piece($0, special: true), as: UTF8.self) } ?? "" }
        return try template.apply(messages, addGenerationPrompt: addGenerationPrompt, bosToken: special(tok.bos),
                                  eosToken: special(tok.eos))
    }

    /// The template `--chat-template FILE` names, else the model's own (``template(for:)``).
    public static func template(for model: TernModel, file: String?) throws -> ChatTemplate {
        guard let file else { return try template(for: model) }
        let src: String
        do { src = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw TernError.usage("--chat-template: cannot read \(file): \(error.localizedDescription)")
        }
        return try ChatTemplate(source: src, origin: file)
    }

    /// Sends `message` as the user's turn and generates the reply (at most `maxTokens` tokens),
    /// calling `onToken` for each (return false to stop early: the reply so far is kept).
    public func send(_ message: String, maxTokens: Int, onToken: (Int32) -> Bool = { _ in true }) throws -> ChatTurnStats {
        var stats = ChatTurnStats()
        let keep = messages.first?.role == "system" ? 1 : 0
        messages.append(ChatMessage(role: "user", content: message))
        var ids: [Int32]
        do { ids = try renderedIds() } catch { messages.removeLast(); throw error }
        let room = sequence.capacity - min(replyReserve, maxTokens)
        while ids.count > room, messages.count - keep > 1 {
            // Drop the oldest exchange (a user turn and the reply after it).
            let n = messages.count - keep > 2 && messages[keep + 1].role != "user" ? 2 : 1
            messages.removeSubrange(keep..<keep + n)
            stats.droppedMessages += n
            ids = try renderedIds()
        }
        guard !ids.isEmpty else {
            messages.removeLast()
            throw TernError.usage("the chat template (\(template.origin)) rendered nothing for this conversation")
        }
        guard ids.count < sequence.capacity else {
            messages.removeLast()
            throw TernError.contextFull("the message needs \(ids.count) positions, the conversation has " +
                "\(sequence.capacity); raise -c")
        }
        // Reuse the cached prefix where every ring buffer still holds what the positions after it
        // attend to (Session.canRewind); otherwise prefill again from the start.
        var common = zip(cached, ids).prefix { $0 == $1 }.count
        if common == ids.count { common -= 1 }  // the last prompt token must be fed to get logits
        if sequence.position > common {
            if sequence.canRewind(to: common) { try sequence.rewind(to: common) } else { sequence.reset(); common = 0 }
        } else {
            sequence.discardPending()
            common = min(common, sequence.position)
        }
        stats.promptTokens = ids.count
        stats.prefilled = ids.count - common
        // Until the turn completes the cache is known to hold the common prefix only, and a turn that
        // fails (a read error of streamed weights, say) leaves the conversation as it was before it.
        cached = Array(ids[..<common])
        do {
            stats = try reply(ids, from: common, maxTokens: maxTokens, stats: stats, onToken: onToken)
        } catch {
            messages.removeLast()
            throw error
        }
        // The cache now holds the prompt and the reply (a sampled stop token is not kept; a
        // reply cut short leaves its last token pending, fed with the next turn).
        cached = ids + stats.tokens
        cached.removeLast(max(0, cached.count - sequence.position))
        messages.append(ChatMessage(role: "assistant", content: generator.model.tokenizer.decode(stats.tokens)))
        return stats
    }

    /// Prefills `ids[common...]` and generates the reply: `stats` with its tokens and times.
    func reply(_ ids: [Int32], from common: Int, maxTokens: Int, stats: ChatTurnStats,
               onToken: (Int32) -> Bool) throws -> ChatTurnStats {
        var stats = stats
        let t0 = Date()
        try sequence.append(Array(ids[common...]))
        stats.promptSeconds = Date().timeIntervalSince(t0)
        let t1 = Date()
        var stopped = false
        let budget = min(maxTokens, sequence.capacity - sequence.position)
        stats.tokens.reserveCapacity(budget)
        let take: (Int32) throws -> Bool = { next in
            if self.stops.contains(next) { stopped = true; return false }
            stats.tokens.append(next)
            return onToken(next)
        }
        if var s = speculation, budget > 0 {
            // Moved out and back, so the decode loop owns the drafters' storage alone (no copy on write).
            speculation = nil
            defer { speculation = s }
            var history = ids, spec = SpeculationStats()
            history.reserveCapacity(ids.count + budget + 1)  // no growing in the decode loop
            try sequence.decodeSpeculative(maxTokens: budget, sampler: &sampler, drafters: &s.drafters, maxDraft: s.maxDraft,
                                           history: &history, stats: &spec, onToken: take)
            stats.speculation = spec
        } else if budget > 0 {
            try sequence.decode(maxTokens: budget, sampler: &sampler, onToken: take)
        }
        stats.generationSeconds = Date().timeIntervalSince(t1)
        if stopped { sequence.discardPending() }
        return stats
    }
}
