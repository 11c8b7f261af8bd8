import Testing
import RealModule
@testable import Models
@testable import Curvature
import Scalars

@Suite struct TransformerTests {
    static func tiny() throws -> TransformerLM {
        try TransformerLM(config: .init(context: 5, width: 8, heads: 2, layers: 2, ff: 12, sequences: 2),
                          corpus: "abcabcaabbccabcacbacbbacabcabbca", seed: 3)
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
