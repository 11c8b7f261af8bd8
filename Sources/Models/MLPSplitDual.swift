import Scalars
import LinearAlgebra
import RealModule

extension MLP {
    /// (∇L, Hv). For a BLAS type (binary32, binary64) under `.blas` with tanh:
    /// ``splitDualHVP(_:_:)``, the dual-number reverse pass with values and tangents held
    /// apart; every other case runs the generic ``DifferentiableModel/dualNumberHVP(_:_:accumulation:)``.
    @inlinable
    public func hessianVectorProduct<T: ComputeScalar>(_ theta: [T], _ v: [T], accumulation: Accumulation) -> (gradient: [T], hv: [T]) {
        if accumulation == .blas, activation == .tanh {
            var out: (gradient: [T], hv: [T]) = ([], []), arrays = (theta, v)
            let done = withUnsafeMutablePointer(to: &out) { op in withUnsafePointer(to: &arrays) { ap in
                BLASSpecialization.run(T.self, SplitDual(model: self, arrays: UnsafeRawPointer(ap), out: UnsafeMutableRawPointer(op))) != nil
            } }
            if done { return out }
        }
        return dualNumberHVP(theta, v, accumulation: accumulation)
    }

    /// ``splitDualHVP(_:_:)`` with the concrete BLAS type (``BLASSpecialization``): θ and
    /// v read as `([B], [B])` (the arrays they already are), the result written as
    /// `(gradient: [B], hv: [B])`.
    @usableFromInline
    struct SplitDual: BLASSpecializedBody {
        @usableFromInline let model: MLP, arrays: UnsafeRawPointer, out: UnsafeMutableRawPointer
        @inlinable init(model: MLP, arrays: UnsafeRawPointer, out: UnsafeMutableRawPointer) {
            self.model = model; self.arrays = arrays; self.out = out
        }
        @inlinable func run<B: BLASScalar>(_: B.Type) {
            let a = arrays.assumingMemoryBound(to: ([B], [B]).self).pointee
            out.assumingMemoryBound(to: (gradient: [B], hv: [B]).self).pointee = model.splitDualHVP(a.0, a.1)
        }
    }

