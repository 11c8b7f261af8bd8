import RealModule
import CKernels

/// A `Real` a computation runs in (a policy's compute or Krylov format, a reference):
/// it has a format name and converts to and from `Double` (rounding into the format
/// with its own mode; back to Double correctly rounded to nearest, exactly when the
/// format fits). Named for what it is, not for its users (it was `StudyScalar`, after
/// the top layer, while it sits at the bottom); its requirements with defaults are the
/// per-type customization points (README, Architecture).
public protocol ComputeScalar: Real, Sendable {
    /// The NUMERICS.md name of the format (`bf16`, `fp32`, `mpfr256`, …).
    static var formatName: String { get }
    /// `x` rounded into this type.
    init(roundingDouble x: Double)
    /// The value rounded to nearest Double (exact for formats inside binary64).
    var doubleValue: Double { get }
    /// The recursive dot product `s ← fl(s + fl(xᵢ·yᵢ))` left to right from +0 (the
    /// `recursive` accumulation policy) by a faster route with the same bits, or nil
    /// when the type has none and the generic loop runs. `MPFloat`: CKernels' limb loop.
    static func recursiveDot(_ x: UnsafeBufferPointer<Self>, _ y: UnsafeBufferPointer<Self>) -> Self?
    /// ``recursiveDot(_:_:)`` of `Dual<Self>` vectors (what `Dual`'s `recursiveDot` asks
    /// its component type), or nil. `MPFloat`: CKernels' limb loop over dual numbers.
    static func dualRecursiveDot(_ x: UnsafeBufferPointer<Dual<Self>>, _ y: UnsafeBufferPointer<Dual<Self>>) -> Dual<Self>?
    /// `yᵢ ← yᵢ.addingProduct(a, xᵢ)` (one fused rounding per element) by a faster route
    /// with the same bits, returning true; false when the type has none and the generic
    /// loop runs. `Float`, `Double`: CKernels' loops with the CPU's FMA in vector lanes.
    static func fusedAxpy(_ a: Self, _ x: UnsafeBufferPointer<Self>, _ y: UnsafeMutableBufferPointer<Self>) -> Bool
    /// `yᵢ ← (a_m·x_m,ᵢ + yᵢ)` rounded once to binary64 for m = 0, 1, … in order at every i,
    /// the x_m widened exactly (the fp64 Krylov updates of ``FormatArithmetic/fmaEach(_:_:_:)``
    /// against stored basis vectors, each `y.count` long), by a faster route with the same
    /// bits, returning true; false: the generic loop runs. `Float`, `Double`: CKernels'
    /// loops with the CPU's FMA in vector lanes, y read and written once for all m.
    static func fusedAxpyBinary64(_ a: UnsafeBufferPointer<Double>, _ xs: UnsafeBufferPointer<UnsafePointer<Self>?>,
                                  _ y: UnsafeMutableBufferPointer<Double>) -> Bool
    /// The binary64 recursive fused dot products `s ← fma(x_m,ᵢ, yᵢ, s)` from +0 in order of
    /// i (``FormatArithmetic/fmaSums(_:_:)`` in fp64) into `out[m]`, by a faster route with
    /// the same bits, returning true; false: the generic loop runs. `Float`, `Double`:
    /// CKernels' chains on the FMA instruction (four at a time), not a call of the C
    /// library's `fma` per element.
    static func fusedDotsBinary64(_ xs: UnsafeBufferPointer<UnsafePointer<Self>?>, _ y: UnsafeBufferPointer<Double>,
                                  _ out: UnsafeMutableBufferPointer<Double>) -> Bool
    /// ``Elementary/tanh(_:)`` of every element by a faster route with the same bits, or nil
    /// (the elementwise loop runs). `Float`: the vector kernel of ``Binary32Tanh``.
    static func tanhValues(_ z: [Self]) -> [Self]?
    /// ``tanhValues(_:)`` of `Dual<Self>` numbers (what `Dual`'s `tanhValues` asks its
    /// component type), or nil. `Float`: the values through the vector kernel.
    static func dualTanhValues(_ z: [Dual<Self>]) -> [Dual<Self>]?
    /// The Doubles whose binary32 roundings are `x` (a data set rounded once), rounded into
    /// this type, when that needs no pass over the Doubles — `Float`: `x` itself;
    /// `Dual<Float>`: `x` with zero tangents — else nil (the caller rounds the Doubles).
    static func fromBinary32Rounding(_ x: [Float]) -> [Self]?
    /// `x` as this type at no cost when every element is already one (`Double`: `x`), else nil.
    static func sameValues(_ x: [Double]) -> [Self]?
    /// `x` rounded into the stage format `f` as Doubles, when a faster pass than rounding each
    /// value gives the same bits, else nil. `Float`: plain widening when `f` contains binary32
    /// (``ScalarArrays/doubles(_:roundedBy:)``).
    static func doublesExactly(_ x: [Self], roundedBy f: FormatArithmetic) -> [Double]?
    /// Whether every value of the type is exactly a binary32 number (then widening to
    /// binary32 is exact, and products widened to fp32, or binary32 BLAS on widened copies,
    /// apply). `Float`, `Float16` and every emulated format: true.
    static var exactInBinary32: Bool { get }
    /// Whether every value of the type is exactly a binary64 number. Default: ``exactInBinary32``; `Double`: true.
    static var exactInBinary64: Bool { get }
}

