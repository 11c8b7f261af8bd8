import Testing
import RealModule
import Scalars

@inline(never) func genericExp<T: Real>(_ x: T) -> T { T.exp(x) }
@inline(never) func genericMul<T: Real>(_ a: T, _ b: T) -> T { a * b }
@inline(never) func genericFromDouble<T: ComputeScalar>(_ d: Double, _: T.Type) -> T { T(roundingDouble: d) }

/// Generic code (witness-table dispatch) and concrete code give the same results.
@Suite struct GenericDispatchTests {
    @Test func bf16GenericMatchesConcrete() {
        var g = SplitMix64(seed: 1)
        for _ in 0..<2000 {
            let d = 4 * g.nextUniform() - 2
            let x = BFloat16(d), y = BFloat16(2 * g.nextUniform())
            #expect(genericExp(x).bitPattern == BFloat16.exp(x).bitPattern, "exp(\(x))")
            #expect(genericMul(x, y).bitPattern == (x * y).bitPattern)
            #expect(genericFromDouble(d, BFloat16.self).bitPattern == BFloat16(roundingDouble: d).bitPattern)
        }
    }
}

/// The one list of specialized types (``ScalarRegistry/specialized(_:_:)``) covers every
/// named format of the registry under every rounding mode it has, the mpfr256 reference,
/// and the dual numbers of exact HVPs in fp32, fp64, bf16 and mpfr256; a specialized
/// run reinterprets the caller's values as the type they are (the same bits).
@Suite struct SpecializationListTests {
    struct Probe: ScalarBody { func run<T: ComputeScalar>(_: T.Type) -> Bool { ScalarRegistry.isSpecialized(T.self) } }

    @Test func everyNamedFormatAndModeIsSpecialized() throws {
        var checked = 0
        for name in ScalarRegistry.names where !name.hasPrefix("mpfr") || name == "mpfr256" {
            for mode in RoundingMode.allCases {
                guard let fast = try? ScalarRegistry.run(format: name, rounding: mode, Probe()) else { continue }
                #expect(fast, "\(name) under \(mode) runs generic code")
                checked += 1
            }
        }
        // The registry's formats (bf16 … e2m1) × 5 modes; fp64 and mpfr256 at nearest.
        #expect(ScalarRegistry.registeredFormats.count == 9 && checked == ScalarRegistry.registeredFormats.count * 5 + 2)
        #expect(ScalarRegistry.isSpecialized(Dual<Float>.self) && ScalarRegistry.isSpecialized(Dual<MPFloat<256>>.self))
        // Not in the list (generic code, correct): user formats, other MPFR precisions.
        #expect(try ScalarRegistry.run(format: "p=4,emin=-6,emax=7", Probe()) == false)
        #expect(!ScalarRegistry.isSpecialized(MPFloat<512>.self))
    }

    /// The models' tier is part of the full list, and holds the formats studies use most.
    @Test func theModelsTierIsASubsetOfTheList() throws {
        var tier = 0
        for name in ScalarRegistry.names where !name.hasPrefix("mpfr") || name == "mpfr256" {
            for mode in RoundingMode.allCases {
                struct Both: ScalarBody { func run<T: ComputeScalar>(_: T.Type) -> (Bool, Bool) { (ScalarRegistry.isSpecializedForModels(T.self), ScalarRegistry.isSpecialized(T.self)) } }
                guard let (models, all) = try? ScalarRegistry.run(format: name, rounding: mode, Both()) else { continue }
                #expect(!models || all, "\(name) \(mode) is in the models' tier but not in the list")
                if models { tier += 1 }
            }
        }
        #expect(tier == 7)        // bf16, fp16, fp32, fp64, mpfr256 at nearest; bf16 and fp32 stochastic
        func both<T: ComputeScalar>(_: T.Type) -> Bool { ScalarRegistry.isSpecializedForModels(T.self) && ScalarRegistry.isSpecialized(T.self) }
        #expect(both(Dual<Float>.self) && both(Dual<Double>.self) && both(Dual<BFloat16>.self) && both(Dual<MPFloat<256>>.self))
    }

