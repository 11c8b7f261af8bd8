import Foundation
import Scalars
import LinearAlgebra

public typealias LinearAlgebraAccumulation = Accumulation

/// Models by spec string (CLI and experiment files):
///
/// | spec | model |
/// |---|---|
/// | `quadratic:OPERATOR` | ½θᵀAθ − bᵀθ with A = `OPERATOR` (any operator spec, e.g. `quadratic:mp:n=200,ratio=0.5`) |
/// | `softmax:d=D,classes=K[,samples=N]` | softmax regression on teacher–student data |
/// | `mlp:widths=D-H-…-K[,act=tanh\|gelu\|relu][,samples=N][,loss=ce\|mse]` | MLP on teacher–student data (softmax cross-entropy, or squared error against one-hot targets) |
/// | `…,data=FILE.csv` or `…,x=X.npy,y=Y.npy` (softmax, mlp) | the same on user data (see ``DataFiles``) |
/// | `transformer[:context=16,width=32,heads=4,layers=2,ff=128,sequences=8]` | character-level decoder-only LM on the built-in corpus |
/// | `expsum:n=N` | Σ wᵢ exp(θᵢ): every derivative in closed form (``ExpSumModel``) |
/// | `llama:vocab=V,width=D,layers=L,heads=H,kv_heads=K,ff=F[,context=T,sequences=N,rope_base=B,tied=yes\|no,rope=halves\|interleaved]` | a seeded random ``LlamaLM`` on seeded random tokens |
/// | `gguf:PATH[,context=T,sequences=N,text=FILE\|tokens=FILE.npy]` | a Llama checkpoint in GGUF (e.g. SmolLM2-135M), its parameters as stored, on text tokenized by its own tokenizer (default: Debian's Apache-2.0 licence text) |
/// | `safetensors:DIR[,context=T,sequences=N,tokens=FILE.npy]` | a Hugging Face `LlamaForCausalLM` folder (safetensors + config.json) |
/// | `external:CMD` | the user's own model in their own framework: CMD (run by `/bin/sh -c`) speaks the oracle protocol of docs/ORACLE.md on its standard input and output (``ExternalModel``) |
/// | `…,params=FILE.npy` (any built-in model) | the model at the user's parameters: flat, in `model.json`'s layout, float64, float32 or float16 (``GivenParameters``) |
/// | `…,train=STEPS[,optimizer=adam\|sgd][,lr=RATE]` (any model) | the model after STEPS full-batch training steps from its seeded initialization (``TrainedModel``; Adam lr 1e-2, SGD lr 0.1 by default) |
/// | `…,subset=PATTERN` (any built-in model) | the Hessian of the tensors PATTERN selects, the others held fixed (``ParameterSubset``; globs of tensor or block names separated by `\|`, e.g. `subset=blk.29.*` or `subset=layer1.*\|head.weight`): what `--params PATTERN` does for one command, for experiment files. The fixed values are rounded into each run's param format |
///
/// Data and the quadratic's b are drawn from the seed.
public enum ModelSpec {
    /// A model built to be described and counted, never run (the scaling study's
    /// extrapolation targets): the memory budget that refuses a model too large for the
    /// machine is lifted, so a 70-billion-parameter architecture can state its parameter
    /// count and ``GradientWork``. Nothing of the parameters' size is allocated here.
    public static func architecture(_ text: String) throws -> any DifferentiableModel {
        try MemoryBudget.$countingOnly.withValue(true) { try $checkingOnly.withValue(true) { try build(text, seed: 0) } }
    }

    /// Checks a spec as a run would build it — its syntax, its files, every memory check —
    /// without the work a run needs and a check does not: the teacher network that labels
    /// a seeded MLP data set is not evaluated (the labels are placeholders) and a
    /// `train=` spec is not trained. Experiment files are checked this way when they are
    /// loaded, so a mistake is reported before the first configuration runs, at the cost
    /// of reading the spec, not of building a 10⁸-parameter model twice.
    public static func validate(_ text: String) throws {
        try $checkingOnly.withValue(true) { _ = try build(text, seed: 0) }
    }