extension ComputeScalar {
    @inlinable @inline(__always)
    public static func recursiveDot(_ x: UnsafeBufferPointer<Self>, _ y: UnsafeBufferPointer<Self>) -> Self? { nil }
    @inlinable @inline(__always)
    public static func dualRecursiveDot(_ x: UnsafeBufferPointer<Dual<Self>>, _ y: UnsafeBufferPointer<Dual<Self>>) -> Dual<Self>? { nil }
    @inlinable @inline(__always)
    public static func fusedAxpy(_ a: Self, _ x: UnsafeBufferPointer<Self>, _ y: UnsafeMutableBufferPointer<Self>) -> Bool { false }
    @inlinable @inline(__always)
    public static func fusedAxpyBinary64(_ a: UnsafeBufferPointer<Double>, _ xs: UnsafeBufferPointer<UnsafePointer<Self>?>,
                                         _ y: UnsafeMutableBufferPointer<Double>) -> Bool { false }
    @inlinable @inline(__always)
    public static func fusedDotsBinary64(_ xs: UnsafeBufferPointer<UnsafePointer<Self>?>, _ y: UnsafeBufferPointer<Double>,
                                         _ out: UnsafeMutableBufferPointer<Double>) -> Bool { false }
    @inlinable @inline(__always) public static func tanhValues(_ z: [Self]) -> [Self]? { nil }
    @inlinable @inline(__always) public static func dualTanhValues(_ z: [Dual<Self>]) -> [Dual<Self>]? { nil }
    @inlinable @inline(__always) public static func fromBinary32Rounding(_ x: [Float]) -> [Self]? { nil }
    @inlinable @inline(__always) public static func sameValues(_ x: [Double]) -> [Self]? { nil }
    @inlinable @inline(__always) public static func doublesExactly(_ x: [Self], roundedBy f: FormatArithmetic) -> [Double]? { nil }
    @inlinable @inline(__always) public static var exactInBinary32: Bool { false }
    @inlinable @inline(__always) public static var exactInBinary64: Bool { exactInBinary32 }
}

extension EmulatedFloat {
    /// Emulated values are stored exactly in a binary32 carrier.
    @inlinable @inline(__always) public static var exactInBinary32: Bool { true }
}

