import CKernels
import CMPFR
import RealModule

/// A binary floating-point number of `bits` significand bits backed by MPFR, with
/// the precision in the type (`MPFloat<256>`), round-to-nearest-even on every
/// operation, and value semantics.
///
/// Precision is part of the value's story, as with Julia's `BigFloat`, but fixed
/// per type rather than by a global setting: two `MPFloat<256>` always agree on
/// precision, and mixing precisions needs an explicit conversion
/// (``init(_:)-(MPFloat<other>)``) whose rounding is visible.
///
/// Ownership: each value owns one `ManagedBuffer` whose header is the `mpfr_t`
/// and whose tail holds the significand limbs (MPFR's custom-allocation
/// interface, `mpfr_custom_init_set`). Exactly one object owns each `mpfr_t`, and
/// releasing it frees header and limbs together; there is no `mpfr_clear` to
/// forget or to call twice. One allocation per value rather than two is also what
/// keeps temporaries cheap. Mutation is copy-on-write.
///
/// Every arithmetic operation and elementary function is MPFR's, correctly
/// rounded to nearest. Exponent range: MPFR's default (about ±2³⁰), no subnormals.
/// Conversion from `Double` is exact (`bits ≥ 53`); to `Double` correctly rounded.
/// Supported precisions: 53 … 16384 bits (checked when the first value is made).
public struct MPFloat<let bits: Int>: @unchecked Sendable {
    @usableFromInline typealias Buffer = ManagedBuffer<__mpfr_struct, mp_limb_t>
    @usableFromInline var buffer: Buffer

    /// Significand bits of this type.
    @inlinable public static var precision: Int { bits }
    @inlinable static var limbCount: Int { (bits + 63) / 64 }

    /// A new +0.
    @inlinable @inline(__always)
    init(_zero: ()) {
        precondition(bits >= 53 && bits <= 16384, "MPFloat supports 53...16384 bits")
        buffer = Buffer.create(minimumCapacity: Self.limbCount) { _ in __mpfr_struct() }
        buffer.withUnsafeMutablePointers { h, limbs in
            mpfr_custom_init_set(h, hh_mpfr_zero_kind(), 0, mpfr_prec_t(bits), limbs)
        }
    }

    @inlinable @inline(__always)
    func read<R>(_ body: (UnsafePointer<__mpfr_struct>) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutablePointerToHeader { try body(UnsafePointer($0)) }
    }

    @inlinable @inline(__always)
    mutating func write<R>(_ body: (UnsafeMutablePointer<__mpfr_struct>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&buffer) {
            let fresh = Self(_zero: ())
            fresh.buffer.withUnsafeMutablePointerToHeader { d in read { s in _ = mpfr_set(d, s, MPFR_RNDN) } }
            buffer = fresh.buffer
        }
        return try buffer.withUnsafeMutablePointerToHeader(body)
    }

    /// A fresh value computed by `body` into its (unique) `mpfr_t`.
    @inlinable @inline(__always)
    static func make(_ body: (UnsafeMutablePointer<__mpfr_struct>) -> Void) -> Self {
        let r = Self(_zero: ())
        r.buffer.withUnsafeMutablePointerToHeader(body)
        return r
    }

    @inlinable @inline(__always)
    static func unary(_ x: Self, _ op: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) -> Self {
        make { r in x.read { a in _ = op(r, a, MPFR_RNDN) } }
    }

