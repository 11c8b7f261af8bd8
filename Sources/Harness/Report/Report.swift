import Foundation
import Models
import Studies

/// `hessian-harness report RESULTS_DIR [--out DIR]`: a study's results (or a single
/// `slq`, `hvp`, `eigen`, `recommend` or `trace` run's folder, RunReports.swift) as a
/// self-contained HTML report (manifest summary, tables, SVG figures) and a Jupyter
/// notebook (nbformat 4) that loads the same CSV with pandas and redraws every figure
/// with matplotlib; each figure cell carries the harness's SVG as its output, so the
/// notebook reads without being run.
public enum ReportCommand {
    /// A figure with the matplotlib code that redraws it.
    struct Plot { var figure: Figure; var python: String }
    struct Section {
        var heading: String
        var text: String = ""
        var plots: [Plot] = []
        var tables: [(caption: String, header: [String], rows: [[String]])] = []
    }
    struct Content { var title: String; var intro: String; var sections: [Section]; var files: [String] }

    /// Writes report.html and report.ipynb; returns their paths.
    @discardableResult
    public static func run(results: String, out: String?) throws -> [String] {
        let dir = URL(fileURLWithPath: results)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw HarnessError("no results folder '\(results)'")
        }
        let mpath = dir.appendingPathComponent("manifest.json")
        guard let mdata = FileManager.default.contents(atPath: mpath.path) else {
            throw HarnessError("'\(results)' is not a results folder: no manifest.json")
        }
        guard let manifest = (try? JSONSerialization.jsonObject(with: mdata)) as? [String: Any] else {
            throw HarnessError("\(mpath.path): malformed JSON")
        }
        try ResultsFolder.verify(dir)
        let r = Reader(dir: dir)
        let content: Content
        guard let study = manifest["study"] as? String else {
            // A single run's folder: its manifest names the command that wrote it.
            guard let cmd = manifest["command"] as? [String], cmd.count >= 2 else {
                throw HarnessError("\(mpath.path) names neither a study nor the command that wrote it")
            }
            content = try runReport(command: cmd[1], r, manifest: manifest)
            return try write(content, manifest: manifest, dir: dir, out: out)
        }
        switch study {
        case "fd-bias": content = try fdBias(r)
        case "noise-amplification": content = try noise(r)
        case "krylov-stability": content = try krylov(r)
        case "regimes": content = try regimes(r)
        case "block-diagonal": content = try blockDiagonal(r)
        case "scaling": content = try scaling(r)
        case "recommend-check": content = try recommendCheck(r)
        default: throw HarnessError("\(mpath.path): no report for study '\(study)'")
        }
        return try write(content, manifest: manifest, dir: dir, out: out)
    }

    static func write(_ content: Content, manifest: [String: Any], dir: URL, out: String?) throws -> [String] {
        let outDir = URL(fileURLWithPath: out ?? "notebooks-export/\(dir.lastPathComponent)")
        let rel = relativePath(from: outDir.standardizedFileURL.path, to: dir.standardizedFileURL.path)
        var bundle = OutputBundle()
        bundle.add("report.html", Data(html(content, manifest: manifest).utf8))
        bundle.add("report.ipynb", try notebook(content, manifest: manifest, resultsPath: rel))
        try bundle.write(to: outDir)
        return ["report.html", "report.ipynb"].map { outDir.appendingPathComponent($0).path }
    }

    // MARK: reading

    struct Reader {
        let dir: URL
        func table(_ name: String) throws -> (header: [String], rows: [[String: String]]) {
            let p = dir.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: p) else { throw HarnessError("results folder '\(dir.path)' lacks \(name)") }
            let (h, rows) = try CSVTable.readRows(path: p)
            return (h, rows.map { Dictionary(uniqueKeysWithValues: zip(h, $0)) })
        }
        func aggregate(_ name: String, by: [String]) throws -> (header: [String], rows: [[String]]) {
            try TableCommand.aggregate(path: dir.appendingPathComponent(name).path, by: by)
        }
    }

    static func num(_ r: [String: String], _ k: String) -> Double { Double(r[k] ?? "") ?? .nan }
    /// Distinct values in order of first appearance.
    static func distinct(_ rows: [[String: String]], _ k: String) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for r in rows { if let v = r[k], seen.insert(v).inserted { out.append(v) } }
        return out
    }
    static func color(_ i: Int) -> String { Figure.palette[i % Figure.palette.count] }
    static func py(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }
    static func short(_ policy: String) -> String {
        ((try? PrecisionPolicy.fields(policy)) ?? policy.split(separator: ",")).filter { !$0.hasSuffix("=fp64") || $0.hasPrefix("param") }.joined(separator: ",")
    }

    // MARK: studies

    static func fdBias(_ r: Reader) throws -> Content {
        let pts = try r.table("points.csv").rows, fits = try r.table("fits.csv").rows
        var sec = Section(heading: "Error against ε",
                          text: "Per model, policy and step policy: rel_err (markers, every seed), bias_rel (truncation: the same FD in mpfr256, dashed), noise_rel (rounding, dotted) and the fitted error model A·ε^k + B·u/ε (thin, long dashes) of the first seed; the shaded span is the measured safe band at the tolerance and the vertical dash-dotted line ε* of the fit, per scheme (colour).")
        for m in distinct(pts, "model") { for p in distinct(pts, "policy") { for st in distinct(pts, "step_policy") {
            let sel = pts.filter { $0["model"] == m && $0["policy"] == p && $0["step_policy"] == st }
            if sel.isEmpty { continue }
            var f = Figure(title: "\(m) · \(short(p)) · \(st)", xLabel: st == "relative" ? "η (relative step, dimensionless)" : "ε (absolute step)",
                           yLabel: "relative error of ĥ (dimensionless)", logX: true, logY: true)
            let firstSeed = distinct(sel, "seed").first!
            for (si, scheme) in distinct(sel, "scheme").enumerated() {
                let c = color(si)
                for seed in distinct(sel, "seed") {
                    let s = sel.filter { $0["scheme"] == scheme && $0["seed"] == seed }
                    let x = s.map { num($0, "eps") }
                    f.series.append(.init(label: "\(scheme) rel_err", x: x, y: s.map { num($0, "rel_err") }, color: c))
                    guard seed == firstSeed else { continue }
                    f.series.append(.init(label: "\(scheme) bias_rel", x: x, y: s.map { num($0, "bias_rel") }, color: c, dash: Figure.Dash.bias, markers: false))
                    f.series.append(.init(label: "\(scheme) noise_rel", x: x, y: s.map { num($0, "noise_rel") }, color: c, dash: Figure.Dash.noise, markers: false))
                    if let fit = fits.first(where: { $0["model"] == m && $0["policy"] == p && $0["step_policy"] == st && $0["scheme"] == scheme && $0["seed"] == seed }) {
                        // An unresolved constant (empty cell) contributes nothing to the fitted line.
                        let a = num(fit, "fit_a").isNaN ? 0 : num(fit, "fit_a"), b = num(fit, "fit_b").isNaN ? 0 : num(fit, "fit_b")
                        let u = num(fit, "u"), k = num(fit, "order_k")
                        let grid = (0...60).map { Foundation.pow(10, log10(x.min()!) + (log10(x.max()!) - log10(x.min()!)) * Double($0) / 60) }
                        f.series.append(.init(label: "\(scheme) fitted model", x: grid, y: grid.map { a * Foundation.pow($0, k) + b * u / $0 }, color: c,
                                              dash: Figure.Dash.fit, markers: false, lineWidth: 0.9))
                        let lo = num(fit, "meas_eps_lo"), hi = num(fit, "meas_eps_hi")
                        if lo.isFinite && hi.isFinite { f.bands.append(.init(lo: lo, hi: hi, color: c, label: "\(scheme) safe band")) }
                        let star = num(fit, "eps_star")
                        if star.isFinite && star > 0 { f.vlines.append(.init(x: star, color: c, label: "\(scheme) ε*")) }
                    }
                }
            }
            sec.plots.append(Plot(figure: f, python: "plot_fd_bias(\(py(m)), \(py(p)), \(py(st)))"))
        } } }
        let agg = try r.aggregate("fits.csv", by: ["param", "compute", "grad", "scheme", "step_policy"])
        var tab = Section(heading: "Fitted error model and safe bands", text: "Means over models and seeds of fits.csv (the `table` command's aggregation).")
        tab.tables.append(("fits.csv by format, scheme and step policy", agg.header, agg.rows))
        return Content(title: "fd-bias: FD-HVP truncation bias and rounding noise",
                       intro: "Relative error of finite-difference Hessian-vector products against the exact HVP in mpfr256 (NUMERICS.md §3–4).",
                       sections: [sec, tab], files: ["points.csv", "fits.csv"])
    }

    static func noise(_ r: Reader) throws -> Content {
        let pts = try r.table("points.csv").rows, slopes = try r.table("slopes.csv").rows
        var sec = Section(heading: "Noise against ε", text: "noise_std_rel (spread across rounding-only replicates, over ‖h_ref‖) per policy; the legend gives the fitted log-log slope (expected ≈ −1).")
        for m in distinct(pts, "model") { for v in distinct(pts, "vary") {
            let sel = pts.filter { $0["model"] == m && $0["vary"] == v }
            var f = Figure(title: "\(m) · vary \(v)", xLabel: "ε (step)", yLabel: "noise_std_rel (dimensionless)", logX: true, logY: true)
            for (i, p) in distinct(sel, "policy").enumerated() {
                let s = sel.filter { $0["policy"] == p }
                let slope = slopes.first { $0["model"] == m && $0["vary"] == v && $0["policy"] == p }.map { num($0, "noise_slope") } ?? .nan
                f.series.append(.init(label: "\(short(p)) (slope \(String(format: "%.2f", slope)))", x: s.map { num($0, "eps") },
                                      y: s.map { num($0, "noise_std_rel") }, color: color(i)))
            }
            sec.plots.append(Plot(figure: f, python: "plot_noise(\(py(m)), \(py(v)))"))
        } }
        var tab = Section(heading: "Slopes")
        let agg = try r.aggregate("slopes.csv", by: ["model", "policy", "vary"])
        tab.tables.append(("slopes.csv", agg.header, agg.rows))
        return Content(title: "noise-amplification: rounding noise of FD-HVPs", intro: "Replicates that differ only in rounding (NUMERICS.md §5).",
                       sections: [sec, tab], files: ["points.csv", "slopes.csv"])
    }

    static func krylov(_ r: Reader) throws -> Content {
        let lz = try r.table("lanczos.csv").rows, sum = try r.table("summary.csv").rows
        let nodes = try r.table("nodes.csv").rows
        // `spectrum: lanczos` (models too large for a dense Hessian): no exact spectrum, the
        // converged top of a long exact-HVP Lanczos run is the reference (reference_ritz.csv).
        let dense = ReportCommand.has(r, "spectrum.csv")
        let spec = dense ? try r.table("spectrum.csv").rows : []
        var orth = Section(heading: "Loss of orthogonality", text: "orth_loss = max |q_iᵀq_j| per Lanczos step (every probe), per reorthogonalization; FD-HVP runs in the policy's Krylov format.")
        var ritz = Section(heading: "Ritz accuracy", text: dense
            ? "ritz_err_top_1 (largest exact eigenvalue to the nearest Ritz value, over the spectral radius) against the number of steps, per reorthogonalization (colour) and ε (line style)."
            : "ritz_err_top_1 (largest converged Ritz value of the long exact-HVP reference run, reference_ritz.csv, to the nearest Ritz value, over the spectral radius) against the number of steps, per reorthogonalization (colour) and ε (line style). No dense spectrum: spurious_count, w1_scaled and ks are empty.")
        var dens = Section(heading: dense ? "SLQ density against the exact spectrum" : "SLQ density against exact-HVP SLQ",
                           text: dense ? "Gaussian-broadened SLQ density (σ = 1% of the spectral range) of the FD-HVP run with full reorthogonalization at the middle ε, the exact-HVP fp64 run, and the histogram of the exact eigenvalues."
                                       : "Gaussian-broadened SLQ density (σ = 1% of the node range) of the FD-HVP run with full reorthogonalization at the middle ε and of the exact-HVP fp64 run from the same probe (no exact spectrum is known at this size).")
        let dashes: [String?] = [nil, "6,3", "1,3", "8,2,2,2"]
        for m in distinct(lz, "model") { for p in distinct(lz, "policy") {
            let sel = lz.filter { $0["model"] == m && $0["policy"] == p }
            if sel.isEmpty { continue }
            for e in distinct(sel, "eps") {
                let s2 = sel.filter { $0["eps"] == e }
                var f = Figure(title: "\(m) · \(short(p)) · ε \(e)", xLabel: "Lanczos step", yLabel: "orth_loss (dimensionless)", logY: true)
                for (i, ro) in distinct(s2, "reorth").enumerated() {
                    for pr in distinct(s2, "probe") {
                        let s = s2.filter { $0["reorth"] == ro && $0["probe"] == pr }
                        f.series.append(.init(label: ro, x: s.map { num($0, "step") }, y: s.map { num($0, "orth_loss") }, color: color(i)))
                    }
                }
                orth.plots.append(Plot(figure: f, python: "plot_orth(\(py(m)), \(py(p)), \(py(e)))"))
            }
            let ss = sum.filter { $0["model"] == m && $0["policy"] == p }
            var f = Figure(title: "\(m) · \(short(p))", xLabel: "Lanczos steps", yLabel: "ritz_err_top_1 (dimensionless)", logY: true)
            for (i, ro) in distinct(ss, "reorth").enumerated() { for (j, e) in distinct(ss, "eps").enumerated() {
                let s = ss.filter { $0["reorth"] == ro && $0["eps"] == e }
                f.series.append(.init(label: "\(ro) ε \(e)", x: s.map { num($0, "steps") }, y: s.map { num($0, "ritz_err_top_1") },
                                      color: color(i), dash: dashes[j % dashes.count]))
            } }
            ritz.plots.append(Plot(figure: f, python: "plot_ritz(\(py(m)), \(py(p)))"))
            // Density.
            let nsel = nodes.filter { $0["model"] == m && $0["policy"] == p && $0["source"] == "fd" }
            let epsList = distinct(nsel, "eps")
            guard !epsList.isEmpty else { continue }
            let e = epsList[epsList.count / 2]
            let reo = distinct(nsel, "reorth").contains("full") ? "full" : distinct(nsel, "reorth").last!
            let fdN = nsel.filter { $0["eps"] == e && $0["reorth"] == reo }
            let param = fdN.first?["param"] ?? "", seed = fdN.first?["seed"] ?? "0"
            let exN = nodes.filter { $0["model"] == m && $0["source"] == "exact_hvp" && $0["param"] == param && $0["seed"] == seed && $0["reorth"] == reo }
            let lam = dense ? spec.filter { $0["model"] == m && $0["param"] == param && $0["seed"] == seed }.map { num($0, "eigenvalue") }
                            : (fdN + exN).map { num($0, "node") }.filter(\.isFinite)
            guard let lo = lam.min(), let hi = lam.max(), hi > lo else { continue }
            let sigma = 0.01 * (hi - lo)
            let grid = (0..<200).map { lo - 3 * sigma + (hi - lo + 6 * sigma) * Double($0) / 199 }
            func density(_ rows: [[String: String]]) -> [Double] {
                grid.map { x in rows.reduce(0) { acc, r in
                    let z = (x - num(r, "node")) / sigma
                    return acc + num(r, "weight") * Foundation.exp(-z * z / 2) / (sigma * (2 * Double.pi).squareRoot())
                } }
            }
            var g = Figure(title: "\(m) · \(short(p)) · ε \(e) · \(reo)", xLabel: "eigenvalue", yLabel: "density (per unit eigenvalue)")
            if dense {
                g.bars = densityBars(lam)
                g.barLabel = "exact eigenvalues"
                g.captionNote = "histogram of \(lam.count) exact eigenvalues; SLQ densities from \(fdN.count) and \(exN.count) Gauss nodes, Gaussian kernel of width \(String(format: "%.3g", sigma))"
            } else {
                g.captionNote = "SLQ densities from \(fdN.count) and \(exN.count) Gauss nodes, Gaussian kernel of width \(String(format: "%.3g", sigma)); no exact spectrum at this size"
            }
            g.series.append(.init(label: "SLQ, FD-HVP", x: grid, y: density(fdN), color: color(0), markers: false))
            g.series.append(.init(label: "SLQ, exact HVP fp64", x: grid, y: density(exN), color: color(1), dash: "6,3", markers: false))
            dens.plots.append(Plot(figure: g, python: "plot_density(\(py(m)), \(py(p)), \(py(e)), \(py(reo)))"))
        } }
        var tab = Section(heading: "Trustworthy region", text: "Fraction of runs (models × seeds) whose FD-HVP Lanczos reproduces exact-HVP Lanczos (no ghosts, Ritz values and SLQ measure within the tolerance), per format, ε, reorthogonalization and step count.")
        let reg = try r.table("region.csv")
        tab.tables.append(("region.csv", reg.header.filter { $0 != "policy" }, reg.rows.map { row in reg.header.filter { $0 != "policy" }.map { row[$0]! } }))
        return Content(title: "krylov-stability: Lanczos and SLQ fed by FD-HVPs", intro: "Orthogonality, Ritz accuracy, ghosts and SLQ distance (NUMERICS.md §6–7).",
                       sections: [orth, ritz, dens, tab],
                       files: ["lanczos.csv", "summary.csv", "nodes.csv", dense ? "spectrum.csv" : "reference_ritz.csv", "region.csv"])
    }

    /// Predicted against measured error, one colour per scheme, with y = x and the 2× lines.
    static func predictedVsMeasured(_ rows: [[String: String]], file: String, pred: String, meas: String, title: String) -> Plot {
        var f = Figure(title: title, xLabel: "\(pred) (dimensionless)", yLabel: "\(meas) (dimensionless)", logX: true, logY: true)
        // Rows without a prediction (saturated) are not plotted; the diagonal spans the plotted points.
        let plotted = rows.filter { num($0, pred) > 0 && num($0, pred).isFinite && num($0, meas) > 0 && num($0, meas).isFinite }
        for (i, s) in distinct(rows, "scheme").enumerated() {
            let sel = plotted.filter { $0["scheme"] == s }
            f.series.append(.init(label: s, x: sel.map { num($0, pred) }, y: sel.map { num($0, meas) }, color: color(i), line: false))
        }
        let all = plotted.flatMap { [num($0, pred), num($0, meas)] }
        if let lo = all.min(), let hi = all.max() {
            f.series.append(.init(label: "y = x", x: [lo, hi], y: [lo, hi], color: "#555555", dash: "4,3", markers: false))
            f.series.append(.init(label: "y = 2x, y = x/2", x: [lo, hi], y: [2 * lo, 2 * hi], color: "#999999", dash: "1,3", markers: false))
            f.series.append(.init(label: "", x: [lo, hi], y: [lo / 2, hi / 2], color: "#999999", dash: "1,3", markers: false))
        }
        return Plot(figure: f, python: "plot_pred_meas(\(py(file)), \(py(pred)), \(py(meas)), \(py(title)))")
    }

    static func regimes(_ r: Reader) throws -> Content {
        let t = try r.table("regimes.csv"), v = try r.table("validation.csv").rows
        var sec = Section(heading: "Operating regimes", text: "Recommended static step (ε for absolute, η = ε‖v‖/‖θ‖ for relative steps), the measured safe band, the predicted error at it (geometric mean over the calibration curves), whether it meets the tolerance (feasible), the achievable floor with a per-model ε, and the held-out verdicts: pred_over_meas (median, worst) and ε over the best of a 4-per-decade grid for the static ε (static_ok) and for the per-model step of `recommend` (per_model_ok). Rule: median within 2×, worst within 3×, ε within 3× of the best on the models where some ε meets the tolerance (models_feasible); on the others the step must say that none does (false_feasible counts the claims that it would) and its floor is judged against the grid's best error. recommended_step is the static ε when it passed, else the per-model step; validated_ok is its verdict (docs/NUMERICS.md §10).")
        let cols = t.header.filter { $0 != "policy" && $0 != "normalization" }
        sec.tables.append(("regimes.csv", cols, t.rows.map { row in cols.map { row[$0]! } }))
        sec.plots.append(predictedVsMeasured(v, file: "validation.csv", pred: "predicted_err", meas: "rel_err",
                                             title: "Static ε: predicted against measured error (held out)"))
        sec.plots.append(predictedVsMeasured(v, file: "validation.csv", pred: "rec_predicted_err", meas: "rec_measured_err",
                                             title: "Per-model step (recommend): predicted against measured error (held out)"))
        return Content(title: "regimes: safe step-size operating regimes", intro: "Derived from fd-bias and krylov-stability, validated on held-out models, initialized and trained (docs/NUMERICS.md §4, §10).",
                       sections: [sec], files: ["regimes.csv", "validation.csv"])
    }

    static func recommendCheck(_ r: Reader) throws -> Content {
        let c = try r.table("check.csv")
        let saturated = c.rows.filter { $0["saturated"] == "1" }.count
        var sec = Section(heading: "The per-model step on held-out models", text: "For each model × policy × scheme, `recommend` chooses ε from FD-HVPs alone; the error measured at that ε against the exact HVP (never seen by the choice) against its prediction, and the chosen η against the best of a 4-per-decade grid (eta_star_over_best). \(saturated) of \(c.rows.count) configurations were flagged saturated (no error model could be fitted): their ε is the larger step of the steadiest pair of neighbours (for Richardson, that pair's midpoint) and their predicted error the larger of the reference-free floor estimate and the bias probe (docs/NUMERICS.md §4), plotted with the others.")
        sec.plots.append(predictedVsMeasured(c.rows, file: "check.csv", pred: "predicted_err", meas: "measured_err",
                                             title: "Predicted against measured error at the recommended ε"))
        let cols = ["model", "n", "param", "compute", "grad", "scheme", "eta_star", "predicted_err", "measured_err", "pred_over_meas",
                    "eta_star_over_best", "feasible"].filter { c.header.contains($0) }
        sec.tables.append(("check.csv", cols, c.rows.map { row in cols.map { row[$0]! } }))
        return Content(title: "recommend-check: the per-model FD step against the exact HVP", intro: "docs/NUMERICS.md §4, per-model estimate without a reference.",
                       sections: [sec], files: ["check.csv", "grid.csv"])
    }

    static func blockDiagonal(_ r: Reader) throws -> Content {
        let s = try r.table("summary.csv").rows
        var sec = Section(heading: "Approximation error against model size", text: "Mean over probes of ‖(H − Ĥ)v‖/‖Hv‖ and cos(Ĥv, Hv), per approximation and partition (colour), every model and seed; a relative error of 1 means the approximation is as wrong as returning zero.")
        for (metric, label) in [("approx_rel_err", "approx_rel_err (dimensionless)"), ("approx_cos", "approx_cos (dimensionless)")] {
            for fam in distinct(s, "family") {
                let sel = s.filter { $0["family"] == fam }
                var f = Figure(title: "\(fam): \(metric)", xLabel: "parameters", yLabel: label, logX: true)
                for (i, key) in Set(sel.map { "\($0["approximation"]!) \($0["partition"]!)" }).sorted().enumerated() {
                    let ss = sel.filter { "\($0["approximation"]!) \($0["partition"]!)" == key }
                    f.series.append(.init(label: key.trimmingCharacters(in: .whitespaces), x: ss.map { num($0, "parameters") }, y: ss.map { num($0, metric) },
                                          color: color(i), line: false))
                }
                sec.plots.append(Plot(figure: f, python: "plot_approx(\(py(fam)), \(py(metric)))"))
            }
        }
        var tab = Section(heading: "Summary", text: "Means over models and seeds per family, approximation and partition; order_one is the share of rows with approx_rel_err ≥ 0.5.")
        let agg = try r.aggregate("summary.csv", by: ["family", "approximation", "partition"])
        tab.tables.append(("summary.csv by family, approximation and partition", agg.header, agg.rows))
        return Content(title: "block-diagonal: curvature approximations against the exact Hessian", intro: "NUMERICS.md §8 metrics at initialization.",
                       sections: [sec, tab], files: ["summary.csv"])
    }

    static func scaling(_ r: Reader) throws -> Content {
        let t = try r.table("timings.csv"), pr = try r.table("predictions.csv"), ex = try r.table("extrapolation.csv")
        let quantities = t.header.filter { $0.hasPrefix("time_") }
        var sec = Section(heading: "Time against work", text: "Medians per configuration against the quantity's FLOPs counted from the architecture (markers: measured; dashed: the cost model t = G + c_f·F_o + c_b·B + P + c_0 fitted per family on the sizes up to fit_max_parameters, predicting the larger, held-out ones; G is the gradient's BLAS products timed at their shapes, P the O(n) passes around the model's gradients timed alone, both at coefficient 1 fixed beforehand, F_o the other FLOPs, B the bytes).")
        for fam in distinct(pr.rows, "family") {
            for sh in distinct(pr.rows.filter { $0["family"] == fam }, "shards") {
                let sel = pr.rows.filter { $0["family"] == fam && $0["shards"] == sh }
                var f = Figure(title: "\(fam), shards = \(sh)", xLabel: "FLOPs of the quantity", yLabel: "time (s)", logX: true, logY: true)
                // Shaded: the FLOPs the fit saw and those it predicted and was checked on.
                for (k, (role, label)) in [("fit", "fitted range"), ("held-out", "validated range (held out)")].enumerated() {
                    let xs = sel.filter { $0["role"] == role }.map { num($0, "flops") }.filter(\.isFinite)
                    if let lo = xs.min(), let hi = xs.max() { f.bands.append(.init(lo: lo, hi: hi, color: k == 0 ? "#999999" : color(2), label: label)) }
                }
                let targets = ex.rows.filter { $0["family"] == fam && $0["shards"] == sh && $0["unit"] == "s" }
                for (i, q) in quantities.enumerated() {
                    let rows = sel.filter { $0["quantity"] == q }
                    f.series.append(.init(label: q, x: rows.map { num($0, "flops") }, y: rows.map { num($0, "measured_s") }, color: color(i), line: false))
                    f.series.append(.init(label: "", x: rows.map { num($0, "flops") }, y: rows.map { num($0, "predicted_s") }, color: color(i), dash: "4,3", markers: false))
                    let far = targets.filter { $0["quantity"] == q }
                    if !far.isEmpty {
                        f.series.append(.init(label: "\(q), extrapolated", x: far.map { num($0, "flops") }, y: far.map { num($0, "value") }, color: color(i),
                                              dash: "1,3", markers: true))
                    }
                }
                sec.plots.append(Plot(figure: f, python: "plot_times('\(fam)', \(sh))"))
            }
        }
        let gm = try r.table("gemm.csv")
        var gs = Section(heading: "BLAS throughput by product shape", text: "gemm.csv: each product of each model's gradient and exact HVP (and of the extrapolation targets' gradients) timed alone at its shape, in GFLOP/s against its FLOPs. Where throughput still rises at the largest shapes, time per FLOP keeps falling with width, and a cost per FLOP fitted on small models over-predicts large ones; the cost model uses these seconds instead.")
        var g = Figure(title: "Product throughput", xLabel: "FLOPs of one product", yLabel: "GFLOP/s", logX: true, logY: false)
        let fam = { (m: String) in String(m.prefix { $0 != ":" }) }
        for (i, f0) in distinct(gm.rows.map { ["family": fam($0["model"]!)] }, "family").enumerated() {
            let rows = gm.rows.filter { fam($0["model"]!) == f0 }
            g.series.append(.init(label: f0, x: rows.map { 2 * num($0, "m") * num($0, "k") * num($0, "n") }, y: rows.map { num($0, "gflop_s") },
                                  color: color(i), line: false))
        }
        gs.plots.append(Plot(figure: g, python: "plot_gemm()"))
        var held = Section(heading: "Held-out predictions", text: "Predicted over measured time on the sizes above fit_max_parameters, which the fit did not see.")
        let ho = pr.rows.filter { $0["role"] == "held-out" }
        let cols = ["model", "parameters", "shards", "quantity", "measured_s", "predicted_s", "pred_over_meas"]
        held.tables.append(("predictions.csv, held-out rows", cols, ho.map { row in cols.map { row[$0]! } }))
        var mem = Section(heading: "Memory", text: "Peak resident memory of each configuration's Lanczos phase above its starting RSS, against the memory model of the harness's representation.")
        var f = Figure(title: "Lanczos phase memory", xLabel: "parameters", yLabel: "bytes", logX: true, logY: true)
        for (i, sh) in distinct(t.rows, "shards").enumerated() {
            let sel = t.rows.filter { $0["shards"] == sh }
            f.series.append(.init(label: "measured, \(sh) shards", x: sel.map { num($0, "parameters") }, y: sel.map { num($0, "rss_delta_bytes") }, color: color(i), line: false))
            f.series.append(.init(label: "model, \(sh) shards", x: sel.map { num($0, "parameters") }, y: sel.map { num($0, "mem_model_bytes") }, color: color(i), dash: "4,3", markers: false))
        }
        mem.plots.append(Plot(figure: f, python: "plot_memory()"))
        // Each round's seconds over the median of its configuration and quantity: how far
        // one timing strays (a slow phase of the machine), which the median over rounds absorbs.
        var spread: Section? = nil
        if let rd = try? r.table("rounds.csv") {
            var sp = Section(heading: "Timing spread over rounds", text: "rounds.csv: every configuration's quantities are timed once per round, the rounds spread over the whole run; each point is one round's seconds over the median of its rounds (the value in timings.csv), against the configuration's parameters.")
            var f = Figure(title: "Rounds against their median", xLabel: "parameters", yLabel: "seconds / median over rounds", logX: true, logY: false)
            func configuration(_ row: [String: String]) -> String { "\(row["model"]!)|\(row["shards"]!)" }
            let params = Dictionary(t.rows.map { (configuration($0), num($0, "parameters")) }, uniquingKeysWith: { a, _ in a })
            var med: [String: [Double]] = [:]
            for row in rd.rows { med[configuration(row) + "|" + row["quantity"]!, default: []].append(num(row, "seconds")) }
            for (i, k) in distinct(rd.rows, "round").enumerated() {
                let rows = rd.rows.filter { $0["round"] == k && params[configuration($0)] != nil }
                f.series.append(.init(label: "round \(k)", x: rows.map { params[configuration($0)]! },
                                      y: rows.map { num($0, "seconds") / median(med[configuration($0) + "|" + $0["quantity"]!]!) },
                                      color: color(i), line: false))
            }
            sp.plots.append(Plot(figure: f, python: "plot_rounds()"))
            spread = sp
        }
        var tab = Section(heading: "Cost model, exponents and extrapolation", text: "costmodel.csv: the fitted coefficients and the range they were fitted on. fits.csv: the exponent of time against FLOPs in the compute-bound range. extrapolation.csv: times of architectures never run, from the cost model of their family, and the memory model at 10⁹–10¹¹ parameters; every row states its assumptions.")
        let cm = try r.table("costmodel.csv"), ft = try r.table("fits.csv")
        tab.tables.append(("costmodel.csv", cm.header, cm.rows.map { row in cm.header.map { row[$0]! } }))
        tab.tables.append(("fits.csv", ft.header, ft.rows.map { row in ft.header.map { row[$0]! } }))
        tab.tables.append(("extrapolation.csv", ex.header, ex.rows.map { row in ex.header.map { row[$0]! } }))
        return Content(title: "scaling: runtime and memory", intro: "Cost of gradients, HVPs and Lanczos steps against work counted from the architecture (NUMERICS.md §9).",
                       sections: [sec, gs, held] + (spread.map { [$0] } ?? []) + [mem, tab],
                       files: ["timings.csv"] + (spread == nil ? [] : ["rounds.csv"]) + ["gemm.csv", "costmodel.csv", "predictions.csv", "fits.csv", "extrapolation.csv"])
    }
}
