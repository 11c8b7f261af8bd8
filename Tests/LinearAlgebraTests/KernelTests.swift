import Testing
import RealModule
import COpenBLAS
@testable import LinearAlgebra
import Scalars

@Suite struct AccumulationPolicies {
    /// Each policy against an exact reference (MPFloat<1024> dot of the same
    /// values, exact for these inputs), with the error bound that defines it.
    @Test func dotErrorBoundsPerPolicy() {
        var g = SplitMix64(seed: 1)
        let n = 4096
        let x = (0..<n).map { _ in BFloat16(g.nextUniform() * 2 - 1) }
        let y = (0..<n).map { _ in BFloat16(g.nextUniform() * 2 - 1) }
        var exact = MPFloat<1024>(0)
        var absSum = 0.0
        for i in 0..<n {
            exact += MPFloat<1024>(x[i].doubleValue) * MPFloat<1024>(y[i].doubleValue)
            absSum += abs(x[i].doubleValue * y[i].doubleValue)
        }
        let ex = exact.doubleValue
        func err(_ a: Accumulation) -> Double { abs(Kernels.dot(x, y, accumulation: a).doubleValue - ex) }
        let u = 0x1p-8, u32 = 0x1p-24
        // Higham: recursive ≤ γ_n Σ|xy| (n u), pairwise ≤ γ_{log n+1}, compensated ≤ 2u|s| + O(n u²)Σ.
        #expect(err(.recursive) <= Double(n) * u * absSum)
        #expect(err(.pairwise) <= (Double.log2(Double(n)) + 1) * u * absSum * 1.01)
        #expect(err(.compensated) <= 2 * u * abs(ex) + 4 * Double(n) * u * u * absSum + u * abs(ex))
        // Widened: exact products, fp32 sums, one final bf16 rounding.
        #expect(err(.widened(.fp32)) <= u * abs(ex) + Double(n) * u32 * absSum)
        #expect(err(.widened(.fp64)) <= u * abs(ex) * 1.0000001)
        #expect(err(.blas) <= u * abs(ex) + Double(n) * u32 * absSum)
        // The policies genuinely differ here: recursive bf16 loses far more than widened.
        #expect(err(.recursive) > 10 * err(.widened(.fp64)))
    }

    @Test func blasPathsAgreeWithGenericInDouble() {
        var g = SplitMix64(seed: 2)
        let a = Matrix<Double>(rows: 7, cols: 5, storage: (0..<35).map { _ in g.nextUniform() - 0.5 })
        let b = Matrix<Double>(rows: 5, cols: 3, storage: (0..<15).map { _ in g.nextUniform() - 0.5 })
        let x = (0..<5).map { _ in g.nextUniform() }
        let c1 = Kernels.gemm(a, b, accumulation: .blas), c2 = Kernels.gemm(a, b, accumulation: .widened(.fp64))
        for (p, q) in zip(c1.storage, c2.storage) { #expect(abs(p - q) <= 1e-15) }
        let y1 = Kernels.gemv(a, x, accumulation: .blas), y2 = Kernels.gemv(a, x)
        for (p, q) in zip(y1, y2) { #expect(abs(p - q) <= 1e-15) }
        #expect(abs(Kernels.dot(x, x, accumulation: .blas) - Kernels.dot(x, x)) <= 1e-15)
    }

    /// The tensor-core model: bf16 inputs, exact widening, sgemm, one rounding.
    @Test func tensorCoreGemmIsOneRoundingOfTheFp32Result() {
        var g = SplitMix64(seed: 3)
        let a = Matrix<BFloat16>(rows: 6, cols: 40, storage: (0..<240).map { _ in BFloat16(g.nextUniform() - 0.5) })
        let b = Matrix<BFloat16>(rows: 40, cols: 4, storage: (0..<160).map { _ in BFloat16(g.nextUniform() - 0.5) })
        let c = Kernels.gemm(a, b, accumulation: .blas)
        let cf = Kernels.gemm(a.converted(to: Float.self), b.converted(to: Float.self), accumulation: .blas)
        for (p, q) in zip(c.storage, cf.storage) { #expect(p == BFloat16(q), "one rounding of the fp32 output") }
        // and within fp32 rounding of the exact product
        let cd = Kernels.gemm(a.converted(to: Double.self), b.converted(to: Double.self), accumulation: .widened(.fp64))
        for (p, q) in zip(cf.storage, cd.storage) { #expect(abs(Double(p) - q) <= 40 * 0x1p-24 * 10) }
    }

    @Test func level1() {
        var y: [Float] = [1, 2, 3]
        Kernels.axpy(2, [1, 1, 1], &y)
        #expect(y == [3, 4, 5])
        Kernels.scal(0.5, &y)
        #expect(y == [1.5, 2, 2.5])
        #expect(Kernels.nrm2([3.0, 4.0]) == 5)
        #expect(Accumulation(name: "fp32") == .widened(.fp32) && Accumulation(name: "sideways") == nil)
    }
}

/// axpy on Float and Double runs the C loops (vector FMA when the CPU has it): the
/// same bits as `addingProduct` per element, over lengths that exercise every tail,
/// signed zeros, subnormals, infinities, NaN, and cancellation.
@Test func fusedAxpyMatchesAddingProduct() {
    var g = SplitMix64(seed: 71)
    func value(_ k: UInt64) -> Double {
        switch k % 11 {
        case 0: return 0
        case 1: return -0.0
        case 2: return .infinity
        case 3: return Double.leastNonzeroMagnitude * Double(k % 5)
        case 4: return 0x1p-1070
        default: return (g.nextUniform() - 0.5) * Double.pow(2, Double(Int(g.next() % 40) - 20))
        }
    }
    for n in [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 1000] {
        let a = g.nextUniform() - 0.5
        let x = (0..<n).map { _ in value(g.next()) }
        var y = (0..<n).map { i in i % 13 == 0 ? -a * x[i] : value(g.next()) }     // some exact cancellations
        if n > 5 { y[5] = .nan }
        let want = zip(x, y).map { $1.addingProduct(a, $0) }
        Kernels.axpy(a, x, &y)
        #expect(zip(y, want).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "Double n=\(n)")
        let af = Float(a), xf = x.map { Float($0) }
        var yf = (0..<n).map { i in i % 13 == 0 ? -af * xf[i] : Float(value(g.next())) }
        let wantF = zip(xf, yf).map { $1.addingProduct(af, $0) }
        Kernels.axpy(af, xf, &yf)
        #expect(zip(yf, wantF).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "Float n=\(n)")
    }
}
