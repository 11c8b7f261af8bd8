import RealModule
import Scalars
import LinearAlgebra
import Krylov
import Models

/// How the parameters are split into diagonal blocks (NUMERICS.md §8).
public enum PartitionKind: String, CaseIterable, Sendable {
    /// Every tensor its own block.
    case tensor
    /// Tensors grouped by their name without its last component: an MLP layer's
    /// weight and bias; a transformer sublayer (`block0.attn`: wq, wk, wv, wo;
    /// `block0.mlp`: w1, b1, w2, b2; `block0.ln1`; `embed`; `final.ln`; `head`).
    case layer
    /// The layout's blocks: per MLP layer; per transformer block (plus embed, final, head).
    case block
    /// One block: H_B = H.
    case full
}

/// A partition of the flat parameter vector into named blocks.
public struct Partition: Sendable, Equatable {
    public let kind: PartitionKind
    public let names: [String]
    public let ranges: [[Range<Int>]]
    /// Block index of every parameter.
    public let blockOf: [Int]

    public init(layout: ParameterLayout, kind: PartitionKind) {
        var order: [String] = [], groups: [String: [Range<Int>]] = [:]
        for t in layout.tensors {
            let key: String
            switch kind {
            case .tensor: key = t.name
            case .layer: key = t.name.split(separator: ".").dropLast().joined(separator: ".").isEmpty ? t.name
                                : t.name.split(separator: ".").dropLast().joined(separator: ".")
            case .block: key = t.block
            case .full: key = "all"
            }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(t.range)
        }
        self.kind = kind
        names = order
        ranges = order.map { groups[$0]! }
        var b = [Int](repeating: 0, count: layout.count)
        for (i, rs) in ranges.enumerated() { for r in rs { for j in r { b[j] = i } } }
        blockOf = b
    }

    public var count: Int { names.count }

    /// `H_B v = Σ_b P_b H P_b v`, one product of `apply` per block.
    public func blockDiagonalProduct(_ v: [Double], _ apply: ([Double]) -> [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: v.count)
        for rs in ranges {
            var vb = [Double](repeating: 0, count: v.count)
            for r in rs { for j in r { vb[j] = v[j] } }
            let hb = apply(vb)
            for r in rs { for j in r { out[j] = hb[j] } }
        }
        return out
    }

    /// H_B of a dense H: the entries whose row and column lie in the same block.
    public func blockDiagonal(of h: Matrix<Double>) -> Matrix<Double> {
        var a = h
        for i in 0..<h.rows { for j in 0..<h.cols where blockOf[i] != blockOf[j] { a[i, j] = 0 } }
        return a
    }
}

/// Gauss–Newton (GGN) vector products `G v = Jᵀ (∇²ℓ) J v` of a model whose loss is
/// an ``OutputLoss`` of its outputs: J v from one forward pass in `Dual<T>` (the
/// output tangents), ∇²ℓ applied per output row in closed form, and Jᵀ from the
/// model's own reverse pass with that product as the output gradient.
public enum GaussNewton {
    public static func vectorProduct<M: OutputModel, T: ComputeScalar>(_ model: M, theta: [T], v: [T],
                                                                    accumulation: Accumulation = .recursive) -> [T] {
        let (zd, scale) = model.outputs(zip(theta, v).map { Dual<T>($0, $1) }, accumulation: accumulation)
        let z = Matrix(rows: zd.rows, cols: zd.cols, storage: zd.storage.map(\.value))
        let u = Matrix(rows: zd.rows, cols: zd.cols, storage: zd.storage.map(\.tangent))
        let w = model.outputLoss.hessianProduct(z, u, scale: scale.value)
        return model.pullback(theta, outputGradient: w, accumulation: accumulation)
    }
}

