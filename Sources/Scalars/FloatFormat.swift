#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What happens to a value whose magnitude rounds beyond the largest finite number.
public enum OverflowBehavior: String, Sendable, CaseIterable {
    /// IEEE 754: round-to-nearest and rounding away from zero give ±∞;
    /// rounding toward zero gives ±largest finite.
    case infinity
    /// The OCP FP8 "non-saturating" rule for formats without infinities (`e4m3`):
    /// where IEEE would give ±∞ the result is NaN.
    case nan
    /// Saturating conversion: every overflow (and ±∞ input) gives ±largest finite.
    case saturate
}

/// A binary floating-point format, described by the few parameters CPFloat and
/// chop use (NUMERICS.md §1): precision `p` (significand bits including the hidden
/// bit), exponent range `[emin, emax]` of normal numbers, whether subnormals exist,
/// whether infinities exist, whether a NaN encoding exists, and what overflow does.
///
/// Formats without infinities follow the OCP FP8 convention: the encoding with
/// every exponent and significand bit set is NaN, so the top binade loses its
/// largest significand (e4m3: largest finite 448 rather than 480). Formats with
/// neither infinities nor NaN (`nan: false`, the OCP MX element formats e3m2, e2m3,
/// e2m1, whose NaN lives in the block's shared scale) use every encoding for a finite
/// number and saturate on overflow. An emulated value of such a format can still be
/// NaN (its carrier is a binary32): an invalid operation stays visible instead of
/// becoming a number, as the MX block's NaN scale would make it; ml_dtypes instead
/// converts NaN to a zero (of the opposite sign), and the golden tests check that and say why.
///
/// Any format inside binary64 can be described (and used by `cast` and the MPFR
/// oracle). Emulated arithmetic types store values exactly in a `Float`, so they
/// need ``isEmulatable``: `p ≤ 24` and the range, subnormals included, inside
/// binary32. That keeps every product of two values exact in a `Double`, which
/// the arithmetic relies on (see ``FormatRounding``).
public struct FloatFormat: Hashable, Sendable, CustomStringConvertible {
    /// The name's UTF-8 bytes: a string literal of the binary (a registered format's
    /// spec) or a copy interned by ``FormatNames`` (user formats), never freed. An
    /// address rather than a `String`, so that a format is plain data: the arithmetic
    /// of emulated types copies it freely and folds its constants.
    @usableFromInline var nameAddress: UInt
    @usableFromInline var nameCount: Int
    public var name: String {
        String(decoding: UnsafeBufferPointer(start: UnsafePointer<UInt8>(bitPattern: nameAddress), count: nameCount), as: UTF8.self)
    }
    public var p: Int
    public var emin: Int
    public var emax: Int
    public var subnormals: Bool
    public var infinities: Bool
    /// Whether the format has a NaN encoding (false: every encoding is a finite number).
    public var nan: Bool
    public var overflow: OverflowBehavior

    public enum Invalid: Error, CustomStringConvertible, Equatable {
        case precision(Int), range(emin: Int, emax: Int), overflowRule(String)
        public var description: String {
            switch self {
            case .precision(let p): return "precision p=\(p) is outside 2...53"
            case .range(let lo, let hi): return "exponent range [\(lo), \(hi)] is outside binary64's (emin ≥ -1022, emax ≤ 1023, emin - p + 1 ≥ -1074, emin < emax)"
            case .overflowRule(let s): return s
            }
        }
    }

    /// Validates and builds a format. Throws ``Invalid`` with the offending parameter.
    public init(name: String, p: Int, emin: Int, emax: Int, subnormals: Bool = true,
                infinities: Bool = true, nan: Bool = true, overflow: OverflowBehavior? = nil) throws {
        guard (2...53).contains(p) else { throw Invalid.precision(p) }
        guard emin >= -1022, emax <= 1023, emin < emax, emin - p + 1 >= -1074 else {
            throw Invalid.range(emin: emin, emax: emax)
        }
        if infinities && !nan { throw Invalid.overflowRule("a format with infinities has NaN encodings too (nan=no needs infinities=no)") }
        let rule = overflow ?? (infinities ? .infinity : nan ? .nan : .saturate)
        if rule == .infinity && !infinities {
            throw Invalid.overflowRule("overflow=infinity needs a format with infinities")
        }
        if rule == .nan && !nan {
            throw Invalid.overflowRule("overflow=nan needs a format with a NaN encoding (nan=no saturates)")
        }
        self.init(uncheckedName: name, p: p, emin: emin, emax: emax, subnormals: subnormals,
                  infinities: infinities, nan: nan, overflow: rule)
    }

    /// A format known to be valid (not checked; ``FloatFormatSpec/validate()`` checks).
    /// Interns `name` under a lock: in a spec's `format` property use
    /// ``init(literal:p:emin:emax:subnormals:infinities:nan:overflow:)``
    /// (a literal name, folded to constants), or `static let format = …`.
    public init(uncheckedName name: String, p: Int, emin: Int, emax: Int, subnormals: Bool,
                infinities: Bool, nan: Bool = true, overflow: OverflowBehavior) {
        let (address, count) = FormatNames.intern(name)
        self.init(nameAddress: address, nameCount: count, p: p, emin: emin, emax: emax, subnormals: subnormals,
                  infinities: infinities, nan: nan, overflow: overflow)
    }

