import Foundation
import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// Study `scaling` (NUMERICS.md §9): cost of gradients, FD-HVPs (each scheme), the
/// exact dual HVP and a Lanczos step against parameter count and shard count, power-law
/// fits `t = a·n^b` over the measured range (descriptive: not extrapolated), and a memory
/// model of FD-HVP SLQ checked against measured peak RSS and evaluated at 10⁹–10¹¹
/// parameters.
///
/// Units run one at a time (``exclusive``): timings are medians over `repeats`
/// (after a warm-up), and memory is the process's peak RSS (`VmHWM`, reset through
/// `/proc/self/clear_refs` before each unit) — so timing and memory columns are
/// measurements and, unlike the other studies' tables, not byte-reproducible.
///
/// Tables:
/// - `timings.csv`: per model × shards: `time_grad_s`, `time_hvp_s` per scheme
///   (`time_hvp_forward_s`, …), `time_hvp_exact_s` (dual numbers, unsharded),
///   `time_lanczos_step_s` (central FD-HVP, full reorthogonalization, `lanczos_steps`
///   steps), `hvp_over_grad` per scheme, `peak_rss_bytes`, `rss_delta_bytes` (peak
///   minus RSS at the unit's start) and `mem_model_bytes`: the memory model of the
///   Lanczos phase in the harness's own representation (fp64 carriers for
///   param/grad/hvp stages, the compute and Krylov types' sizes, all S ranks in one
///   process), with `mem_model_ratio = mem_model_bytes / rss_delta_bytes`.
/// - `fits.csv`: per quantity and shard count, `fit_a`, `fit_b`, `fit_r2` of `t = a·n^b`
///   and the measured range `n_min`…`n_max` it describes. Times are not extrapolated: at
///   these sizes fixed overheads dominate (exponents below 1), so a power law fitted
///   here says nothing about 10⁹ parameters (issue 19 asks for a work-based cost model
///   validated on held-out sizes first).
/// - `extrapolation.csv`: the native memory model per shard (formats' own byte sizes;
///   activations excluded) at 10⁹, 10¹⁰, 10¹¹ parameters for each shard count and
///   reorthogonalization (none: 3 Lanczos vectors; full/partial/selective:
///   `memory_steps` + 1 stored vectors), each row labelled with its assumptions.
public struct ScalingStudy: Study {
    public struct Config: Sendable {
        public var models: [String]
        public var policy: PrecisionPolicy
        public var shards: [Int]
        public var schemes: [FDScheme]
        public var repeats: Int
        public var lanczosSteps: Int
        public var memorySteps: Int
        public var extrapolateTo: [Double]
        public var seed: UInt64
        public init(models: [String], policy: PrecisionPolicy, shards: [Int], schemes: [FDScheme], repeats: Int = 5,
                    lanczosSteps: Int = 10, memorySteps: Int = 100, extrapolateTo: [Double] = [1e9, 1e10, 1e11], seed: UInt64 = 0) {
            self.models = models; self.policy = policy; self.shards = shards; self.schemes = schemes; self.repeats = repeats
            self.lanczosSteps = lanczosSteps; self.memorySteps = memorySteps; self.extrapolateTo = extrapolateTo; self.seed = seed
        }
    }
    public let config: Config
    public let name = "scaling"
    public var exclusive: Bool { true }
    struct Case: Sendable { var model: String; var shards: Int }
    let cases: [Case]
    let sizes: [String: Int]

