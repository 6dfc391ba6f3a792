import TernDecoding
import TernFormat
import XCTest

final class DraftCalibrationTests: XCTestCase {
    /// Counted tokens first (by count, ties by id), then the rest by score, skipping excluded ids.
    func testRankingOrder() {
        let counts = [0, 5, 0, 9, 5, 0, 0]
        let scores: [Float] = [-1, -2, -0.5, -3, -4, -0.1, -9]
        let r = DraftCalibration.rank(counts: counts, scores: scores, excluded: { $0 == 5 }, limit: 10)
        XCTAssertEqual(r, [3, 1, 4, 2, 0, 6])
        XCTAssertEqual(DraftCalibration.rank(counts: counts, scores: scores, excluded: { _ in false }, limit: 3), [3, 1, 4])
    }

    /// Stored settings read back equal, through a real checkpoint rewrite: the tensors' stored
    /// bytes and checksums are unchanged, and the other metadata too.
    func testStoredCalibrationRoundTripsThroughARewrite() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tern-cal-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var meta = Metadata()
        meta["general.architecture"] = .string("test")
        let data = (0..<4 * 1024).map { UInt8($0 % 251) }
        let tensors = [PendingTensor(name: "a", dtype: .f32, shape: [1024], data: data),
                       PendingTensor(name: "b", dtype: .f32, shape: [1024], data: data.reversed())]
        try TernWriter.write(path: dir + "/m.tern", metadata: meta, tensors: tensors, compressLevel: 3, minCompressBytes: 0, chunkBytes: 1024)
        let before = try TernFile(path: dir + "/m.tern")
        XCTAssertNil(try DraftCalibration(metadata: before.metadata, file: "m", vocabSize: 100, layers: 4))
        let cal = DraftCalibration(ranking: [7, 3, 99, 0], vocab: 3, exitLayer: 2, maxDraft: 5, minProbability: 0.25,
                                   tokensPerSecond: 200.5, plainTokensPerSecond: 100.25, acceptance: 0.5)
        var m = before.metadata
        cal.store(in: &m)
        try TernWriter.rewrite(before, metadata: m, to: dir + "/m.tern")
        let after = try TernFile(path: dir + "/m.tern")
        try after.verifyAll()
        XCTAssertEqual(try DraftCalibration(metadata: after.metadata, file: "m", vocabSize: 100, layers: 4), cal)
        XCTAssertEqual(after.metadata.string("general.architecture"), "test")
        XCTAssertEqual(after.tensors.map(\.checksum), before.tensors.map(\.checksum))
        XCTAssertEqual(after.tensors.map(\.codec), before.tensors.map(\.codec))
        for t in after.tensors {
            var out = [UInt8](repeating: 0, count: t.byteSize)
            try out.withUnsafeMutableBytes { try after.read(t, into: $0) }
            XCTAssertEqual(out, t.name == "a" ? data : data.reversed())
        }
        // Values that do not fit the model are errors naming the key.
        for (key, value, vocab, layers) in [("ranking", MetadataValue.ints([1, 100]), 100, 4), ("vocab", .int(5), 100, 4),
                                            ("exit_layer", .int(9), 100, 4), ("min_probability", .float(2), 100, 4)] {
            var bad = m
            bad["tern.draft." + key] = value
            XCTAssertThrowsError(try DraftCalibration(metadata: bad, file: "m.tern", vocabSize: vocab, layers: layers)) { e in
                XCTAssertTrue("\(e)".contains("tern.draft.\(key)"), "\(e)")
            }
        }
    }
}
