import Foundation
import RealModule
import Scalars
import Krylov
import Models
import Curvature

/// One operating regime (NUMERICS.md §10): for a (param format, grad format,
/// scheme, step policy), the recommended ε, its safe band, the predicted and the
/// validated error, and the Lanczos settings found stable.
public struct RegimeEntry: Codable, Sendable, Equatable {
    public var param: String
    /// The compute format: part of the key because it sets the rounding noise as much
    /// as the param and grad formats do (a refinement of NUMERICS.md §10's key).
    public var compute: String
    public var grad: String
    public var scheme: String
    public var stepPolicy: String
    /// The precision policy validated (the first of `derivedFrom`); consumers with
    /// another compute/accumulate/hvp/krylov setting use the entry at their own risk.
    public var policy: String
    public var derivedFrom: [String]
    /// Recommended step: ε (absolute) or η (relative).
    public var epsStar: Double
    /// Safe band: the intersection of the measured bands of the curves that met the
    /// tolerance (`bandCurves` of `curves`); nil: no curve met it, or the bands do not overlap.
    public var epsLo: Double?
    public var epsHi: Double?
    public var bandCurves: Int
    public var tolerance: Double
    public var predictedErr: Double
    public var validatedErr: Double?
    /// The held-out verdict of the step the entry recommends (`recommended_step`).
    public var validatedOK: Bool
    public var curves: Int
    public var lanczosReorth: String
    /// Largest step count found trustworthy (0: none found; pass settings explicitly).
    public var lanczosMaxSteps: Int
    /// The ε of the krylov-stability runs the Lanczos settings come from (nil: no data).
    public var lanczosEpsTested: Double?
    /// What `eps_star` is measured in: `absolute` (ε) or `relative` (η, ε = η‖θ‖₂/‖v‖₂).
    public var normalization: String
    /// Whether the predicted error at `eps_star` meets the tolerance. When false no
    /// static ε does on the calibration models, and `err_floor` says what is achievable.
    public var feasible: Bool
    /// The achievable error: the geometric mean over the calibration curves of each
    /// curve's own minimum of the fitted model (`err_star`), i.e. with a per-model ε.
    public var errFloor: Double
    /// The models the entry was fitted on (fd-bias curves) and their parameter counts.
    public var calibration: Calibration
    /// The static ε on held-out models: median and worst predicted/measured ratio
    /// (worst: the largest of r and 1/r), and the worst ratio of ε* to the best ε of a
    /// 4-per-decade grid, by the rule of ``Validation/init(models:outcomes:)``.
    public var validation: Validation?
    /// The per-model step (`recommend`, `slq --eps auto`) on the same held-out models,
    /// judged by the same rule: the procedure to use when the static ε does not transfer.
    public var perModel: Validation?
    /// How a consumer chooses ε: `static` (`eps_star`, the same on every model) or
    /// `per_model` (the reference-free estimate of `recommend`, `slq --eps auto`, on the
    /// consumer's own model). The static ε when it passed its held-out validation, else
    /// the per-model step when that was validated; nil only while the study runs.
    public var recommendedStep: String?

    public struct Calibration: Codable, Sendable, Equatable {
        public var models: [String]
        public var parametersMin: Int
        public var parametersMax: Int
        enum CodingKeys: String, CodingKey { case models, parametersMin = "parameters_min", parametersMax = "parameters_max" }
    }

    public struct Validation: Codable, Sendable, Equatable {
        public var models: [String]
        /// nil where a ratio is undefined (a zero or non-finite error): then `ok` is false.
        public var ratioMedian: Double?
        public var ratioWorst: Double?
        /// Over the feasible models only; nil when there is none (or a ratio is undefined).
        public var epsRatioWorst: Double?
        /// The held-out models on which some ε of the grid met the tolerance; on the
        /// others the check is of the floor (nil: a schema-2 file, judged by the old rule).
        public var modelsFeasible: Int?
        /// Infeasible models (no grid ε met the tolerance) on which the step claimed
        /// the tolerance was met: an optimistic claim, so `ok` is false.
        public var falseFeasible: Int?
        public var ok: Bool
        enum CodingKeys: String, CodingKey { case models, ratioMedian = "pred_over_meas_median", ratioWorst = "pred_over_meas_worst",
                                              epsRatioWorst = "eps_over_best_worst", modelsFeasible = "models_feasible",
                                              falseFeasible = "false_feasible", ok }