    @inlinable @inline(__always)
    static func binary(_ x: Self, _ y: Self, _ op: (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) -> Self {
        make { r in x.read { a in y.read { b in _ = op(r, a, b, MPFR_RNDN) } } }
    }

    // MARK: Conversions

    /// Exact for `bits ≥ 53`.
    @inlinable public init(_ x: Double) { self.init(_zero: ()); write { _ = mpfr_set_d($0, x, MPFR_RNDN) } }
    @inlinable public init(_ x: Float) { self.init(Double(x)) }
    @inlinable public init(_ x: Int) { self.init(_zero: ()); write { _ = mpfr_set_si($0, x, MPFR_RNDN) } }

    /// Rounds a value of another precision to this one (to nearest).
    @inlinable public init<let other: Int>(_ x: MPFloat<other>) {
        self.init(_zero: ())
        write { d in x.read { s in _ = mpfr_set(d, s, MPFR_RNDN) } }
    }

    /// Correctly rounded from the exact value of `text` (decimal, hex-float `0x…p…`,
    /// `inf`, `nan`); nil if `text` is not entirely a number.
    public init?(_ text: String) {
        self.init(_zero: ())
        let s = text.trimmingCharacters(in: " ")
        guard !s.isEmpty else { return nil }
        let ok: Bool = write { p in
            s.withCString { cs in
                var end: UnsafeMutablePointer<CChar>? = nil
                _ = mpfr_strtofr(p, cs, &end, 0, MPFR_RNDN)
                return end != nil && end!.pointee == 0 && end! != UnsafeMutablePointer(mutating: cs)
            }
        }
        if !ok { return nil }
    }

    /// Correctly rounded to nearest Double.
    @inlinable public var doubleValue: Double { read { mpfr_get_d($0, MPFR_RNDN) } }

    /// Decimal digits needed for a round trip at this precision (`mpfr_get_str_ndigits`).
    public static var roundTripDigits: Int { mpfr_get_str_ndigits(10, mpfr_prec_t(bits)) }

    /// `count` significant decimal digits (default: enough to round-trip), laid
    /// out like ``ShortestDecimal/layout(negative:digits:exponent10:)``.
    public func decimalString(digits count: Int? = nil) -> String {
        if isNaN { return "nan" }
        if isInfinite { return sign == .minus ? "-inf" : "inf" }
        if isZero { return sign == .minus ? "-0.0" : "0.0" }
        let n = count ?? Self.roundTripDigits
        let (d, e) = read { ShortestDecimal.mpfrDigits($0, count: n) }
        return ShortestDecimal.layout(negative: sign == .minus, digits: d, exponent10: e)
    }

    /// The recursive dot product `s ← fl(s + fl(aᵢ·bᵢ))` left to right from +0, both
    /// operations rounded to nearest at this precision: the values of an
    /// `mpfr_mul` + `mpfr_add` loop (and of ``Accumulation`` `recursive` over the
    /// generic operators), bit for bit.
    ///
    /// For precisions up to 512 bits the loop is CKernels' fixed-width limb code
    /// (`hh_mpfr_dot`: the exact limb product, then round-to-nearest-even by round and
    /// sticky bits, about 3× MPFR's calls); NaN, infinities and exponents beyond a
    /// quarter of MPFR's range continue through MPFR itself. Tested bit for bit
    /// against the MPFR loop (`MPFloatDotTests`).
    @inlinable
    public static func dot(_ a: [Self], _ b: [Self]) -> Self {
        precondition(a.count == b.count, "dot: length mismatch")
        return a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in dot(pa, pb) } }
    }

    /// ``dot(_:_:)`` over buffers.
    @inlinable
    public static func dot(_ a: UnsafeBufferPointer<Self>, _ b: UnsafeBufferPointer<Self>) -> Self {
        precondition(a.count == b.count, "dot: length mismatch")
        // Resolve every operand's mpfr_t once; the buffers keep the values alive for the
        // whole call. (Inlinable: specialized, the loop is two loads per element.)
        let n = a.count
        var acc = Self(_zero: ())
        if n == 0 { return acc }
        let pointers = UnsafeMutableBufferPointer<UnsafeRawPointer?>.allocate(capacity: 2 * n)
        defer { pointers.deallocate() }
        for i in 0..<n {
            pointers[i] = a[i].mpfrPointer
            pointers[n + i] = b[i].mpfrPointer
        }
        let base = pointers.baseAddress!
        acc.write { s in hh_mpfr_dot(n, base, base + n, UnsafeMutableRawPointer(s)) }
        return acc
    }

    /// This value's `mpfr_t`, for the C loops; valid while the value is alive and unchanged.
    @inlinable var mpfrPointer: UnsafeRawPointer { UnsafeRawPointer(buffer.withUnsafeMutablePointerToHeader { $0 }) }

    /// The recursive dot product of dual numbers, `s ← s + x·y` from (+0, +0) with
    /// `x·y = (xv·yv, xt·yv + xv·yt)`, every product and sum rounded to nearest: the
    /// values of `Dual`'s operators (forward-over-reverse in MPFR), by CKernels'
    /// `hh_mpfr_dual_dot` (the limb loop of ``dot(_:_:)-(UnsafeBufferPointer<Self>,_)``,
    /// no temporary values). Tested bit for bit against the operator loop.
    @inlinable
    public static func dualDot(_ x: UnsafeBufferPointer<Dual<Self>>, _ y: UnsafeBufferPointer<Dual<Self>>) -> Dual<Self> {
        precondition(x.count == y.count, "dot: length mismatch")
        let n = x.count
        if n == 0 { return Dual(Self(_zero: ()), Self(_zero: ())) }
        let pointers = UnsafeMutableBufferPointer<UnsafeRawPointer?>.allocate(capacity: 4 * n)
        defer { pointers.deallocate() }
        for i in 0..<n {
            pointers[i] = x[i].value.mpfrPointer
            pointers[n + i] = x[i].tangent.mpfrPointer
            pointers[2 * n + i] = y[i].value.mpfrPointer
            pointers[3 * n + i] = y[i].tangent.mpfrPointer
        }
        var value = Self(_zero: ()), tangent = Self(_zero: ())
        let base = pointers.baseAddress!
        value.write { v in tangent.write { t in
            hh_mpfr_dual_dot(n, base, base + n, base + 2 * n, base + 3 * n, UnsafeMutableRawPointer(v), UnsafeMutableRawPointer(t))
        } }
        return Dual(value, tangent)
    }

    /// The same dot product by MPFR's own calls, one `mpfr_mul` and one `mpfr_add`
    /// per element: the reference ``dot(_:_:)`` is tested against.
    public static func mpfrLoopDot(_ a: [Self], _ b: [Self]) -> Self {
        precondition(a.count == b.count, "dot: length mismatch")
        var acc = Self(_zero: ())
        let tmp = Self(_zero: ())
        withExtendedLifetime((a, b, tmp)) {
            tmp.buffer.withUnsafeMutablePointerToHeader { t in
                acc.write { s in
                    for i in 0..<a.count {
                        a[i].read { x in b[i].read { y in
                            _ = mpfr_mul(t, x, y, MPFR_RNDN)
                            _ = mpfr_add(s, s, t, MPFR_RNDN)
                        } }
                    }
                }
            }
        }
        return acc
    }
}

