import RealModule
import Scalars
import Models
import Curvature

/// A per-model FD step chosen from the model itself, with no reference HVP
/// (docs/NUMERICS.md §4, "Per-model estimate without a reference").
///
/// FD-HVPs ĥ(ε_j) at a geometric grid ε_j (ratio `ratio`, centred on the naive optimum
/// η = u^{1/(k+1)} in relative units) give the differences of neighbours
/// `d_j = ĥ(ε_{j+1}) − ĥ(ε_j)`. With ĥ(ε) = h + c ε^k + n(ε), the truncation vector c
/// fixed and the rounding noise n(ε) of norm N/ε independent from one ε to the next,
/// `E‖d_j‖² = T² (ε_{j+1}^k − ε_j^k)² + N² b_j`, T = ‖c‖, where b_j = ε_j⁻² + ε_{j+1}⁻²
/// (central, Richardson) or, for the forward scheme whose g(θ) is shared by every ε,
/// b_j = ((ε_j⁻¹ − ε_{j+1}⁻¹)² + ε_j⁻² + ε_{j+1}⁻²)/2. T² and N² are fitted by
/// non-negative least squares of the relative residuals over the pairs that are not
/// saturated (the same reasons as the error-model fit's saturation rule): neither
/// point swamped beyond `maxSwamped` or with ‖ĥ‖ off ‖h‖ by more than `maxNormDev`
/// (relative; a swamped ĥ collapses, a truncation-saturated one decays like 1/ε, a
/// noise-dominated one grows), and ‖d_j‖ ≤ `maxDiff`·‖h‖ (‖d_j‖ is within ~4/3 of the
/// larger error of its two points, so this is the fd-bias fit's rel_err ≤ 0.3). ‖h‖ is
/// ‖ĥ‖ at the steadiest grid point (smallest ‖d_j‖/‖ĥ_j‖ with η_{j+1} ≤ 1), then at the point nearest
/// ε*. The fit is then repeated on the pairs within a factor `window` of ε*, where the
/// prediction is used (higher truncation orders bend the curve over four decades). The prediction
/// `pred_err(ε) = (T ε^k + N/ε) / ‖h‖` (the triangle bound, see ``predictedError(_:)``) is
/// smallest at ε* = (N/(k T))^{1/(k+1)}.
///
/// Richardson shares its points θ ± 2εv with the neighbour at 2ε on a ratio-2 grid, so
/// its grid uses ratio 3 (a ratio-√2 grid, tried, predicted worse: the ε⁴ regime of these
/// networks is short and bends, and finer pairs see less of it).
///
/// When the error model cannot be fitted (``saturated``) the step comes from the pair of
/// neighbours that differ least (``floorEstimate``, ``Refinement``). Either way, a bias
/// probe (``Probe``) adds what the differences cannot see: an error that does not change with ε.
public struct StepRecommendation: Sendable {
    public struct Point: Sendable {
        public var epsilon: Double
        public var eta: Double
        public var hvNorm: Double
        public var swampedFraction: Double
        /// ‖ĥ(ε_{j+1}) − ĥ(ε_j)‖ to the next grid point (nil for the last).
        public var diffNorm: Double?
        /// Whether the pair (j, j+1) entered the fit.
        public var used: Bool
    }
    public var scheme: FDScheme
    public var order: Int
    public var u: Double
    public var thetaNorm: Double
    public var vNorm: Double
    public var points: [Point]
    /// Fitted ‖c‖ and N (0 when unresolved).
    public var truncation: Double
    public var noise: Double
    public var pairsUsed: Int
    /// ‖h‖ as estimated: ‖ĥ‖ at the grid point nearest ε*.
    public var hvNorm: Double
    public var tolerance: Double
    /// Set when fewer than two unsaturated pairs, or not both terms, can be fitted: the
    /// FD-HVP is saturated (errors of 0.3 or more) over the grid and the error model of §4
    /// does not apply. The value is the step taken then: the larger ε of the steadiest
    /// pair (see ``floorEstimate``), or, when no pair is usable, the textbook
    /// η = u^{1/(k+1)}. (The textbook step alone, used before, measured 1.1–10⁴ times the
    /// grid's best error on the saturated held-out configurations of recommend-check.)
    /// Richardson then refines the pair (``Refinement``) and takes its midpoint.
    public var saturatedStep: Double?
    /// When saturated: the reference-free estimate of the achievable error, the relative
    /// difference `‖d_j‖ / max(‖ĥ_j‖, ‖ĥ_{j+1}‖)` of the steadiest pair (``steadiestPair(_:maxSwamped:)``;
    /// for Richardson, of the steadier half of that pair, ``Refinement``) (docs/NUMERICS.md §4). The FD-HVP does not reproduce itself
    /// better than this when ε changes by the grid's ratio, so it cannot be trusted to
    /// better than about this. It misses what does not change with ε (a bias of the
    /// low-precision gradient itself, identical at neighbouring steps), so it is an
    /// estimate, not a bound: it is the predicted error of a saturated recommendation, and
    /// the recommend-check and regimes studies measure it against the reference.
    public var floorEstimate: Double?
    /// Whether the FD-HVP was found saturated (``saturatedStep``).
    public var saturated: Bool { saturatedStep != nil }

