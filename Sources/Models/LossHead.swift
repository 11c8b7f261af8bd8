import Scalars
import LinearAlgebra
import RealModule

/// The loss applied to a model's output rows (logits): `sum = Σ_rows ℓ(z_r, y_r)`
/// and its gradient `∂ℓ/∂z · scale`. Models call it at the end of the forward pass;
/// passing another head (see ``OutputModel``) turns the same hand-written reverse
/// pass into a vector–Jacobian product of the outputs (Gauss–Newton, K-FAC).
public protocol LossHead {
    func evaluate<T: ComputeScalar>(_ logits: Matrix<T>, label: (Int) -> Int, scale: T) -> (sum: T, gradient: Matrix<T>)
}

/// The output losses of the models.
public enum OutputLoss: String, Sendable, CaseIterable, LossHead {
    /// Softmax cross-entropy: ℓ = logsumexp(z) − z_y; ∇²ℓ = diag(p) − ppᵀ, p = softmax(z).
    case crossEntropy = "ce"
    /// Squared error against the one-hot target: ℓ = ½‖z − e_y‖²; ∇²ℓ = I.
    case squared = "mse"

    @inlinable
    public func evaluate<T: ComputeScalar>(_ logits: Matrix<T>, label: (Int) -> Int, scale: T) -> (sum: T, gradient: Matrix<T>) {
        switch self {
        case .crossEntropy: return softmaxCrossEntropy(logits, label: label, scale: scale)
        case .squared:
            var total = T.zero
            var dz = Matrix<T>(rows: logits.rows, cols: logits.cols)
            for i in 0..<logits.rows {
                let y = label(i)
                for j in 0..<logits.cols {
                    let r = logits[i, j] - (j == y ? 1 : 0)
                    total += r * r / 2
                    dz[i, j] = r * scale
                }
            }
            return (total, dz)
        }
    }

    /// `scale · ∇²ℓ(z_r) u_r` for every row r (the loss Hessian is block diagonal over rows).
    @inlinable
    public func hessianProduct<T: ComputeScalar>(_ logits: Matrix<T>, _ u: Matrix<T>, scale: T) -> Matrix<T> {
        switch self {
        case .squared: return u.map { $0 * scale }
        case .crossEntropy:
            var out = Matrix<T>(rows: u.rows, cols: u.cols)
            for i in 0..<u.rows {
                let p = softmaxRow(logits, i)
                var pu = T.zero
                for j in 0..<u.cols { pu += p[j] * u[i, j] }
                for j in 0..<u.cols { out[i, j] = (p[j] * u[i, j] - p[j] * pu) * scale }
            }
            return out
        }
    }

    /// A factorization `∇²ℓ(z_r) = Σ_c q_c q_cᵀ` of one row's loss Hessian: K vectors
    /// (cross-entropy: q_c = √p_c (e_c − p); squared error: q_c = e_c).
    @inlinable
    public func hessianFactor<T: ComputeScalar>(_ logits: Matrix<T>, row i: Int) -> [[T]] {
        let k = logits.cols
        switch self {
        case .squared: return (0..<k).map { c in (0..<k).map { $0 == c ? 1 : 0 } }
        case .crossEntropy:
            let p = softmaxRow(logits, i)
            return (0..<k).map { c in
                let s = p[c].squareRoot()
                return (0..<k).map { j in s * ((j == c ? 1 : 0) - p[j]) }
            }
        }
    }

    @inlinable
    func softmaxRow<T: ComputeScalar>(_ z: Matrix<T>, _ i: Int) -> [T] {
        var m = z[i, 0]
        for j in 1..<z.cols where z[i, j] > m { m = z[i, j] }
        var e = (0..<z.cols).map { T.exp(z[i, $0] - m) }
        let s = e.reduce(T.zero, +)
        for j in e.indices { e[j] /= s }
        return e
    }
}

/// A model whose loss is an ``OutputLoss`` of output rows, with its reverse pass
/// callable with any head: `lossAndGradient(θ, …, head: h)` returns the gradient of
/// `Σ_rows h(z_r)` (times the model's normalization), i.e. `Jᵀ g` for the row
/// gradients g that the head returns.
public protocol OutputModel: DifferentiableModel {
    var outputLoss: OutputLoss { get }
    func lossAndGradient<T: ComputeScalar, H: LossHead>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation, head: H) -> (loss: T, gradient: [T])
}
