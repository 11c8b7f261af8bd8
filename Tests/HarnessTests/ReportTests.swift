import Testing
import Foundation
@testable import Harness

func occurrences(_ s: String, _ sub: String) -> Int { s.components(separatedBy: sub).count - 1 }

@Suite(.serialized) struct ReportTests {
    /// Quick results of every study, then a report of each: the figures carry the data
    /// (one marker per plotted CSV value), the notebook is nbformat 4 with one figure
    /// output per figure, and both files are written.
    @Test func reportsOfEveryStudy() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let base = tempDir("reports")
        func run(_ s: String) throws -> URL {
            let out = base.appendingPathComponent(s)
            let r = try runCLI(["run", root.appendingPathComponent("experiments/\(s).yaml").path, "--quick", "--out", out.path])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
            return out
        }
        var dirs: [String: URL] = [:]
        for s in ["fd-bias", "noise-amplification", "krylov-stability", "block-diagonal", "scaling", "recommend-check"] { dirs[s] = try run(s) }
        let reg = base.appendingPathComponent("regimes.yaml")
        try "study: regimes\nfrom: {fd_bias: \(dirs["fd-bias"]!.path), krylov_stability: \(dirs["krylov-stability"]!.path)}\nvalidate: {models: [expsum:n=24], seeds: [9]}\n"
            .write(to: reg, atomically: true, encoding: .utf8)
        let regOut = base.appendingPathComponent("regimes")
        #expect(try runCLI(["run", reg.path, "--out", regOut.path]).status == 0)
        dirs["regimes"] = regOut
        // krylov-stability with `spectrum: lanczos` (no dense spectrum): the report draws SLQ against exact-HVP SLQ only.
        let ksl = base.appendingPathComponent("krylov-stability-lanczos.yaml")
        try """
            study: krylov-stability
            spectrum: lanczos
            reference_steps: 40
            models: ["mlp:widths=4-8-3,act=tanh,samples=16"]
            policies: ["param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32"]
            schemes: [central]
            eps: [1.0e-2]
            reorth: [none, full]
            steps: 15
            checkpoints: [5, 15]
            probes: 1

            """.write(to: ksl, atomically: true, encoding: .utf8)
        let kslOut = base.appendingPathComponent("krylov-stability-lanczos")
        #expect(try runCLI(["run", ksl.path, "--out", kslOut.path]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: kslOut.appendingPathComponent("spectrum.csv").path))
        dirs["krylov-stability-lanczos"] = kslOut

