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
# rebuilds its copies of the remote x_hat): both as the points of one sweep, so that each
# memcheck launch (its start-up is most of its time) runs both
algos=(dmsgd '{name: choco, compress: {name: qsgd, levels: 16}, consensus_step: 0.3}')
printf 'sweep: {algorithm: [%s, %s]}\n' "${algos[@]}" >> "$TMP/vg.yaml"
tags=(dmsgd choco)
vg sweep "$TMP/vg.yaml" --out "$TMP/a" --quiet > "$TMP/log" 2>&1; rc=$?
check "dmsgd, choco: 2 ranks under memcheck: clean (rc $rc)" test "$rc" -eq 0
grep -E "^==[0-9]+== " "$TMP/log" | head -20
# each point killed natively at iteration 6 (after the checkpoint at 4), in the sweep's
# directory for it, then one memcheck launch resumes both
"$EXPGRAPH" sweep "$TMP/vg.yaml" --list --out "$TMP/b" > "$TMP/points"
mapfile -t dirs < <(sed -n 's/.* --out //p' "$TMP/points")
check "the sweep has the 2 points" test "${#dirs[@]}" -eq 2
for i in 0 1; do
  { EXPGRAPH_KILL_AT=6 "$EXPGRAPH" run "$TMP/vg.yaml" --set "algorithm=${algos[i]}" --out "${dirs[i]}" \
      --quiet; } 2>/dev/null # (the group hides bash's own "Killed" notice)
  check "${tags[i]}: killed with a checkpoint, unfinished" test -s "${dirs[i]}/ckpt/LATEST" -a ! -e "${dirs[i]}/summary.csv"
done
vg sweep "$TMP/vg.yaml" --out "$TMP/b" --quiet > "$TMP/log2" 2>&1; rc=$?
check "dmsgd, choco: resume under memcheck: clean (rc $rc)" test "$rc" -eq 0
grep -E "^==[0-9]+== " "$TMP/log2" | head -20
for i in 0 1; do
  check "${tags[i]}: memcheck run gives the same numbers" \
    same_metrics "$TMP/a/${dirs[i]##*/}/metrics.csv" "${dirs[i]}/metrics.csv"
done
finish
