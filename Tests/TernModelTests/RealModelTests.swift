import Foundation
import TernTestSupport
import XCTest

/// The Llama- and Qwen2-family models on real weights: greedy tokens against llama.cpp's
/// (llama-simple on the same GGUF, bench/greedy.sh), and the same tokens from self-speculative
/// decoding and under a --mem-budget that streams most layers and the head, within that budget.
/// A golden shorter than the generation stops where llama.cpp forks at a near-tie (the float
/// reference's margin there is in the comment); past it Tern's own tokens are still compared
/// across modes. Where a path's activation rounding (x86 q6 products per 256 columns on AVX2,
/// per 32 on AVX-512) takes the other side of a near-tie inside the golden, the case lists that
/// token (`nearTies`, margin in the comment) and the golden is compared up to it there.
final class RealModelTests: XCTestCase {
    let tern = TestSupport.binary("tern")

    struct Case {
        let model: String, prompt: String
        let promptIds: [Int], golden: [Int]
        let budget: String
        /// Golden indices where the float reference's top two are a near-tie (< 0.1 apart).
        var nearTies: Set<Int> = []
    }

    func run(_ model: String, _ prompt: String, _ extra: [String]) throws -> (tokens: [Int], promptIds: [Int], rss: Int) {
        let r = try TestSupport.run(tern, ["run", "-m", model, "-p", prompt, "-n", "64", "--temp", "0", "--json"] + extra)
        XCTAssertEqual(r.status, 0, "\(extra): \(r.stderr)")
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return (obj["tokens"] as? [Int] ?? [], obj["prompt_tokens"] as? [Int] ?? [], obj["peak_rss_bytes"] as? Int ?? 0)
    }

    func check(_ c: Case) throws {
        let path = try TestSupport.converted(c.model)
        let plain = try run(path, c.prompt, ["--speculate", "off"])
        XCTAssertEqual(plain.promptIds, c.promptIds, "\(c.model): prompt tokens")
        // The golden in full, or up to a listed near-tie where this path takes the other side.
        let fork = zip(plain.tokens, c.golden).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        let compared = fork.flatMap { c.nearTies.contains($0) ? $0 : nil } ?? c.golden.count
        XCTAssertEqual(Array(plain.tokens.prefix(compared)), Array(c.golden.prefix(compared)), "\(c.model): llama.cpp's greedy tokens")
        XCTAssertEqual(plain.tokens.count, 64)
        let spec = try run(path, c.prompt, ["--speculate", "auto"])
        XCTAssertEqual(spec.tokens, plain.tokens, "\(c.model): speculative decoding changed the tokens")
        let budgeted = try run(path, c.prompt, ["--speculate", "off", "--mem-budget", c.budget])
        XCTAssertEqual(budgeted.tokens, plain.tokens, "\(c.model): --mem-budget \(c.budget) changed the tokens")
        let limit = Int(c.budget.dropLast())! << 20
        XCTAssertLessThanOrEqual(budgeted.rss, limit, "\(c.model): peak RSS \(budgeted.rss) over --mem-budget \(c.budget)")
        let near = compared < c.golden.count ? " (of \(c.golden.count): forks at a listed near-tie)" : ""
        print("RealModelTests: \(c.model): \(compared) tokens as llama.cpp\(near); speculative and --mem-budget \(c.budget) "
              + "identical; peak RSS \(budgeted.rss >> 20) MiB (unbudgeted \(plain.rss >> 20) MiB)")
    }

    static let fibonacci = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"

    /// SmolLM2 135M Instruct (llama, Q4_1, tied Q8_0 head). llama.cpp forks after 17 tokens, at
    /// a near-tie: the float64 reference has Tern's 198 on top, 36.329 vs 36.315 for llama.cpp's
    /// 3725 (margin 0.014). Until the q4 kernels summed the min terms apart, Tern took 3725 too
    /// and forked after 30 tokens at another near-tie (0.09).
    func testSmolLM2() throws {
        try check(Case(model: "smollm2-135m-instruct", prompt: RealModelTests.fibonacci,
                       promptIds: [1604, 3987, 46477, 24, 94, 727, 472, 585, 304, 2067, 216, 34, 42, 448, 1003, 304, 472, 1003],
                       golden: [2822, 24, 38572, 46477, 24, 94, 731, 216, 34, 25, 1232, 216, 33, 28, 304, 25, 198],
                       budget: "80M"))
    }

