import Foundation
import TernDecoding
import TernFormat
import TernKernels
import TernModels
import TernPlanner
import TernTokenizer

/// Errors from the engine API, by kind (checkpoint format problems are `TernFormat.FormatError`).
public enum TernError: Error, CustomStringConvertible, Equatable {
    /// A bad argument or option.
    case usage(String)
    /// The memory budget is below what the model needs (the message names the minimum).
    case budget(String)
    /// The sequence has no room for what was asked.
    case contextFull(String)
    /// The file is a GGUF: the message gives the tern-quantize command that converts it.
    case needsConversion(String)

    public var description: String {
        switch self {
        case .usage(let s), .budget(let s), .contextFull(let s), .needsConversion(let s): s
        }
    }
}

/// How a model is loaded: the memory budget and the sequence shape it is planned for.
public struct LoadOptions: Sendable {
    /// Peak resident memory to stay within (nil: no limit, everything mapped in place).
    public var memoryBudget: Int?
    /// Positions a sequence may reach (prompt + generated); 0 = the model's context length,
    /// capped at `contextCap` when that is set.
    public var context = 0
    public var contextCap: Int?
    /// Largest batch of positions per forward pass (prefill).
    public var maxBatch = Generator.prefillBatch
    /// Logits rows per forward pass (1 for generation; the batch for perplexity).
    public var logitsRows: Int? = 1
    /// KV cache precision; nil lets the planner choose (f16 unless the budget needs q8).
    public var kv: KVPrecision?
    /// The speculation to make room for under the budget (its drafts per pass, `maxDraft` or the
    /// calibrated/default number, and draft head). Generating with more than was planned for
    /// under a budget gets only what the plan allows.
    public var speculation: Speculation = .off
    public var maxDraft: Int?

    public init(memoryBudget: Int? = nil, context: Int = 0, maxBatch: Int = Generator.prefillBatch, logitsRows: Int? = 1,
                kv: KVPrecision? = nil, contextCap: Int? = nil) {
        self.contextCap = contextCap
        self.memoryBudget = memoryBudget
        self.context = context
        self.maxBatch = maxBatch
        self.logitsRows = logitsRows
        self.kv = kv
    }
}

/// A loaded checkpoint: weights (mapped in place or streamed, as planned), architecture and tokenizer.
public final class TernModel: @unchecked Sendable {
    public let file: TernFile
    public let tokenizer: any Tokenizer
    public let model: any LanguageModel
    public let plan: Plan
    public let options: LoadOptions
    /// The KV cache precision every sequence of this model uses (from the plan).
    public var kvPrecision: KVPrecision { KVPrecision(rawValue: plan.kvPrecision) ?? .f16 }
    /// The drafting settings `tern calibrate` stored in the checkpoint (nil: never calibrated,
    /// or the stored values do not fit this model).
    public let calibration: DraftCalibration?
    let store: WeightStore

    /// The plan for `path` under `options`, without loading the weights.
    public static func plan(path: String, options: LoadOptions) throws -> (Plan, TernFile, any Tokenizer, Int) {
        let p = try planned(path: path, options: options)
        return (p.plan, p.file, p.tokenizer, p.context)
    }

    static func planned(path: String, options: LoadOptions)
        throws -> (plan: Plan, file: TernFile, tokenizer: any Tokenizer, context: Int, calibration: DraftCalibration?) {
        let map = try MappedFile(path: path)
        if GGUFFile.hasMagic(map) {
            let out = (path.hasSuffix(".gguf") ? String(path.dropLast(5)) : path) + ".tern"
            throw TernError.needsConversion("\(path) is a GGUF file; convert it first:\n  tern-quantize \(path) \(out)")
        }
        let file = try TernFile(map: map)
        let tokenizer = try loadTokenizer(metadata: file.metadata, file: path)
        let config = try Architectures.configuration(file.metadata, file: path, vocab: tokenizer.count)
        let ctxMax = config.context
        let context = options.context > 0 ? options.context : min(ctxMax, options.contextCap ?? ctxMax)
        guard context > 0, context <= ctxMax else {
            throw TernError.usage("context \(context) is outside the model's 1...\(ctxMax)")
        }
        let shape = try Architectures.memoryShape(file: file, vocab: tokenizer.count, capacity: context,
                                                  maxBatch: min(options.maxBatch, context),
                                                  options: StateOptions(logitsRows: options.logitsRows))
        let cal = try? DraftCalibration(metadata: file.metadata, file: path, vocabSize: tokenizer.count, layers: config.layers)
        do {
            let draft = options.speculation.request(calibration: cal, maxDraft: options.maxDraft)
            let plan = try Planner.plan(shape, budget: options.memoryBudget, kv: options.kv?.rawValue, draft: draft)
            return (plan, file, tokenizer, context, cal)
        } catch let e as PlanError {
            throw TernError.budget("--mem-budget: \(e.description)")
        }
    }

