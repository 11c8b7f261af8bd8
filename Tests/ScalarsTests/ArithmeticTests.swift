import Testing
import CMPFR
@testable import Scalars

/// Every emulated format and deterministic rounding mode, + − × ÷ √ fma, against
/// MPFR rounding to the same format (MPFR with the format's exponent range and
/// subnormalization): bit-identical results, signed zeros included.
@Suite struct ArithmeticAgainstMPFR {
    static let n = 4000

    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func bf16(_ mode: RoundingMode) { #expect(run(BF16Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func fp16(_ mode: RoundingMode) { #expect(run(FP16Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func tf32(_ mode: RoundingMode) { #expect(run(TF32Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func fp32(_ mode: RoundingMode) { #expect(run(FP32Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func e4m3(_ mode: RoundingMode) { #expect(run(E4M3Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func e5m2(_ mode: RoundingMode) { #expect(run(E5M2Spec.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func userNoSubnormalsSaturating(_ mode: RoundingMode) { #expect(run(P5NoSubnormalSaturating.self, mode).isEmpty) }
    @Test(arguments: [RoundingMode.nearest, .towardZero, .up, .down])
    func userWideRange(_ mode: RoundingMode) { #expect(run(P13Wide.self, mode).isEmpty) }

    func run<S: FloatFormatSpec>(_ s: S.Type, _ mode: RoundingMode) -> [String] {
        let seed = UInt64(S.format.p * 1000 + mode.rawValue.count)
        let failures: [String]
        switch mode {
        case .nearest: failures = checkArithmetic(LowPrecisionFloat<S, NearestEven>.self, count: Self.n, seed: seed)
        case .towardZero: failures = checkArithmetic(LowPrecisionFloat<S, TowardZero>.self, count: Self.n, seed: seed)
        case .up: failures = checkArithmetic(LowPrecisionFloat<S, Upward>.self, count: Self.n, seed: seed)
        case .down: failures = checkArithmetic(LowPrecisionFloat<S, Downward>.self, count: Self.n, seed: seed)
        case .stochastic: failures = ["not a deterministic mode"]
        }
        for f in failures { Issue.record(Comment(rawValue: f)) }
        return failures
    }

    /// The BFloat16 fast paths (binary32 arithmetic + one more rounding) on many
    /// more operands, since they rest on a theorem rather than on construction.
    @Test func bfloat16FastPaths() {
        let failures = checkArithmetic(BFloat16.self, count: 60_000, seed: 99)
        for f in failures { Issue.record(Comment(rawValue: f)) }
        #expect(failures.isEmpty)
    }

    /// The native Float16: + − × ÷ √ are correctly rounded; its fma is not (it is
    /// computed in binary32 and rounded again), which is why the registry's fp16 is
    /// the emulated type. The known issue documents that platform behaviour; it is
    /// intermittent because a build for a CPU with AVX512-FP16 (`-target-cpu native` on
    /// Sapphire Rapids, as bench/compare builds) compiles the fma to `vfmadd…sh`, which
    /// rounds once and then agrees with MPFR.
    @Test func nativeFloat16() {
        var g = SplitMix64(seed: 5)
        var bad: [String] = []
        var fmaWrong = 0
        for _ in 0..<40_000 {
            let (a, b, c) = operands(.fp16, &g)
            let ha = Float16(a), hb = Float16(b), hc = Float16(c)
            let cases: [(String, Float16, Double)] = [
                ("add", ha + hb, oracle(.fp16, .nearest, [a, b]) { mpfr_add($0, $1[0], $1[1], $2) }),
                ("mul", ha * hb, oracle(.fp16, .nearest, [a, b]) { mpfr_mul($0, $1[0], $1[1], $2) }),
                ("div", ha / hb, oracle(.fp16, .nearest, [a, b]) { mpfr_div($0, $1[0], $1[1], $2) }),
                ("sqrt", ha.magnitude.squareRoot(), oracle(.fp16, .nearest, [abs(a)]) { mpfr_sqrt($0, $1[0], $2) }),
            ]
            for (name, got, want) in cases where !same(Double(got), want) && bad.count < 10 {
                bad.append("Float16 \(name)(\(a), \(b)) = \(got), MPFR \(want)")
            }
            let want = oracle(.fp16, .nearest, [a, b, c]) { mpfr_fma($0, $1[0], $1[1], $1[2], $2) }
            if !same(Double(hc.addingProduct(ha, hb)), want) { fmaWrong += 1 }
            #expect(same(FP16Emulated(exactFloat: Float(c)).addingProduct(FP16Emulated(exactFloat: Float(a)), FP16Emulated(exactFloat: Float(b))).doubleValue, want))
        }
        for f in bad { Issue.record(Comment(rawValue: f)) }
        #expect(bad.isEmpty)
        withKnownIssue("Float16.addingProduct double-rounds on x86 (binary32 fma, then binary16)", isIntermittent: true) {
            #expect(fmaWrong == 0, "\(fmaWrong) of 40000 Float16 fma results differ from MPFR")
        }
    }

    @Test func conversionsFromDoubleInEveryMode() {
        var g = SplitMix64(seed: 17)
        for f in [FloatFormat.bf16, .fp16, .tf32, .e4m3, .e5m2, P5NoSubnormalSaturating.format, P13Wide.format] {
            for mode in [RoundingMode.nearest, .towardZero, .up, .down] {
                for _ in 0..<5000 {
                    // Doubles spread over and beyond the format's range.
                    let e = Int(g.next() % UInt64(f.emax - f.emin + 2 * f.p + 8)) + f.emin - f.p - 4
                    let x = Double(sign: g.next() & 1 == 0 ? .plus : .minus, exponent: e, significand: 1 + g.nextUniform())
                    let got = FormatRounding.round(x, to: f, mode: mode)
                    let want = MPFROracle.round(x, to: f, mode: mode)
                    #expect(same(got, want), "\(f.name) \(mode) \(x): \(got) vs \(want)")
                }
            }
        }
    }
}

/// The bit-level rounding core against the reference algorithm: identical results
/// in every mode, stochastic included (same seed, so the same uniform draw must
/// lead to the same decision: the probabilities agree).
@Test func fastRoundingCoreMatchesReference() {
    var g = SplitMix64(seed: 23)
    for f in [FloatFormat.bf16, .fp16, .e4m3, .e5m2, .fp32, P5NoSubnormalSaturating.format, P13Wide.format] {
        for mode in RoundingMode.allCases {
            for i in 0..<4000 {
                let e = Int(g.next() % UInt64(f.emax - f.emin + 2 * f.p + 10)) + f.emin - f.p - 5
                let x = Double(sign: g.next() & 1 == 0 ? .plus : .minus, exponent: e, significand: 1 + g.nextUniform())
                let tail = i % 3 == 0 ? 0 : x.ulp * (g.nextUniform() - 0.5)
                let fast = StochasticRounding.withSeed(UInt64(i)) { FormatRounding.round(x, tail: tail, to: f, mode: mode) }
                let ref = StochasticRounding.withSeed(UInt64(i)) { FormatRounding.roundReference(x, tail: tail, to: f, mode: mode) }
                #expect(same(fast, ref), "\(f.name) \(mode) \(x) + \(tail): \(fast) vs \(ref)")
            }
        }
    }
}

/// Runtime-format arithmetic (policy stages) against MPFR: one rounding per op.
@Test func formatArithmeticAgainstMPFR() throws {
    var g = SplitMix64(seed: 31)
    for name in ["bf16", "fp16", "e4m3", "fp32"] {
        for mode in [RoundingMode.nearest, .up] {
            let fa = try FormatArithmetic(name: name, mode: mode)
            let f = fa.format!
            for _ in 0..<3000 {
                let a = g.nextUniform() * 4 - 2, b = Double(sign: .plus, exponent: Int(g.next() % 20) - 10, significand: 1 + g.nextUniform())
                #expect(same(fa.add(a, b), oracle(f, mode, [a, b]) { mpfr_add($0, $1[0], $1[1], $2) }))
                #expect(same(fa.mul(a, b), oracle(f, mode, [a, b]) { mpfr_mul($0, $1[0], $1[1], $2) }))
                #expect(same(fa.div(a, b), oracle(f, mode, [a, b]) { mpfr_div($0, $1[0], $1[1], $2) }))
                #expect(same(fa.fma(a, b, 0.1), oracle(f, mode, [a, b, 0.1]) { mpfr_fma($0, $1[1], $1[2], $1[0], $2) }))
            }
        }
    }
    #expect(try FormatArithmetic(name: "fp64") == .fp64)
    #expect(throws: ScalarRegistryError.self) { try FormatArithmetic(name: "fp99") }
}

/// The BFloat16 fma where its argument is delicate: products below 2⁻¹³⁴ (inexact
/// in binary32, replaced by ±2⁻¹⁴⁹) against addends near the subnormal range, and
/// products beyond binary32's range brought back by the addend.
@Test func bfloat16FmaEdgeRegions() {
    var g = SplitMix64(seed: 77)
    var bad: [String] = []
    func check(_ a: BFloat16, _ b: BFloat16, _ c: BFloat16) {
        let want = oracle(.bf16, .nearest, [a.doubleValue, b.doubleValue, c.doubleValue]) { mpfr_fma($0, $1[0], $1[1], $1[2], $2) }
        let got = c.addingProduct(a, b).doubleValue
        if !same(got, want) && bad.count < 5 { bad.append("fma(\(a), \(b), \(c)) = \(got), MPFR \(want)") }
    }
    func random(_ eLo: Int, _ eHi: Int) -> BFloat16 {
        let e = Int(g.next() % UInt64(eHi - eLo + 1)) + eLo
        return BFloat16(Double(sign: g.next() & 1 == 0 ? .plus : .minus, exponent: e, significand: 1 + g.nextUniform()))
    }
    for _ in 0..<20_000 {
        check(random(-80, -60), random(-80, -60), random(-140, -120))                    // tiny products, tiny addends
        check(random(-80, -60), random(-80, -60), BFloat16(bitPattern: UInt16(g.next() % 8)))   // ±0 and the smallest subnormals
        check(random(60, 70), random(60, 70), random(126, 127))                           // products near/beyond fp32 max
    }
    for f in bad { Issue.record(Comment(rawValue: f)) }
    #expect(bad.isEmpty)
}

/// `fma` under cancellation: a ≈ −b·c, where the rounding error of the product b·c is
/// far larger than the result's quantum, so the exact value is s + e + pe with a tail
/// much larger than ulp(s). Against MPFR, in binary32 and bfloat16, nearest and up.
@Test func formatArithmeticFmaUnderCancellation() throws {
    var g = SplitMix64(seed: 37)
    for name in ["fp32", "bf16"] {
        for mode in [RoundingMode.nearest, .up] {
            let fa = try FormatArithmetic(name: name, mode: mode)
            let f = fa.format!
            for i in 0..<3000 {
                let b = Double(sign: .plus, exponent: Int(g.next() % 8) - 4, significand: 1 + g.nextUniform())
                let c = Double(sign: g.next() & 1 == 0 ? .plus : .minus, exponent: Int(g.next() % 8) - 4, significand: 1 + g.nextUniform())
                let p = b * c
                let a = -p * (1 + (g.nextUniform() - 0.5) * Double.pow(2, -Double(20 + i % 30)))
                #expect(same(fa.fma(a, b, c), oracle(f, mode, [a, b, c]) { mpfr_fma($0, $1[1], $1[2], $1[0], $2) }),
                        "\(name) \(mode): \(a) + \(b)·\(c)")
            }
        }
    }
}

/// The binary32 fma without a fused operation (`fl(a + fl(b·c))`, accepted when it
/// lies more than 2¹² ulp from a binary32 midpoint and |fl(b·c)| ≤ 2¹²|fl(a + fl(b·c))|): perturbation-like operands
/// (a a binary32 parameter, b = ±ε, c a direction entry) and sums steered to within
/// a few binary64 ulps of a midpoint, where the shortcut must decline. Against MPFR.
@Test func binary32FmaShortcutNearMidpoints() throws {
    var g = SplitMix64(seed: 41)
    let fa = try FormatArithmetic(name: "fp32")
    var bad: [String] = []
    func check(_ a: Double, _ b: Double, _ c: Double) {
        let want = oracle(.fp32, .nearest, [a, b, c]) { mpfr_fma($0, $1[1], $1[2], $1[0], $2) }
        let got = fa.fma(a, b, c)
        if !same(got, want) && bad.count < 5 { bad.append("fma(\(a), \(b), \(c)) = \(got), MPFR \(want)") }
    }
    for i in 0..<20_000 {
        let theta = Double(Float(Double(sign: g.next() & 1 == 0 ? .plus : .minus, exponent: Int(g.next() % 12) - 8, significand: 1 + g.nextUniform())))
        let eps = Double.pow(2, -Double(2 + i % 40)) * (1 + g.nextUniform())
        check(theta, eps, g.nextUniform() - 0.5)                                  // the FD perturbation
        // a = a binary32 midpoint plus k binary64 ulps, b·c below or near ulp(a).
        let mid = theta + Double(Float(theta).ulp) / 2 * (theta < 0 ? -1 : 1)
        // k binary64 ulps from the midpoint: near 0 (the shortcut must decline) and near
        // its margin of 2¹² ulps (where it starts to accept).
        let k = Double(Int(g.next() % 9) - 4) + [0, 4096, -4096, 4100, -4100][i % 5]
        let p = Double(sign: .plus, exponent: theta.exponent - 52 - Int(g.next() % 3), significand: 1 + g.nextUniform())
        check(mid + k * mid.ulp, p.squareRoot(), (g.next() & 1 == 0 ? 1 : -1) * p.squareRoot())
        check(mid + k * mid.ulp, 0, 1)
        check(0, eps, g.nextUniform() - 0.5)                                        // zero parameter: r = fl(b·c)
    }
    for f in bad { Issue.record(Comment(rawValue: f)) }
    #expect(bad.isEmpty)
}
