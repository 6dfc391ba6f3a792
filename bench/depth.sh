#!/usr/bin/env bash
# Decode after a long context, Tern vs llama.cpp in one run: tg64 after DEPTHS tokens of context
# (llama-bench -d; tern bench -d, the context prefilled untimed) at 1 and 2 threads. At depth,
# every step also reads the whole KV cache, so attention, not the weights alone, sets the speed;
# and prefill of a prompt of the largest depth (pp, which attends over a growing context).
# Usage: bench/depth.sh [MODEL...]   (default: the four models of scripts/fetch-model.sh)
#        env: REPS (3), DEPTHS ("0 1024 4096"), LLAMA_BIN (llama.cpp bin/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
REPS="${REPS:-3}"
DEPTHS="${DEPTHS:-0 1024 4096}"
largest=$(tr ' ' '\n' <<<"$DEPTHS" | sort -n | tail -n 1)
source bench/models.sh "$@"
llama_ts() { python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["avg_ts"])'; }

echo "### Decode at depth, Tern vs llama.cpp — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)"
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); reps $REPS. tg64 t/s after d tokens of context;"
echo "the tern isa of each row is in its last column."
echo
echo "| model | -t | d | llama.cpp tg64 | tern tg64 | ratio | isa |"
echo "|---|---|---|---|---|---|---|"
pp_rows=()
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  for t in 1 2; do
    for d in $DEPTHS; do
      l=$("$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n 64 -d "$d" -t "$t" -r "$REPS" -o json 2>/dev/null | llama_ts)
      j=$($tern bench -m "$work/$m.tern" -p 0 -n 64 -d "$d" -t "$t" -r "$REPS" --no-roofline --json)
      isa=$(grep -o '"isa":"[a-z0-9]*"' <<<"$j" | cut -d'"' -f4)
      awk -v m="$m" -v t="$t" -v d="$d" -v l="$l" -v n="$(field tg_tps "$j")" -v isa="$isa" \
        'BEGIN { printf "| %s | %s | %s | %.1f | %.1f | %.2fx | %s |\n", m, t, d, l, n, n / l, isa }'
    done
  done
  l=$("$LLAMA_BIN/llama-bench" -m "$gguf" -p "$largest" -n 0 -t 2 -r 1 -o json 2>/dev/null | llama_ts)
  n=$(field pp_tps "$($tern bench -m "$work/$m.tern" -p "$largest" -n 0 -t 2 -r 1 --no-roofline --json)")
  pp_rows+=("$(awk -v m="$m" -v l="$l" -v n="$n" 'BEGIN { printf "| %s | %.1f | %.1f | %.2fx |", m, l, n, n / l }')")
done
echo
echo "Prefill of a $largest-token prompt, 2 threads, one repetition:"
echo
echo "| model | llama.cpp pp$largest | tern pp$largest | ratio |"
echo "|---|---|---|---|"
printf '%s\n' "${pp_rows[@]}"
