import Foundation
import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// Study `scaling` (NUMERICS.md §9): cost of gradients, FD-HVPs (each scheme), the
/// exact dual HVP and a Lanczos step against the work counted from the architecture, a
/// cost model fitted on the small sizes and checked on held-out large ones, and a memory
/// model of FD-HVP SLQ checked against measured peak RSS.
///
/// Units run one at a time (``exclusive``), in `repeats` rounds (``units``): each round
/// times every quantity of every configuration once, and a timing is the median over the
/// rounds (the Lanczos step the mean over one run); the first round measures memory — the
/// process's peak RSS (`VmHWM`, reset through `/proc/self/clear_refs` before each phase) —
/// and warms up the timings. Timing and memory columns are measurements and, unlike the
/// other studies' tables, not byte-reproducible.
///
/// Tables:
/// - `timings.csv`: per model × shards: the gradient's counted work (`flops_grad`,
///   `bytes_grad`, `flops_gemm_grad` of it in BLAS products) and `gemm_s_grad` (those
///   products timed at their shapes, `gemm.csv`; the unsharded gradient's products also on
///   rows with shards > 1), the exact HVP's logged work (`flops_gemm_exact` in real BLAS
///   products, `bytes_dual_pass` moved by its dual products' split and merge passes) and
///   `gemm_s_exact` (those products timed at their shapes), `pass_grad_s` and `pass_hvp_s` per scheme (the O(n) passes
///   around the model's gradients timed alone, ``PassCalibration``), `time_grad_s`, `time_hvp_s` per scheme
///   (`time_hvp_forward_s`, …), `time_hvp_exact_s` (dual numbers, unsharded),
///   `grad_rss_delta_bytes` (one gradient's peak RSS above the RSS before it),
///   `activation_values` (the model's count of compute values alive at a gradient's peak),
///   `time_lanczos_step_s` (central FD-HVP, full reorthogonalization, `lanczos_steps`
///   steps), `hvp_over_grad` per scheme, `peak_rss_bytes`, `rss_delta_bytes` (peak
///   minus RSS at the unit's start) and `mem_model_bytes`: the memory model of the
///   Lanczos phase in the harness's own representation (fp64 carriers for
///   param/grad/hvp stages, the compute and Krylov types' sizes, all S ranks in one
///   process), with `mem_model_ratio = mem_model_bytes / rss_delta_bytes`.
/// - `rounds.csv`: every round's seconds per model × shards and quantity (and the
///   gradient's products together, `gemm_s_grad`, the exact HVP's, `gemm_s_exact`, and the pass seconds): the spread
///   behind each median.
/// - `gemm.csv`: every product shape of every model and extrapolation target, how often one
///   gradient (`count`) and one exact HVP (`exact_count`) run it, its seconds (the median over the rounds) and GFLOP/s (``GemmCalibration``).
/// - `costmodel.csv`: per quantity, family and shard count, the ``CostModel``
///   `t ≈ c_gemm·G + c_f·F_o + c_b·B + c_pass·P + c_0` (features: ``features(quantity:flops:gemmFlops:gemmSeconds:bytes:n:cb:kb:steps:passes:exact:)``)
///   with c_gemm = c_pass = 1 fixed beforehand (G and P are seconds of the same work
///   timed alone; for the exact HVP, G is its own real products') and c_f, c_b, c_0 fitted on the sizes up to `fit_max_parameters`;
///   `predictions.csv` every size's prediction, role `fit` or `held-out`.
/// - `fits.csv`: the exponent of time against the quantity's FLOPs (and against its
///   products' measured seconds) in the compute-bound range (`compute_bound_min_parameters`
///   up): descriptive, never extrapolated.
/// - `extrapolation.csv`: times of `extrapolate_models` (architectures never run) from the
///   cost model of their family, only where it was checked on held-out sizes; the native
///   memory model per shard (formats' own byte sizes; activations excluded) at
///   `extrapolate_to` parameters for each shard count and reorthogonalization (none: 3
///   Lanczos vectors; full/partial/selective: `memory_steps` + 1 stored vectors). Every row
///   is labelled with its assumptions.
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
        /// The cost model is fitted on the configurations of at most this many parameters;
        /// larger ones are held out and predicted.
        public var fitMaxParameters: Double
        /// The power law of time against FLOPs is fitted on configurations of at least this
        /// many parameters (the compute-bound range).
        public var computeBoundMinParameters: Double
        /// Architectures (model specs, never run) whose time per gradient, FD-HVP and
        /// Lanczos step the validated cost model of their family predicts.
        public var extrapolateModels: [String]
        public var seed: UInt64
        public init(models: [String], policy: PrecisionPolicy, shards: [Int], schemes: [FDScheme], repeats: Int = 5,
                    lanczosSteps: Int = 10, memorySteps: Int = 100, extrapolateTo: [Double] = [1e9, 1e10, 1e11],
                    fitMaxParameters: Double = 1e7, computeBoundMinParameters: Double = 1e6, extrapolateModels: [String] = [],
                    seed: UInt64 = 0) {
            self.models = models; self.policy = policy; self.shards = shards; self.schemes = schemes; self.repeats = repeats
            self.lanczosSteps = lanczosSteps; self.memorySteps = memorySteps; self.extrapolateTo = extrapolateTo
            self.fitMaxParameters = fitMaxParameters; self.computeBoundMinParameters = computeBoundMinParameters
            self.extrapolateModels = extrapolateModels; self.seed = seed
        }
    }
    public let config: Config
    public let name = "scaling"
    public var exclusive: Bool { true }
    struct Case: Sendable { var model: String; var shards: Int }
    let cases: [Case]
    let sizes: [String: Int]
    struct Target: Sendable { var spec: String; var family: String; var parameters: Int; var work: GradientWork }
    let targets: [Target]

    public init(_ c: Config) throws {
        guard c.models.count >= 2, !c.shards.isEmpty, !c.schemes.isEmpty else {
            throw StudyError("scaling needs at least two models (for the fits), one shard count and one scheme")
        }
        guard c.shards.allSatisfy({ $0 >= 1 && $0 <= 64 }) else { throw StudyError("shards must be in 1...64") }
        guard c.repeats >= 1, c.lanczosSteps >= 1, c.memorySteps >= 1 else { throw StudyError("repeats, lanczos_steps and memory_steps must be ≥ 1") }
        guard c.extrapolateTo.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw StudyError("extrapolate_to values must be finite and > 0") }
        guard c.fitMaxParameters > 0, c.computeBoundMinParameters >= 0 else {
            throw StudyError("fit_max_parameters must be > 0 and compute_bound_min_parameters ≥ 0")
        }
        var sz: [String: Int] = [:]
        for m in c.models {
            do { sz[m] = try ModelSpec.architecture(m).parameterCount } catch { throw StudyError("model '\(m)': \(error)") }
        }
        var targets: [Target] = []
        for m in c.extrapolateModels {
            let model: any DifferentiableModel
            do { model = try ModelSpec.architecture(m) } catch { throw StudyError("extrapolate_models '\(m)': \(error)") }
            guard let w = model.gradientWork() else { throw StudyError("extrapolate_models '\(m)': its cost is not modelled (no gradientWork)") }
            targets.append(Target(spec: m, family: model.describe().family, parameters: model.parameterCount, work: w))
        }
        config = c; sizes = sz; self.targets = targets
        cases = c.models.flatMap { m in c.shards.map { Case(model: m, shards: $0) } }
    }

    /// `repeats` rounds, round-major: each round one unit per model and shard count, then
    /// one per extrapolation target (its products timed at their shapes, nothing else run).
    /// A unit of round r times every quantity once; ``finish(_:)`` takes the median over
    /// the rounds. Rounds spread each configuration's timings over the whole run, so a
    /// slow phase of a shared machine lasting minutes inflates one of its timings, not all
    /// of them (timed back to back, a 1.5·10⁸-parameter FD-HVP once measured 11.8 s where
    /// a repeat 20 minutes later took 9.0 s).
    public var units: [StudyUnit] {
        (0..<config.repeats).flatMap { r in
            cases.map { StudyUnit(key: "\($0.model)|\($0.shards)|round \(r + 1)") } + targets.map { StudyUnit(key: "products|\($0.spec)|round \(r + 1)") }
        }
    }
    public var seeds: [String: UInt64] { ["seed": config.seed] }

    public var timingsHeader: [String] {
        ["model", "family", "parameters", "samples", "tokens", "flops_grad", "bytes_grad", "flops_gemm_grad", "gemm_s_grad",
         "flops_gemm_exact", "bytes_dual_pass", "gemm_s_exact"] + passQuantities + ["policy", "shards", "repeats", "time_grad_s"]
            + config.schemes.map { "time_hvp_\($0.rawValue)_s" } + ["time_hvp_exact_s", "time_lanczos_step_s"]
            + config.schemes.map { "hvp_over_grad_\($0.rawValue)" } + ["hvp_over_grad_exact", "lanczos_steps",
            "grad_rss_delta_bytes", "activation_values", "peak_rss_bytes", "rss_delta_bytes", "mem_model_bytes", "mem_model_ratio"]
    }
    public static let fitsHeader = ["quantity", "family", "shards", "exponent_vs_flops", "fit_r2", "exponent_vs_gemm_s", "points", "n_min", "n_max"]
    public static let costModelHeader = ["quantity", "family", "shards", "c_gemm", "c_flop_s", "c_byte_s", "c_pass", "c_0_s", "fit_points", "fit_rms_rel",
                                         "n_min", "n_max"]
    public static let predictionsHeader = ["model", "family", "parameters", "shards", "quantity", "flops", "gemm_s", "other_flops", "bytes", "pass_s",
                                           "measured_s", "predicted_s", "pred_over_meas", "role"]
    public static let gemmHeader = ["model", "m", "k", "n", "trans_a", "trans_b", "count", "exact_count", "seconds", "gflop_s"]
    public static let extrapolationHeader = ["model", "family", "parameters", "flops", "shards", "reorth", "lanczos_vectors", "quantity", "value", "unit",
                                             "label"]

    /// Times each product of `work` and of the exact HVP (`exact`, its real products as
    /// logged) at its shape once (``GemmCalibration``, one batch after its warm-up): the
    /// `gemm_round` rows of `model` in this round, each shape with how often the gradient
    /// and the exact HVP run it.
    func timeProducts(_ work: GradientWork, exact: [GemmShape: Int] = [:], model: String, shards: Int, round: Int,
                      into out: inout UnitOutput) throws {
        for shape in Set(work.products.keys).union(exact.keys).sorted() {
            let t = try GemmCalibration.measure(shape, policy: config.policy, repeats: 1)
            out.append("gemm_round", [model, "\(shards)", "\(round + 1)", "\(shape.m)", "\(shape.k)", "\(shape.n)", shape.transA ? "T" : "N",
                                      shape.transB ? "T" : "N", "\(work.products[shape] ?? 0)", "\(exact[shape] ?? 0)", cell(t)])
        }
    }

    /// A unit of round `r`: every quantity of its configuration timed once (the first
    /// round also measures memory, before any timing, and is the warm-up of later ones).
    /// Rows: `time_round` (this round's seconds per quantity), `gemm_round` (its products'
    /// seconds per shape) and, in the first round, `memory` (work counts and memory).
    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        var out = UnitOutput()
        let perRound = cases.count + targets.count
        let round = index / perRound, j = index % perRound
        guard j < cases.count else {
            let t = targets[j - cases.count]
            try timeProducts(t.work, model: t.spec, shards: 1, round: round, into: &out)
            return out
        }
        let c = cases[j]
        let m = try ModelSetup.build(c.model, seed: config.seed, param: config.policy.param)
        let engine = try FDEngine(model: m, policy: config.policy)
        let theta = ModelSetup.parameters(m, seed: config.seed, param: try config.policy.arithmetic(config.policy.param))
        let n = m.parameterCount
        var g = SplitMix64(seed: derivedSeed(config.seed, "scaling-v"))
        let v = (0..<n).map { _ in 2 * g.nextUniform() - 1 }
        let step = StepPolicy.relative(1e-3)
        let clock = ContinuousClock()
        var steps = 0
        func lanczos() throws {
            let traces = try ModelLanczos.run(krylov: config.policy.krylov, mode: config.policy.mode(for: config.policy.krylov),
                                              accumulation: config.policy.krylovAccumulation(), reorthogonalization: .full, steps: config.lanczosSteps, dimension: n, probes: [v],
                                              seed: config.seed) { q in
                (try? engine.estimate(theta: theta, v: q, scheme: .central, step: step, shards: c.shards).hv) ?? q
            }
            steps = traces[0].alpha.count
        }
        let work = m.gradientWork()
        if round == 0 {
            // One gradient's own peak above the RSS before it (its activations, conversions
            // and result); then the Lanczos phase's peak around a run alone (the heap's
            // free pages returned first). Both also warm up what this round then times:
            // the executables keep freed memory (``ProcessAllocator``), so the timed calls
            // reuse these pages, and later rounds (which never return memory) the pages of
            // every configuration before them.
            MemoryProbe.releaseFreedMemory()
            MemoryProbe.resetPeak()
            let gradRSS0 = MemoryProbe.current()
            _ = try engine.gradient(theta: theta, shards: c.shards)
            let gradDelta = max(MemoryProbe.peak() - gradRSS0, 0)
            MemoryProbe.releaseFreedMemory()
            MemoryProbe.resetPeak()
            let rss0 = MemoryProbe.current()
            try lanczos()
            let peak = MemoryProbe.peak()
            // Warm-up of the dual numbers' pages, its products logged: the exact HVP's
            // real products (FLOPs) and its dual products' split and merge bytes.
            let exactLog = GemmLog()
            Kernels.$gemmLog.withValue(exactLog) { _ = engine.exactHVP(theta: theta, v: v) }
            let exactGemmFlops = exactLog.counts.reduce(0.0) { $0 + $1.key.flops * Double($1.value) }
            let krylovBytes = try Self.bytes(config.policy, config.policy.krylov)
            let predicted = MemoryModel(n: n, shards: c.shards, computeBytes: engine.computeBytes, krylovBytes: krylovBytes,
                                        activations: m.peakGradientValues(shards: c.shards)).harnessLanczosBytes(steps: steps)
            let delta = max(peak - rss0, 0)
            out.append("memory", [c.model, m.describe().family, "\(n)", "\(m.sampleCount)", work.map { "\($0.tokens)" } ?? "",
                                  cell(work?.flops), cell(work.map { $0.values * Double(engine.computeBytes) }), cell(work?.gemmFlops),
                                  cell(exactGemmFlops), cell(exactLog.dualPassBytes(componentBytes: engine.computeBytes)),
                                  config.policy.description, "\(c.shards)", "\(steps)", "\(gradDelta)", "\(m.peakGradientValues(shards: c.shards))",
                                  "\(peak)", "\(delta)", "\(predicted)", cell(delta > 0 ? Double(predicted) / Double(delta) : .nan)])
        }
        var seconds: [Double] = [try clock.measure { _ = try engine.gradient(theta: theta, shards: c.shards) }.seconds]
        for s in config.schemes {
            seconds.append(try clock.measure { _ = try engine.estimate(theta: theta, v: v, scheme: s, step: step, shards: c.shards) }.seconds)
        }
        let exactLog = GemmLog()
        seconds.append(clock.measure { Kernels.$gemmLog.withValue(exactLog) { _ = engine.exactHVP(theta: theta, v: v) } }.seconds)
        let lanczosSeconds = try clock.measure { try lanczos() }.seconds
        seconds.append(lanczosSeconds / Double(max(steps, 1)))
        // The passes around the model's gradients, timed alone at this θ and v.
        let passes = try PassCalibration.measure(theta: theta, v: v, policy: config.policy, schemes: passSchemes, step: step, shards: c.shards)
        seconds += [passes.gradient] + passes.hvp
        for (q, t) in zip(quantities + passQuantities, seconds) { out.append("time_round", [c.model, "\(c.shards)", "\(round + 1)", q, cell(t)]) }
        // The gradient's and the exact HVP's products timed at their shapes, after
        // everything else (the first round's memory was measured without them).
        if let w = work { try timeProducts(w, exact: exactLog.counts, model: c.model, shards: c.shards, round: round, into: &out) }
        return out
    }

    /// The timed quantities, in the order of `timings.csv`'s columns.
    var quantities: [String] { ["time_grad_s"] + config.schemes.map { "time_hvp_\($0.rawValue)_s" } + ["time_hvp_exact_s", "time_lanczos_step_s"] }
    /// The pass seconds (``PassCalibration``), in the order of `timings.csv`'s columns.
    var passQuantities: [String] { ["pass_grad_s"] + passSchemes.map { "pass_hvp_\($0.rawValue)_s" } }
    /// The schemes whose passes are timed: the study's and central (the Lanczos step's).
    var passSchemes: [FDScheme] { config.schemes.contains(.central) ? config.schemes : config.schemes + [.central] }

    /// Bytes per value of a format of the policy as the harness holds it.
    public static func bytes(_ p: PrecisionPolicy, _ format: ScalarFormat) throws -> Int {
        struct Size: ScalarBody { func run<T: ComputeScalar>(_: T.Type) -> Int { MemoryLayout<T>.stride } }
        return try ScalarRegistry.run(format: format, rounding: p.mode(for: format), Size())
    }

    /// The cost model's features `[G, F_o, B, P]` of one quantity and its FLOPs, from one
    /// gradient's work: its BLAS products timed at their shapes (G seconds, ``GemmCalibration``),
    /// its FLOPs F of which F_o = F − (the products' FLOPs) are not BLAS products
    /// (attention's dot products), its bytes B in the compute type of `cb` bytes per value,
    /// the parameter count n, the Krylov type's `kb` bytes per value, the Lanczos steps m
    /// and the pass seconds P timed alone (``PassCalibration``; `passes` by column name,
    /// `pass_grad_s`, `pass_hvp_<scheme>_s`):
    /// - gradient: [G, F_o, B, P_grad] (P_grad: θ into the compute type and the result back);
    /// - FD-HVP of a scheme with g gradients: [g·G, g·F_o, g·B, P_scheme]: its gradients
    ///   read the points directly, and P_scheme is everything around them (points, ε,
    ///   accounting, quotient);
    /// - exact HVP (forward-over-reverse in dual numbers of the compute type), from `exact`,
    ///   what its run logged (``GemmLog``): [G_x, 3·F_o, 2·B + D, 0] with G_x its real BLAS
    ///   products timed at their shapes (under `blas` a dual product is two or three of them:
    ///   value AB and tangent A'B + AB', a zero tangent's term skipped), F_o the non-product
    ///   FLOPs in dual arithmetic (a dual multiply–add is three real ones; all of F where no
    ///   product runs through BLAS, as with accumulation other than `blas`), 2·B the
    ///   gradient's values held as dual pairs and D the bytes of the dual products' split and
    ///   merge passes (``GemmLog/dualPassBytes(componentBytes:)``); its FLOPs are the
    ///   products' plus 3·F_o. Nil without `exact` (an architecture never run). Before
    ///   92b93d3 the form was [0, 3F, 16/cb · B, 0], the products' throughput left to one
    ///   fitted cost per FLOP; its held-out misses (0.70–1.31) were mostly the exact HVP's
    ///   own unspecialized loops (the old form fits that commit's timings to 0.92–1.09), and
    ///   this form is kept because its largest term is measured, not fitted;
    /// - Lanczos step (central FD-HVP, full reorthogonalization over m steps): the central
    ///   FD-HVP's features plus 8n·3 bytes for the three-term recurrence and kb·n·2(m + 1)
    ///   for the projections against the mean (m + 1)/2 stored vectors, read twice each.
    /// Nil for an unknown quantity or a missing pass time.
    public static func features(quantity q: String, flops f: Double, gemmFlops fg: Double, gemmSeconds g0: Double, bytes b: Double, n: Double,
                                cb: Double, kb: Double, steps m: Double, passes: [String: Double],
                                exact: (gemmFlops: Double, gemmSeconds: Double, dualPassBytes: Double)? = nil) -> (features: [Double], flops: Double)? {
        let fo = max(f - fg, 0)
        switch q {
        case "time_grad_s":
            guard let p = passes["pass_grad_s"] else { return nil }
            return ([g0, fo, b, p], f)
        case "time_hvp_exact_s":
            guard let x = exact else { return nil }
            let other = x.gemmFlops > 0 ? 3 * fo : 3 * f                  // no BLAS products run: all of it in dual arithmetic
            return ([x.gemmSeconds, other, 2 * b + x.dualPassBytes, 0], x.gemmFlops + other)
        case "time_lanczos_step_s":
            guard let p = passes["pass_hvp_central_s"] else { return nil }
            return ([2 * g0, 2 * fo, 2 * b + 8 * n * 3 + kb * n * 2 * (m + 1), p], 2 * f)
        default:
            guard q.hasPrefix("time_hvp_"), let s = FDScheme(rawValue: String(q.dropFirst(9).dropLast(2))),
                  let p = passes["pass_hvp_\(s.rawValue)_s"] else { return nil }
            let g = Double(s.gradients)
            return ([g * g0, g * fo, g * b, p], g * f)
        }
    }

    /// The coefficients fixed before the fit: the products' and the passes' (features 0
    /// and 3), both seconds of the same work timed alone (``CostModel/fit(features:time:fixed:)``).
    public static let pinnedCoefficients: [Int: Double] = [0: 1, 3: 1]

    public static let roundsHeader = ["model", "shards", "round", "quantity", "seconds"]

    /// Assembles `timings.csv` (the median over the rounds of each quantity, and of each
    /// product shape's seconds in `gemm.csv`), `rounds.csv` (every round's seconds, the
    /// spread behind each median, with `gemm_s_grad` per round) and the fits.
    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        let timeRows = outputs.flatMap { $0.tables["time_round"] ?? [] }       // model, shards, round, quantity, seconds
        let gemmRows = outputs.flatMap { $0.tables["gemm_round"] ?? [] }       // model, shards, round, m, k, n, tA, tB, count, exact count, seconds
        var rounds = StudyTable(name: "rounds", header: Self.roundsHeader, rows: timeRows)
        var perQuantity: [String: [Double]] = [:]                                // "model|shards|quantity"
        for r in timeRows { perQuantity["\(r[0])|\(r[1])|\(r[3])", default: []].append(Double(r[4])!) }
        // Products: the median per (configuration, shape) over the rounds, in the order first run.
        var shapeOrder: [String] = [], shapeSeconds: [String: [Double]] = [:], shapeRow: [String: [String]] = [:]
        var roundProducts: [String: Double] = [:], roundExact: [String: Double] = [:]   // "model|shards|round": Σ count·seconds
        for r in gemmRows {
            let key = ([r[0], r[1]] + r[3...9]).joined(separator: "|")
            if shapeSeconds[key] == nil { shapeOrder.append(key); shapeRow[key] = r }
            shapeSeconds[key, default: []].append(Double(r[10])!)
            roundProducts["\(r[0])|\(r[1])|\(r[2])", default: 0] += Double(r[8])! * Double(r[10])!
            roundExact["\(r[0])|\(r[1])|\(r[2])", default: 0] += Double(r[9])! * Double(r[10])!
        }
        var gemm = StudyTable(name: "gemm", header: Self.gemmHeader)
        var productSeconds: [String: Double] = [:], exactSeconds: [String: Double] = [:]   // "model|shards": one gradient's G, one exact HVP's
        for key in shapeOrder {
            let r = shapeRow[key]!, t = median(shapeSeconds[key]!)
            let flops = 2 * Double(r[3])! * Double(r[4])! * Double(r[5])!
            gemm.rows.append([r[0], r[3], r[4], r[5], r[6], r[7], r[8], r[9], cell(t), cell(flops / t / 1e9)])
            productSeconds["\(r[0])|\(r[1])", default: 0] += Double(r[8])! * t
            exactSeconds["\(r[0])|\(r[1])", default: 0] += Double(r[9])! * t
        }
        for r in timeRows where r[3] == quantities[0] {
            let k = "\(r[0])|\(r[1])|\(r[2])"
            if let g = roundProducts[k] { rounds.rows.append([r[0], r[1], r[2], "gemm_s_grad", cell(g)]) }
            if let g = roundExact[k] { rounds.rows.append([r[0], r[1], r[2], "gemm_s_exact", cell(g)]) }
        }
        var timings = StudyTable(name: "timings", header: timingsHeader)
        for m in outputs.flatMap({ $0.tables["memory"] ?? [] }) {
            // model, family, n, samples, tokens, flops, bytes, gemm flops, exact gemm flops, dual pass bytes,
            // policy, shards, steps, then memory
            let key = "\(m[0])|\(m[11])"
            let t = quantities.map { median(perQuantity["\(key)|\($0)"] ?? []) }
            let grad = t[0], hvps = Array(t[1...config.schemes.count]), exact = t[config.schemes.count + 1]
            let passes = passQuantities.map { median(perQuantity["\(key)|\($0)"] ?? []) }
            timings.rows.append(Array(m[0...7]) + [cell(productSeconds[key]), m[8], m[9], cell(exactSeconds[key])] + passes.map(cell)
                                + [m[10], m[11], "\(config.repeats)"] + t.map(cell) + hvps.map { cell($0 / grad) } + [cell(exact / grad)] + Array(m[12...]))
        }
        let h = timingsHeader
        var fits = StudyTable(name: "fits", header: Self.fitsHeader)
        var costs = StudyTable(name: "costmodel", header: Self.costModelHeader)
        var preds = StudyTable(name: "predictions", header: Self.predictionsHeader)
        var extrap = StudyTable(name: "extrapolation", header: Self.extrapolationHeader)
        func col(_ name: String) -> Int { h.firstIndex(of: name)! }
        let ni = col("parameters"), si = col("shards"), fi = col("family"), mi = col("model")
        let flopsI = col("flops_grad"), bytesI = col("bytes_grad"), stepsI = col("lanczos_steps")
        let gemmFlopsI = col("flops_gemm_grad"), gemmSI = col("gemm_s_grad")
        let exactFlopsI = col("flops_gemm_exact"), exactSI = col("gemm_s_exact"), dualI = col("bytes_dual_pass")
        let passI = passQuantities.map { ($0, col($0)) }
        func passes(_ r: [String]) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: passI.compactMap { q, i in Double(r[i]).map { (q, $0) } })
        }
        let cb = Double(try Self.bytes(config.policy, config.policy.compute)), kb = Double(try Self.bytes(config.policy, config.policy.krylov))
        struct Fitted { var model: CostModel; var nMin: Double; var nMax: Double; var heldOut: [Double]; var measuredMax: Double }
        var fitted: [String: Fitted] = [:]                         // "quantity|family|shards"
        let families = timings.rows.map { $0[fi] }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for s in config.shards {
            for fam in families {
                let rows = timings.rows.filter { $0[si] == "\(s)" && $0[fi] == fam && Double($0[flopsI]) != nil && Double($0[gemmSI]) != nil }
                guard !rows.isEmpty else { continue }
                for q in quantities {
                    let qi = col(q)
                    let x: [(n: Double, f: Double, x: [Double], t: Double, row: [String])] = rows.compactMap { r in
                        let n = Double(r[ni])!
                        guard let fx = Self.features(quantity: q, flops: Double(r[flopsI])!, gemmFlops: Double(r[gemmFlopsI]) ?? 0,
                                                     gemmSeconds: Double(r[gemmSI])!, bytes: Double(r[bytesI])!,
                                                     n: n, cb: cb, kb: kb, steps: Double(r[stepsI]) ?? 0, passes: passes(r),
                                                     exact: (Double(r[exactFlopsI]) ?? 0, Double(r[exactSI]) ?? 0, Double(r[dualI]) ?? 0)) else { return nil }
                        return (n, fx.flops, fx.features, Double(r[qi]) ?? .nan, r)
                    }
                    // Power law against FLOPs in the compute-bound range.
                    let cbRows = x.filter { $0.n >= config.computeBoundMinParameters }
                    if let lf = logLogFit(x: cbRows.map(\.f), y: cbRows.map(\.t)) {
                        // Against the products' measured seconds: near 1 when time follows what
                        // the BLAS delivers at each shape (empty where the quantity runs none).
                        let lg = logLogFit(x: cbRows.map { $0.x[0] }, y: cbRows.map(\.t))
                        fits.rows.append([q, fam, "\(s)", cell(lf.slope), cell(lf.r2), lg.map { cell($0.slope) } ?? "", "\(cbRows.count)",
                                          cell(cbRows.map(\.n).min()), cell(cbRows.map(\.n).max())])
                    }
                    // Cost model on the sizes up to fitMaxParameters; every row predicted.
                    let fitRows = x.filter { $0.n <= config.fitMaxParameters }
                    guard let cm = CostModel.fit(features: fitRows.map(\.x), time: fitRows.map(\.t), fixed: Self.pinnedCoefficients) else { continue }
                    costs.rows.append([q, fam, "\(s)"] + cm.coefficients.map(cell) + [cell(cm.fixed), "\(cm.points)", cell(cm.rmsRelative),
                                       cell(fitRows.map(\.n).min()), cell(fitRows.map(\.n).max())])
                    var held: [Double] = []
                    for p in x {
                        let pred = cm.predict(p.x)
                        let ratio = p.t > 0 ? pred / p.t : .nan
                        let role = p.n <= config.fitMaxParameters ? "fit" : "held-out"
                        if role == "held-out" { held.append(ratio) }
                        preds.rows.append([p.row[mi], fam, p.row[ni], "\(s)", q, cell(p.f)] + p.x.map(cell) + [cell(p.t), cell(pred), cell(ratio), role])
                    }
                    fitted["\(q)|\(fam)|\(s)"] = Fitted(model: cm, nMin: fitRows.map(\.n).min()!, nMax: fitRows.map(\.n).max()!, heldOut: held,
                                                          measuredMax: x.map(\.n).max()!)
                }
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
                    extrap.rows.append(["", "", cell(x), "", "\(s)", reorth, "\(vectors)", "memory_sharded_per_shard_bytes", cell(b.sharded), "bytes",
                                        "extrapolated: memory model; \(assumed); activations excluded"])
                    extrap.rows.append(["", "", cell(x), "", "\(s)", reorth, "\(vectors)", "memory_unsharded_transient_bytes", cell(b.unsharded), "bytes",
                                        "extrapolated: memory model; \(assumed); full-size buffers (FSDP bounds them by the largest layer)"])
                }
            }
        }
        // Times of architectures never run: the cost model of their family at one shard,
        // only where that model was checked on held-out sizes.
        let mdl = Self.gemmHeader.firstIndex(of: "model")!, cnt = Self.gemmHeader.firstIndex(of: "count")!,
            sec = Self.gemmHeader.firstIndex(of: "seconds")!
        // The passes are streams over n values: at a target, n times their seconds per
        // parameter measured on the configurations of at least 10⁷ parameters (beyond the
        // caches; the largest one alone if none is that large), the median over them.
        let oneShard = timings.rows.filter { $0[si] == "1" }
        let large = oneShard.filter { (Double($0[ni]) ?? 0) >= 1e7 }
        let passRows = large.isEmpty ? Array(oneShard.max { Double($0[ni])! < Double($1[ni])! }.map { [$0] } ?? []) : large
        var passPerParameter: [String: Double] = [:]
        for (q, i) in passI {
            let r = passRows.compactMap { row in Double(row[i]).map { $0 / Double(row[ni])! } }
            if !r.isEmpty { passPerParameter[q] = median(r) }
        }
        let passBasis = "the O(n) passes at \(passRows.count) measured size(s) of \(passRows.compactMap { Int($0[ni]) }.min() ?? 0)–"
            + "\(passRows.compactMap { Int($0[ni]) }.max() ?? 0) parameters scaled by n (median seconds per parameter)"
        for t in targets {
            let products = gemm.rows.filter { $0[mdl] == t.spec }
            let g0 = products.reduce(0.0) { $0 + Double($1[cnt])! * Double($1[sec])! }
            for q in quantities {
                guard !products.isEmpty, let f = fitted["\(q)|\(t.family)|1"], !f.heldOut.isEmpty,
                      let fx = Self.features(quantity: q, flops: t.work.flops, gemmFlops: t.work.gemmFlops, gemmSeconds: g0,
                                             bytes: t.work.values * cb, n: Double(t.parameters), cb: cb, kb: kb,
                                             steps: Double(config.lanczosSteps),
                                             passes: passPerParameter.mapValues { $0 * Double(t.parameters) }) else { continue }
                let lo = f.heldOut.min()!, hi = f.heldOut.max()!
                let label = "extrapolated: cost model (its BLAS products timed at their shapes on this machine, gemm.csv) + c_f·(other FLOPs) "
                    + "+ c_b·bytes + (\(passBasis)) + c_0 of family \(t.family) fitted on \(Int(f.nMin))–\(Int(f.nMax)) parameters "
                    + "(predicted/measured \(String(format: "%.2f", lo))–\(String(format: "%.2f", hi)) on its held-out sizes up to "
                    + "\(Int(f.measuredMax))); "
                    + "\(t.work.tokens) tokens per batch; FLOPs and bytes counted for this architecture; this machine's measured throughput "
                    + "(the manifest's CPU, cores, BLAS threads); policy \(config.policy.description); one process, no communication"
                    + (q == "time_lanczos_step_s" ? "; full reorthogonalization averaged over \(config.lanczosSteps) steps" : "")
                extrap.rows.append([t.spec, t.family, "\(t.parameters)", cell(fx.flops), "1", q == "time_lanczos_step_s" ? "full" : "",
                                    q == "time_lanczos_step_s" ? "\(config.lanczosSteps + 1)" : "", q,
                                    cell(f.model.predict(fx.features)), "s", label])
            }
        }
        return StudyOutput(tables: [timings, rounds, gemm, fits, costs, preds, extrap])
    }
}

