import Scalars
import LinearAlgebra
import RealModule

/// A loss with a hand-written reverse pass, generic over the compute scalar.
///
/// Swift's `_Differentiation` does not work generically over `Real`, so each model
/// writes its backward pass by hand. Running the same code in `Dual<T>` with the
/// parameter tangents set to `v` gives `(∇L, Hv)`: forward-over-reverse.
public protocol DifferentiableModel: DescribedModel, Sendable {
    var layout: ParameterLayout { get }
    /// Number of samples the loss averages over (1 for models without data).
    var sampleCount: Int { get }
    /// The contribution of `samples` to the loss and its gradient at θ, normalized
    /// by the full ``sampleCount`` (so contributions of disjoint ranges add up to the
    /// full loss: what each data-parallel rank computes). In `T`, matrix products
    /// under `accumulation`.
    func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T])
    /// Seeded initial parameters (fp64).
    func initialParameters(seed: UInt64) -> [Double]
    /// ``exactHVP(_:_:accumulation:)``'s implementation: a model may replace the
    /// generic forward-over-reverse run (``dualNumberHVP(_:_:accumulation:)``) by a
    /// faster one with the same bits (``MLP``: values and tangents in separate arrays).
    func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T])
    /// Values one gradient evaluation keeps besides the parameters and the gradient
    /// (stored activations, logits): the memory estimate of ``ModelMemory``.
    var activationCount: Int { get }
    /// Throws when this model cannot give its exact HVP in `format` (the reference of
    /// `hvp`, `recommend`, the studies): an ``ExternalModel``'s exact HVP is its oracle's.
    func checkExactHVP(format: String) throws
}

extension DifferentiableModel {
    public var parameterCount: Int { layout.count }
    public var activationCount: Int { 0 }
    public func checkExactHVP(format: String) throws {}

    /// Loss and gradient over all samples.
    @inlinable
    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        lossAndGradient(theta, samples: 0..<sampleCount, accumulation: accumulation)
    }

    /// The exact Hessian-vector product `Hv = d/dt ∇L(θ + t v)|₀`, by running the
    /// reverse pass in `Dual<T>` (forward-over-reverse). Returns (∇L, Hv) in `T`.
    @inlinable
    public func exactHVP<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation = .recursive) -> (gradient: [T], hv: [T]) {
        hessianVectorProduct(theta, v, accumulation: accumulation)
    }

    @inlinable
    public func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        dualNumberHVP(theta, v, accumulation: accumulation)
    }

    /// The generic forward-over-reverse run: θ + εv as `Dual<T>`, the model's reverse
    /// pass in dual numbers, (∇L, Hv) = (values, tangents) of the gradient. The O(n)
    /// interleave and split run specialized (``ScalarRegistry/specializedForModels(_:_:)``):
    /// `T` is opened at run time, and a generic loop moves each element through its value
    /// witnesses (~10% of a 3·10⁶-parameter transformer's exact HVP).
    @inlinable
    public func dualNumberHVP<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        precondition(theta.count == v.count && theta.count == parameterCount)
        var dual: [Dual<T>] = [], arrays = (theta, v)
        let interleaved = withUnsafeMutablePointer(to: &dual) { dp in withUnsafePointer(to: &arrays) { ap in
            ScalarRegistry.specializedForModels(T.self, DualInterleave(arrays: UnsafeRawPointer(ap), out: UnsafeMutableRawPointer(dp))) != nil
        } }
        if !interleaved { dual = dualInterleave(theta, v) }
        var g = lossAndGradient(dual, accumulation: accumulation).gradient
        var out: (values: [T], tangents: [T]) = ([], [])
        let split = withUnsafeMutablePointer(to: &out) { op in withUnsafePointer(to: &g) { gp in
            ScalarRegistry.specializedForModels(T.self, DualSplit(duals: UnsafeRawPointer(gp), out: UnsafeMutableRawPointer(op))) != nil
        } }
        if !split { out = dualSplit(g) }
        return (out.values, out.tangents)
    }
}

/// ``dualInterleave(_:_:)`` of `([U], [U])`, written as `[Dual<U>]`.
@usableFromInline
struct DualInterleave: SpecializedBody {
    @usableFromInline let arrays: UnsafeRawPointer, out: UnsafeMutableRawPointer
    @inlinable init(arrays: UnsafeRawPointer, out: UnsafeMutableRawPointer) { self.arrays = arrays; self.out = out }
    @inlinable func run<U: ComputeScalar>(_: U.Type) {
        let a = arrays.assumingMemoryBound(to: ([U], [U]).self).pointee
        out.assumingMemoryBound(to: [Dual<U>].self).pointee = dualInterleave(a.0, a.1)
    }
}

