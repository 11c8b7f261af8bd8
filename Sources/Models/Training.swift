import Synchronization
import Scalars
import LinearAlgebra

/// How a model is trained before it is measured: `…,train=STEPS[,optimizer=adam|sgd][,lr=RATE]`
/// in a model spec.
public struct TrainingSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Optimizer: String, Sendable, CaseIterable { case adam, sgd }
    public var steps: Int
    public var optimizer: Optimizer
    public var learningRate: Double

    public init(steps: Int, optimizer: Optimizer = .adam, learningRate: Double? = nil) {
        self.steps = steps; self.optimizer = optimizer
        self.learningRate = learningRate ?? (optimizer == .adam ? 1e-2 : 1e-1)
    }

    public var description: String { "\(optimizer.rawValue), \(steps) steps, lr \(learningRate)" }

    /// Removes the training fields (`train`, `optimizer`, `lr`) from the comma-separated
    /// fields of a spec's body; returns the rest and the training, if any.
    static func extract(from body: String, spec: String) throws -> (rest: String, training: TrainingSpec?) {
        var kept: [Substring] = []
        var steps: Int? = nil, optimizer: Optimizer? = nil, lr: Double? = nil
        var seen: Set<String> = []
        for field in body.split(separator: ",", omittingEmptySubsequences: false) {
            let p = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard p.count == 2, ["train", "optimizer", "lr"].contains(p[0]) else { kept.append(field); continue }
            guard seen.insert(p[0]).inserted else { throw ModelError("'\(p[0])' appears twice in model spec '\(spec)'") }
            switch p[0] {
            case "train":
                guard let s = Int(p[1]), s >= 0, s <= 1_000_000 else { throw ModelError("train='\(p[1])' must be a step count in 0...1000000") }
                steps = s
            case "optimizer":
                guard let o = Optimizer(rawValue: p[1]) else { throw ModelError("unknown optimizer '\(p[1])' (known: adam, sgd)") }
                optimizer = o
            default:
                guard let r = Double(p[1]), r > 0, r.isFinite, r <= 100 else { throw ModelError("lr='\(p[1])' must be a finite number in (0, 100]") }
                lr = r
            }
        }
        let rest = kept.joined(separator: ",")
        guard let steps else {
            if optimizer != nil || lr != nil { throw ModelError("optimizer= and lr= need train=STEPS in model spec '\(spec)'") }
            return (rest, nil)
        }
        return (rest, TrainingSpec(steps: steps, optimizer: optimizer ?? .adam, learningRate: lr))
    }
}

/// A model whose parameters are those of `base` after `training`: full-batch steps of
/// Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) or plain gradient descent from the base's
/// seeded initialization, with the loss and gradient in fp64 under recursive
/// (ordered) accumulation, so the trained θ is the same bits on every machine. The
/// loss, gradient and HVPs are the base's; only ``initialParameters(seed:)`` changes.
/// Trained parameters are computed once per seed and kept.
public struct TrainedModel<Base: DifferentiableModel>: ParameterSource, TrainedModelProtocol {
    public let base: Base
    public let training: TrainingSpec
    let cache: TrainingCache

    /// `key` names the untrained model (its spec text): models built from the same key
    /// share one training run per seed (a sweep builds the same model once per param
    /// format); nil keeps the runs to this instance.
    public init(base: Base, training: TrainingSpec, key: String? = nil, buildSeed: UInt64 = 0) {
        self.base = base; self.training = training
        cache = key.map { TrainingCache.shared(model: $0, buildSeed: buildSeed, training: training) } ?? TrainingCache()
    }

    public var untrained: any DifferentiableModel { base }

    public func initialParameters(seed: UInt64) -> [Double] { trainingRun(seed: seed).theta }

    /// The trained parameters and the loss before every step and after the last.
    public func trainingRun(seed: UInt64) -> (theta: [Double], losses: [Double]) {
        if let r = cache.get(seed) { return r }
        var theta = base.initialParameters(seed: seed)
        let n = theta.count
        var m = [Double](repeating: 0, count: n), s = [Double](repeating: 0, count: n)
        var losses: [Double] = []
        losses.reserveCapacity(training.steps + 1)
        let lr = training.learningRate
        for t in 0..<training.steps {
            let (loss, g) = base.lossAndGradient(theta, accumulation: .recursive)
            losses.append(loss)
            switch training.optimizer {
            case .sgd:
                for i in 0..<n { theta[i] -= lr * g[i] }
            case .adam:
                let b1 = 0.9, b2 = 0.999
                let c1 = 1 - pow(b1, t + 1), c2 = 1 - pow(b2, t + 1)
                for i in 0..<n {
                    m[i] = b1 * m[i] + (1 - b1) * g[i]
                    s[i] = b2 * s[i] + (1 - b2) * g[i] * g[i]
                    theta[i] -= lr * (m[i] / c1) / ((s[i] / c2).squareRoot() + 1e-8)
                }
            }
        }
        losses.append(base.lossAndGradient(theta, accumulation: .recursive).loss)
        let r = (theta, losses)
        cache.put(seed, r)
        return r
    }

