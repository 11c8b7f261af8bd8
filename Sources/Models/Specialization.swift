import RealModule
import Scalars
import LinearAlgebra

/// A model's reverse pass, written once generic over the scalar.
///
/// The studies choose the scalar at run time (a format name in an experiment file)
/// and reach the model through `any DifferentiableModel`, a context in which the
/// compiler cannot specialize: every arithmetic operation would go through a protocol
/// witness on boxed values, about 30× slower than the specialized code for Float.
/// ``specializedGradient(_:samples:accumulation:)`` calls, for the types of
/// ``ScalarRegistry/specializedForModels(_:_:)``, an instance of
/// ``gradientCore(_:samples:accumulation:)`` that the compiler specialized for the
/// concrete model and scalar; the arrays are reinterpreted as the type they already
/// are. The code and its arithmetic are the same, so results are bit-identical (the
/// committed study results, regenerated, are byte-identical); other types run the
/// generic instance.
public protocol GradientCore {
    func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T])
}

extension GradientCore {
    @inlinable @inline(__always)
    public func specializedGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation: Accumulation) -> (loss: T, gradient: [T]) {
        // θ and the result behind untyped pointers (no closures: the dispatch stays in this
        // function's body, where the optimizer specializes each branch).
        let tp = UnsafeMutablePointer<[T]>.allocate(capacity: 1)
        tp.initialize(to: theta)
        let op = UnsafeMutablePointer<(loss: T, gradient: [T])>.allocate(capacity: 1)
        op.initialize(to: (.zero, []))
        defer { tp.deinitialize(count: 1); tp.deallocate(); op.deinitialize(count: 1); op.deallocate() }
        let body = GradientBody(model: self, theta: UnsafeRawPointer(tp), samples: samples, accumulation: accumulation, out: UnsafeMutableRawPointer(op))
        if ScalarRegistry.specializedForModels(T.self, body) != nil { return op.pointee }
        return gradientCore(theta, samples: samples, accumulation: accumulation)
    }
}

/// ``GradientCore/gradientCore(_:samples:accumulation:)`` with the concrete scalar type.
/// Generic over the model only (concrete where it is built), with untyped pointers to θ
/// and the result, so that `run<U>` specializes fully (see Kernels' `Specialized`).
@usableFromInline
struct GradientBody<M: GradientCore>: SpecializedBody {
    @usableFromInline let model: M, theta: UnsafeRawPointer, samples: Range<Int>, accumulation: Accumulation, out: UnsafeMutableRawPointer
    @inlinable init(model: M, theta: UnsafeRawPointer, samples: Range<Int>, accumulation: Accumulation, out: UnsafeMutableRawPointer) {
        self.model = model; self.theta = theta; self.samples = samples; self.accumulation = accumulation; self.out = out
    }
    @inlinable func run<U: ComputeScalar>(_: U.Type) {
        let r = model.gradientCore(theta.assumingMemoryBound(to: [U].self).pointee, samples: samples, accumulation: accumulation)
        out.assumingMemoryBound(to: (loss: U, gradient: [U]).self).pointee = r
    }
}
