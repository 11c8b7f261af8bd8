import RealModule

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The random source of stochastic rounding: one SplitMix64 generator per thread,
/// seeded explicitly, so that a computation run on one thread with a given seed
/// rounds identically every time.
///
/// SplitMix64 (Steele, Lea & Flood 2014) is the seeding generator of
/// xoshiro/`java.util.SplittableRandom`: 64-bit state, full period, passes BigCrush.
/// A rounding decision uses 53 random bits, so the probability of rounding up is
/// the exact distance ratio to within 2⁻⁵³.
///
/// Each thread starts from seed 0. Studies set the seed of each configuration with
/// ``withSeed(_:_:)`` and record it in the results manifest.
public enum StochasticRounding {
    /// The per-thread state is one heap-allocated `UInt64` whose address sits in a
    /// pthread key: no reference counting or exclusivity checks per draw.
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        let rc = pthread_key_create(&k) { p in
            p?.assumingMemoryBound(to: UInt64.self).deallocate()
        }
        precondition(rc == 0, "pthread_key_create failed")
        return k
    }()

    @usableFromInline
    static func state() -> UnsafeMutablePointer<UInt64> {
        if let p = pthread_getspecific(key) { return p.assumingMemoryBound(to: UInt64.self) }
        let st = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        st.initialize(to: 0)
        pthread_setspecific(key, st)
        return st
    }

    /// This thread's generator state (without drawing): what a computation that fans
    /// out to other threads or processes derives their seeds from.
    public static var currentState: UInt64 { state().pointee }

    /// Reseeds this thread's generator.
    public static func seed(_ seed: UInt64) { state().pointee = seed }

    /// Runs `body` with this thread's generator seeded to `seed`, restoring the
    /// previous state afterwards.
    public static func withSeed<R>(_ seed: UInt64, _ body: () throws -> R) rethrows -> R {
        let st = state()
        let saved = st.pointee
        st.pointee = seed
        defer { st.pointee = saved }
        return try body()
    }

    /// The next 64 random bits of this thread's generator.
    @inlinable
    public static func next() -> UInt64 {
        let st = state()
        let s = st.pointee &+ 0x9E37_79B9_7F4A_7C15
        st.pointee = s
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform draw from [0, 1) with 53 random bits.
    @inlinable
    public static func nextUniform() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}

/// A stand-alone seeded SplitMix64 generator (`RandomNumberGenerator`), for code
/// that threads its own generator rather than using the per-thread one.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform draw from [0, 1) with 53 random bits.
    @inlinable
    public mutating func nextUniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal draw (Box–Muller, cosine branch; two uniforms per draw,
    /// the first clamped at 2⁻⁶⁰ so the logarithm is finite).
    @inlinable
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextUniform(), 0x1p-60), u2 = nextUniform()
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * .pi * u2)
    }
}
