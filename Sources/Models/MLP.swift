import Scalars
import LinearAlgebra
import RealModule

/// A multilayer perceptron with softmax cross-entropy (mean over the batch);
/// `widths = [d, k]` is softmax regression.
///
/// Parameters, in order, per layer l = 0…L−1: `layer{l}.weight` [out, in] then
/// `layer{l}.bias` [out], block `layer{l}`. Forward: `z_l = h_{l−1} W_lᵀ + b_l`,
/// `h_l = act(z_l)` (no activation after the last layer); loss
/// `mean_b(logsumexp(z_L[b]) − z_L[b, y_b])`. Products run through
/// ``Kernels/gemm(_:_:accumulation:)`` under the given accumulation policy;
/// elementwise operations round in the compute type.
public struct MLP: OutputModel, GradientCore {
    public let widths: [Int]
    public let activation: Activation
    public let data: Dataset
    public let layout: ParameterLayout
    /// Softmax cross-entropy (default) or squared error against one-hot targets.
    public let outputLoss: OutputLoss

    public init(widths: [Int], activation: Activation, data: Dataset, loss: OutputLoss = .crossEntropy) throws {
        self.outputLoss = loss
        guard widths.count >= 2, widths.allSatisfy({ $0 >= 1 }) else { throw ModelError("mlp: widths need at least input and output sizes ≥ 1") }
        guard widths.first == data.features else { throw ModelError("mlp: input width \(widths[0]) ≠ data features \(data.features)") }
        guard widths.last == data.classes else { throw ModelError("mlp: output width \(widths.last!) ≠ classes \(data.classes)") }
        self.widths = widths; self.activation = activation; self.data = data
        var l = ParameterLayout()
        for i in 0..<(widths.count - 1) {
            l.add("layer\(i).weight", shape: [widths[i + 1], widths[i]], block: "layer\(i)")
            l.add("layer\(i).bias", shape: [widths[i + 1]], block: "layer\(i)")
        }
        layout = l
    }

    /// Glorot-uniform weights (seeded), zero biases.
    public func initialParameters(seed: UInt64) -> [Double] {
        var g = SplitMix64(seed: seed)
        var theta = [Double](repeating: 0, count: layout.count)
        for t in layout.tensors where t.shape.count == 2 {
            let limit = (6.0 / Double(t.shape[0] + t.shape[1])).squareRoot()
            for i in t.range { theta[i] = (2 * g.nextUniform() - 1) * limit }
        }
        return theta
    }

    public var sampleCount: Int { data.count }
    /// Pre- and post-activation values of every layer for every sample.
    public var activationCount: Int { 2 * data.count * widths.reduce(0, +) }

