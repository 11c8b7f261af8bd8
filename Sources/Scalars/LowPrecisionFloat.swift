/// A format given by its parameters in a type, so that code generic over `Real`
/// specializes for it. Define your own with a caseless enum:
///
/// ```swift
/// enum MyFP6: FloatFormatSpec {
///     static let format = FloatFormat(uncheckedName: "fp6", p: 3, emin: -2, emax: 4,
///                                     subnormals: true, infinities: false, overflow: .saturate)
/// }
/// typealias FP6 = LowPrecisionFloat<MyFP6, NearestEven>
/// ```
/// (`FloatFormat(name:p:emin:emax:…)` validates the parameters; the unchecked
/// initializer is for constants known to be valid, which ``validate()`` checks.)
public protocol FloatFormatSpec: Sendable {
    static var format: FloatFormat { get }
}

extension FloatFormatSpec {
    /// Checks the spec's parameters with the validating initializer.
    public static func validate() throws {
        let f = format
        _ = try FloatFormat(name: f.name, p: f.p, emin: f.emin, emax: f.emax, subnormals: f.subnormals,
                            infinities: f.infinities, overflow: f.overflow)
    }
}

/// IEEE binary16 (fp16).
public enum FP16Spec: FloatFormatSpec {
    @inlinable public static var format: FloatFormat {
        .fp16
    }
}
/// NVIDIA TensorFloat-32: binary32's range with fp16's precision.
public enum TF32Spec: FloatFormatSpec {
    @inlinable public static var format: FloatFormat {
        .tf32
    }
}
/// IEEE binary32, for rounding modes other than nearest (nearest is `Float`).
public enum FP32Spec: FloatFormatSpec {
    @inlinable public static var format: FloatFormat {
        .fp32
    }
}
/// OCP FP8 E4M3 ("e4m3fn"): no infinities, NaN = S.1111.111, largest finite 448;
/// overflow gives NaN as in ml_dtypes' `float8_e4m3fn` (use a saturating spec for
/// the OCP saturating conversion).
public enum E4M3Spec: FloatFormatSpec {
    @inlinable public static var format: FloatFormat {
        .e4m3
    }
}
/// OCP FP8 E5M2: IEEE-like, binary16's range with p = 3.
public enum E5M2Spec: FloatFormatSpec {
    @inlinable public static var format: FloatFormat {
        .e5m2
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
/// binary16 emulated through ``FormatRounding`` (the native `Float16` is used for
/// round-to-nearest where it is correctly rounded; see the registry).
public typealias FP16Emulated = LowPrecisionFloat<FP16Spec, NearestEven>