extension Float: ComputeScalar {
    public static var formatName: String { "fp32" }
    @inlinable public static var exactInBinary32: Bool { true }
    @inlinable public init(roundingDouble x: Double) { self = Float(x) }
    @inlinable public var doubleValue: Double { Double(self) }
    @inlinable public static func tanhValues(_ z: [Float]) -> [Float]? { Binary32Tanh.tanh(z) }
    /// Value t = tanh x through the vector kernel, tangent (1 − t·t)·x' (`Dual.tanh`'s formula): the same bits.
    @inlinable
    public static func dualTanhValues(_ z: [Dual<Float>]) -> [Dual<Float>]? {
        let t = Binary32Tanh.tanh(z.map(\.value))
        return [Dual<Float>](unsafeUninitializedCapacity: z.count) { out, count in
            for i in z.indices { out.initializeElement(at: i, to: Dual(t[i], (1 - t[i] * t[i]) * z[i].tangent)) }
            count = z.count
        }
    }
    @inlinable public static func fromBinary32Rounding(_ x: [Float]) -> [Float]? { x }
    /// A binary32 value is its own rounding into fp32 or fp64: widening (``ScalarArrays``).
    @inlinable
    public static func doublesExactly(_ x: [Float], roundedBy f: FormatArithmetic) -> [Double]? {
        f.containsBinary32 ? ScalarArrays.widening(x, canonicalNaN: f.isBinary32Nearest) : nil
    }
    @inlinable
    public static func fusedAxpy(_ a: Float, _ x: UnsafeBufferPointer<Float>, _ y: UnsafeMutableBufferPointer<Float>) -> Bool {
        hh_saxpy_fused(y.count, a, x.baseAddress, y.baseAddress)
        return true
    }
    @inlinable
    public static func fusedAxpyBinary64(_ a: UnsafeBufferPointer<Double>, _ xs: UnsafeBufferPointer<UnsafePointer<Float>?>,
                                         _ y: UnsafeMutableBufferPointer<Double>) -> Bool {
        hh_daxpy_fused_many_f32x(y.count, xs.count, a.baseAddress, xs.baseAddress, y.baseAddress)
        return true
    }
    @inlinable
    public static func fusedDotsBinary64(_ xs: UnsafeBufferPointer<UnsafePointer<Float>?>, _ y: UnsafeBufferPointer<Double>,
                                         _ out: UnsafeMutableBufferPointer<Double>) -> Bool {
        hh_ddot_fused_chains_f32x(y.count, xs.count, xs.baseAddress, y.baseAddress, out.baseAddress)
        return true
    }
}

extension Double: ComputeScalar {
    public static var formatName: String { "fp64" }
    @inlinable public static var exactInBinary64: Bool { true }
    @inlinable public static func sameValues(_ x: [Double]) -> [Double]? { x }
    @inlinable public init(roundingDouble x: Double) { self = x }
    @inlinable public var doubleValue: Double { self }
    @inlinable
    public static func fusedAxpy(_ a: Double, _ x: UnsafeBufferPointer<Double>, _ y: UnsafeMutableBufferPointer<Double>) -> Bool {
        hh_daxpy_fused(y.count, a, x.baseAddress, y.baseAddress)
        return true
    }
    @inlinable
    public static func fusedAxpyBinary64(_ a: UnsafeBufferPointer<Double>, _ xs: UnsafeBufferPointer<UnsafePointer<Double>?>,
                                         _ y: UnsafeMutableBufferPointer<Double>) -> Bool {
        hh_daxpy_fused_many(y.count, xs.count, a.baseAddress, xs.baseAddress, y.baseAddress)
        return true
    }
    @inlinable
    public static func fusedDotsBinary64(_ xs: UnsafeBufferPointer<UnsafePointer<Double>?>, _ y: UnsafeBufferPointer<Double>,
                                         _ out: UnsafeMutableBufferPointer<Double>) -> Bool {
        hh_ddot_fused_chains(y.count, xs.count, xs.baseAddress, y.baseAddress, out.baseAddress)
        return true
    }
}

/// Native binary16. Its `+ − × ÷ √` are correctly rounded, but on x86 its
/// `addingProduct` (fma) is computed in binary32 and rounded again, which is not
/// correctly rounded (the test suite records cases); the registry's `fp16` is
/// therefore `LowPrecisionFloat<FP16Spec, NearestEven>`.
extension Float16: ComputeScalar {
    public static var formatName: String { "fp16" }
    @inlinable public static var exactInBinary32: Bool { true }
    /// `Float16(Double)` rounds directly (compiler-rt `__truncdfhf2`), no double rounding.
    @inlinable public init(roundingDouble x: Double) { self = Float16(x) }
    @inlinable public var doubleValue: Double { Double(self) }
}

