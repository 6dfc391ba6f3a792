/// Token texts stored compactly: one byte blob, an offset per token, and an open-addressing
/// hash index (FNV-1a) from bytes to id. A 262k-token vocabulary takes a few MB instead of
/// an array and a dictionary entry per token.
public struct TokenTable: Sendable {
    private let blob: [UInt8]
    private let offsets: [Int32]   // count + 1 entries
    private let slots: [Int32]     // -1 = empty
    private let mask: Int

    public init(_ tokens: [String]) {
        var blob: [UInt8] = []
        var offsets: [Int32] = [0]
        offsets.reserveCapacity(tokens.count + 1)
        for t in tokens {
            blob.append(contentsOf: t.utf8)
            offsets.append(Int32(blob.count))
        }
        self.blob = blob
        self.offsets = offsets
        var size = 16
        while size < tokens.count * 2 { size <<= 1 }
        mask = size - 1
        var slots = [Int32](repeating: -1, count: size)
        blob.withUnsafeBufferPointer { b in
            for id in 0..<tokens.count {
                let a = Int(offsets[id]), e = Int(offsets[id + 1])
                let bytes = UnsafeBufferPointer(rebasing: b[a..<e])
                var i = Int(truncatingIfNeeded: TokenTable.hash(bytes)) & (size - 1)
                var duplicate = false
                while slots[i] >= 0 {
                    let o = Int(slots[i])
                    if UnsafeBufferPointer(rebasing: b[Int(offsets[o])..<Int(offsets[o + 1])]).elementsEqual(bytes) {
                        duplicate = true
                        break
                    }
                    i = (i + 1) & (size - 1)
                }
                if !duplicate { slots[i] = Int32(id) }  // the first id wins, as a dictionary insert would
            }
        }
        self.slots = slots
    }

    public var count: Int { offsets.count - 1 }

    /// The bytes of token `id`.
    public subscript(id: Int) -> ArraySlice<UInt8> { blob[Int(offsets[id])..<Int(offsets[id + 1])] }

    @inline(__always) static func hash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// The id of the token whose text is exactly `bytes`, if any.
    public func id<C: Collection>(of bytes: C) -> Int32? where C.Element == UInt8 {
        var i = Int(truncatingIfNeeded: TokenTable.hash(bytes)) & mask
        while true {
            let s = slots[i]
            if s < 0 { return nil }
            if self[Int(s)].elementsEqual(bytes) { return s }
            i = (i + 1) & mask
        }
    }
}
