import Collectives
import Foundation
import Scalars
import Krylov
import Models
import LinearAlgebra
import Curvature
import Studies

/// `hessian-harness slq --model SPEC [--regimes FILE] [--policy POLICY] [--eps E] …`:
/// FD-HVP SLQ on a model. With a regimes file, ε and the Lanczos settings come from
/// the entry that matches the run's policy (param, compute and grad formats) and the
/// scheme / step policy when given: its static ε when that passed its held-out
/// validation; else, when its per-model step passed, ε chosen from this model (as
/// `--eps auto`); else the entry is refused unless `--allow-unvalidated`. `--eps E|auto`
/// overrides the entry, or, without a regimes file, gives ε (then `--policy` is needed;
/// scheme central, step policy absolute, 30 steps with full reorthogonalization unless given).
public struct ModelSLQCommand {
    public var model: String
    public var regimes: String?
    public var policy: String?
    public var scheme: String?
    public var stepPolicy: String?
    public var eps: String?
    public var allowUnvalidated: Bool
    public var shards: Int
    public var order: String
    public var steps: Int?
    public var reorth: String?
    public var probes: Int
    public var probe: String
    public var sigma: Double?
    public var gridPoints: Int
    public var seed: UInt64
    public var out: String
    public var command: [String]
    /// `--params PATTERN` (``ParameterSubset``).
    public var params: String? = nil

    public init(model: String, regimes: String?, policy: String?, scheme: String?, stepPolicy: String?, eps: String? = nil,
                allowUnvalidated: Bool = false, shards: Int, order: String,
                steps: Int?, reorth: String?, probes: Int, probe: String, sigma: Double?, gridPoints: Int, seed: UInt64,
                out: String, command: [String]) {
        self.model = model; self.regimes = regimes; self.policy = policy; self.scheme = scheme; self.stepPolicy = stepPolicy
        self.eps = eps; self.allowUnvalidated = allowUnvalidated
        self.shards = shards; self.order = order; self.steps = steps; self.reorth = reorth; self.probes = probes; self.probe = probe
        self.sigma = sigma; self.gridPoints = gridPoints; self.seed = seed; self.out = out; self.command = command
    }

    /// The entry for a policy, or an error listing the entries that exist; with several
    /// matches, an error naming the keys that tell them apart and their values.
    public static func select(_ file: RegimesFile, path: String, policy: PrecisionPolicy?, scheme: String?, stepPolicy: String?,
                              allowUnvalidated: Bool = false) throws -> RegimeEntry {
        let matches = file.entries.filter { e in
            (policy.map { e.param == $0.param.name && e.compute == $0.compute.name && e.grad == $0.grad.name } ?? true)
                && (scheme.map { e.scheme == $0 } ?? true) && (stepPolicy.map { e.stepPolicy == $0 } ?? true)
        }
        let list = file.entries.map { "param=\($0.param),compute=\($0.compute),grad=\($0.grad) \($0.scheme) \($0.stepPolicy)" }.joined(separator: "; ")
        var want: [String] = []
        if let p = policy { want.append("param=\(p.param),compute=\(p.compute),grad=\(p.grad)") }
        if let s = scheme { want.append("scheme \(s)") }
        if let s = stepPolicy { want.append("step policy \(s)") }
        guard !matches.isEmpty else {
            throw HarnessError("no regimes entry in \(path) for \(want.isEmpty ? "this run" : want.joined(separator: ", ")) (entries: \(list.isEmpty ? "none" : list))")
        }
        if matches.count > 1 {
            func distinct(_ f: (RegimeEntry) -> String) -> [String] {
                var seen: [String] = []
                for e in matches where !seen.contains(f(e)) { seen.append(f(e)) }
                return seen
            }
            var add: [String] = []
            let pols = distinct { "param=\($0.param),compute=\($0.compute),grad=\($0.grad)" }
            if pols.count > 1 { add.append("--policy (one of: \(pols.joined(separator: "; ")); the other stages as you run them)") }
            let schemes = distinct(\.scheme)
            if schemes.count > 1 { add.append("--scheme (\(schemes.joined(separator: ", ")))") }
            let steps = distinct(\.stepPolicy)
            if steps.count > 1 { add.append("--step-policy (\(steps.joined(separator: ", ")))") }
            throw HarnessError("\(matches.count) regimes entries in \(path) match\(want.isEmpty ? "" : " " + want.joined(separator: ", ")); add \(add.joined(separator: ", "))")
        }
        let e = matches[0]
        // The entry's recommended step (static ε, or the per-model step: `run` then switches
        // to --eps auto) must have passed its held-out validation.
        if !e.validatedOK && !allowUnvalidated {
            let step = e.recommendedStep == "per_model" ? "per-model step" : "static ε"
            let v = e.recommendedStep == "per_model" ? e.perModel : e.validation
            let how = v.map { v in
                "predicted/measured median \(v.ratioMedian.map(csvNumber) ?? "undefined"), worst \(v.ratioWorst.map(csvNumber) ?? "undefined")"
                    + (v.epsRatioWorst.map { ", ε over the best \(csvNumber($0))" } ?? "") + ((v.falseFeasible ?? 0) > 0 ? ", claimed feasible where no ε is" : "")
            } ?? "no validation result"
            throw HarnessError("the regimes entry param=\(e.param),compute=\(e.compute),grad=\(e.grad) \(e.scheme) \(e.stepPolicy) in \(path): its \(step) failed its held-out validation (\(how)); pass --allow-unvalidated to use it anyway, or give --eps")
        }
        return e
    }

