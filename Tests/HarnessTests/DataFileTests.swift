import Foundation
import Testing
@testable import Harness
import Models

@Suite struct DataFileTests {
    func write(_ name: String, _ data: Data) throws -> String {
        let dir = tempDir("data")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test func npyRoundTripAndDtypes() throws {
        let x = try write("x.npy", NPY.float64([1, 2, 3, 4, 5, 6], shape: [3, 2]))
        let y = try write("y.npy", NPY.int64([0, 2, 1]))
        let d = try DataFiles.load(x: x, y: y, classes: nil)
        #expect(d.x.storage == [1, 2, 3, 4, 5, 6] && d.labels == [0, 2, 1] && d.classes == 3 && d.features == 2)
        // float32 / int32 files as numpy writes them.
        var f32 = NPY.header(descr: "<f4", shape: [2, 1])
        for v: Float in [0.5, -1.25] { withUnsafeBytes(of: v.bitPattern.littleEndian) { f32.append(contentsOf: $0) } }
        var i32 = NPY.header(descr: "<i4", shape: [2])
        for v: Int32 in [1, 0] { withUnsafeBytes(of: v.littleEndian) { i32.append(contentsOf: $0) } }
        let d2 = try DataFiles.load(x: try write("x4.npy", f32), y: try write("y4.npy", i32), classes: 2)
        #expect(d2.x.storage == [0.5, -1.25] && d2.labels == [1, 0])
    }

    @Test func csvWithHeader() throws {
        let p = try write("d.csv", Data("a,b,label\n1.5,2,0\n-3,4e-1,1\n0,0,1\n".utf8))
        let d = try DataFiles.load(csv: p, classes: nil)
        #expect(d.x.storage == [1.5, 2, -3, 0.4, 0, 0] && d.labels == [0, 1, 1] && d.classes == 2)
        // And through a model spec, end to end in the CLI.
        let out = tempDir("hvp-csv")
        let r = try runCLI(["hvp", "--model", "mlp:widths=2-3-2,data=\(p)", "--out", out.path])
        #expect(r.status == 0, Comment(rawValue: r.stderr))
    }

    @Test func badDataIsReportedWithFileAndLine() throws {
        let cases: [(String, String)] = [
            ("a,b,label\n1,2,0\n1,nan,1\n", ":3: value nan"), ("1,2,0\n1,2,0.5\n", ":2: label 0.5"),
            ("1,2,0\n1,2\n", ":2: 2 fields, expected 3"), ("1,x,0\n2,y,1\n", ":2: non-numeric"), ("a,b\n", "no data rows"),
        ]
        for (text, fragment) in cases {
            let p = try write("bad.csv", Data(text.utf8))
            do { _ = try DataFiles.load(csv: p, classes: nil); Issue.record("accepted \(text)") }
            catch let e as ModelError { #expect(e.message.contains(fragment), "\(e.message)") }
        }
        let x = try write("x.npy", NPY.float64([1, .nan], shape: [1, 2]))
        let y = try write("y.npy", NPY.int64([0]))
        #expect(throws: ModelError.self) { try DataFiles.load(x: x, y: y, classes: 2) }
        #expect(throws: ModelError.self) { try DataFiles.load(x: "/nonexistent.npy", y: y, classes: 2) }
        let dir = tempDir("hvp-bad-data")
        let r = try runCLI(["hvp", "--model", "mlp:widths=2-2,data=/nonexistent.csv", "--out", dir.path])
        #expect(r.status == 2 && !FileManager.default.fileExists(atPath: dir.path))
    }
}
