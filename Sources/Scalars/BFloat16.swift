/// bfloat16: 1 sign bit, 8 exponent bits, 7 stored significand bits (p = 8),
/// binary32's exponent range, with subnormals, ±∞ and NaN, rounding to nearest even.
///
/// Storage is the 16-bit encoding, identical to the upper half of the binary32
/// encoding of the same value, as in TensorFlow, PyTorch, Eigen and ml_dtypes.
///
/// Fast paths and why they are exact:
/// - `Float → BFloat16` rounds the encoding with the integer trick
///   `(bits + 0x7FFF + lsb) >> 16` used by those implementations: it is
///   round-to-nearest-even on the integer encoding, which is monotone in value
///   across binades, carries into the exponent, overflows to ∞ exactly at
///   `maxFinite + ulp/2`, and handles subnormals (same exponent range as binary32).
///   NaNs keep their sign and top payload bits and are made quiet.
/// - `+ − × ÷ √` compute in binary32 and round once more to bfloat16. The double
///   rounding is innocuous because 24 ≥ 2·8 + 2 (Figueroa 1995: for these
///   operations rounding first to q ≥ 2p + 2 bits and then to p bits equals direct
///   rounding), including in the subnormal range where both formats share emin.
///   The test suite checks this against MPFR.
/// - `Double → BFloat16` and fused multiply-add go through ``FormatRounding`` (a
///   single rounding from the exact value): through binary32 they would round twice.
///
/// Other rounding modes of bfloat16 are `LowPrecisionFloat<BF16Spec, Mode>`.
@frozen
public struct BFloat16: EmulatedFloat {
    /// The 16-bit encoding.
    public var bitPattern: UInt16

    @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    @inlinable public static var format: FloatFormat { BF16Spec.format }
    @inlinable public static var roundingMode: RoundingMode { .nearest }

    @inlinable @inline(__always)
    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    @inlinable @inline(__always)
    public init(exactFloat value: Float) {
        let b = value.bitPattern
        bitPattern = value.isNaN ? UInt16(truncatingIfNeeded: b >> 16) | 0x0040 : UInt16(truncatingIfNeeded: b >> 16)
    }

    /// Round-to-nearest-even of a binary32 value to bfloat16 encoding.
    @inlinable @inline(__always)
    public static func roundNearestEven(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        let rounded = UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
        let nan = UInt16(truncatingIfNeeded: b >> 16) | 0x0040
        return f.isNaN ? nan : rounded
    }

    @inlinable @inline(__always)
    public init(_ value: Float) { bitPattern = Self.roundNearestEven(value) }

