import Testing
import RealModule
import CMPFR
@testable import Scalars

@Suite struct MPFloatTests {
    typealias M = MPFloat<256>

    @Test func constantsTo1000Digits() throws {
        let rows = try golden("constants_1000.csv")
        let ref = Dictionary(uniqueKeysWithValues: rows.map { (String($0[0]), String($0[1])) })
        typealias Big = MPFloat<4096>                      // ≈ 1233 digits
        let values: [(String, Big)] = [("pi", .pi), ("e", .exp(1)), ("sqrt2", .sqrt(2))]
        for (name, x) in values {
            let golden = try #require(ref[name])
            #expect(golden.count == 1001)                  // 1000 digits and the point
            #expect(x.decimalString(digits: 1000) == golden, "\(name)")
            let diff = (x - Big(golden)!).magnitude
            #expect(diff < Big("1e-999")!, "\(name) differs from mpmath by \(diff.doubleValue)")
        }
    }

    /// |computed − exact| ≤ ulp/2, with "exact" evaluated at 1024 bits, where
    /// +, −, × of 256-bit operands are exact and ÷, √ are checked by their residual.
    @Test func arithmeticIsCorrectlyRounded() {
        typealias W = MPFloat<1024>
        var g = SplitMix64(seed: 3)
        func random() -> M {
            let a = M(g.nextUniform() - 0.5) / M(g.nextUniform() + 0.1)
            return a * M(sign: .plus, exponent: Int(g.next() % 40) - 20, significand: 1)
        }
        for _ in 0..<2000 {
            let a = random(), b = random()
            let halfUlp: (M) -> W = { W($0.ulp) / 2 }
            for (r, exact) in [(a + b, W(a) + W(b)), (a - b, W(a) - W(b)), (a * b, W(a) * W(b))] {
                #expect((W(r) - exact).magnitude <= halfUlp(r))
            }
            let q = a / b
            #expect((W(q) * W(b) - W(a)).magnitude <= halfUlp(q) * W(b).magnitude)
            let s = a.magnitude.squareRoot()
            #expect((W(s) * W(s) - W(a.magnitude)).magnitude <= halfUlp(s) * 2 * W(s) + W(s.ulp) * W(s.ulp))
            #expect(a.addingProduct(b, b) == M(W(a).addingProduct(W(b), W(b))), "fma: one rounding")
        }
    }

    @Test func identitiesAndExactCases() {
        var g = SplitMix64(seed: 4)
        let tol = M(sign: .plus, exponent: -250, significand: 1)
        for _ in 0..<200 {
            let x = M(g.nextUniform() * 10 - 5)
            #expect((M.sin(x) * M.sin(x) + M.cos(x) * M.cos(x) - 1).magnitude < tol)
            #expect((M.exp(M.log(x.magnitude)) - x.magnitude).magnitude < tol * x.magnitude)
            #expect((M.tanh(x) - M.sinh(x) / M.cosh(x)).magnitude < tol)
            #expect((M.atan2(y: M.sin(x), x: M.cos(x)) - x).magnitude < tol * 8 || x.magnitude > M.pi)
        }
        #expect(M.gamma(5) == 24 && M.sqrt(4) == 2 && M.pow(2, 10) == 1024 && M.pow(M(2), M(-3)) == M(0.125))
        #expect(M.root(-27, 3) == -3 && M.log2(1024) == 10 && M.exp2(-2) == M(0.25))
        #expect((M.atan(1) * 4 - M.pi).magnitude <= M.pi.ulp * 2)
        #expect(M.signGamma(M(-0.5)) == .minus && M.signGamma(M(-1.5)) == .plus)
    }

    @Test func valueSemanticsUnderMutationOfCopies() {
        var a = M(1.5)
        var b = a
        b += 1
        #expect(a == M(1.5) && b == M(2.5))
        let c = a
        a.negate()
        #expect(c == M(1.5) && a == M(-1.5))
        a += a
        #expect(a == M(-3))
        var arr = [M](repeating: M(7), count: 4)
        let snapshot = arr
        arr[2] *= 2
        arr[0].formSquareRoot()
        #expect(snapshot.allSatisfy { $0 == M(7) } && arr[2] == M(14) && arr[1] == M(7))
        var d = c
        d.round(.up)
        #expect(c == M(1.5) && d == M(2))
    }