    /// Richardson's saturated step, refined: one more FD-HVP at the geometric midpoint of the
    /// steadiest pair, whose two halves (ratio √3) give the floor estimate (the smaller of
    /// their relative differences) and whose midpoint is the step.
    ///
    /// Richardson's grid has ratio 3 (see the type's note), coarse for an error that grows
    /// like ε⁴ on one side: for ĥ = h + c ε⁴ + n(ε) the steadiest pair straddles the optimum,
    /// its relative difference is about 2.3 times the error there and its larger ε errs
    /// about 2.3 times as much (the truncation term is 9/4 of the noise term at √3 ε*).
    /// On the trained 1.9·10⁴-parameter transformer (bf16 gradients), the grid's best error
    /// was 0.055 where the ratio-3 pair stated 0.237 and its larger ε measured 0.244. Halving
    /// the pair puts the step at the optimum and its halves' differences at about 1.6 times
    /// the error there. Forward and central differences (ratio 2, an error growing like ε
    /// or ε² on the truncation side) need no refinement: their pair's difference is within
    /// 0.7–1.2 of the error at the optimum (forward leans optimistic, so a finer pair there
    /// would be worse). nil when not refined.
    public struct Refinement: Sendable {
        public var epsilon: Double, eta: Double, hvNorm: Double, swampedFraction: Double
        /// ‖ĥ(ε_m) − ĥ(ε_j)‖ / max(‖ĥ_j‖, ‖ĥ_m‖), and the same to ε_{j+1}.
        public var belowRatio: Double, aboveRatio: Double
    }
    public var refinement: Refinement?

    /// The bias probe: the FD-HVP at ε* under the policy and under a wider format (``FDEngine/probeFormat``:
    /// fp32 for a policy with a narrower stage, else fp64), every stage in it, at the same
    /// ε and scheme. Their difference cancels the truncation (the same c ε^k in both) and
    /// keeps what the policy adds: its rounding noise at ε*, which the grid also sees, and
    /// any error that does not change with ε (the difference quotient of a gradient
    /// computed in bf16 is the Hessian of a slightly different function), which the grid's
    /// differences cannot see. On recommend-check's trained 10⁴-parameter GELU MLP with
    /// bf16 compute, every grid ε erred ~0.63 while neighbours differed by 0.19 of their
    /// norm; its transformer with bf16 compute, fitted, predicted 0.15 and measured 0.42.
    /// `relativeDifference` is ‖ĥ − ĥ_wide‖ / ‖ĥ_wide‖. It is not a reference: the wide
    /// FD-HVP is an ordinary FD-HVP (two or four gradients) and is never compared with h.
    public struct Probe: Sendable {
        public var format: String
        public var epsilon: Double
        public var relativeDifference: Double
    }
    public var probe: Probe?

    /// The prediction as the error model of docs/NUMERICS.md §4: A = T/‖h‖, B u = N/‖h‖.
    public var errorModel: ErrorModelFit {
        let h = hvNorm > 0 ? hvNorm : .nan
        return ErrorModelFit(k: order, u: u, a: truncation / h, b: noise / (u * h), pointsA: pairsUsed, pointsB: pairsUsed)
    }

