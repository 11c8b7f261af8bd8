#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// A thread that could not be created (`pthread_create` failed: too many threads,
/// or no memory for its stack).
public struct ThreadStartError: Error, CustomStringConvertible, Equatable {
    public var started: Int
    public var requested: Int
    public var errno: Int32
    public var description: String {
        "could not start thread \(started + 1) of \(requested) (\(String(cString: strerror(errno))); too little memory for their stacks, or too many threads)"
    }
}

/// Threads that are started all together or not at all, and joined.
///
/// Foundation's `Thread.start()` gives no sign when the thread cannot be created:
/// a caller waiting for it to finish waits forever (the sweep under a memory limit
/// with `--jobs 64`, or 180 in-process shards, hung that way). Here every thread is
/// created first and waits at a gate; only when all exist are they released, and
/// when one cannot be created the others are released to return at once and the
/// failure is reported, so nothing is left waiting.
public enum Threads {
    final class Gate: @unchecked Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        var proceed = false
    }
    final class Start: @unchecked Sendable {
        let index: Int, gate: Gate, body: @Sendable (Int) -> Void
        init(index: Int, gate: Gate, body: @escaping @Sendable (Int) -> Void) { self.index = index; self.gate = gate; self.body = body }
    }

    /// Test hook: `HH_TEST_THREAD_LIMIT=K` makes the creation of every thread past the
    /// K-th fail with EAGAIN, as an exhausted process would.
    static let testLimit: Int? = getenv("HH_TEST_THREAD_LIMIT").flatMap { Int(String(cString: $0)) }

    /// Runs `body(0..<count)` on `count` new threads (each with `stackSize` bytes of
    /// stack) and returns when all have finished. With `allOrNone`, a thread that
    /// cannot be created throws ``ThreadStartError`` and no body runs; otherwise the
    /// bodies of the threads that could be created run (at least one, or it throws),
    /// and the count that ran is returned.
    @discardableResult
    public static func run(_ count: Int, stackSize: Int = 16 << 20, allOrNone: Bool, _ body: @escaping @Sendable (Int) -> Void) throws -> Int {
        precondition(count >= 1)
        let gate = Gate()
        var threads: [pthread_t] = []
        var failure: Int32 = 0
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, stackSize)
        for i in 0..<count {
            if let limit = testLimit, i >= limit { failure = EAGAIN; break }
            let box = Unmanaged.passRetained(Start(index: i, gate: gate, body: body)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, &attr, { p in
                let s = Unmanaged<Start>.fromOpaque(p!).takeRetainedValue()
                s.gate.semaphore.wait()
                if s.gate.proceed { s.body(s.index) }
                return nil
            }, box)
            if rc != 0 {
                Unmanaged<Start>.fromOpaque(box).release()
                failure = rc
                break
            }
            threads.append(tid)
        }
        gate.proceed = failure == 0 || (!allOrNone && !threads.isEmpty)
        for _ in threads { gate.semaphore.signal() }
        for t in threads { pthread_join(t, nil) }
        if !gate.proceed { throw ThreadStartError(started: threads.count, requested: count, errno: failure) }
        return threads.count
    }
}