    /// Opens a `.tern` file and plans it into `options.memoryBudget`. A GGUF file is refused
    /// with the command that converts it; a budget below the minimum is refused naming it.
    public init(path: String, options: LoadOptions = LoadOptions()) throws {
        let (plan, file, tokenizer, context, calibration) = try TernModel.planned(path: path, options: options)
        self.calibration = calibration
        self.plan = plan
        self.file = file
        self.tokenizer = tokenizer
        var opts = options
        opts.context = context
        self.options = opts
        store = WeightStore(file: file)
        let placement = WeightPlacement(streamedLayers: Set(plan.layers.indices.filter { plan.layers[$0] == .streamed }),
                                        streamHead: plan.lmHead == .streamed, headChunkBytes: max(1, plan.lmHeadChunkBytes),
                                        layerChunkBytes: plan.layerChunkTarget, reads: plan.streamsInPlace ? .map : .copy)
        model = try Architectures.load(store: store, vocab: tokenizer.count, placement: placement)
    }

    /// Opens a `.tern` file with everything mapped in place.
    public convenience init(path: String) throws {
        try self.init(path: path, options: LoadOptions())
    }
}

/// Timings and counts of one generation.
public struct GenerationStats: Sendable {
    /// Acceptance figures when speculation ran.
    public var speculation: SpeculationStats?
    /// The drafters that ran, e.g. "vocab:16384+lookup".
    public var drafters: String?
    public var promptTokens: [Int32] = []
    public var tokens: [Int32] = []
    public var promptSeconds = 0.0
    public var generationSeconds = 0.0
    public var promptTPS: Double { promptSeconds > 0 ? Double(promptTokens.count) / promptSeconds : 0 }
    /// Tokens per second over the decode steps (the first token comes from prefill).
    public var generationTPS: Double { generationSeconds > 0 ? Double(max(0, tokens.count - 1)) / generationSeconds : 0 }
}

/// Generation over a model: owns a worker pool, and builds a ``Session`` (KV cache, scratch) for
/// each call. One thread drives a generator at a time; several generators may share a model.
public final class Generator: @unchecked Sendable {
    public let model: TernModel
    public let parallel: Parallel
    public static let prefillBatch = 128
    /// Layout of the sequence state (ring buffers for sliding-window layers by default; one
    /// row of logits, as generation needs).
    public var stateOptions: StateOptions

    public init(model: TernModel, threads: Int) {
        self.model = model
        parallel = Parallel(threads: threads)
        stateOptions = StateOptions(logitsRows: 1, kv: model.kvPrecision)
        calibration = model.calibration
    }

    /// Drafts per verification pass when speculating; nil: the calibrated length (else 6).
    public var maxDraft: Int?
    /// Drafting calibration used by `--speculate auto` and for the vocabulary ranking; defaults
    /// to what the checkpoint stores (``TernModel/calibration``).
    public var calibration: DraftCalibration? { didSet { cachedDrafter = nil } }
    /// The model drafter last built, reused while the settings stay the same.
    var cachedDrafter: (key: String, drafter: ModelDrafter)?
    /// What the lookup gate learned (``DraftGate``: pass times here, how often proposals were
    /// right), carried from one generation to the next so that each does not learn this
    /// machine's costs anew. nil: lookup drafting alone uses the fixed schedule of
    /// ``Drafters/lookupLimit`` instead.
    public var draftGate: DraftGate? = DraftGate()

