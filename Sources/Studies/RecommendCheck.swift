import RealModule
import Scalars
import Models
import Curvature

/// The exact HVP a measured error is taken against (``ReferenceKind``), with the model
/// and the point it was taken at.
public struct ReferenceHVP: Sendable {
    public typealias Kind = ReferenceKind
    public var kind: Kind { setup.reference }
    let setup: ModelSetup

    public static func make(_ kind: Kind, spec: String, seed: UInt64, param: ScalarFormat, context: StudyContext) throws
        -> (reference: ReferenceHVP, model: any DifferentiableModel, theta: [Double], v: [Double]) {
        let s = try ModelSetup.make(spec, seed: seed, param: param, reference: kind, context: context)
        return (ReferenceHVP(setup: s), s.model, s.theta, s.v)
    }

    /// `rel_err` of x against the reference.
    public func relativeError(_ x: [Double]) -> Double { setup.relativeError(x) }

    /// The fp64 exact HVP (`Dual<Double>`) at the same model and point.
    public var fp64: ReferenceHVP { ReferenceHVP(setup: setup.withFP64Reference) }
}

/// Study `recommend-check`: how good is ``StepRecommendation`` — the ε that
/// `hessian-harness recommend` picks from the model alone — on models it knows
/// nothing about? Per model × policy × scheme × seed: the recommendation (ε*, η*, the
/// predicted error), the error measured against the reference at ε*, and the best ε
/// of a check grid with `check_per_decade` points per decade over the recommendation
/// grid's range.
///
/// Tables:
/// - `check.csv`: one row per configuration: `eps_star`, `eta_star`, `predicted_err`,
///   `feasible`, `fit_truncation`, `fit_noise`, `pairs_used`, `saturated` (the model
///   could not be fitted: ε is the larger step of the steadiest pair, for Richardson the
///   midpoint of that pair, and `predicted_err`
///   the reference-free floor estimate, docs/NUMERICS.md §4), `measured_err`,
///   `pred_over_meas` (predicted / measured), `grid_best_eta`, `grid_best_err`,
///   `eta_star_over_best`, `meas_over_best` (measured at ε* / best on the check grid);
///   with the mpfr256 reference also `measured_err_fp64_ref` (the same error against the
///   fp64 exact HVP) and `ref_agreement_digits` (−log₁₀ of their relative difference);
///   `probe_format`, `probe_rel_diff`: the bias probe (``StepRecommendation/Probe``), part
///   of `predicted_err`.
/// - `grid.csv`: the recommendation grid per configuration: `eps`, `eta`, `hv_norm`,
///   `diff_norm` (to the next point), `swamped_fraction`, `used` (the pair entered the
///   fit), `pred_err`, `rel_err` (measured; not used by the recommendation).
public struct RecommendCheckStudy: Study {
    public struct Config: Sendable {
        public var models: [String]
        public var policies: [PrecisionPolicy]
        public var schemes: [FDScheme]
        public var seeds: [UInt64]
        public var tolerance: Double
        public var reference: ReferenceHVP.Kind
        public var checkPerDecade: Int
        public init(models: [String], policies: [PrecisionPolicy], schemes: [FDScheme], seeds: [UInt64], tolerance: Double,
                    reference: ReferenceHVP.Kind = .mpfr256, checkPerDecade: Int = 4) {
            self.models = models; self.policies = policies; self.schemes = schemes; self.seeds = seeds; self.tolerance = tolerance
            self.reference = reference; self.checkPerDecade = checkPerDecade
        }
    }
    public let config: Config
    public let name = "recommend-check"
    struct Case: Sendable { var model: String; var policy: PrecisionPolicy; var scheme: FDScheme; var seed: UInt64 }
    let cases: [Case]

    public init(_ c: Config) throws {
        guard !c.models.isEmpty, !c.policies.isEmpty, !c.schemes.isEmpty, !c.seeds.isEmpty else {
            throw StudyError("empty grid: models, policies, schemes and seeds each need at least one value")
        }
        guard c.tolerance > 0, c.tolerance.isFinite else { throw StudyError("tolerance must be finite and > 0 (got \(c.tolerance))") }
        guard (1...20).contains(c.checkPerDecade) else { throw StudyError("check_per_decade must be in 1...20 (got \(c.checkPerDecade))") }
        config = c
        var cs: [Case] = []
        for m in c.models { for p in c.policies { for s in c.schemes { for seed in c.seeds {
            cs.append(Case(model: m, policy: p, scheme: s, seed: seed))
        } } } }
        cases = cs
    }