    /// A format with a literal name, for a spec's `format` property: plain constants the
    /// optimizer folds into the arithmetic (not checked; the registry's test validates
    /// every registered spec).
    @inlinable
    public init(literal name: StaticString, p: Int, emin: Int, emax: Int, subnormals: Bool, infinities: Bool,
                nan: Bool = true, overflow: OverflowBehavior) {
        self.init(nameAddress: UInt(bitPattern: name.utf8Start), nameCount: name.utf8CodeUnitCount, p: p, emin: emin, emax: emax,
                  subnormals: subnormals, infinities: infinities, nan: nan, overflow: overflow)
    }

    @inlinable
    init(nameAddress: UInt, nameCount: Int, p: Int, emin: Int, emax: Int, subnormals: Bool, infinities: Bool, nan: Bool,
         overflow: OverflowBehavior) {
        self.nameAddress = nameAddress; self.nameCount = nameCount; self.p = p; self.emin = emin; self.emax = emax
        self.subnormals = subnormals; self.infinities = infinities; self.nan = nan; self.overflow = overflow
    }

    /// The same parameters under another name.
    public func renamed(_ name: String) -> FloatFormat {
        FloatFormat(uncheckedName: name, p: p, emin: emin, emax: emax, subnormals: subnormals, infinities: infinities, nan: nan, overflow: overflow)
    }

    /// Equal parameters and equal names (two copies of one literal may sit at two addresses).
    public static func == (a: FloatFormat, b: FloatFormat) -> Bool {
        a.p == b.p && a.emin == b.emin && a.emax == b.emax && a.subnormals == b.subnormals && a.infinities == b.infinities
            && a.nan == b.nan && a.overflow == b.overflow
            && (a.nameAddress == b.nameAddress && a.nameCount == b.nameCount || a.name == b.name)
    }

    public func hash(into h: inout Hasher) {
        h.combine(name); h.combine(p); h.combine(emin); h.combine(emax)
        h.combine(subnormals); h.combine(infinities); h.combine(nan); h.combine(overflow)
    }

    /// Whether ``LowPrecisionFloat`` can emulate the format (values fit binary32 exactly).
    public var isEmulatable: Bool { p <= 24 && emin >= -126 && emax <= 127 && emin - p + 1 >= -149 }

    /// Unit roundoff for round-to-nearest, `2^-p`.
    @inlinable @inline(__always) public var unitRoundoff: Double { FormatRounding.pow2(-p) }
    /// Machine epsilon, `2^(1-p)`.
    @inlinable @inline(__always) public var machineEpsilon: Double { FormatRounding.pow2(1 - p) }
    /// Smallest positive normal number, `2^emin`.
    @inlinable @inline(__always) public var leastNormal: Double { FormatRounding.pow2(emin) }
    /// Smallest positive number: `2^(emin-p+1)` with subnormals, else `2^emin`.
    @inlinable @inline(__always) public var leastNonzero: Double {
        subnormals ? FormatRounding.pow2(emin - p + 1) : leastNormal
    }
    /// Largest finite number: `(2 - 2^(1-p)) 2^emax`, or `(2 - 2^(2-p)) 2^emax` when the
    /// all-ones encoding is NaN (formats without infinities that have a NaN).
    @inlinable @inline(__always) public var greatestFinite: Double {
        let lost = infinities || !nan ? 1 - p : 2 - p
        return (2 - FormatRounding.pow2(lost)) * FormatRounding.pow2(emax)
    }

    /// Exponent bias of the encoding, `1 - emin`.
    @inlinable @inline(__always) public var bias: Int { 1 - emin }
    /// Width of the exponent field: enough codes for zero/subnormals, the normal
    /// binades and (with infinities) the reserved all-ones code.
    @inlinable @inline(__always) public var exponentBits: Int {
        let codes = emax + bias + 1 + (infinities ? 1 : 0)
        var w = 0
        while (1 << w) < codes { w += 1 }
        return w
    }
    /// Width of the stored significand field, `p - 1`.
    @inlinable @inline(__always) public var significandBits: Int { p - 1 }
    /// Total encoding width: sign, exponent, significand.
    @inlinable @inline(__always) public var bitWidth: Int { 1 + exponentBits + significandBits }

    public var description: String {
        "\(name)(p=\(p), emin=\(emin), emax=\(emax), subnormals=\(subnormals ? "yes" : "no"), infinities=\(infinities ? "yes" : "no")\(nan ? "" : ", nan=no"), overflow=\(overflow.rawValue))"
    }
}

/// The interned names of formats: a registered format's name is its spec's string
/// literal; another name is copied once into storage that is never freed
/// (append-only, under a lock), so that equal names share one address.
public enum FormatNames {
    private static let table = NameTable()

