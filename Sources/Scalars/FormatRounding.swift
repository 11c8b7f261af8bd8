/// Correct rounding of an exact real, given as an unevaluated sum `x + tail` of
/// Doubles, into a ``FloatFormat`` under a ``RoundingMode``.
///
/// This is the one place where emulated formats round. Every operation of an
/// emulated type first computes its exact result as `x + tail`:
/// - conversions from Float/Double: `tail = 0` (the input is exact);
/// - `a ± b`: `x = fl(a ± b)`, `tail` its exact error (TwoSum);
/// - `a × b`: exact in Double, since `p ≤ 24` gives products of at most 48 bits;
/// - `fma(a, b, c)`: the exact product plus `c` by TwoSum;
/// - `a ÷ b`, `√a`: `tail` has the sign (and approximate size) of the exact
///   remainder `a − q b` or `a − s²`, computed exactly with an FMA.
///
/// `tail` only needs to be exact in sign for nearest and directed rounding; its
/// magnitude enters stochastic rounding's probability, where an error below 2⁻⁵³
/// is immaterial. Requirements: `|tail| ≤ ulp(x)/2` in Double, and `x` normal in
/// Double (true for every value of formats that fit binary32 and their products).
///
/// Because rounding happens once, from the exact value, there is no double rounding:
/// a Double rounded to bf16 equals the exact real rounded to bf16 (NUMERICS.md §1).
public enum FormatRounding {
    /// Rounds `x + tail` into `format` with `mode`. Returns the result as a Double
    /// (exactly a value of the format, or ±∞ / NaN).
    @inlinable
    public static func round(_ x: Double, tail: Double = 0, to f: FloatFormat, mode: RoundingMode) -> Double {
        if x.isNaN { return .nan }
        if x.isInfinite { return nonFinite(x, f) }
        var value = x
        var t = tail
        if value == 0 {
            if t == 0 { return value }
            value = t; t = 0
        }
        let negative = value < 0
        let a = negative ? -value : value
        // Tail oriented in the magnitude direction: > 0 means |exact| > a.
        let ta = negative ? -t : t
        let e = a.exponent
        // Exponent of the quantum (gap between neighbours) at a's magnitude.
        var qe: Int
        if e >= f.emin { qe = e - (f.p - 1) }
        else if f.subnormals { qe = f.emin - (f.p - 1) }
        else { qe = f.emin }                        // neighbours are 0 and 2^emin
        var scale = Double(sign: .plus, exponent: -qe, significand: 1)
        let m = a * scale                           // exact: power-of-two scaling
        var n = m.rounded(.down)
        var frac = m - n                            // exact
        var tt = ta * scale
        if frac == 0 && tt < 0 {
            // The exact value lies just below n. If n is the first value of a
            // binade, the gap below it is half as wide: use the finer quantum.
            if e > f.emin && n == Double(sign: .plus, exponent: f.p - 1, significand: 1) {
                qe -= 1; scale *= 2; tt *= 2
                n = Double(sign: .plus, exponent: f.p, significand: 1)
            }
            n -= 1; frac = 1
        }
        var up = false
        if frac != 0 || tt != 0 {
            switch mode {
            case .nearest:
                if frac > 0.5 { up = true }
                else if frac < 0.5 { up = false }
                else if tt != 0 { up = tt > 0 }
                else { up = n.truncatingRemainder(dividingBy: 2) != 0 }
            case .towardZero: up = false
            case .up: up = !negative
            case .down: up = negative
            case .stochastic:
                // P(round away from zero in magnitude) = distance to the lower
                // magnitude neighbour / gap; frac + tt is that distance in quanta.
                up = StochasticRounding.nextUniform() < frac + tt
            }
        }
        let truncated = n / scale
        if up { n += 1 }
        let r = n / scale                           // exact
        if r > f.greatestFinite {
            let mag = overflows(negative: negative, mode: mode, up: up, truncatedBeyond: truncated > f.greatestFinite)
                ? overflowMagnitude(f) : f.greatestFinite
            return negative ? -mag : mag
        }
        return negative ? -r : r
    }

