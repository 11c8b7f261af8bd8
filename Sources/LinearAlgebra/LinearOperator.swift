import Scalars

/// A symmetric linear operator `v ↦ Av` of fixed dimension, in scalar type `Scalar`.
/// Lanczos and SLQ only ever apply it.
public protocol LinearOperator {
    associatedtype Scalar: ComputeScalar
    var dimension: Int { get }
    /// `y ← A x` (y has the operator's dimension on entry).
    func apply(_ x: [Scalar], into y: inout [Scalar])
}

extension LinearOperator {
    public func apply(_ x: [Scalar]) -> [Scalar] {
        var y = [Scalar](repeating: .zero, count: dimension)
        apply(x, into: &y)
        return y
    }
}

/// `A = diag(d)`, applied elementwise (one rounding per element in `T`).
public struct DiagonalOperator<T: ComputeScalar>: LinearOperator {
    public var diagonal: [T]
    @inlinable public init(_ diagonal: [T]) { self.diagonal = diagonal }
    @inlinable public var dimension: Int { diagonal.count }
    @inlinable
    public func apply(_ x: [T], into y: inout [T]) {
        diagonal.withUnsafeBufferPointer { d in
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<yp.count { yp[i] = d[i] * xp[i] }
                }
            }
        }
    }
}

/// A dense symmetric matrix applied by ``Kernels/gemv(_:_:accumulation:)``.
public struct DenseOperator<T: ComputeScalar>: LinearOperator {
    public var matrix: Matrix<T>
    public var accumulation: Accumulation
    public init(_ matrix: Matrix<T>, accumulation: Accumulation = .recursive) {
        precondition(matrix.rows == matrix.cols)
        self.matrix = matrix; self.accumulation = accumulation
    }
    public var dimension: Int { matrix.rows }
    public func apply(_ x: [T], into y: inout [T]) {
        y = Kernels.gemv(matrix, x, accumulation: accumulation)
    }
}
