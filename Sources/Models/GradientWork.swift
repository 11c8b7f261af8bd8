import LinearAlgebra

/// The work of one gradient (forward and reverse pass over the model's whole batch),
/// counted analytically from the architecture: the features of the scaling study's
/// cost model `time ≈ c_f·FLOPs + c_b·bytes + c_0` (docs/NUMERICS.md §9, issue 19).
///
/// - `flops`: floating-point operations of the matrix products and of attention's dot
///   products, a multiply–add counted as 2. Every linear map of R rows from `in` to `out`
///   costs R·in·out multiply–adds in the forward pass and as many for its weight gradient
///   and for its input gradient (the MLP's first layer skips the input gradient, as the
///   code does). Causal attention over L positions costs, per sequence and query head of
///   width d_h, P·d_h multiply–adds for q·k and P·d_h for P·v forward (P = L(L+1)/2, the
///   lower triangle the kernel visits), and 4·P·d_h backward (dP, dq, dk, dv): attention's
///   quadratic term.
/// - `values`: compute-type values moved outside those inner loops: the parameters (read
///   by the forward, the input-gradient and the weight-gradient products: 3×), the
///   gradient (written once), and every activation the forward stores for the reverse
///   pass (written once, read twice by the reverse, its gradient written and read once:
///   4×). Element-wise work (norms, softmax, activations, the loss) is proportional to
///   the activations and so rides on this term. Bytes are `values × bytes per value`.
/// - `tokens`: the batch's positions (sequences × context) or samples.
/// - `products`: the BLAS products of those FLOPs, shape by shape (transposes as the code
///   passes them) with how often each runs: the cost model times them at their own shapes
///   (``GemmShape``); `flops − gemmFlops` is the rest (attention's dot products).
///
/// These are counts of the harness's own algorithm, not of an ideal one (the attention
/// kernel is not fused, the loss materializes every logit).
public struct GradientWork: Sendable, Equatable {
    public var flops: Double
    public var values: Double
    public var tokens: Int
    public var products: [GemmShape: Int]
    public init(flops: Double, values: Double, tokens: Int, products: [GemmShape: Int] = [:]) {
        self.flops = flops; self.values = values; self.tokens = tokens; self.products = products
    }
    /// FLOPs of ``products``.
    public var gemmFlops: Double { products.reduce(0) { $0 + $1.key.flops * Double($1.value) } }

    /// The three products of a linear map over `rows` rows from `in` to `out` whose weight
    /// is stored out×in, as the models run them (the weights read in place): forward X·Wᵀ
    /// (NT), weight gradient dYᵀ·X (TN), input gradient dY·W (NN, unless `inputGradient`
    /// is false).
    static func linearMap(_ p: inout [GemmShape: Int], rows r: Int, in i: Int, out o: Int, times c: Int = 1, inputGradient: Bool = true) {
        p[GemmShape(m: r, k: i, n: o, transA: false, transB: true), default: 0] += c
        p[GemmShape(m: o, k: r, n: i, transA: true, transB: false), default: 0] += c
        if inputGradient { p[GemmShape(m: r, k: o, n: i), default: 0] += c }
    }

    /// Causal attention's multiply–adds over `sequences` sequences of `context` positions,
    /// forward and reverse, for query heads totalling `width` columns.
    static func attentionMACs(sequences: Int, context L: Int, width: Int) -> Double {
        let p = Double(L) * Double(L + 1) / 2
        return 6 * Double(sequences) * p * Double(width)
    }
}

extension MLP {
    /// Forward R·in·out, weight gradient R·in·out per layer, input gradient for every
    /// layer but the first; activations h_0…h_{L−1} and z_1…z_L per sample.
    public func gradientWork() -> GradientWork? { gradientWork(samples: data.count) }

    public func gradientWork(samples: Int) -> GradientWork? {
        let b = Double(samples)
        var macs = 0.0
        var products: [GemmShape: Int] = [:]
        for l in 0..<(widths.count - 1) {
            let m = b * Double(widths[l]) * Double(widths[l + 1])
            macs += l > 0 ? 3 * m : 2 * m
            GradientWork.linearMap(&products, rows: samples, in: widths[l], out: widths[l + 1], inputGradient: l > 0)
        }
        let acts = b * Double(widths.dropLast().reduce(0, +) + widths.dropFirst().reduce(0, +))
        return GradientWork(flops: 2 * macs, values: 4 * Double(parameterCount) + 4 * acts, tokens: samples, products: products)
    }
}

