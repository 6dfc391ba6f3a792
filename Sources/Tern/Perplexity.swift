import Foundation
import TernKernels
import TernModels

/// Perplexity as llama.cpp's llama-perplexity computes it: the text (with BOS) is cut into
/// non-overlapping chunks of `context` tokens, the first token of each chunk is replaced by BOS
/// (when the vocabulary adds one), and each chunk scores only its second half (positions
/// context/2 ..< context - 1 predicting the next token), so every scored token has at least
/// context/2 tokens of history.
public struct PerplexityResult: Sendable {
    public var chunks: [Double] = []      // running perplexity after each chunk
    public var perplexity: Double = 0
    /// Standard error of the estimate (from the spread of per-token log-likelihoods).
    public var stdError: Double = 0
    public var scoredTokens = 0
    public var tokensPerSecond = 0.0
}

extension Generator {
    public func perplexity(text: String, context: Int, maxChunks: Int? = nil,
                           progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        let tokens = model.tokenizer.encode(text)
        guard context >= 4, context <= model.model.contextLength else {
            throw TernError.usage("context \(context) must be between 4 and the model's \(model.model.contextLength)")
        }
        guard tokens.count >= 2 * context else {
            throw TernError.usage("the text has \(tokens.count) tokens; at least \(2 * context) are needed for a " +
                "context of \(context)")
        }
        let lm = model.model
        // llama-perplexity puts BOS first only for vocabularies that add one (Qwen's do not).
        let bos = model.tokenizer.addBOS ? model.tokenizer.bos : nil
        var chunks = tokens.count / context
        if let m = maxChunks { chunks = min(chunks, m) }
        let first = context / 2
        let batch = min(32, model.options.maxBatch)
        let state = lm.makeState(capacity: context, maxBatch: batch,
                                 options: StateOptions(logitsRows: batch, kv: model.kvPrecision))
        var nll = 0.0, nll2 = 0.0, count = 0
        var result = PerplexityResult()
        let t0 = Date()
        for c in 0..<chunks {
            var ids = Array(tokens[c * context..<(c + 1) * context])
            if let bos { ids[0] = bos }
            var pos = 0
            while pos < context {
                let n = min(batch, context - pos)
                try lm.forward(tokens: Array(ids[pos..<pos + n]), startPos: pos, layers: 0..<lm.layerCount, embed: true,
                           allLogits: true, state: state, parallel: parallel)
                for i in 0..<n {
                    let p = pos + i
                    guard p >= first, p < context - 1 else { continue }
                    let lp = logSoftmax(state.logitsRow(i), Int(ids[p + 1]))
                    nll -= lp
                    nll2 += lp * lp
                    count += 1
                }
                pos += n
            }
            result.chunks.append(exp(nll / Double(count)))
            progress(c + 1, chunks, result.chunks.last!)
        }
        let mean = nll / Double(count)
        result.perplexity = exp(mean)
        let variance = max(0, nll2 / Double(count) - mean * mean)
        result.stdError = result.perplexity * (variance / Double(max(1, count - 1))).squareRoot()
        result.scoredTokens = count
        result.tokensPerSecond = Double(chunks * context) / Date().timeIntervalSince(t0)
        return result
    }
}

/// log softmax(logits)[target], in double.
func logSoftmax(_ logits: UnsafeBufferPointer<Float>, _ target: Int) -> Double {
    var m = -Float.infinity
    for v in logits { m = max(m, v) }
    var s = 0.0
    for v in logits { s += exp(Double(v - m)) }
    return Double(logits[target] - m) - log(s)
}