        /// What a step claimed on one held-out model and what was measured there.
        public struct Outcome: Sendable {
            /// The predicted error at the step's ε, and the error measured there.
            public var predicted: Double, measured: Double
            /// The achievable error the step claims when it says the tolerance cannot be met.
            public var floor: Double
            /// Whether the step claimed the tolerance is met.
            public var claimsFeasible: Bool
            /// The best error of the 4-per-decade grid, and the step's ε over the grid's best ε.
            public var gridBest: Double, epsOverBest: Double
            public var tolerance: Double
            public init(predicted: Double, measured: Double, floor: Double, claimsFeasible: Bool, gridBest: Double, epsOverBest: Double, tolerance: Double) {
                self.predicted = predicted; self.measured = measured; self.floor = floor; self.claimsFeasible = claimsFeasible
                self.gridBest = gridBest; self.epsOverBest = epsOverBest; self.tolerance = tolerance
            }
            /// Some ε of the grid met the tolerance on this model.
            public var feasibleModel: Bool { gridBest <= tolerance }
            /// The ratio judged: predicted/measured at the step's ε on a feasible model;
            /// on an infeasible one the claimed floor over the grid's best error (the
            /// achievable error the entry must state; no ε is usable, so which one is
            /// recommended does not matter).
            public var ratio: Double { feasibleModel ? predicted / measured : floor / gridBest }
        }

        /// The rule of the regimes issue (docs/NUMERICS.md §10): median ratio within 2×, every
        /// one within 3×, and on the models where some ε meets the tolerance the step's ε
        /// within 3× of the grid's best. Where no ε meets it, the step must say so (a claim
        /// of feasibility there fails the entry) and its floor is the predicted error judged.
        public init(models: [String], outcomes: [Outcome]) {
            self.models = models
            let r = outcomes.map { $0.ratio }.map { $0.isFinite && $0 > 0 ? $0 : .infinity }
            let sorted = r.sorted()
            let n = sorted.count
            let median = n == 0 ? Double.nan : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] * sorted[n / 2]).squareRoot()
            func spread(_ x: Double) -> Double { x.isFinite && x > 0 ? max(x, 1 / x) : .infinity }
            let feasible = outcomes.filter(\.feasibleModel)
            let worst = r.map(spread).max() ?? .nan
            let epsWorst = feasible.isEmpty ? 1 : feasible.map { spread($0.epsOverBest) }.max()!
            modelsFeasible = feasible.count
            falseFeasible = outcomes.filter { !$0.feasibleModel && $0.claimsFeasible }.count
            ok = n > 0 && spread(median) <= 2 && worst <= 3 && epsWorst <= 3 && falseFeasible == 0
            func defined(_ x: Double) -> Double? { x.isFinite ? x : nil }
            ratioMedian = defined(median); ratioWorst = defined(worst)
            epsRatioWorst = feasible.isEmpty ? nil : defined(epsWorst)
        }
    }

    enum CodingKeys: String, CodingKey {
        case param, compute, grad, scheme, stepPolicy = "step_policy", policy, derivedFrom = "derived_from", epsStar = "eps_star"
        case epsLo = "eps_lo", epsHi = "eps_hi", bandCurves = "band_curves", tolerance, predictedErr = "predicted_err", validatedErr = "validated_err"
        case validatedOK = "validated_ok", curves, lanczosReorth = "lanczos_reorth", lanczosMaxSteps = "lanczos_max_steps"
        case lanczosEpsTested = "lanczos_eps_tested", normalization, feasible, errFloor = "err_floor", calibration, validation
        case perModel = "per_model", recommendedStep = "recommended_step"
    }

    /// The step an entry recommends given its two verdicts: the static ε when it passed,
    /// else the per-model step when it was validated (passed or not: on the same models
    /// it is the better-judged procedure), else the static ε unvalidated.
    public static func recommendation(staticOK: Bool, perModel: Validation?) -> (step: String, ok: Bool) {
        if staticOK { return ("static", true) }
        if let p = perModel { return ("per_model", p.ok) }
        return ("static", false)
    }
}