    /// ``stateOptions`` with room to verify `drafts` drafted tokens per pass (a logits row each, and one more).
    public func stateOptions(verifying drafts: Int) -> StateOptions {
        var options = stateOptions
        options.logitsRows = drafts + 1
        return options
    }

    /// Generates up to `maxTokens` after `prompt`; `onToken` gets each id and returns false to stop.
    /// With `speculation`, drafts are verified in batches: greedy output is the same tokens,
    /// sampled output has the same distribution (speculative sampling).
    public func generate(prompt: String, maxTokens: Int, sampling: SamplingParameters, speculation: Speculation = .off,
                         onToken: (Int32) -> Bool = { _ in true }) throws -> GenerationStats {
        try generate(promptIds: model.tokenizer.encode(prompt), maxTokens: maxTokens, sampling: sampling,
                     speculation: speculation, onToken: onToken)
    }

    /// ``generate(prompt:maxTokens:sampling:speculation:onToken:)`` from token ids (e.g. a rendered chat template).
    public func generate(promptIds ids: [Int32], maxTokens: Int, sampling: SamplingParameters, speculation: Speculation = .off,
                         onToken: (Int32) -> Bool = { _ in true }) throws -> GenerationStats {
        var stats = GenerationStats()
        guard !ids.isEmpty else { throw TernError.usage("the prompt is empty and the vocabulary adds no BOS token") }
        stats.promptTokens = ids
        let capacity = ids.count + max(0, maxTokens)
        let limit = model.options.context
        guard capacity <= limit else {
            throw TernError.contextFull("prompt (\(ids.count) tokens) + \(maxTokens) new tokens exceeds the context " +
                "of \(limit)"
                + (model.options.memoryBudget != nil ? " planned for --mem-budget; raise -c" : ""))
        }
        let setup = try speculationSetup(speculation, capacity: capacity)
        let seq = Session(model: model, parallel: parallel, capacity: capacity,
                          options: stateOptions(verifying: setup?.maxDraft ?? 0))
        var sampler = Sampler(sampling)
        let t0 = Date()
        try seq.append(ids)
        stats.promptSeconds = Date().timeIntervalSince(t0)
        guard maxTokens > 0 else { return stats }
        let t1 = Date()
        let stop = model.tokenizer.endOfGeneration
        stats.tokens.reserveCapacity(maxTokens)
        if var setup {
            var history = ids
            history.reserveCapacity(ids.count + maxTokens + 1)
            var spec = SpeculationStats()
            // Moved in and back out, so the decode loop owns its storage alone (no copy on write).
            setup.drafters.gate = draftGate
            draftGate = nil
            defer { draftGate = setup.drafters.gate }
            try seq.decodeSpeculative(maxTokens: maxTokens, sampler: &sampler, drafters: &setup.drafters,
                                      maxDraft: setup.maxDraft, history: &history, stats: &spec) { next in
                stats.tokens.append(next)
                return onToken(next) && !stop.contains(next)
            }
            stats.speculation = spec
            stats.drafters = setup.label
        } else {
            try seq.decode(maxTokens: maxTokens, sampler: &sampler) { next in
                stats.tokens.append(next)
                return onToken(next) && !stop.contains(next)
            }
        }
        stats.generationSeconds = Date().timeIntervalSince(t1)
        return stats
    }
}

extension Generator {
    /// The generated tokens as an async sequence: generation runs on its own thread and stops
    /// early when the consumer stops iterating. Errors (a full context, a read failure) end the
    /// sequence by throwing.
    ///
    ///     for try await id in generator.tokens(prompt: "Hello", maxTokens: 32, sampling: .init(temperature: 0)) { ... }
    public func tokens(prompt: String, maxTokens: Int, sampling: SamplingParameters) -> AsyncThrowingStream<Int32, Error> {
        AsyncThrowingStream { continuation in
            let stopped = StopFlag()
            continuation.onTermination = { _ in stopped.set() }
            let thread = Thread { [self] in
                do {
                    _ = try generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling) { id in
                        continuation.yield(id)
                        return !stopped.isSet
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.start()
        }
    }
}

/// A flag set from one thread and read from another.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
