#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TernFormat
import TernGGML
import TernKernels
import TernModels

/// Decides each tensor's target type and writes the .tern file.
enum ConverterPlan {
    static let version = "0.1.0"
    static var architectures: [String] { Architectures.supported }

    struct Options {
        var compressLevel: Int32?
        var lmHead: DType?
        /// Every matrix as this type (an explicit choice: may widen or requantize).
        var type: DType?
    }

    /// The tern dtype for one GGUF tensor under `options`: by default the type that keeps the
    /// GGUF's bits (never wider), q8 for float matrices.
    static func target(_ t: GGUFTensor, _ o: Options) -> DType {
        if t.shape.count == 1 || t.cols % 32 != 0 { return .f32 }
        if t.name == "token_embd.weight" || t.name == "output.weight", let lm = o.lmHead { return lm }
        return o.type ?? GGMLConvert.exactTarget(t.type) ?? .q8
    }

    static func run(input: String, output: String, options: Options, progress: Progress) throws {
        guard output != input else {
            throw FormatError(file: output, field: "output", "output path equals the input path")
        }
        let gguf = try GGUFFile(path: input)
        var meta = gguf.metadata
        try Architectures.completeMetadata(&meta, file: input)
        progress.note("hashing \(input)")
        let sha = SHA256.hex(gguf.map.bytes) { gguf.map.release($0) }
        meta["general.alignment"] = nil
        meta["tern.source.file"] = .string(String(input.split(separator: "/").last ?? ""))
        meta["tern.source.sha256"] = .string(sha)
        meta["tern.converter.version"] = .string("tern-quantize \(version)")

        // Requantized tensors (no exact mapping): measure what it costs, so the file says so.
        let lossy = gguf.tensors.filter { t in
            let dt = target(t, options)
            return dt.isQuantized && !GGMLConvert.isLossless(t.type, to: dt)
        }
        if !lossy.isEmpty {
            progress.note("measuring the requantization error of \(lossy.count) tensors")
            meta["tern.requantized"] = .strings(try requantizationErrors(lossy, gguf, options))
        }

        // Tensor by tensor, a slice of rows at a time: memory stays a few slices (plus one zstd
        // chunk) whatever the model's size; the input's pages are dropped once converted.
        let sources = try gguf.tensors.map { t in
            let dt = target(t, options)
            guard t.cols % t.type.blockElements == 0 else {
                throw FormatError(file: input, field: "tensor \(t.name)", "rows of \(t.cols) elements are not whole " +
                    "\(t.type) blocks")
            }
            let rowBytes = t.cols / t.type.blockElements * t.type.blockBytes
            return TensorSource(name: t.name, dtype: dt, shape: t.shape) { groups in
                let r0 = groups.lowerBound * dt.groupRows, r1 = min(t.rows, groups.upperBound * dt.groupRows)
                let range = t.offset + r0 * rowBytes..<t.offset + r1 * rowBytes
                let src = UnsafeRawBufferPointer(rebasing: gguf.map.bytes[range])
                defer { gguf.map.release(range) }
                return GGMLConvert.convert(t.type, src, rows: r1 - r0, cols: t.cols, to: dt)
            }
        }
        // In the order decoding reads them (ReadingOrder), not the GGUF's.
        let ordered = ReadingOrder.order(gguf.tensors.map(\.name)).map { sources[$0] }
        let wstart = Date()
        try TernWriter.write(path: output, metadata: meta, sources: ordered, compressLevel: options.compressLevel,
                             opened: { progress.note("converting into \($0) (renamed to \(output) once written and verified)") },
                             progress: { name, d, tot in progress.update("convert \(name)", d, tot, wstart) })
        progress.finish()
        // TernWriter verified the file (read back, every checksum) before renaming it into place.
        let f = try TernFile(path: output)
        let outSize = f.map.bytes.count
        let raw = f.tensors.reduce(0) { $0 + $1.byteSize }
        var byType: [DType: Int] = [:]
        for t in f.tensors { byType[t.dtype, default: 0] += 1 }
        let types = byType.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("wrote \(output): \(f.tensors.count) tensors (\(types)), \(mb(outSize)) on disk, \(mb(raw)) in " +
            "memory, from \(input) (\(mb(gguf.map.bytes.count))); peak memory \(mb(peakRSSBytes()))")
    }
}

