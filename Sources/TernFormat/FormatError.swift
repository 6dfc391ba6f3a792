/// An error reading or writing a checkpoint file. Every case names the file and
/// the field or tensor at fault, and says what is wrong, so a user can act on it.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file concerned (path as given by the caller).
    public var file: String
    /// The field, tensor or section at fault, e.g. `tensor blk.0.attn_q.weight: offset`.
    public var field: String
    /// What is wrong and, where there is one, the fix.
    public var message: String

    public init(file: String, field: String, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String { "\(file): \(field): \(message)" }
}

/// Overflow-safe arithmetic on sizes read from files: nil on overflow or negative input.
@inlinable func safeMul(_ a: Int, _ b: Int) -> Int? {
    guard a >= 0, b >= 0 else { return nil }
    let (r, o) = a.multipliedReportingOverflow(by: b)
    return o ? nil : r
}

@inlinable func safeAdd(_ a: Int, _ b: Int) -> Int? {
    guard a >= 0, b >= 0 else { return nil }
    let (r, o) = a.addingReportingOverflow(b)
    return o ? nil : r
}

/// Converts a file's unsigned 64-bit count to Int, nil when it cannot be one.
@inlinable func intFrom(_ v: UInt64) -> Int? { v <= UInt64(Int.max) ? Int(v) : nil }
