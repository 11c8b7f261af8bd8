import RealModule

/// A `Real` the harness can run a computation in: it has a format name and
/// converts to and from `Double` (rounding into the format with its own mode;
/// back to Double correctly rounded to nearest, exactly when the format fits).
public protocol StudyScalar: Real, Sendable {
    /// The NUMERICS.md name of the format (`bf16`, `fp32`, `mpfr256`, …).
    static var formatName: String { get }
    /// `x` rounded into this type.
    init(roundingDouble x: Double)
    /// The value rounded to nearest Double (exact for formats inside binary64).
    var doubleValue: Double { get }
}

extension Float: StudyScalar {
    public static var formatName: String { "fp32" }
    @inlinable public init(roundingDouble x: Double) { self = Float(x) }
    @inlinable public var doubleValue: Double { Double(self) }
}

extension Double: StudyScalar {
    public static var formatName: String { "fp64" }
    @inlinable public init(roundingDouble x: Double) { self = x }
    @inlinable public var doubleValue: Double { self }
}

/// Native binary16. Its `+ − × ÷ √` are correctly rounded, but on x86 its
/// `addingProduct` (fma) is computed in binary32 and rounded again, which is not
/// correctly rounded (the test suite records cases); the registry's `fp16` is
/// therefore `LowPrecisionFloat<FP16Spec, NearestEven>`.
extension Float16: StudyScalar {
    public static var formatName: String { "fp16" }
    /// `Float16(Double)` rounds directly (compiler-rt `__truncdfhf2`), no double rounding.
    @inlinable public init(roundingDouble x: Double) { self = Float16(x) }
    @inlinable public var doubleValue: Double { Double(self) }
}
