import CMPFR

/// A scratch MPFR number with exactly one owner: initialized in `init`, cleared in
/// `deinit`. Used by the oracle, text conversions and tests (not by ``MPFloat``,
/// which keeps its limbs inline).
public final class MPFRScratch {
    public let x: UnsafeMutablePointer<__mpfr_struct>
    public convenience init(_ value: Double, precision: Int = 53) {
        self.init(precision: precision)
        mpfr_set_d(x, value, MPFR_RNDN)
    }
    public init(precision: Int) {
        x = .allocate(capacity: 1)
        mpfr_init2(x, mpfr_prec_t(precision))
    }
    deinit { mpfr_clear(x); x.deallocate() }
}

/// Errors of text input.
public enum ScalarParseError: Error, CustomStringConvertible, Equatable {
    case unparsable(String)
    public var description: String {
        switch self { case .unparsable(let s): return "cannot parse '\(s)' as a number (decimal, C99 hex-float, inf, -inf or nan)" }
    }
}

/// MPFR's rounding direction for a deterministic mode (stochastic maps to nearest).
public func mpfrRounding(_ mode: RoundingMode) -> mpfr_rnd_t {
    switch mode {
    case .nearest, .stochastic: return MPFR_RNDN
    case .towardZero: return MPFR_RNDZ
    case .up: return MPFR_RNDU
    case .down: return MPFR_RNDD
    }
}

/// Reference rounding with MPFR: a value is rounded to `p` bits, then into the
/// format's exponent range with `mpfr_check_range` and `mpfr_subnormalize` (the
/// emulation recipe of the MPFR manual), with IEEE `emin`/`emax` translated to
/// MPFR's convention (significand in [1/2, 1)). This is independent of
/// ``FormatRounding`` and serves as its test oracle, and as the exact path of
/// `hessian-harness cast`.
public enum MPFROracle {
    /// Rounds the MPFR value `x` (any precision) into `f` with a non-stochastic `mode`.
    public static func round(_ x: UnsafePointer<__mpfr_struct>, to f: FloatFormat, mode: RoundingMode) -> Double {
        precondition(mode != .stochastic, "the oracle rounds deterministically")
        let y = MPFRScratch(precision: f.p)
        let inex = mpfr_set(y.x, x, mpfrRounding(mode))
        return finish(y, inex, f, mode)
    }

