"""Writes bpe-llamacpp.jsonl: llama-tokenize's ids for every text of bpe_corpus.py.

Usage: python3 make_bpe_fixture.py LLAMA_BIN MODELS_DIR OUT.jsonl
  LLAMA_BIN   the peer build's bin directory (../shared/tools/build-llamacpp.sh prints it)
  MODELS_DIR  where scripts/fetch-model.sh put the GGUFs (~/.cache/tern-models)
Needs the `gguf` Python package (scripts/common.sh python_env).

Rows: {"model", "pre", "text", "parse_special", "ids"}. "pre" is absent for the vocabulary as
the file has it; otherwise the test sets tokenizer.ggml.pre to it ("" removes the key) on
SmolLM2's vocabulary, and here llama-tokenize reads a vocabulary-only copy of the GGUF with the
same change, so each pre-tokenizer Tern knows is checked against llama.cpp's.
"""
import json, os, subprocess, sys, tempfile
import gguf
from bpe_corpus import TEXTS

bin_dir, models_dir, out_path = sys.argv[1:4]
tokenize = os.path.join(bin_dir, "llama-tokenize")
models = {"smollm2-135m-instruct": "smollm2-135m-instruct-q4_1.gguf",
          "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"}
# Pre-tokenizers of other vocabularies, run on SmolLM2's merges ("": none given, llama.cpp's default).
variants = ["gpt-2", "starcoder", "deepseek-llm", "llama-bpe", "qwen2", ""]


def vocab_only(src, dst, pre):
    """A copy of src's metadata (no tensors) with tokenizer.ggml.pre set to pre, or removed if ""."""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, arch=r.get_field("general.architecture").contents())
    for f in r.fields.values():
        if f.name == "general.architecture" or f.name.startswith("GGUF.") or f.name == "tokenizer.ggml.pre":
            continue
        sub = f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(f.name, f.contents(), f.types[0], sub_type=sub)
    if pre:
        w.add_key_value("tokenizer.ggml.pre", pre, gguf.GGUFValueType.STRING)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()


def ids(path, text, special):
    args = [tokenize, "-m", path, "--stdin", "--ids", "--log-disable", "--no-bos"]
    if not special:
        args.append("--no-parse-special")
    r = subprocess.run(args, input=text.encode(), capture_output=True, check=True)
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


with open(out_path, "w") as out, tempfile.TemporaryDirectory() as tmp:
    def write(row):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    for name, file in models.items():
        path = os.path.join(models_dir, file)
        for t in TEXTS:
            for special in (False, True):
                write({"model": name, "text": t, "parse_special": special, "ids": ids(path, t, special)})
    base = os.path.join(models_dir, models["smollm2-135m-instruct"])
    for pre in variants:
        path = os.path.join(tmp, f"vocab-{pre or 'none'}.gguf")
        vocab_only(base, path, pre)
        for t in TEXTS:
            write({"model": "smollm2-135m-instruct", "pre": pre, "text": t, "parse_special": False,
                   "ids": ids(path, t, False)})