/// K-FAC for the linear layers of an MLP (Martens & Grosse 2015), with the exact
/// factorization of the loss Hessian instead of sampled targets: for layer l with
/// inputs ā = [h_{l−1}; 1],
/// `A_l = (1/N) Σ_n ā ā ᵀ` and `G_l = scale · Σ_n Σ_c (B_n q_{n,c})(B_n q_{n,c})ᵀ`,
/// where `∇²ℓ_n = Σ_c q q ᵀ` (``OutputLoss/hessianFactor(_:row:)``) and B_n backpropagates
/// an output vector to the layer's pre-activations. The GGN block of layer l is
/// `scale Σ_n (ā_n ā_nᵀ) ⊗ (B_n ∇²ℓ_n B_nᵀ)`; K-FAC replaces the sum of Kronecker
/// products by `A_l ⊗ G_l`, exact for one sample. Applied as `G V A` on the layer's
/// [W b] block (out × (in+1)); block diagonal across layers.
public struct KFAC<T: ComputeScalar> {
    /// One linear map's factors: A over its input (with a trailing 1 when it has a
    /// bias), G over its output.
    public struct Layer { public var a: Matrix<T>; public var g: Matrix<T>; public var weight: TensorSpec; public var bias: TensorSpec? }
    public var layers: [Layer]
    public let count: Int

    /// Parameters that belong to a K-FAC block (the linear maps' weights and biases).
    public var covered: [Bool] {
        var c = [Bool](repeating: false, count: count)
        for l in layers { for i in l.weight.range { c[i] = true }; if let b = l.bias { for i in b.range { c[i] = true } } }
        return c
    }

    /// K-FAC for the linear maps of a transformer LM (Q, K, V, output projections,
    /// both MLP layers, the head), positions as samples ("K-FAC expand"): with the
    /// loss `norm · Σ_rows ℓ` over the S·L next-token rows,
    /// `A = mean over rows of ā āᵀ` and `G = norm · Σ_c Σ_rows dy⁽ᶜ⁾ dy⁽ᶜ⁾ᵀ`, where dY⁽ᶜ⁾
    /// is the model's own reverse pass of the c-th column of the loss-Hessian factors
    /// of every row at once (so cross-position terms of attention enter G through
    /// the backward pass; those between positions in A ⊗ G are dropped).
    public init(_ lm: TransformerLM, theta: [T], accumulation acc: Accumulation = .recursive) {
        count = lm.layout.count
        // Pass 1: the logits of every sequence.
        let (z, norm) = lm.outputs(theta, accumulation: acc)
        let factors = (0..<z.rows).map { lm.outputLoss.hessianFactor(z, row: $0) }
        var names: [String] = []
        var aSum: [String: Matrix<T>] = [:], gSum: [String: Matrix<T>] = [:]
        var rows = 0
        func accumulate(_ sums: inout [String: Matrix<T>], _ name: String, _ m: Matrix<T>) {
            if let s = sums[name] { sums[name] = Matrix(rows: s.rows, cols: s.cols, storage: zip(s.storage, m.storage).map(+)) } else { sums[name] = m }
        }
        for c in 0..<z.cols {
            var q = [T](); q.reserveCapacity(z.rows * z.cols)
            for r in 0..<z.rows { q += factors[r][c] }
            let first = c == 0
            _ = lm.pullback(theta, outputGradient: Matrix(rows: z.rows, cols: z.cols, storage: q), accumulation: acc) { name, x, dy in
                let hasBias = name.hasSuffix("mlp.w1") || name.hasSuffix("mlp.w2")
                if first {
                    if aSum[name] == nil { names.append(name) }
                    var xb = x
                    if hasBias {
                        xb = Matrix<T>(rows: x.rows, cols: x.cols + 1)
                        for i in 0..<x.rows { for j in 0..<x.cols { xb[i, j] = x[i, j] }; xb[i, x.cols] = 1 }
                    }
                    let xx = Kernels.gemm(xb.transposed(), xb, accumulation: acc)
                    accumulate(&aSum, name, xx)
                    if name == "head" { rows += x.rows }
                }
                let gg = Kernels.gemm(dy.transposed(), dy, accumulation: acc)
                accumulate(&gSum, name, gg)
            }
        }
        layers = names.map { name in
            let w = lm.layout.tensor(name)!
            let bias: TensorSpec? = name.hasSuffix("mlp.w1") ? lm.layout.tensor(name.replacingOccurrences(of: "mlp.w1", with: "mlp.b1"))
                : name.hasSuffix("mlp.w2") ? lm.layout.tensor(name.replacingOccurrences(of: "mlp.w2", with: "mlp.b2")) : nil
            return Layer(a: aSum[name]!.map { $0 / T(rows) }, g: gSum[name]!.map { $0 * norm }, weight: w, bias: bias)
        }
    }

