import Scalars
import Krylov

/// Lanczos as the FSDP pipeline runs it: SPMD, each rank holding only its shard of
/// every Lanczos vector. Vectors are fp64 carriers rounded into the `krylov` stage
/// format op by op; every dot product is a local sum in `krylov` plus an all-reduce
/// in `krylov` and `order`. `apply` maps this rank's shard of q to its shard of Aq
/// (typically ``ShardedHVP/rankEstimate(comm:model:thetaShard:vShard:layout:scheme:step:precision:order:compute:)``,
/// which uses collectives itself). Full reorthogonalization (twice classical
/// Gram–Schmidt) sends all projections of a pass in one all-reduce.
public enum ShardedLanczos {
    public static func run(comm: any Communicator, start: [Double], steps: Int,
                           reorthogonalization: Reorthogonalization = .none, krylov k: FormatArithmetic = .fp64,
                           order: ReductionOrder = .sequential, apply: ([Double]) -> [Double]) -> (alpha: [Double], beta: [Double]) {
        precondition(reorthogonalization == .none || reorthogonalization == .full, "sharded Lanczos supports none and full")
        func localDot(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for i in a.indices { s = k.fma(s, a[i], b[i]) }
            return s
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { comm.allReduce(localDot(a, b), format: k, order: order) }
        let u = (k.format?.unitRoundoff ?? 0x1p-53)
        var q = start
        let n0 = k.round(dot(q, q).squareRoot())
        for i in q.indices { q[i] = k.div(q[i], n0) }
        var qPrev = [Double](repeating: 0, count: q.count)
        var betaPrev = 0.0
        var basis: [[Double]] = [q]
        var alphas: [Double] = [], betas: [Double] = []
        var normEstimate = 0.0
        for j in 0..<steps {
            var w = apply(q)
            let alpha = dot(q, w)
            for i in w.indices {
                w[i] = k.fma(w[i], -alpha, q[i])
                if j > 0 { w[i] = k.fma(w[i], -betaPrev, qPrev[i]) }
            }
            if reorthogonalization == .full {
                for _ in 0..<2 {
                    let h = comm.allReduce(basis.map { localDot($0, w) }, format: k, order: order)
                    for (c, b) in zip(h, basis) { for i in w.indices { w[i] = k.fma(w[i], -c, b[i]) } }
                }
            }
            let beta = k.round(dot(w, w).squareRoot())
            alphas.append(alpha); betas.append(beta)
            normEstimate = max(normEstimate, abs(alpha) + beta + betaPrev)
            if beta <= 4 * u * normEstimate || j + 1 == steps { break }
            qPrev = q
            for i in q.indices { q[i] = k.div(w[i], beta) }
            betaPrev = beta
            if reorthogonalization == .full { basis.append(q) }
        }
        return (alphas, betas)
    }
}
