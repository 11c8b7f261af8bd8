import Foundation
import Testing
@testable import LinearAlgebra

@Suite struct BLASRuntimeTests {
    typealias L = BLASRuntime.CPULevel

    /// The kernel set asked for is the CPU's level, and only when OpenBLAS chose less.
    @Test func requestsTheCPUsLevelOnlyWhenDetectionFellShort() {
        #expect(BLASRuntime.coreTypeToRequest(detected: "Prescott", cpuLevel: .avx512bf16) == "Cooperlake")
        #expect(BLASRuntime.coreTypeToRequest(detected: "Prescott", cpuLevel: .avx512) == "SkylakeX")
        #expect(BLASRuntime.coreTypeToRequest(detected: "Nehalem", cpuLevel: .avx2) == "Haswell")
        #expect(BLASRuntime.coreTypeToRequest(detected: "Haswell", cpuLevel: .avx512) == "SkylakeX")
        #expect(BLASRuntime.coreTypeToRequest(detected: "SkylakeX", cpuLevel: .avx512bf16) == "Cooperlake")
        for kept in ["SkylakeX", "Cooperlake", "SapphireRapids"] {
            #expect(BLASRuntime.coreTypeToRequest(detected: kept, cpuLevel: .avx512) == nil)
        }
        #expect(BLASRuntime.coreTypeToRequest(detected: "Zen", cpuLevel: .avx2) == nil)
        #expect(BLASRuntime.coreTypeToRequest(detected: "Cooperlake", cpuLevel: .avx2) == nil)   // never downgrade
        #expect(BLASRuntime.coreTypeToRequest(detected: "Prescott", cpuLevel: .baseline) == nil)
        #expect(BLASRuntime.coreTypeToRequest(detected: "armv8", cpuLevel: .baseline) == nil)
    }

    /// The cpuid level agrees with the flags the kernel reports in /proc/cpuinfo.
    @Test func cpuLevelMatchesProcCpuinfo() throws {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }
        let flags = Set(line.split(separator: " ").map(String.init))
        let avx2 = flags.isSuperset(of: ["avx2", "fma"])
        let skx = flags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        let expected: L = avx2 && skx ? (flags.contains("avx512_bf16") ? .avx512bf16 : .avx512) : (avx2 ? .avx2 : .baseline)
        #expect(L.current == expected)
    }
}

@Suite struct BLASPolicyTests {
    typealias P = BLASRuntime.Policy

    @Test func parsesHHBLASCore() throws {
        #expect(try P(environment: nil, cpuLevel: .avx512) == .auto)
        #expect(try P(environment: " ", cpuLevel: .avx512) == .auto)
        #expect(try P(environment: "Portable", cpuLevel: .avx512) == .portable)
        #expect(try P(environment: "detected", cpuLevel: .baseline) == .detected)
        #expect(try P(environment: "haswell", cpuLevel: .avx2) == .named("Haswell"))
        #expect(throws: BLASPolicyError.self) { try P(environment: "Skylake-X", cpuLevel: .avx512) }
        #expect(throws: BLASPolicyError.self) { try P(environment: "Cooperlake", cpuLevel: .avx2) }   // would fault
    }

    @Test func kernelSetPerPolicy() {
        #expect(P.portable.coreType(detected: "Prescott", cpuLevel: .avx512bf16) == "Haswell")
        #expect(P.portable.coreType(detected: "Cooperlake", cpuLevel: .avx512bf16) == "Haswell")
        #expect(P.portable.coreType(detected: "Zen", cpuLevel: .avx512bf16) == nil)       // Zen's results are Haswell's
        #expect(P.portable.coreType(detected: "Prescott", cpuLevel: .baseline) == nil)
        #expect(P.detected.coreType(detected: "Prescott", cpuLevel: .avx512bf16) == nil)
        #expect(P.named("SkylakeX").coreType(detected: "Prescott", cpuLevel: .avx512bf16) == "SkylakeX")
        #expect(P.named("Haswell").coreType(detected: "Haswell", cpuLevel: .avx512) == nil)
        #expect(P.auto.coreType(detected: "Prescott", cpuLevel: .avx512bf16) == "Cooperlake")
    }
}
