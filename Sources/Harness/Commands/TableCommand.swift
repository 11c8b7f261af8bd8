import Foundation
import CSV

/// `hessian-harness table CSV [--by COLUMNS] [--columns COLUMNS] [--latex [--standalone]|--markdown]`:
/// an aggregated table from any tidy results CSV.
///
/// Rows are grouped by the `--by` columns (in order of first appearance); `n` counts
/// each group's rows. Every other column is reduced over the group, and how is part
/// of the table (a note under it says which columns got which mean):
/// - a column that is constant within every group shows that value (never a mean);
/// - identifier columns (`seed`, `replicate`, `probe`, `step`, …) are never averaged:
///   left out, and named in the note, when they vary within a group;
/// - scales and ratios (ε, errors, fitted constants, times, bytes, `u`, ratios; see
///   ``isScale(_:)``) get the geometric mean of their positive values — the mean of
///   ε over 1e-8…1 is not 0.5 — and other numbers the arithmetic mean; both skip
///   non-finite values as pandas does (a group whose values are all non-finite
///   shows its first one, e.g. `nan`) and empty cells;
/// - an empty cell, or a group with no value, is `NA`;
/// - text that varies within a group is left out, and named in the note.
/// Without `--by`, the rows are printed as they are (empty cells as `NA`). Numbers are
/// shown with 4 significant digits. `--columns` picks and orders the output columns.
public enum TableCommand {
    public enum Style: String { case markdown, latex }

    /// An aggregated table: header, formatted rows, whether each column holds numbers
    /// (right-aligned), and the note on how the columns were reduced.
    public struct Table {
        public var header: [String]
        public var rows: [[String]]
        public var numeric: [Bool]
        public var note: String
    }

    public static func run(path: String, by: [String], columns: [String] = [], style: Style, standalone: Bool = false) throws -> String {
        let t = try table(path: path, by: by, columns: columns)
        switch style {
        case .markdown: return markdown(t)
        case .latex: return latex(t, caption: (path as NSString).lastPathComponent + (by.isEmpty ? "" : " by " + by.joined(separator: ", ")),
                                  standalone: standalone)
        }
    }

    /// The aggregated table (header, formatted rows) that `run` prints.
    public static func aggregate(path: String, by: [String]) throws -> (header: [String], rows: [[String]]) {
        let t = try table(path: path, by: by, columns: [])
        return (t.header, t.rows)
    }

    /// Columns that identify a row (a draw, a step) rather than measure something.
    static let identifiers: Set<String> = ["seed", "replicate", "probe", "step", "rank", "index", "trial", "repeat", "round", "node", "unit"]

    /// Scales and ratios, whose mean over a group is geometric: ε and step sizes, errors
    /// and relative quantities, fitted constants, times, bytes, unit roundoffs, ratios.
    public static func isScale(_ name: String) -> Bool {
        let n = name.lowercased()
        if ["u", "tolerance", "fit_a", "fit_b", "w1", "w1_scaled"].contains(n) { return true }
        for p in ["eps", "err", "rel_err", "time_", "noise_", "bias_", "orth_loss", "ratio", "kappa", "cond"] where n.hasPrefix(p) { return true }
        for q in ["_err", "_rel", "_s", "_bytes", "_ratio", "_eps", "_std"] where n.hasSuffix(q) { return true }
        return n.contains("_over_") || n.contains("_err_") || n.contains("eps_")
    }

