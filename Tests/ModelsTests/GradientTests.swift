import Testing
import RealModule
@testable import Models
@testable import Curvature
import LinearAlgebra
@testable import Scalars
import TestSupport

@Suite struct GradientTests {
    /// ∇L in MPFloat<256> against central differences of L in MPFloat<256> with
    /// h = 2⁻⁸⁰: truncation ≈ h²·|L'''| ≈ 2⁻¹⁶⁰, rounding ≈ 2⁻²⁵⁶/h = 2⁻¹⁷⁶.
    /// The tolerance 2⁻¹²⁰ (≈ 1e-36) is far below fp64 precision.
    @Test func gradientsAgainstMPFRCentralDifferences() throws {
        let h = R(sign: .plus, exponent: -80, significand: 1)
        for (name, model) in try smallModels() {
            let theta = toR(model.initialParameters(seed: 3).map { $0 + 0.1 })
            let g = model.lossAndGradient(theta, accumulation: .recursive).gradient
            for i in 0..<theta.count {
                var tp = theta, tm = theta
                tp[i] += h; tm[i] -= h
                let fd = (model.lossAndGradient(tp, accumulation: .recursive).loss - model.lossAndGradient(tm, accumulation: .recursive).loss) / (2 * h)
                let err = (fd - g[i]).magnitude.doubleValue
                #expect(err < 0x1p-120, "\(name) ∂L/∂θ[\(i)]: error \(err)")
            }
            // The fp64 gradient agrees with the MPFR one to fp64 accuracy.
            let g64 = model.lossAndGradient(theta.map { $0.doubleValue }, accumulation: .recursive).gradient
            let scale = max(maxAbs(g), 1e-300)
            for i in 0..<g.count { #expect(abs(g64[i] - g[i].doubleValue) <= 1e-13 * scale, "\(name) fp64 gradient [\(i)]") }
        }
    }

    /// Exact HVP (Dual<MPFloat<256>>, forward-over-reverse) against central
    /// differences of MPFR gradients, h = 2⁻⁸⁰.
    @Test func exactHVPAgainstMPFRFiniteDifferences() throws {
        let h = R(sign: .plus, exponent: -80, significand: 1)
        for (name, model) in try smallModels() {
            let theta = toR(model.initialParameters(seed: 4).map { $0 - 0.05 })
            var g = SplitMix64(seed: 9)
            let v = (0..<theta.count).map { _ in R(g.nextUniform() - 0.5) }
            let hv = model.exactHVP(theta, v).hv
            let fd = FiniteDifferenceHVP.estimateInFormat(model, theta: theta, v: v, scheme: .central, epsilon: h)
            for i in 0..<hv.count {
                #expect((hv[i] - fd[i]).magnitude.doubleValue < 0x1p-120, "\(name) (Hv)[\(i)]")
            }
        }
    }

    /// The exact HVP through BLAS (dual products with transposition flags, weights read
    /// in place from θ, the data's zero-tangent products skipped) against the ordered
    /// fp64 path: Dual<Double> within 1e-12, Dual<Float> within 1e-4 (relative, in the
    /// 2-norm), gradient parts too. A wrong transposition or skip is O(1).
    @Test func exactHVPThroughBLAS() throws {
        let data = try Dataset.teacherStudent(samples: 24, features: 30, classes: 5, seed: 6)
        let mlp = try MLP(widths: [30, 40, 20, 5], activation: .tanh, data: data)
        let theta = mlp.initialParameters(seed: 7)
        var g = SplitMix64(seed: 8)
        let v = (0..<theta.count).map { _ in g.nextUniform() - 0.5 }
        let ref = mlp.exactHVP(theta, v, accumulation: .recursive)
        func rel(_ a: [Double], _ b: [Double]) -> Double {
            zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        let d = mlp.exactHVP(theta, v, accumulation: .blas)
        #expect(rel(d.hv, ref.hv) < 1e-12 && rel(d.gradient, ref.gradient) < 1e-12)
        let f = mlp.exactHVP(theta.map { Float($0) }, v.map { Float($0) }, accumulation: .blas)
        #expect(rel(f.hv.map(Double.init), ref.hv) < 1e-4 && rel(f.gradient.map(Double.init), ref.gradient) < 1e-4)
    }

    /// The MLP's struct-of-arrays dual path (binary32, `.blas`, tanh) against the
    /// generic `Dual<Float>` run, bit for bit: two depths, both heads, a direction that
    /// is zero on a whole layer (the generic run then skips products the split run
    /// computes), and weights with an infinity (the data's product then computed from
    /// zeros). Run under each OpenBLAS kernel set by the README's loop.
    @Test func splitDualHVPMatchesTheDualRunBitForBit() throws {
        try splitDualMatches(Float.self)
        try splitDualMatches(Double.self)                               // binary64 takes the same path (BLASScalar)
    }

    func splitDualMatches<B: BLASScalar & BinaryFloatingPoint>(_: B.Type) throws {
        let data = try Dataset.teacherStudent(samples: 33, features: 20, classes: 7, seed: 16)
        for (widths, loss) in [([20, 24, 16, 7], OutputLoss.crossEntropy), ([20, 40, 7], .squared), ([20, 7], .crossEntropy)] {
            let mlp = try MLP(widths: widths, activation: .tanh, data: data, loss: loss)
            let theta = mlp.initialParameters(seed: 17).map { B($0) }
            var g = SplitMix64(seed: 18)
            let v = (0..<theta.count).map { _ in B(g.nextUniform() - 0.5) }
            var vZeroLayer = v
            for i in mlp.layout.tensors[0].range { vZeroLayer[i] = 0 }
            var thetaInf = theta
            thetaInf[mlp.layout.tensors[0].range.lowerBound + 3] = .infinity
            for (t, d) in [(theta, v), (theta, vZeroLayer), (thetaInf, v)] {
                let split = mlp.splitDualHVP(t, d)
                let dual = mlp.dualNumberHVP(t, d, accumulation: .blas)
                func same(_ a: [B], _ b: [B]) -> Bool { zip(a, b).allSatisfy { $0 == $1 && $0.sign == $1.sign || ($0.isNaN && $1.isNaN) } }
                #expect(same(split.gradient, dual.gradient) && same(split.hv, dual.hv), "\(B.self) \(widths) \(loss)")
                #expect(t != theta || split.hv.allSatisfy { $0.isFinite } && split.hv.contains { $0 != 0 })
                let viaModel = mlp.exactHVP(t, d, accumulation: .blas)          // the dispatch reaches it
                #expect(same(viaModel.hv, split.hv))
            }
        }
    }

    @Test func quadraticHVPIsAv() throws {
        for spec in ["mp:n=20,ratio=0.5", "diag:n=20,lo=1,hi=5", "rotated:n=12,lo=-1,hi=2"] {
            let model = try QuadraticModel(operator: OperatorSpec.parse(spec), seed: 5)
            let theta = model.initialParameters(seed: 1)
            var g = SplitMix64(seed: 2)
            let v = (0..<theta.count).map { _ in g.nextUniform() - 0.5 }
            let hv = model.exactHVP(theta, v).hv
            let av: [Double] = model.diagonal.map { d in zip(d, v).map { $0 * $1 } } ?? Kernels.gemv(model.dense!, v)
            for (a, b) in zip(hv, av) { #expect(a == b, "\(spec): forward-over-reverse reproduces the same products") }
        }
    }
}