/// The memory model of FD-HVP SLQ (central differences).
public struct MemoryModel: Sendable {
    public var n: Int, shards: Int, computeBytes: Int, krylovBytes: Int, activations: Int

    /// The harness's Lanczos phase above the RSS at its start, `steps` = m steps of
    /// central FD-HVPs with full reorthogonalization, counted from what the code holds
    /// (one shard; validated against peak RSS at 10⁸ parameters, ``ScalingStudy``):
    /// - Lanczos: the basis (m vectors of the Krylov type, q and q_prev among them) and w:
    ///   kb·n·(m + 1); the operator's fp64 copy of its input, 8n;
    /// - the FD-HVP at its peak, the larger of two moments: forming the quotient (both
    ///   points, both gradients in the compute type, ĥ in fp64: n·(4·cb + 8)) or the
    ///   second gradient (both points and the first gradient, 3·cb·n, plus the gradient's
    ///   own peak, `activations` values of the compute type, less the point it reads).
    /// With S > 1 in-process shards each rank also all-gathers θ (fp64 and compute type)
    /// and keeps its padded gradient (compute type and fp64): S·n·(16 + 2·cb), counted,
    /// not validated.
    public func harnessLanczosBytes(steps m: Int) -> Int {
        let lanczos = krylovBytes * n * (m + 1) + 8 * n
        let quotient = n * (4 * computeBytes + 8)
        let secondGradient = 3 * computeBytes * n + computeBytes * max(activations - n, 0)
        let perRank = shards > 1 ? shards * n * (16 + 2 * computeBytes) : 0
        return lanczos + max(quotient, secondGradient) + perRank
    }

