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

    func arithmetic<T: EmulatedFloat>(_ file: String, _ type: T.Type) throws {
        var n = 0
        for row in try golden(file) {
            let a = T(encoding: hex(row[0], as: UInt32.self)), b = T(encoding: hex(row[1], as: UInt32.self))
            if a.isNaN || b.isNaN { continue }
            let add = T.format.decode(hex(row[2], as: UInt64.self)), mul = T.format.decode(hex(row[3], as: UInt64.self))
            #expect(same((a + b).doubleValue, add) || ((a + b).isNaN && add.isNaN), "\(file) \(a) + \(b)")
            #expect(same((a * b).doubleValue, mul) || ((a * b).isNaN && mul.isNaN), "\(file) \(a) * \(b)")
            n += 1
        }
        #expect(n > 15_000)
    }

    @Test func bf16Arithmetic() throws { try arithmetic("bf16_arith.csv", BFloat16.self) }
    @Test func fp16Arithmetic() throws { try arithmetic("fp16_arith.csv", FP16Emulated.self) }
    @Test func e4m3Arithmetic() throws { try arithmetic("e4m3_arith.csv", FP8E4M3.self) }
    @Test func e5m2Arithmetic() throws { try arithmetic("e5m2_arith.csv", FP8E5M2.self) }
}
