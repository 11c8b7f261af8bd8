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
    /// Tensor offsets by role, resolved once.
    let offsets: Offsets
    struct Offsets: Sendable {
        var embed = 0, norm = 0, output: Int? = nil
        var blocks: [[String: Int]] = []
    }

    public init(config c: Config, naming: Naming = .gguf, sequences: [[Int]], parameters: [Double]? = nil) throws {
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
        self.config = c; self.naming = naming; self.sequences = sequences
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
    public var context: Int { sequences[0].count - 1 }

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
    func ropeTables<T: StudyScalar>(_: T.Type) -> (cos: [T], sin: [T]) {
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
    /// every head of `x` (rows = positions, `heads` heads of width d_h) in place.
    func rope<T: StudyScalar>(_ x: inout Matrix<T>, heads: Int, tables: (cos: [T], sin: [T]), inverse: Bool) {
        let dh = config.headDimension, half = config.ropeDimension / 2
        for t in 0..<x.rows {
            for h in 0..<heads {
                for i in 0..<half {
                    let (a, b) = pair(i)
                    let c = tables.cos[t * half + i], s = inverse ? -tables.sin[t * half + i] : tables.sin[t * half + i]
                    let x1 = x[t, h * dh + a], x2 = x[t, h * dh + b]
                    x[t, h * dh + a] = c * x1 - s * x2
                    x[t, h * dh + b] = s * x1 + c * x2
                }
            }
        }
    }

    /// y = x·r·g with r = 1/√(mean(x²) + ε) per row; returns y and r.
    func rmsNorm<T: StudyScalar>(_ x: Matrix<T>, _ theta: [T], gain: Int) -> (Matrix<T>, [T]) {
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
    func rmsNormBackward<T: StudyScalar>(_ dy: Matrix<T>, _ x: Matrix<T>, _ r: [T], _ theta: [T], gain: Int, _ grad: inout [T]) -> Matrix<T> {
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

    func matrix<T: StudyScalar>(_ theta: [T], at offset: Int, rows: Int, cols: Int) -> Matrix<T> {
        Matrix(rows: rows, cols: cols, storage: Array(theta[offset..<(offset + rows * cols)]))
    }
    func add<T: StudyScalar>(_ grad: inout [T], at offset: Int, _ m: Matrix<T>) {
        for i in m.storage.indices { grad[offset + i] += m.storage[i] }
    }

    struct Weights<T: StudyScalar> { var q, k, v, o, gate, up, down: Matrix<T> }
    struct Cache<T: StudyScalar> {
        var h: Matrix<T>; var r1: [T]; var a: Matrix<T>; var q: Matrix<T>; var k: Matrix<T>; var v: Matrix<T>
        var p: [Matrix<T>]; var o: Matrix<T>; var h2: Matrix<T>; var r2: [T]; var m: Matrix<T>
        var gate: Matrix<T>; var up: Matrix<T>; var act: Matrix<T>
    }

    public func lossAndGradient<T: StudyScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: StudyScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        reversePass(theta, samples: samples, accumulation: acc)
    }

    @usableFromInline
    func reversePass<T: StudyScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        precondition(theta.count == layout.count)
        let c = config, d = c.width, L = context, H = c.heads, K = c.kvHeads, dh = c.headDimension, V = c.vocab, F = c.ff
        let group = H / K
        var grad = [T](repeating: .zero, count: layout.count)
        var loss = T.zero
        let norm = 1 / T(sequences.count * L)
        let scale = 1 / T(dh).squareRoot()
        let tables = ropeTables(T.self)
        let embed = matrix(theta, at: offsets.embed, rows: V, cols: d)
        let head = offsets.output.map { matrix(theta, at: $0, rows: V, cols: d) } ?? embed
        let headT = head.transposed()
        let w = offsets.blocks.map { o in
            Weights(q: matrix(theta, at: o["q"]!, rows: d, cols: d), k: matrix(theta, at: o["k"]!, rows: c.kvWidth, cols: d),
                    v: matrix(theta, at: o["v"]!, rows: c.kvWidth, cols: d), o: matrix(theta, at: o["o"]!, rows: d, cols: d),
                    gate: matrix(theta, at: o["gate"]!, rows: F, cols: d), up: matrix(theta, at: o["up"]!, rows: F, cols: d),
                    down: matrix(theta, at: o["down"]!, rows: d, cols: F))
        }
        let wT = w.map { Weights(q: $0.q.transposed(), k: $0.k.transposed(), v: $0.v.transposed(), o: $0.o.transposed(),
                                 gate: $0.gate.transposed(), up: $0.up.transposed(), down: $0.down.transposed()) }
        for s in samples {
            let seq = sequences[s]
            var h = Matrix<T>(rows: L, cols: d)
            for t in 0..<L { for j in 0..<d { h[t, j] = embed[seq[t], j] } }
            var caches: [Cache<T>] = []
            caches.reserveCapacity(c.layers)
            for b in 0..<c.layers {
                let ob = offsets.blocks[b]
                let (a, r1) = rmsNorm(h, theta, gain: ob["attn_norm"]!)
                var q = Kernels.gemm(a, wT[b].q, accumulation: acc)
                var k = Kernels.gemm(a, wT[b].k, accumulation: acc)
                let v = Kernels.gemm(a, wT[b].v, accumulation: acc)
                rope(&q, heads: H, tables: tables, inverse: false)
                rope(&k, heads: K, tables: tables, inverse: false)
                var o = Matrix<T>(rows: L, cols: d)
                var ps: [Matrix<T>] = []
                for hd in 0..<H {
                    let kv = hd / group
                    var p = Matrix<T>(rows: L, cols: L)
                    for t in 0..<L {
                        var mx = -T.infinity
                        var sc = [T](repeating: .zero, count: t + 1)
                        for j in 0...t {
                            var x = T.zero
                            for e in 0..<dh { x += q[t, hd * dh + e] * k[j, kv * dh + e] }
                            sc[j] = x * scale
                            if sc[j] > mx { mx = sc[j] }
                        }
                        var z = T.zero
                        for j in 0...t { sc[j] = T.exp(sc[j] - mx); z += sc[j] }
                        for j in 0...t { p[t, j] = sc[j] / z }
                        for e in 0..<dh {
                            var x = T.zero
                            for j in 0...t { x += p[t, j] * v[j, kv * dh + e] }
                            o[t, hd * dh + e] = x
                        }
                    }
                    ps.append(p)
                }
                let h1 = h
                let attn = Kernels.gemm(o, wT[b].o, accumulation: acc)
                for i in h.storage.indices { h.storage[i] += attn.storage[i] }
                let (m, r2) = rmsNorm(h, theta, gain: ob["ffn_norm"]!)
                let gate = Kernels.gemm(m, wT[b].gate, accumulation: acc)
                let up = Kernels.gemm(m, wT[b].up, accumulation: acc)
                var act = Matrix<T>(rows: L, cols: F)
                for i in act.storage.indices {
                    let g = gate.storage[i]
                    act.storage[i] = g / (1 + T.exp(-g)) * up.storage[i]
                }
                let f = Kernels.gemm(act, wT[b].down, accumulation: acc)
                let h2 = h
                for i in h.storage.indices { h.storage[i] += f.storage[i] }
                caches.append(Cache(h: h1, r1: r1, a: a, q: q, k: k, v: v, p: ps, o: o, h2: h2, r2: r2, m: m, gate: gate, up: up, act: act))
            }
            let (zf, rf) = rmsNorm(h, theta, gain: offsets.norm)
            let logits = Kernels.gemm(zf, headT, accumulation: acc)
            let (sum, dlogits) = OutputLoss.crossEntropy.evaluate(logits, label: { seq[$0 + 1] }, scale: norm)
            loss += sum * norm
            // Reverse.
            add(&grad, at: offsets.output ?? offsets.embed, Kernels.gemm(dlogits.transposed(), zf, accumulation: acc))
            let dzf = Kernels.gemm(dlogits, head, accumulation: acc)
            var dh_ = rmsNormBackward(dzf, h, rf, theta, gain: offsets.norm, &grad)
            for b in stride(from: c.layers - 1, through: 0, by: -1) {
                let ob = offsets.blocks[b], cache = caches[b]
                // MLP: f = act·W_downᵀ, act = SiLU(gate) ⊙ up.
                add(&grad, at: ob["down"]!, Kernels.gemm(dh_.transposed(), cache.act, accumulation: acc))
                let dact = Kernels.gemm(dh_, w[b].down, accumulation: acc)
                var dgate = Matrix<T>(rows: L, cols: F), dup = Matrix<T>(rows: L, cols: F)
                for i in dact.storage.indices {
                    let g = cache.gate.storage[i]
                    let sg = 1 / (1 + T.exp(-g))
                    dup.storage[i] = dact.storage[i] * g * sg
                    dgate.storage[i] = dact.storage[i] * cache.up.storage[i] * sg * (1 + g * (1 - sg))
                }
                add(&grad, at: ob["gate"]!, Kernels.gemm(dgate.transposed(), cache.m, accumulation: acc))
                add(&grad, at: ob["up"]!, Kernels.gemm(dup.transposed(), cache.m, accumulation: acc))
                var dm = Kernels.gemm(dgate, w[b].gate, accumulation: acc)
                let dm2 = Kernels.gemm(dup, w[b].up, accumulation: acc)
                for i in dm.storage.indices { dm.storage[i] += dm2.storage[i] }
                let dn2 = rmsNormBackward(dm, cache.h2, cache.r2, theta, gain: ob["ffn_norm"]!, &grad)
                for i in dh_.storage.indices { dh_.storage[i] += dn2.storage[i] }
                // Attention.
                add(&grad, at: ob["o"]!, Kernels.gemm(dh_.transposed(), cache.o, accumulation: acc))
                let dO = Kernels.gemm(dh_, w[b].o, accumulation: acc)
                var dq = Matrix<T>(rows: L, cols: d), dk = Matrix<T>(rows: L, cols: c.kvWidth), dv = Matrix<T>(rows: L, cols: c.kvWidth)
                for hd in 0..<H {
                    let kv = hd / group, p = cache.p[hd]
                    for t in 0..<L {
                        var dp = [T](repeating: .zero, count: t + 1)
                        var dot = T.zero
                        for j in 0...t {
                            var x = T.zero
                            for e in 0..<dh { x += dO[t, hd * dh + e] * cache.v[j, kv * dh + e] }
                            dp[j] = x
                            dot += p[t, j] * x
                        }
                        for j in 0...t {
                            let ds = p[t, j] * (dp[j] - dot) * scale
                            for e in 0..<dh {
                                dq[t, hd * dh + e] += ds * cache.k[j, kv * dh + e]
                                dk[j, kv * dh + e] += ds * cache.q[t, hd * dh + e]
                                dv[j, kv * dh + e] += p[t, j] * dO[t, hd * dh + e]
                            }
                        }
                    }
                }
                rope(&dq, heads: H, tables: tables, inverse: true)
                rope(&dk, heads: K, tables: tables, inverse: true)
                add(&grad, at: ob["q"]!, Kernels.gemm(dq.transposed(), cache.a, accumulation: acc))
                add(&grad, at: ob["k"]!, Kernels.gemm(dk.transposed(), cache.a, accumulation: acc))
                add(&grad, at: ob["v"]!, Kernels.gemm(dv.transposed(), cache.a, accumulation: acc))
                var da = Kernels.gemm(dq, w[b].q, accumulation: acc)
                let dak = Kernels.gemm(dk, w[b].k, accumulation: acc)
                let dav = Kernels.gemm(dv, w[b].v, accumulation: acc)
                for i in da.storage.indices { da.storage[i] += dak.storage[i] + dav.storage[i] }
                let dn1 = rmsNormBackward(da, cache.h, cache.r1, theta, gain: ob["attn_norm"]!, &grad)
                for i in dh_.storage.indices { dh_.storage[i] += dn1.storage[i] }
            }
            for t in 0..<L { for j in 0..<d { grad[offsets.embed + seq[t] * d + j] += dh_[t, j] } }
        }
        return (loss, grad)
    }
}
