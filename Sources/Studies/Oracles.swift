import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// A model at its evaluation point, with the reference Hessian-vector product.
///
/// θ is the model's seeded initialization rounded into the policy's `param`
/// format (the stored parameters); v has uniform(−1, 1) entries from
/// `SplitMix64(seed ^ 0x5DEECE66D)` (as the `hvp` command draws it); `hRef` is the
/// exact HVP (forward-over-reverse) in mpfr256 (NUMERICS.md §3).
public struct ModelSetup: Sendable {
    public let spec: String
    public let seed: UInt64
    public let param: String
    public let model: any DifferentiableModel
    public let theta: [Double]
    public let v: [Double]
    public let hRef: [MPFloat<256>]
    public let hRefNorm: Double

    /// From the context's cache: one mpfr256 reference per (model, seed, param format).
    public static func make(_ spec: String, seed: UInt64, param: String, context: StudyContext) throws -> ModelSetup {
        try context.cached("setup|\(spec)|\(seed)|\(param)") {
            let m: any DifferentiableModel
            do { m = try ModelSpec.build(spec, seed: seed) } catch { throw StudyError("model '\(spec)': \(error)") }
            try ModelMemory.check(m, format: "mpfr256", dual: true, what: "the mpfr256 reference HVP of model '\(spec)'")
            let (theta, v) = try point(m, seed: seed, param: param)
            let h = m.exactHVP(theta.map { MPFloat<256>($0) }, v.map { MPFloat<256>($0) }).hv
            var s = MPFloat<256>.zero
            for x in h { s += x * x }
            return ModelSetup(spec: spec, seed: seed, param: param, model: m, theta: theta, v: v, hRef: h,
                              hRefNorm: s.squareRoot().doubleValue)
        }
    }

    /// The point of a run: θ (the model's seeded parameters, rounded into the param
    /// format) and the direction v, as the studies, `hvp`, `recommend` and `slq` use them.
    public static func point(_ m: any DifferentiableModel, seed: UInt64, param: String) throws -> (theta: [Double], v: [Double]) {
        let p = try FormatArithmetic(name: param)
        return (m.initialParameters(seed: seed).map { p.round($0) }, direction(count: m.parameterCount, seed: seed))
    }

    /// The seed of a model's HVP direction v for the configuration seed `seed`.
    public static func directionSeed(_ seed: UInt64) -> UInt64 { seed ^ 0x5DEE_CE66_D }

    /// The HVP direction v shared by the studies, `hvp` and the benchmarks: entries
    /// uniform in [−1, 1) from SplitMix64(``directionSeed(_:)``).
    public static func direction(count: Int, seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: directionSeed(seed))
        return (0..<count).map { _ in 2 * g.nextUniform() - 1 }
    }

    /// ‖x − h_ref‖₂ / ‖h_ref‖₂ with the difference taken in mpfr256.
    public func relativeError(_ x: [Double]) -> Double { relativeDistance(x.map { MPFloat<256>($0) }) }

    /// ‖x − h_ref‖₂ / ‖h_ref‖₂ for x in mpfr256.
    public func relativeDistance(_ x: [MPFloat<256>]) -> Double {
        var s = 0.0
        for i in x.indices { let d = (x[i] - hRef[i]).doubleValue; s += d * d }
        return hRefNorm > 0 ? s.squareRoot() / hRefNorm : s.squareRoot()
    }

    /// cos(x, h_ref).
    public func cosine(_ x: [Double]) -> Double {
        var d = 0.0, nx = 0.0
        for i in x.indices { let h = hRef[i].doubleValue; d += x[i] * h; nx += x[i] * x[i] }
        let den = nx.squareRoot() * hRefNorm
        return den > 0 ? d / den : 0
    }

    /// The same FD scheme and ε entirely in mpfr256 (ĥ_ref(ε): its error against
    /// h_ref is pure truncation), cached per (scheme, ε) as a double-double pair
    /// (16 bytes per entry instead of an MPFR value) with its `bias_rel`.
    public func referenceFD(scheme: FDScheme, epsilon: Double, context: StudyContext) -> ReferenceFD {
        context.cached("refFD|\(spec)|\(seed)|\(param)|\(scheme.rawValue)|\(epsilon.bitPattern)") {
            let r = FiniteDifferenceHVP.estimateInFormat(model, theta: theta.map { MPFloat<256>($0) }, v: v.map { MPFloat<256>($0) },
                                                         scheme: scheme, epsilon: MPFloat<256>(epsilon))
            let hi = r.map { $0.doubleValue }
            let lo = zip(r, hi).map { ($0 - MPFloat<256>($1)).doubleValue }
            return ReferenceFD(hi: hi, lo: lo, biasRel: relativeDistance(r))
        }
    }
}