/// The regimes file: `regimes.json`.
public struct RegimesFile: Codable, Sendable, Equatable {
    public static let schemaName = "hessian-harness/regimes"
    /// 2: saturated points left out of the fits; normalization, feasibility, the error
    /// floor, the calibration set, and the held-out validation of the static ε and of
    /// the per-model step. 3: `recommended_step` (static or per-model ε) and `validated_ok`
    /// its verdict; held-out models where no ε meets the tolerance judged by the floor
    /// (`models_feasible`, `false_feasible`). Version 2 files are read and migrated.
    public static let schemaVersion = 3
    public var schema: String
    public var version: Int
    public var entries: [RegimeEntry]

    public init(entries: [RegimeEntry]) { schema = Self.schemaName; version = Self.schemaVersion; self.entries = entries }

    /// Parses and checks a regimes file (schema name and version, finite positive ε).
    /// A version-2 file is migrated as its consumers read it then: its `validated_ok`
    /// was the static ε's verdict, and an entry whose static ε failed but whose per-model
    /// step passed was used through that step; its verdicts keep the old rule, which
    /// judged infeasible models like the others.
    public static func decode(_ data: Data, path: String) throws -> RegimesFile {
        var f: RegimesFile
        do { f = try JSONDecoder().decode(RegimesFile.self, from: data) } catch {
            throw StudyError("\(path): not a regimes file (\(Self.schemaName) v\(Self.schemaVersion)): \(Self.describe(error))")
        }
        guard f.schema == schemaName, f.version == schemaVersion || f.version == 2 else {
            throw StudyError("\(path): schema '\(f.schema)' version \(f.version); expected '\(schemaName)' version \(schemaVersion) (or 2)")
        }
        if f.version == 2 {
            for i in f.entries.indices {
                // v2 fell back to the per-model step only when the static ε failed and it had passed.
                let perModel = !f.entries[i].validatedOK && f.entries[i].perModel?.ok == true
                f.entries[i].recommendedStep = perModel ? "per_model" : "static"
                if perModel { f.entries[i].validatedOK = true }
            }
        }
        for (i, e) in f.entries.enumerated() where e.recommendedStep != "static" && e.recommendedStep != "per_model" {
            throw StudyError("\(path): entry \(i) has recommended_step '\(e.recommendedStep ?? "null")' (static or per_model)")
        }
        for (i, e) in f.entries.enumerated() where !(e.epsStar > 0 && e.epsStar.isFinite) {
            throw StudyError("\(path): entry \(i) has eps_star \(e.epsStar) (must be finite and > 0)")
        }
        return f
    }

