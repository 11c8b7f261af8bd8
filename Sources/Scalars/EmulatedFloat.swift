import RealModule

/// A binary floating-point format emulated in software: its values are stored
/// exactly in a `Float`, and every operation rounds its exact result once into
/// ``format`` with ``roundingMode`` (see ``FormatRounding``).
///
/// The extension below implements all of `BinaryFloatingPoint & Real` for any
/// conforming type, once; ``BFloat16`` overrides the hot operations with faster
/// paths whose equivalence is tested, and ``LowPrecisionFloat`` uses them as is.
///
/// Accuracy contract:
/// - `+ − × ÷ √`, fused multiply-add and every conversion (from Float, Double,
///   Float80, integers, decimal strings) are correctly rounded from the exact
///   result in every rounding mode;
/// - elementary functions (`exp`, `log`, `sin`, …) are the platform's Double
///   result rounded once into the format: correctly rounded unless the exact value
///   lies within about one Double ulp of a rounding boundary of the format (the
///   exhaustive bf16 check in the test suite counts how often that happens: never,
///   for the functions it checks).
public protocol EmulatedFloat: BinaryFloatingPoint, Real, ComputeScalar, LosslessStringConvertible,
    CustomDebugStringConvertible, Sendable
where Exponent == Int, RawSignificand == UInt32, RawExponent == UInt32, FloatLiteralType == Double,
      IntegerLiteralType == Int, Magnitude == Self {
    /// The format this type emulates.
    static var format: FloatFormat { get }
    /// The rounding mode of every operation of this type.
    static var roundingMode: RoundingMode { get }
    /// The exact value, as a binary32 number.
    var floatValue: Float { get }
    /// Wraps `value`, which must already be a value of ``format`` (not checked).
    init(exactFloat value: Float)
}

extension EmulatedFloat {
    // MARK: Rounding entry points

    /// Rounds the exact real `x + tail` into this format with this type's mode.
    @inlinable @inline(__always)
    public init(roundingDouble x: Double, tail: Double) {
        self.init(exactFloat: Float(FormatRounding.round(x, tail: tail, to: Self.format, mode: Self.roundingMode)))
    }

    /// Rounds the Double `x` (exact input) into this format with this type's mode.
    @inlinable @inline(__always)
    public init(roundingDouble x: Double) {
        self.init(roundingDouble: x, tail: 0)
    }

    /// The exact value as a Double.
    @inlinable @inline(__always)
    public var doubleValue: Double { Double(floatValue) }

    public static var formatName: String { format.name }

    // MARK: Literals and conversions

    /// Float literals are first parsed by the compiler into a Double, then rounded
    /// once into the format; for decimal input that is not a Double use
    /// ``init(_:)-(String)`` (correctly rounded from the exact decimal).
    @inlinable public init(floatLiteral value: Double) { self.init(roundingDouble: value) }
    @inlinable public init(integerLiteral value: Int) { self.init(value) }

    @inlinable public init(_ value: Double) { self.init(roundingDouble: value) }
    @inlinable public init(_ value: Float) { self.init(roundingDouble: Double(value)) }
    #if !(os(Windows) || os(Android) || ($Embedded && !os(Linux) && !(os(macOS) || os(iOS) || os(watchOS) || os(tvOS)))) && (arch(i386) || arch(x86_64))
    @inlinable public init(_ value: Float80) {
        let hi = Double(value)
        let lo = hi.isFinite ? Double(value - Float80(hi)) : 0
        self.init(roundingDouble: hi, tail: lo)
    }
    #endif

    @inlinable
    public init<Source: BinaryFloatingPoint>(_ value: Source) {
        if Source.significandBitCount <= 52 && Source.exponentBitCount <= 11 {
            self.init(roundingDouble: Double(value))           // exact
        } else {
            let hi = Double(value)
            let lo = hi.isFinite ? Double(value - Source(hi)) : 0
            self.init(roundingDouble: hi, tail: lo)
        }
    }

