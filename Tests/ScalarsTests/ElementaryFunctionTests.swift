import Testing
import CMPFR
@testable import Scalars

/// Exhaustive over bf16: elementary functions (the platform's Double result rounded
/// once) against MPFR's correctly rounded result in bf16. The contract allows a
/// mismatch only when the exact value lies within a Double ulp of a bf16 rounding
/// boundary; over all 65,536 inputs of each function there are none.
@Suite struct ElementaryFunctionsBF16 {
    typealias MPFRUnary = (UnsafeMutablePointer<__mpfr_struct>, UnsafePointer<__mpfr_struct>, mpfr_rnd_t) -> Int32

    static func functions() -> [(String, (BFloat16) -> BFloat16, MPFRUnary)] { [
        ("exp", BFloat16.exp, mpfr_exp), ("expMinusOne", BFloat16.expMinusOne, mpfr_expm1),
        ("log", { BFloat16.log($0) }, mpfr_log), ("log1p", { BFloat16.log(onePlus: $0) }, mpfr_log1p),
        ("sin", BFloat16.sin, mpfr_sin), ("cos", BFloat16.cos, mpfr_cos), ("tan", BFloat16.tan, mpfr_tan),
        ("tanh", BFloat16.tanh, mpfr_tanh), ("sinh", BFloat16.sinh, mpfr_sinh), ("cosh", BFloat16.cosh, mpfr_cosh),
        ("atan", BFloat16.atan, mpfr_atan), ("asin", BFloat16.asin, mpfr_asin), ("acos", BFloat16.acos, mpfr_acos),
        ("erf", BFloat16.erf, mpfr_erf), ("erfc", BFloat16.erfc, mpfr_erfc), ("exp2", BFloat16.exp2, mpfr_exp2),
        ("log2", BFloat16.log2, mpfr_log2), ("log10", BFloat16.log10, mpfr_log10), ("sqrt", BFloat16.sqrt, mpfr_sqrt),
    ] }

    @Test(arguments: 0..<19)
    func allInputs(_ k: Int) {
        let (name, f, m) = Self.functions()[k]
        var mismatches: [UInt16] = []
        for b in UInt16(0)...UInt16.max {
            let x = BFloat16(bitPattern: b)
            if x.isNaN { continue }
            let want = oracle(.bf16, .nearest, [x.doubleValue]) { m($0, $1[0], $2) }
            if !same(f(x).doubleValue, want) { mismatches.append(b) }
        }
        #expect(mismatches.isEmpty, "\(name): \(mismatches.count) inputs differ from MPFR, e.g. \(mismatches.prefix(5).map { BFloat16(bitPattern: $0) })")
    }
}