    static func describe(_ e: Error) -> String {
        switch e {
        case DecodingError.keyNotFound(let k, let c): return "missing key '\(k.stringValue)' at \(path(c))"
        case DecodingError.typeMismatch(let t, let c): return "wrong type at \(path(c)) (expected \(t))"
        case DecodingError.valueNotFound(let t, let c): return "null at \(path(c)) (expected \(t))"
        case DecodingError.dataCorrupted(let c): return "malformed JSON \(c.debugDescription)"
        default: return "\(e)"
        }
    }
    static func path(_ c: DecodingError.Context) -> String {
        c.codingPath.isEmpty ? "top level" : c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    public func json() throws -> Data { try prettyJSON(self) }

    public static let csvHeader = ["param", "compute", "grad", "scheme", "step_policy", "normalization", "policy", "eps_star", "eps_lo", "eps_hi",
                                   "band_curves", "tolerance", "predicted_err", "feasible", "err_floor", "validated_err", "pred_over_meas_median",
                                   "pred_over_meas_worst", "eps_over_best_worst", "static_ok", "per_model_pred_over_meas_median",
                                   "per_model_pred_over_meas_worst", "per_model_eps_over_best_worst", "per_model_ok", "recommended_step", "validated_ok",
                                   "models_feasible", "false_feasible", "per_model_false_feasible", "curves",
                                   "calibration_parameters_min", "calibration_parameters_max", "lanczos_reorth", "lanczos_max_steps",
                                   "lanczos_eps_tested"]
    public var csvRows: [[String]] {
        func count(_ n: Int?) -> String { n.map { "\($0)" } ?? "" }
        return entries.map { e in
            [e.param, e.compute, e.grad, e.scheme, e.stepPolicy, e.normalization, e.policy, cell(e.epsStar), cell(e.epsLo), cell(e.epsHi),
             "\(e.bandCurves)", cell(e.tolerance), cell(e.predictedErr), e.feasible ? "1" : "0", cell(e.errFloor), cell(e.validatedErr),
             cell(e.validation?.ratioMedian), cell(e.validation?.ratioWorst), cell(e.validation?.epsRatioWorst), e.validation?.ok == true ? "1" : "0",
             cell(e.perModel?.ratioMedian), cell(e.perModel?.ratioWorst), cell(e.perModel?.epsRatioWorst), e.perModel?.ok == true ? "1" : "0",
             e.recommendedStep ?? "", e.validatedOK ? "1" : "0", count(e.validation?.modelsFeasible), count(e.validation?.falseFeasible), count(e.perModel?.falseFeasible),
             "\(e.curves)", "\(e.calibration.parametersMin)", "\(e.calibration.parametersMax)", e.lanczosReorth,
             "\(e.lanczosMaxSteps)", cell(e.lanczosEpsTested)]
        }
    }
}

/// Study `regimes`: derives the regimes from an `fd-bias` fits table (and, where
/// given, a `krylov-stability` summary table), then validates every entry on
/// models and seeds not used to derive it.
///
/// Derivation per (param, compute, grad, scheme, step policy), over the curves of fits.csv
/// (whose error models leave saturated points out, docs/NUMERICS.md §4):
/// - ε*: geometric mean over curves of the fitted `eps_star` (or, where the fit left
///   it unresolved — infinite, zero or outside the measured range — the curve's
///   best measured grid point `meas_eps_best`), clamped into the band;
/// - band: the intersection of the measured bands (`meas_eps_lo`, `meas_eps_hi`) of the
///   curves that met the tolerance (`band_curves` counts them); no band when none did;
/// - predicted error: the geometric mean over the curves of the fitted model at ε*
///   (a typical calibration model); `feasible` when it meets the tolerance;
///   `err_floor`: the geometric mean of each curve's own minimum (what a per-model ε reaches);
/// - Lanczos: among the krylov-stability rows of the same param/grad/krylov formats,
///   scheme and step policy at the tested ε nearest ε* (in log distance), the cheapest reorthogonalization
///   (none < selective < partial < full) reaching the largest step count at which
///   every run was trustworthy.
/// Validation, on models and seeds not used to derive the entry, against the exact HVP
/// (`reference`: mpfr256, or fp64 for large models): the FD-HVP at the static ε*
/// (`rel_err`; `validated_err` is the largest), the per-model step of ``StepRecommendation``
/// (`rec_*`), and the best ε of a 4-per-decade grid spanning both ±1 decade. The entry's
/// `validation` and `per_model` summarize them by the rule of ``RegimeEntry/Validation``
/// (median within 2×, worst within 3×, ε within 3× where an ε meets the tolerance, the
/// floor judged where none does); `recommended_step` is the static ε if it passed, else
/// the per-model step, and `validated_ok` that step's verdict.
/// Tables: `regimes.csv` (+ `regimes.json`), `validation.csv`.
public struct RegimesStudy: Study {
    public struct Config: Sendable {
        public var fits: [[String: String]]
        public var krylov: [[String: String]]
        public var validateModels: [String]
        public var validateSeeds: [UInt64]
        public var tolerance: Double?
        /// The exact HVP the validation measures against (fp64 for models too large for mpfr256).
        public var reference: ReferenceHVP.Kind
        /// Validate only the entries whose compute format is one of these (nil: every entry).
        /// The others are written unvalidated (`validated_ok` false, no `validation`): a
        /// validation on a model where emulated bf16 compute would take hours.
        public var validateCompute: [String]?
        /// Validate only the entries of these FD schemes (nil: every scheme); with
        /// `validateCompute`, an entry must match both. On a 10⁸-parameter model under an
        /// ordered-sum policy one Richardson validation takes ~20 minutes.
        public var validateSchemes: [String]?
        public init(fits: [[String: String]], krylov: [[String: String]], validateModels: [String], validateSeeds: [UInt64], tolerance: Double? = nil,
                    reference: ReferenceHVP.Kind = .mpfr256, validateCompute: [String]? = nil, validateSchemes: [String]? = nil) {
            self.fits = fits; self.krylov = krylov; self.validateModels = validateModels; self.validateSeeds = validateSeeds; self.tolerance = tolerance
            self.reference = reference; self.validateCompute = validateCompute; self.validateSchemes = validateSchemes
        }
    }
    public let config: Config
    public let name = "regimes"
    public let entries: [RegimeEntry]
    struct Check: Sendable { var entry: Int; var model: String; var seed: UInt64 }
    let checks: [Check]