    /// Bytes per shard in the formats' own sizes, activations excluded: `sharded`
    /// scales as 1/S (θ shard, θ±εv, two gradient shards, ĥ, Lanczos vectors);
    /// `unsharded` are the full-size transient buffers (all-gathered θ in the compute
    /// format, the local gradient before reduce-scatter).
    public func nativePerShard(policy p: PrecisionPolicy, lanczosVectors: Int) -> (sharded: Double, unsharded: Double) {
        func b(_ f: ScalarFormat) -> Double { Double(MemoryModel.storageBytes(f)) }
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
    public static func storageBytes(_ format: String) -> Int { (try? ScalarFormat(format)).map { storageBytes($0) } ?? 8 }

    public static func storageBytes(_ format: ScalarFormat) -> Int {
        let f: FloatFormat
        switch format.kind {
        case .mpfr(let bits): return bits / 8 + 16
        case .binary(let b): f = b
        }
        let range = f.emax - f.emin + 2                           // normal exponents, plus zero/subnormals and specials
        let expBits = Int.bitWidth - (range - 1).leadingZeroBitCount
        let bits = 1 + expBits + f.p - 1
        return bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8
    }
}

/// The median (the mean of the middle two for an even count); NaN when empty.
public func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

extension Duration {
    /// The duration in seconds (the studies' timings, and through `Harness` the commands' and benchmarks').
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

#if os(Linux)
/// glibc's `malloc_trim` (not exported by the Glibc module's headers).
@_silgen_name("malloc_trim") private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// Resident memory of this process (Linux /proc).
public enum MemoryProbe {
    /// Resets the peak RSS (VmHWM) to the current RSS (`5` into /proc/self/clear_refs).
    public static func resetPeak() {
        if let f = fopen("/proc/self/clear_refs", "w") { fputs("5", f); fclose(f) }
    }

