import Testing
import CMPFR
@testable import Scalars

/// `MPFloat.dot` (CKernels' fixed-width limb loop) against MPFR's own
/// `mpfr_mul` + `mpfr_add` loop, bit for bit, over inputs chosen to reach every
/// branch of the limb code: full random significands, sparse values whose sums and
/// products are exact ties or cancel exactly, exponent gaps beyond the guard limbs,
/// signed zeros, and the values that leave the fast path (NaN, ∞, huge exponents).
@Suite struct MPFloatDotTests {
    /// Same value and sign, or both NaN.
    static func identical<let p: Int>(_ x: MPFloat<p>, _ y: MPFloat<p>) -> Bool {
        if x.isNaN || y.isNaN { return x.isNaN && y.isNaN }
        return x == y && x.sign == y.sign
    }

    enum Kind: CaseIterable { case dense, sparse, cancelling, wide, zeros }

    /// n pairs of one kind, drawn from `g`.
    static func vectors<let p: Int>(_ kind: Kind, n: Int, _ g: inout SplitMix64) -> ([MPFloat<p>], [MPFloat<p>]) {
        typealias M = MPFloat<p>
        func pow2(_ e: Int) -> M { M(sign: .plus, exponent: e, significand: 1) }
        func sign() -> Double { g.next() & 1 == 0 ? 1 : -1 }
        func dense(_ e: Int) -> M {                    // a full random significand near 2^e
            var x = M(0)
            for j in 0..<(p / 50 + 2) { x += M(sign() * (1 + g.nextUniform())) * pow2(e - 50 * j) }
            return x
        }
        func sparse(_ e: Int) -> M {                   // 1 to 3 bits within p + 2 of 2^e
            var x = pow2(e) * M(sign())
            for _ in 0..<Int(g.next() % 3) { x += M(sign()) * pow2(e - Int(g.next() % UInt64(p + 2))) }
            return x
        }
        var a: [M] = [], b: [M] = []
        for i in 0..<n {
            switch kind {
            case .dense:
                a.append(dense(Int(g.next() % 20) - 10)); b.append(dense(Int(g.next() % 20) - 10))
            case .sparse:
                a.append(sparse(Int(g.next() % 8))); b.append(sparse(Int(g.next() % 8)))
            case .cancelling:
                // every other product undoes most of the running sum
                if i % 2 == 0 || a.isEmpty {
                    a.append(dense(0)); b.append(dense(0))
                } else {
                    let s = M.mpfrLoopDot(a, b)
                    let nudge = g.next() % 3 == 0 ? M(0) : M(sign()) * pow2(-Int(g.next() % UInt64(2 * p + 140)))
                    a.append(-(s + nudge)); b.append(M(1))
                }
            case .wide:
                let e = Int(g.next() % 1600) - 800
                a.append(g.next() & 1 == 0 ? dense(e) : sparse(e)); b.append(dense(Int(g.next() % 40) - 20))
            case .zeros:
                let z = M(sign() * 0.0)
                switch g.next() % 4 {
                case 0: a.append(z); b.append(dense(0))
                case 1: a.append(dense(0)); b.append(z)
                case 2: a.append(z); b.append(M(sign() * 0.0))
                default: a.append(sparse(0)); b.append(sparse(0))
                }
            }
        }
        return (a, b)
    }

    static func check<let p: Int>(_: MPFloat<p>.Type, seed: UInt64, n: Int = 60, trials: Int = 40) -> Int {
        var g = SplitMix64(seed: seed)
        var mismatches = 0
        for kind in Kind.allCases {
            for _ in 0..<trials {
                let (a, b): ([MPFloat<p>], [MPFloat<p>]) = vectors(kind, n: Int(g.next() % UInt64(n)) + 1, &g)
                let fast = MPFloat<p>.dot(a, b), ref = MPFloat<p>.mpfrLoopDot(a, b)
                if !identical(fast, ref) {
                    mismatches += 1
                    Issue.record("p = \(p), \(kind): \(fast.decimalString()) vs MPFR \(ref.decimalString())")
                }
            }
        }
        return mismatches
    }