    /// Runs an MPFR operation `op(result, rnd)` into a `p`-bit result in MPFR's
    /// wide exponent range (correctly rounded, with its ternary value), then rounds
    /// into the format's range with subnormals: the format's correctly rounded
    /// result of the operation. E.g. `apply(to: .bf16, mode: .up) { mpfr_add($0, a.x, b.x, $1) }`.
    public static func apply(to f: FloatFormat, mode: RoundingMode,
                             _ op: (UnsafeMutablePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32) -> Double {
        let y = MPFRScratch(precision: f.p)
        let inex = op(y.x, mpfrRounding(mode))
        return finish(y, inex, f, mode)
    }

    /// Completes the rounding of `y`, already rounded to `p` bits with ternary value
    /// `inex` (the sign of `y − exact`), into the format's exponent range.
    static func finish(_ y: MPFRScratch, _ inexact: Int32, _ f: FloatFormat, _ mode: RoundingMode) -> Double {
        if mpfr_nan_p(y.x) != 0 { return mpfr_signbit(y.x) != 0 ? -.nan : .nan }
        if mpfr_inf_p(y.x) != 0 {
            return FormatRounding.nonFinite(mpfr_signbit(y.x) != 0 ? -.infinity : .infinity, f)
        }
        let rnd = mpfrRounding(mode)
        var inex = inexact
        let oldMin = mpfr_get_emin(), oldMax = mpfr_get_emax()
        mpfr_set_emin(mpfr_exp_t(f.subnormals ? f.emin - f.p + 2 : f.emin + 1))
        mpfr_set_emax(mpfr_exp_t(f.emax + 1))
        inex = mpfr_check_range(y.x, inex, rnd)
        if f.subnormals { inex = mpfr_subnormalize(y.x, inex, rnd) }
        mpfr_set_emin(oldMin); mpfr_set_emax(oldMax)
        let d = mpfr_get_d(y.x, MPFR_RNDN)                      // exact: y fits binary64
        if d.isInfinite {                                         // MPFR overflowed: the format's overflow rule
            let mag = FormatRounding.overflowMagnitude(f)
            return d < 0 ? -mag : mag
        }
        if abs(d) > f.greatestFinite {
            // Only formats without infinities get here (their all-ones code is NaN).
            let over = FormatRounding.overflows(negative: d < 0, mode: mode, up: true, truncatedBeyond: true)
            let mag = over ? FormatRounding.overflowMagnitude(f) : f.greatestFinite
            return d < 0 ? -mag : mag
        }
        return d
    }

    /// Rounds the exact Double `x` into `f`.
    public static func round(_ x: Double, to f: FloatFormat, mode: RoundingMode) -> Double {
        let t = MPFRScratch(precision: 53)
        mpfr_set_d(t.x, x, MPFR_RNDN)
        return round(t.x, to: f, mode: mode)
    }
}

/// Exact text input: decimal (`-1.5e-3`), C99 hex-float (`0x1.8p-3`), `inf`,
/// `-inf`, `nan`; parsed by MPFR (`mpfr_strtofr`, correctly rounded).
public enum ExactDecimal {
    /// Parses `text` into an MPFR scratch value of `precision` bits, round to nearest.
    static func parse(_ text: String, precision: Int, rnd: mpfr_rnd_t = MPFR_RNDN) throws -> (MPFRScratch, Int32) {
        let s = text.trimmingCharacters(in: " ")
        guard !s.isEmpty, !s.contains(" ") else { throw ScalarParseError.unparsable(text) }
        let v = MPFRScratch(precision: precision)
        var inex: Int32 = 0
        let ok: Bool = s.withCString { cs in
            var end: UnsafeMutablePointer<CChar>? = nil
            inex = mpfr_strtofr(v.x, cs, &end, 0, rnd)
            guard let end else { return false }
            return end.pointee == 0 && end != UnsafeMutablePointer(mutating: cs)
        }
        guard ok else { throw ScalarParseError.unparsable(text) }
        // mpfr_strtofr drops the sign of "-nan"; keep it (as ml_dtypes keeps -np.nan's).
        if mpfr_nan_p(v.x) != 0 && s.hasPrefix("-") { mpfr_setsign(v.x, v.x, 1, MPFR_RNDN) }
        return (v, inex)
    }

    /// Rounds the exact value of `text` directly into `f` with `mode` (no
    /// intermediate binary rounding). Stochastic rounding draws from `random`'s
    /// next uniform, with the probability computed from the exact value.
    public static func round(_ text: String, to f: FloatFormat, mode: RoundingMode,
                             random: inout SplitMix64) throws -> Double {
        if mode != .stochastic {
            // Direct: strtofr rounds the exact decimal to p bits in the same
            // direction; its ternary value lets the range step avoid double rounding.
            let (v, inex) = try parse(text, precision: f.p, rnd: mpfrRounding(mode))
            return MPFROracle.finish(v, inex, f, mode)
        }
        let (w, _) = try parse(text, precision: 4096, rnd: MPFR_RNDN)
        let lo = MPFROracle.round(w.x, to: f, mode: .down)
        let hi = MPFROracle.round(w.x, to: f, mode: .up)
        if lo == hi || !lo.isFinite || !hi.isFinite {
            return MPFROracle.round(w.x, to: f, mode: .nearest)
        }
        // P(up) = (x − lo) / (hi − lo), evaluated at 4096 bits.
        let num = MPFRScratch(precision: 4096), den = MPFRScratch(precision: 4096)
        mpfr_sub_d(num.x, w.x, lo, MPFR_RNDN)
        mpfr_set_d(den.x, hi, MPFR_RNDN)
        mpfr_sub_d(den.x, den.x, lo, MPFR_RNDN)
        mpfr_div(num.x, num.x, den.x, MPFR_RNDN)
        let pUp = mpfr_get_d(num.x, MPFR_RNDN)
        return random.nextUniform() < pUp ? hi : lo
    }

