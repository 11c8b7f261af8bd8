import Scalars
import LinearAlgebra
import RealModule

/// The Llama architecture (SmolLM2, Llama 2/3) as a causal language model with a
/// hand-written reverse pass, generic over the scalar.
///
/// Per block (pre-norm, no biases):
/// `a = RMSNorm(h)·g₁`, `q = a·W_qᵀ`, `k = a·W_kᵀ`, `v = a·W_vᵀ`; rotary position embeddings
/// on q and k; grouped-query causal attention (H query heads of width d_h = D/H share
/// K key–value heads, head i reads key–value head ⌊i·K/H⌋), scores `q·kᵀ/√d_h`;
/// `h += o·W_oᵀ`; `m = RMSNorm(h)·g₂`, `h += (SiLU(m·W_gateᵀ) ⊙ m·W_upᵀ)·W_downᵀ`. Then
/// `RMSNorm(h)·g_f` and the output head (the token embedding itself when tied).
/// Loss: mean next-token cross-entropy over every position of every sequence.
/// RMSNorm: `x / √(mean(x²) + ε)`. SiLU: `x·σ(x)`.
///
/// Rotary embeddings rotate pairs of a head's components by the angle `t·θ_i`,
/// `θ_i = base^(−2i/d_r)` for pair i of the first d_r (the rotary dimension)
/// components. Which components pair up is the checkpoint's convention:
/// ``RopeLayout/halves`` (Hugging Face: i with i + d_r/2) or ``RopeLayout/interleaved``
/// (GGUF / llama.cpp: 2i with 2i + 1; llama.cpp's converter permutes the rows of W_q and
/// W_k so that the same weights give the same attention). The model keeps the
/// checkpoint's weights as stored and rotates in its convention, so its parameters are
/// the file's, bit for bit. The angles' cosines and sines are model constants computed
/// in fp64 and rounded into the compute type, so the function is the same in every
/// format (the MPFR reference included) up to its arithmetic.
public struct LlamaLM: DifferentiableModel, GradientCore {
    public enum RopeLayout: String, Sendable, Codable { case halves, interleaved }

    public struct Config: Sendable, Equatable, Codable {
        public var vocab: Int, width: Int, layers: Int, heads: Int, kvHeads: Int, ff: Int
        public var ropeBase: Double, ropeDimension: Int, rmsEpsilon: Double, tiedEmbeddings: Bool
        public var ropeLayout: RopeLayout
        public init(vocab: Int, width: Int, layers: Int, heads: Int, kvHeads: Int, ff: Int, ropeBase: Double = 10000,
                    ropeDimension: Int? = nil, rmsEpsilon: Double = 1e-5, tiedEmbeddings: Bool = true, ropeLayout: RopeLayout = .halves) {
            self.vocab = vocab; self.width = width; self.layers = layers; self.heads = heads; self.kvHeads = kvHeads; self.ff = ff
            self.ropeBase = ropeBase; self.ropeDimension = ropeDimension ?? (heads > 0 ? width / heads : 0)
            self.rmsEpsilon = rmsEpsilon; self.tiedEmbeddings = tiedEmbeddings; self.ropeLayout = ropeLayout
        }
        public var headDimension: Int { width / heads }
        public var kvWidth: Int { kvHeads * headDimension }
    }

    /// The tensor names of a checkpoint convention.
    public enum Naming: String, Sendable, Codable {
        case gguf, huggingFace
        func name(_ role: String, block b: Int? = nil) -> String {
            switch self {
            case .gguf:
                switch role {
                case "embed": return "token_embd.weight"
                case "norm": return "output_norm.weight"
                case "output": return "output.weight"
                default:
                    let r = ["attn_norm": "attn_norm", "q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                             "ffn_norm": "ffn_norm", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"][role]!
                    return "blk.\(b!).\(r).weight"
                }
            case .huggingFace:
                switch role {
                case "embed": return "model.embed_tokens.weight"
                case "norm": return "model.norm.weight"
                case "output": return "lm_head.weight"
                default:
                    let r = ["attn_norm": "input_layernorm", "q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                             "o": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "gate": "mlp.gate_proj",
                             "up": "mlp.up_proj", "down": "mlp.down_proj"][role]!
                    return "model.layers.\(b!).\(r).weight"
                }
            }
        }
    }

