import Foundation
import Yams
import Scalars
import Krylov
import Models
import Curvature
import Studies

/// An experiment file (YAML, parsed by Yams) turned into a study.
///
/// ```yaml
/// study: fd-bias                  # fd-bias | noise-amplification | krylov-stability | regimes
/// name: fd-bias                   # optional: results folder name (default: the file's base name)
/// models: [expsum:n=64, "mlp:widths=8-16-4,samples=32"]
/// policies: [param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32]
/// schemes: [forward, central, richardson]
/// step_policies: [relative]
/// eps: {from: 1e-8, to: 1e-1, points: 15}     # log-spaced; or a list of values
/// seeds: [0, 1]                   # or {from: 0, count: 4}
/// tolerance: 1e-2
/// quick:                          # keys replaced by --quick
///   eps: {from: 1e-6, to: 1e-1, points: 6}
/// ```
///
/// Every problem is reported as `FILE:LINE:COLUMN: message` and nothing runs.
public struct Experiment {
    public var path: String
    public var sha256: String
    public var name: String
    public var quick: Bool
    public var study: any Study
    /// The study's settings as written (after `--quick` overrides), for the manifest.
    public var parameters: [String: String]
    /// The files the experiment reads besides itself (data, checkpoints, input tables),
    /// in document order: the journal pins their SHA-256.
    public var inputFiles: [String] = []

    public init(path: String, sha256: String, name: String, quick: Bool, study: any Study, parameters: [String: String], inputFiles: [String] = []) {
        self.path = path; self.sha256 = sha256; self.name = name; self.quick = quick
        self.study = study; self.parameters = parameters; self.inputFiles = inputFiles
    }
}

public enum ExperimentLoader {
    public static let studies = ["fd-bias", "noise-amplification", "krylov-stability", "regimes", "block-diagonal", "scaling", "recommend-check"]

    static let common: Set<String> = ["study", "name", "description", "quick"]
    /// The largest product of an experiment's list lengths.
    static let maxGridSize = 10_000_000.0
    static let keys: [String: Set<String>] = [
        "fd-bias": ["models", "policies", "schemes", "step_policies", "eps", "seeds", "tolerance", "dominance", "fit_max_err", "fit_max_swamped",
                    "reference"],
        "noise-amplification": ["models", "policies", "schemes", "step_policies", "eps", "seeds", "vary", "replicates", "shards", "reference"],
        "krylov-stability": ["models", "policies", "schemes", "step_policies", "eps", "reorth", "steps", "checkpoints", "probes", "seeds",
                             "spectrum", "reference_steps",
                             "ritz_top", "ritz_tol", "tolerance", "max_parameters"],
        "regimes": ["from", "validate", "tolerance"],
        "scaling": ["models", "policy", "shards", "schemes", "repeats", "lanczos_steps", "memory_steps", "extrapolate_to", "fit_max_parameters",
                    "compute_bound_min_parameters", "extrapolate_models", "seed"],
        "block-diagonal": ["models", "seeds", "partitions", "approximations", "probes", "max_dense", "top_k", "diagonal_probes"],
        "recommend-check": ["models", "policies", "schemes", "seeds", "tolerance", "reference", "check_per_decade"],
    ]

