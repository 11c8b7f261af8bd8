import Foundation
import Testing
@testable import LinearAlgebra

@Suite struct ProcessAllocatorTests {
    @Test func parsesHHMalloc() throws {
        #expect(try ProcessAllocator.Policy(environment: nil) == .keep)
        #expect(try ProcessAllocator.Policy(environment: "") == .keep)
        #expect(try ProcessAllocator.Policy(environment: "keep") == .keep)
        #expect(try ProcessAllocator.Policy(environment: "system") == .system)
        #expect(throws: AllocatorPolicyError.self) { try ProcessAllocator.Policy(environment: "Keep") }
    }

    /// Minor page faults of this thread (getrusage RUSAGE_THREAD, Linux's 1: the tests
    /// of other suites run on other threads) while allocating and touching `bytes`.
    static func faults(touching bytes: Int) -> Int {
        var u = rusage()
        getrusage(1, &u)
        let before = u.ru_minflt
        let a = [UInt8](repeating: 1, count: bytes)                 // written, so every page is touched
        precondition(a[bytes - 1] == 1)
        getrusage(1, &u)
        return u.ru_minflt - before
    }

    /// With freed memory kept, an allocation the size of one just freed reuses its pages:
    /// (almost) no page faults, where glibc's default (an mmap per block above 32 MiB) faults
    /// in all 16,384 pages of 64 MiB again. The default is the first measurement's baseline
    /// only if this process has not kept memory yet; the kept case is what must hold. The
    /// heap is shared with the tests running beside this one, which may take the freed
    /// block first: the fewest faults of three reuses is what is checked.
    @Test func keptMemoryIsReusedWithoutPageFaults() {
        #expect(ProcessAllocator.keepFreedMemory())
        #expect(ProcessAllocator.description.hasPrefix("glibc, freed memory kept"))
        let size = 64 << 20
        _ = Self.faults(touching: size)                               // grows the heap once
        let again = (0..<3).map { _ in Self.faults(touching: size) }.min()!
        #expect(again < 1000, "faults on reusing 64 MiB: \(again) (16,384 pages)")
    }
}
