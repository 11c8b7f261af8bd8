import Scalars
import LinearAlgebra
import RealModule

/// A small decoder-only transformer language model with a hand-written reverse pass.
///
/// Architecture (pre-norm, GPT-2 style, no dropout, untied output head):
/// `h₀ = E[x] + P`; per block `h += Wo·Attn(LN₁(h))`, `h += W₂·GELU(W₁·LN₂(h) + b₁) + b₂`;
/// logits `= LN_f(h)·Headᵀ`; loss = mean token cross-entropy of the next character.
/// Attention: H heads of width D/H, causal, scores `QKᵀ/√(D/H)`, no attention
/// biases. Layer norm: `(x − μ)/√(σ² + 1e-5)·g + b` with the biased variance.
/// GELU: exact erf form. Products go through ``Kernels/gemm(_:_:accumulation:)``.
public struct TransformerLM: OutputModel, GradientCore {
    public struct Config: Sendable, Equatable, Codable {
        public var context: Int, width: Int, heads: Int, layers: Int, ff: Int, sequences: Int
        public init(context: Int = 16, width: Int = 32, heads: Int = 4, layers: Int = 2, ff: Int = 128, sequences: Int = 8) {
            self.context = context; self.width = width; self.heads = heads; self.layers = layers; self.ff = ff; self.sequences = sequences
        }
    }
    public let config: Config
    public let vocab: [Character]
    /// Token sequences of length context + 1 (inputs and shifted targets).
    public let sequences: [[Int]]
    public let layout: ParameterLayout
    public static let layerNormEpsilon = 1e-5

    public init(config c: Config, corpus: String = Corpus.text, seed: UInt64) throws {
        guard c.context >= 1, c.width >= 1, c.heads >= 1, c.layers >= 1, c.ff >= 1, c.sequences >= 1 else {
            throw ModelError("transformer: every size must be ≥ 1")
        }
        guard c.width % c.heads == 0 else { throw ModelError("transformer: width \(c.width) not divisible by heads \(c.heads)") }
        let vocab = Corpus.vocabulary(corpus)
        let tokens = Corpus.tokenize(corpus, vocab)
        guard tokens.count > c.context + 1 else { throw ModelError("transformer: corpus shorter than context + 1") }
        var g = SplitMix64(seed: seed)
        sequences = (0..<c.sequences).map { _ in
            let start = Int(g.next() % UInt64(tokens.count - c.context - 1))
            return Array(tokens[start...(start + c.context)])
        }
        self.config = c; self.vocab = vocab
        var l = ParameterLayout()
        let d = c.width, v = vocab.count
        l.add("embed.tokens", shape: [v, d], block: "embed")
        l.add("embed.positions", shape: [c.context, d], block: "embed")
        for b in 0..<c.layers {
            let blk = "block\(b)"
            l.add("\(blk).ln1.gain", shape: [d], block: blk); l.add("\(blk).ln1.bias", shape: [d], block: blk)
            for w in ["wq", "wk", "wv", "wo"] { l.add("\(blk).attn.\(w)", shape: [d, d], block: blk) }
            l.add("\(blk).ln2.gain", shape: [d], block: blk); l.add("\(blk).ln2.bias", shape: [d], block: blk)
            l.add("\(blk).mlp.w1", shape: [c.ff, d], block: blk); l.add("\(blk).mlp.b1", shape: [c.ff], block: blk)
            l.add("\(blk).mlp.w2", shape: [d, c.ff], block: blk); l.add("\(blk).mlp.b2", shape: [d], block: blk)
        }
        l.add("final.ln.gain", shape: [d], block: "final"); l.add("final.ln.bias", shape: [d], block: "final")
        l.add("head", shape: [v, d], block: "head")
        layout = l
    }

