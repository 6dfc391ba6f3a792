#!/usr/bin/env bash
# Self-speculative decoding over the fixed prompt set bench/prompts.txt (20 prompts, 64 greedy
# tokens each, 2 threads). Converts and calibrates Gemma 3 270M, then for each drafter alone, the
# calibrated auto mode, and auto under tight --mem-budget values runs `tern bench --speculate`
# (plain and speculative decoding of every prompt, interleaved in one process: tokens/s ratio,
# acceptance, identical outputs, and the most model drafting could gain: plain time per token over
# a draft pass plus a row of verification). In the same run: llama.cpp's plain decoding (llama-bench tg64)
# and llama-lookup on the same prompts.
# Usage: bench/speculate.sh     env: LLAMA_BIN (llama.cpp bin/; default: build via ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
swift build -c release >&2
if [ -z "${LLAMA_BIN:-}" ] && [ -x ../shared/tools/build-llamacpp.sh ]; then LLAMA_BIN="$(bash ../shared/tools/build-llamacpp.sh)"; fi
gguf="$(bash scripts/fetch-model.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tern=.build/release/tern
.build/release/tern-quantize "$gguf" "$work/g.tern" >&2
echo "calibrating (tern calibrate)..." >&2
$tern calibrate -m "$work/g.tern" --json > "$work/cal.json" || echo "calibration stored nothing (see above)" >&2
field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -n 1 | cut -d: -f2- | tr -d '"'; }
skip=$(awk -F'[][]' '/"skip_layers"/ {print $2}' "$work/cal.json")
echo "calibration: $(cat "$work/cal.json")"
echo
lb=0
if [ -n "${LLAMA_BIN:-}" ]; then
  lb=$("$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n 64 -t 2 -r 5 -o csv 2>/dev/null | tail -n 1 | awk -F, '{ gsub(/"/, "", $(NF-1)); print $(NF-1) }')
fi
echo "| drafters | budget | plain t/s | speculative t/s | vs tern plain | vs llama.cpp plain | acceptance | accepted/pass | model drafting's ceiling | identical |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row() {  # mode budget
  local args=(bench -m "$work/g.tern" --speculate "$1" -f bench/prompts.txt -n 64 -t 2 --json)
  [ "$2" = none ] || args+=(--mem-budget "$2")
  local j; j=$($tern "${args[@]}" 2>/dev/null)
  awk -v d="$(field drafters "$j")" -v b="$2" -v p="$(field plain_tps "$j")" -v s="$(field spec_tps "$j")" -v l="$lb" \
      -v a="$(field acceptance "$j")" -v m="$(field mean_accepted "$j")" -v i="$(field identical "$j")" -v n="$(field prompts "$j")" \
      -v c="$(field model_ceiling_speedup "$j")" \
      'BEGIN { printf "| %s | %s | %.1f | %.1f | %.2fx | %s | %.0f%% | %.2f | %s | %d/%d |\n", d, b, p, s, s / p, (l > 0 && b == "none" ? sprintf("%.2fx", s / l) : ""), 100 * a, m, (c > 0 ? sprintf("%.2fx", c) : "-"), i, n }'
}
for mode in lookup vocab:16384 early-exit:14 early-exit:14+vocab:16384 ${skip:+skip:$skip+vocab:16384} auto; do row "$mode" none; done
for b in 256M 160M 100M; do row auto "$b"; done
echo
if [ -n "${LLAMA_BIN:-}" ]; then
  lt=0; ln=0
  while IFS= read -r line; do
    prompt="$(printf '%b' "$line")"
    out=$("$LLAMA_BIN/llama-lookup" -m "$gguf" -p "$prompt" -n 64 --temp 0 -t 2 2>&1 | grep 'decoded' | tail -n 1)
    lt=$(awk -v t="$lt" -v s="$(awk '{for (i=1;i<=NF;i++) if ($i=="in") print $(i+1)}' <<<"$out")" 'BEGIN { print t + s }')
    ln=$((ln + $(awk '{for (i=1;i<=NF;i++) if ($i=="decoded") print $(i+1)}' <<<"$out")))
  done < bench/prompts.txt
  printf "llama.cpp plain (llama-bench tg64, 2 threads): %.1f t/s\n" "$lb"
  awk -v n="$ln" -v t="$lt" -v b="$lb" 'BEGIN { printf "llama.cpp llama-lookup (same prompts): %.1f t/s = %.2fx llama.cpp plain\n", n / t, n / t / b }'
fi