    @inline(__always) func pow(_ x: Double, _ k: Int) -> Double {
        var r = 1.0, b = x, e = k
        while e > 0 { if e & 1 == 1 { r *= b }; b *= b; e >>= 1 }
        return r
    }
}

/// What callers that need the architecture (model.json, K-FAC, the memory model) or
/// the training record see of a trained model, whatever its base type.
public protocol TrainedModelProtocol {
    var untrained: any DifferentiableModel { get }
    var training: TrainingSpec { get }
    func trainingRun(seed: UInt64) -> (theta: [Double], losses: [Double])
}

/// The model whose architecture `m` has: `m` with its wrappers (training, a parameter
/// file) taken off.
public func architecture(of m: any DifferentiableModel) -> any DifferentiableModel {
    var m = m
    while let w = m as? ModelWrapper { m = w.wrapped }
    return m
}

/// The parameter file a model's parameters came from (`params=`), if any.
public func parameterFile(of m: any DifferentiableModel) -> String? {
    var m = m
    while let w = m as? ModelWrapper {
        if let g = m as? any GivenParametersProtocol { return g.path }
        m = w.wrapped
    }
    return nil
}

/// A training run this process performed, for manifests: the model spec (without its
/// training fields), the seed its data came from, the seed of its initialization, the
/// optimizer and the loss before every step and after the last.
public struct TrainingRecord: Codable, Sendable, Equatable {
    public var model: String
    public var dataSeed: UInt64
    public var initSeed: UInt64
    public var optimizer: String
    public var steps: Int
    public var learningRate: Double
    public var lossInitial: Double
    public var lossFinal: Double
    public var losses: [Double]
    enum CodingKeys: String, CodingKey {
        case model, dataSeed = "data_seed", initSeed = "init_seed", optimizer, steps, learningRate = "learning_rate"
        case lossInitial = "loss_initial", lossFinal = "loss_final", losses = "loss_curve"
    }

    /// Every training run of built-in-data models this process performed, in a fixed order
    /// (a resumed sweep lists those its own process ran).
    public static func all() -> [TrainingRecord] {
        TrainingCache.registered().flatMap { meta, cache in
            cache.snapshot().map { seed, run in
                TrainingRecord(model: meta.model, dataSeed: meta.buildSeed, initSeed: seed, optimizer: meta.training.optimizer.rawValue,
                               steps: meta.training.steps, learningRate: meta.training.learningRate, lossInitial: run.losses.first ?? .nan,
                               lossFinal: run.losses.last ?? .nan, losses: run.losses)
            }
        }.sorted { ($0.model, $0.dataSeed, $0.initSeed) < ($1.model, $1.dataSeed, $1.initSeed) }
    }
}

final class TrainingCache: Sendable {
    private let runs = Mutex<[UInt64: (theta: [Double], losses: [Double])]>([:])
    struct Meta: Sendable { var model: String; var buildSeed: UInt64; var training: TrainingSpec }
    private static let registry = Mutex<[String: (Meta, TrainingCache)]>([:])
    /// The cache of one model spec, data seed and training (created on first use; kept for the process).
    static func shared(model: String, buildSeed: UInt64, training: TrainingSpec) -> TrainingCache {
        let key = "\(model)|\(buildSeed)|\(training)"
        return registry.withLock { r in
            if let c = r[key] { return c.1 }
            let c = TrainingCache()
            r[key] = (Meta(model: model, buildSeed: buildSeed, training: training), c)
            return c
        }
    }
    static func registered() -> [(Meta, TrainingCache)] { registry.withLock { Array($0.values) } }
    func snapshot() -> [(UInt64, (theta: [Double], losses: [Double]))] { runs.withLock { $0.map { ($0.key, $0.value) } } }
    func get(_ seed: UInt64) -> (theta: [Double], losses: [Double])? { runs.withLock { $0[seed] } }
    func put(_ seed: UInt64, _ r: (theta: [Double], losses: [Double])) { runs.withLock { if $0[seed] == nil { $0[seed] = r } } }
}