    struct Twice: SpecializedBody {
        let x: UnsafeRawPointer, out: UnsafeMutableRawPointer
        func run<U: ComputeScalar>(_: U.Type) {
            let v = x.assumingMemoryBound(to: U.self).pointee
            out.assumingMemoryBound(to: U.self).pointee = v + v
        }
    }

    @Test func aSpecializedRunComputesInTheCallersType() {
        func twice<T: ComputeScalar>(_ a: T) -> T? {
            var a = a, r = T.zero
            let done = withUnsafePointer(to: &a) { ap in withUnsafeMutablePointer(to: &r) { rp in
                ScalarRegistry.specialized(T.self, Twice(x: UnsafeRawPointer(ap), out: UnsafeMutableRawPointer(rp))) != nil
            } }
            return done ? r : nil
        }
        #expect(twice(BFloat16(1.5)) == BFloat16(3))
        #expect(twice(LowPrecisionFloat<E4M3Spec, TowardZero>(roundingDouble: 0.3))?.doubleValue == 0.5625)
        #expect(twice(MPFloat<256>(0.25))?.doubleValue == 0.5)
        #expect(twice(MPFloat<512>(0.25)) == nil)
    }
}

/// The per-type customization points of `ComputeScalar` are the types' own, not the
/// defaults: a default gives the same bits and is only slower, so no result test sees a
/// missing implementation (one cost the fp32 MLP gradient 25% before this test).
@Suite struct CustomizationPointTests {
    func taken<T: ComputeScalar>(_: T.Type, _ z: [T]) -> (tanh: Bool, binary32Data: Bool, sameDoubles: Bool) {
        (T.tanhValues(z) != nil, T.fromBinary32Rounding([0.5]) != nil, T.sameValues([0.5]) != nil)
    }

    @Test func eachTypeTakesItsOwn() {
        #expect(taken(Float.self, [0.5]) == (true, true, false))
        #expect(taken(Dual<Float>.self, [Dual(0.5, 1)]) == (true, true, false))
        #expect(taken(Double.self, [0.5]) == (false, false, true))
        #expect(taken(BFloat16.self, [0.5]) == (false, false, false))
        #expect(Float.exactInBinary32 && BFloat16.exactInBinary32 && FP6E3M2.exactInBinary32 && !Double.exactInBinary32)
        #expect(Double.exactInBinary64 && Float.exactInBinary64 && !MPFloat<256>.exactInBinary64 && !Dual<Float>.exactInBinary32)
        // The vector forms give the scalar function's bits.
        let z: [Float] = (0..<200).map { Float($0 - 100) / 17 }
        #expect(Float.tanhValues(z)! == z.map { Elementary.tanh($0) })
        let d = z.map { Dual($0, Float(1) / 3) }
        #expect(Dual<Float>.tanhValues(d)!.elementsEqual(d.map { Dual<Float>.tanh($0) }) { $0.value == $1.value && $0.tangent == $1.tangent })
    }
}