    /// The predicted relative error at an absolute ε: `(T ε^k + N/ε) / ‖h‖`, the
    /// triangle bound on ‖truncation + noise‖. For uncorrelated vectors the norm itself is
    /// the root of the sum of squares, smaller by at most √2: the bound errs on the safe
    /// side, and held-out models (recommend-check) measured it at 0.35–2.05× the error.
    /// NaN when saturated.
    public func predictedError(_ eps: Double) -> Double {
        saturated ? .nan : errorModel.err(eps)
    }

    /// ε* (absolute): the minimizer of the prediction, (N/(kT))^{1/(k+1)}; when saturated,
    /// the fallback step.
    public var epsStar: Double { saturatedStep ?? workingStar }

    /// The minimizer while fitting, when a term may still be unresolved: the grid's end
    /// on that side (the data show no optimum inside the grid), or its middle.
    var workingStar: Double {
        let lo = points.first?.epsilon ?? 0, hi = points.last?.epsilon ?? 0
        if truncation <= 0 && noise <= 0 { return (lo * hi).squareRoot() }
        if truncation <= 0 { return hi }
        if noise <= 0 { return lo }
        return Double.pow(noise / (Double(order) * truncation), 1 / Double(order + 1))
    }
    /// ε* in relative units, η* = ε*·‖v‖/‖θ‖.
    public var etaStar: Double { thetaNorm > 0 && vNorm > 0 ? epsStar * vNorm / thetaNorm : epsStar }
    /// The predicted error at ε*: the truncation term plus the larger of the noise term and
    /// the probe's difference (``Probe``), `A ε*^k + max(B u/ε*, δ)`; when saturated, the
    /// larger of the ``floorEstimate`` and δ (NaN if there is neither). Without a probe, the
    /// error model alone.
    public var predictedErr: Double {
        let d = probe.map(\.relativeDifference).flatMap { $0.isFinite ? $0 : nil }
        if saturated {
            switch (floorEstimate, d) {
            case let (f?, d?): return max(f, d)
            case let (f?, nil): return f
            case let (nil, d?): return d
            default: return .nan
            }
        }
        let m = errorModel, e = epsStar
        let truncation = m.a > 0 ? m.a * Double.pow(e, order) : 0, noise = m.b > 0 ? m.b * u / e : 0
        return truncation + max(noise, d ?? 0)
    }
    /// Whether the predicted error at ε* meets the tolerance (false when saturated: the
    /// floor estimate says what is achievable, not where).
    public var feasible: Bool { !saturated && predictedErr <= tolerance }

    /// `[lo, hi]` (absolute ε) where the prediction is ≤ the tolerance; nil when infeasible.
    public var band: (lo: Double, hi: Double)? { feasible ? errorModel.band(tolerance: tolerance) : nil }

