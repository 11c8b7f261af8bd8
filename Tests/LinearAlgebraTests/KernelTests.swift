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

/// gemm with transposed operands. Under the ordered policies it is gemm on transposed
/// copies, bit for bit. Under `.blas` the transposition is a flag of sgemm/dgemm: the
/// bits equal those of the copies for OpenBLAS's Prescott, Haswell and Zen kernel sets
/// but not for SkylakeX and Cooperlake (their small-matrix kernels sum in another order
/// per layout; seen on this machine with OPENBLAS_CORETYPE), so the test checks the
/// product against the fp64 / recursive product of the copies within 2γ_k Σ|a||b|,
/// which a wrong transposition exceeds by orders of magnitude.
@Suite struct TransposedGemmTests {
    static func operands<T: ComputeScalar>(_: T.Type, m: Int, k: Int, n: Int, ta: Bool, tb: Bool, seed: UInt64) -> (Matrix<T>, Matrix<T>) {
        var g = SplitMix64(seed: seed)
        func random(_ r: Int, _ c: Int) -> Matrix<T> {
            Matrix(rows: r, cols: c, storage: (0..<(r * c)).map { _ in T(roundingDouble: g.nextGaussian()) })
        }
        return (ta ? random(k, m) : random(m, k), tb ? random(n, k) : random(k, n))
    }

    static let combos = [(false, false), (false, true), (true, false), (true, true)]

    @Test func orderedPoliciesEqualTransposedCopies() {
        for (ta, tb) in Self.combos {
            let (a, b) = Self.operands(BFloat16.self, m: 17, k: 33, n: 9, ta: ta, tb: tb, seed: 3)
            #expect(Kernels.gemm(a, transposed: ta, b, transposed: tb, accumulation: .recursive).storage
                    == Kernels.gemm(ta ? a.transposed() : a, tb ? b.transposed() : b, accumulation: .recursive).storage)
            let (c, d) = Self.operands(Float.self, m: 17, k: 33, n: 9, ta: ta, tb: tb, seed: 4)
            #expect(Kernels.gemm(c, transposed: ta, d, transposed: tb, accumulation: .pairwise).storage
                    == Kernels.gemm(ta ? c.transposed() : c, tb ? d.transposed() : d, accumulation: .pairwise).storage)
        }
    }

    static func blasError<T: ComputeScalar>(_: T.Type, m: Int, k: Int, n: Int, ta: Bool, tb: Bool, u: Double) -> Double {
        let (a, b) = operands(T.self, m: m, k: k, n: n, ta: ta, tb: tb, seed: 7)
        let got = Kernels.gemm(a, transposed: ta, b, transposed: tb, accumulation: .blas)
        let ad = Matrix(rows: a.rows, cols: a.cols, storage: a.storage.map(\.doubleValue))
        let bd = Matrix(rows: b.rows, cols: b.cols, storage: b.storage.map(\.doubleValue))
        let (ac, bc) = (ta ? ad.transposed() : ad, tb ? bd.transposed() : bd)
        let ref = Kernels.gemm(ac, bc, accumulation: .recursive)
        let mag = Kernels.gemm(Matrix(rows: ac.rows, cols: ac.cols, storage: ac.storage.map(\.magnitude)),
                               Matrix(rows: bc.rows, cols: bc.cols, storage: bc.storage.map(\.magnitude)), accumulation: .recursive)
        var worst = 0.0                                   // error in units of γ_k Σ|a||b|
        for i in ref.storage.indices {
            worst = max(worst, abs(got.storage[i].doubleValue - ref.storage[i]) / (Double(k) * u * mag.storage[i]))
        }
        return worst
    }

    @Test func blasComputesTheTransposedProduct() {
        for (m, k, n) in [(64, 300, 48), (48, 64, 10), (10, 64, 48), (1, 1, 1), (37, 129, 65), (3, 1000, 2)] {
            for (ta, tb) in Self.combos {
                let ef = Self.blasError(Float.self, m: m, k: k, n: n, ta: ta, tb: tb, u: 0x1p-24)
                let ed = Self.blasError(Double.self, m: m, k: k, n: n, ta: ta, tb: tb, u: 0x1p-53)
                #expect(ef <= 1.1 && ed <= 2.1, "\(m)×\(k)×\(n) ta=\(ta) tb=\(tb): \(ef), \(ed) γ_k")
            }
        }
    }

    /// Dual numbers under `.blas` with transposed operands: the value is the Float
    /// product op(A)op(B), the tangent fl(op(A')op(B) + op(A)op(B')), each product the
    /// Float transposed gemm, bit for bit (the same sgemm calls, whatever the kernel set).
    /// Also with all-zero tangents on either side (some −0), where the kernel skips the
    /// product that is exactly +0: the same bits as computing it.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func dualBLASWithTransposedOperands(_ zeroTangent: (Bool, Bool)) {
        for (ta, tb) in Self.combos {
            var (av, bv) = Self.operands(Float.self, m: 37, k: 129, n: 65, ta: ta, tb: tb, seed: 11)
            var (at, bt) = Self.operands(Float.self, m: 37, k: 129, n: 65, ta: ta, tb: tb, seed: 12)
            if zeroTangent.0 { at.storage = at.storage.indices.map { $0 % 7 == 0 ? -0.0 : 0 } }
            if zeroTangent.1 { bt.storage = bt.storage.indices.map { $0 % 5 == 0 ? -0.0 : 0 } }
            if zeroTangent.0 && !zeroTangent.1 { bv.storage[3] = .infinity }    // 0·∞: the zero product is NaN, not skipped
            if zeroTangent.1 && !zeroTangent.0 { av.storage[5] = .nan }
            let a = Matrix(rows: av.rows, cols: av.cols, storage: zip(av.storage, at.storage).map { Dual($0, $1) })
            let b = Matrix(rows: bv.rows, cols: bv.cols, storage: zip(bv.storage, bt.storage).map { Dual($0, $1) })
            let c = Kernels.gemm(a, transposed: ta, b, transposed: tb, accumulation: .blas)
            let value = Kernels.gemm(av, transposed: ta, bv, transposed: tb, accumulation: .blas)
            let t1 = Kernels.gemm(at, transposed: ta, bv, transposed: tb, accumulation: .blas)
            let t2 = Kernels.gemm(av, transposed: ta, bt, transposed: tb, accumulation: .blas)
            #expect(c.rows == 37 && c.cols == 65)
            #expect(c.storage.map(\.value.bitPattern) == value.storage.map(\.bitPattern))
            #expect(c.storage.map(\.tangent.bitPattern) == zip(t1.storage, t2.storage).map { ($0 + $1).bitPattern })
            #expect(zeroTangent.0 == zeroTangent.1 || c.storage.contains { $0.tangent.isNaN })
        }
    }
}