    /// Set by ``validate(_:)`` and ``architecture(_:)``: the built model is never run.
    @TaskLocal static var checkingOnly = false

    public static func build(_ text: String, seed: UInt64) throws -> any DifferentiableModel {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let kind = parts.first?.lowercased() else { throw ModelError("empty model spec") }
        if kind == "external" {     // the rest is a shell command: commas and '=' are the command's
            do { return try ExternalModel(command: parts.count > 1 ? parts[1] : "") } catch let e as OracleError { throw ModelError(e.description) }
        }
        let (afterSubset, subset) = try extractField("subset", from: parts.count > 1 ? parts[1] : "", spec: text,
                                                       needs: "tensor names or globs (separated by '|', e.g. subset=blk.29.*)")
        if let subset {
            let m = try build(afterSubset.isEmpty ? kind : "\(parts[0]):\(afterSubset)", seed: seed)
            do { return try restrict(m, to: subset, seed: seed, round: { $0 }) }
            catch let e as ModelError { throw ModelError("subset=\(subset) in model spec '\(text)': \(e.description)") }
        }
        let (afterTraining, training) = try TrainingSpec.extract(from: parts.count > 1 ? parts[1] : "", spec: text)
        let (rest, paramsFile) = try extractField("params", from: afterTraining, spec: text, needs: "a .npy file")
        var m = try buildUntrained(kind: kind, rest: rest, text: text, seed: seed)
        if let paramsFile {
            func given<M: DifferentiableModel>(_ m: M) throws -> any DifferentiableModel { try GivenParameters(base: m, path: paramsFile) }
            m = try given(m)
        }
        guard let training, training.steps > 0, !checkingOnly else { return m }
        // Files named in the spec could change between builds: only built-in data and
        // seeded parameters share runs. Keyed by the spec and the build seed (the data a
        // model trains on is drawn from it).
        // (By field name: `context=` is not a `text=` field.)
        let fieldNames = Set(rest.split(separator: ",").map { String($0.split(separator: "=", maxSplits: 1).first ?? "") })
        let key = !fieldNames.isDisjoint(with: ["data", "x", "y", "tokens", "text"]) || paramsFile != nil || ["gguf", "safetensors"].contains(kind)
            ? nil : rest.isEmpty ? kind : "\(kind):\(rest)"
        func trained<M: DifferentiableModel>(_ m: M) -> any DifferentiableModel {
            TrainedModel(base: m, training: training, key: key, buildSeed: seed)
        }
        return trained(m)
    }

    /// Removes the field `key=VALUE` from a spec body's fields (`params=FILE`,
    /// `subset=PATTERN`); returns the rest and the value. Twice, or an empty value (which
    /// `needs` describes), is an error.
    static func extractField(_ key: String, from body: String, spec: String, needs: String) throws -> (rest: String, value: String?) {
        var kept: [Substring] = [], value: String? = nil
        for field in body.split(separator: ",", omittingEmptySubsequences: false) {
            guard field.hasPrefix(key + "=") else { kept.append(field); continue }
            guard value == nil else { throw ModelError("'\(key)' appears twice in model spec '\(spec)'") }
            let v = String(field.dropFirst(key.count + 1))
            guard !v.isEmpty else { throw ModelError("\(key)= needs \(needs) in model spec '\(spec)'") }
            value = v
        }
        return (kept.joined(separator: ","), value)
    }

