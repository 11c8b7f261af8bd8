import Scalars
import LinearAlgebra

/// A built-in model at the user's parameters: `…,params=FILE.npy` in a model spec.
///
/// The file holds the flat parameter vector in the model's layout (the order of
/// `model.json`'s `layout`, the `params.npy` that `hvp` writes): float64, float32 or float16,
/// shape `(n,)` with n the model's parameter count. The values are kept in fp64 and
/// rounded once into the policy's param format, as seeded parameters are. The loss,
/// gradient and HVPs are the base's; only ``initialParameters(seed:)`` changes (and
/// no longer depends on the seed). With `train=`, training starts from these values.
public struct GivenParameters<Base: DifferentiableModel>: ParameterSource, GivenParametersProtocol {
    public let base: Base
    public let theta: [Double]
    /// The file the parameters came from, as written in the spec.
    public let path: String

    public init(base: Base, path: String) throws {
        let (values, shape) = try DataFiles.readNPY(path)
        let n = base.parameterCount
        guard shape == [n] else {
            throw ModelError("\(path): parameters must have shape (\(n),) — the model's \(n) parameters, flat, in the order of model.json's layout — got \(shape)")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            let name = base.layout.tensors.first { $0.offset <= i && i < $0.offset + $0.count }.map { " (\($0.name))" } ?? ""
            throw ModelError("\(path): parameter \(i)\(name) is \(values[i]) (NaN or infinity)")
        }
        self.base = base; theta = values; self.path = path
    }

    public func initialParameters(seed: UInt64) -> [Double] { theta }
}

/// A model that wraps another (training, a parameter file, a parameter subset):
/// callers that need the architecture look through it.
public protocol ModelWrapper {
    var wrapped: any DifferentiableModel { get }
}

/// A model that changes only where another model's parameters come from (training, a
/// parameter file): its ``initialParameters(seed:)`` is its own, everything else (the
/// layout, the loss and its derivatives, the description) is its base's.
public protocol ParameterSource: DifferentiableModel, ModelWrapper {
    associatedtype Base: DifferentiableModel
    var base: Base { get }
}

extension ParameterSource {
    public var layout: ParameterLayout { base.layout }
    public var sampleCount: Int { base.sampleCount }
    public var activationCount: Int { base.activationCount }
    public var wrapped: any DifferentiableModel { base }

    public func describe() -> ModelDescription { base.describe() }
    public var knownEigenvalues: [Double]? { base.knownEigenvalues }
    public func peakGradientValues(shards: Int) -> Int { base.peakGradientValues(shards: shards) }
    public func peakGradientValues(samples: Int) -> Int { base.peakGradientValues(samples: samples) }
    public func gradientWork() -> GradientWork? { base.gradientWork() }
    public func gradientWork(samples: Int) -> GradientWork? { base.gradientWork(samples: samples) }

    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        base.lossAndGradient(theta, samples: samples, accumulation: accumulation)
    }

    public func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        base.hessianVectorProduct(theta, v, accumulation: accumulation)
    }

    public func checkExactHVP(format: String) throws { try base.checkExactHVP(format: format) }
}

/// What callers see of a ``GivenParameters`` model whatever its base type.
public protocol GivenParametersProtocol {
    var path: String { get }
}
