import Scalars
import RealModule
import CKernels

/// Matrix products that keep the summation order of the dot-product definition
/// (`c[i,j] = ((a[i,0]·b[0,j] + a[i,1]·b[1,j]) + …)`, each product and each sum
/// rounded separately in the accumulation format, starting from +0) but run in SIMD
/// lanes: each lane accumulates a different output `c[i,j]`, so vectorizing changes
/// nothing in any output's arithmetic. Results are therefore bit-identical to
/// ``Kernels/dot(_:_:accumulation:)`` per output, which the tests check, at close to
/// the speed of a vectorized kernel (4 rows × 8 or 4 columns per block, `b` read
/// row-wise so every load is contiguous). Swift does not contract `s + x * y` into a
/// fused multiply-add, so the two roundings of the definition are kept.
///
/// Used for `recursive` accumulation in Float, Double and `Dual<Double>` (the fp64
/// exact HVP's products), and for accumulation
/// widened to fp32 or fp64 of every format inside it (its products are then exact
/// in the wide format or rounded there exactly as the scalar loop rounds them).
@usableFromInline
enum OrderedGemm {
    @inlinable
    static func gemm<T: ComputeScalar>(_ a: Matrix<T>, _ b: Matrix<T>, _ acc: Accumulation) -> Matrix<T>? {
        switch acc {
        case .recursive:
            if let B = T.self as? any BLASScalar.Type { return ordered(B, a, b) }
            if let D = T.self as? any BLASDualScalar.Type { return orderedDual(D, a, b) }
            return nil
        case .widened(.fp32):
            guard T.exactInBinary32 else { return nil }
            let c = float(a.rows, a.cols, b.cols, a.storage.map { Float($0.doubleValue) }, b.storage.map { Float($0.doubleValue) })
            return Matrix(rows: a.rows, cols: b.cols, storage: c.map { T(roundingDouble: Double($0)) })
        case .widened(.fp64):
            guard T.exactInBinary64 else { return nil }
            let c = double(a.rows, a.cols, b.cols, a.storage.map { $0.doubleValue }, b.storage.map { $0.doubleValue })
            return Matrix(rows: a.rows, cols: b.cols, storage: c.map { T(roundingDouble: $0) })
        default:
            return nil
        }
    }

    /// ``BLASScalar/orderedGemm(_:_:_:_:_:)`` of `T`'s matrices, `B` being `T`.
    @inlinable
    static func ordered<T: ComputeScalar, B: BLASScalar>(_: B.Type, _ a: Matrix<T>, _ b: Matrix<T>) -> Matrix<T> {
        let c = B.orderedGemm(a.rows, a.cols, b.cols, unsafeBitCast(a.storage, to: [B].self), unsafeBitCast(b.storage, to: [B].self))
        return Matrix(rows: a.rows, cols: b.cols, storage: unsafeBitCast(c, to: [T].self))
    }

    /// ``BLASScalar/orderedDualGemm(_:_:_:_:_:)`` of `T`'s matrices, `D` being `T`, or nil.
    @inlinable
    static func orderedDual<T: ComputeScalar, D: BLASDualScalar>(_: D.Type, _ a: Matrix<T>, _ b: Matrix<T>) -> Matrix<T>? {
        typealias W = D.Component
        guard let c = W.orderedDualGemm(a.rows, a.cols, b.cols, unsafeBitCast(a.storage, to: [Dual<W>].self),
                                        unsafeBitCast(b.storage, to: [Dual<W>].self)) else { return nil }
        return Matrix(rows: a.rows, cols: b.cols, storage: unsafeBitCast(c, to: [T].self))
    }