    static func buildUntrained(kind: String, rest: String, text: String, seed: UInt64) throws -> any DifferentiableModel {
        switch kind {
        case "quadratic":
            do { return try QuadraticModel(operator: OperatorSpec.parse(rest), seed: seed) }
            catch let e as OperatorSpecError { throw ModelError("quadratic: \(e.message)") }
        case "softmax", "mlp":
            let allowed: Set<String> = kind == "mlp" ? ["widths", "act", "samples", "data", "x", "y", "loss"] : ["d", "classes", "samples", "act", "data", "x", "y", "loss"]
            let spec = try SpecFields(fieldsOf(rest), kind: kind, text: text, allowed: allowed)
            let fields = spec.values
            func int(_ k: String, _ d: Int?) throws -> Int { try spec.int(k, d, max: 10_000_000) }
            let widths: [Int]
            if kind == "mlp" {
                guard let w = fields["widths"] else { throw ModelError("model 'mlp' needs widths=D-H-…-K") }
                let ws = w.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
                guard ws.count >= 2, ws.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 10_000_000 }) else {
                    throw ModelError("widths='\(w)' must be integers in 1...10000000 joined by single '-'")
                }
                widths = ws.map { $0! }
            } else {
                widths = [try int("d", nil), try int("classes", nil)]
            }
            guard widths.last! >= 2 else { throw ModelError("a classifier needs at least 2 classes") }
            let act = try fields["act"].map { a -> Activation in
                guard let x = Activation(rawValue: a) else { throw ModelError("unknown activation '\(a)' (known: tanh, gelu, relu)") }
                return x
            } ?? .tanh
            // Parameters: Σ (w_l + 1)·w_{l+1}, in Double so that no product overflows; checked
            // before any data is drawn (the teacher of built-in data is as wide as the model).
            let params = zip(widths, widths.dropFirst()).reduce(0.0) { $0 + Double($1.0 + 1) * Double($1.1) }
            try MemoryBudget.check(8 * 4 * params, "the parameters of model '\(text)' (\(params < 9e18 ? "\(Int(params))" : "\(params)") of them)")
            let data: Dataset
            if let csv = fields["data"] {
                data = try DataFiles.load(csv: csv, classes: widths.last!)
            } else if let x = fields["x"] {
                guard let y = fields["y"] else { throw ModelError("model '\(kind)': x= needs y= (labels .npy)") }
                data = try DataFiles.load(x: x, y: y, classes: widths.last!)
            } else {
                let samples = try int("samples", 64)
                // Inputs, the teacher's two layers (d×2d, 2d×k) and its outputs (n×2d, n×k).
                let (n, d, k) = (Double(samples), Double(widths[0]), Double(widths.last!))
                try MemoryBudget.check(8 * (n * d + 2 * d * d + 2 * d * k + 2 * n * d + n * k),
                                       "the data of model '\(text)' (\(samples) samples of \(widths[0]) features, \(widths.last!) classes)")
                data = checkingOnly
                    ? try Dataset(x: Matrix(rows: samples, cols: widths[0], storage: [Double](repeating: 0, count: samples * widths[0])),
                                  labels: [Int](repeating: 0, count: samples), classes: widths.last!, source: "placeholder: the spec is only checked")
                    : try Dataset.teacherStudent(samples: samples, features: widths[0], classes: widths.last!, seed: seed)
            }
            let loss = try fields["loss"].map { l -> OutputLoss in
                guard let x = OutputLoss(rawValue: l) else { throw ModelError("unknown loss '\(l)' (known: ce, mse)") }
                return x
            } ?? .crossEntropy
            return try MLP(widths: widths, activation: act, data: data, loss: loss)
        case "transformer":
            var c = TransformerLM.Config()
            var seen: Set<String> = []
            for kv in fieldsOf(rest) {
                guard !kv.isEmpty else { throw ModelError("empty field (a doubled or trailing comma) in model spec '\(text)'") }
                let p = kv.split(separator: "=", maxSplits: 1).map(String.init)
                guard p.count == 2, let v = Int(p[1]), v >= 1, v <= 100_000 else {
                    throw ModelError("malformed field '\(kv)' in model spec '\(text)' (expected key=positive integer)")
                }
                guard seen.insert(p[0]).inserted else { throw ModelError("'\(p[0])' appears twice in model spec '\(text)'") }
                switch p[0] {
                case "context": c.context = v
                case "width": c.width = v
                case "heads": c.heads = v
                case "layers": c.layers = v
                case "ff": c.ff = v
                case "sequences": c.sequences = v
                default: throw ModelError("unknown field '\(p[0])' for model 'transformer' (allowed: context, ff, heads, layers, sequences, width)")
                }
            }
            // Parameters ≈ layers·(4·width² + 2·width·ff) + (vocab + context)·width, in Double.
            let w = Double(c.width), params = Double(c.layers) * (4 * w * w + 2 * w * Double(c.ff)) + (100 + Double(c.context)) * w
            try MemoryBudget.check(8 * 4 * params, "the parameters of model '\(text)' (about \(params) of them)")
            return try TransformerLM(config: c, seed: seed)
        case "llama", "gguf", "safetensors":
            return try llama(kind: kind, rest: rest, text: text, seed: seed)
        case "expsum":
            let p = rest.split(separator: "=", maxSplits: 1).map(String.init)
            guard p.count == 2, p[0] == "n", let n = Int(p[1]), n >= 1, n <= 10_000_000, !p[1].contains(",") else {
                throw ModelError("model 'expsum' needs n=N with N a positive integer (got '\(rest)')")
            }
            return ExpSumModel(n: n, seed: seed)
        default:
            throw ModelError("unknown model '\(kind)' (known: quadratic, softmax, mlp, transformer, expsum, llama, gguf, safetensors, external)")
        }
    }
}

