import Foundation
import CSV

/// `hessian-harness table CSV [--by COLUMNS] [--latex|--markdown]`: an aggregated
/// table from any tidy results CSV. Rows are grouped by the `--by` columns (in order
/// of first appearance); every other numeric column is reduced to its mean over
/// the group, skipping non-finite values as pandas does (a group whose values are
/// all non-finite shows its first one, e.g. `nan`); `n` counts the group's rows.
/// Without `--by`, the rows are printed as they are.
/// Numbers are shown with 4 significant digits.
public enum TableCommand {
    public enum Style: String { case markdown, latex }

    public static func run(path: String, by: [String], style: Style) throws -> String {
        let (outHeader, outRows) = try aggregate(path: path, by: by)
        return style == .markdown ? markdown(outHeader, outRows) : latex(outHeader, outRows)
    }

    /// The aggregated table (header, formatted rows) that `run` prints.
    public static func aggregate(path: String, by: [String]) throws -> (header: [String], rows: [[String]]) {
        let (header, rows) = try CSVTable.readRows(path: path)
        guard !rows.isEmpty else { throw HarnessError("\(path): no data rows") }
        for c in by where !header.contains(c) {
            throw HarnessError("--by column '\(c)' is not in \(path) (columns: \(header.joined(separator: ", ")))")
        }
        let keyIdx = by.map { header.firstIndex(of: $0)! }
        let numeric = header.indices.filter { i in !keyIdx.contains(i) && rows.allSatisfy { Double($0[i]) != nil } }
        var outHeader: [String], outRows: [[String]]
        if by.isEmpty {
            outHeader = header
            outRows = rows.map { r in r.enumerated().map { numeric.contains($0.offset) ? fmt(Double($0.element)!) : $0.element } }
        } else {
            var order: [[String]] = [], groups: [[String]: [[String]]] = [:]
            for r in rows {
                let k = keyIdx.map { r[$0] }
                if groups[k] == nil { order.append(k) }
                groups[k, default: []].append(r)
            }
            outHeader = by + numeric.map { header[$0] } + ["n"]
            outRows = order.map { k in
                let g = groups[k]!
                return k + numeric.map { i in
                    let vals = g.map { Double($0[i])! }
                    let finite = vals.filter(\.isFinite)
                    return finite.isEmpty ? "\(vals[0])" : fmt(finite.reduce(0, +) / Double(finite.count))
                } + ["\(g.count)"]
            }
        }
        return (outHeader, outRows)
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

    static func markdown(_ h: [String], _ rows: [[String]]) -> String {
        var out = "| " + h.joined(separator: " | ") + " |\n"
        out += "|" + h.map { _ in "---|" }.joined() + "\n"
        for r in rows { out += "| " + r.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n" }
        return out
    }

    static func latex(_ h: [String], _ rows: [[String]]) -> String {
        func esc(_ s: String) -> String {
            var o = ""
            for c in s {
                switch c {
                case "_", "%", "&", "#", "$", "{", "}": o += "\\" + String(c)
                case "\\": o += "\\textbackslash{}"
                case "~": o += "\\textasciitilde{}"
                case "^": o += "\\textasciicircum{}"
                default: o.append(c)
                }
            }
            return o
        }
        var out = "\\begin{tabular}{" + String(repeating: "l", count: h.count) + "}\n\\toprule\n"
        out += h.map(esc).joined(separator: " & ") + " \\\\\n\\midrule\n"
        for r in rows { out += r.map(esc).joined(separator: " & ") + " \\\\\n" }
        out += "\\bottomrule\n\\end{tabular}\n"
        return out
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
