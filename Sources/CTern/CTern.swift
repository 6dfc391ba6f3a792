// The C API (tern.h), implemented with @_cdecl exports. Every entry point validates its
// arguments and catches every Swift error, so no input can trap inside the host process.
import CTernAPI
import Foundation
import Synchronization
import Tern
import TernDecoding
import TernFormat
import TernKernels
import TernModels
import TernPlanner
import TernTemplate
import TernTokenizer

@_silgen_name("tern_internal_set_error")
func setLastError(_ message: UnsafePointer<CChar>?, _ len: Int)

func fail(_ status: tern_status, _ message: String) -> tern_status {
    var m = message
    m.withUTF8 { b in b.withMemoryRebound(to: CChar.self) { setLastError($0.baseAddress, $0.count) } }
    return status
}

/// Maps a Swift error to a status and records its message.
func fail(_ error: Error) -> tern_status {
    switch error {
    case let e as FormatError:
        let io = ["open", "stat", "read", "mmap", "create", "write"].contains(e.field)
        return fail(io ? TERN_ERR_IO : TERN_ERR_FORMAT, e.description)
    case let e as TernError:
        switch e {
        case .budget: return fail(TERN_ERR_BUDGET, e.description)
        case .needsConversion: return fail(TERN_ERR_FORMAT, e.description)
        case .contextFull: return fail(TERN_ERR_CONTEXT_FULL, e.description)
        case .usage: return fail(TERN_ERR_INVALID_ARGUMENT, e.description)
        }
    case let e as TemplateError:
        return fail(TERN_ERR_TEMPLATE, e.description)
    default:
        return fail(TERN_ERR_INTERNAL, "\(error)")
    }
}

final class ModelBox: @unchecked Sendable {
    let model: TernModel
    let threads: Int
    let speculation: Speculation
    init(model: TernModel, threads: Int, speculation: Speculation) {
        self.model = model
        self.threads = threads
        self.speculation = speculation
    }
}

final class SessionBox: @unchecked Sendable {
    let box: ModelBox
    let sequence: Session
    let cancelled = Atomic<Bool>(false)
    /// The session's drafters (nil: plain decoding) and every token in its context (lookup reads it).
    var drafters: Drafters?
    let maxDraft: Int
    var history: [Int32] = []
    /// The conversation of tern_chat() (made on its first call).
    var chat: ChatSession?

    /// The session's thread pool, shared with its chat.
    let generator: Generator

    init(box: ModelBox) throws {
        self.box = box
        generator = Generator(model: box.model, threads: box.threads)
        let setup = try generator.drafters(for: box.speculation)
        drafters = setup?.drafters
        maxDraft = setup?.maxDraft ?? 0
        sequence = Session(model: box.model, parallel: generator.parallel, capacity: box.model.options.context,
                           options: generator.stateOptions(verifying: maxDraft))
        history.reserveCapacity(sequence.capacity + 1)  // the decode loop appends without growing it
    }
}

/// Live handles: closing or using anything else is reported, not dereferenced.
final class HandleRegistry: @unchecked Sendable {
    private var live = Set<UInt>()
    private let lock = NSLock()

    func register(_ object: AnyObject) -> OpaquePointer {
        let p = Unmanaged.passRetained(object).toOpaque()
        lock.withLock { _ = live.insert(UInt(bitPattern: p)) }
        return OpaquePointer(p)
    }

    /// The live object behind `p` if it is a `T` (retained for the caller's use).
    func lookup<T: AnyObject>(_ p: OpaquePointer?, as: T.Type) -> T? {
        guard let p else { return nil }
        return lock.withLock {
            guard live.contains(UInt(bitPattern: UnsafeMutableRawPointer(p))) else { return nil }
            return Unmanaged<AnyObject>.fromOpaque(UnsafeMutableRawPointer(p)).takeUnretainedValue() as? T
        }
    }

