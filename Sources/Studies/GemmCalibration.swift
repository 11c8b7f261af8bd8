import Scalars
import LinearAlgebra
import Models

/// Seconds of one matrix product at a given shape, in a policy's compute type and
/// accumulation, through the same ``Kernels`` entry point the models call (sgemm for
/// fp32 under `blas`): the scaling study's measured cost of a gradient's products.
///
/// Why measure rather than count: a product's throughput depends on its shape and the
/// machine (small products run far below peak; at 64–128 rows one machine's gradients got
/// faster per FLOP with width over the whole range the study runs, while on another the
/// products alone are flat from ~10⁶ FLOPs up), so a cost per FLOP fitted on small models
/// need not hold for large ones. The product's time at its own shape is a property of the
/// machine and the BLAS, measured like a roofline's peak, not fitted to the models'
/// timings; the cost model then fits a multiplier of it (near 1 when the in-model products
/// run as fast as the isolated ones).
///
/// Each shape is timed on operands of its own size (values in [−3/4, 3/4], no
/// subnormals), after one warm-up call, in batches of calls lasting at least `batchSeconds`;
/// the median of `repeats` batches' mean.
public enum GemmCalibration {
    /// Every product of `work` timed at its shape (``measure(_:policy:repeats:batchSeconds:)``),
    /// in shape order, and their seconds together, Σ count·seconds: one gradient's G.
    public static func measure(_ work: GradientWork, policy: PrecisionPolicy, repeats: Int)
        throws -> (total: Double, products: [(shape: GemmShape, count: Int, seconds: Double)]) {
        var total = 0.0
        var products: [(shape: GemmShape, count: Int, seconds: Double)] = []
        for (shape, count) in work.products.sorted(by: { $0.key < $1.key }) {
            let t = try measure(shape, policy: policy, repeats: repeats)
            total += Double(count) * t
            products.append((shape, count, t))
        }
        return (total, products)
    }

    public static func measure(_ shape: GemmShape, policy: PrecisionPolicy, repeats: Int = 5, batchSeconds: Double = 0.02) throws -> Double {
        struct Body: ScalarBody {
            let shape: GemmShape, accumulation: LinearAlgebraAccumulation, repeats: Int, batchSeconds: Double
            func run<T: ComputeScalar>(_: T.Type) -> Double {
                GemmCalibration.time(T.self, shape, accumulation, repeats: repeats, batchSeconds: batchSeconds)
            }
        }
        return try ScalarRegistry.run(format: policy.compute, rounding: policy.mode(for: policy.compute),
                                      Body(shape: shape, accumulation: try policy.accumulation(), repeats: repeats, batchSeconds: batchSeconds))
    }

    static func time<T: ComputeScalar>(_: T.Type, _ s: GemmShape, _ acc: Accumulation, repeats: Int, batchSeconds: Double) -> Double {
        let (ar, ac) = s.transA ? (s.k, s.m) : (s.m, s.k)
        let (br, bc) = s.transB ? (s.n, s.k) : (s.k, s.n)
        func operand(_ r: Int, _ c: Int, _ salt: Int) -> Matrix<T> {
            Matrix(rows: r, cols: c, storage: (0..<(r * c)).map { T(roundingDouble: Double(($0 &+ salt) % 13 - 6) / 8) })
        }
        let a = operand(ar, ac, 0), b = operand(br, bc, 5)
        var c = [T](repeating: .zero, count: s.m * s.n)
        let clock = ContinuousClock()
        func call() {
            c.withUnsafeMutableBufferPointer { Kernels.gemm(a, transposed: s.transA, b, transposed: s.transB, into: $0, accumulation: acc) }
        }
        call()                                                   // warm-up
        // Calls per batch: enough for batchSeconds, from one timed call.
        let one = max(clock.measure { call() }.seconds, 1e-9)
        let calls = max(1, Int((batchSeconds / one).rounded(.up)))
        var means: [Double] = []
        for _ in 0..<max(repeats, 1) {
            means.append(clock.measure { for _ in 0..<calls { call() } }.seconds / Double(calls))
        }
        return median(means)
    }
}
