import Foundation
import TernFormat
import TernKernels
import TernTestSupport
import XCTest

/// Builds a small checkpoint with every dtype, several shapes and (optionally) zstd chunks.
func sampleCheckpoint(_ rng: inout TestRNG) -> (Metadata, [PendingTensor]) {
    var m = Metadata()
    m["general.architecture"] = .string("test")
    m["n"] = .int(-42)
    m["eps"] = .float(1e-6)
    m["flag"] = .bool(true)
    m["names"] = .strings(["a", "", "▁b", "<0x0A>", "日本"])
    m["scores"] = .floats([0, -1.5, .infinity, 3])
    m["types"] = .ints([1, 2, 3, Int32.min, Int32.max])
    var ts: [PendingTensor] = []
    for (i, (dt, shape)) in [(DType.f32, [7]), (.f16, [3, 5]), (.q8, [9, 64]), (.q4, [5, 96]), (.q8, [2, 3, 32]),
                             (.q4, [40, 128]), (.f32, [33, 17])].enumerated() {
        let rows = shape.dropLast().reduce(1, *)
        let n = dt.byteSize(rows: rows, cols: shape.last!)!
        ts.append(PendingTensor(name: "t\(i).\(dt)", dtype: dt, shape: shape, data: rng.bytes(n)))
    }
    return (m, ts)
}

final class RoundTripTests: XCTestCase {
    func roundTrip(compress: Int32?) throws {
        var rng = TestRNG(7)
        let (meta, tensors) = sampleCheckpoint(&rng)
        let path = TestSupport.tempDir() + "/rt.tern"
        try TernWriter.write(path: path, metadata: meta, tensors: tensors, compressLevel: compress, minCompressBytes: 0, chunkBytes: 300)
        let f = try TernFile(path: path)
        XCTAssertEqual(f.metadata, meta)
        XCTAssertEqual(f.metadata.keys, meta.keys)
        XCTAssertEqual(f.tensors.map(\.name), tensors.map(\.name))
        try f.verifyAll()
        for (t, p) in zip(f.tensors, tensors) {
            XCTAssertEqual(t.shape, p.shape)
            XCTAssertEqual(t.dtype, p.dtype)
            XCTAssertEqual(t.offset % 64, 0)
            var out = [UInt8](repeating: 0, count: t.byteSize)
            try out.withUnsafeMutableBytes { try f.read(t, into: $0) }
            XCTAssertEqual(out, p.data, t.name)
            if compress != nil {
                XCTAssertEqual(t.codec, .zstd)
                XCTAssertEqual(t.chunkCount, (t.rows + t.rowsPerChunk - 1) / t.rowsPerChunk)
                XCTAssertEqual(t.rowsPerChunk % t.dtype.groupRows, 0)
                XCTAssertLessThanOrEqual(t.groupsPerChunk, max(1, 300 / t.groupBytes))
                // Each chunk decodes on its own to exactly its row groups.
                for c in 0..<t.chunkCount {
                    let g = t.chunkGroups(c)
                    var buf = [UInt8](repeating: 0, count: g.count * t.groupBytes)
                    try buf.withUnsafeMutableBytes { try f.readChunk(t, c, into: $0) }
                    XCTAssertEqual(buf, Array(p.data[g.lowerBound * t.groupBytes..<g.upperBound * t.groupBytes]))
                }
            } else {
                XCTAssertEqual(t.codec, .raw)
                XCTAssertEqual(Array(f.stored(t)), p.data)
            }
        }
        if compress != nil { XCTAssertGreaterThanOrEqual(f.tensors.filter { $0.chunkCount > 1 }.count, 3, "multi-chunk tensors exercised") }
        // Writing the same input again gives the same bytes (deterministic format).
        let path2 = path + "2"
        try TernWriter.write(path: path2, metadata: meta, tensors: tensors, compressLevel: compress, minCompressBytes: 0, chunkBytes: 300)
        XCTAssertEqual(readFile(path), readFile(path2))
    }

    func testRawRoundTripIsBitExact() throws { try roundTrip(compress: nil) }
    func testZstdRoundTripIsBitExact() throws { try roundTrip(compress: 3) }

