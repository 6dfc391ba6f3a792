#!/usr/bin/env bash
# Sharing the CPU: Tern and llama.cpp decoding (tg32) and prefill (pp64) on Gemma 3 270M with 0, 1
# and 2 competing CPU-bound processes (busy loops) on the machine, in the same run, at -t 2 and
# -t 1; two `tern run` processes at once against one alone; -t far above the core count against
# -t 2. Prints markdown tables (bench/README.md keeps the results).
# Usage: bench/contention.sh     env: REPS (3), LLAMA_BIN (llama.cpp bin/; default: build via ../shared),
#        TERN_BASELINE (an older tern binary to compare quiet speeds with, optional)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config time
REPS="${REPS:-3}"
swift build -c release >&2
require_llama_bin
gguf="$(bash scripts/fetch-model.sh)"
work="$(mktemp -d)"
loaders=()
stop_load() { for p in "${loaders[@]}"; do kill "$p" 2>/dev/null || true; done; loaders=(); }
trap 'stop_load; rm -rf "$work"' EXIT
tern=.build/release/tern
.build/release/tern-quantize "$gguf" "$work/g.tern" >/dev/null 2>&1
start_load() { for _ in $(seq "$1"); do sh -c 'while :; do :; done' & loaders+=($!); done; sleep 1; }
# llama-bench's CSV: avg_ts of the pp row and of the tg row (columns found by the header's names)
llama() {  # threads -> "pp tg"
  "$LLAMA_BIN/llama-bench" -m "$gguf" -p 64 -n 32 -t "$1" -r "$REPS" -o csv 2>/dev/null | awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); c[$i] = i }; next }
    { gsub(/"/, ""); if ($c["n_prompt"] > 0) pp = $c["avg_ts"]; else tg = $c["avg_ts"] }
    END { print pp, tg }'
}
ternb() {  # binary threads -> "pp tg"
  local j; j=$("$1" bench -m "$work/g.tern" -p 64 -n 32 -t "$2" -r "$REPS" --no-roofline --json 2>/dev/null)
  echo "$(field pp_tps "$j") $(field tg_tps "$j")"
}
declare -A R
for load in 0 1 2; do
  start_load "$load"
  for t in 2 1; do
    read -r R[l_pp_${load}_$t] R[l_tg_${load}_$t] < <(llama "$t")
    read -r R[t_pp_${load}_$t] R[t_tg_${load}_$t] < <(ternb "$tern" "$t")
    if [ -n "${TERN_BASELINE:-}" ] && [ "$load" -lt 2 ]; then read -r R[b_pp_${load}_$t] R[b_tg_${load}_$t] < <(ternb "$TERN_BASELINE" "$t"); fi
    echo "load $load, -t $t: llama.cpp pp ${R[l_pp_${load}_$t]} tg ${R[l_tg_${load}_$t]}; tern pp ${R[t_pp_${load}_$t]} tg ${R[t_tg_${load}_$t]}" >&2
  done
  stop_load
done
bw=$("$tern" _membw 2)
echo "## Sharing the CPU — $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs,"\
     "tern isa $("$tern" bench -m "$work/g.tern" -p 1 -n 1 -r 1 --no-roofline --json 2>/dev/null | grep -o '"isa":"[^"]*"' | cut -d'"' -f4)"
echo
awk -v bw="$bw" 'BEGIN { printf "Read bandwidth (tern _membw, 2 threads, quiet): %.1f GB/s. Competing load: busy-loop processes (CPU only).\n\n", bw / 1e9 }'
echo "| load | threads | llama.cpp tg32 | share of quiet | tern tg32 | share of quiet | tern/llama | llama.cpp pp64 | tern pp64 | tern/llama |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for load in 0 1 2; do
  for t in 2 1; do
    awk -v L="$load" -v t="$t" -v lt="${R[l_tg_${load}_$t]}" -v lq="${R[l_tg_0_$t]}" -v tt="${R[t_tg_${load}_$t]}" -v tq="${R[t_tg_0_$t]}" \
        -v lp="${R[l_pp_${load}_$t]}" -v tp="${R[t_pp_${load}_$t]}" 'BEGIN {
      printf "| %d busy | %d | %.1f | %.0f%% | %.1f | %.0f%% | %.2fx | %.0f | %.0f | %.2fx |\n", L, t, lt, 100 * lt / lq, tt, 100 * tt / tq, tt / lt, lp, tp, tp / lp }'
  done
done
if [ -n "${TERN_BASELINE:-}" ]; then
  echo
  echo "Against the previous thread pool ($TERN_BASELINE), same run:"
  echo
  echo "| load | threads | before tg32 | after tg32 | after/before | before pp64 | after pp64 | after/before |"
  echo "|---|---|---|---|---|---|---|---|"
  for load in 0 1; do for t in 2 1; do
    awk -v L="$load" -v t="$t" -v a="${R[b_tg_${load}_$t]}" -v b="${R[t_tg_${load}_$t]}" -v c="${R[b_pp_${load}_$t]}" -v d="${R[t_pp_${load}_$t]}" \
      'BEGIN { printf "| %d busy | %d | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |\n", L, t, a, b, b / a, c, d, d / c }'
  done; done
fi

# Two tern processes at once (each -t 2, 64 greedy tokens, plain decoding) against one alone.
run_tps() { field gen_tps "$("$tern" run -m "$work/g.tern" -p "The history of the printing press begins" -n 64 --temp 0 \
                               --speculate off -t "${1:-2}" --json 2>/dev/null)"; }
solo=$(run_tps)
run_tps > "$work/a" & pa=$!
run_tps > "$work/b" & pb=$!
wait "$pa" "$pb"
echo
awk -v s="$solo" -v a="$(cat "$work/a")" -v b="$(cat "$work/b")" 'BEGIN {
  printf "Two `tern run` at once (-t 2 each, 64 tokens): %.1f and %.1f t/s against %.1f alone: %.0f%% and %.0f%% of solo.\n", a, b, s, 100 * a / s, 100 * b / s }'

# -t far above the CPUs: capped to them (with a notice), so it takes what -t 2 takes.
echo
echo "| -t | quiet: seconds for 32 tokens | with 1 busy process |"
echo "|---|---|---|"
secs() { /usr/bin/time -f %e -o "$work/t" "$tern" run -m "$work/g.tern" -p "Hello" -n 32 --temp 0 --speculate off -t "$1" \
         >/dev/null 2>"$work/err"; cat "$work/t"; }
for t in 2 64 1000; do
  q=$(secs "$t")
  start_load 1
  l=$(secs "$t")
  stop_load
  echo "| $t | $q | $l |"
done
grep -h "capped" "$work/err" | head -n 1 | sed 's/^/Notice printed: /' || true
