import Testing
import RealModule
@testable import Models
@testable import Curvature
import Krylov
import LinearAlgebra
@testable import Scalars
import TestSupport

@Suite struct FiniteDifferenceTests {
    /// In fp64 and the truncation regime the FD errors scale as εᵏ with k = 1, 2, 4:
    /// the fitted log-log slopes (least squares over four ε) match within 0.25.
    @Test func truncationOrdersInFp64() throws {
        let data = try Dataset.teacherStudent(samples: 8, features: 4, classes: 3, seed: 1)
        let model = try MLP(widths: [4, 6, 3], activation: .tanh, data: data)
        let theta = model.initialParameters(seed: 2)
        var g = SplitMix64(seed: 3)
        let v = (0..<theta.count).map { _ in g.nextUniform() - 0.5 }
        let exact = model.exactHVP(toR(theta), toR(v)).hv.map { $0.doubleValue }
        let norm = exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let grids: [FDScheme: [Double]] = [.forward: [1e-2, 3e-3, 1e-3, 3e-4], .central: [1e-1, 5e-2, 2.5e-2, 1.25e-2],
                                           .richardson: [4e-1, 2e-1, 1e-1, 5e-2]]
        for scheme in FDScheme.allCases {
            var xs: [Double] = [], ys: [Double] = []
            for eps in grids[scheme]! {
                let r = FiniteDifferenceHVP.estimate(model, theta: theta, v: v, scheme: scheme, step: .absolute(eps),
                                                     precision: FDPrecision(), compute: Double.self)
                let err = zip(r.hv, exact).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm
                xs.append(Double.log(eps)); ys.append(Double.log(err))
            }
            let mx = xs.reduce(0, +) / 4, my = ys.reduce(0, +) / 4
            let slope = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
            #expect(abs(slope - Double(scheme.order)) < 0.25, "\(scheme): slope \(slope)")
        }
    }

