import Foundation
import TernFormat
import TernGGML
import TernKernels
import TernModels
import TernTestSupport
import XCTest

/// The converted real checkpoint against GGUF's dequantization, tensor by tensor.
final class ConversionTests: XCTestCase {
    func storedBytes(_ f: TernFile, _ t: TensorInfo) throws -> [UInt8] {
        var raw = [UInt8](repeating: 0, count: t.byteSize)
        try raw.withUnsafeMutableBytes { try f.read(t, into: $0) }
        return raw
    }

    func dequantize(_ f: TernFile, _ t: TensorInfo) throws -> [Float] {
        let raw = try storedBytes(f, t)
        var out = [Float](repeating: 0, count: t.elementCount)
        raw.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { o in
                switch t.dtype {
                case .q8, .q4, .q5, .q6, .q4k, .q5k, .q5_1:
                    let m = QMatrix(kind: QuantKind(rawValue: t.dtype.description)!, rows: t.rows, cols: t.cols, base: src.baseAddress!)
                    for r in 0..<t.rows { m.dequantizeRow(r, into: o.baseAddress! + r * t.cols) }
                case .f32: _ = o.initialize(from: src.bindMemory(to: Float.self))
                case .f16: for i in 0..<t.elementCount { o[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                }
            }
        }
        return out
    }

    func checkAll(_ ternPath: String) throws {
        let gguf = try GGUFFile(path: try TestSupport.gemmaGGUF())
        let tern = try TernFile(path: ternPath)
        XCTAssertEqual(tern.tensors.count, gguf.tensors.count)
        var exactCount = 0
        for g in gguf.tensors {
            let t = try XCTUnwrap(tern.tensor(g.name), g.name)
            XCTAssertEqual(t.shape, g.shape, g.name)
            let ref = GGMLConvert.dequantize(g.type, gguf.bytes(g), count: g.rows * g.cols)
            let got = try dequantize(tern, t)
            switch g.type {
            case .f32, .q8_0, .q5_0, .q6_K, .q4_K:
                // Every type keeps its bits (q8, q5, q6, q4k): no widening, no rounding.
                XCTAssertEqual(t.dtype, [.f32: .f32, .q8_0: .q8, .q5_0: .q5, .q6_K: .q6, .q4_K: .q4k][g.type], g.name)
                let same = zip(got, ref).allSatisfy { $0.bitPattern == $1.bitPattern }
                XCTAssertTrue(same, "\(g.name) (\(g.type)) must dequantize bit for bit as GGUF")
                exactCount += 1
            default:
                XCTFail("unexpected type \(g.type) in the test model")
            }
        }
        XCTAssertEqual(exactCount, 109 + 81 + 10 + 9 + 27)
        // Written in the order decoding reads them (ReadingOrder), not the GGUF's alphabetical
        // one: each layer's Q, K, V, output, gate, up, down, then the next layer's.
        let byOffset = tern.tensors.sorted { $0.offset < $1.offset }.map(\.name)
        let reads = (0..<18).flatMap { l in
            ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"].map { "blk.\(l).\($0).weight" }
        }
        let positions = try reads.map { try XCTUnwrap(byOffset.firstIndex(of: $0), $0) }
        XCTAssertEqual(positions, positions.sorted(), "matrices in reading order")
        XCTAssertEqual(byOffset.first, "token_embd.weight")
        XCTAssertEqual(byOffset.last, "output_norm.weight")
    }

    /// The sort behind that order, on names of every family (biases after their weights,
    /// unknown kinds after a layer's known ones, the head last).
    func testReadingOrder() {
        let names = ["output.weight", "blk.1.ffn_down.weight", "blk.0.attn_v.bias", "blk.0.ffn_down.weight",
                     "blk.0.attn_v.weight", "blk.0.attn_q.weight", "blk.0.novel.weight", "output_norm.weight",
                     "token_embd.weight", "blk.0.attn_norm.weight", "blk.10.attn_q.weight", "rope_freqs.weight",
                     "blk.1.attn_q.weight", "blk.0.attn_k_norm.weight", "blk.0.attn_k.weight"]
        XCTAssertEqual(ReadingOrder.order(names).map { names[$0] },
                       ["token_embd.weight", "rope_freqs.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                        "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.attn_v.bias", "blk.0.attn_k_norm.weight",
                        "blk.0.ffn_down.weight", "blk.0.novel.weight", "blk.1.attn_q.weight", "blk.1.ffn_down.weight",
                        "blk.10.attn_q.weight", "output_norm.weight", "output.weight"])
    }

    func testRawConversionMatchesGGUFDequantization() throws { try checkAll(try TestSupport.convertedGemma()) }
    func testCompressedConversionMatchesGGUFDequantization() throws { try checkAll(try TestSupport.convertedGemma(["--compress"])) }

    /// Tern's GGML dequantization against gguf-py's numpy implementation (an independent
    /// reference, run as a subprocess) on one real tensor of each type in the model.
    func testGGMLDequantizationMatchesGGUFPy() throws {
        let path = try TestSupport.gemmaGGUF()
        let gguf = try GGUFFile(path: path)
        let names = ["blk.0.attn_k.weight", "blk.0.attn_output.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "blk.0.attn_norm.weight"]
        let dir = TestSupport.tempDir()
        let script = TestSupport.packageRoot.appendingPathComponent("Tests/reference/gguf_dequant.py").path
        let r = try TestSupport.run("/usr/bin/env", ["python3", script, path, dir] + names)
        XCTAssertEqual(r.status, 0, "reference script failed (pip install gguf numpy): \(r.stderr)")
        guard r.status == 0 else { return }
        print("ConversionTests: gguf-py reference: \(r.stdout.split(separator: "\n").joined(separator: "; "))")
        for n in names {
            let g = try XCTUnwrap(gguf.tensor(n))
            let ours = GGMLConvert.dequantize(g.type, gguf.bytes(g), count: g.rows * g.cols)
            let theirs = readFile(dir + "/" + n + ".f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(theirs.count, ours.count, n)
            let diff = zip(ours, theirs).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(diff, 0, "\(n) (\(g.type)): \(diff) elements differ from gguf-py")
        }
    }

    /// Q5_1 and Q5_K, which the real models here do not have: the tiny Q5_K_M-like GGUF
    /// (Tests/reference/make_tiny.py llama-q5km) dequantized by gguf-py, by Tern's GGML code and
    /// from the converted q5_1 / q5k tensors, all bit for bit the same.
    func testQ5_1AndQ5_KMatchGGUFPy() throws {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (path, ternPath) = try FamilyTests.tinyModel("llama-q5km", in: dir)
        let gguf = try GGUFFile(path: path), tern = try TernFile(path: ternPath)
        let names = gguf.tensors.filter { $0.type == .q5_1 || $0.type == .q5_K }.map(\.name)
        XCTAssertEqual(Set(names.compactMap { gguf.tensor($0)?.type }), [.q5_1, .q5_K])
        let r = try TestSupport.run("/usr/bin/env", ["python3", FamilyTests.scripts + "/gguf_dequant.py", path, dir] + names)
        XCTAssertEqual(r.status, 0, r.stderr)
        for n in names {
            let g = try XCTUnwrap(gguf.tensor(n))
            let theirs = readFile(dir + "/" + n + ".f32").withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let ours = GGMLConvert.dequantize(g.type, gguf.bytes(g), count: g.rows * g.cols)
            let converted = try dequantize(tern, try XCTUnwrap(tern.tensor(n)))
            XCTAssertEqual(tern.tensor(n)?.dtype, GGMLConvert.exactTarget(g.type), n)
            XCTAssertEqual(ours.map(\.bitPattern), theirs.map(\.bitPattern), "\(n) (\(g.type)): Tern's dequantization vs gguf-py")
            XCTAssertEqual(converted.map(\.bitPattern), theirs.map(\.bitPattern), "\(n) (\(g.type)): converted vs gguf-py")
        }
        print("ConversionTests: \(names.count) Q5_1/Q5_K tensors equal gguf-py's dequantization bit for bit")
    }
}
