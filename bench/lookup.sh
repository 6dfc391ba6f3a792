#!/usr/bin/env bash
# Lookup drafting alone (`--speculate lookup`, what `auto` drafts with until `tern calibrate` has
# run) against plain decoding, on every real model: `tern bench --speculate lookup` over
# bench/prompts.txt (20 varied prompts) and bench/prompts-repetitive.txt (4 prompts whose
# continuations repeat their context), 64 greedy tokens each, at 1 and 2 threads. Each run decodes
# every prompt plainly and with lookup drafts, back to back in one process; the table gives both
# speeds, the ratio, the drafts verified and kept, and whether the tokens were identical.
# Usage: bench/lookup.sh [MODEL...]   (scripts/fetch-model.sh names or GGUF paths; default: its four)
#        env: THREADS ("1 2")
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
NO_PEER=1 source bench/models.sh "$@"  # no llama.cpp needed here
THREADS="${THREADS:-1 2}"
echo "## Lookup drafting alone vs plain decoding — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(git rev-parse --short HEAD)"
echo
echo "| model | prompts | -t | plain t/s | lookup t/s | ratio | drafts kept / verified | tokens per pass | identical |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  for prompts in bench/prompts.txt bench/prompts-repetitive.txt; do
    for t in $THREADS; do
      j=$($tern bench -m "$work/$m.tern" --speculate lookup -f "$prompts" -n 64 -t "$t" --json)
      printf '| %s | %s | %s | %.1f | %.1f | %.2fx | %s / %s | %.2f | %s of %s |\n' "$m" "$(basename "$prompts")" "$t" \
        "$(field plain_tps "$j")" "$(field spec_tps "$j")" "$(field speedup "$j")" "$(field accepted "$j")" \
        "$(field drafted "$j")" "$(field tokens_per_pass "$j")" "$(field identical "$j")" "$(field prompts "$j")"
    done
  done
done