    public func run() throws {
        let start = Date()
        var pol: PrecisionPolicy? = nil
        if let p = policy { do { pol = try PrecisionPolicy(p) } catch { throw HarnessError("--policy: \(error)") } }
        if let s = scheme, FDScheme(rawValue: s) == nil { throw HarnessError("unknown --scheme '\(s)' (known: forward, central, richardson)") }
        if let s = stepPolicy, s != "absolute" && s != "relative" { throw HarnessError("unknown --step-policy '\(s)' (known: absolute, relative)") }
        var userEps: Double? = nil
        var autoEps = eps == "auto"
        if let e = eps, !autoEps {
            guard let x = Double(e), x > 0, x.isFinite else { throw HarnessError("--eps must be a finite number > 0 or auto (got '\(e)')") }
            userEps = x
        }
        // The regimes entry (when a file is given), then the run's settings.
        var entry: RegimeEntry? = nil
        var regimesData: Data? = nil
        if let path = regimes {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw HarnessError("cannot read regimes file '\(path)'") }
            let file: RegimesFile
            do { file = try RegimesFile.decode(data, path: path) } catch let e as StudyError { throw HarnessError(e.message) }
            // An explicit --eps takes the ε decision away from the entry: its validation does not apply.
            entry = try Self.select(file, path: path, policy: pol, scheme: scheme, stepPolicy: stepPolicy,
                                    allowUnvalidated: allowUnvalidated || eps != nil)
            regimesData = data
            if let e = entry, eps == nil, e.recommendedStep == "per_model" {
                autoEps = true
                if Cluster.isRoot {
                    FileHandle.standardError.write(Data("note: the regimes entry recommends the per-model step (its static ε did not transfer to the held-out models): choosing ε from this model (as --eps auto)\n".utf8))
                }
            }
        } else {
            guard pol != nil else { throw HarnessError("--model needs --policy (and --eps), or --regimes FILE") }
            guard eps != nil else { throw HarnessError("--model without --regimes needs --eps (a number, or auto)") }
        }
        let policy: PrecisionPolicy
        if let pol { policy = pol } else {
            do { policy = try PrecisionPolicy(entry!.policy) } catch { throw HarnessError("regimes entry policy '\(entry!.policy)': \(error)") }
        }
        let schemeName = entry?.scheme ?? scheme ?? "central"
        // --eps auto chooses an absolute ε from the model (`recommend`).
        let stepName = autoEps ? "absolute" : entry?.stepPolicy ?? stepPolicy ?? "absolute"
        guard let fdScheme = FDScheme(rawValue: schemeName) else { throw HarnessError("\(regimes ?? "--scheme"): unknown scheme '\(schemeName)'") }
        var epsValue = userEps ?? entry?.epsStar ?? 1
        var chosenStep: StepPolicy
        do { chosenStep = try StepPolicy.make(kind: stepName, value: epsValue) } catch { throw HarnessError("\(regimes ?? "--step-policy"): \(error)") }
        let nSteps = steps ?? entry.map(\.lanczosMaxSteps) ?? 30
        guard nSteps >= 1 && nSteps <= 10_000 else {
            throw HarnessError(steps == nil ? "the regimes entry found no stable Lanczos step count (lanczos_max_steps = 0); pass --steps and --reorth"
                                            : "--steps must be in 1...10000")
        }
        let reorthName = reorth ?? entry?.lanczosReorth ?? "full"
        guard let ro = Reorthogonalization(rawValue: reorthName) else {
            throw HarnessError("unknown reorthogonalization '\(reorthName)' (known: none, full, partial, selective)")
        }
        let nShards = try Cluster.shards(requested: shards)
        guard let ord = ReductionOrder(rawValue: order) else { throw HarnessError("unknown --order '\(order)' (known: sequential, tree)") }
        guard probes >= 1 && probes <= 10_000 else { throw HarnessError("--probes must be in 1...10000") }
        guard let kind = ProbeKind(rawValue: probe) else { throw HarnessError("unknown --probe '\(probe)' (known: rademacher, gaussian)") }
        guard gridPoints >= 2 && gridPoints <= 1_000_000 else { throw HarnessError("--grid must be in 2...1000000") }
        if let s = sigma, !(s > 0 && s.isFinite) { throw HarnessError("--sigma must be finite and > 0") }
        var m: any DifferentiableModel
        do { m = try ModelSpec.build(model, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        m = try ParamsOption.restrict(m, pattern: params, seed: seed, policy: policy)

        let world = Cluster.world
        // The FSDP pipeline (shard-local Lanczos vectors, all-reduced dot products) runs
        // when its Lanczos supports the settings; partial and selective
        // reorthogonalization, or a Krylov format beyond fp64, run unsharded Lanczos
        // (with --shards applying to each FD-HVP only), which a multi-process job refuses.
        let shardedLanczos = (ro == .none || ro == .full) && policy.krylov.binary != nil
        if world != nil && !shardedLanczos {
            throw HarnessError("under MPI, slq needs reorthogonalization none or full and a krylov format within fp64 (got \(ro.rawValue), krylov=\(policy.krylov))")
        }

        try ModelMemory.check(m, format: policy.compute, dual: false, what: "a gradient of the model")
        // Lanczos keeps its basis (steps + 1 vectors): unsharded in the krylov format's
        // type, sharded in binary32 when the format fits in it, else in fp64 carriers.
        let basisBytes = !shardedLanczos ? ModelMemory.bytes(format: policy.krylov)
            : Double(ShardedLanczos.basisBytes(krylov: try policy.arithmetic(policy.krylov)))
        try MemoryBudget.check(Double(nSteps + 1) * Double(m.parameterCount) * basisBytes,
                               "the Lanczos basis (\(nSteps + 1) vectors of \(m.parameterCount) in \(policy.krylov))")
        if Cluster.isRoot, let w = policy.krylovSumWarning(dimension: m.parameterCount) {
            FileHandle.standardError.write(Data("warning: \(w)\n".utf8))
        }
        let param = try policy.arithmetic(policy.param)
        let theta = ModelSetup.parameters(m, seed: seed, param: param)
        let n = m.parameterCount
        let engine = try FDEngine(model: m, policy: policy)
        var recommendation: StepRecommendation? = nil
        if autoEps {
            // Lanczos applies the operator to unit vectors: the step is chosen along a unit
            // direction (the error of an FD-HVP depends on ε‖u‖, so an ε chosen for the hvp
            // direction, ‖v‖ ≈ √(n/3), would be √(n/3) times too small here).
            let r = try StepRecommendation.estimate(engine: engine, theta: theta, v: Self.unitDirection(count: n, seed: seed), scheme: fdScheme,
                                                    tolerance: entry?.tolerance ?? 0.05, seed: seed, shards: nShards)
            recommendation = r
            epsValue = r.epsStar
            chosenStep = .absolute(epsValue)
            if !r.feasible, Cluster.isRoot {
                let what = r.saturated ? "the FD-HVP is saturated on this model" + (r.predictedErr.isFinite ? " (achievable rel_err ~\(short(r.predictedErr)), reference-free estimate)" : " (no error estimated)")
                                                      : "predicted rel_err \(short(r.predictedErr))"
                FileHandle.standardError.write(Data("warning: --eps auto: no ε meets the tolerance \(short(r.tolerance)); using ε = \(short(epsValue)): \(what)\n".utf8))
            }
        }
        let step = chosenStep
        let gen = ProbeGenerator(seed: seed, kind: kind), nProbes = probes
        let clock = ContinuousClock()
        let stepClock = StepClock()
        var traces: [LanczosTrace] = []
        let elapsed: Double
        if shardedLanczos {
            let k = try policy.arithmetic(policy.krylov)
            let acc = try policy.arithmetic(ScalarFormat(policy.krylovAccumulationFormat))
            let layout = ShardLayout(count: n, shards: nShards)
            let stepsCap = min(nSteps, n)
            // One in-process shard: the FD-HVP is the unsharded one (bit for bit the same,
            // tested), without the collectives' fp64 copies of θ, of both points and of both
            // gradients. Not under stochastic rounding, whose draws the two paths take in
            // another order (the same distribution, other bits).
            let direct = nShards == 1 && world == nil && policy.rounding != .stochastic
            elapsed = try clock.measure {
                traces = try StochasticRounding.withSeed(derivedSeed(seed, "krylov-sr")) {
                    try SPMD.run(shards: nShards, world: world) { comm -> [LanczosTrace] in
                        let tr = direct ? [] : layout.shard(theta, rank: comm.rank)
                        // One probe at a time (each rank draws the same sequence): at 1.3·10⁸
                        // parameters a probe is 1.08 GB, not held beside the basis.
                        var g = gen
                        return (0..<nProbes).map { _ in
                            let r = ShardedLanczos.run(comm: comm, start: layout.shard(g.next(n), rank: comm.rank), steps: stepsCap,
                                                       reorthogonalization: ro, krylov: k, accumulate: acc, order: ord,
                                                       measureOrthogonality: true) { q in
                                if comm.rank == 0 { stepClock.mark() }
                                defer { if comm.rank == 0 { stepClock.applied() } }
                                if direct {
                                    return (try? engine.estimate(theta: theta, v: q, scheme: fdScheme, step: step, shards: 1, order: ord).hv)
                                        ?? [Double](repeating: .nan, count: q.count)
                                }
                                return engine.rankEstimate(comm: comm, thetaShard: tr, vShard: q, layout: layout, scheme: fdScheme, step: step, order: ord)
                            }
                            if comm.rank == 0 { stepClock.endProbe() }
                            return LanczosTrace(alpha: r.alpha, beta: r.beta, orthLoss: r.orthLoss, orthLossFro: r.orthLossFro,
                                                breakdown: r.breakdown)
                        }
                    }
                }
            }.seconds
        } else {
            let apply: ([Double]) -> [Double] = { q in
                stepClock.mark()
                defer { stepClock.applied() }
                return (try? engine.estimate(theta: theta, v: q, scheme: fdScheme, step: step, shards: shards, order: ord).hv)
                    ?? [Double](repeating: .nan, count: q.count)
            }
            elapsed = try clock.measure {
                traces = try ModelLanczos.run(krylov: policy.krylov, mode: policy.mode(for: policy.krylov),
                                              accumulation: policy.krylovAccumulation(), reorthogonalization: ro,
                                              steps: nSteps, dimension: n, probes: Self.probeVectors(gen, count: probes, n), seed: seed, apply: apply)
                stepClock.endProbe()
            }.seconds
        }
        // Every rank holds the same tridiagonals; rank 0 alone writes the results.
        guard Cluster.isRoot else { return }

        var lanczos = Table(header: ["probe", "step", "alpha", "beta", "orth_loss", "orth_loss_fro"])
        let (mu, perProbe) = try KrylovStabilityStudy.slq(traces)
        let ritzValues = perProbe.map(\.values)
        // nodes.csv, and the extreme Ritz values over all probes with their residual estimates.
        let (nodes, rmin, rmax) = RitzNodes.make(perProbe)
        for (p, t) in traces.enumerated() {
            for j in t.alpha.indices {
                lanczos.append(["\(p)", "\(j + 1)", csvNumber(t.alpha[j]), csvNumber(t.beta[j]), cell(t.orthLoss[j]), cell(t.orthLossFro[j])])
            }
        }
        let sig = sigma ?? mu.defaultSigma
        // A dense Hessian from n exact HVPs (fp64), where the model has them and n is small.
        let hasExactHVP = (try? m.checkExactHVP(format: "fp64")) != nil
        let exact: [Double]? = n <= 3000 && hasExactHVP ? try ExactSpectrum.of(m, theta: theta, spec: model) : nil
        let lo = min(mu.nodes.min() ?? 0, exact?.first ?? .infinity) - 3 * sig
        let hi = max(mu.nodes.max() ?? 0, exact?.last ?? -.infinity) + 3 * sig
        let grid = (0..<gridPoints).map { lo + (hi - lo) * Double($0) / Double(gridPoints - 1) }
        var density = Table(header: ["x", "density"])
        for (x, d) in zip(grid, mu.density(on: grid, sigma: sig)) { density.append([csvNumber(x), csvNumber(d)]) }

        var summary = Table(header: ["model", "n", "policy", "krylov_accumulation", "scheme", "step_policy", "eps", "eps_source", "eps_abs",
                                     "reorth", "steps", "steps_done", "breakdown", "probes", "shards",
                                     "reduction_order", "seed", "tolerance", "predicted_err", "validated_err", "validated_ok", "lambda_min", "lambda_min_residual",
                                     "lambda_max", "lambda_max_residual",
                                     "w1_scaled", "ks", "ritz_err_top_1", "orth_loss_max", "time_lanczos_s", "time_lanczos_step_s",
                                     "time_lanczos_first_step_s", "time_lanczos_step_warm_s", "time_lanczos_hvp_warm_s", "exact_spectrum", "trace_slq", "trace_exact"])
        var w1s: Double? = nil, ks: Double? = nil, top: Double? = nil
        if let exact {
            let (w1, k) = SpectralDistance.compare(mu, SpectralMeasure(eigenvalues: exact))
            let range = (exact.last ?? 0) - (exact.first ?? 0)
            w1s = range > 0 ? w1 / range : w1; ks = k
            top = ritzValues.map { RitzDiagnostics(ritz: $0, residuals: [Double](repeating: 0, count: $0.count), exact: exact, r: 1, tol: 1e-3).ritzErrTop[0] }.max()
        }
        let totalSteps = traces.map(\.alpha.count).reduce(0, +)
        let orthMax = traces.flatMap { $0.orthLoss.compactMap { $0 } }.max() ?? 0
        let stepsDone = traces.map(\.alpha.count).min() ?? 0
        let broke = traces.first { $0.breakdown != nil }?.breakdown
        let epsSource = autoEps ? (eps == nil ? "auto (regimes per_model)" : "auto") : userEps != nil ? "user" : "regimes"
        summary.append([model, "\(n)", policy.description, policy.krylovAccumulation().description, schemeName, stepName, csvNumber(epsValue),
                        epsSource, csvNumber(step.epsilon(theta: theta, v: Self.probeVectors(gen, count: 1, n)[0])), ro.rawValue, "\(nSteps)", "\(stepsDone)", broke?.rawValue ?? "",
                        "\(probes)", "\(nShards)", ord.rawValue,
                        "\(seed)", cell(recommendation?.tolerance ?? entry?.tolerance), recommendation.map { definedCell($0.predictedErr) } ?? cell(entry?.predictedErr),
                        cell(entry?.validatedErr),
                        entry.map { $0.validatedOK ? "1" : "0" } ?? "",
                        csvNumber(rmin?.value ?? .nan), rmin.map { csvNumber($0.residual) } ?? "", csvNumber(rmax?.value ?? .nan),
                        rmax.map { csvNumber($0.residual) } ?? "", cell(w1s), cell(ks), cell(top),
                        csvNumber(orthMax), csvNumber(elapsed), csvNumber(totalSteps > 0 ? elapsed / Double(totalSteps) : 0),
                        cell(stepClock.durations.first), cell(StepClock.warm(stepClock.durations)), cell(StepClock.warm(stepClock.applications)),
                        exact != nil ? "yes" : hasExactHVP ? "no (n > 3000)" : "no (the model serves no exact HVP)",
                        csvNumber(Double(n) * zip(mu.nodes, mu.weights).reduce(0) { $0 + $1.0 * $1.1 }), exact.map { csvNumber($0.reduce(0, +)) } ?? ""])
        var bundle = OutputBundle()
        try bundle.add("nodes.csv", nodes)
        try bundle.add("density.csv", density)
        try bundle.add("lanczos.csv", lanczos)
        try bundle.add("summary.csv", summary)
        if let exact { try bundle.add("spectrum.csv", SpectrumTable.make(exact)) }
        var manifest = Manifest(command: command, seeds: ["model": seed, "probes": seed, "stochastic_rounding": seed],
                                parameters: ["model": model, "params": params ?? "all", "policy": policy.description, "regimes_file": regimes ?? "",
                                             "regimes_sha256": regimesData.map { SHA256.hex($0) } ?? "", "scheme": schemeName, "step_policy": stepName,
                                             "eps": "\(epsValue)", "eps_source": epsSource, "krylov_accumulation": policy.krylovAccumulation().description,
                                             "reorth": ro.rawValue, "steps": "\(nSteps)", "probes": "\(probes)",
                                             "probe": kind.rawValue, "shards": "\(nShards)",
                                             "lanczos": shardedLanczos ? "sharded (FSDP)" : "unsharded", "mpi_ranks": "\(Cluster.size)", "reduction_order": ord.rawValue,
                                             "sigma": "\(sig)", "grid": "\(gridPoints)", "tridiagonal_solver": "fp64 implicit QL"],
                                start: start, end: Date())
        manifest.study = nil
        bundle.manifest = manifest
        try bundle.write(to: URL(fileURLWithPath: out))
        print(bundle.summaryLine("slq", columns: ["eps", "eps_source", "steps_done", "breakdown", "lambda_min", "lambda_max", "w1_scaled",
                                                  "ritz_err_top_1", "predicted_err"], dir: out))
    }
}

/// The instants at which a Lanczos run applies its operator (rank 0's, once per step)
/// and at which each probe's run ends: a step lasts from one application to the next (or
/// to its probe's end), everything the step does (the FD-HVP, the dot products, the
/// reorthogonalization, the next vector). `time_lanczos_first_step_s` is the run's first
/// step (it also faults in the FD-HVP's working memory), `time_lanczos_step_warm_s` the
/// median of the others (empty for a one-step run): the steady state, as `hvp --repeats`
/// reports; `time_lanczos_hvp_warm_s` the median of the same steps' operator applications
/// alone (the FD-HVP with its conversions: the rest of a step is the Krylov work). Written
/// by one thread only (rank 0, or the unsharded run's).
final class StepClock: @unchecked Sendable {
    private let clock = ContinuousClock()
    private var starts: [ContinuousClock.Instant] = []
    private(set) var durations: [Double] = []
    /// Each step's operator application.
    private(set) var applications: [Double] = []