/// `recursive` dot products and matrix products of `MPFloat` take CKernels' limb loop
/// (`ComputeScalar.recursiveDot`); their values must be those of the operator loop
/// `s += x·y` from +0, which calls MPFR once per operation.
@Suite struct MPFloatRecursiveKernels {
    static func operatorDot<let p: Int>(_ x: ArraySlice<MPFloat<p>>, _ y: ArraySlice<MPFloat<p>>) -> MPFloat<p> {
        var s = MPFloat<p>.zero
        for (a, b) in zip(x, y) { s += a * b }
        return s
    }

    @Test func dotAndGemmMatchTheOperatorLoop() {
        typealias M = MPFloat<256>
        var g = SplitMix64(seed: 21)
        func draw() -> M { M(g.nextUniform() * 2 - 1) / M(3) + M(g.nextUniform()) * M(sign: .plus, exponent: -80, significand: 1) }
        let x = (0..<300).map { _ in draw() }, y = (0..<300).map { _ in draw() }
        let d = Kernels.dot(x, y, accumulation: .recursive)
        #expect(d == Self.operatorDot(x[...], y[...]))
        #expect(x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { M.recursiveDot(xp, $0) } } == d)  // the route is taken
        #expect(Kernels.dot(x, y, accumulation: .blas) == d)          // .blas falls back to recursive
        let a = Matrix(rows: 7, cols: 40, storage: (0..<280).map { _ in draw() })
        let b = Matrix(rows: 40, cols: 5, storage: (0..<200).map { _ in draw() })
        let c = Kernels.gemm(a, b, accumulation: .recursive)
        var same = true
        for i in 0..<7 {
            for j in 0..<5 {
                let col = (0..<40).map { b.storage[$0 * 5 + j] }
                same = same && c.storage[i * 5 + j] == Self.operatorDot(a.storage[(i * 40)..<((i + 1) * 40)], col[...])
            }
        }
        #expect(same)
        // Dual<MPFloat<256>>: the dual limb loop, the same bits as Dual's operators
        let dx = zip(x, y.reversed()).map { Dual($0, $1) }, dy = zip(y, x.reversed()).map { Dual($0, $1) }
        var ref = Dual<M>(M(0), M(0))
        for i in dx.indices { ref += dx[i] * dy[i] }
        let dd = Kernels.dot(dx, dy, accumulation: .recursive)
        #expect(dd.value == ref.value && dd.tangent == ref.tangent)
        #expect(dx.withUnsafeBufferPointer { a in dy.withUnsafeBufferPointer { Dual<M>.recursiveDot(a, $0) } } != nil)
    }
}

