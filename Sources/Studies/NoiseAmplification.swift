import Collectives
import RealModule
import Scalars
import Models
import Curvature

/// Study `noise-amplification` (NUMERICS.md §5): replicates of one FD-HVP that
/// differ only in rounding, and the spread of ĥ across them against ε.
///
/// Replicates (`vary`):
/// - `stochastic-rounding`: R replicates, each with its own stochastic-rounding
///   seed (applied to the policies with `rounding=stochastic` only);
/// - `shards`: one replicate per shard count in `shards` (FSDP-style gradient
///   reduce-scatter: the order in which per-sample contributions are summed changes);
/// - `reduction-order`: every shard count × {sequential, tree}.
///
/// `noise_std_rel` = ‖componentwise sample standard deviation (R − 1 denominator)‖₂
/// / ‖h_ref‖₂. `rel_err_mean` is the mean over replicates of rel_err.
/// Tables: `points.csv` (one row per curve and ε), `replicates.csv` (one row per
/// replicate and ε: its rel_err), `slopes.csv` (per curve `noise_slope` and its r²
/// from a log-log least-squares line over the points with nonzero noise; expected ≈ −1).
public struct NoiseAmplificationStudy: Study {
    public enum Vary: String, Sendable, CaseIterable { case stochasticRounding = "stochastic-rounding", shards, reductionOrder = "reduction-order" }
    public struct Config: Sendable {
        public var models: [String]
        public var policies: [PrecisionPolicy]
        public var schemes: [FDScheme]
        public var stepPolicies: [String]
        public var eps: [Double]
        public var seeds: [UInt64]
        public var vary: [Vary]
        public var replicates: Int
        public var shards: [Int]
        /// The exact HVP `rel_err` and ‖h_ref‖ come from: mpfr256, or fp64 for large models.
        public var reference: ReferenceKind
        public init(models: [String], policies: [PrecisionPolicy], schemes: [FDScheme], stepPolicies: [String], eps: [Double],
                    seeds: [UInt64], vary: [Vary], replicates: Int, shards: [Int], reference: ReferenceKind = .mpfr256) {
            self.models = models; self.policies = policies; self.schemes = schemes; self.stepPolicies = stepPolicies; self.eps = eps
            self.seeds = seeds; self.vary = vary; self.replicates = replicates; self.shards = shards; self.reference = reference
        }
    }

    public let config: Config
    public let name = "noise-amplification"
    struct Curve: Sendable { var model: String; var policy: PrecisionPolicy; var scheme: FDScheme; var step: String; var seed: UInt64; var vary: Vary }
    let curves: [Curve]

    public init(_ c: Config) throws {
        guard !c.models.isEmpty, !c.policies.isEmpty, !c.schemes.isEmpty, !c.stepPolicies.isEmpty, !c.eps.isEmpty, !c.seeds.isEmpty, !c.vary.isEmpty else {
            throw StudyError("empty grid: models, policies, schemes, step_policies, eps, seeds and vary each need at least one value")
        }
        try checkSteps(eps: c.eps, stepPolicies: c.stepPolicies)
        if c.vary.contains(.stochasticRounding) {
            guard c.replicates >= 2 else { throw StudyError("replicates must be ≥ 2 (got \(c.replicates))") }
            guard c.policies.contains(where: { $0.rounding == .stochastic }) else {
                throw StudyError("vary: stochastic-rounding needs at least one policy with rounding=stochastic (with any other rounding the replicates would be identical)")
            }
        }
        if c.vary.contains(.shards) || c.vary.contains(.reductionOrder) {
            guard c.shards.allSatisfy({ $0 >= 1 && $0 <= 64 }) else { throw StudyError("shards must be in 1...64 (got \(c.shards))") }
            guard c.shards.count >= (c.vary.contains(.shards) ? 2 : 1) else { throw StudyError("vary: shards needs at least two shard counts") }
        }
        config = c
        var cs: [Curve] = []
        for m in c.models { for p in c.policies { for s in c.schemes { for st in c.stepPolicies { for seed in c.seeds { for v in c.vary where v != .stochasticRounding || p.rounding == .stochastic {
            cs.append(Curve(model: m, policy: p, scheme: s, step: st, seed: seed, vary: v))
        } } } } } }
        curves = cs
    }

