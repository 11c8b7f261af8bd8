import Foundation
import Testing
import Harness

/// `slq --model`'s per-step times: `time_lanczos_first_step_s` (the run's first step, which
/// also faults in the FD-HVP's memory) and `time_lanczos_step_warm_s` (the median of the
/// other steps, empty when there are none) and `time_lanczos_hvp_warm_s` (their operator
/// applications alone), on the sharded (FSDP) Lanczos and on the
/// unsharded one (partial reorthogonalization), with one probe and with several.
@Suite struct SLQStepTimingTests {
    @Test(arguments: [("full", 6, 2), ("partial", 6, 1), ("full", 1, 1)])
    func stepTimesAreReported(reorth: String, steps: Int, probes: Int) throws {
        let dir = tempDir("slq-steps")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runCLI(["slq", "--model", "mlp:widths=5-7-3,samples=12", "--policy", "param=fp32,compute=fp32,grad=fp32,hvp=fp32,krylov=fp64",
                            "--eps", "1e-3", "--steps", "\(steps)", "--probes", "\(probes)", "--reorth", reorth, "--seed", "2", "--out", dir.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
        let row = try #require(try CSVTable.read(path: dir.appendingPathComponent("summary.csv").path).first)
        let total = try #require(Double(row["time_lanczos_s"] ?? ""))
        let first = try #require(Double(row["time_lanczos_first_step_s"] ?? ""), "\(row)")
        #expect(first > 0 && first <= total)
        if steps * probes == 1 {
            #expect(row["time_lanczos_step_warm_s"] == "" && row["time_lanczos_hvp_warm_s"] == "")
        } else {
            let warm = try #require(Double(row["time_lanczos_step_warm_s"] ?? ""))
            // A median of steps: at most the run over the steps after the first.
            #expect(warm > 0 && warm <= total - first)
            // The operator is part of the step.
            let hvp = try #require(Double(row["time_lanczos_hvp_warm_s"] ?? ""))
            #expect(hvp > 0 && hvp <= warm)
        }
    }
}