    public static func table(path: String, by: [String], columns: [String]) throws -> Table {
        let (header, rows) = try CSVTable.readRows(path: path)
        guard !rows.isEmpty else { throw HarnessError("\(path): no data rows") }
        for c in by where !header.contains(c) {
            throw HarnessError("--by column '\(c)' is not in \(path) (columns: \(header.joined(separator: ", ")))")
        }
        for (opt, list) in [("--by", by), ("--columns", columns)] {
            var seen = Set<String>()
            for c in list where !seen.insert(c).inserted { throw HarnessError("\(opt) names '\(c)' twice") }
        }
        let keyIdx = by.map { header.firstIndex(of: $0)! }
        // Numeric: every non-empty cell a number, and at least one.
        func isNumeric(_ i: Int) -> Bool {
            var any = false
            for r in rows where !r[i].isEmpty { guard Double(r[i]) != nil else { return false }; any = true }
            return any
        }
        let numericCol = header.indices.map(isNumeric)
        var outHeader: [String], outRows: [[String]], outNumeric: [Bool]
        var geometric: [String] = [], arithmetic: [String] = [], constant: [String] = [], dropped: [String] = []
        if by.isEmpty {
            outHeader = header
            outNumeric = numericCol
            outRows = rows.map { r in r.enumerated().map { $0.element.isEmpty ? "NA" : numericCol[$0.offset] ? fmt(Double($0.element)!) : $0.element } }
        } else {
            var order: [[String]] = [], groups: [[String]: [[String]]] = [:]
            for r in rows {
                let k = keyIdx.map { r[$0] }
                if groups[k] == nil { order.append(k) }
                groups[k, default: []].append(r)
            }
            let groupRows = order.map { groups[$0]! }
            enum Reduce { case constant, geometric, arithmetic }
            var reduced: [(Int, Reduce)] = []
            for i in header.indices where !keyIdx.contains(i) {
                let name = header[i]
                let isConstant = groupRows.allSatisfy { g in g.allSatisfy { $0[i] == g[0][i] } }
                if isConstant { reduced.append((i, .constant)); constant.append(name); continue }
                if identifiers.contains(name.lowercased()) || !numericCol[i] { dropped.append(name); continue }
                if isScale(name) { reduced.append((i, .geometric)); geometric.append(name) } else { reduced.append((i, .arithmetic)); arithmetic.append(name) }
            }
            outHeader = by + reduced.map { header[$0.0] } + ["n"]
            outNumeric = by.map { numericCol[header.firstIndex(of: $0)!] } + reduced.map { numericCol[$0.0] } + [true]
            outRows = zip(order, groupRows).map { k, g in
                k.map { $0.isEmpty ? "NA" : $0 } + reduced.map { i, how -> String in
                    let cells = g.map { $0[i] }.filter { !$0.isEmpty }
                    guard let first = cells.first else { return "NA" }
                    if how == .constant { return numericCol[i] ? fmt(Double(first)!) : first }
                    let vals = cells.map { Double($0)! }
                    let finite = vals.filter(\.isFinite)
                    if finite.isEmpty { return "\(vals[0])" }
                    if how == .geometric {
                        let pos = finite.filter { $0 > 0 }
                        // Zeros (an exact result) make a geometric mean 0; negative scales do not occur.
                        if pos.count < finite.count { return finite.contains { $0 < 0 } ? fmt(finite.reduce(0, +) / Double(finite.count)) : "0" }
                        return fmt(Foundation.exp(pos.map { Foundation.log($0) }.reduce(0, +) / Double(pos.count)))
                    }
                    return fmt(finite.reduce(0, +) / Double(finite.count))
                } + ["\(g.count)"]
            }
        }
        if !columns.isEmpty {
            var pick: [Int] = []
            for c in columns {
                guard let j = outHeader.firstIndex(of: c) else {
                    let why = header.contains(c) ? " (left out: \(dropped.contains(c) ? "it varies within the groups and is not averaged" : "a --by key"))" : ""
                    throw HarnessError("--columns: '\(c)' is not a column of this table\(why) (columns: \(outHeader.joined(separator: ", ")))")
                }
                pick.append(j)
            }
            outHeader = pick.map { outHeader[$0] }; outNumeric = pick.map { outNumeric[$0] }
            outRows = outRows.map { r in pick.map { r[$0] } }
            let shown = Set(outHeader)
            geometric = geometric.filter(shown.contains); arithmetic = arithmetic.filter(shown.contains)
        }
        var note: [String] = []
        if !by.isEmpty {
            note.append("n rows per group of \(by.joined(separator: ", "))")
            if !geometric.isEmpty { note.append("geometric means: \(geometric.joined(separator: ", "))") }
            if !arithmetic.isEmpty { note.append("arithmetic means: \(arithmetic.joined(separator: ", "))") }
            if !dropped.isEmpty && columns.isEmpty { note.append("left out (vary within groups): \(dropped.joined(separator: ", "))") }
        }
        note.append("NA: no value")
        return Table(header: outHeader, rows: outRows, numeric: outNumeric, note: note.joined(separator: "; ") + ".")
    }

