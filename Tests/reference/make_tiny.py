#!/usr/bin/env python3
"""Writes a tiny random GGUF of one model family, for families without real weights here and
for features the real models do not use (Llama 3 frequency factors, linear RoPE scaling, Qwen3's
Q/K norms with a head width that differs from width / heads).

usage: make_tiny.py VARIANT OUT.gguf
VARIANT: llama | llama3 | qwen2 | qwen3 | gemma3 | llama-q5km
Weights are quantized with gguf-py (Q4_1, Q5_0 or Q8_0, as the real models of the family use).
llama-q5km mixes types as llama-quantize's Q5_K_M does for small models: Q5_K where a row is a
whole number of 256-column super-blocks, Q5_1 where not (ffn_down, the embedding); Q5_K is
written by q5_k() below since gguf-py only dequantizes that type.
"""
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFWriter
from gguf.quants import quantize

VARIANTS = {
    # arch, width, heads, kv heads, head dim (None: width / heads), ffn, layers, matrix type, tied head
    "llama": dict(arch="llama", width=128, heads=4, kv=2, hd=None, ffn=96, layers=3, q=Q.Q4_1, tied=True),
    "llama3": dict(arch="llama", width=128, heads=4, kv=1, hd=None, ffn=160, layers=2, q=Q.Q8_0, tied=False,
                   rope_freqs=True, linear=2.0),
    "qwen2": dict(arch="qwen2", width=128, heads=4, kv=2, hd=None, ffn=96, layers=3, q=Q.Q5_0, tied=False, bias=True),
    "qwen3": dict(arch="qwen3", width=64, heads=4, kv=2, hd=32, ffn=96, layers=3, q=Q.Q8_0, tied=True, qk_norm=True),
    "gemma3": dict(arch="gemma3", width=64, heads=2, kv=1, hd=32, ffn=64, layers=4, q=Q.Q8_0, tied=True, qk_norm=True,
                   post_norms=True, window=4, pattern=2),
    "llama-q5km": dict(arch="llama", width=256, heads=4, kv=2, hd=None, ffn=288, layers=2, q=Q.Q5_K, tied=False),
}


