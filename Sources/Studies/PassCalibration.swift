import Scalars
import LinearAlgebra
import Models
import Curvature

/// Seconds of the O(n) passes a gradient and an FD-HVP spend outside the model's own
/// gradient, timed alone at the configuration's parameter count: the scaling study's
/// pass seconds P, which enter its cost model with coefficient 1, as the products' G do.
///
/// What they are: the timed gradient rounds θ from its fp64 carriers into the compute
/// type and widens the result back (`FDPrecision.gradient`); an FD-HVP forms its points
/// (on the fused binary32 path both in one pass that reads θ and v and writes two fp32
/// arrays), chooses ε, counts swamped components and forms the quotient, and its
/// gradients read the points directly, without the conversions. Counted as bytes at the
/// models' cost per byte, these passes were charged as if they were activation traffic:
/// at 10⁸ parameters they are most of an FD-HVP's bytes beyond the gradients (a central
/// one's points and quotient 40n bytes against ~20n per gradient of the language
/// models), while on the smallest sizes the fit sees, the activations' bytes dominate
/// (~280n). Their cost per byte is not the activations'; so they are measured.
///
/// How: the same ``FDEngine`` calls the study times, on a model whose gradient is its
/// input (``PassThroughModel``: no work, no copy), at the same θ, v, policy and ε policy —
/// so whatever path the policy takes (fused or staged, sharded in process or not) is what
/// is timed. One warm-up call each, then the mean of calls lasting at least
/// `batchSeconds` (one call at 10⁸ parameters).
public enum PassCalibration {
    /// The pass seconds of one gradient and of one FD-HVP per scheme, in `schemes`' order.
    public static func measure(theta: [Double], v: [Double], policy: PrecisionPolicy, schemes: [FDScheme], step: StepPolicy,
                               shards: Int, batchSeconds: Double = 0.02) throws -> (gradient: Double, hvp: [Double]) {
        precondition(theta.count == v.count)
        let engine = try FDEngine(model: PassThroughModel(count: theta.count), policy: policy)
        let clock = ContinuousClock()
        func time(_ body: () throws -> Void) throws -> Double {
            try body()
            var calls = 0, total = 0.0
            repeat {
                total += try clock.measure(body).seconds
                calls += 1
            } while total < batchSeconds
            return total / Double(calls)
        }
        let g = try time { _ = try engine.gradient(theta: theta, shards: shards) }
        let h = try schemes.map { s in try time { _ = try engine.estimate(theta: theta, v: v, scheme: s, step: step, shards: shards) } }
        return (g, h)
    }
}

/// A "model" of `count` parameters whose loss is 0 and whose gradient is θ itself (the
/// array returned shares θ's storage: no work, no copy), so that an ``FDEngine`` over it
/// times only what the engine does around the model's gradients
/// (``PassCalibration``). Not a differentiable model of anything; its exact HVP is v.
struct PassThroughModel: DifferentiableModel {
    let layout: ParameterLayout
    init(count: Int) {
        var l = ParameterLayout()
        l.add("theta", shape: [count], block: "theta")
        layout = l
    }
    var sampleCount: Int { 1 }
    func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        (0, theta)
    }
    func initialParameters(seed: UInt64) -> [Double] { [Double](repeating: 0, count: layout.count) }
    func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) { (theta, v) }
    func describe() -> ModelDescription { ModelDescription(family: "passes", depth: 0, width: layout.count, entries: ["type": "passes"]) }
}
