// swift-tools-version: 6.0
// Coverage-guided fuzzing of hessian-harness's parsers with libFuzzer (fuzz/README.md).
// Built apart from the main package: every module is compiled with
// -sanitize=fuzzer,address, which the default build and tests must not be.
import PackageDescription
import Foundation

// A path dependency is known by its folder's name: whatever the clone is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let main = root.lastPathComponent.lowercased()

let package = Package(
    name: "hh-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "hh-fuzz",
            dependencies: [.product(name: "Harness", package: main)]
        ),
    ]
)
