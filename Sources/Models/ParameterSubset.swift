import Foundation
import Synchronization
import Scalars
import LinearAlgebra

/// A model restricted to some of its parameter tensors, the others held fixed: the
/// Hessian of the subset model is the principal block H_SS of the full Hessian
/// (`--params PATTERN`, e.g. one transformer block: researchers often take the
/// spectrum of one block).
///
/// The fixed parameters are the base's initial parameters for the build seed,
/// rounded once into the policy's param format by `round` (as the selected ones are by
/// the command), and converted into each compute type once (kept per type). A
/// gradient is the base's full gradient, restricted to the subset; an HVP is the base's
/// HVP along the direction that is zero outside the subset, restricted — so the cost
/// is that of the full model (only the Hessian is smaller).
public struct ParameterSubset<Base: DifferentiableModel>: DifferentiableModel, ModelWrapper, ParameterSubsetProtocol {
    public let base: Base
    public let pattern: String
    /// The selected tensors' index ranges in the full vector, in layout order.
    public let ranges: [Range<Int>]
    /// The selected tensors' names, in layout order.
    public let tensorNames: [String]
    /// The full parameter vector with the fixed values (the selected entries are overwritten).
    public let fixed: [Double]
    let selected: [Double]
    let subsetLayout: ParameterLayout
    let converted = ConvertedCache()

    /// Selects the tensors whose name or block matches one of the shell-style globs of
    /// `pattern` (`*`, `?`, `[…]`), separated by commas or `|` (a model spec's
    /// `subset=` field, whose commas separate the spec's fields); e.g. `blk.29.*`,
    /// `layer1.*,head.weight`, `layer1.*|head.weight`.
    public init(base: Base, pattern: String, seed: UInt64, round: (Double) -> Double) throws {
        let globs = pattern.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "|" })
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard !globs.isEmpty, globs.allSatisfy({ !$0.isEmpty }) else {
            throw ModelError("--params '\(pattern)': an empty pattern (give tensor names or globs, comma-separated, e.g. 'blk.29.*')")
        }
        func hit(_ glob: String, _ t: TensorSpec) -> Bool { fnmatch(glob, t.name, 0) == 0 || fnmatch(glob, t.block, 0) == 0 }
        let chosen = base.layout.tensors.filter { t in globs.contains { hit($0, t) } }
        guard !chosen.isEmpty else {
            let names = base.layout.tensors.map(\.name)
            let shown = names.prefix(12).joined(separator: ", ") + (names.count > 12 ? ", … (\(names.count) tensors)" : "")
            throw ModelError("--params '\(pattern)' matches no tensor name or block of the model (tensors: \(shown))")
        }
        for g in globs where !chosen.contains(where: { hit(g, $0) }) {
            throw ModelError("--params: '\(g)' matches no tensor name or block of the model")
        }
        let theta = base.initialParameters(seed: seed)
        var l = ParameterLayout()
        for t in chosen { l.add(t.name, shape: t.shape, block: t.block) }
        self.base = base; self.pattern = pattern
        ranges = chosen.map(\.range); tensorNames = chosen.map(\.name)
        fixed = theta.map(round)
        selected = ranges.flatMap { theta[$0] }
        subsetLayout = l
    }

    init(_ other: ParameterSubset, fixed: [Double]) {
        base = other.base; pattern = other.pattern; ranges = other.ranges; tensorNames = other.tensorNames
        self.fixed = fixed; selected = other.selected; subsetLayout = other.subsetLayout
    }

    /// The same subset with its fixed values rounded by `round` (a spec's `subset=` is
    /// built before the run's policy is known; the run rounds them into its param format).
    public func roundingFixed(_ round: (Double) -> Double) -> any DifferentiableModel {
        ParameterSubset(self, fixed: fixed.map(round))
    }

    public var layout: ParameterLayout { subsetLayout }
    public var sampleCount: Int { base.sampleCount }
    public var activationCount: Int { base.activationCount }
    public var wrapped: any DifferentiableModel { base }
    public var fullParameterCount: Int { fixed.count }
    /// The architecture's (the subset changes which parameters vary, not the model).
    public func describe() -> ModelDescription { base.describe() }
    /// A proper subset's Hessian is a principal block, whose spectrum is not the base's.
    public var knownEigenvalues: [Double]? { layout.count == fixed.count ? base.knownEigenvalues : nil }
    /// The full model's: a subset's gradient is the full gradient, restricted.
    public func peakGradientValues(shards: Int) -> Int { base.peakGradientValues(shards: shards) }
    public func peakGradientValues(samples: Int) -> Int { base.peakGradientValues(samples: samples) }
    public func gradientWork() -> GradientWork? { base.gradientWork() }
    public func gradientWork(samples: Int) -> GradientWork? { base.gradientWork(samples: samples) }
    public func checkExactHVP(format: String) throws { try base.checkExactHVP(format: format) }
    public func initialParameters(seed: UInt64) -> [Double] { selected }

    /// `sub` written into the selected ranges of `full`.
    func scatter<T>(_ sub: [T], into full: inout [T]) {
        var k = 0
        for r in ranges { for i in r { full[i] = sub[k]; k += 1 } }
    }

    /// The full vector in `T`: the fixed values with `theta` written into the selected ranges.
    func embed<T: ComputeScalar>(_ theta: [T]) -> [T] {
        var full: [T] = converted.get(T.self) { ScalarArrays.rounding(fixed, to: T.self) }
        scatter(theta, into: &full)
        return full
    }

    func restrict<T>(_ full: [T]) -> [T] {
        var out: [T] = []
        out.reserveCapacity(layout.count)
        for r in ranges { out.append(contentsOf: full[r]) }
        return out
    }

    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        let (l, g) = base.lossAndGradient(embed(theta), samples: samples, accumulation: accumulation)
        return (l, restrict(g))
    }

    public func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        var direction = [T](repeating: .zero, count: fixed.count)
        scatter(v, into: &direction)
        let (g, hv) = base.hessianVectorProduct(embed(theta), direction, accumulation: accumulation)
        return (restrict(g), restrict(hv))
    }
}

