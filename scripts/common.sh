# Sourced by Tern's scripts: puts the Swift toolchain on PATH and installs system packages.
# shellcheck shell=bash
if ! command -v swift >/dev/null 2>&1; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    [ -x "$d/swift" ] && export PATH="$d:$PATH" && break
  done
fi
command -v swift >/dev/null 2>&1 || { echo "tern: the Swift toolchain (6.0 or newer) is needed: https://swift.org/install" >&2; exit 1; }

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
