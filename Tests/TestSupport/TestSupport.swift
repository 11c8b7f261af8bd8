import Scalars
import LinearAlgebra
import Models

/// Fixtures and helpers shared by the test targets of the model and curvature layers.

public typealias R = MPFloat<256>

/// Small instances of every model (tens of parameters, so per-parameter finite
/// differences in MPFloat stay fast).
public func smallModels() throws -> [(String, any DifferentiableModel)] {
    let data = try Dataset.teacherStudent(samples: 6, features: 3, classes: 3, seed: 11)
    return [
        ("quadratic-dense", try QuadraticModel(operator: OperatorSpec.parse("mp:n=8,ratio=0.5"), seed: 1)),
        ("quadratic-diag", try QuadraticModel(operator: OperatorSpec.parse("diag:n=8,lo=0.5,hi=4"), seed: 2)),
        ("softmax", try MLP(widths: [3, 3], activation: .tanh, data: data)),
        ("mlp-tanh", try MLP(widths: [3, 4, 3], activation: .tanh, data: data)),
        ("mlp-gelu", try MLP(widths: [3, 4, 4, 3], activation: .gelu, data: data)),
        ("mlp-relu", try MLP(widths: [3, 5, 3], activation: .relu, data: data)),
    ]
}

public func toR(_ x: [Double]) -> [R] { x.map { R($0) } }

public func maxAbs<T: ComputeScalar>(_ a: [T]) -> Double { a.map { abs($0.doubleValue) }.max() ?? 0 }

/// Dense n×n matrix from n products with basis vectors.
public func denseFrom(_ n: Int, _ apply: ([Double]) -> [Double]) -> Matrix<Double> {
    var m = Matrix<Double>(rows: n, cols: n)
    for j in 0..<n {
        var e = [Double](repeating: 0, count: n); e[j] = 1
        let c = apply(e)
        for i in 0..<n { m[i, j] = c[i] }
    }
    return m
}
public func maxAbsDiff(_ a: Matrix<Double>, _ b: Matrix<Double>) -> Double { zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0 }
public func maxAbs(_ a: Matrix<Double>) -> Double { a.storage.map(abs).max() ?? 0 }
