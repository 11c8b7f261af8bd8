import Scalars
import LinearAlgebra
import RealModule

/// Reorthogonalization policies of NUMERICS.md §6.
public enum Reorthogonalization: String, CaseIterable, Sendable {
    /// Plain three-term recurrence.
    case none
    /// Twice classical Gram–Schmidt of each new vector against all stored vectors.
    case full
    /// Simon's ω-recurrence estimates the loss of orthogonality; when an estimate
    /// exceeds √u (u of the Krylov format) the new vector and the next one are
    /// reorthogonalized against all stored vectors (twice CGS) and the estimates reset.
    case partial
    /// Parlett–Scott: the new vector is orthogonalized against the Ritz vectors
    /// that have converged (residual estimate ≤ √u ‖T_j‖).
    case selective
}

public struct LanczosOptions: Sendable {
    public var steps: Int
    public var reorthogonalization: Reorthogonalization
    /// Policy of the dot products and norms in the Krylov format.
    public var accumulation: Accumulation
    /// Keep the basis vectors in the result (they are stored anyway for full,
    /// partial and selective reorthogonalization).
    public var storeBasis: Bool
    /// Measure `orth_loss` and `orth_loss_fro` at every step, in fp64: the products of
    /// the stored vectors' values, summed in fp64. Reorthogonalizing runs store the basis
    /// anyway and are measured from it; `.none` keeps an fp64 copy (n·m doubles).
    public var measureOrthogonality: Bool
    /// Breakdown when `β_{j+1} ≤ breakdownTolerance · max_i(|α_i| + β_i)`: the new
    /// residual is at the rounding level of one matrix-vector product. Default `4u`
    /// of the Krylov format.
    public var breakdownTolerance: Double?

    public init(steps: Int, reorthogonalization: Reorthogonalization = .none, accumulation: Accumulation = .recursive,
                storeBasis: Bool = false, measureOrthogonality: Bool = true, breakdownTolerance: Double? = nil) {
        self.steps = steps; self.reorthogonalization = reorthogonalization; self.accumulation = accumulation
        self.storeBasis = storeBasis; self.measureOrthogonality = measureOrthogonality; self.breakdownTolerance = breakdownTolerance
    }
}

/// One Lanczos step's record (column names of `lanczos.csv`).
public struct LanczosStepRecord: Sendable, Equatable {
    @inlinable
    public init(step: Int, alpha: Double, beta: Double, orthLoss: Double?, orthLossFro: Double?, reorthogonalized: Bool) {
        self.step = step; self.alpha = alpha; self.beta = beta; self.orthLoss = orthLoss
        self.orthLossFro = orthLossFro; self.reorthogonalized = reorthogonalized
    }
    public var step: Int
    public var alpha: Double
    public var beta: Double
    /// max_{i<j≤step} |q_iᵀ q_j| in fp64 (nil when not measured).
    public var orthLoss: Double?
    /// ‖I − Q_stepᵀ Q_step‖_F in fp64.
    public var orthLossFro: Double?
    public var reorthogonalized: Bool
}

/// Why a Lanczos run stopped before its requested step count (NUMERICS §6, `breakdown`).
public enum LanczosBreakdown: String, Sendable, Equatable {
    /// β fell to the rounding level of one product: an invariant subspace was found
    /// (the Ritz values so far are exact for that subspace): a lucky breakdown.
    case invariantSubspace = "invariant_subspace"
    /// α or β (or the operator's output) was NaN or infinite. The step that produced
    /// it is dropped: the run reports the steps before it, whose tridiagonal is finite.
    case nonFinite = "non_finite"
    /// Partial or selective reorthogonalization made the new vector longer: projecting
    /// out a basis can only shorten a vector when the basis is orthonormal, so the
    /// stored vectors had already lost orthogonality beyond what the reorthogonalization
    /// can repair (the ω-recurrence models the rounding of an exact symmetric operator;
    /// an FD-HVP whose own error is far above u loses orthogonality faster than it
    /// predicts). Left alone, classical Gram–Schmidt against such a basis grows the
    /// vectors geometrically until they overflow. The step is dropped.
    case orthogonalityLost = "orthogonality_lost"
}

