import Scalars
import LinearAlgebra

/// A precision policy (NUMERICS.md §2): `param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32`.
/// Unnamed stages default to fp64; `accumulate` is an ``Accumulation`` name or a
/// format (`fp32`, `fp64`: widened accumulation; the compute format's own name:
/// recursive in it). An optional `rounding=MODE` (nearest, toward-zero, up, down,
/// stochastic) applies to every stage whose format is emulated (not fp64 or
/// mpfrN, which always round to nearest).
///
/// Each stage's format is a ``ScalarFormat``, parsed once when the policy is (the one
/// parser of format names); `accumulate` is a name of either kind and stays text.
public struct PrecisionPolicy: Sendable, Equatable, CustomStringConvertible {
    public var param = ScalarFormat.fp64, compute = ScalarFormat.fp64, grad = ScalarFormat.fp64, hvp = ScalarFormat.fp64,
               krylov = ScalarFormat.fp64
    public var accumulate = "fp64"
    public var rounding: RoundingMode = .nearest
    public var text: String

    /// The rounding mode of a stage in `format`: the policy's mode, except nearest
    /// for fp64 and mpfrN.
    public func mode(for format: ScalarFormat) -> RoundingMode {
        format.roundsToNearestOnly ? .nearest : rounding
    }

    /// The `param`, `grad` or `hvp` stage as arithmetic on Doubles.
    public func arithmetic(_ format: ScalarFormat) throws -> FormatArithmetic {
        try FormatArithmetic(format, mode: mode(for: format))
    }

    /// The `stage=format` fields of a policy text: split at commas outside brackets, so a
    /// user-defined format nests as `param=[p=8,emin=-6,emax=7,subnormals=no]`.
    public static func fields(_ text: String) throws -> [Substring] {
        var out: [Substring] = [], depth = 0, start = text.startIndex
        for i in text.indices {
            switch text[i] {
            case "[": depth += 1
            case "]":
                depth -= 1
                guard depth >= 0 else { throw ModelError("']' without its '[' in policy '\(text)'") }
            case "," where depth == 0:
                out.append(text[start..<i]); start = text.index(after: i)
            default: break
            }
        }
        guard depth == 0 else { throw ModelError("unclosed '[' in policy '\(text)' (a user format nests as stage=[p=…,emin=…,emax=…])") }
        out.append(text[start...])
        return out.filter { !$0.isEmpty }
    }

    /// A stage's format as a policy field: a user-defined format (it has commas) in brackets.
    static func field(_ format: String) -> String { format.contains(",") ? "[\(format)]" : format }

    public init(_ text: String) throws {
        self.text = text
        for kv in try Self.fields(text) {
            var p = kv.split(separator: "=", maxSplits: 1).map { String($0).lowercased() }
            if p.count == 2, p[1].hasPrefix("[") {
                guard p[1].hasSuffix("]"), p[1].count > 2 else { throw ModelError("malformed policy field '\(kv)' (expected stage=[format fields])") }
                p[1] = String(p[1].dropFirst().dropLast())
                guard !p[1].contains("[") else { throw ModelError("policy field '\(kv)': formats do not nest further") }
            }
            guard p.count == 2, !p[1].isEmpty else { throw ModelError("malformed policy field '\(kv)' (expected stage=format)") }
            func format() throws -> ScalarFormat {
                do { return try ScalarFormat(p[1]) } catch { throw ModelError("policy \(p[0])=\(p[1]): \(error)") }
            }
            switch p[0] {
            case "param": param = try format()
            case "compute": compute = try format()
            case "accumulate": accumulate = p[1]
            case "grad": grad = try format()
            case "hvp": hvp = try format()
            case "krylov": krylov = try format()
            case "rounding":
                guard let m = RoundingMode(name: p[1]) else {
                    throw ModelError("unknown rounding '\(p[1])' in policy (known: nearest, toward-zero, up, down, stochastic)")
                }
                rounding = m
            default: throw ModelError("unknown policy stage '\(p[0])' (known: param, compute, accumulate, grad, hvp, krylov, rounding)")
            }
        }
        for (stage, f) in [("param", param), ("grad", grad), ("hvp", hvp)] {
            do { _ = try arithmetic(f) } catch { throw ModelError("policy \(stage)=\(f): \(error)") }
        }
        struct Check: ScalarBody { func run<T: ComputeScalar>(_: T.Type) -> Bool { true } }
        for (stage, f) in [("compute", compute), ("krylov", krylov)] {
            do { _ = try ScalarRegistry.run(format: f, rounding: mode(for: f), Check()) } catch { throw ModelError("policy \(stage)=\(f): \(error)") }
        }
        _ = try accumulation()
    }

