import CZstd

/// Thin wrappers over system libzstd for one chunk at a time.
public enum Zstd {
    /// Compresses `src` at `level` (1...22) into a new array.
    public static func compress(_ src: UnsafeRawBufferPointer, level: Int32) -> [UInt8]? {
        let cap = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: cap)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress(dst.baseAddress, cap, src.baseAddress, src.count, level)
        }
        if ZSTD_isError(n) != 0 { return nil }
        out.removeLast(cap - n)
        return out
    }

    /// Decompresses exactly `dst.count` bytes from one zstd frame; false on any error or size mismatch.
    public static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Bool {
        guard let s = src.baseAddress, !src.isEmpty else { return dst.isEmpty }
        let expected = ZSTD_getFrameContentSize(s, src.count)
        guard expected == UInt64(dst.count) else { return false }
        let n = ZSTD_decompress(dst.baseAddress, dst.count, s, src.count)
        return ZSTD_isError(n) == 0 && n == dst.count
    }

    public static var maxLevel: Int32 { ZSTD_maxCLevel() }
}
