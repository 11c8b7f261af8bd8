import Synchronization

/// The shape of one matrix product C = op(A)·op(B) as BLAS sees it: op(A) is m×k, op(B)
/// k×n, each operand stored row-major and transposed by the flag.
///
/// The scaling study's cost model times a gradient's products at their own shapes (a
/// product's throughput depends on its shape and the machine, so its time is measured,
/// not assumed proportional to its FLOPs); the models list the products one gradient runs (`GradientWork.products`), and
/// ``GemmLog`` records the products a computation really runs, so the two can be checked
/// against each other.
public struct GemmShape: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var m: Int, k: Int, n: Int
    public var transA: Bool, transB: Bool
    public init(m: Int, k: Int, n: Int, transA: Bool = false, transB: Bool = false) {
        self.m = m; self.k = k; self.n = n; self.transA = transA; self.transB = transB
    }
    /// 2·m·k·n: a multiply–add counted as two operations.
    public var flops: Double { 2 * Double(m) * Double(k) * Double(n) }
    public static func < (x: GemmShape, y: GemmShape) -> Bool {
        (x.m, x.k, x.n, x.transA ? 1 : 0, x.transB ? 1 : 0) < (y.m, y.k, y.n, y.transA ? 1 : 0, y.transB ? 1 : 0)
    }
    public var description: String { "\(m)×\(k)·\(k)×\(n) \(transA ? "T" : "N")\(transB ? "T" : "N")" }
}

/// Counts the BLAS products (sgemm/dgemm, ``Kernels`` `blasInto`) run while it is bound
/// to ``Kernels/gemmLog`` — a checking aid: one task-local read per product when unbound.
/// Products run on other threads (in-process shards) are not seen.
///
/// Dual-number products through BLAS (``Kernels`` `blasDualGemm`: two or three real
/// products between a split of each operand into values and tangents and a merge of the
/// result) are also recorded whole, in ``dualCounts``; their real products are in
/// ``counts`` like any other.
public final class GemmLog: Sendable {
    let shapes = Mutex<[GemmShape: Int]>([:])
    let dualShapes = Mutex<[GemmShape: Int]>([:])
    public init() {}
    public func record(_ s: GemmShape) { shapes.withLock { $0[s, default: 0] += 1 } }
    public func recordDual(_ s: GemmShape) { dualShapes.withLock { $0[s, default: 0] += 1 } }
    /// Each shape seen and how many times.
    public var counts: [GemmShape: Int] { shapes.withLock { $0 } }
    /// Each dual-number product's shape (the product as a whole) and how many times.
    public var dualCounts: [GemmShape: Int] { dualShapes.withLock { $0 } }

    /// Bytes the dual products' split and merge passes move, for `w`-byte components:
    /// splitting reads each dual element of A and B (2w) and writes its value and
    /// tangent (2w); merging reads the value product and up to two tangent products (3w)
    /// and writes the dual result (2w): Σ count · (4w·(mk + kn) + 5w·mn).
    public func dualPassBytes(componentBytes w: Int) -> Double {
        dualCounts.reduce(0) { acc, e in
            let s = e.key, wd = Double(w)
            return acc + Double(e.value) * (4 * wd * (Double(s.m) * Double(s.k) + Double(s.k) * Double(s.n)) + 5 * wd * Double(s.m) * Double(s.n))
        }
    }
}

extension Kernels {
    /// Bind a ``GemmLog`` to record every BLAS product's shape on this task.
    @TaskLocal public static var gemmLog: GemmLog? = nil
}