    public var units: [StudyUnit] { cases.indices.map { StudyUnit(key: unitKey($0)) } }
    public func unitKey(_ i: Int) -> String { let c = cases[i]; return "\(c.model)|\(c.policy)|\(c.scheme.rawValue)|\(c.seed)" }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.seeds.map { ("seed_\($0)", $0) }) }

    static let lead = ["model", "n", "policy", "param", "compute", "grad", "scheme", "seed", "reference", "tolerance"]
    public static let checkHeader = lead + ["eps_star", "eta_star", "predicted_err", "feasible", "fit_truncation", "fit_noise", "pairs_used", "saturated",
                                            "measured_err", "pred_over_meas", "grid_best_eta", "grid_best_err", "eta_star_over_best",
                                            "meas_over_best", "measured_err_fp64_ref", "ref_agreement_digits", "probe_format", "probe_rel_diff"]
    public static let gridHeader = lead + ["eps", "eta", "hv_norm", "diff_norm", "swamped_fraction", "used", "pred_err", "rel_err"]

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = cases[index]
        let (ref, model, theta, v) = try ReferenceHVP.make(config.reference, spec: c.model, seed: c.seed, param: c.policy.param, context: context)
        let engine = try FDEngine(model: model, policy: c.policy)
        let key = unitKey(index)
        func fd(_ eps: Double, _ tag: String) throws -> FDResult {
            try StochasticRounding.withSeed(derivedSeed(c.seed, "recommend", key, tag)) {
                try engine.estimate(theta: theta, v: v, scheme: c.scheme, step: .absolute(eps))
            }
        }
        var gridErrors: [Double] = []
        let rec = try StepRecommendation.estimate(engine: engine, theta: theta, v: v, scheme: c.scheme, tolerance: config.tolerance,
                                                  seed: derivedSeed(c.seed, key)) { _, hv in gridErrors.append(ref.relativeError(hv)) }
        let lead = [c.model, "\(model.parameterCount)"] + policyCells(c.policy) + [c.scheme.rawValue, "\(c.seed)", config.reference.rawValue,
                                                                                  cell(config.tolerance)]
        var out = UnitOutput()
        for (p, err) in zip(rec.points, gridErrors) {
            out.append("grid", lead + [cell(p.epsilon), cell(p.eta), cell(p.hvNorm), cell(p.diffNorm), cell(p.swampedFraction), p.used ? "1" : "0",
                                       definedCell(rec.predictedError(p.epsilon)), cell(err)])
        }
        let star = rec.epsStar
        let hvStar = try fd(star, "star").hv
        let measured = ref.relativeError(hvStar)
        // With the mpfr256 reference, the same error against the fp64 exact HVP (Dual<Double>):
        // how many significant digits the cheap reference shares with the exact one.
        var fp64Err: Double? = nil, digits: Double? = nil
        if config.reference == .mpfr256 {
            let e = ref.fp64.relativeError(hvStar)
            fp64Err = e
            digits = e == measured ? 17 : -Double.log10(abs(e - measured) / measured)
        }
        // The check grid: check_per_decade points per decade over the recommendation grid's η range.
        let best = try bestOnLogGrid(from: rec.points.first!.eta, to: rec.points.last!.eta, perDecade: config.checkPerDecade) { j, eta in
            ref.relativeError(try fd(eta * star / rec.etaStar, "check\(j)").hv)
        }
        out.append("check", lead + [cell(star), cell(rec.etaStar), definedCell(rec.predictedErr), rec.feasible ? "1" : "0", cell(rec.truncation),
                                    cell(rec.noise), "\(rec.pairsUsed)", rec.saturated ? "1" : "0", cell(measured), definedCell(rec.predictedErr / measured), cell(best.x),
                                    cell(best.err), cell(rec.etaStar / best.x), cell(measured / best.err), cell(fp64Err), cell(digits),
                                    rec.probe?.format ?? "", cell(rec.probe?.relativeDifference)])
        return out
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        StudyOutput(tables: [concatenate("check", Self.checkHeader, outputs), concatenate("grid", Self.gridHeader, outputs)])
    }
}

/// The smallest error over a log-spaced grid from `lo` to `hi` with `perDecade` points
/// per decade (at least two): how the checks find "the best ε" a choice is judged against.
/// `evaluate(j, x)` gives the error at the j-th grid value x.
func bestOnLogGrid(from lo: Double, to hi: Double, perDecade: Int, _ evaluate: (Int, Double) throws -> Double) rethrows -> (x: Double, err: Double) {
    let count = max(2, Int((Double.log10(hi / lo) * Double(perDecade)).rounded()) + 1)
    var best = (x: Double.nan, err: Double.infinity)
    for (j, x) in logGrid(from: lo, to: hi, points: count).enumerated() {
        let e = try evaluate(j, x)
        if e < best.err { best = (x, e) }
    }
    return best
}
