import Checkpoints
import Foundation
import Scalars

/// Builds a ``LlamaLM`` from a checkpoint: its architecture from the file's metadata
/// (GGUF `llama.*` keys, or a Hugging Face `config.json`), its parameters from the
/// file's tensors, as stored (GGUF dequantized exactly, see ``GGMLType``), under the
/// file's own tensor names and RoPE convention.
public enum LlamaCheckpoint {
    /// The text a checkpoint model reads by default: the Apache 2.0 licence that Debian's
    /// base-files installs (real text that no one in this project wrote, offline).
    public static let defaultText = "/usr/share/common-licenses/Apache-2.0"

    /// Token sequences for a checkpoint model, in this order of preference: `tokens` (an
    /// integer .npy of shape [sequences, context + 1]); `text` tokenized by the checkpoint's
    /// tokenizer, cut into `sequences` consecutive chunks of context + 1 tokens; without
    /// either, ``defaultText`` when the checkpoint has a tokenizer; seeded uniform token ids
    /// only for a checkpoint without one (and the seeded `llama:` models).
    static func sequences(tokens: String?, text: String?, tokenizer: ByteLevelBPE?, sequences n: Int, context: Int,
                          vocab: Int, seed: UInt64) throws -> (sequences: [[Int]], source: String, userData: Bool) {
        if let path = tokens {
            let (values, shape) = try DataFiles.readNPY(path)
            guard shape.count == 2, shape[0] >= 1, shape[1] >= 2 else {
                throw ModelError("tokens '\(path)' must be a 2-D array [sequences, context + 1], got shape \(shape)")
            }
            guard values.allSatisfy({ $0 == $0.rounded() && $0 >= 0 && $0 < Double(vocab) }) else {
                throw ModelError("tokens '\(path)' holds a value that is not a token id in 0..<\(vocab)")
            }
            return ((0..<shape[0]).map { r in (0..<shape[1]).map { Int(values[r * shape[1] + $0]) } }, "tokens file \(path)", true)
        }
        if let tokenizer {
            let path = text ?? defaultText
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ModelError("cannot read text '\(path)'" + (text == nil ? " (the default text; give text=FILE or tokens=FILE.npy)" : ""))
            }
            guard let string = String(data: data, encoding: .utf8) else { throw ModelError("text '\(path)' is not UTF-8") }
            let ids: [Int]
            do { ids = try tokenizer.encode(string) } catch { throw ModelError("text '\(path)': \(error)") }
            let need = n * (context + 1)
            guard ids.count >= need else {
                throw ModelError("text '\(path)' has \(ids.count) tokens; \(n) sequences of context \(context) need \(need)")
            }
            return ((0..<n).map { Array(ids[($0 * (context + 1))..<(($0 + 1) * (context + 1))]) },
                    "text \(path) (\(ids.count) tokens, the first \(need) used)", text != nil)
        }
        if text != nil { throw ModelError("text= needs a checkpoint with a tokenizer; give tokens=FILE.npy") }
        var g = SplitMix64(seed: seed)
        return ((0..<n).map { _ in (0...context).map { _ in Int(g.next() % UInt64(vocab)) } }, "seeded uniform token ids", false)
    }

    /// `gguf:PATH` with a Llama-architecture file.
    public static func gguf(path: String, tokens: String?, text: String?, sequences n: Int, context: Int, seed: UInt64) throws -> LlamaLM {
        let f: GGUFFile
        do { f = try GGUFFile(path: path) } catch let e as CheckpointError { throw ModelError(e.description) }
        guard let arch = f.value("general.architecture")?.string else { throw ModelError("\(path): no general.architecture") }
        guard arch == "llama" else { throw ModelError("\(path): architecture '\(arch)' is not supported (llama is)") }
        func int(_ key: String) throws -> Int {
            guard let v = f.value("llama." + key)?.int else { throw ModelError("\(path): metadata llama.\(key) missing or not an integer") }
            return v
        }
        func double(_ key: String, _ d: Double) -> Double { f.value("llama." + key)?.double ?? d }
        guard let embed = f.tensor(named: "token_embd.weight") else { throw ModelError("\(path): no token_embd.weight") }
        let width = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab = f.value("llama.vocab_size")?.int ?? embed.shape[0]
        let config = LlamaLM.Config(vocab: vocab, width: width, layers: try int("block_count"), heads: heads,
                                    kvHeads: f.value("llama.attention.head_count_kv")?.int ?? heads, ff: try int("feed_forward_length"),
                                    ropeBase: double("rope.freq_base", 10000),
                                    ropeDimension: f.value("llama.rope.dimension_count")?.int ?? width / max(heads, 1),
                                    rmsEpsilon: double("attention.layer_norm_rms_epsilon", 1e-5),
                                    tiedEmbeddings: f.tensor(named: "output.weight") == nil, ropeLayout: .interleaved)
        let tokenizer: ByteLevelBPE?
        do { tokenizer = f.value("tokenizer.ggml.model") == nil ? nil : try ByteLevelBPE(gguf: f) } catch { throw ModelError("\(error)") }
        let (seqs, source, user) = try sequences(tokens: tokens, text: text, tokenizer: tokenizer, sequences: n, context: context, vocab: vocab, seed: seed)
        let shell = try LlamaLM(config: config, naming: .gguf, sequences: seqs)
        var theta = [Double]()
        theta.reserveCapacity(shell.layout.count)
        for t in shell.layout.tensors {
            guard let info = f.tensor(named: t.name) else { throw ModelError("\(path): tensor \(t.name) missing") }
            guard info.shape == t.shape else { throw ModelError("\(path): tensor \(t.name) has shape \(info.shape), the architecture needs \(t.shape)") }
            theta += f.values(of: info)
        }
        return try LlamaLM(config: config, naming: .gguf, sequences: seqs, parameters: theta, dataSource: source, userData: user)
    }

    /// `safetensors:DIR` with a Hugging Face `LlamaForCausalLM` folder.
    public static func huggingFace(directory: String, tokens: String?, text: String?, sequences n: Int, context: Int, seed: UInt64) throws -> LlamaLM {
        let ck: HuggingFaceCheckpoint
        do { ck = try HuggingFaceCheckpoint(directory: directory) } catch let e as CheckpointError { throw ModelError(e.description) }
        guard let cfg = ck.config else { throw ModelError("\(directory): no config.json") }
        let arch = cfg["architectures"]?.array?.first?.string ?? cfg["model_type"]?.string ?? "?"
        guard arch == "LlamaForCausalLM" || arch == "llama" else { throw ModelError("\(directory): architecture '\(arch)' is not supported (LlamaForCausalLM is)") }
        func int(_ key: String) throws -> Int {
            guard let v = cfg[key]?.int else { throw ModelError("\(directory)/config.json: \(key) missing or not an integer") }
            return v
        }
        let width = try int("hidden_size"), heads = try int("num_attention_heads")
        if let hd = cfg["head_dim"]?.int, hd != width / heads { throw ModelError("\(directory): head_dim \(hd) ≠ hidden_size / heads is not supported") }
        if let s = cfg["rope_scaling"], s != .null { throw ModelError("\(directory): rope_scaling is not supported") }
        // transformers ≥ 5 writes rope_parameters {rope_theta, rope_type}; earlier versions rope_theta.
        if let t = cfg["rope_parameters"]?["rope_type"]?.string, t != "default" {
            throw ModelError("\(directory): rope_type '\(t)' is not supported (default is)")
        }
        if let act = cfg["hidden_act"]?.string, act != "silu" { throw ModelError("\(directory): hidden_act '\(act)' is not supported (silu is)") }
        for key in ["attention_bias", "mlp_bias"] where cfg[key] == .bool(true) {
            throw ModelError("\(directory): \(key) true is not supported")
        }
        let ropeBase = cfg["rope_theta"]?.double ?? cfg["rope_parameters"]?["rope_theta"]?.double ?? 10000
        let config = LlamaLM.Config(vocab: try int("vocab_size"), width: width, layers: try int("num_hidden_layers"), heads: heads,
                                    kvHeads: cfg["num_key_value_heads"]?.int ?? heads, ff: try int("intermediate_size"),
                                    ropeBase: ropeBase, ropeDimension: width / heads,
                                    rmsEpsilon: cfg["rms_norm_eps"]?.double ?? 1e-6,
                                    tiedEmbeddings: cfg["tie_word_embeddings"] == .bool(true), ropeLayout: .halves)
        let (seqs, source, user) = try sequences(tokens: tokens, text: text, tokenizer: nil, sequences: n, context: context, vocab: config.vocab, seed: seed)
        let shell = try LlamaLM(config: config, naming: .huggingFace, sequences: seqs)
        var theta = [Double]()
        theta.reserveCapacity(shell.layout.count)
        for t in shell.layout.tensors {
            guard let info = ck.weights.tensor(named: t.name) else { throw ModelError("\(directory): tensor \(t.name) missing") }
            guard info.shape == t.shape else { throw ModelError("\(directory): tensor \(t.name) has shape \(info.shape), the architecture needs \(t.shape)") }
            do { theta += try ck.weights.values(of: info) } catch let e as CheckpointError { throw ModelError(e.description) }
        }
        return try LlamaLM(config: config, naming: .huggingFace, sequences: seqs, parameters: theta, dataSource: source, userData: user)
    }
}
