import Testing
import Collectives
import Models
import Studies
import Curvature
import Scalars

/// `slq --model` on one in-process shard applies the unsharded FD-HVP inside the
/// sharded Lanczos (without the collectives' fp64 copies): that is only right if one
/// rank's FD-HVP is the unsharded one bit for bit, under every deterministic kind of
/// policy: fp64, the fused binary32 path, emulated bf16 compute, over consecutive
/// products. (Under stochastic rounding the two paths draw in another order and differ
/// in their bits; slq keeps the sharded path there, and this test shows why.)
@Suite struct FDEngineShardTests {
    @Test(arguments: [
        "param=fp64,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp64,krylov=fp64",
        "param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32,krylov=fp32",
        "param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32",
        "param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32",
    ])
    func oneRankIsTheUnshardedFDHVP(_ policy: String) throws {
        for spec in ["mlp:widths=6-9-3,act=tanh,samples=16", "transformer:context=4,width=8,heads=2,layers=1,ff=16,sequences=3"] {
            let m = try ModelSpec.build(spec, seed: 2)
            let engine = try FDEngine(model: m, policy: PrecisionPolicy(policy))
            let (theta, v) = try ModelSetup.point(m, seed: 2, param: try PrecisionPolicy(policy).param)
            let n = m.parameterCount
            let layout = ShardLayout(count: n, shards: 1)
            for scheme in FDScheme.allCases {
                for step in [StepPolicy.absolute(1e-2), .relative(1e-3)] {
                    let direct = try StochasticRounding.withSeed(11) {
                        try (0..<3).map { i in try engine.estimate(theta: theta, v: v.map { $0 * Double(i + 1) }, scheme: scheme, step: step).hv }
                    }
                    let ranked = try StochasticRounding.withSeed(11) {
                        try InProcessWorld(size: 1).run { comm in
                            (0..<3).map { i in
                                engine.rankEstimate(comm: comm, thetaShard: theta, vShard: v.map { $0 * Double(i + 1) }, layout: layout,
                                                    scheme: scheme, step: step, order: .sequential)
                            }
                        }[0]
                    }
                    for i in 0..<3 {
                        #expect(direct[i].map(\.bitPattern) == ranked[i].map(\.bitPattern), "\(spec) \(policy) \(scheme) \(step) product \(i)")
                    }
                    #expect(direct[0] != direct[1], "the products differ (the test can fail)")
                }
            }
        }
    }

    /// Under stochastic rounding the two paths draw in another order: other bits.
    @Test func stochasticRoundingDrawsInAnotherOrder() throws {
        let policy = "param=bf16,compute=bf16,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32,rounding=stochastic"
        let m = try ModelSpec.build("mlp:widths=6-9-3,act=tanh,samples=16", seed: 2)
        let engine = try FDEngine(model: m, policy: PrecisionPolicy(policy))
        let (theta, v) = try ModelSetup.point(m, seed: 2, param: ScalarFormat("bf16"))
        let layout = ShardLayout(count: m.parameterCount, shards: 1)
        let direct = try StochasticRounding.withSeed(11) { try engine.estimate(theta: theta, v: v, scheme: .central, step: .absolute(1e-2)).hv }
        let ranked = try StochasticRounding.withSeed(11) {
            try InProcessWorld(size: 1).run { comm in
                engine.rankEstimate(comm: comm, thetaShard: theta, vShard: v, layout: layout, scheme: .central, step: .absolute(1e-2), order: .sequential)
            }[0]
        }
        #expect(direct != ranked)
    }
}

/// ``ModelSetup/parameters(_:seed:param:)``: θ rounded into the param format, sharing the
/// model's storage when nothing changes, and under stochastic rounding one draw per value in
/// order (the first version looked for a changed value first and drew twice for it: θ and
/// every later draw moved; found comparing slq runs with the previous build).
@Suite struct ModelParametersTests {
    @Test func roundedOnceInOrder() throws {
        let m = try ModelSpec.build("mlp:widths=5-7-3,samples=4", seed: 2)
        let raw = m.initialParameters(seed: 2)
        let sr = try FormatArithmetic(name: "bf16", mode: .stochastic)
        let got = StochasticRounding.withSeed(9) { ModelSetup.parameters(m, seed: 2, param: sr) + [sr.round(0.1)] }
        let want = StochasticRounding.withSeed(9) { raw.map { sr.round($0) } + [sr.round(0.1)] }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
        let nearest = try FormatArithmetic(name: "bf16")
        #expect(ModelSetup.parameters(m, seed: 2, param: nearest) == raw.map { nearest.round($0) })
        let fp64 = ModelSetup.parameters(m, seed: 2, param: .fp64)
        #expect(fp64.map(\.bitPattern) == raw.map(\.bitPattern))
    }
}