    public static let fitColumns = ["model", "policy", "param", "compute", "grad", "scheme", "step_policy", "seed", "order_k", "u", "tolerance", "fit_a", "fit_b",
                             "eps_star", "err_star", "meas_eps_lo", "meas_eps_hi", "meas_eps_best", "meas_err_min"]

    public init(_ c: Config) throws {
        guard !c.fits.isEmpty else { throw StudyError("the fd-bias fits table has no rows") }
        if let missing = Self.fitColumns.first(where: { c.fits[0][$0] == nil }) {
            throw StudyError("the fd-bias fits table has no column '\(missing)' (is it an fd-bias fits.csv?)")
        }
        guard !c.validateModels.isEmpty, !c.validateSeeds.isEmpty else { throw StudyError("validate needs at least one model and one seed") }
        let derived = Set(c.fits.map { "\($0["model"]!)|\($0["seed"]!)" })
        for m in c.validateModels { for s in c.validateSeeds where derived.contains("\(m)|\(s)") {
            throw StudyError("validation model '\(m)' with seed \(s) was used to derive the regimes; validate on held-out models or seeds")
        } }
        if let t = c.tolerance { guard t > 0, t.isFinite else { throw StudyError("tolerance must be finite and > 0") } }
        config = c
        func num(_ r: [String: String], _ k: String) throws -> Double {
            guard let s = r[k] else { throw StudyError("fits row without '\(k)'") }
            if s.isEmpty { return .nan }
            guard let x = Double(s) else { throw StudyError("fits column '\(k)': '\(s)' is not a number") }
            return x
        }
        var order: [String] = []
        var groups: [String: [[String: String]]] = [:]
        for r in c.fits {
            let k = ["param", "compute", "grad", "scheme", "step_policy"].map { r[$0]! }.joined(separator: "|")
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(r)
        }
        var es: [RegimeEntry] = []
        for k in order {
            let rows = groups[k]!
            var policies: [String] = []
            for r in rows where !policies.contains(r["policy"]!) { policies.append(r["policy"]!) }
            let tol = try c.tolerance ?? rows.map { try num($0, "tolerance") }.max()!
            var logs = 0.0
            var lo = 0.0, hi = Double.infinity, bandCurves = 0
            for r in rows {
                let star = try num(r, "eps_star"), best = try num(r, "meas_eps_best")
                let mlo = try num(r, "meas_eps_lo"), mhi = try num(r, "meas_eps_hi")
                let inRange = star.isFinite && star > 0 && (mlo.isNaN || (star >= mlo / 10 && star <= mhi * 10))
                logs += Double.log(inRange ? star : best)
                if !mlo.isNaN && !mhi.isNaN { lo = max(lo, mlo); hi = min(hi, mhi); bandCurves += 1 }
            }
            var eps = Double.exp(logs / Double(rows.count))
            let banded = bandCurves > 0 && lo <= hi
            if banded { eps = min(max(eps, lo), hi) }
            // Predicted error at ε* and the floor: geometric means over the curves (a typical
            // model); the floor takes each curve's own minimum (err_star, or the measured
            // minimum where the fit left a term unresolved).
            var logPred = 0.0, logFloor = 0.0
            for r in rows {
                let f = ErrorModelFit(k: Int(try num(r, "order_k")), u: try num(r, "u"), a: try num(r, "fit_a"), b: try num(r, "fit_b"),
                                      pointsA: 0, pointsB: 0)
                let e = f.err(eps), star = try num(r, "err_star"), meas = try num(r, "meas_err_min")
                logPred += Double.log(e > 0 && e.isFinite ? e : meas)
                logFloor += Double.log(star > 0 && star.isFinite ? min(star, meas) : meas)
            }
            let predicted = Double.exp(logPred / Double(rows.count)), floor = Double.exp(logFloor / Double(rows.count))
            var calModels: [String] = []
            for r in rows where !calModels.contains(r["model"]!) { calModels.append(r["model"]!) }
            let counts = calModels.map { (try? ModelSpec.architecture($0).parameterCount) ?? 0 }
            let first = rows[0]
            let krylovFormat = (try? PrecisionPolicy(policies[0]))?.krylov.name
            let (reorth, steps, epsTested) = Self.lanczosSettings(c.krylov, param: first["param"]!, compute: first["compute"]!, grad: first["grad"]!,
                                                                  scheme: first["scheme"]!, step: first["step_policy"]!, eps: eps,
                                                                  krylov: krylovFormat)
            es.append(RegimeEntry(param: first["param"]!, compute: first["compute"]!, grad: first["grad"]!, scheme: first["scheme"]!, stepPolicy: first["step_policy"]!,
                                  policy: policies[0], derivedFrom: policies, epsStar: eps, epsLo: banded ? lo : nil,
                                  epsHi: banded ? hi : nil, bandCurves: bandCurves, tolerance: tol, predictedErr: predicted, validatedErr: nil, validatedOK: false,
                                  curves: rows.count, lanczosReorth: reorth, lanczosMaxSteps: steps, lanczosEpsTested: epsTested,
                                  normalization: first["step_policy"]! == "relative" ? "relative: eps = eta * ||theta||_2 / ||v||_2" : "absolute",
                                  feasible: predicted <= tol, errFloor: floor,
                                  calibration: .init(models: calModels, parametersMin: counts.min() ?? 0, parametersMax: counts.max() ?? 0),
                                  validation: nil, perModel: nil, recommendedStep: "static"))
        }
        entries = es
        var cs: [Check] = []
        func listed(_ list: [String]?, _ value: String) -> Bool { list.map { $0.contains { $0.lowercased() == value.lowercased() } } ?? true }
        func distinct(_ key: (RegimeEntry) -> String) -> String {
            es.map(key).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.joined(separator: ", ")
        }
        if let only = c.validateCompute, !es.contains(where: { listed(only, $0.compute) }) {
            throw StudyError("validate compute [\(only.joined(separator: ", "))] matches no entry (compute formats of the entries: \(distinct(\.compute)))")
        }
        if let only = c.validateSchemes, !es.contains(where: { listed(only, $0.scheme) }) {
            throw StudyError("validate schemes [\(only.joined(separator: ", "))] matches no entry (schemes of the entries: \(distinct(\.scheme)))")
        }
        let validated = es.indices.filter { listed(c.validateCompute, es[$0].compute) && listed(c.validateSchemes, es[$0].scheme) }
        if validated.isEmpty {
            throw StudyError("validate compute [\(c.validateCompute?.joined(separator: ", ") ?? "")] and schemes [\(c.validateSchemes?.joined(separator: ", ") ?? "")] together match no entry")
        }
        for e in validated { for m in c.validateModels { for s in c.validateSeeds { cs.append(Check(entry: e, model: m, seed: s)) } } }
        checks = cs
    }

