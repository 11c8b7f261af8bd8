import CKernels
import CMPFR
import RealModule

/// tanh for binary32, correctly rounded to nearest (ties to even), for every input.
///
/// For |x| < 2⁻¹² the result is x (|tanh x − x| < |x|³/3 is below half an ulp of x);
/// for |x| ≥ 10 it is ±1 (1 − tanh x < 2e⁻²⁰ < 2⁻²⁵). In between, with y = 2|x|
/// (exact), tanh|x| = e/(e + 2) where e = expm1(y) = 2ᵏ·expm1(r) + (2ᵏ − 1),
/// y = k ln 2 + r, |r| ≤ ln 2 / 2: expm1(r) is its Taylor polynomial of degree 13
/// (truncation < 2⁻⁵⁰ relative), and since k ≥ 0 and expm1(r) > −0.3 the sum does not
/// cancel (k = 0 is exact). The Double result has a relative error below 2⁻⁴⁵
/// (measured 2⁻⁵⁰·⁵ against the C library's Double tanh); it is rounded to binary32
/// when it lies more than 2¹⁴ binary64 ulps (relative 2⁻³⁹) from a binary32 midpoint,
/// and otherwise — about 1 input in 2¹⁴ — the result comes from MPFR at 24 bits. The
/// tests check it against MPFR on every binary32 number in [2⁻¹², 10] in the
/// exhaustive run (`HH_EXHAUSTIVE=1`) and on a strided quarter million by default.
///
/// Written here rather than taken from a library: no Swift package offers a correctly
/// rounded binary32 tanh, and the C library's depends on its version (see ``Elementary``).
public enum Binary32Tanh {
    @inlinable
    public static func tanh(_ x: Float) -> Float {
        let a = x.magnitude
        if !(a >= 0x1p-12) { return x.isNaN ? x + x : x }            // ±0, subnormals, tiny; NaN quieted
        if a >= 10 { return Float(signOf: x, magnitudeOf: 1) }        // includes ±∞
        let t = tanhOfDouble(a)
        guard decides(t) else { return Float(signOf: x, magnitudeOf: correctlyRounded(a)) }
        return Float(signOf: x, magnitudeOf: Float(t))
    }

    /// ``tanh(_:)`` of every element of `x`, written to `y` (the same count; the two must
    /// not overlap): the same bits element for element. The Double evaluation runs in
    /// vector lanes (CKernels' `hh_tanhf_block`, the same operations in C, 8 or 16 lanes
    /// wide with AVX-512), 64 elements per call; the elements it leaves undecided, about
    /// 1 in 2¹⁴, are finished here by ``tanh(_:)``. About 8× faster than the scalar
    /// function (`bench scalars`: 2.3 against 19 ns per element in one run).
    public static func tanh(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count == y.count, "tanh: \(x.count) inputs, \(y.count) outputs")
        guard let xp = x.baseAddress, let yp = y.baseAddress else { return }
        var i = 0
        while i < x.count {
            let n = min(64, x.count - i)
            var undecided = hh_tanhf_block(n, xp + i, yp + i)
            while undecided != 0 {
                let j = i + undecided.trailingZeroBitCount
                yp[j] = tanh(xp[j])
                undecided &= undecided - 1
            }
            i += n
        }
    }

    /// ``tanh(_:)`` of every element, as a new array (see ``tanh(_:into:)``).
    public static func tanh(_ x: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { y, count in
            x.withUnsafeBufferPointer { tanh($0, into: y) }
            count = x.count
        }
    }

    /// tanh(a) for a binary32 a in [2⁻¹², 10), relative error below 2⁻⁴⁵.
    @inlinable @inline(__always)
    static func tanhOfDouble(_ a: Float) -> Double {
        let y = 2 * Double(a)
        let k = (y * 0x1.71547652b82fep0 + 0x1.8p52) - 0x1.8p52          // nearest integer to y / ln 2: 0 … 29
        let r = y - k * 0x1.62e42fefa39efp-1
        let e = scaledExpm1(Double(bitPattern: UInt64(1023 + Int(k)) << 52), r)
        return e / (e + 2)
    }

    /// The MPFR result at 24 bits, to nearest (the rare inputs near a midpoint).
    @usableFromInline
    static func correctlyRounded(_ a: Float) -> Float {
        var x = __mpfr_struct(), y = __mpfr_struct()
        mpfr_init2(&x, 24); mpfr_init2(&y, 24)
        defer { mpfr_clear(&x); mpfr_clear(&y) }
        _ = mpfr_set_flt(&x, a, MPFR_RNDN)                             // exact
        _ = mpfr_tanh(&y, &x, MPFR_RNDN)
        return mpfr_get_flt(&y, MPFR_RNDN)                             // exact: y has 24 bits, in range
    }

    /// Whether ``tanh(_:)`` decides `x` from its Double evaluation (false: MPFR).
    public static func decidedWithoutMPFR(_ x: Float) -> Bool {
        let a = x.magnitude
        guard a >= 0x1p-12 && a < 10 else { return true }
        return decides(tanhOfDouble(a))
    }

    /// Whether the Double evaluation t (relative error < 2⁻⁴⁵, i.e. under 2⁸ ulp(t))
    /// rounds to binary32 like the exact tanh: more than 2¹⁴ ulps from a midpoint.
    @inlinable @inline(__always)
    static func decides(_ t: Double) -> Bool { FormatArithmetic.clearOfBinary32Midpoint(t, by: 0x4000) }

    /// 2ᵏ·expm1(r) + (2ᵏ − 1) for s = 2ᵏ (k ≥ 0) and |r| ≤ ln 2 / 2: expm1(k ln 2 + r).
    @inlinable @inline(__always)
    static func scaledExpm1(_ s: Double, _ r: Double) -> Double {
        // Taylor coefficients 1/n!, n = 2 … 13, by Horner.
        var q = 1.0 / 6227020800
        q = q * r + 1.0 / 479001600; q = q * r + 1.0 / 39916800; q = q * r + 1.0 / 3628800
        q = q * r + 1.0 / 362880; q = q * r + 1.0 / 40320; q = q * r + 1.0 / 5040
        q = q * r + 1.0 / 720; q = q * r + 1.0 / 120; q = q * r + 1.0 / 24
        q = q * r + 1.0 / 6; q = q * r + 0.5
        return s * (r + r * r * q) + (s - 1)
    }
}