extension ModelSpec {
    /// The comma-separated fields of a spec's body, empty ones kept (so that a doubled
    /// or trailing comma is an error, not ignored); none for an empty body.
    static func fieldsOf(_ body: String) -> [Substring] {
        body.isEmpty ? [] : body.split(separator: ",", omittingEmptySubsequences: false)
    }

    /// `llama:…`, `gguf:PATH,…`, `safetensors:DIR,…`.
    static func llama(kind: String, rest: String, text: String, seed: UInt64) throws -> LlamaLM {
        var items = fieldsOf(rest).map(String.init)
        var path: String? = nil
        if kind != "llama" {
            guard let first = items.first, !first.isEmpty, !first.contains("=") else {
                throw ModelError("model '\(kind)' needs a path first: \(kind):PATH[,context=T,sequences=N,tokens=FILE.npy]")
            }
            path = first
            items.removeFirst()
        }
        let allowed: Set<String> = kind == "llama"
            ? ["vocab", "width", "layers", "heads", "kv_heads", "ff", "context", "sequences", "rope_base", "tied", "rope"]
            : ["context", "sequences", "tokens", "text"]
        let spec = try SpecFields(items, kind: kind, text: text, allowed: allowed, emptyValues: false)
        let fields = spec.values
        func int(_ k: String, _ d: Int?) throws -> Int { try spec.int(k, d, max: 1_000_000) }
        let context = try int("context", 16), n = try int("sequences", 2)
        switch kind {
        case "gguf":
            return try LlamaCheckpoint.gguf(path: path!, tokens: fields["tokens"], text: fields["text"], sequences: n, context: context, seed: seed)
        case "safetensors":
            return try LlamaCheckpoint.huggingFace(directory: path!, tokens: fields["tokens"], text: fields["text"], sequences: n, context: context, seed: seed)
        default:
            let heads = try int("heads", nil)
            var base = 10000.0
            if let b = fields["rope_base"] {
                guard let v = Double(b), v > 0, v.isFinite else { throw ModelError("rope_base='\(b)' must be a positive number") }
                base = v
            }
            let tied: Bool
            switch fields["tied"] ?? "yes" { case "yes": tied = true; case "no": tied = false
            default: throw ModelError("tied='\(fields["tied"]!)' must be yes or no") }
            guard let layout = LlamaLM.RopeLayout(rawValue: fields["rope"] ?? "halves") else {
                throw ModelError("rope='\(fields["rope"]!)' must be halves or interleaved")
            }
            let config = LlamaLM.Config(vocab: try int("vocab", nil), width: try int("width", nil), layers: try int("layers", nil),
                                        heads: heads, kvHeads: try int("kv_heads", heads), ff: try int("ff", nil), ropeBase: base,
                                        tiedEmbeddings: tied, ropeLayout: layout)
            let (v, d, f) = (Double(config.vocab), Double(config.width), Double(config.ff))
            let params = v * d * (tied ? 1 : 2) + Double(config.layers) * (2 * d * d + 2 * d * Double(config.kvWidth) + 3 * d * f)
            try MemoryBudget.check(8 * 4 * params, "the parameters of model '\(text)' (about \(params) of them)")
            let (seqs, source, _) = try LlamaCheckpoint.sequences(tokens: nil, text: nil, tokenizer: nil, sequences: n, context: context,
                                                               vocab: config.vocab, seed: seed)
            return try LlamaLM(config: config, naming: .gguf, sequences: seqs, dataSource: source)
        }
    }
}

