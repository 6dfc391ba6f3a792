#!/usr/bin/env python3
"""Independent reference for Tern's tests: dequantizes GGUF tensors with gguf-py (numpy),
the GGUF library maintained in llama.cpp's repository, and writes each as raw little-endian f32.
usage: gguf_dequant.py MODEL.gguf OUT_DIR NAME [NAME ...]"""
import sys, os
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

def main():
    path, out, names = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    r = GGUFReader(path)
    done = 0
    for t in r.tensors:
        if t.name in names:
            x = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            x.astype("<f4").tofile(os.path.join(out, t.name + ".f32"))
            print(t.name, t.tensor_type.name, x.size)
            done += 1
    if done != len(names):
        sys.exit(f"only {done} of {len(names)} tensors found")

main()
