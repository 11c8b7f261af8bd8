import Scalars
import LinearAlgebra

/// `L(θ) = ½ θᵀAθ − bᵀθ` with A a synthetic operator of known spectrum: its exact
/// Hessian is A, its gradient `Aθ − b`, and every third derivative vanishes (so a
/// central finite difference of the gradient has no truncation error).
public struct QuadraticModel: DifferentiableModel, GradientCore {
    public let spec: OperatorSpec
    public let seed: UInt64
    public let diagonal: [Double]?
    public let dense: Matrix<Double>?
    public let b: [Double]
    public let eigenvalues: [Double]
    public let layout: ParameterLayout

    public init(operator spec: OperatorSpec, seed: UInt64) throws {
        self.spec = spec; self.seed = seed
        let (diag, dense, eig) = try spec.matrix(seed: seed)
        self.diagonal = diag; self.dense = dense; self.eigenvalues = eig
        let n = diag?.count ?? dense!.rows
        var g = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        b = (0..<n).map { _ in 2 * g.nextUniform() - 1 }
        var l = ParameterLayout()
        l.add("theta", shape: [n], block: "theta")
        layout = l
    }

    public func initialParameters(seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: seed)
        return (0..<layout.count).map { _ in 2 * g.nextUniform() - 1 }
    }

    /// One "sample": the whole loss (data-parallel ranks other than the owner of
    /// sample 0 contribute zero).
    public var sampleCount: Int { 1 }

    @inlinable
    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        if samples.isEmpty { return (.zero, [T](repeating: .zero, count: theta.count)) }
        let at: [T]
        if let d = diagonal {
            at = zip(d, theta).map { T(roundingDouble: $0) * $1 }
        } else {
            at = Kernels.gemv(dense!.converted(to: T.self), theta, accumulation: acc)
        }
        let bt = b.map { T(roundingDouble: $0) }
        var loss = T.zero
        for i in theta.indices { loss += theta[i] * (at[i] / 2 - bt[i]) }
        return (loss, zip(at, bt).map { $0 - $1 })
    }
}

extension QuadraticModel {
    public func describe() -> ModelDescription {
        var d: [String: Any] = ["type": "quadratic", "loss": "0.5 * theta @ A @ theta - b @ theta", "operator": spec.text, "b": "b.npy",
                                "exact_eigenvalues": "A_eigenvalues.npy"]
        var arrays: [(name: String, values: ModelArray)] = [("b.npy", .float64(b))]
        if let diag = diagonal { d["A"] = ["diagonal": "A_diag.npy"]; arrays.append(("A_diag.npy", .float64(diag))) }
        else if let a = dense { d["A"] = ["dense": "A.npy"]; arrays.append(("A.npy", .float64(a.storage, shape: [a.rows, a.cols]))) }
        arrays.append(("A_eigenvalues.npy", .float64(eigenvalues)))
        return ModelDescription(family: "quadratic", depth: 0, width: parameterCount, entries: d, arrays: arrays)
    }

    /// The defining spectrum of A, ascending.
    public var knownEigenvalues: [Double]? { eigenvalues.sorted() }
}
