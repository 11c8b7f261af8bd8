import Scalars
import RealModule
import COpenBLAS
import CKernels

/// A scalar type that BLAS and LAPACK compute in: binary32 and binary64.
///
/// The customization point behind every BLAS/LAPACK path of the harness: the kernels'
/// `.blas` dot, gemv and gemm (and the binary32 products that formats inside binary32
/// widen to), the three products of a dual-number gemm, the order-preserving SIMD
/// products of ``OrderedGemm``, and the dense symmetric eigensolver. Generic code asks
/// `T.self as? any BLASScalar.Type` once per call (a constant where `T` is concrete) and
/// hands these requirements its buffers reinterpreted as the type they already are, so
/// the values and the bits are those of a direct call. A type gains the BLAS paths by
/// conforming here; there is no list of types to edit.
public protocol BLASScalar: ComputeScalar {
    /// `Σ xᵢ yᵢ` over `n` elements (sdot/ddot).
    static func blasDot(_ n: Int, _ x: UnsafePointer<Self>?, _ y: UnsafePointer<Self>?) -> Self
    /// `y = A x`, A row-major m×n (sgemv/dgemv).
    static func blasGemv(_ m: Int, _ n: Int, _ a: UnsafePointer<Self>?, _ x: UnsafePointer<Self>?, _ y: UnsafeMutablePointer<Self>?)
    /// `C = op(A) op(B)`, row-major, m×n·k, α = 1, β = 0 (sgemm/dgemm).
    static func blasGemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Self>, _ lda: Int,
                         _ b: UnsafePointer<Self>, _ ldb: Int, _ c: UnsafeMutablePointer<Self>)
    /// Eigenvalues (ascending, into `w`) and, if asked, eigenvectors (into `a`, as columns)
    /// of the symmetric row-major n×n matrix `a` (ssyevd/dsyevd, upper triangle): the
    /// routine's name and its `info`.
    static func symmetricEigen(_ n: Int, vectors: Bool, _ a: inout [Self], _ w: inout [Self]) -> (routine: String, info: Int)
    /// ``OrderedGemm``'s product in this type: C (m×n) = A (m×k) B (k×n), each output
    /// summed in the defining order in SIMD lanes.
    static func orderedGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Self], _ b: [Self]) -> [Self]
    /// ``orderedGemm(_:_:_:_:_:)`` of dual numbers over this type, or nil (the scalar loops run).
    static func orderedDualGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Dual<Self>], _ b: [Dual<Self>]) -> [Dual<Self>]?
    /// The values and the tangents of `n` dual numbers `d` (interleaved) into `v` and `t`;
    /// bit 0: every tangent is zero, bit 1: every value is finite (CKernels' vector loops).
    static func splitDual(_ n: Int, _ d: UnsafePointer<Self>, _ v: UnsafeMutablePointer<Self>, _ t: UnsafeMutablePointer<Self>) -> Int32
    /// Dual numbers `d` (interleaved) from values `v` and the tangent fl(t1 + t2), a nil
    /// term standing for +0 (CKernels' vector loops).
    static func mergeDual(_ n: Int, _ v: UnsafePointer<Self>, _ t1: UnsafePointer<Self>?, _ t2: UnsafePointer<Self>?,
                          _ d: UnsafeMutablePointer<Self>)
}

extension BLASScalar {
    @inlinable
    public static func orderedDualGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Dual<Self>], _ b: [Dual<Self>]) -> [Dual<Self>]? { nil }
}

/// Dual numbers over a ``BLASScalar``: a `.blas` product is three products of the
/// component type (``Kernels/blasDualGemm(_:_:_:_:_:_:_:_:)``).
public protocol BLASDualScalar: ComputeScalar {
    associatedtype Component: BLASScalar
}

extension Dual: BLASDualScalar where T: BLASScalar {
    public typealias Component = T
}

