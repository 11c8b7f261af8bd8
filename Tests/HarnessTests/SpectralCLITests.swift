import Foundation
import Testing
@testable import Harness
import Models

func tempDir(_ name: String) -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("hh-\(name)-\(UUID().uuidString)")
    return u
}

@Suite struct SpectralCLITests {
    @Test func spectrumWritesEigenvaluesAndManifest() throws {
        let dir = tempDir("spectrum")
        let r = try runCLI(["spectrum", "--operator", "diag:values=3;1;2", "--out", dir.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let csv = try String(contentsOf: dir.appendingPathComponent("eigenvalues.csv"), encoding: .utf8)
        #expect(csv == "index,eigenvalue\n0,1.0\n1,2.0\n2,3.0\n")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json"))) as! [String: Any]
        for key in ["tool_version", "git_commit", "seeds", "mpfr_version", "gmp_version", "openblas_config", "cores", "start_time", "end_time"] {
            #expect(manifest[key] != nil, "manifest lacks \(key)")
        }
    }

    /// git_commit names the tool's source (embedded at build time), not the repository
    /// the user happens to run it in.
    @Test func gitCommitIsTheToolsOwn() throws {
        func git(_ args: [String], in dir: URL) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", dir.path] + args
            let out = Pipe(); p.standardOutput = out; p.standardError = Pipe()
            guard (try? p.run()) != nil else { return nil }
            let d = out.fileHandleForReading.readDataToEndOfFile(); p.waitUntilExit()
            return p.terminationStatus == 0 ? String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard git(["rev-parse", "HEAD"], in: root) != nil else { return }   // not built from a checkout: nothing to compare
        #expect(BuildInfo.gitCommit.range(of: "^[0-9a-f]{40}(-dirty)?$", options: .regularExpression) != nil, "\(BuildInfo.gitCommit)")
        // Another repository as the working directory.
        let other = tempDir("foreign-repo")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: other) }
        try "x\n".write(to: other.appendingPathComponent("f"), atomically: true, encoding: .utf8)
        _ = git(["init", "-q"], in: other); _ = git(["add", "f"], in: other)
        _ = git(["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"], in: other)
        let foreign = git(["rev-parse", "HEAD"], in: other)
        let out = other.appendingPathComponent("out")
        let r = try runCLI(["spectrum", "--operator", "diag:values=1;2", "--out", out.path], environment: ["HH_GIT_COMMIT": nil], in: other)
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        let recorded = manifest["git_commit"] as? String
        #expect(recorded == BuildInfo.gitCommit)
        if let foreign { #expect(recorded?.hasPrefix(foreign) == false) }
        let v = try runCLI(["--version"])
        #expect(v.stdout.contains(BuildInfo.gitCommit))
    }

    /// nodes.csv's residual_estimate β_k|s_kj| bounds the distance of each Ritz value to
    /// the exact spectrum (written beside the run as spectrum.csv), as it must for a
    /// symmetric operator under full reorthogonalization in fp64.
    @Test func ritzResidualsBoundTheDistanceToTheSpectrum() throws {
        let d = tempDir("slq-res")
        defer { try? FileManager.default.removeItem(at: d) }
        let r = try runCLI(["slq", "--operator", "rotated:n=60,lo=0.1,hi=5", "--steps", "40", "--probes", "2", "--reorth", "full", "--seed", "4", "--out", d.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let spec = try CSVTable.read(path: d.appendingPathComponent("spectrum.csv").path).map { Double($0["eigenvalue"]!)! }
        let s = try runCLI(["spectrum", "--operator", "rotated:n=60,lo=0.1,hi=5", "--seed", "4", "--out", d.appendingPathComponent("s").path])
        #expect(s.status == 0)
        let direct = try CSVTable.read(path: d.appendingPathComponent("s/eigenvalues.csv").path).map { Double($0["eigenvalue"]!)! }
        #expect(spec.count == 60 && spec == direct.sorted())
        var tight = 0
        for row in try CSVTable.read(path: d.appendingPathComponent("nodes.csv").path) {
            let x = Double(row["node"]!)!, res = Double(row["residual_estimate"]!)!
            let dist = spec.map { abs($0 - x) }.min()!
            #expect(dist <= res + 1e-12, "Ritz value \(x): nearest eigenvalue \(dist) away, residual \(res)")
            if res < 1e-6 { tight += 1 }
        }
        #expect(tight >= 4, "the extreme Ritz values converge in 40 steps")
        // summary.csv names the extreme Ritz values with their residuals; each lies within it of an eigenvalue.
        let sum = try CSVTable.read(path: d.appendingPathComponent("summary.csv").path)[0]
        let lmin = Double(sum["lambda_min"]!)!, lmax = Double(sum["lambda_max"]!)!
        let rmin = Double(sum["lambda_min_residual"]!)!, rmax = Double(sum["lambda_max_residual"]!)!
        #expect(abs(lmin - spec.first!) <= rmin + 1e-12 && abs(lmax - spec.last!) <= rmax + 1e-12)
        #expect(rmin < 1e-6 && rmax < 1e-6, "\(rmin) \(rmax)")
    }

    @Test func slqWritesEveryTableAndIsDeterministic() throws {
        let a = tempDir("slq-a"), b = tempDir("slq-b")
        for d in [a, b] {
            let r = try runCLI(["slq", "--operator", "mp:n=120,ratio=0.5", "--steps", "20", "--probes", "3", "--reorth", "partial",
                                "--krylov", "bf16", "--rounding", "stochastic", "--seed", "7", "--out", d.path])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
        }
        let headers = ["nodes.csv": "probe,node,weight,residual_estimate", "density.csv": "x,density", "spectrum.csv": "index,eigenvalue",
                       "lanczos.csv": "probe,step,alpha,beta,orth_loss,orth_loss_fro,reorthogonalized"]
        for (file, header) in headers {
            let x = try String(contentsOf: a.appendingPathComponent(file), encoding: .utf8)
            let y = try String(contentsOf: b.appendingPathComponent(file), encoding: .utf8)
            #expect(x.hasPrefix(header + "\n"), "\(file)")
            #expect(x == y, "\(file) is byte-identical for the same seed")
        }
        let nodes = try String(contentsOf: a.appendingPathComponent("nodes.csv"), encoding: .utf8).split(separator: "\n")
        #expect(nodes.count == 1 + 3 * 20)
        let summary = try String(contentsOf: a.appendingPathComponent("summary.csv"), encoding: .utf8).split(separator: "\n")
        #expect(summary.count == 2 && summary[0].contains("w1_scaled") && summary[0].contains("ghost_count"))
        // bf16 vectors: the default accumulation (auto) sums in fp32; every probe ran its 20 steps.
        #expect(summary[1].hasPrefix("\"mp:n=120,ratio=0.5\",bf16,stochastic,fp32,partial,20,20,,3,7,"), "\(summary[1])")
    }

    /// The regimes issue's reproduction: bf16 Lanczos vectors of length 1144 with full
    /// reorthogonalization. Summed recursively in bf16 the norms stall, the run blows up
    /// and stops at step 12 with a non-finite β: the summary says so (steps_done,
    /// breakdown) instead of the requested count. With the default accumulation (fp32
    /// sums) it runs every step and its w1_scaled is within 2× of the fp32-vector run.
    @Test func bf16LanczosBreakdownIsReportedAndFP32SumsFixIt() throws {
        func summary(_ extra: [String]) throws -> [String: String] {
            let d = tempDir("slq-bf16")
            let r = try runCLI(["slq", "--operator", "mp:n=1144,ratio=0.5", "--reorth", "full", "--steps", "16", "--probes", "1",
                                "--seed", "1", "--out", d.path] + extra)
            #expect(r.status == 0, Comment(rawValue: r.stderr))
            return try CSVTable.read(path: d.appendingPathComponent("summary.csv").path)[0]
        }
        let narrow = try summary(["--krylov", "bf16", "--accumulation", "recursive"])
        #expect(narrow["steps"] == "16" && narrow["steps_done"] == "12" && narrow["breakdown"] == "non_finite", "\(narrow)")
        let wide = try summary(["--krylov", "bf16"]), fp32 = try summary(["--krylov", "fp32"])
        #expect(wide["accumulation"] == "fp32" && wide["steps_done"] == "16" && wide["breakdown"] == "")
        let w = Double(wide["w1_scaled"]!)!, f = Double(fp32["w1_scaled"]!)!
        #expect(w <= 2 * f && f <= 2 * w, "bf16/fp32-accumulated \(w) vs fp32 \(f)")
    }

    @Test func badInputExitsTwoAndWritesNothing() throws {
        let cases: [[String]] = [
            ["slq", "--operator", "bogus:n=3"], ["slq", "--operator", "diag:n=10", "--reorth", "sometimes"],
            ["slq", "--operator", "diag:n=10", "--krylov", "fp17"], ["slq", "--operator", "diag:n=10", "--steps", "0"],
            ["slq", "--operator", "diag:n=10", "--krylov", "fp64", "--rounding", "up"],
            ["slq", "--operator", "diag:n=10", "--sigma", "-1"], ["slq", "--operator", "diag:n=10", "--accumulation", "magic"],
            ["spectrum", "--operator", "mp:n=10"],
        ]
        for args in cases {
            let dir = tempDir("bad")
            let r = try runCLI(args + ["--out", dir.path])
            #expect(r.status == 2, "\(args): \(r.status)")
            #expect(r.stderr.hasPrefix("error: ") && r.stdout.isEmpty, "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.path), "\(args) created \(dir.path)")
        }
    }
}

/// `eigen` and `trace` (issue 20's spectral outputs), against known spectra.
@Suite struct EigenTraceCLITests {
    static func rows(_ dir: URL, _ file: String) throws -> [[String: String]] { try CSVTable.read(path: dir.appendingPathComponent(file).path) }

    /// Extreme eigenvalues of an operator with a known spectrum: the error is within the
    /// measured residual (the bound for a symmetric operator), the residual estimate from
    /// T_k agrees with the measured residual, and the eigenvector of the largest
    /// eigenvalue of a diagonal operator is the matching unit vector.
    @Test func extremeEigenpairsOfKnownSpectra() throws {
        let a = tempDir("eigen-mp"), b = tempDir("eigen-diag")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let r = try runCLI(["eigen", "--operator", "mp:n=300,ratio=0.5", "--top", "3", "--which", "both", "--out", a.path])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try Self.rows(a, "eigen.csv")
        #expect(rows.map { $0["which"]! } == ["largest", "largest", "largest", "smallest", "smallest", "smallest"])
        for row in rows {
            let err = Double(row["abs_err"]!)!, bound = Double(row["error_bound"]!)!
            let est = Double(row["residual_estimate"]!)!, res = Double(row["residual"]!)!
            #expect(err <= bound * (1 + 1e-9) + 1e-13, "\(row)")
            #expect(abs(est - res) <= 1e-6 * res + 1e-12, "β|s| estimates the residual of an exact symmetric operator: \(row)")
        }
        #expect(Double(rows[0]["abs_err"]!)! < 1e-8, "the largest Marchenko–Pastur eigenvalue converges in 50 steps")
        let r2 = try runCLI(["eigen", "--operator", "diag:values=1;5;2;9;3;0.5;7", "--top", "2", "--vectors", "--out", b.path])
        #expect(r2.status == 0, "\(r2.stderr)")
        let d = try Self.rows(b, "eigen.csv")
        #expect(d.map { Double($0["ritz_value"]!)! }.map { ($0 * 1e9).rounded() / 1e9 } == [9, 7])
        let (vecs, shape) = try DataFiles.readNPY(b.appendingPathComponent("eigenvectors.npy").path)
        #expect(shape == [2, 7])
        #expect(abs(abs(vecs[3]) - 1) < 1e-12 && abs(abs(vecs[7 + 6]) - 1) < 1e-12, "e₃ and e₆: \(vecs)")
    }

    /// A model's Hessian through the FD-HVP: the top Ritz values agree with the dense
    /// Hessian's eigenvalues within the FD-HVP's own error, and with the exact HVP far closer.
    @Test func modelEigenvaluesThroughTheFDHVP() throws {
        let a = tempDir("eigen-fd"), b = tempDir("eigen-exact")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let base = ["eigen", "--model", "mlp:widths=6-8-4,samples=30", "--policy", "param=fp64,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64", "--top", "3"]
        let r1 = try runCLI(base + ["--eps", "1e-4", "--out", a.path])
        let r2 = try runCLI(base + ["--scheme", "exact", "--out", b.path])
        #expect(r1.status == 0 && r2.status == 0, "\(r1.stderr) \(r2.stderr)")
        for row in try Self.rows(a, "eigen.csv") { #expect(Double(row["abs_err"]!)! < 1e-6, "\(row)") }
        for row in try Self.rows(b, "eigen.csv") { #expect(Double(row["abs_err"]!)! < 1e-12, "\(row)") }
    }

    @Test func traceEstimatorsWithStandardErrors() throws {
        let a = tempDir("trace"), s = tempDir("trace-slq")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: s) }
        let r = try runCLI(["trace", "--operator", "mp:n=300,ratio=0.5", "--matvecs", "60", "--seed", "3", "--out", a.path])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try Self.rows(a, "trace.csv")
        #expect(rows.map { $0["estimator"]! } == ["hutchinson", "hutchpp"])
        for row in rows {
            let err = Double(row["abs_err"]!)!, se = Double(row["standard_error"]!)!
            #expect(se > 0 && err < 4 * se, "\(row)")
        }
        let spectrum = try runCLI(["spectrum", "--operator", "mp:n=300,ratio=0.5", "--seed", "3", "--out", s.path])
        #expect(spectrum.status == 0)
        let exact = try Self.rows(s, "eigenvalues.csv").map { Double($0["eigenvalue"]!)! }.reduce(0, +)
        #expect(abs(Double(rows[0]["exact"]!)! - exact) <= 1e-12 * exact)
        // SLQ reports its trace too: n Σ wⱼθⱼ.
        try? FileManager.default.removeItem(at: s)
        let q = try runCLI(["slq", "--operator", "mp:n=300,ratio=0.5", "--steps", "20", "--probes", "8", "--seed", "3", "--out", s.path])
        #expect(q.status == 0)
        let sum = try Self.rows(s, "summary.csv")[0]
        #expect(abs(Double(sum["trace_slq"]!)! - exact) < 0.05 * exact && abs(Double(sum["trace_exact"]!)! - exact) <= 1e-12 * exact)
    }

    @Test(arguments: [
        (["eigen", "--operator", "mp:n=50,ratio=0.5", "--top", "0"], "--top must be in 1...10000"),
        (["eigen", "--operator", "mp:n=50,ratio=0.5", "--which", "middle"], "unknown --which 'middle'"),
        (["eigen", "--operator", "mp:n=50,ratio=0.5", "--model", "expsum:n=3"], "not both"),
        (["eigen"], "give --operator SPEC or --model SPEC"),
        (["eigen", "--model", "expsum:n=3", "--eps", "1e-3"], "--model needs --policy"),
        (["eigen", "--model", "expsum:n=3", "--policy", "param=fp32", "--eps", "0"], "--eps must be a finite number > 0"),
        (["eigen", "--model", "expsum:n=3", "--policy", "param=fp32"], "needs --eps"),
        (["eigen", "--operator", "mp:n=50,ratio=0.5", "--eps", "1e-3"], "--policy and --eps belong to --model"),
        (["trace", "--operator", "mp:n=50,ratio=0.5", "--matvecs", "31"], "--matvecs must be a multiple of 3"),
        (["trace", "--operator", "mp:n=100000,ratio=1"], "needs about"),
    ])
    func badInputIsRefused(args: [String], expected: String) throws {
        let out = tempDir("eigen-bad")
        let r = try runCLI(args + ["--out", out.path])
        #expect(r.status == 2 && r.stderr.contains(expected), "\(args): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}
