import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
import Curvature

/// Study `block-diagonal`: how far practitioners' curvature approximations are from
/// the true Hessian (NUMERICS.md §8), per model family, depth and width.
///
/// Approximations: `block-diagonal` (per `tensor`, `layer` or `block` partition, see
/// ``PartitionKind``), `diagonal`, `ggn` (Gauss–Newton; models with an output loss:
/// softmax/MLP/transformer) and `kfac` (MLP and softmax regression; transformer: K-FAC
/// on its linear maps, positions as samples, with the exact per-tensor blocks of the
/// embeddings and layer norms, see ``KFAC``). Everything
/// is evaluated at the model's seeded initialization, in fp64 (exact dual-number HVPs).
///
/// When the model has at most `max_dense` parameters, H and Ĥ are formed densely and
/// every metric is exact (`method = dense`): `approx_fro_rel`, `approx_w1_scaled` (W1
/// between the spectra over H's spectral range) and `topk_overlap` (top-k eigenvectors
/// by largest eigenvalue). Beyond, products with `probes` Rademacher vectors give
/// `approx_rel_err`, `approx_cos` and a Hutchinson estimate of `approx_fro_rel`
/// (`fro_method = hutchinson(k)`); the diagonal is then itself Hutchinson's estimate
/// from `diagonal_probes` products (`diagonal_method`), and the spectral metrics are
/// left empty. `order_one` = 1 when the mean `approx_rel_err` ≥ 0.5.
/// Table: `summary.csv`, one row per model × seed × approximation (× partition).
public struct BlockDiagonalStudy: Study {
    public enum Approximation: String, Sendable, CaseIterable { case blockDiagonal = "block-diagonal", diagonal, ggn, kfac }
    public struct Config: Sendable {
        public var models: [String]
        public var seeds: [UInt64]
        public var partitions: [PartitionKind]
        public var approximations: [Approximation]
        public var probes: Int
        public var maxDense: Int
        public var topK: Int
        public var diagonalProbes: Int
        public init(models: [String], seeds: [UInt64], partitions: [PartitionKind], approximations: [Approximation],
                    probes: Int = 8, maxDense: Int = 2000, topK: Int = 10, diagonalProbes: Int = 32) {
            self.models = models; self.seeds = seeds; self.partitions = partitions; self.approximations = approximations
            self.probes = probes; self.maxDense = maxDense; self.topK = topK; self.diagonalProbes = diagonalProbes
        }
    }
    public let config: Config
    public let name = "block-diagonal"
    struct Case: Sendable { var model: String; var seed: UInt64; var approximation: Approximation; var partition: PartitionKind? }
    let cases: [Case]

    public init(_ c: Config) throws {
        guard !c.models.isEmpty, !c.seeds.isEmpty, !c.approximations.isEmpty else {
            throw StudyError("empty grid: models, seeds and approximations each need at least one value")
        }
        if c.approximations.contains(.blockDiagonal) && c.partitions.isEmpty { throw StudyError("block-diagonal needs at least one partition") }
        guard c.probes >= 1, c.topK >= 1, c.diagonalProbes >= 1, c.maxDense >= 0 else { throw StudyError("probes, top_k and diagonal_probes must be ≥ 1") }
        config = c
        var cs: [Case] = []
        for m in c.models {
            let model: any DifferentiableModel
            do { model = try ModelSpec.architecture(m) } catch { throw StudyError("model '\(m)': \(error)") }
            for s in c.seeds {
                for a in c.approximations {
                    switch a {
                    case .blockDiagonal: for p in c.partitions { cs.append(Case(model: m, seed: s, approximation: a, partition: p)) }
                    case .diagonal: cs.append(Case(model: m, seed: s, approximation: a, partition: nil))
                    case .ggn where architecture(of: model) is any OutputModel: cs.append(Case(model: m, seed: s, approximation: a, partition: nil))
                    case .kfac where architecture(of: model) is any KFACModel: cs.append(Case(model: m, seed: s, approximation: a, partition: nil))
                    default: break          // not defined for this model (see the type's documentation)
                    }
                }
            }
        }
        guard !cs.isEmpty else { throw StudyError("no approximation applies to these models") }
        cases = cs
    }

    public var units: [StudyUnit] {
        cases.map { StudyUnit(key: "\($0.model)|\($0.seed)|\($0.approximation.rawValue)|\($0.partition?.rawValue ?? "-")") }
    }
    public var seeds: [String: UInt64] { Dictionary(uniqueKeysWithValues: config.seeds.map { ("seed_\($0)", $0) }) }

    public static let header = ["model", "family", "parameters", "depth", "width", "seed", "approximation", "partition", "blocks",
                                "method", "probes", "approx_rel_err", "approx_rel_err_max", "approx_cos", "approx_fro_rel", "fro_method",
                                "approx_w1_scaled", "topk_overlap", "topk_k", "diagonal_method", "order_one"]

    /// (family, depth, width) of a model.
    static func shape(_ model: any DifferentiableModel) -> (String, Int, Int) {
        let d = model.describe()
        return (d.family, d.depth, d.width)
    }

