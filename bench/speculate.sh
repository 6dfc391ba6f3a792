#!/usr/bin/env bash
# Self-speculative decoding over the fixed prompt set bench/prompts.txt (20 prompts, 64 greedy
# tokens each, 2 threads): Tern plain vs Tern --speculate lookup, with llama.cpp's plain decoding
# (llama-bench tg64) and llama-lookup on the same prompts in the same run. Decode tokens/s are
# total tokens / total decode time over the set.
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
.build/release/tern-quantize "$gguf" "$work/g.tern" >&2
field() { grep -o "\"$1\":[-0-9.e]*" <<<"$2" | head -n 1 | cut -d: -f2; }
declare -A T=([off]=0 [lookup]=0) N=([off]=0 [lookup]=0)
drafted=0; accepted=0; same=0; lt=0; ln=0; count=0
while IFS= read -r line; do
  prompt="$(printf '%b' "$line")"
  count=$((count + 1))
  for mode in off lookup; do
    j=$(.build/release/tern run -m "$work/g.tern" -p "$prompt" -n 64 --temp 0 -t 2 --speculate "$mode" --json 2>/dev/null)
    n=$(grep -o '"tokens":\[[^]]*\]' <<<"$j" | tr -cd ',' | wc -c); n=$((n + 1))
    tps=$(field gen_tps "$j")
    T[$mode]=$(awk -v t="${T[$mode]}" -v n="$n" -v s="$tps" 'BEGIN { print t + (n - 1) / s }')
    N[$mode]=$((N[$mode] + n - 1))
    echo "$j" | grep -o '"tokens":\[[^]]*\]' > "$work/$mode.tokens"
    if [ "$mode" = lookup ]; then
      drafted=$((drafted + $(field drafted "$j"))); accepted=$((accepted + $(field accepted "$j")))
    fi
  done
  cmp -s "$work/off.tokens" "$work/lookup.tokens" && same=$((same + 1))
  if [ -n "${LLAMA_BIN:-}" ]; then
    out=$("$LLAMA_BIN/llama-lookup" -m "$gguf" -p "$prompt" -n 64 --temp 0 -t 2 2>&1 | grep 'decoded' | tail -n 1)
    lt=$(awk -v t="$lt" -v s="$(awk '{for (i=1;i<=NF;i++) if ($i=="in") print $(i+1)}' <<<"$out")" 'BEGIN { print t + s }')
    ln=$((ln + $(awk '{for (i=1;i<=NF;i++) if ($i=="decoded") print $(i+1)}' <<<"$out")))
  fi
done < bench/prompts.txt
off=$(awk -v n="${N[off]}" -v t="${T[off]}" 'BEGIN { printf "%.1f", n / t }')
look=$(awk -v n="${N[lookup]}" -v t="${T[lookup]}" 'BEGIN { printf "%.1f", n / t }')
echo "| decoder | decode t/s (20 prompts x 64 tokens) | vs tern plain | vs llama.cpp plain |"
echo "|---|---|---|---|"
lb=""
if [ -n "${LLAMA_BIN:-}" ]; then
  lb=$("$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n 64 -t 2 -r 5 -o csv 2>/dev/null | tail -n 1 | awk -F, '{ gsub(/"/, "", $(NF-1)); print $(NF-1) }')
  printf "| llama.cpp plain (llama-bench tg64) | %.1f | | 1.00x |\n" "$lb"
  awk -v n="$ln" -v t="$lt" -v b="$lb" -v o="$off" 'BEGIN { printf "| llama.cpp llama-lookup | %.1f | %.2fx | %.2fx |\n", n / t, n / t / o, n / t / b }'
fi
awk -v o="$off" -v b="${lb:-0}" 'BEGIN { printf "| tern plain | %.1f | 1.00x | %s |\n", o, (b > 0 ? sprintf("%.2fx", o / b) : "") }'
awk -v l="$look" -v o="$off" -v b="${lb:-0}" 'BEGIN { printf "| tern --speculate lookup | %.1f | %.2fx | %s |\n", l, l / o, (b > 0 ? sprintf("%.2fx", l / b) : "") }'
echo
echo "Lookup drafts accepted: $accepted of $drafted; identical greedy output on $same of $count prompts."
