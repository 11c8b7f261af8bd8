import Scalars
import LinearAlgebra
import RealModule

/// A classification data set: inputs `x` (rows are samples) and integer labels.
public struct Dataset: Sendable {
    public var x: Matrix<Double> { didSet { xFloat = x.storage.map { Float($0) } } }
    /// The inputs rounded to binary32 once (what ``ScalarArrays/rounding(_:to:)`` gives
    /// for `Float`), so an fp32 gradient does not convert the data set on every call.
    public private(set) var xFloat: [Float]
    public var labels: [Int]
    public var classes: Int
    /// Where the data came from: "teacher-student, seeded (…)" or "user data: FILE…".
    public var source: String
    public var count: Int { x.rows }
    public var features: Int { x.cols }

    public init(x: Matrix<Double>, labels: [Int], classes: Int, source: String) throws {
        guard x.rows == labels.count else { throw ModelError("data: \(x.rows) inputs but \(labels.count) labels") }
        guard x.storage.allSatisfy(\.isFinite) else { throw ModelError("data: inputs contain NaN or infinity") }
        guard labels.allSatisfy({ $0 >= 0 && $0 < classes }) else { throw ModelError("data: labels must lie in 0..<\(classes)") }
        self.x = x; self.labels = labels; self.classes = classes; self.source = source
        xFloat = x.storage.map { Float($0) }
    }

    /// Teacher–student classification: x ~ N(0, I_d) (seeded), labels = argmax of a
    /// random tanh teacher network d → 2d → classes with N(0, 1/fan_in) weights.
    public static func teacherStudent(samples n: Int, features d: Int, classes k: Int, seed: UInt64) throws -> Dataset {
        var g = SplitMix64(seed: seed)
        let x = Matrix<Double>(rows: n, cols: d, storage: (0..<(n * d)).map { _ in g.nextGaussian() })
        let h = 2 * d
        let w1 = Matrix<Double>(rows: d, cols: h, storage: (0..<(d * h)).map { _ in g.nextGaussian() / Double(d).squareRoot() })
        let w2 = Matrix<Double>(rows: h, cols: k, storage: (0..<(h * k)).map { _ in g.nextGaussian() / Double(h).squareRoot() })
        var hidden = Kernels.gemm(x, w1)
        for i in hidden.storage.indices { hidden.storage[i] = Double.tanh(hidden.storage[i]) }
        let out = Kernels.gemm(hidden, w2)
        let labels = (0..<n).map { i in (0..<k).max { out[i, $0] < out[i, $1] }! }
        return try Dataset(x: x, labels: labels, classes: k,
                           source: "teacher-student, seeded: x ~ N(0, I), labels = argmax of a random tanh teacher \(d)-\(h)-\(k)")
    }
}

public struct ModelError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