/// ``ScalarArrays/doubles(_:roundedBy:)`` of Float values is `FormatArithmetic.round`
/// of each value bit for bit, through its plain-widening pass for fp32 and fp64 (which
/// must make NaNs canonical for fp32 and keep their payloads for fp64) and through the
/// rounding loop for the other formats.
@Suite struct ScalarArraysTests {
    /// Every class of binary32 value: ±0, subnormals, normals, ±∞, quiet and signalling
    /// NaNs with payloads and both signs, among random values.
    static func values() -> [Float] {
        var g = SplitMix64(seed: 7)
        var x: [Float] = (0..<4000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: g.next())) }
        x += [0, -0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude.nextDown, 1, -3.5,
              .greatestFiniteMagnitude, .infinity, -.infinity, .nan, -.nan,
              Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFFC0_0001), Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF80_0F00)]
        return x
    }

    @Test(arguments: ["fp32", "fp64", "bf16", "fp16"])
    func doublesMatchesRoundingEachValue(format: String) throws {
        let f = try FormatArithmetic(name: format)
        let x = Self.values()
        #expect(x.contains { $0.isNaN && $0.sign == .minus } && x.contains { $0.isSubnormal })
        let got = ScalarArrays.doubles(x, roundedBy: f)
        let want = x.map { f.round(Double($0)) }
        #expect(got.count == want.count)
        let differing = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(format): \(differing) values differ from FormatArithmetic.round")
        // Rounding into a format drops a NaN's payload; fp64 keeps it (so the fast path cannot
        // pass both by doing the same thing to NaNs).
        let i = x.firstIndex { $0.bitPattern == 0x7FC0_1234 }!
        #expect((got[i].bitPattern == Double.nan.bitPattern) == (format != "fp64"))
    }
}

/// ``FormatArithmetic/fmaEach(_:_:_:)`` and ``FormatArithmetic/fmaSums(_:_:)`` (the sharded
/// Lanczos updates and dot products, one vector or several at once) give, element by
/// element, the scalar ``FormatArithmetic/fma(_:_:_:)``'s bits: in fp64 through the element
/// type's CKernels loops (vector lanes for the updates, four FMA chains at a time for the
/// dot products), in fp32 through the generic loop. The reference is the scalar operation
/// applied one update after the other (the C library's correctly rounded fma in fp64).
/// NaN results are compared as NaN: which of several NaN operands propagates is the
/// instruction's choice.
@Suite struct FormatArithmeticLoopsTests {
    /// Lengths around the kernels' 8-wide blocks, their tails and the dot products' 1024 blocks.
    static let lengths = [0, 1, 3, 7, 8, 9, 15, 16, 17, 1029, 2051]

    /// Values of both signs over `span` binades around 1, with (when `specials`) zeros,
    /// subnormals, huge values, infinities and NaNs mixed in.
    static func values(_ n: Int, seed: UInt64, span: Int, specials: Bool) -> [Double] {
        var g = SplitMix64(seed: seed)
        let special: [Double] = [0, -0, .leastNonzeroMagnitude, -0x1p-1060, .greatestFiniteMagnitude, -.infinity, .infinity, .nan, 0x1p-1030]
        return (0..<n).map { i in
            let r = g.next()
            if specials && r % 13 == 0 { return special[Int(r >> 8) % special.count] }
            let m = 1 + Double(r >> 12) * 0x1p-52
            let e = Int((r >> 1) % UInt64(2 * span + 1)) - span
            return (r & 1 == 0 ? m : -m) * Double(sign: .plus, exponent: e, significand: 1)
        }
    }