public struct LanczosResult<T: ComputeScalar> {
    @inlinable
    public init(alpha: [T], beta: [T], records: [LanczosStepRecord], basis: [[T]]?, breakdownStep: Int?,
                breakdown: LanczosBreakdown? = nil, reorthogonalizations: Int) {
        self.alpha = alpha; self.beta = beta; self.records = records; self.basis = basis
        self.breakdownStep = breakdownStep; self.breakdown = breakdownStep == nil ? nil : (breakdown ?? .invariantSubspace)
        self.reorthogonalizations = reorthogonalizations
    }
    /// α_1…α_k.
    public var alpha: [T]
    /// β_2…β_{k+1}: `beta[j]` is the norm of the residual after step j+1 (so
    /// `beta[k−1]` multiplies the last components in residual estimates).
    public var beta: [T]
    public var records: [LanczosStepRecord]
    public var basis: [[T]]?
    /// The step at which the run broke down: β fell below the breakdown tolerance
    /// (an invariant subspace; that step is kept), or the step that produced a
    /// non-finite α or β (dropped: `steps` is then `breakdownStep − 1`).
    public var breakdownStep: Int?
    /// Why the run stopped early (nil: it ran every requested step).
    public var breakdown: LanczosBreakdown?
    public var reorthogonalizations: Int
    public var steps: Int { alpha.count }

    /// The tridiagonal T_k in fp64.
    public var tridiagonal: (diagonal: [Double], offDiagonal: [Double]) {
        (alpha.map(\.doubleValue), beta.dropLast().map(\.doubleValue))
    }

    /// Ritz values θ_j of T_k (ascending, solved in fp64), residual estimates
    /// `β_{k+1}|s_{k,j}|`, and first components `s_{1,j}` (SLQ weights are their squares).
    public func ritz() throws -> (values: [Double], residuals: [Double], firstComponents: [Double]) {
        let (d, e) = tridiagonal
        let k = d.count
        guard k > 0 else { return ([], [], []) }
        let r = try TridiagonalEigen.solve(diagonal: d, offDiagonal: e, rows: [0, k - 1])
        let betaK = beta[k - 1].doubleValue
        return (r.values, r.components[1].map { abs($0) * betaK }, r.components[0])
    }
}