    @inlinable
    public init?<Source: BinaryFloatingPoint>(exactly value: Source) {
        let r = Self(value)
        if value.isNaN { return nil }
        guard Source(r) == value else { return nil }
        self = r
    }

    @inlinable
    public init<Source: BinaryInteger>(_ value: Source) {
        let d = Double(value)                      // round to nearest even
        var tail = 0.0
        if d.isFinite {
            if let back = Source(exactly: d) {
                if back < value { tail = d.ulp / 4 } else if back > value { tail = -d.ulp / 4 }
            } else {
                tail = value < 0 ? d.ulp / 4 : -d.ulp / 4    // d lies beyond Source's range
            }
        }
        self.init(roundingDouble: d, tail: tail)
    }

    @inlinable
    public init?<Source: BinaryInteger>(exactly value: Source) {
        let r = Self(value)
        guard r.isFinite, let back = Source(exactly: r.doubleValue), back == value else { return nil }
        self = r
    }

    @inlinable public init(_ value: Int) { self.init(roundingDouble: Double(value), tail: 0) }

    // MARK: Constants

    @inlinable public static var nan: Self { Self(exactFloat: .nan) }
    @inlinable public static var signalingNaN: Self { Self(exactFloat: .nan) }
    /// ±∞, or NaN in formats without infinities.
    @inlinable public static var infinity: Self { Self(exactFloat: format.infinities ? .infinity : .nan) }
    @inlinable public static var greatestFiniteMagnitude: Self { Self(exactFloat: Float(format.greatestFinite)) }
    @inlinable public static var leastNormalMagnitude: Self { Self(exactFloat: Float(format.leastNormal)) }
    @inlinable public static var leastNonzeroMagnitude: Self { Self(exactFloat: Float(format.leastNonzero)) }
    /// π rounded toward zero, as `FloatingPoint.pi` specifies.
    @inlinable public static var pi: Self {
        Self(exactFloat: Float(FormatRounding.round(.pi, tail: 1.2246467991473532e-16, to: format, mode: .towardZero)))
    }
    @inlinable public static var exponentBitCount: Int { format.exponentBits }
    @inlinable public static var significandBitCount: Int { format.significandBits }

    // MARK: Anatomy

    @inlinable public var sign: FloatingPointSign { floatValue.sign }
    @inlinable public var exponent: Int { Int(floatValue.exponent) }
    @inlinable public var significand: Self { Self(exactFloat: floatValue.significand) }
    @inlinable public var magnitude: Self { Self(exactFloat: floatValue.magnitude) }

    @inlinable
    public var ulp: Self {
        guard isFinite else { return .nan }
        let a = abs(doubleValue)
        if a == 0 { return .leastNonzeroMagnitude }
        let e = Swift.max(a.exponent, Self.format.emin)
        if !Self.format.subnormals && a.exponent < Self.format.emin { return .leastNormalMagnitude }
        return Self(exactFloat: Float(Double(sign: .plus, exponent: e - (Self.format.p - 1), significand: 1)))
    }

    @inlinable
    public init(sign: FloatingPointSign, exponent: Int, significand: Self) {
        let e = Swift.min(Swift.max(exponent, -600), 600)
        self.init(roundingDouble: Double(sign: sign, exponent: e, significand: significand.doubleValue))
    }

    @inlinable
    public init(signOf: Self, magnitudeOf: Self) {
        self.init(exactFloat: Float(signOf: signOf.floatValue, magnitudeOf: magnitudeOf.floatValue))
    }

    @inlinable
    public var exponentBitPattern: UInt32 {
        UInt32(truncatingIfNeeded: Self.format.encode(doubleValue) >> UInt64(Self.format.significandBits)) & ((1 << UInt32(Self.format.exponentBits)) - 1)
    }

    @inlinable
    public var significandBitPattern: UInt32 {
        UInt32(truncatingIfNeeded: Self.format.encode(doubleValue)) & ((1 << UInt32(Self.format.significandBits)) - 1)
    }

