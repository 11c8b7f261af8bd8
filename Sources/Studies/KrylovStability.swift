import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// A symmetric operator given by an fp64 closure, applied in `T` (x converted to
/// fp64 exactly, the result rounded into `T`): how an FD-HVP, whose stages have
/// their own formats, is fed to Lanczos running in the Krylov format.
public struct ClosureOperator<T: ComputeScalar>: LinearOperator {
    public let dimension: Int
    let f: ([Double]) -> [Double]
    public init(dimension: Int, _ f: @escaping ([Double]) -> [Double]) { self.dimension = dimension; self.f = f }
    /// The conversions run specialized for the concrete type (``ScalarArrays``; the same
    /// `doubleValue` and `init(roundingDouble:)`): `x.map(\.doubleValue)` here ran
    /// unspecialized, a key-path projection per element, and took a quarter of a Lanczos
    /// step of a 3·10⁷-parameter MLP.
    public func apply(_ x: [T], into y: inout [T]) {
        let r = f(ScalarArrays.doubles(x, roundedBy: .fp64))
        precondition(r.count == dimension, "operator returned \(r.count) values for dimension \(dimension)")
        y = ScalarArrays.rounding(r, to: T.self)
    }
}

/// One Lanczos run of a probe reduced to what the diagnostics need (fp64).
public struct LanczosTrace: Sendable {
    public var alpha: [Double], beta: [Double], orthLoss: [Double?], orthLossFro: [Double?]
    /// Why the run stopped before its requested steps (nil: it did not); `alpha.count`
    /// is `steps_done`.
    public var breakdown: LanczosBreakdown?
    public init(alpha: [Double], beta: [Double], orthLoss: [Double?], orthLossFro: [Double?], breakdown: LanczosBreakdown? = nil) {
        self.alpha = alpha; self.beta = beta; self.orthLoss = orthLoss; self.orthLossFro = orthLossFro; self.breakdown = breakdown
    }
}

/// Lanczos on an fp64 operator closure (typically an FD-HVP), with the vectors and
/// dot products in a Krylov format chosen by name at run time.
public enum ModelLanczos {
    /// One run per probe, `steps` steps each, orthogonality measured in fp64;
    /// dot products and norms under `accumulation` (a policy's
    /// ``PrecisionPolicy/krylovAccumulation()``); stochastic rounding (if `mode` is
    /// stochastic) seeded by `seed`.
    public static func run(krylov: ScalarFormat, mode: RoundingMode, accumulation: Accumulation, reorthogonalization reorth: Reorthogonalization,
                           steps: Int, dimension n: Int, probes: [[Double]], seed: UInt64,
                           apply: @escaping ([Double]) -> [Double]) throws -> [LanczosTrace] {
        // The registry hands the body its type as a generic parameter, so Lanczos would
        // run unspecialized (a witness call per element: a third of a Lanczos step of a
        // 3·10⁷-parameter MLP); the common types get a specialized instance.
        struct Body: ScalarBody {
            let inner: Inner
            func run<T: ComputeScalar>(_: T.Type) -> [LanczosTrace] {
                ScalarRegistry.specializedForModels(T.self, inner) ?? inner.run(T.self)
            }
        }
        struct Inner: SpecializedBody {
            let n: Int, probes: [[Double]], options: LanczosOptions, apply: ([Double]) -> [Double]
            func run<T: ComputeScalar>(_: T.Type) -> [LanczosTrace] {
                let op = ClosureOperator<T>(dimension: n, apply)
                return probes.map { p in
                    let r = Lanczos.run(op, start: p.map { T(roundingDouble: $0) }, options: options)
                    return LanczosTrace(alpha: r.alpha.map(\.doubleValue), beta: r.beta.map(\.doubleValue),
                                        orthLoss: r.records.prefix(r.steps).map(\.orthLoss),
                                        orthLossFro: r.records.prefix(r.steps).map(\.orthLossFro), breakdown: r.breakdown)
                }
            }
        }
        let opts = LanczosOptions(steps: steps, reorthogonalization: reorth, accumulation: accumulation, measureOrthogonality: true)
        return try StochasticRounding.withSeed(derivedSeed(seed, "krylov-sr")) {
            try ScalarRegistry.run(format: krylov, rounding: mode, Body(inner: Inner(n: n, probes: probes, options: opts, apply: apply)))
        }
    }
}

