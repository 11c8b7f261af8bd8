import Foundation
import Testing
@testable import Checkpoints

/// Malformed and hostile checkpoint files: each is one ``CheckpointError`` naming the
/// problem, never a trap and never an allocation the file cannot back.
@Suite struct HostileCheckpointTests {
    /// A GGUF file written field by field, so each test can break one field.
    struct GGUFBytes {
        var magic: [UInt8] = Array("GGUF".utf8)
        var version: UInt32 = 3
        var tensorCount: UInt64? = nil
        var kvCount: UInt64? = nil
        var kv: [(key: String, type: UInt32, payload: [UInt8])] = [("general.architecture", 8, GGUFBytes.str("llama"))]
        var tensors: [(name: String, ne: [UInt64], type: UInt32, offset: UInt64)] = [("w", [32, 2], 8, 0)]
        var dataBytes = 2 * 34
        var alignment = 32

        static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        static func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

        var bytes: [UInt8] {
            var b = magic + Self.le(version) + Self.le(tensorCount ?? UInt64(tensors.count)) + Self.le(kvCount ?? UInt64(kv.count))
            for e in kv { b += Self.str(e.key) + Self.le(e.type) + e.payload }
            for t in tensors {
                b += Self.str(t.name) + Self.le(UInt32(t.ne.count))
                for n in t.ne { b += Self.le(n) }
                b += Self.le(t.type) + Self.le(t.offset)
            }
            while b.count % alignment != 0 { b.append(0) }
            return b + [UInt8](repeating: 0x11, count: dataBytes)
        }
    }

    func refusal(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try GGUFFile(data: Data(bytes), path: "bad.gguf")
            Issue.record("accepted a file that should be refused (\(fragment))", sourceLocation: sourceLocation)
        } catch let e as CheckpointError {
            #expect(e.description.hasPrefix("bad.gguf: "), sourceLocation: sourceLocation)
            #expect(e.message.contains(fragment), "message: \(e.message)", sourceLocation: sourceLocation)
            #expect(!e.description.contains("\n"), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func theWellFormedBaseIsAccepted() throws {
        let f = try GGUFFile(data: Data(GGUFBytes().bytes), path: "ok.gguf")
        #expect(f.tensors.map(\.name) == ["w"])
        #expect(f.floats(of: f.tensors[0]).count == 64)
    }

    @Test func brokenFieldsAreRefusedByName() {
        var g = GGUFBytes(); g.magic = Array("GGML".utf8); refusal(g.bytes, "not a GGUF file (magic \"GGML\"")
        g = GGUFBytes(); g.version = 4; refusal(g.bytes, "GGUF version 4")
        g = GGUFBytes(); g.tensors[0].type = 14; refusal(g.bytes, "GGML type 14 (Q6_K)")
        g = GGUFBytes(); g.tensors[0].type = 999; refusal(g.bytes, "GGML type 999")
        g = GGUFBytes(); g.tensorCount = 1 << 40; refusal(g.bytes, "tensor count")
        g = GGUFBytes(); g.tensorCount = 1000; refusal(g.bytes, "tensor count 1000 cannot fit")
        g = GGUFBytes(); g.kvCount = UInt64.max; refusal(g.bytes, "metadata count")
        g = GGUFBytes(); g.kv = [("k", 8, GGUFBytes.le(UInt64(1) << 62))]; refusal(g.bytes, "length of metadata 'k'")
        g = GGUFBytes(); g.kv = [("k", 8, GGUFBytes.le(UInt64(1000)) + Array("abc".utf8))]; refusal(g.bytes, "truncated")
        g = GGUFBytes(); g.kv = [("k", 9, GGUFBytes.le(UInt32(4)) + GGUFBytes.le(UInt64(1) << 31))]; refusal(g.bytes, "array 'k'")
        g = GGUFBytes(); g.kv = [("k", 9, GGUFBytes.le(UInt32(5)) + GGUFBytes.le(UInt64(1) << 40))]; refusal(g.bytes, "length of array 'k'")
        var nested = GGUFBytes.le(UInt32(9)) + GGUFBytes.le(UInt64(1))
        for _ in 0..<6 { nested += GGUFBytes.le(UInt32(9)) + GGUFBytes.le(UInt64(1)) }
        g = GGUFBytes(); g.kv = [("k", 9, nested)]; refusal(g.bytes, "nests arrays deeper")
        g = GGUFBytes(); g.kv = [("k", 7, [2])]; refusal(g.bytes, "bool with byte 2")
        g = GGUFBytes(); g.kv = [("k", 13, [0])]; refusal(g.bytes, "unknown value type 13")
        g = GGUFBytes(); g.kv = [("k", 8, GGUFBytes.le(UInt64(2)) + [0xC3, 0x28])]; refusal(g.bytes, "not valid UTF-8")
        g = GGUFBytes(); g.kv.append(("general.alignment", 4, GGUFBytes.le(UInt32(24)))); refusal(g.bytes, "power of two")
        g = GGUFBytes(); g.tensors[0].offset = 1 << 40; refusal(g.bytes, "beyond the file")
        g = GGUFBytes(); g.tensors[0].offset = 8; refusal(g.bytes, "not a multiple of the alignment")
        g = GGUFBytes(); g.tensors[0].offset = 32; refusal(g.bytes, "extends beyond the end of the file")
        g = GGUFBytes(); g.dataBytes = 67; refusal(g.bytes, "truncated?")
        g = GGUFBytes(); g.tensors[0].ne = [32, 1 << 30, 1 << 30]; refusal(g.bytes, "too many elements")
        g = GGUFBytes(); g.tensors[0].ne = [32, 0]; refusal(g.bytes, "dimension 1 is 0")
        g = GGUFBytes(); g.tensors[0].ne = [16, 2]; refusal(g.bytes, "not a multiple of its block size 32")
        g = GGUFBytes(); g.tensors[0].ne = Array(repeating: 1, count: 9); refusal(g.bytes, "has 9 dimensions")
        g = GGUFBytes(); g.tensors.append(g.tensors[0]); refusal(g.bytes, "appears twice")
        refusal([], "not a GGUF file: 0 bytes")
    }

