// swift-tools-version:6.0
// Coverage-guided fuzzing harnesses (libFuzzer) for Tern's byte-parsing entry points. Not part of
// the main package: each harness's main hands its test function to libFuzzer's driver
// (libclang_rt.fuzzer_no_main), so it links only with that library and coverage
// instrumentation. Built and run by Tests/fuzz/run.sh, which names Tern's package directory in
// TERN_ROOT (a path whose last component is `tern`: SwiftPM names a local package by its
// directory).
import PackageDescription

let root = Context.environment["TERN_ROOT"] ?? "../.."

let package = Package(
    name: "TernFuzz",
    dependencies: [.package(path: root)],
    targets: [
        .target(name: "CFuzz"),
        .executableTarget(name: "fuzz-tern", dependencies: ["CFuzz", .product(name: "Tern", package: "tern")]),
        .executableTarget(name: "fuzz-gguf", dependencies: ["CFuzz", .product(name: "Tern", package: "tern")]),
        .executableTarget(name: "fuzz-tokenizer", dependencies: ["CFuzz", .product(name: "Tern", package: "tern")]),
        .executableTarget(name: "fuzz-template", dependencies: ["CFuzz", .product(name: "Tern", package: "tern")]),
        .executableTarget(name: "fuzz-capi", dependencies: ["CFuzz", .product(name: "TernCAPI", package: "tern")]),
    ],
    swiftLanguageModes: [.v6]
)
