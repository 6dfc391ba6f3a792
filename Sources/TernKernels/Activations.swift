/// One activation vector quantized to int8 in groups of 32 (symmetric, f32 scale), with
/// each group's scale * sum(q) precomputed for the min term of q4 weights.
public struct QuantizedVector {
    public let q: UnsafeMutablePointer<Int8>
    public let scale: UnsafeMutablePointer<Float>
    public let scaledSum: UnsafeMutablePointer<Float>
}

import CTernKernels

/// Preallocated int8 activations for up to `capacity` vectors of `cols` elements.
public final class QuantizedActivations: @unchecked Sendable {
    public let cols: Int
    public let capacity: Int
    let q: UnsafeMutablePointer<Int8>
    let scale: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Int32>
    let hoff: UnsafeMutablePointer<Int32>
    /// q in the x86 q6 kernels' order (tern_kernels.h, `tern_acts` q6_q), on CPUs with AVX2, for
    /// activations without the per-256 form (which those kernels read instead).
    let q6Order: UnsafeMutablePointer<Int8>?
    /// The per-256 form (``SuperBlocks``), where a kernel of this CPU reads it.
    let superBlocks: SuperBlocks?

    /// The vectors quantized again per super-block of 256 columns (tern_kernels.h, `tern_acts`
    /// sb_*), as llama.cpp's Q8_K: one scale D = max|x| / 127 per super-block (stored for each
    /// of its eight groups of 32, so it reads like any activations), q = round-half-even(x / D),
    /// per 32 columns D * sum(q) and sum(q) as int16, and per 16 columns sum(q) as int16 (`hsum`).
    /// The AVX2 and AVX-512 q4k and q6 kernels and the aarch64 q4k ones read this form
    /// (``KernelISA/readsSuperBlockActivations(_:)``). Kept when asked for
    /// (`superBlocks`), for widths that are multiples of 256, on CPUs with AVX2 (the kernels'
    /// tests run there too) and on aarch64; without it those kernels read the per-32 form.
    struct SuperBlocks {
        let q: UnsafeMutablePointer<Int8>
        let scale: UnsafeMutablePointer<Float>
        let sums: UnsafeMutablePointer<Float>
        let bsum: UnsafeMutablePointer<Int16>
        let hsum: UnsafeMutablePointer<Int16>
    }

    /// `superBlocks`: whether to keep the per-256 form too (``SuperBlocks``), for the q4k and q6
    /// matrices that multiply these activations.
    public init(cols: Int, capacity: Int, superBlocks: Bool = true) {
        precondition(cols % 32 == 0 && capacity > 0)
        self.cols = cols
        self.capacity = capacity
        q = .allocate(capacity: cols * capacity)
        scale = .allocate(capacity: cols / 32 * capacity)
        sums = .allocate(capacity: cols / 32 * capacity)
        bias = .allocate(capacity: 2 * cols / 32 * capacity)
        hoff = .allocate(capacity: 2 * cols / 32 * capacity)
        q6Order = Self.keepsQ6Order(cols: cols, superBlocks: superBlocks) ? .allocate(capacity: cols * capacity) : nil
        self.superBlocks = Self.keepsSuperBlocks(cols: cols, asked: superBlocks)
            ? SuperBlocks(q: .allocate(capacity: cols * capacity), scale: .allocate(capacity: cols / 32 * capacity),
                          sums: .allocate(capacity: cols / 32 * capacity), bsum: .allocate(capacity: cols / 32 * capacity),
                          hsum: .allocate(capacity: cols / 16 * capacity))
            : nil
    }

    /// Whether activations of width `cols` keep the per-256 form when asked to (``SuperBlocks``):
    /// on CPUs with AVX2 and on aarch64, whose kernels read it.
    static func keepsSuperBlocks(cols: Int, asked: Bool) -> Bool {
        #if arch(arm64)
        let reader = true
        #else
        let reader = KernelISA.supported.contains(.avx2)
        #endif
        return asked && cols % 256 == 0 && reader
    }

