import Foundation
import Testing
import RealModule
@testable import Models
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
