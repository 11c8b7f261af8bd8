import Testing
import RealModule
@testable import Krylov
import LinearAlgebra
import Scalars

func probe<T: ComputeScalar>(_ n: Int, seed: UInt64, as: T.Type) -> [T] {
    var g = ProbeGenerator(seed: seed, kind: .rademacher)
    return g.next(n).map { T(roundingDouble: $0) }
}

@Suite struct LanczosTests {
    /// fp64, full reorthogonalization: extremal eigenvalues to 1e-10 relative.
    @Test(arguments: ["rotated:n=150,lo=-2,hi=3", "spiked:n=300", "powerlaw:n=2000,alpha=1.5", "mp:n=120,ratio=0.5"])
    func fullReorthRecoversExtremes(_ spec: String) throws {
        let (op, exact) = try OperatorSpec.parse(spec).build(Double.self, seed: 7)
        let steps = min(op.dimension, 120)
        let l = Lanczos.run(op, start: probe(op.dimension, seed: 1, as: Double.self),
                            options: LanczosOptions(steps: steps, reorthogonalization: .full))
        let theta = try l.ritz().values
        let scale = max(abs(exact.first!), abs(exact.last!))
        #expect(abs(theta.last! - exact.last!) <= 1e-10 * scale, "\(spec) largest: \(theta.last!) vs \(exact.last!)")
        if !spec.hasPrefix("powerlaw") && !spec.hasPrefix("spiked") {
            #expect(abs(theta.first! - exact.first!) <= 1e-10 * scale, "\(spec) smallest")
        }
        if spec.hasPrefix("spiked") {
            for r in 1...3 { #expect(abs(theta[theta.count - r] - exact[exact.count - r]) <= 1e-10 * scale, "spike \(r)") }
        }
    }

    /// Strakoš matrix in fp32: without reorthogonalization Lanczos produces ghost
    /// copies of converged eigenvalues; full and partial do not.
    @Test func ghostsWithoutReorthogonalizationOnly() throws {
        let (op, exact) = try OperatorSpec.parse("strakos:n=100").build(Float.self, seed: 1)
        var ghosts: [Reorthogonalization: Int] = [:], spurious: [Reorthogonalization: Int] = [:]
        for policy in Reorthogonalization.allCases {
            let l = Lanczos.run(op, start: probe(100, seed: 3, as: Float.self), options: LanczosOptions(steps: 100, reorthogonalization: policy))
            let (theta, res, _) = try l.ritz()
            let d = RitzDiagnostics(ritz: theta, residuals: res, exact: exact, r: 3, tol: 1e-4)
            ghosts[policy] = d.ghostCount; spurious[policy] = d.spuriousCount
            #expect(d.ritzErrTop.allSatisfy { $0 < 1e-6 }, "\(policy): top eigenvalues found")
        }
        #expect(ghosts[.none]! >= 10, "none: \(ghosts[.none]!) ghosts")
        #expect(ghosts[.full] == 0 && ghosts[.partial] == 0 && ghosts[.selective] == 0)
        // Ghost copies sit on eigenvalues: ghosts, not spurious values; every converged Ritz value is on the spectrum.
        #expect(Reorthogonalization.allCases.allSatisfy { spurious[$0] == 0 }, "\(spurious)")
    }

    /// Partial reorthogonalization keeps orth_loss ≤ √u_krylov at every step.
    @Test(arguments: ["strakos:n=100", "spiked:n=200", "mp:n=200,ratio=0.5"])
    func partialKeepsSemiorthogonality(_ spec: String) throws {
        let (op, _) = try OperatorSpec.parse(spec).build(Float.self, seed: 4)
        let l = Lanczos.run(op, start: probe(op.dimension, seed: 2, as: Float.self),
                            options: LanczosOptions(steps: min(op.dimension, 150), reorthogonalization: .partial))
        let sqrtU = Double(Float.ulpOfOne / 2).squareRoot()
        for r in l.records { #expect(r.orthLoss! <= sqrtU, "step \(r.step): \(r.orthLoss!)") }
        let none = Lanczos.run(op, start: probe(op.dimension, seed: 2, as: Float.self),
                               options: LanczosOptions(steps: min(op.dimension, 150)))
        #expect(none.records.last!.orthLoss! > 100 * sqrtU, "the case needs reorthogonalization")
        #expect(l.reorthogonalizations < l.steps, "partial does not reorthogonalize every step")
    }

    @Test func breakdownOnInvariantSubspace() throws {
        // diag(1,2,3,…) started on e1 + e2: a 2-dimensional invariant subspace.
        let op = DiagonalOperator<Double>((1...10).map(Double.init))
        var v = [Double](repeating: 0, count: 10); v[0] = 1; v[1] = 1
        let l = Lanczos.run(op, start: v, options: LanczosOptions(steps: 8))
        #expect(l.breakdownStep == 2)
        #expect(try l.ritz().values.map { ($0 * 1e12).rounded() / 1e12 } == [1, 2])
    }

    /// An operator whose output turns infinite at its third application: the run stops
    /// with breakdown `non_finite`, keeps the two finite steps, and their Ritz values
    /// solve (no NaN reaches the eigenproblem).
    @Test func nonFiniteStepIsABreakdownAndIsDropped() throws {
        struct Blowup: LinearOperator {
            let inner = DiagonalOperator<Float>((1...20).map(Float.init))
            final class Count: @unchecked Sendable { var n = 0 }
            let count = Count()
            var dimension: Int { 20 }
            func apply(_ x: [Float], into y: inout [Float]) {
                inner.apply(x, into: &y)
                count.n += 1
                if count.n >= 3 { y[0] = .infinity }
            }
        }
        let l = Lanczos.run(Blowup(), start: probe(20, seed: 1, as: Float.self), options: LanczosOptions(steps: 10, reorthogonalization: .full))
        #expect(l.breakdown == .nonFinite && l.breakdownStep == 3 && l.steps == 2)
        #expect(l.alpha.allSatisfy(\.isFinite) && l.beta.allSatisfy(\.isFinite))
        let r = try l.ritz()
        #expect(r.values.count == 2 && r.values.allSatisfy(\.isFinite))
        // A run that completes reports no breakdown.
        let ok = Lanczos.run(DiagonalOperator<Float>((1...20).map(Float.init)), start: probe(20, seed: 1, as: Float.self),
                             options: LanczosOptions(steps: 10, reorthogonalization: .full))
        #expect(ok.breakdown == nil && ok.breakdownStep == nil && ok.steps == 10)
    }

    /// An operator with its own error far above u (here 30% random noise per product,
    /// as a bf16 FD-HVP at a small ε has): the ω-recurrence of partial
    /// reorthogonalization does not see the orthogonality it loses, and when it finally
    /// reorthogonalizes, classical Gram–Schmidt against a basis that is no longer
    /// orthonormal lengthens the vector; unchecked, β then grew ~20× per step until it
    /// overflowed (the krylov-stability "blow-ups" at n ≈ 200). The run now stops with
    /// `orthogonality_lost`, its tridiagonal finite and bounded by the operator's norm.
    @Test func partialReorthogonalizationStopsWhenOrthogonalityIsLost() throws {
        struct Noisy: LinearOperator {
            let d: [Double] = (0..<200).map { 1 + Double($0) / 100 }
            final class G: @unchecked Sendable { var g = SplitMix64(seed: 9) }
            let g = G()
            var dimension: Int { 200 }
            func apply(_ x: [BFloat16], into y: inout [BFloat16]) {
                let xs = x.map(\.doubleValue)
                let nx = xs.reduce(0) { $0 + $1 * $1 }.squareRoot()
                let e = (0..<200).map { _ in g.g.nextGaussian() }
                let ne = e.reduce(0) { $0 + $1 * $1 }.squareRoot()
                for i in 0..<200 { y[i] = BFloat16(roundingDouble: d[i] * xs[i] + 0.9 * nx * e[i] / ne) }   // ‖noise‖ = 0.3 ‖A‖ ‖x‖
            }
        }
        let start = probe(200, seed: 1, as: BFloat16.self)
        let l = Lanczos.run(Noisy(), start: start, options: LanczosOptions(steps: 40, reorthogonalization: .partial, accumulation: .widened(.fp32)))
        #expect(l.breakdown == .orthogonalityLost, "\(String(describing: l.breakdown)) after \(l.steps) steps")
        #expect(l.beta.allSatisfy { $0.isFinite && $0.doubleValue < 10 } && l.alpha.allSatisfy(\.isFinite), "β \(l.beta)")
        // Full reorthogonalization keeps the basis orthonormal: no such breakdown.
        let full = Lanczos.run(Noisy(), start: start, options: LanczosOptions(steps: 40, reorthogonalization: .full, accumulation: .widened(.fp32)))
        #expect(full.breakdown == nil && full.steps == 40)
    }

    /// bf16 Lanczos vectors of length ~1000: a squared norm summed recursively in bf16
    /// stalls (s ≈ 0.25 when the terms fall below half an ulp of s), so the vectors
    /// come out with norm ≈ 2 and full reorthogonalization cannot hold orthogonality;
    /// summed in fp32 (the policy's accumulate stage) the same run stays orthogonal to
    /// the bf16 level. Fails when the accumulation is not passed through.
    @Test func bf16VectorsNeedWideAccumulation() throws {
        let (op, _) = try OperatorSpec.parse("mp:n=1144,ratio=0.5").build(BFloat16.self, seed: 1)
        let start = probe(op.dimension, seed: 1, as: BFloat16.self)
        let narrow = Lanczos.run(op, start: start, options: LanczosOptions(steps: 12, reorthogonalization: .full))
        let wide = Lanczos.run(op, start: start, options: LanczosOptions(steps: 12, reorthogonalization: .full, accumulation: .widened(.fp32)))
        let u = 0x1p-8
        #expect(narrow.records[1].orthLossFro! > 0.5, "bf16 sums: \(narrow.records[1].orthLossFro!)")
        #expect(wide.records.allSatisfy { $0.orthLossFro! < 40 * u }, "fp32 sums: \(wide.records.map { $0.orthLossFro! })")
    }

    @Test func lanczosRunsInEveryFormat() throws {
        let (op64, exact) = try OperatorSpec.parse("diag:n=50,lo=1,hi=10").build(Double.self, seed: 0)
        _ = op64
        func top<T: ComputeScalar>(_: T.Type) throws -> Double {
            let (op, _) = try OperatorSpec.parse("diag:n=50,lo=1,hi=10").build(T.self, seed: 0)
            let l = Lanczos.run(op, start: probe(50, seed: 1, as: T.self), options: LanczosOptions(steps: 50, reorthogonalization: .full))
            return try l.ritz().values.last!
        }
        #expect(abs(try top(BFloat16.self) - exact.last!) < 0.1)
        #expect(abs(try top(LowPrecisionFloat<BF16Spec, Stochastic>.self) - exact.last!) < 0.1)
        #expect(abs(try top(Float.self) - exact.last!) < 1e-4)
        #expect(abs(try top(MPFloat<128>.self) - exact.last!) < 1e-12)
    }
}

@Suite struct RitzDiagnosticsTests {
    @Test func handComputedCases() {
        // Exact {1, 2, 10}; Ritz {2, 10, 10.000001, 5} with the first three converged.
        // 5 is unconverged: neither spurious nor a ghost (NUMERICS §6 counts converged Ritz values only).
        let d = RitzDiagnostics(ritz: [2, 5, 10, 10.000001], residuals: [0, 1, 0, 0], exact: [1, 2, 10], r: 2, tol: 1e-4)
        #expect(d.ghostCount == 1 && d.spuriousCount == 0 && d.unconvergedCount == 1)
        #expect(d.ritzErrTop == [0, 0])
        // The same Ritz value converged is spurious.
        let c = RitzDiagnostics(ritz: [2, 5, 10], residuals: [0, 1e-9, 0], exact: [1, 2, 10], r: 2, tol: 1e-4)
        #expect(c.spuriousCount == 1 && c.unconvergedCount == 0 && c.ghostCount == 0)
        // A double exact eigenvalue is not a ghost.
        let e = RitzDiagnostics(ritz: [3, 3], residuals: [0, 0], exact: [3, 3], r: 1, tol: 1e-6)
        #expect(e.ghostCount == 0 && e.spuriousCount == 0)
        let f = RitzDiagnostics(ritz: [9], residuals: [0], exact: [1, 10], r: 2, tol: 1e-3)
        #expect(f.ritzErrTop == [0.1, 0.8] && f.spuriousCount == 1)
    }
}

/// Reorthogonalizing Lanczos measures its orthogonality from the stored basis (no fp64
/// copy): the measured ‖I − QᵀQ‖_F equals one computed independently from the returned
/// basis in fp64.
@Suite struct LanczosOrthogonalityFromBasisTests {
    @Test func measuredEqualsRecomputed() {
        let n = 200
        let d = (0..<n).map { Float(1 + $0 % 13) }
        var state: UInt64 = 3
        let start: [Float] = (0..<n).map { _ in state = state &* 6364136223846793005 &+ 1442695040888963407; return Float(Int64(bitPattern: state >> 11) % 1000) / 1000 + 0.001 }
        for reorth in [Reorthogonalization.full, .partial] {
            let r = Lanczos.run(DiagonalOperator(d), start: start, options: LanczosOptions(steps: 12, reorthogonalization: reorth, storeBasis: true))
            let q = r.basis!.prefix(r.records.count).map { $0.map(Double.init) }
            var fro2 = 0.0, maxOff = 0.0
            for i in q.indices {
                for j in 0...i {
                    var s = 0.0
                    for t in 0..<n { s += q[i][t] * q[j][t] }
                    if i == j { fro2 += (1 - s) * (1 - s) } else { fro2 += 2 * s * s; maxOff = max(maxOff, abs(s)) }
                }
            }
            let last = r.records.last!
            #expect(abs(last.orthLossFro! - fro2.squareRoot()) <= 1e-12 * max(1e-12, fro2.squareRoot()) + 1e-18, "\(reorth): \(last.orthLossFro!) vs \(fro2.squareRoot())")
            #expect(last.orthLoss! == maxOff, "\(reorth)")
        }
    }
}
