import Foundation
import Models

/// Reports of single runs: the output folders of `slq`, `hvp`, `eigen`, `recommend`
/// and `trace` (a manifest without a study; the command it names picks the report).
extension ReportCommand {
    /// The report of the run whose manifest's command is `command`.
    static func runReport(command: String, _ r: Reader, manifest: [String: Any]) throws -> Content {
        switch command {
        case "slq": return try slqRun(r, manifest: manifest)
        case "hvp": return try hvpRun(r)
        case "eigen": return try eigenRun(r)
        case "recommend": return try recommendRun(r)
        case "trace": return try traceRun(r)
        default:
            throw HarnessError("no report for the output of '\(command)' (reports: study results of `run`, and the folders of slq, hvp, eigen, recommend, trace)")
        }
    }

    /// A one-row CSV as a (quantity, value) table; empty cells as NA.
    static func transposed(_ t: (header: [String], rows: [[String: String]]), caption: String) -> (caption: String, header: [String], rows: [[String]]) {
        let row = t.rows.first ?? [:]
        return (caption, ["quantity", "value"], t.header.map { [$0, (row[$0] ?? "").isEmpty ? "NA" : row[$0]!] })
    }

    static func has(_ r: Reader, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: r.dir.appendingPathComponent(name).path)
    }

    static func fmt(_ x: Double) -> String { TableCommand.fmt(x) }

    /// A histogram of `values` as density bars (area 1), 40 bins over their range; a
    /// non-finite value counts in the first bin.
    static func densityBars(_ values: [Double], bins: Int = 40) -> [Figure.Bar] {
        guard let lo = values.min(), let hi = values.max(), hi > lo else { return [] }
        let w = (hi - lo) / Double(bins)
        var counts = [Double](repeating: 0, count: bins)
        for l in values {
            let t = ((l - lo) / w).rounded(.down)
            counts[t.isFinite ? Int(min(max(t, 0), Double(bins - 1))) : 0] += 1
        }
        return counts.enumerated().map { .init(x0: lo + Double($0.offset) * w, x1: lo + Double($0.offset + 1) * w, height: $0.element / (Double(values.count) * w)) }
    }

    // MARK: slq

    static func slqRun(_ r: Reader, manifest: [String: Any]) throws -> Content {
        let summary = try r.table("summary.csv"), lz = try r.table("lanczos.csv").rows
        let nodes = try r.table("nodes.csv").rows, dens = try r.table("density.csv").rows
        let exact = has(r, "spectrum.csv") ? try r.table("spectrum.csv").rows.map { num($0, "eigenvalue") } : []
        let s = summary.rows.first ?? [:]
        let what = s["operator"].map { "operator \($0)" } ?? "model \(s["model"] ?? "?") under \(short(s["policy"] ?? ""))"
        let probes = distinct(nodes, "probe")

        var head = Section(heading: "Summary", text: "")
        let stepsDone = s["steps_done"] ?? "", steps = s["steps"] ?? ""
        if let b = s["breakdown"], !b.isEmpty {
            head.text = "Lanczos broke down (\(b)) after \(stepsDone) of \(steps) steps: the quantities below are from the steps before it."
        } else {
            head.text = "Every probe ran \(stepsDone) of \(steps) steps. w1_scaled, ks and ritz_err_top_1 compare with the exact spectrum where it is known (docs/NUMERICS.md §6–7)."
        }
        head.tables.append(transposed(summary, caption: "summary.csv"))

        var densSec = Section(heading: "Spectral density", text: "The SLQ density of density.csv (Gaussian-broadened Gauss quadrature over the probes)"
                              + (exact.isEmpty ? "; no exact spectrum is known for this run (models of more than 3000 parameters, or without an exact HVP)." : " against the histogram of the exact eigenvalues (spectrum.csv)."))
        var f = Figure(title: "SLQ density · \(what)", xLabel: "eigenvalue", yLabel: "density (per unit eigenvalue)")
        let sigma = s["sigma"].flatMap(Double.init) ?? ((manifest["parameters"] as? [String: Any])?["sigma"] as? String).flatMap(Double.init)
        if !exact.isEmpty { f.bars = densityBars(exact); f.barLabel = "exact eigenvalues" }
        f.series.append(.init(label: "SLQ", x: dens.map { num($0, "x") }, y: dens.map { num($0, "density") }, color: color(0), markers: false))
        f.captionNote = "SLQ from \(nodes.count) Gauss nodes over \(probes.count) probe\(probes.count == 1 ? "" : "s")"
            + (sigma.map { ", Gaussian kernel of width \(String(format: "%.3g", $0))" } ?? "")
            + (exact.isEmpty ? "" : "; histogram of \(exact.count) exact eigenvalues")
        densSec.plots.append(Plot(figure: f, python: "plot_slq_density()"))

        var ritz = Section(heading: "Ritz values", text: "Each probe's Ritz values (the Gauss nodes) against their residual estimates β_k|s_kj|: a symmetric operator has an eigenvalue within that distance of each (in exact arithmetic). Converged Ritz values sit at the bottom; the dash-dotted lines mark the exact extreme eigenvalues where known. Residuals of exactly 0 cannot be drawn on the log axis.")
        var g = Figure(title: "Ritz values and residuals · \(what)", xLabel: "Ritz value", yLabel: "residual_estimate (eigenvalue units)", logY: true)
        for (i, p) in probes.enumerated() {
            let sel = nodes.filter { $0["probe"] == p }
            g.series.append(.init(label: "probe \(p)", x: sel.map { num($0, "node") }, y: sel.map { num($0, "residual_estimate") }, color: color(i), line: false))
        }
        if let lo = exact.min(), let hi = exact.max() {
            g.vlines.append(.init(x: lo, color: "#555555", label: "exact λ_min, λ_max"))
            g.vlines.append(.init(x: hi, color: "#555555", label: "exact λ_min, λ_max"))
        }
        ritz.plots.append(Plot(figure: g, python: "plot_slq_ritz()"))
        var ext: [[String]] = []
        for p in probes {
            let sel = nodes.filter { $0["probe"] == p }
            guard let a = sel.min(by: { num($0, "node") < num($1, "node") }), let b = sel.max(by: { num($0, "node") < num($1, "node") }) else { continue }
            var row = [p, fmt(num(a, "node")), a["residual_estimate"].flatMap(Double.init).map(fmt) ?? "NA",
                       fmt(num(b, "node")), b["residual_estimate"].flatMap(Double.init).map(fmt) ?? "NA"]
            if let lo = exact.min(), let hi = exact.max() { row += [fmt(abs(num(a, "node") - lo)), fmt(abs(num(b, "node") - hi))] }
            ext.append(row)
        }
        ritz.tables.append(("Extreme Ritz values per probe", ["probe", "smallest", "its residual", "largest", "its residual"]
                            + (exact.isEmpty ? [] : ["error to exact λ_min", "error to exact λ_max"]), ext))

        var orth = Section(heading: "Loss of orthogonality", text: "orth_loss = max |q_iᵀq_j| over earlier Lanczos vectors at each step, per probe (solid), and orth_loss_fro = ‖QᵀQ − I‖_F (dashed); near 1 the basis has lost orthogonality and ghost eigenvalues appear (docs/NUMERICS.md §6). Steps without a measurement are not drawn.")
        var h = Figure(title: "Orthogonality · \(what)", xLabel: "Lanczos step", yLabel: "orthogonality loss (dimensionless)", logY: true)
        for (i, p) in distinct(lz, "probe").enumerated() {
            let sel = lz.filter { $0["probe"] == p }
            h.series.append(.init(label: "orth_loss, probe \(p)", x: sel.map { num($0, "step") }, y: sel.map { num($0, "orth_loss") }, color: color(i), markers: false))
            h.series.append(.init(label: "orth_loss_fro, probe \(p)", x: sel.map { num($0, "step") }, y: sel.map { num($0, "orth_loss_fro") }, color: color(i),
                                  dash: Figure.Dash.bias, markers: false))
        }
        orth.plots.append(Plot(figure: h, python: "plot_slq_orth()"))
        return Content(title: "slq: \(what)", intro: "A single stochastic Lanczos quadrature run (`hessian-harness slq`).",
                       sections: [head, densSec, ritz, orth],
                       files: ["summary.csv", "lanczos.csv", "nodes.csv", "density.csv"] + (exact.isEmpty ? [] : ["spectrum.csv"]))
    }

    // MARK: hvp

    static func hvpRun(_ r: Reader) throws -> Content {
        let summary = try r.table("summary.csv")
        let s = summary.rows.first ?? [:]
        let what = "\(s["model"] ?? "?") under \(short(s["policy"] ?? "")), \(s["scheme"] ?? "") ε \(s["eps"] ?? "")"
        var head = Section(heading: "Summary", text: "rel_err = ‖ĥ − Hv‖/‖Hv‖ and cos_align against the exact HVP of the `reference` format; swamped_fraction is the share of parameters whose perturbation rounds back to θ (docs/NUMERICS.md §3–5).")
        head.tables.append(transposed(summary, caption: "summary.csv"))
        var sections = [head]
        let files = ["summary.csv"]
        if has(r, "hv_exact.npy") {
            let hv = try DataFiles.readNPY(r.dir.appendingPathComponent("hv.npy").path).0
            let ex = try DataFiles.readNPY(r.dir.appendingPathComponent("hv_exact.npy").path).0
            guard hv.count == ex.count else { throw HarnessError("\(r.dir.path): hv.npy has \(hv.count) values, hv_exact.npy \(ex.count)") }
            var err = Section(heading: "Error by tensor", text: "The same error, per parameter tensor of model.json's layout: where in the model the FD-HVP is off. rel_err of a tensor is ‖ĥ_t − (Hv)_t‖/‖(Hv)_t‖ (NA where (Hv)_t = 0); share is its part of the total squared error.")
            var rows: [[String]] = []
            let total = zip(hv, ex).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            for t in try tensors(r, count: hv.count) {
                let a = Array(hv[t.range]), b = Array(ex[t.range])
                let d2 = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, n2 = b.reduce(0) { $0 + $1 * $1 }
                let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }, na = a.reduce(0) { $0 + $1 * $1 }
                rows.append([t.name, "\(t.range.count)", n2 > 0 ? fmt((d2 / n2).squareRoot()) : "NA",
                             na > 0 && n2 > 0 ? fmt(dot / (na * n2).squareRoot()) : "NA", total > 0 ? fmt(d2 / total) : "NA"])
            }
            err.tables.append(("hv.npy against hv_exact.npy by tensor", ["tensor", "count", "rel_err", "cos_align", "share"], rows))
            // At most 4000 points in the SVG: every k-th parameter.
            let step = max(1, (hv.count + 3999) / 4000)
            let idx = Array(stride(from: 0, to: hv.count, by: step))
            var f = Figure(title: "ĥ against Hv · \(what)", xLabel: "exact Hv (hv_exact.npy)", yLabel: "FD-HVP ĥ (hv.npy)")
            f.series.append(.init(label: "parameters", x: idx.map { ex[$0] }, y: idx.map { hv[$0] }, color: color(0), line: false))
            if let lo = ex.min(), let hi = ex.max() {
                f.series.append(.init(label: "y = x", x: [lo, hi], y: [lo, hi], color: "#555555", dash: "4,3", markers: false))
            }
            f.captionNote = "\(idx.count) of \(hv.count) parameters" + (step > 1 ? " (every \(step)th)" : "")
            err.plots.append(Plot(figure: f, python: "plot_hvp_scatter(\(step))"))
            sections.append(err)
        } else {
            sections[0].text += " This run has no reference (--reference none): no error is known."
        }
        return Content(title: "hvp: \(what)", intro: "A single Hessian-vector product against the exact HVP (`hessian-harness hvp`).",
                       sections: sections, files: files)
    }

    /// The tensors of model.json's layout (one "parameters" tensor without it).
    static func tensors(_ r: Reader, count: Int) throws -> [(name: String, range: Range<Int>)] {
        guard let d = FileManager.default.contents(atPath: r.dir.appendingPathComponent("model.json").path),
              let j = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any], let layout = j["layout"] as? [[String: Any]] else {
            return [("parameters", 0..<count)]
        }
        return try layout.map { t in
            guard let name = t["name"] as? String, let off = t["offset"] as? Int, let shape = t["shape"] as? [Int] else {
                throw HarnessError("\(r.dir.path)/model.json: a layout entry lacks name, offset or shape")
            }
            let n = shape.reduce(1, *)
            guard off >= 0, n >= 0, off + n <= count else { throw HarnessError("\(r.dir.path)/model.json: tensor '\(name)' lies outside the \(count) parameters") }
            return (name, off..<(off + n))
        }
    }

    // MARK: eigen

    static func eigenRun(_ r: Reader) throws -> Content {
        let t = try r.table("eigen.csv")
        let known = t.rows.contains { !($0["exact"] ?? "").isEmpty }
        var sec = Section(heading: "Extreme eigenpairs", text: "Ritz values of Lanczos with full reorthogonalization in fp64, each with its measured residual ‖Ay − θy‖ (error_bound: a symmetric operator has an eigenvalue within it)"
                          + (known ? " and the error to the nearest exact eigenvalue (abs_err)." : "; no exact spectrum is known for this run."))
        var f = Figure(title: "Ritz values by rank", xLabel: "rank (per end of the spectrum)", yLabel: "eigenvalue")
        var g = Figure(title: "Residuals and errors by rank", xLabel: "rank (per end of the spectrum)", yLabel: "eigenvalue units", logY: true)
        for (i, w) in distinct(t.rows, "which").enumerated() {
            let sel = t.rows.filter { $0["which"] == w }
            f.series.append(.init(label: "\(w): Ritz value", x: sel.map { num($0, "rank") }, y: sel.map { num($0, "ritz_value") }, color: color(i), line: false))
            g.series.append(.init(label: "\(w): error_bound", x: sel.map { num($0, "rank") }, y: sel.map { num($0, "error_bound") }, color: color(i)))
            g.series.append(.init(label: "\(w): residual_estimate", x: sel.map { num($0, "rank") }, y: sel.map { num($0, "residual_estimate") }, color: color(i), dash: Figure.Dash.noise))
            if known {
                f.series.append(.init(label: "\(w): exact", x: sel.map { num($0, "rank") }, y: sel.map { num($0, "exact") }, color: "#555555", dash: "4,3"))
                g.series.append(.init(label: "\(w): abs_err", x: sel.map { num($0, "rank") }, y: sel.map { num($0, "abs_err") }, color: color(i), dash: Figure.Dash.bias))
            }
        }
        sec.plots.append(Plot(figure: f, python: "plot_eigen()"))
        sec.plots.append(Plot(figure: g, python: "plot_eigen_residuals()"))
        sec.tables.append(("eigen.csv", t.header, t.rows.map { row in t.header.map { (row[$0] ?? "").isEmpty ? "NA" : row[$0]! } }))
        return Content(title: "eigen: extreme eigenpairs", intro: "A single `hessian-harness eigen` run.", sections: [sec], files: ["eigen.csv"])
    }

    // MARK: recommend

    static func recommendRun(_ r: Reader) throws -> Content {
        let rec = try r.table("recommend.csv"), grid = try r.table("grid.csv").rows
        let s = rec.rows.first ?? [:]
        let what = "\(s["model"] ?? "?") under \(short(s["policy"] ?? "")), \(s["scheme"] ?? "")"
        var sec = Section(heading: "The per-model step", text: "The fitted error model's prediction (pred_err) at every ε of the probing grid and the swamped fraction there; markers are the pairs the fit used. The chosen ε (dash-dotted), the band where the prediction meets the tolerance (shaded) and the tolerance (thin line) — docs/NUMERICS.md §4."
                          + (s["saturated"] == "1" ? " The FD-HVP is saturated on this model: no error model could be fitted and no prediction is made." : ""))
        var f = Figure(title: "Predicted error against ε · \(what)", xLabel: "ε (absolute step)", yLabel: "dimensionless", logX: true, logY: true)
        let eps = grid.map { num($0, "eps") }
        f.series.append(.init(label: "pred_err", x: eps, y: grid.map { num($0, "pred_err") }, color: color(0), markers: false))
        let used = grid.filter { $0["used"] == "1" }
        f.series.append(.init(label: "pred_err, pairs used by the fit", x: used.map { num($0, "eps") }, y: used.map { num($0, "pred_err") }, color: color(0), line: false))
        f.series.append(.init(label: "swamped_fraction", x: eps, y: grid.map { num($0, "swamped_fraction") }, color: color(1), dash: Figure.Dash.noise, markers: false))
        let tol = num(s, "tolerance")
        if tol.isFinite, let lo = eps.min(), let hi = eps.max() {
            f.series.append(.init(label: "tolerance", x: [lo, hi], y: [tol, tol], color: "#555555", dash: "4,3", markers: false, lineWidth: 0.9))
        }
        let e = num(s, "eps"), lo = num(s, "eps_lo"), hi = num(s, "eps_hi")
        if e.isFinite && e > 0 { f.vlines.append(.init(x: e, color: color(2), label: "chosen ε")) }
        if lo.isFinite && hi.isFinite && lo > 0 { f.bands.append(.init(lo: lo, hi: hi, color: color(2), label: "safe band")) }
        sec.plots.append(Plot(figure: f, python: "plot_recommend()"))
        sec.tables.append(transposed(rec, caption: "recommend.csv"))
        return Content(title: "recommend: \(what)", intro: "The FD step chosen for one model from FD-HVPs alone (`hessian-harness recommend`).",
                       sections: [sec], files: ["recommend.csv", "grid.csv"])
    }

    // MARK: trace

    static func traceRun(_ r: Reader) throws -> Content {
        let t = try r.table("trace.csv")
        var sec = Section(heading: "Trace estimates", text: "Hutchinson and Hutch++ on the same budget of operator applications, each with its standard error, and the exact trace where known.")
        sec.tables.append(("trace.csv", t.header, t.rows.map { row in t.header.map { (row[$0] ?? "").isEmpty ? "NA" : row[$0]! } }))
        return Content(title: "trace: stochastic trace estimates", intro: "A single `hessian-harness trace` run.", sections: [sec], files: ["trace.csv"])
    }

    /// The notebook's functions that redraw the single-run figures.
    static let runPrelude = """

    def plot_slq_density():
        d = CSV["density.csv"]
        fig, ax = plt.subplots(figsize=(7, 4))
        if "spectrum.csv" in CSV:
            ax.hist(CSV["spectrum.csv"].eigenvalue, bins=40, density=True, color="#cccccc", label="exact eigenvalues")
        ax.plot(d.x, d.density, color=COLORS[0], label="SLQ")
        ax.set_xlabel("eigenvalue"); ax.set_ylabel("density (per unit eigenvalue)"); legend(ax)
        return fig

    def plot_slq_ritz():
        n = CSV["nodes.csv"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (p, s) in enumerate(n.groupby("probe", sort=False)):
            ax.plot(s.node, s.residual_estimate, "o", ms=3, color=COLORS[i % len(COLORS)], label=f"probe {p}")
        if "spectrum.csv" in CSV:
            for x in (CSV["spectrum.csv"].eigenvalue.min(), CSV["spectrum.csv"].eigenvalue.max()):
                ax.axvline(x, color="#555555", ls="-.", label="exact λ_min, λ_max")
        ax.set_yscale("log"); ax.set_xlabel("Ritz value"); ax.set_ylabel("residual_estimate (eigenvalue units)"); legend(ax)
        return fig

    def plot_slq_orth():
        lz = CSV["lanczos.csv"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (p, s) in enumerate(lz.groupby("probe", sort=False)):
            c = COLORS[i % len(COLORS)]
            ax.plot(s.step, s.orth_loss, "-", color=c, label=f"orth_loss, probe {p}")
            ax.plot(s.step, s.orth_loss_fro, "--", color=c, label=f"orth_loss_fro, probe {p}")
        ax.set_yscale("log"); ax.set_xlabel("Lanczos step"); ax.set_ylabel("orthogonality loss (dimensionless)"); legend(ax)
        return fig

    def plot_hvp_scatter(stride):
        hv, ex = np.load(f"{RESULTS}/hv.npy")[::stride], np.load(f"{RESULTS}/hv_exact.npy")[::stride]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(ex, hv, "o", ms=2, color=COLORS[0], label="parameters")
        ax.plot([ex.min(), ex.max()], [ex.min(), ex.max()], "--", color="#555555", label="y = x")
        ax.set_xlabel("exact Hv (hv_exact.npy)"); ax.set_ylabel("FD-HVP ĥ (hv.npy)"); legend(ax)
        return fig

    def plot_eigen():
        e = CSV["eigen.csv"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (w, s) in enumerate(e.groupby("which", sort=False)):
            ax.plot(s["rank"], s.ritz_value, "o", color=COLORS[i % len(COLORS)], label=f"{w}: Ritz value")
            if s.exact.notna().any():
                ax.plot(s["rank"], s.exact, "--", color="#555555", label=f"{w}: exact")
        ax.set_xlabel("rank (per end of the spectrum)"); ax.set_ylabel("eigenvalue"); legend(ax)
        return fig

    def plot_eigen_residuals():
        e = CSV["eigen.csv"]
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (w, s) in enumerate(e.groupby("which", sort=False)):
            c = COLORS[i % len(COLORS)]
            ax.plot(s["rank"], s.error_bound, "o-", color=c, label=f"{w}: error_bound")
            ax.plot(s["rank"], s.residual_estimate, ":", color=c, label=f"{w}: residual_estimate")
            if s.abs_err.notna().any():
                ax.plot(s["rank"], s.abs_err, "--", color=c, label=f"{w}: abs_err")
        ax.set_yscale("log"); ax.set_xlabel("rank (per end of the spectrum)"); ax.set_ylabel("eigenvalue units"); legend(ax)
        return fig

    def plot_recommend():
        g, r = CSV["grid.csv"], CSV["recommend.csv"].iloc[0]
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(g.eps, g.pred_err, "-", color=COLORS[0], label="pred_err")
        u = g[g.used == 1]
        ax.plot(u.eps, u.pred_err, "o", color=COLORS[0], label="pred_err, pairs used by the fit")
        ax.plot(g.eps, g.swamped_fraction, ":", color=COLORS[1], label="swamped_fraction")
        ax.axhline(r.tolerance, color="#555555", ls="--", lw=0.9, label="tolerance")
        if np.isfinite(r.eps) and r.eps > 0:
            ax.axvline(r.eps, color=COLORS[2], ls="-.", label="chosen ε")
        if np.isfinite(r.eps_lo) and np.isfinite(r.eps_hi) and r.eps_lo > 0:
            ax.axvspan(r.eps_lo, r.eps_hi, color=COLORS[2], alpha=0.15, label="safe band")
        ax.set_xscale("log"); ax.set_yscale("log"); ax.set_xlabel("ε (absolute step)"); ax.set_ylabel("dimensionless"); legend(ax)
        return fig
    """
}
