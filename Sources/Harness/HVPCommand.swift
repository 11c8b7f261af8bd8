import Foundation
import Scalars
import LinearAlgebra
import Models
import Curvature
import Studies

/// `hessian-harness hvp`: one FD (or exact) HVP of a model under a precision
/// policy, against the exact HVP in a reference format (mpfr256 by default; fp64 for
/// models too large for MPFR, e.g. a 135M-parameter checkpoint; none), with everything an
/// outside framework needs to reproduce it.
public struct HVPCommand {
    public var model: String
    public var seed: UInt64
    public var policy: String
    public var scheme: String
    public var eps: Double
    public var stepPolicy: String
    public var shards: Int
    public var order: String
    public var out: String
    public var command: [String]
    /// The format of the exact reference HVP: `mpfrN`, `fp64`, or `none`.
    public var reference: String
    /// `--params PATTERN`: the Hessian of these tensors only, the others held fixed (``ParameterSubset``).
    public var params: String? = nil

    public init(model: String, seed: UInt64, policy: String, scheme: String, eps: Double, stepPolicy: String,
                shards: Int, order: String, out: String, command: [String], reference: String = "mpfr256") {
        self.model = model; self.seed = seed; self.policy = policy; self.scheme = scheme; self.eps = eps
        self.stepPolicy = stepPolicy; self.shards = shards; self.order = order; self.out = out; self.command = command
        self.reference = reference
    }

    /// Checks a `--reference` value: none, fp64, or mpfrN of the registry.
    static func validateReference(_ r: String) throws {
        guard r == "none" || r == "fp64" || (r.hasPrefix("mpfr") && ScalarRegistry.names.contains(r)) else {
            throw HarnessError("unknown --reference '\(r)' (known: none, fp64, \(ScalarRegistry.mpfrPrecisions.map { "mpfr\($0)" }.joined(separator: ", ")))")
        }
    }

    /// The exact HVP (forward-over-reverse) of `m` at θ along v in `reference`'s format, rounded to fp64.
    static func referenceHVP(_ m: any DifferentiableModel, theta: [Double], v: [Double], reference: String) throws -> [Double] {
        struct Exact<M: DifferentiableModel>: ScalarBody {
            let m: M, theta: [Double], v: [Double]
            func run<T: StudyScalar>(_: T.Type) -> [Double] {
                m.exactHVP(theta.map { T(roundingDouble: $0) }, v.map { T(roundingDouble: $0) }).hv.map { $0.doubleValue }
            }
        }
        func open<M: DifferentiableModel>(_ m: M) throws -> [Double] {
            try ScalarRegistry.run(format: reference, Exact(m: m, theta: theta, v: v))
        }
        return try open(m)
    }

