# A varied corpus: code, Unicode, digits, whitespace runs, CJK, emoji, special-token text.
TEXTS = [
    "Hello world", " Hello world", "Hello World!", "hello, world!  How are you?", "I'm sure they'll've done it, isn't it?",
    "The year 2024 had 366 days; 1234567890 and 3.14159 and 1,000,000.", "x = 42\ny = x ** 2 + 7\nprint(f\"{x=} {y=}\")\n",
    "def is_even(n):\n    return n % 2 == 0\n\n\nclass Foo(Bar):\n\tpass\n", "for (int i = 0; i < n; i++) {\n    a[i] += b[i] * 3;\n}",
    "   leading spaces", "trailing spaces   ", "tabs\t\tand\nnewlines\n\n\nand\r\ncarriage returns", "\n", "  ", "",
    "日本語のテキストと中文文本，还有한국어 텍스트。", "Ünïcödé àccents: café, naïve, Straße, Ærøskøbing", "Emoji: 🦙🔥👍🏽 and 👨‍👩‍👧‍👦 family",
    "Arabic: مرحبا بالعالم, Hebrew: שלום עולם, Hindi: नमस्ते दुनिया", "Math: ∑ᵢ xᵢ² ≤ ∞, α→β, ½ ¾",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|> text after", "<|im_start|> not special when unparsed",
    "URL: https://example.com/path?q=1&r=two#frag", "email@example.org, @handle #hashtag $100 50% ^caret ~tilde |pipe|",
    "ALLCAPS AND MiXeD CaSe Words", "don't DON'T You'Re WE'VE", "a  b   c    d     e", "....!!!???;;;:::---___===+++",
    "\u00a0non-breaking\u00a0space and \u2003em space", "zero\u200bwidth and soft\u00adhyphen", "Ａｂｃ fullwidth １２３",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}", "SELECT * FROM users WHERE id = 7 AND name LIKE '%bob%';",
    # Where the pre-tokenizers differ: digit runs, Greek and Cyrillic letters, trailing whitespace,
    # Unicode spaces, ASCII and full-width punctuation runs, Hangul next to Han.
    "abc123def 4567890 x1y22z333 000", "Ελληνικά και русский текст, Ωmega", "ends with spaces and a tab \t ",
    "ideographic\u3000space\u3000\u3000two", "price: $1,234.56 (approx.)!? «quoted» — dash…", "한국어와中文混合，测试！",
    # White space above ASCII, which llama.cpp matches as \s only (deepseek-llm's literal ranges span
    # U+2028, U+2029 and U+3000): line and paragraph separators, wide spaces beside CJK and symbols.
    "line\u2028sep  \u2029para\u2029", "漢字\u2028漢字 \u3000。end  \u3000→³", "nbsp \u00a0\u0085next\u1680a\u202fb\u205fc",
    "trailing wide spaces \u2003\u3000",
]
