/// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0), implemented from the
/// published algorithm description. Used for every checksum in a `.tern` file.
public enum XXH64 {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }
    @inline(__always) static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    /// The hash of `data`.
    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = Streaming(seed: seed)
        h.update(data)
        return h.finish()
    }

    public static func hash(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { hash($0) } }

    /// The hash over data given in pieces (xxHash's streaming form): four lanes over 32-byte
    /// stripes, the last partial stripe kept until ``finish()``. Allocates nothing.
    public struct Streaming {
        let seed: UInt64
        var v: (UInt64, UInt64, UInt64, UInt64)
        var total = 0
        /// The partial stripe: `buffered` bytes.
        var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var buffered = 0

        public init(seed: UInt64 = 0) {
            self.seed = seed
            v = (seed &+ p1 &+ p2, seed &+ p2, seed, seed &- p1)
        }

        @inline(__always) mutating func stripe(_ p: UnsafeRawPointer) {
            @inline(__always) func r64(_ o: Int) -> UInt64 {
                UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            }
            v = (round(v.0, r64(0)), round(v.1, r64(8)), round(v.2, r64(16)), round(v.3, r64(24)))
        }

        public mutating func update(_ data: UnsafeRawBufferPointer) {
            guard var p = data.baseAddress, data.count > 0 else { return }
            var n = data.count
            total += n
            if buffered > 0 {
                let take = min(n, 32 - buffered)
                let at = buffered
                withUnsafeMutableBytes(of: &buffer) { $0.baseAddress!.advanced(by: at).copyMemory(from: p, byteCount: take) }
                buffered += take; p += take; n -= take
                if buffered < 32 { return }
                var full = buffer
                withUnsafeBytes(of: &full) { stripe($0.baseAddress!) }
                buffered = 0
            }
            while n >= 32 { stripe(p); p += 32; n -= 32 }
            if n > 0 {
                let count = n
                withUnsafeMutableBytes(of: &buffer) { $0.baseAddress!.copyMemory(from: p, byteCount: count) }
                buffered = n
            }
        }

        /// The hash of everything given so far.
        public func finish() -> UInt64 {
            var h: UInt64
            if total >= 32 {
                h = rotl(v.0, 1) &+ rotl(v.1, 7) &+ rotl(v.2, 12) &+ rotl(v.3, 18)
                h = merge(h, v.0); h = merge(h, v.1); h = merge(h, v.2); h = merge(h, v.3)
            } else {
                h = seed &+ p5
            }
            h = h &+ UInt64(total)
            var tailBytes = buffer
            let n = buffered
            return withUnsafeBytes(of: &tailBytes) { tail in
                var i = 0
                while i + 8 <= n {
                    h ^= round(0, UInt64(littleEndian: tail.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                    h = rotl(h, 27) &* p1 &+ p4
                    i += 8
                }
                if i + 4 <= n {
                    h ^= UInt64(UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* p1
                    h = rotl(h, 23) &* p2 &+ p3
                    i += 4
                }
                while i < n {
                    h ^= UInt64(tail[i]) &* p5
                    h = rotl(h, 11) &* p1
                    i += 1
                }
                h ^= h >> 33; h = h &* p2
                h ^= h >> 29; h = h &* p3
                h ^= h >> 32
                return h
            }
        }
    }
}