    /// IEEE 754 §7.4 overflow: round-to-nearest and rounding away from zero give
    /// the overflow value (∞, or NaN / largest finite by ``OverflowBehavior``);
    /// rounding toward zero gives the largest finite number. Stochastic rounding
    /// overflows when it rounds up past the largest finite value or when even the
    /// value truncated to the format's grid lies beyond it.
    @inlinable
    public static func overflows(negative: Bool, mode: RoundingMode, up: Bool, truncatedBeyond: Bool) -> Bool {
        switch mode {
        case .nearest: return true
        case .towardZero: return false
        case .up: return !negative
        case .down: return negative
        case .stochastic: return up || truncatedBeyond
        }
    }

    @inlinable
    static func overflowMagnitude(_ f: FloatFormat) -> Double {
        switch f.overflow {
        case .infinity: return .infinity
        case .nan: return .nan
        case .saturate: return f.greatestFinite
        }
    }

    @inlinable
    static func nonFinite(_ x: Double, _ f: FloatFormat) -> Double {
        if f.infinities { return x }
        switch f.overflow {
        case .saturate: return x < 0 ? -f.greatestFinite : f.greatestFinite
        default: return .nan
        }
    }

    /// The exact error of `a + b = s + err` (Knuth's TwoSum; 6 flops, no branches).
    @inlinable @inline(__always)
    public static func twoSum(_ a: Double, _ b: Double) -> (s: Double, err: Double) {
        let s = a + b
        let bb = s - a
        let err = (a - (s - bb)) + (b - bb)
        return (s, err)
    }
}

extension FloatFormat {
    /// The encoding of `x`, which must be a value of the format (or ±∞/NaN).
    /// Layout: sign | exponent (``exponentBits``) | significand (`p-1` bits).
    public func encode(_ x: Double) -> UInt64 {
        let m = UInt64(significandBits)
        let w = UInt64(exponentBits)
        let signBit: UInt64 = x.sign == .minus ? 1 << (m + w) : 0
        let allOnes: UInt64 = (1 << w) - 1
        if x.isNaN {
            let payload: UInt64 = infinities ? 1 << (m - 1) : (1 << m) - 1
            return signBit | allOnes << m | payload
        }
        if x.isInfinite { return signBit | allOnes << m }
        let a = abs(x)
        if a == 0 { return signBit }
        if a < leastNormal {
            return signBit | UInt64(a / leastNonzero)
        }
        let code = UInt64(a.exponent + bias)
        let frac = UInt64((a.significand - 1) * Double(sign: .plus, exponent: Int(m), significand: 1))
        return signBit | code << m | frac
    }

    /// The value of an encoding (NaN for NaN encodings and unused codes).
    public func decode(_ bits: UInt64) -> Double {
        let m = significandBits
        let w = exponentBits
        let negative = (bits >> UInt64(m + w)) & 1 == 1
        let code = Int((bits >> UInt64(m)) & ((1 << UInt64(w)) - 1))
        let frac = Int(bits & ((1 << UInt64(m)) - 1))
        var v: Double
        if code == 0 {
            v = Double(frac) * Double(sign: .plus, exponent: emin - m, significand: 1)
            if !subnormals && frac != 0 { return .nan }
        } else {
            let e = code - bias
            if infinities && code == (1 << w) - 1 {
                v = frac == 0 ? .infinity : .nan
            } else if e > emax {
                v = .nan
            } else {
                v = (1 + Double(frac) * Double(sign: .plus, exponent: -m, significand: 1)) * Double(sign: .plus, exponent: e, significand: 1)
                if v > greatestFinite { v = .nan }
            }
        }
        if v.isNaN { return .nan }
        return negative ? -v : v
    }
}
