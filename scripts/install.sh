#!/usr/bin/env bash
# Installs Tern's C API: PREFIX/include/tern.h, PREFIX/lib/libtern.so and
# PREFIX/lib/pkgconfig/tern.pc (then: cc app.c $(pkg-config --cflags --libs tern), with
# PKG_CONFIG_PATH=PREFIX/lib/pkgconfig if PREFIX is not a system prefix), plus the tern and
# tern-quantize programs in PREFIX/bin.
# Usage: scripts/install.sh PREFIX
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/install.sh PREFIX" >&2; exit 2; }
cd "$(dirname "$0")/.."
source scripts/common.sh
apt_install libzstd-dev pkg-config
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"
swift build -c release >&2
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/bin"
install -m 644 Sources/CTernAPI/include/tern.h "$prefix/include/tern.h"
install -m 755 .build/release/libternc.so "$prefix/lib/libtern.so"
install -m 755 .build/release/tern .build/release/tern-quantize "$prefix/bin/"
cat > "$prefix/lib/pkgconfig/tern.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: tern
Description: On-device LLM inference runtime (C API)
Version: 0.1.0
Cflags: -I\${includedir}
Libs: -L\${libdir} -ltern -Wl,-rpath,\${libdir}
PC
echo "installed tern.h, libtern.so and tern.pc under $prefix" >&2
