import Collectives
import Scalars
import LinearAlgebra
import Models

/// FD-HVP as FSDP computes it, on S ranks of a ``Communicator``:
/// each rank holds its shard of θ and v, perturbs only its slice
/// (`fl_param(θ_r ± εv_r)`), all-gathers the perturbed parameters, computes the
/// gradient contribution of its block of samples, rounds it to the `grad` format,
/// and receives its gradient shard by reduce-scatter (in the `grad` format and the
/// given order); the difference quotient is formed locally in the `hvp` format.
/// With a relative step, ‖θ‖ and ‖v‖ come from local sums plus an all-reduce.
///
/// With S = 1 the result is bitwise the unsharded ``FiniteDifferenceHVP``. With
/// S > 1 only the order in which per-sample contributions are added changes (per
/// rank, then across ranks), so the difference is bounded by the usual summation
/// error, ≈ (B + S)·u_grad·Σ|per-sample contributions| per component.
public enum ShardedHVP {
    /// The sharded FD-HVP on `shards` ranks: simulated in process, or, under `world`
    /// (a real job of `shards` processes, e.g. MPI), with this process as one rank.
    /// Every rank returns the full ĥ (its shards all-gathered).
    public static func estimate<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [Double], v: [Double], scheme: FDScheme, step: StepPolicy, precision: FDPrecision,
        shards: Int, order: ReductionOrder = .sequential, world: (any Communicator)? = nil, compute: T.Type
    ) throws -> FDResult {
        let n = model.parameterCount
        precondition(theta.count == n && v.count == n)
        let layout = ShardLayout(count: n, shards: shards)
        return try SPMD.run(shards: shards, world: world) { comm -> FDResult in
            let r = comm.rank
            let tr = layout.shard(theta, rank: r), vr = layout.shard(v, rank: r)
            let (hv, plus, eps) = rankEstimate(comm: comm, model: model, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme,
                                               step: step, precision: precision, order: order, compute: T.self)
            return FDResult(hv: layout.unpad(comm.allGather(hv)), epsilon: eps,
                            theta: theta, plus: layout.unpad(comm.allGather(plus)), v: v)
        }
    }

    /// One rank's part of the sharded FD-HVP: called by every rank of `comm` with
    /// its shards of θ and v (length `layout.shardSize`); returns this rank's shard
    /// of ĥ, of fl_param(θ + εv), and ε.
    ///
    /// fp32 throughout (``Binary32FD``'s policies, `grad` binary32 to nearest), the points
    /// and gradients travel and are summed as binary32, with the same values in fewer
    /// passes (`wantsPlus` false: `plus` is left empty). ``rankEstimateByStages(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``
    /// is the staged path every policy takes otherwise; the tests compare the two.
    @inlinable
    public static func rankEstimate<M: DifferentiableModel, T: ComputeScalar>(
        comm: any Communicator, model: M, thetaShard tr: [Double], vShard vr: [Double], layout: ShardLayout,
        scheme: FDScheme, step: StepPolicy, precision: FDPrecision, order: ReductionOrder, compute: T.Type,
        wantsPlus: Bool = true
    ) -> (hv: [Double], plus: [Double], eps: Double) {
        if let F = T.self as? any FusedFDScalar.Type {           // fp32 throughout: the same values in fewer passes
            let eps = epsilon(comm: comm, thetaShard: tr, vShard: vr, step: step, order: order)
            if let r = F.fusedRankFD(comm: comm, model: model, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme,
                                     epsilon: eps, samples: samples(comm: comm, model.sampleCount), precision: precision,
                                     order: order, wantsPlus: wantsPlus) {
                return (r.hv, r.plus, eps)
            }
        }
        return rankEstimateByStages(comm: comm, model: model, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme, step: step,
                                    precision: precision, order: order, compute: T.self)
    }

    /// ε of `step` on sharded θ and v: with a relative step, ‖θ‖ and ‖v‖ from local sums
    /// of squares plus an all-reduce in fp64.
    @inlinable
    static func epsilon(comm: any Communicator, thetaShard tr: [Double], vShard vr: [Double], step: StepPolicy,
                        order: ReductionOrder) -> Double {
        var nt = 0.0, nv = 0.0
        if case .relative = step {
            var st = 0.0, sv = 0.0
            for x in tr { st += x * x }
            for x in vr { sv += x * x }
            nt = comm.allReduce(st, format: .fp64, order: order).squareRoot()
            nv = comm.allReduce(sv, format: .fp64, order: order).squareRoot()
        }
        return step.epsilon(thetaNorm: nt, vNorm: nv)
    }

    /// This rank's block of the samples: ⌈B/S⌉ each, the last ones shorter or empty.
    @inlinable
    static func samples(comm: any Communicator, _ count: Int) -> Range<Int> { samples(rank: comm.rank, shards: comm.size, count: count) }

    /// Rank r's block of `count` samples over `shards` ranks: ⌈B/S⌉ each, the last ones shorter or empty.
    @inlinable
    public static func samples(rank r: Int, shards: Int, count: Int) -> Range<Int> {
        let per = (count + shards - 1) / shards
        return min(r * per, count)..<min((r + 1) * per, count)
    }

    /// ``rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:wantsPlus:)``
    /// stage by stage in fp64 carriers, for every policy.
    @inlinable
    public static func rankEstimateByStages<M: DifferentiableModel, T: ComputeScalar>(
        comm: any Communicator, model: M, thetaShard tr: [Double], vShard vr: [Double], layout: ShardLayout,
        scheme: FDScheme, step: StepPolicy, precision: FDPrecision, order: ReductionOrder, compute: T.Type
    ) -> (hv: [Double], plus: [Double], eps: Double) {
        let n = model.parameterCount
        let eps = epsilon(comm: comm, thetaShard: tr, vShard: vr, step: step, order: order)
        let mySamples = samples(comm: comm, model.sampleCount)
        let (grads, plus) = FiniteDifferenceHVP.gradientsAtOffsets(tr, vr, scheme: scheme, epsilon: eps, param: precision.param) { local in
            let full = layout.unpad(comm.allGather(local))
            var gpad = precision.gradient(model, at: full, samples: mySamples, compute: T.self)
            gpad += [Double](repeating: 0, count: layout.paddedCount - n)
            return comm.reduceScatter(gpad, format: precision.grad, order: order)
        }
        return (FiniteDifferenceHVP.quotient(grads, scheme: scheme, epsilon: eps, hvp: precision.hvp), plus, eps)
    }

    /// The gradient as FSDP computes it on S ranks: each rank all-gathers θ from the
    /// shards, computes its block of samples' contribution in `T`, rounds it into the
    /// `grad` format, and receives its gradient shard by reduce-scatter. Returns the
    /// full gradient (the shards concatenated).
    public static func gradient<M: DifferentiableModel, T: ComputeScalar>(
        _ model: M, theta: [Double], precision: FDPrecision, shards: Int, order: ReductionOrder = .sequential,
        world: (any Communicator)? = nil, compute: T.Type
    ) throws -> [Double] {
        let n = model.parameterCount, samples = model.sampleCount
        let layout = ShardLayout(count: n, shards: shards)
        let per = (samples + shards - 1) / shards
        return try SPMD.run(shards: shards, world: world) { comm -> [Double] in
            let r = comm.rank
            let full = layout.unpad(comm.allGather(layout.shard(theta, rank: r)))
            let mine = min(r * per, samples)..<min((r + 1) * per, samples)
            var g = precision.gradient(model, at: full, samples: mine, compute: T.self)
            g += [Double](repeating: 0, count: layout.paddedCount - n)
            return layout.unpad(comm.allGather(comm.reduceScatter(g, format: precision.grad, order: order)))
        }
    }

    /// A Lanczos-style dot product of sharded vectors: local dot in fp64, then an
    /// all-reduce in `format` and `order`.
    public static func dot(_ x: [Double], _ y: [Double], comm: any Communicator, format: FormatArithmetic = .fp64,
                           order: ReductionOrder = .sequential) -> Double {
        var s = 0.0
        for i in x.indices { s += x[i] * y[i] }
        return comm.allReduce(s, format: format, order: order)
    }
}
