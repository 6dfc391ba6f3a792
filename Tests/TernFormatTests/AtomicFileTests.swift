import Foundation
import TernFormat
import TernTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// AtomicFile's block buffer: the bytes, overwrites and checksums are those of plain writes,
/// and the page cache ends up holding the file as 2 MiB folios.
final class AtomicFileTests: XCTestCase {
    static let block = AtomicFile.blockBytes

    static func pattern(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = TestRNG(seed)
        var out = [UInt8](repeating: 0, count: n)
        for i in stride(from: 0, to: n, by: 8) {
            var x = rng.next()
            for j in i..<min(n, i + 8) { out[j] = UInt8(truncatingIfNeeded: x); x >>= 8 }
        }
        return out
    }

    /// Appends of sizes around the block size, overwrites below, across and inside the buffer,
    /// and checksums of ranges on either side of it, against an array doing the same.
    func testBufferedWritesEqualPlainOnes() throws {
        let dir = TestSupport.tempDir(), path = dir + "/f.bin"
        var rng = TestRNG(7)
        let b = Self.block
        let sizes = [0, 1, 7, b - 9, 8, 3, b, 2 * b + 5, 4096, b - 4096, 100_003, 3 * b, 1, 65_537]
        var model: [UInt8] = []
        var checked = 0
        try AtomicFile.write(path: path) { f in
            for (i, n) in sizes.enumerated() {
                let bytes = Self.pattern(n, seed: UInt64(i))
                try f.write(bytes)
                model += bytes
                XCTAssertEqual(f.position, model.count)
                // An overwrite of up to 300 KB anywhere in what is written so far.
                let len = Int.random(in: 0...min(model.count, 300_000), using: &rng)
                let at = Int.random(in: 0...(model.count - len), using: &rng)
                let patch = Self.pattern(len, seed: 1000 + UInt64(i))
                try f.write(patch, at: at)
                model.replaceSubrange(at..<at + len, with: patch)
                // Checksums of a range ending in the buffer, one wholly in the file, one of everything.
                for (lo, hi) in [(max(0, model.count - b - 77), model.count), (0, min(model.count, 5000)), (0, model.count)] {
                    XCTAssertEqual(try f.checksum(offset: lo, count: hi - lo), XXH64.hash(Array(model[lo..<hi])),
                                   "range \(lo)..<\(hi) after write \(i)")
                    checked += 1
                }
            }
            try f.pad(to: model.count + 13)
            model += [UInt8](repeating: 0, count: 13)
        }
        XCTAssertEqual(checked, 3 * sizes.count)
        let written = readFile(path)
        XCTAssertEqual(written.count, model.count)
        XCTAssertTrue(written == model, "file bytes differ from the plain writes")
    }

    #if os(Linux)
    /// FilePmdMapped of the mapping at `base` in /proc/self/smaps, in bytes.
    static func pmdMapped(_ base: UnsafeRawPointer) -> Int? { smapsField(base, "FilePmdMapped:") }

