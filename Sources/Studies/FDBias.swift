import RealModule
import Scalars
import Models
import Curvature

/// Study `fd-bias`: error of FD-HVPs against the exact HVP (mpfr256, or fp64 for
/// large models: ``ReferenceKind``) over an ε
/// sweep, split into truncation (`bias_rel`) and rounding (`noise_rel`), for every
/// model × precision policy × scheme × step policy × seed; per curve the fitted
/// error model and the safe band (NUMERICS.md §3–4).
///
/// Tables:
/// - `points.csv`: one row per curve and ε. `eps` is the swept step-policy value
///   (ε for `absolute`, η for `relative`), `eps_abs` the ε applied;
///   `delta_rel_dev = ‖δ − εv‖₂/‖εv‖₂` is how far the perturbation actually applied
///   (δ = fl_param(θ+εv) − θ) is from the intended one.
/// - `fits.csv`: one row per curve: `fit_a`, `fit_b` (with the number of points each
///   was fitted on), `eps_star`, `err_star`, and the safe band at `tolerance` from the
///   fit and from the measured points (`meas_eps_best`, `meas_err_min`: the grid
///   point of smallest error). Empty band cells: no ε meets the tolerance (or, for the
///   fit's band, the band is open on that side). A constant fitted on no point is
///   empty, and so are `eps_star` and `err_star` when either is; `fit_note` says why.
public struct FDBiasStudy: Study {
    public struct Config: Sendable {
        public var models: [String]
        public var policies: [PrecisionPolicy]
        public var schemes: [FDScheme]
        public var stepPolicies: [String]
        public var eps: [Double]
        public var seeds: [UInt64]
        public var tolerance: Double
        public var dominance: Double
        /// Which points the error-model fit leaves out as saturated.
        public var saturation: ErrorModelFit.Saturation
        /// The exact HVP (and the format of ĥ_ref(ε)): mpfr256, or fp64 for large models.
        public var reference: ReferenceKind
        public init(models: [String], policies: [PrecisionPolicy], schemes: [FDScheme], stepPolicies: [String],
                    eps: [Double], seeds: [UInt64], tolerance: Double, dominance: Double = 3,
                    saturation: ErrorModelFit.Saturation = ErrorModelFit.Saturation(), reference: ReferenceKind = .mpfr256) {
            self.models = models; self.policies = policies; self.schemes = schemes; self.stepPolicies = stepPolicies
            self.eps = eps; self.seeds = seeds; self.tolerance = tolerance; self.dominance = dominance; self.saturation = saturation
            self.reference = reference
        }
    }

    public let config: Config
    public let name = "fd-bias"
    struct Curve: Sendable { var model: String; var policy: PrecisionPolicy; var scheme: FDScheme; var step: String; var seed: UInt64 }
    let curves: [Curve]

    public init(_ c: Config) throws {
        guard !c.models.isEmpty, !c.policies.isEmpty, !c.schemes.isEmpty, !c.stepPolicies.isEmpty, !c.eps.isEmpty, !c.seeds.isEmpty else {
            throw StudyError("empty grid: models, policies, schemes, step_policies, eps and seeds each need at least one value")
        }
        try checkSteps(eps: c.eps, stepPolicies: c.stepPolicies)
        guard c.tolerance > 0, c.tolerance.isFinite else { throw StudyError("tolerance must be finite and > 0 (got \(c.tolerance))") }
        config = c
        var cs: [Curve] = []
        for m in c.models { for p in c.policies { for s in c.schemes { for st in c.stepPolicies { for seed in c.seeds {
            cs.append(Curve(model: m, policy: p, scheme: s, step: st, seed: seed))
        } } } } }
        curves = cs
    }