    static func same(_ a: Double, _ b: Double) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }

    /// Differing updated elements and dot products, and how many were compared, over every
    /// length and k = 1…10 vectors at once (groups of four chains and their remainders).
    func check<X: BinaryFloatingPoint & ComputeScalar>(_: X.Type, format: String, span: Int, specials: Bool) throws -> (each: Int, sum: Int, compared: Int) {
        let f = try FormatArithmetic(name: format)
        var eachDiffer = 0, sumDiffer = 0, compared = 0
        for (t, n) in Self.lengths.enumerated() {
            for k in [1, 2, 3, 4, 5, 8, 10] where n < 2000 || k == 5 {
                // Stored vectors and carriers hold values of the format (as in the Lanczos run).
                let xs = (0..<k).map { m in Self.values(n, seed: UInt64(100 * t + m + 1), span: span, specials: specials).map { X(f.round($0)) } }
                let y0 = Self.values(n, seed: UInt64(100 * t + 99), span: span, specials: specials).map { f.round($0) }
                let a = (0..<k).map { m in f.round([0.75, -1.0 / 3, 0x1p-20 * .pi][m % 3] * Double(m + 1)) }
                var y = y0
                y.withUnsafeMutableBufferPointer { y in
                    FormatArithmeticLoopsTests.buffers(xs) { f.fmaEach(y, a, $0) }
                }
                var want = y0
                for m in 0..<k { for i in 0..<n { want[i] = f.fma(want[i], a[m], Double(xs[m][i])) } }
                eachDiffer += zip(y, want).filter { !Self.same($0, $1) }.count
                compared += n
                let s = y0.withUnsafeBufferPointer { y in FormatArithmeticLoopsTests.buffers(xs) { f.fmaSums($0, y) } }
                let sums = xs.map { x in zip(x, y0).reduce(0.0) { f.fma($0, Double($1.0), $1.1) } }
                sumDiffer += zip(s, sums).filter { !Self.same($0, $1) }.count
                // The one-vector forms are the same operations.
                if k == 1 {
                    var y1 = y0
                    y1.withUnsafeMutableBufferPointer { y in xs[0].withUnsafeBufferPointer { f.fmaEach(y, a[0], $0) } }
                    eachDiffer += zip(y1, want).filter { !Self.same($0, $1) }.count
                    let s1 = xs[0].withUnsafeBufferPointer { x in y0.withUnsafeBufferPointer { f.fmaSum(x, $0) } }
                    if !Self.same(s1, sums[0]) { sumDiffer += 1 }
                }
            }
        }
        return (eachDiffer, sumDiffer, compared)
    }

    static func buffers<X, R>(_ xs: [[X]], _ done: [UnsafeBufferPointer<X>] = [], _ body: ([UnsafeBufferPointer<X>]) -> R) -> R {
        guard done.count < xs.count else { return body(done) }
        return xs[done.count].withUnsafeBufferPointer { buffers(xs, done + [$0], body) }
    }

    @Test(arguments: ["fp64", "fp32"], [false, true])
    func loopsMatchTheScalarOperation(format: String, specials: Bool) throws {
        // Wide exponent spans make subnormal, overflowing and non-finite results; narrow
        // ones keep dot products finite so every step of the chain is compared.
        for span in [4, 40, 1100] {
            let d = try check(Double.self, format: format, span: span, specials: specials)
            let s = try check(Float.self, format: format, span: min(span, 140), specials: specials)
            #expect(d.each == 0 && d.sum == 0, "\(format) Double span \(span): \(d.each) of \(d.compared) updates, \(d.sum) dot products differ")
            #expect(s.each == 0 && s.sum == 0, "\(format) Float span \(span): \(s.each) of \(s.compared) updates, \(s.sum) dot products differ")
        }
    }

    /// The kernels are the ones taken in fp64 (a default would give the same bits, slower),
    /// and a fused chain is not an unfused one: on these values the two differ.
    @Test func theKernelsAreTakenAndFused() {
        var y: [Double] = [1, 2]
        let xd: [Double] = [3, 4], xf: [Float] = [3, 4], a = [0.5]
        let taken = y.withUnsafeMutableBufferPointer { y in
            a.withUnsafeBufferPointer { a in
                xd.withUnsafeBufferPointer { xd in xf.withUnsafeBufferPointer { xf in
                    [xd.baseAddress].withUnsafeBufferPointer { Double.fusedAxpyBinary64(a, $0, y) }
                        && [xf.baseAddress].withUnsafeBufferPointer { Float.fusedAxpyBinary64(a, $0, y) }
                } }
            }
        }
        #expect(taken)
        #expect(y == [4.0, 6.0])   // 1 + 2·1.5, 2 + 2·2
        let x = Self.values(1029, seed: 9, span: 4, specials: false), z = Self.values(1029, seed: 10, span: 4, specials: false)
        var out = [0.0]
        let dots = out.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { x in z.withUnsafeBufferPointer { z in [x.baseAddress].withUnsafeBufferPointer { Double.fusedDotsBinary64($0, z, out) } } }
        }
        let unfused = zip(x, z).reduce(0.0) { $0 + $1.0 * $1.1 }
        #expect(dots && out[0] != unfused)
    }
}