    public var sampleCount: Int { sequences.count }
    /// Per token: the logits, and per layer the normed inputs, q/k/v, attention
    /// weights and output, and the MLP's hidden vectors.
    public var activationCount: Int {
        let c = config, tokens = sequences.count * c.context
        return tokens * (vocab.count + c.layers * (8 * c.width + c.context * c.heads + 2 * c.ff))
    }

    /// N(0, 0.02²)-like uniform weights (seeded), unit gains, zero biases.
    public func initialParameters(seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: seed)
        var theta = [Double](repeating: 0, count: layout.count)
        for t in layout.tensors {
            if t.name.hasSuffix(".gain") { for i in t.range { theta[i] = 1 } }
            else if t.shape.count == 2 { for i in t.range { theta[i] = (2 * g.nextUniform() - 1) * 0.05 } }
        }
        return theta
    }

    struct LNCache<T: ComputeScalar> { var xhat: Matrix<T>; var invStd: [T] }
    /// A block's weight matrices, in the order the reverse pass indexes them.
    static let blockWeights = ["attn.wq", "attn.wk", "attn.wv", "attn.wo", "mlp.w1", "mlp.w2"]

    /// Tests only: copy the weights under `.blas` too (the bits the in-place products must keep).
    @TaskLocal static var copiesWeights = false

    /// The weight matrices as the products read them. Where BLAS computes the products
    /// (Float, Double and their dual numbers under `.blas`), in place in θ, the
    /// transposition a flag of sgemm/dgemm, as Llama reads its weights; elsewhere each
    /// weight and its transpose are copied out of θ once per gradient, since the generic
    /// products take matrices. The copies cost four passes over the n parameters per
    /// gradient, the transposes strided (13% of a 10⁸-parameter FD-HVP here); under
    /// `.blas` the flagged products give the copies' bits on OpenBLAS's Prescott, Haswell
    /// and Zen kernels (``Kernels/gemm(_:transposed:_:transposed:accumulation:)``; checked
    /// by `TransformerTests.inPlaceWeightsKeepTheCopiesBits`).
    struct Weights<T: ComputeScalar> {
        let inPlace: Bool
        var copies: [String: (w: Matrix<T>, wT: Matrix<T>)] = [:]

        init(_ model: TransformerLM, _ theta: [T], _ acc: Accumulation) {
            inPlace = Self.blasComputes(acc) && !TransformerLM.copiesWeights
            guard !inPlace else { return }
            for name in ["head"] + (0..<model.config.layers).flatMap({ b in TransformerLM.blockWeights.map { "block\(b).\($0)" } }) {
                let w = model.mat(theta, name)
                copies[name] = (w, w.transposed())
            }
        }

        /// Whether `.blas` products of `T` run in BLAS (Float, Double, their duals).
        static func blasComputes(_ acc: Accumulation) -> Bool {
            guard case .blas = acc else { return false }
            return T.self is any BLASScalar.Type || T.self is any BLASDualScalar.Type
        }

        /// X·Wᵀ for the weight `t` (stored out×in).
        func forward(_ x: Matrix<T>, _ theta: [T], _ t: TensorSpec, _ acc: Accumulation) -> Matrix<T> {
            guard inPlace else { return Kernels.gemm(x, copies[t.name]!.wT, accumulation: acc) }
            return linear(x, theta, at: t.offset, out: t.shape[0], in: t.shape[1], acc)
        }

        /// dY·W, the input gradient of ``forward(_:_:_:_:)``.
        func backward(_ dy: Matrix<T>, _ theta: [T], _ t: TensorSpec, _ acc: Accumulation) -> Matrix<T> {
            guard inPlace else { return Kernels.gemm(dy, copies[t.name]!.w, accumulation: acc) }
            return linearBackward(dy, theta, at: t.offset, out: t.shape[0], in: t.shape[1], acc)
        }

        /// grad[W] += dYᵀ·X for one sequence. In place, the batch's first sequence writes
        /// its product straight into the (zero) gradient: the same bits as adding it to
        /// zero, since a BLAS sum starts from +0 and so is never −0; later sequences add a
        /// product as before (the order of the sum over sequences is unchanged).
        func weightGradient(_ dy: Matrix<T>, _ x: Matrix<T>, _ grad: inout [T], _ t: TensorSpec, first: Bool,
                            _ acc: Accumulation) {
            if inPlace && first { return Models.weightGradient(dy, x, &grad, at: t.offset, acc) }
            let g = Kernels.gemm(dy, transposed: true, x, transposed: false, accumulation: acc)
            grad.withUnsafeMutableBufferPointer { gp in g.storage.withUnsafeBufferPointer { p in
                for i in p.indices { gp[t.offset + i] += p[i] }
            } }
        }
    }
    struct BlockCache<T: ComputeScalar> {
        var ln1: LNCache<T>; var a: Matrix<T>; var q: Matrix<T>; var k: Matrix<T>; var v: Matrix<T>
        var p: [Matrix<T>]; var o: Matrix<T>; var ln2: LNCache<T>; var m: Matrix<T>; var u: Matrix<T>; var gu: Matrix<T>
    }

    func layerNorm<T: ComputeScalar>(_ x: Matrix<T>, _ gain: ArraySlice<T>, _ bias: ArraySlice<T>) -> (Matrix<T>, LNCache<T>) {
        let d = x.cols
        var xhat = Matrix<T>(rows: x.rows, cols: d), y = Matrix<T>(rows: x.rows, cols: d)
        var inv = [T](repeating: .zero, count: x.rows)
        let eps = T(roundingDouble: Self.layerNormEpsilon)
        let g0 = gain.startIndex, b0 = bias.startIndex
        for i in 0..<x.rows {
            var mu = T.zero
            for j in 0..<d { mu += x[i, j] }
            mu /= T(d)
            var v = T.zero
            for j in 0..<d { let c = x[i, j] - mu; v += c * c }
            v /= T(d)
            inv[i] = 1 / (v + eps).squareRoot()
            for j in 0..<d {
                xhat[i, j] = (x[i, j] - mu) * inv[i]
                y[i, j] = xhat[i, j] * gain[g0 + j] + bias[b0 + j]
            }
        }
        return (y, LNCache(xhat: xhat, invStd: inv))
    }

    /// Returns dx; accumulates dgain, dbias into grad at the given offsets.
    func layerNormBackward<T: ComputeScalar>(_ dy: Matrix<T>, _ c: LNCache<T>, _ gain: ArraySlice<T>,
                                           _ grad: inout [T], gainOffset: Int, biasOffset: Int) -> Matrix<T> {
        let d = dy.cols
        var dx = Matrix<T>(rows: dy.rows, cols: d)
        let g0 = gain.startIndex
        for i in 0..<dy.rows {
            var sum = T.zero, sumX = T.zero
            var dxhat = [T](repeating: .zero, count: d)
            for j in 0..<d {
                grad[gainOffset + j] += dy[i, j] * c.xhat[i, j]
                grad[biasOffset + j] += dy[i, j]
                dxhat[j] = dy[i, j] * gain[g0 + j]
                sum += dxhat[j]; sumX += dxhat[j] * c.xhat[i, j]
            }
            for j in 0..<d { dx[i, j] = c.invStd[i] * (dxhat[j] - (sum + c.xhat[i, j] * sumX) / T(d)) }
        }
        return dx
    }

    func slice<T>(_ theta: [T], _ name: String) -> ArraySlice<T> { theta[layout.tensor(name)!.range] }
    func mat<T: ComputeScalar>(_ theta: [T], _ name: String) -> Matrix<T> {
        let t = layout.tensor(name)!
        return Matrix(rows: t.shape[0], cols: t.shape[1], storage: Array(theta[t.range]))
    }

    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        lossAndGradient(theta, samples: samples, accumulation: acc, head: OutputLoss.crossEntropy)
    }

    public var outputLoss: OutputLoss { .crossEntropy }

    public func lossAndGradient<T: ComputeScalar, Head: LossHead>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation, head lossHead: Head) -> (loss: T, gradient: [T]) {
        lossAndGradient(theta, samples: samples, accumulation: acc, head: lossHead, observer: nil)
    }

    /// The reverse pass with an observer of every linear map `Y = X Wᵀ (+ b)`: it is
    /// called, per sequence, with the weight's name, the map's input X (rows =
    /// positions) and the gradient of the loss with respect to its output Y (what
    /// K-FAC's factors are built from). Linear maps: `head`, and per block
    /// `attn.wq`, `attn.wk`, `attn.wv`, `attn.wo`, `mlp.w1` (bias `mlp.b1`), `mlp.w2` (bias `mlp.b2`).
    public func lossAndGradient<T: ComputeScalar, Head: LossHead>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation, head lossHead: Head,
                                                               observer: ((_ weight: String, _ input: Matrix<T>, _ outputGradient: Matrix<T>) -> Void)?) -> (loss: T, gradient: [T]) {
        precondition(theta.count == layout.count)
        let c = config, d = c.width, L = c.context, H = c.heads, dh = d / H
        var grad = [T](repeating: .zero, count: layout.count)
        var loss = T.zero
        let norm = 1 / T(sequences.count * L)
        let scale = 1 / T(dh).squareRoot()
        let ot = layout.tensor("embed.tokens")!.offset, op = layout.tensor("embed.positions")!.offset
        let weights = Weights(self, theta, acc)
        let head = layout.tensor("head")!
        let wt = (0..<c.layers).map { b in Self.blockWeights.map { layout.tensor("block\(b).\($0)")! } }   // q, k, v, o, w1, w2
        for s in samples {
            let seq = sequences[s], first = s == samples.lowerBound
            // Forward.
            var h = Matrix<T>(rows: L, cols: d)
            for t in 0..<L { for j in 0..<d { h[t, j] = theta[ot + seq[t] * d + j] + theta[op + t * d + j] } }
            var caches: [BlockCache<T>] = []
            for b in 0..<c.layers {
                let blk = "block\(b)"
                let (a, c1) = layerNorm(h, slice(theta, "\(blk).ln1.gain"), slice(theta, "\(blk).ln1.bias"))
                let q = weights.forward(a, theta, wt[b][0], acc)
                let k = weights.forward(a, theta, wt[b][1], acc)
                let v = weights.forward(a, theta, wt[b][2], acc)
                var o = Matrix<T>(rows: L, cols: d)
                let ps = CausalAttention.forward(q: q, k: k, v: v, rows: 0, length: L, heads: H, kvHeads: H, headWidth: dh, scale: scale, into: &o)
                let attn = weights.forward(o, theta, wt[b][3], acc)
                for i in h.storage.indices { h.storage[i] += attn.storage[i] }
                let (m2, c2) = layerNorm(h, slice(theta, "\(blk).ln2.gain"), slice(theta, "\(blk).ln2.bias"))
                var u = weights.forward(m2, theta, wt[b][4], acc)
                let b1 = slice(theta, "\(blk).mlp.b1"), b10 = b1.startIndex
                for t in 0..<L { for j in 0..<c.ff { u[t, j] += b1[b10 + j] } }
                let gu = u.map { Activation.gelu.value($0) }
                var f = weights.forward(gu, theta, wt[b][5], acc)
                let b2 = slice(theta, "\(blk).mlp.b2"), b20 = b2.startIndex
                for t in 0..<L { for j in 0..<d { f[t, j] += b2[b20 + j] } }
                for i in h.storage.indices { h.storage[i] += f.storage[i] }
                caches.append(BlockCache(ln1: c1, a: a, q: q, k: k, v: v, p: ps, o: o, ln2: c2, m: m2, u: u, gu: gu))
            }
            let (zf, cf) = layerNorm(h, slice(theta, "final.ln.gain"), slice(theta, "final.ln.bias"))
            let logits = weights.forward(zf, theta, head, acc)
            let (sum, dlogits) = lossHead.evaluate(logits, label: { seq[$0 + 1] }, scale: norm)
            loss += sum * norm
            // Backward.
            observer?("head", zf, dlogits)
            weights.weightGradient(dlogits, zf, &grad, head, first: first, acc)
            let dzf = weights.backward(dlogits, theta, head, acc)
            var dh_ = layerNormBackward(dzf, cf, slice(theta, "final.ln.gain"), &grad,
                                        gainOffset: layout.tensor("final.ln.gain")!.offset, biasOffset: layout.tensor("final.ln.bias")!.offset)
            for b in stride(from: c.layers - 1, through: 0, by: -1) {
                let blk = "block\(b)", cache = caches[b]
                // MLP.
                observer?("\(blk).mlp.w2", cache.gu, dh_)
                weights.weightGradient(dh_, cache.gu, &grad, wt[b][5], first: first, acc)
                let ob2 = layout.tensor("\(blk).mlp.b2")!.offset
                for t in 0..<L { for j in 0..<d { grad[ob2 + j] += dh_[t, j] } }
                var du = weights.backward(dh_, theta, wt[b][5], acc)
                for i in du.storage.indices { du.storage[i] *= Activation.gelu.derivative(cache.u.storage[i]) }
                observer?("\(blk).mlp.w1", cache.m, du)
                weights.weightGradient(du, cache.m, &grad, wt[b][4], first: first, acc)
                let ob1 = layout.tensor("\(blk).mlp.b1")!.offset
                for t in 0..<L { for j in 0..<c.ff { grad[ob1 + j] += du[t, j] } }
                let dm = weights.backward(du, theta, wt[b][4], acc)
                let dln2 = layerNormBackward(dm, cache.ln2, slice(theta, "\(blk).ln2.gain"), &grad,
                                             gainOffset: layout.tensor("\(blk).ln2.gain")!.offset, biasOffset: layout.tensor("\(blk).ln2.bias")!.offset)
                for i in dh_.storage.indices { dh_.storage[i] += dln2.storage[i] }
                // Attention.
                observer?("\(blk).attn.wo", cache.o, dh_)
                weights.weightGradient(dh_, cache.o, &grad, wt[b][3], first: first, acc)
                let dO = weights.backward(dh_, theta, wt[b][3], acc)
                var dq = Matrix<T>(rows: L, cols: d), dk = Matrix<T>(rows: L, cols: d), dv = Matrix<T>(rows: L, cols: d)
                CausalAttention.backward(dO: dO, q: cache.q, k: cache.k, v: cache.v, p: cache.p[...], rows: 0, length: L, heads: H, kvHeads: H,
                                         headWidth: dh, scale: scale, dq: &dq, dk: &dk, dv: &dv)
                observer?("\(blk).attn.wq", cache.a, dq)
                observer?("\(blk).attn.wk", cache.a, dk)
                observer?("\(blk).attn.wv", cache.a, dv)
                weights.weightGradient(dq, cache.a, &grad, wt[b][0], first: first, acc)
                weights.weightGradient(dk, cache.a, &grad, wt[b][1], first: first, acc)
                weights.weightGradient(dv, cache.a, &grad, wt[b][2], first: first, acc)
                var da = weights.backward(dq, theta, wt[b][0], acc)
                let dak = weights.backward(dk, theta, wt[b][1], acc)
                let dav = weights.backward(dv, theta, wt[b][2], acc)
                for i in da.storage.indices { da.storage[i] += dak.storage[i] + dav.storage[i] }
                let dln1 = layerNormBackward(da, cache.ln1, slice(theta, "\(blk).ln1.gain"), &grad,
                                             gainOffset: layout.tensor("\(blk).ln1.gain")!.offset, biasOffset: layout.tensor("\(blk).ln1.bias")!.offset)
                for i in dh_.storage.indices { dh_.storage[i] += dln1.storage[i] }
            }
            for t in 0..<L { for j in 0..<d {
                grad[ot + seq[t] * d + j] += dh_[t, j]
                grad[op + t * d + j] += dh_[t, j]
            } }
        }
        return (loss, grad)
    }
}