    @Test func conversionsAndStrings() {
        var g = SplitMix64(seed: 5)
        for _ in 0..<5000 {
            let d = Double(bitPattern: g.next())
            guard d.isFinite else { continue }
            let x = M(d)
            #expect(x.doubleValue == d && Double(x) == d, "exact from Double")
            #expect(M(x.description) == x, "string round trip of \(x)")
            // Just above the midpoint to the next Double: rounds up, correctly.
            let mid = (M(d) + M(d.nextUp)) / 2
            if d.nextUp.isFinite && d != 0 && d.nextUp != 0 {
                #expect(Double(mid + mid.ulp) == d.nextUp)
                #expect(Double(mid - mid.ulp) == d)
            }
        }
        #expect(M("0x1.8p-3") == M(0.1875) && M("-inf")!.isInfinite && M("nan")!.isNaN)
        #expect(M("1.2.3") == nil && M("") == nil && M("abc") == nil)
        #expect(M(1 << 62) == M(Double(1 << 62)) && M(exactly: UInt64.max) != nil)
        #expect(MPFloat<64>(exactly: UInt64.max) != nil && MPFloat<64>(exactly: (UInt64.max as UInt64).multipliedFullWidth(by: 3).high) != nil)
        #expect(M(Int.min) == -M(sign: .plus, exponent: 63, significand: 1))
        #expect(M.roundTripDigits == 79)
    }

    @Test func precisionRangeAndFloatingPointAnatomy() {
        let third4096 = MPFloat<4096>(1) / MPFloat<4096>(3)
        #expect((third4096 * 3 - 1).magnitude <= MPFloat<4096>(sign: .plus, exponent: -4095, significand: 1))
        let third64 = MPFloat<64>(1) / MPFloat<64>(3)
        #expect(third64.ulp == MPFloat<64>(sign: .plus, exponent: -65, significand: 1))
        #expect(M(1).ulp == M(sign: .plus, exponent: -255, significand: 1) && M(1).nextUp - 1 == M(1).ulp)
        #expect(M(12).exponent == 3 && M(12).significand == M(1.5) && M(0).exponent == .min)
        #expect(M(5.5).remainder(dividingBy: 2) == M(-0.5) && M(5.5).truncatingRemainder(dividingBy: 2) == M(1.5))
        #expect(M(2.5).rounded(.toNearestOrEven) == 2 && M(2.5).rounded(.toNearestOrAwayFromZero) == 3)
        #expect(M(-2.5).rounded(.awayFromZero) == -3 && M(-2.5).rounded(.towardZero) == -2)
        #expect(M.greatestFiniteMagnitude.isFinite && M.greatestFiniteMagnitude.nextUp.isInfinite)
        #expect(M.leastNonzeroMagnitude > 0 && M.leastNonzeroMagnitude.nextDown == 0)
        #expect(M(-0.0).sign == .minus && M(-0.0) == M(0) && M(0).hashValue == M(-0.0).hashValue)
        #expect(Set([M(1), M(1), M(2)]).count == 2)
        let nan = M.nan
        #expect(!(nan == nan) && nan.isTotallyOrdered(belowOrEqualTo: nan))
        #expect(M(-0.0).isTotallyOrdered(belowOrEqualTo: M(0)) && !M(0).isTotallyOrdered(belowOrEqualTo: M(-0.0)))
    }

    @Test func dotProductMatchesElementwiseLoop() {
        var g = SplitMix64(seed: 8)
        let a = (0..<500).map { _ in M(g.nextUniform()) / 3 }, b = (0..<500).map { _ in M(g.nextUniform()) / 7 }
        var s = M(0)
        for i in a.indices { s += a[i] * b[i] }
        #expect(M.dot(a, b) == s, "same two roundings per element as the loop")
    }

    /// One generic function in Double and MPFloat: the registry's promise.
    @Test func genericRealCode() {
        func horner<T: Real>(_ x: T) -> T { ((T(2) * x - 3) * x + 1) * x - T.exp(x) }
        #expect(abs(horner(MPFloat<256>(0.75)).doubleValue - horner(0.75)) < 1e-15)
    }
}
