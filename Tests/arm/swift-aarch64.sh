#!/usr/bin/env bash
# Builds Tern and its tests for aarch64-unknown-linux-gnu with a Swift toolchain from Debian (swiftlang,
# sid), runs the unit tests under qemu-aarch64 (all but some model tests: see below), and runs the
# aarch64 `tern` under qemu-aarch64 on the real Gemma 3 270M checkpoint: the greedy golden
# tokens on a CPU with the dot-product extension (-cpu max: the `neon` path must be chosen) and on
# the Pi 4's Cortex-A72 (ARMv8.0: `neon-v8` must be chosen), and on each the same tokens from
# speculative decoding (batched verification) and from decoding under a --mem-budget that streams.
# Also what a user on a board meets: the Swift code compiled for aarch64 by a distribution's
# compiler (6.2.3), not the newest.
#
# How: Debian's sid suite carries swiftlang for amd64 and arm64. A throw-away apt configuration
# (own sources list, state and cache, empty dpkg status) downloads the packages' closure for each
# architecture (~1.2 GB, cached in ${XDG_CACHE_HOME:-~/.cache}/tern-arm64), `dpkg-deb -x` unpacks
# them into an amd64 root (the compiler) and an arm64 root (the target's libraries and Swift
# runtime). In a private mount namespace the amd64 root is entered with chroot, the arm64 root
# bind-mounted at /arm64 and this checkout at /src; `swift build --triple aarch64-unknown-linux-gnu
# --sdk /arm64` builds into .build-arm64. qemu-aarch64 runs the result with -L the arm64 root.
# Needs root (chroot, mounts).
# Usage: Tests/arm/swift-aarch64.sh MODEL.tern [QWEN15B.tern [SMOLLM2.tern QWEN05B.tern]]
#   With Qwen2.5-Coder 1.5B's checkpoint too: its first 11 greedy tokens, llama.cpp's (RealModelTests),
#   plainly on `neon` and speculatively on both paths; its width, 1536, is a multiple of 256, so its q4k
#   products read the activations' per-256 form (arm_sb_groups.inc), which Gemma's 640 never gives.
#   With SmolLM2-135M's and Qwen2.5-Coder 0.5B's too: llama.cpp's greedy tokens (RealModelTests' goldens:
#   17 and 64 tokens) on both paths, plainly, speculatively and under a --mem-budget that streams. That
#   is their q4 (Q4_1), q5 (Q5_0), q6 and q8 products, a tied and an untied head, and the llama and qwen2
#   layer math on real weights.
#   env: TERN_SID_SWIFT (swiftlang version, default the pinned 6.2.3-1+b1)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/common.sh
[ $# -eq 1 ] || [ $# -eq 2 ] || [ $# -eq 4 ] || {
  echo "usage: Tests/arm/swift-aarch64.sh MODEL.tern [QWEN15B.tern [SMOLLM2.tern QWEN05B.tern]]" >&2; exit 2; }
model="$(readlink -f "$1")"
qwen="${2:+$(readlink -f "$2")}"
smol="${3:+$(readlink -f "$3")}"
qwen05="${4:+$(readlink -f "$4")}"
[ "$(id -u)" -eq 0 ] || { echo "swift-aarch64: needs root (chroot and bind mounts)" >&2; exit 1; }
apt_install qemu-user util-linux debian-archive-keyring file
# the unit tests' references (gguf-py and numpy; jinja2 for the template tests), as scripts/test.sh
python_env gguf numpy jinja2
version="${TERN_SID_SWIFT:-6.2.3-1+b1}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/tern-arm64/swiftlang-$version"
golden="15687 236761 669 5279 529 506 3640 4184 563 7693 236764 622 236761 236780 236761 108 818 5279 529 506 3640 15305 563 5860"
qwen_golden="75698 1445 12 16 8 488 75698 1445 12 17 692"
smol_golden="2822 24 38572 46477 24 94 731 216 34 25 1232 216 33 28 304 25 198"
qwen05_golden="75698 1445 12 16 8 488 75698 1445 12 17 692 2 13383 10431 198 77 284 220 16 15 198 1350 955 10022 \
314 77 92 339 79683 1372 374 25 314 75326 39345 1445 9139 1138 13874 19324 1986 2038 18653 264 729 1565 75326 39345 63 \
429 47417 279 55129 79683 1372 1667 50262 13 576 729 12341 421 279 1946"

