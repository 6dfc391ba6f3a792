#!/usr/bin/env bash
# Greedy output of Tern vs llama.cpp on the real models: for each model and the first PROMPTS
# prompts of bench/prompts.txt, 64 greedy tokens from llama-simple and from `tern run --temp 0`
# plain (compared with llama.cpp's), self-speculative (auto) and under a --mem-budget that streams
# weights (both compared with Tern's plain tokens). Where the plain text
# differs, the first differing token is located and Tests/reference/decoder_ref.py (float64
# numpy on the GGUF's dequantized weights) gives the float logits there: Tern's token, the
# float reference's top two and their margin (a near-tie is < 0.1).
# Usage: bench/greedy.sh [MODEL...]   (scripts/fetch-model.sh names or GGUF paths; default: its four models)
#        env: PROMPTS (5), N (64), LLAMA_BIN (llama.cpp bin/; default: build via ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
PROMPTS="${PROMPTS:-5}"
N="${N:-64}"
source bench/models.sh "$@"

# fork GGUF TERN PROMPT TERN_TEXT LLAMA_TEXT -> "token k: tern <id> (float logit), float top <id> <logit> / <id> <logit>"
fork() {
  local j ids
  j=$($tern run -m "$2" -p "$3" -n "$N" --temp 0 --speculate off --json 2>/dev/null)
  python3 - "$1" "$j" "$4" "$5" <<'PY'
import json, subprocess, sys
gguf, j, mine, theirs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
common = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
# The first generated token whose text reaches past the common prefix is where the two forked.
toks, acc, k = j["tokens"], 0, 0
for k, p in enumerate(j["pieces"]):
    acc += len(p)
    if acc > common: break
ref = subprocess.run([sys.executable, "Tests/reference/decoder_ref.py", gguf, json.dumps(j["prompt_tokens"] + toks[:k]), "--top", "2"],
                     capture_output=True, text=True, check=True)
r = json.loads(ref.stdout)
logit = r["logits"][toks[k]]
(a, la), (b, lb) = r["top"]
print(f"token {k}: tern {toks[k]} (float {logit:.3f}); float top {a} {la:.3f}, {b} {lb:.3f}; margin {la - lb:.3f}")
PY
}

echo "## Greedy tokens, Tern vs llama.cpp (llama-simple) — $(date -u +%Y-%m-%dT%H:%MZ), $N tokens, $PROMPTS prompts"
echo
echo "| model | prompt | plain = llama.cpp | speculative = plain | budget = plain | first difference from llama.cpp (float reference) |"
echo "|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  gguf="$(model_gguf "$m")"; m="$(model_name "$m")"
  .build/release/tern-quantize "$gguf" "$work/$m.tern" >/dev/null 2>&1
  i=0
  while IFS= read -r line && [ $i -lt "$PROMPTS" ]; do
    i=$((i + 1))
    p="$(printf '%b' "$line")"
    "$LLAMA_BIN/llama-simple" -m "$gguf" -n "$N" "$p" > "$work/ref.txt" 2>/dev/null || true
    # llama-simple prints the prompt's pieces (with special tokens such as <bos>) and then the reply.
    ref="$(python3 -c 'import sys; t=open(sys.argv[1]).read(); p=sys.argv[2]; i=t.find(p); print(t[i+len(p):] if i >= 0 else t, end="")' "$work/ref.txt" "$p")"
    # Plain decoding against llama.cpp; speculative and budgeted decoding against plain.
    res=()
    for mode in plain spec budget; do
      args=(run -m "$work/$m.tern" -p "$p" -n "$N" --temp 0)
      case $mode in plain) args+=(--speculate off) ;; spec) args+=(--speculate auto) ;; budget) args+=(--speculate off --mem-budget "${budget[$m]}") ;; esac
      out="$($tern "${args[@]}" 2>/dev/null)"
      [ $mode = plain ] && plain_out="$out"
      want="$([ $mode = plain ] && printf '%s' "$ref" || printf '%s' "$plain_out")"
      if [ "$out" = "$want" ]; then res+=(same); else res+=(differs); fi
    done
    diff=""
    if [ "${res[0]}" != same ]; then diff="$(fork "$gguf" "$work/$m.tern" "$p" "$plain_out" "$ref" 2>&1 | tail -n 1)"; fi
    echo "| $m | $i | ${res[0]} | ${res[1]} | ${res[2]} (${budget[$m]}) | $diff |"
  done < bench/prompts.txt
done