    private final class NameTable: @unchecked Sendable {
        var names: [(String, UnsafeMutableBufferPointer<UInt8>)] = []
        var lock = pthread_mutex_t()
        init() { pthread_mutex_init(&lock, nil) }
    }

    /// The address and length of `name`'s UTF-8 bytes: a registered format's literal, or an interned copy.
    public static func intern(_ name: String) -> (address: UInt, count: Int) {
        if let f = FloatFormat.named.first(where: { $0.name == name }) { return (f.nameAddress, f.nameCount) }
        pthread_mutex_lock(&table.lock); defer { pthread_mutex_unlock(&table.lock) }
        if let (_, b) = table.names.first(where: { $0.0 == name }) { return (UInt(bitPattern: b.baseAddress), b.count) }
        let bytes = Array(name.utf8)
        let b = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        _ = b.initialize(from: bytes)
        table.names.append((name, b))
        return (UInt(bitPattern: b.baseAddress), bytes.count)
    }
}

extension FloatFormat {
    @inlinable public static var bf16: FloatFormat { FloatFormat(literal: "bf16", p: 8, emin: -126, emax: 127, subnormals: true, infinities: true, overflow: .infinity) }
    @inlinable public static var fp16: FloatFormat { FloatFormat(literal: "fp16", p: 11, emin: -14, emax: 15, subnormals: true, infinities: true, overflow: .infinity) }
    @inlinable public static var tf32: FloatFormat { FloatFormat(literal: "tf32", p: 11, emin: -126, emax: 127, subnormals: true, infinities: true, overflow: .infinity) }
    @inlinable public static var fp32: FloatFormat { FloatFormat(literal: "fp32", p: 24, emin: -126, emax: 127, subnormals: true, infinities: true, overflow: .infinity) }
    @inlinable public static var fp64: FloatFormat { FloatFormat(literal: "fp64", p: 53, emin: -1022, emax: 1023, subnormals: true, infinities: true, overflow: .infinity) }

    /// The formats known by name (NUMERICS.md §1): the registry's emulated formats
    /// (``ScalarRegistry/forEachRegistered(_:)``), then fp64 (mpfrN are ``MPFloat``).
    public static let named: [FloatFormat] = ScalarRegistry.registeredFormats + [.fp64]

    /// Parses a format by name, or a user-defined one written as
    /// `p=5,emin=-14,emax=15[,subnormals=yes|no][,infinities=yes|no][,nan=yes|no][,overflow=infinity|nan|saturate][,name=NAME]`.
    /// ``parse(_:)`` for a user-defined format, its failure as ``ScalarRegistryError/invalidUserFormat(_:reason:)``
    /// naming what is wrong (a missing field, a range outside binary64's).
    public static func parseUser(_ text: String) throws -> FloatFormat {
        do { return try parse(text) } catch { throw ScalarRegistryError.invalidUserFormat(text, reason: "\(error)") }
    }

    public static func parse(_ text: String) throws -> FloatFormat {
        if let f = named.first(where: { $0.name == text.lowercased() }) { return f }
        guard text.contains("=") else { throw Invalid.overflowRule("unknown format '\(text)'") }
        var fields: [String: String] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " ") }
            guard kv.count == 2, !kv[0].isEmpty else { throw Invalid.overflowRule("malformed format field '\(part)' in '\(text)'") }
            fields[kv[0].lowercased()] = kv[1]
        }
        func int(_ key: String) throws -> Int {
            guard let s = fields.removeValue(forKey: key) else { throw Invalid.overflowRule("format '\(text)' lacks \(key)=") }
            guard let v = Int(s) else { throw Invalid.overflowRule("format field \(key)='\(s)' is not an integer") }
            return v
        }
        func flag(_ key: String, _ def: Bool) throws -> Bool {
            guard let s = fields.removeValue(forKey: key) else { return def }
            switch s.lowercased() {
            case "yes", "true", "on", "1": return true
            case "no", "false", "off", "0": return false
            default: throw Invalid.overflowRule("format field \(key)='\(s)' is not yes/no")
            }
        }
        let p = try int("p"), emin = try int("emin"), emax = try int("emax")
        let sub = try flag("subnormals", true), inf = try flag("infinities", true), nan = try flag("nan", true)
        var rule: OverflowBehavior? = nil
        if let o = fields.removeValue(forKey: "overflow") {
            guard let r = OverflowBehavior(rawValue: o.lowercased()) else {
                throw Invalid.overflowRule("format field overflow='\(o)' is not infinity, nan or saturate")
            }
            rule = r
        }
        let name = fields.removeValue(forKey: "name") ?? text
        if let extra = fields.keys.sorted().first { throw Invalid.overflowRule("unknown format field '\(extra)' in '\(text)'") }
        return try FloatFormat(name: name, p: p, emin: emin, emax: emax, subnormals: sub, infinities: inf, nan: nan, overflow: rule)
    }
}

extension StringProtocol {
    @usableFromInline
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
