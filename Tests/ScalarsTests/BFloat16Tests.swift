import Testing
import CMPFR
@testable import Scalars

/// Maps an encoding to an integer increasing with the value (−0 and +0 adjacent),
/// the standard sign-magnitude → two's-complement key.
func orderKey(_ bits: UInt16) -> Int {
    bits & 0x8000 != 0 ? -Int(bits & 0x7FFF) - 1 : Int(bits)
}

@Suite struct BFloat16Exhaustive {
    static let all: [UInt16] = (0...0xFFFF).map { UInt16($0) }

    @Test func roundTripAndClassificationOverAllPatterns() {
        let f = FloatFormat.bf16
        for b in Self.all {
            let x = BFloat16(bitPattern: b)
            let v = f.decode(UInt64(b))                      // independent decoder
            let asFloat = Float(bitPattern: UInt32(b) << 16)
            if v.isNaN {
                #expect(x.isNaN && asFloat.isNaN)
                #expect(BFloat16(exactFloat: x.floatValue).isNaN && BFloat16(x.floatValue).sign == x.sign)
                continue
            }
            #expect(x.doubleValue == v && x.sign == (b & 0x8000 != 0 ? .minus : .plus))
            #expect(BFloat16(x.floatValue).bitPattern == b, "Float round trip of \(b)")
            #expect(BFloat16(x.doubleValue).bitPattern == b, "Double round trip of \(b)")
            #expect(f.encode(v) == UInt64(b), "generic encoder of \(b)")
            #expect(BFloat16(sign: x.sign, exponentBitPattern: x.exponentBitPattern, significandBitPattern: x.significandBitPattern).bitPattern == b)
            let e = b & 0x7F80, m = b & 0x007F
            #expect(x.isZero == (e == 0 && m == 0))
            #expect(x.isSubnormal == (e == 0 && m != 0))
            #expect(x.isInfinite == (e == 0x7F80))
            #expect(x.isNormal == (e != 0 && e != 0x7F80))
            #expect(x.isFinite == (e != 0x7F80))
            #expect(x.floatingPointClass == asFloat.floatingPointClass)
            #expect(x.exponent == Int(asFloat.exponent) && x.significand.floatValue == asFloat.significand)
            // The generic EmulatedFloat path (LowPrecisionFloat) classifies the same way.
            let y = LowPrecisionFloat<BF16Spec, NearestEven>(exactFloat: asFloat)
            #expect(y.isSubnormal == x.isSubnormal && y.isNormal == x.isNormal && y.encoding == UInt32(b))
            #expect(y.exponentBitPattern == x.exponentBitPattern && y.significandBitPattern == x.significandBitPattern)
        }
    }

