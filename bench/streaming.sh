#!/usr/bin/env bash
# Streamed weights used in place against copied, in the same run: each real model under its
# streaming --mem-budget (bench/models.sh), decode tg64 at 1 and 2 threads with the streamed
# weights used in place from the map (the default on Linux) and copied through the slots
# (TERN_STREAM=copy), ROUNDS alternating pairs, medians; with tern plan's prediction for each
# (-c 65, the context tern bench -p 0 -n 64 plans for) and the peak RSS.
# Usage: bench/streaming.sh [MODEL...]   (scripts/fetch-model.sh names or GGUF paths; default: the four)
#        env: ROUNDS (3), REPS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
ROUNDS="${ROUNDS:-3}"
REPS="${REPS:-2}"
source bench/models.sh "$@"

echo "## Streaming in place vs copying — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(machine_line $tern); Linux $(uname -r); tg64, reps $REPS, rounds $ROUNDS (medians; ratio ranges in brackets)."
echo
echo "| model | isa | budget | -t | in place t/s | copied t/s | in place / copied | plan (in place / copied) | peak RSS MiB (in place / copied) |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"; b=${budget[$m]}
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  for t in 1 2; do
    maps=(); copies=(); ratios=(); rss_map=0; rss_copy=0
    for ((r = 0; r < ROUNDS; r++)); do
      jm=$($tern bench -m "$work/$m.tern" -p 0 -n 64 -t "$t" -r "$REPS" --no-roofline --mem-budget "$b" --json)
      jc=$(TERN_STREAM=copy $tern bench -m "$work/$m.tern" -p 0 -n 64 -t "$t" -r "$REPS" --no-roofline --mem-budget "$b" --json)
      maps+=("$(field tg_tps "$jm")"); copies+=("$(field tg_tps "$jc")")
      ratios+=("$(awk -v a="$(field tg_tps "$jm")" -v b="$(field tg_tps "$jc")" 'BEGIN { print (b > 0 ? a / b : 0) }')")
      rss_map=$(( $(field peak_rss_bytes "$jm") > rss_map ? $(field peak_rss_bytes "$jm") : rss_map ))
      rss_copy=$(( $(field peak_rss_bytes "$jc") > rss_copy ? $(field peak_rss_bytes "$jc") : rss_copy ))
    done
    # tern plan predicts at the machine's physical cores; shown on the 2-thread rows.
    pm=""; pc=""
    if [ "$t" = 2 ]; then
      pm=$(field predicted_tps "$($tern plan -m "$work/$m.tern" --mem-budget "$b" -c 65 --json)")
      pc=$(field predicted_tps "$(TERN_STREAM=copy $tern plan -m "$work/$m.tern" --mem-budget "$b" -c 65 --json)")
    fi
    awk -v m="$m" -v isa="$(grep -o "\"isa\":\"[a-z0-9-]*" <<<"$jm" | cut -d\" -f4)" -v b="$b" -v t="$t" -v a="$(median <<<"${maps[*]}")" -v c="$(median <<<"${copies[*]}")" \
        -v r="$(median <<<"${ratios[*]}")" -v rs="${ratios[*]}" -v pm="$pm" -v pc="$pc" \
        -v rm="$rss_map" -v rc="$rss_copy" '
      BEGIN {
        n = split(rs, v, " "); lo = hi = v[1] + 0
        for (i = 2; i <= n; i++) { if (v[i] + 0 < lo) lo = v[i] + 0; if (v[i] + 0 > hi) hi = v[i] + 0 }
        plan = pm == "" ? "" : sprintf("%.1f / %.1f", pm, pc)
        printf "| %s | %s | %s | %s | %.1f | %.1f | %.2fx (%.2f-%.2f) | %s | %.1f / %.1f |\n", m, isa, b, t, a, c, r, lo, hi, plan, rm / 1048576, rc / 1048576 }'
  done
done