    /// Central FD on a quadratic has no truncation error: in fp64 the error is pure
    /// rounding and shrinks as ε grows (∝ u/ε).
    @Test func quadraticCentralErrorIsPureRounding() throws {
        let model = try QuadraticModel(operator: OperatorSpec.parse("rotated:n=30,lo=1,hi=10"), seed: 3)
        let theta = model.initialParameters(seed: 1)
        var g = SplitMix64(seed: 4)
        let v = (0..<30).map { _ in g.nextUniform() - 0.5 }
        let exact = model.exactHVP(theta, v).hv
        let norm = exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var errs: [Double] = []
        for eps in [1e-8, 1e-5, 1e-2, 1.0] {
            let r = FiniteDifferenceHVP.estimate(model, theta: theta, v: v, scheme: .central, step: .absolute(eps),
                                                 precision: FDPrecision(), compute: Double.self)
            errs.append(zip(r.hv, exact).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm)
        }
        for i in 1..<errs.count { #expect(errs[i] < errs[i - 1], "\(errs)") }
        #expect(errs.last! < 1e-14)
    }

    /// The backward pass's derivative from the stored activation equals the derivative
    /// recomputed from x, bit for bit, in deterministic types (duals included).
    @Test func derivativeFromStoredValue() {
        var g = SplitMix64(seed: 21)
        func check<T: ComputeScalar>(_: T.Type, _ act: Activation) {
            for _ in 0..<2000 {
                let x = T(roundingDouble: g.nextUniform() * 8 - 4)
                let a = act.derivative(x, value: act.value(x)), b = act.derivative(x)
                #expect(a == b || (a.isNaN && b.isNaN), "\(act) \(T.self) at \(x)")
            }
        }
        for act in Activation.allCases {
            check(Float.self, act); check(Double.self, act); check(BFloat16.self, act); check(Dual<Float>.self, act)
            check(LowPrecisionFloat<FP16Spec, NearestEven>.self, act)
        }
    }

    /// The array forms of the activations (the vector tanh kernel for Float and the values
    /// of Dual<Float>) and the backward scaling equal the elementwise definitions, bit
    /// for bit, over values that include the kernel's undecided inputs, ±0, ±∞ and NaN.
    @Test func arrayFormsMatchElementwise() {
        var g = SplitMix64(seed: 22)
        var xs = (0..<5000).map { _ in Float(g.nextUniform() * 12 - 6) }
        var b: UInt32 = 0x3980_0000, undecided = 0
        while undecided < 40 { if !Binary32Tanh.decidedWithoutMPFR(Float(bitPattern: b)) { xs.append(Float(bitPattern: b)); undecided += 1 }; b += 97 }
        xs += [0, -0.0, .infinity, -.infinity, .nan, 1e-30, -20]
        let ts = xs.map { _ in Float(g.nextUniform() * 2 - 1) }
        func same<T: ComputeScalar>(_ a: [T], _ b: [T]) -> Bool {
            a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
        }
        func bits(_ d: [Dual<Float>]) -> [UInt64] { d.map { UInt64($0.value.bitPattern) << 32 | UInt64($0.tangent.bitPattern) } }
        for act in Activation.allCases {
            #expect(xs.map { act.value($0) }.map(\.bitPattern) == act.values(xs).map(\.bitPattern), "\(act) Float")
            let duals = zip(xs, ts).map { Dual($0, $1) }
            #expect(bits(duals.map { act.value($0) }) == bits(act.values(duals)), "\(act) Dual<Float>")
            let h = act.values(xs)
            var gr = ts
            act.scaleByDerivative(&gr, at: xs, values: h)
            #expect(same(gr, zip(ts, zip(xs, h)).map { $0 * act.derivative($1.0, value: $1.1) }), "\(act) backward")
        }
    }

    /// The fused fp32 FD path (``Binary32FD``) against the stage-by-stage path, bit
    /// for bit: hv, δ and the swamped fraction, over schemes, grad/hvp formats, steps
    /// from swamping to coarse, and parameters with zeros, binary32 midpoints within a
    /// few binary64 ulps of θ + εv, subnormals and huge values (blocks that fall back).
    @Test func fusedBinary32FDMatchesStages() throws {
        let data = try Dataset.teacherStudent(samples: 16, features: 20, classes: 4, seed: 3)
        let mlp = try MLP(widths: [20, 300, 4], activation: .tanh, data: data)   // 7,504 parameters: 30 blocks
        var g = SplitMix64(seed: 9)
        let base = mlp.initialParameters(seed: 4).map { Double(Float($0)) }
        let v = (0..<base.count).map { i in i % 97 == 0 ? 0 : g.nextUniform() - 0.5 }
        var edgy = base
        for i in stride(from: 0, to: edgy.count, by: 389) { edgy[i] = 0 }
        for i in stride(from: 5, to: edgy.count, by: 1201) { edgy[i] = Double(Float(0x1p-140)) }    // binary32 subnormal
        for i in stride(from: 7, to: edgy.count, by: 2003) { edgy[i] = 0x1p100 }
        let fp32 = try FormatArithmetic(name: "fp32")
        var fellBack = 0
        for theta in [base, edgy] {
            for (grad, hvp) in [(fp32, fp32), (FormatArithmetic.fp64, fp32), (fp32, .fp64), (.fp64, .fp64)] {
                for scheme in [FDScheme.forward, .central] {
                    for eps in [1e-9, 1e-4, 0.3] {
                        // v scaled so that some θ + εv land within a few binary64 ulps of a binary32 midpoint.
                        var w = v
                        for i in stride(from: 3, to: w.count, by: 53) where theta[i] != 0 {
                            let mid = Double(Float(theta[i]).ulp) / 2
                            w[i] = (mid + Double(Int(g.next() % 7) - 3) * theta[i].ulp) / eps
                        }
                        let p = FDPrecision(param: fp32, grad: grad, hvp: hvp, accumulation: .recursive)
                        let fused = FiniteDifferenceHVP.estimate(mlp, theta: theta, v: w, scheme: scheme, step: .absolute(eps), precision: p, compute: Float.self)
                        let staged = FiniteDifferenceHVP.estimateByStages(mlp, theta: theta, v: w, scheme: scheme, epsilon: eps, precision: p, compute: Float.self)
                        let label = "\(scheme) grad=\(grad) hvp=\(hvp) ε=\(eps)"
                        #expect(fused.hv.map(\.bitPattern) == staged.hv.map(\.bitPattern), "\(label): hv")
                        #expect(fused.delta.map(\.bitPattern) == staged.delta.map(\.bitPattern), "\(label): δ")
                        #expect(fused.swampedFraction == staged.swampedFraction, "\(label)")
                        for i in 0..<theta.count where FormatArithmetic.binary32(sum: theta[i], eps * w[i]) == nil { fellBack += 1 }
                    }
                }
            }
        }
        #expect(fellBack > 100, "the fallback was exercised \(fellBack) times")
        // Not covered (richardson, bf16 param, a non-Float compute type): the staged path.
        let p16 = FDPrecision(param: try FormatArithmetic(name: "bf16"), grad: fp32, hvp: fp32)
        let a = FiniteDifferenceHVP.estimate(mlp, theta: base, v: v, scheme: .richardson, step: .absolute(1e-2), precision: p16, compute: Float.self)
        let b = FiniteDifferenceHVP.estimateByStages(mlp, theta: base, v: v, scheme: .richardson, epsilon: 1e-2, precision: p16, compute: Float.self)
        #expect(a.hv.map(\.bitPattern) == b.hv.map(\.bitPattern))
    }

    /// In bf16 a small perturbation rounds back to θ: the swamped fraction says so,
    /// and δ is exactly fl_bf16(θ + εv) − θ.
    @Test func swampingInBf16() throws {
        let model = try QuadraticModel(operator: OperatorSpec.parse("diag:n=64,lo=1,hi=2"), seed: 1)
        let bf = try FormatArithmetic(name: "bf16")
        let theta = model.initialParameters(seed: 2).map { bf.round(1.5 + 0.49 * $0) }   // θ ∈ [1, 2) in bf16: ulp 2⁻⁷
        var g = SplitMix64(seed: 5)
        let v = (0..<64).map { _ in g.nextUniform() - 0.5 }
        let p = FDPrecision(param: bf, grad: bf, hvp: bf)
        let tiny = FiniteDifferenceHVP.estimate(model, theta: theta, v: v, scheme: .central, step: .absolute(1e-5), precision: p, compute: BFloat16.self)
        #expect(tiny.swampedFraction == 1 && tiny.hv.allSatisfy { $0 == 0 })
        let big = FiniteDifferenceHVP.estimate(model, theta: theta, v: v, scheme: .central, step: .absolute(0.5), precision: p, compute: BFloat16.self)
        #expect(big.swampedFraction < 0.2)
        for i in 0..<64 {
            let want = MPFROracle.round(theta[i] + 0.5 * v[i], to: .bf16, mode: .nearest) - theta[i]   // θ + εv exact in fp64 here
            #expect(big.delta[i] == want)
        }
        #expect(throws: CurvatureError.self) { try StepPolicy.make(kind: "absolute", value: 0) }
        #expect(throws: CurvatureError.self) { try StepPolicy.make(kind: "relative", value: .nan) }
        #expect(throws: CurvatureError.self) { try StepPolicy.make(kind: "sideways", value: 1) }
        #expect(StepPolicy.relative(0.5).epsilon(theta: [3, 4], v: [0, 2]) == 1.25)
    }
}
