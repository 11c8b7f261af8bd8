import Collectives
import Foundation
import Scalars
import LinearAlgebra
import Models
import Curvature
import Studies

/// `hessian-harness hvp`: one FD (or exact) HVP of a model under a precision
/// policy, against the exact HVP in a reference format (mpfr256 by default; fp64 for
/// models too large for MPFR, e.g. a 135M-parameter checkpoint; none), with everything an
/// outside framework needs to reproduce it.
public struct HVPCommand {
    public var model: String
    public var seed: UInt64
    public var policy: String
    public var scheme: String
    public var eps: Double
    public var stepPolicy: String
    public var shards: Int
    public var order: String
    public var out: String
    public var command: [String]
    /// The format of the exact reference HVP: `mpfrN`, `fp64`, or `none`.
    public var reference: String
    /// `--params PATTERN`: the Hessian of these tensors only, the others held fixed (``ParameterSubset``).
    public var params: String? = nil
    /// `--repeats N`: the gradient and the HVP timed N times each (alternating). `time_grad_s`
    /// and `time_hvp_s` are the first (what a one-shot run pays, its fresh memory included);
    /// `time_grad_warm_s` and `time_hvp_warm_s` the median of the others (empty for N = 1):
    /// the steady state of a run of many products, as benchmarks of other tools report it.
    /// `timings.csv` lists every repeat's two times.
    public var repeats: Int = 1

    public init(model: String, seed: UInt64, policy: String, scheme: String, eps: Double, stepPolicy: String,
                shards: Int, order: String, out: String, command: [String], reference: String = "mpfr256") {
        self.model = model; self.seed = seed; self.policy = policy; self.scheme = scheme; self.eps = eps
        self.stepPolicy = stepPolicy; self.shards = shards; self.order = order; self.out = out; self.command = command
        self.reference = reference
    }

    /// Checks a `--reference` value: none, fp64, or mpfrN of the registry.
    static func validateReference(_ r: String) throws {
        guard r == "none" || r == "fp64" || (r.hasPrefix("mpfr") && ScalarRegistry.names.contains(r)) else {
            throw HarnessError("unknown --reference '\(r)' (known: none, fp64, \(ScalarRegistry.mpfrPrecisions.map { "mpfr\($0)" }.joined(separator: ", ")))")
        }
    }

    /// The exact HVP (forward-over-reverse) of `m` at θ along v in `reference`'s format
    /// (recursive accumulation), rounded to fp64.
    static func referenceHVP(_ m: any DifferentiableModel, theta: [Double], v: [Double], reference: String) throws -> [Double] {
        let policy = try PrecisionPolicy("param=fp64,compute=\(reference),accumulate=recursive,grad=fp64,hvp=fp64")
        return try FDEngine(model: m, policy: policy).exactHVP(theta: theta, v: v)
    }