        for (study, dir) in dirs {
            let out = base.appendingPathComponent("export-\(study)")
            let r = try runCLI(["report", dir.path, "--out", out.path])
            #expect(r.status == 0, Comment(rawValue: r.stderr))
            let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
            let nbData = try Data(contentsOf: out.appendingPathComponent("report.ipynb"))
            let nb = try #require(try JSONSerialization.jsonObject(with: nbData) as? [String: Any])
            #expect(nb["nbformat"] as? Int == 4 && (nb["nbformat_minor"] as? Int ?? 0) >= 4)
            let cells = try #require(nb["cells"] as? [[String: Any]])
            for c in cells {
                #expect(["markdown", "code"].contains(c["cell_type"] as? String) && c["source"] is [String] && c["metadata"] is [String: Any] && c["id"] is String)
                if c["cell_type"] as? String == "code" { #expect(c["outputs"] is [Any] && c["execution_count"] != nil) }
            }
            let figures = cells.filter { (($0["outputs"] as? [[String: Any]]) ?? []).contains { ($0["data"] as? [String: Any])?["image/svg+xml"] != nil } }
            let svgs = occurrences(html, "<svg ")
            #expect(svgs > 0 && figures.count == svgs, "\(study): \(svgs) figures in the HTML, \(figures.count) in the notebook")
            #expect(html.contains("experiment_sha256") && !html.contains("http://") || html.contains("http://www.w3.org/2000/svg"))
            // Figures numbered once through the report (1…N, not per section); no caption says "(0 points)".
            let numbers = html.components(separatedBy: "<figcaption>Figure ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
            #expect(numbers == Array(1...max(svgs, 1)).prefix(svgs).map { $0 }, "\(study): figure numbers \(numbers)")
            #expect(!html.contains("(0 points)"), "\(study): a caption counts no points")
            if study == "krylov-stability" { #expect(html.contains("exact eigenvalues; SLQ densities from")) }
            if study == "krylov-stability-lanczos" {
                #expect(html.contains("no exact spectrum at this size") && !html.contains("exact eigenvalues; SLQ densities from"))
                #expect(String(decoding: nbData, as: UTF8.self).contains("reference_ritz.csv"))
            }
            if study == "fd-bias" {
                // Every curve has a legend entry, and no two kinds of line share a dash pattern.
                #expect(html.contains("central fitted model</text>") && html.contains("central ε*</text>"))
                let styles = [Figure.Dash.bias, Figure.Dash.noise, Figure.Dash.fit, Figure.Dash.vline]
                #expect(Set(styles).count == styles.count)
                for d in styles { #expect(html.contains("stroke-dasharray=\"\(d)\""), "\(d) drawn") }
                let nbText = String(decoding: nbData, as: UTF8.self)
                #expect(nbText.contains("label=f\\\"{scheme} fitted model\\\"") && nbText.contains("ls=\\\"-.\\\", label=f\\\"{scheme} ε*"))
            }
            // Figures contain the data: one marker per plotted CSV value.
            let markers = occurrences(html, "class=\"pt\"")
            func rows(_ f: String) throws -> [[String: String]] { try CSVTable.read(path: dir.appendingPathComponent(f).path) }
            switch study {
            case "fd-bias":
                #expect(markers == (try rows("points.csv")).filter { (Double($0["rel_err"]!) ?? 0) > 0 }.count)
            case "noise-amplification":
                #expect(markers == (try rows("points.csv")).filter { (Double($0["noise_std_rel"]!) ?? 0) > 0 }.count)
            case "block-diagonal":
                #expect(markers == 2 * (try rows("summary.csv")).count)
            case "krylov-stability", "krylov-stability-lanczos":
                let orth = try rows("lanczos.csv").filter { (Double($0["orth_loss"]!) ?? 0) > 0 }.count
                let ritz = try rows("summary.csv").filter { (Double($0["ritz_err_top_1"]!) ?? 0) > 0 }.count
                #expect(markers == orth + ritz)
            case "regimes":                                                             // the static ε and the per-model step (when predicted)
                let v = try rows("validation.csv")
                #expect(markers == v.count + v.filter { !$0["rec_predicted_err"]!.isEmpty }.count)
            case "recommend-check":                                                     // rows with a prediction (saturated ones: the floor estimate)
                #expect(markers == (try rows("check.csv")).filter { !$0["predicted_err"]!.isEmpty }.count)
            default:
                let t = try rows("timings.csv")
                let timeColumns = t.first!.keys.filter { $0.hasPrefix("time_") }.count, passColumns = t.first!.keys.filter { $0.hasPrefix("pass_") }.count
                // Times and memory per configuration, each product's throughput, each extrapolated time,
                // each round's timing (one per configuration, quantity and round, the gradient's and the
                // exact HVP's products' sums and the pass seconds among them).
                let products = try rows("gemm.csv").count, far = try rows("extrapolation.csv").filter { $0["unit"] == "s" }.count
                let spread = try rows("rounds.csv").count
                #expect(passColumns == 2 && products > 0 && spread == t.count * (timeColumns + 2 + passColumns) * Int(t.first!["repeats"]!)!)
                #expect(markers == t.count * timeColumns + t.filter { (Double($0["rss_delta_bytes"]!) ?? 0) > 0 }.count + products + far + spread)
            }
        }
    }

    /// Reports of single runs (slq with an operator and with a model, hvp, eigen,
    /// recommend, trace): every figure carries its data, the per-tensor error table
    /// follows model.json's layout, and the notebook's Python parses.
    @Test func reportsOfSingleRuns() throws {
        let base = tempDir("run-reports")
        defer { try? FileManager.default.removeItem(at: base) }
        let mlp = "mlp:widths=5-6-3,samples=12"
        let runs: [(String, [String])] = [
            ("slq-op", ["slq", "--operator", "rotated:n=50,lo=0.1,hi=4", "--steps", "15", "--probes", "2", "--reorth", "full"]),
            ("slq-model", ["slq", "--model", "quadratic:diag:n=30,lo=1,hi=3", "--policy", "param=fp32,compute=fp32,grad=fp32,hvp=fp32", "--eps", "1e-3", "--steps", "10", "--probes", "2"]),
            ("hvp", ["hvp", "--model", mlp, "--policy", "param=bf16,compute=fp32,grad=fp32", "--eps", "1e-2"]),
            ("eigen", ["eigen", "--operator", "diag:n=40,lo=1,hi=5", "--top", "3", "--which", "both"]),
            ("recommend", ["recommend", "--model", mlp, "--policy", "param=bf16,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"]),
            ("trace", ["trace", "--operator", "diag:n=40", "--matvecs", "12"]),
        ]
        for (name, args) in runs {
            let dir = base.appendingPathComponent(name), out = base.appendingPathComponent("report-" + name)
            let r = try runCLI(args + ["--seed", "2", "--out", dir.path])
            #expect(r.status == 0, Comment(rawValue: "\(name): \(r.stderr)"))
            let rep = try runCLI(["report", dir.path, "--out", out.path])
            #expect(rep.status == 0, Comment(rawValue: "\(name): \(rep.stderr)"))
            let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
            let nb = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.ipynb"))) as? [String: Any])
            let cells = try #require(nb["cells"] as? [[String: Any]])
            let figures = cells.filter { (($0["outputs"] as? [[String: Any]]) ?? []).contains { ($0["data"] as? [String: Any])?["image/svg+xml"] != nil } }
            #expect(figures.count == occurrences(html, "<svg "), "\(name)")
            #expect(!html.contains("(0 points)") && !html.contains(">nan<"), "\(name)")
            // The notebook's code parses as Python (the prelude defines every plot function).
            let code = cells.filter { $0["cell_type"] as? String == "code" }.map { ($0["source"] as? [String] ?? []).joined() }.joined(separator: "\n")
            let py = base.appendingPathComponent("\(name).py")
            try code.write(to: py, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env"); p.arguments = ["python3", "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", py.path]
            if (try? p.run()) != nil { p.waitUntilExit(); #expect(p.terminationStatus == 0, "\(name): notebook code does not parse") }

            func rows(_ f: String) throws -> [[String: String]] { try CSVTable.read(path: dir.appendingPathComponent(f).path) }
            func positive(_ rs: [[String: String]], _ k: String) -> Int { rs.filter { (Double($0[k] ?? "") ?? 0) > 0 }.count }
            let markers = occurrences(html, "class=\"pt\"")
            switch name {
            case "slq-op", "slq-model":
                let nodes = try rows("nodes.csv")
                #expect(markers == positive(nodes, "residual_estimate"), "\(name): \(markers) markers")
                #expect(occurrences(html, "<svg ") == 3 && html.contains("exact eigenvalues</text>") && html.contains("Extreme Ritz values per probe"))
                #expect(html.contains("SLQ from \(nodes.count) Gauss nodes over 2 probes"))
                if name == "slq-model" {
                    // The dense Hessian's spectrum written beside the run is the operator's.
                    let s = try runCLI(["spectrum", "--operator", "diag:n=30,lo=1,hi=3", "--out", base.appendingPathComponent("spec").path])
                    #expect(s.status == 0)
                    let want = try CSVTable.read(path: base.appendingPathComponent("spec/eigenvalues.csv").path).map { Double($0["eigenvalue"]!)! }.sorted()
                    let got = try rows("spectrum.csv").map { Double($0["eigenvalue"]!)! }
                    #expect(got.count == 30 && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-12 * abs($1) })
                }
            case "hvp":
                let n = 5 * 6 + 6 + 6 * 3 + 3
                #expect(markers == n)
                let model = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model.json"))) as! [String: Any]
                let names = (model["layout"] as! [[String: Any]]).map { $0["name"] as! String }
                let content = try ReportCommand.hvpRun(ReportCommand.Reader(dir: dir))
                let table = try #require(content.sections.last?.tables.first)
                #expect(table.rows.map { $0[0] } == names && table.rows.map { Int($0[1])! }.reduce(0, +) == n)
                let share = table.rows.compactMap { Double($0[4]) }.reduce(0, +)
                #expect(abs(share - 1) < 1e-3, "shares of the squared error add up to 1: \(share)")
            case "eigen":
                let e = try rows("eigen.csv")
                #expect(markers == e.count + positive(e, "error_bound") + positive(e, "residual_estimate") + e.count + positive(e, "abs_err"))
            case "recommend":
                #expect(markers == positive(try rows("grid.csv").filter { $0["used"] == "1" }, "pred_err"))
                #expect(html.contains("chosen ε</text>") && html.contains("safe band</text>"))
            default:
                #expect(html.contains("hutchpp") && occurrences(html, "<svg ") == 0)
            }
        }
        // A folder of a command without a report is refused by name.
        let sp = base.appendingPathComponent("spec")
        let r = try runCLI(["report", sp.path, "--out", base.appendingPathComponent("x").path])
        #expect(r.status == 2 && r.stderr.contains("no report for the output of 'spectrum'"), Comment(rawValue: r.stderr))
    }

    @Test func badResultsFolders() throws {
        let out = tempDir("report-out")
        let missing = try runCLI(["report", "/nonexistent/results", "--out", out.path])
        #expect(missing.status == 2 && missing.stderr.contains("no results folder"), Comment(rawValue: missing.stderr))
        let empty = tempDir("report-empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let e = try runCLI(["report", empty.path, "--out", out.path])
        #expect(e.status == 2 && e.stderr.contains("no manifest.json"), Comment(rawValue: e.stderr))
        try Data("{not json".utf8).write(to: empty.appendingPathComponent("manifest.json"))
        let m = try runCLI(["report", empty.path, "--out", out.path])
        #expect(m.status == 2 && m.stderr.contains("malformed JSON"), Comment(rawValue: m.stderr))
        try Data("{\"study\": \"fd-bias\"}".utf8).write(to: empty.appendingPathComponent("manifest.json"))
        let l = try runCLI(["report", empty.path, "--out", out.path])
        #expect(l.status == 2 && l.stderr.contains("lacks points.csv"), Comment(rawValue: l.stderr))
        #expect(!FileManager.default.fileExists(atPath: out.path), "nothing written")
    }

    @Test func relativePaths() {
        #expect(ReportCommand.relativePath(from: "/a/notebooks-export/fd-bias", to: "/a/results/fd-bias") == "../../results/fd-bias")
        #expect(ReportCommand.relativePath(from: "/a/b", to: "/a/b") == ".")
    }
}

@Suite struct CSVNumberTests {
    /// Single-run CSVs write every NaN as `nan` (its sign is not reproducible across builds).
    @Test func nanHasNoSign() {
        #expect(csvNumber(-Double.nan) == "nan" && csvNumber(Double.nan) == "nan")
        #expect(csvNumber(-0.0) == "-0.0" && csvNumber(1e-300) == "1e-300")
    }
}
