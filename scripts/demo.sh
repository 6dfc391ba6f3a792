#!/usr/bin/env bash
# The main job on a fresh machine: install libzstd, build release, fetch Gemma 3 270M,
# convert it to .tern, calibrate self-speculative drafting (once, quick: ~20 s), and generate from
# a prompt with speculation.
# Usage: scripts/demo.sh ["PROMPT"]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
swift build -c release
gguf=$(bash scripts/fetch-model.sh)
tern="${gguf%.gguf}.tern"
if [ ! -f "$tern" ] || [ "$tern" -ot .build/release/tern-quantize ]; then
  .build/release/tern-quantize "$gguf" "$tern"
fi
if ! .build/release/tern inspect "$tern" | grep -q "tern.draft.vocab"; then
  echo "demo: measuring drafting speed on this machine (tern calibrate --quick, ~20 s on a quiet machine;" \
       "longer and possibly undecided while other programs use the CPU)" >&2
  .build/release/tern calibrate -m "$tern" --quick ||
    echo "demo: nothing calibrated (no clear answer, see above); generating with context lookup drafts only" >&2
fi
prompt="${1:-The capital of France is Paris. The capital of Germany is}"
.build/release/tern run -m "$tern" -p "$prompt" -n 64 --temp 0 --speculate auto
