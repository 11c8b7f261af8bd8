import Scalars
import LinearAlgebra
import RealModule

/// Probe distributions of stochastic Lanczos quadrature.
public enum ProbeKind: String, CaseIterable, Sendable { case rademacher, gaussian }

/// Seeded probes: probe `p` of a run with seed `s` is the p-th vector drawn from
/// one SplitMix64 stream, so the first probes do not depend on how many follow.
public struct ProbeGenerator: Sendable {
    @usableFromInline var g: SplitMix64
    public let kind: ProbeKind
    public init(seed: UInt64, kind: ProbeKind) { g = SplitMix64(seed: seed); self.kind = kind }
    /// A unit-norm probe (Rademacher entries ±1/√n; Gaussian normalized), in fp64.
    @inlinable
    public mutating func next(_ n: Int) -> [Double] {
        switch kind {
        case .rademacher:
            let s = 1 / Double(n).squareRoot()
            return (0..<n).map { _ in g.next() & 1 == 0 ? s : -s }
        case .gaussian:
            var v = (0..<n).map { _ in g.nextGaussian() }
            let nr = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for i in v.indices { v[i] /= nr }
            return v
        }
    }
}

/// A discrete spectral measure Σ wᵢ δ(xᵢ) (weights summing to 1).
public struct SpectralMeasure: Sendable, Equatable {
    public var nodes: [Double]
    public var weights: [Double]
    public init(nodes: [Double], weights: [Double]) { self.nodes = nodes; self.weights = weights }
    /// The uniform measure (1/n) Σ δ(λᵢ) of an exact spectrum.
    public init(eigenvalues: [Double]) {
        nodes = eigenvalues; weights = [Double](repeating: 1 / Double(max(eigenvalues.count, 1)), count: eigenvalues.count)
    }

    /// `φ_σ(x) = Σ wⱼ N(x; θⱼ, σ²)` on `grid`.
    public func density(on grid: [Double], sigma: Double) -> [Double] {
        let c = 1 / (sigma * (2 * Double.pi).squareRoot())
        return grid.map { x in
            var s = 0.0
            for (t, w) in zip(nodes, weights) { let z = (x - t) / sigma; s += w * c * Double.exp(-z * z / 2) }
            return s
        }
    }

    /// The default broadening: 1% of the range of the nodes (documented in the CLI
    /// and the manifest); at least 1e-12 for a point mass.
    public var defaultSigma: Double {
        guard let lo = nodes.min(), let hi = nodes.max() else { return 1 }
        return max(0.01 * (hi - lo), 1e-12)
    }
}

/// Distances between spectral measures (NUMERICS.md §7), computed exactly on the
/// merged atoms.
public enum SpectralDistance {
    /// `(w1, ks)`: `∫|F_μ − F_ν| dx` and `sup |F_μ − F_ν|`.
    public static func compare(_ mu: SpectralMeasure, _ nu: SpectralMeasure) -> (w1: Double, ks: Double) {
        var atoms: [(Double, Double)] = []
        let mw = mu.weights.reduce(0, +), nw = nu.weights.reduce(0, +)
        for (x, w) in zip(mu.nodes, mu.weights) { atoms.append((x, w / mw)) }
        for (x, w) in zip(nu.nodes, nu.weights) { atoms.append((x, -w / nw)) }
        atoms.sort { $0.0 < $1.0 }
        var diff = 0.0, w1 = 0.0, ks = 0.0
        for i in atoms.indices {
            diff += atoms[i].1
            if i + 1 < atoms.count {
                w1 += abs(diff) * (atoms[i + 1].0 - atoms[i].0)
                if atoms[i + 1].0 > atoms[i].0 { ks = max(ks, abs(diff)) }
            }
        }
        return (w1, ks)
    }
}

public struct SLQOptions: Sendable {
    public var steps: Int
    public var probes: Int
    public var probe: ProbeKind
    public var lanczos: LanczosOptions
    public var seed: UInt64
    public init(steps: Int, probes: Int, probe: ProbeKind = .rademacher, reorthogonalization: Reorthogonalization = .none,
                accumulation: Accumulation = .recursive, measureOrthogonality: Bool = true, seed: UInt64) {
        self.steps = steps; self.probes = probes; self.probe = probe; self.seed = seed
        lanczos = LanczosOptions(steps: steps, reorthogonalization: reorthogonalization, accumulation: accumulation,
                                 measureOrthogonality: measureOrthogonality)
    }
}

public struct SLQProbeResult<T: ComputeScalar> {
    @inlinable
    public init(nodes: [Double], weights: [Double], residuals: [Double], lanczos: LanczosResult<T>) {
        self.nodes = nodes; self.weights = weights; self.residuals = residuals; self.lanczos = lanczos
    }
    public var nodes: [Double]
    public var weights: [Double]
    public var residuals: [Double]
    public var lanczos: LanczosResult<T>
}

