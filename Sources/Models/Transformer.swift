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
    /// One block's weight matrices (as stored: [out, in]).
    struct BlockWeights<T: ComputeScalar> {
        var wq, wk, wv, wo, w1, w2: Matrix<T>
        func transposed() -> BlockWeights {
            BlockWeights(wq: wq.transposed(), wk: wk.transposed(), wv: wv.transposed(), wo: wo.transposed(),
                         w1: w1.transposed(), w2: w2.transposed())
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
    func addMatrix<T: ComputeScalar>(_ grad: inout [T], _ name: String, _ m: Matrix<T>) {
        let off = layout.tensor(name)!.offset
        for i in m.storage.indices { grad[off + i] += m.storage[i] }
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
        let tok = mat(theta, "embed.tokens"), pos = mat(theta, "embed.positions"), head = mat(theta, "head")
        let headT = head.transposed()
        // Weight matrices and their transposes depend only on θ: build them once, not per sequence.
        let w = (0..<c.layers).map { b in
            BlockWeights(wq: mat(theta, "block\(b).attn.wq"), wk: mat(theta, "block\(b).attn.wk"), wv: mat(theta, "block\(b).attn.wv"),
                         wo: mat(theta, "block\(b).attn.wo"), w1: mat(theta, "block\(b).mlp.w1"), w2: mat(theta, "block\(b).mlp.w2"))
        }
        let wT = w.map { $0.transposed() }
        for s in samples {
            let seq = sequences[s]
            // Forward.
            var h = Matrix<T>(rows: L, cols: d)
            for t in 0..<L { for j in 0..<d { h[t, j] = tok[seq[t], j] + pos[t, j] } }
            var caches: [BlockCache<T>] = []
            for b in 0..<c.layers {
                let blk = "block\(b)"
                let (a, c1) = layerNorm(h, slice(theta, "\(blk).ln1.gain"), slice(theta, "\(blk).ln1.bias"))
                let q = Kernels.gemm(a, wT[b].wq, accumulation: acc)
                let k = Kernels.gemm(a, wT[b].wk, accumulation: acc)
                let v = Kernels.gemm(a, wT[b].wv, accumulation: acc)
                var o = Matrix<T>(rows: L, cols: d)
                let ps = CausalAttention.forward(q: q, k: k, v: v, rows: 0, length: L, heads: H, kvHeads: H, headWidth: dh, scale: scale, into: &o)
                let attn = Kernels.gemm(o, wT[b].wo, accumulation: acc)
                for i in h.storage.indices { h.storage[i] += attn.storage[i] }
                let (m2, c2) = layerNorm(h, slice(theta, "\(blk).ln2.gain"), slice(theta, "\(blk).ln2.bias"))
                var u = Kernels.gemm(m2, wT[b].w1, accumulation: acc)
                let b1 = slice(theta, "\(blk).mlp.b1"), b10 = b1.startIndex
                for t in 0..<L { for j in 0..<c.ff { u[t, j] += b1[b10 + j] } }
                let gu = u.map { Activation.gelu.value($0) }
                var f = Kernels.gemm(gu, wT[b].w2, accumulation: acc)
                let b2 = slice(theta, "\(blk).mlp.b2"), b20 = b2.startIndex
                for t in 0..<L { for j in 0..<d { f[t, j] += b2[b20 + j] } }
                for i in h.storage.indices { h.storage[i] += f.storage[i] }
                caches.append(BlockCache(ln1: c1, a: a, q: q, k: k, v: v, p: ps, o: o, ln2: c2, m: m2, u: u, gu: gu))
            }
            let (zf, cf) = layerNorm(h, slice(theta, "final.ln.gain"), slice(theta, "final.ln.bias"))
            let logits = Kernels.gemm(zf, headT, accumulation: acc)
            let (sum, dlogits) = lossHead.evaluate(logits, label: { seq[$0 + 1] }, scale: norm)
            loss += sum * norm
            // Backward.
            observer?("head", zf, dlogits)
            addMatrix(&grad, "head", Kernels.gemm(dlogits.transposed(), zf, accumulation: acc))
            let dzf = Kernels.gemm(dlogits, head, accumulation: acc)
            var dh_ = layerNormBackward(dzf, cf, slice(theta, "final.ln.gain"), &grad,
                                        gainOffset: layout.tensor("final.ln.gain")!.offset, biasOffset: layout.tensor("final.ln.bias")!.offset)
            for b in stride(from: c.layers - 1, through: 0, by: -1) {
                let blk = "block\(b)", cache = caches[b]
                // MLP.
                observer?("\(blk).mlp.w2", cache.gu, dh_)
                addMatrix(&grad, "\(blk).mlp.w2", Kernels.gemm(dh_.transposed(), cache.gu, accumulation: acc))
                let ob2 = layout.tensor("\(blk).mlp.b2")!.offset
                for t in 0..<L { for j in 0..<d { grad[ob2 + j] += dh_[t, j] } }
                var du = Kernels.gemm(dh_, w[b].w2, accumulation: acc)
                for i in du.storage.indices { du.storage[i] *= Activation.gelu.derivative(cache.u.storage[i]) }
                observer?("\(blk).mlp.w1", cache.m, du)
                addMatrix(&grad, "\(blk).mlp.w1", Kernels.gemm(du.transposed(), cache.m, accumulation: acc))
                let ob1 = layout.tensor("\(blk).mlp.b1")!.offset
                for t in 0..<L { for j in 0..<c.ff { grad[ob1 + j] += du[t, j] } }
                let dm = Kernels.gemm(du, w[b].w1, accumulation: acc)
                let dln2 = layerNormBackward(dm, cache.ln2, slice(theta, "\(blk).ln2.gain"), &grad,
                                             gainOffset: layout.tensor("\(blk).ln2.gain")!.offset, biasOffset: layout.tensor("\(blk).ln2.bias")!.offset)
                for i in dh_.storage.indices { dh_.storage[i] += dln2.storage[i] }
                // Attention.
                observer?("\(blk).attn.wo", cache.o, dh_)
                addMatrix(&grad, "\(blk).attn.wo", Kernels.gemm(dh_.transposed(), cache.o, accumulation: acc))
                let dO = Kernels.gemm(dh_, w[b].wo, accumulation: acc)
                var dq = Matrix<T>(rows: L, cols: d), dk = Matrix<T>(rows: L, cols: d), dv = Matrix<T>(rows: L, cols: d)
                CausalAttention.backward(dO: dO, q: cache.q, k: cache.k, v: cache.v, p: cache.p[...], rows: 0, length: L, heads: H, kvHeads: H,
                                         headWidth: dh, scale: scale, dq: &dq, dk: &dk, dv: &dv)
                observer?("\(blk).attn.wq", cache.a, dq)
                observer?("\(blk).attn.wk", cache.a, dk)
                observer?("\(blk).attn.wv", cache.a, dv)
                addMatrix(&grad, "\(blk).attn.wq", Kernels.gemm(dq.transposed(), cache.a, accumulation: acc))
                addMatrix(&grad, "\(blk).attn.wk", Kernels.gemm(dk.transposed(), cache.a, accumulation: acc))
                addMatrix(&grad, "\(blk).attn.wv", Kernels.gemm(dv.transposed(), cache.a, accumulation: acc))
                var da = Kernels.gemm(dq, w[b].wq, accumulation: acc)
                let dak = Kernels.gemm(dk, w[b].wk, accumulation: acc)
                let dav = Kernels.gemm(dv, w[b].wv, accumulation: acc)
                for i in da.storage.indices { da.storage[i] += dak.storage[i] + dav.storage[i] }
                let dln1 = layerNormBackward(da, cache.ln1, slice(theta, "\(blk).ln1.gain"), &grad,
                                             gainOffset: layout.tensor("\(blk).ln1.gain")!.offset, biasOffset: layout.tensor("\(blk).ln1.bias")!.offset)
                for i in dh_.storage.indices { dh_.storage[i] += dln1.storage[i] }
            }
            let ot = layout.tensor("embed.tokens")!.offset, op = layout.tensor("embed.positions")!.offset
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
    /// final norm and logits; n values four times: θ, the weights' work copy, their
    /// transposes and the gradient being built (which the count missed until the scaling
    /// study's peak RSS showed it: 0.90 of the measured FD-HVP Lanczos peak at 10⁸).
    public func peakGradientValues(shards: Int) -> Int {
        let c = config, L = c.context, d = c.width
        let perBlock = 10 * L * d + 2 * L * c.ff + c.heads * L * L
        return shards * (c.layers * perBlock + 4 * L * d + 2 * L * vocab.count) + 4 * parameterCount
    }

    /// Sequences are taken one at a time: one sequence's activations, whatever the count.
    public func peakGradientValues(samples: Int) -> Int { peakGradientValues(shards: 1) }
}