    /// ``round(_:to:mode:random:)`` for deterministic modes (stochastic uses seed 0).
    public static func round(_ text: String, to f: FloatFormat, mode: RoundingMode) throws -> Double {
        var g = SplitMix64(seed: 0)
        return try round(text, to: f, mode: mode, random: &g)
    }

    /// `|value − exact(text)|` and that over `|exact(text)|`, evaluated at 4096 bits
    /// and rounded to Double. Infinite input equal to the value gives 0.
    public static func errors(of value: Double, against text: String) throws -> (abs: Double, rel: Double) {
        let y = MPFRScratch(value)                 // named: it must outlive the call using y.x
        return try errors(of: y.x, against: text, precision: 4096)
    }

    /// Runs `body` in MPFR's widest exponent range (about ±4.6e18 binary orders, so
    /// decimal exponents up to ~1.4e18), with the flags cleared, and restores the
    /// range. Every MPFR value made inside must be used only inside.
    static func inWidestRange<R>(_ body: () throws -> R) rethrows -> R {
        let oldMin = mpfr_get_emin(), oldMax = mpfr_get_emax()
        mpfr_set_emin(mpfr_get_emin_min()); mpfr_set_emax(mpfr_get_emax_max())
        mpfr_clear_flags()
        defer { mpfr_set_emin(oldMin); mpfr_set_emax(oldMax); mpfr_clear_flags() }
        return try body()
    }

    /// The error of `y` (any value of the current range) against the exact value of
    /// `text`, which may lie far outside MPFR's default exponent range (`1e-99999999999`,
    /// where the default range would read 0 and report no error): the exact value is
    /// parsed, and the error evaluated, in the widest range. Beyond even that range the
    /// exact value's size is still known to be below 2^(emin_min) or above 2^(emax_max):
    /// a value of 0 against a nonzero tiny input has relative error 1, a finite value
    /// against a huge one relative error 1 and absolute error ∞.
    static func errors(of y: UnsafePointer<__mpfr_struct>, against text: String, precision: Int) throws -> (abs: Double, rel: Double) {
        try inWidestRange {
            let (w, _) = try parse(text, precision: precision)
            let under = mpfr_underflow_p() != 0, over = mpfr_overflow_p() != 0
            if under || over {
                if mpfr_nan_p(y) != 0 { return (.nan, .nan) }
                if under { return mpfr_zero_p(y) != 0 ? (0, 1) : (abs(mpfr_get_d(y, MPFR_RNDN)), .infinity) }
                return mpfr_inf_p(y) != 0 ? (.infinity, .infinity) : (.infinity, 1)
            }
            return withExtendedLifetime(w) { errors(of: y, exact: w.x, precision: precision) }
        }
    }

