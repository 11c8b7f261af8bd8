import Testing
import RealModule
@testable import Studies

@Suite struct ErrorModelTests {
    /// A curve generated exactly by the model: the fit recovers A and B, and
    /// eps_star / err_star / the band follow their closed forms.
    @Test func recoversAnExactModelCurve() throws {
        let a = 0.37, b = 2.5, u = 0x1p-24, k = 2
        let eps = logGrid(from: 1e-7, to: 1, points: 29)
        let bias = eps.map { a * $0 * $0 }, noise = eps.map { b * u / $0 }
        let err = zip(bias, noise).map { $0 + $1 }
        let f = ErrorModelFit.fit(eps: eps, err: err, bias: bias, noise: noise, order: k, u: u, dominance: 1e4)
        // Only points where one term dominates by 1e4 are used, so the other term
        // perturbs each log by at most 1e-4.
        #expect(abs(f.a / a - 1) < 2e-4 && abs(f.b / b - 1) < 2e-4, "A \(f.a) B \(f.b)")
        let exact = ErrorModelFit(k: k, u: u, a: a, b: b, pointsA: 0, pointsB: 0)
        let star = Double.pow(b * u / (2 * a), 1.0 / 3)
        #expect(abs(exact.epsStar / star - 1) < 1e-14)
        // At the optimum the derivative k A ε^(k-1) − B u/ε² vanishes.
        #expect(abs(2 * a * star - b * u / (star * star)) < 1e-12 * b * u / (star * star))
        #expect(abs(exact.errStar - (a * star * star + b * u / star)) < 1e-18)
        let band = try #require(exact.band(tolerance: 1e-3))
        #expect(abs(exact.err(band.lo) / 1e-3 - 1) < 1e-9 && abs(exact.err(band.hi) / 1e-3 - 1) < 1e-9)
        #expect(band.lo < star && star < band.hi)
        #expect(exact.band(tolerance: exact.errStar / 2) == nil)
    }

    /// A bf16-like curve with both ends saturated: at small ε the rounding noise
    /// B u/ε levels off at 1 (a swamped perturbation gives ĥ → 0) while the swamped
    /// fraction grows, at large ε the truncation A ε² levels off at 1. The saturation
    /// rule recovers the constants the curve was made with (A = 0.8, B = 0.7, u = 2⁻⁸);
    /// fitting every dominated point, as before the rule, is pulled far off (B by
    /// ~17×). The rule itself: rel_err > 0.3 or swamped_fraction > 0.25 is saturated,
    /// and so is NaN.
    @Test func saturatedPointsAreLeftOut() throws {
        let a = 0.8, b = 0.7, u = 0x1p-8, k = 2
        let eps = logGrid(from: 1e-6, to: 3, points: 27)
        let bias = eps.map { e in let y = a * e * e; return y / (1 + y) }
        let noise = eps.map { e in let x = b * u / e; return x / (1 + x * x).squareRoot() }
        let swamped = eps.map { min(1, 1e-3 / $0) }
        let err = zip(bias, noise).map { $0 + $1 }
        let f = ErrorModelFit.fit(eps: eps, err: err, bias: bias, noise: noise, swamped: swamped, order: k, u: u, dominance: 3)
        #expect(abs(f.a / a - 1) < 0.1 && abs(f.b / b - 1) < 0.1, "A \(f.a) B \(f.b) (\(f.pointsA), \(f.pointsB) points)")
        let old = ErrorModelFit.fit(eps: eps, err: err, bias: bias, noise: noise, swamped: swamped, order: k, u: u, dominance: 3,
                                    saturation: .none)
        #expect(old.b < b / 10 && old.a < a / 2, "without the rule: A \(old.a) B \(old.b)")
        // The swamped-fraction half of the rule alone: with rel_err allowed up to 1, the
        // points whose perturbation is mostly swamped still stay out.
        let bySwamping = ErrorModelFit.fit(eps: eps, err: err, bias: bias, noise: noise, swamped: swamped, order: k, u: u, dominance: 3,
                                           saturation: .init(maxError: 1, maxSwamped: 0.25))
        let noSwamping = ErrorModelFit.fit(eps: eps, err: err, bias: bias, noise: noise, swamped: swamped, order: k, u: u, dominance: 3,
                                           saturation: .init(maxError: 1, maxSwamped: 1))
        #expect(abs(bySwamping.b / b - 1) < abs(noSwamping.b / b - 1), "swamping: \(bySwamping.b) vs \(noSwamping.b)")
        let rule = ErrorModelFit.Saturation()
        #expect(rule.excludes(err: 0.31, swamped: 0) && rule.excludes(err: 0.1, swamped: 0.26) && rule.excludes(err: .nan, swamped: 0))
        #expect(!rule.excludes(err: 0.3, swamped: 0.25))
    }

