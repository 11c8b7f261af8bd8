import Testing
import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models
@testable import Curvature
import TestSupport

@Suite struct ApproximationTests {
    @Test func partitionsFollowTheLayout() throws {
        let t = try ModelSpec.build("transformer:context=4,width=8,heads=2,layers=2,ff=16,sequences=2", seed: 0)
        let layer = Partition(layout: t.layout, kind: .layer), block = Partition(layout: t.layout, kind: .block)
        #expect(block.names == ["embed", "block0", "block1", "final", "head"])
        #expect(layer.names == ["embed", "block0.ln1", "block0.attn", "block0.ln2", "block0.mlp", "block1.ln1", "block1.attn",
                                "block1.ln2", "block1.mlp", "final.ln", "head"])
        #expect(Partition(layout: t.layout, kind: .tensor).count == t.layout.tensors.count)
        #expect(Partition(layout: t.layout, kind: .full).count == 1)
        // Every parameter lies in exactly one block.
        for p in [layer, block] { #expect(p.ranges.flatMap { $0 }.map(\.count).reduce(0, +) == t.parameterCount) }
        let mlp = try ModelSpec.build("mlp:widths=3-4-2", seed: 0)
        #expect(Partition(layout: mlp.layout, kind: .layer).names == ["layer0", "layer1"])
    }

    /// One block: H_B = H, both dense and through HVPs; a finer partition is not H.
    @Test func blockDiagonalWithOneBlockIsH() throws {
        let m = try ModelSpec.build("mlp:widths=3-4-2,samples=6", seed: 1)
        let theta = m.initialParameters(seed: 1), n = m.parameterCount
        let hvp: ([Double]) -> [Double] = { m.exactHVP(theta, $0).hv }
        let h = denseFrom(n, hvp)
        let full = Partition(layout: m.layout, kind: .full)
        #expect(full.blockDiagonal(of: h).storage == h.storage)
        #expect(maxAbsDiff(denseFrom(n) { full.blockDiagonalProduct($0, hvp) }, h) == 0)
        let layer = Partition(layout: m.layout, kind: .layer)
        let hb = layer.blockDiagonal(of: h)
        #expect(maxAbsDiff(hb, h) > 1e-3, "cross-layer curvature is dropped")
        #expect(maxAbsDiff(denseFrom(n) { layer.blockDiagonalProduct($0, hvp) }, hb) < 1e-14 * maxAbs(h))
    }

    /// On a diagonal quadratic the diagonal approximation is H itself; Hutchinson's
    /// estimate of the diagonal is exact there too (z ⊙ Dz = d for z ∈ {±1}ⁿ).
    @Test func diagonalOfADiagonalQuadraticIsH() throws {
        let q = try ModelSpec.build("quadratic:diag:n=12,lo=0.5,hi=3", seed: 0) as! QuadraticModel
        let theta = q.initialParameters(seed: 0)
        let h = denseFrom(12) { q.exactHVP(theta, $0).hv }
        var d = Matrix<Double>(rows: 12, cols: 12)
        for i in 0..<12 { d[i, i] = h[i, i] }
        #expect(d.storage == h.storage)
        #expect(h.storage.enumerated().allSatisfy { $0.offset % 13 == 0 || $0.element == 0 })
        let est = DiagonalHessian.hutchinson(dimension: 12, probes: 2, seed: 9) { q.exactHVP(theta, $0).hv }
        #expect(est == (0..<12).map { h[$0, $0] })
        let m = try ApproximationMetrics.dense(h: h, approx: d, probes: [[Double]](repeating: [Double](repeating: 1, count: 12), count: 2), k: 3)
        #expect(m.relErr == 0 && m.froRel == 0 && m.w1Scaled == 0 && abs(m.topkOverlap! - 1) < 1e-12)
    }

    /// A linear model with squared loss: the Hessian is exactly Jᵀ∇²ℓ J, the GGN.
    /// With cross-entropy and a hidden tanh layer the two differ.
    @Test func ggnEqualsHForALinearModelWithSquaredLoss() throws {
        let lin = try ModelSpec.build("mlp:widths=4-3,samples=5,loss=mse", seed: 2) as! MLP
        let theta = lin.initialParameters(seed: 2).map { $0 + 0.3 }      // nonzero biases too
        let n = lin.parameterCount
        let h = denseFrom(n) { lin.exactHVP(theta, $0).hv }
        let g = denseFrom(n) { GaussNewton.vectorProduct(lin, theta: theta, v: $0) }
        #expect(maxAbsDiff(h, g) < 1e-14 * maxAbs(h), "‖H − G‖max = \(maxAbsDiff(h, g))")
        let deep = try ModelSpec.build("mlp:widths=4-5-3,samples=5", seed: 2) as! MLP
        let t2 = deep.initialParameters(seed: 2)
        let h2 = denseFrom(deep.parameterCount) { deep.exactHVP(t2, $0).hv }
        let g2 = denseFrom(deep.parameterCount) { GaussNewton.vectorProduct(deep, theta: t2, v: $0) }
        #expect(maxAbsDiff(h2, g2) > 1e-4 * maxAbs(h2))
        // The GGN is symmetric positive semidefinite.
        #expect(maxAbsDiff(g2, g2.transposed()) < 1e-14 * maxAbs(g2))
        #expect(try SymmetricEigen.decompose(g2, vectors: false).values.first! > -1e-14 * maxAbs(g2))
    }

    /// The GGN of the transformer LM runs through its own reverse pass: symmetric,
    /// PSD, and vᵀGv = ‖(∇²ℓ)^{1/2} J v‖² ≥ 0 for any v.
    @Test func transformerGGNIsSymmetricPSD() throws {
        let t = try ModelSpec.build("transformer:context=3,width=4,heads=2,layers=1,ff=8,sequences=2", seed: 0) as! TransformerLM
        let theta = t.initialParameters(seed: 0)
        var gen = SplitMix64(seed: 4)
        let u = (0..<t.parameterCount).map { _ in gen.nextGaussian() }, w = (0..<t.parameterCount).map { _ in gen.nextGaussian() }
        let gu = GaussNewton.vectorProduct(t, theta: theta, v: u), gw = GaussNewton.vectorProduct(t, theta: theta, v: w)
        let a = zip(w, gu).map(*).reduce(0, +), b = zip(u, gw).map(*).reduce(0, +)
        #expect(abs(a - b) < 1e-12 * max(abs(a), 1e-300))
        #expect(zip(u, gu).map(*).reduce(0, +) > 0)
    }

    /// K-FAC equals the exact GGN block of a single linear layer with one sample,
    /// and is only an approximation with several samples.
    @Test func kfacEqualsGGNForOneLinearLayerAndOneSample() throws {
        for loss in ["ce", "mse"] {
            let m = try ModelSpec.build("mlp:widths=3-4,samples=1,loss=\(loss)", seed: 5) as! MLP
            let theta = m.initialParameters(seed: 5).map { $0 + 0.1 }
            let n = m.parameterCount
            let g = denseFrom(n) { GaussNewton.vectorProduct(m, theta: theta, v: $0) }
            let k = KFAC(m, theta: theta)
            let kd = denseFrom(n) { k.apply($0) }
            #expect(maxAbsDiff(g, kd) < 1e-14 * maxAbs(g), "\(loss): ‖G − K‖max = \(maxAbsDiff(g, kd))")
        }
        let m = try ModelSpec.build("mlp:widths=3-4,samples=7", seed: 5) as! MLP
        let theta = m.initialParameters(seed: 5)
        let g = denseFrom(m.parameterCount) { GaussNewton.vectorProduct(m, theta: theta, v: $0) }
        let kd = denseFrom(m.parameterCount) { KFAC(m, theta: theta).apply($0) }
        #expect(maxAbsDiff(g, kd) > 1e-4 * maxAbs(g))
    }

    /// Hand-computed: H = diag(2, 1), Ĥ = diag(2, 0), probes e₁, e₂.
    @Test func metricsOnAHandComputedCase() throws {
        let h = Matrix<Double>(rows: 2, cols: 2, storage: [2, 0, 0, 1]), a = Matrix<Double>(rows: 2, cols: 2, storage: [2, 0, 0, 0])
        let m = try ApproximationMetrics.dense(h: h, approx: a, probes: [[1, 0], [0, 1]], k: 1)
        #expect(m.relErr == 0.5 && m.relErrMax == 1 && m.cos == 0.5)
        #expect(abs(m.froRel - 1 / 5.0.squareRoot()) < 1e-15 && m.froMethod == "exact")
        #expect(abs(m.w1Scaled! - 0.5) < 1e-15)          // spectra {1, 2} vs {0, 2}: W1 = 1/2, range 1
        #expect(abs(m.topkOverlap! - 1) < 1e-15)         // both top eigenvectors are e₁
        // Hutchinson with the two Rademacher probes (1, 1), (1, −1): ‖(H−Ĥ)z‖² = 1, ‖Hz‖² = 5 each.
        let p = ApproximationMetrics.fromProbes(hv: [[2, 1], [2, -1]], av: [[2, 0], [2, 0]])
        #expect(abs(p.froRel - 1 / 5.0.squareRoot()) < 1e-15 && p.froMethod == "hutchinson(2)")
        #expect(abs(p.relErr - 1 / 5.0.squareRoot()) < 1e-15 && p.w1Scaled == nil)
        // Top-2 overlap of two different orthonormal bases of the same 2-d space is 1; of orthogonal 1-d spaces 0.
        let rot = Matrix<Double>(rows: 2, cols: 2, storage: [1, 0, 0, 3])
        #expect(abs(try ApproximationMetrics.dense(h: h, approx: rot, probes: [[1, 0]], k: 1).topkOverlap!) < 1e-15)
    }
}

