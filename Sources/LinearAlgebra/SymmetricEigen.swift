import Scalars
import RealModule

/// Dense symmetric eigendecomposition `A = V diag(λ) Vᵀ`.
///
/// - `Float`, `Double`: LAPACK `ssyevd` / `dsyevd` (divide and conquer).
/// - any other scalar (MPFloat for reference spectra at small n): Householder
///   tridiagonalization (EISPACK `tred2`) followed by ``TridiagonalEigen`` with the
///   Householder basis as the starting eigenvector matrix. O(n³) in `T`.
public enum SymmetricEigen {
    public struct Result<T: ComputeScalar> {
        /// Eigenvalues, ascending.
        public var values: [T]
        @inlinable init(values: [T], vectors: Matrix<T>?) { self.values = values; self.vectors = vectors }
        /// Eigenvectors as columns (nil when not asked for).
        public var vectors: Matrix<T>?
    }

    @inlinable
    public static func decompose<T: ComputeScalar>(_ a: Matrix<T>, vectors: Bool = true) throws -> Result<T> {
        precondition(a.rows == a.cols, "SymmetricEigen: matrix is \(a.rows)×\(a.cols)")
        guard a.storage.allSatisfy(\.isFinite) else { throw EigenError.notFinite }
        if let B = T.self as? any BLASScalar.Type { return try lapack(B, a, vectors: vectors) }
        return try generic(a, vectors: vectors)
    }

    /// LAPACK's divide and conquer (``BLASScalar/symmetricEigen(_:vectors:_:_:)``), `B` being `T`.
    @usableFromInline
    static func lapack<T: ComputeScalar, B: BLASScalar>(_: B.Type, _ a: Matrix<T>, vectors: Bool) throws -> Result<T> {
        var m = unsafeBitCast(a.storage, to: [B].self)
        var w = [B](repeating: .zero, count: a.rows)
        let (routine, info) = B.symmetricEigen(a.rows, vectors: vectors, &m, &w)
        guard info == 0 else { throw EigenError.lapack(routine: routine, info: info) }
        return Result(values: unsafeBitCast(w, to: [T].self),
                      vectors: vectors ? Matrix(rows: a.rows, cols: a.rows, storage: unsafeBitCast(m, to: [T].self)) : nil)
    }

    /// Householder reduction to tridiagonal form, `A = Q T Qᵀ`: returns (d, e, Q)
    /// with `e[i]` coupling i and i+1 (EISPACK tred2, 0-based, on flat row-major
    /// storage).
    @inlinable
    public static func tridiagonalize<T: ComputeScalar>(_ m: Matrix<T>) -> (d: [T], e: [T], q: Matrix<T>) {
        let n = m.rows
        var d = [T](repeating: 0, count: n), e = [T](repeating: 0, count: n)
        if n == 0 { return ([], [], m) }
        var store = m.storage
        store.withUnsafeMutableBufferPointer { a in
            @inline(__always) func ix(_ i: Int, _ j: Int) -> Int { i * n + j }
            for i in stride(from: n - 1, to: 0, by: -1) {
                let l = i - 1
                var h: T = 0
                if l > 0 {
                    var scale: T = 0
                    for k in 0...l { scale += a[ix(i, k)].magnitude }
                    if scale.isZero {
                        e[i] = a[ix(i, l)]
                    } else {
                        for k in 0...l { a[ix(i, k)] /= scale; h += a[ix(i, k)] * a[ix(i, k)] }
                        var f = a[ix(i, l)]
                        let g0 = f >= 0 ? -h.squareRoot() : h.squareRoot()
                        e[i] = scale * g0
                        h -= f * g0
                        a[ix(i, l)] = f - g0
                        f = 0
                        for j in 0...l {
                            a[ix(j, i)] = a[ix(i, j)] / h
                            var g: T = 0
                            for k in 0...j { g += a[ix(j, k)] * a[ix(i, k)] }
                            if j + 1 <= l { for k in (j + 1)...l { g += a[ix(k, j)] * a[ix(i, k)] } }
                            e[j] = g / h
                            f += e[j] * a[ix(i, j)]
                        }
                        let hh = f / (h + h)
                        for j in 0...l {
                            let fj = a[ix(i, j)]
                            let gj = e[j] - hh * fj
                            e[j] = gj
                            for k in 0...j { a[ix(j, k)] -= fj * e[k] + gj * a[ix(i, k)] }
                        }
                    }
                } else {
                    e[i] = a[ix(i, l)]
                }
                d[i] = h
            }
            d[0] = 0; e[0] = 0
            for i in 0..<n {
                let l = i - 1
                if !d[i].isZero && l >= 0 {
                    for j in 0...l {
                        var g: T = 0
                        for k in 0...l { g += a[ix(i, k)] * a[ix(k, j)] }
                        for k in 0...l { a[ix(k, j)] -= g * a[ix(k, i)] }
                    }
                }
                d[i] = a[ix(i, i)]
                a[ix(i, i)] = 1
                if l >= 0 { for j in 0...l { a[ix(j, i)] = 0; a[ix(i, j)] = 0 } }
            }
        }
        return (d, Array(e.dropFirst()), Matrix(rows: n, cols: n, storage: store))
    }

    /// The generic path (any scalar), also callable for Float/Double to compare with LAPACK.
    @inlinable
    public static func generic<T: ComputeScalar>(_ m: Matrix<T>, vectors: Bool) throws -> Result<T> {
        let n = m.rows
        let (d, e, q) = tridiagonalize(m)
        var z = vectors ? q.storage : []
        let (values, _) = try TridiagonalEigen.ql(d, e, &z, rowCount: vectors ? n : 0)
        let order = values.indices.sorted { values[$0] < values[$1] }
        var v: Matrix<T>? = nil
        if vectors {
            var mm = Matrix<T>(rows: n, cols: n)
            for i in 0..<n { for (jj, j) in order.enumerated() { mm[i, jj] = z[i * n + j] } }
            v = mm
        }
        return Result(values: order.map { values[$0] }, vectors: v)
    }
}
