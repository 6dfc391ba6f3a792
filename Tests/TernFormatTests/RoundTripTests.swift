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