    @inlinable
    public init(sign: FloatingPointSign, exponentBitPattern: UInt32, significandBitPattern: UInt32) {
        let f = Self.format
        let bits = (exponentBitPattern << UInt32(f.significandBits)) | significandBitPattern
        let v = f.decode(UInt64(bits))
        self.init(exactFloat: Float(sign == .minus ? -v : v))
    }

    /// The encoding of this value in the format (sign | exponent | significand).
    @inlinable public var encoding: UInt32 { UInt32(truncatingIfNeeded: Self.format.encode(doubleValue)) }

    /// The value of an encoding of the format.
    @inlinable public init(encoding: UInt32) { self.init(exactFloat: Float(Self.format.decode(UInt64(encoding)))) }

    @inlinable
    public var binade: Self {
        guard isFinite else { return .nan }
        if isZero { return self }
        return Self(exactFloat: Float(Double(sign: sign, exponent: exponent, significand: 1)))
    }

    @inlinable public var significandWidth: Int { doubleValue.significandWidth }

    // MARK: Classification

    @inlinable public var isNormal: Bool { isFinite && !isZero && abs(floatValue) >= Float(Self.format.leastNormal) }
    @inlinable public var isFinite: Bool { floatValue.isFinite }
    @inlinable public var isZero: Bool { floatValue == 0 }
    @inlinable public var isSubnormal: Bool { isFinite && !isZero && abs(floatValue) < Float(Self.format.leastNormal) }
    @inlinable public var isInfinite: Bool { floatValue.isInfinite }
    @inlinable public var isNaN: Bool { floatValue.isNaN }
    @inlinable public var isSignalingNaN: Bool { false }
    @inlinable public var isCanonical: Bool { true }

    @inlinable public func isEqual(to other: Self) -> Bool { floatValue == other.floatValue }
    @inlinable public func isLess(than other: Self) -> Bool { floatValue < other.floatValue }
    @inlinable public func isLessThanOrEqualTo(_ other: Self) -> Bool { floatValue <= other.floatValue }
    @inlinable public func isTotallyOrdered(belowOrEqualTo other: Self) -> Bool {
        floatValue.isTotallyOrdered(belowOrEqualTo: other.floatValue)
    }

