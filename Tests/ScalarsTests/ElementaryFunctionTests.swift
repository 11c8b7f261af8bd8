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

/// The correctly rounded binary32 tanh (``Binary32Tanh``) against MPFR's tanh at 24
/// bits, to nearest, bit for bit.
@Suite struct Binary32TanhTests {
    /// MPFR's correctly rounded binary32 tanh of x (independent of the code under test:
    /// its own variables, precision 24, exponent range wide enough for every result).
    static func reference(_ x: Float) -> Float {
        var a = __mpfr_struct(), y = __mpfr_struct()
        mpfr_init2(&a, 24); mpfr_init2(&y, 24)
        defer { mpfr_clear(&a); mpfr_clear(&y) }
        _ = mpfr_set_flt(&a, x, MPFR_RNDN)
        _ = mpfr_tanh(&y, &a, MPFR_RNDN)
        return mpfr_get_flt(&y, MPFR_RNDN)
    }

    static func sameFloat(_ a: Float, _ b: Float) -> Bool { (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern }

    /// Checks the bit patterns lo, lo + stride, … ≤ hi, both signs; returns the failures.
    static func sweep(_ lo: UInt32, _ hi: UInt32, stride s: UInt32) -> [Float] {
        var bad: [Float] = []
        var b = lo
        while b <= hi {
            for sign: UInt32 in [0, 0x8000_0000] {
                let x = Float(bitPattern: b | sign)
                if !sameFloat(Binary32Tanh.tanh(x), reference(x)) && bad.count < 5 { bad.append(x) }
            }
            if hi - b < s { break }
            b += s
        }
        return bad
    }

    /// Every encoding class at a stride (zeros, subnormals, the tiny-argument region,
    /// the evaluated range, the region that rounds to ±1, infinities and NaNs), and a
    /// dense sweep of the evaluated range [2⁻¹², 10] (bit patterns 0x39800000 …
    /// 0x41200000, every 487th: about 260,000 inputs per sign).
    @Test func againstMPFR() {
        #expect(Self.sweep(0, 0x7FFF_FFFF, stride: 65_537).isEmpty)
        #expect(Self.sweep(0x3980_0000, 0x4120_0000, stride: 487).isEmpty)
        // The boundaries of the three regions, ±64 encodings around each.
        for edge: UInt32 in [0x3980_0000, 0x4120_0000, Float(9.01).bitPattern] {
            #expect(Self.sweep(edge - 64, edge + 64, stride: 1).isEmpty)
        }
        #expect(Binary32Tanh.tanh(-0.0).sign == .minus && Binary32Tanh.tanh(.infinity) == 1 && Binary32Tanh.tanh(-.infinity) == -1)
        #expect(Binary32Tanh.tanh(.nan).isNaN && Binary32Tanh.tanh(.signalingNaN).isNaN)
    }

    /// The inputs whose Double evaluation lies near a binary32 midpoint, decided by
    /// MPFR: they exist (about 1 in 2¹⁴), and the results there are correct too.
    @Test func midpointCasesGoToMPFR() {
        var undecided: [Float] = []
        var b: UInt32 = 0x3980_0000
        while b < 0x4120_0000 && undecided.count < 200 {
            let x = Float(bitPattern: b)
            if !Binary32Tanh.decidedWithoutMPFR(x) { undecided.append(x) }
            b += 97
        }
        #expect(undecided.count >= 50, "found \(undecided.count) undecided inputs")
        for x in undecided { #expect(Self.sameFloat(Binary32Tanh.tanh(x), Self.reference(x)), "tanh(\(x))") }
    }

    /// The array form (vector lanes in C, the undecided elements finished in Swift) gives
    /// the scalar function's bits: every encoding class, the dense evaluated range, the
    /// inputs near midpoints (scattered over block positions), and lengths around the
    /// 64-element block.
    @Test func arrayFormMatchesScalar() {
        var xs: [Float] = []
        for (lo, hi, s): (UInt32, UInt32, UInt32) in [(0, 0x7FFF_FFFF, 65_537), (0x3980_0000, 0x4120_0000, 487)] {
            var b = lo
            while b <= hi { xs.append(Float(bitPattern: b)); xs.append(Float(bitPattern: b | 0x8000_0000)); if hi - b < s { break }; b += s }
        }
        var b: UInt32 = 0x3980_0000, undecided = 0
        while b < 0x4120_0000 && undecided < 300 {
            if !Binary32Tanh.decidedWithoutMPFR(Float(bitPattern: b)) { xs.append(Float(bitPattern: b)); xs.append(-Float(bitPattern: b)); undecided += 1 }
            b += 97
        }
        xs += [0, -0.0, .infinity, -.infinity, .nan, -.nan, .signalingNaN, Float(bitPattern: 0x7FC1_2345),
               .leastNonzeroMagnitude, 0x1p-12, Float(0x1p-12).nextDown, 10, Float(10).nextDown, .greatestFiniteMagnitude]
        var g = SplitMix64(seed: 5)
        for i in stride(from: xs.count - 1, to: 0, by: -1) { xs.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let expected = xs.map(Binary32Tanh.tanh)
        #expect(undecided >= 50, "\(undecided) undecided inputs")
        for n in [0, 1, 63, 64, 65, 127, 129, 1000, xs.count] {
            let got = Binary32Tanh.tanh(Array(xs[0..<n]))
            let bad = (0..<n).filter { got[$0].bitPattern != expected[$0].bitPattern }
            let mismatches = bad.count
            #expect(mismatches == 0, "n = \(n): \(bad.prefix(3).map { (xs[$0], got[$0], expected[$0]) })")
        }
    }

    /// The harness's tanh in Float and the value part of Dual<Float>'s tanh are this
    /// function; other types keep their own tanh.
    @Test func elementaryRoutesFloatHere() {
        var g = SplitMix64(seed: 12)
        for _ in 0..<10_000 {
            let x = Float(g.nextUniform() * 8 - 4)
            #expect(Elementary.tanh(x).bitPattern == Binary32Tanh.tanh(x).bitPattern)
            #expect(Dual<Float>.tanh(Dual(x, 1)).value.bitPattern == Binary32Tanh.tanh(x).bitPattern)
            #expect(Elementary.tanh(Double(x)) == Double.tanh(Double(x)))
        }
    }

    /// Every binary32 number in [2⁻¹², 10], both signs (2.6·10⁸ MPFR calls; minutes in
    /// a release build): `HH_EXHAUSTIVE=1 swift test -c release --filter Exhaustive`.
    @Test(.enabled(if: exhaustive)) func exhaustiveBinary32Tanh() async {
        let lo: UInt32 = 0x3980_0000, hi: UInt32 = 0x4120_0000, parts: UInt32 = 16
        let bad = await withTaskGroup(of: [Float].self) { group in
            for k in 0..<parts {
                let a = lo + (hi - lo) / parts * k, b = k == parts - 1 ? hi : lo + (hi - lo) / parts * (k + 1) - 1
                group.addTask { Self.sweep(a, b, stride: 1) }
            }
            var all: [Float] = []
            for await part in group { all += part }
            return all
        }
        #expect(bad.isEmpty, "differ from MPFR: \(bad.prefix(5))")
        // The array form over the same inputs, against the scalar function just checked.
        var mismatches = 0
        var start = lo
        while start <= hi {
            let end = min(hi, start + (1 << 20))
            for sign: UInt32 in [0, 0x8000_0000] {
                let xs = (start...end).map { Float(bitPattern: $0 | sign) }
                let ys = Binary32Tanh.tanh(xs)
                for i in xs.indices where ys[i].bitPattern != Binary32Tanh.tanh(xs[i]).bitPattern { mismatches += 1 }
            }
            if end == hi { break }
            start = end + 1
        }
        #expect(mismatches == 0)
    }
}
