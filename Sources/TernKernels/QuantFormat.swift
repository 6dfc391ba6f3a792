/// The two weight quantization formats of a `.tern` file, as seen by kernels.
/// Layouts are documented on `TernFormat.DType` and in docs/format.md.
public enum QuantKind: Sendable {
    case q8, q4

    public var blockBytes: Int { self == .q8 ? Q8.blockBytes : Q4.blockBytes }
}

/// A row-major quantized weight matrix used in place (usually from the file map).
public struct QMatrix: @unchecked Sendable {
    public let kind: QuantKind
    public let rows: Int
    public let cols: Int
    public let base: UnsafeRawPointer

    public init(kind: QuantKind, rows: Int, cols: Int, base: UnsafeRawPointer) {
        precondition(cols % 32 == 0)
        self.kind = kind
        self.rows = rows
        self.cols = cols
        self.base = base
    }

    public var rowBytes: Int { cols / 32 * kind.blockBytes }
    @inline(__always) public func row(_ r: Int) -> UnsafeRawPointer { base + r * rowBytes }

    /// Dequantizes row `r` into `out` (`cols` floats).
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch kind {
        case .q8: Q8.dequantize(row(r), count: cols, into: out)
        case .q4: Q4.dequantize(row(r), count: cols, into: out)
        }
    }
}
