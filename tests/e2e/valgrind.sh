#!/usr/bin/env bash
# End-to-end (issue 7): a small 2-rank run, with a checkpoint and a resume, under valgrind
# memcheck, for dmsgd and choco (qsgd): no invalid reads/writes, no uninitialised values
# reaching a syscall or a branch.
# Suppressions: Open MPI's own file plus tests/valgrind-mpi.supp (MPI internals only).
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null || { echo "skip: valgrind not installed"; exit 77; }
supp=/usr/share/openmpi/openmpi-valgrind.supp
[ -f "$supp" ] || { echo "skip: $supp missing"; exit 77; }
src=${EG_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
cat > "$TMP/vg.yaml" <<'YAML'
name: vg
seed: 1
nodes: 4
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 1.0e-4}
model: {name: mlp, hidden: [8]}
data: {name: synthetic, dim: 64, classes: 3, samples: 32, test_samples: 50, batch_size: 8}
train: {iterations: 8, log_every: 4, checkpoint_every: 4}
YAML
# oneDNN picks its kernels by CPU features and valgrind hides AVX-512: pin AVX2 for every run
# here (native and under valgrind) so that both use the same kernels and the same bits
export ONEDNN_MAX_CPU_ISA=AVX2
vg() {
  "$MPIEXEC" -np 2 --mca btl self,vader valgrind -q --error-exitcode=97 --track-origins=no \
    --suppressions="$supp" --suppressions="$src/tests/valgrind-mpi.supp" --leak-check=no \
    "$EXPGRAPH" "$@"
}
# dmsgd, and choco (its payloads, bit-packed by qsgd, are what crosses ranks; the resume
# rebuilds its copies of the remote x_hat)
for algo in dmsgd '{name: choco, compress: {name: qsgd, levels: 16}, consensus_step: 0.3}'; do
  tag=${algo%%,*}; tag=${tag#\{name: }
  vg run "$TMP/vg.yaml" --set "algorithm=$algo" --out "$TMP/a-$tag" --quiet > "$TMP/log" 2>&1; rc=$?
  check "$tag: 2 ranks under memcheck: clean (rc $rc)" test "$rc" -eq 0
  grep -E "^==[0-9]+== " "$TMP/log" | head -20
  EXPGRAPH_KILL_AT=6 "$EXPGRAPH" run "$TMP/vg.yaml" --set "algorithm=$algo" --out "$TMP/b-$tag" --quiet 2>/dev/null
  vg run "$TMP/vg.yaml" --set "algorithm=$algo" --out "$TMP/b-$tag" --quiet --resume > "$TMP/log2" 2>&1; rc=$?
  check "$tag: resume under memcheck: clean (rc $rc)" test "$rc" -eq 0
  grep -E "^==[0-9]+== " "$TMP/log2" | head -20
  check "$tag: memcheck run gives the same numbers" same_metrics "$TMP/a-$tag/metrics.csv" "$TMP/b-$tag/metrics.csv"
done
finish
