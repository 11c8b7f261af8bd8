/// Arithmetic on Doubles rounded into a format chosen at run time: each
/// operation's exact result is rounded once (TwoSum / TwoProduct / FMA residuals
/// supply the tail, see ``FormatRounding``). Used by pipeline stages whose format
/// is a policy setting (NUMERICS.md §2: `param`, `grad`, `hvp`) rather than a type.
///
/// `format == nil` means binary64 with round-to-nearest (plain Double arithmetic).
public struct FormatArithmetic: Sendable, Equatable, CustomStringConvertible {
    public var format: FloatFormat? { didSet { fast = Self.fastPath(format, mode) } }
    public var mode: RoundingMode { didSet { fast = Self.fastPath(format, mode) } }
    /// 0: generic core; 1: binary32 nearest; 2: bfloat16 nearest; 3: binary64 (exact shortcuts
    /// when an operation has no tail: hardware Double→Float conversion is one
    /// correct rounding, and bf16 from an exact binary32 value is the RNE bit trick).
    @usableFromInline var fast: UInt8 = 0

    public init(format: FloatFormat?, mode: RoundingMode = .nearest) {
        self.format = format; self.mode = mode
        fast = Self.fastPath(format, mode)
    }

    static func fastPath(_ f: FloatFormat?, _ mode: RoundingMode) -> UInt8 {
        guard let f else { return 3 }
        guard mode == .nearest else { return 0 }
        if f.p == 24 && f.emin == -126 && f.emax == 127 && f.subnormals && f.infinities { return 1 }
        if f.p == 8 && f.emin == -126 && f.emax == 127 && f.subnormals && f.infinities { return 2 }
        return 0
    }
    public static let fp64 = FormatArithmetic(format: nil)

    /// binary32 with round-to-nearest.
    @inlinable public var isBinary32Nearest: Bool { fast == 1 }
    /// Rounding a binary32 value into this format returns it unchanged (binary32 or
    /// binary64, to nearest).
    @inlinable public var containsBinary32: Bool { fast == 1 || fast == 3 }

    /// A stage format by name: the emulated formats, `fp32`, `fp64` (or any `mpfrN`,
    /// which at this stage means "no rounding beyond binary64").
    public init(name: String, mode: RoundingMode = .nearest) throws {
        try self.init(ScalarFormat(name), mode: mode)
    }

    /// The arithmetic of a stage in `format` (no rounding beyond binary64 for mpfrN, whose
    /// values a Double stage cannot hold more precisely; fp64 to nearest is plain Double).
    public init(_ format: ScalarFormat, mode: RoundingMode = .nearest) throws {
        switch format.kind {
        case .mpfr:
            guard mode == .nearest else { throw ScalarRegistryError.unsupportedRounding(format: format.name, rounding: mode) }
            self.init(format: nil)
        case .binary(let f):
            self.init(format: f == .fp64 && mode == .nearest ? nil : f, mode: mode)
        }
    }

    public var description: String { (format?.name ?? "fp64") + (mode == .nearest ? "" : "/\(mode.rawValue)") }

    @inlinable @inline(__always) public func round(_ x: Double, tail: Double = 0) -> Double {
        // The fast paths test `fast` only (binding `format` would copy a FloatFormat and
        // retain its name on every operation) and stay inline; the general rounding is
        // one call.
        switch fast {
        case 3:
            return x                                     // binary64, nearest: plain Double arithmetic
        case 1:
            // Binary32 nearest: Float(x) is the correct rounding of x + tail unless x
            // lies exactly halfway between two binary32 numbers (29 dropped bits
            // 1000…0) and the tail breaks the tie. Normal range only.
            let a = x.magnitude
            if a >= 0x1p-126 && a.isFinite && (tail == 0 || x.bitPattern & 0x1FFF_FFFF != 0x1000_0000) {
                return Double(Float(x))
            }
        case 2:
            if tail == 0 {
                let fx = Float(x)
                if Double(fx) == x { return Double(BFloat16(fx).floatValue) }   // x exact in binary32
            }
        default:
            break
        }
        return roundGeneral(x, tail: tail)
    }

