import Foundation
import CSV
import LinearAlgebra

/// User data for classification models, from `.npy` or `.csv` files.
///
/// - `.npy` (NumPy format 1.x/2.x, C order): inputs `<f8`/`<f4` of shape (n, d),
///   labels `<i8`/`<i4` (or integral floats) of shape (n,).
/// - `.csv`: one sample per row, the label in the last column; a header row is
///   skipped when its fields are not numbers.
/// Every problem (missing file, wrong dtype or shape, NaN or infinity, non-integer
/// or negative label) is a ``ModelError`` naming the file and, for CSV, the line.
public enum DataFiles {
    public static func load(x xPath: String, y yPath: String, classes: Int?) throws -> Dataset {
        let (xs, xShape) = try readNPY(xPath)
        let (ys, yShape) = try readNPY(yPath)
        guard xShape.count == 2 else { throw ModelError("\(xPath): inputs must be 2-dimensional (n, d), got shape \(xShape)") }
        guard xShape[0] >= 1, xShape[1] >= 1 else { throw ModelError("\(xPath): no data (shape \(xShape)); a data set needs at least one sample and one feature") }
        guard yShape == [xShape[0]] else { throw ModelError("\(yPath): labels must have shape (\(xShape[0]),), got \(yShape)") }
        if let i = xs.firstIndex(where: { !$0.isFinite }) { throw ModelError("\(xPath): element \(i) is \(xs[i]) (NaN or infinity)") }
        let labels = try ys.enumerated().map { i, v -> Int in
            guard let l = label(v) else { throw ModelError("\(yPath): label \(i) is \(v), not an integer in 0...\(maxLabel)") }
            return l
        }
        let k = classes ?? ((labels.max() ?? 0) + 1)
        return try Dataset(x: Matrix(rows: xShape[0], cols: xShape[1], storage: xs), labels: labels, classes: k,
                               source: "user data: x=\(xPath), y=\(yPath)")
    }

    /// An IEEE binary16 encoding's value, exactly (every binary16 is a binary64).
    static func binary16(_ b: UInt16) -> Double {
        let sign: Double = b & 0x8000 != 0 ? -1 : 1
        let e = Int(b >> 10 & 0x1f), m = Double(b & 0x3ff)
        switch e {
        case 0: return sign * m * 0x1p-24                                   // zero and subnormals
        case 31: return m == 0 ? sign * .infinity : .nan
        default: return sign * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
        }
    }

    /// Refuses devices, pipes and folders (`/dev/zero` would be read forever).
    static func requireRegularFile(_ path: String) throws {
        if let t = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, t != .typeRegular {
            throw ModelError("\(path): not a regular file")
        }
    }

    /// The largest class label (a label fixes the classifier's output width).
    public static let maxLabel = 10_000_000

    /// `v` as a class label: an integer in 0...``maxLabel``.
    static func label(_ v: Double) -> Int? {
        guard v.isFinite, v == v.rounded(), v >= 0, v <= Double(maxLabel) else { return nil }
        return Int(v)
    }

