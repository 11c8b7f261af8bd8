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
        #expect(summary[1].hasPrefix("\"mp:n=120,ratio=0.5\",bf16,stochastic,recursive,partial,20,3,7,"))
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