    public static func load(path: String, quick: Bool) throws -> Experiment {
        if let t = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, t != .typeRegular {
            throw HarnessError("'\(path)' is not a regular file (an experiment file is YAML text)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HarnessError("cannot read experiment file '\(path)'")
        }
        return try load(data: data, path: path, quick: quick)
    }

    /// The experiment in `data` (`path` names it in messages and is its default name).
    public static func load(data: Data, path: String, quick: Bool) throws -> Experiment {
        guard let text = String(data: data, encoding: .utf8) else {
            let (line, column) = invalidUTF8Position(data)
            throw HarnessError("\(path):\(line):\(column): not UTF-8 text (the byte there starts no valid UTF-8 character)")
        }
        let root: Node
        do {
            guard let r = try Yams.compose(yaml: text) else { throw HarnessError("\(path):1:1: empty experiment file (no study: key)") }
            root = r
        } catch let e as YamlError {
            throw HarnessError("\(path):\(yamlPosition(e, text)) malformed YAML: \(yamlProblem(e))")
        }
        let doc = YNode(node: root, file: path, source: YNode.Source(text))
        var map = try doc.mapping()
        let studyNode = try doc.required(map, "study")
        let study = try studyNode.string()
        guard let allowed = keys[study] else {
            throw studyNode.error("unknown study '\(study)' (known: \(studies.joined(separator: ", ")))")
        }
        for (k, node) in inDocumentOrder(map) where !common.contains(k) && !allowed.contains(k) {
            throw node.keyError("unknown key '\(k)' for study '\(study)' (allowed: \((common.union(allowed)).sorted().joined(separator: ", ")))")
        }
        if let q = map["quick"] {
            for (k, node) in inDocumentOrder(try q.mapping()) {
                guard allowed.contains(k) else { throw node.keyError("unknown key '\(k)' under quick (allowed: \(allowed.sorted().joined(separator: ", ")))") }
                if quick { map[k] = node }
            }
        }
        let name = try map["name"]?.string() ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        guard !name.isEmpty, name.count <= 200, !name.hasPrefix("."),
              name.allSatisfy({ ($0.isLetter || $0.isNumber) && $0.isASCII || "-_.".contains($0) }) else {
            throw (map["name"] ?? doc).error("name '\(name)' must be 1 to 200 ASCII letters, digits, '-', '_' or '.', not starting with '.'")
        }
        var params: [String: String] = [:]
        for (k, node) in map where k != "quick" { params[k] = node.flowText }
        // The product of the grid's lists bounds the work (and the memory of the list of
        // configurations, built before anything runs): refuse absurd grids up front.
        var size = 1.0
        for (k, node) in map where !common.contains(k) {
            switch node.node {
            case .sequence(let items): size *= Double(max(items.count, 1))
            case .mapping:
                let m = (try? node.mapping()) ?? [:]
                for key in ["count", "points"] { if let v = try? m[key]?.string(), let n = Double(v), n >= 1 { size *= n } }
            default: break
            }
        }
        guard size <= Self.maxGridSize else {
            throw doc.error("the grid has \(size < 9e18 ? "\(Int(size))" : "\(size)") configurations × points (the product of its lists' lengths); at most \(Int(Self.maxGridSize)) per experiment file")
        }
        let s: any Study
        switch study {
        case "fd-bias": s = try fdBias(map, doc)
        case "noise-amplification": s = try noise(map, doc)
        case "krylov-stability": s = try krylov(map, doc)
        case "block-diagonal": s = try blockDiagonal(map, doc)
        case "scaling": s = try scaling(map, doc)
        case "recommend-check": s = try recommendCheck(map, doc)
        default: s = try regimes(map, doc)
        }
        return Experiment(path: path, sha256: SHA256.hex(data), name: name, quick: quick, study: s, parameters: params,
                          inputFiles: inputFiles(map))
    }

    /// The files named by the model specs (also under `validate`) and by a regimes
    /// study's `from` tables.
    static func inputFiles(_ map: [String: YNode]) -> [String] {
        var files: [String] = []
        func specs(_ n: YNode?) {
            for item in (try? n?.items()) ?? [] { if let s = try? item.string() { files += ModelSpec.inputFiles(s) } }
        }
        specs(map["models"])
        if let v = try? map["validate"]?.mapping() { specs(v["models"]) }
        if let from = try? map["from"]?.mapping() {
            for (key, file) in [("fd_bias", "fits.csv"), ("krylov_stability", "summary.csv")] {
                for item in (try? from[key]?.items()) ?? [] { if let p = try? item.string() { files.append(tablePath(p, file: file)) } }
            }
        }
        var seen: Set<String> = []
        return files.filter { seen.insert($0).inserted }
    }

    // MARK: studies

    static func fdBias(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let c = FDBiasStudy.Config(
            models: try models(doc.required(m, "models")), policies: try policies(doc.required(m, "policies")),
            schemes: try schemes(doc.required(m, "schemes")), stepPolicies: try stepPolicies(m["step_policies"]),
            eps: try doc.required(m, "eps").epsGrid(), seeds: try seeds(m["seeds"]),
            tolerance: try m["tolerance"]?.positive() ?? 1e-2, dominance: try m["dominance"]?.positive() ?? 3,
            saturation: ErrorModelFit.Saturation(maxError: try m["fit_max_err"]?.positive() ?? 0.3,
                                                 maxSwamped: try m["fit_max_swamped"]?.positive() ?? 0.25),
            reference: try referenceKind(m["reference"]))
        return try wrap(doc) { try FDBiasStudy(c) }
    }

    static func noise(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let varyNode = try doc.required(m, "vary")
        let vary = try varyNode.stringList().map { v -> NoiseAmplificationStudy.Vary in
            guard let x = NoiseAmplificationStudy.Vary(rawValue: v) else {
                throw varyNode.error("unknown vary '\(v)' (known: \(NoiseAmplificationStudy.Vary.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return x
        }
        let c = NoiseAmplificationStudy.Config(
            models: try models(doc.required(m, "models")), policies: try policies(doc.required(m, "policies")),
            schemes: try schemes(doc.required(m, "schemes")), stepPolicies: try stepPolicies(m["step_policies"]),
            eps: try doc.required(m, "eps").epsGrid(), seeds: try seeds(m["seeds"]), vary: vary,
            replicates: try m["replicates"]?.int(min: 2, max: 10_000) ?? 8,
            shards: try m["shards"]?.intList(min: 1, max: 64) ?? [1, 2, 4, 8], reference: try referenceKind(m["reference"]))
        return try wrap(varyNode) { try NoiseAmplificationStudy(c) }
    }

    static func krylov(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let rNode = try doc.required(m, "reorth")
        let reorth = try rNode.stringList().map { r -> Reorthogonalization in
            guard let x = Reorthogonalization(rawValue: r) else {
                throw rNode.error("unknown reorth '\(r)' (known: \(Reorthogonalization.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return x
        }
        let stepsNode = try doc.required(m, "steps")
        let steps = try stepsNode.int(min: 1, max: 10_000)
        let c = KrylovStabilityStudy.Config(
            models: try models(doc.required(m, "models")), policies: try policies(doc.required(m, "policies")),
            schemes: try schemes(doc.required(m, "schemes")), stepPolicies: try stepPolicies(m["step_policies"]),
            eps: try doc.required(m, "eps").epsGrid(), reorth: reorth, steps: steps,
            checkpoints: try m["checkpoints"]?.intList(min: 1, max: steps) ?? [steps],
            probes: try m["probes"]?.int(min: 1, max: 10_000) ?? 4, seeds: try seeds(m["seeds"]),
            ritzTop: try m["ritz_top"]?.int(min: 1, max: 100) ?? 3, ritzTol: try m["ritz_tol"]?.positive() ?? 1e-3,
            tolerance: try m["tolerance"]?.positive() ?? 1e-2, maxParameters: try m["max_parameters"]?.int(min: 1, max: 20_000) ?? 3000,
            spectrum: try spectrumSource(m["spectrum"]), referenceSteps: try m["reference_steps"]?.int(min: 1, max: 10_000))
        return try wrap(doc) { try KrylovStabilityStudy(c) }
    }

    static func recommendCheck(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let reference = try referenceKind(m["reference"])
        let c = RecommendCheckStudy.Config(
            models: try models(doc.required(m, "models")), policies: try policies(doc.required(m, "policies")),
            schemes: try schemes(doc.required(m, "schemes")), seeds: try seeds(m["seeds"]),
            tolerance: try m["tolerance"]?.positive() ?? 5e-2, reference: reference,
            checkPerDecade: try m["check_per_decade"]?.int(min: 1, max: 20) ?? 4)
        return try wrap(doc) { try RecommendCheckStudy(c) }
    }

    /// `spectrum: dense|lanczos` (default dense).
    static func spectrumSource(_ node: YNode?) throws -> KrylovStabilityStudy.SpectrumSource {
        try named(node, default: .dense, what: "spectrum")
    }

    /// `reference: mpfr256|fp64` (default mpfr256).
    static func referenceKind(_ node: YNode?) throws -> ReferenceHVP.Kind {
        try named(node, default: .mpfr256, what: "reference")
    }

    /// One value of a string enumeration, `fallback` when the key is absent; an unknown
    /// name is an error at the node that lists the known ones.
    static func named<E: RawRepresentable & CaseIterable>(_ node: YNode?, default fallback: E, what: String) throws -> E where E.RawValue == String {
        guard let node else { return fallback }
        let s = try node.string()
        guard let k = E(rawValue: s) else {
            throw node.error("unknown \(what) '\(s)' (known: \(E.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return k
    }

    static func blockDiagonal(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let aNode = try doc.required(m, "approximations")
        let approx = try aNode.items().map { item -> BlockDiagonalStudy.Approximation in
            let s = try item.string()
            guard let x = BlockDiagonalStudy.Approximation(rawValue: s) else {
                throw item.error("unknown approximation '\(s)' (known: \(BlockDiagonalStudy.Approximation.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return x
        }
        let parts = try m["partitions"]?.items().map { item -> PartitionKind in
            let s = try item.string()
            guard let x = PartitionKind(rawValue: s) else {
                throw item.error("unknown partition '\(s)' (known: \(PartitionKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return x
        } ?? [.tensor, .layer, .block]
        let c = BlockDiagonalStudy.Config(
            models: try models(doc.required(m, "models")), seeds: try seeds(m["seeds"]), partitions: parts, approximations: approx,
            probes: try m["probes"]?.int(min: 1, max: 10_000) ?? 8, maxDense: try m["max_dense"]?.int(min: 0, max: 20_000) ?? 2000,
            topK: try m["top_k"]?.int(min: 1, max: 10_000) ?? 10, diagonalProbes: try m["diagonal_probes"]?.int(min: 1, max: 100_000) ?? 32)
        return try wrap(aNode) { try BlockDiagonalStudy(c) }
    }

    static func scaling(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let pNode = try doc.required(m, "policy")
        let ps = try policies(pNode)
        guard ps.count == 1 else { throw pNode.error("scaling takes one policy") }
        let xs = try m["extrapolate_to"].map { try $0.items().map { try $0.positive() } } ?? [1e9, 1e10, 1e11]
        let c = ScalingStudy.Config(
            models: try models(doc.required(m, "models")), policy: ps[0], shards: try m["shards"]?.intList(min: 1, max: 64) ?? [1],
            schemes: try m["schemes"].map(schemes) ?? [.forward, .central, .richardson],
            repeats: try m["repeats"]?.int(min: 1, max: 1000) ?? 5, lanczosSteps: try m["lanczos_steps"]?.int(min: 1, max: 10_000) ?? 10,
            memorySteps: try m["memory_steps"]?.int(min: 1, max: 1_000_000) ?? 100, extrapolateTo: xs,
            fitMaxParameters: try m["fit_max_parameters"]?.positive() ?? 1e7,
            computeBoundMinParameters: try m["compute_bound_min_parameters"]?.positive() ?? 1e6,
            extrapolateModels: try m["extrapolate_models"].map { try $0.items().map { try $0.string() } } ?? [],
            seed: try m["seed"]?.uint64() ?? 0)
        return try wrap(doc) { try ScalingStudy(c) }
    }

    static func regimes(_ m: [String: YNode], _ doc: YNode) throws -> any Study {
        let from = try doc.required(m, "from")
        let fm = try from.mapping()
        for (k, n) in inDocumentOrder(fm) where k != "fd_bias" && k != "krylov_stability" {
            throw n.keyError("unknown key '\(k)' under from (allowed: fd_bias, krylov_stability)")
        }
        // fd_bias: one results folder (or fits.csv), or a list of them; a curve (model, seed,
        // policy, scheme, step policy) found in several is taken from the first that has it.
        let fdNode = try from.required(fm, "fd_bias")
        var fits: [[String: String]] = []
        var seenCurves: Set<String> = []
        for item in try fdNode.items() {
            let rows = try readTable(item, file: "fits.csv")
            if let first = rows.first, let missing = RegimesStudy.fitColumns.first(where: { first[$0] == nil }) {
                throw item.error("'\(try item.string())' has no column '\(missing)' (is it an fd-bias fits.csv?)")
            }
            var added: Set<String> = []
            for r in rows {
                let key = ["model", "seed", "policy", "scheme", "step_policy"].map { r[$0] ?? "" }.joined(separator: "|")
                if !seenCurves.contains(key) { fits.append(r); added.insert(key) }
            }
            seenCurves.formUnion(added)
        }
        let kr = try fm["krylov_stability"].map { try readTable($0, file: "summary.csv") } ?? []
        let val = try doc.required(m, "validate")
        let vm = try val.mapping()
        for (k, n) in inDocumentOrder(vm) where !["models", "seeds", "reference", "compute", "schemes"].contains(k) {
            throw n.keyError("unknown key '\(k)' under validate (allowed: compute, models, reference, schemes, seeds)")
        }
        let c = RegimesStudy.Config(fits: fits, krylov: kr, validateModels: try models(val.required(vm, "models")),
                                    validateSeeds: try seeds(vm["seeds"]), tolerance: try m["tolerance"]?.positive(),
                                    reference: try referenceKind(vm["reference"]), validateCompute: try vm["compute"]?.stringList(),
                                    validateSchemes: try vm["schemes"]?.stringList())
        return try wrap(val) { try RegimesStudy(c) }
    }

    /// A results table named by a folder (containing `file`) or a CSV path.
    static func readTable(_ node: YNode, file: String) throws -> [[String: String]] {
        let p = try node.string()
        guard FileManager.default.fileExists(atPath: p) else { throw node.error("no such file or folder '\(p)'") }
        let path = tablePath(p, file: file)
        guard (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeRegular else {
            throw node.error("'\(path)' is not a regular file")
        }
        if path != p { do { try ResultsFolder.verify(URL(fileURLWithPath: p)) } catch { throw node.error("\(error)") } }
        do { return try CSVTable.read(path: path) } catch { throw node.error("\(error)") }
    }

    /// `p` itself, or `p/file` when `p` is a folder.
    static func tablePath(_ p: String, file: String) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), isDir.boolValue else { return p }
        return (p as NSString).appendingPathComponent(file)
    }

    // MARK: values

    static func wrap<T>(_ node: YNode, _ f: () throws -> T) throws -> T {
        do { return try f() } catch let e as StudyError { throw node.error(e.message) }
    }

    static func models(_ n: YNode) throws -> [String] {
        let items = try n.items()
        guard !items.isEmpty else { throw n.error("empty list of models") }
        // In a flow list ([a, b]) YAML splits an unquoted spec at its commas: a plain item
        // that is a lone key=value field (no "family:") is the tail of the item before it.
        if n.isFlowSequence, let i = items.indices.dropFirst().first(where: { items[$0].isPlainScalar && isLoneField(try? items[$0].string()) }) {
            let joined = try items[...i].suffix(2).map { try $0.string() }.joined(separator: ",")
            throw items[i].error("'\((try? items[i].string()) ?? "")' is not a model: YAML's flow list [...] split a model spec at its commas; "
                                 + "quote each spec (\"\(joined)\") or write one per line as '- \"spec\"'")
        }
        return try items.map { item in
            let s = try item.string()
            do { try ModelSpec.validate(s) } catch { throw item.error("model '\(s)': \(error)") }
            return s
        }
    }

    static func policies(_ n: YNode) throws -> [PrecisionPolicy] {
        let items = try n.items()
        guard !items.isEmpty else { throw n.error("empty list of policies") }
        // `policies: [param=bf16,compute=bf16]` is, to YAML, a flow list of two policies: one
        // that sets only param and one that sets only compute (the others default to fp64).
        // Two unquoted items of a flow list that each name one stage, different stages, are
        // almost surely one policy split at its commas: refuse, with the position and the fix.
        if n.isFlowSequence {
            let single = items.filter { $0.isPlainScalar }.compactMap { item -> (YNode, String, String)? in
                guard let t = try? item.string(), isLoneField(t) else { return nil }
                return (item, t, String(t.split(separator: "=")[0]).lowercased())
            }
            if let first = single.first, let other = single.first(where: { $0.2 != first.2 }) {
                let joined = single.map(\.1).joined(separator: ",")
                throw other.0.error("'\(first.1)' and '\(other.1)' are separate policies here: YAML's flow list [...] split a policy at "
                                    + "its commas, and each stage it leaves out defaults to fp64; quote the policy ([\"\(joined)\"]) "
                                    + "or write one per line as '- \"policy\"'")
            }
        }
        return try items.map { item in
            let s = try item.string()
            do { return try PrecisionPolicy(s) } catch { throw item.error("policy '\(s)': \(error)") }
        }
    }

    /// `key=value` with no comma and no `family:` prefix: one field of a spec or policy.
    static func isLoneField(_ s: String?) -> Bool {
        guard let s else { return false }
        return s.contains("=") && !s.contains(",") && !s.contains(":")
    }

    static func schemes(_ n: YNode) throws -> [FDScheme] {
        try n.items().map { item in
            let s = try item.string()
            guard let x = FDScheme(rawValue: s) else {
                throw item.error("unknown scheme '\(s)' (known: \(FDScheme.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return x
        }
    }

    static func stepPolicies(_ n: YNode?) throws -> [String] {
        guard let n else { return ["absolute"] }
        return try n.items().map { item in
            let s = try item.string()
            guard s == "absolute" || s == "relative" else { throw item.error("unknown step policy '\(s)' (known: absolute, relative)") }
            return s
        }
    }

    static func seeds(_ n: YNode?) throws -> [UInt64] {
        guard let n else { return [0] }
        if case .mapping = n.node {
            let m = try n.mapping()
            for (k, v) in inDocumentOrder(m) where k != "from" && k != "count" { throw v.keyError("unknown key '\(k)' in seeds (allowed: from, count)") }
            let from = try m["from"]?.uint64() ?? 0
            let count = try n.required(m, "count").int(min: 1, max: 100_000)
            return (0..<UInt64(count)).map { from &+ $0 }
        }
        let s = try n.items().map { try $0.uint64() }
        guard !s.isEmpty else { throw n.error("empty list of seeds") }
        guard Set(s).count == s.count else { throw n.error("duplicate seeds") }
        return s
    }

    /// A mapping's entries in the order the file writes them (so that the first of
    /// several unknown keys is the one reported, every time).
    static func inDocumentOrder(_ m: [String: YNode]) -> [(String, YNode)] {
        m.sorted { a, b in
            let x = a.value.keyMark ?? a.value.node.mark, y = b.value.keyMark ?? b.value.node.mark
            return (x?.line ?? 0, x?.column ?? 0, a.key) < (y?.line ?? 0, y?.column ?? 0, b.key)
        }
    }

    static func yamlPosition(_ e: YamlError, _ text: String) -> String {
        switch e {
        case .scanner(_, _, let m, _), .parser(_, _, let m, _), .composer(_, _, let m, _): return "\(m.line):\(m.column):"
        case .reader(_, let offset?, _, _):
            let (l, c) = lineColumn(text, characterOffset: offset)
            return "\(l):\(c):"
        case .duplicatedKeysInMapping(let keys, _):
            // Yams names the keys but not where: the second line that starts with one.
            var seen: Set<String> = []
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let body = line.drop { $0 == " " || $0 == "-" }
                for k in keys where body.hasPrefix(k + ":") || body.hasPrefix("\"\(k)\":") {
                    let indent = line.count - body.count
                    if !seen.insert("\(indent)|\(k)").inserted { return "\(i + 1):\(indent + 1):" }
                }
            }
            return "1:1:"
        default: return "1:1:"
        }
    }

    /// Line and column (1-based, in characters) of a character offset into `text`.
    static func lineColumn(_ text: String, characterOffset: Int) -> (Int, Int) {
        var line = 1, column = 1
        for ch in text.prefix(characterOffset) { if ch == "\n" { line += 1; column = 1 } else { column += 1 } }
        return (line, column)
    }

    /// Line and column (1-based) of the first byte of `data` that is not valid UTF-8.
    static func invalidUTF8Position(_ data: Data) -> (Int, Int) {
        let bytes = [UInt8](data)
        var line = 1, column = 1, i = 0
        while i < bytes.count {
            let b = bytes[i]
            let n = b < 0x80 ? 1 : b >> 5 == 0b110 ? 2 : b >> 4 == 0b1110 ? 3 : b >> 3 == 0b11110 ? 4 : 0
            guard n > 0, i + n <= bytes.count, String(bytes: bytes[i..<(i + n)], encoding: .utf8) != nil else { return (line, column) }
            if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            i += n
        }
        return (line, column)
    }
    static func yamlProblem(_ e: YamlError) -> String {
        switch e {
        case .scanner(let c, let p, _, _), .parser(let c, let p, _, _), .composer(let c, let p, _, _):
            return p + (c.map { " (\($0.text))" } ?? "")
        case .duplicatedKeysInMapping(let d, _): return "duplicate keys \(d.joined(separator: ", "))"
        case .reader(let problem, _, let value, _): return problem + (value >= 0 ? String(format: " (character U+%04X)", value) : "")
        default: return "\(e)"
        }
    }
}

/// A YAML node with its file, for typed access with positioned errors.
struct YNode {
    let node: Node
    let file: String
    var keyMark: Mark? = nil
    /// The document's lines, to tell a flow list from a block list: Yams 6.2.2 takes a
    /// sequence's style from its end event, so `Node.Sequence.style` is not reliable.
    var source: Source? = nil

    final class Source {
        let lines: [[UInt8]]
        init(_ text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0.utf8) } }
        /// The byte at a 1-based line and column (Yams's marks count characters; for the
        /// ASCII that opens a list the two agree up to there whenever the line is ASCII).
        func byte(line: Int, column: Int) -> UInt8? {
            guard line >= 1, line <= lines.count else { return nil }
            let l = String(decoding: lines[line - 1], as: UTF8.self)
            let cs = Array(l.unicodeScalars)
            guard column >= 1, column <= cs.count, cs[column - 1].isASCII else { return nil }
            return UInt8(cs[column - 1].value)
        }
    }

    var position: String { node.mark.map { "\(file):\($0.line):\($0.column)" } ?? file }
    func error(_ message: String) -> HarnessError { HarnessError("\(position): \(message)") }
    /// An error at the key that introduced this value.
    func keyError(_ message: String) -> HarnessError {
        HarnessError("\(keyMark.map { "\(file):\($0.line):\($0.column)" } ?? position): \(message)")
    }

    func mapping() throws -> [String: YNode] {
        guard case .mapping(let m) = node else { throw error("expected a mapping (key: value lines)") }
        var out: [String: YNode] = [:]
        for (k, v) in m {
            guard case .scalar(let s) = k else { throw YNode(node: k, file: file).error("keys must be plain strings") }
            guard out[s.string] == nil else { throw YNode(node: k, file: file).error("duplicate key '\(s.string)'") }
            out[s.string] = YNode(node: v, file: file, keyMark: k.mark, source: source)
        }
        return out
    }

    func required(_ m: [String: YNode], _ key: String) throws -> YNode {
        guard let v = m[key] else { throw error("missing key '\(key)'") }
        return v
    }

    /// A list written `[a, b]` (where YAML splits unquoted items at commas).
    var isFlowSequence: Bool {
        guard case .sequence = node, let m = node.mark, let source else { return false }
        return source.byte(line: m.line, column: m.column) == UInt8(ascii: "[")
    }
    /// An unquoted scalar.
    var isPlainScalar: Bool {
        if case .scalar(let s) = node { return s.style == .plain }
        return false
    }

    func string() throws -> String {
        guard case .scalar(let s) = node else { throw error("expected a single value") }
        return s.string
    }

    /// A list, or a single value as a list of one.
    func items() throws -> [YNode] {
        switch node {
        case .sequence(let s):
            let nodes = s.map { YNode(node: $0, file: file, source: source) }
            // A value twice in one list would run (or name) a configuration twice.
            var seen: Set<String> = []
            for n in nodes { if case .scalar(let v) = n.node, !seen.insert(v.string).inserted { throw n.error("'\(v.string)' appears twice in this list") } }
            return nodes
        case .scalar: return [self]
        default: throw error("expected a list")
        }
    }
    func stringList() throws -> [String] { try items().map { try $0.string() } }

    func double() throws -> Double {
        let s = try string()
        guard let x = Double(s.trimmingCharacters(in: .whitespaces)) else { throw error("'\(s)' is not a number") }
        return x
    }
    func positive() throws -> Double {
        let x = try double()
        guard x.isFinite, x > 0 else { throw error("\(x) must be finite and > 0") }
        return x
    }
    func int(min lo: Int, max hi: Int) throws -> Int {
        let s = try string()
        guard let x = Int(s), x >= lo, x <= hi else { throw error("'\(s)' must be an integer in \(lo)...\(hi)") }
        return x
    }
    func intList(min lo: Int, max hi: Int) throws -> [Int] {
        let xs = try items().map { try $0.int(min: lo, max: hi) }
        guard !xs.isEmpty else { throw error("empty list") }
        return xs
    }
    func uint64() throws -> UInt64 {
        let s = try string()
        guard let x = UInt64(s) else { throw error("'\(s)' must be a non-negative integer seed") }
        return x
    }

    /// ε values: a list, or `{from: A, to: B, points: N}` log-spaced (inclusive).
    /// Every value finite and > 0.
    func epsGrid() throws -> [Double] {
        if case .mapping = node {
            let m = try mapping()
            for (k, v) in ExperimentLoader.inDocumentOrder(m) where !["from", "to", "points"].contains(k) {
                throw v.keyError("unknown key '\(k)' in an ε range (allowed: from, to, points)")
            }
            let from = try required(m, "from").positive(), to = try required(m, "to").positive()
            let pNode = try required(m, "points")
            let points = try pNode.int(min: 1, max: 10_000)
            guard from < to || (from == to && points == 1) else { throw error("ε range needs from < to (got \(from) … \(to))") }
            return logGrid(from: from, to: to, points: points)
        }
        let xs = try items()
        guard !xs.isEmpty else { throw error("empty ε grid") }
        let vals = try xs.map { try $0.positive() }
        guard Set(vals).count == vals.count else { throw error("duplicate ε values") }
        return vals
    }

    /// The value as compact one-line text (for the manifest).
    var flowText: String {
        switch node {
        case .scalar(let s): return s.string
        case .sequence(let s): return "[" + s.map { YNode(node: $0, file: file).flowText }.joined(separator: ", ") + "]"
        case .mapping(let m): return "{" + m.map { "\($0.key.string ?? ""): \(YNode(node: $0.value, file: file).flowText)" }.joined(separator: ", ") + "}"
        case .alias: return "*alias"
        }
    }
}