    @inlinable
    public func lossAndGradient<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        specializedGradient(theta, samples: samples, accumulation: acc)
    }

    @inlinable
    public func gradientCore<T: ComputeScalar>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation) -> (loss: T, gradient: [T]) {
        lossAndGradient(theta, samples: samples, accumulation: acc, head: outputLoss)
    }

    @inlinable
    public func lossAndGradient<T: ComputeScalar, H: LossHead>(_ theta: [T], samples: Range<Int>, accumulation acc: Accumulation, head: H) -> (loss: T, gradient: [T]) {
        precondition(theta.count == layout.count, "θ has \(theta.count) entries, the model \(layout.count)")
        let layers = widths.count - 1
        let batch = samples.count
        if batch == 0 { return (.zero, [T](repeating: .zero, count: layout.count)) }
        // Weights are read in place from θ (BLAS takes the buffer; other types copy it).
        return theta.withUnsafeBufferPointer { tp in
            func weight(_ l: Int) -> (UnsafeBufferPointer<T>, rows: Int, cols: Int) {
                let w = layout.tensors[2 * l]
                return (UnsafeBufferPointer(rebasing: tp[w.range]), w.shape[0], w.shape[1])
            }
            let biases = (0..<layers).map { UnsafeBufferPointer(rebasing: tp[layout.tensors[2 * $0 + 1].range]) }
            // Forward.
            let input: [T]
            if samples == 0..<data.count, let rounded = T.fromBinary32Rounding(data.xFloat) {
                input = rounded                                                 // fp32: rounded once, the same values
            } else {
                let rows = samples == 0..<data.count ? data.x.storage
                    : Array(data.x.storage[(samples.lowerBound * data.features)..<(samples.upperBound * data.features)])
                input = ScalarArrays.rounding(rows, to: T.self)
            }
            var hs: [Matrix<T>] = [Matrix(rows: batch, cols: data.features, storage: input)]
            var zs: [Matrix<T>] = []
            for l in 0..<layers {
                let w = weight(l)
                var z = Kernels.gemm(hs[l], transposed: false, w.0, rows: w.rows, cols: w.cols, transposed: true, accumulation: acc)
                let width = z.cols, bp = biases[l]
                z.storage.withUnsafeMutableBufferPointer { zp in
                    for i in 0..<batch {
                        let row = zp.baseAddress! + i * width
                        for j in 0..<width { row[j] += bp[j] }
                    }
                }
                zs.append(z)
                if l < layers - 1 { hs.append(Matrix(rows: z.rows, cols: z.cols, storage: activation.values(z.storage))) }
            }
            // The output loss (softmax cross-entropy unless another head is given), mean over the batch.
            let invB = 1 / T(data.count)
            let (sum, dzLogits) = head.evaluate(zs[layers - 1], label: { data.labels[samples.lowerBound + $0] }, scale: invB)
            var loss = sum
            var dz = dzLogits
            loss *= invB
            // Backward.
            // Every element is written below (each weight slice by its product, each bias by
            // its sums; the layout tiles the vector), so a trivial type starts uninitialized:
            // no zero fill of n elements that are all overwritten (1 MB for the fp32 MLP).
            var grad = _isPOD(T.self) ? [T](unsafeUninitializedCapacity: layout.count) { _, count in count = layout.count }
                                      : [T](repeating: .zero, count: layout.count)
            for l in stride(from: layers - 1, through: 0, by: -1) {
                let wt = layout.tensors[2 * l], bt = layout.tensors[2 * l + 1]
                grad.withUnsafeMutableBufferPointer { gp in                         // dW = dzᵀ h (out × in), in place
                    Kernels.gemm(dz, transposed: true, hs[l], transposed: false, into: UnsafeMutableBufferPointer(rebasing: gp[wt.range]), accumulation: acc)
                }
                // Bias gradient: column sums of dz, each accumulated over i in order (the rows
                // swept together so dz is read contiguously).
                let width = dz.cols
                grad.withUnsafeMutableBufferPointer { gp in dz.storage.withUnsafeBufferPointer { dp in
                    let sums = gp.baseAddress! + bt.offset
                    for j in 0..<width { sums[j] = .zero }
                    for i in 0..<batch {
                        let row = dp.baseAddress! + i * width
                        for j in 0..<width { sums[j] += row[j] }
                    }
                } }
                if l > 0 {
                    let w = weight(l)
                    var dh = Kernels.gemm(dz, transposed: false, w.0, rows: w.rows, cols: w.cols, transposed: false, accumulation: acc)  // batch × in
                    let zPrev = zs[l - 1], hPrev = hs[l]                                // hs[l] = act(zs[l − 1])
                    activation.scaleByDerivative(&dh.storage, at: zPrev.storage, values: hPrev.storage)
                    dz = dh
                }
            }
            return (loss, grad)
        }
    }
}

extension MLP {
    public func describe() -> ModelDescription {
        var d: [String: Any] = ["type": widths.count == 2 ? "softmax_regression" : "mlp", "widths": widths]
        if widths.count == 2 {
            // One affine map: no hidden layer, so no activation is ever applied.
            d["forward"] = "logits = x @ W_1.T + b_1"
        } else {
            d["activation"] = ["name": activation.rawValue, "formula": activation.formula]
            d["forward"] = "h_0 = x; z_l = h_{l-1} @ W_l.T + b_l; h_l = act(z_l) for all but the last layer; logits = z_L"
        }
        d["loss"] = outputLoss == .crossEntropy ? "mean over samples of logsumexp(logits) - logits[label] (softmax cross-entropy)"
            : "mean over samples of 0.5 * sum((logits - onehot(label))**2) (squared error)"
        d["data"] = ["x": "x.npy", "y": "y.npy", "x_shape": [data.count, data.features], "classes": data.classes,
                     "provenance": data.source.hasPrefix("user data") ? "user data" : "built-in",
                     "source": data.source] as [String: Any]
        let softmax = widths.count == 2
        return ModelDescription(family: softmax ? "softmax" : "mlp", depth: widths.count - 1,
                                width: softmax ? widths[0] : widths.dropFirst().dropLast().max()!, entries: d,
                                arrays: [("x.npy", .float64(data.x.storage, shape: [data.count, data.features])), ("y.npy", .int64(data.labels))])
    }

    /// h_0…h_{L−1} and z_1…z_L, the backward temporaries, W and Wᵀ (one copy: the batch is not split).
    public func peakGradientValues(shards: Int) -> Int { peakGradientValues(samples: data.count) }

    /// The same for a block of `samples` rows.
    public func peakGradientValues(samples b: Int) -> Int {
        let w = widths
        let acts = b * (w.dropLast().reduce(0, +) + w.dropFirst().reduce(0, +))
        return acts + b * (w.max() ?? 0) * 2 + 2 * parameterCount
    }
}
