// libFuzzer harness: the C API entry points that take bytes from the host, on a real model
// (TERN_FUZZ_MODEL, a .tern file): tern_tokenize on arbitrary text with every buffer size
// convention (NULL to ask, too small, enough), tern_detokenize on arbitrary ids likewise.
// Every call must return a status; nothing may trap inside the host.
import CFuzz
import CTern
import CTernAPI
import Foundation

nonisolated(unsafe) var model: OpaquePointer?

func fuzzInit() -> Int32 {
    guard let path = ProcessInfo.processInfo.environment["TERN_FUZZ_MODEL"] else {
        fatalError("fuzz-capi: set TERN_FUZZ_MODEL to a .tern checkpoint")
    }
    var o = tern_model_options()
    tern_model_options_init(&o)
    o.threads = 1
    let st = path.withCString { p -> tern_status in
        o.path = p
        return tern_model_open(&o, &model)
    }
    guard st == TERN_OK else { fatalError("fuzz-capi: cannot open \(path): \(String(cString: tern_last_error()))") }
    return 0
}

func fuzzCAPI(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let m = model else { return 0 }
    let mode = size > 0 ? data[0] : 0
    data.withMemoryRebound(to: CChar.self, capacity: size) { text in
        var n = 0
        _ = tern_tokenize(m, text, size, Int32(mode & 1), nil, 0, &n)
        var ids = [Int32](repeating: 0, count: n + 1)
        let cap = mode & 2 != 0 ? max(0, n - 1) : n
        let st = tern_tokenize(m, text, size, Int32(mode & 1), &ids, cap, &n)
        if st == TERN_OK {
            var len = 0
            _ = tern_detokenize(m, ids, n, nil, 0, &len)
            var buf = [CChar](repeating: 0, count: len + 1)
            if tern_detokenize(m, ids, n, &buf, len + 1, &len) != TERN_OK { fatalError("detokenize of tokenize output failed") }
        }
    }
    // The bytes as token ids, some out of range.
    let ids = (0..<size / 4).map { i in
        Int32(bitPattern: UInt32(data[4 * i]) | UInt32(data[4 * i + 1]) << 8 | UInt32(data[4 * i + 2]) << 16 | UInt32(data[4 * i + 3]) << 24)
    }
    var len = 0
    _ = tern_detokenize(m, ids, ids.count, nil, 0, &len)
    var small = [CChar](repeating: 0, count: 3)
    _ = tern_detokenize(m, ids, ids.count, &small, 3, &len)
    _ = tern_tokenize(m, nil, size, 0, nil, 0, nil)
    return 0
}

_ = fuzzInit()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in data.map { fuzzCAPI($0, size) } ?? 0 })