    public let config: Config
    public let naming: Naming
    /// Token sequences of equal length context + 1 (inputs, and targets shifted by one).
    public let sequences: [[Int]]
    public let layout: ParameterLayout
    /// The parameters it was loaded with (a checkpoint's), returned by ``initialParameters(seed:)``.
    public let loadedParameters: [Double]?
    /// Where the token sequences came from (a text and its tokenizer, a tokens file, or a seed).
    public let dataSource: String
    /// Whether the sequences are the user's (a tokens file or a text given in the spec).
    public let userData: Bool
    /// Tensor offsets by role, resolved once.
    let offsets: Offsets
    struct Offsets: Sendable {
        var embed = 0, norm = 0, output: Int? = nil
        var blocks: [[String: Int]] = []
    }

    public init(config c: Config, naming: Naming = .gguf, sequences: [[Int]], parameters: [Double]? = nil,
                dataSource: String = "seeded uniform token ids", userData: Bool = false) throws {
        guard c.vocab >= 1, c.width >= 1, c.layers >= 1, c.heads >= 1, c.kvHeads >= 1, c.ff >= 1 else {
            throw ModelError("llama: every size must be ≥ 1")
        }
        guard c.width % c.heads == 0 else { throw ModelError("llama: width \(c.width) is not divisible by heads \(c.heads)") }
        guard c.heads % c.kvHeads == 0 else { throw ModelError("llama: heads \(c.heads) is not a multiple of key-value heads \(c.kvHeads)") }
        guard c.ropeDimension >= 0, c.ropeDimension <= c.headDimension, c.ropeDimension % 2 == 0 else {
            throw ModelError("llama: rotary dimension \(c.ropeDimension) must be even and at most the head width \(c.headDimension)")
        }
        guard c.ropeBase > 0, c.ropeBase.isFinite, c.rmsEpsilon >= 0, c.rmsEpsilon.isFinite else {
            throw ModelError("llama: RoPE base must be positive and RMSNorm ε non-negative")
        }
        guard let first = sequences.first, first.count >= 2, sequences.allSatisfy({ $0.count == first.count }) else {
            throw ModelError("llama: sequences must be non-empty, of equal length ≥ 2 (context + 1)")
        }
        guard sequences.allSatisfy({ $0.allSatisfy { $0 >= 0 && $0 < c.vocab } }) else {
            throw ModelError("llama: a token id is outside the vocabulary 0..<\(c.vocab)")
        }
        self.config = c; self.naming = naming; self.sequences = sequences; self.dataSource = dataSource
        self.userData = userData
        var l = ParameterLayout()
        let d = c.width
        l.add(naming.name("embed"), shape: [c.vocab, d], block: "embed")
        for b in 0..<c.layers {
            let blk = "block\(b)"
            l.add(naming.name("attn_norm", block: b), shape: [d], block: blk)
            l.add(naming.name("q", block: b), shape: [d, d], block: blk)
            l.add(naming.name("k", block: b), shape: [c.kvWidth, d], block: blk)
            l.add(naming.name("v", block: b), shape: [c.kvWidth, d], block: blk)
            l.add(naming.name("o", block: b), shape: [d, d], block: blk)
            l.add(naming.name("ffn_norm", block: b), shape: [d], block: blk)
            l.add(naming.name("gate", block: b), shape: [c.ff, d], block: blk)
            l.add(naming.name("up", block: b), shape: [c.ff, d], block: blk)
            l.add(naming.name("down", block: b), shape: [d, c.ff], block: blk)
        }
        l.add(naming.name("norm"), shape: [d], block: "final")
        if !c.tiedEmbeddings { l.add(naming.name("output"), shape: [c.vocab, d], block: "head") }
        layout = l
        if let p = parameters, p.count != l.count {
            throw ModelError("llama: \(p.count) parameters given, the architecture has \(l.count)")
        }
        loadedParameters = parameters
        var o = Offsets()
        o.embed = l.tensor(naming.name("embed"))!.offset
        o.norm = l.tensor(naming.name("norm"))!.offset
        o.output = c.tiedEmbeddings ? nil : l.tensor(naming.name("output"))!.offset
        for b in 0..<c.layers {
            var m: [String: Int] = [:]
            for r in ["attn_norm", "q", "k", "v", "o", "ffn_norm", "gate", "up", "down"] { m[r] = l.tensor(naming.name(r, block: b))!.offset }
            o.blocks.append(m)
        }
        offsets = o
    }

    public var sampleCount: Int { sequences.count }
    /// Per token: the logits, and per layer the normed inputs, q/k/v, attention
    /// weights and output, and the SwiGLU's three ff-wide vectors.
    public var activationCount: Int {
        let c = config, tokens = sequences.count * context
        return tokens * (c.vocab + c.layers * (4 * c.width + 2 * c.kvWidth + context * c.heads + 3 * c.ff))
    }
    public var context: Int { sequences[0].count - 1 }