public struct SLQResult<T: ComputeScalar> {
    @inlinable public init(probes: [SLQProbeResult<T>]) { self.probes = probes }
    public var probes: [SLQProbeResult<T>]
    /// μ = (1/k) Σ_probes Σ_j τⱼ δ(θⱼ).
    public var measure: SpectralMeasure {
        let k = Double(probes.count)
        return SpectralMeasure(nodes: probes.flatMap(\.nodes), weights: probes.flatMap { $0.weights.map { $0 / k } })
    }
}

public enum SLQ {
    @inlinable
    public static func run<Op: LinearOperator>(_ op: Op, options: SLQOptions) throws -> SLQResult<Op.Scalar> {
        var gen = ProbeGenerator(seed: options.seed, kind: options.probe)
        var out: [SLQProbeResult<Op.Scalar>] = []
        for _ in 0..<options.probes {
            let v = gen.next(op.dimension).map { Op.Scalar(roundingDouble: $0) }
            let l = Lanczos.run(op, start: v, options: options.lanczos)
            let (theta, res, first) = try l.ritz()
            let w = first.map { $0 * $0 }
            let s = w.reduce(0, +)
            out.append(SLQProbeResult(nodes: theta, weights: w.map { $0 / s }, residuals: res, lanczos: l))
        }
        return SLQResult(probes: out)
    }
}

/// Stochastic trace estimators on an fp64 operator (NUMERICS.md §7).
public enum TraceEstimator {
    /// Hutchinson: (1/k) Σ zᵀAz with Rademacher z (unnormalized, entries ±1).
    public static func hutchinson(dimension n: Int, matvecs k: Int, seed: UInt64, _ apply: ([Double]) -> [Double]) -> Double {
        hutchinsonWithError(dimension: n, matvecs: k, seed: seed, apply).estimate
    }

    /// Hutchinson's estimate and its standard error (sample standard deviation of the
    /// k terms zᵀAz over √k; NaN for k = 1).
    public static func hutchinsonWithError(dimension n: Int, matvecs k: Int, seed: UInt64,
                                           _ apply: ([Double]) -> [Double]) -> (estimate: Double, standardError: Double) {
        var g = SplitMix64(seed: seed)
        var terms: [Double] = []
        for _ in 0..<k {
            let z = (0..<n).map { _ in g.next() & 1 == 0 ? 1.0 : -1.0 }
            let az = apply(z)
            terms.append(zip(z, az).reduce(0) { $0 + $1.0 * $1.1 })
        }
        return meanAndError(terms)
    }

    /// Hutch++ (Meyer, Musco, Musco & Woodruff 2021) with `k` matvecs (k divisible
    /// by 3): Q = orth(A S) from k/3 Rademacher columns, tr(QᵀAQ) exactly, plus
    /// Hutchinson with k/3 probes on (I − QQᵀ)A(I − QQᵀ).
    public static func hutchpp(dimension n: Int, matvecs k: Int, seed: UInt64, _ apply: ([Double]) -> [Double]) -> Double {
        hutchppWithError(dimension: n, matvecs: k, seed: seed, apply).estimate
    }

    /// Hutch++'s estimate and its standard error (that of the Hutchinson stage on the
    /// deflated operator: the sketched part is exact given Q).
    public static func hutchppWithError(dimension n: Int, matvecs k: Int, seed: UInt64,
                                        _ apply: ([Double]) -> [Double]) -> (estimate: Double, standardError: Double) {
        precondition(k >= 3 && k % 3 == 0, "hutchpp needs a multiple of 3 matvecs")
        var g = SplitMix64(seed: seed)
        let m = k / 3
        func rademacher() -> [Double] { (0..<n).map { _ in g.next() & 1 == 0 ? 1.0 : -1.0 } }
        // Q: orthonormal basis of A S (modified Gram–Schmidt, twice).
        var q: [[Double]] = []
        for _ in 0..<m {
            var y = apply(rademacher())
            for _ in 0..<2 { for b in q { let c = zip(b, y).reduce(0) { $0 + $1.0 * $1.1 }; for i in 0..<n { y[i] -= c * b[i] } } }
            let nr = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if nr > 1e-14 { q.append(y.map { $0 / nr }) }
        }
        var t = 0.0
        for b in q { let ab = apply(b); t += zip(b, ab).reduce(0) { $0 + $1.0 * $1.1 } }
        func project(_ v: [Double]) -> [Double] {
            var y = v
            for b in q { let c = zip(b, y).reduce(0) { $0 + $1.0 * $1.1 }; for i in 0..<n { y[i] -= c * b[i] } }
            return y
        }
        var terms: [Double] = []
        for _ in 0..<m {
            let z = project(rademacher())
            let az = project(apply(z))
            terms.append(zip(z, az).reduce(0) { $0 + $1.0 * $1.1 })
        }
        let (mean, se) = meanAndError(terms)
        return (t + mean, se)
    }

    /// The mean of `terms` and its standard error s/√k (NaN for fewer than two terms).
    static func meanAndError(_ terms: [Double]) -> (Double, Double) {
        let k = Double(terms.count)
        let mean = terms.reduce(0, +) / k
        guard terms.count > 1 else { return (mean, .nan) }
        let variance = terms.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (k - 1)
        return (mean, (variance / k).squareRoot())
    }
}
