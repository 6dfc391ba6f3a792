import TernFormat
import TernGGML
import TernTestSupport
import XCTest

/// Malformed files must give errors, never crashes, and never silently wrong data.
final class TernCorruptionTests: XCTestCase {
    var original: [UInt8] = []
    var tensors: [PendingTensor] = []

    override func setUpWithError() throws {
        var rng = TestRNG(11)
        let (m, ts) = sampleCheckpoint(&rng)
        tensors = Array(ts.prefix(5))
        let path = TestSupport.tempDir() + "/c.tern"
        // Mixed codecs: the writer compresses tensors of at least 200 bytes.
        try TernWriter.write(path: path, metadata: m, tensors: tensors, compressLevel: 1, minCompressBytes: 200, chunkBytes: 128)
        original = readFile(path)
    }

    /// Opens `bytes` and reads every tensor. Returns nil if any step threw.
    func load(_ bytes: [UInt8]) -> [[UInt8]]? {
        do {
            let f = try TernFile(map: MappedFile(copying: bytes, path: "mem.tern"))
            try f.verifyAll()
            return try f.tensors.map { t in
                var out = [UInt8](repeating: 0, count: t.byteSize)
                try out.withUnsafeMutableBytes { try f.read(t, into: $0) }
                return out
            }
        } catch {
            XCTAssertTrue(error is FormatError, "\(error)")
            XCTAssertFalse("\(error)".isEmpty)
            return nil
        }
    }

    func testOriginalLoads() throws {
        XCTAssertEqual(load(original), tensors.map(\.data))
        let f = try TernFile(map: MappedFile(copying: original, path: "mem"))
        XCTAssertTrue(f.tensors.contains { $0.codec == .zstd } && f.tensors.contains { $0.codec == .raw })
    }

    func testEveryTruncationIsAnError() {
        var cases = 0
        for n in 0..<original.count {
            XCTAssertNil(load(Array(original.prefix(n))), "truncated to \(n) bytes")
            cases += 1
        }
        XCTAssertGreaterThan(cases, 2000)
    }