    /// At the start of the reverse pass, for `samples` sequences of L tokens: θ (read in
    /// place: no work copy, no transposes) and the gradient, 2n; per token and layer the
    /// cache (the residual stream twice, the two normed inputs, q and the attention
    /// output: 6d; k and v: 2·kv-width; the attention weights: heads·L; gate, up and their
    /// product: 3·ff; two RMS factors), and per token the stream, the final norm's output
    /// and the logits with their gradient (2d + 2·vocab).
    public func peakGradientValues(samples: Int) -> Int {
        2 * parameterCount + samples * context * valuesPerToken
    }

    /// `shards` in-process ranks at once, each with its block of the sequences: θ once,
    /// a gradient per rank, and every sequence's per-token values (the blocks partition
    /// the batch).
    public func peakGradientValues(shards: Int) -> Int {
        (1 + shards) * parameterCount + sequences.count * context * valuesPerToken
    }

    /// The per-token values of ``peakGradientValues(samples:)``.
    var valuesPerToken: Int {
        let c = config
        return c.layers * (6 * c.width + 2 * c.kvWidth + c.heads * context + 3 * c.ff + 2) + 2 * c.width + 2 * c.vocab
    }

    /// The checkpoint's parameters when loaded from one; otherwise seeded: matrices
    /// uniform in ±0.05·√3 (standard deviation 0.05), norm gains 1.
    public func initialParameters(seed: UInt64) -> [Double] {
        if let p = loadedParameters { return p }
        var g = SplitMix64(seed: seed)
        var theta = [Double](repeating: 0, count: layout.count)
        for t in layout.tensors {
            if t.shape.count == 1 { for i in t.range { theta[i] = 1 } }
            else { for i in t.range { theta[i] = (2 * g.nextUniform() - 1) * 0.05 * 3.0.squareRoot() } }
        }
        return theta
    }

    /// cos and sin of t·θ_i for t < context, i < d_r/2, computed in fp64.
    func ropeTables<T: ComputeScalar>(_: T.Type) -> (cos: [T], sin: [T]) {
        let half = config.ropeDimension / 2, L = context
        var c = [T](), s = [T]()
        c.reserveCapacity(L * half); s.reserveCapacity(L * half)
        for t in 0..<L {
            for i in 0..<half {
                let freq = 1 / Double.pow(config.ropeBase, Double(2 * i) / Double(config.ropeDimension))
                let angle = Double(t) * freq
                c.append(T(roundingDouble: Double.cos(angle))); s.append(T(roundingDouble: Double.sin(angle)))
            }
        }
        return (c, s)
    }

    /// The component indices (a, b) of rotary pair i within a head.
    @inline(__always) func pair(_ i: Int) -> (Int, Int) {
        config.ropeLayout == .halves ? (i, i + config.ropeDimension / 2) : (2 * i, 2 * i + 1)
    }

    /// Rotates (inverse = false) or rotates back (the transpose, for the reverse pass)
    /// every head of `x` (rows = the positions of stacked sequences of length context,
    /// `heads` heads of width d_h) in place.
    func rope<T: ComputeScalar>(_ x: inout Matrix<T>, heads: Int, tables: (cos: [T], sin: [T]), inverse: Bool) {
        let dh = config.headDimension, half = config.ropeDimension / 2, L = context
        for row in 0..<x.rows {
            let t = row % L
            for h in 0..<heads {
                for i in 0..<half {
                    let (a, b) = pair(i)
                    let c = tables.cos[t * half + i], s = inverse ? -tables.sin[t * half + i] : tables.sin[t * half + i]
                    let x1 = x[row, h * dh + a], x2 = x[row, h * dh + b]
                    x[row, h * dh + a] = c * x1 - s * x2
                    x[row, h * dh + b] = s * x1 + c * x2
                }
            }
        }
    }

    /// y = x·r·g with r = 1/√(mean(x²) + ε) per row; returns y and r.
    func rmsNorm<T: ComputeScalar>(_ x: Matrix<T>, _ theta: [T], gain: Int) -> (Matrix<T>, [T]) {
        let d = x.cols
        var y = Matrix<T>(rows: x.rows, cols: d)
        var r = [T](repeating: .zero, count: x.rows)
        let eps = T(roundingDouble: config.rmsEpsilon)
        for i in 0..<x.rows {
            var s = T.zero
            for j in 0..<d { s += x[i, j] * x[i, j] }
            r[i] = 1 / (s / T(d) + eps).squareRoot()
            for j in 0..<d { y[i, j] = x[i, j] * r[i] * theta[gain + j] }
        }
        return (y, r)
    }