    @Test func matchesMPFRLoopAtEveryLimbCount() {
        #expect(Self.check(MPFloat<53>.self, seed: 1) == 0)
        #expect(Self.check(MPFloat<64>.self, seed: 2) == 0)
        #expect(Self.check(MPFloat<100>.self, seed: 3) == 0)
        #expect(Self.check(MPFloat<128>.self, seed: 4) == 0)
        #expect(Self.check(MPFloat<192>.self, seed: 5) == 0)
        #expect(Self.check(MPFloat<255>.self, seed: 6) == 0)
        #expect(Self.check(MPFloat<256>.self, seed: 7, trials: 150) == 0)
        #expect(Self.check(MPFloat<257>.self, seed: 8) == 0)
        #expect(Self.check(MPFloat<448>.self, seed: 9) == 0)
        #expect(Self.check(MPFloat<512>.self, seed: 10) == 0)
        #expect(Self.check(MPFloat<600>.self, seed: 11, trials: 5) == 0)   // MPFR's loop throughout
    }

    /// Hand-made ties at 256 bits, with their values stated (not only compared).
    @Test func tiesRoundToEven() {
        typealias M = MPFloat<256>
        func pow2(_ e: Int) -> M { M(sign: .plus, exponent: e, significand: 1) }
        let one = M(1)
        // 1 + 2^-256 is halfway between 1 and 1 + 2^-255: even is 1.
        #expect(Self.identical(M.dot([one, one], [one, pow2(-256)]), one))
        // (1 + 2^-255) + 2^-256: halfway, the even neighbour is 1 + 2^-254.
        #expect(Self.identical(M.dot([one, one, one], [one, pow2(-255), pow2(-256)]), one + pow2(-254)))
        // product tie: (1 + 2^-128)² = 1 + 2^-127 + 2^-256 rounds to 1 + 2^-127.
        let x = one + pow2(-128)
        #expect(Self.identical(M.dot([x], [x]), one + pow2(-127)))
        // exact cancellation is +0; −0 · 1 + −0 · 1 stays −0
        #expect(Self.identical(M.dot([x, -x], [x, x]), M(0)))
        #expect(M.dot([M(-0.0), M(-0.0)], [one, one]).sign == .plus)    // s starts at +0
        // a gap far beyond the guard limbs: 2^400 − 2^-400 rounds to 2^400
        #expect(Self.identical(M.dot([pow2(400), pow2(-400)], [one, -one]), pow2(400)))
    }

    /// Ties broken only by bits far below the round bit: the ones the limb code folds
    /// into a sticky bit (beyond its two guard limbs, at a whole or partial limb
    /// shift) or shifts out when a sum carries. Expected values stated, and MPFR's.
    static func stickyCases<let p: Int>(_: MPFloat<p>.Type) -> [String] {
        typealias M = MPFloat<p>
        func pow2(_ e: Int) -> M { M(sign: .plus, exponent: e, significand: 1) }
        let one = M(1)
        var cases: [([M], [M], M)] = []
        // The breaking bit 2^-(p+c) at every distance c below the round bit, so that
        // it is folded from whole limbs, from a partial limb, or kept in the guard limbs.
        for c in 1..<p {
            // 1 + 2^-p is the tie between 1 and 1 + 2^(1-p): broken upwards
            cases.append(([one, pow2(-p) + pow2(-(p + c))], [one, one], one + pow2(1 - p)))
            // 1 - 1.5·2^-p is the tie between 1 - 2^(1-p) (even) and 1 - 2^-p: the
            // subtracted 2^-(p+c) breaks it upwards
            cases.append(([one, M(3) * pow2(-p - 1) - pow2(-(p + c))], [one, -one], one - pow2(-p)))
            // 1 - 2^-(p+1) is the tie between 1 - 2^-p and 1 (even): the subtracted
            // 2^-(p+1+c) breaks it downwards
            cases.append(([one, pow2(-(p + 1)) + pow2(-(p + 1 + c))], [one, -one], one - pow2(-p)))
        }
        let w = 64 * ((p + 63) / 64 + 2)                  // the limb code's working width
        if w + 2 <= 2 * p {
            // (2 - 2^(1-p)) + 2^(2-p) carries to 2 + 2^(1-p), the tie between 2 and
            // 2 + 2^(2-p); the last working bit, 2^-(w-1), shifted out by the carry, breaks it
            cases.append(([M(2) - pow2(1 - p), pow2(2 - p) + pow2(-(w - 1))], [one, one], M(2) + pow2(2 - p)))
        }
        var failures: [String] = []
        for (i, (a, b, expected)) in cases.enumerated() where failures.count < 3 {
            let fast = M.dot(a, b), ref = M.mpfrLoopDot(a, b)
            if !identical(ref, expected) { failures.append("p = \(p) case \(i): the expected value is not MPFR's") }
            if !identical(fast, expected) { failures.append("p = \(p) case \(i): \(fast.decimalString()) ≠ \(expected.decimalString())") }
        }
        return failures
    }

