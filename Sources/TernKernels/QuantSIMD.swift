/// The portable path: one four-row group at a time with Swift SIMD types (no ISA-specific code).
enum QuantSIMD {
    /// 8 int8 (as Int32 lanes) from `p`. (This widening form vectorizes; element-wise
    /// construction and SIMD16<Int16> products measured slower than scalar code.)
    @inline(__always) static func load8(_ p: UnsafeRawPointer) -> SIMD8<Int32> {
        SIMD8<Int32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD8<Int8>.self))
    }

    /// 8 nibbles (low or high halves of 8 bytes) as Int32 lanes.
    @inline(__always) static func load8u(_ p: UnsafeRawPointer, shift: UInt8) -> SIMD8<Int32> {
        SIMD8<Int32>(truncatingIfNeeded: (p.loadUnaligned(as: SIMD8<UInt8>.self) &>> shift) & 0x0F)
    }

    /// Writes the dot products of the group's rows (`valid` of them) with vector `a` to out[0..<valid * stride].
    static func group(_ kind: QuantKind, _ grp: UnsafeRawPointer, blocks: Int, _ a: QuantizedVector,
                      valid: Int, out: UnsafeMutablePointer<Float>, stride: Int) {
        var acc = SIMD4<Float>(repeating: 0)
        for k in 0..<blocks {
            let gb = grp + k * kind.groupBlockBytes
            let aq = UnsafeRawPointer(a.q + k * 32)
            var s = SIMD4<Int32>(repeating: 0)
            for lane in 0..<4 {
                var v = SIMD8<Int32>(repeating: 0)
                if kind == .q8 {
                    for c in 0..<4 { v &+= load8(gb + 8 + c * 32 + lane * 8) &* load8(aq + c * 8) }
                } else {
                    for h in 0..<2 {
                        let p = gb + 16 + h * 32 + lane * 8
                        v &+= load8u(p, shift: 0) &* load8(aq + h * 16)
                        v &+= load8u(p, shift: 4) &* load8(aq + h * 16 + 8)
                    }
                }
                s[lane] = v.wrappedSum()
            }
            let d = SIMD4<Float>(halfToFloat(loadU16(gb, 0)), halfToFloat(loadU16(gb, 2)), halfToFloat(loadU16(gb, 4)), halfToFloat(loadU16(gb, 6)))
            acc += d * a.scale[k] * SIMD4<Float>(s)
            if kind == .q4 {
                let m = SIMD4<Float>(halfToFloat(loadU16(gb, 8)), halfToFloat(loadU16(gb, 10)), halfToFloat(loadU16(gb, 12)), halfToFloat(loadU16(gb, 14)))
                acc += m * a.scaledSum[k]
            }
        }
        for r in 0..<valid { out[r * stride] = acc[r] }
    }
}
