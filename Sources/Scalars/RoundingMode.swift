/// How an exact real is rounded into a finite format (NUMERICS.md §1).
///
/// `stochastic` rounds up (in value) with probability equal to the distance to the
/// lower neighbour in units of the gap, so that `E[round(x)] = x`; its random bits
/// come from ``StochasticRounding`` (seeded, per thread).
public enum RoundingMode: String, CaseIterable, Sendable, CustomStringConvertible {
    case nearest
    case towardZero = "toward-zero"
    case up
    case down
    case stochastic

    public var description: String { rawValue }

    /// Parses a mode by its NUMERICS.md name (`nearest`, `toward-zero`, `up`, `down`, `stochastic`).
    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }
}

/// A rounding mode carried in a type, so an emulated format's arithmetic can be
/// specialized for it (the mode is a compile-time constant in the hot path).
public protocol RoundingRule: Sendable {
    static var mode: RoundingMode { get }
}

/// Round to nearest, ties to even.
public enum NearestEven: RoundingRule { @inlinable public static var mode: RoundingMode { .nearest } }
/// Round toward zero (truncation).
public enum TowardZero: RoundingRule { @inlinable public static var mode: RoundingMode { .towardZero } }
/// Round toward +∞.
public enum Upward: RoundingRule { @inlinable public static var mode: RoundingMode { .up } }
/// Round toward −∞.
public enum Downward: RoundingRule { @inlinable public static var mode: RoundingMode { .down } }
/// Stochastic rounding with the per-thread seeded generator of ``StochasticRounding``.
public enum Stochastic: RoundingRule { @inlinable public static var mode: RoundingMode { .stochastic } }
