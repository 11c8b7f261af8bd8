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
    ///
    /// Works on the bit pattern: `|x| = sig·2^(e−52)` with a 53-bit integer `sig`;
    /// the quantum of the format at that magnitude is `2^qe`, so the candidate is
    /// `n = sig >> (qe − e + 52)` and the dropped bits decide the rounding (compared
    /// with the half-quantum as integers), with `tail` breaking ties and deciding
    /// exactness.
    @inlinable @inline(__always)
    public static func round(_ x: Double, tail: Double = 0, to f: FloatFormat, mode: RoundingMode) -> Double {
        if !x.isFinite { return x.isNaN ? (x.sign == .minus ? -.nan : .nan) : nonFinite(x, f) }
        var value = x
        var t = tail
        if value == 0 {
            if t == 0 { return value }
            value = t; t = 0
        }
        let negative = value.sign == .minus
        let bits = value.bitPattern & 0x7FFF_FFFF_FFFF_FFFF
        let biased = Int(truncatingIfNeeded: bits >> 52)
        if biased == 0 { return roundReference(value, tail: t, to: f, mode: mode) }
        let e = biased - 1023
        let sig = (bits & 0x000F_FFFF_FFFF_FFFF) | 0x0010_0000_0000_0000
        var qe: Int
        if e >= f.emin { qe = e - (f.p - 1) }
        else if f.subnormals { qe = f.emin - (f.p - 1) }
        else { qe = f.emin }
        let shift = qe - (e - 52)                   // ≥ 53 − p ≥ 0
        var n: UInt64
        var cmpHalf: Int                            // dropped bits vs half a quantum
        var dropped: Bool                           // any dropped bit set
        var frac: Double                            // dropped bits in quanta (stochastic)
        if shift == 0 {
            n = sig; cmpHalf = -1; dropped = false; frac = 0
        } else if shift < 64 {
            n = sig >> UInt64(shift)
            let rem = sig & ((1 << UInt64(shift)) - 1)
            let half: UInt64 = 1 << UInt64(shift - 1)
            cmpHalf = rem < half ? -1 : (rem == half ? 0 : 1)
            dropped = rem != 0
            frac = Double(rem) * pow2(-shift)
        } else {
            n = 0; cmpHalf = -1; dropped = true
            frac = Double(sig) * pow2(-53) * pow2(53 - shift)
        }
        let ta = negative ? -t : t                  // > 0: exact magnitude is larger
        if !dropped && ta < 0 {
            // Exact value just below n·2^qe; at the start of a binade the gap below
            // is half as wide, so step down on the finer grid.
            if e > f.emin && n == (1 << UInt64(f.p - 1)) {
                qe -= 1; n = (1 << UInt64(f.p)) - 1
            } else {
                n -= 1
            }
            cmpHalf = 1; dropped = true; frac = 1
        }
        var up = false
        if dropped || ta != 0 {
            switch mode {
            case .nearest:
                up = cmpHalf > 0 || (cmpHalf == 0 && (ta > 0 || (ta == 0 && n & 1 == 1)))
            case .towardZero: up = false
            case .up: up = !negative
            case .down: up = negative
            case .stochastic:
                up = StochasticRounding.nextUniform() < frac + ta * pow2(-qe)
            }
        }
        let scale = pow2(qe)
        let truncated = Double(n) * scale
        if up { n += 1 }
        return finish(Double(n) * scale, truncated: truncated, negative: negative, up: up, f, mode)
    }

    /// The signed result, with the overflow rule applied when `r` (the rounded
    /// magnitude, exact) exceeds the largest finite value.
    @inlinable @inline(__always)
    static func finish(_ r: Double, truncated: Double, negative: Bool, up: Bool, _ f: FloatFormat, _ mode: RoundingMode) -> Double {
        if r > f.greatestFinite {
            let mag = overflows(negative: negative, mode: mode, up: up, truncatedBeyond: truncated > f.greatestFinite)
                ? overflowMagnitude(f) : f.greatestFinite
            return negative ? -mag : mag
        }
        return negative ? -r : r
    }

    /// 2^k as a Double, by construction of the bit pattern for normal exponents.
    @inlinable @inline(__always)
    public static func pow2(_ k: Int) -> Double {
        if k >= -1022 && k <= 1023 { return Double(bitPattern: UInt64(k + 1023) << 52) }
        return Double(sign: .plus, exponent: k, significand: 1)
    }

    /// The reference algorithm, in Double arithmetic (exponent, floor, remainder):
    /// used for inputs below binary64's normal range and as a cross-check in tests.
    @inlinable @inline(never)
    public static func roundReference(_ x: Double, tail: Double = 0, to f: FloatFormat, mode: RoundingMode) -> Double {
        if x.isNaN { return x.sign == .minus ? -.nan : .nan }
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
        return finish(n / scale, truncated: truncated, negative: negative, up: up, f, mode)
    }

    /// IEEE 754 §7.4 overflow: round-to-nearest and rounding away from zero give
    /// the overflow value (∞, or NaN / largest finite by ``OverflowBehavior``);
    /// rounding toward zero gives the largest finite number. Stochastic rounding
    /// overflows when it rounds up past the largest finite value or when even the
    /// value truncated to the format's grid lies beyond it.
    @inlinable @inline(__always)
    public static func overflows(negative: Bool, mode: RoundingMode, up: Bool, truncatedBeyond: Bool) -> Bool {
        switch mode {
        case .nearest: return true
        case .towardZero: return false
        case .up: return !negative
        case .down: return negative
        case .stochastic: return up || truncatedBeyond
        }
    }

    @inlinable @inline(__always)
    static func overflowMagnitude(_ f: FloatFormat) -> Double {
        switch f.overflow {
        case .infinity: return .infinity
        case .nan: return .nan
        case .saturate: return f.greatestFinite
        }
    }

    @inlinable @inline(__always)
    /// ±∞ in a format: itself, the saturated greatest finite value, or NaN. A NaN keeps
    /// the sign of what it replaces (−∞ → 0xff in e4m3, as ml_dtypes and overflowing
    /// finite values do), so a value's sign never depends on how it overflowed.
    static func nonFinite(_ x: Double, _ f: FloatFormat) -> Double {
        if f.infinities { return x }
        switch f.overflow {
        case .saturate: return x < 0 ? -f.greatestFinite : f.greatestFinite
        default: return x < 0 ? -.nan : .nan
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