    func mark() { starts.append(clock.now) }
    func applied() { if let s = starts.last { applications.append((clock.now - s).seconds) } }

    /// The median after the first (nil for fewer than two).
    static func warm(_ times: [Double]) -> Double? { times.count > 1 ? median(Array(times.dropFirst())) : nil }

    /// Closes the probe's steps (the last one ends now). The unsharded run marks all its
    /// probes' steps before one end: a step that spans two probes includes drawing the next.
    func endProbe() {
        let now = clock.now
        for (a, b) in zip(starts, starts.dropFirst() + [now]) { durations.append((b - a).seconds) }
        starts = []
    }
}

extension ModelSLQCommand {
    /// The first `count` probes of `gen` (a copy: the caller's generator does not advance).
    static func probeVectors(_ gen: ProbeGenerator, count: Int, _ n: Int) -> [[Double]] {
        var g = gen
        return (0..<count).map { _ in g.next(n) }
    }

    /// The hvp direction of ``ModelSetup/direction(count:seed:)`` scaled to unit length: the
    /// norm of the vectors Lanczos applies the FD-HVP to.
    static func unitDirection(count n: Int, seed: UInt64) -> [Double] {
        let v = ModelSetup.direction(count: n, seed: seed)
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return norm > 0 ? v.map { $0 / norm } : v
    }
}
