import Scalars
import LinearAlgebra

// The products of a linear map whose weight W (row-major out×in) lies inside the flat
// parameter vector θ at `offset`, read and written in place where BLAS computes them
// (Float, Double and their duals under `.blas`: the transposition is a flag of
// sgemm/dgemm); other types and policies copy it into a matrix first
// (``Kernels/gemm(_:transposed:_:rows:cols:transposed:accumulation:)``). Used by Llama
// for every product and by the transformer LM under BLAS policies.

/// X·Wᵀ.
func linear<T: ComputeScalar>(_ x: Matrix<T>, _ theta: [T], at offset: Int, out: Int, in: Int, _ acc: Accumulation) -> Matrix<T> {
    theta.withUnsafeBufferPointer {
        Kernels.gemm(x, transposed: false, UnsafeBufferPointer(rebasing: $0[offset..<(offset + out * `in`)]), rows: out, cols: `in`,
                     transposed: true, accumulation: acc)
    }
}

/// dY·W (the input gradient of ``linear(_:_:at:out:in:_:)``).
func linearBackward<T: ComputeScalar>(_ dy: Matrix<T>, _ theta: [T], at offset: Int, out: Int, in: Int, _ acc: Accumulation) -> Matrix<T> {
    theta.withUnsafeBufferPointer {
        Kernels.gemm(dy, transposed: false, UnsafeBufferPointer(rebasing: $0[offset..<(offset + out * `in`)]), rows: out, cols: `in`,
                     transposed: false, accumulation: acc)
    }
}

/// grad[W] = dYᵀ·X, written in place over whatever the gradient held there (Llama writes
/// every weight's gradient once, its linear maps seeing all sequences of the batch as one
/// matrix; the transformer its first sequence's).
func weightGradient<T: ComputeScalar>(_ dy: Matrix<T>, _ x: Matrix<T>, _ grad: inout [T], at offset: Int, _ acc: Accumulation) {
    let n = dy.cols * x.cols
    grad.withUnsafeMutableBufferPointer {
        Kernels.gemm(dy, transposed: true, x, transposed: false, into: UnsafeMutableBufferPointer(rebasing: $0[offset..<(offset + n)]),
                     accumulation: acc)
    }
}
