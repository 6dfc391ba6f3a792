#!/usr/bin/env bash
# Tern vs llama.cpp, side by side in one run, on the same Gemma 3 270M Q4_K_M GGUF and its .tern
# conversions (LM head q8, as converted by default, and --lm-head q4): prefill pp128 and decode
# tg64 at 1 and 2 threads (llama-bench vs tern bench, alternating), peak RSS of each process,
# the read-bandwidth roofline, and perplexity (llama-perplexity vs tern perplexity, same text).
# Usage: bench/compare-llamacpp.sh            env: REPS (5), TEXT (a text file), CTX (512),
#        LLAMA_BIN (a llama.cpp bin/ dir; default: build it with ../shared/tools/build-llamacpp.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
REPS="${REPS:-5}"
TEXT="${TEXT:-/usr/share/common-licenses/GPL-3}"
CTX="${CTX:-512}"
apt_install libzstd-dev pkg-config time
swift build -c release >&2
require_llama_bin
gguf="$(bash scripts/fetch-model.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tern=.build/release/tern
.build/release/tern-quantize "$gguf" "$work/q8.tern" >&2
.build/release/tern-quantize "$gguf" "$work/q4.tern" --lm-head q4 >&2

# field NAME JSON -> value of a numeric field in a one-line JSON object
# csvcol NAME HEADER ROW -> the column NAME of a CSV row (no quoted commas in llama-bench's fields we read)
csvcol() { awk -F, -v name="$1" -v h="$2" -v r="$3" 'BEGIN { n = split(h, H, ","); split(r, R, ","); for (i = 1; i <= n; i++) if (H[i] == name) { gsub(/"/, "", R[i]); print R[i] } }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }

declare -A R
for t in 1 2; do
  /usr/bin/time -f %M -o "$work/rss" "$LLAMA_BIN/llama-bench" -m "$gguf" -p 128 -n 64 -t "$t" -r "$REPS" -o csv > "$work/lb.csv" 2>/dev/null
  R[llama_rss_$t]=$(( $(cat "$work/rss") / 1024 ))
  header=$(head -n 1 "$work/lb.csv")
  while IFS= read -r row; do
    p=$(csvcol n_prompt "$header" "$row"); g=$(csvcol n_gen "$header" "$row")
    ts=$(csvcol avg_ts "$header" "$row"); sd=$(csvcol stddev_ts "$header" "$row")
    if [ "$p" = 128 ]; then R[llama_pp_$t]=$ts; R[llama_ppsd_$t]=$sd; fi
    if [ "$g" = 64 ]; then R[llama_tg_$t]=$ts; R[llama_tgsd_$t]=$sd; fi
  done < <(tail -n +2 "$work/lb.csv")
  for v in q8 q4; do
    /usr/bin/time -f %M -o "$work/rss" "$tern" bench -m "$work/$v.tern" -p 128 -n 64 -t "$t" -r "$REPS" --no-roofline --json > "$work/tb.json"
    j=$(cat "$work/tb.json")
    R[${v}_pp_$t]=$(field pp_tps "$j"); R[${v}_ppsd_$t]=$(field pp_sd "$j")
    R[${v}_tg_$t]=$(field tg_tps "$j"); R[${v}_tgsd_$t]=$(field tg_sd "$j")
    R[${v}_rss_$t]=$(( $(cat "$work/rss") / 1024 ))
    R[${v}_bpt]=$(field bytes_per_token "$j"); R[isa]=$(grep -o '"isa":"[^"]*"' <<<"$j" | cut -d'"' -f4)
  done
done
bw2=$("$tern" _membw 2); bw1=$("$tern" _membw 1)
membw=""
if [ -f ../shared/tools/membw.c ] && cc -O3 -march=native -fopenmp ../shared/tools/membw.c -o "$work/membw" 2>/dev/null; then
  membw="; shared/tools/membw.c: $("$work/membw" 1024 2 | grep -o '[0-9.]* GB/s') (2 threads)"
fi

echo "## Tern vs llama.cpp — $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), tern isa ${R[isa]}, reps $REPS"
echo
echo "| threads | test | llama.cpp t/s | tern (lm-head q8) t/s | ratio | tern (lm-head q4) t/s | ratio |"
echo "|---|---|---|---|---|---|---|"
for t in 1 2; do
  for k in pp tg; do
    n=$([ $k = pp ] && echo pp128 || echo tg64)
    printf "| %s | %s | %.1f ± %.1f | %.1f ± %.1f | %s | %.1f ± %.1f | %s |\n" "$t" "$n" \
      "${R[llama_${k}_$t]}" "${R[llama_${k}sd_$t]}" "${R[q8_${k}_$t]}" "${R[q8_${k}sd_$t]}" "$(ratio "${R[q8_${k}_$t]}" "${R[llama_${k}_$t]}")" \
      "${R[q4_${k}_$t]}" "${R[q4_${k}sd_$t]}" "$(ratio "${R[q4_${k}_$t]}" "${R[llama_${k}_$t]}")"
  done
  printf "| %s | peak RSS (MiB) | %s | %s | | %s | |\n" "$t" "${R[llama_rss_$t]}" "${R[q8_rss_$t]}" "${R[q4_rss_$t]}"
done
echo
awk -v b8="${R[q8_bpt]}" -v b4="${R[q4_bpt]}" -v bw2="$bw2" -v bw1="$bw1" -v t8="${R[q8_tg_2]}" -v t4="${R[q4_tg_2]}" -v t81="${R[q8_tg_1]}" 'BEGIN {
  printf "Weights read per decoded token: %.1f MB (lm-head q8), %.1f MB (lm-head q4).\n", b8 / 1e6, b4 / 1e6
  printf "Read bandwidth (tern _membw): %.1f GB/s at 2 threads, %.1f GB/s at 1 thread", bw2 / 1e9, bw1 / 1e9 }'
