// swift-tools-version:6.0
// Tern: an on-device LLM inference runtime. Modules follow the data path:
// file (TernFormat) -> weights/kernels (TernKernels) -> model forward (TernModels)
// -> tokens (TernTokenizer) -> engine (Tern) -> front ends (tern, tern-quantize).
import PackageDescription

let package = Package(
    name: "Tern",
    products: [
        .library(name: "Tern", targets: ["Tern"]),
        // The C API: built as libternc.so (product names must differ from the `tern` program's);
        // scripts/install.sh installs it as libtern.so with tern.h and tern.pc.
        .library(name: "ternc", type: .dynamic, targets: ["CTern"]),
        // The same C API linked statically into a Swift executable (Tests/fuzz's harnesses).
        .library(name: "TernCAPI", targets: ["CTern"]),
        .executable(name: "tern", targets: ["tern"]),
        .executable(name: "tern-quantize", targets: ["tern-quantize"]),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "TernFormat", dependencies: ["CZstd"]),
        .target(name: "CTernKernels", exclude: ["x86_gemm.inc", "gemm_body.h", "arm_groups.inc"]),
        .target(name: "TernKernels", dependencies: ["CTernKernels"]),
        .target(name: "TernGGML", dependencies: ["TernFormat", "TernKernels"]),
        .target(name: "TernTokenizer", dependencies: ["TernFormat"]),
        // Chat templates: a Jinja subset, no dependencies.
        .target(name: "TernTemplate"),
        .target(name: "TernPlanner", dependencies: ["TernFormat"]),
        .target(name: "TernModels", dependencies: ["TernFormat", "TernKernels", "TernPlanner"]),
        .target(name: "TernDecoding", dependencies: ["TernFormat", "TernKernels", "TernModels"]),
        .target(name: "Tern", dependencies: ["TernFormat", "TernKernels", "TernModels", "TernPlanner", "TernTokenizer", "TernDecoding",
                                             "TernTemplate"]),
        .target(name: "CTernAPI"),
        .target(name: "CTern", dependencies: ["CTernAPI", "Tern", "TernDecoding", "TernFormat", "TernKernels", "TernModels", "TernPlanner",
                                              "TernTemplate", "TernTokenizer"]),
        .executableTarget(name: "tern", dependencies: ["Tern", "TernFormat", "TernTokenizer", "TernTemplate"]),
        .executableTarget(name: "tern-quantize", dependencies: ["TernFormat", "TernGGML", "TernKernels", "TernModels"],
                          path: "quantize"),
        .target(name: "TernTestSupport", dependencies: ["TernFormat"], path: "Tests/TernTestSupport"),
        .testTarget(name: "TernFormatTests", dependencies: ["TernFormat", "TernGGML", "TernKernels", "TernTestSupport"]),
        .testTarget(name: "TernKernelsTests", dependencies: ["TernKernels"]),
        .testTarget(name: "TernPlannerTests", dependencies: ["TernPlanner"]),
        .testTarget(name: "TernDecodingTests", dependencies: ["TernDecoding", "TernFormat", "TernTestSupport"]),
        .testTarget(name: "TernTemplateTests", dependencies: ["TernTemplate", "TernTestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TernTokenizerTests", dependencies: ["TernTokenizer", "TernFormat", "TernTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TernModelTests", dependencies: ["Tern", "TernFormat", "TernGGML", "TernKernels", "TernModels",
                                                          "TernPlanner", "TernTokenizer", "TernDecoding", "TernTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
