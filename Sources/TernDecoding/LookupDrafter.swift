/// Prompt-lookup drafting (as llama.cpp's llama-lookup and "prompt lookup decoding" do): when the
/// last n tokens (n from `maxNgram` down to `minNgram`) occurred earlier in the context, propose
/// the tokens that followed their most recent earlier occurrence. Free to compute; strong on
/// text that repeats its context (code edits, summaries, lists).
public struct LookupDrafter: Drafter {
    public var minNgram: Int
    public var maxNgram: Int
    /// Length of the n-gram the last proposal came from (0: none matched).
    public private(set) var matchLength = 0

    public init(minNgram: Int = 1, maxNgram: Int = 3) {
        self.minNgram = max(1, minNgram)
        self.maxNgram = max(self.minNgram, maxNgram)
    }

    public mutating func propose(after history: [Int32], limit: Int, into proposal: inout [Int32]) {
        matchLength = 0
        proposal.removeAll(keepingCapacity: true)
        guard limit > 0 else { return }
        let count = history.count
        for n in stride(from: min(maxNgram, count - 1), through: minNgram, by: -1) where n >= 1 {
            let tail = history[(count - n)...]
            // The most recent earlier occurrence whose continuation is inside the history.
            var i = count - n - 1
            while i >= 0 {
                if history[i] == tail.first!, history[i..<i + n].elementsEqual(tail) {
                    let from = i + n
                    let to = min(count, from + limit)
                    if from < to {
                        matchLength = n
                        proposal.append(contentsOf: history[from..<to])
                        return
                    }
                }
                i -= 1
            }
        }
    }
}