@inlinable @inline(__always)
func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: BLASScalar {
    @inlinable
    public static func blasDot(_ n: Int, _ x: UnsafePointer<Float>?, _ y: UnsafePointer<Float>?) -> Float {
        cblas_sdot(Int32(n), x, 1, y, 1)
    }
    @inlinable
    public static func blasGemv(_ m: Int, _ n: Int, _ a: UnsafePointer<Float>?, _ x: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>?) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), 1, a, Int32(max(n, 1)), x, 1, 0, y, 1)
    }
    @inlinable
    public static func blasGemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                                _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, cblasTranspose(ta), cblasTranspose(tb), Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), 0, c, Int32(max(n, 1)))
    }
    public static func symmetricEigen(_ n: Int, vectors: Bool, _ a: inout [Float], _ w: inout [Float]) -> (routine: String, info: Int) {
        let info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: vectors ? "V" : "N")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(max(n, 1)), &w)
        return ("ssyevd", Int(info))
    }
    @inlinable
    public static func orderedGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Float], _ b: [Float]) -> [Float] { OrderedGemm.float(m, k, n, a, b) }
    @inlinable
    public static func splitDual(_ n: Int, _ d: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ t: UnsafeMutablePointer<Float>) -> Int32 {
        hh_split_dual_f32(n, d, v, t)
    }
    @inlinable
    public static func mergeDual(_ n: Int, _ v: UnsafePointer<Float>, _ t1: UnsafePointer<Float>?, _ t2: UnsafePointer<Float>?,
                                 _ d: UnsafeMutablePointer<Float>) {
        hh_merge_dual_f32(n, v, t1, t2, d)
    }
}

extension Double: BLASScalar {
    @inlinable
    public static func blasDot(_ n: Int, _ x: UnsafePointer<Double>?, _ y: UnsafePointer<Double>?) -> Double {
        cblas_ddot(Int32(n), x, 1, y, 1)
    }
    @inlinable
    public static func blasGemv(_ m: Int, _ n: Int, _ a: UnsafePointer<Double>?, _ x: UnsafePointer<Double>?, _ y: UnsafeMutablePointer<Double>?) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), 1, a, Int32(max(n, 1)), x, 1, 0, y, 1)
    }
    @inlinable
    public static func blasGemm(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Double>, _ lda: Int,
                                _ b: UnsafePointer<Double>, _ ldb: Int, _ c: UnsafeMutablePointer<Double>) {
        cblas_dgemm(CblasRowMajor, cblasTranspose(ta), cblasTranspose(tb), Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                    b, Int32(ldb), 0, c, Int32(max(n, 1)))
    }
    public static func symmetricEigen(_ n: Int, vectors: Bool, _ a: inout [Double], _ w: inout [Double]) -> (routine: String, info: Int) {
        let info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: vectors ? "V" : "N")), CChar(UInt8(ascii: "U")),
                                  Int32(n), &a, Int32(max(n, 1)), &w)
        return ("dsyevd", Int(info))
    }
    @inlinable
    public static func orderedGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Double], _ b: [Double]) -> [Double] { OrderedGemm.double(m, k, n, a, b) }
    /// The fp64 exact HVP's products (`Dual<Double>` under recursive accumulation).
    @inlinable
    public static func orderedDualGemm(_ m: Int, _ k: Int, _ n: Int, _ a: [Dual<Double>], _ b: [Dual<Double>]) -> [Dual<Double>]? {
        OrderedGemm.dualDouble(m, k, n, a, b)
    }
    @inlinable
    public static func splitDual(_ n: Int, _ d: UnsafePointer<Double>, _ v: UnsafeMutablePointer<Double>, _ t: UnsafeMutablePointer<Double>) -> Int32 {
        hh_split_dual_f64(n, d, v, t)
    }
    @inlinable
    public static func mergeDual(_ n: Int, _ v: UnsafePointer<Double>, _ t1: UnsafePointer<Double>?, _ t2: UnsafePointer<Double>?,
                                 _ d: UnsafeMutablePointer<Double>) {
        hh_merge_dual_f64(n, v, t1, t2, d)
    }
}
