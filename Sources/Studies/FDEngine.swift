import Collectives
import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// FD-HVP under a precision policy, as a closure over fp64 carriers: gradients in
/// the policy's compute type (from the scalar registry, under its rounding mode),
/// rounded into `grad`; perturbation in `param`; quotient in `hvp`. One shard runs
/// ``FiniteDifferenceHVP``; S > 1 shards run ``ShardedHVP`` in process.
public struct FDEngine: Sendable {
    public let policy: PrecisionPolicy
    public let precision: FDPrecision
    /// The model the engine differentiates.
    public let model: any DifferentiableModel
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
        self.model = model
        let precision = FDPrecision(param: try policy.arithmetic(policy.param), grad: try policy.arithmetic(policy.grad),
                                    hvp: try policy.arithmetic(policy.hvp), accumulation: try policy.accumulation())
        self.precision = precision
        struct Make<M: DifferentiableModel>: ScalarBody {
            let m: M, precision: FDPrecision
            func run<T: ComputeScalar>(_: T.Type) -> Ops {
                let m = m, precision = precision
                return Ops(fd: { theta, v, scheme, step, shards, order, world in
                    if shards == 1 && world == nil {
                        return FiniteDifferenceHVP.estimate(m, theta: theta, v: v, scheme: scheme, step: step, precision: precision, compute: T.self)
                    }
                    return try ShardedHVP.estimate(m, theta: theta, v: v, scheme: scheme, step: step, precision: precision,
                                                   shards: shards, order: order, world: world, compute: T.self)
                }, rankFD: { comm, tr, vr, layout, scheme, step, order in
                    ShardedHVP.rankEstimate(comm: comm, model: m, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme, step: step,
                                            precision: precision, order: order, compute: T.self, wantsPlus: false).hv
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

    /// The format of the bias probe (``StepRecommendation/Probe``): fp32 when some stage of
    /// the policy is narrower (bf16, fp16, tf32, fp8, …), else fp64.
    public var probeFormat: String {
        let stages = [policy.param, policy.compute, policy.grad, policy.hvp].map { FDEngine.unitRoundoff($0) }
            + [FDEngine.unitRoundoff(policy.accumulate)]
        return stages.contains { $0 > 0x1p-24 } ? "fp32" : "fp64"
    }

    /// The same model with every stage of the policy in `format` (round to nearest).
    public func widened(to format: String) throws -> FDEngine {
        let f = format
        return try FDEngine(model: model, policy: PrecisionPolicy("param=\(f),compute=\(f),accumulate=\(f),grad=\(f),hvp=\(f),krylov=\(f)"))
    }

    /// 2^-p of a stage's format (mpfrN: 2^-N).
    public static func unitRoundoff(_ format: ScalarFormat) -> Double { Double.pow(2, -Double(format.precisionBits)) }

    /// ``unitRoundoff(_:)-(ScalarFormat)`` of a name that may not be a format (an
    /// accumulation such as `blas`: binary64's).
    public static func unitRoundoff(_ name: String) -> Double { (try? ScalarFormat(name)).map { unitRoundoff($0) } ?? 0x1p-53 }
}