    /// dx of ``rmsNorm(_:_:gain:)``; adds dg into grad.
    func rmsNormBackward<T: ComputeScalar>(_ dy: Matrix<T>, _ x: Matrix<T>, _ r: [T], _ theta: [T], gain: Int, _ grad: inout [T]) -> Matrix<T> {
        let d = x.cols
        var dx = Matrix<T>(rows: x.rows, cols: d)
        for i in 0..<x.rows {
            var dot = T.zero
            for j in 0..<d {
                grad[gain + j] += dy[i, j] * x[i, j] * r[i]
                dot += dy[i, j] * theta[gain + j] * x[i, j]
            }
            let k = r[i] * r[i] * r[i] * dot / T(d)
            for j in 0..<d { dx[i, j] = r[i] * dy[i, j] * theta[gain + j] - k * x[i, j] }
        }
        return dx
    }

    struct Cache<T: ComputeScalar> {
        var h: Matrix<T>; var r1: [T]; var a: Matrix<T>; var q: Matrix<T>; var k: Matrix<T>; var v: Matrix<T>
        var p: [Matrix<T>]; var o: Matrix<T>; var h2: Matrix<T>; var r2: [T]; var m: Matrix<T>
        var gate: Matrix<T>; var up: Matrix<T>; var act: Matrix<T>
    }

    /// Softmax cross-entropy summed over the rows, with its gradient times `scale`. Under
    /// `.recursive` accumulation this is ``softmaxCrossEntropy(_:label:scale:)``, every sum
    /// left to right; under any other policy the sums over the vocabulary and over the
    /// rows are pairwise in the compute type (blocks of 16 summed in order). A recursive
    /// binary32 sum of 49,152 exponentials is biased by swamping: on SmolLM2 it put the
    /// fp32 loss 3.9e-5 below the fp64 one, where PyTorch's reductions (and this) stay
    /// within 1e-6. Pairwise sums keep the derivative rules of the type (dual numbers too).
    static func crossEntropy<T: ComputeScalar>(_ logits: Matrix<T>, label: (Int) -> Int, scale: T, _ acc: Accumulation) -> (sum: T, gradient: Matrix<T>) {
        if case .recursive = acc { return softmaxCrossEntropy(logits, label: label, scale: scale) }
        let k = logits.cols
        var dz = Matrix<T>(rows: logits.rows, cols: k)
        var losses = [T](repeating: .zero, count: logits.rows)
        var e = [T](repeating: .zero, count: k)
        for i in 0..<logits.rows {
            var m = logits[i, 0]
            for j in 1..<k where logits[i, j] > m { m = logits[i, j] }
            for j in 0..<k { e[j] = T.exp(logits[i, j] - m) }
            let s = e.withUnsafeBufferPointer { pairwiseSum($0, 0, k) }
            let y = label(i)
            losses[i] = m + T.log(s) - logits[i, y]
            for j in 0..<k { dz[i, j] = (e[j] / s - (j == y ? 1 : 0)) * scale }
        }
        return (losses.withUnsafeBufferPointer { pairwiseSum($0, 0, $0.count) }, dz)
    }

