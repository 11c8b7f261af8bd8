import Testing
import Foundation
@testable import Harness
import Models
import Studies
import LinearAlgebra

/// The failures of issue 22's bad-input audit, each as it was reported: a trap, an
/// overflow, an allocation failure, a hang or a silent acceptance before; now one
/// line on stderr, exit 2, and nothing written.
@Suite struct HostileInputTests {
    static let limit = ["--max-memory", "2G"]

    @Test(arguments: [
        // Double→Int traps and absurd inner dimensions.
        (["spectrum", "--operator", "spiked:n=10,ratio=0"], "ratio must be in (0, 100]"),
        (["spectrum", "--operator", "spiked:n=10,ratio=-1"], "ratio must be in (0, 100]"),
        (["spectrum", "--operator", "mp:n=10,ratio=1e-300"], "ratio must be in [0.001, 100]"),
        (["hvp", "--model", "quadratic:mp:n=10,ratio=1e-300"], "ratio must be in [0.001, 100]"),
        // Sizes refused by their memory estimate before anything is allocated.
        (["spectrum", "--operator", "mp:n=100000,ratio=1"], "operator 'mp:n=100000,ratio=1' needs about 298.0 GB"),
        (["spectrum", "--operator", "diag:n=50000000"] + limit, "needs about"),
        (["hvp", "--model", "mlp:widths=1000-1000000-10"], "the parameters of model 'mlp:widths=1000-1000000-10' (1011000010 of them) needs about 30.1 GB"),
        (["hvp", "--model", "expsum:n=10000000"] + limit, "the mpfr256 reference HVP (10000000 parameters"),
        (["hvp", "--model", "mlp:widths=100-1000-10,samples=10000000"] + limit, "the data of model"),
        (["slq", "--model", "expsum:n=1000000", "--policy", "", "--eps", "1e-3", "--steps", "5000", "--out", "/nonexistent/x"] + limit, "the Lanczos basis (5001 vectors"),
        (["bench", "scalars", "--n", "1000000000"], "--n must be in 1...100000000"),
        (["slq", "--operator", "diag:n=10", "--grid", "1000000000"], "--grid must be in 2...1000000"),
        (["slq", "--operator", "diag:n=10", "--probes", "1000000000"], "--probes must be in 1...10000"),
        // Overflow of sizes.
        (["hvp", "--model", "mlp:widths=9223372036854775807-2"], "widths='9223372036854775807-2' must be integers in 1...10000000"),
        // Inputs that produced inf or NaN results.
        (["spectrum", "--operator", "diag:n=4,lo=-1e308,hi=1e308"], "eigenvalues must be finite and at most 1e+150"),
        (["spectrum", "--operator", "powerlaw:n=10,alpha=-1000"], "eigenvalues must be finite and at most 1e+150"),
        (["hvp", "--model", "expsum:n=4", "--eps", "1e300", "--step-policy", "relative"], "θ ± εv must stay far inside fp64"),
        // Accepted before, refused now.
        (["hvp", "--model", "mlp:widths=4--3"], "joined by single '-'"),
        (["hvp", "--model", "mlp:widths=4-3,"], "empty field (a doubled or trailing comma)"),
        (["hvp", "--model", "mlp:widths=4-3,samples=4,samples=8"], "'samples' appears twice"),
        (["hvp", "--model", "transformer:context=4,context=5"], "'context' appears twice"),
        (["spectrum", "--operator", "diag:n=4,n=5"], "'n' appears twice"),
        (["spectrum", "--operator", "diag:n=4,,lo=1"], "empty field"),
        (["hvp", "--model", "expsum:n=4", "--seed", "1", "--seed", "2"], "--seed is given twice"),
        (["slq", "--operator", "diag:n=10", "--shards", "0"], "go with --model, not --operator"),
        (["slq", "--operator", "diag:n=10", "--order", "bogus"], "go with --model, not --operator"),
        (["run", "x.yaml", "--out", ""], "--out needs a path"),
        (["bench", "scalars", "--trials", "0"], "--trials must be in 1...1000"),
        (["bench", "topk", "--k", "0"], "--k must be in 1...1000"),
        (["cast", "--format", "fp32", "0.1", "--max-memory", "lots"], "--max-memory needs a size"),
        (["hvp", "--model", "expsum:n=4", "--reference", "none", "--out", "/tmp/" + String(repeating: "n", count: 300)], "the name is too long while creating the folder"),
    ])
    func refusedWithOneLine(args: [String], expected: String) throws {
        let out = tempDir("refused")
        let needsOut = ["spectrum", "slq", "hvp"].contains(args[0]) && !args.contains("--out")
        let r = try runCLI(args + (needsOut ? ["--out", out.path] : []))
        #expect(!FileManager.default.fileExists(atPath: out.path), "nothing written")
        #expect(r.status == 2, Comment(rawValue: r.stderr))
        #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(expected), Comment(rawValue: r.stderr))
        #expect(r.stderr.split(separator: "\n").count == 1, Comment(rawValue: r.stderr))
    }

