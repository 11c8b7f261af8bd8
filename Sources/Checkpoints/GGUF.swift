import Foundation

/// A GGUF metadata value (GGUF v3, `gguf_metadata_value_type`).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), array([GGUFValue]), uint64(UInt64), int64(Int64), float64(Double)

    /// The value as an integer, when it is one (any width) that fits `Int`.
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v); case .int8(let v): Int(v); case .uint16(let v): Int(v); case .int16(let v): Int(v)
        case .uint32(let v): Int(v); case .int32(let v): Int(v); case .uint64(let v): Int(exactly: v); case .int64(let v): Int(v)
        default: nil
        }
    }
    /// The value as a Double, when it is a number (integers exactly when |v| ≤ 2⁵³).
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v); case .float64(let v): v
        default: int.map(Double.init)
        }
    }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }

    /// A short rendering for listings: arrays show their length and first elements.
    public var summary: String {
        switch self {
        case .string(let s): return s.count > 60 ? "\"\(s.prefix(57))…\"" : "\"\(s)\""
        case .array(let a): return "[\(a.count)] " + a.prefix(3).map(\.summary).joined(separator: ", ") + (a.count > 3 ? ", …" : "")
        case .bool(let b): return "\(b)"
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        default: return int.map { "\($0)" } ?? "\(self)"
        }
    }
}

/// One tensor of a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// GGML's `ne`: dimension 0 varies fastest.
    public var ne: [Int]
    public var type: GGMLType
    /// Offset from the start of the data section.
    public var offset: Int
    /// Elements (product of `ne`).
    public var count: Int
    public var bytes: Int
    /// The row-major shape a framework reports (`ne` reversed): PyTorch's [out, in] for
    /// a linear layer's weight.
    public var shape: [Int] { ne.reversed() }
}

