import Foundation
import Scalars
import LinearAlgebra
import Krylov
import Models
import Studies

/// The exact eigenvalues beside an `slq` run (ascending): what its report's histogram
/// and any outside comparison need.
enum SpectrumTable {
    /// Larger spectra are not written (a million eigenvalues are ~25 MB of CSV).
    static let maxRows = 200_000
    static func make(_ eigenvalues: [Double]) -> Table {
        var t = Table(header: ["index", "eigenvalue"])
        for (i, l) in eigenvalues.sorted().enumerated() { t.append(["\(i)", csvNumber(l)]) }
        return t
    }
}

/// nodes.csv of an `slq` run (each probe's Ritz values with their Gauss weights and
/// residual estimates β_k|s_kj|) and the extreme Ritz values over all probes with theirs.
enum RitzNodes {
    typealias Probe = (values: [Double], weights: [Double], residuals: [Double])
    static func make(_ probes: [Probe]) -> (nodes: Table, lowest: (value: Double, residual: Double)?, highest: (value: Double, residual: Double)?) {
        var nodes = Table(header: ["probe", "node", "weight", "residual_estimate"])
        for (p, pr) in probes.enumerated() {
            for j in pr.values.indices { nodes.append(["\(p)", csvNumber(pr.values[j]), csvNumber(pr.weights[j]), csvNumber(pr.residuals[j])]) }
        }
        let all = probes.flatMap { zip($0.values, $0.residuals) }.map { (value: $0.0, residual: $0.1) }
        return (nodes, all.min { $0.value < $1.value }, all.max { $0.value < $1.value })
    }
}

/// `hessian-harness spectrum`: exact eigenvalues of a synthetic operator.
public enum SpectrumCommand {
    public static func run(operator spec: String, seed: UInt64, out: String, command: [String]) throws {
        let start = Date()
        let parsed: OperatorSpec
        do { parsed = try OperatorSpec.parse(spec) } catch { throw HarnessError("\(error)") }
        let eigenvalues = try parsed.matrix(seed: seed).eigenvalues
        // The table as rows of strings, then as CSV text: about 200 bytes per eigenvalue.
        try MemoryBudget.check(200 * Double(eigenvalues.count), "the table of \(eigenvalues.count) eigenvalues")
        var t = Table(header: ["index", "eigenvalue"])
        for (i, l) in eigenvalues.enumerated() { t.append(["\(i)", csvNumber(l)]) }
        var bundle = OutputBundle()
        try bundle.add("eigenvalues.csv", t)
        let m = Manifest(command: command, seeds: ["operator": seed], parameters: ["operator": spec, "format": "fp64"],
                         start: start, end: Date())
        bundle.manifest = m
        try bundle.write(to: URL(fileURLWithPath: out))
    }
}

/// `hessian-harness slq --operator SPEC …`: SLQ of a synthetic operator in any
/// Krylov format, compared with its exact spectrum.
public struct SLQCommand {
    public var operatorSpec: String
    public var steps: Int
    public var probes: Int
    public var reorth: String
    public var krylov: String
    public var rounding: String
    public var accumulation: String
    public var probe: String
    public var sigma: Double?
    public var gridPoints: Int
    public var seed: UInt64
    public var out: String
    public var command: [String]

    public init(operatorSpec: String, steps: Int, probes: Int, reorth: String, krylov: String, rounding: String,
                accumulation: String, probe: String, sigma: Double?, gridPoints: Int, seed: UInt64, out: String, command: [String]) {
        self.operatorSpec = operatorSpec; self.steps = steps; self.probes = probes; self.reorth = reorth
        self.krylov = krylov; self.rounding = rounding; self.accumulation = accumulation; self.probe = probe
        self.sigma = sigma; self.gridPoints = gridPoints; self.seed = seed; self.out = out; self.command = command
    }

    /// Validated inputs; every check runs before anything is computed or written.
    struct Validated {
        var spec: OperatorSpec
        var reorth: Reorthogonalization
        var rounding: RoundingMode
        var accumulation: Accumulation
        var probe: ProbeKind
    }

