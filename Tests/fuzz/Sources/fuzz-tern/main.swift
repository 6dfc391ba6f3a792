// libFuzzer harness: arbitrary bytes as a .tern checkpoint. Opening, verifying and decoding
// every zstd chunk must either succeed or throw; a trap, overflow or bad access is a bug.
import CFuzz
import Foundation
import TernFormat

func fuzzTern(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0, let map = try? MappedFile(copying: Array(UnsafeBufferPointer(start: data, count: size)), path: "fuzz.tern"),
          let file = try? TernFile(map: map) else { return 0 }
    _ = file.metadata.keys.count
    for t in file.tensors {
        try? file.verify(t)
        guard t.codec == .zstd else { continue }
        for c in 0..<min(t.chunkCount, 4) {
            let bytes = t.chunkGroups(c).count * t.groupBytes
            guard bytes > 0, bytes <= 1 << 24 else { continue }
            let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
            defer { dst.deallocate() }
            try? file.readChunk(t, c, into: dst)
        }
    }
    return 0
}

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzTern($0, size) } ?? 0 })
