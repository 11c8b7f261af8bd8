import Foundation
import Testing

/// The release build has no outlined constant defined twice with different contents.
///
/// Swift 6.3's optimizer moves constant arrays into global objects named after the
/// function they were outlined from plus a counter (`…Tv_`, `…Tv0_`, …). When a module
/// optimizes its own copy of another module's `@inlinable` function, it makes its own
/// objects under the same names, weak and hidden, numbered in the order it meets them,
/// which need not be the defining module's order; the linker keeps one object per name
/// and the other module's code reads a different constant. That is what made an -O build
/// take the Richardson offsets for the forward FD scheme (issue 18, `FDScheme.offsets`):
/// no test in the default (debug) build can see it, since only -O outlines. This test
/// reads every object file of the release build (`swift build -c release`, which the
/// README's test command runs first; `HH_RELEASE_BUILD` names another build folder).
struct OutlinedConstantsTests {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func fixture(_ name: String, _ ext: String = "o") throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures")).path
    }

    /// The object files of the release build (`swift build -c release`, or the folder
    /// `HH_RELEASE_BUILD` names), empty when there is none.
    static var releaseObjects: [String] {
        let env = ProcessInfo.processInfo.environment["HH_RELEASE_BUILD"]
        let dir = env.map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent(".build/release")
        let fm = FileManager.default
        var objects: [String] = []
        for m in (try? fm.contentsOfDirectory(atPath: dir.path))?.filter({ $0.hasSuffix(".build") }) ?? [] {
            let folder = dir.appendingPathComponent(m)
            for f in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where f.hasSuffix(".o") {
                objects.append(folder.appendingPathComponent(f).path)
            }
        }
        return objects.sorted()
    }

    /// The check finds the collision it is for (two C objects defining one weak hidden
    /// constant as {1, 0} and as {1, −1, 2, −2}, see Fixtures/make-fixtures.sh) and
    /// accepts two identical definitions.
    @Test func detectsConflictingWeakConstant() throws {
        let a = try fixture("defined-forward"), b = try fixture("defined-richardson"), c = try fixture("defined-forward-again")
        let read = try ELFWeakConstants.read(a)
        #expect(read["offsets_Tv_"]?.bytes.count == 16)
        #expect(ELFWeakConstants.isOutlinedConstant("offsets_Tv_"))
        #expect(ELFWeakConstants.isOutlinedConstant("$s9Curvature8FDSchemeO7offsetsSaySdGvgTv12_"))
        #expect(!ELFWeakConstants.isOutlinedConstant("$s9Curvature8FDSchemeO7offsetsSaySdGvg"))
        let bad = try ELFWeakConstants.conflicts(in: [a, b], include: ELFWeakConstants.isOutlinedConstant)
        #expect(bad.map(\.name) == ["offsets_Tv_"])
        #expect(try ELFWeakConstants.conflicts(in: [a, c], include: ELFWeakConstants.isOutlinedConstant).isEmpty)
        let notELF = try fixture("make-fixtures", "sh")
        #expect(throws: ELFWeakConstants.Malformed.self) { try ELFWeakConstants.read(notELF) }
    }

    @Test(.enabled(if: releaseObjects.count > 20, "no release build: run `swift build -c release` first (the README's test command does)"))
    func releaseBuildHasNoConflictingOutlinedConstants() throws {
        let bad = try ELFWeakConstants.conflicts(in: Self.releaseObjects, include: ELFWeakConstants.isOutlinedConstant)
        for c in bad {
            Issue.record("\(c.name) is defined with different contents in \(c.files.map { URL(fileURLWithPath: $0).lastPathComponent })")
        }
    }
}