    /// Runs the grid and fits. `evaluate(ε)` returns the FD-HVP at absolute ε with its
    /// swamped fraction.
    public static func estimate(scheme: FDScheme, u: Double, theta: [Double], v: [Double], tolerance: Double,
                                pointsPerSide: Int = 7, maxSwamped: Double = 0.25, maxDiff: Double = 0.3, maxNormDev: Double = 0.3,
                                window: Double = 8, observe: ((Int, [Double]) throws -> Void)? = nil,
                                probe: (format: String, evaluate: (Double) throws -> [Double])? = nil,
                                evaluate: (Double) throws -> (hv: [Double], swamped: Double)) throws -> StepRecommendation {
        precondition(pointsPerSide >= 1)
        let k = scheme.order
        // Richardson's points θ ± 2εv would be the next grid point's θ ± εv at ratio 2.
        let ratio = scheme == .richardson ? 3.0 : 2.0
        let nt = norm(theta), nv = norm(v)
        let scale = nt > 0 && nv > 0 ? nt / nv : 1                     // ε = η · scale
        let centre = Double.pow(u, 1 / Double(k + 1))
        // Only the previous estimate is kept (the differences need no more): a grid of
        // vectors of a large model would not fit in memory. `observe` sees each in turn.
        var pts: [Point] = []
        var previous: [Double] = []
        // Richardson's steadiest pair is refined if the FD-HVP turns out saturated (see
        // ``Refinement``): its two vectors are kept while the grid runs (two vectors more),
        // the pair being the one ``steadiestPair`` picks among the points so far.
        let refines = scheme == .richardson
        var steadiest: (index: Int, lo: [Double], hi: [Double])? = nil
        for (index, j) in (-pointsPerSide...pointsPerSide).enumerated() {
            let eta = centre * Double.pow(ratio, Double(j))
            let eps = eta * scale
            let r = try evaluate(eps)
            try observe?(index, r.hv)
            let point = Point(epsilon: eps, eta: eta, hvNorm: norm(r.hv), swampedFraction: r.swamped, diffNorm: nil, used: false)
            if index > 0 {
                pts[index - 1].diffNorm = distance(r.hv, previous)
                if refines, steadiestPair(pts + [point], maxSwamped: maxSwamped)?.index == index - 1 {
                    steadiest = (index - 1, previous, r.hv)
                }
            }
            pts.append(point)
            previous = r.hv
        }
        var rec = StepRecommendation(scheme: scheme, order: k, u: u, thetaNorm: nt, vNorm: nv, points: pts, truncation: 0, noise: 0,
                                     pairsUsed: 0, hvNorm: 0, tolerance: tolerance)
        // ‖h‖ first from the steadiest unswamped point (smallest ‖d_j‖/‖ĥ_j‖: where a
        // truncation-saturated ĥ decays like 1/ε or a swamped one collapses, that ratio
        // is of order one), then from ‖ĥ‖ nearest ε*.
        // Only pairs whose larger step is no larger than θ itself (η ≤ 1) are candidates:
        // beyond it the difference quotient no longer describes θ's neighbourhood, and on
        // trained transformers it settles to a steady, wrong ĥ (relative error 4–5 at η ~ 10²).
        let steady = (0..<(pts.count - 1)).filter { pts[$0].swampedFraction <= maxSwamped && pts[$0].hvNorm > 0 && pts[$0].hvNorm.isFinite
            && pts[$0 + 1].eta <= 1 }
            .min { pts[$0].diffNorm! / pts[$0].hvNorm < pts[$1].diffNorm! / pts[$1].hvNorm }
        var h = steady.map { pts[$0].hvNorm } ?? 0
        func settle() {
            let star = rec.epsStar
            let near = pts.indices.min { abs(Double.log(pts[$0].epsilon / star)) < abs(Double.log(pts[$1].epsilon / star)) }!
            h = pts[near].hvNorm
            rec.hvNorm = h
        }
        for _ in 0..<2 {
            rec.fit(maxSwamped: maxSwamped, maxDiff: maxDiff * h, hvNorm: h, maxNormDev: maxNormDev, range: 0...Double.infinity)
            settle()
        }
        // Local refinement: the asymptotic form is only approximate over four decades (the
        // next truncation order bends the curve), so refit on the pairs within a factor
        // `window` of ε*, where the prediction is used, when that leaves both terms resolved.
        for _ in 0..<2 where window.isFinite {
            let global = rec
            let star = rec.epsStar
            rec.fit(maxSwamped: maxSwamped, maxDiff: maxDiff * h, hvNorm: h, maxNormDev: maxNormDev, range: (star / window)...(star * window))
            if rec.pairsUsed < 3 || rec.truncation <= 0 || rec.noise <= 0 { rec = global; break }
            settle()
        }
        if rec.pairsUsed < 2 || rec.truncation <= 0 || rec.noise <= 0 {
            // Nothing to fit: the FD-HVP is saturated over the grid (its errors are 0.3 or
            // more almost everywhere) and the error model does not apply. Take the steadiest
            // pair of unswamped neighbours: its relative difference estimates the achievable
            // error, and its larger ε (the one with less rounding noise) is the step. With no
            // such pair, the textbook step η = u^{1/(k+1)} and no estimate.
            rec.saturatedStep = centre * scale
            rec.hvNorm = h
            if let s = steadiestPair(pts, maxSwamped: maxSwamped) {
                rec.saturatedStep = pts[s.index + 1].epsilon
                rec.floorEstimate = s.ratio
                if let pair = steadiest, pair.index == s.index {
                    // Richardson's ratio-3 pair is refined at its geometric midpoint.
                    let p = pts[s.index], q = pts[s.index + 1]
                    let eps = (p.epsilon * q.epsilon).squareRoot()
                    let r = try evaluate(eps)
                    try observe?(pts.count, r.hv)
                    let m = norm(r.hv)
                    if r.swamped <= maxSwamped, m > 0, m.isFinite {
                        let below = distance(r.hv, pair.lo) / max(p.hvNorm, m), above = distance(pair.hi, r.hv) / max(m, q.hvNorm)
                        let f = min(below, above)
                        if f.isFinite {
                            rec.refinement = Refinement(epsilon: eps, eta: (p.eta * q.eta).squareRoot(), hvNorm: m, swampedFraction: r.swamped,
                                                        belowRatio: below, aboveRatio: above)
                            rec.saturatedStep = eps
                            rec.floorEstimate = f
                        }
                    }
                }
            }
        }
        if let probe {
            // The policy's FD-HVP at ε* (not a grid point in general) and the wide one.
            let eps = rec.epsStar
            let hv = try evaluate(eps).hv, wide = try probe.evaluate(eps)
            let w = norm(wide)
            rec.probe = Probe(format: probe.format, epsilon: eps, relativeDifference: w > 0 ? distance(hv, wide) / w : .nan)
        }
        return rec
    }

