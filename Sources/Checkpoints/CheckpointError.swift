import Foundation

/// A checkpoint file that cannot be read: one line naming the file and the problem.
///
/// Every reader in this module reports malformed input (a wrong magic, a truncated
/// file, an offset outside it, an unknown tensor type, a header larger than the limits
/// of ``CheckpointLimits``) with this error and never traps or allocates without bound.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    public var path: String
    public var message: String
    public init(_ path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// Bounds on what a header may ask the reader to allocate. A GGUF header declares its
/// counts and lengths before the data; each is checked against these limits and against
/// the bytes left in the file before anything is allocated.
public struct CheckpointLimits: Sendable {
    /// Tensors in one file (SmolLM2-135M has 272, Llama-3-70B ~720).
    public var maxTensors = 1 << 20
    /// Metadata entries.
    public var maxMetadata = 1 << 20
    /// Bytes of a safetensors JSON header (the format's own reference limit is 100 MB).
    public var maxHeaderBytes = 100_000_000
    /// Dimensions of a tensor (GGML_MAX_DIMS is 4; safetensors has no limit, 8 is ample).
    public var maxDimensions = 8
    /// Nesting of GGUF metadata arrays.
    public var maxArrayDepth = 4
    public init() {}
    public static let `default` = CheckpointLimits()
}

/// A checkpoint file's bytes, memory-mapped (not read): the one place the readers open a file.
enum CheckpointFile {
    static func map(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw CheckpointError(path, "cannot read: \((error as NSError).localizedDescription)")
        }
    }
}