extension Double {
    /// Correctly rounded (to nearest) from an MPFloat.
    @inlinable public init<let b: Int>(_ x: MPFloat<b>) { self = x.doubleValue }
}
extension Float {
    /// Correctly rounded (to nearest) from an MPFloat.
    @inlinable public init<let b: Int>(_ x: MPFloat<b>) { self = x.read { mpfr_get_flt($0, MPFR_RNDN) } }
}

// MARK: - FloatingPoint

extension MPFloat: FloatingPoint {
    public typealias Exponent = Int
    public typealias Magnitude = MPFloat<bits>
    public typealias Stride = MPFloat<bits>
    public typealias IntegerLiteralType = Int

    @inlinable public init(integerLiteral value: Int) { self.init(value) }

    /// The integer rounded to nearest, and MPFR's ternary value (0 when exact).
    @inlinable
    static func fromInteger<Source: BinaryInteger>(_ value: Source) -> (Self, Int32) {
        var r = Self(_zero: ())
        if let i = Int(exactly: value) {
            let t = r.write { mpfr_set_si($0, i, MPFR_RNDN) }
            return (r, t)
        }
        let t = r.write { p in String(value).withCString { mpfr_set_str(p, $0, 10, MPFR_RNDN) } }
        // mpfr_set_str returns 0 on success and does not report inexactness:
        // recover it by comparing with a wide-enough exact conversion.
        _ = t
        let digits = String(value.magnitude).count
        let wideBits = Int(Double(digits) * 3.33) + 8
        let wide = MPFRScratch(precision: max(wideBits, 64))
        _ = String(value).withCString { mpfr_set_str(wide.x, $0, 10, MPFR_RNDN) }   // exact
        let cmp = r.read { mpfr_cmp($0, wide.x) }
        return (r, cmp)
    }

    @inlinable
    public init<Source: BinaryInteger>(_ value: Source) { self = Self.fromInteger(value).0 }

    @inlinable
    public init?<Source: BinaryInteger>(exactly value: Source) {
        let (r, t) = Self.fromInteger(value)
        guard t == 0 else { return nil }
        self = r
    }

    @inlinable
    public init(sign: FloatingPointSign, exponent: Int, significand: Self) {
        self.init(_zero: ())
        write { r in significand.read { s in _ = mpfr_mul_2si(r, s, exponent, MPFR_RNDN) } }
        if sign == .minus { write { _ = mpfr_neg($0, $0, MPFR_RNDN) } }
    }

