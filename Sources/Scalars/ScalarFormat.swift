/// A format as a precision policy, an experiment file or a command names it, parsed once.
///
/// The one parser of format names: a registered binary format (``FloatFormat/named``:
/// bf16, fp16, tf32, fp32, e4m3, …, fp64), a user-defined binary format written
/// `p=…,emin=…,emax=…[,subnormals=…][,infinities=…][,nan=…][,overflow=…][,name=…]`
/// (inside a policy in brackets: `param=[p=8,emin=-6,emax=7]`), or `mpfrN`. Policies hold
/// their stages as values of this type; ``ScalarRegistry/run(format:rounding:_:)``,
/// ``FormatArithmetic`` and `cast` take it.
public struct ScalarFormat: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// A binary format inside binary64 (named or user-defined).
        case binary(FloatFormat)
        /// MPFR at `bits` of precision.
        case mpfr(bits: Int)
    }
    public let kind: Kind
    /// The name as written, lowercased (a user format's text): what tables and manifests print.
    public let name: String

    public init(_ text: String) throws {
        let n = text.lowercased()
        if n.hasPrefix("mpfr"), let b = Int(n.dropFirst(4)) {
            guard b >= 2 && b <= 1 << 20 else { throw ScalarRegistryError.unknownFormat(text) }
            kind = .mpfr(bits: b)
        } else if let f = FloatFormat.named.first(where: { $0.name == n }) {
            kind = .binary(f)
        } else if n.contains("=") {
            kind = .binary(try FloatFormat.parseUser(text))
        } else {
            throw ScalarRegistryError.unknownFormat(text)
        }
        name = n
    }

    public static let fp64 = try! ScalarFormat("fp64")

    public var description: String { name }
    /// The binary format, or nil for MPFR.
    public var binary: FloatFormat? { if case .binary(let f) = kind { return f } else { return nil } }
    /// Significand bits: p, or N for mpfrN.
    public var precisionBits: Int {
        switch kind {
        case .binary(let f): return f.p
        case .mpfr(let b): return b
        }
    }
    /// Whether the format is user-defined (written by its parameters).
    public var isUserDefined: Bool { name.contains("=") }
    /// fp64 and mpfrN round to nearest only (a policy's `rounding=` does not apply to them).
    public var roundsToNearestOnly: Bool {
        switch kind {
        case .mpfr: return true
        case .binary(let f): return f == .fp64
        }
    }
}
