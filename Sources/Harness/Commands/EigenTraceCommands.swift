import Foundation
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature
import Studies

/// The symmetric operator an `eigen` or `trace` run measures: a synthetic operator
/// (`--operator SPEC`, exact spectrum known), or a model's Hessian through the FD-HVP
/// of a precision policy (`--model SPEC --policy P --eps E|auto`), or its exact HVP
/// (`--scheme exact`, the compute format's forward-over-reverse).
public struct SpectralSource {
    var dimension: Int
    var apply: ([Double]) -> [Double]
    /// The exact eigenvalues, ascending, where known (operators; models with n ≤ 3000 and an fp64 exact HVP).
    var exact: [Double]?
    var parameters: [String: String]
    var seeds: [String: UInt64]

    /// What names the operator: `--operator`, or `--model` with its policy, scheme, step and tolerance
    /// (the options `eigen` and `trace` share).
    public struct Options {
        public var operatorSpec: String?
        public var model: String?
        public var policy: String?
        public var scheme: String
        public var stepPolicy: String
        public var eps: String?
        public var tolerance: Double
        /// `--params PATTERN` (``ParameterSubset``).
        public var params: String? = nil
        public init(operatorSpec: String?, model: String?, policy: String?, scheme: String = "central", stepPolicy: String = "absolute",
                    eps: String?, tolerance: Double = 0.05) {
            self.operatorSpec = operatorSpec; self.model = model; self.policy = policy; self.scheme = scheme
            self.stepPolicy = stepPolicy; self.eps = eps; self.tolerance = tolerance
        }
    }

    static func make(_ o: Options, seed: UInt64) throws -> SpectralSource {
        guard o.tolerance > 0 && o.tolerance.isFinite else { throw HarnessError("--tolerance must be a finite number > 0") }
        let (model, policy, scheme, stepPolicy, eps, tolerance) = (o.model, o.policy, o.scheme, o.stepPolicy, o.eps, o.tolerance)
        switch (o.operatorSpec, model) {
        case (let op?, nil):
            guard policy == nil, eps == nil else { throw HarnessError("--policy and --eps belong to --model runs, not to --operator") }
            let spec: OperatorSpec
            do { spec = try OperatorSpec.parse(op) } catch { throw HarnessError("\(error)") }
            let (a, exact) = try spec.build(Double.self, seed: seed)
            let n = a.dimension
            return SpectralSource(dimension: n, apply: { x in var y = [Double](repeating: 0, count: n); a.apply(x, into: &y); return y },
                                  exact: exact.sorted(), parameters: ["operator": op, "format": "fp64"], seeds: ["operator": seed])
        case (nil, let spec?):
            guard let p = policy else { throw HarnessError("--model needs --policy") }
            let pol: PrecisionPolicy
            do { pol = try PrecisionPolicy(p) } catch { throw HarnessError("--policy: \(error)") }
            let fd: FDScheme?
            if scheme == "exact" { fd = nil } else {
                guard let s = FDScheme(rawValue: scheme) else { throw HarnessError("unknown --scheme '\(scheme)' (known: exact, forward, central, richardson)") }
                guard eps != nil else { throw HarnessError("--model with an FD scheme needs --eps (a number, or auto)") }
                fd = s
            }
            var userEps: Double? = nil
            if let e = eps, e != "auto" {
                guard let x = Double(e), x > 0, x.isFinite else { throw HarnessError("--eps must be a finite number > 0 or auto (got '\(e)')") }
                userEps = x
            }
            guard stepPolicy == "absolute" || stepPolicy == "relative" else {
                throw HarnessError("unknown --step-policy '\(stepPolicy)' (known: absolute, relative)")
            }
            var m: any DifferentiableModel
            do { m = try ModelSpec.build(spec, seed: seed) } catch { throw HarnessError("--model: \(error)") }
            m = try ParamsOption.restrict(m, pattern: o.params, seed: seed, policy: pol)
            if fd == nil { do { try m.checkExactHVP(format: "fp64") } catch { throw HarnessError("\(error)") } }
            try ModelMemory.check(m, format: pol.compute, dual: fd == nil, what: "a gradient of the model")
            let param = try pol.arithmetic(pol.param)
            let theta = ModelSetup.parameters(m, seed: seed, param: param)
            let n = m.parameterCount
            let engine = try FDEngine(model: m, policy: pol)
            var parameters = ["model": spec, "params": o.params ?? "all", "policy": pol.description, "scheme": scheme]
            let apply: ([Double]) -> [Double]
            if let fd {
                var step: StepPolicy
                if let userEps {
                    step = try StepPolicy.make(kind: stepPolicy, value: userEps)
                    parameters["eps_source"] = "user"
                } else {
                    // The operator is applied to unit vectors: the step is chosen along one (as slq --eps auto).
                    let r = try StepRecommendation.estimate(engine: engine, theta: theta, v: ModelSLQCommand.unitDirection(count: n, seed: seed),
                                                            scheme: fd, tolerance: tolerance, seed: seed)
                    step = .absolute(r.epsStar)
                    parameters["eps_source"] = "auto"
                    parameters["predicted_err"] = r.predictedErr.isFinite ? "\(r.predictedErr)" : ""
                    if !r.feasible {
                        FileHandle.standardError.write(Data("warning: --eps auto: no ε meets the tolerance \(short(tolerance)); using ε = \(short(r.epsStar))\(r.saturated ? ": the FD-HVP is saturated on this model" : "")\n".utf8))
                    }
                }
                parameters["step_policy"] = step.description
                let s = step
                apply = { q in
                    (try? engine.estimate(theta: theta, v: q, scheme: fd, step: s).hv) ?? [Double](repeating: .nan, count: q.count)
                }
            } else {
                apply = { q in engine.exactHVP(theta: theta, v: q) }
            }
            let hasExact = (try? m.checkExactHVP(format: "fp64")) != nil
            let exact = n <= 3000 && hasExact ? try ExactSpectrum.of(m, theta: theta, spec: spec) : nil
            return SpectralSource(dimension: n, apply: apply, exact: exact, parameters: parameters,
                                  seeds: ["model": seed, "probes": seed, "stochastic_rounding": seed])
        case (nil, nil): throw HarnessError("give --operator SPEC or --model SPEC")
        default: throw HarnessError("give --operator or --model, not both")
        }
    }
}

