import Foundation
import TernFormat
import TernTestSupport
import TernTokenizer
import XCTest

final class TokenizerTests: XCTestCase {
    /// llama.cpp's own tokenizer test vectors for its SentencePiece vocabulary (all cases).
    func testMatchesLlamaCppSPMVectors() throws {
        guard let dir = TestSupport.peerTokenizerDir else {
            throw XCTSkip("../shared/peer/tokenizer not present: llama.cpp SPM vectors not checked")
        }
        print("TokenizerTests: using llama.cpp vectors from \(dir)")
        let base = dir + "/ggml-vocab-llama-spm.gguf"
        let tok = try SentencePieceTokenizer(metadata: loadMetadata(path: base), file: base)
        let cases = try llamaCppVectors(base)
        for (text, want) in cases { XCTAssertEqual(tok.encode(text, addSpecial: false), want, "text: \(text.debugDescription)") }
        XCTAssertGreaterThanOrEqual(cases.count, 40)
    }

    /// llama.cpp's own tokenizer test vectors for its Llama 3 byte-level BPE vocabulary (pre
    /// `llama-bpe`, all cases): pre-tokenizer, byte mapping, merges, ignore-merges.
    func testMatchesLlamaCppBPEVectors() throws {
        guard let dir = TestSupport.peerTokenizerDir else {
            throw XCTSkip("../shared/peer/tokenizer not present: llama.cpp BPE vectors not checked")
        }
        print("TokenizerTests: using llama.cpp BPE vectors from \(dir)")
        let base = dir + "/ggml-vocab-llama-bpe.gguf"
        let tok = try BytePairTokenizer(metadata: loadMetadata(path: base), file: base)
        XCTAssertEqual(tok.pre, "llama-bpe")
        let cases = try llamaCppVectors(base)
        for (text, want) in cases {
            XCTAssertEqual(tok.encode(text, addSpecial: false), want, "text: \(text.debugDescription)")
            XCTAssertEqual(tok.decode(want), text, "round trip")
        }
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        XCTAssertEqual(tok.encode("Hello").first, tok.bos, "add_bos_token: BOS first")
    }

