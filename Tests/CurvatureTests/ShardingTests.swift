import Collectives
import Testing
@testable import Curvature
@testable import Models
import Krylov
import Scalars
import LinearAlgebra

@Suite struct ShardingTests {
    @Test func collectivesOnHandCheckedData() throws {
        let world = InProcessWorld(size: 3)
        let out = try world.run { comm -> [[Double]] in
            let r = Double(comm.rank)
            let gathered = comm.allGather([r, r + 10])
            let scattered = comm.reduceScatter([1 * (r + 1), 2 * (r + 1), 3 * (r + 1), 4, 5, 6], format: .fp64, order: .sequential)
            let reduced = comm.allReduce([r, 1], format: .fp64, order: .tree)
            return [gathered, scattered, reduced]
        }
        for r in 0..<3 { #expect(out[r][0] == [0, 10, 1, 11, 2, 12]) }
        #expect(out[0][1] == [6, 12] && out[1][1] == [18, 12] && out[2][1] == [15, 18])
        for r in 0..<3 { #expect(out[r][2] == [3, 3]) }
    }

    /// In bf16 the reduction order changes the result: for [1, 2⁻⁹, 2⁻⁸, 2⁻⁸],
    /// sequential ((1 + 2⁻⁹) + 2⁻⁸) + 2⁻⁸ loses every small term (ties to even),
    /// the tree (1 + 2⁻⁹) + (2⁻⁸ + 2⁻⁸) keeps 2⁻⁷.
    @Test func reductionOrderIsExplicitAndMatters() throws {
        let bf = try FormatArithmetic(name: "bf16")
        let world = InProcessWorld(size: 4)
        let v4 = [1.0, 0x1p-9, 0x1p-8, 0x1p-8]
        let seq = try world.run { comm in comm.allReduce(v4[comm.rank], format: bf, order: .sequential) }
        let tree = try world.run { comm in comm.allReduce(v4[comm.rank], format: bf, order: .tree) }
        #expect(seq == [1, 1, 1, 1])
        #expect(tree == [Double](repeating: 1 + 0x1p-7, count: 4))
    }

    @Test(arguments: [1, 2, 3, 8])
    func shardedEqualsUnsharded(_ shards: Int) throws {
        let data = try Dataset.teacherStudent(samples: 24, features: 5, classes: 3, seed: 2)
        let mlp = try MLP(widths: [5, 7, 3], activation: .gelu, data: data)
        let theta = mlp.initialParameters(seed: 1)
        var g = SplitMix64(seed: 3)
        let v = (0..<theta.count).map { _ in g.nextUniform() - 0.5 }
        for scheme in FDScheme.allCases {
            for step in [StepPolicy.absolute(1e-4), .relative(1e-5)] {
                let full = FiniteDifferenceHVP.estimate(mlp, theta: theta, v: v, scheme: scheme, step: step,
                                                        precision: FDPrecision(), compute: Double.self)
                let sh = try ShardedHVP.estimate(mlp, theta: theta, v: v, scheme: scheme, step: step,
                                                 precision: FDPrecision(), shards: shards, compute: Double.self)
                if shards == 1 {
                    #expect(sh.hv == full.hv && sh.delta == full.delta, "S=1 is bitwise the unsharded pipeline")
                } else {
                    let num = zip(sh.hv, full.hv).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                    let den = full.hv.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    // Only the summation order of per-sample gradient terms changes; the
                    // FD quotient amplifies that by 1/ε: bound (B + S)·u/ε relative.
                    let bound = Double(24 + shards) * 0x1p-53 / sh.epsilon * 10
                    #expect(num / den <= bound, "S=\(shards) \(scheme) \(step): \(num / den) > \(bound)")
                }
                #expect(sh.swampedFraction == full.swampedFraction)
            }
        }
        // A model without data: every other rank adds exact zeros, bitwise equal.
        let quad = try QuadraticModel(operator: OperatorSpec.parse("mp:n=13,ratio=0.5"), seed: 1)
        let tq = quad.initialParameters(seed: 2), vq = quad.initialParameters(seed: 3)
        let a = FiniteDifferenceHVP.estimate(quad, theta: tq, v: vq, scheme: .central, step: .absolute(1e-3), precision: FDPrecision(), compute: Float.self)
        let b = try ShardedHVP.estimate(quad, theta: tq, v: vq, scheme: .central, step: .absolute(1e-3), precision: FDPrecision(), shards: shards, compute: Float.self)
        #expect(a.hv == b.hv)
    }

    /// The fp32 sharded FD-HVP (binary32 points, collectives and gradients,
    /// ``Binary32FD/rankEstimate``) against the staged fp64-carrier path, bit for bit:
    /// every rank's shard of ĥ and of fl(θ + εv), for 1 to 5 ranks (7,504 parameters: the
    /// last shard padded for 3 and 5), both orders (in binary32 the order changes the
    /// sums: the test checks the two paths add alike), forward and central, absolute and
    /// relative steps, hvp in fp32 and fp64, recursive and BLAS products; parameters
    /// with zeros, subnormals and huge values.
    @Test func binary32RanksMatchStages() throws {
        let data = try Dataset.teacherStudent(samples: 10, features: 20, classes: 4, seed: 3)
        let mlp = try MLP(widths: [20, 300, 4], activation: .tanh, data: data)
        var g = SplitMix64(seed: 9)
        var edgy = mlp.initialParameters(seed: 4).map { Double(Float($0)) }
        for i in stride(from: 0, to: edgy.count, by: 389) { edgy[i] = 0 }
        for i in stride(from: 5, to: edgy.count, by: 1201) { edgy[i] = Double(Float(0x1p-140)) }
        for i in stride(from: 7, to: edgy.count, by: 2003) { edgy[i] = 0x1p100 }
        let theta = edgy
        let v = (0..<theta.count).map { i in i % 97 == 0 ? 0 : g.nextUniform() - 0.5 }
        let fp32 = try FormatArithmetic(name: "fp32")
        var orderMattered = false
        for shards in 1...5 {
            let layout = ShardLayout(count: theta.count, shards: shards)
            for order in ReductionOrder.allCases {
                for (hvp, acc) in [(fp32, Accumulation.recursive), (FormatArithmetic.fp64, .blas)] {
                    for scheme in [FDScheme.forward, .central] {
                        for step in [StepPolicy.absolute(1e-3), .relative(1e-4)] {
                            let p = FDPrecision(param: fp32, grad: fp32, hvp: hvp, accumulation: acc)
                            let out = try InProcessWorld(size: shards).run { comm -> [[Double]] in
                                let tr = layout.shard(theta, rank: comm.rank), vr = layout.shard(v, rank: comm.rank)
                                let fast = ShardedHVP.rankEstimate(comm: comm, model: mlp, thetaShard: tr, vShard: vr, layout: layout, scheme: scheme,
                                                                   step: step, precision: p, order: order, compute: Float.self)
                                let staged = ShardedHVP.rankEstimateByStages(comm: comm, model: mlp, thetaShard: tr, vShard: vr, layout: layout,
                                                                             scheme: scheme, step: step, precision: p, order: order, compute: Float.self)
                                return [fast.hv, staged.hv, fast.plus, staged.plus, [fast.eps, staged.eps]]
                            }
                            let label = "S=\(shards) \(order) hvp=\(hvp) \(acc) \(scheme) \(step)"
                            for r in 0..<shards {
                                #expect(out[r][0].map(\.bitPattern) == out[r][1].map(\.bitPattern), "\(label) rank \(r): hv")
                                #expect(out[r][2].map(\.bitPattern) == out[r][3].map(\.bitPattern), "\(label) rank \(r): plus")
                                #expect(out[r][4][0] == out[r][4][1])
                            }
                            if shards == 5, scheme == .central, case .absolute = step, hvp == fp32, acc == .recursive {
                                let other = try InProcessWorld(size: shards).run { comm -> [Double] in
                                    ShardedHVP.rankEstimate(comm: comm, model: mlp, thetaShard: layout.shard(theta, rank: comm.rank),
                                                            vShard: layout.shard(v, rank: comm.rank), layout: layout, scheme: scheme, step: step,
                                                            precision: p, order: order == .tree ? .sequential : .tree, compute: Float.self).hv
                                }
                                if (0..<shards).contains(where: { other[$0] != out[$0][0] }) { orderMattered = true }
                            }
                        }
                    }
                }
            }
        }
        #expect(orderMattered, "binary32 sums over 5 ranks depend on the order (the comparison can fail)")
    }

    /// The binary32 collectives: in process, through the binary64 ones (the protocol's
    /// default, for backends without binary32 transport) and by hand agree; a
    /// reduce-scatter adds in binary32 to nearest (1 + 2⁻²⁴ + 2⁻²⁴: sequential loses both
    /// halves, the tree keeps 2⁻²³).
    @Test func binary32Collectives() throws {
        struct ViaDoubles: Communicator {
            let inner: any Communicator
            var rank: Int { inner.rank }
            var size: Int { inner.size }
            func allGather(_ local: [Double]) -> [Double] { inner.allGather(local) }
            func reduceScatter(_ full: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
                inner.reduceScatter(full, format: format, order: order)
            }
            func allReduce(_ x: [Double], format: FormatArithmetic, order: ReductionOrder) -> [Double] {
                inner.allReduce(x, format: format, order: order)
            }
        }
        // Rank r's vector: element 0 is 1, 0, 2⁻²⁴, 2⁻²⁴ over the ranks (sequential: 1, the
        // tree: 1 + 2⁻²³), element 1 is 2, 3, 0, 0, element j ≥ 2 is j·(r + 1) (sum 10j).
        let e0: [Float] = [1, 0, 0x1p-24, 0x1p-24], e1: [Float] = [2, 3, 0, 0]
        let parts = (0..<4).map { r in [e0[r], e1[r]] + (2..<8).map { Float($0 * (r + 1)) } }
        for order in ReductionOrder.allCases {
            let out = try InProcessWorld(size: 4).run { comm -> [[Float]] in
                let d = ViaDoubles(inner: comm)
                return [comm.allGather([Float(comm.rank), 7]), d.allGather([Float(comm.rank), 7]),
                        comm.reduceScatter(parts[comm.rank], order: order), d.reduceScatter(parts[comm.rank], order: order)]
            }
            for r in 0..<4 {
                #expect(out[r][0] == [0, 7, 1, 7, 2, 7, 3, 7] && out[r][1] == out[r][0])
                #expect(out[r][2] == out[r][3], "\(order) rank \(r)")
                if r > 0 { #expect(out[r][2] == [Float(20 * r), Float(20 * r + 10)]) }
            }
            #expect(out[0][2] == (order == .sequential ? [1, 5] : [1 + 0x1p-23, 5]), "\(order): \(out[0][2])")
        }
    }

    @Test func shardLayoutPads() {
        let l = ShardLayout(count: 10, shards: 3)
        #expect(l.shardSize == 4 && l.paddedCount == 12)
        #expect(l.shard(Array(0..<10).map(Double.init), rank: 2) == [8, 9, 0, 0])
    }
}

/// The whole FSDP pipeline: Lanczos with shard-local vectors and all-reduced dot
/// products, fed by the shard-local FD-HVP, on a quadratic whose Hessian spectrum
/// is known; the same within rounding for S = 1, 2, 3 and equal to the unsharded
/// Lanczos of the exact operator.
@Suite struct ShardedLanczosTests {
    @Test func fsdpLanczosOnAQuadratic() throws {
        let model = try QuadraticModel(operator: OperatorSpec.parse("diag:n=30,lo=1,hi=10"), seed: 1)
        let theta = model.initialParameters(seed: 2)
        var g = ProbeGenerator(seed: 3, kind: .rademacher)
        let start = g.next(30)
        let ref = Lanczos.run(DiagonalOperator(model.diagonal!), start: start, options: LanczosOptions(steps: 30, reorthogonalization: .full))
        var alphasByS: [[Double]] = []
        for shards in [1, 2, 3] {
            let layout = ShardLayout(count: 30, shards: shards)
            let out = try InProcessWorld(size: shards).run { comm -> [Double] in
                let tr = layout.shard(theta, rank: comm.rank)
                let (alpha, beta) = ShardedLanczos.run(comm: comm, start: layout.shard(start, rank: comm.rank), steps: 30,
                                                       reorthogonalization: .full) { vShard in
                    ShardedHVP.rankEstimate(comm: comm, model: model, thetaShard: tr, vShard: vShard, layout: layout,
                                            scheme: .central, step: .absolute(1e-3), precision: FDPrecision(), order: .sequential,
                                            compute: Double.self).hv
                }
                return alpha + beta
            }
            #expect(out.allSatisfy { $0 == out[0] }, "every rank holds the same tridiagonal")
            let alpha = Array(out[0].prefix(out[0].count / 2)), beta = Array(out[0].suffix(out[0].count / 2))
            alphasByS.append(alpha)
            let ritz = try TridiagonalEigen.solve(diagonal: alpha, offDiagonal: Array(beta.dropLast())).values
            #expect(abs(ritz.first! - 1) < 1e-8 && abs(ritz.last! - 10) < 1e-8, "S=\(shards): extremes \(ritz.first!) \(ritz.last!)")
            for (a, b) in zip(alpha.prefix(10), ref.alpha.prefix(10)) { #expect(abs(a - b) < 1e-9, "S=\(shards) α vs unsharded exact-operator Lanczos") }
        }
        for s in 1..<alphasByS.count {
            for (a, b) in zip(alphasByS[s].prefix(10), alphasByS[0].prefix(10)) { #expect(abs(a - b) < 1e-10) }
        }
    }
}

/// Stochastic rounding on sharded ranks draws from generators derived from the
/// caller's seed (rank 0 continues the caller's stream): the same seed reproduces the
/// HVP bit for bit, another seed changes it, and the caller's stream is left as it was.
@Suite struct ShardedStochasticRoundingTests {
    @Test func rankGeneratorsFollowTheCallersSeed() throws {
        let data = try Dataset.teacherStudent(samples: 12, features: 4, classes: 3, seed: 2)
        let mlp = try MLP(widths: [4, 6, 3], activation: .tanh, data: data)
        let theta = mlp.initialParameters(seed: 1).map { Double(Float($0)) }
        var g = SplitMix64(seed: 9)
        let v = theta.map { _ in g.nextUniform() - 0.5 }
        let sr = try FormatArithmetic(name: "bf16", mode: .stochastic)
        let p = FDPrecision(param: sr, grad: sr, hvp: try FormatArithmetic(name: "fp32"))
        func hv(_ seed: UInt64) throws -> [Double] {
            try StochasticRounding.withSeed(seed) {
                let r = try ShardedHVP.estimate(mlp, theta: theta, v: v, scheme: .central, step: .absolute(1e-2), precision: p,
                                                shards: 3, compute: Float.self).hv
                #expect(StochasticRounding.currentState == seed, "the caller's stream is untouched")
                return r
            }
        }
        let a = try hv(5), b = try hv(5), c = try hv(6)
        #expect(a == b)
        #expect(a != c, "the seed reaches the ranks' stochastic rounding")
        #expect(SPMD.rankSeed(5, 0) == 5 && SPMD.rankSeed(5, 1) != SPMD.rankSeed(5, 2) && SPMD.rankSeed(5, 1) != 5)
    }

    /// orth_loss and orth_loss_fro measured on shards track the unsharded measurement
    /// (fp64 Lanczos without reorthogonalization on a quadratic): equal to rounding
    /// while orthogonality holds, and losing it at the same pace afterwards (the two
    /// runs round differently, and without reorthogonalization rounding differences
    /// grow with the loss itself, so later steps agree in magnitude only).
    @Test(arguments: [1, 2, 3]) func shardedOrthogonalityMatchesUnsharded(_ shards: Int) throws {
        let op = try OperatorSpec.parse("diag:n=40,lo=1,hi=100,dist=log")
        let model = try QuadraticModel(operator: op, seed: 1)
        var g = ProbeGenerator(seed: 3, kind: .rademacher)
        let start = g.next(40)
        let ref = Lanczos.run(DiagonalOperator(model.diagonal!), start: start, options: LanczosOptions(steps: 25, reorthogonalization: .none))
        let layout = ShardLayout(count: 40, shards: shards)
        let d = model.diagonal!
        let out = try InProcessWorld(size: shards).run { comm -> ShardedLanczos.Result in
            let lo = comm.rank * layout.shardSize
            return ShardedLanczos.run(comm: comm, start: layout.shard(start, rank: comm.rank), steps: 25, measureOrthogonality: true) { q in
                q.indices.map { i in lo + i < 40 ? d[lo + i] * q[i] : 0 }
            }
        }
        #expect(out.allSatisfy { $0 == out[0] })
        let r = out[0]
        #expect(r.orthLoss.count == ref.records.count)
        let mine = r.orthLoss.map { $0! }, theirs = ref.records.map { $0.orthLoss! }
        for j in 0..<5 { #expect(abs(mine[j] - theirs[j]) <= 1e-13, "step \(j + 1): \(mine[j]) vs \(theirs[j])") }
        for j in mine.indices {
            let ratio = max(mine[j], 1e-15) / max(theirs[j], 1e-15)
            #expect(ratio > 0.01 && ratio < 100, "step \(j + 1): \(mine[j]) vs \(theirs[j])")
            #expect(r.orthLossFro[j]! >= mine[j] * 2.0.squareRoot() * (1 - 1e-12), "‖I − QᵀQ‖_F bounds √2·max off-diagonal")
        }
        #expect(r.orthLoss.last!! > 1e-6, "without reorthogonalization orthogonality is lost (the measurement can fail)")
    }
}

/// Lanczos at a foundation model's dimension: the stored basis and the Krylov sums.
@Suite struct LargeDimensionLanczosTests {
    /// A binary32 Krylov format keeps its basis in binary32 (half of fp64 carriers): the
    /// same values, so the same tridiagonal and orthogonality bit for bit.
    @Test func binary32BasisEqualsFp64Carriers() throws {
        let n = 300
        let d = (0..<n).map { 0.01 + 10 * Double($0) / Double(n) }
        var g = ProbeGenerator(seed: 5, kind: .gaussian)
        let start = g.next(n)
        let k = try FormatArithmetic(name: "fp32")
        func run(_ narrow: Bool) throws -> ShardedLanczos.Result {
            try InProcessWorld(size: 1).run { comm in
                ShardedLanczos.run(comm: comm, start: start, steps: 20, reorthogonalization: .full, krylov: k, measureOrthogonality: true,
                                   binary32Basis: narrow) { q in q.indices.map { k.round(d[$0] * q[$0]) } }
            }[0]
        }
        let narrow = try run(true), wide = try run(false)
        #expect(narrow == wide)
        #expect(narrow.alpha.count == 20)
    }

    /// Under `accumulate=blas`, binary32 Lanczos vectors are summed in binary64: at
    /// n = 2²⁰ a recursive binary32 sum already loses ~1e-4 of a unit vector's squared
    /// norm, which shows as orthogonality loss; binary64 sums keep it at the vectors' own
    /// rounding level. (At SmolLM2's 1.3·10⁸ the recursive sum stalls at 0.5.)
    @Test func binary32VectorsSumInBinary64UnderBlas() throws {
        let policy = try PrecisionPolicy("param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32,krylov=fp32")
        #expect(policy.krylovAccumulation() == .widened(.fp64))
        #expect(policy.krylovAccumulationFormat == "fp64")
        #expect(policy.krylovSumWarning(dimension: 134_515_008) == nil)
        let recursive = try PrecisionPolicy("param=fp32,compute=fp32,accumulate=fp32,grad=fp32,hvp=fp32,krylov=fp32")
        #expect(recursive.krylovAccumulation() == .recursive)
        #expect(recursive.krylovSumWarning(dimension: 134_515_008)?.contains("recursively in fp32") == true)
        #expect(recursive.krylovSumWarning(dimension: 10_000) == nil)
        #expect(try PrecisionPolicy("accumulate=blas,krylov=fp64").krylovAccumulation() == .recursive)

        let n = 1 << 20
        let d = (0..<n).map { 1 + Double($0 % 97) / 10 }
        var g = ProbeGenerator(seed: 7, kind: .rademacher)
        let start = g.next(n)
        let k = try FormatArithmetic(name: "fp32")
        func orthLoss(_ acc: String) throws -> Double {
            let a = try FormatArithmetic(name: acc)
            let r = try InProcessWorld(size: 1).run { comm in
                ShardedLanczos.run(comm: comm, start: start, steps: 3, reorthogonalization: .full, krylov: k, accumulate: a,
                                   measureOrthogonality: true) { q in q.indices.map { k.round(d[$0] * q[$0]) } }
            }[0]
            return r.orthLossFro.last!!
        }
        let wide = try orthLoss(policy.krylovAccumulationFormat), narrow = try orthLoss("fp32")
        #expect(wide < 1e-6, "binary64 sums: \(wide)")
        #expect(narrow > 1e-5, "recursive binary32 sums at n = 2²⁰: \(narrow)")
    }
}