public enum Lanczos {
    /// Runs `options.steps` Lanczos steps of `op` from `start` (normalized first), all
    /// vectors and dot products in `T` under the options' accumulation policy.
    @inlinable
    public static func run<Op: LinearOperator>(_ op: Op, start: [Op.Scalar], options: LanczosOptions) -> LanczosResult<Op.Scalar> {
        typealias T = Op.Scalar
        let n = op.dimension
        precondition(start.count == n, "start vector has \(start.count) entries, operator dimension \(n)")
        let m = min(options.steps, n)
        let acc = options.accumulation
        let policy = options.reorthogonalization
        let u = T.ulpOfOne.doubleValue / 2
        let sqrtU = u.squareRoot()
        let breakTol = options.breakdownTolerance ?? 4 * u
        let needBasis = options.storeBasis || policy != .none

        var q = start
        let nrm = Kernels.nrm2(q, accumulation: acc)
        for i in 0..<n { q[i] /= nrm }
        var qPrev = [T](repeating: .zero, count: n)
        var betaPrev = T.zero
        var w = [T](repeating: .zero, count: n)
        var basis: [[T]] = needBasis ? [q] : []
        // The orthogonality is measured from the stored basis: the same values as an fp64
        // copy (`doubleValue` of each entry, summed in the same order), without n·m more
        // doubles (1.1 GB per vector at 1.3·10⁸ parameters). Only `.none` keeps a copy.
        let copyBasis = options.measureOrthogonality && !needBasis
        var basis64: [[Double]] = copyBasis ? [q.map(\.doubleValue)] : []
        var maxOff = 0.0, fro2 = 0.0
        if options.measureOrthogonality { let s = dot64(q, q); fro2 = (1 - s) * (1 - s) }

        var alphas: [T] = [], betas: [T] = [], records: [LanczosStepRecord] = []
        var breakdown: Int? = nil
        var reason: LanczosBreakdown? = nil
        var reorthCount = 0
        var normEstimate = 0.0
        // Partial reorthogonalization state: ω_{j−1,·}, ω_{j,·}; forced reorth at next step.
        var omegaPrev: [Double] = [], omega: [Double] = [1]
        var forceNext = false

        for j in 0..<m {
            op.apply(q, into: &w)
            let alpha = Kernels.dot(q, w, accumulation: acc)
            // w ← w − αq − βq_prev, each a fused multiply-add per element, in that order.
            Kernels.axpy(-alpha, q, &w)
            if j > 0 { Kernels.axpy(-betaPrev, qPrev, &w) }
            var did = false, lost = false
            switch policy {
            case .none: break
            case .full:
                gramSchmidt(&w, basis, acc); did = true
            case .partial:
                var beta = Kernels.nrm2(w, accumulation: acc).doubleValue
                normEstimate = max(normEstimate, abs(alpha.doubleValue) + beta + betaPrev.doubleValue.magnitude)
                // ω_{j+1,k}, k = 0…j (0-based: vector indices of q_1…q_{j+1}).
                var next = [Double](repeating: 0, count: j + 2)
                next[j + 1] = 1
                if j > 0 {
                    let a = alphas.map(\.doubleValue) + [alpha.doubleValue]
                    let b = betas.map(\.doubleValue)              // b[k] = β_{k+2} in 1-based terms
                    for k in 0..<j {
                        let bk1 = b[k]                             // β coupling q_k, q_{k+1}
                        let bk = k > 0 ? b[k - 1] : 0
                        var t = bk1 * omega[k + 1] + (a[k] - a[j]) * omega[k] + bk * (k > 0 ? omega[k - 1] : 0)
                        t -= betaPrev.doubleValue * (k < omegaPrev.count ? omegaPrev[k] : 0)
                        t += (t >= 0 ? 1 : -1) * 2 * u * normEstimate
                        next[k] = t / max(beta, .leastNormalMagnitude)
                    }
                }
                next[j] = u * Double(n).squareRoot()
                let worst = next[0..<max(j, 0)].map(abs).max() ?? 0
                if worst > sqrtU || forceNext {
                    gramSchmidt(&w, basis, acc); did = true
                    for k in 0...j { next[k] = u * Double(n).squareRoot() }
                    forceNext = !forceNext && worst > sqrtU
                    let before = beta
                    beta = Kernels.nrm2(w, accumulation: acc).doubleValue
                    if beta > before * (1 + sqrtU) { lost = true }
                }
                omegaPrev = omega; omega = next
            case .selective:
                let betaNow = Kernels.nrm2(w, accumulation: acc).doubleValue
                defer { if did && Kernels.nrm2(w, accumulation: acc).doubleValue > betaNow * (1 + sqrtU) { lost = true } }
                let a = (alphas + [alpha]).map(\.doubleValue)
                let b = betas.map(\.doubleValue)
                if let r = try? TridiagonalEigen.solve(diagonal: a, offDiagonal: b, rows: nil) {
                    let tNorm = max(r.values.first.map(abs) ?? 0, r.values.last.map(abs) ?? 0)
                    for col in r.values.indices where betaNow * abs(r.components[j][col]) <= sqrtU * tNorm {
                        // Ritz vector y = Q s (in T), normalized; w ← w − (yᵀw) y.
                        var y = [T](repeating: .zero, count: n)
                        for (k, qk) in basis.enumerated() { Kernels.axpy(T(roundingDouble: r.components[k][col]), qk, &y) }
                        let yn = Kernels.nrm2(y, accumulation: acc)
                        for i in 0..<n { y[i] /= yn }
                        let c = Kernels.dot(y, w, accumulation: acc)
                        Kernels.axpy(-c, y, &w)
                        did = true
                    }
                }
            }
            if did { reorthCount += 1 }
            let beta = Kernels.nrm2(w, accumulation: acc)
            if !alpha.isFinite || !beta.isFinite || lost {
                // A non-finite step, or one whose vector reorthogonalization inflated, carries
                // no information: stop with the steps before it.
                breakdown = j + 1; reason = lost ? .orthogonalityLost : .nonFinite
                break
            }
            alphas.append(alpha); betas.append(beta)
            normEstimate = max(normEstimate, abs(alpha.doubleValue) + beta.doubleValue + betaPrev.doubleValue.magnitude)
            var rec = LanczosStepRecord(step: j + 1, alpha: alpha.doubleValue, beta: beta.doubleValue,
                                        orthLoss: nil, orthLossFro: nil, reorthogonalized: did)
            if options.measureOrthogonality {
                rec.orthLoss = maxOff; rec.orthLossFro = fro2.squareRoot()
            }
            records.append(rec)
            if beta.doubleValue <= breakTol * normEstimate || beta.isZero {
                breakdown = j + 1; reason = .invariantSubspace
                break
            }
            if j + 1 == m { break }
            qPrev = q
            for i in 0..<n { q[i] = w[i] / beta }
            betaPrev = beta
            if options.measureOrthogonality {
                if copyBasis {
                    let q64 = q.map(\.doubleValue)
                    for p in basis64 {
                        let d = dot64(p, q64)
                        maxOff = max(maxOff, abs(d)); fro2 += 2 * d * d
                    }
                    basis64.append(q64)
                } else {
                    for p in basis {
                        let d = dot64(p, q)
                        maxOff = max(maxOff, abs(d)); fro2 += 2 * d * d
                    }
                }
                let s = dot64(q, q); fro2 += (1 - s) * (1 - s)
            }
            if needBasis { basis.append(q) }
        }
        return LanczosResult(alpha: alphas, beta: betas, records: records,
                             basis: options.storeBasis ? basis : nil, breakdownStep: breakdown, breakdown: reason,
                             reorthogonalizations: reorthCount)
    }

