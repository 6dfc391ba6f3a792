"""Writes the fuzzers' seed files: a tiny GGUF (Gemma 3 architecture, a SentencePiece vocabulary
with normal, control, user-defined and byte tokens, and one tensor of each type the converter
maps) that tern-quantize then turns into tiny raw and zstd .tern seeds (Tests/fuzz/run.sh).
Usage: python3 make_seeds.py OUT.gguf [OUT-BPE.gguf]   (needs gguf-py and numpy)."""
import sys

import gguf
import numpy as np

out = sys.argv[1]
w = gguf.GGUFWriter(out, "gemma3")
tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<mask>"]
types = [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.USER_DEFINED]
for b in range(256):
    tokens.append(f"<0x{b:02X}>")
    types.append(gguf.TokenType.BYTE)
for piece in ["\u2581", "\u2581the", "\u2581a", "e", "t", "he", "\u2581t", "in", "\u2581in", "\u65e5\u672c", "\U0001F600"]:
    tokens.append(piece)
    types.append(gguf.TokenType.NORMAL)
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores([float(-i) for i in range(len(tokens))])
w.add_token_types(types)
w.add_bos_token_id(2)
w.add_eos_token_id(1)
w.add_add_bos_token(True)
w.add_block_count(1)
w.add_uint32("gemma3.embedding_length", 64)
rng = np.random.default_rng(1)
w.add_tensor("norm.weight", rng.standard_normal(64).astype(np.float32))
w.add_tensor("f16.weight", rng.standard_normal((4, 64)).astype(np.float16))
# q8 large enough (>= 64 KiB converted) for tern-quantize --compress to store it as zstd chunks.
for name, qt, rows in [("q8.weight", gguf.GGMLQuantizationType.Q8_0, 2048), ("q4.weight", gguf.GGMLQuantizationType.Q4_0, 8)]:
    x = (rng.standard_normal((rows, 64)) * (rng.random((rows, 64)) < 0.1)).astype(np.float32)
    w.add_tensor(name, gguf.quants.quantize(x, qt), raw_dtype=qt)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# A second seed with a byte-level BPE vocabulary (tokenizer.ggml.model gpt2, Llama 3's
# pre-tokenizer): GPT-2's byte characters, a few merges, control tokens.
if len(sys.argv) > 2:
    w = gguf.GGUFWriter(sys.argv[2], "llama")
    chars = [chr(b) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255 else None for b in range(256)]
    n = 256
    for b in range(256):
        if chars[b] is None:
            chars[b] = chr(n)
            n += 1
    tokens = chars + ["\u0120t", "he", "\u0120the", "in", "<|begin_of_text|>", "<|eot_id|>"]
    types = [gguf.TokenType.NORMAL] * (len(tokens) - 2) + [gguf.TokenType.CONTROL] * 2
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["\u0120 t", "h e", "\u0120t he", "i n"])
    w.add_bos_token_id(len(tokens) - 2)
    w.add_eos_token_id(len(tokens) - 1)
    w.add_tensor("norm.weight", np.ones(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