    /// Returns the heap's free pages to the system (`malloc_trim`). Before measuring what
    /// a stage holds: memory freed earlier but kept by the allocator (a checkpoint's
    /// dequantization buffers, 7.6 GB for SmolLM2) would otherwise count in the starting
    /// RSS and be reused unseen. Not before a timed stage: the executables keep freed
    /// memory (``ProcessAllocator``) so that a stage reuses its predecessor's pages
    /// instead of faulting in fresh ones, and trimming undoes that (on a VM whose fresh
    /// pages cost ~2 s per GB, SmolLM2's FD-HVP paid seconds for it).
    public static func releaseFreedMemory() {
        #if os(Linux)
        _ = glibcMallocTrim(0)
        #endif
    }
    public static func current() -> Int { field("VmRSS:") }
    public static func peak() -> Int { field("VmHWM:") }
    static func field(_ name: String) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        return field(name, in: s)
    }
    /// Bytes of a `/proc/PID/status` field such as `VmHWM:\t 9425768 kB`. The kernel
    /// prints the number right-aligned in 8 columns after a tab, so from 10⁷ kB (10 GB)
    /// on no space separates it from the tab: split on both (splitting on spaces alone
    /// read every peak above 10 GB as 0).
    static func field(_ name: String, in status: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }) else { return 0 }
        let words = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard let number = words.first.flatMap({ Int($0) }) else { return 0 }
        return number * (words.dropFirst().first == "kB" ? 1024 : 1)
    }
}
