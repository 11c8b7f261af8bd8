import Foundation
import Testing
@testable import Checkpoints

/// SmolLM2's byte-level BPE (from its GGUF metadata) against transformers' tokenizer
/// built from the same file (Fixtures/make_tokenizer_fixture.py).
@Suite struct TokenizerTests {
    struct Golden: Decodable {
        struct Case: Decodable { var text: String; var ids: [Int] }
        struct Apache: Decodable { var source: String; var chars: Int; var ids: [Int] }
        var strings: [Case]
        var apache: Apache
    }

    static let tokenizer: ByteLevelBPE? = {
        do { return try ByteLevelBPE(gguf: GGUFFile(path: CheckpointReaderTests.fixture("smollm2-tokenizer.gguf"))) }
        catch { Issue.record("\(error)"); return nil }
    }()
    static func golden() throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: CheckpointReaderTests.fixture("tokenizer-golden.json"))))
    }

    @Test func committedStringsMatchTheReference() throws {
        let bpe = try #require(Self.tokenizer)
        #expect(bpe.tokens.count == 49152)
        for c in try Self.golden().strings {
            #expect(try bpe.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(bpe.decode(c.ids) == c.text)
        }
    }

    /// The licence text Debian's base-files installs, as the reference tokenized it (when
    /// this machine has the same file).
    @Test func debianLicenceTextMatchesTheReference() throws {
        let bpe = try #require(Self.tokenizer)
        let g = try Self.golden().apache
        guard let text = try? String(contentsOfFile: g.source, encoding: .utf8), text.count == g.chars else { return }
        #expect(try bpe.encode(text) == g.ids)
    }

    @Test func nonByteLevelVocabulariesAreRefused() throws {
        #expect(throws: CheckpointError.self) { try ByteLevelBPE(tokens: ["a", "b"], merges: []) }
        var tokens = ByteLevelBPE.byteCharacters.map { String($0) }
        #expect(throws: CheckpointError.self) { try ByteLevelBPE(tokens: tokens, merges: ["ab"]) }
        tokens.append("ab")
        let bpe = try? ByteLevelBPE(tokens: tokens, merges: ["a b"])
        let missing = try? ByteLevelBPE(tokens: tokens.filter { $0 != "Ą" }, merges: [])
        #expect(throws: CheckpointError.self) { try missing?.encode("a\u{04}b") }
        #expect(try bpe?.encode("abab a") == [256, 256, 32, 97])      // "ab", "ab", "Ġ" (byte 32), "a" (byte 97)
    }
}