    /// The expsum model (closed-form derivatives, noise-free in fp64 here): central
    /// differences of Σ wᵢ exp(θᵢ) along v have truncation ε²/6 · ‖w∘e^θ∘v³‖ / ‖w∘e^θ∘v‖
    /// exactly to leading order, and the fit on a curve that includes saturated large-ε
    /// points still returns it.
    @Test func expsumTruncationConstantIsRecovered() throws {
        // One coordinate: h = w e^θ v², central FD = w e^θ v (e^{εv} − e^{−εv}) / 2ε = h · sinh(εv)/(εv).
        let v = 1.5
        let eps = logGrid(from: 1e-3, to: 10, points: 17)
        let bias = eps.map { e in Double.sinh(e * v) / (e * v) - 1 }
        let noise = eps.map { _ in 0.0 }
        let f = ErrorModelFit.fit(eps: eps, err: bias, bias: bias, noise: noise, order: 2, u: 0x1p-53, dominance: 3)
        let exact = v * v / 6
        #expect(abs(f.a / exact - 1) < 0.05, "A \(f.a) vs \(exact)")
        let all = ErrorModelFit.fit(eps: eps, err: bias, bias: bias, noise: noise, order: 2, u: 0x1p-53, dominance: 3, saturation: .none)
        #expect(all.a > 2 * exact, "saturated (exponentially growing) points pull A up: \(all.a)")
    }

    @Test func unresolvedTermsOpenTheBand() {
        let noTrunc = ErrorModelFit(k: 2, u: 0x1p-24, a: 0, b: 1, pointsA: 0, pointsB: 5)
        #expect(noTrunc.epsStar == .infinity && noTrunc.errStar == 0)
        let b = noTrunc.band(tolerance: 1e-4)!
        #expect(b.hi == .infinity && abs(b.lo - 0x1p-24 / 1e-4) < 1e-20)
        let noRound = ErrorModelFit(k: 1, u: 0x1p-24, a: 2, b: 0, pointsA: 4, pointsB: 0)
        #expect(noRound.epsStar == 0)
        #expect(noRound.band(tolerance: 1e-2)! == (0, 5e-3))
    }

    @Test func measuredBandIsTheContiguousRunAroundTheMinimum() {
        let eps = [1e-1, 1e-4, 1e-3, 1e-2, 1e-5, 1]           // unsorted on purpose
        let err = [0.02, 0.004, 0.001, 0.005, 0.5, 0.3]
        let m = measuredBand(eps: eps, err: err, tolerance: 0.01)!
        #expect(m.lo == 1e-4 && m.hi == 1e-2 && eps[m.best] == 1e-3)
        #expect(measuredBand(eps: eps, err: err, tolerance: 1e-4) == nil)
        // A second dip below τ not connected to the minimum is not part of the band.
        let m2 = measuredBand(eps: [1, 2, 3, 4, 5], err: [0.001, 0.5, 0.0001, 0.002, 0.5], tolerance: 0.01)!
        #expect(m2.lo == 3 && m2.hi == 4)
    }

    @Test func logLogSlope() {
        let x = logGrid(from: 1e-6, to: 1e-1, points: 11)
        let f = logLogFit(x: x, y: x.map { 3e-7 / $0 })!
        #expect(abs(f.slope + 1) < 1e-12 && abs(f.r2 - 1) < 1e-12 && abs(Double.exp(f.intercept) / 3e-7 - 1) < 1e-10)
        #expect(logLogFit(x: [1], y: [1]) == nil)
    }

    @Test func logGridEndpointsAreExact() {
        let g = logGrid(from: 1e-8, to: 1, points: 17)
        #expect(g.first == 1e-8 && g.last == 1 && g.count == 17)
        #expect(abs(g[8] / 1e-4 - 1) < 1e-14)
    }

    @Test func componentwiseStd() {
        // Two vectors: std of {a, b} with R−1 = 1 is |a − b|/√2 per component.
        let s = componentwiseStdNorm([[1, 2], [3, 2]])
        #expect(abs(s - 2 / 2.0.squareRoot()) < 1e-15)
        #expect(componentwiseStdNorm([[1, 2]]) == 0)
    }

    @Test func derivedSeedsDifferAndAreStable() {
        #expect(derivedSeed(1, "a", "b") == derivedSeed(1, "a", "b"))
        #expect(derivedSeed(1, "a", "b") != derivedSeed(1, "ab"))
        #expect(derivedSeed(1, "a") != derivedSeed(2, "a"))
    }
}
