#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of the entry points that take bytes:
# fuzz-tern (.tern reader, checksums, zstd chunks), fuzz-gguf (GGUF reader, vocabulary,
# tokenizer from its metadata), fuzz-tokenizer (text and token ids through Gemma 3's 262k
# vocabulary), fuzz-capi (tern_tokenize / tern_detokenize on a loaded model, every buffer-size
# convention), fuzz-template (bytes as a chat template, parsed and rendered). Each harness first
# replays every input in Tests/fuzz/regressions/HARNESS/ (inputs that once crashed: keep them,
# they are the regression tests), then fuzzes for SECONDS from
# seeds made here (make_seeds.py + tern-quantize), with Tests/fuzz/dicts/HARNESS.dict as a
# libFuzzer dictionary where there is one. A crash is copied into regressions/ (commit it with the
# fix) and fails the run.
# Usage: Tests/fuzz/run.sh [SECONDS]   (per harness; default 60, or FUZZ_SECONDS)
#   A longer run, e.g. an hour each: Tests/fuzz/run.sh 3600
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
python_env gguf numpy
secs="${1:-${FUZZ_SECONDS:-60}}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# SwiftPM names a local package by its directory: the harness package finds Tern as `tern`.
ln -s "$PWD" "$work/tern"
rt="$(ls -d "$(dirname "$(readlink -f "$(command -v swift)")")"/../lib/clang/*/lib/linux | head -n 1)"
fuzzer="$rt/libclang_rt.fuzzer_no_main-$(uname -m).a"
[ -f "$fuzzer" ] || { echo "fuzz: $fuzzer not found (libFuzzer ships with the Swift toolchain)" >&2; exit 1; }
echo "fuzz: building the harnesses (release, AddressSanitizer, coverage; linked with lld)" >&2
TERN_ROOT="$work/tern" swift build -c release --package-path Tests/fuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
  -Xcc -fsanitize=address,fuzzer-no-link -Xswiftc -use-ld=lld -Xlinker "$fuzzer" -Xlinker -lstdc++ -Xlinker --export-dynamic >&2
bin=.build-fuzz/release

swift build -c release --product tern-quantize >&2
gguf="${TERN_TEST_GGUF:-$(bash scripts/fetch-model.sh)}"
python3 Tests/fuzz/make_seeds.py "$work/seed.gguf" "$work/seed-bpe.gguf"
.build/release/tern-quantize "$work/seed.gguf" "$work/seed.tern" >/dev/null 2>&1
.build/release/tern-quantize "$work/seed.gguf" "$work/seedz.tern" --compress=3 >/dev/null 2>&1
.build/release/tern-quantize "$gguf" "$work/gemma.tern" >/dev/null 2>&1
for h in tern gguf tokenizer capi template; do mkdir -p "$work/corpus-$h" "Tests/fuzz/regressions/$h"; done
cp "$work/seed.tern" "$work/seedz.tern" "$work/corpus-tern/"
cp "$work/seed.gguf" "$work/seed-bpe.gguf" "$work/corpus-gguf/"
printf 'Hello, world! <start_of_turn>user\n\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xff\xfe  \t\tdef f(x):\n    return x\n' > "$work/corpus-tokenizer/text"
cp "$work/corpus-tokenizer/text" "$work/corpus-capi/"
cp Tests/TernTemplateTests/Fixtures/templates/*.jinja "$work/corpus-template/"
export TERN_FUZZ_VOCAB="$gguf" TERN_FUZZ_MODEL="$work/gemma.tern"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"

passed=0 failed=0
for h in tern gguf tokenizer capi template; do
  reg=("Tests/fuzz/regressions/$h"/*)
  if [ -e "${reg[0]}" ]; then
    if "$bin/fuzz-$h" "${reg[@]}" > "$work/replay-$h.log" 2>&1; then
      echo "fuzz-$h: ${#reg[@]} regression input(s) replayed, no crash" >&2
    else
      echo "fuzz-$h: a regression input crashes again:" >&2; tail -n 30 "$work/replay-$h.log" >&2; failed=$((failed + 1)); continue
    fi
  fi
  max_len=4096
  case "$h" in tern | gguf) max_len=200000 ;; esac
  dict=()
  [ -f "Tests/fuzz/dicts/$h.dict" ] && dict=(-dict="Tests/fuzz/dicts/$h.dict")
  if "$bin/fuzz-$h" -max_total_time="$secs" -max_len="$max_len" -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$work/crash-$h-" "$work/corpus-$h" > "$work/fuzz-$h.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/fuzz-$h.log" | grep -o '[0-9]*$' || true)
    cov=$(grep -o 'cov: [0-9]*' "$work/fuzz-$h.log" | tail -n 1 | grep -o '[0-9]*' || true)
    echo "fuzz-$h: ${runs:-?} executions in ${secs} s, coverage ${cov:-?} edges, no crash" >&2
    passed=$((passed + 1))
  else
    echo "fuzz-$h: CRASH" >&2; grep -A 25 -E 'ERROR|Fatal|panic' "$work/fuzz-$h.log" | head -n 40 >&2
    for c in "$work"/crash-"$h"-*; do
      [ -e "$c" ] || continue
      dest="Tests/fuzz/regressions/$h/$(sha256sum "$c" | cut -c1-16)"
      cp "$c" "$dest"; echo "fuzz-$h: input saved as $dest (a regression test once fixed)" >&2
    done
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
