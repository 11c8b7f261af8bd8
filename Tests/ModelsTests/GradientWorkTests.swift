import Testing
@testable import Models
import LinearAlgebra

/// The scaling study's work counts (``GradientWork``), checked against counts derived a
/// second way: from the model's parameter layout (every weight matrix used as a linear
/// map costs 2·R·rows·cols FLOPs forward, as much for its weight gradient and for its
/// input gradient), so a linear map missed or mis-sized in the closed form fails.
struct GradientWorkTests {
    /// FLOPs of the layout's matrices over R rows; `gathered` names matrices read by
    /// index (embeddings), `noInputGradient` those whose input gradient is not formed.
    static func layoutFlops(_ layout: ParameterLayout, rows r: Double, gathered: Set<String>, noInputGradient: Set<String> = [],
                            alsoProduct: Set<String> = []) -> Double {
        var f = 0.0
        for t in layout.tensors where t.shape.count == 2 {
            let m = Double(t.shape[0]) * Double(t.shape[1])
            if !gathered.contains(t.name) { f += (noInputGradient.contains(t.name) ? 4 : 6) * r * m }
            if alsoProduct.contains(t.name) { f += 6 * r * m }          // a tied embedding is also the head
        }
        return f
    }

    @Test func mlpFlopsFromItsLayout() throws {
        let m = try ModelSpec.build("mlp:widths=5-7-6-3,samples=9", seed: 1)
        let w = try #require(m.gradientWork())
        #expect(w.flops == Self.layoutFlops(m.layout, rows: 9, gathered: [], noInputGradient: ["layer0.weight"]))
        let byHand: Double = 2 * 9 * (2 * 5 * 7 + 3 * 7 * 6 + 3 * 6 * 3)
        #expect(w.flops == byHand)
        #expect(w.tokens == 9)
        // 4 values per parameter; activations h0, h1, h2 (5 + 7 + 6) and z1, z2, z3 (7 + 6 + 3), 4 each.
        let values: Double = 4 * Double(m.parameterCount) + 4 * 9 * (18 + 16)
        #expect(w.values == values)
    }

    @Test func transformerFlopsFromItsLayout() throws {
        let (L, S, d, H, layers) = (5, 3, 8, 2, 2)
        let m = try ModelSpec.build("transformer:context=\(L),width=\(d),heads=\(H),layers=\(layers),ff=12,sequences=\(S)", seed: 1)
        let w = try #require(m.gradientWork())
        // Attention per block: q·k and p·v over the causal triangle forward, four such products backward.
        let triangle = Double(L * (L + 1) / 2)
        let attention: Double = Double(layers) * 12 * Double(S) * triangle * Double(d)
        let linear = Self.layoutFlops(m.layout, rows: Double(S * L), gathered: ["embed.tokens", "embed.positions"])
        #expect(w.flops == linear + attention)
        #expect(w.tokens == S * L)
        // Values: the parameters 4 + 6(S − 1) times (a sequence at a time: each reads the
        // weights twice; the first writes its weight gradients in place, each later one
        // writes, reads and adds its own); activations 4× (per block 10·d + 2·ff per
        // position and heads·L² per sequence; per position 4·d + 2·V).
        let V = (m.describe().entries["vocabulary"] as! String).count
        let acts = layers * (S * L * (10 * d + 2 * 12) + S * H * L * L) + S * L * (4 * d + 2 * V)
        #expect(w.values == Double((4 + 6 * (S - 1)) * m.parameterCount + 4 * acts))
    }

    @Test func llamaFlopsAndParametersFromItsLayout() throws {
        for (tied, kv) in [("yes", 2), ("no", 4), ("yes", 1)] {
            let (L, S, d, layers) = (6, 2, 8, 3)
            let spec = "llama:vocab=13,width=\(d),layers=\(layers),heads=4,kv_heads=\(kv),ff=10,context=\(L),sequences=\(S),tied=\(tied)"
            let m = try ModelSpec.build(spec, seed: 2)
            let w = try #require(m.gradientWork())
            let embed = "token_embd.weight"
            let triangle = Double(L * (L + 1) / 2)
            let attention: Double = Double(layers) * 12 * Double(S) * triangle * Double(d)
            let expected = Self.layoutFlops(m.layout, rows: Double(S * L), gathered: [embed], alsoProduct: tied == "yes" ? [embed] : [])
            #expect(w.flops == expected + attention, "\(spec)")
            // The closed-form parameter count of an architecture never built (the extrapolation rows) is the layout's.
            #expect(try ModelSpec.architecture(spec).parameterCount == m.parameterCount, "\(spec)")
        }
    }