    @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(floatValue) }

    // MARK: Arithmetic (each correctly rounded from the exact result)

    @inlinable @inline(__always)
    static func exactZeroSum(_ a: Self, _ b: Self) -> Self? {
        // IEEE 754 §6.3: an exact zero sum of operands of opposite sign is +0,
        // except under roundTowardNegative where it is −0.
        guard roundingMode == .down else { return nil }
        if a.isZero && b.isZero && a.sign == b.sign { return nil }   // ±0 + ±0 keeps the sign
        return Self(exactFloat: -0.0)
    }

    @inlinable
    public static func + (a: Self, b: Self) -> Self {
        let (s, e) = FormatRounding.twoSum(a.doubleValue, b.doubleValue)
        if s == 0 && e == 0 && !(a.sign == .minus && b.sign == .minus), let z = exactZeroSum(a, b) { return z }
        return Self(roundingDouble: s, tail: e)
    }

    @inlinable
    public static func - (a: Self, b: Self) -> Self { a + (-b) }

    @inlinable
    public static func * (a: Self, b: Self) -> Self {
        Self(roundingDouble: a.doubleValue * b.doubleValue)      // exact: ≤ 48 bits
    }

    @inlinable
    public static func / (a: Self, b: Self) -> Self {
        let x = a.doubleValue, y = b.doubleValue
        let q = x / y
        guard q.isFinite, q != 0 else { return Self(roundingDouble: q) }
        let r = x.addingProduct(-q, y)                           // x − q·y, exact (FMA)
        return Self(roundingDouble: q, tail: r / y)
    }

    @inlinable public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable public static func -= (a: inout Self, b: Self) { a = a - b }
    @inlinable public static func *= (a: inout Self, b: Self) { a = a * b }
    @inlinable public static func /= (a: inout Self, b: Self) { a = a / b }
    @inlinable public static prefix func - (a: Self) -> Self { Self(exactFloat: -a.floatValue) }
    @inlinable public mutating func negate() { self = -self }

    @inlinable
    public func squareRoot() -> Self {
        let x = doubleValue
        let s = x.squareRoot()
        guard s.isFinite, s > 0 else { return Self(roundingDouble: s) }
        let r = x.addingProduct(-s, s)                           // x − s², exact (FMA)
        return Self(roundingDouble: s, tail: r / (2 * s))
    }
    @inlinable public mutating func formSquareRoot() { self = squareRoot() }

    /// `self + lhs × rhs` with one rounding.
    @inlinable
    public func addingProduct(_ lhs: Self, _ rhs: Self) -> Self {
        let p = lhs.doubleValue * rhs.doubleValue                // exact
        let (s, e) = FormatRounding.twoSum(doubleValue, p)
        if s == 0 && e == 0 && p == 0 && doubleValue == 0 {
            return self + Self(exactFloat: Float(p))            // signed-zero rules of addition
        }
        if s == 0 && e == 0 && Self.roundingMode == .down { return Self(exactFloat: -0.0) }
        return Self(roundingDouble: s, tail: e)
    }
    @inlinable public mutating func addProduct(_ lhs: Self, _ rhs: Self) { self = addingProduct(lhs, rhs) }

    @inlinable
    public func remainder(dividingBy other: Self) -> Self {
        Self(roundingDouble: doubleValue.remainder(dividingBy: other.doubleValue))  // exact
    }
    @inlinable public mutating func formRemainder(dividingBy other: Self) { self = remainder(dividingBy: other) }
    @inlinable
    public func truncatingRemainder(dividingBy other: Self) -> Self {
        Self(roundingDouble: doubleValue.truncatingRemainder(dividingBy: other.doubleValue))  // exact
    }
    @inlinable public mutating func formTruncatingRemainder(dividingBy other: Self) {
        self = truncatingRemainder(dividingBy: other)
    }
    @inlinable public func rounded(_ rule: FloatingPointRoundingRule) -> Self {
        Self(roundingDouble: doubleValue.rounded(rule))             // exact
    }
    @inlinable public mutating func round(_ rule: FloatingPointRoundingRule) { self = rounded(rule) }

    @inlinable
    public var nextUp: Self {
        let f = Self.format
        let x = doubleValue
        if x.isNaN || x == .infinity { return self }
        if x == -.infinity { return -.greatestFiniteMagnitude }
        if x == 0 { return .leastNonzeroMagnitude }
        if x == f.greatestFinite { return .infinity }
        if x > 0 {
            let q = Swift.max(x.exponent, f.emin) - (f.p - 1)
            let step = (!f.subnormals && x.exponent < f.emin) ? f.leastNormal : Double(sign: .plus, exponent: q, significand: 1)
            return Self(exactFloat: Float(x + step))
        }
        let a = -x
        if !f.subnormals && a == f.leastNormal { return Self(exactFloat: -0.0) }
        var q = Swift.max(a.exponent, f.emin) - (f.p - 1)
        if a.significand == 1 && a.exponent > f.emin { q -= 1 }     // crossing down a binade
        return Self(exactFloat: Float(-(a - Double(sign: .plus, exponent: q, significand: 1))))
    }

    // MARK: Strideable

    @inlinable public func distance(to other: Self) -> Self { other - self }
    @inlinable public func advanced(by n: Self) -> Self { self + n }

    // MARK: Text

    /// The shortest decimal that reads back (correctly rounded) to this value.
    public var description: String { ShortestDecimal.string(doubleValue, format: Self.format) }
    public var debugDescription: String {
        "\(description) [\(Self.format.name) 0x\(String(encoding, radix: 16))]"
    }

    /// Parses a decimal or hexadecimal string, correctly rounded from its exact
    /// value into the format with this type's rounding mode (via MPFR).
    ///
    /// The text is read with round-to-nearest whatever the type's mode, so that
    /// `Self(x.description) == x`; ``ExactDecimal/round(_:to:mode:)`` takes a mode.
    public init?(_ text: String) {
        guard let v = try? ExactDecimal.round(text, to: Self.format, mode: .nearest) else { return nil }
        self.init(exactFloat: Float(v))
    }
}

