import Testing
import RealModule
import COpenBLAS
@testable import LinearAlgebra
import Scalars

/// LAPACK dstev (symmetric tridiagonal, QL/QR) as the fp64 reference.
func lapackTridiagonal(_ d: [Double], _ e: [Double]) -> [Double] {
    var dd = d, ee = e + [0]
    let n = d.count
    var z = [Double](repeating: 0, count: n * n)
    let info = LAPACKE_dstev(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "N")), Int32(n), &dd, &ee, &z, Int32(n))
    precondition(info == 0, "dstev info \(info)")
    return dd
}

@Suite struct TridiagonalSolver {
    static func randomTridiagonal(_ n: Int, seed: UInt64) -> ([Double], [Double]) {
        var g = SplitMix64(seed: seed)
        return ((0..<n).map { _ in g.nextUniform() * 4 - 2 }, (0..<(n - 1)).map { _ in g.nextUniform() + 0.01 })
    }

    @Test func mpfr512AgreesWithLapackToFp64Accuracy() throws {
        for (n, seed) in [(1, 1), (2, 2), (10, 3), (60, 4), (200, 5)] as [(Int, UInt64)] {
            let (d, e) = Self.randomTridiagonal(n, seed: seed)
            let ref = lapackTridiagonal(d, e)
            let r = try TridiagonalEigen.solve(diagonal: d.map { MPFloat<512>($0) }, offDiagonal: e.map { MPFloat<512>($0) })
            let norm = ref.map(abs).max()!
            for (a, b) in zip(r.values, ref) { #expect(abs(a.doubleValue - b) <= 8 * Double(n) * 0x1p-53 * norm, "n=\(n)") }
        }
    }

    @Test func mpfr512AgreesWithMpfr1024FarBeyondFp64() throws {
        let (d, e) = Self.randomTridiagonal(40, seed: 9)
        let r512 = try TridiagonalEigen.solve(diagonal: d.map { MPFloat<512>($0) }, offDiagonal: e.map { MPFloat<512>($0) })
        let r1024 = try TridiagonalEigen.solve(diagonal: d.map { MPFloat<1024>($0) }, offDiagonal: e.map { MPFloat<1024>($0) })
        for (a, b) in zip(r512.values, r1024.values) {
            let diff = (MPFloat<1024>(a) - b).magnitude
            #expect(diff < MPFloat<1024>(sign: .plus, exponent: -490, significand: 1), "agreement far below fp64: \(diff.doubleValue)")
        }
    }

    @Test func eigenvectorRowsAreThoseOfTheFullMatrix() throws {
        // Closed form: the path graph tridiag(1, 0, 1) of size n has λ_k = 2cos(kπ/(n+1)),
        // with first components √(2/(n+1)) sin(kπ/(n+1)).
        let n = 30
        let r = try TridiagonalEigen.solve(diagonal: [Double](repeating: 0, count: n),
                                           offDiagonal: [Double](repeating: 1, count: n - 1), rows: [0, n - 1])
        for (j, lam) in r.values.enumerated() {
            let k = Double(n - j)
            #expect(abs(lam - 2 * Double.cos(k * .pi / Double(n + 1))) < 1e-13)
            let angle: Double = k * .pi / Double(n + 1)
            let first: Double = (2.0 / Double(n + 1)).squareRoot() * Double.sin(angle)
            #expect(abs(abs(r.components[0][j]) - abs(first)) < 1e-13)
            #expect(abs(abs(r.components[1][j]) - abs(first)) < 1e-13, "symmetric: last = ± first")
        }
        let full = try TridiagonalEigen.solve(diagonal: [Double](repeating: 0, count: n),
                                              offDiagonal: [Double](repeating: 1, count: n - 1), rows: nil)
        #expect(full.components.count == n && full.components[0] == r.components[0])
        #expect(throws: EigenError.notFinite) { try TridiagonalEigen.solve(diagonal: [1, .nan], offDiagonal: [1]) }
    }
}

@Suite struct DenseSolvers {
    static func randomSymmetric(_ n: Int, seed: UInt64) -> Matrix<Double> {
        var g = SplitMix64(seed: seed)
        var a = Matrix<Double>(rows: n, cols: n)
        for i in 0..<n { for j in 0...i { let v = g.nextUniform() - 0.5; a[i, j] = v; a[j, i] = v } }
        return a
    }

    @Test func genericAgreesWithLapack() throws {
        for n in [1, 2, 5, 40] {
            let a = Self.randomSymmetric(n, seed: UInt64(n))
            let lap = try SymmetricEigen.decompose(a)
            let gen = try SymmetricEigen.generic(a, vectors: true)
            for (x, y) in zip(lap.values, gen.values) { #expect(abs(x - y) <= 1e-13 * Double(n)) }
            // A v = λ v for the generic vectors, and orthonormality.
            let v = try #require(gen.vectors)
            let av = Kernels.gemm(a, v)
            for j in 0..<n {
                for i in 0..<n { #expect(abs(av[i, j] - gen.values[j] * v[i, j]) < 1e-12) }
            }
            let vtv = Kernels.gemm(v.transposed(), v)
            for i in 0..<n { for j in 0..<n { #expect(abs(vtv[i, j] - (i == j ? 1 : 0)) < 1e-13) } }
        }
    }

    @Test func mpfrDenseSolverBeyondFp64() throws {
        let a = Self.randomSymmetric(12, seed: 77)
        let lap = try SymmetricEigen.decompose(a, vectors: false)
        let mp = try SymmetricEigen.decompose(a.converted(to: MPFloat<256>.self), vectors: false)
        for (x, y) in zip(lap.values, mp.values) { #expect(abs(x - y.doubleValue) < 1e-14) }
        // Trace and Frobenius norm are preserved to MPFR precision.
        var tr = MPFloat<256>(0)
        for i in 0..<12 { tr += MPFloat<256>(a[i, i]) }
        let sum = mp.values.reduce(MPFloat<256>(0), +)
        #expect((tr - sum).magnitude < MPFloat<256>(sign: .plus, exponent: -240, significand: 1))
        let f = try SymmetricEigen.decompose(a.converted(to: Float.self))
        for (x, y) in zip(lap.values, f.values) { #expect(abs(x - Double(y)) < 1e-5) }
    }
}