/// The `key=value` fields of a model spec: parsed, checked against the model's keys, and
/// read as positive integers (softmax, mlp and the Llama specs share it).
struct SpecFields {
    let kind: String
    let values: [String: String]

    init<S: Sequence>(_ items: S, kind: String, text: String, allowed: Set<String>, emptyValues: Bool = true) throws where S.Element: StringProtocol {
        var values: [String: String] = [:]
        for item in items {
            let kv = String(item)
            guard !kv.isEmpty else { throw ModelError("empty field (a doubled or trailing comma) in model spec '\(text)'") }
            let p = kv.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard p.count == 2, !p[0].isEmpty, emptyValues || !p[1].isEmpty else { throw ModelError("malformed field '\(kv)' in model spec '\(text)'") }
            guard values[p[0]] == nil else { throw ModelError("'\(p[0])' appears twice in model spec '\(text)'") }
            values[p[0]] = p[1]
        }
        if let bad = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ModelError("unknown field '\(bad)' for model '\(kind)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        self.kind = kind; self.values = values
    }

    /// The field as an integer in 1...max, or `default` when absent (an error when nil).
    func int(_ key: String, _ default: Int?, max: Int) throws -> Int {
        guard let s = values[key] else { if let d = `default` { return d }; throw ModelError("model '\(kind)' needs \(key)=") }
        guard let v = Int(s), v >= 1, v <= max else { throw ModelError("\(key)='\(s)' must be a positive integer") }
        return v
    }
}

extension ModelSpec {
    /// The files a model spec reads (data, labels, checkpoints, text, tokens), in the
    /// order written: what a sweep's journal must pin so that `--resume` never
    /// assembles one table from two versions of an input. A Hugging Face folder counts
    /// as its `config.json` and `model.safetensors`; a GGUF checkpoint without `text=`
    /// or `tokens=` reads ``LlamaCheckpoint/defaultText``.
    public static func inputFiles(_ text: String) -> [String] {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let kind = parts.first?.lowercased(), parts.count == 2 else { return [] }
        if kind == "external" {     // the command's words that name files (its script, its weights)
            return parts[1].split(whereSeparator: \.isWhitespace).map(String.init).filter {
                var isDir: ObjCBool = false
                return $0.contains("/") || $0.contains(".") ? FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && !isDir.boolValue : false
            }
        }
        let items = parts[1].split(separator: ",").map(String.init)
        var files: [String] = []
        var named: [String: String] = [:]
        for item in items {
            let p = item.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { named[p[0]] = p[1] }
        }
        switch kind {
        case "gguf":
            if let path = items.first, !path.contains("=") { files.append(path) }
            if named["tokens"] == nil && named["text"] == nil { files.append(LlamaCheckpoint.defaultText) }
        case "safetensors":
            if let dir = items.first, !dir.contains("=") {
                let d = dir.hasSuffix("/") ? dir : dir + "/"
                files += [d + "config.json", d + "model.safetensors"]
            }
        default: break
        }
        for key in ["data", "x", "y", "tokens", "text", "params"] { if let f = named[key] { files.append(f) } }
        return files
    }
}
