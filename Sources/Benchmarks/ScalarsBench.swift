import Harness
import Scalars
import RealModule

/// `hessian-harness bench scalars`: throughput of the scalar layer, measured as
/// the median over trials of nanoseconds per element (build with `-c release`).
///
/// Kernels (arrays of `n` elements, out-of-place, as a model's elementwise ops):
/// `add` c = a + b, `mul` c = a · b, `fma` c = d + a · b (one rounding);
/// `mpfr256-dot`: `MPFloat<256>.dot` (in place, one scratch) and the generic
/// `acc += a[i] * b[i]` path that allocates a temporary per product.
public enum ScalarsBench {
    public struct Row: Sendable { public var kernel: String; public var type: String; public var nsPerElement: Double }

    @inline(never)
    static func add<T: FloatingPoint>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>, _ c: UnsafeMutableBufferPointer<T>) {
        for i in 0..<c.count { c[i] = a[i] + b[i] }
    }
    @inline(never)
    static func mul<T: FloatingPoint>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>, _ c: UnsafeMutableBufferPointer<T>) {
        for i in 0..<c.count { c[i] = a[i] * b[i] }
    }
    @inline(never)
    static func fma<T: FloatingPoint>(_ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>, _ c: UnsafeMutableBufferPointer<T>) {
        for i in 0..<c.count { c[i] = c[i].addingProduct(a[i], b[i]) }
    }

    /// Median nanoseconds over `trials`, after a warm-up run.
    static func time(trials: Int, _ body: () -> Void) -> Double {
        Timing.median(trials: trials, warmUp: true, body) * 1e9
    }

    static func elementwise<T: ComputeScalar>(_ type: T.Type, name: String, n: Int, reps: Int, trials: Int) -> [Row] {
        var g = SplitMix64(seed: 1)
        let a = (0..<n).map { _ in T(roundingDouble: g.nextUniform() * 2 - 1) }
        let b = (0..<n).map { _ in T(roundingDouble: g.nextUniform() + 0.5) }
        var c = [T](repeating: T(roundingDouble: 0.25), count: n)
        var rows: [Row] = []
        let kernels: [(String, (UnsafeBufferPointer<T>, UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<T>) -> Void)] =
            [("add", add), ("mul", mul), ("fma", fma)]
        for (k, f) in kernels {
            let ns = a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                time(trials: trials) { for _ in 0..<reps { f(ap, bp, cp) } }
            } } }
            rows.append(Row(kernel: k, type: name, nsPerElement: ns / Double(n * reps)))
        }
        return rows
    }

    @inline(never)
    static func genericDot<T: FloatingPoint>(_ a: [T], _ b: [T]) -> T {
        var s = T.zero
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    public static func run(n: Int = 4096, reps: Int = 200, trials: Int = 7, mpfrN: Int = 10_000) -> [Row] {
        var rows: [Row] = []
        rows += elementwise(Float.self, name: "Float", n: n, reps: reps, trials: trials)
        rows += elementwise(BFloat16.self, name: "BFloat16", n: n, reps: reps, trials: trials)
        rows += elementwise(FP8E4M3.self, name: "FP8E4M3", n: n, reps: max(1, reps / 10), trials: trials)
        rows += elementwise(LowPrecisionFloat<BF16Spec, Stochastic>.self, name: "bf16-stochastic", n: n, reps: max(1, reps / 10), trials: trials)
        rows += tanhRows(n: n, reps: max(1, reps / 10), trials: trials)
        var g = SplitMix64(seed: 2)
        let a = (0..<mpfrN).map { _ in MPFloat<256>(g.nextUniform()) / MPFloat<256>(3) }
        let b = (0..<mpfrN).map { _ in MPFloat<256>(g.nextUniform()) / MPFloat<256>(7) }
        var sink = 0.0
        let t1 = time(trials: trials) { sink += MPFloat<256>.dot(a, b).doubleValue }
        rows.append(Row(kernel: "dot", type: "MPFloat<256>.dot", nsPerElement: t1 / Double(mpfrN)))
        let t2 = time(trials: trials) { sink += genericDot(a, b).doubleValue }
        rows.append(Row(kernel: "dot", type: "MPFloat<256> generic", nsPerElement: t2 / Double(mpfrN)))
        if sink.isNaN { print("") }
        return rows
    }

    /// binary32 tanh over activations-like inputs (uniform in [−4, 4]): the C library's
    /// `tanhf`, ``Binary32Tanh`` per element, and its vector form over the array.
    static func tanhRows(n: Int, reps: Int, trials: Int) -> [Row] {
        var g = SplitMix64(seed: 3)
        let x = (0..<n).map { _ in Float(g.nextUniform() * 8 - 4) }
        var y = [Float](repeating: 0, count: n)
        var rows: [Row] = []
        let scalar: [(String, (Float) -> Float)] = [("C library tanhf", { Float.tanh($0) }), ("Binary32Tanh per element", Binary32Tanh.tanh)]
        for (name, f) in scalar {
            let ns = time(trials: trials) { for _ in 0..<reps { for i in 0..<n { y[i] = f(x[i]) } } }
            rows.append(Row(kernel: "tanh", type: name, nsPerElement: ns / Double(n * reps)))
        }
        let ns = x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            time(trials: trials) { for _ in 0..<reps { Binary32Tanh.tanh(xp, into: yp) } }
        } }
        rows.append(Row(kernel: "tanh", type: "Binary32Tanh over the array", nsPerElement: ns / Double(n * reps)))
        return rows
    }

    public static func render(_ rows: [Row]) -> String {
        var out = "kernel,type,ns_per_element\n"
        for r in rows { out += "\(r.kernel),\(r.type),\(String(format3: r.nsPerElement))\n" }
        return out
    }
}

extension String {
    init(format3 x: Double) {
        let scaled = (x * 1000).rounded() / 1000
        self = "\(scaled)"
    }
}