    @usableFromInline func roundGeneral(_ x: Double, tail: Double) -> Double {
        guard let f = format else { return x }
        return FormatRounding.round(x, tail: tail, to: f, mode: mode)
    }
    @inlinable @inline(__always) public func add(_ a: Double, _ b: Double) -> Double {
        let (s, e) = FormatRounding.twoSum(a, b)
        return round(s, tail: e)
    }
    @inlinable @inline(__always) public func sub(_ a: Double, _ b: Double) -> Double { add(a, -b) }
    @inlinable @inline(__always) public func mul(_ a: Double, _ b: Double) -> Double {
        let p = a * b
        if fast == 3 { return p }
        if fast == 1, let r = Self.binary32(p) { return r }
        return round(p, tail: p.isFinite ? (-p).addingProduct(a, b) : 0)   // exact product error (FMA)
    }
    @inlinable @inline(__always) public func div(_ a: Double, _ b: Double) -> Double {
        let q = a / b
        if fast == 3 { return q }
        if fast == 1, let r = Self.binary32(q) { return r }
        guard q.isFinite, q != 0 else { return round(q) }
        return round(q, tail: a.addingProduct(-q, b) / b)
    }
    /// `a + b·c` with one rounding. The exact value is a + p + pe (p = fl(b·c), pe its
    /// exact error by FMA); TwoSum(a, p) = s + e, then e + pe = t + f and s + t = s₂ + r,
    /// all exact, so the value is s₂ + (r + f) with the tail below half an ulp of s₂
    /// even when a cancels b·c (then pe, not e, carries the result's low bits).
    @inlinable @inline(__always) public func fma(_ a: Double, _ b: Double, _ c: Double) -> Double {
        if fast == 3 { return a.addingProduct(b, c) }    // binary64: the hardware's fused operation
        if fast == 1 {
            if let r = Self.binary32(sum: a, b * c) { return r }                    // the common case, no fused operation
            if let r = Self.binary32(a.addingProduct(b, c)) { return r }           // fused result is a correct binary64 rounding
        }
        let p = b * c
        guard p.isFinite else { return round(a + p) }
        let pe = (-p).addingProduct(b, c)                // exact error of the product
        let (s, e) = FormatRounding.twoSum(a, p)
        let (t, f) = FormatRounding.twoSum(e, pe)
        let (s2, r) = FormatRounding.twoSum(s, t)
        return round(s2, tail: r + f)
    }

    /// Binary32 round-to-nearest of a + p, p = fl(b·c) the rounded product, from plain
    /// Double arithmetic when ``binary32Decides(sum:product:)`` says r = fl(a + p) rounds
    /// like the exact a + b·c; nil otherwise. On targets without a hardware FMA this
    /// avoids the library's fused multiply-add: the FD perturbation fl(θ + εv) runs
    /// through here for every parameter.
    @inlinable @inline(__always)
    static func binary32(sum a: Double, _ p: Double) -> Double? {
        let r = a + p
        return binary32Decides(sum: r, product: p) ? Double(Float(r)) : nil
    }

    /// Whether `Float(r)`, r = fl(a + p) with p = fl(b·c), is the binary32 rounding to
    /// nearest of the exact a + b·c. When |p| ≤ 2¹²|r|, ulp(p) ≤ 2¹² ulp(r), so r is
    /// within (2¹² + 1)/2 ulp(r) of the exact value (p's rounding error ≤ ulp(p)/2, the
    /// sum's ≤ ulp(r)/2); if r also lies more than 2¹² ulp(r) from a binary32 midpoint
    /// (its 29 dropped bits differ from 1000…0 by more than 2¹²), both round alike.
    /// Also requires r in binary32's normal range. Fails for about 2⁻¹⁶ of random
    /// operands and when a nearly cancels b·c. Branch-free (32-bit integer and Double
    /// compares only), so loops over it vectorize.
    @inlinable @inline(__always)
    public static func binary32Decides(sum r: Double, product p: Double) -> Bool {
        let m = r.magnitude
        let near: Int32 = p.magnitude <= 0x1p12 * m ? 1 : 0, normal: Int32 = m >= 0x1p-126 && m < 0x1p127 ? 1 : 0
        let clear: Int32 = clearOfBinary32Midpoint(r, by: 0x1000) ? 1 : 0
        return near & normal & clear != 0                 // no short-circuit: selects, not branches
    }

    /// Whether x (in binary32's normal range) lies more than `ulps` binary64 ulps from
    /// every binary32 midpoint: its 29 dropped bits differ from 1000…0 by more than
    /// `ulps` (one unsigned compare; an error of at most `ulps` ulp(x) then cannot move
    /// it across a rounding boundary).
    @inlinable @inline(__always)
    static func clearOfBinary32Midpoint(_ x: Double, by ulps: UInt32) -> Bool {
        let dropped = UInt32(truncatingIfNeeded: x.bitPattern) & 0x1FFF_FFFF
        return dropped &- (0x1000_0000 - ulps) > 2 * ulps
    }

    /// Binary32 round-to-nearest of a Double that is the correctly rounded binary64
    /// result of an operation (|exact − x| ≤ ulp(x)/2): `Float(x)` is then the correct
    /// rounding of the exact value unless x is a binary32 midpoint (where the exact
    /// value may lie on either side) or outside the normal range; nil in those cases.
    @inlinable @inline(__always)
    static func binary32(_ x: Double) -> Double? {
        let a = x.magnitude
        guard a >= 0x1p-126 && a.isFinite && x.bitPattern & 0x1FFF_FFFF != 0x1000_0000 else { return nil }
        return Double(Float(x))
    }
}