extension ApproximationTests {
    /// With one sequence of one position there are no cross-position terms: every
    /// K-FAC block of the transformer's linear maps equals the corresponding diagonal
    /// block of the GGN. With several positions it is only an approximation.
    @Test func transformerKFACIsExactForOnePosition() throws {
        for (spec, exact) in [("transformer:context=1,width=4,heads=2,layers=1,ff=8,sequences=1", true),
                              ("transformer:context=3,width=4,heads=2,layers=1,ff=8,sequences=2", false)] {
            let t = try ModelSpec.build(spec, seed: 3) as! TransformerLM
            let theta = t.initialParameters(seed: 3), n = t.parameterCount
            let k = KFAC(t, theta: theta)
            #expect(k.layers.map(\.weight.name) == ["head", "block0.mlp.w2", "block0.mlp.w1", "block0.attn.wo", "block0.attn.wq", "block0.attn.wk", "block0.attn.wv"])
            let g = denseFrom(n) { GaussNewton.vectorProduct(t, theta: theta, v: $0) }
            let kd = denseFrom(n) { k.apply($0) }
            var worst = 0.0
            for l in k.layers {
                let idx = Array(l.weight.range) + (l.bias.map { Array($0.range) } ?? [])
                for i in idx { for j in idx { worst = max(worst, abs(g[i, j] - kd[i, j])) } }
            }
            if exact { #expect(worst < 1e-13 * maxAbs(g), "\(spec): worst block difference \(worst)") }
            else { #expect(worst > 1e-6 * maxAbs(g)) }
            #expect(maxAbsDiff(kd, kd.transposed()) < 1e-13 * maxAbs(kd))
        }
    }
}
