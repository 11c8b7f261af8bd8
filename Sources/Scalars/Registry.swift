import RealModule

/// A computation generic over the scalar type, to be run in a format chosen at
/// run time (Swift closures cannot be generic, so the body is a type).
///
/// ```swift
/// struct SumOfSquares: ScalarBody {
///     let xs: [Double]
///     func run<T: ComputeScalar>(_: T.Type) -> Double {
///         xs.reduce(T(0)) { $0 + T(roundingDouble: $1) * T(roundingDouble: $1) }.doubleValue
///     }
/// }
/// let r = try ScalarRegistry.run(format: "bf16", rounding: .stochastic, SumOfSquares(xs: data))
/// ```
/// The registry's switch names a concrete type in each branch, so `run` is
/// specialized per format (the generic body is compiled once per type, with no
/// existentials in the inner loops).
public protocol ScalarBody {
    associatedtype Output
    func run<T: ComputeScalar>(_ type: T.Type) throws -> Output
}

public enum ScalarRegistryError: Error, CustomStringConvertible, Equatable {
    case unknownFormat(String)
    case unsupportedRounding(format: String, rounding: RoundingMode)
    /// A user-defined format (`p=…,emin=…,emax=…`) that does not parse or validate.
    case invalidUserFormat(String, reason: String)
    public var description: String {
        switch self {
        case .invalidUserFormat(let f, let why):
            return "user-defined format '\(f)': \(why)"
        case .unknownFormat(let n):
            return "unknown format '\(n)'; known: \(ScalarRegistry.names.joined(separator: ", "))"
        case .unsupportedRounding(let f, let r):
            return "format '\(f)' supports only rounding 'nearest', not '\(r.rawValue)'"
        }
    }
}

/// A format the registry knows by name (listed once in
/// ``ScalarRegistry/forEachRegistered(_:)``): its spec, and the type that computes in
/// it under round-to-nearest — `LowPrecisionFloat<Self, NearestEven>` unless a native
/// type does the same arithmetic bit for bit (bf16: ``BFloat16``, fp32: `Float`).
/// Other rounding modes are `LowPrecisionFloat<Self, Mode>`.
public protocol RegisteredFormat: FloatFormatSpec {
    associatedtype Nearest: ComputeScalar = LowPrecisionFloat<Self, NearestEven>
}

/// What to do with each registered format (``ScalarRegistry/forEachRegistered(_:)``);
/// the first non-nil result ends the walk.
public protocol RegisteredFormatVisitor {
    associatedtype Output
    mutating func visit<S: RegisteredFormat>(_ spec: S.Type) -> Output?
}

/// The formats of NUMERICS.md §1 by name, with the type that computes in each.
///
/// | name | nearest | other modes |
/// |---|---|---|
/// | bf16 | ``BFloat16`` | `LowPrecisionFloat<BF16Spec, Mode>` |
/// | fp16 | `LowPrecisionFloat<FP16Spec, NearestEven>` (not `Float16`: its fma double-rounds) | `LowPrecisionFloat<FP16Spec, Mode>` |
/// | tf32, e4m3, e5m2, e3m2, e2m3, e2m1 | `LowPrecisionFloat<Spec, NearestEven>` | `LowPrecisionFloat<Spec, Mode>` |
/// | fp32 | `Float` | `LowPrecisionFloat<FP32Spec, Mode>` |
/// | fp64 | `Double` | — |
/// | mpfrN, N ∈ 64·2^k up to 4096 | ``MPFloat``<N> | — |
/// | `p=…,emin=…,emax=…[,…]` (inside binary32) | `LowPrecisionFloat<UserFormatSlot<k>, NearestEven>` | `LowPrecisionFloat<UserFormatSlot<k>, Mode>` |
public enum ScalarRegistry {
    /// **The registry: every format emulated under a name, once.** Adding a format is its
    /// spec (a ``RegisteredFormat``, with its literal name and parameters) and one line
    /// here. Everything else follows from this list: the names experiment files accept
    /// (``run(format:rounding:_:)``), ``FloatFormat/named`` (help, errors, `formats`, `cast`),
    /// and the specialized instances of every kernel under every rounding mode
    /// (``specialized(_:_:)``).
    @inlinable @inline(__always)
    public static func forEachRegistered<V: RegisteredFormatVisitor>(_ v: inout V) -> V.Output? {
        if let r = v.visit(BF16Spec.self) { return r }
        if let r = v.visit(FP16Spec.self) { return r }
        if let r = v.visit(TF32Spec.self) { return r }
        if let r = v.visit(FP32Spec.self) { return r }
        if let r = v.visit(E4M3Spec.self) { return r }
        if let r = v.visit(E5M2Spec.self) { return r }
        if let r = v.visit(E3M2Spec.self) { return r }
        if let r = v.visit(E2M3Spec.self) { return r }
        if let r = v.visit(E2M1Spec.self) { return r }
        return nil
    }

