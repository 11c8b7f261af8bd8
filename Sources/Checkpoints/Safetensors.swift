import Foundation

/// A JSON value as a checkpoint's header or `config.json` holds it (integers kept exact).
public enum JSONValue: Sendable, Equatable, Decodable {
    case null, bool(Bool), int(Int64), double(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public var int: Int? { if case .int(let i) = self { Int(exactly: i) } else { nil } }
    public var double: Double? {
        switch self { case .int(let i): Double(i); case .double(let d): d; default: nil }
    }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var object: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    public subscript(key: String) -> JSONValue? { object?[key] }
}

/// One tensor of a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: String
    /// Row-major shape (PyTorch's).
    public var shape: [Int]
    /// Byte range within the data section (after the header).
    public var begin: Int
    public var end: Int
    public var count: Int { shape.reduce(1, *) }
}

/// A safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`),
/// then the data, each tensor row-major and little-endian.
///
/// Opening checks the header length against ``CheckpointLimits/maxHeaderBytes`` and the
/// file, every dtype, shape (no overflow) and byte range (inside the data, the size the
/// dtype and shape require, no two tensors overlapping). Values are read for the
/// floating dtypes F64, F32, F16 and BF16, widened exactly into Double.
public struct SafetensorsFile: @unchecked Sendable {
    public let path: String
    public let tensors: [SafetensorsTensorInfo]
    public let metadata: [String: String]
    let data: Data
    let dataOffset: Int

    /// Bytes per element of every dtype the format defines.
    public static let dtypeBytes: [String: Int] = ["BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                                                   "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8]
    public static let floatingDtypes = ["F64", "F32", "F16", "BF16"]

    public init(path: String, limits: CheckpointLimits = .default) throws {
        try self.init(data: CheckpointFile.map(path), path: path, limits: limits)
    }