/// ĥ_ref(ε) as hi + lo (double-double) and its relative distance to h_ref.
public struct ReferenceFD: Sendable {
    public var hi: [Double]
    public var lo: [Double]
    public var biasRel: Double
    /// ‖x − ĥ_ref‖₂ (each difference formed as (xᵢ − hiᵢ) − loᵢ).
    public func distance(_ x: [Double]) -> Double {
        var s = 0.0
        for i in x.indices { let d = (x[i] - hi[i]) - lo[i]; s += d * d }
        return s.squareRoot()
    }
}

/// FD-HVP under a precision policy, as a closure over fp64 carriers: gradients in
/// the policy's compute type (from the scalar registry, under its rounding mode),
/// rounded into `grad`; perturbation in `param`; quotient in `hvp`. One shard runs
/// ``FiniteDifferenceHVP``; S > 1 shards run ``ShardedHVP`` in process.
public struct FDEngine: Sendable {
    public let policy: PrecisionPolicy
    public let precision: FDPrecision
    let ops: Ops

    typealias FD = @Sendable (_ theta: [Double], _ v: [Double], _ scheme: FDScheme, _ step: StepPolicy,
                              _ shards: Int, _ order: ReductionOrder, _ world: (any Communicator)?) throws -> FDResult
    typealias RankFD = @Sendable (_ comm: any Communicator, _ thetaShard: [Double], _ vShard: [Double], _ layout: ShardLayout,
                                  _ scheme: FDScheme, _ step: StepPolicy, _ order: ReductionOrder) -> [Double]
    struct Ops: Sendable {
        let fd: FD
        let rankFD: RankFD
        let gradient: @Sendable (_ theta: [Double], _ shards: Int, _ order: ReductionOrder, _ world: (any Communicator)?) throws -> [Double]
        let exact: @Sendable (_ theta: [Double], _ v: [Double]) -> [Double]
        /// Bytes of one value of the compute type in memory.
        let computeBytes: Int
    }

    public init(model: any DifferentiableModel, policy: PrecisionPolicy) throws {
        self.policy = policy
        let precision = FDPrecision(param: try policy.arithmetic(policy.param), grad: try policy.arithmetic(policy.grad),
                                    hvp: try policy.arithmetic(policy.hvp), accumulation: try policy.accumulation())
        self.precision = precision
        struct Make<M: DifferentiableModel>: ScalarBody {
            let m: M, precision: FDPrecision
            func run<T: StudyScalar>(_: T.Type) -> Ops {
                let m = m, precision = precision
                return Ops(fd: { theta, v, scheme, step, shards, order, world in
                    if shards == 1 && world == nil {
                        return FiniteDifferenceHVP.estimate(m, theta: theta, v: v, scheme: scheme, step: step, precision: precision, compute: T.self)
                    }
                    return try ShardedHVP.estimate(m, theta: theta, v: v, scheme: scheme, step: step, precision: precision,
                                                   shards: shards, order: order, world: world, compute: T.self)
                }, rankFD: { comm, tr, vr, layout, scheme, step, order in
                    ShardedHVP.rankEstimate(comm: comm, model: m, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme, step: step,
                                            precision: precision, order: order, compute: T.self).hv
                }, gradient: { theta, shards, order, world in
                    if shards == 1 && world == nil {
                        return precision.gradient(m, at: theta, samples: 0..<m.sampleCount, compute: T.self)
                    }
                    return try ShardedHVP.gradient(m, theta: theta, precision: precision, shards: shards, order: order, world: world,
                                                   compute: T.self)
                }, exact: { theta, v in
                    ScalarArrays.doubles(m.exactHVP(ScalarArrays.rounding(theta, to: T.self), ScalarArrays.rounding(v, to: T.self),
                                                    accumulation: precision.accumulation).hv, roundedBy: precision.hvp)
                }, computeBytes: MemoryLayout<T>.stride)
            }
        }
        // The model and scalar types stay generic here (opened from an existential and a
        // format name); the hot code below specializes itself for the common types
        // (`GradientCore`, the kernels' `Specialized`, `ScalarArrays`). An earlier attempt
        // that specialized this whole path (casting to the concrete models) gave different
        // forward differences in an -O build: the optimizer's outlined copies of
        // `FDScheme.offsets` collided at link time (explained at `FDScheme.offsets`, fixed
        // there, guarded by BuildChecksTests); a concretely typed engine now agrees bit
        // for bit with this one (issue 18).
        func open<M: DifferentiableModel>(_ m: M) throws -> Ops {
            try ScalarRegistry.run(format: policy.compute, rounding: policy.mode(for: policy.compute), Make(m: m, precision: precision))
        }
        ops = try open(model)
    }

