import RealModule

/// The work-based cost model of the scaling study (docs/NUMERICS.md §9): time as a
/// non-negative combination of work features plus a fixed cost, `time ≈ Σ_j c_j·x_j + c_0`
/// — the study's features are the gradient's BLAS products timed at their shapes, the
/// other FLOPs, the bytes moved and the O(n) passes timed alone
/// (`G + c_f·F + c_b·B + P + c_0`, the timed ones pinned at coefficient 1).
///
/// Fitted by least squares of the *relative* residuals `(ĉ·x_i − t_i)/t_i`, so that a
/// 1 ms configuration weighs as much as a 1 s one (absolute residuals would let the
/// largest size decide alone). Non-negativity is exact: every subset of the k + 1 terms
/// is solved by its normal equations and the best one whose coefficients are all ≥ 0 is
/// kept (2^(k+1) − 1 subsets; no iterative NNLS needed). The features grow together
/// within one architecture family, so their coefficients can trade off against each
/// other; the fit is judged by its predictions on held-out sizes, not by the
/// coefficients' separate values.
public struct CostModel: Sendable, Equatable {
    /// The coefficient of each feature (in the order the fit was given them) and the
    /// fixed cost.
    public var coefficients: [Double], fixed: Double
    /// Points the fit used, and the root mean square of their relative residuals.
    public var points: Int, rmsRelative: Double
    public init(coefficients: [Double], fixed: Double, points: Int, rmsRelative: Double) {
        self.coefficients = coefficients; self.fixed = fixed; self.points = points; self.rmsRelative = rmsRelative
    }

    public func predict(_ features: [Double]) -> Double {
        precondition(features.count == coefficients.count, "cost model of \(coefficients.count) features given \(features.count)")
        return zip(coefficients, features).reduce(fixed) { $0 + $1.0 * $1.1 }
    }

    /// Seconds per FLOP and per byte of a model fitted by ``fit(flops:bytes:time:)``.
    public var perFlop: Double { coefficients[0] }
    public var perByte: Double { coefficients[1] }
    public func predict(flops: Double, bytes: Double) -> Double { predict([flops, bytes]) }
    public static func fit(flops: [Double], bytes: [Double], time: [Double]) -> CostModel? {
        precondition(flops.count == bytes.count && bytes.count == time.count)
        return fit(features: zip(flops, bytes).map { [$0, $1] }, time: time)
    }

    /// Fits `t ≈ Σ_j c_j·x_j + c_0` over points `features[i]` (each of the same length);
    /// nil with fewer than two usable points or non-positive times. A feature that is zero
    /// at every point gets coefficient 0.
    ///
    /// `fixed` pins coefficients chosen before the fit (feature index → value): a feature
    /// that is itself a measured time — seconds of the same work timed alone — enters
    /// with coefficient 1, its seconds subtracted from each time before the free
    /// coefficients are fitted to the rest. The scaling study pins its products' and its
    /// O(n) passes' seconds so: fitted freely, the products' coefficient traded against
    /// the bytes' (the features grow together within a family) and the extrapolations,
    /// where the products dominate, differed by a factor of two between two runs.
    public static func fit(features: [[Double]], time: [Double], fixed: [Int: Double] = [:]) -> CostModel? {
        precondition(features.count == time.count)
        let k = features.first?.count ?? 0
        precondition(features.allSatisfy { $0.count == k })
        precondition(fixed.keys.allSatisfy { (0..<k).contains($0) } && fixed.values.allSatisfy(\.isFinite), "fixed coefficients of features 0..<\(k)")
        let idx = time.indices.filter { time[$0] > 0 && time[$0].isFinite && features[$0].allSatisfy(\.isFinite) }
        guard idx.count >= 2 else { return nil }
        // Rows divided by t_i: each residual is relative; columns scaled to unit maximum
        // for conditioning. Column k is the fixed cost. The target of row i is
        // 1 − (the pinned terms)/t_i.
        let cols: [[Double]] = (0..<k).map { j in idx.map { features[$0][j] / time[$0] } } + [idx.map { 1 / time[$0] }]
        let target = idx.map { i in 1 - fixed.reduce(0.0) { $0 + $1.value * features[i][$1.key] } / time[i] }
        let scale = cols.map { c in c.map(abs).max() ?? 0 }
        // The empty subset (every free coefficient 0) is a candidate too: with pinned terms
        // it can be the best non-negative fit.
        var zero = [Double](repeating: 0, count: k + 1)
        for (j, value) in fixed { zero[j] = value }
        var best: (c: [Double], sse: Double) = (zero, target.reduce(0) { $0 + $1 * $1 })
        for mask in 1..<(1 << (k + 1)) {
            let chosen = (0...k).filter { mask & (1 << $0) != 0 }
            let active = chosen.filter { scale[$0] > 0 && fixed[$0] == nil }
            guard active.count == chosen.count, active.count <= idx.count else { continue }
            let a = active.map { j in cols[j].map { $0 / scale[j] } }
            // Normal equations AᵀA c = Aᵀy.
            let q = active.count
            var m = [[Double]](repeating: [Double](repeating: 0, count: q + 1), count: q)
            for r in 0..<q {
                for s in 0..<q { m[r][s] = zip(a[r], a[s]).reduce(0) { $0 + $1.0 * $1.1 } }
                m[r][q] = zip(a[r], target).reduce(0) { $0 + $1.0 * $1.1 }
            }
            guard let sol = solve(m) else { continue }
            guard sol.allSatisfy({ $0 >= 0 && $0.isFinite }) else { continue }
            var sse = 0.0
            for i in idx.indices {
                var p = 0.0
                for r in 0..<q { p += a[r][i] * sol[r] }
                sse += (p - target[i]) * (p - target[i])
            }
            if sse < best.sse {
                var c = [Double](repeating: 0, count: k + 1)
                for (j, value) in fixed { c[j] = value }
                for (r, j) in active.enumerated() { c[j] = sol[r] / scale[j] }
                best = (c, sse)
            }
        }
        return CostModel(coefficients: Array(best.c[0..<k]), fixed: best.c[k], points: idx.count,
                         rmsRelative: (best.sse / Double(idx.count)).squareRoot())
    }

    /// Gaussian elimination with partial pivoting on an augmented k × (k+1) system; nil
    /// when singular.
    static func solve(_ m0: [[Double]]) -> [Double]? {
        var m = m0
        let k = m.count
        for c in 0..<k {
            let p = (c..<k).max { abs(m[$0][c]) < abs(m[$1][c]) }!
            guard abs(m[p][c]) > 1e-13 * (m[c].map(abs).max() ?? 1) else { return nil }
            m.swapAt(c, p)
            for r in 0..<k where r != c {
                let f = m[r][c] / m[c][c]
                for s in c...k { m[r][s] -= f * m[c][s] }
            }
        }
        return (0..<k).map { m[$0][k] / m[$0][$0] }
    }
}