echo "$membw."
awk -v b8="${R[q8_bpt]}" -v b4="${R[q4_bpt]}" -v bw2="$bw2" -v bw1="$bw1" -v t8="${R[q8_tg_2]}" -v t4="${R[q4_tg_2]}" -v t81="${R[q8_tg_1]}" 'BEGIN {
  printf "Roofline tg (2 threads): %.0f t/s (q8 head), %.0f t/s (q4 head); tern tg64 is %.0f%% and %.0f%% of it. 1 thread, q8 head: %.0f%%.\n",
    bw2 / b8, bw2 / b4, 100 * t8 / (bw2 / b8), 100 * t4 / (bw2 / b4), 100 * t81 / (bw1 / b8) }'
echo

if [ -f "$TEXT" ]; then
  lp=$("$LLAMA_BIN/llama-perplexity" -m "$gguf" -f "$TEXT" -c "$CTX" -t 2 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' | grep -o '[0-9.]*$')
  p8=$(field perplexity "$("$tern" perplexity -m "$work/q8.tern" -f "$TEXT" -c "$CTX" --json 2>/dev/null)")
  p4=$(field perplexity "$("$tern" perplexity -m "$work/q4.tern" -f "$TEXT" -c "$CTX" --json 2>/dev/null)")
  echo "Perplexity on $TEXT, ctx $CTX:"
  echo
  echo "| | PPL | vs llama.cpp |"
  echo "|---|---|---|"
  echo "| llama.cpp (GGUF) | $lp | |"
  awk -v a="$p8" -v b="$lp" 'BEGIN { printf "| tern, lm-head q8 | %.4f | %+.2f%% |\n", a, 100 * (a - b) / b }'
  awk -v a="$p4" -v b="$lp" 'BEGIN { printf "| tern, lm-head q4 | %.4f | %+.2f%% |\n", a, 100 * (a - b) / b }'
fi
