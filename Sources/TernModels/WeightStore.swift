import TernFormat
import TernKernels

/// Hands out a checkpoint's tensors as kernel views: raw tensors in place from the map (asked
/// for 2 MiB page-table entries), zstd tensors read by pread and decompressed once into
/// buffers owned here. Checks dtype and shape of each.
public final class WeightStore: @unchecked Sendable {
    public let file: TernFile
    private var owned: [UnsafeMutableRawBufferPointer] = []
    /// Reads the zstd tensors decompressed here, opened at the first.
    private var reader: TensorReader?

    public init(file: TernFile) { self.file = file }

    deinit { for b in owned { b.deallocate() } }

    func info(_ name: String) throws -> TensorInfo {
        guard let t = file.tensor(name) else {
            throw FormatError(file: file.path, field: "tensor \(name)", "missing from the checkpoint; re-convert it " +
                "with tern-quantize")
        }
        return t
    }

    /// The table entry of `name`, which must have the model's `shape`.
    func info(_ name: String, shape: [Int]) throws -> TensorInfo {
        let t = try info(name)
        guard t.shape == shape else {
            throw FormatError(file: file.path, field: "tensor \(name): shape", "is \(t.shape), the model's " +
                "hyperparameters need \(shape)")
        }
        return t
    }

    func bytes(_ t: TensorInfo) throws -> UnsafeRawPointer {
        if t.codec == .raw {
            file.map.useHugePages(t.offset..<t.offset + t.storedSize)
            return file.stored(t).baseAddress!
        }
        // Compressed bytes come by pread, not through the map: a fault there would map whole
        // page-cache folios (up to 2 MiB) around them, neighbours included, into the resident set.
        let buf = UnsafeMutableRawBufferPointer(start: allocateHugePages(byteCount: t.byteSize), count: t.byteSize)
        do {
            if reader == nil { reader = try TensorReader(file: file) }
            try reader!.read(t, from: 0, count: t.byteSize, into: buf.baseAddress!)
        } catch { buf.deallocate(); throw error }
        owned.append(buf)
        return UnsafeRawPointer(buf.baseAddress!)
    }

    /// A quantized matrix named `name` with the given shape.
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> QMatrix {
        let t = try info(name, shape: [rows, cols])
        return QMatrix(kind: try WeightStore.kind(t, file.path), rows: rows, cols: cols, base: try bytes(t))
    }

    /// The table entry of a quantized matrix that will be streamed: checked like ``matrix(_:rows:cols:)``
    /// but neither mapped nor decompressed.
    public func streamedMatrix(_ name: String, rows: Int, cols: Int) throws -> (TensorInfo, QuantKind) {
        let t = try info(name, shape: [rows, cols])
        return (t, try WeightStore.kind(t, file.path))
    }

    /// The kernels' format of a quantized tensor.
    static func kind(_ t: TensorInfo, _ path: String) throws -> QuantKind {
        guard let kind = QuantKind(rawValue: t.dtype.description) else {
            throw FormatError(file: path, field: "tensor \(t.name): dtype", "is \(t.dtype), expected a quantized " +
                "type; re-convert with tern-quantize")
        }
        return kind
    }

    /// An f32 vector named `name` of `count` elements.
    public func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
        let t = try info(name)
        guard t.dtype == .f32, t.elementCount == count else {
            throw FormatError(file: file.path, field: "tensor \(name)", "is \(t.dtype) \(t.shape), expected f32 " +
                "[\(count)]")
        }
        return try bytes(t).assumingMemoryBound(to: Float.self)
    }
}