    /// Twice classical Gram–Schmidt of `w` against `basis`, in `T`.
    @inlinable
    static func gramSchmidt<T: ComputeScalar>(_ w: inout [T], _ basis: [[T]], _ acc: Accumulation) {
        for _ in 0..<2 {
            let h = basis.map { Kernels.dot($0, w, accumulation: acc) }
            for (k, qk) in basis.enumerated() { Kernels.axpy(-h[k], qk, &w) }
        }
    }

    /// `Σ aᵢ bᵢ` of the values in fp64, left to right (for `Double` vectors, the fp64
    /// copies of `.none` runs, the plain sum).
    @inlinable @inline(__always)
    static func dot64<T: ComputeScalar>(_ a: [T], _ b: [T]) -> Double {
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var s = 0.0
                for i in 0..<a.count { s += a[i].doubleValue * b[i].doubleValue }
                return s
            }
        }
    }
}

/// Diagnostics of Ritz values against an exactly known spectrum (NUMERICS.md §6).
public struct RitzDiagnostics: Sendable, Equatable {
    /// For each of the r largest exact eigenvalues (largest first): distance to the
    /// nearest Ritz value over the spectral radius.
    public var ritzErrTop: [Double]
    /// Converged Ritz values duplicating another converged Ritz value (within
    /// tol·ρ) where the exact spectrum has a simple eigenvalue: extra copies.
    public var ghostCount: Int
    /// Converged Ritz values (residual ≤ tol·‖T_k‖) farther than tol·ρ from every
    /// exact eigenvalue (NUMERICS §6). Unconverged Ritz values are not counted: with
    /// k ≪ n they lie between eigenvalues by construction and say nothing about the run.
    public var spuriousCount: Int
    /// Ritz values whose residual estimate exceeds tol·‖T_k‖.
    public var unconvergedCount: Int

    /// - Parameters: `tol` relative to the spectral radius ρ = max|λ| (duplicates,
    ///   spurious) and to ‖T_k‖ (convergence: residual ≤ tol·‖T_k‖).
    public init(ritz: [Double], residuals: [Double], exact: [Double], r: Int, tol: Double) {
        let lam = exact.sorted()
        let rho = max(abs(lam.first ?? 0), abs(lam.last ?? 0))
        let tNorm = max(abs(ritz.first ?? 0), abs(ritz.last ?? 0))
        func nearestExact(_ x: Double) -> (Int, Double) {
            var lo = 0, hi = lam.count
            while lo < hi { let mid = (lo + hi) / 2; if lam[mid] < x { lo = mid + 1 } else { hi = mid } }
            var best = (0, Double.infinity)
            for k in [lo - 1, lo] where k >= 0 && k < lam.count {
                let d = abs(lam[k] - x)
                if d < best.1 { best = (k, d) }
            }
            return best
        }
        ritzErrTop = lam.suffix(r).reversed().map { l in (ritz.map { abs($0 - l) }.min() ?? .infinity) / max(rho, .leastNormalMagnitude) }
        let converged = ritz.indices.map { residuals[$0] <= tol * tNorm }
        unconvergedCount = converged.filter { !$0 }.count
        spuriousCount = ritz.indices.filter { converged[$0] && nearestExact(ritz[$0]).1 > tol * rho }.count
        // Ghosts: group converged Ritz values by their nearest exact eigenvalue.
        var groups: [Int: Int] = [:]
        for (i, th) in ritz.enumerated() where converged[i] {
            let (k, d) = nearestExact(th)
            if d <= tol * rho { groups[k, default: 0] += 1 }
        }
        var ghosts = 0
        for (k, count) in groups where count > 1 {
            let multiplicity = lam.filter { abs($0 - lam[k]) <= tol * rho }.count
            if multiplicity == 1 { ghosts += count - 1 }
        }
        ghostCount = ghosts
    }
}
