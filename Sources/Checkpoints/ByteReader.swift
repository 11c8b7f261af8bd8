/// Little-endian reads from a byte buffer, each checked against the bytes left: a read
/// past the end is a ``CheckpointError`` naming the field, never a trap.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        self.bytes = bytes; self.path = path; self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    func error(_ message: String) -> CheckpointError { CheckpointError(path, message) }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw error("truncated: \(what()) needs \(n) bytes at offset \(offset), the file has \(remaining) left")
        }
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    /// A 64-bit count or length that must fit an `Int` and `limit`.
    mutating func count(_ what: @autoclosure () -> String, limit: Int) throws -> Int {
        let v = try integer(UInt64.self, what())
        guard v <= UInt64(limit) else { throw error("\(what()) is \(v), more than the limit \(limit)") }
        return Int(v)
    }

    mutating func raw(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, what())
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    /// Valid UTF-8 of `n` bytes.
    mutating func utf8(_ n: Int, _ what: @autoclosure () -> String) throws -> String {
        let r = try raw(n, what())
        guard let s = String(validating: r, as: UTF8.self) else { throw error("\(what()) is not valid UTF-8") }
        return s
    }
}