/// Study `krylov-stability` (NUMERICS.md §6–7): Lanczos/SLQ fed by FD-HVPs at
/// chosen ε under each precision policy (Lanczos vectors and dot products in the
/// policy's `krylov` format), for each reorthogonalization policy, against
/// (a) exact-HVP Lanczos in fp64 from the same probes and (b) the exact spectrum
/// (eigenvalues of the full Hessian from exact dual HVPs in fp64, LAPACK dsyevd), or,
/// for models too large for a dense Hessian, a long full-reorthogonalization
/// exact-HVP Lanczos run (``SpectrumSource``).
///
/// Each unit runs `steps` Lanczos steps per probe once; the diagnostics are taken
/// at every checkpoint k in `checkpoints` from the leading k×k block of T.
/// Tables:
/// - `lanczos.csv`: per probe and step: `orth_loss`, `orth_loss_fro` of the FD run
///   and `orth_loss_exact_hvp` of the fp64 exact-HVP run.
/// - `summary.csv`: per checkpoint: `ritz_err_top_1…r` (max over probes),
///   `steps_done` (the fewest steps a probe completed, ≤ the checkpoint) and
///   `breakdown` (empty, `invariant_subspace` or `non_finite`: why a probe stopped
///   before the checkpoint), `ghost_count`, `spurious_count` (converged Ritz values
///   away from every exact eigenvalue) and `unconverged_count` (summed over probes,
///   tolerance `ritz_tol`), `w1_scaled`, `ks` against the exact spectrum,
///   `w1_scaled_vs_exact_hvp` against the exact-HVP SLQ measure, `ritz_dev_top_1…r`
///   (distance of the i-th largest Ritz value to the i-th largest of the exact-HVP
///   run from the same probe, over the spectral radius; max over probes),
///   `orth_loss_max`, and `trustworthy` = 1 when max ritz_dev_top ≤ tolerance,
///   ghost_count = 0, w1_scaled_vs_exact_hvp ≤ tolerance and no probe broke down on a
///   non-finite value before the checkpoint: the FD pipeline reproduces what exact
///   HVPs give after the same number of steps. Convergence itself (ritz_err_top
///   against the exact spectrum) depends on the spectrum and the step count, and is
///   reported, not judged; so is `spurious_count`, which at `ritz_tol` (tighter than
///   `tolerance`) also counts converged Ritz values that an FD-HVP's own error moves
///   off the exact eigenvalue — the comparison with the exact-HVP run is the judge.
/// - `region.csv`: per policy × scheme × step policy × ε × reorth × steps, over models
///   and seeds: `trustworthy_fraction` and the worst `ritz_err_top_max`.
/// - `nodes.csv`: the SLQ nodes and weights (τ_j / probes) after `steps` steps, per run
///   and probe, of the FD run (`source = fd`), and of the exact-HVP fp64 run
///   (`exact_hvp`, once per model, seed, param format and reorthogonalization; its
///   policy-dependent columns are those of the first run that used it).
/// - `spectrum.csv`: the exact eigenvalues per model, seed and param format
///   (`spectrum: dense`); `reference_ritz.csv` instead with `spectrum: lanczos`: the
///   reference run's Ritz values, residual estimates and convergence flags.
public struct KrylovStabilityStudy: Study {
    public struct Config: Sendable {
        public var models: [String]
        public var policies: [PrecisionPolicy]
        public var schemes: [FDScheme]
        public var stepPolicies: [String]
        public var eps: [Double]
        public var reorth: [Reorthogonalization]
        public var steps: Int
        public var checkpoints: [Int]
        public var probes: Int
        public var seeds: [UInt64]
        public var ritzTop: Int
        public var ritzTol: Double
        public var tolerance: Double
        public var maxParameters: Int
        /// Where the reference eigenvalues come from (``SpectrumSource``).
        public var spectrum: SpectrumSource
        /// Steps of the reference Lanczos run of `spectrum: lanczos` (default 2·steps).
        public var referenceSteps: Int?
        public init(models: [String], policies: [PrecisionPolicy], schemes: [FDScheme], stepPolicies: [String], eps: [Double],
                    reorth: [Reorthogonalization], steps: Int, checkpoints: [Int], probes: Int, seeds: [UInt64],
                    ritzTop: Int = 3, ritzTol: Double = 1e-3, tolerance: Double = 1e-2, maxParameters: Int = 3000,
                    spectrum: SpectrumSource = .dense, referenceSteps: Int? = nil) {
            self.models = models; self.policies = policies; self.schemes = schemes; self.stepPolicies = stepPolicies; self.eps = eps
            self.reorth = reorth; self.steps = steps; self.checkpoints = checkpoints; self.probes = probes; self.seeds = seeds
            self.ritzTop = ritzTop; self.ritzTol = ritzTol; self.tolerance = tolerance; self.maxParameters = maxParameters
            self.spectrum = spectrum; self.referenceSteps = referenceSteps
        }
        var lanczosReferenceSteps: Int { referenceSteps ?? 2 * steps }
    }

