import Scalars
import LinearAlgebra

/// A model's outputs and the pull-back of an output gradient (issue 18): what
/// Gauss–Newton and K-FAC need, asked of the model instead of reached through a loss
/// head that records the forward pass. Implemented here once for every
/// ``OutputModel`` with its own reverse pass and two private heads.
extension OutputModel {
    /// The output rows z over all samples (the rows the loss reads, in the order the
    /// model forms them) and the loss normalization (the factor that turns a sum over
    /// rows into the model's loss), from one forward pass.
    public func outputs<T: ComputeScalar>(_ theta: [T], accumulation: Accumulation = .recursive) -> (z: Matrix<T>, scale: T) {
        let rec = OutputRecorder<T>()
        _ = lossAndGradient(theta, samples: 0..<sampleCount, accumulation: accumulation, head: RecordHead(box: rec))
        return (Matrix(rows: rec.rows, cols: rec.cols, storage: rec.values), rec.scale)
    }

    /// Jᵀ g: the parameter gradient of Σ_r ⟨g_r, z_r⟩ for output-row gradients `g` (the
    /// rows of ``outputs(_:accumulation:)``, normalization included), by the model's
    /// own reverse pass.
    public func pullback<T: ComputeScalar>(_ theta: [T], outputGradient g: Matrix<T>, accumulation: Accumulation = .recursive) -> [T] {
        lossAndGradient(theta, samples: 0..<sampleCount, accumulation: accumulation, head: FixedHead(box: FixedRows(g.storage))).gradient
    }
}

extension TransformerLM {
    /// ``OutputModel/pullback(_:outputGradient:accumulation:)`` with the observer of every
    /// linear map of ``lossAndGradient(_:samples:accumulation:head:observer:)`` (its input and
    /// output gradient: K-FAC's factors).
    public func pullback<T: ComputeScalar>(_ theta: [T], outputGradient g: Matrix<T>, accumulation: Accumulation = .recursive,
                                         observer: @escaping (_ weight: String, _ input: Matrix<T>, _ outputGradient: Matrix<T>) -> Void) -> [T] {
        lossAndGradient(theta, samples: 0..<sampleCount, accumulation: accumulation, head: FixedHead(box: FixedRows(g.storage)),
                        observer: observer).gradient
    }
}

/// The output rows a forward pass hands its head.
final class OutputRecorder<T: ComputeScalar>: @unchecked Sendable {
    var values: [T] = [], rows = 0, cols = 0
    var scale: T = .zero
}

/// Records the output rows (the pass runs in `T`) and returns a zero output gradient.
struct RecordHead<T: ComputeScalar>: LossHead {
    let box: OutputRecorder<T>
    func evaluate<S: ComputeScalar>(_ logits: Matrix<S>, label: (Int) -> Int, scale: S) -> (sum: S, gradient: Matrix<S>) {
        precondition(S.self == T.self, "RecordHead: the pass runs in \(S.self), the recorder holds \(T.self)")
        box.values += unsafeBitCast(logits.storage, to: [T].self)
        box.scale = unsafeBitCast(scale, to: T.self)
        box.rows += logits.rows; box.cols = logits.cols
        return (.zero, Matrix<S>(rows: logits.rows, cols: logits.cols))
    }
}

/// Fixed output gradients, row block by row block, in call order.
final class FixedRows<T>: @unchecked Sendable {
    var storage: [T], cursor = 0
    init(_ s: [T]) { storage = s }
}

/// Hands out the fixed output gradients.
struct FixedHead<T: ComputeScalar>: LossHead {
    let box: FixedRows<T>
    func evaluate<S: ComputeScalar>(_ logits: Matrix<S>, label: (Int) -> Int, scale: S) -> (sum: S, gradient: Matrix<S>) {
        precondition(S.self == T.self, "FixedHead: the pass runs in \(S.self), the rows are \(T.self)")
        let n = logits.rows * logits.cols
        let chunk = Array(box.storage[box.cursor..<(box.cursor + n)])
        box.cursor += n
        return (.zero, Matrix(rows: logits.rows, cols: logits.cols, storage: unsafeBitCast(chunk, to: [S].self)))
    }
}
