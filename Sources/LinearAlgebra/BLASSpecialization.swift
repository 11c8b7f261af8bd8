import Scalars

/// A computation to run with the concrete BLAS type (Float or Double) a generic
/// parameter stands for: the BLAS-typed counterpart of ``SpecializedBody``, for code
/// that needs `B: BLASScalar` (sgemm/dgemm, the type's vector loops). See
/// ``BLASSpecialization/run(_:_:)``.
public protocol BLASSpecializedBody {
    associatedtype Output
    func run<B: BLASScalar>(_ type: B.Type) -> Output
}

/// The dispatch point for the BLAS types, beside ``ScalarRegistry/specialized(_:_:)``
/// (which cannot offer `BLASScalar`: it lives in `Scalars`, below this layer).
///
/// Why: a BLAS path chosen at run time by `T.self as? any BLASScalar.Type` opens the
/// existential into a generic `B` the compiler cannot specialize, so the path's own
/// elementwise loops run through the value witnesses of each element. The MLP's split
/// dual reverse pass did: at 8.4·10⁶ parameters its exact HVP took 0.60 s, two thirds
/// of it outside its sgemm calls, and 0.25–0.29 s through this dispatch
/// (`hessian-harness hvp --scheme exact`, 2026-12-07). Here `T` is compared with each
/// conforming type and `body` called with that type, an instance specialized at the
/// caller (always inlined); the arrays a body captured are reinterpreted as the type
/// they already are, so the bits are the same.
public enum BLASSpecialization {
    /// `body` run with Float or Double when `T` is that type, else nil.
    @inlinable @inline(__always)
    public static func run<T: ComputeScalar, Body: BLASSpecializedBody>(_: T.Type, _ body: Body) -> Body.Output? {
        if T.self == Float.self { return body.run(Float.self) }
        if T.self == Double.self { return body.run(Double.self) }
        return nil
    }
}
