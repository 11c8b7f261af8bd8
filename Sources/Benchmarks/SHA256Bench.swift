import CKernels
import Foundation
import Harness
import Scalars

/// `bench sha256`: the throughput of the manifests' file digests (``SHA256``) on `bytes`
/// of pseudo-random data, with the CPU's compression (the x86 SHA extensions where it
/// has them) and with the plain C one; the median over `trials` (the data is hashed once
/// untimed first, so its pages are resident).
public enum SHA256Bench {
    public static func run(bytes: Int, trials: Int) -> [(String, Double)] {
        var g = SplitMix64(seed: 1)
        let data = Data((0..<bytes).map { _ in UInt8(truncatingIfNeeded: g.next()) })
        let compressions: [(String, SHA256.Blocks)] = [
            (hh_sha256_has_shani() != 0 ? "cpu (SHA-NI)" : "cpu (plain C, no SHA-NI)", { hh_sha256_blocks($0, $1, $2) }),
            ("plain C", { hh_sha256_blocks_portable($0, $1, $2) }),
        ]
        return compressions.map { name, blocks in
            (name, Double(bytes) / Timing.median(trials: trials, warmUp: true) { _ = SHA256.digest(data, blocks: blocks) } / 1e6)
        }
    }

    public static func render(bytes: Int, _ rows: [(String, Double)]) -> String {
        "benchmark,bytes,mb_per_s\n" + rows.map { "\"sha256 \($0.0)\",\(bytes),\(String(format: "%.1f", $0.1))\n" }.joined()
    }
}
