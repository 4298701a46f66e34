#!/usr/bin/env bash
# Installs what is needed (Debian 12, as root), builds, and runs experiments/quickstart.yaml:
# 16 nodes, MLP on MNIST, DmSGD over the one-peer exponential graph.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh"
cd "$here"
start=$(date +%s)
./build/expgraph run experiments/quickstart.yaml --force "$@"
echo "total wall time $(( $(date +%s) - start )) s; results in runs/quickstart/ (metrics.csv, summary.csv)"
