import RealModule
import Scalars
import LinearAlgebra

/// `L(θ) = Σᵢ wᵢ exp(θᵢ)`, a separable model whose derivatives of every order are
/// known in closed form: gᵢ = wᵢ e^{θᵢ}, H = diag(wᵢ e^{θᵢ}), and the third
/// derivative along v is `T[v,v]ᵢ = wᵢ e^{θᵢ} vᵢ²`. The finite-difference
/// quotients are exact functions of ε:
///
/// - forward: `(gᵢ(θ+εv) − gᵢ(θ)) / ε = wᵢe^{θᵢ}(e^{εvᵢ} − 1)/ε = (Hv)ᵢ(1 + εvᵢ/2 + …)`,
/// - central: `wᵢe^{θᵢ} sinh(εvᵢ)/ε = (Hv)ᵢ(1 + (εvᵢ)²/6 + …)`,
///
/// so the truncation constant of the error model `err ≈ A ε^k` is
/// `A = ‖w e^θ v^{k+1}‖ / (c_k ‖w e^θ v‖)` with c₁ = 2, c₂ = 6 (see
/// ``truncationConstant(theta:v:order:)``): the known answer the `fd-bias` study's
/// fit is tested against.
public struct ExpSumModel: DifferentiableModel, GradientCore {
    public let weights: [Double]
    public let layout: ParameterLayout

    /// `n` parameters; weights wᵢ uniform in [0.5, 2] from the seed.
    public init(n: Int, seed: UInt64) {
        var g = SplitMix64(seed: seed ^ 0x51ED_2701_5EED)
        weights = (0..<n).map { _ in 0.5 + 1.5 * g.nextUniform() }
        var l = ParameterLayout()
        l.add("theta", shape: [n], block: "theta")
        layout = l
    }

    public var sampleCount: Int { 1 }

    /// θᵢ uniform in [−1, 1].
    public func initialParameters(seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: seed)
        return (0..<layout.count).map { _ in 2 * g.nextUniform() - 1 }
    }

    @inlinable
    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        if samples.isEmpty { return (.zero, [T](repeating: .zero, count: theta.count)) }
        var g = [T](repeating: .zero, count: theta.count)
        var loss = T.zero
        for i in theta.indices {
            g[i] = T(roundingDouble: weights[i]) * T.exp(theta[i])
            loss += g[i]
        }
        return (loss, g)
    }

    /// The leading truncation constant A of an FD scheme of order k (1: forward,
    /// 2: central) at θ along v, in fp64: `‖w e^θ v^{k+1}‖ / (c_k ‖w e^θ v‖)`.
    public func truncationConstant(theta: [Double], v: [Double], order k: Int) -> Double {
        precondition(k == 1 || k == 2, "closed form for forward (1) and central (2)")
        var num = 0.0, den = 0.0
        for i in theta.indices {
            let h = weights[i] * Double.exp(theta[i])
            let t = h * Double.pow(v[i], k + 1)
            num += t * t; den += (h * v[i]) * (h * v[i])
        }
        return num.squareRoot() / ((k == 1 ? 2 : 6) * den.squareRoot())
    }
}

extension ExpSumModel {
    public func describe() -> ModelDescription {
        let d: [String: Any] = [
            "type": "expsum",
            "loss": "sum over i of w[i] * exp(theta[i]); gradient w * exp(theta); Hessian diag(w * exp(theta)); "
                + "w is rounded into the compute format before use (exact in fp64)",
            "w": "w.npy",
            "w_generator": "uniform in [0.5, 2], seeded (SplitMix64 of the seed xor 0x51ED27015EED)",
        ]
        return ModelDescription(family: "expsum", depth: 0, width: parameterCount, entries: d, arrays: [("w.npy", .float64(weights))])
    }
}
