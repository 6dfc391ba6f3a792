import CTernKernels
import Foundation

/// The instruction-set path kernels run on. Chosen once at start-up from the CPU's features
/// (cpuid / HWCAP); `TERN_ISA=scalar|swift-simd|avx2|avx512vnni|neon|neon-v8` overrides it.
public enum KernelISA: String, CaseIterable, Sendable {
    /// Plain Swift loops: the reference every other path is tested against.
    case scalar
    /// Portable Swift SIMD types.
    case swiftSIMD = "swift-simd"
    /// x86 AVX2 + FMA + F16C (C microkernels).
    case avx2
    /// x86 AVX-512 VNNI (vpdpbusd).
    case avx512vnni
    /// aarch64 NEON with sdot (ARMv8.2+ dot product: Pi 5, Jetson Orin).
    case neon
    /// aarch64 NEON of ARMv8.0, no sdot (Pi 3, Pi Zero 2 W, Pi 4).
    case neonV8 = "neon-v8"

    /// One of the aarch64 paths (they share the attention and conversion kernels).
    var isARM: Bool { self == .neon || self == .neonV8 }

    public var isSupported: Bool {
        switch self {
        case .scalar, .swiftSIMD: true
        case .avx2: tern_cpu_has_avx2() != 0
        case .avx512vnni: tern_cpu_has_avx512vnni() != 0
        case .neon: tern_cpu_has_neon_dotprod() != 0
        case .neonV8: tern_cpu_has_neon() != 0
        }
    }

    /// The fastest path this CPU supports.
    public static var best: KernelISA {
        [.avx512vnni, .avx2, .neon, .neonV8].first { $0.isSupported } ?? .swiftSIMD
    }

    /// Every path this CPU can run.
    public static var supported: [KernelISA] { allCases.filter(\.isSupported) }

    /// Whether the CPU has GFNI, which the AVX-512 q5 kernel uses when present.
    public static var hasGFNI: Bool { tern_cpu_has_gfni() != 0 }

    /// Runs `body` with the AVX-512 q5 kernel using GFNI or not (GFNI only where the CPU has it):
    /// both code paths give the same bits, which tests check. Not for concurrent use.
    public static func withGFNI<T>(_ on: Bool, _ body: () throws -> T) rethrows -> T {
        let was = tern_set_gfni(on ? 1 : 0)
        defer { _ = tern_set_gfni(was) }
        return try body()
    }

    /// Bytes the x86 GEMM kernels are set to prefetch ahead of the weights they read (with
    /// ``active``; `tern_set_prefetch` keeps whole cache lines, ``prefetchDistance``):
    /// `TERN_PREFETCH=BYTES` (0: off), else 4096 on Intel CPUs and on AMD's from Zen 5 (family
    /// 0x1A) on, 2048 on AMD Zen 3, 0 on others. Measured (bench/README.md, `bench/prefetch.sh`):
    /// on an Intel Xeon VM reading 9-11 GB/s at one thread, 4 KB ahead read a decode step's weights 16-34% faster
    /// than the hardware prefetchers alone; on an AMD Zen 5 VM (32-35 GB/s at one thread) decode
    /// ran 18-28% faster at one thread and 6-36% at two; on an AMD Zen 4 VM (30-35 GB/s) an
    /// earlier form, prefetching 1-8 KB ahead, gained nothing and 8 KB halved the speed, and with
    /// the branchless AVX2 kernels (an AVX2-only Zen 4 VM) 4 KB gave the 1.5B model +8-10% but
    /// the three smaller ones 0.94-1.02x, so Zen 4 keeps the hardware prefetchers alone. On an
    /// AVX2-only AMD Zen 3 VM (EPYC family 0x19 model 1, 11-17 GB/s at one thread) 2 KB ahead made
    /// decode 1.16-1.31x faster on all four models at 1 and 2 threads, 4 KB 1.10-1.29x. Zen 1 and
    /// 2 are not measured and keep 0.
    /// The NEON kernels do not prefetch.
    public static let prefetchBytes: Int = {
        let fallback = Int(tern_cpu_prefetch_default())
        guard let env = ProcessInfo.processInfo.environment["TERN_PREFETCH"], !env.isEmpty else { return fallback }
        guard let n = Int(env), n >= 0, n <= 1 << 16 else {
            let message = "tern: TERN_PREFETCH=\(env) is not a byte count from 0 to 65536; using \(fallback)\n"
            FileHandle.standardError.write(Data(message.utf8))
            return fallback
        }
        return n
    }()

    /// The distance the kernels prefetch at now, in whole cache lines.
    public static var prefetchDistance: Int { Int(tern_get_prefetch()) }

    /// Sets how far ahead the x86 kernels prefetch (kept in whole cache lines, 0 to 64 KB) and
    /// returns the previous distance. Not for concurrent use with running products.
    @discardableResult
    public static func setPrefetch(_ bytes: Int) -> Int { Int(tern_set_prefetch(bytes)) }

    /// Runs `body` with the kernels prefetching `bytes` ahead (the same bits either way, which
    /// tests check).
    public static func withPrefetch<T>(_ bytes: Int, _ body: () throws -> T) rethrows -> T {
        let was = setPrefetch(bytes)
        defer { setPrefetch(was) }
        return try body()
    }

