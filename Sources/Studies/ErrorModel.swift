import RealModule

/// The FD-HVP error model of NUMERICS.md §4, `err(ε) ≈ A ε^k + B u / ε`, fitted to
/// one measured curve, with its optimum and its safe band at a tolerance.
///
/// Fitting (least squares in log space, slopes fixed at k and −1, so each constant
/// is a geometric mean): A from the points where truncation dominates
/// (`bias_rel ≥ dominance · noise_rel`), B from the points where rounding dominates
/// (`noise_rel ≥ dominance · bias_rel`), both fitted to the measured `rel_err`.
///
/// Only points where the model's asymptotic form holds are fitted (docs/NUMERICS.md,
/// "Fitting the error model"): a point is **saturated**, and left out, when its
/// `rel_err` exceeds ``Saturation/maxError`` (the estimate is no longer small against
/// the HVP: a swamped perturbation gives ĥ → 0 and rel_err → 1, a huge step gives a
/// truncation error bounded by the gradient's range), or when its `swamped_fraction`
/// exceeds ``Saturation/maxSwamped`` (most components of θ + εv round back to θ: the
/// rounding of the perturbation no longer behaves like noise of size u/ε). Saturated
/// points pulled B down by ~100× on bf16 curves (their error grows slower than 1/ε)
/// and A down on curves whose large-ε errors level off.
///
/// A term with no dominated point is unresolved and set to 0 (e.g. A on a quadratic,
/// whose central difference has no truncation error at all): then
/// `eps_star` is +∞ (A = 0) or 0 (B = 0) and the band is open on that side.
public struct ErrorModelFit: Sendable, Equatable {
    public var k: Int
    public var u: Double
    public var a: Double
    public var b: Double
    public var pointsA: Int
    public var pointsB: Int

    /// The model's error at ε.
    public func err(_ eps: Double) -> Double {
        (a > 0 ? a * pow(eps, k) : 0) + (b > 0 ? b * u / eps : 0)
    }

    /// `(B u / (k A))^(1/(k+1))`, the minimizer of the model.
    public var epsStar: Double {
        if a <= 0 { return b > 0 ? .infinity : .nan }
        if b <= 0 { return 0 }
        return Double.pow(b * u / (Double(k) * a), 1 / Double(k + 1))
    }

    /// `err(eps_star)`.
    public var errStar: Double {
        let e = epsStar
        if e.isNaN { return .nan }
        if e.isInfinite || e == 0 { return 0 }
        return err(e)
    }

    /// `[eps_lo, eps_hi]` where the model's error is ≤ τ (nil when even its optimum
    /// exceeds τ). Solved by bisection in log ε on each side of `eps_star`.
    public func band(tolerance tau: Double) -> (lo: Double, hi: Double)? {
        if a <= 0 && b <= 0 { return (0, .infinity) }
        if a <= 0 { return (b * u / tau, .infinity) }            // B u / ε ≤ τ
        if b <= 0 { return (0, Double.pow(tau / a, 1 / Double(k))) }   // A ε^k ≤ τ
        let s = epsStar
        guard err(s) <= tau else { return nil }
        func solve(_ inside: Double, _ outside: Double) -> Double {
            var lin = Double.log(inside), lout = Double.log(outside)
            guard err(Double.exp(lout)) > tau else { return Double.exp(lout) }
            for _ in 0..<200 {
                let mid = (lin + lout) / 2
                if err(Double.exp(mid)) <= tau { lin = mid } else { lout = mid }
                if abs(lout - lin) < 1e-13 { break }
            }
            return Double.exp(lin)
        }
        return (solve(s, s * 1e-60), solve(s, s * 1e60))
    }

