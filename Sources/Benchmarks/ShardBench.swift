import Harness
import LinearAlgebra
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
/// MPI library's algorithm). `max_rss_mib` is the process's peak resident set
/// (`getrusage` ru_maxrss), which includes the runtime, the model's data and setting
/// up; `hvp_rss_delta_mib` the warm-up FD-HVP's peak above the RSS before it, and
/// `mem_model_mib` what ``memoryModel(_:policy:precision:ranks:mpi:unsharded:)`` says it holds;
/// `allocator` the `HH_MALLOC` policy in force (`keep` or `system`); `pred_s`, with a
/// cost model given, ``predictedSeconds(_:policy:ranks:step:costModel:)``.
public enum ShardBench {
    public static let header = "backend,ranks,rank,model,n,seconds_per_hvp,collectives_per_hvp,bytes_sent_per_hvp,max_rss_mib,hvp_rss_delta_mib,mem_model_mib,allocator,pred_s"

    public static func run(model spec: String, policy: String, shards: Int, reps: Int, seed: UInt64 = 0, costModel: String? = nil) throws -> String? {
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
        // Read before the measurement, so that a bad file fails at once.
        let costRow = try costModel.map { try costModelRow($0, family: m.describe().family) }
        let n = m.parameterCount
        let layout = ShardLayout(count: n, shards: ranks)
        // θ and v in full for the unsharded FD-HVP; otherwise only the shards this process
        // holds (every rank's in process, its own under MPI), as FSDP keeps them.
        let (theta, v, shards): ([Double], [Double], [Int: (theta: [Double], v: [Double])]) = {
            let theta = ModelSetup.parameters(m, seed: seed, param: param)
            let v = ModelSetup.direction(count: n, seed: seed)
            if unsharded { return (theta, v, [:]) }
            let mine = world.map { [$0.rank] } ?? Array(0..<ranks)
            return ([], [], Dictionary(uniqueKeysWithValues: mine.map { ($0, (layout.shard(theta, rank: $0), layout.shard(v, rank: $0))) }))
        }()
        let step = StepPolicy.absolute(1e-3)
        // One FD-HVP; returns (collectives, payload bytes) of this rank.
        func hvp() throws -> (Int, Int) {
            if unsharded {
                _ = try engine.estimate(theta: theta, v: v, scheme: .central, step: step)
                return (0, 0)
            }
            return try SPMD.run(shards: ranks, world: world) { comm -> (Int, Int) in
                let c = CountingCommunicator(comm)
                let hv = engine.rankEstimate(comm: c, thetaShard: shards[comm.rank]!.theta, vShard: shards[comm.rank]!.v, layout: layout,
                                             scheme: .central, step: step, order: .sequential)
                _ = layout.unpad(c.allGather(hv))
                return (c.calls, c.bytes)
            }
        }
        // The warm-up's memory: its peak RSS above the RSS before it (after the allocator
        // returned its free pages), against the model of what the binary32 path holds.
        MemoryProbe.releaseFreedMemory()
        MemoryProbe.resetPeak()
        let before = MemoryProbe.current()
        let (calls, bytes) = try hvp()
        let deltaMiB = Double(max(MemoryProbe.peak() - before, 0)) / 1_048_576
        let modelMiB = memoryModel(m, policy: pol, precision: engine.precision, ranks: ranks, mpi: world != nil, unsharded: unsharded).map { Double($0) / 1_048_576 }
        let clock = ContinuousClock()
        var times: [Double] = []
        for _ in 0..<reps { times.append(try clock.measure { _ = try hvp() }.seconds) }
        times.sort()
        let median = times[times.count / 2]
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rssMiB = Double(usage.ru_maxrss) / 1024
        let mib = { (x: Double) in String(format: "%.1f", x) }
        let model = modelMiB.map(mib) ?? ""
        let allocator = ProcessAllocator.isKeepingFreedMemory ? "keep" : "system"
        // After the measurement: the products are timed on this process's core.
        let predicted = try costRow.map { try predictedSeconds(m, policy: pol, ranks: unsharded ? 1 : ranks, step: step, costModel: $0) }.map { "\($0)" } ?? ""
        let cells = { (backend: String, rank: String, t: Double, calls: Int, bytes: Int, rss: Double, delta: Double) in
            "\(backend),\(ranks),\(rank),\"\(spec)\",\(n),\(t),\(calls),\(bytes),\(mib(rss)),\(mib(delta)),\(model),\(allocator),\(predicted)"
        }
        guard let w = world else {
            return header + "\n" + cells(unsharded ? "unsharded" : "in-process", "all", median, calls, bytes, rssMiB, deltaMiB) + "\n"
        }
        let all = w.allGather([median, Double(calls), Double(bytes), rssMiB, deltaMiB])
        guard w.rank == 0 else { return nil }
        return header + "\n" + (0..<w.size).map {
            cells("mpi", "\($0)", all[5 * $0], Int(all[5 * $0 + 1]), Int(all[5 * $0 + 2]), all[5 * $0 + 3], all[5 * $0 + 4])
        }.joined(separator: "\n") + "\n"
    }

