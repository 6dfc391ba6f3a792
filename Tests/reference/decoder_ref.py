#!/usr/bin/env python3
"""An independent float reference for Tern's model families, straight from a GGUF file.

Reads the GGUF with llama.cpp's gguf-py, dequantizes every tensor with its numpy code, and runs
the forward pass in float64 numpy, written from the papers and llama.cpp's model graphs (not
from Tern's Swift). Families: llama, qwen2, qwen3, gemma3.

usage: decoder_ref.py MODEL.gguf TOKENS_JSON [--generate N] [--top K]
Prints JSON: {"logits": [...last position...], "greedy": [...N tokens...], "top": [[id, logit], ...]}
With --all, "all_logits" holds every prompt position's logits.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(r, key, default=None):
    f = r.fields.get(key)
    if f is None:
        return default
    v = f.contents()
    return v


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        self.arch = arch = field(r, "general.architecture")
        g = lambda k, d=None: field(r, f"{arch}.{k}", d)
        self.width = g("embedding_length")
        self.layers = g("block_count")
        self.heads = g("attention.head_count")
        self.kv_heads = g("attention.head_count_kv", self.heads)
        self.head_dim = g("attention.key_length", self.width // self.heads)
        gemma = arch == "gemma3"
        self.eps = g("attention.layer_norm_rms_epsilon", 1e-6 if arch != "llama" else 1e-5)
        base = g("rope.freq_base", 10000.0 if arch == "llama" else 1e6)
        scale = 1.0
        if g("rope.scaling.type") == "linear":
            scale = 1.0 / g("rope.scaling.factor")
        self.t = {}
        for t in r.tensors:
            # Stored as float32 (exactly what dequantization gives); every product is float64.
            a = dequantize(t.data, t.tensor_type).astype(np.float32)
            shape = [int(x) for x in reversed(t.shape)]
            self.t[t.name] = a.reshape(shape)
        self.vocab = self.t["token_embd.weight"].shape[0]
        half = self.head_dim // 2
        factors = self.t.get("rope_freqs.weight", np.ones(half)).astype(np.float64)
        inv = lambda b: scale * b ** (-2.0 * np.arange(half) / self.head_dim) / factors
        if gemma:
            window = g("attention.sliding_window")
            pattern = g("attention.sliding_window_pattern", 6)
            local = g("rope.freq_base_swa", 10000.0)
            sliding = [l % pattern < pattern - 1 for l in range(self.layers)]
            self.window = [window if s else 0 for s in sliding]
            self.inv = [inv(local) if s else inv(base) for s in sliding]
        else:
            self.window = [0] * self.layers
            self.inv = [inv(base)] * self.layers
        self.neox = arch != "llama"
        self.head = self.t.get("output.weight", self.t["token_embd.weight"])

    def rms(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos, inv):
        # x: [n, heads, d]
        ang = np.outer(pos, inv)[:, None, :]
        c, s = np.cos(ang), np.sin(ang)
        if self.neox:
            h = self.head_dim // 2
            a, b = x[..., :h], x[..., h:]
            return np.concatenate([a * c - b * s, a * s + b * c], axis=-1)
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = a * c - b * s
        out[..., 1::2] = a * s + b * c
        return out

    def act(self, g):
        if self.arch == "gemma3":
            return 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        return g / (1 + np.exp(-g))

    def forward(self, tokens):
        """Logits of every position of `tokens` (one pass from position 0)."""
        T, n = self.t, len(tokens)
        pos = np.arange(n)
        x = T["token_embd.weight"][tokens].astype(np.float64)
        if self.arch == "gemma3":
            x *= np.float32(np.sqrt(self.width))
        hd, H, KV = self.head_dim, self.heads, self.kv_heads
        for l in range(self.layers):
            p = f"blk.{l}."
            h = self.rms(x, T[p + "attn_norm.weight"])
            q = h @ T[p + "attn_q.weight"].T
            k = h @ T[p + "attn_k.weight"].T
            v = h @ T[p + "attn_v.weight"].T
            if p + "attn_q.bias" in T:
                q, k, v = q + T[p + "attn_q.bias"], k + T[p + "attn_k.bias"], v + T[p + "attn_v.bias"]
            q, k, v = q.reshape(n, H, hd), k.reshape(n, KV, hd), v.reshape(n, KV, hd)
            if p + "attn_q_norm.weight" in T:
                q = self.rms(q, T[p + "attn_q_norm.weight"])
                k = self.rms(k, T[p + "attn_k_norm.weight"])
            q, k = self.rope(q, pos, self.inv[l]), self.rope(k, pos, self.inv[l])
            att = np.empty((n, H, hd))
            for i in range(n):
                lo = max(0, i - self.window[l] + 1) if self.window[l] else 0
                for hh in range(H):
                    kh = hh // (H // KV)
                    sc = k[lo:i + 1, kh] @ q[i, hh] / np.sqrt(hd)
                    w = np.exp(sc - sc.max())
                    att[i, hh] = (w / w.sum()) @ v[lo:i + 1, kh]
            o = att.reshape(n, H * hd) @ T[p + "attn_output.weight"].T
            if p + "post_attention_norm.weight" in T:
                o = self.rms(o, T[p + "post_attention_norm.weight"])
            x = x + o
            h = self.rms(x, T[p + "ffn_norm.weight"])
            f = (self.act(h @ T[p + "ffn_gate.weight"].T) * (h @ T[p + "ffn_up.weight"].T)) @ T[p + "ffn_down.weight"].T
            if p + "post_ffw_norm.weight" in T:
                f = self.rms(f, T[p + "post_ffw_norm.weight"])
            x = x + f
        return self.rms(x, T["output_norm.weight"]) @ self.head.T


def main():
    args = sys.argv[1:]
    m = Model(args[0])
    tokens = json.loads(args[1])
    gen = int(args[args.index("--generate") + 1]) if "--generate" in args else 0
    top = int(args[args.index("--top") + 1]) if "--top" in args else 5
    logits = m.forward(tokens)
    out = {"logits": logits[-1].tolist()}
    if "--all" in args:
        out["all_logits"] = logits.tolist()
    seq = list(tokens)
    greedy = []
    last = logits[-1]
    for _ in range(gen):
        t = int(np.argmax(last))
        greedy.append(t)
        seq.append(t)
        last = m.forward(seq)[-1]
    out["greedy"] = greedy
    order = np.argsort(-logits[-1])[:top]
    out["top"] = [[int(i), float(logits[-1][i])] for i in order]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