extension TransformerLM {
    public func describe() -> ModelDescription {
        let c = config
        let d: [String: Any] = [
            "type": "transformer_lm",
            "config": ["context": c.context, "width": c.width, "heads": c.heads, "layers": c.layers, "ff": c.ff, "sequences": c.sequences],
            "vocabulary": String(vocab),
            "architecture": "pre-norm decoder: h0 = tokens[x] + positions; per block h += attn(LN1(h)) @ Wo.T, h += W2·gelu(W1·LN2(h) + b1) + b2; logits = LN_f(h) @ head.T; causal multi-head attention on a = LN1(h): q, k, v = a @ Wq.T, a @ Wk.T, a @ Wv.T; head i is the contiguous column slice [i*width/heads, (i+1)*width/heads) of q, k and v; each head's output softmax((q_i k_i.T)/sqrt(width/heads) + causal mask) @ v_i is written back into the same slice, the heads concatenated in order, and that width-wide row multiplied by Wo.T; no attention biases; LN eps 1e-5, biased variance; gelu exact erf; linear maps y = x @ W.T",
            "loss": "mean over sequences and positions of cross-entropy of the next token",
            "data": ["tokens": "tokens.npy", "shape": [sequences.count, c.context + 1],
                     "provenance": "built-in", "source": "the built-in character corpus (text written for this project), windows at seeded offsets",
                     "inputs": "tokens[:, :-1]", "targets": "tokens[:, 1:]"] as [String: Any],
        ]
        return ModelDescription(family: "transformer", depth: c.layers, width: c.width, entries: d,
                                arrays: [("tokens.npy", .int64(sequences.flatMap { $0 }, shape: [sequences.count, c.context + 1]))])
    }

