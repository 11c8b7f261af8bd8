import Foundation
import Synchronization
import RealModule
import Models

/// A study: a pure function from a configuration to tidy tables, split into
/// independent units of work so a sweep can run them in parallel, journal each one
/// as it completes, and resume after an interruption.
///
/// Determinism contract: ``run(unit:context:)`` depends only on the study's
/// configuration and the unit's index (every random draw is seeded from the
/// configuration), never on the thread, the order of execution or other units; and
/// ``finish(_:)`` receives the outputs in unit order. Hence the same configuration
/// gives byte-identical tables whatever the number of jobs.
public protocol Study: Sendable {
    /// The study's name (`fd-bias`, …), also the default results folder.
    var name: String { get }
    /// The units of work, in a fixed order. Each key is unique and stable: it names
    /// the unit in the resume journal.
    var units: [StudyUnit] { get }
    /// Computes one unit: rows of one or more tables (cells already formatted).
    func run(unit index: Int, context: StudyContext) throws -> UnitOutput
    /// Assembles the tables (and any other files) from all units' outputs, in unit order.
    func finish(_ outputs: [UnitOutput]) throws -> StudyOutput
    /// Seeds used, for the manifest (name → seed).
    var seeds: [String: UInt64] { get }
    /// Units must run one at a time (measurements of time and memory).
    var exclusive: Bool { get }
}

extension Study {
    public var exclusive: Bool { false }
}

/// One unit of work of a sweep.
public struct StudyUnit: Sendable, Equatable {
    public var key: String
    public init(key: String) { self.key = key }
}

/// The rows one unit produced, per table name. Codable for the resume journal.
public struct UnitOutput: Sendable, Codable, Equatable {
    public var tables: [String: [[String]]]
    public init(tables: [String: [[String]]] = [:]) { self.tables = tables }
    public mutating func append(_ table: String, _ row: [String]) { tables[table, default: []].append(row) }
}

/// A table with one header row (NUMERICS.md §10: snake_case, units in names).
public struct StudyTable: Sendable, Equatable {
    public var name: String
    public var header: [String]
    public var rows: [[String]]
    public init(name: String, header: [String], rows: [[String]] = []) { self.name = name; self.header = header; self.rows = rows }
}

/// Everything a finished study writes: tables (as CSV) and other files (JSON, …).
public struct StudyOutput: Sendable {
    public var tables: [StudyTable]
    public var files: [(name: String, data: Data)]
    public init(tables: [StudyTable], files: [(name: String, data: Data)] = []) { self.tables = tables; self.files = files }
}

/// A study configuration problem (unknown model, ε ≤ 0, …), reported with the
/// experiment file's line by the harness.
public struct StudyError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Shared, thread-safe state of one sweep: caches of expensive values that several
/// units need (the mpfr256 reference HVP of a model, its exact spectrum, …). A
/// cached value is a pure function of its key, so caching never changes results.
public final class StudyContext: Sendable {
    private let cache = Mutex<[String: any Sendable]>([:])
    public init() {}

    /// The value for `key`, computing it with `make` on a miss. Two threads missing
    /// at once may both compute it (same result); the first stored wins.
    public func cached<V: Sendable>(_ key: String, _ make: () throws -> V) rethrows -> V {
        if let v = cache.withLock({ $0[key] }) as? V { return v }
        let v = try make()
        return cache.withLock { c in
            if let old = c[key] as? V { return old }
            c[key] = v
            return v
        }
    }
}

/// The project's JSON files (manifests, regimes): pretty-printed, sorted keys,
/// unescaped slashes, a final newline.
public func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var d = try e.encode(value)
    d.append(UInt8(ascii: "\n"))
    return d
}

/// Round-trip decimal of a Double for CSV (NUMERICS.md §10); empty for nil.
/// A table cell: empty for nil, `nan` for every NaN (its sign is not reproducible
/// across builds, see `csvNumber`), otherwise the shortest round-trip form.
@inlinable public func cell(_ x: Double?) -> String { x.map { $0.isNaN ? "nan" : "\($0)" } ?? "" }
/// A cell for a quantity that may be undefined: empty when NaN or infinite.
@inlinable public func definedCell(_ x: Double) -> String { x.isFinite ? "\(x)" : "" }

/// A 64-bit seed derived from a base seed and labels (SplitMix64 finalizer over
/// FNV-1a of the labels): independent streams per unit and replicate, stable
/// across runs and platforms.
public func derivedSeed(_ base: UInt64, _ labels: String...) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ base
    for l in labels { for b in l.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }; h = (h ^ 0xFF) &* 0x0000_0100_0000_01B3 }
    var z = h &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Log-spaced grid of `points` values from `lo` to `hi` inclusive, each value
/// `lo · (hi/lo)^(i/(points−1))` computed in fp64 (then identical on every run).
public func logGrid(from lo: Double, to hi: Double, points: Int) -> [Double] {
    if points == 1 { return [lo] }
    let a = Double.log(lo), b = Double.log(hi)
    return (0..<points).map { i in i == 0 ? lo : i == points - 1 ? hi : Double.exp(a + (b - a) * Double(i) / Double(points - 1)) }
}

/// Cells shared by the studies: the policy and its param, compute and grad formats.
func policyCells(_ p: PrecisionPolicy) -> [String] { [p.description, p.param.name, p.compute.name, p.grad.name] }