/// The BLAS customization point: which types conform, and that a `.blas` product of a
/// conforming type is the library's own call on the same buffers (bit for bit), while
/// an emulated format inside binary32 runs sgemm on widened copies.
@Suite struct BLASScalarTests {
    func isBLAS<T: ComputeScalar>(_: T.Type) -> Bool { T.self is any BLASScalar.Type }
    func isBLASDual<T: ComputeScalar>(_: T.Type) -> Bool { T.self is any BLASDualScalar.Type }

    @Test func conformances() {
        #expect(isBLAS(Float.self) && isBLAS(Double.self) && !isBLAS(BFloat16.self) && !isBLAS(MPFloat<256>.self))
        #expect(isBLASDual(Dual<Float>.self) && isBLASDual(Dual<Double>.self) && !isBLASDual(Dual<BFloat16>.self) && !isBLASDual(Float.self))
    }

    @Test func blasProductsAreTheLibrarysCalls() {
        var g = SplitMix64(seed: 3)
        let (m, k, n) = (7, 13, 5)
        let a = (0..<(m * k)).map { _ in Float(g.nextUniform() - 0.5) }, b = (0..<(k * n)).map { _ in Float(g.nextUniform() - 0.5) }
        var c = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        let viaKernels = Kernels.gemm(Matrix(rows: m, cols: k, storage: a), Matrix(rows: k, cols: n, storage: b), accumulation: .blas)
        #expect(viaKernels.storage.map(\.bitPattern) == c.map(\.bitPattern))
        #expect(Kernels.dot(a, a, accumulation: .blas).bitPattern == cblas_sdot(Int32(a.count), a, 1, a, 1).bitPattern)
        let y = Kernels.gemv(Matrix(rows: m, cols: k, storage: a), Array(b[0..<k]), accumulation: .blas)
        var yc = [Float](repeating: 0, count: m)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, a, Int32(k), Array(b[0..<k]), 1, 0, &yc, 1)
        #expect(y.map(\.bitPattern) == yc.map(\.bitPattern))
        // No columns: zeros (BLAS returns without writing y), in both BLAS types.
        #expect(Kernels.gemv(Matrix<Float>(rows: 3, cols: 0), [], accumulation: .blas) == [0, 0, 0])
        #expect(Kernels.gemv(Matrix<Double>(rows: 2, cols: 0), [], accumulation: .blas) == [0, 0])
        // bf16 (not a BLASScalar, exact in binary32): sgemm of the widened values, rounded once.
        let ab = a.map { BFloat16($0) }, bb = b.map { BFloat16($0) }
        var cw = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, ab.map { Float($0) }, Int32(k),
                    bb.map { Float($0) }, Int32(n), 0, &cw, Int32(n))
        let cb = Kernels.gemm(Matrix(rows: m, cols: k, storage: ab), Matrix(rows: k, cols: n, storage: bb), accumulation: .blas)
        #expect(cb.storage.map(\.bitPattern) == cw.map { BFloat16($0).bitPattern })
    }
}