    /// Per rank and block: the attention and MLP activations and their gradients
    /// (10·L·d + 2·L·ff) and the attention scores (heads·L²); per rank the embeddings,
    /// final norm and logits; θ once and a gradient per rank; and on a rank with more than
    /// one sequence, a later sequence's weight gradient before it is added (the largest
    /// weight matrix). This is the BLAS policies' count, whose products read the weights in
    /// place; other policies also hold a copy of every weight and of its transpose (2n
    /// more). Until the weights were read in place these 2n were part of every count (the
    /// scaling study's peak RSS found them: 0.90 of the measured FD-HVP Lanczos peak at 10⁸
    /// while they were missed).
    public func peakGradientValues(shards: Int) -> Int {
        let perRank = (sequences.count + shards - 1) / shards
        return (1 + shards) * parameterCount + shards * (sequenceValues + (perRank > 1 ? largestWeight : 0))
    }

    /// One rank's `samples` sequences, taken one at a time: θ, the gradient, one sequence's
    /// activations and, for more than one sequence, a later one's weight gradient.
    public func peakGradientValues(samples: Int) -> Int {
        2 * parameterCount + sequenceValues + (samples > 1 ? largestWeight : 0)
    }

    /// One sequence's activations and their gradients (what a rank holds at its peak).
    var sequenceValues: Int {
        let c = config, L = c.context, d = c.width
        return c.layers * (10 * L * d + 2 * L * c.ff + c.heads * L * L) + 4 * L * d + 2 * L * vocab.count
    }

    /// Values of the largest weight matrix (d², d·ff or the head's V·d).
    var largestWeight: Int { config.width * max(config.width, config.ff, vocab.count) }
}
