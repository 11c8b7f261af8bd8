import CMPFR

/// Facts about the linked MPFR and GMP, for manifests and `hessian-harness version`.
public enum MPFRInfo {
    public static var mpfrVersion: String { String(cString: mpfr_get_version()) }
    public static var gmpVersion: String { String(cString: hh_gmp_version()) }
    /// Whether MPFR keeps its flags and exponent range per thread (needed for
    /// running MPFR computations on several threads at once).
    public static var threadSafe: Bool { mpfr_buildopt_tls_p() != 0 }
    /// MPFR's current exponent range in IEEE convention (significand in [1, 2)).
    public static var ieeeExponentRange: (emin: Int, emax: Int) { (Int(mpfr_get_emin()) - 1, Int(mpfr_get_emax()) - 1) }
    /// `2^e` as a decimal string of `digits` significant digits (for huge exponents);
    /// with `minusUlp: b`, the largest `b`-bit value below `2^e`, `(1 − 2^-b)·2^e`.
    public static func powerOfTwo(_ e: Int, digits: Int = 17, minusUlp bits: Int? = nil) -> String {
        let x = MPFRScratch(precision: max(64, bits ?? 64))
        mpfr_set_ui(x.x, 1, MPFR_RNDN)
        if bits != nil { mpfr_nextbelow(x.x) }           // 1 − 2^-b (precision b)
        mpfr_mul_2si(x.x, x.x, e, MPFR_RNDN)              // stays in range: exponent e
        let (d, e10) = ShortestDecimal.mpfrDigits(x.x, count: digits)
        return ShortestDecimal.layout(negative: false, digits: d, exponent10: e10)
    }
}
