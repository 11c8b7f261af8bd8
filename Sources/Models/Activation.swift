import Scalars
import RealModule

/// Elementwise activations with their exact derivative formulas.
public enum Activation: String, Sendable, CaseIterable, Codable {
    case tanh
    /// GELU, exact erf form: `x·Φ(x) = x·½(1 + erf(x/√2))` (not the tanh approximation).
    case gelu
    case relu

    @inlinable
    public func value<T: ComputeScalar>(_ x: T) -> T {
        switch self {
        case .tanh: return Elementary.tanh(x)                 // Float: correctly rounded (see Elementary)
        case .gelu: return x * (1 + T.erf(x / T.sqrt(2))) / 2
        case .relu: return x > 0 ? x : 0
        }
    }

    /// ``value(_:)`` of every element: the same bits; tanh runs the type's own vector
    /// form where it has one (``ComputeScalar/tanhValues(_:)``: `Float`, `Dual<Float>`).
    @inlinable
    public func values<T: ComputeScalar>(_ z: [T]) -> [T] {
        if self == .tanh, let t = T.tanhValues(z) { return t }
        return z.map { value($0) }
    }

    /// The derivative at x. ReLU uses 0 at x = 0 (the convention of PyTorch and JAX).
    @inlinable
    public func derivative<T: ComputeScalar>(_ x: T) -> T {
        switch self {
        case .tanh: let t = Elementary.tanh(x); return 1 - t * t
        case .gelu:
            let cdf = (1 + T.erf(x / T.sqrt(2))) / 2
            let pdf = T.exp(-x * x / 2) / T.sqrt(2 * T.pi)
            return cdf + x * pdf
        case .relu: return x > 0 ? 1 : 0
        }
    }

    /// The derivative at x given the value h = `value(x)` already computed in the
    /// forward pass, as frameworks keep activations: tanh uses `1 − h²`, the expression
    /// ``derivative(_:)`` evaluates after recomputing tanh(x), so the same bits in every
    /// deterministic type (duals included) without a second tanh. Under stochastic
    /// rounding the recomputation drew a second, different rounding of tanh(x); the
    /// backward pass now uses the value the forward pass used. GELU and ReLU need x.
    @inlinable
    public func derivative<T: ComputeScalar>(_ x: T, value h: T) -> T {
        switch self {
        case .tanh: return 1 - h * h
        case .gelu, .relu: return derivative(x)
        }
    }

    /// g[i] ← g[i] · ``derivative(_:value:)`` at (z[i], h[i]): the backward pass through
    /// the activation. The same products element for element; the activation is
    /// chosen once per call, not per element, so the tanh loop (g·(1 − h²)) vectorizes.
    @inlinable
    public func scaleByDerivative<T: ComputeScalar>(_ g: inout [T], at z: [T], values h: [T]) {
        precondition(g.count == z.count && g.count == h.count, "activation backward: \(g.count), \(z.count), \(h.count) elements")
        g.withUnsafeMutableBufferPointer { gp in h.withUnsafeBufferPointer { hp in z.withUnsafeBufferPointer { zp in
            switch self {
            case .tanh: for i in 0..<gp.count { gp[i] *= 1 - hp[i] * hp[i] }
            case .gelu, .relu: for i in 0..<gp.count { gp[i] *= derivative(zp[i], value: hp[i]) }
            }
        } } }
    }

    /// The formula, as model.json records it for outside frameworks.
    public var formula: String {
        switch self {
        case .tanh: return "tanh(x)"
        case .gelu: return "x * 0.5 * (1 + erf(x / sqrt(2)))"
        case .relu: return "max(x, 0), derivative 0 at 0"
        }
    }
}