    /// C (m×n) = A (m×k) B (k×n), row-major, Float accumulation in order.
    @inlinable
    static func float(_ m: Int, _ k: Int, _ n: Int, _ a: [Float], _ b: [Float]) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            let A = ap.baseAddress!, B = UnsafeRawPointer(bp.baseAddress!), C = cp.baseAddress!
            let stride = MemoryLayout<Float>.stride
            var i = 0
            while i < m {
                let rows = min(4, m - i)
                var j = 0
                while j + 8 <= n {
                    var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                    for p in 0..<k {
                        let bv = B.loadUnaligned(fromByteOffset: (p * n + j) * stride, as: SIMD8<Float>.self)
                        s0 = s0 + SIMD8(repeating: A[i * k + p]) * bv
                        if rows > 1 { s1 = s1 + SIMD8(repeating: A[(i + 1) * k + p]) * bv }
                        if rows > 2 { s2 = s2 + SIMD8(repeating: A[(i + 2) * k + p]) * bv }
                        if rows > 3 { s3 = s3 + SIMD8(repeating: A[(i + 3) * k + p]) * bv }
                    }
                    let out = UnsafeMutableRawPointer(C)
                    out.storeBytes(of: s0, toByteOffset: (i * n + j) * stride, as: SIMD8<Float>.self)
                    if rows > 1 { out.storeBytes(of: s1, toByteOffset: ((i + 1) * n + j) * stride, as: SIMD8<Float>.self) }
                    if rows > 2 { out.storeBytes(of: s2, toByteOffset: ((i + 2) * n + j) * stride, as: SIMD8<Float>.self) }
                    if rows > 3 { out.storeBytes(of: s3, toByteOffset: ((i + 3) * n + j) * stride, as: SIMD8<Float>.self) }
                    j += 8
                }
                for r in i..<(i + rows) {
                    for jj in j..<n {
                        var s: Float = 0
                        for p in 0..<k { s = s + A[r * k + p] * bp[p * n + jj] }
                        C[r * n + jj] = s
                    }
                }
                i += rows
            }
        } } }
        return c
    }

    /// C (m×n) = A (m×k) B (k×n), row-major, Double accumulation in order.
    @inlinable
    static func double(_ m: Int, _ k: Int, _ n: Int, _ a: [Double], _ b: [Double]) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            let A = ap.baseAddress!, B = UnsafeRawPointer(bp.baseAddress!), C = cp.baseAddress!
            let stride = MemoryLayout<Double>.stride
            var i = 0
            while i < m {
                let rows = min(4, m - i)
                var j = 0
                while j + 4 <= n {
                    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
                    for p in 0..<k {
                        let bv = B.loadUnaligned(fromByteOffset: (p * n + j) * stride, as: SIMD4<Double>.self)
                        s0 = s0 + SIMD4(repeating: A[i * k + p]) * bv
                        if rows > 1 { s1 = s1 + SIMD4(repeating: A[(i + 1) * k + p]) * bv }
                        if rows > 2 { s2 = s2 + SIMD4(repeating: A[(i + 2) * k + p]) * bv }
                        if rows > 3 { s3 = s3 + SIMD4(repeating: A[(i + 3) * k + p]) * bv }
                    }
                    let out = UnsafeMutableRawPointer(C)
                    out.storeBytes(of: s0, toByteOffset: (i * n + j) * stride, as: SIMD4<Double>.self)
                    if rows > 1 { out.storeBytes(of: s1, toByteOffset: ((i + 1) * n + j) * stride, as: SIMD4<Double>.self) }
                    if rows > 2 { out.storeBytes(of: s2, toByteOffset: ((i + 2) * n + j) * stride, as: SIMD4<Double>.self) }
                    if rows > 3 { out.storeBytes(of: s3, toByteOffset: ((i + 3) * n + j) * stride, as: SIMD4<Double>.self) }
                    j += 4
                }
                for r in i..<(i + rows) {
                    for jj in j..<n {
                        var s = 0.0
                        for p in 0..<k { s = s + A[r * k + p] * bp[p * n + jj] }
                        C[r * n + jj] = s
                    }
                }
                i += rows
            }
        } } }
        return c
    }

    /// C (m×n) = A (m×k) B (k×n), row-major, in `Dual<Double>` with each output summed in
    /// order as the dot-product loop sums it: p = x·y = (x.v·y.v, x.t·y.v + x.v·y.t) and
    /// s ← s + p componentwise, every operation rounded as `Dual`'s operators round it
    /// (no fused multiply-add), from +0. The values and tangents are split into planar
    /// arrays so that B is read row-wise, and CKernels' `hh_dual_gemm_f64` runs the
    /// loops with different outputs in its lanes (4 rows × 8 columns per block; AVX-512,
    /// AVX2 or baseline instances, the same bits). The fp64 reference HVP of SmolLM2-135M
    /// spent 89% of its time in the scalar loop this replaces (each output a
    /// latency-bound chain over a transposed copy of B). `level` picks an instance for
    /// the tests (-1: the CPU's best).
    @inlinable
    static func dualDouble(_ m: Int, _ k: Int, _ n: Int, _ a: [Dual<Double>], _ b: [Dual<Double>], level: Int32 = -1) -> [Dual<Double>] {
        let (av, at, _, _) = a.withUnsafeBufferPointer { Kernels.split($0) }
        let (bv, bt, _, _) = b.withUnsafeBufferPointer { Kernels.split($0) }
        var cv = [Double](repeating: 0, count: m * n), ct = cv
        _ = hh_dual_gemm_f64(level, m, k, n, av, at, bv, bt, &cv, &ct)
        return [Dual<Double>](unsafeUninitializedCapacity: m * n) { out, count in
            for i in 0..<(m * n) { out[i] = Dual(cv[i], ct[i]) }
            count = m * n
        }
    }
}
