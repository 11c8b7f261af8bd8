import Testing
import Models

/// Models describe themselves (issue 18): the studies' shape columns, model.json's
/// entries and arrays, closed-form spectra and the scaling study's memory model come
/// from the model, through every wrapper, so no caller casts to a concrete model.
struct DescriptionTests {
    @Test func familiesAndShapes() throws {
        let cases: [(String, String, Int, Int)] = [
            ("softmax:d=4,classes=3,samples=5", "softmax", 1, 4),
            ("mlp:widths=4-6-3,samples=8", "mlp", 2, 6),
            ("mlp:widths=4-6-9-3,samples=8", "mlp", 3, 9),
            ("transformer:context=4,width=8,heads=2,layers=2,ff=16,sequences=2", "transformer", 2, 8),
            ("llama:vocab=11,width=8,layers=2,heads=4,kv_heads=2,ff=6,context=4,sequences=2", "llama", 2, 8),
            ("expsum:n=4", "expsum", 0, 4),
            ("quadratic:diag:n=12,lo=0.5,hi=3", "quadratic", 0, 12),
        ]
        for (spec, family, depth, width) in cases {
            let d = try ModelSpec.build(spec, seed: 1).describe()
            #expect(d.family == family, "\(spec)")
            #expect(d.depth == depth, "\(spec)")
            #expect(d.width == width, "\(spec)")
            #expect(d.entries["type"] != nil && d.entries["loss"] != nil, "\(spec): model.json needs its type and loss")
        }
    }

    @Test func arraysMatchTheModelsData() throws {
        let mlp = try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1).describe()
        #expect(mlp.arrays.map(\.name) == ["x.npy", "y.npy"])
        guard case let .float64(x, shape) = mlp.arrays[0].values else { Issue.record("x.npy is not float64"); return }
        #expect(shape == [8, 4] && x.count == 32)
        let q = try ModelSpec.build("quadratic:diag:values=3;1;2", seed: 0).describe()
        #expect(q.arrays.map(\.name) == ["b.npy", "A_diag.npy", "A_eigenvalues.npy"])
        let llama = try ModelSpec.build("llama:vocab=11,width=8,layers=2,heads=4,kv_heads=2,ff=6,context=4,sequences=2", seed: 1).describe()
        guard case let .int64(tokens, tshape) = llama.arrays[0].values else { Issue.record("tokens.npy is not int64"); return }
        #expect(tshape == [2, 5] && tokens.allSatisfy { (0..<11).contains($0) })
        #expect(llama.parametersSource == "seeded initialization")
        #expect((llama.entries["data"] as? [String: Any])?["provenance"] as? String == "built-in")
    }

    @Test func wrappersAnswerForWhatTheyWrap() throws {
        let spec = "quadratic:diag:values=3;1;2;5"
        let plain = try ModelSpec.build(spec, seed: 0)
        #expect(plain.knownEigenvalues == [1, 2, 3, 5])
        let trained = try ModelSpec.build(spec + ",train=2,optimizer=sgd,lr=0.1", seed: 0)
        #expect(trained.knownEigenvalues == [1, 2, 3, 5])
        #expect(trained.describe().family == "quadratic")
        // A proper subset's Hessian is a principal block: no closed-form spectrum claimed.
        let mlp = try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1)
        #expect(mlp.knownEigenvalues == nil)
        let sub = try restrict(mlp, to: "layer1.*", seed: 1, round: { $0 })
        #expect(sub.describe().family == "mlp" && sub.parameterCount < mlp.parameterCount)
        let whole = try restrict(plain, to: "*", seed: 0, round: { $0 })
        #expect(whole.knownEigenvalues == [1, 2, 3, 5])
    }

    /// The scaling study's count of values alive at a gradient's peak, by hand.
    @Test func peakGradientValues() throws {
        let m = try ModelSpec.build("mlp:widths=4-6-3,samples=8", seed: 1)
        // h0, h1 (4 + 6) and z1, z2 (6 + 3) per sample; 2·8·6 backward temporaries; W and Wᵀ (2·51).
        #expect(m.parameterCount == 51)
        #expect(m.peakGradientValues(shards: 1) == 8 * (10 + 9) + 2 * 8 * 6 + 2 * 51)
        let t = try ModelSpec.build("transformer:context=4,width=8,heads=2,layers=2,ff=16,sequences=2", seed: 1)
        let V = (t.describe().entries["vocabulary"] as! String).count, n = t.parameterCount
        // One sequence: per block 10·L·d + 2·L·ff + heads·L², and 4·L·d + 2·L·V.
        let sequence = 2 * (10 * 4 * 8 + 2 * 4 * 16 + 2 * 16) + 4 * 4 * 8 + 2 * 4 * V
        // One rank of two sequences: θ, the gradient, a sequence, and the second sequence's
        // weight gradient of the largest matrix (the head, V·d, or an MLP weight, 16·8) before it is added.
        #expect(t.peakGradientValues(shards: 1) == 2 * n + sequence + 8 * max(16, V))
        #expect(t.peakGradientValues(samples: 2) == t.peakGradientValues(shards: 1))
        // Two ranks of one sequence each: θ once, a gradient and a sequence per rank.
        #expect(t.peakGradientValues(shards: 2) == 3 * n + 2 * sequence)
        #expect(t.peakGradientValues(samples: 1) == 2 * n + sequence)
        #expect(try ModelSpec.build("expsum:n=4", seed: 1).peakGradientValues(shards: 3) == 8)
        // Llama (k/v width 2 heads × 2): per token and layer 6d + 2·kv + heads·L + 3·ff + 2 = 48 + 8 + 24 + 30 + 2,
        // per token 2d + 2·vocab; θ once and a gradient per rank.
        let l = try ModelSpec.build("llama:vocab=13,width=8,layers=2,heads=4,kv_heads=2,ff=10,context=6,sequences=3", seed: 1)
        let perToken = 2 * (48 + 8 + 24 + 30 + 2) + 2 * 8 + 2 * 13
        #expect(l.peakGradientValues(samples: 1) == 2 * l.parameterCount + 6 * perToken)
        #expect(l.peakGradientValues(shards: 1) == 2 * l.parameterCount + 3 * 6 * perToken)
        #expect(l.peakGradientValues(shards: 2) == 3 * l.parameterCount + 3 * 6 * perToken)
        // Through a parameter source (training), the base's model, not the default 2n.
        let trained = try ModelSpec.build("mlp:widths=4-6-3,samples=8,train=2", seed: 1)
        #expect(trained.peakGradientValues(shards: 1) == m.peakGradientValues(shards: 1))
        #expect(trained.activationCount == m.activationCount && m.activationCount > 0)
    }
}