    /// The path in use: `TERN_ISA` when set to a supported path, else ``best``. Choosing it also
    /// sets the kernels' prefetch distance (``prefetchBytes``).
    public static let active: KernelISA = {
        setPrefetch(prefetchBytes)
        guard let env = ProcessInfo.processInfo.environment["TERN_ISA"], !env.isEmpty else { return best }
        guard let isa = KernelISA(rawValue: env) else {
            let known = allCases.map(\.rawValue).joined(separator: ", ")
            let message = "tern: TERN_ISA=\(env) is unknown (known: \(known)); using \(best.rawValue)\n"
            FileHandle.standardError.write(Data(message.utf8))
            return best
        }
        guard isa.isSupported else {
            let message = "tern: TERN_ISA=\(env) is not supported by this CPU; using \(best.rawValue)\n"
            FileHandle.standardError.write(Data(message.utf8))
            return best
        }
        return isa
    }()

    /// Whether this path's `kind` kernel reads the activations' per-256 form
    /// (``QuantizedActivations``), where they keep it, rather than the per-32 one: q4k and q6 on
    /// AVX2 and AVX-512 (x86_gemm.inc q4k_sb_group and q6_sb_group, x86_avx512_pairs.inc
    /// q4k_sb_pair and q6_sb_pair: the same bits on both), so x86 machines' GEMMs agree; q4k on
    /// aarch64 (arm_sb_groups.inc), whose q6 kernel reads the per-32 form (a per-256 one executed
    /// no fewer instructions under qemu).
    public func readsSuperBlockActivations(_ kind: QuantKind) -> Bool {
        switch kind {
        case .q4k: self == .avx2 || self == .avx512vnni || isARM
        case .q6: self == .avx2 || self == .avx512vnni
        default: false
        }
    }

    /// The C microkernel for `kind` on this path, if it has one.
    func gemm(_ kind: QuantKind) -> tern_gemm_fn? {
        switch (self, kind) {
        #if arch(x86_64)
        case (.avx2, .q8): tern_gemm_q8_avx2
        case (.avx2, .q4): tern_gemm_q4_avx2
        case (.avx2, .q5): tern_gemm_q5_avx2
        case (.avx2, .q6): tern_gemm_q6_avx2
        case (.avx2, .q4k): tern_gemm_q4k_avx2
        case (.avx2, .q5k): tern_gemm_q5k_avx2
        case (.avx2, .q5_1): tern_gemm_q5_1_avx2
        case (.avx512vnni, .q8): tern_gemm_q8_avx512vnni
        case (.avx512vnni, .q4): tern_gemm_q4_avx512vnni
        case (.avx512vnni, .q5): tern_gemm_q5_avx512vnni
        case (.avx512vnni, .q6): tern_gemm_q6_avx512vnni
        case (.avx512vnni, .q4k): tern_gemm_q4k_avx512vnni
        case (.avx512vnni, .q5k): tern_gemm_q5k_avx512vnni
        case (.avx512vnni, .q5_1): tern_gemm_q5_1_avx512vnni
        #elseif arch(arm64)
        case (.neon, .q8): tern_gemm_q8_neon
        case (.neon, .q4): tern_gemm_q4_neon
        case (.neon, .q5): tern_gemm_q5_neon
        case (.neon, .q6): tern_gemm_q6_neon
        case (.neon, .q4k): tern_gemm_q4k_neon
        case (.neon, .q5k): tern_gemm_q5k_neon
        case (.neon, .q5_1): tern_gemm_q5_1_neon
        case (.neonV8, .q8): tern_gemm_q8_neon_v8
        case (.neonV8, .q4): tern_gemm_q4_neon_v8
        case (.neonV8, .q5): tern_gemm_q5_neon_v8
        case (.neonV8, .q6): tern_gemm_q6_neon_v8
        case (.neonV8, .q4k): tern_gemm_q4k_neon_v8
        case (.neonV8, .q5k): tern_gemm_q5k_neon_v8
        case (.neonV8, .q5_1): tern_gemm_q5_1_neon_v8
        #endif
        default: nil
        }
    }

    /// The C kernel for a set of `kind` matrices sharing one range of groups, if this path has one
    /// (tern_gemm_set_fn: the AVX-512 pairs across Q, K and V, or gate and up, at batches of 2-7).
    public func gemmSet(_ kind: QuantKind) -> tern_gemm_set_fn? {
        #if arch(x86_64)
        guard self == .avx512vnni else { return nil }
        return switch kind {
        case .q8: tern_gemm_set_q8_avx512vnni
        case .q4: tern_gemm_set_q4_avx512vnni
        case .q5: tern_gemm_set_q5_avx512vnni
        case .q6: tern_gemm_set_q6_avx512vnni
        case .q4k: tern_gemm_set_q4k_avx512vnni
        case .q5k: tern_gemm_set_q5k_avx512vnni
        case .q5_1: tern_gemm_set_q5_1_avx512vnni
        }
        #else
        return nil
        #endif
    }
}
