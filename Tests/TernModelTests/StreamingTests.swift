import TernModels
import XCTest

/// How a streamed layer is cut into units (``LayerChunks``); that streaming keeps the tokens and
/// the peak RSS is BudgetTests' job.
final class StreamingTests: XCTestCase {
    /// Every row group of every matrix lands in exactly one chunk, in order, 64-byte aligned in the
    /// slot, each chunk within the target unless it is a single group larger than the target.
    func testChunksCoverEveryGroupOnceWithinTheTarget() {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<300 {
            let mats = (0..<Int.random(in: 1...3, using: &rng)).map { _ in
                (groups: Int.random(in: 1...300, using: &rng), groupBytes: 8 * Int.random(in: 1...3000, using: &rng))
            }
            let target = Int.random(in: 1...(1 << 16), using: &rng)
            let chunks = LayerChunks.cut(mats, target: target)
            var next = mats.map { _ in 0 }, matrix = 0
            for chunk in chunks {
                XCTAssertFalse(chunk.isEmpty)
                let bytes = LayerChunks.bytes(chunk, mats)
                let single = chunk.count == 1 && chunk[0].groups.count == 1
                XCTAssertTrue(bytes <= target || single, "trial \(trial): chunk of \(bytes) bytes over \(target)")
                var end = 0
                for p in chunk {
                    XCTAssertEqual(p.slotOffset % 64, 0)
                    XCTAssertGreaterThanOrEqual(p.slotOffset, end, "pieces overlap in the slot")
                    end = p.slotOffset + p.groups.count * mats[p.matrix].groupBytes
                    XCTAssertGreaterThanOrEqual(p.matrix, matrix, "matrices out of order")
                    matrix = p.matrix
                    XCTAssertEqual(p.groups.lowerBound, next[p.matrix], "trial \(trial): a gap or overlap in matrix \(p.matrix)")
                    next[p.matrix] = p.groups.upperBound
                }
            }
            XCTAssertEqual(next, mats.map(\.groups), "trial \(trial): groups left out")
        }
    }

    /// A whole set fits one chunk when the target allows it (compressed layers use this); the
    /// 1.5B model's FFN set (2 x 2240 groups of 3456 bytes) in 1 MiB chunks.
    func testChunkCounts() {
        let ffn = [(groups: 2240, groupBytes: 3456), (groups: 2240, groupBytes: 3456)]
        XCTAssertEqual(LayerChunks.cut(ffn, target: .max).count, 1)
        let chunks = LayerChunks.cut(ffn, target: 1 << 20)
        XCTAssertEqual(chunks.count, 15)  // 303 groups of 3456 bytes fit 1 MiB; 4480 groups
        // The chunk where gate ends and up begins: its last 119 groups, then 184 of up's.
        XCTAssertEqual(chunks[7].map(\.matrix), [0, 1])
        XCTAssertEqual(chunks[7].map(\.groups), [2121..<2240, 0..<184])
        XCTAssertEqual(chunks[7].map(\.slotOffset), [0, 119 * 3456])
    }
}
