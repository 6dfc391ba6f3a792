/// Splits text into special tokens and the plain text between them, as llama.cpp's
/// tokenizer_st_partition does: longest special first, leftmost occurrences, user-defined tokens
/// always and control (and unknown) tokens only when `parseSpecial`.
enum SpecialSplitter {
    enum Fragment { case text([UInt8]), token(Int32) }

    /// `specials`: (text, id, isUserDefined), longest text first.
    static func split(_ text: [UInt8], specials: [([UInt8], Int32, Bool)], parseSpecial: Bool) -> [Fragment] {
        var frags: [Fragment] = text.isEmpty ? [] : [.text(text)]
        for (s, id, user) in specials where user || parseSpecial {
            var next: [Fragment] = []
            for f in frags {
                guard case .text(let t) = f else { next.append(f); continue }
                var start = 0, i = 0
                while i + s.count <= t.count {
                    if t[i] == s[0] && t[i..<i + s.count].elementsEqual(s) {
                        if i > start { next.append(.text(Array(t[start..<i]))) }
                        next.append(.token(id))
                        i += s.count
                        start = i
                    } else {
                        i += 1
                    }
                }
                if start < t.count { next.append(.text(Array(t[start...]))) }
            }
            frags = next
        }
        return frags
    }
}