    @inlinable
    public init(signOf: Self, magnitudeOf: Self) {
        self.init(_zero: ())
        write { r in signOf.read { s in magnitudeOf.read { m in _ = mpfr_copysign(r, m, s, MPFR_RNDN) } } }
    }

    public static var radix: Int { 2 }
    @inlinable public static var nan: Self { make { mpfr_set_nan($0) } }
    @inlinable public static var signalingNaN: Self { nan }
    @inlinable public static var infinity: Self { make { mpfr_set_inf($0, 1) } }
    @inlinable public static var greatestFiniteMagnitude: Self {
        make { r in
            _ = mpfr_set_ui(r, 1, MPFR_RNDN)
            mpfr_nextbelow(r)
            _ = mpfr_mul_2si(r, r, mpfr_get_emax(), MPFR_RNDN)
        }
    }
    /// π rounded toward zero, as `FloatingPoint.pi` specifies.
    @inlinable public static var pi: Self { make { _ = mpfr_const_pi($0, MPFR_RNDZ) } }
    @inlinable public static var leastNormalMagnitude: Self {
        make { r in _ = mpfr_set_ui_2exp(r, 1, mpfr_get_emin() - 1, MPFR_RNDN) }
    }
    @inlinable public static var leastNonzeroMagnitude: Self { leastNormalMagnitude }

    @inlinable public var ulp: Self {
        if isNaN || isInfinite { return .nan }
        if isZero { return .leastNonzeroMagnitude }
        let e = read { mpfr_get_exp($0) }
        return Self.make { r in _ = mpfr_set_ui_2exp(r, 1, e - mpfr_exp_t(bits), MPFR_RNDN) }
    }

    @inlinable public var sign: FloatingPointSign { read { mpfr_signbit($0) != 0 } ? .minus : .plus }
    @inlinable public var exponent: Int {
        if isZero { return .min }
        if isNaN || isInfinite { return .max }
        return read { Int(mpfr_get_exp($0)) } - 1
    }
    @inlinable public var significand: Self {
        if isNaN { return .nan }
        if isInfinite { return .infinity }
        if isZero { return Self(0) }
        let e = exponent
        return Self.make { r in read { x in _ = mpfr_mul_2si(r, x, -e, MPFR_RNDN); _ = mpfr_abs(r, r, MPFR_RNDN) } }
    }
    @inlinable public var magnitude: Self { Self.unary(self, mpfr_abs) }

    @inlinable public static func + (a: Self, b: Self) -> Self { binary(a, b, mpfr_add) }
    @inlinable public static func - (a: Self, b: Self) -> Self { binary(a, b, mpfr_sub) }
    @inlinable public static func * (a: Self, b: Self) -> Self { binary(a, b, mpfr_mul) }
    @inlinable public static func / (a: Self, b: Self) -> Self { binary(a, b, mpfr_div) }
    @inlinable public static func += (a: inout Self, b: Self) { a.write { r in b.read { y in _ = mpfr_add(r, r, y, MPFR_RNDN) } } }
    @inlinable public static func -= (a: inout Self, b: Self) { a.write { r in b.read { y in _ = mpfr_sub(r, r, y, MPFR_RNDN) } } }
    @inlinable public static func *= (a: inout Self, b: Self) { a.write { r in b.read { y in _ = mpfr_mul(r, r, y, MPFR_RNDN) } } }
    @inlinable public static func /= (a: inout Self, b: Self) { a.write { r in b.read { y in _ = mpfr_div(r, r, y, MPFR_RNDN) } } }
    @inlinable public static prefix func - (a: Self) -> Self { unary(a, mpfr_neg) }
    @inlinable public mutating func negate() { write { _ = mpfr_neg($0, $0, MPFR_RNDN) } }

    @inlinable public func remainder(dividingBy other: Self) -> Self { Self.binary(self, other, mpfr_remainder) }
    @inlinable public mutating func formRemainder(dividingBy other: Self) { self = remainder(dividingBy: other) }
    @inlinable public func truncatingRemainder(dividingBy other: Self) -> Self { Self.binary(self, other, mpfr_fmod) }
    @inlinable public mutating func formTruncatingRemainder(dividingBy other: Self) { self = truncatingRemainder(dividingBy: other) }
    @inlinable public func squareRoot() -> Self { Self.unary(self, mpfr_sqrt) }
    @inlinable public mutating func formSquareRoot() { self = squareRoot() }

