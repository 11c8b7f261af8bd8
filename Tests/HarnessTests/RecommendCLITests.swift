import Foundation
import Testing
import Scalars
@testable import Harness
import Models
import Studies
import Curvature

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
        // The bias probe (bf16 stages: an fp32 FD-HVP at ε), in the table, the JSON and the line.
        let probe = try #require(Double(row["probe_rel_diff"]!))
        #expect(row["probe_format"] == "fp32" && probe > 0 && probe <= pred && r.stdout.contains("the fp32 FD-HVP at eps differs by"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("recommend.json"))) as? [String: Any])
        #expect(json["probe_format"] as? String == "fp32" && json["probe_rel_diff"] as? Double != nil)
        // Without it: the same ε, no probe, a prediction no larger.
        let np = tempDir("recommend-no-probe")
        let r2 = try runCLI(["recommend", "--model", model, "--policy", bf16, "--seed", "3", "--no-bias-probe", "--out", np.path])
        let row2 = try CSVTable.read(path: np.appendingPathComponent("recommend.csv").path)[0]
        #expect(r2.status == 0 && !r2.stdout.contains("bias probe") && row2["probe_format"] == "" && row2["eps"] == row["eps"]
                && Double(row2["predicted_err"]!)! <= pred, "\(r2.stdout)")

        let s = tempDir("slq-auto")
        let q = try runCLI(["slq", "--model", model, "--policy", bf16, "--eps", "auto", "--steps", "8", "--probes", "1", "--seed", "3",
                            "--out", s.path])
        #expect(q.status == 0, Comment(rawValue: q.stderr))
        // One line on success: the headline figures, the folder and the files.
        #expect(q.stdout.hasPrefix("slq: eps ") && q.stdout.contains("eps_source auto, steps_done 8")
                && q.stdout.hasSuffix("→ \(s.path) (nodes.csv, density.csv, lanczos.csv, summary.csv, spectrum.csv, manifest.json)\n"), "\(q.stdout)")
        let sum = try CSVTable.read(path: s.appendingPathComponent("summary.csv").path)[0]
        // Lanczos applies the FD-HVP to unit vectors: slq's ε is recommend's (chosen for the
        // hvp direction v) times ‖v‖, at the same predicted error; before this was fixed
        // slq took recommend's ε as it was, √(n/3) ≈ 13 times too small here.
        let m = try ModelSpec.build(model, seed: 3)
        let v = ModelSetup.direction(count: m.parameterCount, seed: 3)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let epsSLQ = Double(sum["eps_abs"]!)!, epsRec = Double(row["eps"]!)!
        #expect(sum["eps_source"] == "auto" && abs(epsSLQ / (epsRec * norm) - 1) < 1e-6, "slq ε \(epsSLQ), recommend ε·‖v‖ \(epsRec * norm)")
        #expect(abs(Double(sum["predicted_err"]!)! / pred - 1) < 1e-6)
        // And the error of an FD-HVP along that unit direction at slq's ε is the predicted one (within 2×).
        let engine = try FDEngine(model: m, policy: PrecisionPolicy(bf16))
        let theta = try ModelSetup.point(m, seed: 3, param: ScalarFormat("bf16")).theta
        let u = v.map { $0 / norm }
        let fd = try engine.estimate(theta: theta, v: u, scheme: .central, step: .absolute(epsSLQ)).hv
        let exact = m.exactHVP(theta, u).hv
        let err = zip(fd, exact).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(pred / err >= 0.5 && pred / err <= 2, "predicted \(pred), measured along the unit direction \(err)")
    }

    @Test func hvpSaysWhatItWrote() throws {
        let d = tempDir("hvp-line")
        let r = try runCLI(["hvp", "--model", model, "--policy", bf16, "--eps", "0.05", "--out", d.path])
        #expect(r.status == 0 && r.stdout.hasPrefix("hvp: rel_err ") && r.stdout.contains("swamped_fraction")
                && r.stdout.contains("→ \(d.path) (model.json,") && r.stdout.split(separator: "\n").count == 1, "\(r.stdout)")
    }

    /// A sweep over a trained model records the training run in its manifest: spec,
    /// seeds, optimizer and the loss curve, equal to the one the model itself reports.
    @Test func sweepManifestRecordsTraining() throws {
        let (dir, file) = try experiment("trained", """
        study: recommend-check
        models: ["mlp:widths=4-6-3,samples=8,train=20,optimizer=sgd,lr=0.2", "expsum:n=8"]
        policies: ["param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"]
        schemes: [central]
        seeds: [3]

        """)
        let out = dir.appendingPathComponent("out")
        #expect(try runCLI(["run", file, "--out", out.path]).status == 0)
        let m = try #require(try JSONSerialization.jsonObject(with: read(out, "manifest.json")) as? [String: Any])
        let t = try #require(m["training"] as? [[String: Any]])
        #expect(t.count == 1 && t[0]["model"] as? String == "mlp:widths=4-6-3,samples=8" && t[0]["optimizer"] as? String == "sgd"
                && t[0]["steps"] as? Int == 20 && t[0]["data_seed"] as? Int == 3 && t[0]["init_seed"] as? Int == 3)
        // Decoded with JSONDecoder: corelibs' JSONSerialization does not parse every double exactly.
        struct M: Decodable { var training: [TrainingRecord] }
        let curve = try JSONDecoder().decode(M.self, from: read(out, "manifest.json")).training[0].losses
        let run = try #require(try ModelSpec.build("mlp:widths=4-6-3,samples=8,train=20,optimizer=sgd,lr=0.2", seed: 3) as? TrainedModelProtocol)
        #expect(curve == run.trainingRun(seed: 3).losses && curve.count == 21)
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
