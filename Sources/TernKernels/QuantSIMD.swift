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

    /// 8 six-bit values: nibbles (low or high halves of 8 bytes) with two high bits from `h`, as Int32.
    @inline(__always) static func load8q(_ p: UnsafeRawPointer, shift: UInt8, _ h: UnsafeRawPointer, hshift: UInt8,
                                         hmask: UInt8) -> SIMD8<Int32> {
        let low = (p.loadUnaligned(as: SIMD8<UInt8>.self) &>> shift) & 0x0F
        let high = ((h.loadUnaligned(as: SIMD8<UInt8>.self) &>> hshift) & hmask) &<< 4
        return SIMD8<Int32>(truncatingIfNeeded: low | high)
    }

    /// Writes the dot products of the group's rows (`valid` of them) with vector `a` to out[0..<valid * stride].
    static func group(_ kind: QuantKind, _ grp: UnsafeRawPointer, blocks: Int, _ a: QuantizedVector,
                      valid: Int, out: UnsafeMutablePointer<Float>, stride: Int) {
        if kind == .q5 || kind == .q6 { return group56(kind, grp, blocks: blocks, a, valid: valid, out: out, stride: stride) }
        if kind == .q4k || kind == .q5k { return groupK(kind, grp, blocks: blocks, a, valid: valid, out: out, stride: stride) }
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
                    // q4: nibbles at +16. q5_1: fifth bits at +16 (as q5's), nibbles at +32.
                    let five = kind == .q5_1, nib = gb + (five ? 32 : 16), pos = lane * 8
                    for c in 0..<4 {
                        let p = nib + (c / 2) * 32 + pos, shift = UInt8(4 * (c % 2))
                        let w = five ? load8q(p, shift: shift, gb + 16 + pos % 16, hshift: UInt8(c + 4 * (pos / 16)), hmask: 1)
                            : load8u(p, shift: shift)
                        v &+= w &* load8(aq + c * 8)
                    }
                }
                s[lane] = v.wrappedSum()
            }
            let d = SIMD4<Float>(halfToFloat(loadU16(gb, 0)), halfToFloat(loadU16(gb, 2)), halfToFloat(loadU16(gb, 4)),
                                 halfToFloat(loadU16(gb, 6)))
            acc += d * a.scale[k] * SIMD4<Float>(s)
            if kind == .q4 || kind == .q5_1 {
                let m = SIMD4<Float>(halfToFloat(loadU16(gb, 8)), halfToFloat(loadU16(gb, 10)),
                                     halfToFloat(loadU16(gb, 12)), halfToFloat(loadU16(gb, 14)))
                acc += m * a.scaledSum[k]
            }
        }
        for r in 0..<valid { out[r * stride] = acc[r] }
    }

    /// q5 and q6: each chunk's values are nibbles plus high bits; q6 weights each 16-column half
    /// by its row's int8 scale. Integer sums exact, as in ``Q5/dot(_:lane:_:blocks:)`` and ``Q6``.
    static func group56(_ kind: QuantKind, _ grp: UnsafeRawPointer, blocks: Int, _ a: QuantizedVector,
                        valid: Int, out: UnsafeMutablePointer<Float>, stride: Int) {
        var acc = SIMD4<Float>(repeating: 0)
        let six = kind == .q6
        for k in 0..<blocks {
            // q5: block k at 88 k, high bits at +8, nibbles at +24. q6: super-block k / 8, scales at
            // +8, block at +72 + 96 (k % 8) with nibbles first and high bits at +64.
            let sb = six ? grp + (k / 8) * 840 : grp + k * 88
            let nib = six ? sb + 72 + (k % 8) * 96 : sb + 24, hb = six ? nib + 64 : sb + 8
            let aq = UnsafeRawPointer(a.q + k * 32)
            var s = SIMD4<Int32>(repeating: 0)
            for lane in 0..<4 {
                var half = SIMD2<Int32>(repeating: 0)
                for c in 0..<4 {
                    let p = nib + (c / 2) * 32 + lane * 8
                    let w: SIMD8<Int32>
                    if six {
                        w = load8q(p, shift: UInt8(4 * (c % 2)), hb + lane * 8, hshift: UInt8(2 * c), hmask: 3) &- 32
                    } else {
                        let pos = lane * 8
                        w = load8q(p, shift: UInt8(4 * (c % 2)), hb + pos % 16, hshift: UInt8(c + 4 * (pos / 16)), hmask: 1) &- 16
                    }
                    half[c / 2] &+= (w &* load8(aq + c * 8)).wrappedSum()
                }
                if six {
                    let sc = sb + 8 + 8 * (k % 8) + lane
                    s[lane] = Int32(sc.load(as: Int8.self)) &* half[0]
                        &+ Int32(sc.load(fromByteOffset: 4, as: Int8.self)) &* half[1]
                } else {
                    s[lane] = half[0] &+ half[1]
                }
            }
            let d = SIMD4<Float>(halfToFloat(loadU16(sb, 0)), halfToFloat(loadU16(sb, 2)), halfToFloat(loadU16(sb, 4)),
                                 halfToFloat(loadU16(sb, 6)))
            acc += d * a.scale[k] * SIMD4<Float>(s)
        }
        for r in 0..<valid { out[r * stride] = acc[r] }
    }

    /// q4k and q5k: the q4 (q5k: q5, unsigned) value dots per block, with each row's d * sc and
    /// dmin * m unpacked from the super-block's scale planes (``Q4K/factors(_:lane:_:)``).
    static func groupK(_ kind: QuantKind, _ grp: UnsafeRawPointer, blocks: Int, _ a: QuantizedVector,
                       valid: Int, out: UnsafeMutablePointer<Float>, stride: Int) {
        var acc = SIMD4<Float>(repeating: 0)
        let five = kind == .q5k
        for k in 0..<blocks {
            // q4k: super-block of 576 bytes, block k % 8's nibbles at 64 + 64 (k % 8). q5k: of 704, the
            // block's fifth bits at 64 + 80 (k % 8) and its nibbles 16 bytes on.
            let sb = grp + (k / 8) * kind.groupBlockBytes
            let hb = sb + 64 + 80 * (k % 8), nib = five ? hb + 16 : sb + 64 + 64 * (k % 8)
            let aq = UnsafeRawPointer(a.q + k * 32)
            var s = SIMD4<Int32>(repeating: 0), d = SIMD4<Float>(repeating: 0), m = d
            for lane in 0..<4 {
                var v = SIMD8<Int32>(repeating: 0)
                for c in 0..<4 {
                    let p = nib + (c / 2) * 32 + lane * 8, pos = lane * 8
                    let w = five ? load8q(p, shift: UInt8(4 * (c % 2)), hb + pos % 16,
                                          hshift: UInt8(c + 4 * (pos / 16)), hmask: 1)
                        : load8u(p, shift: UInt8(4 * (c % 2)))
                    v &+= w &* load8(aq + c * 8)
                }
                s[lane] = v.wrappedSum()
                (d[lane], m[lane]) = Q4K.factors(sb, lane: lane, k % 8)
            }
            acc += d * a.scale[k] * SIMD4<Float>(s) - m * a.scaledSum[k]
        }
        for r in 0..<valid { out[r * stride] = acc[r] }
    }
}