/// `hessian-harness eigen`: the extreme eigenpairs of an operator or a model's
/// Hessian by Lanczos with full reorthogonalization in fp64: each Ritz value with
/// its residual estimate `β_k|s_kj|`, the residual ‖A y − θ y‖ measured with one more
/// application of the same operator, and the bound on the distance to the nearest
/// eigenvalue (`error_bound` = the residual: exact for a symmetric operator, and for an
/// FD-HVP, symmetric only up to its own error, a bound as good as that error); with an exact
/// spectrum, the nearest exact eigenvalue and the error. Eigenvectors as .npy on request.
public struct EigenCommand {
    public var source: SpectralSource.Options
    public var top: Int
    public var which: String
    public var steps: Int?
    public var vectors: Bool
    public var seed: UInt64
    public var out: String
    public var command: [String]

    public init(source: SpectralSource.Options, top: Int, which: String, steps: Int?, vectors: Bool, seed: UInt64, out: String, command: [String]) {
        self.source = source; self.top = top; self.which = which; self.steps = steps; self.vectors = vectors
        self.seed = seed; self.out = out; self.command = command
    }

    public func run() throws {
        let start = Date()
        guard (1...10_000).contains(top) else { throw HarnessError("--top must be in 1...10000 (got \(top))") }
        guard ["largest", "smallest", "both"].contains(which) else { throw HarnessError("unknown --which '\(which)' (known: largest, smallest, both)") }
        if let s = steps { guard (1...10_000).contains(s) else { throw HarnessError("--steps must be in 1...10000 (got \(s))") } }
        let src = try SpectralSource.make(source, seed: seed)
        let n = src.dimension
        let want = min(top, n)
        let m = min(n, steps ?? max(3 * want + 20, 50))
        // The basis (m + 1 vectors), its fp64 orthogonality copy, and the Ritz vectors.
        try MemoryBudget.check(Double(2 * (m + 1) + 2 * want) * Double(n) * 8, "the Lanczos basis (\(m + 1) vectors of \(n) in fp64)")
        var gen = ProbeGenerator(seed: seed, kind: .gaussian)
        let startVector = gen.next(n)
        let op = ClosureOperator<Double>(dimension: n, src.apply)
        let clock = ContinuousClock()
        var result: LanczosResult<Double>? = nil
        let tLanczos = clock.measure {
            result = StochasticRounding.withSeed(seed) {
                Lanczos.run(op, start: startVector, options: LanczosOptions(steps: m, reorthogonalization: .full, storeBasis: true))
            }
        }.seconds
        let r = result!
        let k = r.steps
        guard k >= 1, let basis = r.basis, r.alpha.allSatisfy(\.isFinite) else {
            throw HarnessError("Lanczos did not complete a step (breakdown \(r.breakdown?.rawValue ?? "unknown")): the operator gave a non-finite value")
        }
        // All Ritz pairs of T_k (fp64, LAPACK dsyevd).
        var t = Matrix<Double>(rows: k, cols: k)
        for i in 0..<k { t[i, i] = r.alpha[i]; if i + 1 < k { t[i, i + 1] = r.beta[i]; t[i + 1, i] = r.beta[i] } }
        let eig = try SymmetricEigen.decompose(t, vectors: true)
        let betaK = r.beta[k - 1]
        var picks: [(rank: Int, side: String, index: Int)] = []
        let count = min(want, k)
        if which != "smallest" { for j in 0..<count { picks.append((j + 1, "largest", k - 1 - j)) } }
        if which != "largest" { for j in 0..<count where which == "smallest" || !picks.contains(where: { $0.index == j }) { picks.append((j + 1, "smallest", j)) } }
        var table = Table(header: ["which", "rank", "ritz_value", "residual_estimate", "residual", "error_bound", "exact", "abs_err", "steps_done", "breakdown"])
        var vecs: [Double] = []
        for p in picks {
            let s = (0..<k).map { eig.vectors![$0, p.index] }
            var y = [Double](repeating: 0, count: n)
            for i in 0..<k where s[i] != 0 { let c = s[i]; let q = basis[i]; for l in 0..<n { y[l] += c * q[l] } }
            let norm = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if norm > 0 { for l in 0..<n { y[l] /= norm } }
            let theta = eig.values[p.index]
            let ay = src.apply(y)
            let res = zip(ay, y).reduce(0) { $0 + ($1.0 - theta * $1.1) * ($1.0 - theta * $1.1) }.squareRoot()
            var exactCell = "", errCell = ""
            if let ex = src.exact, !ex.isEmpty {
                let nearest = ex.min { abs($0 - theta) < abs($1 - theta) }!
                exactCell = csvNumber(nearest); errCell = csvNumber(abs(nearest - theta))
            }
            table.append([p.side, "\(p.rank)", csvNumber(theta), csvNumber(abs(s[k - 1]) * abs(betaK)), csvNumber(res), csvNumber(res),
                          exactCell, errCell, "\(k)", r.breakdown?.rawValue ?? ""])
            if vectors { vecs += y }
        }
        var bundle = OutputBundle()
        try bundle.add("eigen.csv", table)
        if vectors { bundle.add("eigenvectors.npy", NPY.float64(vecs, shape: [picks.count, n])) }
        var parameters = src.parameters
        parameters["top"] = "\(top)"; parameters["which"] = which; parameters["steps"] = "\(m)"
        parameters["lanczos"] = "fp64 vectors, full reorthogonalization, Gaussian start vector from SplitMix64(seed)"
        parameters["time_lanczos_s"] = "\(tLanczos)"
        bundle.manifest = Manifest(command: command, seeds: src.seeds, parameters: parameters, start: start, end: Date())
        try bundle.write(to: URL(fileURLWithPath: out))
        let head = picks.prefix(2).map { "\($0.side) \(short(eig.values[$0.index]))" }.joined(separator: ", ")
        print("eigen: \(picks.count) Ritz pairs after \(k) steps (\(head)) → \(out) (\(bundle.fileNames.joined(separator: ", ")))")
    }
}