    struct Point: Sendable { let model: any DifferentiableModel; let theta: [Double]; let dense: Matrix<Double>? }

    func point(_ spec: String, _ seed: UInt64, _ ctx: StudyContext) throws -> Point {
        try ctx.cached("bd-point|\(spec)|\(seed)") {
            let m = try ModelSpec.build(spec, seed: seed)
            let theta = m.initialParameters(seed: seed)
            var dense: Matrix<Double>? = nil
            if m.parameterCount <= config.maxDense {
                var h = FullHessian.compute(m, theta: theta).hessian
                h.symmetrize()
                dense = h
            }
            return Point(model: m, theta: theta, dense: dense)
        }
    }

    public func run(unit index: Int, context: StudyContext) throws -> UnitOutput {
        let c = cases[index]
        let pt = try point(c.model, c.seed, context)
        let m = pt.model, theta = pt.theta, n = m.parameterCount
        var gen = SplitMix64(seed: derivedSeed(c.seed, "block-diagonal-probes"))
        let probes = (0..<config.probes).map { _ in (0..<n).map { _ in gen.next() & 1 == 0 ? 1.0 : -1.0 } }
        let hvp: ([Double]) -> [Double] = { m.exactHVP(theta, $0).hv }
        let approx: ([Double]) -> [Double]
        var blocks = 1, diagMethod = ""
        switch c.approximation {
        case .blockDiagonal:
            let p = Partition(layout: m.layout, kind: c.partition!)
            blocks = p.count
            if let h = pt.dense { let hb = p.blockDiagonal(of: h); approx = { Kernels.gemv(hb, $0) } }
            else { approx = { p.blockDiagonalProduct($0, hvp) } }
        case .diagonal:
            blocks = n
            let d: [Double]
            if let h = pt.dense { d = (0..<n).map { h[$0, $0] }; diagMethod = "exact" }
            else {
                d = DiagonalHessian.hutchinson(dimension: n, probes: config.diagonalProbes, seed: derivedSeed(c.seed, "diagonal"), hvp)
                diagMethod = "hutchinson(\(config.diagonalProbes))"
            }
            approx = { zip(d, $0).map(*) }
        case .ggn:
            approx = Self.ggn(m, theta)
        case .kfac:
            // K-FAC on the linear maps; the exact per-tensor blocks for the parameters
            // K-FAC defines no factors for (a transformer's embeddings and layer norms).
            let k = (architecture(of: m) as! any KFACModel).kfac(theta: theta)
            let covered = k.covered
            let rest = Partition(layout: m.layout, kind: .tensor)
            let others = zip(rest.names, rest.ranges).filter { !covered[$0.1[0].lowerBound] }
            blocks = k.layers.count + others.count
            let h = pt.dense
            approx = { v in
                var out = k.apply(v)
                for (_, rs) in others {
                    var vb = [Double](repeating: 0, count: n)
                    for r in rs { for j in r { vb[j] = v[j] } }
                    let hb = h.map { Kernels.gemv($0, vb) } ?? hvp(vb)
                    for r in rs { for j in r { out[j] = hb[j] } }
                }
                return out
            }
        }
        let metrics: ApproximationMetrics
        if let h = pt.dense {
            var a = Matrix<Double>(rows: n, cols: n)
            for j in 0..<n {
                var e = [Double](repeating: 0, count: n); e[j] = 1
                let col = approx(e)
                for i in 0..<n { a[i, j] = col[i] }
            }
            a.symmetrize()
            metrics = try ApproximationMetrics.dense(h: h, approx: a, probes: probes, k: config.topK)
        } else {
            metrics = ApproximationMetrics.fromProbes(hv: probes.map(hvp), av: probes.map(approx))
        }
        let (family, depth, width) = Self.shape(m)
        var out = UnitOutput()
        out.append("summary", [c.model, family, "\(n)", "\(depth)", "\(width)", "\(c.seed)", c.approximation.rawValue,
                               c.partition?.rawValue ?? "", "\(blocks)", pt.dense == nil ? "probes" : "dense", "\(config.probes)",
                               cell(metrics.relErr), cell(metrics.relErrMax), cell(metrics.cos), cell(metrics.froRel), metrics.froMethod,
                               cell(metrics.w1Scaled), cell(metrics.topkOverlap), pt.dense == nil ? "" : "\(min(config.topK, n))",
                               diagMethod, metrics.relErr >= 0.5 ? "1" : "0"])
        return out
    }

    static func ggn(_ m: any DifferentiableModel, _ theta: [Double]) -> ([Double]) -> [Double] {
        func open<M: OutputModel>(_ o: M) -> ([Double]) -> [Double] { { GaussNewton.vectorProduct(o, theta: theta, v: $0) } }
        let o = architecture(of: m) as! any OutputModel
        return open(o)
    }

    public func finish(_ outputs: [UnitOutput]) throws -> StudyOutput {
        StudyOutput(tables: [concatenate("summary", Self.header, outputs)])
    }
}
