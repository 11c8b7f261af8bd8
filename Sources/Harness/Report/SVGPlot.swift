import Foundation

/// A small vector-figure writer for the reports: line/marker series on linear or
/// log axes, shaded x-bands, vertical markers, histogram bars, a legend and labelled
/// axes, as a self-contained SVG. Written by hand: the figures are simple, must not
/// need Python or a network, and must be checkable (every data point is one
/// `<circle class="pt">`).
struct Figure {
    struct Series {
        var label: String
        var x: [Double]
        var y: [Double]
        var color: String
        var dash: String? = nil
        var markers = true
        var line = true
        var lineWidth = 1.5
    }
    struct Band { var lo: Double; var hi: Double; var color: String; var label: String }
    struct VLine { var x: Double; var color: String; var label: String }
    /// Line styles that must stay distinct within one figure (fd-bias draws all of
    /// them): bias dashed, noise dotted, the fitted model long-dashed and thin, ε*
    /// vertical dash-dot.
    enum Dash {
        static let bias = "6,3", noise = "1,3", fit = "10,3", vline = "8,3,2,3"
    }
    struct Bar { var x0: Double; var x1: Double; var height: Double }

    var title: String
    var xLabel: String
    var yLabel: String
    var logX = false
    var logY = false
    var series: [Series] = []
    var bands: [Band] = []
    var vlines: [VLine] = []
    var bars: [Bar] = []
    var barColor = "#cccccc"
    var barLabel = ""
    var width = 560.0, height = 360.0

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// Number of data points drawn (markers).
    /// What the caption says the figure shows; nil: its number of data points, or of curves.
    var captionNote: String? = nil
    var caption: String {
        if let captionNote { return captionNote }
        let n = pointCount
        if n > 0 { return "\(n) points" }
        let curves = series.filter { $0.line && !$0.label.isEmpty }.count
        return "\(curves) curve\(curves == 1 ? "" : "s")"
    }
    var pointCount: Int { series.filter(\.markers).map { zip($0.x, $0.y).filter { usable($0.0, logX) && usable($0.1, logY) }.count }.reduce(0, +) }

    func usable(_ v: Double, _ log: Bool) -> Bool { v.isFinite && (!log || v > 0) }

    func range(_ vals: [Double], log: Bool) -> (Double, Double) {
        let v = vals.filter { usable($0, log) }
        guard var lo = v.min(), var hi = v.max() else { return log ? (1, 10) : (0, 1) }
        if log {
            // Decades within fp64's normal range: 1e-323 and 1e309 would round to 0 and ∞.
            lo = Foundation.pow(10, max(Foundation.floor(log10(lo)), -307)); hi = Foundation.pow(10, min(Foundation.ceil(log10(hi)), 308))
            if lo >= hi { hi = lo * 10 }
        } else {
            // A span beyond fp64 (−1e308 … 1e308) would make every tick inf.
            if !(hi - lo).isFinite { lo = max(lo, -8e307); hi = min(hi, 8e307) }
            if lo == hi { lo -= 0.5; hi += 0.5 }
            let pad = (hi - lo) * 0.05
            lo -= pad; hi += pad
        }
        return (lo, hi)
    }

