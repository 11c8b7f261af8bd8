import CKernels
import COpenBLAS
import Foundation

/// Which of OpenBLAS's compute kernels this process runs, and which it should.
///
/// A DYNAMIC_ARCH OpenBLAS (Debian's, for one) picks its kernels when it loads, from
/// the CPU's family and model numbers. A model it does not know falls back to the
/// oldest x86-64 kernel: OpenBLAS 0.3.21 (Debian 12) takes a Sapphire Rapids under a
/// hypervisor ("Intel Xeon Processor", one of the machines this project runs on; others
/// were AMD, detected as `Zen`) for a `Prescott` (SSE3), whose sgemm runs 256×784×256
/// in 3.6 ms where its `Cooperlake` (AVX-512) kernel takes 0.74 ms on the same core. The choice is made before any
/// code of ours runs and cannot be changed in a running process; OpenBLAS reads the
/// environment variable `OPENBLAS_CORETYPE` at load instead. The executables therefore
/// re-execute themselves once with that variable set when the detected kernel uses
/// less of the CPU than the CPU has (``coreTypeToRequest(detected:cpuLevel:)``); a
/// user who sets `OPENBLAS_CORETYPE` keeps that choice. The kernel changes the
/// summation order inside a matrix product, hence the last bits of fp32/fp64 BLAS and
/// LAPACK results (the fp64 reference spectra of synthetic operators move by ~1e-14):
/// manifests record it (`blas_core`). `HH_BLAS_CORE` chooses the policy
/// (``Policy``): `auto` (the CPU's level), `portable` (`Haswell` on every AVX2 machine,
/// Intel or AMD: the kernel set whose results match OpenBLAS's `Zen`, so a study gives
/// the same bytes on both), `detected` (OpenBLAS's own choice) or a kernel set's name.
public enum BLASRuntime {
    /// OpenBLAS's name of the kernel set in use (`Haswell`, `SkylakeX`, `Cooperlake`, `Prescott`, …).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The CPU's instruction-set level as OpenBLAS's kernels group them.
    public enum CPULevel: Int, Sendable, Comparable {
        case baseline = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3
        public static func < (a: CPULevel, b: CPULevel) -> Bool { a.rawValue < b.rawValue }
        /// This machine's.
        public static var current: CPULevel { CPULevel(rawValue: Int(hh_cpu_x86_level())) ?? .baseline }
    }

    /// The instruction-set level a kernel set of OpenBLAS 0.3.x needs, for the kernel
    /// sets that use AVX2 or more; every other name (Prescott, Core2, Nehalem,
    /// Sandybridge, the AMD ones before Zen, and names of other architectures) counts as
    /// baseline.
    public static func level(ofCore name: String) -> CPULevel {
        switch name.lowercased() {
        case "haswell", "zen", "skylake": return .avx2
        case "skylakex": return .avx512
        case "cooperlake", "sapphirerapids": return .avx512bf16
        default: return .baseline
        }
    }

    /// How the executables choose OpenBLAS's kernel set (`HH_BLAS_CORE`).
    public enum Policy: Equatable, Sendable {
        case auto, portable, detected
        case named(String)

        /// The x86-64 kernel sets `HH_BLAS_CORE` may name (OpenBLAS 0.3.x spellings).
        public static let names = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge", "Haswell",
                                   "SkylakeX", "Cooperlake", "SapphireRapids", "Zen"]

        /// Parses `HH_BLAS_CORE` (nil or empty: `auto`); a kernel set's name must be one
        /// of ``names`` (any case) and within the CPU's level.
        public init(environment value: String?, cpuLevel: CPULevel = .current) throws {
            let v = (value ?? "").trimmingCharacters(in: .whitespaces)
            switch v.lowercased() {
            case "", "auto": self = .auto
            case "portable": self = .portable
            case "detected": self = .detected
            default:
                guard let name = Self.names.first(where: { $0.lowercased() == v.lowercased() }) else {
                    throw BLASPolicyError("HH_BLAS_CORE=\(v): expected auto, portable, detected or one of \(Self.names.joined(separator: ", "))")
                }
                guard level(ofCore: name) <= cpuLevel else {
                    throw BLASPolicyError("HH_BLAS_CORE=\(v): this CPU lacks the instructions of that kernel set")
                }
                self = .named(name)
            }
        }

        /// The kernel set to ask for given OpenBLAS's detected one, or nil to keep it.
        public func coreType(detected: String, cpuLevel: CPULevel) -> String? {
            switch self {
            case .auto: return coreTypeToRequest(detected: detected, cpuLevel: cpuLevel)
            case .detected: return nil
            case .named(let name): return name.lowercased() == detected.lowercased() ? nil : name
            case .portable:
                guard cpuLevel >= .avx2 else { return nil }                   // nothing portable to ask for
                return ["haswell", "zen"].contains(detected.lowercased()) ? nil : "Haswell"
            }
        }
    }

    /// The kernel set to ask OpenBLAS for, or nil to keep the detected one: the one
    /// matching the CPU's level when the detected set uses less (`Haswell` for AVX2,
    /// `SkylakeX` for AVX-512, `Cooperlake` for AVX-512 with BF16).
    public static func coreTypeToRequest(detected: String, cpuLevel: CPULevel) -> String? {
        guard level(ofCore: detected) < cpuLevel else { return nil }
        switch cpuLevel {
        case .baseline: return nil
        case .avx2: return "Haswell"
        case .avx512: return "SkylakeX"
        case .avx512bf16: return "Cooperlake"
        }
    }
}

/// A bad `HH_BLAS_CORE`.
public struct BLASPolicyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