    public init(_ mlp: MLP, theta: [T], accumulation acc: Accumulation = .recursive) {
        let nl = mlp.widths.count - 1, n = mlp.data.count
        count = mlp.layout.count
        var w: [Matrix<T>] = [], b: [[T]] = []
        for l in 0..<nl {
            let wt = mlp.layout.tensors[2 * l], bt = mlp.layout.tensors[2 * l + 1]
            w.append(Matrix(rows: wt.shape[0], cols: wt.shape[1], storage: Array(theta[wt.range])))
            b.append(Array(theta[bt.range]))
        }
        var hs: [Matrix<T>] = [mlp.data.x.converted(to: T.self)], zs: [Matrix<T>] = []
        for l in 0..<nl {
            var z = Kernels.gemm(hs[l], w[l].transposed(), accumulation: acc)
            for i in 0..<n { for j in 0..<z.cols { z[i, j] += b[l][j] } }
            zs.append(z)
            if l < nl - 1 { hs.append(Matrix(rows: z.rows, cols: z.cols, storage: mlp.activation.values(z.storage))) }
        }
        let scale = 1 / T(n)
        var gs = (0..<nl).map { Matrix<T>(rows: mlp.widths[$0 + 1], cols: mlp.widths[$0 + 1]) }
        let k = mlp.widths.last!
        let factors = (0..<n).map { mlp.outputLoss.hessianFactor(zs[nl - 1], row: $0) }
        for c in 0..<k {
            var dz = Matrix<T>(rows: n, cols: k)
            for i in 0..<n { for j in 0..<k { dz[i, j] = factors[i][c][j] } }
            for l in stride(from: nl - 1, through: 0, by: -1) {
                let outer = Kernels.gemm(dz.transposed(), dz, accumulation: acc)
                for i in outer.storage.indices { gs[l].storage[i] += outer.storage[i] }
                if l > 0 {
                    var dh = Kernels.gemm(dz, w[l], accumulation: acc)
                    mlp.activation.scaleByDerivative(&dh.storage, at: zs[l - 1].storage, values: hs[l].storage)
                    dz = dh
                }
            }
        }
        layers = (0..<nl).map { l in
            let inW = mlp.widths[l]
            var abar = Matrix<T>(rows: n, cols: inW + 1)
            for i in 0..<n { for j in 0..<inW { abar[i, j] = hs[l][i, j] }; abar[i, inW] = 1 }
            let a = Kernels.gemm(abar.transposed(), abar, accumulation: acc).map { $0 / T(n) }
            return Layer(a: a, g: gs[l].map { $0 * scale }, weight: mlp.layout.tensors[2 * l], bias: mlp.layout.tensors[2 * l + 1])
        }
    }

    /// The K-FAC approximation applied to v (block diagonal over layers; zero on
    /// parameters outside every layer, see ``covered``).
    public func apply(_ v: [T]) -> [T] {
        var out = [T](repeating: .zero, count: count)
        for L in layers {
            let o = L.weight.shape[0], i = L.weight.shape[1], k = L.bias == nil ? i : i + 1
            var vm = Matrix<T>(rows: o, cols: k)
            for r in 0..<o {
                for c in 0..<i { vm[r, c] = v[L.weight.offset + r * i + c] }
                if let b = L.bias { vm[r, i] = v[b.offset + r] }
            }
            let res = Kernels.gemm(Kernels.gemm(L.g, vm), L.a)
            for r in 0..<o {
                for c in 0..<i { out[L.weight.offset + r * i + c] = res[r, c] }
                if let b = L.bias { out[b.offset + r] = res[r, i] }
            }
        }
        return out
    }
}

/// The Hessian's diagonal: exact from a dense H, or Hutchinson's estimate
/// `mean_z z ⊙ Hz` over Rademacher probes (Bekas, Kokiopoulou & Saad 2007).
public enum DiagonalHessian {
    public static func hutchinson(dimension n: Int, probes k: Int, seed: UInt64, _ apply: ([Double]) -> [Double]) -> [Double] {
        var g = SplitMix64(seed: seed)
        var d = [Double](repeating: 0, count: n)
        for _ in 0..<k {
            let z = (0..<n).map { _ in g.next() & 1 == 0 ? 1.0 : -1.0 }
            let hz = apply(z)
            for i in 0..<n { d[i] += z[i] * hz[i] }
        }
        return d.map { $0 / Double(k) }
    }
}