    @Test func memoryLimitsParseAndCompare() throws {
        #expect(MemoryBudget.parse("1.5G") == 1.5 * 0x1p30 && MemoryBudget.parse("64k") == 65536 && MemoryBudget.parse("100") == 100)
        #expect(MemoryBudget.parse("-1G") == nil && MemoryBudget.parse("G") == nil && MemoryBudget.parse("1X") == nil)
        // The task's limit, not HH_MAX_MEMORY: suites run in parallel in this process (the CLI tests cover the variable).
        try MemoryBudget.$taskLimit.withValue(1000) {
            #expect(MemoryBudget.limit().bytes == 1000)
            #expect(throws: MemoryBudgetError.self) { try MemoryBudget.check(1001, "x") }
            try MemoryBudget.check(1000, "x")
            #expect(throws: MemoryBudgetError.self) { try MemoryBudget.check(.nan, "x") }
        }
        #expect(MemoryBudget.limit().bytes > 1000)
    }

    func write(_ name: String, _ data: Data) throws -> String {
        let dir = tempDir("hostile")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: p))
        return p
    }

    /// NPY headers and labels that trapped or were half-read.
    @Test func npyAndLabelFiles() throws {
        let x = try write("x.npy", NPY.float64([1, 2, 3, 4], shape: [2, 2]))
        func npy(_ header: String, major: UInt8 = 1, body: Data = Data()) -> Data {
            var d = Data([0x93] + Array("NUMPY".utf8) + [major, 0])
            let h = Array(header.utf8)
            if major == 1 { d.append(contentsOf: [UInt8(h.count & 0xff), UInt8(h.count >> 8)]) }
            else { d.append(contentsOf: [UInt8(h.count & 0xff), UInt8(h.count >> 8), 0, 0]) }
            return d + Data(h) + body
        }
        let cases: [(Data, String)] = [
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952, 1), }"), "0 data bytes for shape [2305843009213693952, 1]"),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "more elements than can be addressed"),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, x), }"), "shape entry 'x' is not a non-negative integer"),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -1), }"), "shape entry '-1'"),
            (Data([0x93] + Array("NUMPY".utf8) + [2, 0, 0, 0]), "truncated header"),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", major: 9), "NPY format version 9.0 is not supported"),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", body: Data(count: 8)), "8 data bytes for shape [2]"),
        ]
        for (data, expected) in cases {
            let y = try write("y.npy", data)
            #expect { try DataFiles.load(x: x, y: y, classes: nil) } throws: { "\($0)".contains(expected) }
        }
        // Labels too large for any classifier (≥ 2⁶³ trapped in Double→Int).
        let big = try write("big.npy", NPY.float64([0, 1e19], shape: [2]))
        #expect { try DataFiles.load(x: x, y: big, classes: nil) } throws: { "\($0)".contains("label 1 is 1e+19, not an integer in 0...10000000") }
        let csv = try write("d.csv", Data("a,label\n1,0\n2,9223372036854775808\n".utf8))
        #expect { try DataFiles.load(csv: csv, classes: nil) } throws: { "\($0)".contains("d.csv:3: label 9.223372036854776e+18") }
        // An empty data set (rel_err came out 0.0).
        let empty = try write("e.npy", NPY.float64([], shape: [0, 2]))
        let ey = try write("ey.npy", NPY.float64([], shape: [0]))
        #expect { try DataFiles.load(x: empty, y: ey, classes: nil) } throws: { "\($0)".contains("no data") }
        let r = try runCLI(["hvp", "--model", "mlp:widths=2-3-2,x=\(empty),y=\(ey)", "--out", tempDir("e").path])
        #expect(r.status == 2 && r.stderr.contains("no data"), Comment(rawValue: r.stderr))
    }

    /// report on tables whose log-axis values sit at fp64's ends trapped in Double→Int.
    @Test func reportOnExtremeValues() throws {
        let dir = tempDir("extreme")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let (edir, file) = try experiment("extreme", """
        study: fd-bias
        models: [expsum:n=4]
        policies: [""]
        schemes: [central]
        eps: [1.0e-3, 1.0e-2]

        """)
        let out = edir.appendingPathComponent("out")
        #expect(try runCLI(["run", file, "--out", out.path]).status == 0)
        // Push eps and rel_err to the ends of fp64, and rewrite the manifest's file list to match.
        var points = String(decoding: read(out, "points.csv"), as: UTF8.self).split(separator: "\n").map(String.init)
        let header = points[0].split(separator: ",").map(String.init)
        let ie = header.firstIndex(of: "eps")!, ir = header.firstIndex(of: "rel_err")!
        for (n, i) in points.indices.dropFirst().enumerated() {
            var f = points[i].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            f[ie] = n == 0 ? "1.7976931348623157e+308" : "5e-324"
            f[ir] = n == 0 ? "5e-324" : "1.7e308"
            points[i] = f.joined(separator: ",")
        }
        let data = Data((points.joined(separator: "\n") + "\n").utf8)
        try data.write(to: out.appendingPathComponent("points.csv"))
        var m = try JSONSerialization.jsonObject(with: read(out, "manifest.json")) as! [String: Any]
        var files = m["files"] as! [String: String]
        files["points.csv"] = SHA256.hex(data)
        m["files"] = files
        m["experiment_file"] = "<img src=x onerror=alert(1)>.yaml"
        try JSONSerialization.data(withJSONObject: m).write(to: out.appendingPathComponent("manifest.json"))
        let r = try runCLI(["report", out.path, "--out", dir.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let nb = String(decoding: read(dir, "report.ipynb"), as: UTF8.self)
        #expect(!nb.contains("<img src=x") && nb.contains("&lt;img src=x onerror=alert(1)&gt;"), "raw HTML in the notebook's Markdown")
    }

    @Test func experimentFileErrorsHavePositions() throws {
        let cases: [(String, String)] = [
            ("study: fd-bias\nstudy: fd-bias\n", ":2:1: malformed YAML: duplicate keys study"),
            ("study: fd-bias\nmodels: [expsum:n=4]\u{1}\n", ":2:21: malformed YAML: control characters are not allowed"),
            ("", ":1:1: empty experiment file"),
            ("# nothing\n", ":1:1: empty experiment file"),
            ("study: fd-bias\nmodels: [expsum:n=4, expsum:n=4]\n", ":2:22: 'expsum:n=4' appears twice in this list"),
            ("study: fd-bias\nmodels: [\"mp:n=10,ratio=1e-300\"]\n", ":2:10: model 'mp:n=10,ratio=1e-300'"),
            ("study: fd-bias\nmodels: [\"quadratic:mp:n=10,ratio=1e-300\"]\npolicies: [\"\"]\nschemes: [central]\neps: [1.0e-3]\n", ":2:10: model 'quadratic:mp:n=10,ratio=1e-300': quadratic: ratio must be in [0.001, 100]"),
            ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [\"\"]\nschemes: [central]\neps: {from: 1.0e-8, to: 1, points: 10000}\nseeds: {from: 0, count: 100000}\n",
             ":1:1: the grid has 1000000000 configurations"),
            // Unquoted commas in flow lists: YAML splits the spec or the policy.
            ("study: fd-bias\nmodels: [expsum:n=4]\npolicies: [param=bf16,compute=bf16,grad=fp32]\nschemes: [central]\neps: [1.0e-3]\n",
             ":3:23: 'param=bf16' and 'compute=bf16' are separate policies here: YAML's flow list [...] split a policy at its commas"),
            ("study: fd-bias\nmodels: [mlp:widths=4-8-3,act=tanh]\npolicies: [\"param=bf16\"]\nschemes: [central]\neps: [1.0e-3]\n",
             ":2:27: 'act=tanh' is not a model: YAML's flow list [...] split a model spec at its commas; quote each spec (\"mlp:widths=4-8-3,act=tanh\")"),
            ("study: scaling\nmodels: [\"mlp:widths=4-8-3\"]\npolicy: [param=fp32,compute=fp32]\n",
             ":3:21: 'param=fp32' and 'compute=fp32' are separate policies here"),
        ]
        for (yaml, expected) in cases {
            let (dir, file) = try experiment("pos", yaml)
            let r = try runCLI(["run", file, "--out", dir.appendingPathComponent("o").path])
            #expect(r.status == 2 && r.stderr.contains(file + expected), Comment(rawValue: r.stderr))
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o").path))
        }
        // Non-UTF-8 bytes: their line and column.
        let (dir, _) = try experiment("utf", "")
        let f = dir.appendingPathComponent("bad.yaml")
        try Data("study: fd-bias\nmodels: [".utf8 + [0xff, 0xfe] + "]\n".utf8).write(to: f)
        let r = try runCLI(["run", f.path, "--out", dir.appendingPathComponent("o").path])
        #expect(r.stderr.contains("bad.yaml:2:10: not UTF-8 text"), Comment(rawValue: r.stderr))
        // Several unknown keys: the first in the file, every time.
        let (_, unk) = try experiment("unk", "study: fd-bias\nzeta: 1\nalpha: 2\nmid: 3\n")
        for _ in 0..<5 {
            let u = try runCLI(["run", unk, "--out", tempDir("u").path])
            #expect(u.stderr.contains(":2:1: unknown key 'zeta'"), Comment(rawValue: u.stderr))
        }
    }

    /// What the flow-list check must not refuse: quoted policies, one stage varied, block lists.
    @Test func deliberatePolicyListsAreAccepted() throws {
        let head = "study: fd-bias\nmodels: [expsum:n=4, \"mlp:widths=4-8-3,act=tanh\"]\nschemes: [central]\neps: [1.0e-3]\n"
        for (policies, count) in [("policies: [\"param=bf16,compute=bf16\", \"param=fp32,compute=fp32\"]\n", 2),
                                  ("policies: [param=bf16, param=fp32]\n", 2),
                                  ("policies:\n  - param=bf16\n  - compute=bf16\n", 2),
                                  ("policies: param=bf16,compute=bf16\n", 1)] {
            let (_, file) = try experiment("ok", head + policies)
            let e = try ExperimentLoader.load(path: file, quick: false)
            guard let c = (e.study as? FDBiasStudy)?.config else { Issue.record("not fd-bias"); continue }
            #expect(c.policies.count == count, "\(policies)")
            #expect(c.models.count == 2)
        }
    }

    @Test func threadsThatCannotStartAreAnErrorNotAHang() throws {
        // All or none: the in-process world refuses, nothing waits.
        let r = try runCLI(["hvp", "--model", "mlp:widths=4-6-3,samples=8", "--shards", "4", "--out", tempDir("t").path],
                           environment: ["HH_TEST_THREAD_LIMIT": "2"])
        #expect(r.status == 2 && r.stderr.contains("could not start thread 3 of 4") && r.stderr.contains("lower --shards"), Comment(rawValue: r.stderr))
        // A sweep runs on the workers it could start.
        let (dir, file) = try experiment("threads", ResultsIntegrityTests.tiny)
        let s = try runCLI(["run", file, "--out", dir.appendingPathComponent("o").path, "--jobs", "8"], environment: ["HH_TEST_THREAD_LIMIT": "1"])
        #expect(s.status == 0 && s.stderr.contains("ran 1 of 6 parallel configurations"), Comment(rawValue: s.stderr))
        let z = try runCLI(["run", file, "--out", dir.appendingPathComponent("z").path], environment: ["HH_TEST_THREAD_LIMIT": "0"])
        #expect(z.status == 2 && z.stderr.contains("could not start thread 1") && z.stderr.contains("lower --jobs"), Comment(rawValue: z.stderr))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("z").path), "nothing finished: the folder it created is gone")
    }

    /// `cast` into a million-bit MPFR format trimmed trailing zeros in quadratic time (minutes).
    @Test func castIntoAHugeMPFRFormatIsLinear() throws {
        let r = try runCLI(["cast", "--format", "mpfr1048576", "0.1"])
        #expect(r.status == 0 && r.stdout.contains("0.1,mpfr1048576,nearest,0.1,"), Comment(rawValue: r.stdout))
    }
}