    /// The `time_hvp_central_s` cost model of `family` at one shard from a scaling study's
    /// `costmodel.csv`: its four coefficients (c_gemm, c_f, c_b, c_pass) and c_0.
    static func costModelRow(_ path: String, family: String) throws -> CostModel {
        let rows: [[String: String]]
        do { rows = try CSVTable.read(path: path) } catch { throw HarnessError("--cost-model: \(error)") }
        let names = ["c_gemm", "c_flop_s", "c_byte_s", "c_pass", "c_0_s"]
        guard let first = rows.first, (["quantity", "family", "shards"] + names).allSatisfy({ first[$0] != nil }) else {
            throw HarnessError("--cost-model: \(path) is not a scaling study's costmodel.csv (needs quantity, family, shards, c_gemm, c_flop_s, c_byte_s, c_pass, c_0_s; files made before c_pass was added describe another model: re-run the study)")
        }
        guard let row = rows.first(where: { $0["quantity"] == "time_hvp_central_s" && $0["family"] == family && $0["shards"] == "1" }) else {
            throw HarnessError("--cost-model: \(path) has no time_hvp_central_s model of family '\(family)' at one shard")
        }
        let c = names.compactMap { row[$0].flatMap(Double.init) }.filter { $0.isFinite && $0 >= 0 }
        guard c.count == 5 else { throw HarnessError("--cost-model: bad coefficients in \(path)") }
        return CostModel(coefficients: Array(c[0..<4]), fixed: c[4], points: 0, rmsRelative: .nan)
    }

    /// One rank's time per central FD-HVP as the scaling study's cost model says: the
    /// family's `time_hvp_central_s` model evaluated at the work of the largest rank's block
    /// of samples (``DescribedModel/gradientWork(samples:)``, its products timed here at
    /// their shapes), each rank on a core of its own, with the passes around the gradients
    /// those of the unsharded central FD-HVP at the full n timed here (``PassCalibration``:
    /// a rank's own points and quotient run on its shard, so this bounds them from above).
    /// What it leaves out: the collectives (the all-gather of the point and the
    /// reduce-scatter of the gradient, bandwidth-bound copies within a machine) and ranks
    /// sharing a core (four ranks on two cores take up to twice the prediction).
    static func predictedSeconds(_ m: any DifferentiableModel, policy: PrecisionPolicy, ranks: Int, step: StepPolicy, costModel: CostModel) throws -> Double {
        let block = ShardedHVP.samples(rank: 0, shards: ranks, count: m.sampleCount).count
        guard let w = m.gradientWork(samples: block) else { throw HarnessError("--cost-model: the model's cost is not modelled (no gradient work)") }
        let g = try GemmCalibration.measure(w, policy: policy, repeats: 3).total
        let cb = Double(try ScalingStudy.bytes(policy, policy.compute))
        let n = m.parameterCount
        let passes = try PassCalibration.measure(theta: ModelSetup.direction(count: n, seed: 1), v: ModelSetup.direction(count: n, seed: 2),
                                                 policy: policy, schemes: [.central], step: step, shards: 1)
        guard let x = ScalingStudy.features(quantity: "time_hvp_central_s", flops: w.flops, gemmFlops: w.gemmFlops, gemmSeconds: g,
                                            bytes: w.values * cb, n: Double(n), cb: cb, kb: 0, steps: 0,
                                            passes: ["pass_hvp_central_s": passes.hvp[0]]) else { return .nan }
        return costModel.predict(x.features)
    }