    /// Every truncation of the committed tiny.gguf (all 1,696 prefixes) is refused.
    @Test func everyTruncationIsRefused() throws {
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: CheckpointReaderTests.fixture("tiny.gguf"))))
        for n in 0..<full.count {
            do {
                _ = try GGUFFile(data: Data(full[0..<n]), path: "t.gguf")
                Issue.record("a prefix of \(n) bytes was accepted")
            } catch is CheckpointError {
            } catch { Issue.record("prefix \(n): unexpected error \(error)") }
        }
    }

    // MARK: safetensors

    func safetensors(_ header: String, data: Int = 24) -> Data {
        var b = GGUFBytes.le(UInt64(header.utf8.count)) + Array(header.utf8)
        b += [UInt8](repeating: 0, count: data)
        return Data(b)
    }

    func refusal(safetensors d: Data, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SafetensorsFile(data: d, path: "bad.safetensors")
            Issue.record("accepted a file that should be refused (\(fragment))", sourceLocation: sourceLocation)
        } catch let e as CheckpointError {
            #expect(e.message.contains(fragment), "message: \(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func brokenSafetensorsAreRefusedByName() throws {
        let ok = #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#
        #expect(try SafetensorsFile(data: safetensors(ok), path: "ok").tensors.count == 1)
        refusal(safetensors: Data([1, 2, 3]), "shorter than the 8-byte header length")
        refusal(safetensors: Data(GGUFBytes.le(UInt64(1) << 60) + [0x7B]), "exceeds the limit")
        refusal(safetensors: Data(GGUFBytes.le(UInt64(500)) + Array("{}".utf8)), "truncated: header length 500")
        refusal(safetensors: safetensors("[1,2]"), "does not start with '{'")
        refusal(safetensors: safetensors("{\"a\": "), "malformed safetensors header")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F33","shape":[2,3],"data_offsets":[0,24]}}"#), "unknown dtype 'F33'")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[2,3]}}"#), "lacks dtype, shape or data_offsets")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#), "needs 32")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}}"#), "beyond its 24 bytes")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}"#), "0 ≤ begin ≤ end")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}}"#), "non-negative integer")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,24]}}"#), "too many elements")
        refusal(safetensors: safetensors(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}"#), "overlap")
        refusal(safetensors: safetensors(#"{"__metadata__":{"k":1}}"#), "is not a string")
        let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: CheckpointReaderTests.fixture("hf-tiny/model.safetensors"))))
        for n in 0..<full.count {
            do { _ = try SafetensorsFile(data: Data(full[0..<n]), path: "t"); Issue.record("a prefix of \(n) bytes was accepted") }
            catch is CheckpointError {} catch { Issue.record("prefix \(n): unexpected error \(error)") }
        }
    }
}
