/// Arithmetic on Doubles rounded into a format chosen at run time: each
/// operation's exact result is rounded once (TwoSum / TwoProduct / FMA residuals
/// supply the tail, see ``FormatRounding``). Used by pipeline stages whose format
/// is a policy setting (NUMERICS.md §2: `param`, `grad`, `hvp`) rather than a type.
///
/// `format == nil` means binary64 with round-to-nearest (plain Double arithmetic).
public struct FormatArithmetic: Sendable, Equatable, CustomStringConvertible {
    public var format: FloatFormat?
    public var mode: RoundingMode

    public init(format: FloatFormat?, mode: RoundingMode = .nearest) { self.format = format; self.mode = mode }
    public static let fp64 = FormatArithmetic(format: nil)

    /// A stage format by name: the emulated formats, `fp32`, `fp64` (or any `mpfrN`,
    /// which at this stage means "no rounding beyond binary64").
    public init(name: String, mode: RoundingMode = .nearest) throws {
        let n = name.lowercased()
        if n == "fp64" || n.hasPrefix("mpfr") {
            guard mode == .nearest || n.hasPrefix("mpfr") == false else { throw ScalarRegistryError.unsupportedRounding(format: n, rounding: mode) }
            self.init(format: mode == .nearest ? nil : .fp64, mode: mode)
            return
        }
        guard let f = FloatFormat.named.first(where: { $0.name == n }) ?? (n.contains("=") ? try? FloatFormat.parse(name) : nil) else {
            throw ScalarRegistryError.unknownFormat(name)
        }
        self.init(format: f, mode: mode)
    }

    public var description: String { (format?.name ?? "fp64") + (mode == .nearest ? "" : "/\(mode.rawValue)") }

    @inlinable public func round(_ x: Double, tail: Double = 0) -> Double {
        guard let f = format else { return x }
        return FormatRounding.round(x, tail: tail, to: f, mode: mode)
    }
    @inlinable public func add(_ a: Double, _ b: Double) -> Double {
        let (s, e) = FormatRounding.twoSum(a, b)
        return round(s, tail: e)
    }
    @inlinable public func sub(_ a: Double, _ b: Double) -> Double { add(a, -b) }
    @inlinable public func mul(_ a: Double, _ b: Double) -> Double {
        let p = a * b
        return round(p, tail: p.isFinite ? (-p).addingProduct(a, b) : 0)   // exact product error (FMA)
    }
    @inlinable public func div(_ a: Double, _ b: Double) -> Double {
        let q = a / b
        guard q.isFinite, q != 0 else { return round(q) }
        return round(q, tail: a.addingProduct(-q, b) / b)
    }
    /// `a + b·c` with one rounding (b·c exact by TwoProduct, then TwoSum).
    @inlinable public func fma(_ a: Double, _ b: Double, _ c: Double) -> Double {
        let p = b * c
        let pe = (-p).addingProduct(b, c)                // exact error of the product
        let (s, e) = FormatRounding.twoSum(a, p)
        return round(s, tail: e + pe)
    }
}