def q5_k(a):
    """Q5_K blocks of a (rows x cols, cols a multiple of 256), laid out as ggml's block_q5_K:
    d, dmin (f16), 12 bytes of 6-bit scales and mins (get_scale_min_k4's packing), qh[32], qs[128];
    x = d * sc * q - dmin * m with q in 0..31. Round to nearest, like Q4K.quantize in Swift."""
    rows, cols = a.shape
    x = a.reshape(rows * cols // 256, 8, 32).astype(np.float32)
    lo = np.minimum(x.min(axis=2), 0)
    step, mins = (x.max(axis=2) - lo) / 31, -lo
    d = (step.max(axis=1) / 63).astype(np.float16)
    dmin = (mins.max(axis=1) / 63).astype(np.float16)
    df, mf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    sc = np.where(df > 0, np.minimum(63, np.rint(step / np.where(df > 0, df, 1))), 0).astype(np.uint8)
    m = np.where(mf > 0, np.minimum(63, np.rint(mins / np.where(mf > 0, mf, 1))), 0).astype(np.uint8)
    dsc, mm = (df * sc)[:, :, None], (mf * m)[:, :, None]
    q = np.where(dsc > 0, np.clip(np.rint((x + mm) / np.where(dsc > 0, dsc, 1)), 0, 31), 0).astype(np.uint8)
    n = x.shape[0]
    out = np.zeros((n, 176), np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(n, 2)
    out[:, 2:4] = dmin.view(np.uint8).reshape(n, 2)
    out[:, 4:8] = (sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6)
    out[:, 8:12] = (m[:, :4] & 63) | ((m[:, 4:] >> 4) << 6)
    out[:, 12:16] = (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)
    for j in range(8):
        out[:, 16:48] |= ((q[:, j] >> 4) << j).astype(np.uint8)
    for j in range(4):
        out[:, 48 + 32 * j:80 + 32 * j] = (q[:, 2 * j] & 15) | ((q[:, 2 * j + 1] & 15) << 4)
    return out.reshape(rows, cols // 256 * 176)

TOKENS = ["<unk>", "<s>", "</s>"] + ["\u2581" + chr(ord("a") + i) for i in range(26)] + [chr(ord("a") + i) for i in range(26)]
TOKENS += [f"<extra_{i}>" for i in range(64 - len(TOKENS))]


def main():
    variant, out = sys.argv[1], sys.argv[2]
    v = VARIANTS[variant]
    rng = np.random.default_rng(sum(map(ord, variant)))
    arch, width, heads, kv, ffn, layers = v["arch"], v["width"], v["heads"], v["kv"], v["ffn"], v["layers"]
    hd = v["hd"] or width // heads
    w = GGUFWriter(out, arch)
    w.add_uint32(f"{arch}.embedding_length", width)
    w.add_uint32(f"{arch}.block_count", layers)
    w.add_uint32(f"{arch}.feed_forward_length", ffn)
    w.add_uint32(f"{arch}.attention.head_count", heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", kv)
    w.add_uint32(f"{arch}.context_length", 64)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
    w.add_float32(f"{arch}.rope.freq_base", 10000.0)
    if v["hd"]:
        w.add_uint32(f"{arch}.attention.key_length", hd)
        w.add_uint32(f"{arch}.attention.value_length", hd)
    if "linear" in v:
        w.add_string(f"{arch}.rope.scaling.type", "linear")
        w.add_float32(f"{arch}.rope.scaling.factor", v["linear"])
    if "window" in v:
        w.add_uint32(f"{arch}.attention.sliding_window", v["window"])
        w.add_uint32(f"{arch}.attention.sliding_window_pattern", v["pattern"])
        w.add_float32(f"{arch}.rope.freq_base_swa", 1000.0)
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", TOKENS)
    w.add_array("tokenizer.ggml.scores", [-float(i) for i in range(len(TOKENS))])
    w.add_array("tokenizer.ggml.token_type", [2 if i == 0 else 3 if i < 3 else 1 for i in range(len(TOKENS))])
    w.add_uint32("tokenizer.ggml.bos_token_id", 1)
    w.add_uint32("tokenizer.ggml.eos_token_id", 2)
    w.add_uint32("tokenizer.ggml.unknown_token_id", 0)

    def matrix(name, rows, cols, qtype, scale=None):
        a = (rng.standard_normal((rows, cols)) * (scale or 1 / np.sqrt(cols))).astype(np.float32)
        if qtype == Q.Q5_K and cols % 256:
            qtype = Q.Q5_1
        w.add_tensor(name, q5_k(a) if qtype == Q.Q5_K else quantize(a, qtype), raw_dtype=qtype)

    def vector(name, n, base=1.0, spread=0.2):
        w.add_tensor(name, (base + spread * rng.standard_normal(n)).astype(np.float32))

    vocab = len(TOKENS)
    embd = {"qwen2": Q.Q5_0, "llama-q5km": Q.Q5_1}.get(variant, Q.Q8_0)
    matrix("token_embd.weight", vocab, width, embd, scale=1.0)
    if not v["tied"]:
        matrix("output.weight", vocab, width, Q.Q5_K if variant == "llama-q5km" else Q.Q8_0, scale=0.5)
    vector("output_norm.weight", width)
    if v.get("rope_freqs"):
        vector("rope_freqs.weight", hd // 2, base=4.0, spread=1.0)
    for l in range(layers):
        p = f"blk.{l}."
        vector(p + "attn_norm.weight", width)
        vector(p + "ffn_norm.weight", width)
        matrix(p + "attn_q.weight", heads * hd, width, v["q"])
        matrix(p + "attn_k.weight", kv * hd, width, v["q"])
        matrix(p + "attn_v.weight", kv * hd, width, v["q"])
        matrix(p + "attn_output.weight", width, heads * hd, v["q"])
        matrix(p + "ffn_gate.weight", ffn, width, v["q"])
        matrix(p + "ffn_up.weight", ffn, width, v["q"])
        matrix(p + "ffn_down.weight", width, ffn, v["q"])
        if v.get("bias"):
            vector(p + "attn_q.bias", heads * hd, 0.0, 0.5)
            vector(p + "attn_k.bias", kv * hd, 0.0, 0.5)
            vector(p + "attn_v.bias", kv * hd, 0.0, 0.5)
        if v.get("qk_norm"):
            vector(p + "attn_q_norm.weight", hd)
            vector(p + "attn_k_norm.weight", hd)
        if v.get("post_norms"):
            vector(p + "post_attention_norm.weight", width)
            vector(p + "post_ffw_norm.weight", width)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