    /// Bytes one FD-HVP of the binary32 path holds at its peak above what was allocated
    /// before it, per process (`hvp_rss_delta_mib`'s model); nil for policies that take
    /// the staged fp64-carrier path (not modelled here). With m the padded shard length
    /// and G the values one gradient holds at its peak over the rank's block of samples
    /// (``DescribedModel/peakGradientValues(samples:)``, the point it reads included), a
    /// rank's peak is the largest of four moments:
    /// - the second gradient: both points (8m bytes) and the first gradient's shard (4m)
    ///   alive, the gradient's own 4·(G − n) beyond the point, and the gathered point 4n
    ///   where gathering copies it (under MPI always, in process with two or more ranks;
    ///   one in-process rank and the unsharded path read the point itself);
    /// - the reduce-scatter of the second gradient (the gathered point released): both
    ///   points and the first gradient's shard (12m), the full gradient (4·padded n), the
    ///   received chunks (under MPI 4·padded n; in process the ranks' gradients are read
    ///   in place) and the reduced shard (4m);
    /// - the quotient: both points, both gradient shards and ĥ in fp64, 24m;
    /// - the all-gather of ĥ that ends the benchmark's FD-HVP: the shard and the gathered
    ///   vector in fp64, 8m + 8·(padded n), and 8n more to drop padding (none, without).
    /// In process the S ranks reach each moment together: S times one rank. Setting up
    /// (the full θ and v, a checkpoint's dequantization) is not part of it: `max_rss_mib`
    /// includes that. The model counts live bytes, which is what RSS measures under
    /// glibc's defaults (`HH_MALLOC=system`: a freed large block is unmapped); with freed
    /// memory kept (the default) RSS also holds the freed blocks a larger request could
    /// not reuse (13% more on two ranks of SmolLM2-135M), so `bench/shard-hvp.sh` checks
    /// the model on MPI rows run under `system`.
    static func memoryModel(_ m: any DifferentiableModel, policy p: PrecisionPolicy, precision: FDPrecision, ranks: Int, mpi: Bool,
                            unsharded: Bool) -> Int? {
        guard precision.shardsInBinary32, p.compute.name == "fp32", p.mode(for: p.compute) == .nearest else { return nil }
        let n = m.parameterCount
        let layout = ShardLayout(count: n, shards: unsharded ? 1 : ranks)
        let shard = layout.shardSize
        let g = m.peakGradientValues(samples: ShardedHVP.samples(rank: 0, shards: layout.shards, count: m.sampleCount).count)  // the largest block
        let gathers = mpi || (!unsharded && ranks > 1)
        let secondGradient = 12 * shard + 4 * (g - n) + (gathers ? 4 * n : 0)
        let quotient = 24 * shard
        let reduceScatter = layout.shards == 1 ? 0 : 16 * shard + 4 * layout.paddedCount + (mpi ? 4 * layout.paddedCount : 0)
        let gatherHV = unsharded ? 0 : 8 * shard + 8 * layout.paddedCount + (layout.paddedCount > n ? 8 * n : 0)
        let rank = max(secondGradient, reduceScatter, quotient, gatherHV)
        return mpi ? rank : layout.shards * rank
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