/// What callers see of a ``ParameterSubset`` whatever its base type.
public protocol ParameterSubsetProtocol {
    var pattern: String { get }
    var tensorNames: [String] { get }
    var fixed: [Double] { get }
    var fullParameterCount: Int { get }
    /// The same subset with its fixed values rounded by `round`.
    func roundingFixed(_ round: (Double) -> Double) -> any DifferentiableModel
}

/// `m` with the fixed parameters of a spec's `subset=` rounded by `round` (the run's
/// param format, as the selected ones are); any other model unchanged.
public func roundingFixedParameters(_ m: any DifferentiableModel, _ round: (Double) -> Double) -> any DifferentiableModel {
    (m as? ParameterSubsetProtocol)?.roundingFixed(round) ?? m
}

/// The fixed parameters converted into each compute type, once.
final class ConvertedCache: Sendable {
    private let values = Mutex<[ObjectIdentifier: any Sendable]>([:])
    func get<T: ComputeScalar>(_: T.Type, make: () -> [T]) -> [T] {
        if let v = values.withLock({ $0[ObjectIdentifier(T.self)] }) as? [T] { return v }
        let v = make()
        values.withLock { $0[ObjectIdentifier(T.self)] = v }
        return v
    }
}

/// `m` restricted to the tensors `pattern` selects (``ParameterSubset``), the others
/// held at their values rounded by `round`. An external oracle serves its own
/// parameters and cannot hold some of them fixed: refused.
public func restrict(_ m: any DifferentiableModel, to pattern: String, seed: UInt64, round: (Double) -> Double) throws -> any DifferentiableModel {
    if architecture(of: m) is ExternalModel {
        throw ModelError("--params selects tensors of a built-in model; an external oracle serves its own parameters")
    }
    func open<M: DifferentiableModel>(_ m: M) throws -> any DifferentiableModel {
        try ParameterSubset(base: m, pattern: pattern, seed: seed, round: round)
    }
    return try open(m)
}
