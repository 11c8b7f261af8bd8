import Scalars

/// `hessian-harness formats`.
public enum FormatsCommand {
    public static let header = ["name", "p", "emin", "emax", "u", "smallest_subnormal", "largest_finite", "subnormals", "infinities", "nan", "bits"]

    public static func rows() -> [[String]] {
        var rows: [[String]] = []
        for f in FloatFormat.named {
            rows.append([f.name, "\(f.p)", "\(f.emin)", "\(f.emax)", "\(f.unitRoundoff)",
                         f.subnormals ? "\(f.leastNonzero)" : "",
                         "\(f.greatestFinite)", f.subnormals ? "yes" : "no", f.infinities ? "yes" : "no", f.nan ? "yes" : "no", "\(f.bitWidth)"])
        }
        let (emin, emax) = MPFRInfo.ieeeExponentRange
        for b in ScalarRegistry.mpfrPrecisions {
            rows.append(["mpfr\(b)", "\(b)", "\(emin)", "\(emax)", MPFRInfo.powerOfTwo(-b), "",
                         MPFRInfo.powerOfTwo(emax + 1, minusUlp: b), "no", "yes", "yes", ""])
        }
        return rows
    }

    public static func render(csv: Bool) -> String {
        let all = [header] + rows()
        if csv { return all.map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n" }
        var widths = Array(repeating: 0, count: header.count)
        for r in all { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return all.map { r in
            r.enumerated().map { i, c in c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n") + "\n"
    }
}

/// `hessian-harness cast`: every value is parsed and rounded before anything is
/// printed, so a bad value produces no partial output.
public enum CastCommand {
    public static let header = "input,format,rounding,value,bits,abs_error,rel_error"

    public static func run(format: String, rounding: String, seed: UInt64, values: [String]) throws -> String {
        let target: CastTarget
        do { target = try CastTarget.parse(format) } catch let e as FloatFormat.Invalid {
            throw HarnessError("invalid format '\(format)': \(e)")
        } catch {
            throw HarnessError("unknown format '\(format)' (known: \(FloatFormat.named.map(\.name).joined(separator: ", ")), mpfrN, or p=…,emin=…,emax=…[,subnormals=yes|no][,infinities=yes|no][,nan=yes|no][,overflow=infinity|nan|saturate])")
        }
        guard let mode = RoundingMode(name: rounding) else {
            throw HarnessError("unknown rounding '\(rounding)' (known: \(RoundingMode.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard !values.isEmpty else { throw HarnessError("cast needs at least one VALUE") }
        var rng = SplitMix64(seed: seed)
        var lines = [header]
        for v in values {
            let r: CastResult
            do { r = try ExactDecimal.cast(v, to: target, mode: mode, random: &rng) } catch {
                throw HarnessError("cannot parse value '\(v)' (expected decimal, C99 hex-float such as 0x1.8p-3, inf, -inf or nan)")
            }
            lines.append([csvField(v), csvField(target.name), mode.rawValue, r.value, r.bits, "\(r.absError)", "\(r.relError)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingAll("\"", "\"\"") + "\"" : s
    }
}
