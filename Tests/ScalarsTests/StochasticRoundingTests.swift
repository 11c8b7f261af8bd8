import Testing
import CMPFR
@testable import Scalars

/// Unbiasedness: for each case, N = 200,000 stochastic roundings of x give k
/// round-ups; with p = (x − lo)/(hi − lo) the count is Binomial(N, p) if the rounding
/// is unbiased, and the test fails when |z| = |k − Np| / √(Np(1−p)) > 5.5. For an
/// unbiased rounder the two-sided normal tail gives a false-failure probability of
/// 3.8e-8 per case, under 4e-7 for the 10 cases here (the generator is seeded, so the
/// outcome is in fact fixed; the figure is for a fresh seed).
@Suite struct StochasticRoundingTests {
    typealias SR = LowPrecisionFloat<BF16Spec, Stochastic>
    typealias SR8 = LowPrecisionFloat<E4M3Spec, Stochastic>
    static let n = 200_000

    func neighbours(_ x: Double, _ f: FloatFormat) -> (Double, Double) {
        (MPROracleDown(x, f), MPFROracle.round(x, to: f, mode: .up))
    }
    func MPROracleDown(_ x: Double, _ f: FloatFormat) -> Double { MPFROracle.round(x, to: f, mode: .down) }

    func zScore(_ x: Double, _ f: FloatFormat, seed: UInt64, _ draw: () -> Double) -> Double {
        let (lo, hi) = neighbours(x, f)
        let p = (x - lo) / (hi - lo)
        var ups = 0
        StochasticRounding.withSeed(seed) {
            for _ in 0..<Self.n {
                let r = draw()
                #expect(r == lo || r == hi, "result must be a neighbour")
                if r == hi { ups += 1 }
            }
        }
        let np = Double(Self.n) * p
        return (Double(ups) - np) / (np * (1 - p)).squareRoot()
    }

    @Test(arguments: [0.1, -2.7, 1 + 3 * 0x1p-10, 3.3e-39, 12345.678])
    func conversionIsUnbiased(_ x: Double) {
        let z = zScore(x, .bf16, seed: 1) { SR(roundingDouble: x).doubleValue }
        #expect(abs(z) < 5.5, "z = \(z)")
    }

    @Test(arguments: [0.3, 100.0, 0.004])
    func e4m3ConversionIsUnbiased(_ x: Double) {
        let z = zScore(x, .e4m3, seed: 2) { SR8(roundingDouble: x).doubleValue }
        #expect(abs(z) < 5.5, "z = \(z)")
    }

    @Test func arithmeticIsUnbiased() {
        // 1 + 2^-10 in bf16: round-to-nearest gives 1 (stagnation); SR gives
        // 1 + 2^-7 with probability 1/8.
        let a = SR(exactFloat: 1), b = SR(exactFloat: 0x1p-10)
        let z1 = zScore(1 + 0x1p-10, .bf16, seed: 3) { (a + b).doubleValue }
        #expect(abs(z1) < 5.5, "add z = \(z1)")
        let c = SR(exactFloat: 3), d = SR(exactFloat: 0.1025390625)   // 105/1024: 3·d needs 9 bits
        let z2 = zScore(3 * 0.1025390625, .bf16, seed: 4) { (c * d).doubleValue }
        #expect(abs(z2) < 5.5, "mul z = \(z2)")
    }

    @Test func reproducibleFromTheSeed() throws {
        let x = 0.1
        let first = StochasticRounding.withSeed(42) { (0..<64).map { _ in SR(roundingDouble: x).doubleValue } }
        let again = StochasticRounding.withSeed(42) { (0..<64).map { _ in SR(roundingDouble: x).doubleValue } }
        let other = StochasticRounding.withSeed(43) { (0..<64).map { _ in SR(roundingDouble: x).doubleValue } }
        #expect(first == again && first != other)
        var g1 = SplitMix64(seed: 9), g2 = SplitMix64(seed: 9)
        let r1 = try ExactDecimal.round("0.1", to: .bf16, mode: .stochastic, random: &g1)
        let r2 = try ExactDecimal.round("0.1", to: .bf16, mode: .stochastic, random: &g2)
        #expect(r1 == r2)
    }

    @Test func exactValuesAreNeverPerturbed() {
        StochasticRounding.withSeed(5) {
            for v in [1.0, -0.5, 0x1p-133, 3.3895313892515355e+38, 0] {
                for _ in 0..<1000 { #expect(SR(roundingDouble: v).doubleValue == v) }
            }
        }
    }
}
