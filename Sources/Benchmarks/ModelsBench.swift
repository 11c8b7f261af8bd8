import Harness
import Scalars
import LinearAlgebra
import Models
import Curvature

/// `hessian-harness bench models`: the MLP 784-256-256-10, batch 256, fp32 with
/// BLAS products: gradient time, central FD-HVP and exact dual HVP (in units of
/// the gradient: `hvp_over_grad`), and the exact HVP in MPFloat<256> of an MLP of
/// about 10k parameters. Medians of `trials` interleaved rounds after a warm-up round.
public enum ModelsBench {
    public struct Row: Sendable { public var benchmark: String; public var seconds: Double; public var overGrad: Double? }

    public static func run(trials: Int = 5) throws -> [Row] {
        let data = try Dataset.teacherStudent(samples: 256, features: 784, classes: 10, seed: 1)
        let mlp = try MLP(widths: [784, 256, 256, 10], activation: .tanh, data: data)
        let theta = mlp.initialParameters(seed: 2)
        let thetaF = theta.map { Float($0) }
        var g = SplitMix64(seed: 3)
        let v = (0..<theta.count).map { _ in g.nextUniform() - 0.5 }
        let vF = v.map { Float($0) }
        var sink: Float = 0
        let p = FDPrecision(param: try FormatArithmetic(name: "fp32"), grad: try FormatArithmetic(name: "fp32"),
                            hvp: try FormatArithmetic(name: "fp32"), accumulation: .blas)
        let thetaParam = thetaF.map { Double($0) }                 // θ in the param format (fp32), as the studies hold it
        let plusF = zip(thetaF, vF).map { $0 + 0.01 * $1 }, minusF = zip(thetaF, vF).map { $0 - 0.01 * $1 }
        // Interleaved: each round times the gradient, the FD-HVP and the dual HVP in turn,
        // so the ratios compare runs under the same load.
        let times = try Timing.interleavedMedians(trials: trials, [
            { sink += mlp.lossAndGradient(thetaF, accumulation: .blas).loss },
            {
                let r = FiniteDifferenceHVP.estimate(mlp, theta: thetaParam, v: v, scheme: .central,
                                                     step: .absolute(1e-2), precision: p, compute: Float.self)
                sink += Float(r.hv[0])
            },
            { sink += mlp.exactHVP(thetaF, vF, accumulation: .blas).hv[0] },
            {   // the FD-HVP's floor: its two gradients alone, at two different points
                sink += mlp.lossAndGradient(plusF, accumulation: .blas).loss + mlp.lossAndGradient(minusF, accumulation: .blas).loss
            },
        ])
        let (tGrad, tFD, tDual, tTwo) = (times[0], times[1], times[2], times[3])
        // Exact HVP in MPFloat<256>: MLP 64-128-10 (9,610 parameters), 32 samples.
        let small = try MLP(widths: [64, 128, 10], activation: .tanh, data: try Dataset.teacherStudent(samples: 32, features: 64, classes: 10, seed: 4))
        let ts = small.initialParameters(seed: 5).map { MPFloat<256>($0) }
        let vs = (0..<ts.count).map { _ in MPFloat<256>(g.nextUniform() - 0.5) }
        let tMP = Timing.median(trials: 1) { sink += Float(small.exactHVP(ts, vs).hv[0].doubleValue) }
        if sink.isNaN { print("") }
        return [
            Row(benchmark: "mlp 784-256-256-10 batch 256 fp32 gradient (sgemm)", seconds: tGrad, overGrad: 1),
            Row(benchmark: "mlp 784-256-256-10 batch 256 fp32 central FD-HVP", seconds: tFD, overGrad: tFD / tGrad),
            Row(benchmark: "mlp 784-256-256-10 batch 256 fp32 exact HVP Dual<Float> (3 sgemm per product)", seconds: tDual, overGrad: tDual / tGrad),
            Row(benchmark: "mlp 784-256-256-10 batch 256 fp32 two gradients at θ ± εv (the FD-HVP without its own work)", seconds: tTwo, overGrad: tTwo / tGrad),
            Row(benchmark: "mlp 64-128-10 (\(small.parameterCount) params) batch 32 exact HVP Dual<MPFloat<256>>", seconds: tMP, overGrad: nil),
        ]
    }

    public static func render(_ rows: [Row]) -> String {
        "benchmark,seconds,hvp_over_grad\n" + rows.map { "\($0.benchmark),\($0.seconds),\($0.overGrad.map { "\($0)" } ?? "")" }.joined(separator: "\n") + "\n"
    }
}