    /// Removes and releases a live `T`; false if `p` is not one.
    func unregister<T: AnyObject>(_ p: OpaquePointer, as: T.Type) -> Bool {
        let raw = UnsafeMutableRawPointer(p)
        let removed: Bool = lock.withLock {
            guard live.contains(UInt(bitPattern: raw)), Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() is T else {
                return false
            }
            live.remove(UInt(bitPattern: raw))
            return true
        }
        if removed { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        return removed
    }
}

let handles = HandleRegistry()
func register(_ object: AnyObject) -> OpaquePointer { handles.register(object) }
func lookup<T: AnyObject>(_ p: OpaquePointer?, as t: T.Type) -> T? { handles.lookup(p, as: t) }
func unregister<T: AnyObject>(_ p: OpaquePointer, as t: T.Type) -> Bool { handles.unregister(p, as: t) }

@_cdecl("tern_version")
public func tern_version() -> UnsafePointer<CChar> { UnsafePointer(versionString) }
nonisolated(unsafe) let versionString: UnsafeMutablePointer<CChar> = strdup("0.1.0")!

@_cdecl("tern_api_version")
public func tern_api_version() -> Int32 { 2 }

nonisolated(unsafe) let statusNames: [UnsafeMutablePointer<CChar>] = ([
    "ok", "invalid argument", "I/O error", "invalid checkpoint format", "memory budget too small",
    "buffer too small", "context full", "cancelled", "internal error", "chat template error", "unknown status",
] as [String]).map { strdup($0)! }

@_cdecl("tern_strerror")
public func tern_strerror(_ status: Int32) -> UnsafePointer<CChar> {
    UnsafePointer(statusNames[(0...9).contains(status) ? Int(status) : 10])
}

@_cdecl("tern_model_options_init")
public func tern_model_options_init(_ o: UnsafeMutablePointer<tern_model_options>?) {
    guard let o else { return }
    o.pointee = tern_model_options(struct_size: MemoryLayout<tern_model_options>.size, path: nil, threads: 0,
                                   mem_budget_bytes: 0, context: 0, speculation: Int32(TERN_SPECULATE_AUTO.rawValue))
}

@_cdecl("tern_sampling_init")
public func tern_sampling_init(_ s: UnsafeMutablePointer<tern_sampling>?) {
    guard let s else { return }
    s.pointee = tern_sampling(temperature: 0, top_k: 40, top_p: 1, seed: 0)
}

@_cdecl("tern_model_open")
public func tern_model_open(_ options: UnsafePointer<tern_model_options>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> tern_status {
    guard let options, let out else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: options and out_model must not be NULL")
    }
    out.pointee = nil
    let o = options.pointee
    guard o.struct_size == MemoryLayout<tern_model_options>.size else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: options.struct_size is \(o.struct_size), expected " +
            "\(MemoryLayout<tern_model_options>.size); call tern_model_options_init first")
    }
    guard let cpath = o.path else { return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: options.path is NULL") }
    guard let path = String(validatingCString: cpath) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: options.path is not valid UTF-8")
    }
    guard o.threads >= 0, o.threads <= 1024 else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: threads \(o.threads) is outside 0...1024")
    }
    let speculation: Speculation
    switch UInt32(bitPattern: o.speculation) {
    case TERN_SPECULATE_OFF.rawValue: speculation = .off
    case TERN_SPECULATE_AUTO.rawValue: speculation = .automatic
    case TERN_SPECULATE_LOOKUP.rawValue: speculation = .lookupOnly
    default: return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: speculation \(o.speculation) is not a " +
        "tern_speculation (0 off, 1 auto, 2 lookup)")
    }
    guard o.mem_budget_bytes <= UInt64(Int.max) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_open: mem_budget_bytes is too large")
    }
    do {
        var options = LoadOptions(memoryBudget: o.mem_budget_bytes > 0 ? Int(o.mem_budget_bytes) : nil,
                                  context: Int(o.context), contextCap: 4096)
        options.speculation = speculation
        let model = try TernModel(path: path, options: options)
        let box = ModelBox(model: model, threads: o.threads > 0 ? Int(o.threads) : ThreadPool.physicalCores,
                           speculation: speculation)
        out.pointee = register(box)
        return TERN_OK
    } catch {
        return fail(error)
    }
}

@_cdecl("tern_model_close")
public func tern_model_close(_ model: OpaquePointer?) -> tern_status {
    guard let model else { return TERN_OK }
    return unregister(model, as: ModelBox.self) ? TERN_OK : fail(TERN_ERR_INVALID_ARGUMENT, "tern_model_close: not " +
        "an open model (closed twice?)")
}

