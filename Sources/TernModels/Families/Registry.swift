import TernFormat
import TernKernels
import TernPlanner

/// A model family: its configuration (read from `<architecture>.*` metadata) and its layer math,
/// composed from ``LayerPass`` blocks. Everything else is ``DecoderModel``'s.
protocol DecoderFamily: Sendable {
    /// The `general.architecture` value this family runs.
    static var architecture: String { get }
    static func configuration(_ r: DecoderConfig.Reader, vocab: Int) throws -> DecoderConfig
    /// One layer over a batch: reads and updates the residual stream `p.s.hidden`.
    static func layer(_ p: LayerPass)
    /// Fills in metadata llama.cpp assumes for this family but GGUF files may omit (the converter
    /// stores it, so the checkpoint says what it runs with).
    static func completeMetadata(_ m: inout Metadata)
}

extension DecoderFamily {
    static func completeMetadata(_ m: inout Metadata) {}

    /// Pre-norm attention and gated FFN, each added to the residual stream (Llama and most of its descendants).
    static func layer(_ p: LayerPass) {
        p.attention()
        p.residual()
        p.feedForward()
        p.residual()
    }
}

/// The architectures Tern runs, keyed by `general.architecture`. A family is one file and one line here.
public enum Architectures {
    static let families: [any DecoderFamily.Type] = [
        Gemma3.self,
        Llama.self,
        Qwen2.self,
        Qwen3.self,
    ]

    /// Supported `general.architecture` values.
    public static var supported: [String] { families.map { $0.architecture } }

    static func family(_ m: Metadata, file: String) throws -> any DecoderFamily.Type {
        let arch = m.string("general.architecture") ?? "(none)"
        guard let f = families.first(where: { $0.architecture == arch }) else {
            throw FormatError(file: file, field: "metadata 'general.architecture'",
                              "architecture '\(arch)' is not supported (supported: \(supported.joined(separator: ", ")))")
        }
        return f
    }

    /// The configuration of the model in a checkpoint's metadata (its family's reading of it).
    public static func configuration(_ m: Metadata, file: String, vocab: Int) throws -> DecoderConfig {
        let f = try family(m, file: file)
        return try f.configuration(DecoderConfig.Reader(metadata: m, file: file, architecture: f.architecture), vocab: vocab)
    }

    /// Loads the model in `store` with the weights placed as `placement` says.
    public static func load(store: WeightStore, vocab: Int,
                            placement: WeightPlacement = WeightPlacement()) throws -> any LanguageModel {
        let m = store.file.metadata, f = try family(m, file: store.file.path)
        let c = try f.configuration(DecoderConfig.Reader(metadata: m, file: store.file.path,
                                                         architecture: f.architecture), vocab: vocab)
        return try DecoderModel(family: f, config: c, store: store, placement: placement)
    }

    /// What the planner needs to know of the model in `file` (see ``DecoderModel``).
    public static func memoryShape(file: TernFile, vocab: Int, capacity: Int, maxBatch: Int,
                                   options: StateOptions) throws -> MemoryShape {
        let c = try configuration(file.metadata, file: file.path, vocab: vocab)
        return DecoderModel.memoryShape(config: c, file: file, capacity: capacity, maxBatch: maxBatch, options: options)
    }

    /// The products of one decoded token of the model in `file`: each matrix's kernel format,
    /// multiply-accumulates and bytes.
    public static func decodeProducts(file: TernFile, config: DecoderConfig) -> [DecodeProduct] {
        DecoderModel.decodeProducts(config: config, file: file)
    }

    /// Checks the architecture is supported and adds the metadata defaults its family assumes.
    public static func completeMetadata(_ m: inout Metadata, file: String) throws {
        try family(m, file: file).completeMetadata(&m)
    }
}

/// One matrix product of a decoded token: its kernel format, multiply-accumulates and weight bytes.
public struct DecodeProduct: Sendable, Equatable {
    public let kind: QuantKind
    public let macs: Int
    public let bytes: Int
}
