import Harness
import Foundation
import Scalars
import Models
import Collectives
import Curvature
import Studies

/// `bench shard-hvp`: time per sharded FD-HVP, the collectives it makes and peak
/// memory, per rank of an MPI job (under `hessian-harness-mpi`) or for the
/// in-process simulation of `--shards` ranks (one process holding every rank), and
/// with `--shards 0` the unsharded FD-HVP of the same model, step and direction —
/// the baseline a one-rank sharded run is compared with.
///
/// Each rank times `reps` central FD-HVPs after one warm-up and reports the median.
/// A sharded FD-HVP here is what ``ShardedHVP/estimate`` does: every rank's
/// ``ShardedHVP/rankEstimate`` (with S = 1 included, so the one-rank rows measure
/// the sharded code path, not the unsharded one it would dispatch to) and the final
/// all-gather of ĥ. `collectives_per_hvp` and `bytes_sent_per_hvp` count, per rank,
/// the collectives of one FD-HVP and the payload the rank contributes to them
/// (8 bytes per value, 4 for the binary32 collectives of an fp32 policy's points and
/// gradients — ĥ is gathered as Doubles; how many bytes cross the wire depends on the
/// MPI library's algorithm). Memory is the process's peak resident set
/// (`getrusage` ru_maxrss), which includes the runtime and the model's data.
public enum ShardBench {
    public static let header = "backend,ranks,rank,model,n,seconds_per_hvp,collectives_per_hvp,bytes_sent_per_hvp,max_rss_mib"

    public static func run(model spec: String, policy: String, shards: Int, reps: Int, seed: UInt64 = 0) throws -> String? {
        guard reps >= 1 && reps <= 10_000 else { throw HarnessError("--reps must be in 1...10000") }
        let world = Cluster.world
        let unsharded = shards == 0 && world == nil
        let ranks = unsharded ? 1 : try Cluster.shards(requested: shards)
        let m: any DifferentiableModel
        do { m = try ModelSpec.build(spec, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        let pol: PrecisionPolicy
        do { pol = try PrecisionPolicy(policy) } catch { throw HarnessError("--policy: \(error)") }
        let engine = try FDEngine(model: m, policy: pol)
        let param = try pol.arithmetic(pol.param)
        let theta = ModelSetup.parameters(m, seed: seed, param: param)
        let v = ModelSetup.direction(count: theta.count, seed: seed)
        let layout = ShardLayout(count: theta.count, shards: ranks)
        let step = StepPolicy.absolute(1e-3)
        // One FD-HVP; returns (collectives, payload bytes) of this rank.
        func hvp() throws -> (Int, Int) {
            if unsharded {
                _ = try engine.estimate(theta: theta, v: v, scheme: .central, step: step)
                return (0, 0)
            }
            return try SPMD.run(shards: ranks, world: world) { comm -> (Int, Int) in
                let c = CountingCommunicator(comm)
                let hv = engine.rankEstimate(comm: c, thetaShard: layout.shard(theta, rank: comm.rank),
                                             vShard: layout.shard(v, rank: comm.rank), layout: layout,
                                             scheme: .central, step: step, order: .sequential)
                _ = layout.unpad(c.allGather(hv))
                return (c.calls, c.bytes)
            }
        }
        let (calls, bytes) = try hvp()
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<reps { times.append(try clock.measure { _ = try hvp() }.seconds) }
        times.sort()
        let median = times[times.count / 2]
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rssMiB = Double(usage.ru_maxrss) / 1024
        let cells = { (backend: String, rank: String, t: Double, calls: Int, bytes: Int, rss: Double) in
            "\(backend),\(ranks),\(rank),\"\(spec)\",\(theta.count),\(t),\(calls),\(bytes),\(String(format: "%.1f", rss))"
        }
        guard let w = world else {
            return header + "\n" + cells(unsharded ? "unsharded" : "in-process", "all", median, calls, bytes, rssMiB) + "\n"
        }
        let all = w.allGather([median, Double(calls), Double(bytes), rssMiB])
        guard w.rank == 0 else { return nil }
        return header + "\n" + (0..<w.size).map {
            cells("mpi", "\($0)", all[4 * $0], Int(all[4 * $0 + 1]), Int(all[4 * $0 + 2]), all[4 * $0 + 3])
        }.joined(separator: "\n") + "\n"
    }
}

/// A communicator that forwards to another and counts this rank's collectives and
/// the payload it contributes (8 bytes per binary64 value, 4 per binary32): what
/// `bench shard-hvp` reports.
final class CountingCommunicator: Communicator, @unchecked Sendable {
    let inner: any Communicator
    private(set) var calls = 0
    private(set) var bytes = 0
    init(_ inner: any Communicator) { self.inner = inner }
    var rank: Int { inner.rank }
    var size: Int { inner.size }
    func allGather(_ local: [Double]) -> [Double] {
        calls += 1; bytes += 8 * local.count
        return inner.allGather(local)
    }
    func reduceScatter(_ full: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        calls += 1; bytes += 8 * full.count
        return inner.reduceScatter(full, format: format, order: order)
    }
    func allReduce(_ x: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
        calls += 1; bytes += 8 * x.count
        return inner.allReduce(x, format: format, order: order)
    }
    func allGather(_ local: [Float]) -> [Float] {
        calls += 1; bytes += 4 * local.count
        return inner.allGather(local)
    }
    func reduceScatter(_ full: [Float], order: ReductionOrder) -> [Float] {
        calls += 1; bytes += 4 * full.count
        return inner.reduceScatter(full, order: order)
    }
}