    /// Which points the fit may use.
    public struct Saturation: Sendable, Equatable {
        /// Largest `rel_err` a fitted point may have.
        public var maxError: Double
        /// Largest `swamped_fraction` a fitted point may have.
        public var maxSwamped: Double
        public init(maxError: Double = 0.3, maxSwamped: Double = 0.25) { self.maxError = maxError; self.maxSwamped = maxSwamped }
        /// No point is saturated (the rule of versions before regimes schema 2).
        public static let none = Saturation(maxError: .infinity, maxSwamped: .infinity)
        /// Whether a point is saturated.
        public func excludes(err: Double, swamped: Double) -> Bool { !(err <= maxError) || swamped > maxSwamped }
    }

    /// Fits the model to one curve (all arrays indexed alike, ε > 0), leaving out the
    /// saturated points (`swamped` nil: no swamping information, only `rel_err` decides).
    public static func fit(eps: [Double], err: [Double], bias: [Double], noise: [Double], swamped: [Double]? = nil, order k: Int, u: Double,
                           dominance: Double = 3, saturation: Saturation = Saturation()) -> ErrorModelFit {
        var sa = 0.0, na = 0, sb = 0.0, nb = 0
        for i in eps.indices where eps[i] > 0 && err[i] > 0 && err[i].isFinite
            && !saturation.excludes(err: err[i], swamped: swamped?[i] ?? 0) {
            if bias[i] >= dominance * noise[i] {
                sa += Double.log(err[i]) - Double(k) * Double.log(eps[i]); na += 1
            } else if noise[i] >= dominance * bias[i] {
                sb += Double.log(err[i]) + Double.log(eps[i]) - Double.log(u); nb += 1
            }
        }
        return ErrorModelFit(k: k, u: u, a: na > 0 ? Double.exp(sa / Double(na)) : 0,
                             b: nb > 0 ? Double.exp(sb / Double(nb)) : 0, pointsA: na, pointsB: nb)
    }
}

/// The measured safe band: the contiguous run of grid points around the smallest
/// measured error whose error is ≤ τ (nil when the smallest exceeds τ). Points are
/// sorted by ε first.
public func measuredBand(eps: [Double], err: [Double], tolerance tau: Double) -> (lo: Double, hi: Double, best: Int)? {
    let order = eps.indices.sorted { eps[$0] < eps[$1] }
    let e = order.map { err[$0].isNaN ? Double.infinity : err[$0] }
    guard let m = e.indices.min(by: { e[$0] < e[$1] }), e[m] <= tau else { return nil }
    var lo = m, hi = m
    while lo > 0 && e[lo - 1] <= tau { lo -= 1 }
    while hi + 1 < e.count && e[hi + 1] <= tau { hi += 1 }
    return (eps[order[lo]], eps[order[hi]], order[m])
}

/// Least-squares line `log y = c + s log x` over the points with x, y > 0 and
/// finite: slope s, intercept c and r² (nil with fewer than 2 points).
public func logLogFit(x: [Double], y: [Double]) -> (slope: Double, intercept: Double, r2: Double)? {
    var lx: [Double] = [], ly: [Double] = []
    for (a, b) in zip(x, y) where a > 0 && b > 0 && a.isFinite && b.isFinite { lx.append(Double.log(a)); ly.append(Double.log(b)) }
    guard lx.count >= 2 else { return nil }
    let n = Double(lx.count)
    let mx = lx.reduce(0, +) / n, my = ly.reduce(0, +) / n
    var sxx = 0.0, sxy = 0.0, syy = 0.0
    for i in lx.indices { sxx += (lx[i] - mx) * (lx[i] - mx); sxy += (lx[i] - mx) * (ly[i] - my); syy += (ly[i] - my) * (ly[i] - my) }
    guard sxx > 0 else { return nil }
    let s = sxy / sxx
    return (s, my - s * mx, syy > 0 ? (sxy * sxy) / (sxx * syy) : 1)
}

@inline(__always) func pow(_ x: Double, _ k: Int) -> Double { var r = 1.0; for _ in 0..<k { r *= x }; return r }