/// One line per (source type, target) of the tensors that are requantized: how many, their size,
/// and the relative RMS error of the requantized weights against the source's dequantized values
/// (sqrt(sum (w' - w)^2 / sum w^2) over all of them). Reads the tensors a slice at a time.
func requantizationErrors(_ tensors: [GGUFTensor], _ gguf: GGUFFile, _ options: ConverterPlan.Options) throws -> [String] {
    struct Sum { var count = 0, bytes = 0, err = 0.0, norm = 0.0 }
    var sums: [String: Sum] = [:]
    for t in tensors {
        let dt = ConverterPlan.target(t, options)
        let kind = QuantKind(rawValue: dt.description)!  // a lossy target is quantized (see the caller's filter)
        let rowBytes = t.cols / t.type.blockElements * t.type.blockBytes
        let key = "\(t.type) -> \(dt)"
        var s = sums[key] ?? Sum()
        s.count += 1
        s.bytes += t.rows * rowBytes
        let slice = max(4, (4 << 20) / max(1, rowBytes)) / 4 * 4
        var row = [Float](repeating: 0, count: t.cols)
        for r0 in stride(from: 0, to: t.rows, by: slice) {
            let r1 = min(t.rows, r0 + slice)
            let range = t.offset + r0 * rowBytes..<t.offset + r1 * rowBytes
            let src = UnsafeRawBufferPointer(rebasing: gguf.map.bytes[range])
            let x = GGMLConvert.dequantize(t.type, src, count: (r1 - r0) * t.cols)
            let q = GGMLConvert.convert(t.type, src, rows: r1 - r0, cols: t.cols, to: dt)
            gguf.map.release(range)
            q.withUnsafeBytes { qb in
                let m = QMatrix(kind: kind, rows: r1 - r0, cols: t.cols, base: qb.baseAddress!)
                for r in 0..<r1 - r0 {
                    row.withUnsafeMutableBufferPointer { m.dequantizeRow(r, into: $0.baseAddress!) }
                    for c in 0..<t.cols {
                        let a = Double(x[r * t.cols + c]), d = Double(row[c]) - a
                        s.err += d * d
                        s.norm += a * a
                    }
                }
            }
        }
        sums[key] = s
    }
    return sums.sorted { $0.key < $1.key }.map { key, s in
        String(format: "%@: %d tensors, %.1f MB, relative RMS error %.3f%%", key, s.count, Double(s.bytes) / 1e6,
               100 * (s.err / max(s.norm, .leastNormalMagnitude)).squareRoot())
    }
}

func mb(_ n: Int) -> String { String(format: "%.1f MB", Double(n) / 1e6) }

/// Progress on stderr: a redrawn bar on a terminal, plain lines otherwise.
final class Progress {
    let tty: Bool
    var lastLine = 0.0
    init(enabled: Bool) { tty = enabled }

    func note(_ s: String) { writeStderr("tern-quantize: \(s)\n") }

    func update(_ what: String, _ done: Int, _ total: Int, _ start: Date) {
        let secs = max(1e-6, Date().timeIntervalSince(start))
        let line = String(format: "%@ %.1f/%.1f MB %.0f MB/s", what, Double(done) / 1e6, Double(total) / 1e6, Double(done) / 1e6 / secs)
        if tty {
            let pct = total > 0 ? done * 30 / total : 30
            let bar = String(repeating: "#", count: pct) + String(repeating: ".", count: 30 - pct)
            writeStderr("\r\u{1B}[K[\(bar)] \(line)")
        } else {
            writeStderr("tern-quantize: \(line)\n")
        }
    }

    func finish() { if tty { writeStderr("\n") } }
}