    static func lanczosSettings(_ rows: [[String: String]], param: String, compute: String? = nil, grad: String, scheme: String, step: String,
                                eps: Double, krylov: String? = nil) -> (String, Int, Double?) {
        let mine = rows.filter { $0["param"] == param && $0["grad"] == grad && (compute == nil || $0["compute"] == nil || $0["compute"] == compute) && $0["scheme"] == scheme && $0["step_policy"] == step
            && (krylov == nil || $0["krylov"] == nil || $0["krylov"] == krylov) }
        let tested = Set(mine.compactMap { Double($0["eps"] ?? "") }).filter { $0 > 0 }
        guard let near = tested.min(by: { abs(Double.log($0 / eps)) < abs(Double.log($1 / eps)) }) else { return ("full", 0, nil) }
        let at = mine.filter { Double($0["eps"] ?? "") == near }
        var best = ("full", 0)
        for r in ["none", "selective", "partial", "full"] {
            let rr = at.filter { $0["reorth"] == r }
            let steps = Set(rr.compactMap { Int($0["steps"] ?? "") }).sorted()
            var ok = 0
            for s in steps where rr.filter({ Int($0["steps"] ?? "") == s }).allSatisfy({ $0["trustworthy"] == "1" }) { ok = s }
            if ok > best.1 { best = (r, ok) }
        }
        return (best.0, best.1, near)
    }