    @Test func tiesBrokenBelowTheGuardLimbs() {
        #expect(Self.stickyCases(MPFloat<100>.self) == [])
        #expect(Self.stickyCases(MPFloat<255>.self) == [])
        #expect(Self.stickyCases(MPFloat<256>.self) == [])
        #expect(Self.stickyCases(MPFloat<512>.self) == [])
    }

    /// The dual-number dot product against `Dual`'s operators (`s += x·y`, each
    /// operation through MPFR), bit for bit in value and tangent: tangents of every kind
    /// above, zero tangents (as the data and biases have in an HVP), tangent products that
    /// cancel (x' y = −x y'), and values leaving the fast path.
    static func checkDual<let p: Int>(_: MPFloat<p>.Type, seed: UInt64, trials: Int = 30) -> Int {
        typealias M = MPFloat<p>
        var g = SplitMix64(seed: seed)
        var mismatches = 0
        for trial in 0..<(trials * Kind.allCases.count) {
            let kinds = Kind.allCases
            let n = Int(g.next() % 40) + 1
            let (xv, yv): ([M], [M]) = vectors(kinds[trial % kinds.count], n: n, &g)
            var (xt, yt): ([M], [M]) = vectors(kinds[(trial / kinds.count) % kinds.count], n: n, &g)
            switch trial % 4 {
            case 1: xt = xt.map { _ in M(0) }                                       // zero tangents
            case 2: yt = zip(xt, zip(xv, yv)).map { t, vv in -(t * vv.1) / vv.0 }   // x'y ≈ −xy'
            case 3 where n > 2: xt[n / 2] = g.next() & 1 == 0 ? .nan : .infinity   // leaves the fast path
            default: break
            }
            let x = zip(xv, xt).map { Dual($0, $1) }, y = zip(yv, yt).map { Dual($0, $1) }
            var ref = Dual<M>(M(0), M(0))
            for i in 0..<n { ref += x[i] * y[i] }
            let fast = x.withUnsafeBufferPointer { xp in y.withUnsafeBufferPointer { M.dualDot(xp, $0) } }
            if !identical(fast.value, ref.value) || !identical(fast.tangent, ref.tangent) {
                mismatches += 1
                Issue.record("p = \(p) trial \(trial): (\(fast.value.decimalString()), \(fast.tangent.decimalString())) vs (\(ref.value.decimalString()), \(ref.tangent.decimalString()))")
            }
        }
        return mismatches
    }

    @Test func dualDotMatchesDualOperators() {
        #expect(Self.checkDual(MPFloat<64>.self, seed: 31) == 0)
        #expect(Self.checkDual(MPFloat<100>.self, seed: 32) == 0)
        #expect(Self.checkDual(MPFloat<256>.self, seed: 33, trials: 80) == 0)
        #expect(Self.checkDual(MPFloat<512>.self, seed: 34) == 0)
        #expect(Self.checkDual(MPFloat<1024>.self, seed: 35, trials: 4) == 0)  // MPFR's loop throughout
        let empty: [Dual<MPFloat<256>>] = []
        let e = empty.withUnsafeBufferPointer { MPFloat<256>.dualDot($0, $0) }
        #expect(e.value.isZero && e.value.sign == .plus && e.tangent.isZero && e.tangent.sign == .plus)
    }

    /// Values that leave the fast path: the rest of the loop is MPFR's, same bits.
    @Test func specialValuesAndHugeExponentsFallBack() {
        typealias M = MPFloat<256>
        var g = SplitMix64(seed: 12)
        let (a0, b0): ([M], [M]) = Self.vectors(.dense, n: 30, &g)
        let huge = M(sign: .plus, exponent: 1 << 29, significand: 1)
        for special in [M.nan, M.infinity, -M.infinity, huge, 1 / huge] {
            for at in [0, 7, 29] {
                var a = a0
                a[at] = special
                #expect(Self.identical(M.dot(a, b0), M.mpfrLoopDot(a, b0)), "\(special.decimalString()) at \(at)")
            }
        }
        #expect(M.dot([], []).isZero && M.dot([], []).sign == .plus)
    }
}
