import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// The exact HVP the errors of a study are taken against.
///
/// - `mpfr256`: forward-over-reverse in `MPFloat<256>` (NUMERICS.md §3), the studies'
///   default; the bias/noise split uses the same FD scheme in mpfr256.
/// - `fp64`: the same in `Dual<Double>`, for models too large for mpfr256 (a 10⁶-
///   parameter transformer: seconds instead of tens of minutes). Its own error is
///   ~u₆₄·κ, so `rel_err` against it equals `rel_err` against mpfr256 to many digits
///   wherever the FD error is far above 10⁻¹⁰ (every bf16, fp16 and fp32 policy);
///   the studies show it on the models where both run. The bias/noise split uses the
///   same FD scheme in fp64, whose rounding (~u₆₄/ε relative) is ≥ 5·10⁸ times below
///   the rounding of any measured policy, so `noise_rel` is unaffected and `bias_rel`
///   is exact wherever truncation dominates.
public enum ReferenceKind: String, Sendable, CaseIterable { case mpfr256, fp64 }

/// A model at its evaluation point, with the reference Hessian-vector product.
///
/// θ is the model's seeded initialization rounded into the policy's `param`
/// format (the stored parameters); v has uniform(−1, 1) entries from
/// `SplitMix64(seed ^ 0x5DEECE66D)` (as the `hvp` command draws it); the reference
/// is the exact HVP (forward-over-reverse) in mpfr256 (`hRef`) or fp64 (`hRef64`),
/// as ``reference`` says (NUMERICS.md §3).
public struct ModelSetup: Sendable {
    public let spec: String
    public let seed: UInt64
    public let param: ScalarFormat
    public let model: any DifferentiableModel
    public let theta: [Double]
    public let v: [Double]
    public let reference: ReferenceKind
    /// The mpfr256 exact HVP (empty with the fp64 reference).
    public let hRef: [MPFloat<256>]
    /// The fp64 exact HVP (empty with the mpfr256 reference).
    public let hRef64: [Double]
    public let hRefNorm: Double

    /// From the context's cache: one reference per (model, seed, param format, reference kind).
    public static func make(_ spec: String, seed: UInt64, param: ScalarFormat, reference: ReferenceKind = .mpfr256,
                            context: StudyContext) throws -> ModelSetup {
        switch reference {
        case .mpfr256:
            return try context.cached("setup|\(spec)|\(seed)|\(param)") {
                let m = try build(spec, seed: seed, param: param)
                try ModelMemory.check(m, format: ScalarFormat("mpfr256"), dual: true, what: "the mpfr256 reference HVP of model '\(spec)'")
                let (theta, v) = try point(m, seed: seed, param: param)
                let h = m.exactHVP(theta.map { MPFloat<256>($0) }, v.map { MPFloat<256>($0) }).hv
                var s = MPFloat<256>.zero
                for x in h { s += x * x }
                return ModelSetup(spec: spec, seed: seed, param: param, model: m, theta: theta, v: v, reference: .mpfr256, hRef: h, hRef64: [],
                                  hRefNorm: s.squareRoot().doubleValue)
            }
        case .fp64:
            return try context.cached("setup-fp64|\(spec)|\(seed)|\(param)") {
                let m = try build(spec, seed: seed, param: param)
                let (theta, v) = try point(m, seed: seed, param: param)
                return fp64(spec: spec, seed: seed, param: param, model: m, theta: theta, v: v)
            }
        }
    }

    /// The same model and point with the fp64 exact HVP (`Dual<Double>`) as the reference.
    public var withFP64Reference: ModelSetup {
        reference == .fp64 ? self : Self.fp64(spec: spec, seed: seed, param: param, model: model, theta: theta, v: v)
    }

    static func fp64(spec: String, seed: UInt64, param: ScalarFormat, model m: any DifferentiableModel, theta: [Double], v: [Double]) -> ModelSetup {
        let h = m.exactHVP(theta, v).hv
        return ModelSetup(spec: spec, seed: seed, param: param, model: m, theta: theta, v: v, reference: .fp64, hRef: [], hRef64: h,
                          hRefNorm: h.reduce(0) { $0 + $1 * $1 }.squareRoot())
    }

    /// The model of `spec` for a run whose param format is `param`: a spec's `subset=`
    /// holds its fixed parameters at their values rounded into that format (as `--params`
    /// does for a command).
    public static func build(_ spec: String, seed: UInt64, param: ScalarFormat) throws -> any DifferentiableModel {
        let m: any DifferentiableModel
        do { m = try ModelSpec.build(spec, seed: seed) } catch { throw StudyError("model '\(spec)': \(error)") }
        let p = try FormatArithmetic(param)
        return roundingFixedParameters(m) { p.round($0) }
    }

    /// The point of a run: θ (the model's seeded parameters, rounded into the param
    /// format) and the direction v, as the studies, `hvp`, `recommend` and `slq` use them.
    public static func point(_ m: any DifferentiableModel, seed: UInt64, param: ScalarFormat) throws -> (theta: [Double], v: [Double]) {
        (parameters(m, seed: seed, param: try FormatArithmetic(param)), direction(count: m.parameterCount, seed: seed))
    }