/// A GGUF (version 2 or 3) file: its metadata and tensor infos, read and checked when
/// opened; tensors dequantized on request (see ``GGMLType``).
///
/// Layout (ggml/docs/gguf.md): magic `GGUF`, version u32, tensor count u64, metadata
/// count u64; the metadata key/value pairs; the tensor infos (name, n_dims u32, ne u64 ×
/// n_dims, type u32, offset u64); then, aligned to `general.alignment` (default 32),
/// the data section, where each tensor's offset is a multiple of the alignment.
/// Opening checks everything a later read relies on: every count against
/// ``CheckpointLimits`` and the bytes left before allocating, every tensor's type,
/// element count (no overflow, whole blocks), alignment and extent inside the file.
/// The file is memory-mapped, not read.
public struct GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    let data: Data                     // immutable, memory-mapped

    public static let magic: UInt32 = 0x4655_4747   // "GGUF" little-endian

    public init(path: String, limits: CheckpointLimits = .default) throws {
        try self.init(data: CheckpointFile.map(path), path: path, limits: limits)
    }

    public init(data: Data, path: String, limits: CheckpointLimits = .default) throws {
        self.path = path
        self.data = data
        (version, metadata, tensors, alignment, dataOffset) = try data.withUnsafeBytes { raw in
            try GGUFFile.parse(raw, path: path, limits: limits)
        }
    }

    /// The metadata value of `key`, if present.
    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    public func tensor(named name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }

    /// The tensor's values, dequantized into binary32 (GGML's arithmetic) and widened
    /// exactly into Double, in GGML order (dimension 0 fastest, i.e. row-major in
    /// ``GGUFTensorInfo/shape``).
    public func values(of t: GGUFTensorInfo) -> [Double] {
        let f = floats(of: t)
        return f.map { Double($0) }
    }

    /// The tensor's values in binary32, as GGML dequantizes them.
    public func floats(of t: GGUFTensorInfo) -> [Float] {
        data.withUnsafeBytes { raw in
            let src = UnsafeRawBufferPointer(rebasing: raw[(dataOffset + t.offset)..<(dataOffset + t.offset + t.bytes)])
            return [Float](unsafeUninitializedCapacity: t.count) { out, n in
                t.type.dequantize(src, count: t.count, into: out)
                n = t.count
            }
        }
    }

    static func parse(_ raw: UnsafeRawBufferPointer, path: String, limits: CheckpointLimits) throws
        -> (UInt32, [(key: String, value: GGUFValue)], [GGUFTensorInfo], Int, Int) {
        var r = ByteReader(raw, path: path)
        guard raw.count >= 4 else { throw r.error("not a GGUF file: \(raw.count) bytes") }
        let magic = try r.integer(UInt32.self, "magic")
        guard magic == GGUFFile.magic else {
            let shown = (0..<4).map { i -> String in
                let c = raw[i]
                return (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : String(format: "\\x%02x", c)
            }.joined()
            throw r.error("not a GGUF file (magic \"\(shown)\", expected \"GGUF\")")
        }
        let version = try r.integer(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw r.error("GGUF version \(version) is not supported (2 and 3 are)") }
        let tensorCount = try r.count("tensor count", limit: limits.maxTensors)
        let kvCount = try r.count("metadata count", limit: limits.maxMetadata)
        // Each entry takes at least 12 bytes (an empty key's length and a type): a count
        // the file cannot hold is refused before anything is allocated.
        guard kvCount <= r.remaining / 12 else { throw r.error("metadata count \(kvCount) cannot fit the \(r.remaining) bytes left") }
        var metadata: [(key: String, value: GGUFValue)] = []
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try string(&r, "metadata key \(i)")
            let type = try r.integer(UInt32.self, "type of '\(key)'")
            metadata.append((key, try value(&r, type: type, key: key, depth: 0, limits: limits)))
        }
        var alignment = 32
        if let a = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let v) = a, v > 0, v & (v - 1) == 0 else {
                throw r.error("general.alignment must be a power of two (u32), got \(a.summary)")
            }
            alignment = Int(v)
        }
        guard tensorCount <= r.remaining / 24 else { throw r.error("tensor count \(tensorCount) cannot fit the \(r.remaining) bytes left") }
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var names = Set<String>()
        for i in 0..<tensorCount {
            let name = try string(&r, "name of tensor \(i)")
            guard names.insert(name).inserted else { throw r.error("tensor '\(name)' appears twice") }
            let nd = try r.integer(UInt32.self, "dimensions of '\(name)'")
            guard nd >= 1, nd <= limits.maxDimensions else { throw r.error("tensor '\(name)' has \(nd) dimensions (1–\(limits.maxDimensions) allowed)") }
            var ne: [Int] = []
            var count = 1
            for d in 0..<Int(nd) {
                let n = try r.integer(UInt64.self, "dimension \(d) of '\(name)'")
                guard n >= 1, n <= UInt64(Int32.max) else { throw r.error("tensor '\(name)' dimension \(d) is \(n)") }
                let (c, overflow) = count.multipliedReportingOverflow(by: Int(n))
                guard !overflow, c <= 1 << 40 else { throw r.error("tensor '\(name)' has too many elements") }
                ne.append(Int(n)); count = c
            }
            let rawType = try r.integer(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw r.error("tensor '\(name)' has GGML type \(GGMLType.name(of: rawType)), which this reader does not dequantize "
                              + "(supported: \(GGMLType.allCases.map(\.description).joined(separator: ", ")))")
            }
            guard ne[0] % type.blockSize == 0 else {
                throw r.error("tensor '\(name)' of type \(type) has \(ne[0]) elements per row, not a multiple of its block size \(type.blockSize)")
            }
            let offset = try r.integer(UInt64.self, "offset of '\(name)'")
            guard offset <= UInt64(raw.count) else { throw r.error("tensor '\(name)' starts at \(offset), beyond the file (\(raw.count) bytes)") }
            guard Int(offset) % alignment == 0 else { throw r.error("tensor '\(name)' offset \(offset) is not a multiple of the alignment \(alignment)") }
            infos.append(GGUFTensorInfo(name: name, ne: ne, type: type, offset: Int(offset), count: count,
                                        bytes: count / type.blockSize * type.blockBytes))
        }
        let dataOffset = (r.offset + alignment - 1) / alignment * alignment
        let dataBytes = raw.count - dataOffset
        for t in infos {
            guard dataBytes >= 0, t.offset <= dataBytes, t.bytes <= dataBytes - t.offset else {
                throw r.error("tensor '\(t.name)' (\(t.bytes) bytes at data offset \(t.offset)) extends beyond the end of the file "
                              + "(the data section has \(max(0, dataBytes)) bytes): truncated?")
            }
        }
        return (version, metadata, infos, alignment, dataOffset)
    }

    static func string(_ r: inout ByteReader, _ what: @autoclosure () -> String) throws -> String {
        let n = try r.count("length of \(what())", limit: Int(Int32.max))
        return try r.utf8(n, what())
    }

    static func value(_ r: inout ByteReader, type: UInt32, key: String, depth: Int, limits: CheckpointLimits) throws -> GGUFValue {
        switch type {
        case 0: return .uint8(try r.integer(UInt8.self, "'\(key)'"))
        case 1: return .int8(try r.integer(Int8.self, "'\(key)'"))
        case 2: return .uint16(try r.integer(UInt16.self, "'\(key)'"))
        case 3: return .int16(try r.integer(Int16.self, "'\(key)'"))
        case 4: return .uint32(try r.integer(UInt32.self, "'\(key)'"))
        case 5: return .int32(try r.integer(Int32.self, "'\(key)'"))
        case 6: return .float32(Float(bitPattern: try r.integer(UInt32.self, "'\(key)'")))
        case 7:
            let b = try r.integer(UInt8.self, "'\(key)'")
            guard b <= 1 else { throw r.error("metadata '\(key)' is a bool with byte \(b) (0 or 1 expected)") }
            return .bool(b == 1)
        case 8: return .string(try string(&r, "metadata '\(key)'"))
        case 9:
            guard depth < limits.maxArrayDepth else { throw r.error("metadata '\(key)' nests arrays deeper than \(limits.maxArrayDepth)") }
            let elementType = try r.integer(UInt32.self, "element type of '\(key)'")
            let n = try r.count("length of array '\(key)'", limit: Int(Int32.max))
            let least = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8][Int(elementType)] ?? 1
            guard n <= r.remaining / least else { throw r.error("array '\(key)' of \(n) elements cannot fit the \(r.remaining) bytes left") }
            var a: [GGUFValue] = []
            a.reserveCapacity(n)
            for _ in 0..<n { a.append(try value(&r, type: elementType, key: key, depth: depth + 1, limits: limits)) }
            return .array(a)
        case 10: return .uint64(try r.integer(UInt64.self, "'\(key)'"))
        case 11: return .int64(try r.integer(Int64.self, "'\(key)'"))
        case 12: return .float64(Double(bitPattern: try r.integer(UInt64.self, "'\(key)'")))
        default: throw r.error("metadata '\(key)' has unknown value type \(type)")
        }
    }
}
