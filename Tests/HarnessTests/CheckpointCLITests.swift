import Foundation
import Testing
@testable import Harness

/// `hessian-harness checkpoint` on the committed fixtures of CheckpointsTests.
@Suite struct CheckpointCLITests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures")

    @Test func listsAndWritesATensor() throws {
        let gguf = Self.fixtures.appendingPathComponent("tiny.gguf").path
        let list = try runCLI(["checkpoint", gguf])
        #expect(list.status == 0)
        #expect(list.stdout.contains("format: GGUF v3"))
        #expect(list.stdout.contains("tensors: 6 (BF16 1, F16 1, F32 1, Q4_0 1, Q4_1 1, Q8_0 1)"))
        #expect(list.stdout.contains("q4_1\tQ4_1\t[4, 64]"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("q.npy").path
        let w = try runCLI(["checkpoint", gguf, "--tensor", "q4_1", "--out", out])
        #expect(w.status == 0 && w.stdout.contains("q4_1 [4, 64]"))
        let npy = try Data(contentsOf: URL(fileURLWithPath: out))
        #expect(npy.count > 256 * 8 && String(decoding: npy.prefix(80), as: UTF8.self).contains("'shape': (4, 64)"))
        let hf = try runCLI(["checkpoint", Self.fixtures.appendingPathComponent("hf-tiny").path, "--metadata"])
        #expect(hf.status == 0 && hf.stdout.contains("architecture: LlamaForCausalLM") && hf.stdout.contains("w.bf16\tBF16\t[3, 5]"))
    }

    @Test func badFilesAreOneLineExitTwoAndNothingWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ck-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try Data(contentsOf: Self.fixtures.appendingPathComponent("tiny.gguf"))
        let truncated = dir.appendingPathComponent("t.gguf")
        try full.prefix(full.count - 7).write(to: truncated)
        let wrongMagic = dir.appendingPathComponent("m.gguf")
        try (Data("GGML".utf8) + full.dropFirst(4)).write(to: wrongMagic)
        let out = dir.appendingPathComponent("x.npy").path
        let cases: [([String], String)] = [
            (["checkpoint", truncated.path, "--tensor", "q8_0", "--out", out], "extends beyond the end of the file"),
            (["checkpoint", wrongMagic.path, "--tensor", "q8_0", "--out", out], "not a GGUF file (magic \"GGML\""),
            (["checkpoint", dir.appendingPathComponent("none.gguf").path], "does not exist"),
            (["checkpoint", Self.fixtures.appendingPathComponent("tiny.gguf").path, "--tensor", "q9", "--out", out], "no tensor 'q9'"),
            (["checkpoint", Self.fixtures.appendingPathComponent("tiny.gguf").path, "--out", out], "--out needs --tensor"),
            (["checkpoint", Self.fixtures.appendingPathComponent("hf-tiny").path, "--tensor", "pos.i64", "--out", out], "dtype I64"),
        ]
        for (args, fragment) in cases {
            let r = try runCLI(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.hasPrefix("error: ") && r.stderr.contains(fragment), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1)
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}