    /// The reverse pass of ``lossAndGradient(_:samples:accumulation:head:)`` in
    /// `Dual<B>` at θ + εv under `.blas`, operation for operation, with the values
    /// and the tangents of every matrix in separate arrays (struct of arrays).
    ///
    /// Why: the generic run holds `Dual<B>` pairs, so each BLAS product splits its
    /// operands into values and tangents and merges its result (`blasDualGemm`), and θ
    /// and v are first interleaved into a dual vector and the gradient split at the
    /// end. Here θ and v already are the values and tangents of the weights (read in
    /// place), activations and their gradients stay split, the products write the
    /// gradient and Hv slices directly, and the elementwise dual arithmetic runs as
    /// plain vectorizable loops.
    ///
    /// The same bits as the generic run (tested, under every OpenBLAS kernel set): the
    /// same sgemm calls on the same layouts — value AB, tangents A'B and AB' summed as
    /// fl(A'B + AB'), a skipped term standing for +0 where the generic run skips it
    /// (the data's zero tangent against finite weights) — and the dual formulas of
    /// `Dual`: tanh (t, (1 − t·t)·z', t through the type's vector tanh where it has one), h·h = (h·h, h'·h + h·h'), 1 − x = (1 − x, 0 − x'),
    /// g·u = (g·u, g'·u + g·u'), sums componentwise. The output head runs on
    /// `Dual<B>` logits (batch × classes, small) exactly as in the generic run.
    @inlinable
    public func splitDualHVP<B: BLASScalar>(_ theta: [B], _ v: [B]) -> (gradient: [B], hv: [B]) {
        precondition(theta.count == layout.count && v.count == layout.count, "θ and v need \(layout.count) entries")
        let layers = widths.count - 1, batch = data.count
        if batch == 0 { return ([B](repeating: 0, count: layout.count), [B](repeating: 0, count: layout.count)) }
        // Every element of both is written below (weight slices by products, biases by
        // their sums; the layout tiles the vector): no zero fill first.
        var gradient = [B](unsafeUninitializedCapacity: layout.count) { _, count in count = layout.count }
        var hv = [B](unsafeUninitializedCapacity: layout.count) { _, count in count = layout.count }
        theta.withUnsafeBufferPointer { tp in v.withUnsafeBufferPointer { vp in
            func tensor(_ p: UnsafeBufferPointer<B>, _ index: Int) -> UnsafeBufferPointer<B> {
                UnsafeBufferPointer(rebasing: p[layout.tensors[index].range])
            }
            /// op(A) op(W_l) with W_l (out × in) read in place from θ or v.
            func product(_ a: Matrix<B>, _ ta: Bool, _ w: UnsafeBufferPointer<B>, _ l: Int, _ tw: Bool) -> Matrix<B> {
                Kernels.gemm(a, transposed: ta, w, rows: widths[l + 1], cols: widths[l], transposed: tw, accumulation: .blas)
            }
            // Forward. The data's tangent is zero: nil, its product skipped when the
            // weights are finite (as blasDualGemm skips it), else computed from zeros.
            let x = Matrix(rows: batch, cols: data.features,
                           storage: B.fromBinary32Rounding(data.xFloat) ?? ScalarArrays.rounding(data.x.storage, to: B.self))
            var hV: [Matrix<B>] = [x], hT: [Matrix<B>?] = [nil]
            var zV = Matrix<B>(rows: 0, cols: 0), zT = zV
            for l in 0..<layers {
                let wv = tensor(tp, 2 * l), wt = tensor(vp, 2 * l), bv = tensor(tp, 2 * l + 1), bt = tensor(vp, 2 * l + 1)
                var value = product(hV[l], false, wv, l, true)
                let c1: Matrix<B>? = hT[l].map { product($0, false, wv, l, true) }
                    ?? (Self.allFinite(wv) ? nil : product(Matrix(rows: batch, cols: widths[l]), false, wv, l, true))
                var tangent = Self.tangentSum(c1, product(hV[l], false, wt, l, true))
                let width = widths[l + 1]
                value.storage.withUnsafeMutableBufferPointer { zp in tangent.storage.withUnsafeMutableBufferPointer { tq in
                    for i in 0..<batch {
                        let rv = zp.baseAddress! + i * width, rt = tq.baseAddress! + i * width
                        for j in 0..<width { rv[j] += bv[j]; rt[j] += bt[j] }
                    }
                } }
                if l < layers - 1 {
                    let h = B.tanhValues(value.storage) ?? value.storage.map { Elementary.tanh($0) }
                    let t = [B](unsafeUninitializedCapacity: h.count) { out, count in
                        h.withUnsafeBufferPointer { hp in tangent.storage.withUnsafeBufferPointer { zt in
                            for i in 0..<hp.count { out[i] = (1 - hp[i] * hp[i]) * zt[i] }
                        } }
                        count = h.count
                    }
                    hV.append(Matrix(rows: batch, cols: width, storage: h))
                    hT.append(Matrix(rows: batch, cols: width, storage: t))
                }
                zV = value; zT = tangent
            }
            // The output head on dual logits, as the generic run evaluates it.
            let classes = widths[layers]
            let logits = Matrix(rows: batch, cols: classes, storage: zip(zV.storage, zT.storage).map { Dual($0, $1) })
            let invB = 1 / Dual<B>(data.count)
            let dz = outputLoss.evaluate(logits, label: { data.labels[$0] }, scale: invB).gradient
            var dV = Matrix(rows: batch, cols: classes, storage: dz.storage.map(\.value))
            var dT = Matrix(rows: batch, cols: classes, storage: dz.storage.map(\.tangent))
            // Backward.
            for l in stride(from: layers - 1, through: 0, by: -1) {
                let wRange = layout.tensors[2 * l].range, bRange = layout.tensors[2 * l + 1].range
                gradient.withUnsafeMutableBufferPointer { gp in                 // dW = dzᵀ h
                    Kernels.gemm(dV, transposed: true, hV[l], transposed: false, into: UnsafeMutableBufferPointer(rebasing: gp[wRange]),
                                 accumulation: .blas)
                }
                let c2: Matrix<B>? = hT[l].map { Kernels.gemm(dV, transposed: true, $0, transposed: false, accumulation: .blas) }
                    ?? (Self.allFinite(dV.storage) ? nil
                        : Kernels.gemm(dV, transposed: true, Matrix(rows: batch, cols: widths[l]), transposed: false, accumulation: .blas))
                hv.withUnsafeMutableBufferPointer { hp in                         // dW' = fl(dz'ᵀ h + dzᵀ h')
                    let out = UnsafeMutableBufferPointer(rebasing: hp[wRange])
                    Kernels.gemm(dT, transposed: true, hV[l], transposed: false, into: out, accumulation: .blas)
                    if let c2 {
                        c2.storage.withUnsafeBufferPointer { c in for i in 0..<out.count { out[i] = out[i] + c[i] } }
                    } else {
                        for i in 0..<out.count { out[i] = out[i] + 0 }
                    }
                }
                let width = dV.cols                                                // bias: column sums in order
                gradient.withUnsafeMutableBufferPointer { gp in hv.withUnsafeMutableBufferPointer { hp in
                    dV.storage.withUnsafeBufferPointer { dv in dT.storage.withUnsafeBufferPointer { dt in
                        let sv = gp.baseAddress! + bRange.lowerBound, st = hp.baseAddress! + bRange.lowerBound
                        for j in 0..<width { sv[j] = 0; st[j] = 0 }
                        for i in 0..<batch {
                            let rv = dv.baseAddress! + i * width, rt = dt.baseAddress! + i * width
                            for j in 0..<width { sv[j] += rv[j]; st[j] += rt[j] }
                        }
                    } }
                } }
                if l > 0 {
                    let wv = tensor(tp, 2 * l), wt = tensor(vp, 2 * l)
                    var gV = product(dV, false, wv, l, false)                     // dh = dz W
                    var gT = Self.tangentSum(product(dT, false, wv, l, false), product(dV, false, wt, l, false))
                    // through tanh: g ← g·(1 − h·h) in dual arithmetic
                    hV[l].storage.withUnsafeBufferPointer { h in hT[l]!.storage.withUnsafeBufferPointer { ht in
                        gV.storage.withUnsafeMutableBufferPointer { gv in gT.storage.withUnsafeMutableBufferPointer { gt in
                            for i in 0..<gv.count {
                                let uV = 1 - h[i] * h[i], uT = 0 - (ht[i] * h[i] + h[i] * ht[i])
                                let (a, b) = (gv[i], gt[i])
                                gv[i] = a * uV
                                gt[i] = b * uV + a * uT
                            }
                        } }
                    } }
                    dV = gV; dT = gT
                }
            }
        } }
        return (gradient, hv)
    }

    /// fl(c1 + c2) elementwise, an absent term standing for +0 (as the merge of
    /// `blasDualGemm` does: t + 0, so −0 becomes +0).
    @inlinable
    static func tangentSum<B: BLASScalar>(_ c1: Matrix<B>?, _ c2: Matrix<B>) -> Matrix<B> {
        var out = c2
        out.storage.withUnsafeMutableBufferPointer { o in
            if let c1 {
                c1.storage.withUnsafeBufferPointer { a in for i in 0..<o.count { o[i] = a[i] + o[i] } }
            } else {
                for i in 0..<o.count { o[i] = 0 + o[i] }
            }
        }
        return out
    }

    /// Whether no element is NaN or ±∞: one pass without an early exit (a branch-free
    /// loop the compiler vectorizes; the data are finite, so all of it is read anyway).
    @inlinable
    static func allFinite<C: Collection>(_ x: C) -> Bool where C.Element: BLASScalar {
        var ok = true
        for e in x { ok = ok && e.isFinite }
        return ok
    }
}