    /// SmolLM2's (pre `smollm`) and Qwen2.5's (pre `qwen2`) byte-level BPE vocabularies against
    /// llama-tokenize's ids (fixture made with llama.cpp on the same GGUFs by
    /// Fixtures/make_bpe_fixture.py over Fixtures/bpe_corpus.py: code, Unicode, digits, whitespace
    /// runs, CJK, emoji, special-token text; with and without special-token parsing). Rows with a
    /// `pre` give SmolLM2's vocabulary another pre-tokenizer ("": none, llama.cpp's default), as
    /// the fixture script did for llama-tokenize, so each pre-tokenizer is checked on real merges.
    func testMatchesLlamaCppOnRealBPEVocabularies() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "bpe-llamacpp", withExtension: "jsonl", subdirectory: "Fixtures"))
        struct Row: Decodable { let model: String; let pre: String?; let text: String; let parse_special: Bool; let ids: [Int32] }
        let rows = try String(decoding: try Data(contentsOf: url), as: UTF8.self).split(separator: "\n")
            .map { try JSONDecoder().decode(Row.self, from: Data($0.utf8)) }
        var tokenizers: [String: BytePairTokenizer] = [:]
        var checked: [String: Int] = [:]
        for r in rows {
            let key = r.model + (r.pre.map { " pre '\($0)'" } ?? "")
            if tokenizers[key] == nil {
                let path = try TestSupport.modelGGUF(r.model)
                var m = try loadMetadata(path: path)
                if let pre = r.pre { m["tokenizer.ggml.pre"] = pre.isEmpty ? nil : .string(pre) }
                tokenizers[key] = try BytePairTokenizer(metadata: m, file: path)
            }
            let tok = try XCTUnwrap(tokenizers[key])
            XCTAssertEqual(tok.encode(r.text, addSpecial: false, parseSpecial: r.parse_special), r.ids,
                           "\(key): \(r.text.debugDescription) parse_special: \(r.parse_special)")
            if !r.parse_special { XCTAssertEqual(tok.decode(r.ids), r.text, "\(key): decoding gives the text back") }
            checked[key, default: 0] += 1
        }
        print("TokenizerTests: byte-level BPE cases checked against llama.cpp: \(checked.sorted { $0.key < $1.key })")
        XCTAssertEqual(Set(checked.keys), Set(["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
            .union(["gpt-2", "starcoder", "deepseek-llm", "llama-bpe", "qwen2", ""].map { "smollm2-135m-instruct pre '\($0)'" }))
        XCTAssertEqual(tokenizers["smollm2-135m-instruct"]?.pre, "smollm")
        XCTAssertEqual(tokenizers["qwen2.5-coder-0.5b-instruct"]?.pre, "qwen2")
        XCTAssertEqual(tokenizers["smollm2-135m-instruct pre ''"]?.pre, "default", "no pre-tokenizer named: llama.cpp's default")
    }

    /// The tokenizer each vocabulary asks for, and its end-of-generation set (EOS and the
    /// end-of-turn / end-of-text control tokens), on the three real vocabularies.
    func testTokenizerKindAndEndOfGeneration() throws {
        let cases: [(String, String, Set<Int32>)] = [
            ("gemma-3-270m", "SentencePieceTokenizer", [1, 106]),          // <eos>, <end_of_turn>
            ("smollm2-135m-instruct", "BytePairTokenizer", [0, 2]),        // <|endoftext|>, <|im_end|>
            ("qwen2.5-coder-0.5b-instruct", "BytePairTokenizer", [151643, 151645]),  // <|endoftext|>, <|im_end|>
        ]
        for (name, kind, eog) in cases {
            let path = name == "gemma-3-270m" ? try TestSupport.gemmaGGUF() : try TestSupport.modelGGUF(name)
            let tok = try loadTokenizer(metadata: loadMetadata(path: path), file: path)
            XCTAssertEqual(String(describing: type(of: tok)), kind, name)
            XCTAssertTrue(eog.isSubset(of: tok.endOfGeneration), "\(name): \(tok.endOfGeneration.sorted())")
            XCTAssertTrue(tok.endOfGeneration.allSatisfy { [.control, .userDefined].contains(tok.kinds[Int($0)]) },
                          "\(name): only control tokens end generation")
        }
    }

    /// Gemma 3's vocabulary against llama-tokenize's ids (fixture made with llama.cpp on the same GGUF).
    func testMatchesLlamaCppOnGemma() throws {
        let gguf = try TestSupport.gemmaGGUF()
        let tok = try SentencePieceTokenizer(metadata: loadMetadata(path: gguf), file: gguf)
        let url = try XCTUnwrap(Bundle.module.url(forResource: "gemma3-llamacpp", withExtension: "jsonl", subdirectory: "Fixtures"))
        let lines = String(decoding: try Data(contentsOf: url), as: UTF8.self).split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 30)
        struct Row: Decodable { let text: String; let parse_special: Bool; let ids: [Int32] }
        for l in lines {
            let r = try JSONDecoder().decode(Row.self, from: Data(l.utf8))
            XCTAssertEqual(tok.encode(r.text, parseSpecial: r.parse_special), r.ids, "text: \(r.text.debugDescription) parse_special: \(r.parse_special)")
            // Detokenizing (without BOS) gives the text back for plain input.
            if !r.parse_special {
                XCTAssertEqual(tok.decode(r.ids), r.text, "round trip of \(r.text.debugDescription)")
            }
        }
        XCTAssertEqual(tok.encode(TestSupport.capitalPrompt), TestSupport.capitalPromptIds)
    }

    func testStreamingNeverSplitsUTF8() throws {
        let gguf = try TestSupport.gemmaGGUF()
        let tok = try SentencePieceTokenizer(metadata: loadMetadata(path: gguf), file: gguf)
        // A character that is likely byte-fallback encoded, plus multi-byte text.
        let text = "日本 🦙x\u{10FFFD}é"
        let ids = tok.encode(text, addSpecial: false)
        XCTAssertTrue(ids.contains { tok.vocab.kinds[Int($0)] == .byte }, "test needs byte-fallback tokens")
        var dec = StreamingDecoder(tok)
        var pieces: [String] = []
        for id in ids { pieces.append(dec.push(id)) }
        pieces.append(dec.flush())
        XCTAssertEqual(pieces.joined(), text)
        for p in pieces { XCTAssertFalse(p.contains("\u{FFFD}"), "a piece split a character: \(pieces)") }
    }

    func testUnsupportedTokenizerModelIsAClearError() throws {
        var m = Metadata()
        m["tokenizer.ggml.model"] = .string("gpt2")
        m["tokenizer.ggml.tokens"] = .strings(["a"])
        XCTAssertThrowsError(try SentencePieceTokenizer(metadata: m, file: "v.gguf")) { e in
            XCTAssertTrue("\(e)".contains("tokenizer 'gpt2' is not supported"), "\(e)")
        }
        m["tokenizer.ggml.model"] = .string("llama")
        m["tokenizer.ggml.scores"] = .floats([0, 1])
        XCTAssertThrowsError(try SentencePieceTokenizer(metadata: m, file: "v.gguf")) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.ggml.scores"), "\(e)")
        }
        m["tokenizer.ggml.scores"] = .floats([0])
        m["tokenizer.ggml.bos_token_id"] = .int(5)
        XCTAssertThrowsError(try SentencePieceTokenizer(metadata: m, file: "v.gguf")) { e in
            XCTAssertTrue("\(e)".contains("bos_token_id"), "\(e)")
        }
    }

    /// A tiny hand-made vocabulary: score order decides merges, unknown bytes fall back.
    func testMergeOrderAndByteFallback() {
        var m = Metadata()
        m["tokenizer.ggml.model"] = .string("llama")
        let toks = ["<unk>", "<s>", "▁", "a", "b", "c", "ab", "bc", "▁a", "cab", "<0xC3>", "<0xA9>"]
        m["tokenizer.ggml.tokens"] = .strings(toks)
        m["tokenizer.ggml.scores"] = .floats([0, 0, -1, -1, -1, -1, -3, -2, -5, -4, 0, 0])
        m["tokenizer.ggml.token_type"] = .ints([2, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6])
        m["tokenizer.ggml.bos_token_id"] = .int(1)
        m["tokenizer.ggml.unknown_token_id"] = .int(0)
        m["tokenizer.ggml.add_space_prefix"] = .bool(false)
        let tok = try! SentencePieceTokenizer(metadata: m, file: "v")
        // "abc": bc (-2) merges before ab (-3); then a+bc is not a token, so [a, bc].
        XCTAssertEqual(tok.encode("abc", addSpecial: false), [3, 7])
        XCTAssertEqual(tok.encode("abc"), [1, 3, 7])
        // "cab": only a+b merges, then c+ab forms "cab".
        XCTAssertEqual(tok.encode("cab", addSpecial: false), [9])
        // é (C3 A9) has no token: byte fallback; "x" has no byte token either: <unk>.
        XCTAssertEqual(tok.encode("é", addSpecial: false), [10, 11])
        XCTAssertEqual(tok.encode("x", addSpecial: false), [0])
        XCTAssertEqual(tok.decode([10, 11, 3]), "éa")
        XCTAssertEqual(tok.decode([1, 2, 3]), " a", "control tokens decode to nothing")
    }
}

/// llama.cpp's test-tokenizer-0 vectors beside a vocabulary GGUF: texts in `.inp` separated by
/// `__ggml_vocab_test__` lines, one line of ids per text in `.out`.
func llamaCppVectors(_ base: String) throws -> [(String, [Int32])] {
    let inp = String(decoding: readFile(base + ".inp"), as: UTF8.self).components(separatedBy: "\n__ggml_vocab_test__\n")
    let out = String(decoding: readFile(base + ".out"), as: UTF8.self).components(separatedBy: "\n")
    XCTAssertEqual(inp.count, out.count)
    var cases: [(String, [Int32])] = []
    for (i, (text, line)) in zip(inp, out).enumerated() where !(text.isEmpty && line.isEmpty && i == inp.count - 1) {
        cases.append((text, try line.split(separator: " ").map { try XCTUnwrap(Int32($0)) }))
    }
    return cases
}
