import RealModule

/// A dual number `value + tangent·ε` with `ε² = 0`: forward-mode derivatives in
/// any `Real`. Evaluating `f(Dual(x, v))` gives `(f(x), f'(x)·v)`; composing with
/// a hand-written reverse pass gives exact Hessian-vector products
/// (forward-over-reverse) in any format, `Dual<MPFloat<256>>` included.
///
/// Comparison, hashing and classification look at `value` only, so generic code
/// branches exactly as it would on the value; the tangent follows along. Rounding
/// functions (`rounded`, `ulp`, …) have zero derivative.
@frozen
public struct Dual<T: Real>: Sendable where T: Sendable {
    public var value: T
    public var tangent: T

    @inlinable public init(_ value: T, _ tangent: T) { self.value = value; self.tangent = tangent }
    @inlinable public init(value: T, tangent: T = 0) { self.value = value; self.tangent = tangent }
    /// A constant (zero tangent).
    @inlinable public init(constant: T) { value = constant; tangent = 0 }
}

extension Dual: CustomStringConvertible {
    public var description: String { "(\(value), \(tangent))" }
}

extension Dual: FloatingPoint {
    public typealias Exponent = T.Exponent
    public typealias Magnitude = Dual<T>
    public typealias Stride = Dual<T>
    public typealias IntegerLiteralType = Int

    @inlinable public init(integerLiteral v: Int) { self.init(constant: T(v)) }
    @inlinable public init(_ v: Int) { self.init(constant: T(v)) }
    @inlinable public init<Source: BinaryInteger>(_ v: Source) { self.init(constant: T(v)) }
    @inlinable public init?<Source: BinaryInteger>(exactly v: Source) {
        guard let t = T(exactly: v) else { return nil }
        self.init(constant: t)
    }
    @inlinable public init(sign: FloatingPointSign, exponent: T.Exponent, significand: Self) {
        self.init(T(sign: sign, exponent: exponent, significand: significand.value),
                  T(sign: sign, exponent: exponent, significand: significand.tangent))
    }
    @inlinable public init(signOf: Self, magnitudeOf: Self) {
        let flip = signOf.value.sign != magnitudeOf.value.sign
        self.init(T(signOf: signOf.value, magnitudeOf: magnitudeOf.value), flip ? -magnitudeOf.tangent : magnitudeOf.tangent)
    }

    @inlinable public static var radix: Int { T.radix }
    @inlinable public static var nan: Self { Self(constant: .nan) }
    @inlinable public static var signalingNaN: Self { Self(constant: .signalingNaN) }
    @inlinable public static var infinity: Self { Self(constant: .infinity) }
    @inlinable public static var greatestFiniteMagnitude: Self { Self(constant: .greatestFiniteMagnitude) }
    @inlinable public static var pi: Self { Self(constant: .pi) }
    @inlinable public static var leastNormalMagnitude: Self { Self(constant: .leastNormalMagnitude) }
    @inlinable public static var leastNonzeroMagnitude: Self { Self(constant: .leastNonzeroMagnitude) }

    @inlinable public var ulp: Self { Self(constant: value.ulp) }
    @inlinable public var sign: FloatingPointSign { value.sign }
    @inlinable public var exponent: T.Exponent { value.exponent }
    @inlinable public var significand: Self {
        let s = value.significand
        // significand = |value| · 2^-exponent locally.
        let scale = value.isFinite && !value.isZero ? T(sign: .plus, exponent: -value.exponent, significand: 1) : 0
        return Self(s, (value.sign == .minus ? -tangent : tangent) * scale)
    }
    @inlinable public var magnitude: Self { value.sign == .minus ? -self : self }

    @inlinable public static func + (a: Self, b: Self) -> Self { Self(a.value + b.value, a.tangent + b.tangent) }
    @inlinable public static func - (a: Self, b: Self) -> Self { Self(a.value - b.value, a.tangent - b.tangent) }
    @inlinable public static func * (a: Self, b: Self) -> Self {
        Self(a.value * b.value, a.tangent * b.value + a.value * b.tangent)
    }
    @inlinable public static func / (a: Self, b: Self) -> Self {
        let q = a.value / b.value
        return Self(q, (a.tangent - q * b.tangent) / b.value)
    }
    @inlinable public static func += (a: inout Self, b: Self) { a = a + b }
    @inlinable public static func -= (a: inout Self, b: Self) { a = a - b }
    @inlinable public static func *= (a: inout Self, b: Self) { a = a * b }
    @inlinable public static func /= (a: inout Self, b: Self) { a = a / b }
    @inlinable public static prefix func - (a: Self) -> Self { Self(-a.value, -a.tangent) }
    @inlinable public mutating func negate() { self = -self }

