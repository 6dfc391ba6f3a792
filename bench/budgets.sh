#!/usr/bin/env bash
# Memory budget -> peak RSS -> decode tokens/s for Gemma 3 270M, raw and --compress'ed, with
# tern bench (tg64, 2 threads). Peak RSS is the process's own VmHWM and /usr/bin/time's maximum RSS.
# Usage: bench/budgets.sh     env: BUDGETS ("none 512M 256M 160M 100M 72M"), REPS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config time
swift build -c release >&2
gguf="$(bash scripts/fetch-model.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.build/release/tern-quantize "$gguf" "$work/raw.tern" >&2
.build/release/tern-quantize "$gguf" "$work/zstd.tern" --compress >&2
echo "| checkpoint | size on disk | budget | planned streamed / token | peak RSS (MiB) | tg64 t/s |"
echo "|---|---|---|---|---|---|"
for f in raw zstd; do
  size=$(( $(stat -c %s "$work/$f.tern") / 1048576 ))
  for b in ${BUDGETS:-none 512M 256M 160M 100M 72M}; do
    args=(); [ "$b" = none ] || args=(--mem-budget "$b")
    if /usr/bin/time -f %M -o "$work/rss" .build/release/tern bench -m "$work/$f.tern" -p 0 -n 64 -r "${REPS:-3}" --no-roofline --json "${args[@]}" > "$work/b.json" 2> "$work/err"; then
      j=$(cat "$work/b.json")
      printf "| %s | %s MiB | %s | %s MiB | %s | %.1f ± %.1f |\n" "$f" "$size" "$b" "$(( $(field streamed_bytes_per_token "$j") / 1048576 ))" \
        "$(( $(cat "$work/rss") / 1024 ))" "$(field tg_tps "$j")" "$(field tg_sd "$j")"
    else
      printf "| %s | %s MiB | %s | refused: %s | | |\n" "$f" "$size" "$b" "$(tail -n 1 "$work/err" | cut -c1-90)"
    fi
  done
done
