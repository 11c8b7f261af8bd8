import RealModule

/// The work-based cost model of the scaling study (docs/NUMERICS.md §9):
/// `time ≈ c_f·FLOPs + c_b·bytes + c_0`, the three coefficients non-negative.
///
/// Fitted by least squares of the *relative* residuals `(ĉ·x_i − t_i)/t_i`, so that a
/// 1 ms configuration weighs as much as a 1 s one (absolute residuals would let the
/// largest size decide alone). Non-negativity is exact: every subset of the three
/// terms is solved by its normal equations and the best subset whose coefficients are
/// all ≥ 0 is kept (three terms, seven subsets; no iterative NNLS needed). FLOPs and
/// bytes grow together within one architecture family, so c_f and c_b can trade off
/// against each other; the fit is judged by its predictions on held-out sizes, not by
/// the coefficients' separate values.
public struct CostModel: Sendable, Equatable {
    /// Seconds per FLOP, per byte, and the fixed cost.
    public var perFlop: Double, perByte: Double, fixed: Double
    /// Points the fit used, and the root mean square of their relative residuals.
    public var points: Int, rmsRelative: Double

    public func predict(flops: Double, bytes: Double) -> Double { perFlop * flops + perByte * bytes + fixed }

    /// Fits `t` against `(flops, bytes)`; nil with fewer than two points or non-positive
    /// times.
    public static func fit(flops: [Double], bytes: [Double], time: [Double]) -> CostModel? {
        precondition(flops.count == bytes.count && bytes.count == time.count)
        let idx = time.indices.filter { time[$0] > 0 && time[$0].isFinite && flops[$0].isFinite && bytes[$0].isFinite }
        guard idx.count >= 2 else { return nil }
        // Rows divided by t_i: each residual is relative; columns scaled to unit maximum
        // for conditioning.
        let cols: [[Double]] = [idx.map { flops[$0] / time[$0] }, idx.map { bytes[$0] / time[$0] }, idx.map { 1 / time[$0] }]
        let scale = cols.map { c in c.map(abs).max() ?? 0 }
        var best: (c: [Double], sse: Double)? = nil
        for mask in 1..<8 {
            let active = (0..<3).filter { mask & (1 << $0) != 0 && scale[$0] > 0 }
            guard active.count == (0..<3).filter({ mask & (1 << $0) != 0 }).count, active.count <= idx.count else { continue }
            let a = active.map { j in cols[j].map { $0 / scale[j] } }
            // Normal equations AᵀA c = Aᵀ1.
            let k = active.count
            var m = [[Double]](repeating: [Double](repeating: 0, count: k + 1), count: k)
            for r in 0..<k {
                for s in 0..<k { m[r][s] = zip(a[r], a[s]).reduce(0) { $0 + $1.0 * $1.1 } }
                m[r][k] = a[r].reduce(0, +)
            }
            guard let sol = solve(m) else { continue }
            guard sol.allSatisfy({ $0 >= 0 && $0.isFinite }) else { continue }
            var sse = 0.0
            for i in idx.indices {
                var p = 0.0
                for r in 0..<k { p += a[r][i] * sol[r] }
                sse += (p - 1) * (p - 1)
            }
            if best == nil || sse < best!.sse {
                var c = [0.0, 0.0, 0.0]
                for (r, j) in active.enumerated() { c[j] = sol[r] / scale[j] }
                best = (c, sse)
            }
        }
        guard let b = best else { return nil }
        return CostModel(perFlop: b.c[0], perByte: b.c[1], fixed: b.c[2], points: idx.count,
                         rmsRelative: (b.sse / Double(idx.count)).squareRoot())
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
