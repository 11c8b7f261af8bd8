import Checkpoints
import Foundation

/// `hessian-harness checkpoint PATH [--tensor NAME --out FILE.npy] [--metadata]`: what a
/// GGUF file, a safetensors file or a Hugging Face folder (safetensors + config.json)
/// holds, and one tensor's values as fp64 NPY (GGUF types dequantized as GGML does).
public enum CheckpointCommand {
    /// A checkpoint of either format, opened and checked.
    public enum Opened {
        case gguf(GGUFFile)
        case huggingFace(HuggingFaceCheckpoint)
        case safetensors(SafetensorsFile)

        public init(path: String) throws {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw HarnessError("checkpoint '\(path)' does not exist")
            }
            do {
                if isDir.boolValue {
                    self = .huggingFace(try HuggingFaceCheckpoint(directory: path))
                } else if path.lowercased().hasSuffix(".safetensors") {
                    self = .safetensors(try SafetensorsFile(path: path))
                } else {
                    self = .gguf(try GGUFFile(path: path))     // the magic decides; a wrong one is named
                }
            } catch let e as CheckpointError {
                throw HarnessError(e.description)
            }
        }

        /// (name, type, row-major shape, element count) of every tensor, in file order.
        public var tensors: [(name: String, type: String, shape: [Int], count: Int)] {
            switch self {
            case .gguf(let f): return f.tensors.map { ($0.name, $0.type.description, $0.shape, $0.count) }
            case .huggingFace(let c): return c.weights.tensors.map { ($0.name, $0.dtype, $0.shape, $0.count) }
            case .safetensors(let f): return f.tensors.map { ($0.name, $0.dtype, $0.shape, $0.count) }
            }
        }

        /// The tensor's values in fp64 with its row-major shape.
        public func values(of name: String) throws -> (values: [Double], shape: [Int]) {
            func missing() -> HarnessError {
                let near = tensors.map(\.name).filter { $0.contains(name) || name.contains($0) }.prefix(3)
                return HarnessError("no tensor '\(name)' in the checkpoint" + (near.isEmpty ? "" : " (similar: \(near.joined(separator: ", ")))"))
            }
            do {
                switch self {
                case .gguf(let f):
                    guard let t = f.tensor(named: name) else { throw missing() }
                    return (f.values(of: t), t.shape)
                case .huggingFace(let c):
                    guard let t = c.weights.tensor(named: name) else { throw missing() }
                    return (try c.weights.values(of: t), t.shape)
                case .safetensors(let f):
                    guard let t = f.tensor(named: name) else { throw missing() }
                    return (try f.values(of: t), t.shape)
                }
            } catch let e as CheckpointError { throw HarnessError(e.description) }
        }

        /// Header lines: format, architecture, sizes.
        public func describe(allMetadata: Bool) -> [String] {
            let ts = tensors
            let total = ts.reduce(0) { $0 + $1.count }
            var byType: [String: Int] = [:]
            for t in ts { byType[t.type, default: 0] += 1 }
            let types = byType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            var lines: [String] = []
            switch self {
            case .gguf(let f):
                lines.append("format: GGUF v\(f.version) (alignment \(f.alignment), \(f.metadata.count) metadata entries)")
                if let a = f.value("general.architecture")?.string { lines.append("architecture: \(a)") }
                if let n = f.value("general.name")?.string { lines.append("name: \(n)") }
                for (k, v) in f.metadata where allMetadata || (!k.hasPrefix("tokenizer.") && !k.hasPrefix("general.")) {
                    lines.append("  \(k) = \(v.summary)")
                }
                if !allMetadata { lines.append("  (--metadata lists the general.* and tokenizer.* entries too)") }
            case .huggingFace(let c):
                lines.append("format: safetensors (\(c.weights.path)), config.json: \(c.config == nil ? "absent" : "present")")
                if let a = c.config?["architectures"]?.array?.first?.string { lines.append("architecture: \(a)") }
                if allMetadata, let cfg = c.config {
                    for (k, v) in cfg.sorted(by: { $0.key < $1.key }) { lines.append("  \(k) = \(v)") }
                }
                for (k, v) in c.weights.metadata.sorted(by: { $0.key < $1.key }) { lines.append("  __metadata__.\(k) = \(v)") }
            case .safetensors(let f):
                lines.append("format: safetensors")
                for (k, v) in f.metadata.sorted(by: { $0.key < $1.key }) { lines.append("  __metadata__.\(k) = \(v)") }
            }
            lines.append("tensors: \(ts.count) (\(types)), \(total) values")
            return lines
        }
    }

    /// The listing, or (with `tensor`) writes its values to `out` (.npy, fp64, atomic)
    /// and returns the one-line summary.
    public static func run(path: String, tensor: String?, out: String?, allMetadata: Bool) throws -> String {
        if out != nil && tensor == nil { throw HarnessError("--out needs --tensor NAME") }
        let ck = try Opened(path: path)
        if let name = tensor {
            let (v, shape) = try ck.values(of: name)
            guard let out else {
                let finite = v.filter(\.isFinite)
                let norm = finite.reduce(0) { $0 + $1 * $1 }.squareRoot()
                return "\(name): shape \(shape), \(v.count) values, \(v.count - finite.count) non-finite, ‖x‖₂ \(norm), "
                    + "min \(finite.min() ?? .nan), max \(finite.max() ?? .nan) (--out FILE.npy writes them)"
            }
            guard out.hasSuffix(".npy") else { throw HarnessError("--out must name a .npy file, got '\(out)'") }
            try AtomicFile.write(NPY.float64(v, shape: shape), to: URL(fileURLWithPath: out))
            return "checkpoint: \(name) \(shape) → \(out)"
        }
        var lines = ck.describe(allMetadata: allMetadata)
        for t in ck.tensors { lines.append("\(t.name)\t\(t.type)\t\(t.shape)") }
        return lines.joined(separator: "\n")
    }
}