    /// Whether activations keep the x86 q6 kernels' copy of q (`q6Order`): where those kernels run
    /// and read the per-32 form, which they do only without the per-256 one (`tern_acts` sb_q).
    static func keepsQ6Order(cols: Int, superBlocks: Bool) -> Bool {
        KernelISA.supported.contains(.avx2) && !keepsSuperBlocks(cols: cols, asked: superBlocks)
    }

    /// The bytes one vector of width `cols` takes (what `init` allocates per unit of capacity):
    /// the int8 values and, per 32 columns, scale, scaled sum, two bias and two offset lanes
    /// (24 bytes); where kept (`superBlocks` asked), the per-256 values and per 32 columns scale,
    /// scaled sum and two int16 sums of 32 and two of 16 (14 bytes); else on x86 the values again
    /// in the q6 kernels' order.
    public static func bytesPerVector(cols: Int, superBlocks: Bool) -> Int {
        cols + cols / 32 * 24 + (keepsQ6Order(cols: cols, superBlocks: superBlocks) ? cols : 0)
            + (keepsSuperBlocks(cols: cols, asked: superBlocks) ? cols + cols / 32 * 14 : 0)
    }

    deinit {
        q.deallocate(); scale.deallocate(); sums.deallocate(); bias.deallocate(); hoff.deallocate()
        q6Order?.deallocate()
        if let p = superBlocks {
            p.q.deallocate(); p.scale.deallocate(); p.sums.deallocate(); p.bsum.deallocate(); p.hsum.deallocate()
        }
    }

    /// The C kernels' view of these activations (what a tern_gemm_fn reads).
    public var cAct: tern_acts {
        tern_acts(q: UnsafePointer(q), scale: UnsafePointer(scale), ssum: UnsafePointer(sums), bias: UnsafePointer(bias),
                  hoff: UnsafePointer(hoff), q_stride: cols, s_stride: cols / 32,
                  sb_q: superBlocks.map { UnsafePointer($0.q) }, sb_scale: superBlocks.map { UnsafePointer($0.scale) },
                  sb_ssum: superBlocks.map { UnsafePointer($0.sums) }, sb_bsum: superBlocks.map { UnsafePointer($0.bsum) },
                  q6_q: q6Order.map { UnsafePointer($0) }, sb_hsum: superBlocks.map { UnsafePointer($0.hsum) })
    }

    /// Vector `b` in the per-256 form, if kept: as per-32 activations whose eight scales per
    /// super-block are equal (the scalar references read it so), and its int16 sums per 32 and per 16.
    public func superBlockVector(_ b: Int) -> (v: QuantizedVector, bsum: UnsafePointer<Int16>, hsum: UnsafePointer<Int16>)? {
        superBlocks.map {
            (QuantizedVector(q: $0.q + b * cols, scale: $0.scale + b * cols / 32, scaledSum: $0.sums + b * cols / 32),
             UnsafePointer($0.bsum + b * cols / 32), UnsafePointer($0.hsum + b * cols / 16))
        }
    }

    @inline(__always) public func vector(_ b: Int) -> QuantizedVector {
        QuantizedVector(q: q + b * cols, scale: scale + b * cols / 32, scaledSum: sums + b * cols / 32)
    }

    /// Quantizes `batch` vectors read from `x` (row stride `stride` floats): per group of 32,
    /// scale = max|x| / 127, q = round-half-even(x / scale), and the sums the kernels need
    /// (scale * sum(q); the bias lanes; the offset lanes of 16-column halves; on x86 the q6 kernels'
    /// copy of q). Every ISA gives the same bytes.
    public func quantize(_ x: UnsafePointer<Float>, batch: Int, stride: Int, isa: KernelISA = .active) {
        precondition(batch <= capacity)
        for b in 0..<batch { quantizeOne(x + b * stride, into: b, isa: isa) }
    }