    /// ∇L(θ) in the policy (sharded FSDP-style when `shards` > 1), rounded into `grad`.
    public func gradient(theta: [Double], shards: Int = 1, order: ReductionOrder = .sequential,
                         world: (any Communicator)? = nil) throws -> [Double] {
        try ops.gradient(theta, shards, order, world)
    }

    /// The exact HVP (forward-over-reverse) in the compute type, rounded into `hvp`.
    public func exactHVP(theta: [Double], v: [Double]) -> [Double] { ops.exact(theta, v) }

    /// Bytes per value of the compute type as the harness stores it.
    public var computeBytes: Int { ops.computeBytes }

    /// ĥ at θ along v: unsharded, FSDP-style on `shards` in-process ranks, or with this
    /// process as one rank of `world` (a job of `shards` processes).
    public func estimate(theta: [Double], v: [Double], scheme: FDScheme, step: StepPolicy,
                         shards: Int = 1, order: ReductionOrder = .sequential, world: (any Communicator)? = nil) throws -> FDResult {
        try ops.fd(theta, v, scheme, step, shards, order, world)
    }

    /// One rank's shard of the sharded FD-HVP (``ShardedHVP/rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``):
    /// called by every rank of `comm` with its shards of θ and v.
    public func rankEstimate(comm: any Communicator, thetaShard: [Double], vShard: [Double], layout: ShardLayout,
                             scheme: FDScheme, step: StepPolicy, order: ReductionOrder) -> [Double] {
        ops.rankFD(comm, thetaShard, vShard, layout, scheme, step, order)
    }

    /// The unit roundoff that scales the rounding term of the error model: the
    /// largest of the param, compute and grad formats' (NUMERICS.md §4's u).
    public var unitRoundoff: Double {
        [policy.param, policy.compute, policy.grad].map { FDEngine.unitRoundoff($0) }.max()!
    }

    public static func unitRoundoff(_ format: String) -> Double {
        let f = format.lowercased()
        if f.hasPrefix("mpfr"), let p = Int(f.dropFirst(4)) { return Double.pow(2, -Double(p)) }
        return (try? FloatFormat.parse(f))?.unitRoundoff ?? 0x1p-53
    }
}

/// Log-spaced grid of `points` values from `lo` to `hi` inclusive, each value
/// `lo · (hi/lo)^(i/(points−1))` computed in fp64 (then identical on every run).
public func logGrid(from lo: Double, to hi: Double, points: Int) -> [Double] {
    if points == 1 { return [lo] }
    let a = Double.log(lo), b = Double.log(hi)
    return (0..<points).map { i in i == 0 ? lo : i == points - 1 ? hi : Double.exp(a + (b - a) * Double(i) / Double(points - 1)) }
}

/// Cells shared by the studies: the policy and its param, compute and grad formats.
func policyCells(_ p: PrecisionPolicy) -> [String] { [p.description, p.param, p.compute, p.grad] }
