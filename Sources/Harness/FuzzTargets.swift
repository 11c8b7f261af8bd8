import LinearAlgebra
import Foundation
import Krylov
import Models
import Checkpoints

/// The parsers the fuzzing harness drives (`fuzz/`, libFuzzer), one input at a time.
///
/// Each target feeds arbitrary bytes to one parser and discards its result or error:
/// an error is the parser doing its job, only a crash, a hang or an unbounded
/// allocation is a finding. The same functions replay the committed corpus and
/// every regression input in the default tests (`FuzzCorpusTests`), so a fixed
/// finding stays fixed without libFuzzer. Inputs that would read files named inside
/// them (`data=`, `gguf:PATH`) or train a model are skipped:
/// the file readers have targets of their own, and training is slow, not unsafe.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case modelSpec = "model-spec", operatorSpec = "operator-spec", policy, experiment, npy, csv, gguf, safetensors

    /// The target named by `HH_FUZZ_TARGET`; the fuzzing process also caps the memory
    /// a spec may ask for (``MemoryBudget``, 256 MB) so that size refusals, not
    /// allocations, are what large inputs meet.
    public static let current: FuzzTarget = {
        setenv("HH_MAX_MEMORY", "256M", 0)
        let name = ProcessInfo.processInfo.environment["HH_FUZZ_TARGET"] ?? ""
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("HH_FUZZ_TARGET must be one of: \(allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return t
    }()

    static let fileKeys = ["data=", "x=", "y=", "tokens=", "text=", "params=", "train="]

    public func run(_ data: Data) {
        switch self {
        case .modelSpec:
            let s = String(decoding: data.prefix(256), as: UTF8.self)
            let lower = s.lowercased()
            guard !Self.fileKeys.contains(where: lower.contains), !lower.hasPrefix("gguf"), !lower.hasPrefix("safetensors") else { return }
            _ = try? ModelSpec.build(s, seed: 0)
        case .operatorSpec:
            _ = try? OperatorSpec.parse(String(decoding: data.prefix(256), as: UTF8.self))
        case .policy:
            guard let p = try? PrecisionPolicy(String(decoding: data.prefix(256), as: UTF8.self)) else { return }
            _ = try? p.accumulation()
            _ = p.krylovAccumulation()
            for stage in [p.param, p.grad, p.hvp] { _ = try? p.arithmetic(stage) }
        case .experiment:
            let text = String(decoding: data, as: UTF8.self).lowercased()
            guard data.count <= 4096, !Self.fileKeys.contains(where: text.contains),
                  !text.contains("gguf"), !text.contains("safetensors") else { return }
            _ = try? ExperimentLoader.load(data: data, path: "fuzz.yaml", quick: data.first.map { $0 & 1 == 1 } ?? false)
        case .npy:
            _ = try? DataFiles.readNPY(data: data, path: "fuzz.npy")
        case .csv:
            _ = try? DataFiles.load(csvData: data, path: "fuzz.csv", classes: nil)
        case .gguf:
            guard let f = try? GGUFFile(data: data, path: "fuzz.gguf") else { return }
            for t in f.tensors { _ = f.values(of: t) }
            if f.value("tokenizer.ggml.model") != nil, let bpe = try? ByteLevelBPE(gguf: f) { _ = try? bpe.encode("Hello, world") }
        case .safetensors:
            guard let f = try? SafetensorsFile(data: data, path: "fuzz.safetensors") else { return }
            for t in f.tensors { _ = try? f.values(of: t) }
        }
    }
}