    /// Rounds a binary32 result of `+ − × ÷` on two widened bfloat16 values.
    ///
    /// Such a result needs no NaN test: a NaN produced by the hardware is either an
    /// operand's NaN, quieted, or the default NaN, and both have their low 16 bits
    /// zero (the operands came from bfloat16), so the rounding increment
    /// `0x7FFF + lsb` ≤ `0x8000` cannot carry out of them and the top half is
    /// returned as it is, quiet. Without the select the loop vectorizes to about
    /// two-thirds of the instructions. (Binary32 holds 24 ≥ 2·8 + 2 bits, so
    /// rounding the binary32 result again is the correct rounding of the exact one.)
    @inlinable @inline(__always)
    public static func roundArithmeticResult(_ f: Float) -> UInt16 {
        let b = f.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    @inlinable @inline(__always) public static func + (a: Self, b: Self) -> Self { Self(bitPattern: roundArithmeticResult(a.floatValue + b.floatValue)) }
    @inlinable @inline(__always) public static func - (a: Self, b: Self) -> Self { Self(bitPattern: roundArithmeticResult(a.floatValue - b.floatValue)) }
    @inlinable @inline(__always) public static func * (a: Self, b: Self) -> Self { Self(bitPattern: roundArithmeticResult(a.floatValue * b.floatValue)) }
    @inlinable @inline(__always) public static func / (a: Self, b: Self) -> Self { Self(bitPattern: roundArithmeticResult(a.floatValue / b.floatValue)) }
    @inlinable public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable public static func -= (a: inout Self, b: Self) { a = a - b }
    @inlinable public static func *= (a: inout Self, b: Self) { a = a * b }
    @inlinable public static func /= (a: inout Self, b: Self) { a = a / b }
    @inlinable public static prefix func - (a: Self) -> Self { Self(bitPattern: a.bitPattern ^ 0x8000) }
    @inlinable public func squareRoot() -> Self { Self(bitPattern: Self.roundNearestEven(floatValue.squareRoot())) }
    @inlinable public var magnitude: Self { Self(bitPattern: bitPattern & 0x7FFF) }

    /// `self + lhs × rhs` with one rounding: the product is exact in Double, the
    /// sum and its error come from TwoSum, the sum is rounded to odd into binary32
    /// (round-to-odd is exact to compose, and 24 ≥ 8 + 2 makes the final
    /// round-to-nearest-even to bfloat16 equal direct rounding: Boldo & Melquiond 2008).
    /// Written without branches (selects only) so that loops of it vectorize. An
    /// exact zero needs no special case: the Double sum already has IEEE's sign.
    @inlinable @inline(__always)
    public func addingProduct(_ lhs: Self, _ rhs: Self) -> Self {
        let p = Double(lhs.floatValue) * Double(rhs.floatValue)   // exact (≤ 16 bits)
        let c = Double(floatValue)
        let s = p + c
        let bb = s - p
        let err = (p - (s - bb)) + (c - bb)                        // TwoSum: s + err exact
        // Round to odd into Double: one ulp toward the exact sum if inexact and even.
        let sb = s.bitPattern
        let inexact = err > 0 || err < 0                           // false for NaN
        let towardExact: UInt64 = (err > 0) == (s > 0) ? 1 : ~0
        let so = Double(bitPattern: sb &+ (inexact && sb & 1 == 0 ? towardExact : 0))
        // Round to odd into binary32.
        let f = Float(so)
        let fd = Double(f)
        let fb = f.bitPattern
        let inexactF = (fd < so || fd > so) && f.isFinite
        let upF: UInt32 = fd.magnitude < so.magnitude ? 1 : ~0
        let fo = Float(bitPattern: fb &+ (inexactF && fb & 1 == 0 ? upF : 0))
        return Self(bitPattern: Self.roundNearestEven(fo))
    }

    @inlinable public var isNaN: Bool { bitPattern & 0x7FFF > 0x7F80 }
    @inlinable public var isSignalingNaN: Bool { isNaN && bitPattern & 0x0040 == 0 }
    @inlinable public static var signalingNaN: Self { Self(bitPattern: 0x7FA0) }
    @inlinable public var encoding: UInt32 { UInt32(bitPattern) }
    @inlinable public init(encoding: UInt32) { bitPattern = UInt16(truncatingIfNeeded: encoding) }
    @inlinable public var exponentBitPattern: UInt32 { UInt32(bitPattern >> 7) & 0xFF }
    @inlinable public var significandBitPattern: UInt32 { UInt32(bitPattern) & 0x7F }
    @inlinable public init(sign: FloatingPointSign, exponentBitPattern: UInt32, significandBitPattern: UInt32) {
        bitPattern = (sign == .minus ? 0x8000 : 0) | UInt16(truncatingIfNeeded: (exponentBitPattern & 0xFF) << 7) | UInt16(truncatingIfNeeded: significandBitPattern & 0x7F)
    }
    @inlinable public var nextUp: Self {
        // Total order on encodings: positive values increase with the encoding,
        // negative values decrease with it.
        if isNaN || bitPattern == 0x7F80 { return self }
        if bitPattern == 0x8000 || bitPattern == 0 { return Self(bitPattern: 1) }
        return bitPattern & 0x8000 == 0 ? Self(bitPattern: bitPattern + 1) : Self(bitPattern: bitPattern - 1)
    }
}

/// The spec of bf16 (NUMERICS.md §1).
public enum BF16Spec: RegisteredFormat {
    public typealias Nearest = BFloat16
    @inlinable public static var format: FloatFormat { .bf16 }
}
