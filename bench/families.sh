#!/usr/bin/env bash
# Every real model, Tern vs llama.cpp in one run: prefill pp128 and decode tg64 at 1 and 2 threads
# (llama-bench, then tern bench on the default conversion), weights read per token and the share
# of the measured read-bandwidth roofline, perplexity on the same text (llama-perplexity vs
# tern perplexity), and decode under a streaming --mem-budget against `tern plan`'s prediction.
# Usage: bench/families.sh [MODEL...]   (scripts/fetch-model.sh names or GGUF paths; default: its four models)
#        env: REPS (3), ROUNDS (1: alternating llama.cpp/Tern pairs per row, medians reported),
#             TEXT (a text file), CTX (512), CHUNKS (8), LLAMA_BIN (llama.cpp bin/)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
REPS="${REPS:-3}"
ROUNDS="${ROUNDS:-1}"
TEXT="${TEXT:-/usr/share/common-licenses/GPL-3}"
CTX="${CTX:-512}"
CHUNKS="${CHUNKS:-8}"
source bench/models.sh "$@"
csvcol() { awk -F, -v name="$1" -v h="$2" -v r="$3" 'BEGIN { n = split(h, H, ","); split(r, R, ","); for (i = 1; i <= n; i++) if (H[i] == name) { gsub(/"/, "", R[i]); print R[i] } }'; }
bw1=$($tern _membw 1); bw2=$($tern _membw 2)