    /// The reference eigenvalues of a run's diagnostics.
    ///
    /// - `dense`: the exact spectrum (a quadratic's defining eigenvalues, or the dense
    ///   Hessian from exact HVPs, up to `max_parameters`).
    /// - `lanczos`: for models too large for a dense Hessian, the Ritz values of one long
    ///   Lanczos run (`reference_steps`, full reorthogonalization, fp64, exact HVPs from
    ///   Dual<Double>, the first probe): its extreme Ritz values have converged (the study
    ///   checks the top `ritz_top` at `ritz_tol` and refuses otherwise), its interior ones
    ///   have not. So `ritz_err_top_*`, `ghost_count` (more converged copies of a value
    ///   than the reference has) and the spectral range that scales `w1_scaled_vs_exact_hvp`
    ///   and `ritz_dev_top_*` are measured against it, and `spurious_count`, `w1_scaled`
    ///   and `ks`, which need the whole spectrum, are left empty. The reference Ritz
    ///   values, residuals and convergence flags go to `reference_ritz.csv`.
    public enum SpectrumSource: String, Sendable, CaseIterable { case dense, lanczos }

    public let config: Config
    public let name = "krylov-stability"
    struct Run: Sendable {
        var model: String; var policy: PrecisionPolicy; var scheme: FDScheme; var step: String; var eps: Double
        var reorth: Reorthogonalization; var seed: UInt64
    }
    let runs: [Run]

    public init(_ c: Config) throws {
        guard !c.models.isEmpty, !c.policies.isEmpty, !c.schemes.isEmpty, !c.stepPolicies.isEmpty, !c.eps.isEmpty,
              !c.reorth.isEmpty, !c.seeds.isEmpty else {
            throw StudyError("empty grid: models, policies, schemes, step_policies, eps, reorth and seeds each need at least one value")
        }
        try checkSteps(eps: c.eps, stepPolicies: c.stepPolicies)
        guard c.steps >= 1, c.steps <= 10_000 else { throw StudyError("steps must be in 1...10000 (got \(c.steps))") }
        guard c.probes >= 1, c.probes <= 10_000 else { throw StudyError("probes must be in 1...10000 (got \(c.probes))") }
        guard c.ritzTop >= 1 else { throw StudyError("ritz_top must be ≥ 1") }
        guard c.tolerance > 0, c.tolerance.isFinite, c.ritzTol > 0, c.ritzTol.isFinite else { throw StudyError("tolerance and ritz_tol must be finite and > 0") }
        if let bad = c.checkpoints.first(where: { $0 < 1 || $0 > c.steps }) { throw StudyError("checkpoint \(bad) outside 1...steps (\(c.steps))") }
        if let r = c.referenceSteps, !(c.ritzTop...10_000).contains(r) {
            throw StudyError("reference_steps must be in \(c.ritzTop)...10000 (ritz_top ... 10000; got \(r))")
        }
        config = c
        var rs: [Run] = []
        for m in c.models { for p in c.policies { for s in c.schemes { for st in c.stepPolicies { for e in c.eps { for r in c.reorth { for seed in c.seeds {
            rs.append(Run(model: m, policy: p, scheme: s, step: st, eps: e, reorth: r, seed: seed))
        } } } } } } }
        runs = rs
    }

