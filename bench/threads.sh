#!/usr/bin/env bash
# bench/threads.sh - threads sharing a node (train.micro_batch), in one run:
#   1. bench_threads: one node of ResNet-20 and of ResNet-DEPTH (batch norm, 3x32x32, batch
#      128), f32 and bf16, on 1 and 2 threads at micro-batches of 16, 32, 64 (and the whole
#      batch on 1 thread), and the evaluation of one model on 1 and 2 threads;
#   2. the many-node case, as a whole run: ResNet-20 on Fashion-MNIST, 16 nodes of batch 32 on
#      1 rank x 2 threads (experiments/fashion/resnet20_onepeer.yaml, ITERS iterations,
#      evaluation only at the end), this build against the binary of git revision BASE
#      (default 8378ff6, before micro-batches), alternating, best of ROUNDS: samples/s and
#      the ratio this / BASE;
#   3. one node of ResNet-DEPTH (default 56) in bf16 at batch 128 on Fashion-MNIST, a whole run
#      on 1 rank x 2 threads (the node's micro-batches on both threads; BASE ran it on one),
#      this build against BASE, alternating, best of ROUNDS.
# usage: bash bench/threads.sh [--build DIR] [--base REV] [--rounds R] [--iters N] [--nice N]
#                              [--depth D]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build"; base=8378ff6; rounds=3; iters=120; nice=0; depth=56; iters1=16
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift ;;
    --base) base=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --iters) iters=$2; shift ;;
    --nice) nice=$2; shift ;;
    --depth) depth=$2; shift ;;
    *) echo "threads.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export EXPGRAPH_DATA="${EXPGRAPH_DATA:-$here/data/cache}"  # the baseline is built elsewhere
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
N() { nice -n "$nice" "$@"; }
echo "bench/threads.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1 /proc/loadavg), $(nproc) cores, nice $nice"
echo "== 1. one node on 1 and 2 threads; evaluation"
N "$build/bench/bench_threads" --time 1 --reps 3
N "$build/bench/bench_threads" --time 1 --reps 3 --depth "$depth"
echo "== 2. 16 nodes x batch 32 (ResNet-20, Fashion-MNIST), 1 rank x 2 threads: this build vs $base"
mkdir -p "$work/src"
if git -C "$here" archive "$base" | tar -x -C "$work/src" &&
   cmake -S "$work/src" -B "$work/bb" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
   cmake --build "$work/bb" -j"$(nproc)" --target expgraph >/dev/null 2>&1; then
  spec="$here/experiments/fashion/resnet20_onepeer.yaml"
  sets=(--set "train={iterations: $iters, log_every: $iters, eval_every: $iters, checkpoint_every: 0}")
  rate() { tail -1 "$1/summary.csv" | tr ',' '\n' | sed -n "$(head -1 "$1/summary.csv" | tr ',' '\n' | grep -n '^samples_per_s$' | cut -d: -f1)p"; }
  # ab LABEL SETS...: this build against BASE, alternating, best of ROUNDS
  ab() {
    local label=$1 best_old=0 best_new=0 r o n; shift
    for r in $(seq "$rounds"); do
      EXPGRAPH_THREADS=2 N "$work/bb/expgraph" run "$spec" "$@" --out "$work/old$label$r" --quiet
      EXPGRAPH_THREADS=2 N "$build/expgraph" run "$spec" "$@" --out "$work/new$label$r" --quiet
      o=$(rate "$work/old$label$r"); n=$(rate "$work/new$label$r")
      echo "  round $r: $base $o samples/s, this $n samples/s"
      best_old=$(awk -v a="$best_old" -v b="$o" 'BEGIN{print (b > a) ? b : a}')
      best_new=$(awk -v a="$best_new" -v b="$n" 'BEGIN{print (b > a) ? b : a}')
    done
    awk -v o="$best_old" -v n="$best_new" -v b="$base" 'BEGIN{printf "  best: %s %.0f, this %.0f samples/s: this / %s = %.3f\n", b, o, n, b, n / o}'
  }
  ab many "${sets[@]}"
  echo "== 3. one node of resnet-$depth in bf16, batch 128 (Fashion-MNIST), 1 rank x 2 threads: this build"
  echo "   (micro-batches on both threads) vs $base (the node on one thread)"
  ab one --set nodes=1 --set model.depth="$depth" --set data.batch_size=128 \
    --set train.precision=bf16 --set "train={iterations: $iters1, log_every: $iters1, eval_every: $iters1, checkpoint_every: 0}"
else
  echo "  skipped: could not build $base"
fi
