import Harness
import Scalars
import LinearAlgebra
import Krylov
import Models
import Studies

/// `bench gemm` and `bench slq`: the mixed-precision matrix product in the formats
/// and accumulation policies the studies use, and one full FD-HVP SLQ run on the
/// transformer language model. Medians of `trials` (build with `-c release`).
public enum PipelineBench {
    public struct Row: Sendable { public var benchmark: String; public var seconds: Double; public var rate: String }

    static func gemm<T: ComputeScalar>(_: T.Type, n: Int, accumulation: Accumulation, label: String, trials: Int) -> Row {
        var g = SplitMix64(seed: 7)
        let a = Matrix<T>(rows: n, cols: n, storage: (0..<(n * n)).map { _ in T(roundingDouble: g.nextUniform() - 0.5) })
        let b = Matrix<T>(rows: n, cols: n, storage: (0..<(n * n)).map { _ in T(roundingDouble: g.nextUniform() - 0.5) })
        var sink = 0.0
        let t = Timing.median(trials: trials, warmUp: true) { sink += Kernels.gemm(a, b, accumulation: accumulation).storage[0].doubleValue }
        if sink.isNaN { print("") }
        let gflops = 2 * Double(n) * Double(n) * Double(n) / t / 1e9
        return Row(benchmark: "gemm \(n)×\(n)×\(n) \(label)", seconds: t, rate: "\(String(format: "%.2f", gflops)) GFLOP/s")
    }

    /// C = A·B at n = 256 (or `n`): BLAS, the order-preserving SIMD kernel in fp32 and
    /// fp64, bf16 and fp16 inputs with fp32 accumulation (mixed precision), and bf16
    /// accumulating in bf16 (emulated, one rounding per operation).
    public static func gemm(n: Int = 256, trials: Int = 5) -> [Row] {
        [
            gemm(Float.self, n: n, accumulation: .blas, label: "fp32 BLAS sgemm", trials: trials),
            gemm(Float.self, n: n, accumulation: .recursive, label: "fp32, fp32 accumulation in order (SIMD lanes)", trials: trials),
            gemm(BFloat16.self, n: n, accumulation: .widened(.fp32), label: "bf16 inputs, fp32 accumulation (mixed)", trials: trials),
            gemm(LowPrecisionFloat<FP16Spec, NearestEven>.self, n: n, accumulation: .widened(.fp32), label: "fp16 inputs, fp32 accumulation (mixed)", trials: trials),
            gemm(BFloat16.self, n: n, accumulation: .recursive, label: "bf16 inputs, bf16 accumulation (emulated)", trials: trials),
            gemm(Double.self, n: n, accumulation: .blas, label: "fp64 BLAS dgemm", trials: trials),
            gemm(Double.self, n: n, accumulation: .recursive, label: "fp64, fp64 accumulation in order (SIMD lanes)", trials: trials),
        ]
    }

    /// One SLQ run as `slq --model` does it: FD-HVPs (central, fp32 policy, ε = 1e-3)
    /// fed to Lanczos with full reorthogonalization in fp32, `probes` × `steps`, on the
    /// transformer LM `spec`; then the Ritz values and the density.
    public static func slq(spec: String = "transformer", probes: Int = 4, steps: Int = 30, trials: Int = 1) throws -> [Row] {
        let m = try ModelSpec.build(spec, seed: 1)
        let policy = try PrecisionPolicy("param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32")
        let engine = try FDEngine(model: m, policy: policy)
        let theta = m.initialParameters(seed: 1).map { Double(Float($0)) }
        var gen = ProbeGenerator(seed: 1, kind: .rademacher)
        let ps = (0..<probes).map { _ in gen.next(m.parameterCount) }
        var nodes = 0
        let t = try Timing.median(trials: trials) {
            let traces = try ModelLanczos.run(krylov: ScalarFormat("fp32"), mode: .nearest, accumulation: .recursive, reorthogonalization: .full, steps: steps, dimension: m.parameterCount,
                                              probes: ps, seed: 1) { q in
                (try? engine.estimate(theta: theta, v: q, scheme: .central, step: .absolute(1e-3)).hv) ?? q
            }
            let mu = try KrylovStabilityStudy.slq(traces).measure
            let lo = mu.nodes.min() ?? 0, hi = mu.nodes.max() ?? 1
            _ = mu.density(on: (0..<512).map { lo + (hi - lo) * Double($0) / 511 }, sigma: mu.defaultSigma)
            nodes = mu.nodes.count
        }
        return [Row(benchmark: "SLQ \(spec) (\(m.parameterCount) params), \(probes) probes × \(steps) steps, central FD-HVP fp32, full reorth",
                    seconds: t, rate: "\(String(format: "%.1f", t / Double(probes * steps) * 1e3)) ms per Lanczos step (\(nodes) nodes)")]
    }

    public static func render(_ rows: [Row]) -> String {
        "benchmark,seconds,rate\n" + rows.map { "\"\($0.benchmark)\",\($0.seconds),\($0.rate)" }.joined(separator: "\n") + "\n"
    }
}
