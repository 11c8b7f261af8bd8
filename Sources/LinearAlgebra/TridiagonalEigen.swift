import Scalars
import RealModule

public enum EigenError: Error, CustomStringConvertible, Equatable {
    case noConvergence(index: Int, iterations: Int)
    case lapack(routine: String, info: Int)
    case notFinite
    public var description: String {
        switch self {
        case .noConvergence(let i, let it): return "tridiagonal QL did not converge for eigenvalue \(i) after \(it) iterations"
        case .lapack(let r, let info): return "LAPACK \(r) failed with info=\(info)"
        case .notFinite: return "eigenproblem input contains NaN or infinity"
        }
    }
}

/// Eigenvalues (and selected eigenvector components) of a symmetric tridiagonal
/// matrix, by the implicit QL algorithm with Wilkinson-type shifts (EISPACK
/// `tql2`; Numerical Recipes `tqli`), generic over the scalar so that a Lanczos
/// tridiagonal can be solved in MPFR.
///
/// The eigenvector matrix `Z` is accumulated only on the rows asked for: every
/// plane rotation acts on two columns of `Z` row by row, so tracking row 0 alone
/// (the SLQ weights `τⱼ = Z₀ⱼ²`) or rows 0 and n−1 (Ritz residual estimates
/// `βₖ|Z_{k−1,j}|`) costs O(n) per sweep instead of O(n²).
///
/// Deflation: an off-diagonal `eᵢ` is treated as zero when
/// `|eᵢ| ≤ ε (|dᵢ| + |dᵢ₊₁|)` with `ε = T.ulpOfOne`, so the eigenvalues carry a
/// backward error of a few ulps of ‖T‖ in the working precision of `T`.
public enum TridiagonalEigen {
    public struct Result<T: ComputeScalar> {
        /// Eigenvalues, ascending.
        public var values: [T]
        @inlinable init(values: [T], components: [[T]], rows: [Int]) { self.values = values; self.components = components; self.rows = rows }
        /// Rows of the eigenvector matrix: `components[r][j]` is component
        /// `rows[r]` of the unit eigenvector of `values[j]`.
        public var components: [[T]]
        public var rows: [Int]
    }

    /// - Parameters:
    ///   - d: the diagonal (n).
    ///   - e: the off-diagonal (n − 1), `e[i]` coupling `i` and `i + 1`.
    ///   - rows: rows of the eigenvector matrix to compute (`nil`: all of them).
    ///   - maxIterations: QL sweeps allowed per eigenvalue.
    @inlinable
    public static func solve<T: ComputeScalar>(diagonal d: [T], offDiagonal e: [T], rows: [Int]? = [],
                                             maxIterations: Int = 60) throws -> Result<T> {
        let n = d.count
        precondition(e.count == max(n - 1, 0), "offDiagonal must have n-1 = \(n - 1) elements, has \(e.count)")
        guard d.allSatisfy(\.isFinite), e.allSatisfy(\.isFinite) else { throw EigenError.notFinite }
        let tracked = rows ?? Array(0..<n)
        var z = [T](repeating: .zero, count: tracked.count * n)
        for (k, r) in tracked.enumerated() { z[k * n + r] = 1 }
        let (values, _) = try ql(d, e, &z, rowCount: tracked.count)
        let order = values.indices.sorted { values[$0] < values[$1] }
        let comps = (0..<tracked.count).map { k in order.map { z[k * n + $0] } }
        return Result(values: order.map { values[$0] }, components: comps, rows: tracked)
    }

    /// QL iterations on (d, e), applying the rotations to `rowCount` rows stored
    /// flat in `z` (row k is `z[k·n ..< (k+1)·n]`, columns indexed like d).
    /// Returns the unsorted eigenvalues.
    @inlinable
    static func ql<T: ComputeScalar>(_ d0: [T], _ e0: [T], _ z: inout [T], rowCount: Int, maxIterations: Int = 60) throws -> ([T], Int) {
        let n = d0.count
        var d = d0
        var e = e0 + [T.zero]                       // e[n−1] = 0
        if n == 0 { return ([], 0) }
        let eps = T.ulpOfOne
        var sweeps = 0
        for l in 0..<n {
            var iter = 0
            while true {
                var m = l
                while m < n - 1 {
                    let dd = d[m].magnitude + d[m + 1].magnitude
                    if e[m].magnitude <= eps * dd { break }
                    m += 1
                }
                if m == l { break }
                if iter == maxIterations { throw EigenError.noConvergence(index: l, iterations: iter) }
                iter += 1; sweeps += 1
                var g = (d[l + 1] - d[l]) / (2 * e[l])
                var r = T.hypot(g, 1)
                g = d[m] - d[l] + e[l] / (g + (g.sign == .minus ? -r : r))
                var s: T = 1, c: T = 1, p: T = 0
                var i = m - 1
                var underflow = false
                while i >= l {
                    let f = s * e[i], b = c * e[i]
                    r = T.hypot(f, g)
                    e[i + 1] = r
                    if r.isZero {
                        d[i + 1] -= p
                        e[m] = 0
                        underflow = true
                        break
                    }
                    s = f / r; c = g / r
                    g = d[i + 1] - p
                    r = (d[i] - g) * s + 2 * c * b
                    p = s * r
                    d[i + 1] = g + p
                    g = c * r - b
                    z.withUnsafeMutableBufferPointer { zp in
                        for k in 0..<rowCount {
                            let base = k * n
                            let fz = zp[base + i + 1]
                            zp[base + i + 1] = s * zp[base + i] + c * fz
                            zp[base + i] = c * zp[base + i] - s * fz
                        }
                    }
                    i -= 1
                }
                if underflow { continue }
                d[l] -= p; e[l] = g; e[m] = 0
            }
        }
        return (d, sweeps)
    }
}