    static func pairwiseSum<T: ComputeScalar>(_ x: UnsafeBufferPointer<T>, _ lo: Int, _ hi: Int) -> T {
        if hi - lo <= 16 {
            var s = T.zero
            for i in lo..<hi { s += x[i] }
            return s
        }
        let mid = lo + (hi - lo) / 2
        return pairwiseSum(x, lo, mid) + pairwiseSum(x, mid, hi)
    }

    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        reversePass(theta, samples: samples, accumulation: acc)
    }

    /// The batch's sequences are stacked into one matrix of S·L rows for every linear map
    /// and norm (so each weight's gradient is one product, written once); attention runs
    /// per sequence and head.
    @usableFromInline
    func reversePass<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        precondition(theta.count == layout.count)
        let c = config, d = c.width, L = context, H = c.heads, K = c.kvHeads, dh = c.headDimension, V = c.vocab, F = c.ff
        let kvw = c.kvWidth
        let seqs = Array(samples), S = seqs.count, R = S * L
        var grad = [T](repeating: .zero, count: layout.count)
        guard S > 0 else { return (.zero, grad) }
        let norm = 1 / T(sequences.count * L)
        let scale = 1 / T(dh).squareRoot()
        let tables = ropeTables(T.self)
        let headOffset = offsets.output ?? offsets.embed
        // Forward.
        var h = Matrix<T>(rows: R, cols: d)
        for (si, s) in seqs.enumerated() {
            for t in 0..<L { for j in 0..<d { h[si * L + t, j] = theta[offsets.embed + sequences[s][t] * d + j] } }
        }
        var caches: [Cache<T>] = []
        caches.reserveCapacity(c.layers)
        for b in 0..<c.layers {
            let ob = offsets.blocks[b]
            let (a, r1) = rmsNorm(h, theta, gain: ob["attn_norm"]!)
            var q = linear(a, theta, at: ob["q"]!, out: d, in: d, acc)
            var k = linear(a, theta, at: ob["k"]!, out: kvw, in: d, acc)
            let v = linear(a, theta, at: ob["v"]!, out: kvw, in: d, acc)
            rope(&q, heads: H, tables: tables, inverse: false)
            rope(&k, heads: K, tables: tables, inverse: false)
            var o = Matrix<T>(rows: R, cols: d)
            var ps: [Matrix<T>] = []
            ps.reserveCapacity(S * H)
            for si in 0..<S {
                ps += CausalAttention.forward(q: q, k: k, v: v, rows: si * L, length: L, heads: H, kvHeads: K, headWidth: dh, scale: scale, into: &o)
            }
            let h1 = h
            let attn = linear(o, theta, at: ob["o"]!, out: d, in: d, acc)
            for i in h.storage.indices { h.storage[i] += attn.storage[i] }
            let (m, r2) = rmsNorm(h, theta, gain: ob["ffn_norm"]!)
            let gate = linear(m, theta, at: ob["gate"]!, out: F, in: d, acc)
            let up = linear(m, theta, at: ob["up"]!, out: F, in: d, acc)
            var act = Matrix<T>(rows: R, cols: F)
            for i in act.storage.indices {
                let g = gate.storage[i]
                act.storage[i] = g / (1 + T.exp(-g)) * up.storage[i]
            }
            let f = linear(act, theta, at: ob["down"]!, out: d, in: F, acc)
            let h2 = h
            for i in h.storage.indices { h.storage[i] += f.storage[i] }
            caches.append(Cache(h: h1, r1: r1, a: a, q: q, k: k, v: v, p: ps, o: o, h2: h2, r2: r2, m: m, gate: gate, up: up, act: act))
        }
        let (zf, rf) = rmsNorm(h, theta, gain: offsets.norm)
        let logits = linear(zf, theta, at: headOffset, out: V, in: d, acc)
        let (sum, dlogits) = Self.crossEntropy(logits, label: { sequences[seqs[$0 / L]][$0 % L + 1] }, scale: norm, acc)
        let loss = sum * norm
        // Reverse. The head's gradient is written first: with tied embeddings the
        // embedding rows' gradients are added to it at the end.
        weightGradient(dlogits, zf, &grad, at: headOffset, acc)
        let dzf = linearBackward(dlogits, theta, at: headOffset, out: V, in: d, acc)
        var dh_ = rmsNormBackward(dzf, h, rf, theta, gain: offsets.norm, &grad)
        for b in stride(from: c.layers - 1, through: 0, by: -1) {
            let ob = offsets.blocks[b], cache = caches[b]
            // MLP: f = act·W_downᵀ, act = SiLU(gate) ⊙ up.
            weightGradient(dh_, cache.act, &grad, at: ob["down"]!, acc)
            let dact = linearBackward(dh_, theta, at: ob["down"]!, out: d, in: F, acc)
            var dgate = Matrix<T>(rows: R, cols: F), dup = Matrix<T>(rows: R, cols: F)
            for i in dact.storage.indices {
                let g = cache.gate.storage[i]
                let sg = 1 / (1 + T.exp(-g))
                dup.storage[i] = dact.storage[i] * g * sg
                dgate.storage[i] = dact.storage[i] * cache.up.storage[i] * sg * (1 + g * (1 - sg))
            }
            weightGradient(dgate, cache.m, &grad, at: ob["gate"]!, acc)
            weightGradient(dup, cache.m, &grad, at: ob["up"]!, acc)
            var dm = linearBackward(dgate, theta, at: ob["gate"]!, out: F, in: d, acc)
            let dm2 = linearBackward(dup, theta, at: ob["up"]!, out: F, in: d, acc)
            for i in dm.storage.indices { dm.storage[i] += dm2.storage[i] }
            let dn2 = rmsNormBackward(dm, cache.h2, cache.r2, theta, gain: ob["ffn_norm"]!, &grad)
            for i in dh_.storage.indices { dh_.storage[i] += dn2.storage[i] }
            // Attention.
            weightGradient(dh_, cache.o, &grad, at: ob["o"]!, acc)
            let dO = linearBackward(dh_, theta, at: ob["o"]!, out: d, in: d, acc)
            var dq = Matrix<T>(rows: R, cols: d), dk = Matrix<T>(rows: R, cols: kvw), dv = Matrix<T>(rows: R, cols: kvw)
            for si in 0..<S {
                CausalAttention.backward(dO: dO, q: cache.q, k: cache.k, v: cache.v, p: cache.p[(si * H)..<((si + 1) * H)], rows: si * L, length: L,
                                         heads: H, kvHeads: K, headWidth: dh, scale: scale, dq: &dq, dk: &dk, dv: &dv)
            }
            rope(&dq, heads: H, tables: tables, inverse: true)
            rope(&dk, heads: K, tables: tables, inverse: true)
            weightGradient(dq, cache.a, &grad, at: ob["q"]!, acc)
            weightGradient(dk, cache.a, &grad, at: ob["k"]!, acc)
            weightGradient(dv, cache.a, &grad, at: ob["v"]!, acc)
            var da = linearBackward(dq, theta, at: ob["q"]!, out: d, in: d, acc)
            let dak = linearBackward(dk, theta, at: ob["k"]!, out: kvw, in: d, acc)
            let dav = linearBackward(dv, theta, at: ob["v"]!, out: kvw, in: d, acc)
            for i in da.storage.indices { da.storage[i] += dak.storage[i] + dav.storage[i] }
            let dn1 = rmsNormBackward(da, cache.h, cache.r1, theta, gain: ob["attn_norm"]!, &grad)
            for i in dh_.storage.indices { dh_.storage[i] += dn1.storage[i] }
        }
        for (si, s) in seqs.enumerated() {
            for t in 0..<L { for j in 0..<d { grad[offsets.embed + sequences[s][t] * d + j] += dh_[si * L + t, j] } }
        }
        return (loss, grad)
    }
}

