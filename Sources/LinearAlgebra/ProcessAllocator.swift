import CKernels
import Foundation

/// How this process's memory allocator treats what the program frees.
///
/// glibc serves every allocation above its mmap threshold (at most 32 MiB) with an mmap
/// of its own and unmaps it on `free`, so the next allocation of that size starts from
/// fresh pages the kernel must fault in and zero, one 4 KiB page at a time. The
/// harness's arrays of n parameters cross that threshold from n ≈ 4·10⁶ (fp64) on, and
/// a central FD-HVP allocates several of them (both points, both gradients, the
/// models' weight copies and transposes, ĥ): at 10⁸ parameters (MLP 8192-8192-4096,
/// fp32, 128 samples; one EPYC core) an FD-HVP took 4.33 s, 15.8 s of a 40.9 s run in
/// the kernel with 2.4 M page faults; with freed memory kept it takes 1.58 s
/// (0.252 → 0.135 s at 8.4·10⁶, 1.03 → 0.566 s at 3.4·10⁷). The fault cost also
/// broke the cost model's extrapolation: it is not proportional to the work counted
/// and grew with the size (`results/scaling`).
///
/// ``keepFreedMemory()`` sets glibc's `M_MMAP_MAX` to 0 (every block comes from the
/// heap and returns to it), `M_TRIM_THRESHOLD` to its maximum (the heap's free top
/// stays mapped) and `M_ARENA_MAX` to 1 (threads — sweep jobs, in-process ranks —
/// allocate from the main heap too: a thread's own arena grows in 64 MiB heaps and
/// maps anything larger afresh, which left the in-process sharded FD-HVP faulting in
/// every page; small blocks still come from each thread's cache): what PyTorch's
/// caching allocator does for device memory, and jemalloc or tcmalloc for host memory. Peak RSS is unchanged in kind — it is still the most
/// memory touched at once; freed blocks are reused, not added — and
/// `MemoryProbe.resetPeak` still hands free pages back (`malloc_trim`) before it
/// measures. The executables call it first thing; `HH_MALLOC=system` keeps glibc's
/// defaults (``Policy``). Manifests record which was in force (`allocator`).
public enum ProcessAllocator {
    /// `HH_MALLOC`: `keep` (the default) or `system`.
    public enum Policy: String, Sendable, CaseIterable {
        case keep, system

        /// The policy an `HH_MALLOC` value names (nil or empty: `keep`).
        public init(environment value: String?) throws {
            guard let v = value, !v.isEmpty else { self = .keep; return }
            guard let p = Policy(rawValue: v) else {
                throw AllocatorPolicyError("HH_MALLOC='\(v)' is not an allocator policy (keep, system)")
            }
            self = p
        }
    }

    nonisolated(unsafe) private static var kept = false

    /// Keeps freed memory for reuse (see the type's documentation). Returns whether it
    /// took effect (false on a C library other than glibc). Call before threads start.
    @discardableResult
    public static func keepFreedMemory() -> Bool {
        if hh_malloc_keep_freed() == 1 { kept = true }
        return kept
    }

    /// Whether ``keepFreedMemory()`` took effect in this process.
    public static var isKeepingFreedMemory: Bool { kept }

    /// What manifests record: `glibc, freed memory kept (M_MMAP_MAX=0, M_TRIM_THRESHOLD=max, M_ARENA_MAX=1)`
    /// or `system default`.
    public static var description: String {
        kept ? "glibc, freed memory kept (M_MMAP_MAX=0, M_TRIM_THRESHOLD=max, M_ARENA_MAX=1)" : "system default"
    }
}

/// A bad `HH_MALLOC`.
public struct AllocatorPolicyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
