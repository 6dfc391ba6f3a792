// tern-quantize: converts a GGUF checkpoint to a .tern checkpoint.
#if canImport(Glibc)
import Glibc
#endif
import TernFormat
import TernGGML

let usage = """
usage: tern-quantize IN.gguf OUT.tern [options]

Converts a GGUF checkpoint (llama.cpp's format) to Tern's .tern format.
By default every quantized matrix keeps its GGUF bits: Q8_0 maps to q8, Q6_K to q6, Q5_0
to q5, Q4_K to q4k and Q4_1 to q4, bit for bit; Q4_0 maps to q4 exactly (a min is added:
4.5 -> 5 bits per weight). Float weight matrices are quantized to q8. --type makes every
matrix one type instead (Q5_0 -> q8 is lossless; other changes requantize, round to
nearest); the relative error a requantization costs is measured and
stored in the file (metadata tern.requantized, which `tern inspect` shows).
Norm weights and other 1-D tensors stay f32.

Memory: the conversion streams, tensor by tensor and a few MB of rows at a time, so it
needs about 60-70 MB of memory whatever the model's size (the input and output files pass
through the page cache, which the system reclaims as needed). The output is written to a
temporary file beside OUT.tern, read back and verified, and only then renamed to OUT.tern.

options:
  --compress[=LEVEL]   store tensors as zstd chunks (level 1-19, default 9)
  --lm-head q4|q8      type of the token embedding / tied LM head (default: as the source maps)
  --type q4|q8         every weight matrix as this type (default: each keeps its GGUF bits)
  -h, --help           show this help

supported architectures: \(ConverterPlan.architectures.joined(separator: ", "))
supported input types: \(GGMLType.supportedList)
"""

func fail(_ msg: String) -> Never {
    writeStderr("tern-quantize: error: \(msg)\n")
    exit(1)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.isEmpty || args.contains("-h") || args.contains("--help") {
    print(usage)
    exit(args.isEmpty ? 1 : 0)
}
var positional: [String] = []
var options = ConverterPlan.Options()
var i = 0
while i < args.count {
    let a = args[i]
    func value() -> String {
        i += 1
        guard i < args.count else { fail("\(a) needs a value (see --help)") }
        return args[i]
    }
    switch a {
    case "--compress": options.compressLevel = 9
    case _ where a.hasPrefix("--compress="):
        guard let l = Int32(a.dropFirst(11)), (1...19).contains(l) else {
            fail("--compress level must be 1-19, got '\(a.dropFirst(11))'")
        }
        options.compressLevel = l
    case "--lm-head":
        let v = value()
        guard let t = DType(name: v), t == .q4 || t == .q8 else { fail("--lm-head must be q4 or q8, got '\(v)'") }
        options.lmHead = t
    case "--type":
        let v = value()
        guard let t = DType(name: v), t == .q4 || t == .q8 else { fail("--type must be q4 or q8, got '\(v)'") }
        options.type = t
    case _ where a.hasPrefix("-"): fail("unknown option \(a) (see --help)")
    default: positional.append(a)
    }
    i += 1
}
guard positional.count == 2 else { fail("expected IN.gguf and OUT.tern (see --help)") }

// An interrupted run must leave no .tern behind: remove the temp file on SIGINT/SIGTERM.
for sig in [SIGINT, SIGTERM] {
    signal(sig) { s in
        if let p = AtomicFile.currentTemp { unlink(p) }
        _exit(128 + s)
    }
}

do {
    let progress = Progress(enabled: isatty(2) != 0)
    try ConverterPlan.run(input: positional[0], output: positional[1], options: options, progress: progress)
} catch {
    fail("\(error)")
}