    /// Quantizes one vector into slot `b`.
    public func quantizeOne(_ src: UnsafePointer<Float>, into b: Int, isa: KernelISA = .active) {
        if superBlocks != nil { quantizeSuperBlocks(src, into: b, isa: isa) }
        let v = vector(b)
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni {
            tern_quantize_avx2(src, cols, v.q, v.scale, v.scaledSum, bias + 2 * b * cols / 32, hoff + 2 * b * cols / 32,
                               q6Order.map { $0 + b * cols })
            return
        }
        #elseif arch(arm64)
        if isa.isARM {
            tern_quantize_neon(src, cols, v.q, v.scale, v.scaledSum, bias + 2 * b * cols / 32, hoff + 2 * b * cols / 32)
            return
        }
        #endif
        for g in 0..<cols / 32 {
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(src[g * 32 + i])) }
            let d = amax / 127
            let inv: Float = d == 0 ? 0 : 1 / d
            var s: Int32 = 0, first: Int32 = 0
            for i in 0..<32 {
                let qi = Ops.int8Clamped((src[g * 32 + i] * inv).rounded(.toNearestOrEven))
                v.q[g * 32 + i] = qi
                s += Int32(qi)
                if i == 15 { first = s }
            }
            let o = hoff + 2 * (b * cols / 32 + g)
            (o[0], o[1]) = (-32 * first, -32 * (s - first))
            if let q6 = q6Order.map({ $0 + b * cols + g * 32 }) {
                // 4-byte pieces: columns 0-3, 16-19, 4-7, 20-23, 8-11, 24-27, 12-15, 28-31
                for i in 0..<32 { q6[i] = v.q[g * 32 + (i / 8) * 4 + (i % 8 < 4 ? 0 : 16) + i % 4] }
            }
            v.scale[g] = d
            v.scaledSum[g] = d * Float(s)
            var even: Int32 = 0
            for c in 0..<4 { for j in 0..<4 { even += Int32(v.q[g * 32 + 8 * c + j]) } }
            bias[2 * (b * cols / 32 + g)] = -128 * even
            bias[2 * (b * cols / 32 + g) + 1] = -128 * (s - even)
        }
    }

    /// Vector `b`'s per-256 form (``SuperBlocks``); every ISA gives the same bytes.
    func quantizeSuperBlocks(_ src: UnsafePointer<Float>, into b: Int, isa: KernelISA) {
        guard let p = superBlocks else { return }
        let q = p.q + b * cols, scale = p.scale + b * cols / 32, sums = p.sums + b * cols / 32, bsum = p.bsum + b * cols / 32
        let hsum = p.hsum + b * cols / 16
        #if arch(x86_64)
        if isa == .avx2 || isa == .avx512vnni {
            tern_quantize_sb_avx2(src, cols, q, scale, sums, bsum, hsum)
            return
        }
        #elseif arch(arm64)
        if isa.isARM {
            tern_quantize_sb_neon(src, cols, q, scale, sums, bsum, hsum)
            return
        }
        #endif
        for s in 0..<cols / 256 {
            var amax: Float = 0
            for i in s * 256..<s * 256 + 256 { amax = max(amax, abs(src[i])) }
            let d = amax / 127
            let inv: Float = d == 0 ? 0 : 1 / d
            for g in 8 * s..<8 * s + 8 {
                var sum: Int32 = 0, first: Int32 = 0
                for i in 32 * g..<32 * g + 32 {
                    q[i] = Ops.int8Clamped((src[i] * inv).rounded(.toNearestOrEven))
                    sum += Int32(q[i])
                    if i == 32 * g + 15 { first = sum }
                }
                scale[g] = d
                sums[g] = d * Float(sum)
                bsum[g] = Int16(sum)
                (hsum[2 * g], hsum[2 * g + 1]) = (Int16(first), Int16(sum - first))
            }
        }
    }
}
