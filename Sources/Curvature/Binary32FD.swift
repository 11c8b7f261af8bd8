import CKernels
import Collectives
import Scalars
import LinearAlgebra
import Models

/// The FD-HVP of ``FiniteDifferenceHVP/estimate(_:theta:v:scheme:step:precision:compute:)``
/// for its most common policy, fp32 throughout (`param` binary32 to nearest, gradients
/// in `Float`, `grad` and `hvp` binary32 to nearest or fp64), with the same values bit
/// for bit and fewer passes over the n parameters.
///
/// The general path carries every stage in fp64 arrays: perturb (one correctly
/// rounded fma per parameter), convert to the compute type, take the gradient,
/// convert and round it into `grad`, form the quotient, and subtract θ for δ, seven
/// passes of O(n) work around the two gradients. Here one pass over θ and v writes
/// both points straight into the `Float` arrays the gradients read, with δ and the
/// swamped count; the gradients stay in `Float` (rounding a binary32 value into
/// binary32 or binary64 changes nothing), and the quotient reads them.
///
/// The perturbation loop computes the plain Double expression fl(θ + fl(cε·v)) and
/// counts where ``FormatArithmetic/binary32Decides(sum:product:)`` proves that it
/// rounds to binary32 like the exact value, without branching on it; a block of 256
/// with any undecided element (a parameter near a binary32 midpoint, out of the normal
/// range, nearly cancelled by its perturbation) is recomputed with the correctly
/// rounded ``FormatArithmetic/fma(_:_:_:)``. The quotient in binary32 is the hardware's.
///
/// The loops themselves are CKernels' `hh_fd_points_f32`, `hh_fd_account_f32` and
/// `hh_fd_quotient_f32/f64`: the same IEEE operations written in C, compiled for
/// AVX-512 and AVX2 as well and chosen at run time (Swift compiles them for baseline
/// x86-64, two Doubles per instruction). They are the FD's own work between its two
/// gradients; the tests compare this path bit for bit with the staged one.
/// A compute type with a fused FD-HVP of its own: the same values as the stage-by-stage
/// ``FiniteDifferenceHVP/estimateByStages(_:theta:v:scheme:epsilon:precision:compute:)``
/// in fewer passes, for the policies it covers (nil for the others). `Float`: ``Binary32FD``.
public protocol FusedFDScalar: ComputeScalar {
    static func fusedFD<M: DifferentiableModel>(_ model: M, theta: [Double], v: [Double], scheme: FDScheme,
                                                epsilon: Double, precision: FDPrecision) -> FDResult?
    /// One rank's part of the sharded FD-HVP with the same values as the staged
    /// ``ShardedHVP/rankEstimateByStages(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``
    /// (nil for the policies it does not cover). `Float`: ``Binary32FD``.
    static func fusedRankFD<M: DifferentiableModel>(
        comm: any Communicator, model: M, thetaShard: [Double], vShard: [Double], layout: ShardLayout, scheme: FDScheme,
        epsilon: Double, samples: Range<Int>, precision: FDPrecision, order: ReductionOrder, wantsPlus: Bool
    ) -> (hv: [Double], plus: [Double])?
}

extension Float: FusedFDScalar {
    @inlinable
    public static func fusedFD<M: DifferentiableModel>(_ model: M, theta: [Double], v: [Double], scheme: FDScheme,
                                                       epsilon: Double, precision: FDPrecision) -> FDResult? {
        Binary32FD.estimate(model, theta: theta, v: v, scheme: scheme, epsilon: epsilon, precision: precision)
    }

    @inlinable
    public static func fusedRankFD<M: DifferentiableModel>(
        comm: any Communicator, model: M, thetaShard: [Double], vShard: [Double], layout: ShardLayout, scheme: FDScheme,
        epsilon: Double, samples: Range<Int>, precision: FDPrecision, order: ReductionOrder, wantsPlus: Bool
    ) -> (hv: [Double], plus: [Double])? {
        Binary32FD.rankEstimate(comm: comm, model: model, thetaShard: thetaShard, vShard: vShard, layout: layout, scheme: scheme,
                                epsilon: epsilon, samples: samples, precision: precision, order: order, wantsPlus: wantsPlus)
    }
}

