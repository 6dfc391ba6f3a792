# Sourced by Tern's scripts: puts the Swift toolchain on PATH (unless TERN_NO_SWIFT is set),
# installs system packages, and sets up a Python environment for the scripts that need one.
# shellcheck shell=bash
if [ -z "${TERN_NO_SWIFT:-}" ]; then
  if ! command -v swift >/dev/null 2>&1; then
    for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
      [ -x "$d/swift" ] && export PATH="$d:$PATH" && break
    done
  fi
  command -v swift >/dev/null 2>&1 || { echo "tern: the Swift toolchain (6.0 or newer) is needed: https://swift.org/install" >&2; exit 1; }
fi

# apt_install PKG...: installs Debian packages that are missing (apt-get update first).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "tern: installing ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}

TERN_MODELS="${TERN_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/tern-models}"

# python_env [PKG...]: a Python virtual environment for Tern's scripts and tests, in the cache
# folder (TERN_VENV overrides), with pip and PKG... installed; puts its bin/ first on PATH. A
# stock Debian refuses `pip install` into the system Python (PEP 668) and may lack pip and venv
# altogether: python3-venv is installed with apt when needed.
python_env() {
  local venv="${TERN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tern-venv}"
  if [ ! -x "$venv/bin/python3" ] || ! "$venv/bin/python3" -m pip --version >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      local v
      v="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install python3-venv "python$v-venv"
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
    fi
  fi
  export PATH="$venv/bin:$PATH"
  local missing=()
  for p in "$@"; do python3 -c "import $p" 2>/dev/null || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] || python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}" >&2
}

# require_llama_bin: sets LLAMA_BIN to llama.cpp's bin/ directory (the peer the benchmarks compare
# with): as given, or built by ../shared/tools/build-llamacpp.sh (pip for its sdist comes from
# python_env); fails with a message when neither is there.
require_llama_bin() {
  [ -n "${LLAMA_BIN:-}" ] && return 0
  [ -x ../shared/tools/build-llamacpp.sh ] || { echo "set LLAMA_BIN to llama.cpp's bin/ directory" >&2; exit 1; }
  python_env
  LLAMA_BIN="$(bash ../shared/tools/build-llamacpp.sh)"
}

# field NAME JSON: the number NAME in a one-line JSON object (the benchmarks' `--json` output).
field() { grep -o "\"$1\":[-0-9.e]*" <<<"$2" | head -n 1 | cut -d: -f2; }

# machine_line TERN: the CPU's name and the read bandwidth TERN's probe measures now at 1 and 2
# threads, for the line under a results table's heading.
machine_line() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); read bandwidth (tern _membw) $(awk -v a="$("$1" _membw 1)" -v b="$("$1" _membw 2)" 'BEGIN { printf "%.1f GB/s at 1 thread, %.1f at 2", a / 1e9, b / 1e9 }')"
}

# median: the median of the numbers on stdin (separated by spaces or newlines).
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