    /// Qwen2.5-Coder 0.5B Instruct (qwen2: Q/K/V biases, NEOX RoPE, untied Q8_0 head, Q5_0
    /// embedding): 64 tokens as llama.cpp.
    func testQwen25Coder() throws {
        try check(Case(model: "qwen2.5-coder-0.5b-instruct", prompt: RealModelTests.fibonacci,
                       promptIds: [750, 75698, 1445, 982, 262, 421, 308, 366, 220, 17, 510, 286, 470, 308, 198, 262, 470],
                       golden: [75698, 1445, 12, 16, 8, 488, 75698, 1445, 12, 17, 692, 2, 13383, 10431, 198, 77, 284, 220, 16, 15,
                                198, 1350, 955, 10022, 314, 77, 92, 339, 79683, 1372, 374, 25, 314, 75326, 39345, 1445, 9139, 1138,
                                13874, 19324, 1986, 2038, 18653, 264, 729, 1565, 75326, 39345, 63, 429, 47417, 279, 55129, 79683,
                                1372, 1667, 50262, 13, 576, 729, 12341, 421, 279, 1946],
                       budget: "256M"))
    }

    /// Qwen2.5-Coder 1.5B Instruct (Q4_K/Q6_K, untied Q6_K head, all kept bit for bit as q4k/q6;
    /// 1.1 GB as .tern) under 256 MiB: every layer but a few and the head streamed. 50 tokens as
    /// llama.cpp, which then picks 50262 where Tern picks 264: the float64 reference
    /// (Tests/reference/decoder_ref.py) has 264 on top, 21.486 vs 21.418, a near-tie (margin 0.068).
    /// On the AVX2 path, whose q6 head reads the activations per 256 columns, Tern forks after 11
    /// tokens, taking 1350 where llama.cpp takes 2: the float reference has 2 on top, 18.698 vs
    /// 18.620 for 1350, a near-tie (margin 0.078).
    func testQwen25Coder15BUnder256MiB() throws {
        try check(Case(model: "qwen2.5-coder-1.5b-instruct", prompt: RealModelTests.fibonacci,
                       promptIds: [750, 75698, 1445, 982, 262, 421, 308, 366, 220, 17, 510, 286, 470, 308, 198, 262, 470],
                       golden: [75698, 1445, 12, 16, 8, 488, 75698, 1445, 12, 17, 692, 2, 3393, 279, 729, 198, 1350, 955, 579,
                                39345, 7, 16, 15, 593, 220, 671, 9258, 25, 220, 20, 20, 198, 13874, 19324, 641, 419, 2038, 11, 279,
                                1565, 75326, 39345, 63, 729, 47417, 279, 55129, 79683, 1372, 1667],
                       budget: "256M", nearTies: [11]))
    }

    /// Perplexity on the same text and chunks as llama-perplexity (Qwen's vocabulary adds no BOS,
    /// so no chunk starts with one): llama.cpp gives 4.7360 for 2 chunks of 512 on the GPL-3 text.
    func testQwenPerplexityMatchesLlamaCpp() throws {
        let text = "/usr/share/common-licenses/GPL-3"
        let path = try TestSupport.converted("qwen2.5-coder-0.5b-instruct")
        let r = try TestSupport.run(tern, ["perplexity", "-m", path, "-f", text, "-c", "512", "--chunks", "2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let ppl = try XCTUnwrap(obj["perplexity"] as? Double)
        XCTAssertEqual(ppl, 4.7360, accuracy: 0.01 * 4.7360, "within 1% of llama-perplexity")
        print("RealModelTests: qwen2.5-coder-0.5b-instruct perplexity \(ppl) (llama.cpp 4.7360)")
    }
}
