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
        // eps is constant within each (model, scheme) group: shown, not averaged.
        // rel_err: geometric mean of 0.1 and 0.3 = sqrt(0.03) = 0.1732.
        #expect(try TableCommand.run(path: p, by: ["model", "scheme"], style: .markdown) == """
        | model | scheme | eps | rel_err | n |
        |---|---|---:|---:|---:|
        | mlp | central | 0.01 | 0.1732 | 2 |
        | mlp | forward | 0.01 | 2.000e-05 | 1 |
        | quad | central | 1 | nan | 1 |

        n rows per group of model, scheme; geometric means: rel_err; NA: no value.

        """)
        // By scheme alone, eps varies: its geometric mean (0.01·0.01·1)^(1/3) = 0.04642, not 0.34.
        let tex = try TableCommand.run(path: p, by: ["scheme"], style: .latex)
        #expect(tex.hasPrefix("% hessian-harness table: needs \\usepackage{booktabs}. n rows per group of scheme; geometric means: eps, rel_err; left out (vary within groups): model; NA: no value.\n\\begin{tabular}{lrrr}\n\\toprule\nscheme & eps & rel\\_err & n \\\\\n\\midrule\ncentral & 0.04642 & 0.1732 & 3 \\\\\nforward & 0.01 & $2.000\\times10^{-5}$ & 1 \\\\\n"), Comment(rawValue: tex))
        #expect(tex.hasSuffix("\\bottomrule\n\\end{tabular}\n"))
    }

    @Test func identifiersAreNeverAveragedAndEmptyCellsAreNA() throws {
        let p = try csv("policy,seed,steps,time_s,note,w1\nbf16,1,10,1,a,\nbf16,2,30,100,b,\nfp32,1,10,4,a,\nfp32,2,10,4,a,0.5\n")
        let t = try TableCommand.table(path: p, by: ["policy"], columns: [])
        // seed varies: left out (the mean of seeds 1 and 2 is no seed); steps: arithmetic mean 20;
        // time_s: geometric mean 10; note varies as text: left out; w1 has no value for bf16: NA.
        #expect(t.header == ["policy", "steps", "time_s", "w1", "n"])
        #expect(t.rows == [["bf16", "20", "10", "NA", "2"], ["fp32", "10", "4", "0.5", "2"]])
        #expect(t.note == "n rows per group of policy; geometric means: time_s, w1; arithmetic means: steps; left out (vary within groups): seed, note; NA: no value.")
        #expect(t.numeric == [false, true, true, true, true])
        // Without --by, rows as they are, empty cells NA.
        let raw = try TableCommand.table(path: p, by: [], columns: ["policy", "w1"])
        #expect(raw.rows.map { $0[1] } == ["NA", "NA", "NA", "0.5"])
    }

    @Test func pickedColumnsAndTheirErrors() throws {
        let p = try csv("policy,seed,eps_star,err_star\nbf16,1,0.01,0.1\nbf16,2,1,0.001\n")
        let t = try TableCommand.table(path: p, by: ["policy"], columns: ["n", "eps_star"])
        #expect(t.header == ["n", "eps_star"] && t.rows == [["2", "0.1"]])
        #expect(t.note == "n rows per group of policy; geometric means: eps_star; NA: no value.")
        #expect(throws: HarnessError.self) { try TableCommand.table(path: p, by: ["policy"], columns: ["seed"]) }
        #expect(throws: HarnessError.self) { try TableCommand.table(path: p, by: ["policy"], columns: ["nope"]) }
        #expect(throws: HarnessError.self) { try TableCommand.table(path: p, by: ["policy", "policy"], columns: []) }
        do { _ = try TableCommand.table(path: p, by: ["policy"], columns: ["seed"]); Issue.record("no error") }
        catch { #expect("\(error)".contains("varies within the groups")) }
        let r = try runCLI(["table", p, "--standalone"])
        #expect(r.status == 2 && r.stdout.isEmpty && r.stderr.contains("--standalone needs --latex"))
    }

    /// The standalone document compiles (when pdflatex is installed; the tabular's
    /// structure is checked either way).
    @Test func standaloneLatexCompiles() throws {
        var text = "policy,scheme,seed"
        for j in 0..<8 { text += ",m\(j)_err" }
        text += "\n"
        for (i, pol) in ["param=bf16,compute=fp32", "param=[p=8,emin=-6,emax=7]"].enumerated() {
            for s in 0..<2 { text += "\"\(pol)\",central,\(s)" + (0..<8).map { ",\(Double($0 + 1) * pow(10, Double(-i - s - 3)))" }.joined() + "\n" }
        }
        let p = try csv(text)
        let doc = try TableCommand.run(path: p, by: ["policy", "scheme"], style: .latex, standalone: true)
        #expect(doc.hasPrefix("\\documentclass{article}") && doc.hasSuffix("\\end{document}\n"))
        #expect(doc.contains("landscape") && doc.contains("\\resizebox"))          // 11 columns
        #expect(doc.contains("param=[p=8,emin=-6,emax=7] & central & $"))
        guard let pdflatex = ["/usr/bin/pdflatex", "/usr/local/bin/pdflatex"].first(where: FileManager.default.isExecutableFile) else { return }
        let dir = tempDir("table-tex")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try doc.write(to: dir.appendingPathComponent("t.tex"), atomically: true, encoding: .utf8)
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: pdflatex)
        proc.arguments = ["-interaction=nonstopmode", "-halt-on-error", "t.tex"]
        proc.currentDirectoryURL = dir
        proc.standardOutput = FileHandle.nullDevice
        proc.standardError = FileHandle.nullDevice
        try proc.run(); proc.waitUntilExit()
        #expect(proc.terminationStatus == 0, Comment(rawValue: (try? String(contentsOf: dir.appendingPathComponent("t.log"), encoding: .utf8)) ?? ""))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("t.pdf").path))
    }

    @Test func worksOnTheHarnessOwnOutputs() throws {
        let dir = tempDir("slq-table")
        let r = try runCLI(["slq", "--operator", "diag:n=40", "--steps", "10", "--probes", "2", "--out", dir.path])
        #expect(r.status == 0)
        let t = try runCLI(["table", dir.appendingPathComponent("lanczos.csv").path, "--by", "probe"])
        #expect(t.status == 0 && t.stdout.hasPrefix("| probe | alpha | beta |"), Comment(rawValue: t.stdout))
        #expect(t.stdout.contains("left out (vary within groups): step"))
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
