/// A format given by its parameters in a type, so that code generic over `Real`
/// specializes for it. Define your own with a caseless enum:
///
/// ```swift
/// enum MyFP6: FloatFormatSpec {
///     static var format: FloatFormat {
///         FloatFormat(literal: "fp6", p: 3, emin: -2, emax: 4, subnormals: true, infinities: false,
///                     nan: false, overflow: .saturate)
///     }
/// }
/// typealias FP6 = LowPrecisionFloat<MyFP6, NearestEven>
/// ```
/// (the literal-name initializer folds to constants and does not check; ``validate()``
/// checks, and the throwing `FloatFormat(name:p:emin:emax:…)` validates). To give the
/// format a name in experiment files, make the spec a ``RegisteredFormat`` and add
/// one line to ``ScalarRegistry/forEachRegistered(_:)``.
public protocol FloatFormatSpec: Sendable {
    static var format: FloatFormat { get }
}

extension FloatFormatSpec {
    /// Checks the spec's parameters with the validating initializer.
    public static func validate() throws {
        let f = format
        _ = try FloatFormat(name: f.name, p: f.p, emin: f.emin, emax: f.emax, subnormals: f.subnormals,
                            infinities: f.infinities, nan: f.nan, overflow: f.overflow)
    }
}

// The registered formats (each listed once in ``ScalarRegistry/forEachRegistered(_:)``;
// bf16's spec is beside ``BFloat16``).

/// IEEE binary16 (fp16). Round-to-nearest is emulated too, not the native `Float16`,
/// whose fused multiply-add rounds twice on x86 (computed in binary32, then rounded
/// again), which the test suite shows.
public enum FP16Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat { .fp16 }
}
/// NVIDIA TensorFloat-32: binary32's range with fp16's precision.
public enum TF32Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat { .tf32 }
}
/// IEEE binary32; round-to-nearest is the native `Float`, other modes are emulated.
public enum FP32Spec: RegisteredFormat {
    public typealias Nearest = Float
    @inlinable public static var format: FloatFormat { .fp32 }
}
/// OCP FP8 E4M3 ("e4m3fn"): no infinities, NaN = S.1111.111, largest finite 448;
/// overflow gives NaN as in ml_dtypes' `float8_e4m3fn` (use a saturating spec for
/// the OCP saturating conversion).
public enum E4M3Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat {
        FloatFormat(literal: "e4m3", p: 4, emin: -6, emax: 8, subnormals: true, infinities: false, overflow: .nan)
    }
}
/// OCP FP8 E5M2: IEEE-like, binary16's range with p = 3.
public enum E5M2Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat {
        FloatFormat(literal: "e5m2", p: 3, emin: -14, emax: 15, subnormals: true, infinities: true, overflow: .infinity)
    }
}
/// OCP MX FP6 E3M2 (ml_dtypes `float6_e3m2fn`): no infinities and no NaN, largest
/// finite 28, overflow saturates.
public enum E3M2Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat {
        FloatFormat(literal: "e3m2", p: 3, emin: -2, emax: 4, subnormals: true, infinities: false, nan: false, overflow: .saturate)
    }
}
/// OCP MX FP6 E2M3 (ml_dtypes `float6_e2m3fn`): no infinities and no NaN, largest
/// finite 7.5, overflow saturates.
public enum E2M3Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat {
        FloatFormat(literal: "e2m3", p: 4, emin: 0, emax: 2, subnormals: true, infinities: false, nan: false, overflow: .saturate)
    }
}
/// OCP MX FP4 E2M1 (ml_dtypes `float4_e2m1fn`): no infinities and no NaN, largest
/// finite 6, overflow saturates.
public enum E2M1Spec: RegisteredFormat {
    @inlinable public static var format: FloatFormat {
        FloatFormat(literal: "e2m1", p: 2, emin: 0, emax: 2, subnormals: true, infinities: false, nan: false, overflow: .saturate)
    }
}

/// A value of the format `Format`, every operation rounded with `Rounding`.
///
/// Values are stored exactly as binary32; see ``EmulatedFloat`` for the accuracy
/// contract and ``FormatRounding`` for how each operation reaches a single rounding.
@frozen
public struct LowPrecisionFloat<Format: FloatFormatSpec, Rounding: RoundingRule>: EmulatedFloat {
    @usableFromInline var storage: Float

    @inlinable public static var format: FloatFormat { Format.format }
    @inlinable public static var roundingMode: RoundingMode { Rounding.mode }
    @inlinable public var floatValue: Float { storage }
    @inlinable public init(exactFloat value: Float) { storage = value }
}

public typealias TF32 = LowPrecisionFloat<TF32Spec, NearestEven>
public typealias FP8E4M3 = LowPrecisionFloat<E4M3Spec, NearestEven>
public typealias FP8E5M2 = LowPrecisionFloat<E5M2Spec, NearestEven>
public typealias FP6E3M2 = LowPrecisionFloat<E3M2Spec, NearestEven>
public typealias FP6E2M3 = LowPrecisionFloat<E2M3Spec, NearestEven>
public typealias FP4E2M1 = LowPrecisionFloat<E2M1Spec, NearestEven>
/// binary16 emulated through ``FormatRounding`` (the native `Float16` is used for
/// round-to-nearest where it is correctly rounded; see the registry).
public typealias FP16Emulated = LowPrecisionFloat<FP16Spec, NearestEven>