    public var description: String {
        "param=\(Self.field(param.name)),compute=\(Self.field(compute.name)),accumulate=\(Self.field(accumulate)),grad=\(Self.field(grad.name)),"
            + "hvp=\(Self.field(hvp.name)),krylov=\(Self.field(krylov.name))"
            + (rounding == .nearest ? "" : ",rounding=\(rounding.rawValue)")
    }

    /// The accumulation of Lanczos dot products and norms, whose vectors are in the
    /// `krylov` format: the policy's `accumulate` stage (bf16 vectors with
    /// `accumulate=fp32` are summed in binary32, as mixed-precision hardware does),
    /// except that a reduction is never carried out below the precision of its
    /// operands: an `accumulate` narrower than `krylov` (fp32 sums of fp64 vectors, or
    /// the compute format's name when it is narrower) sums recursively in `krylov`.
    ///
    /// `blas` (the library's reductions) over binary32 vectors sums in binary64, as BLAS's
    /// `dsdot` does: a binary32 sum does not survive a foundation model's dimension. At
    /// n = 134,515,008 (SmolLM2-135M) the squared norm of a unit binary32 vector comes out
    /// 0.5 summed recursively in binary32 (each term is below half an ulp of the sum once
    /// the sum reaches 0.5) and 0.99911 from OpenBLAS `sdot` (its lanes sum ~10⁷ terms
    /// each), against 1 − 1e-10 in binary64; Lanczos then loses orthogonality at the
    /// first step (docs/NUMERICS.md §2). fp64 vectors under `blas` sum recursively in fp64.
    public func krylovAccumulation() -> LinearAlgebraAccumulation {
        let bits = krylov.precisionBits
        guard accumulate != krylov.name, let a = LinearAlgebraAccumulation(name: accumulate) else { return .recursive }
        if case .widened(let w) = a, bits >= (w == .fp32 ? 24 : 53) { return .recursive }
        if a == .blas && bits >= 53 { return .recursive }
        if a == .blas && bits >= 24 { return .widened(.fp64) }
        return a
    }

    /// A warning when the Krylov sums of `n` terms are recursive in a format whose error
    /// bound n·u of a recursive sum exceeds 1% (nil otherwise): at n·u ≥ 1 the squared
    /// norm of a unit vector stalls well below 1.
    public func krylovSumWarning(dimension n: Int) -> String? {
        let acc = krylovAccumulation()
        let format: String
        switch acc {
        case .recursive: format = krylov.name
        case .widened(let w): format = w.rawValue
        default: return nil
        }
        let u = Double.pow(2, -Double(Self.precisionBits(format)))
        let nu = Double(n) * u
        guard nu > 0.01 else { return nil }
        return "Lanczos sums \(n) terms recursively in \(format) (n·u = \(nu < 10 ? "\((nu * 100).rounded() / 100)" : "\(Int(nu.rounded()))"), the error bound of a recursive sum): "
            + "its dot products and norms are unreliable at this size; accumulate=blas (binary64 sums of binary32 vectors) or fp64 avoids it"
    }

    /// The format that sums Lanczos dot products where the vectors are fp64 carriers
    /// of the `krylov` format (the sharded pipeline): the format of
    /// ``krylovAccumulation()`` (binary32 for `blas` over vectors narrower than binary32).
    public var krylovAccumulationFormat: String {
        switch krylovAccumulation() {
        case .widened(let w): return w.rawValue
        case .blas: return "fp32"
        default: return krylov.name
        }
    }

    /// Significand bits of a format name (`mpfrN`: N; unknown: 53).
    static func precisionBits(_ name: String) -> Int { (try? ScalarFormat(name))?.precisionBits ?? 53 }

    public func accumulation() throws -> LinearAlgebraAccumulation {
        if accumulate == compute.name { return .recursive }
        guard let a = LinearAlgebraAccumulation(name: accumulate) else {
            throw ModelError("policy accumulate=\(accumulate): not an accumulation (recursive, pairwise, compensated, fp32, fp64, blas)")
        }
        return a
    }
}
