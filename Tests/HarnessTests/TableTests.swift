import Foundation
import Testing
@testable import Harness

@Suite struct TableTests {
    func csv(_ text: String) throws -> String {
        let dir = tempDir("table")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent("r.csv").path
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    @Test func groupsAndMeans() throws {
        let p = try csv("model,scheme,eps,rel_err\nmlp,central,0.01,0.1\nmlp,central,0.01,0.3\nmlp,forward,0.01,2e-5\nquad,central,1,nan\n")
        #expect(try TableCommand.run(path: p, by: ["model", "scheme"], style: .markdown) == """
        | model | scheme | eps | rel_err | n |
        |---|---|---|---|---|
        | mlp | central | 0.01 | 0.2 | 2 |
        | mlp | forward | 0.01 | 2.000e-05 | 1 |
        | quad | central | 1 | nan | 1 |

        """)
        let tex = try TableCommand.run(path: p, by: ["scheme"], style: .latex)
        #expect(tex.hasPrefix("\\begin{tabular}{llll}\n\\toprule\nscheme & eps & rel\\_err & n \\\\\n\\midrule\ncentral & 0.34 & 0.2 & 3 \\\\\n"))
        #expect(tex.hasSuffix("\\bottomrule\n\\end{tabular}\n"))
    }

    @Test func worksOnTheHarnessOwnOutputs() throws {
        let dir = tempDir("slq-table")
        let r = try runCLI(["slq", "--operator", "diag:n=40", "--steps", "10", "--probes", "2", "--out", dir.path])
        #expect(r.status == 0)
        let t = try runCLI(["table", dir.appendingPathComponent("lanczos.csv").path, "--by", "probe"])
        #expect(t.status == 0 && t.stdout.hasPrefix("| probe | step | alpha | beta |"), Comment(rawValue: t.stdout))
    }

    @Test func badInput() throws {
        let p = try csv("a,b\n1,2\n3\n")
        #expect(throws: HarnessError.self) { try TableCommand.run(path: p, by: [], style: .markdown) }
        let q = try csv("a,b\n1,2\n")
        #expect(throws: HarnessError.self) { try TableCommand.run(path: q, by: ["c"], style: .markdown) }
        let r = try runCLI(["table", "/nonexistent.csv"])
        #expect(r.status == 2 && r.stdout.isEmpty && r.stderr.hasPrefix("error: "))
    }
}
