import Testing
@testable import Scalars

/// Golden vectors from ml_dtypes and numpy (Golden/make_golden.py). NaN results are
/// compared as "is NaN" (payloads are implementation-defined).
@Suite struct GoldenVectors {
    func conversions<T: EmulatedFloat>(_ file: String, _ type: T.Type) throws -> Int {
        var checked = 0
        for row in try golden(file) {
            let x = Float(bitPattern: hex(row[0], as: UInt32.self))
            let want = T.format.decode(hex(row[1], as: UInt64.self))
            let got = T(x).doubleValue
            #expect(same(got, want) || (got.isNaN && want.isNaN), "\(file): \(row[0]) → \(got), golden \(want)")
            checked += 1
        }
        return checked
    }

    @Test func float32ToBF16() throws { #expect(try conversions("bf16_from_f32.csv", BFloat16.self) > 30_000) }
    @Test func float32ToFP16() throws { #expect(try conversions("fp16_from_f32.csv", FP16Emulated.self) > 30_000) }
    @Test func float32ToE4M3() throws { #expect(try conversions("e4m3_from_f32.csv", FP8E4M3.self) > 20_000) }
    @Test func float32ToE5M2() throws { #expect(try conversions("e5m2_from_f32.csv", FP8E5M2.self) > 20_000) }

    /// Signed specials, overflow and underflow (Golden/make_specials.py): `cast`'s bits
    /// equal ml_dtypes' and numpy's, the sign of NaN included (e4m3: −470, −inf and −nan
    /// all give 0xff).
    @Test func signedSpecials() throws {
        var n = 0
        for row in try golden("specials.csv") {
            var g = SplitMix64(seed: 0)
            let r = try ExactDecimal.cast(String(row[1]), to: try CastTarget.parse(String(row[0])), mode: .nearest, random: &g)
            #expect(r.bits == "0x" + row[2], "\(row[0]) \(row[1]): \(r.bits), golden 0x\(row[2])")
            n += 1
        }
        #expect(n == 100)
    }

    @Test func float64ToFP16ByNumpy() throws {
        var n = 0
        for row in try golden("fp16_from_f64.csv") {
            let d = Double(bitPattern: hex(row[0], as: UInt64.self))
            let want = Double(Float16(bitPattern: hex(row[1], as: UInt16.self)))
            #expect(same(FP16Emulated(d).doubleValue, want), "\(d)")
            #expect(same(Double(Float16(d)), want))
            n += 1
        }
        #expect(n > 30_000)
    }

    /// ml_dtypes converts float64 → bfloat16 through float32. Every disagreement
    /// with our direct rounding must be exactly that double rounding, and ours must
    /// agree with MPFR.
    @Test func mlDtypesFloat64DoubleRounding() throws {
        var disagreements = 0
        for row in try golden("bf16_from_f64_mldtypes.csv") {
            let d = Double(bitPattern: hex(row[0], as: UInt64.self))
            let theirs = BFloat16(bitPattern: hex(row[1], as: UInt16.self))
            let ours = BFloat16(d)
            #expect(same(ours.doubleValue, MPFROracle.round(d, to: .bf16, mode: .nearest)))
            if ours.bitPattern != theirs.bitPattern {
                disagreements += 1
                #expect(BFloat16(Float(d)).bitPattern == theirs.bitPattern, "not double rounding: \(d)")
            }
        }
        #expect(disagreements > 1000, "the file holds double-rounding cases")
    }

    func arithmetic<T: EmulatedFloat>(_ file: String, _ type: T.Type, rows: Int = 15_000) throws {
        var n = 0
        for row in try golden(file) {
            let a = T(encoding: hex(row[0], as: UInt32.self)), b = T(encoding: hex(row[1], as: UInt32.self))
            if a.isNaN || b.isNaN { continue }
            let add = T.format.decode(hex(row[2], as: UInt64.self)), mul = T.format.decode(hex(row[3], as: UInt64.self))
            #expect(same((a + b).doubleValue, add) || ((a + b).isNaN && add.isNaN), "\(file) \(a) + \(b)")
            #expect(same((a * b).doubleValue, mul) || ((a * b).isNaN && mul.isNaN), "\(file) \(a) * \(b)")
            n += 1
        }
        #expect(n > rows)
    }

    @Test func bf16Arithmetic() throws { try arithmetic("bf16_arith.csv", BFloat16.self) }
    @Test func fp16Arithmetic() throws { try arithmetic("fp16_arith.csv", FP16Emulated.self) }
    @Test func e4m3Arithmetic() throws { try arithmetic("e4m3_arith.csv", FP8E4M3.self) }
    @Test func e5m2Arithmetic() throws { try arithmetic("e5m2_arith.csv", FP8E5M2.self) }

    // The OCP MX element formats (Golden/make_golden_mx.py, ml_dtypes 0.7): neither
    // infinities nor NaN, saturating overflow. Registered by their spec and one registry line.

    /// Every conversion from binary32 equals ml_dtypes', except NaN: ml_dtypes turns it
    /// into a zero (of the opposite sign), the harness keeps it NaN in the carrier (FloatFormat's note says why).
    func mxConversions<T: EmulatedFloat>(_ name: String, _: T.Type) throws {
        var checked = 0, nans = 0
        for row in try golden("\(name)_from_f32.csv") {
            let x = Float(bitPattern: hex(row[0], as: UInt32.self))
            let bits = hex(row[1], as: UInt64.self)
            if x.isNaN {
                #expect(bits & ~(1 << UInt64(T.format.bitWidth - 1)) == 0 && T(x).isNaN, "\(name): NaN → \(T(x)), ml_dtypes bits \(bits)")
                nans += 1
                continue
            }
            #expect(same(T(x).doubleValue, T.format.decode(bits)), "\(name): \(x) → \(T(x)), golden \(T.format.decode(bits))")
            checked += 1
        }
        #expect(checked > 5_000 && nans > 0)
    }

    @Test func float32ToE3M2() throws { try mxConversions("e3m2", FP6E3M2.self) }
    @Test func float32ToE2M3() throws { try mxConversions("e2m3", FP6E2M3.self) }
    @Test func float32ToE2M1() throws { try mxConversions("e2m1", FP4E2M1.self) }
    /// Every pair of encodings (64² and 16²).
    @Test func e3m2Arithmetic() throws { try arithmetic("e3m2_arith.csv", FP6E3M2.self, rows: 4_095) }
    @Test func e2m3Arithmetic() throws { try arithmetic("e2m3_arith.csv", FP6E2M3.self, rows: 4_095) }
    @Test func e2m1Arithmetic() throws { try arithmetic("e2m1_arith.csv", FP4E2M1.self, rows: 255) }

    /// The parameters ml_dtypes' finfo gives: largest finite, smallest normal and subnormal, width.
    @Test func mxParameters() {
        for (f, top, normal, sub) in [(FP6E3M2.format, 28.0, 0.25, 0.0625), (FP6E2M3.format, 7.5, 1, 0.125), (FP4E2M1.format, 6, 1, 0.5)] {
            #expect(f.greatestFinite == top && f.leastNormal == normal && f.leastNonzero == sub && !f.nan && !f.infinities, "\(f)")
        }
        #expect(FP6E3M2.format.bitWidth == 6 && FP6E2M3.format.bitWidth == 6 && FP4E2M1.format.bitWidth == 4)
    }
}