    public var units: [StudyUnit] { runs.indices.map { StudyUnit(key: unitKey($0)) } }
    public func unitKey(_ i: Int) -> String {
        let r = runs[i]
        return "\(r.model)|\(r.policy)|\(r.scheme.rawValue)|\(r.step)|\(r.eps)|\(r.reorth.rawValue)|\(r.seed)"
    }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.seeds.map { ("seed_\($0)", $0) }) }
    var checkpoints: [Int] { Array(Set(config.checkpoints + [config.steps])).sorted() }

    public static let lead = ["model", "policy", "param", "compute", "grad", "krylov", "scheme", "step_policy", "eps", "reorth", "seed"]
    public static let lanczosHeader = lead + ["probe", "step", "orth_loss", "orth_loss_fro", "orth_loss_exact_hvp"]
    public var summaryHeader: [String] {
        Self.lead + ["steps", "probes", "n"] + (1...config.ritzTop).map { "ritz_err_top_\($0)" }
            + (1...config.ritzTop).map { "ritz_dev_top_\($0)" }
            + ["steps_done", "breakdown", "ghost_count", "spurious_count", "unconverged_count", "w1_scaled", "ks", "w1_scaled_vs_exact_hvp",
               "orth_loss_max", "ritz_tol", "tolerance", "trustworthy"]
    }
    public static let nodesHeader = lead + ["source", "probe", "node", "weight"]
    public static let spectrumHeader = ["model", "seed", "param", "index", "eigenvalue"]
    public static let referenceRitzHeader = ["model", "seed", "param", "steps", "index", "ritz_value", "residual", "converged"]
    public static let regionHeader = ["policy", "param", "compute", "grad", "krylov", "scheme", "step_policy", "eps", "reorth", "steps",
                                      "runs", "trustworthy_fraction", "ritz_err_top_max"]

    /// The reference eigenvalues at θ (ascending) and, with `spectrum: lanczos`, the
    /// reference run's residuals and convergence flags.
    struct Reference: Sendable { var values: [Double]; var residuals: [Double]?; var converged: [Bool]? }

    func reference(_ s: ModelSetup, probe: [Double], context: StudyContext) throws -> Reference {
        switch config.spectrum {
        case .dense:
            return try context.cached("spectrum|\(s.spec)|\(s.seed)|\(s.param)") {
                Reference(values: try ExactSpectrum.of(s.model, theta: s.theta, spec: s.spec, maxParameters: config.maxParameters),
                          residuals: nil, converged: nil)
            }
        case .lanczos:
            return try context.cached("ref-lanczos|\(s.spec)|\(s.seed)|\(s.param)|\(config.lanczosReferenceSteps)") {
                let model = s.model, theta = s.theta
                let t = try ModelLanczos.run(krylov: .fp64, mode: .nearest, accumulation: .recursive, reorthogonalization: .full,
                                             steps: config.lanczosReferenceSteps, dimension: model.parameterCount, probes: [probe],
                                             seed: s.seed) { q in model.exactHVP(theta, q).hv }[0]
                let r = try Self.ritz(t, k: t.alpha.count)
                let tNorm = max(abs(r.values.first ?? 0), abs(r.values.last ?? 0))
                let conv = r.residuals.map { $0 <= config.ritzTol * tNorm }
                let top = min(config.ritzTop, conv.count)
                guard top > 0, conv.suffix(top).allSatisfy({ $0 }) else {
                    throw StudyError("model '\(s.spec)': the top \(config.ritzTop) Ritz values of the \(t.alpha.count)-step reference Lanczos run have not converged to ritz_tol \(config.ritzTol); raise reference_steps")
                }
                return Reference(values: r.values, residuals: r.residuals, converged: conv)
            }
        }
    }

    func probes(_ seed: UInt64, _ n: Int) -> [[Double]] {
        var g = ProbeGenerator(seed: derivedSeed(seed, "krylov-probes"), kind: .rademacher)
        return (0..<config.probes).map { _ in g.next(n) }
    }

    func lanczos(krylov: ScalarFormat, mode: RoundingMode, accumulation: Accumulation, reorth: Reorthogonalization, n: Int, probes: [[Double]],
                 seed: UInt64, apply: @escaping ([Double]) -> [Double]) throws -> [LanczosTrace] {
        try ModelLanczos.run(krylov: krylov, mode: mode, accumulation: accumulation, reorthogonalization: reorth, steps: config.steps,
                             dimension: n, probes: probes, seed: seed, apply: apply)
    }

    /// Ritz values, residual estimates and SLQ weights of the leading k×k block.
    public static func ritz(_ t: LanczosTrace, k: Int) throws -> (values: [Double], residuals: [Double], weights: [Double]) {
        let k = min(k, t.alpha.count)
        guard k > 0 else { return ([], [], []) }
        let r = try TridiagonalEigen.solve(diagonal: Array(t.alpha.prefix(k)), offDiagonal: Array(t.beta.prefix(k - 1)), rows: [0, k - 1])
        let w = r.components[0].map { $0 * $0 }
        let s = w.reduce(0, +)
        return (r.values, r.components[1].map { abs($0) * t.beta[k - 1] }, w.map { $0 / s })
    }

    /// SLQ over several probes: each probe's Ritz values with weights τ²ᵢ (per probe)
    /// and the measure that puts τ²ᵢ / probes on every Ritz value of every probe.
    public static func slq(_ traces: [LanczosTrace]) throws -> (measure: SpectralMeasure, probes: [(values: [Double], weights: [Double], residuals: [Double])]) {
        let perProbe = try traces.map { t in let r = try ritz(t, k: t.alpha.count); return (values: r.values, weights: r.weights, residuals: r.residuals) }
        let count = Double(traces.count)
        return (SpectralMeasure(nodes: perProbe.flatMap(\.values), weights: perProbe.flatMap { $0.weights.map { $0 / count } }), perProbe)
    }

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = runs[index]
        // θ and the model only: the fp64 setup (no mpfr256 HVP is needed here).
        let setup = try ModelSetup.make(c.model, seed: c.seed, param: c.policy.param, reference: .fp64, context: context)
        let n = setup.model.parameterCount
        let ps = probes(c.seed, n)
        let reference = try self.reference(setup, probe: ps[0], context: context)
        let exact = reference.values
        let complete = config.spectrum == .dense
        let engine = try FDEngine(model: setup.model, policy: c.policy)
        let step = try StepPolicy.make(kind: c.step, value: c.eps)
        let theta = setup.theta, model = setup.model
        let fdApply: ([Double]) -> [Double] = { q in
            (try? engine.estimate(theta: theta, v: q, scheme: c.scheme, step: step).hv) ?? [Double](repeating: .nan, count: q.count)
        }
        let fd = try lanczos(krylov: c.policy.krylov, mode: c.policy.mode(for: c.policy.krylov), accumulation: c.policy.krylovAccumulation(),
                             reorth: c.reorth, n: n,
                             probes: ps, seed: derivedSeed(c.seed, unitKey(index)), apply: fdApply)
        let base: [LanczosTrace] = try context.cached("exact-lanczos|\(c.model)|\(c.seed)|\(c.policy.param)|\(c.reorth.rawValue)") {
            try lanczos(krylov: .fp64, mode: .nearest, accumulation: .recursive, reorth: c.reorth, n: n, probes: ps, seed: c.seed) { q in
                model.exactHVP(theta, q).hv
            }
        }
        let lead = [c.model] + policyCells(c.policy) + [c.policy.krylov.name, c.scheme.rawValue, c.step, cell(c.eps), c.reorth.rawValue, "\(c.seed)"]
        var out = UnitOutput()
        for (p, t) in fd.enumerated() {
            for j in t.alpha.indices {
                let b = j < base[p].orthLoss.count ? base[p].orthLoss[j] : nil
                out.append("lanczos", lead + ["\(p)", "\(j + 1)", cell(t.orthLoss[j]), cell(t.orthLossFro[j]), cell(b)])
            }
        }
        // The exact-HVP run depends only on (model, seed, param, reorth): its nodes once, from the first unit that uses it.
        let firstOfBase = index == runs.firstIndex { $0.model == c.model && $0.seed == c.seed && $0.policy.param == c.policy.param && $0.reorth == c.reorth }
        for (src, traces) in [("fd", fd), ("exact_hvp", base)] where src == "fd" || firstOfBase {
            for (p, t) in traces.enumerated() {
                let r = try Self.ritz(t, k: t.alpha.count)
                for (x, w) in zip(r.values, r.weights) { out.append("nodes", lead + [src, "\(p)", cell(x), cell(w / Double(traces.count))]) }
            }
        }
        // The reference once per (model, seed, param): from the first unit that uses it.
        if index == runs.firstIndex(where: { $0.model == c.model && $0.seed == c.seed && $0.policy.param == c.policy.param }) {
            if let res = reference.residuals, let conv = reference.converged {
                for (i, l) in exact.enumerated() {
                    out.append("reference_ritz", [c.model, "\(c.seed)", c.policy.param.name, "\(exact.count)", "\(i)", cell(l), cell(res[i]), conv[i] ? "1" : "0"])
                }
            } else {
                for (i, l) in exact.enumerated() { out.append("spectrum", [c.model, "\(c.seed)", c.policy.param.name, "\(i)", cell(l)]) }
            }
        }
        let exactMeasure = SpectralMeasure(eigenvalues: exact)
        let range = (exact.last ?? 0) - (exact.first ?? 0)
        for k in checkpoints {
            var top = [Double](repeating: 0, count: config.ritzTop), dev = [Double](repeating: 0, count: config.ritzTop)
            var ghosts = 0, spurious = 0, unconverged = 0
            // steps_done: the fewest steps any probe completed up to k; breakdown: the first
            // probe's reason for stopping before k.
            let stepsDone = fd.map { min($0.alpha.count, k) }.min() ?? 0
            let broke = fd.first { $0.alpha.count < k }?.breakdown
            var nodes: [Double] = [], weights: [Double] = [], bNodes: [Double] = [], bWeights: [Double] = []
            var orthMax = 0.0
            for (p, t) in fd.enumerated() {
                let r = try Self.ritz(t, k: k)
                let d = RitzDiagnostics(ritz: r.values, residuals: r.residuals, exact: exact, r: config.ritzTop, tol: config.ritzTol)
                for (i, e) in d.ritzErrTop.enumerated() { top[i] = max(top[i], e) }
                ghosts += d.ghostCount; spurious += d.spuriousCount; unconverged += d.unconvergedCount
                nodes += r.values; weights += r.weights.map { $0 / Double(fd.count) }
                let b = try Self.ritz(base[p], k: k)
                let rho = max(abs(exact.first ?? 0), abs(exact.last ?? 0), .leastNormalMagnitude)
                for i in 0..<min(config.ritzTop, r.values.count, b.values.count) {
                    dev[i] = max(dev[i], abs(r.values[r.values.count - 1 - i] - b.values[b.values.count - 1 - i]) / rho)
                }
                bNodes += b.values; bWeights += b.weights.map { $0 / Double(fd.count) }
                orthMax = max(orthMax, t.orthLoss.prefix(k).compactMap { $0 }.max() ?? 0)
            }
            let mu = SpectralMeasure(nodes: nodes, weights: weights)
            let (w1, ks) = SpectralDistance.compare(mu, exactMeasure)
            let (w1b, _) = SpectralDistance.compare(mu, SpectralMeasure(nodes: bNodes, weights: bWeights))
            let scale = range > 0 ? range : 1
            // A run that broke down on a non-finite value before k has no k-step result to trust.
            let trusted = (dev.max() ?? 0) <= config.tolerance && ghosts == 0 && w1b / scale <= config.tolerance && broke != .nonFinite
            out.append("summary", lead + ["\(k)", "\(config.probes)", "\(n)"] + top.map(cell) + dev.map(cell)
                       + ["\(stepsDone)", broke?.rawValue ?? "", "\(ghosts)", complete ? "\(spurious)" : "", "\(unconverged)",
                          complete ? cell(w1 / scale) : "", complete ? cell(ks) : "",
                          cell(w1b / scale), cell(orthMax),
                          cell(config.ritzTol), cell(config.tolerance), trusted ? "1" : "0"])
        }
        return out
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        let summary = concatenate("summary", summaryHeader, outputs)
        // Region: group by everything but model and seed.
        let h = summaryHeader
        func col(_ name: String) -> Int { h.firstIndex(of: name)! }
        let keyCols = ["policy", "param", "compute", "grad", "krylov", "scheme", "step_policy", "eps", "reorth", "steps"].map(col)
        let topCols = (1...config.ritzTop).map { col("ritz_err_top_\($0)") }
        var order: [[String]] = []
        var groups: [[String]: (runs: Int, trusted: Int, worst: Double)] = [:]
        for r in summary.rows {
            let k = keyCols.map { r[$0] }
            if groups[k] == nil { order.append(k); groups[k] = (0, 0, 0) }
            let worst = topCols.map { Double(r[$0]) ?? .infinity }.max() ?? 0
            groups[k]!.runs += 1
            groups[k]!.trusted += r[col("trustworthy")] == "1" ? 1 : 0
            groups[k]!.worst = max(groups[k]!.worst, worst)
        }
        let region = StudyTable(name: "region", header: Self.regionHeader, rows: order.map { k in
            let g = groups[k]!
            return k + ["\(g.runs)", cell(Double(g.trusted) / Double(g.runs)), cell(g.worst)]
        })
        return StudyOutput(tables: [concatenate("lanczos", Self.lanczosHeader, outputs), summary, region,
                                    concatenate("nodes", Self.nodesHeader, outputs)]
                            + (config.spectrum == .dense ? [concatenate("spectrum", Self.spectrumHeader, outputs)]
                                                         : [concatenate("reference_ritz", Self.referenceRitzHeader, outputs)]))
    }
}

/// The exact spectrum of a model's Hessian at θ: the defining eigenvalues of a
/// quadratic, otherwise the eigenvalues (LAPACK dsyevd) of the symmetrized dense
/// Hessian assembled from exact dual-number HVPs in fp64.
public enum ExactSpectrum {
    public static func of(_ model: any DifferentiableModel, theta: [Double], spec: String, maxParameters: Int = 3000) throws -> [Double] {
        // A quadratic's own spectrum (not a proper subset's: H_SS is a principal block).
        if let known = model.knownEigenvalues { return known }
        guard model.parameterCount <= maxParameters else {
            throw StudyError("model '\(spec)' has \(model.parameterCount) parameters; the exact spectrum needs a dense Hessian (max_parameters = \(maxParameters))")
        }
        var h = FullHessian.compute(model, theta: theta).hessian
        h.symmetrize()
        return try SymmetricEigen.decompose(h, vectors: false).values
    }
}
