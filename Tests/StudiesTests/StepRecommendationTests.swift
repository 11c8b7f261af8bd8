import Foundation
import Testing
import RealModule
import Scalars
import Models
import Curvature
@testable import Studies

/// Seeded random unit vectors of one length (Gaussian directions), for the synthetic oracles.
private struct UnitVectors {
    let count: Int
    var g: SplitMix64
    init(count: Int, seed: UInt64) { self.count = count; g = SplitMix64(seed: seed) }
    mutating func next() -> [Double] {
        let x = (0..<count).map { _ in g.nextGaussian() }
        let s = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return x.map { $0 / s }
    }
}

@Suite struct StepRecommendationTests {
    /// A synthetic oracle with known constants: ĥ(ε) = h + c ε^k + n(ε), ‖c‖ = T and a
    /// fresh seeded noise vector of norm N/ε at every call. The fit recovers T and N,
    /// ε* = (N/(kT))^{1/(k+1)}, and the prediction lies between the true error (the
    /// root sum of squares) and √2 times it.
    @Test(arguments: [FDScheme.forward, .central, .richardson])
    func recoversKnownConstants(_ scheme: FDScheme) throws {
        let n = 4000, k = scheme.order
        var units = UnitVectors(count: n, seed: 11)
        func unit() -> [Double] { units.next() }
        let h = unit().map { 3 * $0 }, c = unit()
        let theta = (0..<n).map { _ in units.g.nextGaussian() }, v = unit()
        let tTrue = 0.7, nTrue = 2e-7
        // The forward scheme's g(θ) term is one noise vector shared by every ε.
        let shared = unit()
        let rec = try StepRecommendation.estimate(scheme: scheme, u: 0x1p-24, theta: theta, v: v, tolerance: 1e-3) { eps in
            let fresh = unit()
            let noise = scheme == .forward ? zip(fresh, shared).map { ($0 - $1) / 2.0.squareRoot() } : fresh
            let hv = (0..<n).map { h[$0] + tTrue * Double.pow(eps, k) * c[$0] + nTrue / eps * noise[$0] }
            return (hv, 0)
        }
        #expect(abs(rec.truncation / tTrue - 1) < 0.2 && abs(rec.noise / nTrue - 1) < 0.2,
                "\(scheme): T \(rec.truncation) N \(rec.noise) (\(rec.pairsUsed) pairs)")
        let star = Double.pow(nTrue / (Double(k) * tTrue), 1 / Double(k + 1))
        #expect(abs(rec.epsStar / star - 1) < 0.2, "\(scheme): ε* \(rec.epsStar) vs \(star)")
        let e = rec.epsStar
        let truth = ((tTrue * Double.pow(e, k)) * (tTrue * Double.pow(e, k)) + (nTrue / e) * (nTrue / e)).squareRoot() / 3
        #expect(rec.predictedErr >= 0.8 * truth && rec.predictedErr <= 1.6 * truth, "\(scheme): predicted \(rec.predictedErr) vs \(truth)")
        #expect(rec.feasible == (rec.predictedErr <= 1e-3))
    }

    /// Saturation on both sides: below ε = 1e-4 every component is swamped and ĥ = 0,
    /// above ε = 0.3 the truncation levels off (ĥ decays like 1/ε). The saturated pairs
    /// stay out of the fit and the constants are still recovered.
    @Test func saturatedEndsAreLeftOut() throws {
        let n = 3000
        var units = UnitVectors(count: n, seed: 5)
        func unit() -> [Double] { units.next() }
        let h = unit(), c = unit(), v = unit(), theta = unit()
        let tTrue = 0.5, nTrue = 1e-4
        let rec = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05) { eps in
            if eps < 1e-3 { return ([Double](repeating: 0, count: n), 1) }
            if eps > 0.3 { return (h.map { $0 * 0.3 / eps }, 0) }
            let noise = unit()
            return ((0..<n).map { h[$0] + tTrue * eps * eps * c[$0] + nTrue / eps * noise[$0] }, 0)
        }
        #expect(abs(rec.truncation / tTrue - 1) < 0.25 && abs(rec.noise / nTrue - 1) < 0.25, "T \(rec.truncation) N \(rec.noise)")
        #expect(rec.points.allSatisfy { !$0.used || ($0.epsilon >= 1e-3 && $0.epsilon <= 0.3) })
    }

    /// Saturated everywhere: ĥ(ε) = h + T ε² c + (N/ε) n(ε) with constants such that the
    /// smallest error over the grid is ~0.6 (no pair differs by less than 0.3‖h‖, so no
    /// error model is fitted). The reference-free floor estimate lies within 2× of the
    /// grid's smallest true error, and the step taken (the larger ε of the steadiest pair)
    /// errs within 2× of that smallest error, where the textbook step errs ~3× more.
    /// With every point swamped there is no estimate and the textbook step is taken.
    @Test func saturatedGivesFloorAndSteadiestStep() throws {
        let n = 3000
        var units = UnitVectors(count: n, seed: 9)
        func unit() -> [Double] { units.next() }
        let h = unit(), c = unit(), v = unit(), theta = unit()
        let tTrue = 1.0, nTrue = 0.3
        func err(_ eps: Double) -> Double { ((tTrue * eps * eps) * (tTrue * eps * eps) + (nTrue / eps) * (nTrue / eps)).squareRoot() }
        var truths: [Double] = []
        let rec = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05) { eps in
            truths.append(err(eps))
            let noise = unit()
            return ((0..<n).map { h[$0] + tTrue * eps * eps * c[$0] + nTrue / eps * noise[$0] }, 0)
        }
        let floor = truths.min()!
        #expect(rec.saturated && !rec.feasible && rec.pairsUsed < 2)
        let f = try #require(rec.floorEstimate)
        #expect(f >= floor / 2 && f <= 2 * floor, "floor estimate \(f) vs smallest error \(floor)")
        #expect(rec.predictedErr == f)
        #expect(err(rec.epsStar) <= 2 * floor, "step \(rec.epsStar) errs \(err(rec.epsStar)) vs \(floor)")
        let textbook = Double.pow(0x1p-8, 1.0 / 3) * 1.0                       // ‖θ‖ = ‖v‖ = 1: ε = η
        #expect(err(textbook) > 2.5 * floor)

        let swamped = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05) { _ in
            ([Double](repeating: 0, count: n), 1)
        }
        #expect(swamped.saturated && swamped.floorEstimate == nil && swamped.predictedErr.isNaN)
        #expect(abs(swamped.epsStar / textbook - 1) < 1e-12)
    }

    /// The bias probe. ĥ(ε) = h + b + T ε² c + (N/ε) n(ε) with a bias b (‖b‖ = 0.2‖h‖) that
    /// does not change with ε, as a gradient computed in bf16 differentiates a slightly
    /// different function; the wide FD-HVP is h + T ε² c (the same truncation, no rounding).
    /// The grid's differences cannot see b: without the probe the prediction is ≥ 3×
    /// optimistic; with it, within 0.8–1.6× of the error at ε*. Without a bias the probe
    /// (which then sees the noise at ε*) leaves the prediction within 0.8–1.6× as well, and
    /// on a saturated curve the floor is the larger of the neighbours' difference and δ.
    @Test func probeSeesWhatTheGridCannot() throws {
        let n = 3000
        var units = UnitVectors(count: n, seed: 19)
        func unit() -> [Double] { units.next() }
        let h = unit(), c = unit(), v = unit(), theta = unit(), b = unit()
        let tTrue = 0.5, nTrue = 2e-4
        for bias in [0.2, 0.0] {
            func oracle(_ eps: Double) -> [Double] {
                let noise = unit()
                return (0..<n).map { h[$0] + bias * b[$0] + tTrue * eps * eps * c[$0] + nTrue / eps * noise[$0] }
            }
            func err(_ eps: Double) -> Double { StepRecommendation.distance(oracle(eps), h) }
            let wide: (format: String, evaluate: (Double) throws -> [Double]) = ("fp32", { eps in (0..<n).map { h[$0] + tTrue * eps * eps * c[$0] } })
            let plain = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05) { (oracle($0), 0) }
            let probed = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05, probe: wide) { (oracle($0), 0) }
            #expect(!plain.saturated && !probed.saturated && plain.probe == nil)
            let p = try #require(probed.probe)
            let truth = err(probed.epsStar)
            #expect(p.format == "fp32" && p.epsilon == probed.epsStar)
            #expect(probed.predictedErr >= 0.8 * truth && probed.predictedErr <= 1.6 * truth, "bias \(bias): \(probed.predictedErr) vs \(truth)")
            if bias > 0 {
                #expect(plain.predictedErr * 3 <= err(plain.epsStar), "without the probe: \(plain.predictedErr) vs \(err(plain.epsStar))")
                #expect(!probed.feasible && plain.feasible)
            }
        }
        // Saturated (every pair differs by more than 0.3‖h‖ except near the optimum): floor = max(pair, δ).
        let sat = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05,
                                                  probe: ("fp32", { eps in (0..<n).map { h[$0] + eps * eps * c[$0] } })) { eps in
            let noise = unit()
            return ((0..<n).map { h[$0] + 0.9 * b[$0] + eps * eps * c[$0] + 0.3 / eps * noise[$0] }, 0)
        }
        #expect(sat.saturated)
        let f = try #require(sat.floorEstimate), d = try #require(sat.probe).relativeDifference
        #expect(d > f && sat.predictedErr == d, "floor \(f), probe \(d)")
    }

    /// Saturated as on the trained 1.2·10⁶-parameter transformer with bf16 compute: beyond
    /// ε ≈ 10⁻³ the difference quotient has lost h (ĥ decays like 1/ε², so every larger ε errs
    /// about 1), and below it a rounding noise N/ε shared by neighbouring steps (a fixed
    /// direction w, as a bf16 forward pass rounds alike at nearby ε) reaches 80‖h‖. There,
    /// neighbours differ by about half their norm, less, relatively, than the small,
    /// independent vectors at large ε (~0.8). The steadiest pair is the one whose difference,
    /// not relative difference, is smallest: its step errs within 1.1× of the grid's smallest
    /// error (~1), where the smallest relative difference points at an error ≥ 5× it.
    @Test func steadiestPairHasTheSmallestDifference() throws {
        let n = 3000
        var units = UnitVectors(count: n, seed: 17)
        func unit() -> [Double] { units.next() }
        let h = unit(), v = unit(), theta = unit(), w = unit()
        var errors: [Double] = []
        let rec = try StepRecommendation.estimate(scheme: .central, u: 0x1p-8, theta: theta, v: v, tolerance: 0.05) { eps in
            let fresh = unit(), a = 1 / (1 + (eps / 1e-3) * (eps / 1e-3))
            let hv = (0..<n).map { a * h[$0] + 0.1 / eps * 0.95 * w[$0] + 0.1 * fresh[$0] }
            errors.append(StepRecommendation.distance(hv, h))
            return (hv, 0)
        }
        let smallest = rec.points.indices.filter { rec.points[$0].eta <= 1 }.map { errors[$0] }.min()!
        #expect(rec.saturated)
        let chosen = try #require(rec.points.firstIndex { $0.epsilon == rec.epsStar })
        #expect(errors[chosen] <= 1.1 * smallest, "step errs \(errors[chosen]) vs \(smallest)")
        let relative = (0..<(rec.points.count - 1)).filter { rec.points[$0 + 1].eta <= 1 }.min {
            rec.points[$0].diffNorm! / max(rec.points[$0].hvNorm, rec.points[$0 + 1].hvNorm)
                < rec.points[$1].diffNorm! / max(rec.points[$1].hvNorm, rec.points[$1 + 1].hvNorm)
        }!
        #expect(errors[relative + 1] >= 5 * smallest, "the relative rule's step errs \(errors[relative + 1])")
        #expect(abs(try #require(rec.floorEstimate) - 0.8) < 0.3)
    }

    /// Richardson, saturated by its coarse grid: ĥ = h + T ε⁴ c + (N/ε) n(ε) with the error's
    /// minimum (0.1, at ε*) midway (geometrically) between two ratio-3 grid points, so that only
    /// the pair straddling it differs by less than 0.3‖h‖ and no error model is fitted. The
    /// refinement evaluates the midpoint and takes it: the step errs within 1.1× of the smallest
    /// error (the pair's larger ε, the step without refinement, errs ≥ 2×), and the floor
    /// estimate lies within 1–2× of the smallest error (the pair's own difference is ≥ 2×).
    @Test func richardsonRefinesTheSteadiestPair() throws {
        let n = 3000
        var units = UnitVectors(count: n, seed: 13)
        func unit() -> [Double] { units.next() }
        let h = unit(), c = unit(), v = unit(), theta = unit()
        let u = 0x1p-8
        // ‖θ‖ = ‖v‖ = 1, so ε = η and the grid is u^{1/5}·3^j; ε* sits between j = -1 and 0.
        let star = Double.pow(u, 0.2) / 3.0.squareRoot()
        // The root-sum-of-squares error is smallest at ε* = (N/(2T))^{1/5}, where it is √1.25·N/ε*.
        let nTrue = 0.1 * star / 1.25.squareRoot(), tTrue = nTrue / (2 * Double.pow(star, 5))
        func err(_ eps: Double) -> Double { ((tTrue * Double.pow(eps, 4)) * (tTrue * Double.pow(eps, 4)) + (nTrue / eps) * (nTrue / eps)).squareRoot() }
        var calls = 0
        let rec = try StepRecommendation.estimate(scheme: .richardson, u: u, theta: theta, v: v, tolerance: 0.05) { eps in
            calls += 1
            let noise = unit()
            return ((0..<n).map { h[$0] + tTrue * Double.pow(eps, 4) * c[$0] + nTrue / eps * noise[$0] }, 0)
        }
        let floor = err(star)
        #expect(rec.saturated && !rec.feasible && calls == 16, "saturated \(rec.saturated), \(calls) FD-HVPs")
        let r = try #require(rec.refinement)
        #expect(abs(rec.epsStar / star - 1) < 1e-12 && r.epsilon == rec.epsStar)
        #expect(err(rec.epsStar) <= 1.1 * floor)
        let f = try #require(rec.floorEstimate)
        #expect(f >= floor && f <= 2 * floor && f == min(r.belowRatio, r.aboveRatio), "floor estimate \(f) vs smallest error \(floor)")
        // Without the refinement: the pair's larger ε and its own difference.
        let pair = try #require(StepRecommendation.steadiestPair(rec.points, maxSwamped: 0.25))
        #expect(err(rec.points[pair.index + 1].epsilon) >= 2 * floor && pair.ratio >= 2 * floor)

        // Central differences are not refined (their grid has ratio 2).
        let central = try StepRecommendation.estimate(scheme: .central, u: u, theta: theta, v: v, tolerance: 0.05) { eps in
            let noise = unit()
            return ((0..<n).map { h[$0] + 5 * eps * eps * c[$0] + 0.2 / eps * noise[$0] }, 0)
        }
        #expect(central.saturated && central.refinement == nil)
    }

    /// On real models, against the mpfr256 exact HVP (which the recommendation never
    /// sees): predicted within 2× of the error measured at the chosen ε, and that ε within
    /// 3× of the best of a 4-per-decade grid. bf16, mixed and fp32 policies.
    @Test func predictionsHoldOnModels() throws {
        let policies = try ["param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32",
                            "param=fp32,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32",
                            "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32"].map(PrecisionPolicy.init)
        let s = try RecommendCheckStudy(.init(models: ["mlp:widths=6-10-3,samples=16", "softmax:d=8,classes=3,samples=24"],
                                              policies: policies, schemes: [.forward, .central], seeds: [7], tolerance: 0.05))
        let out = try runAll(s)
        let check = table(out, "check")
        #expect(check.rows.count == 12)
        for (r, (pm, eb)) in zip(check.rows, zip(numbers(check, "pred_over_meas"), numbers(check, "eta_star_over_best"))) {
            #expect(pm >= 0.5 && pm <= 2, "\(r[0]) \(r[2]) \(r[6]): predicted/measured \(pm)")
            #expect(eb >= 1.0 / 3 && eb <= 3, "\(r[0]) \(r[2]) \(r[6]): ε*/best \(eb)")
        }
    }
}
