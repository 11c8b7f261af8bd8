import Testing
import Foundation
@testable import Harness

/// Committed fuzzing inputs through their parsers, without libFuzzer: every finding
/// kept as a regression input (fuzz/regressions/TARGET/), so a fixed crash stays
/// fixed in the default suite, and an evenly spaced sample of 100 inputs of each
/// target's corpus (all of them with `HH_FUZZ_CORPUS=all`: a few minutes).
@Suite struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    @Test(arguments: FuzzTarget.allCases)
    func committedInputsRunCleanly(target: FuzzTarget) throws {
        setenv("HH_MAX_MEMORY", "256M", 1)
        defer { unsetenv("HH_MAX_MEMORY") }
        var count = 0
        let all = ProcessInfo.processInfo.environment["HH_FUZZ_CORPUS"] == "all"
        for folder in ["corpus", "regressions"] {
            let dir = Self.root.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
            var names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            if folder == "corpus" && !all && names.count > 100 {
                names = (0..<100).map { names[$0 * names.count / 100] }
            }
            for f in names {
                target.run(try Data(contentsOf: dir.appendingPathComponent(f)))
                count += 1
            }
        }
        #expect(count >= 2, "the seed corpus of \(target.rawValue) is committed")
    }
}
