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
            case "krylov-stability":
                let orth = try rows("lanczos.csv").filter { (Double($0["orth_loss"]!) ?? 0) > 0 }.count
                let ritz = try rows("summary.csv").filter { (Double($0["ritz_err_top_1"]!) ?? 0) > 0 }.count
                #expect(markers == orth + ritz)
            case "regimes":                                                             // the static ε and the per-model step (when predicted)
                let v = try rows("validation.csv")
                #expect(markers == v.count + v.filter { !$0["rec_predicted_err"]!.isEmpty }.count)
            case "recommend-check":                                                     // saturated rows carry no prediction
                #expect(markers == (try rows("check.csv")).filter { !$0["predicted_err"]!.isEmpty }.count)
            default:
                let t = try rows("timings.csv")
                let timeColumns = t.first!.keys.filter { $0.hasPrefix("time_") }.count
                #expect(markers == t.count * timeColumns + t.filter { (Double($0["rss_delta_bytes"]!) ?? 0) > 0 }.count)
            }
        }
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
