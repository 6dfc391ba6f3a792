#!/usr/bin/env bash
# All of Tern's tests, the model tests included (they need the real Gemma 3 270M GGUF,
# fetched here). Fails if the model tests did not run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
# The independent numpy reference used by the conversion tests, in a virtual environment (a
# stock Debian's Python refuses pip installs); its python3 comes first on PATH for the tests.
python_env gguf numpy jinja2
export TERN_TEST_GGUF="$(bash scripts/fetch-model.sh)"
# The other real models: byte-level BPE tokenizer tests, greedy tokens vs llama.cpp, budgets
# (the 1.5B model runs under 256 MiB).
export TERN_MODELS
bash scripts/fetch-model.sh smollm2-135m-instruct >/dev/null
bash scripts/fetch-model.sh qwen2.5-coder-0.5b-instruct >/dev/null
bash scripts/fetch-model.sh qwen2.5-coder-1.5b-instruct >/dev/null
swift build -c release --build-tests
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
swift test -c release --skip-build 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
for t in GenerationTests.testGreedyGoldenRaw GenerationTests.testGreedyGoldenCompressed ConversionTests.testRawConversionMatchesGGUFDequantization \
         CLITests.testRunJSONGivesGoldenTokens TokenizerTests.testMatchesLlamaCppOnGemma TokenizerTests.testMatchesLlamaCppOnRealBPEVocabularies; do
  grep -q "Test Case '$t' passed" "$log" || { echo "test.sh: model test $t did not pass" >&2; status=1; }
done
# The C API: install to a temp prefix, build examples/c/generate.c with cc + pkg-config, and run
# the API tests under AddressSanitizer/UBSan.
ctern="$(mktemp -d)"
.build/release/tern-quantize "$TERN_TEST_GGUF" "$ctern/gemma.tern" 2>/dev/null
if ! bash Tests/c/run.sh "$ctern/gemma.tern" 2>&1 | tee -a "$log"; then echo "test.sh: C API tests failed" >&2; status=1; fi
# The aarch64 NEON kernels (ARMv8.0 and sdot), cross-compiled and run under qemu against a scalar
# reference; then all of Tern and its unit tests built for aarch64 with Debian's Swift, the unit tests
# (but the slow real-model ones) run under qemu, and `tern` run under qemu on the real
# models (Gemma's, SmolLM2's and Qwen2.5-Coder 0.5B's golden tokens on both kernel paths, plain,
# speculative and under a budget; Qwen2.5-Coder 1.5B's first tokens, plain on `neon` and speculative on both).
if ! bash Tests/arm/run.sh 2>&1 | tee -a "$log"; then echo "test.sh: NEON kernel check failed" >&2; status=1; fi
for m in qwen15:qwen2.5-coder-1.5b-instruct smol:smollm2-135m-instruct qwen05:qwen2.5-coder-0.5b-instruct; do
  .build/release/tern-quantize "$(bash scripts/fetch-model.sh "${m#*:}")" "$ctern/${m%%:*}.tern" 2>/dev/null
done
if ! bash Tests/arm/swift-aarch64.sh "$ctern/gemma.tern" "$ctern/qwen15.tern" "$ctern/smol.tern" "$ctern/qwen05.tern" \
    2>&1 | tee -a "$log"; then
  echo "test.sh: aarch64 build/run failed" >&2; status=1
fi
rm -rf "$ctern"
# Coverage-guided fuzzing of every byte-taking entry point: regressions replayed, then a short
# run per harness (FUZZ_SECONDS, default 60; a longer run: Tests/fuzz/run.sh 3600).
if ! bash Tests/fuzz/run.sh "${FUZZ_SECONDS:-60}" 2>&1 | tee -a "$log"; then echo "test.sh: fuzzing found a crash" >&2; status=1; fi
# One total: XCTest cases, C API checks, NEON checks, fuzz harnesses.
# XCTest's total reads "Executed N tests, with F failures" or, when some were skipped (e.g. the
# AVX-512 checks on an AVX2-only CPU), "Executed N tests, with S tests skipped and F failures".
awk '/Executed [0-9]+ tests?, with .*failures?/ {
       x = $2; sk = 0
       for (i = 4; i <= NF; i++) { if ($i == "skipped") sk = $(i - 2); if ($i ~ /^failures?$/) { xf = $(i - 1); break } }
     }
     /^(fuzz: )?[0-9]+ passed, [0-9]+ failed/ { sub(/^fuzz: /, ""); p += $1; f += $3 }
     END { if (sk > 0) printf "XCTest: %d skipped\n", sk; printf "tests: %d passed, %d failed\n", x - xf - sk + p, xf + f }' "$log"
exit "$status"