    public init(_ c: Config) throws {
        guard c.models.count >= 2, !c.shards.isEmpty, !c.schemes.isEmpty else {
            throw StudyError("scaling needs at least two models (for the fits), one shard count and one scheme")
        }
        guard c.shards.allSatisfy({ $0 >= 1 && $0 <= 64 }) else { throw StudyError("shards must be in 1...64") }
        guard c.repeats >= 1, c.lanczosSteps >= 1, c.memorySteps >= 1 else { throw StudyError("repeats, lanczos_steps and memory_steps must be ≥ 1") }
        guard c.extrapolateTo.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw StudyError("extrapolate_to values must be finite and > 0") }
        var sz: [String: Int] = [:]
        for m in c.models {
            do { sz[m] = try ModelSpec.build(m, seed: c.seed).parameterCount } catch { throw StudyError("model '\(m)': \(error)") }
        }
        config = c; sizes = sz
        cases = c.models.flatMap { m in c.shards.map { Case(model: m, shards: $0) } }
    }

    public var units: [StudyUnit] { cases.map { StudyUnit(key: "\($0.model)|\($0.shards)") } }
    public var seeds: [String: UInt64] { ["seed": config.seed] }

    public var timingsHeader: [String] {
        ["model", "family", "parameters", "samples", "policy", "shards", "repeats", "time_grad_s"]
            + config.schemes.map { "time_hvp_\($0.rawValue)_s" } + ["time_hvp_exact_s", "time_lanczos_step_s"]
            + config.schemes.map { "hvp_over_grad_\($0.rawValue)" } + ["hvp_over_grad_exact", "lanczos_steps",
            "peak_rss_bytes", "rss_delta_bytes", "mem_model_bytes", "mem_model_ratio"]
    }
    public static let fitsHeader = ["quantity", "shards", "fit_a", "fit_b", "fit_r2", "points", "n_min", "n_max"]
    public static let extrapolationHeader = ["parameters", "shards", "reorth", "lanczos_vectors", "quantity", "value", "unit", "label"]

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = cases[index]
        let m = try ModelSpec.build(c.model, seed: config.seed)
        let engine = try FDEngine(model: m, policy: config.policy)
        let param = try config.policy.arithmetic(config.policy.param)
        let theta = m.initialParameters(seed: config.seed).map { param.round($0) }
        let n = m.parameterCount
        var g = SplitMix64(seed: derivedSeed(config.seed, "scaling-v"))
        let v = (0..<n).map { _ in 2 * g.nextUniform() - 1 }
        let step = StepPolicy.relative(1e-3)
        let clock = ContinuousClock()
        func median(_ f: () throws -> Void) rethrows -> Double {
            try f()                                              // warm-up
            var ts: [Double] = []
            for _ in 0..<config.repeats { ts.append(seconds(try clock.measure { try f() })) }
            ts.sort()
            return ts.count % 2 == 1 ? ts[ts.count / 2] : (ts[ts.count / 2 - 1] + ts[ts.count / 2]) / 2
        }
        let tGrad = try median { _ = try engine.gradient(theta: theta, shards: c.shards) }
        var tHVP: [Double] = []
        for s in config.schemes { tHVP.append(try median { _ = try engine.estimate(theta: theta, v: v, scheme: s, step: step, shards: c.shards) }) }
        let tExact = median { _ = engine.exactHVP(theta: theta, v: v) }
        // Lanczos phase: peak memory measured around it alone.
        let krylovBytes = try Self.krylovBytes(config.policy)
        MemoryProbe.resetPeak()
        let rss0 = MemoryProbe.current()
        var steps = 0
        let lanczosSeconds = seconds(try clock.measure {
            let traces = try ModelLanczos.run(krylov: config.policy.krylov, mode: config.policy.mode(for: config.policy.krylov),
                                              accumulation: config.policy.krylovAccumulation(), reorthogonalization: .full, steps: config.lanczosSteps, dimension: n, probes: [v],
                                              seed: config.seed) { q in
                (try? engine.estimate(theta: theta, v: q, scheme: .central, step: step, shards: c.shards).hv) ?? q
            }
            steps = traces[0].alpha.count
        })
        let peak = MemoryProbe.peak()
        let model = MemoryModel(n: n, shards: c.shards, computeBytes: engine.computeBytes, krylovBytes: krylovBytes,
                                activations: m.peakGradientValues(shards: c.shards))
        let predicted = model.harnessLanczosBytes(steps: steps)
        let delta = max(peak - rss0, 0)
        let (family, _, _) = BlockDiagonalStudy.shape(m)
        var out = UnitOutput()
        out.append("timings", [c.model, family, "\(n)", "\(m.sampleCount)", config.policy.description, "\(c.shards)", "\(config.repeats)",
                               cell(tGrad)] + tHVP.map(cell) + [cell(tExact), cell(lanczosSeconds / Double(max(steps, 1)))]
                   + tHVP.map { cell($0 / tGrad) } + [cell(tExact / tGrad), "\(steps)", "\(peak)", "\(delta)", "\(predicted)",
                                                     cell(delta > 0 ? Double(predicted) / Double(delta) : .nan)])
        return out
    }

    /// Bytes per value of the policy's Krylov type.
    static func krylovBytes(_ p: PrecisionPolicy) throws -> Int {
        struct Size: ScalarBody { func run<T: StudyScalar>(_: T.Type) -> Int { MemoryLayout<T>.stride } }
        return try ScalarRegistry.run(format: p.krylov, rounding: p.mode(for: p.krylov), Size())
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        let timings = concatenate("timings", timingsHeader, outputs)
        let h = timingsHeader
        let quantities = ["time_grad_s"] + config.schemes.map { "time_hvp_\($0.rawValue)_s" } + ["time_hvp_exact_s", "time_lanczos_step_s"]
        var fits = StudyTable(name: "fits", header: Self.fitsHeader)
        var extrap = StudyTable(name: "extrapolation", header: Self.extrapolationHeader)
        let ni = h.firstIndex(of: "parameters")!, si = h.firstIndex(of: "shards")!
        for s in config.shards {
            let rows = timings.rows.filter { $0[si] == "\(s)" }
            let n = rows.map { Double($0[ni])! }
            for q in quantities {
                let qi = h.firstIndex(of: q)!
                let t = rows.map { Double($0[qi]) ?? .nan }
                guard let f = logLogFit(x: n, y: t) else { continue }
                let a = Double.exp(f.intercept)
                fits.rows.append([q, "\(s)", cell(a), cell(f.slope), cell(f.r2), "\(rows.count)", cell(n.min()), cell(n.max())])
            }
            let mm = { (x: Double) in MemoryModel(n: Int(x), shards: s, computeBytes: 0, krylovBytes: 0, activations: 0) }
            let p = config.policy
            let assumed = "bytes per value as stored natively (param \(p.param) \(MemoryModel.storageBytes(p.param)), compute \(p.compute) "
                + "\(MemoryModel.storageBytes(p.compute)), grad \(p.grad) \(MemoryModel.storageBytes(p.grad)), hvp \(p.hvp) \(MemoryModel.storageBytes(p.hvp)), krylov \(p.krylov) "
                + "\(MemoryModel.storageBytes(p.krylov))); measured only up to \(timings.rows.filter { $0[si] == "\(s)" }.compactMap { Int($0[ni]) }.max() ?? 0) parameters"
            for x in config.extrapolateTo {
                for (reorth, vectors) in [("none", 3), ("full", config.memorySteps + 1), ("partial", config.memorySteps + 1),
                                          ("selective", config.memorySteps + 1)] {
                    let b = mm(x).nativePerShard(policy: config.policy, lanczosVectors: vectors)
                    extrap.rows.append([cell(x), "\(s)", reorth, "\(vectors)", "memory_sharded_per_shard_bytes", cell(b.sharded), "bytes",
                                        "extrapolated: memory model; \(assumed); activations excluded"])
                    extrap.rows.append([cell(x), "\(s)", reorth, "\(vectors)", "memory_unsharded_transient_bytes", cell(b.unsharded), "bytes",
                                        "extrapolated: memory model; \(assumed); full-size buffers (FSDP bounds them by the largest layer)"])
                }
            }
        }
        return StudyOutput(tables: [timings, fits, extrap])
    }
}