    public var units: [StudyUnit] { curves.indices.map { StudyUnit(key: unitKey($0)) } }
    /// Unit `i`'s key, computed alone (a unit's run must not build every key: quadratic in the sweep's size).
    public func unitKey(_ i: Int) -> String { let c = curves[i]; return "\(c.model)|\(c.policy)|\(c.scheme.rawValue)|\(c.step)|\(c.seed)" }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.seeds.map { ("seed_\($0)", $0) }) }

    public static let pointsHeader = ["model", "policy", "param", "compute", "grad", "scheme", "step_policy", "seed", "eps", "eps_abs", "u",
                                      "rel_err", "bias_rel", "noise_rel", "cos_align", "swamped_fraction", "delta_rel_dev"]
    public static let fitsHeader = ["model", "policy", "param", "compute", "grad", "scheme", "step_policy", "seed", "order_k", "u", "tolerance",
                                    "fit_a", "fit_b", "fit_points_a", "fit_points_b", "eps_star", "err_star",
                                    "fit_eps_lo", "fit_eps_hi", "meas_eps_lo", "meas_eps_hi", "meas_eps_best", "meas_err_min", "fit_note"]

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = curves[index]
        let setup = try ModelSetup.make(c.model, seed: c.seed, param: c.policy.param, reference: config.reference, context: context)
        let engine = try FDEngine(model: setup.model, policy: c.policy)
        let u = engine.unitRoundoff
        let lead = [c.model] + policyCells(c.policy) + [c.scheme.rawValue, c.step, "\(c.seed)"]
        var out = UnitOutput()
        var errs: [Double] = [], biases: [Double] = [], noises: [Double] = [], swamps: [Double] = []
        for (i, eps) in config.eps.enumerated() {
            let step = try StepPolicy.make(kind: c.step, value: eps)
            // Stochastic rounding (if the policy uses it) draws from a stream fixed by the unit and point.
            let r = try StochasticRounding.withSeed(derivedSeed(c.seed, "fd-bias", unitKey(index), "\(i)")) {
                try engine.estimate(theta: setup.theta, v: setup.v, scheme: c.scheme, step: step)
            }
            let ref = setup.referenceFD(scheme: c.scheme, epsilon: r.epsilon, context: context)
            let relErr = setup.relativeError(r.hv)
            let bias = ref.biasRel
            let dn = ref.distance(r.hv)
            let noise = setup.hRefNorm > 0 ? dn / setup.hRefNorm : dn
            var dev = 0.0, nv = 0.0
            let delta = r.delta
            for j in setup.v.indices {
                let ev = r.epsilon * setup.v[j]
                dev += (delta[j] - ev) * (delta[j] - ev); nv += ev * ev
            }
            errs.append(relErr); biases.append(bias); noises.append(noise); swamps.append(r.swampedFraction)
            out.append("points", lead + [cell(eps), cell(r.epsilon), cell(u), cell(relErr), cell(bias), cell(noise),
                                         cell(setup.cosine(r.hv)), cell(r.swampedFraction), cell(nv > 0 ? (dev / nv).squareRoot() : 0)])
        }
        let fit = ErrorModelFit.fit(eps: config.eps, err: errs, bias: biases, noise: noises, swamped: swamps, order: c.scheme.order, u: u,
                                    dominance: config.dominance, saturation: config.saturation)
        let fb = fit.band(tolerance: config.tolerance)
        let mb = measuredBand(eps: config.eps, err: errs, tolerance: config.tolerance)
        let best = errs.indices.min { (errs[$0].isNaN ? .infinity : errs[$0]) < (errs[$1].isNaN ? .infinity : errs[$1]) }!
        // A term with no dominated, unsaturated point is unresolved: its constant, and ε* and
        // err* that depend on it, are undefined (empty cells, the reason in fit_note), never 0 or ∞.
        let resolved = fit.pointsA > 0 && fit.pointsB > 0
        var note: [String] = []
        if fit.pointsA == 0 { note.append("truncation unresolved (no unsaturated point where it dominates)") }
        if fit.pointsB == 0 { note.append("rounding unresolved (no unsaturated point where it dominates)") }
        if !resolved { note.append("eps_star and err_star undefined") }
        out.append("fits", lead + ["\(c.scheme.order)", cell(u), cell(config.tolerance), fit.pointsA > 0 ? cell(fit.a) : "",
                                   fit.pointsB > 0 ? cell(fit.b) : "", "\(fit.pointsA)", "\(fit.pointsB)",
                                   resolved ? cell(fit.epsStar) : "", resolved ? cell(fit.errStar) : "",
                                   fb.map { definedCell($0.lo) } ?? "", fb.map { definedCell($0.hi) } ?? "", cell(mb?.lo), cell(mb?.hi),
                                   cell(config.eps[best]), cell(errs[best]), note.joined(separator: "; ")])
        return out
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        StudyOutput(tables: [concatenate("points", Self.pointsHeader, outputs), concatenate("fits", Self.fitsHeader, outputs)])
    }
}

/// Validates a step policy and value (throws the step policy's own message).
func stepCheck(_ kind: String, _ value: Double) throws -> StepPolicy {
    do { return try StepPolicy.make(kind: kind, value: value) } catch { throw StudyError("\(error)") }
}

/// Every ε finite and > 0, every step policy known (the step policy's own messages).
func checkSteps(eps: [Double], stepPolicies: [String]) throws {
    for e in eps { _ = try stepCheck("absolute", e) }
    for s in stepPolicies { _ = try stepCheck(s, 1) }
}

/// One table from every unit's rows of that name, in unit order.
public func concatenate(_ name: String, _ header: [String], _ outputs: [UnitOutput]) -> StudyTable {
    StudyTable(name: name, header: header, rows: outputs.flatMap { $0.tables[name] ?? [] })
}
