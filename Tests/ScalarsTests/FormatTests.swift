import Testing
@testable import Scalars

@Suite struct FormatTests {
    @Test func namedFormatsMatchNumericsTable() throws {
        // NUMERICS.md §1: (p, emin, emax), plus the derived facts every user checks.
        let table: [(String, Int, Int, Int, Double, Double)] = [
            ("bf16", 8, -126, 127, 0x1p-133, 0x1.fep127),
            ("fp16", 11, -14, 15, 0x1p-24, 65504),
            ("tf32", 11, -126, 127, 0x1p-136, 0x1.ffcp127),
            ("fp32", 24, -126, 127, 0x1p-149, Double(Float.greatestFiniteMagnitude)),
            ("fp64", 53, -1022, 1023, 0x1p-1074, .greatestFiniteMagnitude),
            ("e4m3", 4, -6, 8, 0x1p-9, 448),
            ("e5m2", 3, -14, 15, 0x1p-16, 57344),
        ]
        for (name, p, emin, emax, tiny, huge) in table {
            let f = try FloatFormat.parse(name)
            #expect(f.p == p && f.emin == emin && f.emax == emax, "\(name)")
            #expect(f.leastNonzero == tiny, "\(name) smallest subnormal")
            #expect(f.greatestFinite == huge, "\(name) largest finite")
            #expect(f.unitRoundoff == Double(sign: .plus, exponent: -p, significand: 1))
        }
        #expect(FloatFormat.bf16.bitWidth == 16 && FloatFormat.fp16.bitWidth == 16)
        #expect(FloatFormat.e4m3.bitWidth == 8 && FloatFormat.e5m2.bitWidth == 8 && FloatFormat.tf32.bitWidth == 19)
        #expect(FloatFormat.fp32.bitWidth == 32 && FloatFormat.fp64.bitWidth == 64)
    }