@usableFromInline
enum Binary32FD {
    @usableFromInline static let block = 256

    /// The result, or nil when the policy is not one this path covers.
    @inlinable
    static func estimate<M: DifferentiableModel>(_ model: M, theta: [Double], v: [Double], scheme: FDScheme,
                                                 epsilon eps: Double, precision: FDPrecision) -> FDResult? {
        guard precision.param.isBinary32Nearest, precision.grad.containsBinary32,
              precision.hvp.isBinary32Nearest || precision.hvp == .fp64, scheme != .richardson else { return nil }
        let central = scheme == .central                           // offsets: central [1, −1], forward [1, 0]
        let (plus, second, moving, swamped) = pointArrays(theta, v, eps, central: central, precision.param)
        let grads = [plus, second].map {
            model.lossAndGradient($0, samples: 0..<model.sampleCount, accumulation: precision.accumulation).gradient
        }
        let hv = quotient(grads[0], grads[1], denominator: precision.hvp.round(scheme == .forward ? eps : 2 * eps), hvp: precision.hvp)
        return FDResult(hv: hv, epsilon: eps, plus: plus, theta: theta,
                        swampedFraction: FDResult.swampedFraction(moving: moving, swamped: swamped))
    }

    /// One rank's part of the sharded FD-HVP (``ShardedHVP/rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``)
    /// with the same values bit for bit, or nil when the policy is not one this path
    /// covers (as ``estimate(_:theta:v:scheme:epsilon:precision:)``, and `grad` binary32
    /// to nearest, the format the gradient shards are summed in).
    ///
    /// The staged path carries the shards in fp64: perturb, all-gather, drop the padding,
    /// convert to `Float`, take the gradient, convert back and round into `grad`, pad,
    /// reduce-scatter, quotient — about ten O(n) passes over Doubles around each pair of
    /// gradients, which made a one-rank sharded FD-HVP 1.5× the unsharded one. Here the
    /// points are written as `Float` in one pass over the shard, gathered and summed as
    /// binary32 (``Communicator/allGather(_:)-([Float])``, ``Communicator/reduceScatter(_:order:)``:
    /// the same sums, half the bytes), the gradient stays in `Float`, and padding is
    /// added or dropped only where a layout has some. Returns this rank's shard of ĥ
    /// and, if `wantsPlus`, of fl_param(θ + εv) (else empty).
    @inlinable
    static func rankEstimate<M: DifferentiableModel>(
        comm: any Communicator, model: M, thetaShard tr: [Double], vShard vr: [Double], layout: ShardLayout,
        scheme: FDScheme, epsilon eps: Double, samples: Range<Int>, precision: FDPrecision, order: ReductionOrder,
        wantsPlus: Bool
    ) -> (hv: [Double], plus: [Double])? {
        guard precision.shardsInBinary32, scheme != .richardson else { return nil }
        let m = tr.count, n = layout.count
        precondition(vr.count == m && m == layout.shardSize)
        let central = scheme == .central
        let (plus, second, _, _) = pointArrays(tr, vr, eps, central: central, precision.param)
        let padding = layout.paddedCount - n
        // The gathered point is released before the reduce-scatter (it is the largest
        // buffer alive there otherwise).
        func gradient(_ local: [Float]) -> [Float] {
            var full = comm.allGather(local)
            if padding > 0 { full.removeLast(padding) }
            return model.lossAndGradient(full, samples: samples, accumulation: precision.accumulation).gradient
        }
        func gradientShard(_ local: [Float]) -> [Float] {
            var g = gradient(local)
            if padding > 0 { g.append(contentsOf: repeatElement(0, count: padding)) }
            return comm.reduceScatter(g, order: order)
        }
        let gPlus = gradientShard(plus), gSecond = gradientShard(second)
        let hv = quotient(gPlus, gSecond, denominator: precision.hvp.round(scheme == .forward ? eps : 2 * eps), hvp: precision.hvp)
        return (hv, wantsPlus ? plus.map(Double.init) : [])
    }