roots() {  # downloads and unpacks both roots once
  [ -f "$cache/ready" ] && return 0
  rm -rf "$cache"
  mkdir -p "$cache/etc"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" > "$cache/etc/sources.list"
  for arch in amd64 arm64; do
    mkdir -p "$cache/$arch/state/lists/partial" "$cache/$arch/archives/partial" "$cache/root-$arch"
    touch "$cache/$arch/state/status"
    cat > "$cache/$arch/apt.conf" <<CONF
Dir::State "$cache/$arch/state";
Dir::State::status "$cache/$arch/state/status";
Dir::Cache "$cache/$arch";
Dir::Cache::archives "$cache/$arch/archives";
Dir::Etc::SourceList "$cache/etc/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Acquire::Check-Valid-Until "false";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
CONF
    local pkgs=("swiftlang=$version" libzstd-dev libc6-dev)
    [ "$arch" = amd64 ] && pkgs+=(pkgconf bash coreutils)
    echo "swift-aarch64: downloading swiftlang $version and its dependencies for $arch (sid)" >&2
    APT_CONFIG="$cache/$arch/apt.conf" apt-get update -qq >&2
    if ! APT_CONFIG="$cache/$arch/apt.conf" apt-get install -y -qq -d --no-install-recommends "${pkgs[@]}" >&2; then
      echo "swift-aarch64: swiftlang $version is not in sid any more; set TERN_SID_SWIFT to the version" \
           "'APT_CONFIG=$cache/$arch/apt.conf apt-cache policy swiftlang' shows" >&2
      exit 1
    fi
    for d in "$cache/$arch/archives"/*.deb; do dpkg-deb -x "$d" "$cache/root-$arch"; done
    # merged /usr: the symlinks base-files would make
    for d in bin sbin lib lib64; do
      if [ ! -e "$cache/root-$arch/$d" ] && [ -d "$cache/root-$arch/usr/$d" ]; then ln -s "usr/$d" "$cache/root-$arch/$d"; fi
    done
    rm -rf "$cache/$arch/archives"/*.deb
  done
  mkdir -p "$cache/root-amd64/"{arm64,src,proc,dev,tmp,root}
  touch "$cache/ready"
}
roots
unshare -m bash -s "$cache" "$PWD" >&2 <<'BUILD'
set -euo pipefail
cache=$1 src=$2
mount --bind /proc "$cache/root-amd64/proc"
mount --bind /dev "$cache/root-amd64/dev"
mount --bind "$cache/root-arm64" "$cache/root-amd64/arm64"
mount --bind "$src" "$cache/root-amd64/src"
# The test bundle too. SwiftPM's generated test runner imports Testing beside Foundation, so it
# autolinks their cross-import overlay, lib_Testing_Foundation.so, which Debian's arm64 package
# lacks. Nothing in it is used (XCTest runs the tests; a used symbol would fail the link), so an
# empty library of that name stands in, at link time and at run time.
chroot "$cache/root-amd64" /bin/bash -c 'export PATH=/usr/libexec/swift/bin:/usr/bin:/bin HOME=/root; cd /src &&
  echo "swift-aarch64: building release for aarch64-unknown-linux-gnu with $(swift --version 2>&1 | head -n 1)" &&
  mkdir -p .build-arm64/stub && : > /tmp/empty.c &&
  clang --target=aarch64-unknown-linux-gnu -shared -nostdlib -fuse-ld=lld -Wl,-soname,lib_Testing_Foundation.so \
    -o .build-arm64/stub/lib_Testing_Foundation.so /tmp/empty.c &&
  PKG_CONFIG_PATH=/arm64/usr/lib/aarch64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=/arm64 swift build -c release \
    --scratch-path /src/.build-arm64 --triple aarch64-unknown-linux-gnu --sdk /arm64 -Xswiftc -sdk -Xswiftc /arm64 \
    -Xswiftc -resource-dir -Xswiftc /arm64/usr/libexec/swift/lib/swift -Xswiftc -use-ld=lld \
    --build-tests --disable-swift-testing -Xlinker -L/src/.build-arm64/stub'
BUILD
bin=.build-arm64/aarch64-unknown-linux-gnu/release
file "$bin/tern" | grep -q "ARM aarch64" || { echo "swift-aarch64: $bin/tern is not an aarch64 program" >&2; exit 1; }

# emu CPU PROGRAM ARGS...: an aarch64 program under qemu with the arm64 root's Swift runtime (and the
# test bundle's stand-in library)
libs=/usr/libexec/swift/lib/swift/linux:$PWD/.build-arm64/stub
emu() { local cpu=$1; shift; qemu-aarch64 -cpu "$cpu" -L "$cache/root-arm64" -E LD_LIBRARY_PATH="$libs" "$@"; }

passed=0 failed=0
# The unit tests under qemu -cpu max, where every aarch64 path runs (neon, neon-v8, swift-simd,
# scalar). Children the tests start on this host's programs (python3, llama.cpp's) run natively; the
# built products (tern, tern-quantize) through qemu (TERN_TEST_EMULATOR, TestSupport.run), so the
# tiny-model family checks against numpy and the real Gemma conversion run too. Left out: model
# tests that decode real models for minutes under qemu (the runs below check their tokens), read
# peak RSS (qemu's own), time things, or start `tern` without TestSupport.run; and the 3-minute
# statistical check of speculative sampling (Swift arithmetic on logits the family tests check).
left_out=(BudgetTests CLITests ChatTests CalibrateCLITests GenerationTests RealModelTests SpeculationTests
          SpeculativeSamplingTests)
skip="^TernModelTests\\.($(IFS='|'; echo "${left_out[*]}"))\$"
xctest() { emu max "$bin/TernPackageTests.xctest" "$@"; }
export TERN_TEST_EMULATOR="$(command -v qemu-aarch64) -cpu max -L $cache/root-arm64 -E LD_LIBRARY_PATH=$libs"
# and of the left-out classes one test: the Gemma golden from a zstd-compressed checkpoint (26 s)
also=TernModelTests.GenerationTests/testGreedyGoldenCompressed
classes=$( (xctest --list-tests 2>/dev/null | grep -o '^Tern[A-Za-z]*Tests\.[A-Za-z0-9]*' | sort -u | grep -Ev "$skip";
            echo "$also") | paste -sd, -) || true
log="$bin/xctest-aarch64.log"
start=$(date +%s)
xctest "$classes" > "$log" 2>&1 || true
# Counted from XCTest's per-test lines; its "Executed" line (absent if the bundle crashed) must be
# there too. Reported in this script's own words: scripts/test.sh reads "Executed" lines as the x86 total.
ok=$(grep -c "^Test Case '.*' passed (" "$log") || true
bad=$(grep -c "^Test Case '.*' failed (" "$log") || true
names=$(grep -o "^Test Case '[A-Za-z0-9.]*' skipped (" "$log" | cut -d"'" -f2 | paste -sd' ' -) || true
skipped=$(wc -w <<<"$names")
if [ -n "$classes" ] && [ "$ok" -gt 0 ] && [ "$bad" -eq 0 ] && grep -q 'Executed [0-9]* tests\?, with' "$log"; then
  echo "aarch64 unit tests under qemu -cpu max: $ok passed, $skipped skipped${names:+ ($names)}" \
       "($(( $(date +%s) - start )) s)"
  passed=$((passed + ok))
else
  echo "aarch64 unit tests under qemu -cpu max: FAIL: $ok passed, $bad failed ($log):"
  grep -E 'error:' "$log" | head -n 20 | sed 's/^/  /' || true
  failed=$((failed + (bad > 0 ? bad : 1)))
fi
# check WHAT WANT MINDRAFTS CPU TERN-RUN-ARGS...: one greedy `tern run --json` under qemu -cpu CPU must give the
# tokens WANT and, with MINDRAFTS > 0, have kept at least that many drafts (so a batched verification pass
# decided tokens: its bits must agree with a single token's, or speculation could fork from plain decoding).
check() {
  local what=$1 want=$2 mindrafts=$3 cpu=$4 start json tokens kept
  shift 4
  start=$(date +%s)
  json=$(emu "$cpu" "$bin/tern" run --temp 0 --json "$@" 2>/dev/null) || true
  tokens=$(grep -o '"tokens":\[[^]]*\]' <<<"$json" | grep -o '[0-9][0-9 ,]*' | tr -d ' ' | tr ',' ' ') || true
  kept=$(grep -o '"accepted":[0-9]*' <<<"$json" | cut -d: -f2) || true  # none without speculation
  if [ "$tokens" = "$want" ] && [ "${kept:-0}" -ge "$mindrafts" ]; then
    echo "aarch64 tern under qemu -cpu $cpu: $what ($(( $(date +%s) - start )) s${kept:+, $kept drafts kept})"
    passed=$((passed + 1))
  else
    echo "aarch64 tern under qemu -cpu $cpu: FAIL: $what: tokens '$tokens'${kept:+ ($kept drafts kept)}, want '$want'"
    failed=$((failed + 1))
  fi
}
france="The capital of France is Paris. The capital of Germany is"
fib=$'def fibonacci(n):\n    if n < 2:\n        return n\n    return'
for cpu_isa in max:neon cortex-a72:neon-v8; do
  cpu=${cpu_isa%%:*} isa=${cpu_isa#*:}
  chosen=$(emu "$cpu" "$bin/tern" bench -m "$model" -p 1 -n 1 -r 1 -t 1 --no-roofline --json 2>/dev/null |
             grep -o '"isa":"[^"]*"' | cut -d'"' -f4)
  if [ "$chosen" = "$isa" ]; then
    echo "aarch64 tern under qemu -cpu $cpu: kernel path $chosen"; passed=$((passed + 1))
  else
    echo "aarch64 tern under qemu -cpu $cpu: FAIL: kernel path '$chosen', want $isa"; failed=$((failed + 1))
  fi
  check "Gemma 3 greedy golden tokens" "$golden" 0 "$cpu" -m "$model" -p "$france" -n 24 --speculate off -t 1
  # Speculative decoding (a reduced-vocabulary draft through every layer, verified in batches) and
  # decoding under a budget that streams weights must give the same tokens on this path too.
  check "Gemma 3 speculative (vocab:16384+lookup), the golden tokens" "$golden" 4 "$cpu" \
    -m "$model" -p "$france" -n 24 --speculate vocab:16384+lookup -t 2
  check "Gemma 3 under --mem-budget 160M (streamed), the golden tokens" "$golden" 0 "$cpu" \
    -m "$model" -p "$france" -n 24 --speculate off --mem-budget 160M -t 2
  if [ -n "$qwen" ]; then
    # Its q4k products read the per-256 activations (arm_sb_groups.inc), plainly (neon) and in
    # speculation's batches (both paths).
    [ "$cpu" = max ] && check "Qwen2.5-Coder 1.5B (per-256 q4k), llama.cpp's greedy tokens" "$qwen_golden" 0 "$cpu" \
      -m "$qwen" -p "$fib" -n 11 --speculate off -t 2
    check "Qwen2.5-Coder 1.5B speculative (vocab:16384+lookup), llama.cpp's tokens" "$qwen_golden" 4 "$cpu" \
      -m "$qwen" -p "$fib" -n 11 --speculate vocab:16384+lookup -t 2
  fi
  if [ -n "$smol" ]; then
    for m in "SmolLM2-135M (q4 from Q4_1, tied q8 head)|$smol|$smol_golden|80M" \
             "Qwen2.5-Coder 0.5B (q5 from Q5_0, q6, untied q8 head)|$qwen05|$qwen05_golden|256M"; do
      IFS='|' read -r name path want budget <<<"$m"
      n=$(wc -w <<<"$want")
      check "$name, llama.cpp's greedy tokens" "$want" 0 "$cpu" -m "$path" -p "$fib" -n "$n" --speculate off -t 2
      check "$name speculative (vocab:16384+lookup), the same" "$want" 4 "$cpu" \
        -m "$path" -p "$fib" -n "$n" --speculate vocab:16384+lookup -t 2
      check "$name under --mem-budget $budget (streamed), the same" "$want" 0 "$cpu" \
        -m "$path" -p "$fib" -n "$n" --speculate off --mem-budget "$budget" -t 2
    done
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