    public init(data: Data, path: String, limits: CheckpointLimits = .default) throws {
        self.path = path
        self.data = data
        func fail(_ m: String) -> CheckpointError { CheckpointError(path, m) }
        guard data.count >= 8 else { throw fail("not a safetensors file: \(data.count) bytes, shorter than the 8-byte header length") }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(limits.maxHeaderBytes) else {
            throw fail("not a safetensors file: header length \(n) exceeds the limit \(limits.maxHeaderBytes)")
        }
        guard n <= UInt64(data.count - 8) else {
            throw fail("truncated: header length \(n) but only \(data.count - 8) bytes follow")
        }
        let header = data.subdata(in: 8..<(8 + Int(n)))
        guard header.first == UInt8(ascii: "{") else { throw fail("not a safetensors file: the header does not start with '{'") }
        let json: [String: JSONValue]
        do { json = try JSONDecoder().decode([String: JSONValue].self, from: header) } catch {
            throw fail("malformed safetensors header (not a JSON object): \(error)")
        }
        dataOffset = 8 + Int(n)
        let dataBytes = data.count - dataOffset
        var meta: [String: String] = [:]
        var infos: [SafetensorsTensorInfo] = []
        for (name, v) in json.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let o = v.object else { throw fail("__metadata__ is not an object") }
                for (k, s) in o {
                    guard let s = s.string else { throw fail("__metadata__ '\(k)' is not a string") }
                    meta[k] = s
                }
                continue
            }
            guard let o = v.object, let dtype = o["dtype"]?.string, let shapeValues = o["shape"]?.array,
                  let offsets = o["data_offsets"]?.array, offsets.count == 2 else {
                throw fail("tensor '\(name)' lacks dtype, shape or data_offsets [begin, end]")
            }
            guard let size = Self.dtypeBytes[dtype] else { throw fail("tensor '\(name)' has unknown dtype '\(dtype)'") }
            guard shapeValues.count <= limits.maxDimensions else { throw fail("tensor '\(name)' has \(shapeValues.count) dimensions") }
            var shape: [Int] = []
            var count = 1
            for s in shapeValues {
                guard let d = s.int, d >= 0 else { throw fail("tensor '\(name)' has a shape entry that is not a non-negative integer") }
                let (c, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, c <= 1 << 40 else { throw fail("tensor '\(name)' has too many elements") }
                shape.append(d); count = c
            }
            guard let b = offsets[0].int, let e = offsets[1].int, b >= 0, b <= e else {
                throw fail("tensor '\(name)' has data_offsets that are not 0 ≤ begin ≤ end")
            }
            guard e <= dataBytes else {
                throw fail("tensor '\(name)' ends at byte \(e) of the data, beyond its \(dataBytes) bytes: truncated?")
            }
            guard e - b == count * size else {
                throw fail("tensor '\(name)' spans \(e - b) bytes, but \(dtype) \(shape) needs \(count * size)")
            }
            infos.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, begin: b, end: e))
        }
        let byStart = infos.filter { $0.end > $0.begin }.sorted { $0.begin < $1.begin }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.begin < a.end {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        tensors = infos.sorted { $0.begin < $1.begin || ($0.begin == $1.begin && $0.name < $1.name) }
        metadata = meta
    }

    public func tensor(named name: String) -> SafetensorsTensorInfo? { tensors.first { $0.name == name } }

    /// The tensor's values, widened exactly into Double (floating dtypes only).
    public func values(of t: SafetensorsTensorInfo) throws -> [Double] {
        guard Self.floatingDtypes.contains(t.dtype) else {
            throw CheckpointError(path, "tensor '\(t.name)' has dtype \(t.dtype); values are read for \(Self.floatingDtypes.joined(separator: ", "))")
        }
        let n = t.count
        return data.withUnsafeBytes { raw in
            let o = dataOffset + t.begin
            return [Double](unsafeUninitializedCapacity: n) { out, c in
                switch t.dtype {
                case "F64": for i in 0..<n { out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o + 8 * i, as: UInt64.self))) }
                case "F32": for i in 0..<n { out[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 4 * i, as: UInt32.self)))) }
                case "F16": for i in 0..<n { out[i] = Double(HalfPrecision.binary16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o + 2 * i, as: UInt16.self)))) }
                default: for i in 0..<n { out[i] = Double(HalfPrecision.bfloat16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o + 2 * i, as: UInt16.self)))) }
                }
                c = n
            }
        }
    }
}

/// A Hugging Face checkpoint folder: its safetensors file and the companion
/// `config.json` (architecture, sizes, norms' ε, RoPE θ).
public struct HuggingFaceCheckpoint: Sendable {
    public let directory: String
    public let weights: SafetensorsFile
    /// `config.json`, when the folder has one.
    public let config: [String: JSONValue]?

    public init(directory: String, limits: CheckpointLimits = .default) throws {
        self.directory = directory
        let fm = FileManager.default
        let url = URL(fileURLWithPath: directory)
        let files = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        let candidates = files.filter { $0.hasSuffix(".safetensors") }.sorted()
        let name = candidates.contains("model.safetensors") ? "model.safetensors" : candidates.first
        guard let name else { throw CheckpointError(directory, "no .safetensors file in this folder") }
        guard candidates.count == 1 || name == "model.safetensors" else {
            throw CheckpointError(directory, "several .safetensors files and no model.safetensors (sharded checkpoints are not supported yet)")
        }
        weights = try SafetensorsFile(path: url.appendingPathComponent(name).path, limits: limits)
        let configPath = url.appendingPathComponent("config.json").path
        if fm.fileExists(atPath: configPath) {
            guard let d = fm.contents(atPath: configPath), d.count <= limits.maxHeaderBytes else {
                throw CheckpointError(configPath, "cannot read (or larger than \(limits.maxHeaderBytes) bytes)")
            }
            do { config = try JSONDecoder().decode([String: JSONValue].self, from: d) } catch {
                throw CheckpointError(configPath, "malformed config.json (not a JSON object): \(error)")
            }
        } else {
            config = nil
        }
    }
}