/// ``dualSplit(_:)`` of `[Dual<U>]`, written as `(values: [U], tangents: [U])`.
@usableFromInline
struct DualSplit: SpecializedBody {
    @usableFromInline let duals: UnsafeRawPointer, out: UnsafeMutableRawPointer
    @inlinable init(duals: UnsafeRawPointer, out: UnsafeMutableRawPointer) { self.duals = duals; self.out = out }
    @inlinable func run<U: ComputeScalar>(_: U.Type) {
        out.assumingMemoryBound(to: (values: [U], tangents: [U]).self).pointee = dualSplit(duals.assumingMemoryBound(to: [Dual<U>].self).pointee)
    }
}

/// (θᵢ, vᵢ) as dual numbers θᵢ + ε·vᵢ.
@inlinable
func dualInterleave<T: ComputeScalar>(_ theta: [T], _ v: [T]) -> [Dual<T>] {
    let n = theta.count
    return [Dual<T>](unsafeUninitializedCapacity: n) { d, count in
        theta.withUnsafeBufferPointer { t in v.withUnsafeBufferPointer { v in
            for i in 0..<n { d.initializeElement(at: i, to: Dual<T>(t[i], v[i])) }
        } }
        count = n
    }
}

/// The values and the tangents of dual numbers.
@inlinable
func dualSplit<T: ComputeScalar>(_ g: [Dual<T>]) -> (values: [T], tangents: [T]) {
    let n = g.count
    var hv = [T]()
    let values = [T](unsafeUninitializedCapacity: n) { gv, count in
        hv = [T](unsafeUninitializedCapacity: n) { ht, hCount in
            g.withUnsafeBufferPointer { g in
                for i in 0..<n { gv.initializeElement(at: i, to: g[i].value); ht.initializeElement(at: i, to: g[i].tangent) }
            }
            hCount = n
        }
        count = n
    }
    return (values, hv)
}

extension Matrix {
    /// Elementwise map.
    @inlinable
    public func map(_ f: (T) -> T) -> Matrix<T> { Matrix(rows: rows, cols: cols, storage: storage.map(f)) }
}

/// Softmax cross-entropy of each row of `logits` against `label(row)`: returns the
/// sum over rows of `logsumexp(z_r) − z_r[y_r]` (max-shifted) and its gradient
/// `(softmax(z_r) − onehot(y_r))·scale`.
@inlinable
public func softmaxCrossEntropy<T: ComputeScalar>(_ logits: Matrix<T>, label: (Int) -> Int, scale: T) -> (sum: T, gradient: Matrix<T>) {
    let k = logits.cols
    var total = T.zero
    var dz = Matrix<T>(rows: logits.rows, cols: k)
    for i in 0..<logits.rows {
        var m = logits[i, 0]
        for j in 1..<k where logits[i, j] > m { m = logits[i, j] }
        var s = T.zero
        var e = [T](repeating: .zero, count: k)
        for j in 0..<k { e[j] = T.exp(logits[i, j] - m); s += e[j] }
        let y = label(i)
        total += m + T.log(s) - logits[i, y]
        for j in 0..<k { dz[i, j] = (e[j] / s - (j == y ? 1 : 0)) * scale }
    }
    return (total, dz)
}

/// Lower bounds of the memory a model's gradients and exact HVPs hold, checked
/// against ``MemoryBudget`` before a run allocates them.
public enum ModelMemory {
    /// Bytes of one value of a format (a lower bound): an MPFR value is its struct,
    /// its limbs and the allocator's header; fp64 8; the emulated formats 2 or more.
    public static func bytes(format: ScalarFormat) -> Double {
        switch format.kind {
        case .mpfr(let bits): return 32 + 8 * Double((bits + 63) / 64) + 16
        case .binary(let f): return f == .fp64 ? 8 : f == .fp32 || f == .tf32 ? 4 : 2
        }
    }

    /// A gradient (dual: an exact HVP, values and tangents) of `m` in `format`: θ, the
    /// gradient, a work copy and the activations.
    public static func gradientBytes(_ m: any DifferentiableModel, format: ScalarFormat, dual: Bool) -> Double {
        (3 * Double(m.parameterCount) + Double(m.activationCount)) * bytes(format: format) * (dual ? 2 : 1)
    }

    /// Throws ``MemoryBudgetError`` when a gradient (or exact HVP) of `m` in `format` cannot fit.
    public static func check(_ m: any DifferentiableModel, format: ScalarFormat, dual: Bool, what: String) throws {
        try MemoryBudget.check(gradientBytes(m, format: format, dual: dual), "\(what) (\(m.parameterCount) parameters, \(m.activationCount) stored activations, in \(format))")
    }
}