    public var units: [StudyUnit] { curves.indices.map { StudyUnit(key: unitKey($0)) } }
    public func unitKey(_ i: Int) -> String {
        let c = curves[i]
        return "\(c.model)|\(c.policy)|\(c.scheme.rawValue)|\(c.step)|\(c.seed)|\(c.vary.rawValue)"
    }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.seeds.map { ("seed_\($0)", $0) }) }

    public static let lead = ["model", "policy", "param", "compute", "grad", "scheme", "step_policy", "seed", "vary"]
    public static let pointsHeader = lead + ["eps", "eps_abs", "replicates", "noise_std_rel", "rel_err_mean"]
    public static let replicatesHeader = lead + ["eps", "replicate", "shards", "reduction_order", "sr_seed", "rel_err"]
    public static let slopesHeader = lead + ["noise_slope", "noise_slope_r2", "slope_points"]

    /// The replicates of a curve: (shards, order, stochastic-rounding seed).
    func replicates(_ c: Curve, unitKey: String) -> [(Int, ReductionOrder, UInt64)] {
        switch c.vary {
        case .stochasticRounding: return (0..<config.replicates).map { (1, .sequential, derivedSeed(c.seed, "noise", unitKey, "\($0)")) }
        case .shards: return config.shards.map { ($0, .sequential, c.seed) }
        case .reductionOrder: return config.shards.flatMap { s in [(s, ReductionOrder.sequential, c.seed), (s, .tree, c.seed)] }
        }
    }

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = curves[index]
        let key = unitKey(index)
        let setup = try ModelSetup.make(c.model, seed: c.seed, param: c.policy.param, reference: config.reference, context: context)
        let engine = try FDEngine(model: setup.model, policy: c.policy)
        let lead = [c.model] + policyCells(c.policy) + [c.scheme.rawValue, c.step, "\(c.seed)", c.vary.rawValue]
        let reps = replicates(c, unitKey: key)
        var out = UnitOutput()
        var noise: [Double] = []
        for eps in config.eps {
            let step = try StepPolicy.make(kind: c.step, value: eps)
            var hs: [[Double]] = [], errs: [Double] = []
            var epsAbs = 0.0
            for (r, (shards, order, sr)) in reps.enumerated() {
                let res = try StochasticRounding.withSeed(sr) {
                    try engine.estimate(theta: setup.theta, v: setup.v, scheme: c.scheme, step: step, shards: shards, order: order)
                }
                epsAbs = res.epsilon
                hs.append(res.hv)
                errs.append(setup.relativeError(res.hv))
                out.append("replicates", lead + [cell(eps), "\(r)", "\(shards)", order.rawValue, "\(sr)", cell(errs.last!)])
            }
            let std = componentwiseStdNorm(hs)
            let ns = setup.hRefNorm > 0 ? std / setup.hRefNorm : std
            noise.append(ns)
            let meanErr = errs.reduce(0, +) / Double(errs.count)
            out.append("points", lead + [cell(eps), cell(epsAbs), "\(hs.count)", cell(ns), cell(meanErr)])
        }
        let fit = logLogFit(x: config.eps, y: noise)
        out.append("slopes", lead + [cell(fit?.slope), cell(fit?.r2), "\(zip(config.eps, noise).filter { $0.1 > 0 }.count)"])
        return out
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        StudyOutput(tables: [concatenate("points", Self.pointsHeader, outputs),
                             concatenate("replicates", Self.replicatesHeader, outputs),
                             concatenate("slopes", Self.slopesHeader, outputs)])
    }
}

/// ‖std‖₂ of the componentwise sample standard deviation (R − 1 denominator,
/// two-pass) of R ≥ 2 vectors.
public func componentwiseStdNorm(_ xs: [[Double]]) -> Double {
    guard xs.count >= 2 else { return 0 }
    let r = Double(xs.count)
    var total = 0.0
    for i in xs[0].indices {
        var mean = 0.0
        for x in xs { mean += x[i] }
        mean /= r
        var ss = 0.0
        for x in xs { ss += (x[i] - mean) * (x[i] - mean) }
        total += ss / (r - 1)
    }
    return total.squareRoot()
}