    @Test func totalOrderAndNextUp() {
        let finite = Self.all.filter { !BFloat16(bitPattern: $0).isNaN }
        let sorted = finite.sorted { orderKey($0) < orderKey($1) }
        for (i, b) in sorted.enumerated() {
            let x = BFloat16(bitPattern: b)
            if i + 1 < sorted.count {
                let y = BFloat16(bitPattern: sorted[i + 1])
                #expect(x.isTotallyOrdered(belowOrEqualTo: y) && !y.isTotallyOrdered(belowOrEqualTo: x))
                if !(x.isZero && y.isZero) { #expect(x < y) } else { #expect(x == y) }
                // nextUp: the next encoding in value order, skipping −0 → +0.
                if b != 0x8000 {
                    #expect(x.nextUp.bitPattern == (b == 0 ? 1 : sorted[i + 1]), "nextUp of \(b)")
                    let g = LowPrecisionFloat<BF16Spec, NearestEven>(exactFloat: x.floatValue)
                    #expect(g.nextUp.encoding == (b == 0 ? 1 : UInt32(sorted[i + 1])), "generic nextUp of \(b)")
                }
            } else {
                #expect(x == .infinity && x.nextUp == .infinity)
            }
        }
        #expect(BFloat16(bitPattern: 0x8000).nextUp.bitPattern == 1)
    }

    @Test func descriptionIsShortestRoundTrip() {
        var maxDigits = 0
        for b in Self.all {
            let x = BFloat16(bitPattern: b)
            if x.isNaN { #expect(x.description == "nan"); continue }
            let s = x.description
            let back = BFloat16(s)
            #expect(back?.bitPattern == b, "\(b): \(s)")
            // Significant digits of the mantissa: strip leading and trailing zeros.
            var digits = Substring(String(s.split(separator: "e")[0].filter(\.isNumber)))
            while digits.first == "0" { digits.removeFirst() }
            while digits.last == "0" { digits.removeLast() }
            maxDigits = max(maxDigits, digits.count)
        }
        // p = 8 needs at most ⌈8·log10 2⌉ + 1 = 4 significant digits.
        #expect(maxDigits <= 4)
        #expect(BFloat16(Float(0.1)).description == "0.1")
        #expect(BFloat16(Float(1)).description == "1.0")
        #expect(BFloat16.greatestFiniteMagnitude.description == "3.39e+38")
        #expect(BFloat16(Float(256)).description == "256.0" && BFloat16(Float(1024)).description == "1.024e+03" && BFloat16(Float(1000)).description == "1e+03")
        #expect(BFloat16(Float(0.0001)).description == "0.0001" && BFloat16(Float(0.00001)).description == "1e-05")
        #expect(BFloat16.infinity.description == "inf" && (-BFloat16.infinity).description == "-inf")
        #expect((-BFloat16(0)).description == "-0.0")
    }
}

@Suite struct BFloat16Conversions {
    /// The oracle: MPFR rounding of the exact input into bf16.
    static func reference(_ x: Double) -> Double { MPFROracle.round(x, to: .bf16, mode: .nearest) }

    @Test func millionRandomFloat32Inputs() {
        var g = SplitMix64(seed: 2026)
        var mismatches = 0
        for _ in 0..<1_000_000 {
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            let got = BFloat16(x).doubleValue
            if !same(got, Self.reference(Double(x))) { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    @Test func everyRoundingBoundaryNeighbourhood() {
        // For every pair of adjacent finite bf16 values: the midpoint, and ±1, ±2 ulp
        // of binary32 around it; plus the overflow threshold and the subnormal edge.
        var inputs: [Float] = []
        for b in UInt16(0)...0x7F7F {
            let lo = BFloat16(bitPattern: b).floatValue, hi = BFloat16(bitPattern: b).nextUp.floatValue
            let mid = Float((Double(lo) + Double(hi)) / 2)
            for m in [mid, -mid] {
                inputs += [m, m.nextUp, m.nextDown, m.nextUp.nextUp, m.nextDown.nextDown]
            }
        }
        let maxMid = Float(bitPattern: 0x7F7F_8000)      // halfway to 2^128: ties to even → ∞
        inputs += [maxMid, maxMid.nextDown, .greatestFiniteMagnitude, Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x0000_7FFF)]
        var mismatches = 0
        for x in inputs where !same(BFloat16(x).doubleValue, Self.reference(Double(x))) { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(inputs.count > 300_000)
        #expect(BFloat16(maxMid).isInfinite && BFloat16(maxMid.nextDown).bitPattern == 0x7F7F)
    }

    @Test func doubleInputsThatExposeDoubleRounding() {
        // d = midpoint·(1 ± 2^-40): binary32 rounds d onto the midpoint, and then
        // ties-to-even picks a neighbour by parity; direct rounding goes by d.
        var g = SplitMix64(seed: 7)
        var exposed = 0
        for _ in 0..<100_000 {
            let b = UInt16(truncatingIfNeeded: g.next()) & 0x7F7F
            let lo = BFloat16(bitPattern: b), hi = lo.nextUp
            let mid = (lo.doubleValue + hi.doubleValue) / 2
            guard mid != 0, mid.isFinite else { continue }
            for d in [mid * (1 + 0x1p-40), mid * (1 - 0x1p-40), -mid * (1 + 0x1p-40)] {
                let direct = BFloat16(d).doubleValue
                #expect(same(direct, Self.reference(d)))
                if !same(direct, BFloat16(Float(d)).doubleValue) { exposed += 1 }
            }
        }
        #expect(exposed > 50_000, "the test must contain double-rounding cases (found \(exposed))")
    }

    @Test(.enabled(if: exhaustive)) func exhaustiveAllFloat32() async {
        // Every binary32 input: the bit trick against the generic single-rounding
        // core (an independent algorithm), with MPFR on every 4099th input.
        await withTaskGroup(of: Int.self) { group in
            for chunk in 0..<64 {
                group.addTask {
                    var bad = 0
                    let lo = UInt64(chunk) << 26, hi = lo + (1 << 26)
                    for i in lo..<hi {
                        let x = Float(bitPattern: UInt32(i))
                        let fast = BFloat16(x).doubleValue
                        let core = FormatRounding.round(Double(x), to: .bf16, mode: .nearest)
                        if !same(fast, core) { bad += 1 }
                        if i % 4099 == 0 && !same(fast, BFloat16Conversions.reference(Double(x))) { bad += 1 }
                    }
                    return bad
                }
            }
            var total = 0
            for await b in group { total += b }
            #expect(total == 0)
        }
    }
}


/// `+ − × ÷` round their binary32 result without a NaN test
/// (``BFloat16/roundArithmeticResult(_:)``): for every bfloat16 `a` (all 65,536
/// patterns, signaling and quiet NaNs of both signs included) against special and
/// random `b`, the bits equal those of the rounding with the NaN select, and every NaN
/// result is quiet.
@Suite struct BFloat16NaNFreeRoundingTests {
    @Test func arithmeticEqualsTheRoundingWithNaNSelect() {
        var g = SplitMix64(seed: 5)
        let specials: [UInt16] = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFFFF, 0x7FBF, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0xBF80]
        let others = specials + (0..<40).map { _ in UInt16(truncatingIfNeeded: g.next()) }
        var checked = 0
        for ab in 0...UInt16.max {
            let a = BFloat16(bitPattern: ab)
            for bb in others {
                let b = BFloat16(bitPattern: bb)
                let pairs: [(BFloat16, Float)] = [(a + b, a.floatValue + b.floatValue), (a - b, a.floatValue - b.floatValue),
                                                  (a * b, a.floatValue * b.floatValue), (a / b, a.floatValue / b.floatValue)]
                for (r, f) in pairs {
                    if r.bitPattern != BFloat16.roundNearestEven(f) || (r.isNaN && r.bitPattern & 0x0040 == 0) {
                        Issue.record("\(ab) op \(bb): \(r.bitPattern) vs \(BFloat16.roundNearestEven(f))")
                        return
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == 65_536 * others.count * 4)
    }
}
