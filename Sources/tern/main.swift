// tern: command-line front end (run, tokenize, inspect).
import Foundation
import Tern
import TernFormat
import TernKernels

let commands: [String: (String, ([String]) throws -> Void)] = [
    "run": ("generate text from a prompt", RunCommand.main),
    "tokenize": ("print the token ids of a text", TokenizeCommand.main),
    "bench": ("measure prefill and decode speed", BenchCommand.main),
    "perplexity": ("perplexity on a text file, as llama-perplexity", PerplexityCommand.main),
    "plan": ("show how a model fits a memory budget", PlanCommand.main),
    "chat": ("a conversation that keeps its context between turns", ChatCommand.main),
    "inspect": ("show a checkpoint's metadata and tensors", InspectCommand.main),
    "calibrate": ("measure and store the fastest speculative drafting settings", CalibrateCommand.main),
]

let topUsage = """
usage: tern COMMAND [options]

commands:
\(commands.keys.sorted().map { "  \($0.padding(toLength: 12, withPad: " ", startingAt: 0))\(commands[$0]!.0)" }
    .joined(separator: "\n"))

Run 'tern COMMAND --help' for a command's options.
"""

let argv = Array(CommandLine.arguments.dropFirst())
// Internal: `tern _membw THREADS` prints the measured read bandwidth (bytes/s). `tern bench`
// runs it as a child process so the probe's buffer stays out of the benchmark's peak RSS.
if argv.first == "_membw", argv.count == 2, let t = Int(argv[1]), t > 0 {
    print(Int(measureReadBandwidth(bytes: 1 << 30, threads: t, passes: 8)))
    exit(0)
}
guard let name = argv.first, name != "-h", name != "--help", name != "help" else {
    print(topUsage)
    exit(argv.isEmpty ? 1 : 0)
}
guard let cmd = commands[name] else {
    writeStderr("tern: unknown command '\(name)'\n\n\(topUsage)\n")
    exit(1)
}
do {
    try cmd.1(Array(argv.dropFirst()))
} catch let e as UsageError {
    writeStderr("tern \(name): \(e.message)\n")
    exit(2)
} catch {
    writeStderr("tern \(name): error: \(error)\n")
    exit(1)
}