    public static func load(csv path: String, classes: Int?) throws -> Dataset {
        try requireRegularFile(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot open") }
        return try load(csvData: data, path: path, classes: classes)
    }

    /// The CSV data set in `data` (`path` names it in messages).
    public static func load(csvData data: Data, path: String, classes: Int?) throws -> Dataset {
        let stream = InputStream(data: data)
        let reader: CSVReader
        do { reader = try CSVReader(stream: stream) } catch { throw ModelError("\(path): \(error)") }
        var rows: [[Double]] = []
        var line = 0
        while let fields = reader.next() {
            line += 1
            let nums = fields.map { Double($0.trimmingCharacters(in: .whitespaces)) }
            if line == 1 && nums.contains(where: { $0 == nil }) { continue }            // header
            guard !nums.contains(where: { $0 == nil }) else { throw ModelError("\(path):\(line): non-numeric field") }
            let r = nums.map { $0! }
            guard r.count >= 2 else { throw ModelError("\(path):\(line): need at least one feature and a label") }
            if let f = rows.first, f.count != r.count { throw ModelError("\(path):\(line): \(r.count) fields, expected \(f.count)") }
            if let bad = r.first(where: { !$0.isFinite }) { throw ModelError("\(path):\(line): value \(bad) (NaN or infinity)") }
            guard label(r.last!) != nil else { throw ModelError("\(path):\(line): label \(r.last!) is not an integer in 0...\(maxLabel)") }
            rows.append(r)
        }
        guard let d = rows.first.map({ $0.count - 1 }) else { throw ModelError("\(path): no data rows") }
        let labels = rows.map { label($0.last!)! }
        let k = classes ?? ((labels.max() ?? 0) + 1)
        return try Dataset(x: Matrix(rows: rows.count, cols: d, storage: rows.flatMap { $0.dropLast() }), labels: labels, classes: k,
                           source: "user data: \(path)")
    }

    /// Reads a C-order NumPy array of float64/float32/int64/int32 as Doubles.
    ///
    /// Format 1.0, 2.0 and 3.0 headers; every field is checked before use: the header
    /// length against the file, the shape's entries (non-negative integers, nothing
    /// else), the element count and byte size without overflow, and the data size
    /// against the header before anything is allocated.
    public static func readNPY(_ path: String) throws -> ([Double], [Int]) {
        try requireRegularFile(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("\(path): cannot read") }
        return try readNPY(data: data, path: path)
    }

    /// The array in `data` (`path` names it in messages).
    public static func readNPY(data: Data, path: String) throws -> ([Double], [Int]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else { throw ModelError("\(path): not a .npy file") }
        let major = bytes[6]
        guard (1...3).contains(major) else { throw ModelError("\(path): NPY format version \(major).\(bytes[7]) is not supported (1, 2, 3)") }
        guard major == 1 || bytes.count >= 12 else { throw ModelError("\(path): truncated header") }
        let (headerLen, start): (Int, Int) = major == 1 ? (Int(bytes[8]) | Int(bytes[9]) << 8, 10)
            : (Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24, 12)
        guard bytes.count - start >= headerLen else { throw ModelError("\(path): truncated header") }
        let header = String(decoding: bytes[start..<(start + headerLen)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrField = field("descr"), let q1 = descrField.firstIndex(of: "'") else { throw ModelError("\(path): header lacks descr") }
        let descr = String(descrField[descrField.index(after: q1)...].prefix { $0 != "'" })
        guard let fo = field("fortran_order"), fo.hasPrefix("False") else { throw ModelError("\(path): Fortran order is not supported") }
        guard let sf = field("shape"), let open = sf.firstIndex(of: "("), let close = sf.firstIndex(of: ")"), open < close else {
            throw ModelError("\(path): header lacks shape")
        }
        var parts = sf[sf.index(after: open)..<close].split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count >= 2, parts.last == "" { parts.removeLast() }          // (3,) and (2, 3,)
        if parts == [""] { parts = [] }                                        // () is a scalar
        var shape: [Int] = []
        for p in parts {
            guard let d = Int(p), d >= 0 else { throw ModelError("\(path): shape entry '\(p)' is not a non-negative integer") }
            shape.append(d)
        }
        let width: Int
        switch descr { case "<f8", "<i8": width = 8; case "<f4", "<i4": width = 4; case "<f2": width = 2
        default: throw ModelError("\(path): dtype '\(descr)' not supported (float64, float32, float16, int64, int32)") }
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw ModelError("\(path): shape \(shape) has more elements than can be addressed") }
            count = c
        }
        let bodyCount = bytes.count - start - headerLen
        guard count <= bodyCount / width, bodyCount == count * width else {
            throw ModelError("\(path): \(bodyCount) data bytes for shape \(shape) of \(descr)")
        }
        let body = Array(bytes[(start + headerLen)...])
        var out = [Double](repeating: 0, count: count)
        body.withUnsafeBytes { raw in
            for i in 0..<count {
                let off = i * width
                switch descr {
                case "<f8": out[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: UInt64.self)))
                case "<f4": out[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: UInt32.self))))
                case "<f2": out[i] = Self.binary16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: UInt16.self)))
                case "<i8": out[i] = Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: Int64.self)))
                default: out[i] = Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: Int32.self)))
                }
            }
        }
        return (out, shape)
    }
}
