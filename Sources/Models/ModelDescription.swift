/// What a model says about itself, so that no caller above Models needs to know
/// which concrete model it holds (issue 18): the shape columns of the study tables,
/// the `model.json` entries that define its loss well enough for an outside framework
/// to rebuild it (`examples/rebuild_loss.py`), and the arrays those entries name.
///
/// A new model describes itself here, in its own file, and every command and study
/// that reports on models picks it up.
public struct ModelDescription {
    /// The model family of the study tables (`mlp`, `softmax`, `transformer`, `llama`,
    /// `expsum`, `quadratic`, `external`).
    public var family: String
    /// Layers (0 for models without layers).
    public var depth: Int
    /// The widest hidden width (the parameter count for models without layers).
    public var width: Int
    /// `model.json` entries (`type`, `config`, `loss`, `data`, …); JSON values.
    public var entries: [String: Any]
    /// The arrays `entries` refers to, by file name (`x.npy`, `tokens.npy`, …).
    public var arrays: [(name: String, values: ModelArray)]
    /// Where the parameters come from when the model supplies them itself (an oracle's,
    /// a fixed initialization); nil: the seeded initialization of the given seed.
    public var parametersSource: String?

    public init(family: String, depth: Int, width: Int, entries: [String: Any], arrays: [(name: String, values: ModelArray)] = [],
                parametersSource: String? = nil) {
        self.family = family; self.depth = depth; self.width = width
        self.entries = entries; self.arrays = arrays; self.parametersSource = parametersSource
    }
}

/// An array a model description ships beside `model.json` (written as .npy by the harness).
public enum ModelArray {
    case float64([Double], shape: [Int]? = nil)
    case int64([Int], shape: [Int]? = nil)
}

/// What every model says about itself besides its loss and derivatives (a
/// requirement of ``DifferentiableModel``). Wrappers (training, a parameter file, a
/// parameter subset) answer for what they wrap: they change where θ comes from, not
/// the architecture.
public protocol DescribedModel {
    /// The model's account of itself (see ``ModelDescription``).
    func describe() -> ModelDescription
    /// The Hessian's eigenvalues when they are known in closed form (a quadratic's
    /// defining spectrum), else nil: callers then assemble and decompose the Hessian.
    var knownEigenvalues: [Double]? { get }
    /// Values of the compute type alive at the peak of one gradient over `shards`
    /// data-parallel ranks (activations and their gradients, weight copies and
    /// transposes): the scaling study's memory model.
    func peakGradientValues(shards: Int) -> Int
    /// Values of the compute type alive at the peak of one gradient over `samples` of the
    /// batch's samples in one thread, the point it reads included: what one rank of a
    /// sharded FD-HVP holds for its block of samples (`bench shard-hvp`'s memory model).
    func peakGradientValues(samples: Int) -> Int
    /// The work of one gradient over the whole batch, counted from the architecture
    /// (``GradientWork``); nil for models whose cost is not modelled (quadratics, the
    /// sum of exponentials, external oracles).
    func gradientWork() -> GradientWork?
    /// The same over `samples` of the batch's samples (sequences for the language models):
    /// one data-parallel rank's share (`bench shard-hvp`'s predicted time per rank).
    func gradientWork(samples: Int) -> GradientWork?
}

extension DifferentiableModel {
    /// No closed-form spectrum.
    public var knownEigenvalues: [Double]? { nil }
    /// θ and the gradient.
    public func peakGradientValues(shards: Int) -> Int { 2 * parameterCount }
    /// As for the whole batch on one rank.
    public func peakGradientValues(samples: Int) -> Int { peakGradientValues(shards: 1) }
    /// Not modelled.
    public func gradientWork() -> GradientWork? { nil }
    public func gradientWork(samples: Int) -> GradientWork? { nil }
}