    /// The model's parameters for `seed` rounded into the param format. When every value
    /// already is one (a checkpoint read in its own precision), the model's array is
    /// returned as it is, sharing its storage: at 1.3·10⁸ parameters a copy is 1.08 GB.
    /// (Stochastic rounding rounds every value once, in order: the draws of the stream.)
    public static func parameters(_ m: any DifferentiableModel, seed: UInt64, param p: FormatArithmetic) -> [Double] {
        var theta = m.initialParameters(seed: seed)
        if p.mode == .stochastic { return theta.map { p.round($0) } }
        guard let first = theta.firstIndex(where: { p.round($0).bitPattern != $0.bitPattern }) else { return theta }
        for i in first..<theta.count { theta[i] = p.round(theta[i]) }
        return theta
    }

    /// The seed of a model's HVP direction v for the configuration seed `seed`.
    public static func directionSeed(_ seed: UInt64) -> UInt64 { seed ^ 0x5DEE_CE66_D }

    /// The HVP direction v shared by the studies, `hvp` and the benchmarks: entries
    /// uniform in [−1, 1) from SplitMix64(``directionSeed(_:)``).
    public static func direction(count: Int, seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: directionSeed(seed))
        return (0..<count).map { _ in 2 * g.nextUniform() - 1 }
    }

    /// ‖x − h_ref‖₂ / ‖h_ref‖₂, the difference taken in mpfr256 (in fp64 against the
    /// fp64 reference).
    public func relativeError(_ x: [Double]) -> Double {
        if reference == .mpfr256 { return relativeDistance(x.map { MPFloat<256>($0) }) }
        var s = 0.0
        for i in x.indices { let d = x[i] - hRef64[i]; s += d * d }
        return hRefNorm > 0 ? s.squareRoot() / hRefNorm : s.squareRoot()
    }

    /// ‖x − h_ref‖₂ / ‖h_ref‖₂ for x in mpfr256 (the mpfr256 reference only).
    public func relativeDistance(_ x: [MPFloat<256>]) -> Double {
        precondition(reference == .mpfr256, "relativeDistance(_: [MPFloat<256>]) needs the mpfr256 reference")
        var s = 0.0
        for i in x.indices { let d = (x[i] - hRef[i]).doubleValue; s += d * d }
        return hRefNorm > 0 ? s.squareRoot() / hRefNorm : s.squareRoot()
    }

    /// cos(x, h_ref).
    public func cosine(_ x: [Double]) -> Double {
        var d = 0.0, nx = 0.0
        for i in x.indices { let h = reference == .mpfr256 ? hRef[i].doubleValue : hRef64[i]; d += x[i] * h; nx += x[i] * x[i] }
        let den = nx.squareRoot() * hRefNorm
        return den > 0 ? d / den : 0
    }

    /// The same FD scheme and ε entirely in the reference's format (ĥ_ref(ε): its error
    /// against h_ref is truncation, plus, with the fp64 reference, fp64 rounding far below
    /// any measured policy's). In mpfr256 it is cached per (scheme, ε) as a double-double
    /// pair (16 bytes per entry instead of an MPFR value) with its `bias_rel`; in fp64 it
    /// is recomputed (two to four fp64 gradients: at 10⁶ parameters a cache of every
    /// (scheme, ε) of a sweep would hold gigabytes).
    public func referenceFD(scheme: FDScheme, epsilon: Double, context: StudyContext) -> ReferenceFD {
        if reference == .fp64 {
            let r = FiniteDifferenceHVP.estimateInFormat(model, theta: theta, v: v, scheme: scheme, epsilon: epsilon)
            return ReferenceFD(hi: r, lo: [], biasRel: relativeError(r))
        }
        return context.cached("refFD|\(spec)|\(seed)|\(param)|\(scheme.rawValue)|\(epsilon.bitPattern)") {
            let r = FiniteDifferenceHVP.estimateInFormat(model, theta: theta.map { MPFloat<256>($0) }, v: v.map { MPFloat<256>($0) },
                                                         scheme: scheme, epsilon: MPFloat<256>(epsilon))
            let hi = r.map { $0.doubleValue }
            let lo = zip(r, hi).map { ($0 - MPFloat<256>($1)).doubleValue }
            return ReferenceFD(hi: hi, lo: lo, biasRel: relativeDistance(r))
        }
    }
}

/// ĥ_ref(ε) as hi + lo (double-double; `lo` empty for an fp64 ĥ_ref) and its
/// relative distance to h_ref.
public struct ReferenceFD: Sendable {
    public var hi: [Double]
    public var lo: [Double]
    public var biasRel: Double
    /// ‖x − ĥ_ref‖₂ (each difference formed as (xᵢ − hiᵢ) − loᵢ).
    public func distance(_ x: [Double]) -> Double {
        var s = 0.0
        if lo.isEmpty {
            for i in x.indices { let d = x[i] - hi[i]; s += d * d }
        } else {
            for i in x.indices { let d = (x[i] - hi[i]) - lo[i]; s += d * d }
        }
        return s.squareRoot()
    }
}