@_cdecl("tern_tokenize")
public func tern_tokenize(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ len: Int, _ addSpecial: Int32,
                          _ tokens: UnsafeMutablePointer<Int32>?, _ capacity: Int,
                          _ nTokens: UnsafeMutablePointer<Int>?) -> tern_status {
    guard let box = lookup(model, as: ModelBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_tokenize: not an open model")
    }
    guard let nTokens, text != nil || len == 0 else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_tokenize: text and n_tokens must not be NULL")
    }
    guard len >= 0, len <= 1 << 30 else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_tokenize: len \(len) is out of range")
    }
    let bytes = text.map { UnsafeRawBufferPointer(start: $0, count: len) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
    guard let s = String(validating: bytes, as: UTF8.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_tokenize: text is not valid UTF-8")
    }
    let ids = box.model.tokenizer.encode(s, addSpecial: addSpecial != 0)
    nTokens.pointee = ids.count
    guard ids.count <= capacity else {
        return fail(TERN_ERR_BUFFER_TOO_SMALL, "tern_tokenize: \(ids.count) tokens do not fit in \(capacity)")
    }
    guard capacity == 0 || tokens != nil else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_tokenize: tokens is NULL")
    }
    for (i, t) in ids.enumerated() { tokens![i] = t }
    return TERN_OK
}

@_cdecl("tern_detokenize")
public func tern_detokenize(_ model: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int,
                            _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                            _ len: UnsafeMutablePointer<Int>?) -> tern_status {
    guard let box = lookup(model, as: ModelBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_detokenize: not an open model")
    }
    guard let len, tokens != nil || n == 0, n >= 0 else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_detokenize: tokens and len must not be NULL")
    }
    let tok = box.model.tokenizer
    var bytes: [UInt8] = []
    for i in 0..<n {
        let t = tokens![i]
        guard t >= 0, Int(t) < tok.count else {
            return fail(TERN_ERR_INVALID_ARGUMENT, "tern_detokenize: token id \(t) is outside the " +
                "\(tok.count)-token vocabulary")
        }
        bytes += tok.piece(t)
    }
    return writeCString(bytes, buf, capacity, len, "tern_detokenize")
}

/// The size-query convention: the length (without NUL) goes to *len; the bytes and a NUL are
/// written when `capacity` holds them, else TERN_ERR_BUFFER_TOO_SMALL.
func writeCString(_ bytes: [UInt8], _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ len: UnsafeMutablePointer<Int>,
                  _ name: String) -> tern_status {
    len.pointee = bytes.count
    guard bytes.count < capacity else {
        return fail(TERN_ERR_BUFFER_TOO_SMALL, "\(name): \(bytes.count + 1) bytes needed, \(capacity) given")
    }
    guard let buf else { return fail(TERN_ERR_INVALID_ARGUMENT, "\(name): buf is NULL") }
    for (i, b) in bytes.enumerated() { buf[i] = CChar(bitPattern: b) }
    buf[bytes.count] = 0
    return TERN_OK
}

