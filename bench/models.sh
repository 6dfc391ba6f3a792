# Sourced by bench/families.sh, bench/greedy.sh, bench/depth.sh, bench/bandwidth-bound.sh and
# bench/lookup.sh (after scripts/common.sh): their shared set-up (packages, the Python environment
# with gguf, a release build, llama.cpp's bin/ in LLAMA_BIN unless NO_PEER=1), the real models
# (scripts/fetch-model.sh names or GGUF paths), a scratch folder and a --mem-budget for each that
# makes it stream most of its weights.
apt_install libzstd-dev pkg-config
python_env gguf numpy
swift build -c release >&2
[ "${NO_PEER:-0}" = 1 ] || require_llama_bin
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(gemma-3-270m smollm2-135m-instruct qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct)
# A scratch folder, removed on exit (a script that sets its own EXIT trap removes "$work" there),
# and the CLI.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tern=.build/release/tern
declare -A budget=([gemma-3-270m]=160M [smollm2-135m-instruct]=80M [qwen2.5-coder-0.5b-instruct]=256M
                   [qwen2.5-coder-1.5b-instruct]=256M)
# A model is a scripts/fetch-model.sh name or the path of a GGUF of your own (its name in the
# tables: the file name without .gguf; its budget: half the file, at least 80 MiB, so that it streams).
model_gguf() { if [ -f "$1" ]; then printf '%s\n' "$1"; else bash scripts/fetch-model.sh "$1"; fi; }
model_name() { basename "$1" .gguf; }
for m in "${models[@]}"; do
  if [ -f "$m" ]; then half=$(( $(stat -c %s "$m") / 2 / 1048576 )); budget[$(model_name "$m")]="$(( half > 80 ? half : 80 ))M"; fi
done

# gguf_token_bytes GGUF: the bytes llama.cpp reads per decoded token, every tensor but an untied
# token embedding (of which it reads one row).
gguf_token_bytes() {
  python3 - "$1" <<'PY'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
names = {t.name for t in r.tensors}
print(sum(int(t.n_bytes) for t in r.tensors if t.name != "token_embd.weight" or "output.weight" not in names))
PY
}