// MARK: Elementary functions: the platform's Double function, rounded once.

extension EmulatedFloat {
    @inlinable @inline(__always) static func r(_ x: Double) -> Self { Self(roundingDouble: x) }

    @inlinable public static func exp(_ x: Self) -> Self { r(.exp(x.doubleValue)) }
    @inlinable public static func expMinusOne(_ x: Self) -> Self { r(.expMinusOne(x.doubleValue)) }
    @inlinable public static func cosh(_ x: Self) -> Self { r(.cosh(x.doubleValue)) }
    @inlinable public static func sinh(_ x: Self) -> Self { r(.sinh(x.doubleValue)) }
    @inlinable public static func tanh(_ x: Self) -> Self { r(.tanh(x.doubleValue)) }
    @inlinable public static func cos(_ x: Self) -> Self { r(.cos(x.doubleValue)) }
    @inlinable public static func sin(_ x: Self) -> Self { r(.sin(x.doubleValue)) }
    @inlinable public static func tan(_ x: Self) -> Self { r(.tan(x.doubleValue)) }
    @inlinable public static func log(_ x: Self) -> Self { r(.log(x.doubleValue)) }
    @inlinable public static func log(onePlus x: Self) -> Self { r(.log(onePlus: x.doubleValue)) }
    @inlinable public static func acosh(_ x: Self) -> Self { r(.acosh(x.doubleValue)) }
    @inlinable public static func asinh(_ x: Self) -> Self { r(.asinh(x.doubleValue)) }
    @inlinable public static func atanh(_ x: Self) -> Self { r(.atanh(x.doubleValue)) }
    @inlinable public static func acos(_ x: Self) -> Self { r(.acos(x.doubleValue)) }
    @inlinable public static func asin(_ x: Self) -> Self { r(.asin(x.doubleValue)) }
    @inlinable public static func atan(_ x: Self) -> Self { r(.atan(x.doubleValue)) }
    @inlinable public static func pow(_ x: Self, _ y: Self) -> Self { r(.pow(x.doubleValue, y.doubleValue)) }
    @inlinable public static func pow(_ x: Self, _ n: Int) -> Self { r(.pow(x.doubleValue, n)) }
    @inlinable public static func sqrt(_ x: Self) -> Self { x.squareRoot() }
    @inlinable public static func root(_ x: Self, _ n: Int) -> Self { r(.root(x.doubleValue, n)) }
    @inlinable public static func atan2(y: Self, x: Self) -> Self { r(.atan2(y: y.doubleValue, x: x.doubleValue)) }
    @inlinable public static func erf(_ x: Self) -> Self { r(.erf(x.doubleValue)) }
    @inlinable public static func erfc(_ x: Self) -> Self { r(.erfc(x.doubleValue)) }
    @inlinable public static func exp2(_ x: Self) -> Self { r(.exp2(x.doubleValue)) }
    @inlinable public static func exp10(_ x: Self) -> Self { r(.exp10(x.doubleValue)) }
    @inlinable public static func hypot(_ x: Self, _ y: Self) -> Self { r(.hypot(x.doubleValue, y.doubleValue)) }
    @inlinable public static func gamma(_ x: Self) -> Self { r(.gamma(x.doubleValue)) }
    @inlinable public static func log2(_ x: Self) -> Self { r(.log2(x.doubleValue)) }
    @inlinable public static func log10(_ x: Self) -> Self { r(.log10(x.doubleValue)) }
    @inlinable public static func logGamma(_ x: Self) -> Self { r(.logGamma(x.doubleValue)) }
    @inlinable public static func _mulAdd(_ a: Self, _ b: Self, _ c: Self) -> Self { c.addingProduct(a, b) }
}