    func testEveryByteFlipIsAnErrorOrHarmless() {
        var errors = 0, cases = 0
        for i in 0..<original.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var b = original
                b[i] ^= mask
                cases += 1
                if let data = load(b) {
                    XCTAssertEqual(data, tensors.map(\.data), "flip at \(i) gave wrong data without an error")
                } else {
                    errors += 1
                }
            }
        }
        XCTAssertGreaterThan(cases, 6000)
        XCTAssertGreaterThan(errors, cases * 9 / 10)
    }

    // Structural mutations with a recomputed header checksum, so the parser's own checks are hit.

    func withChecksum(_ b: [UInt8]) -> [UInt8] {
        var b = b
        let metaOff = 64
        let tableOff = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let tableSize = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
        _ = metaOff
        let h = b.withUnsafeBytes { TernContainer.structureChecksum($0, tableEnd: tableOff + tableSize) }
        withUnsafeBytes(of: h.littleEndian) { for i in 0..<8 { b[56 + i] = $0[i] } }
        return b
    }

    func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { for i in 0..<8 { b[at + i] = $0[i] } } }

    /// Offset of the first table entry's fields (after its name).
    var firstEntry: Int {
        let tableOff = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self) })
        let nameLen = Int(original.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: tableOff, as: UInt32.self) })
        return tableOff + 4 + nameLen
    }

    func expectError(_ b: [UInt8], _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TernFile(map: MappedFile(copying: b, path: "bad.tern")), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix("bad.tern: "), s, file: file, line: line)
            for f in fragments { XCTAssertTrue(s.contains(f), "'\(f)' not in: \(s)", file: file, line: line) }
        }
    }

    func testStructuralErrorsNameTheField() {
        var b = original
        b[0] = UInt8(ascii: "X")
        expectError(b, ["magic", "not a .tern"])
        b = original; b[8] = 1
        expectError(withChecksum(b), ["version 1 is not supported", "re-convert"])
        b = original; b[8] = 3
        expectError(withChecksum(b), ["version 3 is not supported", "newer"])
        b = original; put64(&b, 48, UInt64.max)
        expectError(withChecksum(b), ["tensor count", "out of range"])
        b = original; put64(&b, 24, 1 << 40)
        expectError(withChecksum(b), ["header: metadata size", "out of range"])
        b = original; put64(&b, 64, 1 << 60)
        expectError(withChecksum(b), ["metadata: count"])
        let e = firstEntry  // first tensor: t0.f32, 1-D
        b = original; b[e] = 9
        expectError(withChecksum(b), ["tensor t0.f32: dtype", "unknown dtype 9"])
        b = original; b[e + 1] = 5
        expectError(withChecksum(b), ["codec"])
        b = original; b[e + 2] = 0
        expectError(withChecksum(b), ["ndim"])
        b = original; put64(&b, e + 4, 1 << 40)
        expectError(withChecksum(b), ["shape[0]", "out of range"])
        b = original; put64(&b, e + 4, 0)
        expectError(withChecksum(b), ["shape[0]", "zero"])
        b = original; put64(&b, e + 12, UInt64(original.count + 64))
        expectError(withChecksum(b), ["tensor t0.f32: offset"])
        b = original; put64(&b, e + 12, 65)
        expectError(withChecksum(b), ["tensor t0.f32: offset"])
        b = original; put64(&b, e + 20, 1 << 50)
        expectError(withChecksum(b), ["stored size"])
        b = original; put64(&b, e + 20, 8)
        expectError(withChecksum(b), ["stored size", "expected 28"])
    }

    func testCorruptZstdChunkIsReportedByChunk() throws {
        let f = try TernFile(map: MappedFile(copying: original, path: "mem"))
        let t = try XCTUnwrap(f.tensors.first { $0.codec == .zstd && $0.chunkCount > 1 })
        // Flip a byte inside the last chunk's compressed data.
        var b = original
        b[t.offset + t.storedSize - 1] ^= 0x40
        let g = try TernFile(map: MappedFile(copying: b, path: "mem"))
        let u = g.tensor(t.name)!
        var buf = [UInt8](repeating: 0, count: u.byteSize)
        XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try g.read(u, into: $0) }) { e in
            XCTAssertTrue("\(e)".contains("chunk \(u.chunkCount - 1)"), "\(e)")
        }
        // Earlier chunks still decode independently.
        var first = [UInt8](repeating: 0, count: u.chunkGroups(0).count * u.groupBytes)
        try first.withUnsafeMutableBytes { try g.readChunk(u, 0, into: $0) }
        XCTAssertThrowsError(try g.verify(u))
    }
}

final class GGUFCorruptionTests: XCTestCase {
    var original: [UInt8] = []

    override func setUp() {
        var rng = TestRNG(5)
        var g = GGUFBuilder()
        g.string("general.architecture", "gemma3")
        g.u32("gemma3.block_count", 1)
        g.f32("gemma3.eps", 1e-6)
        g.bool("flag", true)
        g.strings("tokenizer.ggml.tokens", ["<pad>", "a", "▁b"])
        g.floats("tokenizer.ggml.scores", [0, -1, -2])
        g.ints("tokenizer.ggml.token_type", [3, 1, 1])
        g.tensor("norm", shape: [8], type: 0, data: (0..<8).flatMap { i in withUnsafeBytes(of: Float(i).bitPattern.littleEndian, Array.init) })
        g.tensor("f16", shape: [2, 4], type: 1, data: (0..<8).flatMap { _ in withUnsafeBytes(of: floatToHalfBits(rng.float(-1, 1)), Array.init) })
        g.tensor("q8", shape: [2, 32], type: 8, data: validBlocks(&rng, count: 2, bytes: 34, scaleAt: [0]))
        g.tensor("q4k", shape: [1, 256], type: 12, data: validBlocks(&rng, count: 1, bytes: 144, scaleAt: [0, 2]))
        g.tensor("q6k", shape: [1, 256], type: 14, data: validBlocks(&rng, count: 1, bytes: 210, scaleAt: [208]))
        original = g.bytes()
    }

    func load(_ b: [UInt8]) -> Bool {
        do {
            let f = try GGUFFile(map: MappedFile(copying: b, path: "mem.gguf"))
            for t in f.tensors {
                let target = GGMLConvert.exactTarget(t.type) ?? (t.cols % 32 == 0 ? .q8 : .f32)
                let out = GGMLConvert.convert(t.type, f.bytes(t), rows: t.rows, cols: t.cols, to: target)
                XCTAssertEqual(out.count, target.byteSize(rows: t.rows, cols: t.cols))
            }
            return true
        } catch {
            XCTAssertTrue(error is FormatError, "\(error)")
            return false
        }
    }