    public func run() throws {
        let start = Date()
        // Validate everything first: nothing is written on bad input.
        var m: any DifferentiableModel
        do { m = try ModelSpec.build(model, seed: seed) } catch { throw HarnessError("--model: \(error)") }
        let pol: PrecisionPolicy
        do { pol = try PrecisionPolicy(policy) } catch { throw HarnessError("--policy: \(error)") }
        m = try ParamsOption.restrict(m, pattern: params, seed: seed, policy: pol)
        let exactOnly = scheme == "exact"
        guard exactOnly || FDScheme(rawValue: scheme) != nil else {
            throw HarnessError("unknown --scheme '\(scheme)' (known: exact, forward, central, richardson)")
        }
        try Self.validateReference(reference)
        do {
            if reference != "none" { try m.checkExactHVP(format: reference) }
            if exactOnly { try m.checkExactHVP(format: "fp64") }
        } catch { throw HarnessError("\(error)") }
        let step: StepPolicy
        do { step = try StepPolicy.make(kind: stepPolicy, value: eps) } catch { throw HarnessError("--eps/--step-policy: \(error)") }
        let nShards = try Cluster.shards(requested: shards)
        guard let ord = ReductionOrder(rawValue: order) else { throw HarnessError("unknown --order '\(order)' (known: sequential, tree)") }
        let world = Cluster.world
        let param = try pol.arithmetic(pol.param), grad = try pol.arithmetic(pol.grad), hvp = try pol.arithmetic(pol.hvp)
        let acc = try pol.accumulation()
        try ModelMemory.check(m, format: pol.compute, dual: exactOnly, what: "a gradient of the model")
        if reference != "none" { try ModelMemory.check(m, format: reference, dual: true, what: "the \(reference) reference HVP") }

        let n = m.parameterCount
        let theta = m.initialParameters(seed: seed).map { param.round($0) }
        let v = ModelSetup.direction(count: n, seed: seed)
        if !exactOnly {
            let e = step.epsilon(theta: theta, v: v), reach = e * (v.map(\.magnitude).max() ?? 0)
            guard reach <= 1e150 else {
                throw HarnessError("ε = \(e) moves θ by up to \(reach) along v; θ ± εv must stay far inside fp64 (at most 1e150): choose a smaller --eps")
            }
        }
        let clock = ContinuousClock()

        // Reference: the exact HVP (forward-over-reverse) in the reference format, rounded to fp64 (rank 0 only).
        var exact: [Double] = []
        let tExact = try clock.measure {
            guard Cluster.isRoot, reference != "none" else { return }
            exact = try Self.referenceHVP(m, theta: theta, v: v, reference: reference)
        }.seconds
        struct Body<M: DifferentiableModel>: ScalarBody {
            let m: M, theta: [Double], v: [Double], scheme: String, step: StepPolicy
            let precision: FDPrecision, shards: Int, order: ReductionOrder, world: (any Communicator)?
            func run<T: StudyScalar>(_: T.Type) throws -> (FDResult, Double, Double) {
                let clock = ContinuousClock()
                // One gradient as the FD-HVP takes it (θ converted, gradient in T, rounded into grad).
                let tGrad = clock.measure { _ = precision.gradient(m, at: theta, samples: 0..<m.sampleCount, compute: T.self) }.seconds
                var r: FDResult? = nil
                let tHVP = try clock.measure {
                    if scheme == "exact" {
                        let hv = m.exactHVP(theta.map { T(roundingDouble: $0) }, v.map { T(roundingDouble: $0) }, accumulation: precision.accumulation).hv
                        r = FDResult(hv: hv.map { precision.hvp.round($0.doubleValue) }, epsilon: 0, delta: [Double](repeating: 0, count: v.count), swampedFraction: 0)
                    } else if shards == 1 && world == nil {
                        r = FiniteDifferenceHVP.estimate(m, theta: theta, v: v, scheme: FDScheme(rawValue: scheme)!, step: step, precision: precision, compute: T.self)
                    } else {
                        r = try ShardedHVP.estimate(m, theta: theta, v: v, scheme: FDScheme(rawValue: scheme)!, step: step, precision: precision,
                                                    shards: shards, order: order, world: world, compute: T.self)
                    }
                }.seconds
                return (r!, tGrad, tHVP)
            }
        }
        let precision = FDPrecision(param: param, grad: grad, hvp: hvp, accumulation: acc)
        func go<M: DifferentiableModel>(_ model: M) throws -> (FDResult, Double, Double) {
            try ScalarRegistry.run(format: pol.compute, rounding: pol.mode(for: pol.compute), Body(m: model, theta: theta, v: v, scheme: scheme, step: step,
                                                             precision: precision, shards: nShards, order: ord, world: world))
        }
        let (r, tGrad, tHVP) = try StochasticRounding.withSeed(seed) { try go(m) }
        if let i = r.hv.firstIndex(where: { !$0.isFinite }) {
            throw HarnessError("the \(scheme) HVP is not finite (element \(i) is \(r.hv[i])) at ε = \(r.epsilon): the loss or its gradient overflowed at θ ± εv; nothing written (choose a smaller --eps)")
        }
        guard Cluster.isRoot else { return }     // every rank holds ĥ; rank 0 writes
        let hasReference = !exact.isEmpty
        let norm = exact.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let diff = zip(r.hv, exact).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        let dotp = zip(r.hv, exact).reduce(0) { $0 + $1.0 * $1.1 }
        let nh = r.hv.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var summary = Table(header: ["model", "policy", "scheme", "step_policy", "eps", "eps_applied", "shards", "reduction_order", "seed",
                                    "reference", "rel_err", "cos_align", "swamped_fraction", "time_grad_s", "time_hvp_s", "time_reference_s", "hvp_over_grad"])
        summary.append([model, pol.description, scheme, stepPolicy, csvNumber(eps), csvNumber(r.epsilon), "\(nShards)", ord.rawValue, "\(seed)",
                        reference,
                        hasReference ? csvNumber(norm > 0 ? diff / norm : diff) : "", hasReference ? csvNumber(nh > 0 && norm > 0 ? dotp / (nh * norm) : 0) : "",
                        csvNumber(r.swampedFraction), csvNumber(tGrad), csvNumber(tHVP), hasReference ? csvNumber(tExact) : "",
                        csvNumber(tGrad > 0 ? tHVP / tGrad : 0)])
        var bundle = OutputBundle()
        let inputs = Manifest.hashes(ModelSpec.inputFiles(model))
        let (json, extra) = try describe(m, inputs: inputs)
        bundle.add("model.json", json)
        for (name, data) in extra { bundle.add(name, data) }
        bundle.add("params.npy", NPY.float64(theta))
        bundle.add("v.npy", NPY.float64(v))
        if hasReference { bundle.add("hv_exact.npy", NPY.float64(exact)) }
        bundle.add("hv.npy", NPY.float64(r.hv))
        try bundle.add("summary.csv", summary)
        let manifest = Manifest(command: command, seeds: ["model": seed, "v": ModelSetup.directionSeed(seed), "stochastic_rounding": seed],
                                parameters: ["model": model, "params": params ?? "all", "policy": pol.description, "scheme": scheme, "eps": "\(eps)",
                                             "step_policy": stepPolicy, "shards": "\(nShards)", "mpi_ranks": "\(Cluster.size)", "reduction_order": ord.rawValue,
                                             "reference": reference == "none" ? "none" : "exact HVP (forward-over-reverse) in \(reference), rounded to fp64",
                                             "v": "uniform(-1, 1) entries from SplitMix64(seed ^ 0x5DEECE66D), fp64"],
                                start: start, end: Date(), inputFiles: inputs)
        bundle.manifest = manifest
        try bundle.write(to: URL(fileURLWithPath: out))
        print(bundle.summaryLine("hvp", columns: ["rel_err", "cos_align", "swamped_fraction", "eps_applied", "hvp_over_grad"], dir: out))
    }

