import Scalars
import COpenBLAS
import LinearAlgebra

/// An error of the harness's input: printed as one line on stderr, exit status 2.
public struct HarnessError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Tool and library versions, for manifests and `hessian-harness version`.
public enum ToolInfo {
    public static let version = "0.1.0"
    public static var openBLASConfig: String { String(cString: openblas_get_config()) }

    /// Threads OpenBLAS uses (recorded in manifests).
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// Runs BLAS and LAPACK single-threaded. How a multi-threaded LAPACK routine
    /// (dsyevd of an exact spectrum, say) splits its sums depends on the number of
    /// cores the process sees, which taskset, containers and MPI's process binding
    /// change; with one thread the results are the same whatever the process sees.
    /// The harness parallelizes over configurations (--jobs) and ranks instead.
    public static func pinBLASThreads() { openblas_set_num_threads(1) }
    public static var lines: [String] {
        [
            "hessian-harness \(version) (commit \(BuildInfo.gitCommit))",
            "mpfr \(MPFRInfo.mpfrVersion) (thread-local state: \(MPFRInfo.threadSafe ? "yes" : "no"))",
            "gmp \(MPFRInfo.gmpVersion)",
            "openblas \(openBLASConfig) (kernels: \(BLASRuntime.coreName))",
        ]
    }
}

/// `hessian-harness formats`.
public enum FormatsCommand {
    public static let header = ["name", "p", "emin", "emax", "u", "smallest_subnormal", "largest_finite", "subnormals", "infinities", "bits"]

    public static func rows() -> [[String]] {
        var rows: [[String]] = []
        for f in FloatFormat.named {
            rows.append([f.name, "\(f.p)", "\(f.emin)", "\(f.emax)", "\(f.unitRoundoff)",
                         f.subnormals ? "\(f.leastNonzero)" : "",
                         "\(f.greatestFinite)", f.subnormals ? "yes" : "no", f.infinities ? "yes" : "no", "\(f.bitWidth)"])
        }
        let (emin, emax) = MPFRInfo.ieeeExponentRange
        for b in ScalarRegistry.mpfrPrecisions {
            rows.append(["mpfr\(b)", "\(b)", "\(emin)", "\(emax)", MPFRInfo.powerOfTwo(-b), "",
                         MPFRInfo.powerOfTwo(emax + 1, minusUlp: b), "no", "yes", ""])
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
            throw HarnessError("unknown format '\(format)' (known: bf16, fp16, tf32, fp32, fp64, e4m3, e5m2, mpfrN, or p=…,emin=…,emax=…[,subnormals=yes|no][,infinities=yes|no][,overflow=infinity|nan|saturate])")
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

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
    func replacingAll(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
