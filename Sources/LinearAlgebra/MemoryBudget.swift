#if canImport(Glibc)
import Glibc
#endif

/// A refusal to allocate: what needed how much, against which limit.
public struct MemoryBudgetError: Error, CustomStringConvertible, Equatable {
    public var what: String
    public var bytes: Double
    public var limit: Double
    public var limitSource: String
    public var description: String {
        "\(what) needs about \(MemoryBudget.format(bytes)), more than the \(MemoryBudget.format(limit)) allowed (\(limitSource)); "
            + "choose a smaller size, or raise the limit with --max-memory"
    }
}

/// The memory a run may use, and the check every large allocation of a spec makes
/// *before* allocating: an impossible size (`mp:n=100000` is an 80 GB matrix) is a
/// refusal that names the estimate, not an allocation failure, a segfault or the
/// kernel's OOM killer minutes later.
///
/// The limit is the smallest of the machine's physical memory, the process's
/// address-space limit (`ulimit -v`), the cgroup's `memory.max` (containers, batch
/// jobs) and `HH_MAX_MEMORY` (bytes, or with a K/M/G/T suffix; the CLI's
/// `--max-memory` sets it). Estimates count the dominant arrays of a stage (a dense
/// operator, a model's parameters and activations in the run's formats); they are
/// lower bounds, so a refusal is never spurious, and the headroom of the limit is
/// the user's to set.
public enum MemoryBudget {
    /// A limit for the work of one task (bytes), beside the process-wide ones: tests that
    /// run in parallel in one process cannot share `HH_MAX_MEMORY` (one test's unset is
    /// another's missing limit).
    @TaskLocal public static var taskLimit: Double? = nil
    /// Set while a model is built only to be described and counted, never run
    /// (`ModelSpec.architecture`): no check refuses it.
    @TaskLocal public static var countingOnly: Bool = false

    /// The limit in bytes and what sets it.
    public static func limit() -> (bytes: Double, source: String) {
        var best = (bytes: Double.infinity, source: "no limit found")
        func consider(_ b: Double, _ s: String) { if b > 0 && b < best.bytes { best = (b, s) } }
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0 && size > 0 { consider(Double(pages) * Double(size), "the machine's memory") }
        var r = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &r) == 0 && r.rlim_cur != rlim_t.max {
            consider(Double(r.rlim_cur), "the address-space limit, ulimit -v")
        }
        if let text = readSmallFile("/sys/fs/cgroup/memory.max"), let b = Double(text) { consider(b, "the cgroup's memory.max") }
        if let t = taskLimit { consider(t, "this task's limit") }
        if let s = getenv("HH_MAX_MEMORY").map({ String(cString: $0) }), let b = parse(s) { consider(b, "--max-memory / HH_MAX_MEMORY") }
        return best
    }

    /// Throws when `bytes` exceed the limit.
    public static func check(_ bytes: Double, _ what: @autoclosure () -> String) throws {
        if countingOnly { return }
        let (l, source) = limit()
        if !(bytes <= l) { throw MemoryBudgetError(what: what(), bytes: bytes, limit: l, limitSource: source) }
    }

    /// `123`, `1.5G`, `800M`, `64k` (powers of 1024); nil when malformed or not positive.
    public static func parse(_ s: String) -> Double? {
        let t = s.trimmingCharacters(" ")
        guard let last = t.last else { return nil }
        let scale: Double
        var digits = t
        switch last.uppercased() {
        case "K": scale = 0x1p10
        case "M": scale = 0x1p20
        case "G": scale = 0x1p30
        case "T": scale = 0x1p40
        default: scale = 1
        }
        if scale != 1 { digits.removeLast() }
        guard let v = Double(digits), v.isFinite, v > 0 else { return nil }
        return v * scale
    }

    public static func format(_ b: Double) -> String {
        guard b.isFinite else { return "unlimited" }
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var x = b, i = 0
        while x >= 1024 && i < units.count - 1 { x /= 1024; i += 1 }
        if i == 0 { return "\(Int(x)) bytes" }
        let tenths = (x * 10).rounded() / 10
        return "\(tenths) \(units[i])"
    }

    static func readSmallFile(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 64)
        guard fgets(&buf, 64, f) != nil else { return nil }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(" \n")
    }
}

extension String {
    fileprivate func trimmingCharacters(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