    public var units: [StudyUnit] { checks.indices.map { StudyUnit(key: unitKey($0)) } }
    public func unitKey(_ i: Int) -> String {
        let ch = checks[i], e = entries[ch.entry]
        return "\(e.param)|\(e.compute)|\(e.grad)|\(e.scheme)|\(e.stepPolicy)|\(ch.model)|\(ch.seed)"
    }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.validateSeeds.map { ("validate_seed_\($0)", $0) }) }

    public static let validationHeader = ["param", "compute", "grad", "scheme", "step_policy", "policy", "model", "n", "seed", "reference", "eps", "eps_abs",
                                          "rel_err", "predicted_err", "tolerance", "pred_over_meas", "grid_best_eps_abs", "grid_best_err",
                                          "eps_over_best", "rec_eps_abs", "rec_predicted_err", "rec_feasible", "rec_measured_err", "rec_pred_over_meas",
                                          "rec_eps_over_best"]

    /// One validation: the entry's static ε on a held-out model (measured error), the
    /// per-model step (`recommend`) on the same model, and the best ε of a
    /// 4-per-decade grid spanning both choices ±1 decade.
    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let ch = checks[index]
        let e = entries[ch.entry]
        let policy: PrecisionPolicy
        do { policy = try PrecisionPolicy(e.policy) } catch { throw StudyError("policy '\(e.policy)': \(error)") }
        guard let scheme = FDScheme(rawValue: e.scheme) else { throw StudyError("unknown scheme '\(e.scheme)' in the fits table") }
        let (ref, model, theta, v) = try ReferenceHVP.make(config.reference, spec: ch.model, seed: ch.seed, param: policy.param, context: context)
        let engine = try FDEngine(model: model, policy: policy)
        let step = try stepCheck(e.stepPolicy, e.epsStar)
        let key = unitKey(index)
        func fd(_ s: StepPolicy, _ tag: String) throws -> FDResult {
            try StochasticRounding.withSeed(derivedSeed(ch.seed, "regimes", key, tag)) {
                try engine.estimate(theta: theta, v: v, scheme: scheme, step: s)
            }
        }
        let r = try fd(step, "static")
        let measured = ref.relativeError(r.hv)
        let rec = try StepRecommendation.estimate(engine: engine, theta: theta, v: v, scheme: scheme, tolerance: e.tolerance,
                                                  seed: derivedSeed(ch.seed, "regimes", key, "recommend"))
        let recMeasured = ref.relativeError(try fd(.absolute(rec.epsStar), "recommended").hv)
        let best = try bestOnLogGrid(from: min(r.epsilon, rec.epsStar) / 10, to: max(r.epsilon, rec.epsStar) * 10, perDecade: 4) { j, x in
            ref.relativeError(try fd(.absolute(x), "grid\(j)").hv)
        }
        var out = UnitOutput()
        out.append("validation", [e.param, e.compute, e.grad, e.scheme, e.stepPolicy, e.policy, ch.model, "\(model.parameterCount)", "\(ch.seed)",
                                  config.reference.rawValue, cell(e.epsStar), cell(r.epsilon), cell(measured), cell(e.predictedErr), cell(e.tolerance),
                                  cell(e.predictedErr / measured), cell(best.x), cell(best.err), cell(r.epsilon / best.x),
                                  cell(rec.epsStar), definedCell(rec.predictedErr), rec.feasible ? "1" : "0", cell(recMeasured), definedCell(rec.predictedErr / recMeasured),
                                  cell(rec.epsStar / best.x)])
        return out
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        let validation = concatenate("validation", Self.validationHeader, outputs)
        let h = Self.validationHeader
        func col(_ row: [String], _ name: String) -> Double { Double(row[h.firstIndex(of: name)!]) ?? .nan }
        var es = entries
        for i in es.indices where checks.contains(where: { $0.entry == i }) {
            let e = es[i]
            var models: [String] = [], fixed: [RegimeEntry.Validation.Outcome] = [], perModel: [RegimeEntry.Validation.Outcome] = []
            var worst: Double? = nil
            for (u, ch) in checks.enumerated() where ch.entry == i {
                for row in outputs[u].tables["validation"] ?? [] {
                    let err = col(row, "rel_err"), best = col(row, "grid_best_err")
                    worst = max(worst ?? 0, err.isNaN ? .infinity : err)
                    models.append("\(ch.model) seed \(ch.seed)")
                    fixed.append(.init(predicted: e.predictedErr, measured: err, floor: e.errFloor, claimsFeasible: e.feasible, gridBest: best,
                                       epsOverBest: col(row, "eps_over_best"), tolerance: e.tolerance))
                    let recPredicted = col(row, "rec_predicted_err")
                    perModel.append(.init(predicted: recPredicted, measured: col(row, "rec_measured_err"), floor: recPredicted,
                                          claimsFeasible: row[h.firstIndex(of: "rec_feasible")!] == "1", gridBest: best,
                                          epsOverBest: col(row, "rec_eps_over_best"), tolerance: e.tolerance))
                }
            }
            es[i].validatedErr = worst.flatMap { $0.isFinite ? $0 : nil }
            es[i].validation = RegimeEntry.Validation(models: models, outcomes: fixed)
            es[i].perModel = RegimeEntry.Validation(models: models, outcomes: perModel)
            (es[i].recommendedStep, es[i].validatedOK) = RegimeEntry.recommendation(staticOK: es[i].validation!.ok, perModel: es[i].perModel)
        }
        let file = RegimesFile(entries: es)
        return StudyOutput(tables: [StudyTable(name: "regimes", header: RegimesFile.csvHeader, rows: file.csvRows), validation],
                           files: [("regimes.json", try file.json())])
    }
}
