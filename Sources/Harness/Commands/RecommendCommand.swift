import Foundation
import Scalars
import Models
import Curvature
import Studies

/// `hessian-harness recommend --model SPEC --policy P --scheme S [--tolerance T] …`: an FD
/// step for this model, chosen from the model itself with no reference HVP
/// (``StepRecommendation``): ε, its relative form η = ε‖v‖/‖θ‖, the predicted error and
/// the band where the prediction meets the tolerance, or a plain statement that no ε
/// does and what error is achievable. `--reference fp64|mpfr256` also measures the
/// error at ε against that exact HVP (a check, not used by the choice).
public struct RecommendCommand {
    public var model: String
    public var policy: String
    public var scheme: String
    public var tolerance: Double
    public var shards: Int
    public var reference: String
    public var seed: UInt64
    public var out: String?
    public var command: [String]
    /// `--params PATTERN` (``ParameterSubset``).
    public var params: String? = nil
    /// Run the bias probe (``StepRecommendation/Probe``).
    public var biasProbe = true

    public init(model: String, policy: String, scheme: String, tolerance: Double, shards: Int, reference: String, seed: UInt64,
                out: String?, command: [String]) {
        self.model = model; self.policy = policy; self.scheme = scheme; self.tolerance = tolerance; self.shards = shards
        self.reference = reference; self.seed = seed; self.out = out; self.command = command
    }

    /// What the command found, for `slq --eps auto` and the files.
    public struct Outcome {
        public var recommendation: StepRecommendation
        public var measuredErr: Double?
        public var summaryLine: String
    }

