#!/usr/bin/env bash
# Decoding where memory bandwidth binds, emulated: a read-streaming process on the other core
# cuts the bandwidth one thread gets (as on a Pi 5 or the AVX2 machines seen here, 8-16 GB/s),
# then Tern and llama.cpp decode (tg64, 1 thread) each model in the same run, alternating. For each:
# bytes read per token (llama.cpp's from the GGUF: every tensor but an untied token embedding;
# Tern's from `tern bench`), tokens/s, the bandwidth that implies, and its share of what one
# thread reads under the same load (`tern _membw 1`, measured between the rounds).
# Usage: bench/bandwidth-bound.sh [MODEL...]   (default: the four models of scripts/fetch-model.sh)
#        env: REPS (7 alternating rounds), LLAMA_BIN (llama.cpp bin/; default: build via ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
REPS="${REPS:-7}"
source bench/models.sh "$@"
hog=""
trap '[ -n "$hog" ] && kill "$hog" 2>/dev/null; rm -rf "$work"' EXIT
csvcol() { awk -F, -v name="$1" -v h="$2" -v r="$3" 'BEGIN { n = split(h, H, ","); split(r, R, ","); for (i = 1; i <= n; i++) if (H[i] == name) { gsub(/"/, "", R[i]); print R[i] } }'; }

# The load: one process on the second CPU reading a 512 MiB buffer over and over, every word, with
# the widest loads the compiler has (as decoding reads weights); the programs measured run pinned to
# the first CPU. Unpinned, with every eighth word read by scalar code, one thread still read 26-28
# GB/s beside it (2026-11-30); pinned and vectorized, 18-19 GB/s.
cat > "$work/hog.c" <<'C'
#include <stdint.h>
#include <stdlib.h>
int main(void) {
    size_t n = (512u << 20) / 8;
    uint64_t *a = malloc(n * 8), acc = 0;
    for (size_t i = 0; i < n; i++) a[i] = i;
    for (;;) {
        for (size_t i = 0; i < n; i += 8) acc ^= a[i] + a[i + 1] + a[i + 2] + a[i + 3] + a[i + 4] + a[i + 5] + a[i + 6] + a[i + 7];
        if (acc == 42) a[0] = 1;
    }
}
C
cc -O3 -march=native -o "$work/hog" "$work/hog.c"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then
  echo "bandwidth-bound.sh: needs two CPUs and taskset (util-linux)" >&2
  exit 2
fi
quiet1=$($tern _membw 1); quiet2=$($tern _membw 2)
taskset -c 1 "$work/hog" & hog=$!
sleep 2
pin() { taskset -c 0 "$@"; }

rows=(); isa=""
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  gb=$(gguf_token_bytes "$gguf")
  # The load's effect comes and goes (this VM's one-thread bandwidth beside it flips between ~18
  # and ~32 GB/s from one second to the next), so the two programs alternate, one rep each per
  # round, with a bandwidth probe between, and each column is the median of the rounds.
  bws=""; ltgs=""; ttgs=""
  for _ in $(seq "$REPS"); do
    bws+=" $(pin $tern _membw 1)"
    pin "$LLAMA_BIN/llama-bench" -m "$gguf" -p 0 -n 64 -t 1 -r 1 -o csv > "$work/lb.csv" 2>/dev/null
    ltgs+=" $(csvcol avg_ts "$(head -n 1 "$work/lb.csv")" "$(tail -n 1 "$work/lb.csv")")"
    j=$(pin $tern bench -m "$work/$m.tern" -p 0 -n 64 -t 1 -r 1 --no-roofline --json)
    ttgs+=" $(field tg_tps "$j")"; bpt=$(field bytes_per_token "$j")
    isa=$(grep -o '"isa":"[a-z0-9-]*"' <<<"$j" | cut -d'"' -f4)$(grep -q '"gfni":true' <<<"$j" && echo ' (+gfni)' || true)
  done
  bws+=" $(pin $tern _membw 1)"
  lo=$(tr ' ' '\n' <<<"$bws" | grep . | sort -g | head -n 1); hi=$(tr ' ' '\n' <<<"$bws" | grep . | sort -g | tail -n 1)
  rows+=("$(awk -v m="$m" -v bw="$(median <<<"$bws")" -v lo="$lo" -v hi="$hi" -v gb="$gb" -v ltg="$(median <<<"$ltgs")" \
    -v bpt="$bpt" -v ttg="$(median <<<"$ttgs")" 'BEGIN {
    printf "| %s | %.1f GB/s (%.1f-%.1f) | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% | %.2fx |",
      m, bw / 1e9, lo / 1e9, hi / 1e9, gb / 1e6, ltg, 100 * ltg * gb / bw, bpt / 1e6, ttg, 100 * ttg * bpt / bw, ttg / ltg }')")
  echo "$m: llama.cpp t/s by round:$ltgs; tern:$ttgs" >&2
done

echo "## Bandwidth-bound decoding, Tern vs llama.cpp — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), tern isa $isa. Quiet read bandwidth (tern _membw):"
echo "$(awk -v a="$quiet1" -v b="$quiet2" 'BEGIN { printf "%.1f GB/s at 1 thread, %.1f GB/s at 2", a / 1e9, b / 1e9 }'); under the load one thread reads what the"
echo "table's second column says (median of probes between the rounds, and their range). tg64, 1 thread, $REPS rounds of"
echo "one rep each, alternating; medians."
echo
echo "| model | bandwidth, 1 thread under load (median, range) | llama.cpp MB/token | llama.cpp t/s | llama.cpp % of roofline | tern MB/token | tern t/s | tern % of roofline | tern / llama.cpp |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
