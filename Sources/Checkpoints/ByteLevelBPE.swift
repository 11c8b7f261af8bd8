/// Byte-level BPE (GPT-2's tokenizer, used by SmolLM2, Llama 3 and many others), from a
/// vocabulary and a ranked merge list: GGUF's `tokenizer.ggml.tokens` and
/// `tokenizer.ggml.merges` (model `gpt2`), or a `tokenizer.json`'s `model.vocab`/`merges`.
///
/// Encoding, as Hugging Face `tokenizers` does for `ByteLevel(use_regex=true)`:
/// 1. split the text with GPT-2's pattern
///    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
///    matched on Unicode scalars (not grapheme clusters);
/// 2. map every UTF-8 byte of a piece to one printable character (GPT-2's
///    `bytes_to_unicode`: a space becomes `Ġ`, a newline `Ċ`);
/// 3. merge adjacent symbols, always the pair of lowest rank first (all its
///    occurrences, left to right), until no ranked pair is left;
/// 4. look every symbol up in the vocabulary.
/// Special tokens in the text are not recognized (plain text has none). Checked against
/// transformers' tokenizer built from the same GGUF on committed strings.
public struct ByteLevelBPE: Sendable {
    public let tokens: [String]
    let ids: [String: Int]
    let ranks: [String: Int]            // "left right" → rank
    static let pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// GPT-2's byte → character table.
    public static let byteCharacters: [Character] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var chars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b); chars.append(256 + n); n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = Character(UnicodeScalar(UInt32(c))!) }
        return table
    }()

    public init(tokens: [String], merges: [String]) throws {
        var ids: [String: Int] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = i }
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            guard m.split(separator: " ", omittingEmptySubsequences: false).count == 2 else {
                throw CheckpointError("tokenizer", "merge \(i) '\(m)' is not two symbols separated by one space")
            }
            if ranks[m] == nil { ranks[m] = i }
        }
        // A byte-level vocabulary holds the symbols of (at least the printable) bytes;
        // real ones may lack a few control bytes (SmolLM2 lacks 0x04, 'Ą').
        let present = Self.byteCharacters.filter { ids[String($0)] != nil }.count
        guard present >= 188 else {
            throw CheckpointError("tokenizer", "the vocabulary holds \(present) of the 256 byte symbols: not a byte-level BPE vocabulary")
        }
        self.tokens = tokens; self.ids = ids; self.ranks = ranks
    }

    /// The tokenizer of a GGUF file (`tokenizer.ggml.model` = `gpt2`).
    public init(gguf f: GGUFFile) throws {
        guard let model = f.value("tokenizer.ggml.model")?.string else { throw CheckpointError(f.path, "no tokenizer.ggml.model") }
        guard model == "gpt2" else {
            throw CheckpointError(f.path, "tokenizer model '\(model)' is not supported (gpt2, byte-level BPE, is)")
        }
        guard let t = f.value("tokenizer.ggml.tokens")?.array, let m = f.value("tokenizer.ggml.merges")?.array else {
            throw CheckpointError(f.path, "tokenizer.ggml.tokens or tokenizer.ggml.merges missing")
        }
        let tokens = t.compactMap(\.string), merges = m.compactMap(\.string)
        guard tokens.count == t.count, merges.count == m.count else { throw CheckpointError(f.path, "tokenizer entries that are not strings") }
        try self.init(tokens: tokens, merges: merges)
    }

    /// The token ids of `text`; an error when it holds a byte the vocabulary has no symbol for.
    public func encode(_ text: String) throws -> [Int] {
        let regex = try! Regex(Self.pattern).matchingSemantics(.unicodeScalar)
        var out: [Int] = []
        var cache: [String: [Int]] = [:]
        for match in text.matches(of: regex) {
            let piece = String(text[match.range])
            if let c = cache[piece] { out += c; continue }
            let ids = try bpe(piece)
            cache[piece] = ids
            out += ids
        }
        return out
    }

    func bpe(_ piece: String) throws -> [Int] {
        var symbols = piece.utf8.map { String(Self.byteCharacters[Int($0)]) }
        while symbols.count > 1 {
            var best: (rank: Int, pair: (String, String))? = nil
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[symbols[i] + " " + symbols[i + 1]], best == nil || r < best!.rank {
                    best = (r, (symbols[i], symbols[i + 1]))
                }
            }
            guard let (_, (a, b)) = best else { break }
            var merged: [String] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == a && symbols[i + 1] == b {
                    merged.append(a + b); i += 2
                } else {
                    merged.append(symbols[i]); i += 1
                }
            }
            symbols = merged
        }
        // A merge's result is a token of a well-formed vocabulary; an absent one falls back
        // to its bytes' symbols.
        var out: [Int] = []
        for s in symbols {
            if let id = ids[s] { out.append(id); continue }
            for c in s {
                guard let id = ids[String(c)] else {
                    let byte = Self.byteCharacters.firstIndex(of: c) ?? -1
                    throw CheckpointError("tokenizer", "the text holds byte 0x\(String(byte, radix: 16)), which the vocabulary has no symbol for")
                }
                out.append(id)
            }
        }
        return out
    }

    /// The text of `ids` (bytes decoded as UTF-8, invalid sequences repaired).
    public func decode(_ ids: [Int]) -> String {
        var reverse: [Character: UInt8] = [:]
        for (b, c) in Self.byteCharacters.enumerated() { reverse[c] = UInt8(b) }
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < tokens.count {
            for c in tokens[id] { if let b = reverse[c] { bytes.append(b) } }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