    /// A field (`Rss:`, `FilePmdMapped:`) of the mapping at `base` in /proc/self/smaps, in bytes.
    static func smapsField(_ base: UnsafeRawPointer, _ field: String) -> Int? {
        // read(2) to the end: /proc files report a size of 0, which Foundation's readers trust.
        let fd = open("/proc/self/smaps", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        let smaps = String(decoding: bytes, as: UTF8.self)
        let start = String(UInt(bitPattern: base), radix: 16)
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit) {
                inside = line[..<dash] == start
            } else if inside, line.hasPrefix(field) {
                return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
            }
        }
        return nil
    }

    /// 2 MiB page-table entries over `path` once every page of it is touched (with `advise`,
    /// after asking for them on the whole file); the byte read from each page must be `data`'s.
    static func hugeMapped(_ path: String, _ data: [UInt8], advise: Bool = true) throws -> Int {
        let m = try MappedFile(path: path)
        if advise { m.useHugePages(0..<m.bytes.count) }
        XCTAssertEqual(m.bytes.count, data.count)
        var read = 0, expected = 0
        for i in stride(from: 0, to: min(m.bytes.count, data.count), by: 4096) {
            read &+= Int(m.bytes[i]) &* (i + 1)
            expected &+= Int(data[i]) &* (i + 1)
        }
        XCTAssertEqual(read, expected, "\(path): the mapped bytes are not the written ones")
        return pmdMapped(m.bytes.baseAddress!) ?? 0
    }

    /// A file written through AtomicFile in odd-sized pieces is mapped with 2 MiB entries where
    /// MappedFile.useHugePages asks for them; the same bytes written in those pieces with
    /// write(2) are not (the control that shows this test can fail). Skipped, saying so, where
    /// the filesystem keeps no large folios at all.
    func testPiecesBecomeHugePageFolios() throws {
        let dir = TestSupport.tempDir()
        let size = 3 * Self.block + 12_345, piece = 100_003
        let data = Self.pattern(size, seed: 3)
        /// `data` written with write(2) in pieces of `n` bytes.
        func plain(_ name: String, _ n: Int) throws -> Int {
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            XCTAssertGreaterThanOrEqual(fd, 0)
            try data.withUnsafeBytes { p in
                for at in stride(from: 0, to: size, by: n) {
                    let k = min(n, size - at)
                    guard Glibc.write(fd, p.baseAddress! + at, k) == k else { throw POSIXError(.EIO) }
                }
            }
            close(fd)
            return try Self.hugeMapped(dir + "/" + name, data)
        }
        let blocks = try plain("blocks.bin", Self.block)
        try XCTSkipIf(blocks == 0, "\(dir): the filesystem keeps no 2 MiB folios even for 2 MiB writes; nothing to test")
        XCTAssertEqual(try plain("pieces.bin", piece), 0, "plain writes of 100 KB gave 2 MiB folios")

        try AtomicFile.write(path: dir + "/atomic.bin") { f in
            for at in stride(from: 0, to: size, by: piece) { try f.write(Array(data[at..<min(size, at + piece)])) }
        }
        XCTAssertTrue(readFile(dir + "/atomic.bin") == data)
        XCTAssertEqual(try Self.hugeMapped(dir + "/atomic.bin", data), 3 * Self.block, "every whole block mapped by one entry")
        XCTAssertEqual(try Self.hugeMapped(dir + "/atomic.bin", data, advise: false), 0,
                       "a map not asked for 2 MiB entries has none")
    }

    /// Streaming in place drops a used range with `unmapFolios`: whole folios, because a fault
    /// maps the whole folio around the byte touched. Touching every page of a range that starts
    /// and ends inside 2 MiB folios maps those folios entirely (with 2 MiB entries or 4 KB ones);
    /// `unmapFolios` then leaves nothing of the mapping resident, where `release` (the range's
    /// own pages) leaves the end folios' other pages (the control, on 4 KB entries).
    func testUnmapFoliosDropsTheWholeFoliosARangeTouched() throws {
        let dir = TestSupport.tempDir(), path = dir + "/folios.bin", b = Self.block
        let data = Self.pattern(4 * b, seed: 11)
        try AtomicFile.write(path: path) { f in try f.write(data) }
        let range = b / 2 + 4096..<3 * b - b / 4
        for huge in [true, false] {
            let m = try MappedFile(path: path)
            if huge { m.useHugePages(0..<m.bytes.count) }
            let base = m.bytes.baseAddress!
            func touch() {
                var sum = 0
                for i in stride(from: range.lowerBound, to: range.upperBound, by: 4096) { sum &+= Int(m.bytes[i]) }
                XCTAssertEqual(sum, stride(from: range.lowerBound, to: range.upperBound, by: 4096).reduce(0) { $0 &+ Int(data[$1]) })
            }
            touch()
            let mapped = try XCTUnwrap(Self.smapsField(base, "Rss:"))
            try XCTSkipIf(mapped < 3 * b, "\(dir): touching \(range) mapped \(mapped) bytes, not its three 2 MiB folios: no large folios here")
            XCTAssertEqual(m.folioRange(range), 0..<3 * b)
            m.unmapFolios(range)
            XCTAssertEqual(Self.smapsField(base, "Rss:"), 0, "huge \(huge): folios left mapped")
            if !huge {
                touch()
                m.release(range)
                XCTAssertGreaterThan(Self.smapsField(base, "Rss:") ?? 0, 0, "release dropped the end folios' other pages too")
            }
        }
    }
    #endif
}
