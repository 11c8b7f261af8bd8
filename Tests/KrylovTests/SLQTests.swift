import Testing
import RealModule
@testable import Krylov
import LinearAlgebra
import Scalars

@Suite struct SLQTests {
    /// SLQ's W1 error has a quadrature part (Chen, Trogdon & Ubaru 2021, Thm. 1:
    /// W1 ≤ 12(λmax−λmin)/(2m−1) per probe; O(1/m)) and a probe part
    /// (O(1/√(nk))). The test checks the rate, not just the loose constant:
    /// (a) w1_scaled ≤ 1/m + 1/√(nk) for every (m, k) tried;
    /// (b) the log-log slope of w1 against m over m = 5…20 lies in [−1.5, −0.5];
    /// (c) w1 and ks decrease from k = 1 to k = 64 probes at fixed m.
    @Test(arguments: ["mp:n=400,ratio=0.5", "spiked:n=400"])
    func w1ShrinksWithStepsAndProbes(_ spec: String) throws {
        let (op, exact) = try OperatorSpec.parse(spec).build(Double.self, seed: 2)
        let range = exact.last! - exact.first!
        let truth = SpectralMeasure(eigenvalues: exact)
        func w1(_ m: Int, _ k: Int) throws -> (Double, Double) {
            let r = try SLQ.run(op, options: SLQOptions(steps: m, probes: k, reorthogonalization: .full, seed: 5))
            let (w, ks) = SpectralDistance.compare(r.measure, truth)
            return (w / range, ks)
        }
        var byM: [(Int, Double)] = []
        for m in [5, 10, 20, 40] {
            let (w, _) = try w1(m, 10)
            #expect(w <= 1 / Double(m) + 1 / Double(400 * 10).squareRoot(), "m=\(m): \(w)")
            byM.append((m, w))
        }
        for i in 1..<byM.count { #expect(byM[i].1 < byM[i - 1].1, "decreases with m") }
        let slope = (Double.log(byM[2].1) - Double.log(byM[0].1)) / (Double.log(20) - Double.log(5))
        #expect(slope >= -1.5 && slope <= -0.5, "slope \(slope)")
        let (w1k1, ks1) = try w1(20, 1), (w1k64, ks64) = try w1(20, 64)
        #expect(w1k64 < w1k1 && ks64 < ks1)
    }

    @Test func weightsAreAProbabilityMeasureAndDensityIntegratesToOne() throws {
        let (op, _) = try OperatorSpec.parse("mp:n=200,ratio=0.25").build(Double.self, seed: 3)
        let r = try SLQ.run(op, options: SLQOptions(steps: 30, probes: 4, seed: 1))
        for p in r.probes { #expect(abs(p.weights.reduce(0, +) - 1) < 1e-12) }
        let mu = r.measure
        #expect(abs(mu.weights.reduce(0, +) - 1) < 1e-12)
        let lo = mu.nodes.min()! - 1, hi = mu.nodes.max()! + 1
        let grid = (0...4000).map { lo + (hi - lo) * Double($0) / 4000 }
        let dens = mu.density(on: grid, sigma: mu.defaultSigma)
        let integral = dens.reduce(0, +) * (hi - lo) / 4000
        #expect(abs(integral - 1) < 1e-3)
    }

    @Test func distancesOnHandComputedMeasures() {
        let a = SpectralMeasure(nodes: [0], weights: [1]), b = SpectralMeasure(nodes: [1], weights: [1])
        #expect(SpectralDistance.compare(a, b) == (1, 1))
        let c = SpectralMeasure(nodes: [0, 1], weights: [0.5, 0.5]), d = SpectralMeasure(nodes: [0.5], weights: [1])
        #expect(SpectralDistance.compare(c, d) == (0.5, 0.5))
        let e = SpectralMeasure(eigenvalues: [1, 2, 3, 4])
        #expect(SpectralDistance.compare(e, e) == (0, 0))
        let f = SpectralMeasure(nodes: [1, 2, 3, 4.5], weights: [0.25, 0.25, 0.25, 0.25])
        #expect(SpectralDistance.compare(e, f).w1 == 0.125 && SpectralDistance.compare(e, f).ks == 0.25)
    }

    /// Unbiasedness of the trace estimators: R = 400 independent estimates; the
    /// test fails when |mean − tr| > 5 standard errors (sample std / √R). For an
    /// unbiased estimator the false-failure probability is ≈ 5.7e-7 per estimator
    /// (normal tail; the t(399) tail is within 2% of it).
    @Test(arguments: ["hutchinson", "hutchpp"])
    func traceEstimatorsAreUnbiased(_ name: String) throws {
        let (op, exact) = try OperatorSpec.parse("spiked:n=60,spikes=8;5").build(Double.self, seed: 9)
        let tr = exact.reduce(0, +)
        let reps = 400
        var xs: [Double] = []
        for r in 0..<reps {
            let apply: ([Double]) -> [Double] = { op.apply($0) }
            xs.append(name == "hutchinson" ? TraceEstimator.hutchinson(dimension: 60, matvecs: 9, seed: UInt64(r), apply)
                                           : TraceEstimator.hutchpp(dimension: 60, matvecs: 9, seed: UInt64(r), apply))
        }
        let mean = xs.reduce(0, +) / Double(reps)
        let sd = (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(reps - 1)).squareRoot()
        let z = (mean - tr) / (sd / Double(reps).squareRoot())
        #expect(abs(z) < 5, "\(name): mean \(mean) vs trace \(tr), z = \(z)")
        #expect(sd > 0)
    }

    /// Hutch++ beats Hutchinson on a dense low-rank-plus-small operator (three large
    /// eigenvalues in random directions): its deflation removes the dominant part.
    @Test func hutchppHasLowerVarianceOnLowRankPlusNoise() throws {
        let values = ([50.0, 40, 30] + [Double](repeating: 0.05, count: 77)).map { "\($0)" }.joined(separator: ";")
        let (op, _) = try OperatorSpec.parse("rotated:values=" + values).build(Double.self, seed: 4)
        func variance(_ f: (Int, Int, UInt64, ([Double]) -> [Double]) -> Double) -> Double {
            let xs = (0..<100).map { f(80, 12, UInt64($0)) { op.apply($0) } }
            let m = xs.reduce(0, +) / 100
            return xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 99
        }
        #expect(variance(TraceEstimator.hutchpp) < variance(TraceEstimator.hutchinson) / 4)
    }
}

@Suite struct OperatorSpecTests {
    @Test func badSpecsAreRejectedWithTheirProblem() {
        for (spec, fragment) in [("bogus:n=3", "unknown operator"), ("diag", "needs n="), ("diag:n=0", "integer in"),
                                 ("diag:n=5,colour=red", "unknown field 'colour'"), ("mp:n=10", "needs ratio="),
                                 ("diag:values=1;x", "not a finite number"), ("diag:n=3,lo=2,hi=1", "hi must be"),
                                 ("diag:n", "malformed field")] {
            do {
                _ = try OperatorSpec.parse(spec)
                Issue.record("accepted \(spec)")
            } catch let e as OperatorSpecError {
                #expect(e.message.contains(fragment), "\(spec): \(e.message)")
            } catch { Issue.record("\(error)") }
        }
    }

    @Test func exactSpectraOfDiagonalAndRotatedAgree() throws {
        let (_, d) = try OperatorSpec.parse("diag:values=3;1;2").build(Double.self, seed: 0)
        #expect(d == [1, 2, 3])
        let (op, r) = try OperatorSpec.parse("rotated:values=3;1;2").build(Double.self, seed: 5)
        for (a, b) in zip(r, [1.0, 2, 3]) { #expect(abs(a - b) < 1e-14) }
        // Rotated really is dense.
        let y = op.apply([1, 0, 0])
        #expect(y.filter { abs($0) > 1e-3 }.count >= 2)
        let (_, bf) = try OperatorSpec.parse("diag:values=0.1;0.2").build(BFloat16.self, seed: 0)
        #expect(bf == [BFloat16(0.1).doubleValue, BFloat16(0.2).doubleValue], "exact spectrum of the stored bf16 operator")
    }
}
