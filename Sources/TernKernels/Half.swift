/// IEEE binary16 helpers. Scales in q8/q4 blocks are stored as f16 bit patterns.
@inline(__always) public func halfToFloat(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
/// Round-to-nearest-even conversion to binary16.
@inline(__always) public func floatToHalf(_ x: Float) -> UInt16 { Float16(x).bitPattern }
/// bfloat16 to binary32 (exact).
@inline(__always) public func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

@inline(__always) func loadU16(_ p: UnsafeRawPointer, _ off: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}