    /// `self + lhs × rhs` with one rounding (`mpfr_fma`).
    @inlinable public func addingProduct(_ lhs: Self, _ rhs: Self) -> Self {
        Self.make { r in lhs.read { a in rhs.read { b in read { c in _ = mpfr_fma(r, a, b, c, MPFR_RNDN) } } } }
    }
    @inlinable public mutating func addProduct(_ lhs: Self, _ rhs: Self) { self = addingProduct(lhs, rhs) }

    @inlinable public func rounded(_ rule: FloatingPointRoundingRule) -> Self {
        Self.make { r in
            read { x in
                switch rule {
                case .toNearestOrEven: _ = mpfr_roundeven(r, x)
                case .toNearestOrAwayFromZero: _ = mpfr_round(r, x)
                case .towardZero: _ = mpfr_trunc(r, x)
                case .up: _ = mpfr_ceil(r, x)
                case .down: _ = mpfr_floor(r, x)
                case .awayFromZero: _ = mpfr_signbit(x) != 0 ? mpfr_floor(r, x) : mpfr_ceil(r, x)
                @unknown default: _ = mpfr_roundeven(r, x)
                }
            }
        }
    }
    @inlinable public mutating func round(_ rule: FloatingPointRoundingRule) { self = rounded(rule) }

    @inlinable public var nextUp: Self {
        var r = self
        r.write { mpfr_nextabove($0) }
        return r
    }

    @inlinable public func isEqual(to other: Self) -> Bool { read { a in other.read { b in mpfr_equal_p(a, b) != 0 } } }
    @inlinable public func isLess(than other: Self) -> Bool { read { a in other.read { b in mpfr_less_p(a, b) != 0 } } }
    @inlinable public func isLessThanOrEqualTo(_ other: Self) -> Bool { read { a in other.read { b in mpfr_lessequal_p(a, b) != 0 } } }
    public func isTotallyOrdered(belowOrEqualTo other: Self) -> Bool {
        if isNaN { return sign == .minus || (other.isNaN && other.sign == .plus) }
        if other.isNaN { return other.sign == .plus }
        if self < other { return true }
        if other < self { return false }
        if isZero { return sign == .minus || other.sign == .plus }
        return true
    }

    @inlinable public var isNormal: Bool { read { mpfr_regular_p($0) != 0 } }
    @inlinable public var isFinite: Bool { read { mpfr_number_p($0) != 0 } }
    @inlinable public var isZero: Bool { read { mpfr_zero_p($0) != 0 } }
    @inlinable public var isSubnormal: Bool { false }
    @inlinable public var isInfinite: Bool { read { mpfr_inf_p($0) != 0 } }
    @inlinable public var isNaN: Bool { read { mpfr_nan_p($0) != 0 } }
    @inlinable public var isSignalingNaN: Bool { false }
    @inlinable public var isCanonical: Bool { true }

    @inlinable public func distance(to other: Self) -> Self { other - self }
    @inlinable public func advanced(by n: Self) -> Self { self + n }

    public func hash(into hasher: inout Hasher) {
        if isNaN { hasher.combine(0x7FF8 as UInt16); return }
        if isZero { hasher.combine(0 as UInt8); return }
        if isInfinite { hasher.combine(sign == .minus ? 1 : 2 as UInt8); return }
        read { x in
            hasher.combine(mpfr_signbit(x) != 0)
            hasher.combine(mpfr_get_exp(x))
            let n = Self.limbCount
            for i in 0..<n { hasher.combine(x.pointee._mpfr_d[i]) }
        }
    }
}

extension MPFloat: CustomStringConvertible, LosslessStringConvertible, CustomDebugStringConvertible {
    /// All significant digits: enough decimal digits to round-trip at this precision.
    public var description: String { decimalString() }
    public var debugDescription: String { "MPFloat<\(bits)>(\(description))" }
}

// MARK: - Real: every function is MPFR's, correctly rounded.