/// The memory model of FD-HVP SLQ (central differences).
public struct MemoryModel: Sendable {
    public var n: Int, shards: Int, computeBytes: Int, krylovBytes: Int, activations: Int

    /// The harness's Lanczos phase, all ranks in one process: the Lanczos basis in
    /// the Krylov type plus its fp64 copy for the orthogonality measurement, three
    /// working vectors and the operator's fp64 conversions; per FD-HVP the perturbed
    /// parameters, two gradients, δ and ĥ (fp64 carriers); per rank the all-gathered
    /// parameters (fp64 and compute type), the local gradient (compute type and fp64,
    /// padded) and the activations.
    public func harnessLanczosBytes(steps m: Int) -> Int {
        let basis = (m + 1) * n * (krylovBytes + 8) + 3 * n * krylovBytes + 2 * n * 8
        let fd = n * 8 * 6
        let perRank = shards * n * (8 + computeBytes + computeBytes + 8)
        return basis + fd + perRank + activations * computeBytes
    }

    /// Bytes per shard in the formats' own sizes, activations excluded: `sharded`
    /// scales as 1/S (θ shard, θ±εv, two gradient shards, ĥ, Lanczos vectors);
    /// `unsharded` are the full-size transient buffers (all-gathered θ in the compute
    /// format, the local gradient before reduce-scatter).
    public func nativePerShard(policy p: PrecisionPolicy, lanczosVectors: Int) -> (sharded: Double, unsharded: Double) {
        func b(_ f: String) -> Double { Double(MemoryModel.storageBytes(f)) }
        let shard = Double(n) / Double(shards)
        let sharded = shard * (2 * b(p.param) + 2 * b(p.grad) + b(p.hvp) + Double(lanczosVectors) * b(p.krylov))
        let unsharded = Double(n) * (b(p.compute) + b(p.grad))
        return (sharded, unsharded)
    }
}

extension MemoryModel {
    /// Bytes of one value stored natively: sign + exponent + fraction bits rounded up to
    /// 1, 2, 4 or 8 bytes (FP8 1, bf16 and fp16 2, tf32 as hardware stores it and fp32 4,
    /// fp64 8; user formats alike); mpfrN: N/8 limb bytes + a 16-byte header.
    public static func storageBytes(_ format: String) -> Int {
        let s = format.lowercased()
        if s.hasPrefix("mpfr"), let bits = Int(s.dropFirst(4)) { return bits / 8 + 16 }
        guard let f = try? FloatFormat.parse(s) else { return 8 }
        let range = f.emax - f.emin + 2                           // normal exponents, plus zero/subnormals and specials
        let expBits = Int.bitWidth - (range - 1).leadingZeroBitCount
        let bits = 1 + expBits + f.p - 1
        return bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8
    }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    let (s, a) = d.components
    return Double(s) + Double(a) * 1e-18
}

/// Resident memory of this process (Linux /proc).
public enum MemoryProbe {
    /// Resets the peak RSS (VmHWM) to the current RSS (`5` into /proc/self/clear_refs).
    public static func resetPeak() {
        if let f = fopen("/proc/self/clear_refs", "w") { fputs("5", f); fclose(f) }
    }
    public static func current() -> Int { field("VmRSS:") }
    public static func peak() -> Int { field("VmHWM:") }
    static func field(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0) * 1024
    }
}
