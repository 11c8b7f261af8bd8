import CMPFR

/// Where `cast` rounds to: a binary format inside binary64, or MPFR at N bits.
public enum CastTarget: Sendable, Equatable {
    case binary(FloatFormat)
    case mpfr(bits: Int)

    /// A name of ``FloatFormat/named`` (`bf16`, `fp16`, `fp32`, `e4m3`, …), `mpfrN` (N ≥ 2), or a
    /// user format `p=…,emin=…,emax=…[,…]` (see ``FloatFormat/parse(_:)``).
    public static func parse(_ name: String) throws -> CastTarget {
        switch try ScalarFormat(name).kind {
        case .binary(let f): return .binary(f)
        case .mpfr(let b): return .mpfr(bits: b)
        }
    }

    public var name: String {
        switch self {
        case .binary(let f): return f.name
        case .mpfr(let b): return "mpfr\(b)"
        }
    }
}

/// One rounded input, as `hessian-harness cast` prints it.
public struct CastResult: Sendable, Equatable {
    /// Shortest round-trip decimal (binary formats) or all significant digits (MPFR).
    public var value: String
    /// Hex encoding (`0x3f80`), empty for MPFR.
    public var bits: String
    public var absError: Double
    public var relError: Double
    /// The value as a Double (rounded to nearest for MPFR).
    public var double: Double
}

extension ExactDecimal {
    /// Rounds the exact value of `text` into `target` with `mode` (stochastic draws
    /// from `random`) and measures the error against the exact input.
    public static func cast(_ text: String, to target: CastTarget, mode: RoundingMode,
                            random: inout SplitMix64) throws -> CastResult {
        switch target {
        case .binary(let f):
            let v = try round(text, to: f, mode: mode, random: &random)
            let (a, r) = try errors(of: v, against: text)
            let hexDigits = (f.bitWidth + 3) / 4
            var hex = String(f.encode(v), radix: 16)
            hex = String(repeating: "0", count: max(0, hexDigits - hex.count)) + hex
            // A format without a NaN encoding (MX e3m2, e2m3, e2m1) has no bits for NaN.
            return CastResult(value: ShortestDecimal.string(v, format: f), bits: v.isNaN && !f.nan ? "none" : "0x" + hex,
                              absError: a, relError: r, double: v)
        case .mpfr(let bits):
            // The value is rounded in MPFR's default exponent range (the mpfrN formats' range);
            // the exact input and the errors live in the widest range (see errors(of:against:precision:)).
            let y = MPFRScratch(precision: bits)
            if mode == .stochastic {
                let (lo, _) = try parse(text, precision: bits, rnd: MPFR_RNDD)
                let (hi, _) = try parse(text, precision: bits, rnd: MPFR_RNDU)
                if mpfr_equal_p(lo.x, hi.x) != 0 || mpfr_number_p(lo.x) == 0 || mpfr_number_p(hi.x) == 0 {
                    let (n, _) = try parse(text, precision: bits, rnd: MPFR_RNDN)
                    mpfr_set(y.x, n.x, MPFR_RNDN)
                } else {
                    // P(up) = (x − lo) / (hi − lo), with x exact (widest range: lo and hi fit in it too).
                    let pUp: Double = try inWidestRange {
                        let p = max(4096, 4 * bits)
                        let (w, _) = try parse(text, precision: p)
                        let num = MPFRScratch(precision: p), den = MPFRScratch(precision: p)
                        mpfr_sub(num.x, w.x, lo.x, MPFR_RNDN)
                        mpfr_sub(den.x, hi.x, lo.x, MPFR_RNDN)
                        mpfr_div(num.x, num.x, den.x, MPFR_RNDN)
                        return mpfr_get_d(num.x, MPFR_RNDN)
                    }
                    mpfr_set(y.x, random.nextUniform() < pUp ? hi.x : lo.x, MPFR_RNDN)
                }
            } else {
                // Round the exact decimal directly (not via the wide value).
                let (d, _) = try parse(text, precision: bits, rnd: mpfrRounding(mode))
                mpfr_set(y.x, d.x, MPFR_RNDN)
            }
            let (absErr, relErr) = try errors(of: y.x, against: text, precision: max(4096, 4 * bits))
            let value: String
            if mpfr_nan_p(y.x) != 0 { value = "nan" }
            else if mpfr_inf_p(y.x) != 0 { value = mpfr_signbit(y.x) != 0 ? "-inf" : "inf" }
            else if mpfr_zero_p(y.x) != 0 { value = mpfr_signbit(y.x) != 0 ? "-0.0" : "0.0" }
            else {
                let (dg, e) = ShortestDecimal.mpfrDigits(y.x, count: mpfr_get_str_ndigits(10, mpfr_prec_t(bits)))
                value = ShortestDecimal.layout(negative: mpfr_signbit(y.x) != 0, digits: dg, exponent10: e)
            }
            return CastResult(value: value, bits: "", absError: absErr, relError: relErr, double: mpfr_get_d(y.x, MPFR_RNDN))
        }
    }
}
