import Testing
import RealModule
@testable import Models
@testable import Curvature
import Scalars
import LinearAlgebra

@Suite struct TransformerTests {
    static func tiny() throws -> TransformerLM {
        try TransformerLM(config: .init(context: 5, width: 8, heads: 2, layers: 2, ff: 12, sequences: 2),
                          corpus: "abcabcaabbccabcacbacbbacabcabbca", seed: 3)
    }

    /// Under `.blas` the products read the weights in place from θ (transposition a flag,
    /// the first sequence's weight gradients written straight into the gradient); the
    /// copies path (each weight and its transpose copied out, products of the copies,
    /// every sequence's weight gradient added to zeros) is the one the MPFR checks above
    /// cover. On OpenBLAS's Prescott, Haswell and Zen kernels the two agree bit for bit,
    /// for fp32, fp64 and forward-over-reverse duals (the exact HVP), sequences 1 and 3;
    /// on SkylakeX and Cooperlake, whose small products sum in a layout-dependent order,
    /// to within a few ulps of the gradient's scale. A wrong transposition flag, a sequence
    /// added twice or lost fails both.
    @Test func inPlaceWeightsKeepTheCopiesBits() throws {
        let exact = ["prescott", "haswell", "zen"].contains(BLASRuntime.coreName.lowercased())
        for S in [1, 3] {
            let m = try TransformerLM(config: .init(context: 6, width: 12, heads: 3, layers: 2, ff: 20, sequences: S),
                                      corpus: "abcabcaabbccabcacbacbbacabcabbcadcbadcab", seed: 4)
            var g = SplitMix64(seed: 9)
            let theta = m.initialParameters(seed: 5).map { $0 + 0.2 * (g.nextUniform() - 0.5) }
            let v = theta.map { _ in g.nextUniform() - 0.5 }
            func check<T: ComputeScalar>(_ th: [T], _ tol: Double, _ what: String, _ value: (T) -> Double) {
                let inPlace = m.lossAndGradient(th, accumulation: .blas)
                #expect(TransformerLM.Weights<T>.blasComputes(.blas), "\(what): BLAS does not compute its products")
                let copies = TransformerLM.$copiesWeights.withValue(true) { m.lossAndGradient(th, accumulation: .blas) }
                let a = inPlace.gradient.map(value), b = copies.gradient.map(value)
                let scale = b.map(\.magnitude).max()!
                #expect(scale > 0)
                if exact {
                    let differ = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
                    #expect(differ == 0, "\(what), \(S) sequences: \(differ) of \(a.count) differ")
                    #expect(value(inPlace.loss).bitPattern == value(copies.loss).bitPattern)
                } else {
                    let worst = zip(a, b).map { abs($0 - $1) }.max()!
                    #expect(worst <= tol * scale, "\(what), \(S) sequences: \(worst) against \(scale)")
                }
            }
            check(theta.map { Float($0) }, 1e-5, "fp32", { Double($0) })
            check(theta, 1e-13, "fp64", { $0 })
            let dual = zip(theta, v).map { Dual<Double>($0, $1) }
            check(dual, 1e-13, "Dual<Double> values", \.value)
            check(dual, 1e-13, "Dual<Double> tangents (the exact HVP)", \.tangent)
        }
    }

    /// ∂L/∂θᵢ in MPFloat<256> vs central differences (h = 2⁻⁸⁰) for three
    /// coordinates of every tensor (first, middle, last).
    @Test func gradientAgainstMPFRCentralDifferences() throws {
        let m = try Self.tiny()
        var g = SplitMix64(seed: 1)
        let theta = m.initialParameters(seed: 2).map { MPFloat<256>($0 + 0.3 * (g.nextUniform() - 0.5)) }
        let grad = m.lossAndGradient(theta, accumulation: .recursive).gradient
        let h = MPFloat<256>(sign: .plus, exponent: -80, significand: 1)
        for t in m.layout.tensors {
            for i in Set([t.offset, t.offset + t.count / 2, t.offset + t.count - 1]) {
                var tp = theta, tm = theta
                tp[i] += h; tm[i] -= h
                let fd = (m.lossAndGradient(tp, accumulation: .recursive).loss - m.lossAndGradient(tm, accumulation: .recursive).loss) / (2 * h)
                let err = (fd - grad[i]).magnitude.doubleValue
                #expect(err < 0x1p-120, "\(t.name)[\(i - t.offset)]: error \(err), grad \(grad[i].doubleValue)")
            }
        }
    }

    @Test func exactHVPAgainstMPFRFiniteDifferences() throws {
        let m = try Self.tiny()
        let theta = m.initialParameters(seed: 5).map { MPFloat<256>($0) }
        var g = SplitMix64(seed: 6)
        let v = (0..<theta.count).map { _ in MPFloat<256>(g.nextUniform() - 0.5) }
        let hv = m.exactHVP(theta, v).hv
        let fd = FiniteDifferenceHVP.estimateInFormat(m, theta: theta, v: v, scheme: .central,
                                                      epsilon: MPFloat<256>(sign: .plus, exponent: -80, significand: 1))
        var worst = 0.0
        for i in hv.indices { worst = max(worst, (hv[i] - fd[i]).magnitude.doubleValue) }
        #expect(worst < 0x1p-120, "max |Hv − FD| = \(worst)")
    }

    @Test func sizesReachAMillionParameters() throws {
        let big = try TransformerLM(config: .init(context: 64, width: 256, heads: 8, layers: 2, ff: 1024, sequences: 1), seed: 1)
        #expect(big.parameterCount >= 1_000_000, "\(big.parameterCount)")
        let small = try TransformerLM(config: .init(), seed: 1)
        #expect(small.parameterCount < 40_000)
        #expect(throws: ModelError.self) { try TransformerLM(config: .init(width: 10, heads: 4), seed: 1) }
    }
}
