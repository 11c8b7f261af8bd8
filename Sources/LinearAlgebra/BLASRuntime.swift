import CKernels
import COpenBLAS

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
/// summation order inside a matrix product, hence the last bits of fp32/fp64 BLAS
/// results: manifests record it (`blas_core`).
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