    static func fmt(_ x: Double) -> String {
        if !x.isFinite { return "\(x)" }
        if x == 0 { return "0" }
        let a = abs(x)
        if a >= 1e-3 && a < 1e5 {
            var s = String(format: "%.4g", x)
            if s.contains("e") { s = String(format: "%.4f", x) }
            return s
        }
        return String(format: "%.3e", x)
    }

    static func markdown(_ t: Table) -> String {
        var out = "| " + t.header.joined(separator: " | ") + " |\n"
        out += "|" + t.numeric.map { $0 ? "---:|" : "---|" }.joined() + "\n"
        for r in t.rows { out += "| " + r.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        out += "\n" + t.note + "\n"
        return out
    }

    static func texEscape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "_", "%", "&", "#", "$", "{", "}": o += "\\" + String(c)
            case "\\": o += "\\textbackslash{}"
            case "~": o += "\\textasciitilde{}"
            case "^": o += "\\textasciicircum{}"
            case "ε": o += "$\\varepsilon$"
            case "·": o += "$\\cdot$"
            default: o.append(c)
            }
        }
        return o
    }

    /// A number cell: `1.234e-05` as `$1.234\times10^{-5}$`; anything else escaped text.
    static func texNumber(_ s: String) -> String {
        guard Double(s) != nil, let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return texEscape(s) }
        let mant = s[..<e], exp = Int(s[s.index(after: e)...]) ?? 0
        return "$\(mant)\\times10^{\(exp)}$"
    }

    /// booktabs LaTeX: text columns left-aligned, numbers right-aligned, NA as such, the
    /// note as a table footnote. The tabular alone needs `\usepackage{booktabs}` (said in
    /// its first line); `standalone` wraps it in an article that compiles with pdflatex,
    /// landscape and scaled to the text width when it has more than 8 columns.
    static func latex(_ t: Table, caption: String, standalone: Bool) -> String {
        let spec = t.numeric.map { $0 ? "r" : "l" }.joined()
        var tab = "\\begin{tabular}{\(spec)}\n\\toprule\n"
        tab += t.header.map(texEscape).joined(separator: " & ") + " \\\\\n\\midrule\n"
        for r in t.rows { tab += zip(r, t.numeric).map { $1 ? texNumber($0) : texEscape($0) }.joined(separator: " & ") + " \\\\\n" }
        tab += "\\bottomrule\n\\end{tabular}\n"
        guard standalone else {
            return "% hessian-harness table: needs \\usepackage{booktabs}. " + t.note + "\n" + tab
        }
        let wide = t.header.count > 8
        var doc = "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        doc += "\\usepackage[margin=2cm\(wide ? ",landscape" : "")]{geometry}\n\\begin{document}\n\\begin{table}[ht]\n\\centering\n"
        doc += "\\caption{\(texEscape(caption))}\n"
        doc += wide ? "\\resizebox{\\linewidth}{!}{%\n\(tab)}\n" : tab
        doc += "\\par\\smallskip{\\footnotesize \(texEscape(t.note))\\par}\n\\end{table}\n\\end{document}\n"
        return doc
    }
}

/// Reading a tidy results CSV (CSV.swift), with positioned errors.
public enum CSVTable {
    /// Header and rows; every row must have the header's field count.
    public static func readRows(path: String) throws -> (header: [String], rows: [[String]]) {
        guard let stream = InputStream(fileAtPath: path), FileManager.default.fileExists(atPath: path) else {
            throw HarnessError("cannot open '\(path)'")
        }
        let reader: CSVReader
        do { reader = try CSVReader(stream: stream, hasHeaderRow: true) } catch { throw HarnessError("\(path): \(error)") }
        guard let header = reader.headerRow, !header.isEmpty else { throw HarnessError("\(path): no header row") }
        var rows: [[String]] = []
        var line = 1
        while let r = reader.next() {
            line += 1
            guard r.count == header.count else { throw HarnessError("\(path):\(line): \(r.count) fields, header has \(header.count)") }
            rows.append(r)
        }
        return (header, rows)
    }

    /// Rows as column → value dictionaries.
    public static func read(path: String) throws -> [[String: String]] {
        let (h, rows) = try readRows(path: path)
        return rows.map { Dictionary(uniqueKeysWithValues: zip(h, $0)) }
    }
}