    /// ‖a − b‖₂.
    static func distance(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in a.indices { let d = a[i] - b[i]; s += d * d }
        return s.squareRoot()
    }

    /// The relative difference ‖d_j‖ / max(‖ĥ_j‖, ‖ĥ_{j+1}‖) of a pair of neighbours, when
    /// it may estimate the floor: both points swamped at most `maxSwamped`, finite
    /// positive norms, and η_{j+1} ≤ 1 (a step no larger than θ); nil otherwise.
    static func pairRatio(_ p: Point, _ q: Point, maxSwamped: Double) -> Double? {
        let m = max(p.hvNorm, q.hvNorm)
        guard q.eta <= 1, p.swampedFraction <= maxSwamped, q.swampedFraction <= maxSwamped, let d = p.diffNorm, d.isFinite,
              m > 0, m.isFinite else { return nil }
        return d / m
    }

    /// The pair (j, j+1) of points swamped at most `maxSwamped`, with finite positive
    /// norms and η_{j+1} ≤ 1 (a step no larger than θ), whose difference ‖d_j‖ is smallest,
    /// with its difference relative to the larger norm, ‖d_j‖ / max(‖ĥ_j‖, ‖ĥ_{j+1}‖) (the
    /// floor estimate); nil when there is none.
    ///
    /// The smallest difference, not the smallest relative one: ‖d_j‖ is about the error of
    /// the pair's points, whose norms a noise-dominated ĥ inflates. On the trained
    /// 1.2·10⁶-parameter transformer with bf16 compute (Richardson), ‖ĥ‖ grows from 36 to
    /// 12 000 as ε falls (‖h‖ ≈ 600), the noise-dominated end had the smallest relative
    /// difference (0.78) and its step measured rel_err 20, where the smallest difference
    /// (relative 1.03) sits at ε ≈ 0.05–0.15 with rel_err ≈ 1, the grid's best.
    static func steadiestPair(_ pts: [Point], maxSwamped: Double) -> (index: Int, ratio: Double)? {
        var best: (index: Int, ratio: Double, diff: Double)? = nil
        for j in 0..<max(0, pts.count - 1) {
            guard let r = pairRatio(pts[j], pts[j + 1], maxSwamped: maxSwamped), let d = pts[j].diffNorm else { continue }
            if best == nil || d < best!.diff { best = (j, r, d) }
        }
        return best.map { ($0.index, $0.ratio) }
    }

