#!/usr/bin/env bash
# The x86 kernels' weight prefetch on and off in the same run: decode (tg64) of every real model
# at 1 and 2 threads with TERN_PREFETCH=0 and with each distance given, alternating within each
# round so that the machine's drift hits both alike; medians over the rounds and their ratio.
# Usage: bench/prefetch.sh [MODEL...]   env: ROUNDS (3), DISTANCES ("4096"), N (64)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
swift build -c release >&2
ROUNDS="${ROUNDS:-3}"
DISTANCES="${DISTANCES:-4096}"
N="${N:-64}"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(gemma-3-270m smollm2-135m-instruct qwen2.5-coder-0.5b-instruct qwen2.5-coder-1.5b-instruct)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tern=.build/release/tern

echo "## Weight prefetch, on and off — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(machine_line $tern); tg$N, $ROUNDS alternating rounds, medians."
echo
echo "| model | -t | TERN_PREFETCH | tg t/s (each round) | median | vs 0 |"
echo "|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  gguf="$(bash scripts/fetch-model.sh "$m")"
  "${tern}-quantize" "$gguf" "$work/$m.tern" >/dev/null 2>&1
  for t in 1 2; do
    declare -A runs=()
    for _ in $(seq "$ROUNDS"); do
      for d in 0 $DISTANCES; do
        j=$(TERN_PREFETCH=$d $tern bench -m "$work/$m.tern" -p 0 -n "$N" -t "$t" -r 2 --no-roofline --json)
        runs[$d]="${runs[$d]:-} $(field tg_tps "$j")"
      done
    done
    base=$(median <<<"${runs[0]}")
    for d in 0 $DISTANCES; do
      med=$(median <<<"${runs[$d]}")
      awk -v m="$m" -v t="$t" -v d="$d" -v r="${runs[$d]}" -v med="$med" -v base="$base" 'BEGIN {
        n = split(r, v, " "); s = ""; for (i = 1; i <= n; i++) s = s sprintf("%s%.1f", i > 1 ? ", " : "", v[i])
        printf "| %s | %s | %s | %s | %.1f | %.2fx |\n", m, t, d, s, med, med / base }'
    done
    unset runs
  done
done
