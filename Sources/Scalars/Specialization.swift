import RealModule

/// A generic computation to run with the concrete type a generic parameter stands
/// for (Swift closures cannot be generic, so the body is a type). See
/// ``ScalarRegistry/specialized(_:_:)``.
public protocol SpecializedBody {
    associatedtype Output
    func run<U: ComputeScalar>(_ type: U.Type) -> Output
}

extension ScalarRegistry {
    /// Runs `body` with the concrete type `T` stands for when `T` is one of the types
    /// the harness compiles specialized code for, else returns nil (the caller then runs
    /// its generic code).
    ///
    /// Why: the harness chooses a format at run time (a name in an experiment file) and
    /// reaches models and kernels with the scalar as a generic parameter, a context in
    /// which the compiler cannot specialize; every `+` and `*` would go through a
    /// protocol witness on boxed values, 30–100× slower than the specialized loop. Hot
    /// generic code (the kernels' loops, each model's reverse pass, the array
    /// conversions) asks this function once per call; it compares `T`'s metadata with
    /// each type below and calls `body` with that type, an instance the compiler
    /// specializes at the caller (this function is always inlined). The arrays the body
    /// captured are reinterpreted as the type they already are, so the arithmetic is the
    /// same code and the bits are the same; only the dispatch differs.
    ///
    /// This is the one list: every format of the registry (``forEachRegistered(_:)``)
    /// under every rounding mode, fp64, the dual numbers of exact HVPs in fp32, fp64 and
    /// bf16, and the mpfr256 reference with its dual numbers.
    /// User formats, the other MPFR precisions and the other dual numbers run generic
    /// code (correct, 2.5–4× slower for the emulated formats);
    /// `hessian-harness bench formats` shows which path each format takes and its speed.
    /// Adding a type here specializes every kernel for it; adding it to the models' tier
    /// too compiles every model's reverse pass once more.
    ///
    /// A body must not be generic (the compiler does not specialize partially; bodies
    /// take untyped pointers), and the call is best not placed in a closure of a generic
    /// function: the models' dispatch sat in `withUnsafePointer` closures that the
    /// optimizer did not inline, and ran generic (`nm` showed no specialization; `bench
    /// formats` fp32 1.2 ms instead of 0.25 ms). Check with `nm … | swift demangle`.
    @inlinable @inline(__always)
    public static func specialized<T: ComputeScalar, B: SpecializedBody>(_: T.Type, _ body: B) -> B.Output? {
        // The models' tier, then every registered format under every mode.
        if let r = specializedForModels(T.self, body) { return r }
        if T.self is any EmulatedFloat.Type {
            var byType = ByType<T, B>(body: body)
            if let r = forEachRegistered(&byType) { return r }
        }
        return nil
    }

    /// ``specialized(_:_:)`` over the registry: `T` against each format's types.
    @usableFromInline
    struct ByType<T: ComputeScalar, B: SpecializedBody>: RegisteredFormatVisitor {
        @usableFromInline let body: B
        @inlinable @inline(__always) init(body: B) { self.body = body }
        @inlinable @inline(__always)
        func visit<S: RegisteredFormat>(_: S.Type) -> B.Output? {
            if T.self == S.Nearest.self { return body.run(S.Nearest.self) }
            return everyMode(S.self, T.self, body)
        }
    }

    /// The part of ``specialized(_:_:)``'s list that the models' reverse passes are
    /// compiled for (`GradientCore`): the formats studies use most — fp32, fp64, bf16 and
    /// their dual numbers, fp16, stochastic bf16 and fp32, mpfr256 and its dual numbers.
    /// A reverse pass is large: compiling every model for the 38 types the full list had then (53 now)
    /// made an incremental release build take 6 min 45 s on two cores (a clean one takes
    /// about 5½ minutes with this tier). The other formats
    /// run a model's own code generic and its kernels (where the time goes) specialized.
    @inlinable @inline(__always)
    public static func specializedForModels<T: ComputeScalar, B: SpecializedBody>(_: T.Type, _ body: B) -> B.Output? {
        if T.self == Float.self { return body.run(Float.self) }
        if T.self == Double.self { return body.run(Double.self) }
        if T.self == BFloat16.self { return body.run(BFloat16.self) }
        if T.self == Dual<Float>.self { return body.run(Dual<Float>.self) }
        if T.self == Dual<Double>.self { return body.run(Dual<Double>.self) }
        if T.self == Dual<BFloat16>.self { return body.run(Dual<BFloat16>.self) }
        if T.self == MPFloat<256>.self { return body.run(MPFloat<256>.self) }
        if T.self == Dual<MPFloat<256>>.self { return body.run(Dual<MPFloat<256>>.self) }
        if T.self == LowPrecisionFloat<FP16Spec, NearestEven>.self { return body.run(LowPrecisionFloat<FP16Spec, NearestEven>.self) }
        if T.self == LowPrecisionFloat<BF16Spec, Stochastic>.self { return body.run(LowPrecisionFloat<BF16Spec, Stochastic>.self) }
        if T.self == LowPrecisionFloat<FP32Spec, Stochastic>.self { return body.run(LowPrecisionFloat<FP32Spec, Stochastic>.self) }
        return nil
    }

    /// Whether ``specializedForModels(_:_:)`` has an instance for `T`.
    public static func isSpecializedForModels<T: ComputeScalar>(_: T.Type) -> Bool {
        specializedForModels(T.self, SpecializationProbe()) ?? false
    }

    /// The emulated format `S` under each rounding mode.
    @inlinable @inline(__always)
    static func everyMode<S: FloatFormatSpec, T: ComputeScalar, B: SpecializedBody>(_: S.Type, _: T.Type, _ body: B) -> B.Output? {
        if T.self == LowPrecisionFloat<S, NearestEven>.self { return body.run(LowPrecisionFloat<S, NearestEven>.self) }
        if T.self == LowPrecisionFloat<S, Stochastic>.self { return body.run(LowPrecisionFloat<S, Stochastic>.self) }
        if T.self == LowPrecisionFloat<S, TowardZero>.self { return body.run(LowPrecisionFloat<S, TowardZero>.self) }
        if T.self == LowPrecisionFloat<S, Upward>.self { return body.run(LowPrecisionFloat<S, Upward>.self) }
        if T.self == LowPrecisionFloat<S, Downward>.self { return body.run(LowPrecisionFloat<S, Downward>.self) }
        return nil
    }

    /// Whether ``specialized(_:_:)`` has an instance for `T`.
    public static func isSpecialized<T: ComputeScalar>(_: T.Type) -> Bool {
        specialized(T.self, SpecializationProbe()) ?? false
    }
}

struct SpecializationProbe: SpecializedBody {
    func run<U: ComputeScalar>(_: U.Type) -> Bool { true }
}