    /// SmolLM2-135M's architecture counted without its checkpoint: 134,515,008 parameters
    /// (the count the checkpoint issue states), and a 70B-parameter architecture is
    /// described without allocating its parameters.
    @Test func publishedArchitecturesAreCountedNotAllocated() throws {
        let smol = try ModelSpec.architecture("llama:vocab=49152,width=576,layers=30,heads=9,kv_heads=3,ff=1536,context=64,sequences=2")
        #expect(smol.parameterCount == 134_515_008)
        let big = try ModelSpec.architecture("llama:vocab=32000,width=8192,layers=80,heads=64,kv_heads=8,ff=28672,context=64,sequences=2,tied=no")
        #expect(big.parameterCount == 68_976_648_192)
        let w = try #require(big.gradientWork())
        #expect(w.flops > 6 * 128 * 6.8e10 && w.flops < 6 * 128 * 7.0e10)      // ≈ 6·n·tokens for a dense transformer
        // Building it for running is still refused.
        #expect(throws: (any Error).self) {
            try ModelSpec.build("llama:vocab=32000,width=8192,layers=80,heads=64,kv_heads=8,ff=28672,context=64,sequences=2,tied=no", seed: 0)
        }
    }

    /// The products a gradient lists are the ones it runs: shapes, transposes and counts
    /// recorded from sgemm's calls (``GemmLog``) during one fp32 BLAS gradient, for each
    /// family (the Llama with tied and untied heads and grouped k/v); their FLOPs are the
    /// linear part of the closed-form count.
    @Test func productsAreTheOnesAGradientRuns() throws {
        // (spec, context, sequences, width, layers); attention's FLOPs are the rest.
        let cases: [(String, Int, Int, Int, Int)] = [
            ("mlp:widths=5-7-6-3,samples=9", 0, 0, 0, 0),
            ("transformer:context=5,width=8,heads=2,layers=2,ff=12,sequences=3", 5, 3, 8, 2),
            ("llama:vocab=13,width=8,layers=3,heads=4,kv_heads=2,ff=10,context=6,sequences=2,tied=yes", 6, 2, 8, 3),
            ("llama:vocab=13,width=8,layers=2,heads=4,kv_heads=4,ff=10,context=6,sequences=3,tied=no", 6, 3, 8, 2)]
        for (spec, L, S, d, layers) in cases {
            let m = try ModelSpec.build(spec, seed: 3)
            let w = try #require(m.gradientWork())
            let theta = (0..<m.parameterCount).map { Float(($0 % 11) - 5) / 16 }
            let log = GemmLog()
            Kernels.$gemmLog.withValue(log) { _ = m.lossAndGradient(theta, accumulation: .blas) }
            #expect(!log.counts.isEmpty, "\(spec)")
            #expect(log.counts == w.products, "\(spec): ran \(log.counts.sorted { $0.key < $1.key }), listed \(w.products.sorted { $0.key < $1.key })")
            let attention = Double(layers) * 12 * Double(S) * Double(L * (L + 1) / 2) * Double(d)
            #expect(w.flops - w.gemmFlops == attention, "\(spec)")
        }
    }

    /// The exact HVP's products as the scaling study logs them: in the transformer and
    /// the Llama every product of the gradient runs once as a dual product (split, three
    /// real products, merge; the embeddings are parameters, so no tangent is zero), in the
    /// MLP's split reverse pass no dual product at all, its real products three per
    /// gradient product but two in the first layer (the data's tangent is zero).
    @Test func exactHVPRunsEachProductInDualNumbers() throws {
        for spec in ["transformer:context=5,width=8,heads=2,layers=2,ff=12,sequences=3",
                     "llama:vocab=13,width=8,layers=2,heads=4,kv_heads=2,ff=10,context=6,sequences=2,tied=yes"] {
            let m = try ModelSpec.build(spec, seed: 3)
            let w = try #require(m.gradientWork())
            let theta = (0..<m.parameterCount).map { Float(($0 % 11) - 5) / 16 }, v = theta.reversed().map { $0 + 1 / 32 }
            let log = GemmLog()
            Kernels.$gemmLog.withValue(log) { _ = m.exactHVP(theta, Array(v), accumulation: .blas) }
            #expect(log.dualCounts == w.products, "\(spec)")
            #expect(log.counts == w.products.mapValues { 3 * $0 }, "\(spec)")
            // Split and merge: 16 bytes per element of A and B, 20 per element of C (w = 4).
            let bytes = w.products.reduce(0.0) { a, e in
                a + Double(e.value) * Double(16 * (e.key.m * e.key.k + e.key.k * e.key.n) + 20 * e.key.m * e.key.n)
            }
            #expect(log.dualPassBytes(componentBytes: 4) == bytes && bytes > 0)
        }
        let m = try ModelSpec.build("mlp:widths=5-7-6-3,samples=9", seed: 3)
        let w = try #require(m.gradientWork())
        let theta = (0..<m.parameterCount).map { Float(($0 % 11) - 5) / 16 }
        let log = GemmLog()
        Kernels.$gemmLog.withValue(log) { _ = m.exactHVP(theta, theta, accumulation: .blas) }
        #expect(log.dualCounts.isEmpty && log.dualPassBytes(componentBytes: 4) == 0)
        let first: Set<GemmShape> = [GemmShape(m: 9, k: 5, n: 7, transA: false, transB: true), GemmShape(m: 7, k: 9, n: 5, transA: true, transB: false)]
        #expect(log.counts == Dictionary(uniqueKeysWithValues: w.products.map { ($0.key, (first.contains($0.key) ? 2 : 3) * $0.value) }))
    }

    @Test func unmodelledFamiliesSayNil() throws {
        #expect(try ModelSpec.build("expsum:n=4", seed: 1).gradientWork() == nil)
        #expect(try ModelSpec.build("quadratic:diag:n=12,lo=0.5,hi=3", seed: 1).gradientWork() == nil)
        // Wrappers answer for what they wrap.
        let sub = try ModelSpec.build("mlp:widths=4-6-3,samples=8,train=2", seed: 1)
        #expect(sub.gradientWork() == (try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1)).gradientWork())
    }

    /// Checking a spec (what an experiment file's loader does) refuses what a run would
    /// refuse — bad syntax, a missing file, a model over the memory limit — and accepts
    /// what a run accepts, without labelling data or training.
    @Test func validateRefusesWhatARunRefuses() throws {
        for bad in ["mlp:widths=4", "mlp:widths=4-3,act=nope", "gguf:/nonexistent/model.gguf", "llama:vocab=13,width=8,layers=1,heads=3,ff=4"] {
            #expect(throws: (any Error).self, "\(bad)") { try ModelSpec.validate(bad) }
        }
        MemoryBudget.$taskLimit.withValue(1e6) {
            #expect(throws: MemoryBudgetError.self) { try ModelSpec.validate("mlp:widths=512-512-10,samples=8") }
            #expect(throws: MemoryBudgetError.self) { try ModelSpec.build("mlp:widths=512-512-10,samples=8", seed: 0) }
        }
        try ModelSpec.validate("mlp:widths=4-6-3,samples=8,train=3")
        try ModelSpec.validate("llama:vocab=13,width=8,layers=1,heads=4,kv_heads=2,ff=10,context=6,sequences=2")
        // A checked spec's model is the run's model in everything but its data's labels.
        let checked = try ModelSpec.$checkingOnly.withValue(true) { try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1) }
        let run = try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1)
        #expect(checked.parameterCount == run.parameterCount && checked.layout.tensors.map(\.name) == run.layout.tensors.map(\.name))
    }
}
