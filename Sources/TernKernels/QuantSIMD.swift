/// The portable path: q8/q4 dot products with Swift SIMD types (no ISA-specific code).
enum QuantSIMD {
    @inline(__always) static func sum(_ p: SIMD32<Int16>) -> Int32 {
        (SIMD16<Int32>(truncatingIfNeeded: p.lowHalf) &+ SIMD16<Int32>(truncatingIfNeeded: p.highHalf)).wrappedSum()
    }

    static func dotQ8(_ w: UnsafeRawPointer, _ a: QuantizedVector, blocks: Int) -> Float {
        var s: Float = 0
        for b in 0..<blocks {
            let p = w + b * Q8.blockBytes
            let wq = SIMD32<Int16>(truncatingIfNeeded: (p + 2).loadUnaligned(as: SIMD32<Int8>.self))
            let aq = SIMD32<Int16>(truncatingIfNeeded: UnsafeRawPointer(a.q + b * 32).loadUnaligned(as: SIMD32<Int8>.self))
            s += halfToFloat(loadU16(p, 0)) * a.scale[b] * Float(sum(wq &* aq))
        }
        return s
    }

    static func dotQ4(_ w: UnsafeRawPointer, _ a: QuantizedVector, blocks: Int) -> Float {
        var s: Float = 0
        for b in 0..<blocks {
            let p = w + b * Q4.blockBytes
            let x = (p + 4).loadUnaligned(as: SIMD16<UInt8>.self)
            let wq = SIMD32<Int16>(lowHalf: SIMD16<Int16>(truncatingIfNeeded: x & 0x0F), highHalf: SIMD16<Int16>(truncatingIfNeeded: x &>> 4))
            let aq = SIMD32<Int16>(truncatingIfNeeded: UnsafeRawPointer(a.q + b * 32).loadUnaligned(as: SIMD32<Int8>.self))
            s += halfToFloat(loadU16(p, 0)) * a.scale[b] * Float(sum(wq &* aq)) + halfToFloat(loadU16(p, 2)) * a.scaledSum[b]
        }
        return s
    }
}
