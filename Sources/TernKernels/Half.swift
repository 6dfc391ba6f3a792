/// IEEE binary16 helpers. Scales in q8/q4 blocks are stored as f16 bit patterns.

/// Every f16 bit pattern's f32 value (256 KiB), built from `Float16` itself so lookups equal the
/// conversion exactly. Without F16C (the x86-64 baseline) `Float(Float16)` is a library call per
/// scale, which dominated the portable kernels.
nonisolated(unsafe) let halfTable: UnsafeMutablePointer<Float> = {
    let t = UnsafeMutablePointer<Float>.allocate(capacity: 65536)
    for i in 0..<65536 { t[i] = Float(Float16(bitPattern: UInt16(i))) }
    return t
}()

@inline(__always) public func halfToFloat(_ bits: UInt16) -> Float { halfTable[Int(bits)] }
/// Round-to-nearest-even conversion to binary16.
@inline(__always) public func floatToHalf(_ x: Float) -> UInt16 { Float16(x).bitPattern }
/// bfloat16 to binary32 (exact).
@inline(__always) public func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

@inline(__always) func loadU16(_ p: UnsafeRawPointer, _ off: Int) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
}
