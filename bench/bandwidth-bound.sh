#!/usr/bin/env bash
# Decoding where memory bandwidth binds, emulated: a read-streaming process on the other core
# halves the bandwidth one thread gets (as on a Pi 5 or the AVX2 machines seen here, 8-16 GB/s),
# then Tern and llama.cpp decode (tg64, 1 thread) each model in the same run, alternating. For each:
# bytes read per token (llama.cpp's from the GGUF: every tensor but an untied token embedding;
# Tern's from `tern bench`), tokens/s, the bandwidth that implies, and its share of what one
# thread reads under the same load (`tern _membw 1`, measured before and after each model).
# Usage: bench/bandwidth-bound.sh [MODEL...]   (default: the four models of scripts/fetch-model.sh)
#        env: REPS (3), LLAMA_BIN (llama.cpp bin/; default: build via ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
REPS="${REPS:-3}"
source bench/models.sh "$@"
hog=""
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null; rm -rf "$work"' EXIT
field() { grep -o "\"$1\":[-0-9.e]*" <<<"$2" | head -n 1 | cut -d: -f2; }
csvcol() { awk -F, -v name="$1" -v h="$2" -v r="$3" 'BEGIN { n = split(h, H, ","); split(r, R, ","); for (i = 1; i <= n; i++) if (H[i] == name) { gsub(/"/, "", R[i]); print R[i] } }'; }

# The load: one process reading a 512 MiB buffer over and over (as decoding reads weights).
cat > "$work/hog.c" <<'C'
#include <stdint.h>
#include <stdlib.h>
int main(void) {
    size_t n = (512u << 20) / 8;
    uint64_t *a = malloc(n * 8), acc = 0;
    for (size_t i = 0; i < n; i++) a[i] = i;
    for (;;) { for (size_t i = 0; i < n; i += 8) acc ^= a[i] + a[i + 4]; if (acc == 42) a[0] = 1; }
}
C
cc -O2 -o "$work/hog" "$work/hog.c"
quiet1=$($tern _membw 1); quiet2=$($tern _membw 2)
"$work/hog" & hog=$!
sleep 2

rows=(); isa=""
for m in "${models[@]}"; do
  gguf="$(bash scripts/fetch-model.sh "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  gb=$(gguf_token_bytes "$gguf")
  bw_a=$($tern _membw 1)
  "$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n 64 -t 1 -r "$REPS" -o csv > "$work/lb.csv" 2>/dev/null
  header=$(head -n 1 "$work/lb.csv"); ltg=$(csvcol avg_ts "$header" "$(tail -n 1 "$work/lb.csv")")
  j=$($tern bench -m "$work/$m.tern" -p 0 -n 64 -t 1 -r "$REPS" --no-roofline --json)
  ttg=$(field tg_tps "$j"); bpt=$(field bytes_per_token "$j")
  isa=$(grep -o '"isa":"[a-z0-9-]*"' <<<"$j" | cut -d'"' -f4)
  bw_b=$($tern _membw 1)
  rows+=("$(awk -v m="$m" -v a="$bw_a" -v b="$bw_b" -v gb="$gb" -v ltg="$ltg" -v bpt="$bpt" -v ttg="$ttg" 'BEGIN {
    bw = (a + b) / 2
    printf "| %s | %.1f GB/s (%.1f / %.1f) | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% | %.2fx |",
      m, bw / 1e9, a / 1e9, b / 1e9, gb / 1e6, ltg, 100 * ltg * gb / bw, bpt / 1e6, ttg, 100 * ttg * bpt / bw, ttg / ltg }')")
done

echo "## Bandwidth-bound decoding, Tern vs llama.cpp — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), tern isa $isa. Quiet read bandwidth (tern _membw):"
echo "$(awk -v a="$quiet1" -v b="$quiet2" 'BEGIN { printf "%.1f GB/s at 1 thread, %.1f GB/s at 2", a / 1e9, b / 1e9 }'); under the load one thread reads what the"
echo "table's second column says (measured before and after each model). tg64, 1 thread, reps $REPS."
echo
echo "| model | bandwidth, 1 thread under load (before / after) | llama.cpp MB/token | llama.cpp t/s | llama.cpp % of roofline | tern MB/token | tern t/s | tern % of roofline | tern / llama.cpp |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
