#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Formats defined at run time (experiment files, `--policy`), given type identity
/// through eight slot types `UserFormatSlot<k>`: registering a format stores its
/// parameters in slot k once; the slot type reads them back (one load per
/// operation). Identical formats share a slot; a ninth distinct format is an error.
public enum UserFormats {
    public static let capacity = 8
    /// Fixed storage: a slot is written once, under the lock, before its number is
    /// handed out (so every reader of slot k happens after its write), and slots
    /// never move. `FloatFormat` is plain data.
    @usableFromInline nonisolated(unsafe) static let table: UnsafeMutablePointer<FloatFormat> = {
        let t = UnsafeMutablePointer<FloatFormat>.allocate(capacity: capacity)
        t.initialize(repeating: .fp64, count: capacity)
        return t
    }()
    nonisolated(unsafe) private static var used = 0
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()

    public struct Full: Error, CustomStringConvertible {
        public var description: String { "more than \(UserFormats.capacity) distinct user-defined formats in one run" }
    }

    /// The slot holding `f` (registering it if new).
    public static func slot(for f: FloatFormat) throws -> Int {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        if let i = (0..<used).first(where: { table[$0] == f }) { return i }
        guard used < capacity else { throw Full() }
        table[used] = f
        used += 1
        return used - 1
    }

    @inlinable static func format(_ k: Int) -> FloatFormat { table[k] }
}

/// The type of user format slot `k` (see ``UserFormats``).
public enum UserFormatSlot<let k: Int>: FloatFormatSpec {
    @inlinable public static var format: FloatFormat { UserFormats.format(k) }
}