    /// `|y − w|` and that over `|w|` for the exact value `w`, evaluated at
    /// `precision` bits and rounded to Double: NaN if either is NaN; 0 for equal
    /// infinities and ∞ for any other infinite case; relative error ∞ (or 0) at w = 0.
    static func errors(of y: UnsafePointer<__mpfr_struct>, exact w: UnsafePointer<__mpfr_struct>, precision: Int) -> (abs: Double, rel: Double) {
        if mpfr_nan_p(y) != 0 || mpfr_nan_p(w) != 0 { return (.nan, .nan) }
        if mpfr_inf_p(w) != 0 || mpfr_inf_p(y) != 0 {
            return mpfr_equal_p(w, y) != 0 ? (0, 0) : (.infinity, .infinity)
        }
        let d = MPFRScratch(precision: precision)
        mpfr_sub(d.x, y, w, MPFR_RNDN)
        mpfr_abs(d.x, d.x, MPFR_RNDN)
        let absErr = mpfr_get_d(d.x, MPFR_RNDN)
        if mpfr_zero_p(w) != 0 { return (absErr, absErr == 0 ? 0 : .infinity) }
        mpfr_div(d.x, d.x, w, MPFR_RNDN)
        mpfr_abs(d.x, d.x, MPFR_RNDN)
        return (absErr, mpfr_get_d(d.x, MPFR_RNDN))
    }
}

/// Shortest decimal strings that read back to the same value of a format.
public enum ShortestDecimal {
    /// The shortest decimal (at most 17 significant digits) that rounds to nearest
    /// back to `x` in `format`, written like Swift's own `description`.
    public static func string(_ x: Double, format f: FloatFormat) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        let v = MPFRScratch(precision: 53)
        mpfr_set_d(v.x, x, MPFR_RNDN)
        // A saturating format takes every large decimal back to its largest finite value
        // ("3e+01" would name e3m2's 28): the round trip is checked as if overflow did not
        // saturate, as IEEE formats (and Swift's own description) treat their largest value.
        var g = f
        if g.overflow == .saturate {
            if g.infinities || !g.nan { g.infinities = true; g.overflow = .infinity } else { g.overflow = .nan }
        }
        for n in 1...17 {
            let (digits, e) = mpfrDigits(v.x, count: n)
            let text = layout(negative: x < 0, digits: digits, exponent10: e, precision: f.p)
            if let back = try? ExactDecimal.round(text, to: g, mode: .nearest), back == x { return text }
        }
        let (digits, e) = mpfrDigits(v.x, count: 17)
        return layout(negative: x < 0, digits: digits, exponent10: e, precision: f.p)
    }

    /// `count` significant decimal digits of `x` (round to nearest) and the decimal
    /// exponent `e` with `|x| = 0.d₁d₂… × 10^e`.
    static func mpfrDigits(_ x: UnsafePointer<__mpfr_struct>, count: Int) -> (String, Int) {
        var e: mpfr_exp_t = 0
        guard let p = mpfr_get_str(nil, &e, 10, count, x, MPFR_RNDN) else { return ("0", 0) }
        defer { mpfr_free_str(p) }
        // Trailing zeros trimmed in one pass over the bytes (String.count is O(n), so a
        // loop on it was quadratic: minutes for the 315,653 digits of mpfr1048576).
        var bytes = Array(String(cString: p).utf8)
        if bytes.first == UInt8(ascii: "-") { bytes.removeFirst() }
        var end = bytes.count
        while end > 1 && bytes[end - 1] == UInt8(ascii: "0") { end -= 1 }
        return (String(decoding: bytes[..<end], as: UTF8.self), Int(e))
    }

    /// Lays out digits `d₁d₂…` with value `0.d₁d₂… × 10^e` as Swift does for its
    /// own types: plain for decimal exponents from −4 up to (not including)
    /// `min(16, ⌊p·log₁₀2⌋ + 1)`, otherwise `d.ddde±XX`. (For p = 24 and 53 this is
    /// exactly where `Float` and `Double` switch to exponential notation.)
    public static func layout(negative: Bool, digits: String, exponent10 e: Int, precision p: Int = 53) -> String {
        let x = e - 1
        var out = negative ? "-" : ""
        let d = Array(digits)
        let plainLimit = min(16, Int(Double(p) * 0.30102999566398120) + 1)
        if x >= -4 && x < plainLimit {
            if x >= 0 {
                let intCount = x + 1
                if d.count <= intCount {
                    out += String(d) + String(repeating: "0", count: intCount - d.count) + ".0"
                } else {
                    out += String(d[0..<intCount]) + "." + String(d[intCount...])
                }
            } else {
                out += "0." + String(repeating: "0", count: -x - 1) + String(d)
            }
        } else {
            out += String(d[0])
            if d.count > 1 { out += "." + String(d[1...]) }
            let ax = abs(x)
            out += "e" + (x < 0 ? "-" : "+") + (ax < 10 ? "0" : "") + String(ax)
        }
        return out
    }
}