/// `hessian-harness trace`: Hutchinson and Hutch++ estimates of the trace with their
/// standard errors, from the same matrix-vector budget, and the exact trace where the
/// spectrum is known.
public struct TraceCommand {
    public var source: SpectralSource.Options
    public var matvecs: Int
    public var seed: UInt64
    public var out: String
    public var command: [String]

    public init(source: SpectralSource.Options, matvecs: Int, seed: UInt64, out: String, command: [String]) {
        self.source = source; self.matvecs = matvecs; self.seed = seed; self.out = out; self.command = command
    }

    public func run() throws {
        let start = Date()
        guard (6...100_000).contains(matvecs), matvecs % 3 == 0 else {
            throw HarnessError("--matvecs must be a multiple of 3 in 6...100000 (Hutch++ spends a third on each of its stages; got \(matvecs))")
        }
        let src = try SpectralSource.make(source, seed: seed)
        let n = src.dimension
        try MemoryBudget.check(Double(matvecs / 3 + 4) * Double(n) * 8, "Hutch++'s basis (\(matvecs / 3) vectors of \(n) in fp64)")
        let (h, hse) = StochasticRounding.withSeed(seed) { TraceEstimator.hutchinsonWithError(dimension: n, matvecs: matvecs, seed: seed, src.apply) }
        let (hp, hpse) = StochasticRounding.withSeed(seed) { TraceEstimator.hutchppWithError(dimension: n, matvecs: matvecs, seed: seed, src.apply) }
        let exact = src.exact.map { $0.reduce(0, +) }
        var table = Table(header: ["estimator", "matvecs", "trace", "standard_error", "exact", "abs_err", "rel_err"])
        for (name, est, se) in [("hutchinson", h, hse), ("hutchpp", hp, hpse)] {
            table.append([name, "\(matvecs)", csvNumber(est), csvNumber(se), exact.map(csvNumber) ?? "",
                          exact.map { csvNumber(abs(est - $0)) } ?? "", exact.map { $0 != 0 ? csvNumber(abs(est - $0) / abs($0)) : "" } ?? ""])
        }
        var bundle = OutputBundle()
        try bundle.add("trace.csv", table)
        var parameters = src.parameters
        parameters["matvecs"] = "\(matvecs)"
        parameters["probes"] = "Rademacher from SplitMix64(seed); Hutch++ (Meyer, Musco, Musco & Woodruff 2021): k/3 sketch, k/3 exact, k/3 Hutchinson"
        bundle.manifest = Manifest(command: command, seeds: src.seeds, parameters: parameters, start: start, end: Date())
        try bundle.write(to: URL(fileURLWithPath: out))
        print("trace: hutchinson \(short(h)) ± \(short(hse)), hutch++ \(short(hp)) ± \(short(hpse))\(exact.map { ", exact \(short($0))" } ?? "") → \(out) (\(bundle.fileNames.joined(separator: ", ")))")
    }
}