    func testWriterRejectsMismatchedSizeAndLeavesNothing() throws {
        let dir = TestSupport.tempDir()
        let bad = PendingTensor(name: "x", dtype: .q8, shape: [2, 32], data: [1, 2, 3])
        XCTAssertThrowsError(try TernWriter.write(path: dir + "/x.tern", metadata: Metadata(), tensors: [bad]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// The read-back check runs before the rename: when it fails, nothing takes the file's name.
    func testFailedCheckBeforeRenameLeavesNothing() throws {
        struct Bad: Error {}
        let dir = TestSupport.tempDir()
        var seen: [UInt8]?
        XCTAssertThrowsError(try AtomicFile.write(path: dir + "/x.tern", check: { seen = readFile($0); throw Bad() }) { try $0.write([1, 2, 3]) })
        XCTAssertEqual(seen, [1, 2, 3], "the check sees the complete temporary file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testWriteIntoMissingDirectoryFailsClearly() {
        XCTAssertThrowsError(try TernWriter.write(path: "/nonexistent-dir/x.tern", metadata: Metadata(), tensors: [])) { e in
            XCTAssertTrue("\(e)".contains("cannot create"), "\(e)")
        }
    }
}

/// The streaming writer: slices, streamed checksums, producers that misbehave.
final class StreamingWriterTests: XCTestCase {
    /// XXH64 fed in pieces of every size equals the one-shot hash, for lengths around the
    /// 32-byte stripe and 8/4-byte tail boundaries.
    func testStreamingXXH64EqualsOneShot() {
        var rng = TestRNG(11)
        for n in [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000, 4099] {
            let data = rng.bytes(n)
            let expected = XXH64.hash(data)
            for piece in [1, 5, 31, 32, 33, 1000] {
                var h = XXH64.Streaming()
                data.withUnsafeBytes { b in
                    for a in stride(from: 0, to: n, by: piece) { h.update(UnsafeRawBufferPointer(rebasing: b[a..<min(n, a + piece)])) }
                }
                XCTAssertEqual(h.finish(), expected, "length \(n), pieces of \(piece)")
            }
        }
        XCTAssertEqual(XXH64.hash([UInt8]()), 0xEF46_DB37_51D8_E999, "xxHash64 of empty input, seed 0")
    }

    /// Tensors produced a few row groups at a time give the same file, byte for byte, as tensors
    /// written whole, raw and compressed; every slice asked for is whole groups, in order.
    func testSlicedProductionIsByteIdentical() throws {
        var rng = TestRNG(5)
        let (meta, tensors) = sampleCheckpoint(&rng)
        for level: Int32? in [nil, 3] {
            let dir = TestSupport.tempDir()
            try TernWriter.write(path: dir + "/whole.tern", metadata: meta, tensors: tensors, compressLevel: level,
                                 minCompressBytes: 0, chunkBytes: 300)
            var asked: [String: [Range<Int>]] = [:]
            let sources = tensors.map { t in
                let s = TensorSource(t)
                return TensorSource(name: t.name, dtype: t.dtype, shape: t.shape) { g in
                    asked[t.name, default: []].append(g)
                    return try s.bytes(g)
                }
            }
            try TernWriter.write(path: dir + "/sliced.tern", metadata: meta, sources: sources, compressLevel: level,
                                 minCompressBytes: 0, chunkBytes: 300, sliceBytes: 100)
            XCTAssertEqual(readFile(dir + "/whole.tern"), readFile(dir + "/sliced.tern"), "level \(String(describing: level))")
            for t in tensors {
                let r = try XCTUnwrap(asked[t.name])
                XCTAssertGreaterThan(r.count, t.data.count > 300 ? 1 : 0, t.name)
                XCTAssertEqual(r.first?.lowerBound, 0)
                for (a, b) in zip(r, r.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound, t.name) }
                XCTAssertEqual(r.last.map { $0.upperBound * t.dtype.groupBytes(cols: t.shape.last!)! }, t.data.count, t.name)
            }
        }
    }

    /// A producer that returns the wrong number of bytes, or throws, fails the write with the
    /// tensor named, and leaves no file behind.
    func testBadProducerLeavesNoFile() throws {
        let dir = TestSupport.tempDir()
        struct Boom: Error {}
        let short = TensorSource(name: "short", dtype: .q8, shape: [8, 64]) { g in [UInt8](repeating: 1, count: g.count * 272 - 1) }
        let throwing = TensorSource(name: "throwing", dtype: .f32, shape: [4]) { _ in throw Boom() }
        XCTAssertThrowsError(try TernWriter.write(path: dir + "/a.tern", metadata: Metadata(), sources: [short])) { e in
            XCTAssertTrue("\(e)".contains("short"), "\(e)")
        }
        XCTAssertThrowsError(try TernWriter.write(path: dir + "/b.tern", metadata: Metadata(), sources: [throwing]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}