    public func run() throws {
        let start = Date()
        // Validate everything first: nothing is written on bad input.
        var m: any DifferentiableModel
        do { m = try ModelSpec.build(model, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        let pol: PrecisionPolicy
        do { pol = try PrecisionPolicy(policy) } catch { throw HarnessError("--policy: \(error)") }
        m = try ParamsOption.restrict(m, pattern: params, seed: seed, policy: pol)
        guard repeats >= 1 else { throw HarnessError("--repeats must be at least 1 (got \(repeats))") }
        let exactOnly = scheme == "exact"
        guard exactOnly || FDScheme(rawValue: scheme) != nil else {
            throw HarnessError("unknown --scheme '\(scheme)' (known: exact, forward, central, richardson)")
        }
        try Self.validateReference(reference)
        do {
            if reference != "none" { try m.checkExactHVP(format: reference) }
            if exactOnly { try m.checkExactHVP(format: "fp64") }
        } catch { throw HarnessError("\(error)") }
        let step: StepPolicy
        do { step = try StepPolicy.make(kind: stepPolicy, value: eps) } catch { throw HarnessError("--eps/--step-policy: \(error)") }
        let nShards = try Cluster.shards(requested: shards)
        guard let ord = ReductionOrder(rawValue: order) else { throw HarnessError("unknown --order '\(order)' (known: sequential, tree)") }
        let world = Cluster.world
        let param = try pol.arithmetic(pol.param)
        // The FD-HVP (or the exact HVP) in the policy.
        let engine: FDEngine
        do { engine = try FDEngine(model: m, policy: pol) } catch { throw HarnessError("--policy: \(error)") }
        try ModelMemory.check(m, format: pol.compute, dual: exactOnly, what: "a gradient of the model")
        if reference != "none" { try ModelMemory.check(m, format: ScalarFormat(reference), dual: true, what: "the \(reference) reference HVP") }

        let n = m.parameterCount
        let theta = ModelSetup.parameters(m, seed: seed, param: param)
        let v = ModelSetup.direction(count: n, seed: seed)
        if !exactOnly {
            let e = step.epsilon(theta: theta, v: v), reach = e * (v.map(\.magnitude).max() ?? 0)
            guard reach <= 1e150 else {
                throw HarnessError("ε = \(e) moves θ by up to \(reach) along v; θ ± εv must stay far inside fp64 (at most 1e150): choose a smaller --eps")
            }
        }
        let clock = ContinuousClock()

        // Reference: the exact HVP (forward-over-reverse) in the reference format, rounded to fp64 (rank 0 only).
        // Each stage's peak RSS: the process's peak while the stage runs (what it holds
        // then included: the model, θ, v, the reference), from a reset of VmHWM.
        var exact: [Double] = []
        // Setup's freed memory (a checkpoint's dequantization buffers) returned once; the
        // stages then reuse each other's pages, as a run of many HVPs does.
        MemoryProbe.releaseFreedMemory()
        MemoryProbe.resetPeak()
        let tExact = try clock.measure {
            guard Cluster.isRoot, reference != "none" else { return }
            exact = try Self.referenceHVP(m, theta: theta, v: v, reference: reference)
        }.seconds
        let peakExact = MemoryProbe.peak()
        // The FD-HVP (or the exact HVP), and one gradient as it takes it (θ converted,
        // gradient in the compute type, rounded into grad), timed.
        // Repeats after the first: the same products again (their results dropped), alternating.
        var peakGrad = 0, peakHVP = 0
        var warmGrad: [Double] = [], warmHVP: [Double] = []
        let (r, tGrad, tHVP) = try StochasticRounding.withSeed(seed) { () throws -> (FDResult, Double, Double) in
            func product() throws -> FDResult {
                if exactOnly {
                    return FDResult(hv: engine.exactHVP(theta: theta, v: v), epsilon: 0, delta: [Double](repeating: 0, count: v.count), swampedFraction: 0)
                }
                return try engine.estimate(theta: theta, v: v, scheme: FDScheme(rawValue: scheme)!, step: step, shards: nShards, order: ord, world: world)
            }
            MemoryProbe.resetPeak()
            let tGrad = try clock.measure { _ = try engine.gradient(theta: theta) }.seconds
            peakGrad = MemoryProbe.peak()
            MemoryProbe.resetPeak()
            var r: FDResult? = nil
            let tHVP = try clock.measure { r = try product() }.seconds
            peakHVP = MemoryProbe.peak()
            for _ in 1..<repeats {
                warmGrad.append(try clock.measure { _ = try engine.gradient(theta: theta) }.seconds)
                warmHVP.append(try clock.measure { _ = try product() }.seconds)
            }
            return (r!, tGrad, tHVP)
        }
        if let i = r.hv.firstIndex(where: { !$0.isFinite }) {
            throw HarnessError("the \(scheme) HVP is not finite (element \(i) is \(r.hv[i])) at ε = \(r.epsilon): the loss or its gradient overflowed at θ ± εv; nothing written (choose a smaller --eps)")
        }
        guard Cluster.isRoot else { return }     // every rank holds ĥ; rank 0 writes
        let hasReference = !exact.isEmpty
        let norm = exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let diff = zip(r.hv, exact).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let dotp = zip(r.hv, exact).reduce(0) { $0 + $1.0 * $1.1 }
        let nh = r.hv.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var summary = Table(header: ["model", "policy", "scheme", "step_policy", "eps", "eps_applied", "shards", "reduction_order", "seed",
                                    "reference", "rel_err", "cos_align", "swamped_fraction", "time_grad_s", "time_hvp_s", "time_reference_s", "hvp_over_grad",
                                    "peak_rss_grad_bytes", "peak_rss_hvp_bytes", "peak_rss_reference_bytes",
                                    "repeats", "time_grad_warm_s", "time_hvp_warm_s"])
        summary.append([model, pol.description, scheme, stepPolicy, csvNumber(eps), csvNumber(r.epsilon), "\(nShards)", ord.rawValue, "\(seed)",
                        reference,
                        hasReference ? csvNumber(norm > 0 ? diff / norm : diff) : "", hasReference ? csvNumber(nh > 0 && norm > 0 ? dotp / (nh * norm) : 0) : "",
                        csvNumber(r.swampedFraction), csvNumber(tGrad), csvNumber(tHVP), hasReference ? csvNumber(tExact) : "",
                        csvNumber(tGrad > 0 ? tHVP / tGrad : 0), "\(peakGrad)", "\(peakHVP)", hasReference ? "\(peakExact)" : "",
                        "\(repeats)", warmGrad.isEmpty ? "" : csvNumber(median(warmGrad)), warmHVP.isEmpty ? "" : csvNumber(median(warmHVP))])
        var bundle = OutputBundle()
        let inputs = Manifest.hashes(ModelSpec.inputFiles(model))
        let (json, extra) = try describe(m, inputs: inputs)
        bundle.add("model.json", json)
        for (name, data) in extra { bundle.add(name, data) }
        bundle.add("params.npy", NPY.float64(theta))
        bundle.add("v.npy", NPY.float64(v))
        if hasReference { bundle.add("hv_exact.npy", NPY.float64(exact)) }
        bundle.add("hv.npy", NPY.float64(r.hv))
        try bundle.add("summary.csv", summary)
        if repeats > 1 {
            var timings = Table(header: ["repeat", "time_grad_s", "time_hvp_s"])
            for (i, (g, h)) in zip([tGrad] + warmGrad, [tHVP] + warmHVP).enumerated() { timings.append(["\(i + 1)", csvNumber(g), csvNumber(h)]) }
            try bundle.add("timings.csv", timings)
        }
        let manifest = Manifest(command: command, seeds: ["model": seed, "v": ModelSetup.directionSeed(seed), "stochastic_rounding": seed],
                                parameters: ["model": model, "params": params ?? "all", "policy": pol.description, "scheme": scheme, "eps": "\(eps)",
                                             "step_policy": stepPolicy, "repeats": "\(repeats)", "shards": "\(nShards)", "mpi_ranks": "\(Cluster.size)", "reduction_order": ord.rawValue,
                                             "reference": reference == "none" ? "none" : "exact HVP (forward-over-reverse) in \(reference), rounded to fp64",
                                             "v": "uniform(-1, 1) entries from SplitMix64(seed ^ 0x5DEECE66D), fp64"],
                                start: start, end: Date(), inputFiles: inputs)
        bundle.manifest = manifest
        try bundle.write(to: URL(fileURLWithPath: out))
        print(bundle.summaryLine("hvp", columns: ["rel_err", "cos_align", "swamped_fraction", "eps_applied", "hvp_over_grad"], dir: out))
    }

    /// model.json and the data files an outside framework needs to rebuild the loss.
    func describe(_ m: any DifferentiableModel, inputs: [String: String]) throws -> (Data, [(String, Data)]) {
        var d: [String: Any] = [
            "spec": model, "seed": seed,
            "parameter_count": m.parameterCount,
            "layout": m.layout.tensors.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset, "block": $0.block] as [String: Any] },
            "parameters_file": "params.npy",
        ]
        var files: [(String, Data)] = []
        // Where the data and the parameters came from, and every file read, with its SHA-256.
        if !inputs.isEmpty {
            d["input_files"] = inputs.keys.sorted().map { ["path": $0, "sha256": inputs[$0]!] }
        }
        let description = m.describe()
        var source: String
        if let file = parameterFile(of: m) { source = "user parameters from \(file) (sha256 \(inputs[file] ?? "?"))" }
        else { source = description.parametersSource ?? "seeded initialization (seed \(seed))" }
        if let t = m as? TrainedModelProtocol { source += ", then trained (\(t.training))" }
        d["parameters_source"] = source
        if let t = m as? TrainedModelProtocol {
            let run = t.trainingRun(seed: seed)
            d["training"] = ["optimizer": t.training.optimizer.rawValue, "steps": t.training.steps, "learning_rate": t.training.learningRate,
                             "loss_initial": run.losses.first ?? Double.nan, "loss_final": run.losses.last ?? Double.nan,
                             "from": "the seeded initialization; full batch; loss and gradient in fp64, ordered accumulation; "
                                 + (t.training.optimizer == .adam ? "Adam beta1 0.9, beta2 0.999, eps 1e-8" : "plain gradient descent"),
                             "loss_curve": "training_loss.npy"] as [String: Any]
            files.append(("training_loss.npy", NPY.float64(run.losses)))
        }
        if let s = m as? ParameterSubsetProtocol {
            // The layout above is the subset's (offsets into params.npy, v.npy, hv*.npy).
            d["parameter_subset"] = ["pattern": s.pattern, "tensors": s.tensorNames, "full_parameter_count": s.fullParameterCount,
                                     "hessian": "the principal block H_SS of the full model's Hessian on these tensors",
                                     "held_fixed": "every other parameter, at its value rounded into the param format",
                                     "full_parameters_file": "params_full.npy"] as [String: Any]
            files.append(("params_full.npy", NPY.float64(s.fixed)))
        }
        d.merge(description.entries) { _, new in new }
        for (name, values) in description.arrays {
            switch values {
            case let .float64(x, shape): files.append((name, NPY.float64(x, shape: shape)))
            case let .int64(x, shape): files.append((name, NPY.int64(x, shape: shape)))
            }
        }
        var json = try JSONSerialization.data(withJSONObject: d, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        json.append(UInt8(ascii: "\n"))
        return (json, files)
    }
}