    /// model.json and the data files an outside framework needs to rebuild the loss.
    func describe(_ m: any DifferentiableModel, inputs: [String: String]) throws -> (Data, [(String, Data)]) {
        var d: [String: Any] = [
            "spec": model, "seed": seed,
            "parameter_count": m.parameterCount,
            "layout": m.layout.tensors.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset, "block": $0.block] as [String: Any] },
            "parameters_file": "params.npy",
        ]
        var files: [(String, Data)] = []
        // Where the data and the parameters came from, and every file read, with its SHA-256.
        if !inputs.isEmpty {
            d["input_files"] = inputs.keys.sorted().map { ["path": $0, "sha256": inputs[$0]!] }
        }
        var source: String
        if let file = parameterFile(of: m) { source = "user parameters from \(file) (sha256 \(inputs[file] ?? "?"))" }
        else if ["gguf:", "safetensors:"].contains(where: model.lowercased().hasPrefix) { source = "the checkpoint's" }
        else if architecture(of: m) is ExternalModel { source = "the oracle's" }
        else if architecture(of: m) is LlamaLM { source = "seeded initialization" }
        else { source = "seeded initialization (seed \(seed))" }
        if let t = m as? TrainedModelProtocol { source += ", then trained (\(t.training))" }
        d["parameters_source"] = source
        if let t = m as? TrainedModelProtocol {
            let run = t.trainingRun(seed: seed)
            d["training"] = ["optimizer": t.training.optimizer.rawValue, "steps": t.training.steps, "learning_rate": t.training.learningRate,
                             "loss_initial": run.losses.first ?? Double.nan, "loss_final": run.losses.last ?? Double.nan,
                             "from": "the seeded initialization; full batch; loss and gradient in fp64, ordered accumulation; "
                                 + (t.training.optimizer == .adam ? "Adam beta1 0.9, beta2 0.999, eps 1e-8" : "plain gradient descent"),
                             "loss_curve": "training_loss.npy"] as [String: Any]
            files.append(("training_loss.npy", NPY.float64(run.losses)))
        }
        if let s = m as? ParameterSubsetProtocol {
            // The layout above is the subset's (offsets into params.npy, v.npy, hv*.npy).
            d["parameter_subset"] = ["pattern": s.pattern, "tensors": s.tensorNames, "full_parameter_count": s.fullParameterCount,
                                     "hessian": "the principal block H_SS of the full model's Hessian on these tensors",
                                     "held_fixed": "every other parameter, at its value rounded into the param format",
                                     "full_parameters_file": "params_full.npy"] as [String: Any]
            files.append(("params_full.npy", NPY.float64(s.fixed)))
        }
        let m = architecture(of: m)
        if let mlp = m as? MLP {
            d["type"] = mlp.widths.count == 2 ? "softmax_regression" : "mlp"
            d["widths"] = mlp.widths
            if mlp.widths.count == 2 {
                // One affine map: no hidden layer, so no activation is ever applied.
                d["forward"] = "logits = x @ W_1.T + b_1"
            } else {
                d["activation"] = ["name": mlp.activation.rawValue, "formula": mlp.activation.formula]
                d["forward"] = "h_0 = x; z_l = h_{l-1} @ W_l.T + b_l; h_l = act(z_l) for all but the last layer; logits = z_L"
            }
            d["loss"] = mlp.outputLoss == .crossEntropy ? "mean over samples of logsumexp(logits) - logits[label] (softmax cross-entropy)"
                : "mean over samples of 0.5 * sum((logits - onehot(label))**2) (squared error)"
            d["data"] = ["x": "x.npy", "y": "y.npy", "x_shape": [mlp.data.count, mlp.data.features], "classes": mlp.data.classes,
                         "provenance": mlp.data.source.hasPrefix("user data") ? "user data" : "built-in",
                         "source": mlp.data.source] as [String: Any]
            files.append(("x.npy", NPY.float64(mlp.data.x.storage, shape: [mlp.data.count, mlp.data.features])))
            files.append(("y.npy", NPY.int64(mlp.data.labels)))
        } else if let t = m as? TransformerLM {
            d["type"] = "transformer_lm"
            d["config"] = ["context": t.config.context, "width": t.config.width, "heads": t.config.heads, "layers": t.config.layers,
                           "ff": t.config.ff, "sequences": t.config.sequences]
            d["vocabulary"] = String(t.vocab)
            d["architecture"] = "pre-norm decoder: h0 = tokens[x] + positions; per block h += attn(LN1(h)) @ Wo.T, h += W2·gelu(W1·LN2(h) + b1) + b2; logits = LN_f(h) @ head.T; causal multi-head attention on a = LN1(h): q, k, v = a @ Wq.T, a @ Wk.T, a @ Wv.T; head i is the contiguous column slice [i*width/heads, (i+1)*width/heads) of q, k and v; each head's output softmax((q_i k_i.T)/sqrt(width/heads) + causal mask) @ v_i is written back into the same slice, the heads concatenated in order, and that width-wide row multiplied by Wo.T; no attention biases; LN eps 1e-5, biased variance; gelu exact erf; linear maps y = x @ W.T"
            d["loss"] = "mean over sequences and positions of cross-entropy of the next token"
            d["data"] = ["tokens": "tokens.npy", "shape": [t.sequences.count, t.config.context + 1],
                         "provenance": "built-in", "source": "the built-in character corpus (text written for this project), windows at seeded offsets",
                         "inputs": "tokens[:, :-1]", "targets": "tokens[:, 1:]"] as [String: Any]
            files.append(("tokens.npy", NPY.int64(t.sequences.flatMap { $0 }, shape: [t.sequences.count, t.config.context + 1])))
        } else if let l = m as? LlamaLM {
            let c = l.config
            d["type"] = "llama"
            d["config"] = ["vocab": c.vocab, "width": c.width, "layers": c.layers, "heads": c.heads, "kv_heads": c.kvHeads, "ff": c.ff,
                           "rope_base": c.ropeBase, "rope_dimension": c.ropeDimension, "rope_layout": c.ropeLayout.rawValue,
                           "rms_epsilon": c.rmsEpsilon, "tied_embeddings": c.tiedEmbeddings, "tensor_names": l.naming.rawValue] as [String: Any]
            d["architecture"] = "Llama: h0 = embed[x]; per block a = rmsnorm(h)*g1, q,k,v = a @ Wq.T, a @ Wk.T, a @ Wv.T, rotary embeddings on q and k "
                + "(pairs " + (c.ropeLayout == .halves ? "(i, i + d_r/2), Hugging Face" : "(2i, 2i+1), GGUF") + "; angle t * base^(-2i/d_r)), grouped-query causal "
                + "attention (head i reads key-value head i // (heads / kv_heads)), scores q.k/sqrt(width/heads); h += o @ Wo.T; "
                + "m = rmsnorm(h)*g2; h += (silu(m @ Wgate.T) * (m @ Wup.T)) @ Wdown.T; logits = rmsnorm(h)*g_f @ (embed if tied else output).T; "
                + "rmsnorm(x) = x / sqrt(mean(x^2) + eps)"
            d["loss"] = "mean over sequences and positions of cross-entropy of the next token"
            d["data"] = ["tokens": "tokens.npy", "shape": [l.sequences.count, l.context + 1], "source": l.dataSource,
                         "provenance": model.contains(",text=") || model.contains(",tokens=") ? "user data" : "built-in",
                         "inputs": "tokens[:, :-1]", "targets": "tokens[:, 1:]"] as [String: Any]
            files.append(("tokens.npy", NPY.int64(l.sequences.flatMap { $0 }, shape: [l.sequences.count, l.context + 1])))
        } else if let e = m as? ExternalModel {
            let h = e.oracle.hello
            d["type"] = "external"
            d["oracle"] = ["command": e.oracle.command, "name": h.name, "dtype": h.dtype, "serves_hvp": h.servesHVP,
                           "protocol": "\(ExternalOracle.protocolName) version \(ExternalOracle.protocolVersion) (docs/ORACLE.md)"] as [String: Any]
            d["loss"] = "computed by the oracle process; params.npy holds the parameters it served"
        } else if let e = m as? ExpSumModel {
            d["type"] = "expsum"
            d["loss"] = "sum over i of w[i] * exp(theta[i]); gradient w * exp(theta); Hessian diag(w * exp(theta)); "
                + "w is rounded into the compute format before use (exact in fp64)"
            d["w"] = "w.npy"
            d["w_generator"] = "uniform in [0.5, 2], seeded (SplitMix64 of the seed xor 0x51ED27015EED)"
            files.append(("w.npy", NPY.float64(e.weights)))
        } else if let q = m as? QuadraticModel {
            d["type"] = "quadratic"
            d["loss"] = "0.5 * theta @ A @ theta - b @ theta"
            d["operator"] = q.spec.text
            d["b"] = "b.npy"
            files.append(("b.npy", NPY.float64(q.b)))
            if let diag = q.diagonal { d["A"] = ["diagonal": "A_diag.npy"]; files.append(("A_diag.npy", NPY.float64(diag))) }
            else if let a = q.dense { d["A"] = ["dense": "A.npy"]; files.append(("A.npy", NPY.float64(a.storage, shape: [a.rows, a.cols]))) }
            d["exact_eigenvalues"] = "A_eigenvalues.npy"
            files.append(("A_eigenvalues.npy", NPY.float64(q.eigenvalues)))
        }
        var json = try JSONSerialization.data(withJSONObject: d, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        json.append(UInt8(ascii: "\n"))
        return (json, files)
    }
}