extension TransformerLM {
    /// Per position and block: q, k, v, o (d² each) and the MLP (2·d·ff); per position the
    /// head (V·d); each 3×; attention per sequence; activations as
    /// ``peakGradientValues(shards:)`` counts them (10·d + 2·ff per position and block,
    /// heads·L² per sequence and block, 4·d + 2·V per position). The linear maps run one
    /// sequence (L rows) at a time, so over S sequences the parameters move
    /// (4 + 6(S − 1))·n times: the gradient zeroed, the first sequence's products reading
    /// the weights twice (forward, input gradient) and writing their gradients in place,
    /// and each later sequence reading them twice again and writing, reading and adding
    /// a weight gradient of its own (the weights read in place: BLAS policies; other
    /// policies copy each weight and its transpose once more, 4n, not counted here).
    public func gradientWork() -> GradientWork? { gradientWork(samples: sequences.count) }

    public func gradientWork(samples S: Int) -> GradientWork? {
        let c = config, d = Double(c.width), L = c.context, r = Double(S * L), v = Double(vocab.count)
        let linear = r * (Double(c.layers) * (4 * d * d + 2 * d * Double(c.ff)) + v * d)
        let macs = 3 * linear + Double(c.layers) * GradientWork.attentionMACs(sequences: S, context: L, width: c.width)
        let perBlock = r * (10 * d + 2 * Double(c.ff)) + Double(S * c.heads * L * L)
        let acts = Double(c.layers) * perBlock + r * (4 * d + 2 * v)
        // Per sequence (L rows): forward X·Wᵀ (NT), weight gradient dYᵀ·X (TN), input
        // gradient dY·W (NN), as Llama's, the weights read in place.
        var products: [GemmShape: Int] = [:]
        for (i, o, times) in [(c.width, c.width, 4 * c.layers), (c.width, c.ff, c.layers), (c.ff, c.width, c.layers), (c.width, vocab.count, 1)] {
            GradientWork.linearMap(&products, rows: L, in: i, out: o, times: times * S)
        }
        let parameterPasses = 4 + 6 * Double(max(S - 1, 0))
        return GradientWork(flops: 2 * macs, values: parameterPasses * Double(parameterCount) + 4 * acts, tokens: S * L, products: products)
    }
}

extension LlamaLM.Config {
    /// Parameters of this architecture: embeddings V·d; per block two norm gains, q and o
    /// (d²), k and v (d·kv_width), gate, up and down (d·ff); the final norm; an output
    /// head V·d unless tied.
    public var parameterCount: Int {
        let d = width, perBlock = 2 * d + 2 * d * d + 2 * d * kvWidth + 3 * d * ff
        return vocab * d + layers * perBlock + d + (tiedEmbeddings ? 0 : vocab * d)
    }

    /// One gradient over `sequences` sequences of `context` positions. Per position and
    /// block: q and o (d²), k and v (d·kv_width), gate, up, down (d·ff), each 3×; the head
    /// V·d, 3×; attention per sequence over the query heads' d columns. Activations per
    /// position and block: h, the two norm outputs, q, o, the residual after attention
    /// and the attention's normed input (7·d), k and v (2·kv_width), gate, up and their
    /// product (3·ff); per sequence and block the heads' L×L probabilities; per position
    /// the final norm, the logits and their gradient (2·d + 2·V).
    public func gradientWork(sequences S: Int, context L: Int) -> GradientWork {
        let d = Double(width), kv = Double(kvWidth), f = Double(ff), v = Double(vocab), r = Double(S * L)
        let perPosition = Double(layers) * (2 * d * d + 2 * d * kv + 3 * d * f) + v * d
        let macs = 3 * r * perPosition + Double(layers) * GradientWork.attentionMACs(sequences: S, context: L, width: width)
        let perBlock = r * (7 * d + 2 * kv + 3 * f) + Double(S * heads * L * L)
        let acts = Double(layers) * perBlock + r * (2 * d + 2 * v)
        // The linear maps see all S·L rows as one matrix.
        var products: [GemmShape: Int] = [:]
        let R = S * L
        GradientWork.linearMap(&products, rows: R, in: width, out: width, times: 2 * layers)        // q, o
        GradientWork.linearMap(&products, rows: R, in: width, out: kvWidth, times: 2 * layers)      // k, v
        GradientWork.linearMap(&products, rows: R, in: width, out: ff, times: 2 * layers)           // gate, up
        GradientWork.linearMap(&products, rows: R, in: ff, out: width, times: layers)               // down
        GradientWork.linearMap(&products, rows: R, in: width, out: vocab)                           // head
        return GradientWork(flops: 2 * macs, values: 4 * Double(parameterCount) + 4 * acts, tokens: S * L, products: products)
    }
}

extension LlamaLM {
    public func gradientWork() -> GradientWork? { gradientWork(samples: sequences.count) }
    public func gradientWork(samples: Int) -> GradientWork? { config.gradientWork(sequences: samples, context: context) }
}