    /// Non-negative least squares of the relative residuals (a_j T² + b_j N²)/D_j − 1.
    mutating func fit(maxSwamped: Double, maxDiff: Double, hvNorm h: Double, maxNormDev: Double, range: ClosedRange<Double>) {
        let k = Double(order)
        var rows: [(a: Double, b: Double)] = []
        func calm(_ p: Point) -> Bool { p.swampedFraction <= maxSwamped && abs(p.hvNorm / h - 1) <= maxNormDev }
        for j in 0..<(points.count - 1) {
            let p = points[j], q = points[j + 1]
            points[j].used = false
            guard let d = p.diffNorm, d.isFinite, d > 0, d <= maxDiff, calm(p), calm(q),
                  range.contains(p.epsilon), range.contains(q.epsilon) else { continue }
            let e0 = p.epsilon, e1 = q.epsilon
            let ta = Double.pow(e1, k) - Double.pow(e0, k)
            let nb = scheme == .forward ? ((1 / e0 - 1 / e1) * (1 / e0 - 1 / e1) + 1 / (e0 * e0) + 1 / (e1 * e1)) / 2
                                        : 1 / (e0 * e0) + 1 / (e1 * e1)
            let dd = d * d
            rows.append((ta * ta / dd, nb / dd))
            points[j].used = true
        }
        pairsUsed = rows.count
        guard !rows.isEmpty else { truncation = 0; noise = 0; return }
        // Unknowns x = T², y = N², each row a·x + b·y ≈ 1. Scale the columns for conditioning.
        let sa = rows.map(\.a).max()!, sb = rows.map(\.b).max()!
        var aa = 0.0, ab = 0.0, bb = 0.0, a1 = 0.0, b1 = 0.0
        for r in rows {
            let a = sa > 0 ? r.a / sa : 0, b = sb > 0 ? r.b / sb : 0
            aa += a * a; ab += a * b; bb += b * b; a1 += a; b1 += b
        }
        var x = 0.0, y = 0.0
        let det = aa * bb - ab * ab
        if det > 1e-14 * aa * bb {
            x = (a1 * bb - b1 * ab) / det; y = (b1 * aa - a1 * ab) / det
        }
        if !(x > 0 && y > 0) {
            // One term alone: the better of the two single-variable fits.
            let xo = aa > 0 ? a1 / aa : 0, yo = bb > 0 ? b1 / bb : 0
            let ro = rows.count.double - (aa > 0 ? a1 * a1 / aa : 0)       // residual sums of squares
            let rn = rows.count.double - (bb > 0 ? b1 * b1 / bb : 0)
            if ro <= rn { x = xo; y = 0 } else { x = 0; y = yo }
        }
        truncation = sa > 0 && x > 0 ? (x / sa).squareRoot() : 0
        noise = sb > 0 && y > 0 ? (y / sb).squareRoot() : 0
    }

    static func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// The recommendation for an FD engine (a model under a policy) at θ along v, its
    /// FD-HVPs sharded over `shards` in-process ranks when asked; stochastic rounding,
    /// if the policy uses it, draws from a stream fixed by `seed` and the grid point.
    /// With `probe`, the bias probe (``Probe``) in ``FDEngine/probeFormat``.
    public static func estimate(engine: FDEngine, theta: [Double], v: [Double], scheme: FDScheme, tolerance: Double, seed: UInt64,
                                shards: Int = 1, probe: Bool = true, observe: ((Int, [Double]) throws -> Void)? = nil) throws -> StepRecommendation {
        var i = 0
        let wide = probe ? try engine.widened(to: engine.probeFormat) : nil
        let probing = wide.map { w in
            (format: engine.probeFormat, evaluate: { (eps: Double) throws -> [Double] in
                try w.estimate(theta: theta, v: v, scheme: scheme, step: .absolute(eps), shards: shards).hv
            })
        }
        return try estimate(scheme: scheme, u: engine.unitRoundoff, theta: theta, v: v, tolerance: tolerance, observe: observe,
                            probe: probing) { eps in
            defer { i += 1 }
            let r = try StochasticRounding.withSeed(derivedSeed(seed, "recommend", "\(i)")) {
                try engine.estimate(theta: theta, v: v, scheme: scheme, step: .absolute(eps), shards: shards)
            }
            return (r.hv, r.swampedFraction)
        }
    }
}

extension Int {
    fileprivate var double: Double { Double(self) }
}
