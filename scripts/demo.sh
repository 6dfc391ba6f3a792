#!/usr/bin/env bash
# The main job on a fresh machine: install libzstd, build release, fetch Gemma 3 270M,
# convert it to .tern, calibrate self-speculative drafting (once, ~1.5 minutes), and generate from a
# prompt with speculation.
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
  .build/release/tern calibrate -m "$tern"
fi
prompt="${1:-The capital of France is Paris. The capital of Germany is}"
.build/release/tern run -m "$tern" -p "$prompt" -n 64 --temp 0 --speculate auto