    func ticks(_ lo: Double, _ hi: Double, log: Bool) -> [Double] {
        if log {
            let a = Int(Foundation.floor(log10(lo) + 1e-9)), b = Int(Foundation.ceil(log10(hi) - 1e-9))
            let step = max(1, (b - a + 7) / 8)
            return stride(from: a, through: b, by: step).map { Foundation.pow(10, Double($0)) }
        }
        let raw = (hi - lo) / 6
        let mag = Foundation.pow(10, Foundation.floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = Foundation.ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    func tickLabel(_ v: Double, log: Bool) -> String {
        if log {
            let e = Int(log10(v).rounded())
            return "10<tspan dy=\"-5\" font-size=\"9\">\(e < 0 ? "−\(-e)" : "\(e)")</tspan>"
        }
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e4 || a < 1e-3 { return String(format: "%.0e", v) }
        var s = String(format: "%.4g", v)
        if s.hasPrefix("-") { s = "−" + s.dropFirst() }
        return s
    }

    func svg() -> String {
        let legendW = 190.0
        let ml = 64.0, mr = 12.0 + legendW, mt = 34.0, mb = 46.0
        let pw = width - ml - mr, ph = height - mt - mb
        var xs = series.flatMap(\.x) + bands.flatMap { [$0.lo, $0.hi] } + vlines.map(\.x) + bars.flatMap { [$0.x0, $0.x1] }
        if xs.isEmpty { xs = [0, 1] }
        var ys = series.flatMap(\.y) + bars.map(\.height)
        if !bars.isEmpty { ys.append(0) }
        let (x0, x1) = range(xs, log: logX), (y0, y1) = range(ys, log: logY)
        func sx(_ v: Double) -> Double {
            let t = logX ? (log10(v) - log10(x0)) / (log10(x1) - log10(x0)) : (v - x0) / (x1 - x0)
            return ml + min(max(t, -0.02), 1.02) * pw
        }
        func sy(_ v: Double) -> Double {
            let t = logY ? (log10(v) - log10(y0)) / (log10(y1) - log10(y0)) : (v - y0) / (y1 - y0)
            return mt + ph - min(max(t, -0.02), 1.02) * ph
        }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var o = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(f(width)) \(f(height))\" width=\"\(f(width))\" height=\"\(f(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n"
        o += "<title>\(Self.esc(title))</title>\n"
        o += "<rect x=\"0\" y=\"0\" width=\"\(f(width))\" height=\"\(f(height))\" fill=\"white\"/>\n"
        // Title: up to two lines (split at the first " · "), left-aligned so long policies are never cut.
        let parts = title.components(separatedBy: " · ")
        let lines = parts.count > 1 ? [parts[0], parts.dropFirst().joined(separator: " · ")] : [title]
        for (i, l) in lines.enumerated() {
            o += "<text x=\"6\" y=\"\(12 + 12 * i)\" font-size=\"\(i == 0 ? 11 : 9)\" font-weight=\"\(i == 0 ? "bold" : "normal")\">\(Self.esc(l))</text>\n"
        }
        o += "<defs><clipPath id=\"plot\"><rect x=\"\(f(ml))\" y=\"\(f(mt))\" width=\"\(f(pw))\" height=\"\(f(ph))\"/></clipPath></defs>\n"
        // Grid and ticks.
        for t in ticks(x0, x1, log: logX) where t >= x0 * (1 - 1e-12) && t <= x1 * (1 + 1e-12) || !logX && t >= x0 && t <= x1 {
            let x = sx(t)
            o += "<line x1=\"\(f(x))\" y1=\"\(f(mt))\" x2=\"\(f(x))\" y2=\"\(f(mt + ph))\" stroke=\"#e5e5e5\"/>"
            o += "<text x=\"\(f(x))\" y=\"\(f(mt + ph + 15))\" text-anchor=\"middle\">\(tickLabel(t, log: logX))</text>\n"
        }
        for t in ticks(y0, y1, log: logY) where t >= y0 * (1 - 1e-12) && t <= y1 * (1 + 1e-12) || !logY && t >= y0 && t <= y1 {
            let y = sy(t)
            o += "<line x1=\"\(f(ml))\" y1=\"\(f(y))\" x2=\"\(f(ml + pw))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>"
            o += "<text x=\"\(f(ml - 5))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(tickLabel(t, log: logY))</text>\n"
        }
        o += "<g clip-path=\"url(#plot)\">\n"
        for b in bands where usable(b.lo, logX) && usable(b.hi, logX) {
            o += "<rect class=\"band\" x=\"\(f(sx(b.lo)))\" y=\"\(f(mt))\" width=\"\(f(max(sx(b.hi) - sx(b.lo), 0.5)))\" height=\"\(f(ph))\" fill=\"\(b.color)\" fill-opacity=\"0.15\"/>\n"
        }
        for b in bars where usable(b.x0, logX) && usable(b.x1, logX) {
            let top = sy(b.height), base = sy(logY ? y0 : max(y0, 0))
            o += "<rect class=\"bar\" x=\"\(f(sx(b.x0)))\" y=\"\(f(top))\" width=\"\(f(max(sx(b.x1) - sx(b.x0), 0.5)))\" height=\"\(f(max(base - top, 0)))\" fill=\"\(barColor)\"/>\n"
        }
        for v in vlines where usable(v.x, logX) {
            o += "<line class=\"vline\" x1=\"\(f(sx(v.x)))\" y1=\"\(f(mt))\" x2=\"\(f(sx(v.x)))\" y2=\"\(f(mt + ph))\" stroke=\"\(v.color)\" stroke-dasharray=\"\(Dash.vline)\"/>\n"
        }
        for s in series {
            let pts = zip(s.x, s.y).filter { usable($0.0, logX) && usable($0.1, logY) }
            if s.line && pts.count > 1 {
                let d = pts.map { "\(f(sx($0.0))),\(f(sy($0.1)))" }.joined(separator: " ")
                o += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(f(s.lineWidth))\"\(s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") points=\"\(d)\"/>\n"
            }
            if s.markers {
                for (x, y) in pts { o += "<circle class=\"pt\" cx=\"\(f(sx(x)))\" cy=\"\(f(sy(y)))\" r=\"2.2\" fill=\"\(s.color)\"/>" }
                o += "\n"
            }
        }
        o += "</g>\n"
        o += "<rect x=\"\(f(ml))\" y=\"\(f(mt))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        o += "<text x=\"\(f(ml + pw / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(Self.esc(xLabel))</text>\n"
        o += "<text transform=\"translate(14 \(f(mt + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.esc(yLabel))</text>\n"
        // Legend.
        var ly = mt + 6
        let lx = ml + pw + 14
        // Kinds of legend symbol: a line (with its dash), a shaded box, a marker (marker-only series).
        enum Symbol { case line, box, marker }
        var entries: [(String, String, String?, Symbol, Double)] = series.map { ($0.label, $0.color, $0.dash, $0.line ? .line : .marker, $0.lineWidth) }
        entries += bands.map { ($0.label, $0.color, nil, .box, 1.5) }
        entries += vlines.map { ($0.label, $0.color, Dash.vline, .line, 1.5) }
        if !bars.isEmpty { entries.append((barLabel, barColor, nil, .box, 1.5)) }
        var seen = Set<String>()
        for (label, color, dash, symbol, lw) in entries where !label.isEmpty && seen.insert(label + color).inserted {
            if ly > mt + ph - 6 { o += "<text x=\"\(f(lx))\" y=\"\(f(ly + 4))\">…</text>\n"; break }
            // The legend's marker is not a data point: no class "pt".
            if symbol == .marker { o += "<circle cx=\"\(f(lx + 9))\" cy=\"\(f(ly))\" r=\"2.6\" fill=\"\(color)\"/>" }
            else if symbol == .box { o += "<rect x=\"\(f(lx))\" y=\"\(f(ly - 5))\" width=\"18\" height=\"9\" fill=\"\(color)\" fill-opacity=\"0.35\"/>" }
            else { o += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 18))\" y2=\"\(f(ly))\" stroke=\"\(color)\" stroke-width=\"\(f(lw))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>" }
            o += "<text x=\"\(f(lx + 23))\" y=\"\(f(ly + 4))\" font-size=\"10\">\(Self.esc(String(label.prefix(30))))</text>\n"
            ly += 14
        }
        o += "</svg>\n"
        return o
    }
}