    /// ``points(_:_:_:central:_:plus:second:)`` into two new arrays.
    @inlinable
    static func pointArrays(_ theta: [Double], _ v: [Double], _ eps: Double, central: Bool, _ param: FormatArithmetic)
        -> (plus: [Float], second: [Float], moving: Int, swamped: Int) {
        let n = theta.count
        var moving = 0, swamped = 0
        var second = [Float]()
        let plus = [Float](unsafeUninitializedCapacity: n) { out, count in
            second = [Float](unsafeUninitializedCapacity: n) { out2, count2 in
                theta.withUnsafeBufferPointer { t in v.withUnsafeBufferPointer { vs in
                    (moving, swamped) = points(t, vs, eps, central: central, param, plus: out, second: out2)
                } }
                count2 = n
            }
            count = n
        }
        return (plus, second, moving, swamped)
    }

    /// Both points in one pass over θ and v: plus[i] = fl32(θᵢ + εvᵢ) and second[i] =
    /// fl32(θᵢ − εvᵢ) (central; fl(−εv) = −fl(εv) exactly) or fl32(θᵢ) (forward), each
    /// correctly rounded; and the counts of moving (vᵢ ≠ 0) and swamped (moving, yet
    /// plus[i] = θᵢ) components (δ = plus − θ is formed when the result's `delta` is read),
    /// block by block while the block is in cache (the points and the accounting in C,
    /// the correctly rounded redo of an undecided block here).
    @inlinable
    static func points(_ t: UnsafeBufferPointer<Double>, _ v: UnsafeBufferPointer<Double>, _ eps: Double, central: Bool,
                       _ param: FormatArithmetic, plus: UnsafeMutableBufferPointer<Float>,
                       second: UnsafeMutableBufferPointer<Float>) -> (moving: Int, swamped: Int) {
        var moving = 0, swamped = 0
        var start = 0
        while start < t.count {
            let end = min(start + block, t.count), n = end - start
            let undecided = hh_fd_points_f32(n, t.baseAddress! + start, v.baseAddress! + start, eps, central ? 1 : 0,
                                             plus.baseAddress! + start, second.baseAddress! + start)
            if undecided & 1 != 0 { for i in start..<end { plus[i] = Float(param.fma(t[i], eps, v[i])) } }
            if undecided & 2 != 0 { for i in start..<end { second[i] = Float(param.fma(t[i], -eps, v[i])) } }
            hh_fd_account_f32(n, plus.baseAddress! + start, t.baseAddress! + start, v.baseAddress! + start, &moving, &swamped)
            start = end
        }
        return (moving, swamped)
    }

    /// hvᵢ = fl_h(fl_h(aᵢ − bᵢ) / den) for binary32 gradients a, b and h binary32 to
    /// nearest or fp64: what ``FiniteDifferenceHVP/quotient(_:scheme:epsilon:hvp:)`` gives.
    /// In binary32 that is the hardware's `Float` subtraction and division (IEEE 754:
    /// each correctly rounded to nearest, subnormals and overflow included; `den` is a
    /// binary32 value), with a NaN written as the canonical `.nan` the emulation returns.
    @inlinable
    static func quotient(_ a: [Float], _ b: [Float], denominator den: Double, hvp h: FormatArithmetic) -> [Double] {
        let n = a.count
        precondition(b.count == n)
        return [Double](unsafeUninitializedCapacity: n) { hv, count in
            if n > 0 { a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                if h == .fp64 {
                    hh_fd_quotient_f64(n, a.baseAddress!, b.baseAddress!, den, hv.baseAddress!)   // h.sub, h.div in binary64
                } else {
                    hh_fd_quotient_f32(n, a.baseAddress!, b.baseAddress!, Float(den), hv.baseAddress!)  // exact: den = fl32(2ε)
                }
            } } }
            count = n
        }
    }
}

extension FDPrecision {
    /// Whether a `Float` sharded FD-HVP under this precision takes the binary32 path
    /// (``Binary32FD``'s rank estimate; forward and central schemes): param and grad
    /// binary32 to nearest, hvp binary32 to nearest or fp64.
    @inlinable public var shardsInBinary32: Bool {
        param.isBinary32Nearest && grad.isBinary32Nearest && (hvp.isBinary32Nearest || hvp == .fp64)
    }
}
