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
public final class GemmLog: Sendable {
    let shapes = Mutex<[GemmShape: Int]>([:])
    public init() {}
    public func record(_ s: GemmShape) { shapes.withLock { $0[s, default: 0] += 1 } }
    /// Each shape seen and how many times.
    public var counts: [GemmShape: Int] { shapes.withLock { $0 } }
}

extension Kernels {
    /// Bind a ``GemmLog`` to record every BLAS product's shape on this task.
    @TaskLocal public static var gemmLog: GemmLog? = nil
}