    /// Validates, runs and returns the outcome (writes nothing).
    public func compute() throws -> (Outcome, PrecisionPolicy, FDScheme, any DifferentiableModel) {
        var m: any DifferentiableModel
        do { m = try ModelSpec.build(model, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        let pol: PrecisionPolicy
        do { pol = try PrecisionPolicy(policy) } catch { throw HarnessError("--policy: \(error)") }
        m = try ParamsOption.restrict(m, pattern: params, seed: seed, policy: pol)
        guard let fd = FDScheme(rawValue: scheme) else { throw HarnessError("unknown --scheme '\(scheme)' (known: forward, central, richardson)") }
        guard tolerance > 0, tolerance.isFinite else { throw HarnessError("--tolerance must be finite and > 0 (got \(tolerance))") }
        guard ["none", "fp64", "mpfr256"].contains(reference) else { throw HarnessError("unknown --reference '\(reference)' (known: none, fp64, mpfr256)") }
        let nShards = try Cluster.shards(requested: shards)
        try ModelMemory.check(m, format: pol.compute, dual: false, what: "a gradient of the model")
        if reference != "none" { do { try m.checkExactHVP(format: reference) } catch { throw HarnessError("\(error)") } }
        if reference != "none" { try ModelMemory.check(m, format: ScalarFormat(reference), dual: true, what: "the \(reference) reference HVP") }
        let param = try pol.arithmetic(pol.param)
        let theta = ModelSetup.parameters(m, seed: seed, param: param)
        let v = ModelSetup.direction(count: m.parameterCount, seed: seed)
        let engine: FDEngine
        do { engine = try FDEngine(model: m, policy: pol) } catch { throw HarnessError("\(error)") }
        let rec = try StepRecommendation.estimate(engine: engine, theta: theta, v: v, scheme: fd, tolerance: tolerance, seed: seed, shards: nShards,
                                                  probe: biasProbe)
        var measured: Double? = nil
        if reference != "none" {
            let hv = try StochasticRounding.withSeed(derivedSeed(seed, "recommend", "star")) {
                try engine.estimate(theta: theta, v: v, scheme: fd, step: .absolute(rec.epsStar), shards: nShards).hv
            }
            let href = Self.exactHVP(m, theta: theta, v: v, inMPFR: reference == "mpfr256")
            let nr = href.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let d = zip(hv, href).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            measured = nr > 0 ? d / nr : d
        }
        let e = rec.epsStar
        var line: String
        if rec.saturated {
            if rec.floorEstimate != nil {
                line = "no eps meets the tolerance \(short(tolerance)): the FD-HVP of this policy is saturated on this model (errors of ~0.3 "
                    + "or more across the grid, no error model can be fitted); achievable rel_err ~\(short(rec.predictedErr)) (reference-free estimate: "
                    + "the steadiest neighbours' difference, or the bias probe's if larger), at eps = \(short(e)) (eta = \(short(rec.etaStar))). Use a wider policy, or check against --reference"
            } else {
                line = "no eps meets the tolerance \(short(tolerance)): the FD-HVP of this policy is saturated on this model (every grid point "
                    + "swamped, no error estimated); the textbook step is eps = \(short(e)) (eta = \(short(rec.etaStar))). Use a wider policy, "
                    + "or check against --reference"
            }
        } else if rec.feasible, let b = rec.band {
            line = "eps = \(short(e)) (eta = \(short(rec.etaStar))), predicted rel_err \(short(rec.predictedErr)) ≤ tolerance \(short(tolerance)); "
                + "band [\(short(b.lo)), \(short(b.hi))]"
        } else {
            line = "no eps meets the tolerance \(short(tolerance)): the smallest predicted rel_err is \(short(rec.predictedErr)) at eps = \(short(e)) "
                + "(eta = \(short(rec.etaStar)))"
        }
        if let p = rec.probe {
            line += "; the \(p.format) FD-HVP at eps differs by \(short(p.relativeDifference)) (bias probe, included in the prediction)"
        }
        if let measured { line += "; measured against \(reference): \(short(measured))" }
        return (Outcome(recommendation: rec, measuredErr: measured, summaryLine: line), pol, fd, m)
    }

    /// The exact HVP in fp64 (Dual<Double>) or mpfr256, as Doubles.
    static func exactHVP<M: DifferentiableModel>(_ m: M, theta: [Double], v: [Double], inMPFR: Bool) -> [Double] {
        if inMPFR { return m.exactHVP(theta.map { MPFloat<256>($0) }, v.map { MPFloat<256>($0) }).hv.map { $0.doubleValue } }
        return m.exactHVP(theta, v).hv
    }

    public func run() throws {
        let start = Date()
        if let o = out, o.isEmpty { throw HarnessError("--out must not be empty") }
        let (outcome, pol, _, m) = try compute()
        guard Cluster.isRoot else { return }
        let rec = outcome.recommendation
        if let out {
            var summary = Table(header: ["model", "n", "policy", "scheme", "seed", "tolerance", "eps", "eta", "predicted_err", "feasible",
                                         "eps_lo", "eps_hi", "fit_truncation", "fit_noise", "hv_norm", "pairs_used", "saturated", "reference",
                                         "measured_err", "probe_format", "probe_rel_diff"])
            summary.append([model, "\(m.parameterCount)", pol.description, scheme, "\(seed)", csvNumber(tolerance), csvNumber(rec.epsStar),
                            csvNumber(rec.etaStar), rec.predictedErr.isFinite ? csvNumber(rec.predictedErr) : "", rec.feasible ? "1" : "0", cell(rec.band?.lo), cell(rec.band?.hi),
                            csvNumber(rec.truncation), csvNumber(rec.noise), csvNumber(rec.hvNorm), "\(rec.pairsUsed)",
                            rec.saturated ? "1" : "0", reference,
                            cell(outcome.measuredErr), rec.probe?.format ?? "", cell(rec.probe?.relativeDifference)])
            var grid = Table(header: ["eps", "eta", "hv_norm", "diff_norm", "swamped_fraction", "used", "pred_err"])
            for p in rec.points {
                grid.append([csvNumber(p.epsilon), csvNumber(p.eta), csvNumber(p.hvNorm), cell(p.diffNorm), csvNumber(p.swampedFraction),
                             p.used ? "1" : "0", csvNumber(rec.predictedError(p.epsilon))])
            }
            var json: [String: Any] = ["model": model, "parameter_count": m.parameterCount, "policy": pol.description, "scheme": scheme,
                                       "tolerance": tolerance, "eps": rec.epsStar, "eta": rec.etaStar,
                                       "feasible": rec.feasible, "fit_truncation": rec.truncation, "fit_noise": rec.noise,
                                       "pairs_used": rec.pairsUsed, "saturated": rec.saturated, "reference": reference,
                                       "summary": outcome.summaryLine]
            if rec.predictedErr.isFinite { json["predicted_err"] = rec.predictedErr }     // saturated: the floor estimate or the probe; absent: none
            if let b = rec.band { json["eps_lo"] = b.lo; json["eps_hi"] = b.hi.isFinite ? b.hi : nil }
            if let me = outcome.measuredErr { json["measured_err"] = me }
            if let p = rec.probe, p.relativeDifference.isFinite { json["probe_format"] = p.format; json["probe_rel_diff"] = p.relativeDifference }
            var bundle = OutputBundle()
            try bundle.add("recommend.csv", summary)
            try bundle.add("grid.csv", grid)
            bundle.add("recommend.json", try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]))
            let manifest = Manifest(command: command, seeds: ["model": seed, "v": ModelSetup.directionSeed(seed), "stochastic_rounding": seed],
                                    parameters: ["model": model, "params": params ?? "all", "policy": pol.description, "scheme": scheme, "tolerance": "\(tolerance)",
                                                 "shards": "\(shards)", "reference": reference, "bias_probe": biasProbe ? "on" : "off",
                                                 "method": "StepRecommendation (docs/NUMERICS.md §4): FD-HVPs on a geometric ε grid and a bias probe in a wider format, no reference"],
                                    start: start, end: Date())
            bundle.manifest = manifest
            try bundle.write(to: URL(fileURLWithPath: out))
        }
        print(outcome.summaryLine + (out.map { " → \($0)" } ?? ""))
    }
}

/// Four significant digits for the one-line summaries.
func short(_ x: Double) -> String { String(format: "%.4g", x) }