extension LlamaLM {
    public func describe() -> ModelDescription {
        let c = config
        let d: [String: Any] = [
            "type": "llama",
            "config": ["vocab": c.vocab, "width": c.width, "layers": c.layers, "heads": c.heads, "kv_heads": c.kvHeads, "ff": c.ff,
                       "rope_base": c.ropeBase, "rope_dimension": c.ropeDimension, "rope_layout": c.ropeLayout.rawValue,
                       "rms_epsilon": c.rmsEpsilon, "tied_embeddings": c.tiedEmbeddings, "tensor_names": naming.rawValue] as [String: Any],
            "architecture": "Llama: h0 = embed[x]; per block a = rmsnorm(h)*g1, q,k,v = a @ Wq.T, a @ Wk.T, a @ Wv.T, rotary embeddings on q and k "
                + "(pairs " + (c.ropeLayout == .halves ? "(i, i + d_r/2), Hugging Face" : "(2i, 2i+1), GGUF") + "; angle t * base^(-2i/d_r)), grouped-query causal "
                + "attention (head i reads key-value head i // (heads / kv_heads)), scores q.k/sqrt(width/heads); h += o @ Wo.T; "
                + "m = rmsnorm(h)*g2; h += (silu(m @ Wgate.T) * (m @ Wup.T)) @ Wdown.T; logits = rmsnorm(h)*g_f @ (embed if tied else output).T; "
                + "rmsnorm(x) = x / sqrt(mean(x^2) + eps)",
            "loss": "mean over sequences and positions of cross-entropy of the next token",
            "data": ["tokens": "tokens.npy", "shape": [sequences.count, context + 1], "source": dataSource,
                     "provenance": userData ? "user data" : "built-in",
                     "inputs": "tokens[:, :-1]", "targets": "tokens[:, 1:]"] as [String: Any],
        ]
        return ModelDescription(family: "llama", depth: c.layers, width: c.width, entries: d,
                                arrays: [("tokens.npy", .int64(sequences.flatMap { $0 }, shape: [sequences.count, context + 1]))],
                                parametersSource: loadedParameters == nil ? "seeded initialization" : "the checkpoint's")
    }
}
