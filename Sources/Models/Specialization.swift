import RealModule
import Scalars
import LinearAlgebra

/// A model's reverse pass, written once generic over the scalar.
///
/// The studies choose the scalar at run time (a format name in an experiment file)
/// and reach the model through `any DifferentiableModel`, a context in which the
/// compiler cannot specialize: every arithmetic operation would go through a protocol
/// witness on boxed values, about 30× slower than the specialized code for Float.
/// ``specializedGradient(_:samples:accumulation:)`` compares the scalar type's
/// metadata with the types the studies use most and calls, for those, an instance of
/// ``gradientCore(_:samples:accumulation:)`` that the compiler specialized for the
/// concrete model and scalar; the arrays are reinterpreted as the type they already
/// are. The code and its arithmetic are the same, so results are bit-identical (the
/// committed study results, regenerated, are byte-identical); other types run the
/// generic instance.
public protocol GradientCore {
    func gradientCore<T: StudyScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T])
}

extension GradientCore {
    @inlinable @inline(__always)
    public func specializedGradient<T: StudyScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        @inline(__always) func run<U: StudyScalar>(_: U.Type) -> (loss: T, gradient: [T]) {
            let r = gradientCore(unsafeBitCast(theta, to: [U].self), samples: samples, accumulation: accumulation)
            return (unsafeBitCast(r.loss, to: T.self), unsafeBitCast(r.gradient, to: [T].self))
        }
        if T.self == Float.self { return run(Float.self) }
        if T.self == Double.self { return run(Double.self) }
        if T.self == BFloat16.self { return run(BFloat16.self) }
        if T.self == Dual<Float>.self { return run(Dual<Float>.self) }
        if T.self == Dual<Double>.self { return run(Dual<Double>.self) }
        if T.self == Dual<BFloat16>.self { return run(Dual<BFloat16>.self) }
        if T.self == LowPrecisionFloat<FP16Spec, NearestEven>.self { return run(LowPrecisionFloat<FP16Spec, NearestEven>.self) }
        if T.self == LowPrecisionFloat<BF16Spec, Stochastic>.self { return run(LowPrecisionFloat<BF16Spec, Stochastic>.self) }
        if T.self == LowPrecisionFloat<FP32Spec, Stochastic>.self { return run(LowPrecisionFloat<FP32Spec, Stochastic>.self) }
        if T.self == MPFloat<256>.self { return run(MPFloat<256>.self) }
        if T.self == Dual<MPFloat<256>>.self { return run(Dual<MPFloat<256>>.self) }
        return gradientCore(theta, samples: samples, accumulation: accumulation)
    }
}