    func testOriginalLoads() throws {
        XCTAssertTrue(load(original))
        let f = try GGUFFile(map: MappedFile(copying: original, path: "mem"))
        XCTAssertEqual(f.metadata.string("general.architecture"), "gemma3")
        XCTAssertEqual(f.metadata.strings("tokenizer.ggml.tokens"), ["<pad>", "a", "▁b"])
        XCTAssertEqual(f.metadata.ints("tokenizer.ggml.token_type"), [3, 1, 1])
        XCTAssertEqual(f.metadata.bool("flag"), true)
        XCTAssertEqual(f.tensors.map(\.shape), [[8], [2, 4], [2, 32], [1, 256], [1, 256]])
    }

    func testEveryTruncationIsAnError() {
        for n in 0..<original.count { XCTAssertFalse(load(Array(original.prefix(n))), "truncated to \(n)") }
        XCTAssertGreaterThan(original.count, 1000)
    }

    func testByteFlipsNeverCrash() {
        var cases = 0
        for i in 0..<original.count {
            for mask: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
                var b = original
                b[i] ^= mask
                _ = load(b)
                cases += 1
            }
        }
        XCTAssertGreaterThan(cases, 4000)
    }

    func header(kv: UInt64, tensors: UInt64) -> ByteWriter {
        var w = ByteWriter()
        w.u32(0x4655_4747); w.u32(3); w.u64(tensors); w.u64(kv)
        return w
    }

    func expectError(_ w: ByteWriter, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GGUFFile(map: MappedFile(copying: w.bytes + [UInt8](repeating: 0, count: 64), path: "bad.gguf")),
                             file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(fragment), "'\(fragment)' not in: \(e)", file: file, line: line)
        }
    }

    func testAbsurdCountsAndValuesAreErrors() {
        expectError(header(kv: 1 << 62, tensors: 0), "metadata count")
        expectError(header(kv: 0, tensors: 1 << 62), "tensor count")
        var w = header(kv: 1, tensors: 0); w.u64(1 << 60)
        expectError(w, "metadata[0]: key")
        w = header(kv: 1, tensors: 0); w.string64("k"); w.u32(99)
        expectError(w, "unknown value type 99")
        w = header(kv: 1, tensors: 0); w.string64("k"); w.u32(9); w.u32(8); w.u64(1 << 61)
        expectError(w, "element count")
        w = header(kv: 1, tensors: 0); w.string64("k"); w.u32(7); w.u8(7)
        expectError(w, "bool value 7")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(0)
        expectError(w, "n_dims")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(2); w.u64(1 << 40); w.u64(1)
        expectError(w, "ne[0]")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(1); w.u64(32); w.u32(99); w.u64(0)
        expectError(w, "ggml type 99 is not supported (supported: F32")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(1); w.u64(33); w.u32(8); w.u64(0)
        expectError(w, "not a multiple of the Q8_0 block size")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(1); w.u64(32); w.u32(0); w.u64(1 << 30)
        expectError(w, "tensor t: offset")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(1); w.u64(4); w.u32(0); w.u64(3)
        expectError(w, "misaligned")
        w = header(kv: 0, tensors: 1); w.string64("t"); w.u32(2); w.u64(1 << 31 - 1); w.u64(1 << 31 - 1); w.u32(0); w.u64(0)
        expectError(w, "runs past the end")
        w = ByteWriter(); w.u32(0x4655_4747); w.u32(1)
        expectError(w, "version 1 is not supported")
    }
}

func floatToHalfBits(_ x: Float) -> UInt16 { Float16(x).bitPattern.littleEndian }

/// Random quant blocks whose f16 scale fields (at `scaleAt` within each block) are finite and modest.
func validBlocks(_ rng: inout TestRNG, count: Int, bytes: Int, scaleAt: [Int]) -> [UInt8] {
    var out: [UInt8] = []
    for _ in 0..<count {
        var b = rng.bytes(bytes)
        for s in scaleAt {
            let h = floatToHalfBits(rng.float(0.0005, 0.05))
            b[s] = UInt8(h & 0xFF); b[s + 1] = UInt8(h >> 8)
        }
        out += b
    }
    return out
}
