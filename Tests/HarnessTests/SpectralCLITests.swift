import Foundation
import Testing
@testable import Harness

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

    @Test func slqWritesEveryTableAndIsDeterministic() throws {
        let a = tempDir("slq-a"), b = tempDir("slq-b")
        for d in [a, b] {
            let r = try runCLI(["slq", "--operator", "mp:n=120,ratio=0.5", "--steps", "20", "--probes", "3", "--reorth", "partial",
                                "--krylov", "bf16", "--rounding", "stochastic", "--seed", "7", "--out", d.path])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
        }
        let headers = ["nodes.csv": "probe,node,weight", "density.csv": "x,density",
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
