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

    // Whether the setting takes is checked on the executable (`CLITests.keptMemoryIsFaultedInOnce`):
    // `M_ARENA_MAX` only binds threads that have no arena yet, and this test process's
    // threads already have theirs when a test body runs, so an in-process check measures
    // which arena the test happened to land on, not the policy.
}
