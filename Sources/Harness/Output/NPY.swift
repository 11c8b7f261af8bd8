import Foundation

/// NumPy `.npy` files (format version 1.0): magic, header dict, little-endian data.
/// Written by hand: the format is a dozen lines and no NPY package is available.
public enum NPY {
    public static func header(descr: String, shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad with spaces so that magic (6) + version (2) + length (2) + header ends on a 64-byte boundary.
        let total = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let len = UInt16(dict.utf8.count)
        d.append(contentsOf: [UInt8(len & 0xFF), UInt8(len >> 8)])
        d.append(contentsOf: Array(dict.utf8))
        return d
    }

    /// float64 array of the given shape (row-major). One bulk copy on little-endian
    /// hosts (a 134M-parameter vector appended value by value took 15 s).
    public static func float64(_ values: [Double], shape: [Int]? = nil) -> Data {
        var d = header(descr: "<f8", shape: shape ?? [values.count])
        #if _endian(little)
        d.reserveCapacity(d.count + values.count * 8)
        values.withUnsafeBytes { d.append(contentsOf: $0) }
        #else
        appendLittleEndian(values.map(\.bitPattern), to: &d)
        #endif
        return d
    }

    /// int64 array.
    public static func int64(_ values: [Int], shape: [Int]? = nil) -> Data {
        var d = header(descr: "<i8", shape: shape ?? [values.count])
        appendLittleEndian(values.map { Int64($0) }, to: &d)
        return d
    }

    static func appendLittleEndian<I: FixedWidthInteger>(_ values: [I], to d: inout Data) {
        d.reserveCapacity(d.count + values.count * MemoryLayout<I>.size)
        #if _endian(little)
        values.withUnsafeBytes { d.append(contentsOf: $0) }
        #else
        for v in values { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        #endif
    }
}