@_cdecl("tern_session_create")
public func tern_session_create(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> tern_status {
    guard let out else { return fail(TERN_ERR_INVALID_ARGUMENT, "tern_session_create: out_session is NULL") }
    out.pointee = nil
    guard let box = lookup(model, as: ModelBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_session_create: not an open model")
    }
    do {
        out.pointee = register(try SessionBox(box: box))
        return TERN_OK
    } catch {
        return fail(error)
    }
}

@_cdecl("tern_session_reset")
public func tern_session_reset(_ session: OpaquePointer?) -> tern_status {
    guard let s = lookup(session, as: SessionBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_session_reset: not a live session")
    }
    s.sequence.reset()
    s.history.removeAll(keepingCapacity: true)
    s.chat = nil
    return TERN_OK
}

@_cdecl("tern_session_free")
public func tern_session_free(_ session: OpaquePointer?) -> tern_status {
    guard let session else { return TERN_OK }
    return unregister(session, as: SessionBox.self) ? TERN_OK : fail(TERN_ERR_INVALID_ARGUMENT, "tern_session_free: " +
        "not a live session (freed twice?)")
}

@_cdecl("tern_cancel")
public func tern_cancel(_ session: OpaquePointer?) -> tern_status {
    guard let s = lookup(session, as: SessionBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_cancel: not a live session")
    }
    s.cancelled.store(true, ordering: .releasing)
    return TERN_OK
}

@_cdecl("tern_generate")
public func tern_generate(_ session: OpaquePointer?, _ prompt: UnsafePointer<CChar>?, _ maxTokens: Int,
                          _ sampling: UnsafePointer<tern_sampling>?, _ callback: tern_token_callback?,
                          _ user: UnsafeMutableRawPointer?, _ nGenerated: UnsafeMutablePointer<Int>?) -> tern_status {
    nGenerated?.pointee = 0
    guard let s = lookup(session, as: SessionBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_generate: not a live session")
    }
    let text: String
    switch cText(prompt, "prompt") {
    case .success(let t): text = t
    case .failure(let e): return fail(TERN_ERR_INVALID_ARGUMENT, "tern_generate: \(e.m)")
    }
    guard maxTokens >= 0 else { return fail(TERN_ERR_INVALID_ARGUMENT, "tern_generate: max_tokens is negative") }
    guard let params = samplingParameters(sampling) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_generate: sampling needs temperature >= 0, top_k >= 0, 0 < " +
            "top_p <= 1")
    }
    s.cancelled.store(false, ordering: .releasing)
    let seq = s.sequence, tok = s.box.model.tokenizer
    let ids = tok.encode(text, addSpecial: seq.position == 0 && seq.pending == nil)
    guard ids.count + maxTokens <= seq.remaining else {
        return fail(TERN_ERR_CONTEXT_FULL, "tern_generate: \(seq.capacity - seq.remaining) positions used + " +
            "\(ids.count) prompt + \(maxTokens) new tokens exceed the session's \(seq.capacity)")
    }
    do {
        try seq.append(ids)
        s.history += ids
        var sampler = Sampler(params)
        var decoder = StreamingDecoder(tok)
        var produced = 0
        var wasCancelled = false
        let onToken = { (next: Int32) -> Bool in
            if s.cancelled.load(ordering: .acquiring) { wasCancelled = true; return false }
            produced += 1
            nGenerated?.pointee = produced
            var piece = decoder.push(next)
            let stop = piece.withUTF8 { b in
                b.withMemoryRebound(to: CChar.self) { callback?(next, $0.baseAddress, $0.count, user) ?? 0 }
            }
            return stop == 0 && !tok.endOfGeneration.contains(next)
        }
        if var drafters = s.drafters {
            // Moved out and back, so the decode loop owns the drafters' storage alone (no copy on write).
            s.drafters = nil
            defer { s.drafters = drafters }
            var stats = SpeculationStats()
            try seq.decodeSpeculative(maxTokens: maxTokens, sampler: &sampler, drafters: &drafters, maxDraft: s.maxDraft,
                                      history: &s.history, stats: &stats, onToken: onToken)
        } else {
            try seq.decode(maxTokens: maxTokens, sampler: &sampler) { next in
                s.history.append(next)
                return onToken(next)
            }
        }
        if wasCancelled {
            seq.discardPending()  // sampled after the cancel: not handed out, not kept
            s.history.removeLast()
            return fail(TERN_ERR_CANCELLED, "tern_generate: cancelled")
        }
        return TERN_OK
    } catch {
        // A failed prompt leaves the session where it was, or (a windowed model, a long prompt)
        // starts it again: the history the lookup drafter reads must follow (Session.append).
        if seq.position == 0 && seq.pending == nil { s.history.removeAll(keepingCapacity: true) }
        return fail(error)
    }
}

/// The sampling a C caller asked for (NULL: greedy), or nil when out of range.
func samplingParameters(_ sampling: UnsafePointer<tern_sampling>?) -> SamplingParameters? {
    guard let sp = sampling?.pointee else { return SamplingParameters(temperature: 0, topK: 40, topP: 1, seed: 0) }
    guard sp.temperature.isFinite, sp.temperature >= 0, sp.top_k >= 0, sp.top_p.isFinite, sp.top_p > 0, sp.top_p <= 1 else {
        return nil
    }
    return SamplingParameters(temperature: sp.temperature, topK: Int(sp.top_k), topP: sp.top_p, seed: sp.seed)
}

/// A C string as Swift text, or a message naming the argument.
func cText(_ p: UnsafePointer<CChar>?, _ what: String) -> Result<String, StringError> {
    guard let p else { return .failure(StringError("\(what) is NULL")) }
    guard let s = String(validatingCString: p) else { return .failure(StringError("\(what) is not valid UTF-8")) }
    return .success(s)
}

struct StringError: Error { let m: String; init(_ m: String) { self.m = m } }

