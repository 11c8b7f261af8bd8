import Collectives
import Scalars
import Krylov

/// Lanczos as the FSDP pipeline runs it: SPMD, each rank holding only its shard of
/// every Lanczos vector. Vectors are fp64 carriers rounded into the `krylov` stage
/// format op by op; every dot product is a local sum in the `accumulate` format (the
/// policy's ``PrecisionPolicy/krylovAccumulationFormat``; default `krylov`) plus an
/// all-reduce in that format and `order`, rounded once into `krylov`. `apply` maps this rank's shard of q to its shard of Aq
/// (typically ``ShardedHVP/rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``,
/// which uses collectives itself). Full reorthogonalization (twice classical
/// Gram–Schmidt) sends all projections of a pass in one all-reduce.
///
/// With `measureOrthogonality`, every rank keeps its shards of the basis and after
/// each step the new vector's projections on all earlier ones are all-reduced in
/// fp64 (sequential order): `orth_loss` and `orth_loss_fro` of NUMERICS.md §6, as
/// ``Lanczos`` measures them unsharded, at the cost of one extra all-reduce per step.
public enum ShardedLanczos {
    public struct Result: Sendable, Equatable {
        public var alpha: [Double], beta: [Double]
        /// Per step (nil when not measured).
        public var orthLoss: [Double?], orthLossFro: [Double?]
        /// Why the run stopped before `steps` (nil: it did not). A non-finite step is
        /// dropped, as in ``Lanczos``.
        public var breakdown: LanczosBreakdown?
    }

    public static func run(comm: any Communicator, start: [Double], steps: Int,
                           reorthogonalization: Reorthogonalization = .none, krylov k: FormatArithmetic = .fp64,
                           accumulate: FormatArithmetic? = nil,
                           order: ReductionOrder = .sequential, apply: ([Double]) -> [Double]) -> (alpha: [Double], beta: [Double]) {
        let r = run(comm: comm, start: start, steps: steps, reorthogonalization: reorthogonalization, krylov: k, accumulate: accumulate,
                    order: order, measureOrthogonality: false, apply: apply)
        return (r.alpha, r.beta)
    }

    public static func run(comm: any Communicator, start: [Double], steps: Int,
                           reorthogonalization: Reorthogonalization = .none, krylov k: FormatArithmetic = .fp64,
                           accumulate: FormatArithmetic? = nil,
                           order: ReductionOrder = .sequential, measureOrthogonality measure: Bool,
                           apply: ([Double]) -> [Double]) -> Result {
        precondition(reorthogonalization == .none || reorthogonalization == .full, "sharded Lanczos supports none and full")
        let acc = accumulate ?? k
        func localDot(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in a.indices { s = acc.fma(s, a[i], b[i]) }
            return s
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { k.round(comm.allReduce(localDot(a, b), format: acc, order: order)) }
        let u = (k.format?.unitRoundoff ?? 0x1p-53)
        var q = start
        let n0 = k.round(dot(q, q).squareRoot())
        for i in q.indices { q[i] = k.div(q[i], n0) }
        var qPrev = [Double](repeating: 0, count: q.count)
        var betaPrev = 0.0
        var basis: [[Double]] = [q]
        var alphas: [Double] = [], betas: [Double] = []
        var normEstimate = 0.0
        var breakdown: LanczosBreakdown? = nil
        // Orthogonality in fp64: local sums plus an all-reduce in fp64.
        func dots64(_ vs: [[Double]], _ x: [Double]) -> [Double] {
            comm.allReduce(vs.map { a in var s = 0.0; for i in a.indices { s += a[i] * x[i] }; return s }, format: .fp64, order: .sequential)
        }
        var measured: [[Double]] = measure ? [q] : []
        var maxOff = 0.0, fro2 = 0.0
        if measure { let s = dots64([q], q)[0]; fro2 = (1 - s) * (1 - s) }
        var orthLoss: [Double?] = [], orthLossFro: [Double?] = []
        for j in 0..<steps {
            var w = apply(q)
            let alpha = dot(q, w)
            for i in w.indices {
                w[i] = k.fma(w[i], -alpha, q[i])
                if j > 0 { w[i] = k.fma(w[i], -betaPrev, qPrev[i]) }
            }
            if reorthogonalization == .full {
                for _ in 0..<2 {
                    let h = comm.allReduce(basis.map { localDot($0, w) }, format: acc, order: order).map { k.round($0) }
                    for (c, b) in zip(h, basis) { for i in w.indices { w[i] = k.fma(w[i], -c, b[i]) } }
                }
            }
            let beta = k.round(dot(w, w).squareRoot())
            if !alpha.isFinite || !beta.isFinite { breakdown = .nonFinite; break }
            alphas.append(alpha); betas.append(beta)
            orthLoss.append(measure ? maxOff : nil); orthLossFro.append(measure ? fro2.squareRoot() : nil)
            normEstimate = max(normEstimate, abs(alpha) + beta + betaPrev)
            if beta <= 4 * u * normEstimate { breakdown = .invariantSubspace; break }
            if j + 1 == steps { break }
            qPrev = q
            for i in q.indices { q[i] = k.div(w[i], beta) }
            betaPrev = beta
            if reorthogonalization == .full { basis.append(q) }
            if measure {
                let d = dots64(measured + [q], q)
                for x in d.dropLast() { maxOff = max(maxOff, abs(x)); fro2 += 2 * x * x }
                fro2 += (1 - d.last!) * (1 - d.last!)
                measured.append(q)
            }
        }
        return Result(alpha: alphas, beta: betas, orthLoss: orthLoss, orthLossFro: orthLossFro, breakdown: breakdown)
    }
}
