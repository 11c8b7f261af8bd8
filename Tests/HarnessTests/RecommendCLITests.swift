import Foundation
import Testing
@testable import Harness

@Suite struct RecommendCLITests {
    let model = "mlp:widths=8-12-4,act=tanh,samples=24"
    let bf16 = "param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32"

    /// One line on stdout; the files with --out; the measured error (fp64 reference)
    /// within 2× of the prediction; slq --eps auto takes the same ε.
    @Test func recommendWritesItsFilesAndSLQUsesIt() throws {
        let d = tempDir("recommend")
        let r = try runCLI(["recommend", "--model", model, "--policy", bf16, "--reference", "fp64", "--seed", "3", "--out", d.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        #expect(r.stdout.hasPrefix("eps = ") && r.stdout.contains("predicted rel_err") && r.stdout.hasSuffix("→ \(d.path)\n"), "\(r.stdout)")
        #expect(files(d) == ["grid.csv", "manifest.json", "recommend.csv", "recommend.json"])
        let row = try CSVTable.read(path: d.appendingPathComponent("recommend.csv").path)[0]
        let pred = Double(row["predicted_err"]!)!, meas = Double(row["measured_err"]!)!
        #expect(pred / meas >= 0.5 && pred / meas <= 2, "predicted \(pred) measured \(meas)")
        #expect(row["feasible"] == "1" && Double(row["eps_lo"]!)! < Double(row["eps"]!)! && Double(row["eps"]!)! < Double(row["eps_hi"]!)!)

        let s = tempDir("slq-auto")
        let q = try runCLI(["slq", "--model", model, "--policy", bf16, "--eps", "auto", "--steps", "8", "--probes", "1", "--seed", "3",
                            "--out", s.path])
        #expect(q.status == 0, Comment(rawValue: q.stderr))
        // One line on success: the headline figures, the folder and the files.
        #expect(q.stdout.hasPrefix("slq: eps ") && q.stdout.contains("eps_source auto, steps_done 8")
                && q.stdout.hasSuffix("→ \(s.path) (nodes.csv, density.csv, lanczos.csv, summary.csv, manifest.json)\n"), "\(q.stdout)")
        let sum = try CSVTable.read(path: s.appendingPathComponent("summary.csv").path)[0]
        #expect(sum["eps_source"] == "auto" && sum["eps"] == row["eps"] && sum["predicted_err"] == row["predicted_err"], "\(sum)")
    }

    @Test func hvpSaysWhatItWrote() throws {
        let d = tempDir("hvp-line")
        let r = try runCLI(["hvp", "--model", model, "--policy", bf16, "--eps", "0.05", "--out", d.path])
        #expect(r.status == 0 && r.stdout.hasPrefix("hvp: rel_err ") && r.stdout.contains("swamped_fraction")
                && r.stdout.contains("→ \(d.path) (model.json,") && r.stdout.split(separator: "\n").count == 1, "\(r.stdout)")
    }

    @Test func anUnreachableToleranceIsSaidPlainly() throws {
        let r = try runCLI(["recommend", "--model", model, "--policy", bf16, "--tolerance", "1e-6"])
        #expect(r.status == 0 && r.stdout.hasPrefix("no eps meets the tolerance 1e-06: the smallest predicted rel_err is "), "\(r.stdout)")
    }

    @Test func badInputExitsTwoAndWritesNothing() throws {
        let cases: [[String]] = [
            ["--policy", "param=fp99"], ["--policy", bf16, "--scheme", "exact"], ["--policy", bf16, "--tolerance", "0"],
            ["--policy", bf16, "--tolerance", "nan"], ["--policy", bf16, "--reference", "fp16"], ["--policy", bf16, "--shards", "0"],
        ]
        for args in cases {
            let d = tempDir("rec-bad")
            let r = try runCLI(["recommend", "--model", model] + args + ["--out", d.path])
            #expect(r.status == 2 && r.stderr.hasPrefix("error: ") && r.stdout.isEmpty, "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: d.path))
        }
        let bad = try runCLI(["recommend", "--model", "mlp:widths=0-3", "--policy", bf16])
        #expect(bad.status == 2 && bad.stderr.contains("--model"), "\(bad.stderr)")
    }
}