    func validate() throws -> Validated {
        let spec: OperatorSpec
        do { spec = try OperatorSpec.parse(operatorSpec) } catch { throw HarnessError("\(error)") }
        guard (1...10_000).contains(steps) else { throw HarnessError("--steps must be in 1...10000 (got \(steps))") }
        guard (1...10_000).contains(probes) else { throw HarnessError("--probes must be in 1...10000 (got \(probes))") }
        guard (2...1_000_000).contains(gridPoints) else { throw HarnessError("--grid must be in 2...1000000 (got \(gridPoints))") }
        if let s = sigma, !(s > 0 && s.isFinite) { throw HarnessError("--sigma must be a positive finite number (got \(s))") }
        guard let r = Reorthogonalization(rawValue: reorth) else {
            throw HarnessError("unknown --reorth '\(reorth)' (known: \(Reorthogonalization.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let mode = RoundingMode(name: rounding) else {
            throw HarnessError("unknown --rounding '\(rounding)' (known: \(RoundingMode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        // auto: the vectors' format summed in binary32 when it is narrower (bf16 vectors,
        // fp32 accumulation: the mixed-precision norm), otherwise recursively in it.
        let acc: Accumulation
        if accumulation == "auto" {
            do { acc = try PrecisionPolicy("krylov=\(krylov),accumulate=fp32").krylovAccumulation() } catch { throw HarnessError("--krylov: \(error)") }
        } else {
            guard let a = Accumulation(name: accumulation) else {
                throw HarnessError("unknown --accumulation '\(accumulation)' (known: auto, recursive, pairwise, compensated, fp32, fp64, blas)")
            }
            acc = a
        }
        guard let p = ProbeKind(rawValue: probe) else { throw HarnessError("unknown --probe '\(probe)' (known: rademacher, gaussian)") }
        struct Check: ScalarBody { func run<T: ComputeScalar>(_: T.Type) -> Bool { true } }
        do { _ = try ScalarRegistry.run(format: krylov, rounding: mode, Check()) } catch { throw HarnessError("--krylov: \(error)") }
        return Validated(spec: spec, reorth: r, rounding: mode, accumulation: acc, probe: p)
    }

    public func run() throws {
        let v = try validate()
        let start = Date()
        let bundle = try ScalarRegistry.run(format: krylov, rounding: v.rounding, Body(cmd: self, v: v))
        var b = bundle
        let m = Manifest(command: command, seeds: ["operator": seed, "probes": seed, "stochastic_rounding": seed],
                         parameters: ["operator": operatorSpec, "steps": "\(steps)", "probes": "\(probes)", "reorth": reorth,
                                      "krylov": krylov, "rounding": v.rounding.rawValue, "accumulation": v.accumulation.description,
                                      "probe": probe, "grid": "\(gridPoints)", "sigma": sigma.map { "\($0)" } ?? "default: 1% of the node range",
                                      "tridiagonal_solver": "fp64 implicit QL"],
                         start: start, end: Date())
        b.manifest = m
        try b.write(to: URL(fileURLWithPath: out))
        print(b.summaryLine("slq", columns: ["steps_done", "breakdown", "w1_scaled", "ks", "ritz_err_top_1", "ghost_count"], dir: out))
    }

    struct Body: ScalarBody {
        let cmd: SLQCommand
        let v: Validated
        func run<T: ComputeScalar>(_: T.Type) throws -> OutputBundle {
            let (op, exact) = try v.spec.build(T.self, seed: cmd.seed)
            let opts = SLQOptions(steps: cmd.steps, probes: cmd.probes, probe: v.probe, reorthogonalization: v.reorth,
                                  accumulation: v.accumulation, seed: cmd.seed)
            let clock = ContinuousClock()
            var result: SLQResult<T>? = nil
            let elapsed = try clock.measure {
                result = try StochasticRounding.withSeed(cmd.seed) { try SLQ.run(op, options: opts) }
            }
            let r = result!
            let seconds = elapsed.seconds
            let totalSteps = r.probes.map(\.lanczos.steps).reduce(0, +)

            let (nodes, rmin, rmax) = RitzNodes.make(r.probes.map { ($0.nodes, $0.weights, $0.residuals) })
            var lanczos = Table(header: ["probe", "step", "alpha", "beta", "orth_loss", "orth_loss_fro", "reorthogonalized"])
            for (p, pr) in r.probes.enumerated() {
                for rec in pr.lanczos.records {
                    lanczos.append(["\(p)", "\(rec.step)", csvNumber(rec.alpha), csvNumber(rec.beta),
                                    rec.orthLoss.map(csvNumber) ?? "", rec.orthLossFro.map(csvNumber) ?? "",
                                    rec.reorthogonalized ? "1" : "0"])
                }
            }
            let mu = r.measure
            let sigma = cmd.sigma ?? mu.defaultSigma
            let lo = min(mu.nodes.min() ?? 0, exact.first ?? 0) - 3 * sigma
            let hi = max(mu.nodes.max() ?? 0, exact.last ?? 0) + 3 * sigma
            let grid = (0..<cmd.gridPoints).map { lo + (hi - lo) * Double($0) / Double(cmd.gridPoints - 1) }
            var density = Table(header: ["x", "density"])
            for (x, d) in zip(grid, mu.density(on: grid, sigma: sigma)) { density.append([csvNumber(x), csvNumber(d)]) }

            let (w1, ks) = SpectralDistance.compare(mu, SpectralMeasure(eigenvalues: exact))
            let range = (exact.last ?? 0) - (exact.first ?? 0)
            let tol = (T.ulpOfOne.doubleValue / 2).squareRoot()
            var ghosts = 0, spurious = 0, unconverged = 0
            var top = [Double](repeating: 0, count: 3)
            for pr in r.probes {
                let d = RitzDiagnostics(ritz: pr.nodes, residuals: pr.residuals, exact: exact, r: 3, tol: tol)
                ghosts += d.ghostCount; spurious += d.spuriousCount; unconverged += d.unconvergedCount
                for (i, e) in d.ritzErrTop.enumerated() where i < 3 { top[i] = max(top[i], e) }
            }
            let maxOrth = r.probes.flatMap { $0.lanczos.records.compactMap(\.orthLoss) }.max() ?? 0
            // steps_done: the fewest steps a probe completed; breakdown: the first probe's
            // reason for stopping early (NUMERICS §6), never the requested count alone.
            let stepsDone = r.probes.map(\.lanczos.steps).min() ?? 0
            let broke = r.probes.first { $0.lanczos.breakdown != nil }?.lanczos.breakdown
            var summary = Table(header: ["operator", "krylov", "rounding", "accumulation", "reorth", "steps", "steps_done", "breakdown",
                                         "probes", "seed", "lambda_min", "lambda_min_residual", "lambda_max", "lambda_max_residual",
                                         "w1", "w1_scaled", "ks", "ritz_err_top_1", "ritz_err_top_2", "ritz_err_top_3",
                                         "ghost_count", "spurious_count", "unconverged_count", "orth_loss_max", "diagnostic_tol", "sigma",
                                         "time_lanczos_s", "time_lanczos_step_s", "trace_slq", "trace_exact"])
            // SLQ's trace: n · Σ wⱼθⱼ (the measure's weights sum to 1).
            let traceSLQ = Double(op.dimension) * zip(mu.nodes, mu.weights).reduce(0) { $0 + $1.0 * $1.1 }
            summary.append([cmd.operatorSpec, T.formatName, v.rounding.rawValue, v.accumulation.description, v.reorth.rawValue,
                            "\(cmd.steps)", "\(stepsDone)", broke?.rawValue ?? "",
                            "\(cmd.probes)", "\(cmd.seed)", rmin.map { csvNumber($0.value) } ?? "", rmin.map { csvNumber($0.residual) } ?? "",
                            rmax.map { csvNumber($0.value) } ?? "", rmax.map { csvNumber($0.residual) } ?? "", csvNumber(w1), csvNumber(range > 0 ? w1 / range : 0),
                            csvNumber(ks), csvNumber(top[0]), csvNumber(top[1]), csvNumber(top[2]), "\(ghosts)", "\(spurious)", "\(unconverged)",
                            csvNumber(maxOrth), csvNumber(tol), csvNumber(sigma), csvNumber(seconds),
                            csvNumber(totalSteps > 0 ? seconds / Double(totalSteps) : 0), csvNumber(traceSLQ), csvNumber(exact.reduce(0, +))])
            var b = OutputBundle()
            try b.add("nodes.csv", nodes)
            try b.add("density.csv", density)
            try b.add("lanczos.csv", lanczos)
            try b.add("summary.csv", summary)
            // The exact spectrum beside the run, up to a size a CSV carries comfortably.
            if exact.count <= SpectrumTable.maxRows { try b.add("spectrum.csv", SpectrumTable.make(exact)) }
            return b
        }
    }
}
