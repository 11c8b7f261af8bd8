import Harness
import Foundation
import Scalars
import Models
import Curvature
import Studies

/// `bench shard-hvp`: time per sharded FD-HVP and peak memory, per rank of an MPI job
/// (under `hessian-harness-mpi`) or for the in-process simulation of `--shards` ranks
/// (one process holding every rank). Each rank times `reps` central FD-HVPs after one
/// warm-up and reports the median; memory is the process's peak resident set
/// (`getrusage` ru_maxrss), which includes the runtime and the model's data.
public enum ShardBench {
    public static let header = "backend,ranks,rank,model,n,seconds_per_hvp,max_rss_mib"

    public static func run(model spec: String, policy: String, shards: Int, reps: Int, seed: UInt64 = 0) throws -> String? {
        guard reps >= 1 && reps <= 10_000 else { throw HarnessError("--reps must be in 1...10000") }
        let world = Cluster.world
        let ranks = try Cluster.shards(requested: shards)
        let m: any DifferentiableModel
        do { m = try ModelSpec.build(spec, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        let pol: PrecisionPolicy
        do { pol = try PrecisionPolicy(policy) } catch { throw HarnessError("--policy: \(error)") }
        let engine = try FDEngine(model: m, policy: pol)
        let param = try pol.arithmetic(pol.param)
        let theta = m.initialParameters(seed: seed).map { param.round($0) }
        let v = ModelSetup.direction(count: theta.count, seed: seed)
        func hvp() throws { _ = try engine.estimate(theta: theta, v: v, scheme: .central, step: .absolute(1e-3), shards: ranks, world: world) }
        try hvp()
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<reps { times.append(try clock.measure { try hvp() }.seconds) }
        times.sort()
        let median = times[times.count / 2]
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rssMiB = Double(usage.ru_maxrss) / 1024
        let cells = { (backend: String, rank: String, t: Double, rss: Double) in
            "\(backend),\(ranks),\(rank),\"\(spec)\",\(theta.count),\(t),\(String(format: "%.1f", rss))"
        }
        guard let w = world else { return header + "\n" + cells("in-process", "all", median, rssMiB) + "\n" }
        let all = w.allGather([median, rssMiB])
        guard w.rank == 0 else { return nil }
        return header + "\n" + (0..<w.size).map { cells("mpi", "\($0)", all[2 * $0], all[2 * $0 + 1]) }.joined(separator: "\n") + "\n"
    }
}
