import Scalars
import RealModule
import COpenBLAS

/// Dense symmetric eigendecomposition `A = V diag(λ) Vᵀ`.
///
/// - `Float`, `Double`: LAPACK `ssyevd` / `dsyevd` (divide and conquer).
/// - any other scalar (MPFloat for reference spectra at small n): Householder
///   tridiagonalization (EISPACK `tred2`) followed by ``TridiagonalEigen`` with the
///   Householder basis as the starting eigenvector matrix. O(n³) in `T`.
public enum SymmetricEigen {
    public struct Result<T: StudyScalar> {
        /// Eigenvalues, ascending.
        public var values: [T]
        /// Eigenvectors as columns (nil when not asked for).
        public var vectors: Matrix<T>?
    }

    public static func decompose<T: StudyScalar>(_ a: Matrix<T>, vectors: Bool = true) throws -> Result<T> {
        precondition(a.rows == a.cols, "SymmetricEigen: matrix is \(a.rows)×\(a.cols)")
        guard a.storage.allSatisfy(\.isFinite) else { throw EigenError.notFinite }
        if T.self == Double.self || T.self == Float.self { return try lapack(a, vectors: vectors) }
        return try generic(a, vectors: vectors)
    }

    static func lapack<T: StudyScalar>(_ a: Matrix<T>, vectors: Bool) throws -> Result<T> {
        let n = Int32(a.rows)
        let jobz = CChar(UInt8(ascii: vectors ? "V" : "N")), uplo = CChar(UInt8(ascii: "U"))
        if T.self == Double.self {
            var m = a.storage.map(\.doubleValue)
            var w = [Double](repeating: 0, count: a.rows)
            let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, jobz, uplo, n, &m, max(n, 1), &w)
            guard info == 0 else { throw EigenError.lapack(routine: "dsyevd", info: Int(info)) }
            return Result(values: w.map { T(roundingDouble: $0) },
                          vectors: vectors ? Matrix(rows: a.rows, cols: a.rows, storage: m.map { T(roundingDouble: $0) }) : nil)
        }
        var m = a.storage.map { Float($0.doubleValue) }
        var w = [Float](repeating: 0, count: a.rows)
        let info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, jobz, uplo, n, &m, max(n, 1), &w)
        guard info == 0 else { throw EigenError.lapack(routine: "ssyevd", info: Int(info)) }
        return Result(values: w.map { T(roundingDouble: Double($0)) },
                      vectors: vectors ? Matrix(rows: a.rows, cols: a.rows, storage: m.map { T(roundingDouble: Double($0)) }) : nil)
    }

    /// Householder reduction to tridiagonal form, `A = Q T Qᵀ`: returns (d, e, Q)
    /// with `e[i]` coupling i and i+1 (EISPACK tred2, 0-based).
    public static func tridiagonalize<T: StudyScalar>(_ m: Matrix<T>) -> (d: [T], e: [T], q: Matrix<T>) {
        let n = m.rows
        var a: [[T]] = (0..<n).map { i in (0..<n).map { m[i, $0] } }
        var d = [T](repeating: 0, count: n), e = [T](repeating: 0, count: n)
        if n == 0 { return ([], [], m) }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let l = i - 1
            var h: T = 0
            if l > 0 {
                var scale: T = 0
                for k in 0...l { scale += a[i][k].magnitude }
                if scale.isZero {
                    e[i] = a[i][l]
                } else {
                    for k in 0...l { a[i][k] /= scale; h += a[i][k] * a[i][k] }
                    var f = a[i][l]
                    let g0 = f >= 0 ? -h.squareRoot() : h.squareRoot()
                    e[i] = scale * g0
                    h -= f * g0
                    a[i][l] = f - g0
                    f = 0
                    for j in 0...l {
                        a[j][i] = a[i][j] / h
                        var g: T = 0
                        for k in 0...j { g += a[j][k] * a[i][k] }
                        if j + 1 <= l { for k in (j + 1)...l { g += a[k][j] * a[i][k] } }
                        e[j] = g / h
                        f += e[j] * a[i][j]
                    }
                    let hh = f / (h + h)
                    for j in 0...l {
                        let fj = a[i][j]
                        let gj = e[j] - hh * fj
                        e[j] = gj
                        for k in 0...j { a[j][k] -= fj * e[k] + gj * a[i][k] }
                    }
                }
            } else {
                e[i] = a[i][l]
            }
            d[i] = h
        }
        d[0] = 0; e[0] = 0
        for i in 0..<n {
            let l = i - 1
            if !d[i].isZero && l >= 0 {
                for j in 0...l {
                    var g: T = 0
                    for k in 0...l { g += a[i][k] * a[k][j] }
                    for k in 0...l { a[k][j] -= g * a[k][i] }
                }
            }
            d[i] = a[i][i]
            a[i][i] = 1
            if l >= 0 { for j in 0...l { a[j][i] = 0; a[i][j] = 0 } }
        }
        let q = Matrix(rows: n, cols: n, storage: a.flatMap { $0 })
        return (d, Array(e.dropFirst()), q)
    }

    static func generic<T: StudyScalar>(_ m: Matrix<T>, vectors: Bool) throws -> Result<T> {
        let n = m.rows
        let (d, e, q) = tridiagonalize(m)
        var z: [[T]] = vectors ? (0..<n).map { i in (0..<n).map { q[i, $0] } } : []
        let (values, _) = try TridiagonalEigen.ql(d, e, &z)
        let order = values.indices.sorted { values[$0] < values[$1] }
        var v: Matrix<T>? = nil
        if vectors {
            var mm = Matrix<T>(rows: n, cols: n)
            for i in 0..<n { for (jj, j) in order.enumerated() { mm[i, jj] = z[i][j] } }
            v = mm
        }
        return Result(values: order.map { values[$0] }, vectors: v)
    }
}