extension MPFloat: Real {
    @inlinable public static func exp(_ x: Self) -> Self { unary(x, mpfr_exp) }
    @inlinable public static func expMinusOne(_ x: Self) -> Self { unary(x, mpfr_expm1) }
    @inlinable public static func cosh(_ x: Self) -> Self { unary(x, mpfr_cosh) }
    @inlinable public static func sinh(_ x: Self) -> Self { unary(x, mpfr_sinh) }
    @inlinable public static func tanh(_ x: Self) -> Self { unary(x, mpfr_tanh) }
    @inlinable public static func cos(_ x: Self) -> Self { unary(x, mpfr_cos) }
    @inlinable public static func sin(_ x: Self) -> Self { unary(x, mpfr_sin) }
    @inlinable public static func tan(_ x: Self) -> Self { unary(x, mpfr_tan) }
    @inlinable public static func log(_ x: Self) -> Self { unary(x, mpfr_log) }
    @inlinable public static func log(onePlus x: Self) -> Self { unary(x, mpfr_log1p) }
    @inlinable public static func acosh(_ x: Self) -> Self { unary(x, mpfr_acosh) }
    @inlinable public static func asinh(_ x: Self) -> Self { unary(x, mpfr_asinh) }
    @inlinable public static func atanh(_ x: Self) -> Self { unary(x, mpfr_atanh) }
    @inlinable public static func acos(_ x: Self) -> Self { unary(x, mpfr_acos) }
    @inlinable public static func asin(_ x: Self) -> Self { unary(x, mpfr_asin) }
    @inlinable public static func atan(_ x: Self) -> Self { unary(x, mpfr_atan) }
    @inlinable public static func pow(_ x: Self, _ y: Self) -> Self { binary(x, y, mpfr_pow) }
    @inlinable public static func pow(_ x: Self, _ n: Int) -> Self {
        make { r in x.read { a in _ = mpfr_pow_si(r, a, n, MPFR_RNDN) } }
    }
    @inlinable public static func sqrt(_ x: Self) -> Self { unary(x, mpfr_sqrt) }
    /// `x^(1/n)`, negative for negative `x` and odd `n` (`mpfr_rootn_ui`); for
    /// `n < 0` the reciprocal of the root (two roundings).
    @inlinable public static func root(_ x: Self, _ n: Int) -> Self {
        if n == 0 { return .nan }
        let r = make { r in x.read { a in _ = mpfr_rootn_ui(r, a, UInt(n.magnitude), MPFR_RNDN) } }
        return n > 0 ? r : Self(1) / r
    }
    @inlinable public static func atan2(y: Self, x: Self) -> Self { binary(y, x, mpfr_atan2) }
    @inlinable public static func erf(_ x: Self) -> Self { unary(x, mpfr_erf) }
    @inlinable public static func erfc(_ x: Self) -> Self { unary(x, mpfr_erfc) }
    @inlinable public static func exp2(_ x: Self) -> Self { unary(x, mpfr_exp2) }
    @inlinable public static func exp10(_ x: Self) -> Self { unary(x, mpfr_exp10) }
    @inlinable public static func hypot(_ x: Self, _ y: Self) -> Self { binary(x, y, mpfr_hypot) }
    @inlinable public static func gamma(_ x: Self) -> Self { unary(x, mpfr_gamma) }
    @inlinable public static func log2(_ x: Self) -> Self { unary(x, mpfr_log2) }
    @inlinable public static func log10(_ x: Self) -> Self { unary(x, mpfr_log10) }
    /// log |Γ(x)| (`mpfr_lgamma`).
    @inlinable public static func logGamma(_ x: Self) -> Self {
        make { r in x.read { a in var s: Int32 = 0; _ = mpfr_lgamma(r, &s, a, MPFR_RNDN) } }
    }
    public static func signGamma(_ x: Self) -> FloatingPointSign {
        var s: Int32 = 1
        let tmp = Self(_zero: ())
        tmp.buffer.withUnsafeMutablePointerToHeader { r in x.read { a in _ = mpfr_lgamma(r, &s, a, MPFR_RNDN) } }
        return s < 0 ? .minus : .plus
    }
    @inlinable public static func _mulAdd(_ a: Self, _ b: Self, _ c: Self) -> Self { c.addingProduct(a, b) }
}

extension MPFloat: ComputeScalar {
    public static var formatName: String { "mpfr\(bits)" }
    @inlinable public init(roundingDouble x: Double) { self.init(x) }
    /// ``dot(_:_:)-(UnsafeBufferPointer<Self>,_)``: the same bits as the generic loop.
    @inlinable public static func recursiveDot(_ x: UnsafeBufferPointer<Self>, _ y: UnsafeBufferPointer<Self>) -> Self? { dot(x, y) }
    /// ``dualDot(_:_:)``: the same bits as the generic loop over `Dual<MPFloat>`.
    @inlinable public static func dualRecursiveDot(_ x: UnsafeBufferPointer<Dual<Self>>, _ y: UnsafeBufferPointer<Dual<Self>>) -> Dual<Self>? {
        dualDot(x, y)
    }
}
