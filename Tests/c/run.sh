#!/usr/bin/env bash
# Builds the C API (scripts/install.sh into a temp prefix), compiles examples/c/generate.c with
# plain cc + pkg-config and checks it prints the golden tokens, then runs Tests/c/api_test.c
# built with AddressSanitizer and UBSan (on the C side).
# Usage: Tests/c/run.sh MODEL.tern
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: Tests/c/run.sh MODEL.tern" >&2; exit 2; }
model="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cd "$(dirname "$0")/../.."
source scripts/common.sh
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
bash scripts/install.sh "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc=cc; command -v cc >/dev/null || cc=clang
golden="15687 236761 669 5279 529 506 3640 4184 563 7693 236764 622 236761 236780 236761 108 818 5279 529 506 3640 15305 563 5860"
$cc -std=c11 -Wall -Werror examples/c/generate.c $(pkg-config --cflags --libs tern) -o "$prefix/generate"
got="$("$prefix/generate" "$model" "The capital of France is Paris. The capital of Germany is" 24 2>/dev/null)"
if [ "$got" = "$golden" ]; then echo "examples/c/generate: golden tokens OK"; else echo "examples/c/generate: got '$got'" >&2; exit 1; fi
$cc -std=c11 -Wall -Werror -g -fsanitize=address,undefined -fno-omit-frame-pointer Tests/c/api_test.c \
  $(pkg-config --cflags --libs tern) -lpthread -o "$prefix/api_test"
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 "$prefix/api_test" "$model"