echo "## Model families, Tern vs llama.cpp — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); read bandwidth at the start (tern _membw) $(awk -v a="$bw1" -v b="$bw2" 'BEGIN { printf "%.1f GB/s at 1 thread, %.1f GB/s at 2", a / 1e9, b / 1e9 }'); reps $REPS, rounds $ROUNDS (medians; ratios: the median of the rounds' ratios, their range in brackets)."
echo
echo "| model | -t | llama.cpp pp128 | tern pp128 | ratio | llama.cpp tg64 | tern tg64 | ratio | MB/token (GGUF / tern) | read GB/s after the run | tern % of roofline |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
ppl_rows=()
budget_rows=()
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  gb=$(gguf_token_bytes "$gguf")
  for t in 1 2; do
    # ROUNDS alternating pairs of llama-bench and tern bench; each column is the median over
    # the rounds and each ratio the median of the rounds' ratios (this host's speed drifts
    # between runs by more than the differences measured).
    lpps=(); ltgs=(); tpps=(); ttgs=(); rpps=(); rtgs=(); shares=(); bws=()
    for ((r = 0; r < ROUNDS; r++)); do
      "$LLAMA_BIN/llama-bench" -m "$gguf" -p 128 -n 64 -t "$t" -r "$REPS" -o csv > "$work/lb.csv" 2>/dev/null
      header=$(head -n 1 "$work/lb.csv"); lpp=0; ltg=0
      while IFS= read -r row; do
        [ "$(csvcol n_prompt "$header" "$row")" = 128 ] && lpp=$(csvcol avg_ts "$header" "$row")
        [ "$(csvcol n_gen "$header" "$row")" = 64 ] && ltg=$(csvcol avg_ts "$header" "$row")
      done < <(tail -n +2 "$work/lb.csv")
      # tern bench probes the read bandwidth right after its runs (tern _membw in a child): the
      # roofline of each row is measured on the spot, since this machine's bandwidth drifts.
      j=$($tern bench -m "$work/$m.tern" -p 128 -n 64 -t "$t" -r "$REPS" --json)
      tpp=$(field pp_tps "$j"); ttg=$(field tg_tps "$j"); bpt=$(field bytes_per_token "$j"); bw=$(field read_bw_gbs "$j")
      lpps+=("$lpp"); ltgs+=("$ltg"); tpps+=("$tpp"); ttgs+=("$ttg"); bws+=("$bw")
      rpps+=("$(awk -v a="$tpp" -v b="$lpp" 'BEGIN { print (b > 0 ? a / b : 0) }')")
      rtgs+=("$(awk -v a="$ttg" -v b="$ltg" 'BEGIN { print (b > 0 ? a / b : 0) }')")
      shares+=("$(awk -v g="$ttg" -v bpt="$bpt" -v bw="$bw" 'BEGIN { print (bw > 0 ? 100 * g * bpt / (bw * 1e9) : 0) }')")
    done
    awk -v m="$m" -v t="$t" -v lpp="$(median <<<"${lpps[*]}")" -v tpp="$(median <<<"${tpps[*]}")" \
        -v rpp="$(median <<<"${rpps[*]}")" -v ltg="$(median <<<"${ltgs[*]}")" -v ttg="$(median <<<"${ttgs[*]}")" \
        -v rtg="$(median <<<"${rtgs[*]}")" -v gb="$gb" -v bpt="$bpt" -v bw="$(median <<<"${bws[*]}")" \
        -v share="$(median <<<"${shares[*]}")" -v rpps="${rpps[*]}" -v rtgs="${rtgs[*]}" '
      # a ratio column: the median, and with several rounds the range of the rounds ratios
      function ratio(med, all,   n, v, i, lo, hi) {
        n = split(all, v, " "); lo = hi = v[1] + 0
        for (i = 2; i <= n; i++) { if (v[i] + 0 < lo) lo = v[i] + 0; if (v[i] + 0 > hi) hi = v[i] + 0 }
        return n > 1 ? sprintf("%.2fx (%.2f-%.2f)", med, lo, hi) : sprintf("%.2fx", med)
      }
      BEGIN {
      printf "| %s | %s | %.1f | %.1f | %s | %.1f | %.1f | %s | %.1f / %.1f | %.1f | %.0f%% |\n",
        m, t, lpp, tpp, ratio(rpp, rpps), ltg, ttg, ratio(rtg, rtgs), gb / 1e6, bpt / 1e6, bw, share }'
  done
  if [ -f "$TEXT" ]; then
    lp=$("$LLAMA_BIN/llama-perplexity" -m "$gguf" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t 2 2>&1 | grep -o 'Final estimate: PPL = [0-9.]*' | grep -o '[0-9.]*$')
    tp=$(field perplexity "$($tern perplexity -m "$work/$m.tern" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" --json 2>/dev/null)")
    ppl_rows+=("$(awk -v m="$m" -v a="$tp" -v b="$lp" 'BEGIN { printf "| %s | %.4f | %.4f | %+.2f%% |", m, b, a, 100 * (a - b) / b }')")
  fi
  b=${budget[$m]}
  pj=$($tern plan -m "$work/$m.tern" --mem-budget "$b" -c 200 --json 2>/dev/null)
  rj=$($tern run -m "$work/$m.tern" -p "$(head -n 1 bench/prompts.txt)" -n 64 --temp 0 --speculate off --mem-budget "$b" --json 2>/dev/null)
  budget_rows+=("$(awk -v m="$m" -v b="$b" -v p="$(field predicted_tps "$pj")" -v g="$(field gen_tps "$rj")" -v r="$(field peak_rss_bytes "$rj")" \
    'BEGIN { printf "| %s | %s | %.1f | %.1f | %+.0f%% | %.0f MiB |", m, b, p, g, 100 * (p - g) / g, r / 1048576 }')")
done
if [ ${#ppl_rows[@]} -gt 0 ]; then
  echo
  echo "Perplexity on $TEXT, $CHUNKS chunks of $CTX tokens:"
  echo
  echo "| model | llama.cpp | tern | difference |"
  echo "|---|---|---|---|"
  printf '%s\n' "${ppl_rows[@]}"
else
  echo
  echo "No perplexity rows: $TEXT is not a file."
fi
echo
echo "Decode under --mem-budget (64 tokens, 2 threads) against tern plan's prediction:"
echo
echo "| model | budget | predicted t/s | measured t/s | prediction error | peak RSS |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${budget_rows[@]}"
