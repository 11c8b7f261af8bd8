import Scalars
import COpenBLAS
import LinearAlgebra

/// Tool and library versions, for manifests and `hessian-harness version`.
public enum ToolInfo {
    public static let version = "0.1.0"
    public static var openBLASConfig: String { String(cString: openblas_get_config()) }

    /// Threads OpenBLAS uses (recorded in manifests).
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// Runs BLAS and LAPACK single-threaded. How a multi-threaded LAPACK routine
    /// (dsyevd of an exact spectrum, say) splits its sums depends on the number of
    /// cores the process sees, which taskset, containers and MPI's process binding
    /// change; with one thread the results are the same whatever the process sees.
    /// The harness parallelizes over configurations (--jobs) and ranks instead.
    public static func pinBLASThreads() { openblas_set_num_threads(1) }
    public static var lines: [String] {
        [
            "hessian-harness \(version) (commit \(BuildInfo.gitCommit))",
            "mpfr \(MPFRInfo.mpfrVersion) (thread-local state: \(MPFRInfo.threadSafe ? "yes" : "no"))",
            "gmp \(MPFRInfo.gmpVersion)",
            "openblas \(openBLASConfig) (kernels: \(BLASRuntime.coreName))",
            "malloc: \(ProcessAllocator.description)",
        ]
    }
}