    @Test func encodingsAgreeWithHardwareFormats() {
        // The generic encoder against the native encodings of fp16, fp32, fp64.
        var g = SplitMix64(seed: 11)
        for _ in 0..<20000 {
            let h = Float16(bitPattern: UInt16(truncatingIfNeeded: g.next()))
            if !h.isNaN { #expect(FloatFormat.fp16.encode(Double(h)) == UInt64(h.bitPattern)) }
            let x = Float(bitPattern: UInt32(truncatingIfNeeded: g.next()))
            if !x.isNaN {
                #expect(FloatFormat.fp32.encode(Double(x)) == UInt64(x.bitPattern))
                #expect(FloatFormat.fp32.decode(UInt64(x.bitPattern)) == Double(x))
            }
            let d = Double(bitPattern: g.next())
            if !d.isNaN { #expect(FloatFormat.fp64.encode(d) == d.bitPattern) }
        }
    }

    @Test func e4m3Specials() {
        let f = FloatFormat.e4m3
        #expect(f.decode(0x7E) == 448 && f.decode(0x7F).isNaN && f.decode(0xFF).isNaN)
        #expect(f.decode(0x01) == 0x1p-9 && f.decode(0x08) == 0x1p-6)
        #expect(f.encode(.nan) & 0x7F == 0x7F)
        #expect(FP8E4M3.infinity.isNaN, "e4m3 has no infinity")
        #expect(FP8E4M3(464.0).doubleValue == 448, "tie at 464 rounds to even 448")
        #expect(FP8E4M3(464.0001).isNaN, "beyond: NaN, as ml_dtypes float8_e4m3fn")
        #expect(LowPrecisionFloat<E4M3Spec, TowardZero>(1e6).doubleValue == 448)
        #expect(LowPrecisionFloat<E4M3Spec, Upward>(449).isNaN)
        #expect(LowPrecisionFloat<P5NoSubnormalSaturating, NearestEven>(1e6).doubleValue == 0x1.ep7)
        #expect(LowPrecisionFloat<P5NoSubnormalSaturating, NearestEven>(0x1p-7).doubleValue == 0, "tie between 0 and 2^emin goes to 0")
        #expect(LowPrecisionFloat<P5NoSubnormalSaturating, NearestEven>(0x1.1p-7).doubleValue == 0x1p-6)
    }

    @Test func userFormatParsing() throws {
        let f = try FloatFormat.parse("p=5,emin=-6,emax=7,subnormals=no,infinities=no,overflow=saturate,name=mine")
        #expect(f == FloatFormat(uncheckedName: "mine", p: 5, emin: -6, emax: 7, subnormals: false, infinities: false, overflow: .saturate))
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=1,emin=-6,emax=7") }
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=5,emin=-6") }
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=5,emin=-6,emax=7,colour=red") }
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=5,emin=-6,emax=7,infinities=no,overflow=infinity") }
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("bf17") }
        // Every registered spec (literal names, not checked when built) validates and is emulatable.
        for f in ScalarRegistry.registeredFormats {
            _ = try FloatFormat(name: f.name, p: f.p, emin: f.emin, emax: f.emax, subnormals: f.subnormals,
                                infinities: f.infinities, nan: f.nan, overflow: f.overflow)
            #expect(f.isEmulatable, "\(f)")
        }
        #expect(ScalarRegistry.registeredFormats.map(\.name) == ["bf16", "fp16", "tf32", "fp32", "e4m3", "e5m2", "e3m2", "e2m3", "e2m1"])
        // No NaN encoding: the whole top binade is finite, overflow saturates by default, and
        // the rules that need a NaN or an infinity are refused.
        let mx = try FloatFormat.parse("p=3,emin=-2,emax=4,infinities=no,nan=no")
        #expect(mx.overflow == .saturate && mx.greatestFinite == 28 && mx == FP6E3M2.format.renamed(mx.name))
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=3,emin=-2,emax=4,infinities=no,nan=no,overflow=nan") }
        #expect(throws: FloatFormat.Invalid.self) { try FloatFormat.parse("p=3,emin=-2,emax=4,nan=no") }
        #expect(LowPrecisionFloat<E3M2Spec, Upward>(28.5).doubleValue == 28 && FP6E3M2(-1e30).doubleValue == -28)
        #expect(FP4E2M1(Float.infinity).doubleValue == 6 && FP4E2M1(Float.nan).isNaN)
        #expect(!FloatFormat.fp64.isEmulatable)
    }

    struct Probe: ScalarBody {
        func run<T: ComputeScalar>(_ type: T.Type) throws -> (String, Double) {
            // (1 + 2^-9) is not representable in bf16/fp16-like formats; 1/3 exercises division.
            (T.formatName, (T(roundingDouble: 1) / T(roundingDouble: 3)).doubleValue)
        }
    }

    @Test func registryRunsEveryFormatByName() throws {
        for name in ScalarRegistry.names {
            let (n, third) = try ScalarRegistry.run(format: name, Probe())
            #expect(n == name)
            // Round-to-nearest: |fl(1/3) − 1/3| ≤ max(u/3, half the subnormal spacing).
            let bound = (try? FloatFormat.parse(name)).map { max($0.unitRoundoff / 3, $0.leastNonzero / 2) } ?? 1e-18
            #expect(abs(third - 1.0 / 3) <= bound, "\(name): 1/3 = \(third)")
        }
        let up = try ScalarRegistry.run(format: "bf16", rounding: .up, Probe()).1
        let down = try ScalarRegistry.run(format: "bf16", rounding: .down, Probe()).1
        #expect(up > 1.0 / 3 && down < 1.0 / 3 && up == BFloat16(Float(down)).nextUp.doubleValue)
        #expect(throws: ScalarRegistryError.unknownFormat("bf17")) { try ScalarRegistry.run(format: "bf17", Probe()) }
        #expect(throws: ScalarRegistryError.self) { try ScalarRegistry.run(format: "fp64", rounding: .up, Probe()) }
        #expect(throws: ScalarRegistryError.self) { try ScalarRegistry.run(format: "mpfr100", Probe()) }
    }
}

/// User formats by name at run time: the registry runs generic code in them, and
/// their arithmetic is correctly rounded (checked against MPFR).
@Test func userFormatsByNameInTheRegistry() throws {
    struct Third: ScalarBody {
        func run<T: ComputeScalar>(_ type: T.Type) throws -> (String, Double) {
            (T.formatName, (T(roundingDouble: 1) / T(roundingDouble: 3)).doubleValue)
        }
    }
    let spec = "p=5,emin=-6,emax=7,subnormals=no,infinities=no,overflow=saturate"
    let (name, third) = try ScalarRegistry.run(format: spec, Third())
    let f = try FloatFormat.parse(spec)
    #expect(name == spec && third == MPFROracle.round(1.0 / 3, to: f, mode: .nearest))
    let up = try ScalarRegistry.run(format: spec, rounding: .up, Third()).1
    #expect(up > 1.0 / 3 && up == FormatRounding.round(1.0 / 3, tail: 1e-20, to: f, mode: .up))
    // Same format, same slot; arithmetic of the slot type against MPFR.
    let slot = try UserFormats.slot(for: f)
    #expect(try UserFormats.slot(for: f) == slot)
    #expect(checkArithmetic(LowPrecisionFloat<UserFormatSlot<0>, Downward>.self, count: 500, seed: 5).isEmpty || slot != 0)
    #expect(throws: ScalarRegistryError.self) { try ScalarRegistry.run(format: "p=40,emin=-6,emax=7", Third()) }
}