    /// The registered formats, in the registry's order.
    public static let registeredFormats: [FloatFormat] = {
        struct Collect: RegisteredFormatVisitor {
            var formats: [FloatFormat] = []
            mutating func visit<S: RegisteredFormat>(_: S.Type) -> Never? { formats.append(S.format); return nil }
        }
        var c = Collect()
        _ = forEachRegistered(&c)
        return c.formats
    }()

    public static let mpfrPrecisions = [64, 128, 256, 512, 1024, 2048, 4096]
    /// The named binary formats (``FloatFormat/named``), then mpfrN.
    public static let names: [String] = FloatFormat.named.map(\.name) + mpfrPrecisions.map { "mpfr\($0)" }

    /// Runs `body` with the type of the format named `format` (parsed by ``ScalarFormat``) under `rounding`.
    public static func run<B: ScalarBody>(format: String, rounding: RoundingMode = .nearest, _ body: B) throws -> B.Output {
        try run(format: ScalarFormat(format), rounding: rounding, body)
    }

    /// Runs `body` with the type of `format` under `rounding`: the one dispatch point from a
    /// format to a type.
    public static func run<B: ScalarBody>(format: ScalarFormat, rounding: RoundingMode = .nearest, _ body: B) throws -> B.Output {
        let name = format.name
        switch format.kind {
        case .mpfr(let bits):
            guard rounding == .nearest else { throw ScalarRegistryError.unsupportedRounding(format: name, rounding: rounding) }
            switch bits {
            case 64: return try body.run(MPFloat<64>.self)
            case 128: return try body.run(MPFloat<128>.self)
            case 256: return try body.run(MPFloat<256>.self)
            case 512: return try body.run(MPFloat<512>.self)
            case 1024: return try body.run(MPFloat<1024>.self)
            case 2048: return try body.run(MPFloat<2048>.self)
            case 4096: return try body.run(MPFloat<4096>.self)
            default: throw ScalarRegistryError.unknownFormat(name)
            }
        case .binary(let f) where !format.isUserDefined:
            var byName = ByName(name: f.name, rounding: rounding, body: body)
            if let r = forEachRegistered(&byName) { return try r.get() }
            // fp64, the one named format that is not emulated.
            guard rounding == .nearest else { throw ScalarRegistryError.unsupportedRounding(format: name, rounding: rounding) }
            return try body.run(Double.self)
        case .binary(let f):
            // A user-defined format: p=…,emin=…,emax=…[,subnormals=…][,infinities=…][,nan=…][,overflow=…]
            guard f.isEmulatable else {
                throw ScalarRegistryError.invalidUserFormat(name, reason: "not emulated as a compute or Krylov format (that needs p ≤ 24 and "
                    + "the range, subnormals included, inside binary32); it can be a param, grad or hvp stage")
            }
            switch try UserFormats.slot(for: f) {
            case 0: return try emulated(UserFormatSlot<0>.self, rounding, body)
            case 1: return try emulated(UserFormatSlot<1>.self, rounding, body)
            case 2: return try emulated(UserFormatSlot<2>.self, rounding, body)
            case 3: return try emulated(UserFormatSlot<3>.self, rounding, body)
            case 4: return try emulated(UserFormatSlot<4>.self, rounding, body)
            case 5: return try emulated(UserFormatSlot<5>.self, rounding, body)
            case 6: return try emulated(UserFormatSlot<6>.self, rounding, body)
            default: return try emulated(UserFormatSlot<7>.self, rounding, body)
            }
        }
    }

    /// ``run(format:rounding:_:)`` for the registered format named `name`.
    struct ByName<B: ScalarBody>: RegisteredFormatVisitor {
        let name: String, rounding: RoundingMode, body: B
        func visit<S: RegisteredFormat>(_: S.Type) -> Result<B.Output, any Error>? {
            guard S.format.name == name else { return nil }
            return Result { rounding == .nearest ? try body.run(S.Nearest.self) : try emulated(S.self, rounding, body) }
        }
    }

    static func emulated<S: FloatFormatSpec, B: ScalarBody>(_ spec: S.Type, _ mode: RoundingMode, _ body: B) throws -> B.Output {
        switch mode {
        case .nearest: return try body.run(LowPrecisionFloat<S, NearestEven>.self)
        case .towardZero: return try body.run(LowPrecisionFloat<S, TowardZero>.self)
        case .up: return try body.run(LowPrecisionFloat<S, Upward>.self)
        case .down: return try body.run(LowPrecisionFloat<S, Downward>.self)
        case .stochastic: return try body.run(LowPrecisionFloat<S, Stochastic>.self)
        }
    }
}

extension FloatFormat {
    /// The registered formats' parameters by name, for tests and tools.
    public static var e4m3: FloatFormat { E4M3Spec.format }
    public static var e5m2: FloatFormat { E5M2Spec.format }
}