/// Conversions of whole arrays between fp64 carriers and a study scalar.
///
/// Callers often hold the scalar type only as a generic parameter chosen at run time
/// (the format of a policy stage), where `x.map { T(roundingDouble: $0) }` runs
/// unspecialized: a witness call and an array append per element. These run a loop
/// specialized for the concrete type (``ScalarRegistry/specialized(_:_:)``; the same
/// `init(roundingDouble:)` / `doubleValue`, so the same values); other types get one
/// preallocated buffer and a plain loop.
public enum ScalarArrays {
    /// `x` rounded elementwise into `T`.
    @inlinable
    public static func rounding<T: ComputeScalar>(_ x: [Double], to _: T.Type) -> [T] {
        if let same = T.sameValues(x) { return same }
        var out: [T] = []
        let done = withUnsafeMutablePointer(to: &out) { ScalarRegistry.specialized(T.self, Rounding(x: x, out: UnsafeMutableRawPointer($0))) != nil }
        return done ? out : fill(x, T.init(roundingDouble:))
    }

    /// The values of `x` rounded into a stage format (`.fp64`: the values as they are), in one pass.
    @inlinable
    public static func doubles<T: ComputeScalar>(_ x: [T], roundedBy f: FormatArithmetic) -> [Double] {
        var x = x
        return withUnsafePointer(to: &x) { ScalarRegistry.specialized(T.self, Doubles(x: UnsafeRawPointer($0), f: f)) }
            ?? fill(x) { f.round($0.doubleValue) }
    }

    // Not generic, so that `run<U>` specializes fully (see Kernels' Specialized).
    @usableFromInline
    struct Rounding: SpecializedBody {
        @usableFromInline let x: [Double], out: UnsafeMutableRawPointer
        @inlinable init(x: [Double], out: UnsafeMutableRawPointer) { self.x = x; self.out = out }
        @inlinable func run<U: ComputeScalar>(_: U.Type) { out.assumingMemoryBound(to: [U].self).pointee = fill(x, U.init(roundingDouble:)) }
    }

    @usableFromInline
    struct Doubles: SpecializedBody {
        @usableFromInline let x: UnsafeRawPointer, f: FormatArithmetic
        @inlinable init(x: UnsafeRawPointer, f: FormatArithmetic) { self.x = x; self.f = f }
        @inlinable func run<U: ComputeScalar>(_: U.Type) -> [Double] {
            let xs = x.assumingMemoryBound(to: [U].self).pointee
            // A gradient in Float rounded into fp32 or fp64 (the common policy): every value
            // is its own rounding, so the pass is plain widening (see `widening`).
            if let exact = U.doublesExactly(xs, roundedBy: f) { return exact }
            return fill(xs) { f.round($0.doubleValue) }
        }
    }

    /// `x` widened to Double: `FormatArithmetic.round` of each value for a format that
    /// contains binary32 (fp32 or fp64 to nearest), whose only effect on a binary32 value
    /// is on NaN, which the fp32 rounding makes canonical (±.nan, payload dropped) and fp64
    /// keeps (`canonicalNaN` false). A binary32 subnormal, zero or infinity is exact in
    /// either. One branch-free pass that vectorizes (`f.round` per element takes a branch,
    /// a call for every zero and subnormal, and a Float→Double→Float round trip for the
    /// rest), then a fix-up pass only when a NaN was seen. Bit for bit `f.round`
    /// (ScalarsTests). Not timed alone: in the profile of SmolLM2's gradient the widening
    /// pass is ~1% of the run's samples, most of them page faults on its fresh fp64 array.
    @inlinable
    public static func widening(_ x: [Float], canonicalNaN: Bool) -> [Double] {
        var sawNaN = false
        var out = [Double](unsafeUninitializedCapacity: x.count) { out, count in
            x.withUnsafeBufferPointer { xs in
                var nan: UInt8 = 0
                for i in 0..<xs.count {
                    let v = xs[i]
                    nan |= v != v ? 1 : 0
                    (out.baseAddress! + i).initialize(to: Double(v))
                }
                sawNaN = nan != 0
            }
            count = x.count
        }
        if sawNaN && canonicalNaN {
            for i in out.indices where out[i].isNaN { out[i] = out[i].sign == .minus ? -.nan : .nan }
        }
        return out
    }

    @inlinable @inline(__always)
    static func fill<A, B>(_ x: [A], _ f: (A) -> B) -> [B] {
        [B](unsafeUninitializedCapacity: x.count) { out, count in
            x.withUnsafeBufferPointer { xs in
                for i in 0..<xs.count { (out.baseAddress! + i).initialize(to: f(xs[i])) }
            }
            count = x.count
        }
    }
}