@_cdecl("tern_chat_apply_template")
public func tern_chat_apply_template(_ model: OpaquePointer?, _ source: UnsafePointer<CChar>?,
                                     _ messages: UnsafePointer<tern_chat_message>?,
                                     _ n: Int, _ addGenerationPrompt: Int32, _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                                     _ len: UnsafeMutablePointer<Int>?) -> tern_status {
    let name = "tern_chat_apply_template"
    guard let box = lookup(model, as: ModelBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "\(name): not an open model")
    }
    guard let len, messages != nil || n == 0, n >= 0, n <= 1 << 20 else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "\(name): messages and len must not be NULL (n \(n))")
    }
    var msgs: [ChatMessage] = []
    for i in 0..<n {
        let m = messages![i]
        switch (cText(m.role, "messages[\(i)].role"), cText(m.content, "messages[\(i)].content")) {
        case (.success(let r), .success(let c)): msgs.append(ChatMessage(role: r, content: c))
        case (.failure(let e), _), (_, .failure(let e)): return fail(TERN_ERR_INVALID_ARGUMENT, "\(name): \(e.m)")
        }
    }
    do {
        let template: ChatTemplate
        if let source {
            guard let src = String(validatingCString: source) else {
                return fail(TERN_ERR_INVALID_ARGUMENT, "\(name): template_source is not valid UTF-8")
            }
            template = try ChatTemplate(source: src, origin: "template_source")
        } else {
            template = try ChatSession.template(for: box.model)
        }
        let text = try ChatSession.render(msgs, template: template, tokenizer: box.model.tokenizer,
                                          addGenerationPrompt: addGenerationPrompt != 0)
        return writeCString(Array(text.utf8), buf, capacity, len, name)
    } catch {
        return fail(error)
    }
}

@_cdecl("tern_chat")
public func tern_chat(_ session: OpaquePointer?, _ system: UnsafePointer<CChar>?, _ userMessage: UnsafePointer<CChar>?,
                      _ maxTokens: Int, _ sampling: UnsafePointer<tern_sampling>?, _ callback: tern_token_callback?,
                      _ user: UnsafeMutableRawPointer?,
                      _ nGenerated: UnsafeMutablePointer<Int>?) -> tern_status {
    nGenerated?.pointee = 0
    guard let s = lookup(session, as: SessionBox.self) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_chat: not a live session")
    }
    let message: String
    var systemText: String?
    switch (cText(userMessage, "user_message"), system == nil ? .success("") : cText(system, "system")) {
    case (.success(let m), .success(let sys)): (message, systemText) = (m, system == nil ? nil : sys)
    case (.failure(let e), _), (_, .failure(let e)): return fail(TERN_ERR_INVALID_ARGUMENT, "tern_chat: \(e.m)")
    }
    guard maxTokens >= 0 else { return fail(TERN_ERR_INVALID_ARGUMENT, "tern_chat: max_tokens is negative") }
    guard let params = samplingParameters(sampling) else {
        return fail(TERN_ERR_INVALID_ARGUMENT, "tern_chat: sampling needs temperature >= 0, top_k >= 0, 0 < top_p <= 1")
    }
    s.cancelled.store(false, ordering: .releasing)
    do {
        if s.chat == nil {
            // The session's own sequence and thread pool: one KV cache per session, as planned.
            s.chat = try ChatSession(model: s.box.model, threads: s.box.threads, sampling: params, system: systemText,
                                     speculation: s.box.speculation, generator: s.generator, sequence: s.sequence)
        }
        let chat = s.chat!
        chat.sampling = params
        let tok = s.box.model.tokenizer
        var decoder = StreamingDecoder(tok)
        var produced = 0, wasCancelled = false
        _ = try chat.send(message, maxTokens: maxTokens) { next in
            if s.cancelled.load(ordering: .acquiring) { wasCancelled = true; return false }
            produced += 1
            nGenerated?.pointee = produced
            var piece = decoder.push(next)
            let stop = piece.withUTF8 { b in
                b.withMemoryRebound(to: CChar.self) { callback?(next, $0.baseAddress, $0.count, user) ?? 0 }
            }
            return stop == 0
        }
        return wasCancelled ? fail(TERN_ERR_CANCELLED, "tern_chat: cancelled") : TERN_OK
    } catch {
        return fail(error)
    }
}