    @inlinable public func remainder(dividingBy other: Self) -> Self {
        let r = value.remainder(dividingBy: other.value)
        let n = ((value - r) / other.value).rounded()
        return Self(r, tangent - n * other.tangent)
    }
    @inlinable public mutating func formRemainder(dividingBy other: Self) { self = remainder(dividingBy: other) }
    @inlinable public func truncatingRemainder(dividingBy other: Self) -> Self {
        let r = value.truncatingRemainder(dividingBy: other.value)
        let n = ((value - r) / other.value).rounded()
        return Self(r, tangent - n * other.tangent)
    }
    @inlinable public mutating func formTruncatingRemainder(dividingBy other: Self) { self = truncatingRemainder(dividingBy: other) }
    @inlinable public func squareRoot() -> Self {
        let s = value.squareRoot()
        return Self(s, tangent / (2 * s))
    }
    @inlinable public mutating func formSquareRoot() { self = squareRoot() }
    /// `self + lhs·rhs`; the value is fused as `T` fuses it.
    @inlinable public func addingProduct(_ lhs: Self, _ rhs: Self) -> Self {
        Self(value.addingProduct(lhs.value, rhs.value),
             tangent + lhs.tangent * rhs.value + lhs.value * rhs.tangent)
    }
    @inlinable public mutating func addProduct(_ lhs: Self, _ rhs: Self) { self = addingProduct(lhs, rhs) }
    @inlinable public func rounded(_ rule: FloatingPointRoundingRule) -> Self { Self(constant: value.rounded(rule)) }
    @inlinable public mutating func round(_ rule: FloatingPointRoundingRule) { self = rounded(rule) }
    @inlinable public var nextUp: Self { Self(value.nextUp, tangent) }

    @inlinable public func isEqual(to other: Self) -> Bool { value.isEqual(to: other.value) }
    @inlinable public func isLess(than other: Self) -> Bool { value.isLess(than: other.value) }
    @inlinable public func isLessThanOrEqualTo(_ other: Self) -> Bool { value.isLessThanOrEqualTo(other.value) }
    @inlinable public func isTotallyOrdered(belowOrEqualTo other: Self) -> Bool { value.isTotallyOrdered(belowOrEqualTo: other.value) }
    @inlinable public var isNormal: Bool { value.isNormal }
    @inlinable public var isFinite: Bool { value.isFinite }
    @inlinable public var isZero: Bool { value.isZero }
    @inlinable public var isSubnormal: Bool { value.isSubnormal }
    @inlinable public var isInfinite: Bool { value.isInfinite }
    @inlinable public var isNaN: Bool { value.isNaN }
    @inlinable public var isSignalingNaN: Bool { value.isSignalingNaN }
    @inlinable public var isCanonical: Bool { value.isCanonical }
    @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(value) }
    @inlinable public func distance(to other: Self) -> Self { other - self }
    @inlinable public func advanced(by n: Self) -> Self { self + n }
}

extension Dual: Real {
    @inlinable static func chain(_ v: T, _ d: T, _ t: T) -> Self { Self(v, d * t) }