/// The metrics of NUMERICS.md §8 of an approximation Ĥ against H.
public struct ApproximationMetrics: Sendable, Equatable {
    /// mean and max over probes of ‖(H − Ĥ)v‖₂ / ‖Hv‖₂.
    public var relErr: Double
    public var relErrMax: Double
    /// mean over probes of cos(Ĥv, Hv).
    public var cos: Double
    /// ‖H − Ĥ‖_F / ‖H‖_F: exact (dense) or a Hutchinson estimate over the probes.
    public var froRel: Double
    public var froMethod: String
    /// W1 between the spectra of Ĥ and H over (λ_max − λ_min)(H) (dense only).
    public var w1Scaled: Double?
    /// ‖U_kᵀ Ũ_k‖_F² / k for the top-k (largest) eigenvectors (dense only).
    public var topkOverlap: Double?

    /// From products with probes: `hv[p] = H v_p`, `av[p] = Ĥ v_p`. The Frobenius
    /// estimate needs Rademacher probes (E‖M z‖² = ‖M‖_F²).
    public static func fromProbes(hv: [[Double]], av: [[Double]]) -> ApproximationMetrics {
        var errs: [Double] = [], coss: [Double] = []
        var num = 0.0, den = 0.0
        for (h, a) in zip(hv, av) {
            var d2 = 0.0, h2 = 0.0, a2 = 0.0, ha = 0.0
            for i in h.indices { d2 += (h[i] - a[i]) * (h[i] - a[i]); h2 += h[i] * h[i]; a2 += a[i] * a[i]; ha += h[i] * a[i] }
            errs.append(h2 > 0 ? (d2 / h2).squareRoot() : d2.squareRoot())
            coss.append(h2 > 0 && a2 > 0 ? ha / (h2 * a2).squareRoot() : 0)
            num += d2; den += h2
        }
        return ApproximationMetrics(relErr: errs.reduce(0, +) / Double(errs.count), relErrMax: errs.max() ?? 0,
                                    cos: coss.reduce(0, +) / Double(coss.count), froRel: den > 0 ? (num / den).squareRoot() : 0,
                                    froMethod: "hutchinson(\(hv.count))", w1Scaled: nil, topkOverlap: nil)
    }

    /// Everything exact from dense H and Ĥ (symmetric), with the probes for the
    /// probe-averaged errors.
    public static func dense(h: Matrix<Double>, approx a: Matrix<Double>, probes: [[Double]], k: Int) throws -> ApproximationMetrics {
        var m = fromProbes(hv: probes.map { Kernels.gemv(h, $0) }, av: probes.map { Kernels.gemv(a, $0) })
        var num = 0.0, den = 0.0
        for i in h.storage.indices { num += (h.storage[i] - a.storage[i]) * (h.storage[i] - a.storage[i]); den += h.storage[i] * h.storage[i] }
        m.froRel = den > 0 ? (num / den).squareRoot() : 0
        m.froMethod = "exact"
        let eh = try SymmetricEigen.decompose(h), ea = try SymmetricEigen.decompose(a)
        let (w1, _) = SpectralDistance.compare(SpectralMeasure(eigenvalues: ea.values), SpectralMeasure(eigenvalues: eh.values))
        let range = (eh.values.last ?? 0) - (eh.values.first ?? 0)
        m.w1Scaled = range > 0 ? w1 / range : w1
        let n = h.rows, kk = min(k, n)
        let uh = eh.vectors!, ua = ea.vectors!
        var s = 0.0
        for i in (n - kk)..<n { for j in (n - kk)..<n {
            var d = 0.0
            for r in 0..<n { d += uh[r, i] * ua[r, j] }
            s += d * d
        } }
        m.topkOverlap = s / Double(kk)
        return m
    }
}

/// Models K-FAC factors: their linear maps (and biases) are K-FAC blocks; the
/// parameters outside every block are the caller's to approximate (``KFAC/covered``).
public protocol KFACModel: DifferentiableModel {
    /// The K-FAC factors at θ (fp64, recursive accumulation).
    func kfac(theta: [Double]) -> KFAC<Double>
}

extension MLP: KFACModel {
    /// Every weight and bias is in a block.
    public func kfac(theta: [Double]) -> KFAC<Double> { KFAC(self, theta: theta) }
}

extension TransformerLM: KFACModel {
    /// The linear maps; not the embeddings or the layer norms.
    public func kfac(theta: [Double]) -> KFAC<Double> { KFAC(self, theta: theta) }
}