    @inlinable public static func exp(_ x: Self) -> Self { let e = T.exp(x.value); return Self(e, e * x.tangent) }
    @inlinable public static func expMinusOne(_ x: Self) -> Self { chain(.expMinusOne(x.value), .exp(x.value), x.tangent) }
    @inlinable public static func cosh(_ x: Self) -> Self { chain(.cosh(x.value), .sinh(x.value), x.tangent) }
    @inlinable public static func sinh(_ x: Self) -> Self { chain(.sinh(x.value), .cosh(x.value), x.tangent) }
    @inlinable public static func tanh(_ x: Self) -> Self { let t = Elementary.tanh(x.value); return chain(t, 1 - t * t, x.tangent) }
    @inlinable public static func cos(_ x: Self) -> Self { chain(.cos(x.value), -T.sin(x.value), x.tangent) }
    @inlinable public static func sin(_ x: Self) -> Self { chain(.sin(x.value), .cos(x.value), x.tangent) }
    @inlinable public static func tan(_ x: Self) -> Self { let t = T.tan(x.value); return chain(t, 1 + t * t, x.tangent) }
    @inlinable public static func log(_ x: Self) -> Self { Self(.log(x.value), x.tangent / x.value) }
    @inlinable public static func log(onePlus x: Self) -> Self { Self(.log(onePlus: x.value), x.tangent / (1 + x.value)) }
    @inlinable public static func acosh(_ x: Self) -> Self {
        Self(.acosh(x.value), x.tangent / ((x.value - 1).squareRoot() * (x.value + 1).squareRoot()))
    }
    @inlinable public static func asinh(_ x: Self) -> Self { Self(.asinh(x.value), x.tangent / T.hypot(x.value, 1)) }
    @inlinable public static func atanh(_ x: Self) -> Self { Self(.atanh(x.value), x.tangent / ((1 - x.value) * (1 + x.value))) }
    @inlinable public static func acos(_ x: Self) -> Self { Self(.acos(x.value), -x.tangent / ((1 - x.value) * (1 + x.value)).squareRoot()) }
    @inlinable public static func asin(_ x: Self) -> Self { Self(.asin(x.value), x.tangent / ((1 - x.value) * (1 + x.value)).squareRoot()) }
    @inlinable public static func atan(_ x: Self) -> Self { Self(.atan(x.value), x.tangent / (1 + x.value * x.value)) }
    /// d(xʸ) = y·x^(y−1)·dx + xʸ·log(x)·dy (the second term only when dy ≠ 0).
    @inlinable public static func pow(_ x: Self, _ y: Self) -> Self {
        let z = T.pow(x.value, y.value)
        var t = x.tangent.isZero ? 0 : y.value * T.pow(x.value, y.value - 1) * x.tangent
        if !y.tangent.isZero { t += z * T.log(x.value) * y.tangent }
        return Self(z, t)
    }
    @inlinable public static func pow(_ x: Self, _ n: Int) -> Self {
        Self(.pow(x.value, n), n == 0 ? 0 : T(n) * T.pow(x.value, n - 1) * x.tangent)
    }
    @inlinable public static func sqrt(_ x: Self) -> Self { x.squareRoot() }
    @inlinable public static func root(_ x: Self, _ n: Int) -> Self {
        let r = T.root(x.value, n)
        return Self(r, r / (T(n) * x.value) * x.tangent)
    }
    @inlinable public static func atan2(y: Self, x: Self) -> Self {
        let d = x.value * x.value + y.value * y.value
        return Self(.atan2(y: y.value, x: x.value), (x.value * y.tangent - y.value * x.tangent) / d)
    }
    @inlinable public static func erf(_ x: Self) -> Self {
        let d = 2 / T.pi.squareRoot() * T.exp(-x.value * x.value)
        return chain(.erf(x.value), d, x.tangent)
    }
    @inlinable public static func erfc(_ x: Self) -> Self {
        let d = -2 / T.pi.squareRoot() * T.exp(-x.value * x.value)
        return chain(.erfc(x.value), d, x.tangent)
    }
    @inlinable public static func exp2(_ x: Self) -> Self { let e = T.exp2(x.value); return chain(e, e * T.log(2), x.tangent) }
    @inlinable public static func exp10(_ x: Self) -> Self { let e = T.exp10(x.value); return chain(e, e * T.log(10), x.tangent) }
    @inlinable public static func hypot(_ x: Self, _ y: Self) -> Self {
        let h = T.hypot(x.value, y.value)
        return Self(h, (x.value * x.tangent + y.value * y.tangent) / h)
    }
    /// Γ'(x) = Γ(x)·ψ(x), with ψ from ``Digamma``.
    @inlinable public static func gamma(_ x: Self) -> Self {
        let g = T.gamma(x.value)
        return chain(g, g * Digamma.psi(x.value), x.tangent)
    }
    @inlinable public static func log2(_ x: Self) -> Self { Self(.log2(x.value), x.tangent / (x.value * T.log(2))) }
    @inlinable public static func log10(_ x: Self) -> Self { Self(.log10(x.value), x.tangent / (x.value * T.log(10))) }
    @inlinable public static func logGamma(_ x: Self) -> Self { chain(.logGamma(x.value), Digamma.psi(x.value), x.tangent) }
    public static func signGamma(_ x: Self) -> FloatingPointSign { T.signGamma(x.value) }
    @inlinable public static func _mulAdd(_ a: Self, _ b: Self, _ c: Self) -> Self { c.addingProduct(a, b) }
}

extension Dual: ComputeScalar where T: ComputeScalar {
    public static var formatName: String { "dual-" + T.formatName }
    @inlinable public init(roundingDouble x: Double) { self.init(constant: T(roundingDouble: x)) }
    @inlinable public var doubleValue: Double { value.doubleValue }
    /// The component type's dual dot product when it has one (`MPFloat`), else nil.
    @inlinable public static func recursiveDot(_ x: UnsafeBufferPointer<Self>, _ y: UnsafeBufferPointer<Self>) -> Self? {
        T.dualRecursiveDot(x, y)
    }
    /// The component type's dual tanh when it has one (`Float`), else nil.
    @inlinable public static func tanhValues(_ z: [Self]) -> [Self]? { T.dualTanhValues(z) }
    /// The component's values with zero tangents (`Dual(roundingDouble:)` of the same Doubles).
    @inlinable public static func fromBinary32Rounding(_ x: [Float]) -> [Self]? { T.fromBinary32Rounding(x)?.map { Dual($0, 0) } }
}
