#!/usr/bin/env bash
# End-to-end: a process started without a launcher (no mpirun/mpiexec/srun in its
# environment) does not initialise MPI, and gives the same numbers as with MPI.
# - MPI start-up made impossible (OMPI_MCA_pml=bogus: Open MPI cannot select its transport
#   and ends the process): validate, run and sweep still work without a launcher, so they
#   never start MPI; with EXPGRAPH_MPI=1 (MPI asked for in one process) the same run fails,
#   which shows that the probe bites.
# - metrics.csv of the run without MPI == with MPI in one process (EXPGRAPH_MPI=1) ==
#   under mpirun -np 2 (time_s aside). (resume.sh covers kill + resume without MPI.)
# Also the progress output: sweep's line per finished run, the bar's "loss -".
. "$(dirname "$0")/lib.sh"

cat > "$TMP/syn.yaml" <<'YAML'
name: syn
seed: 5
nodes: 4
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9}
model: logreg
data: {name: synthetic, dim: 12, classes: 3, samples: 128, batch_size: 8}
train: {epochs: 3, log_every: 8, eval_every: 16}
lr: {base: 0.1}
YAML

unset EXPGRAPH_MPI
# no launcher variables may leak in from the test's own environment
for v in OMPI_COMM_WORLD_SIZE OMPI_COMM_WORLD_RANK PMIX_RANK PMI_RANK PMI_SIZE PMI_FD PMI_PORT MPI_LOCALNRANKS; do
  unset "$v"
done

check "validate without a launcher and without a working MPI" \
  env OMPI_MCA_pml=bogus "$EXPGRAPH" validate "$TMP/syn.yaml"
check "run without a launcher and without a working MPI" \
  env OMPI_MCA_pml=bogus "$EXPGRAPH" run "$TMP/syn.yaml" --out "$TMP/plain" --quiet
{ cat "$TMP/syn.yaml"; echo 'sweep: {seed: [5, 6]}'; } > "$TMP/sweep.yaml"
env OMPI_MCA_pml=bogus "$EXPGRAPH" sweep "$TMP/sweep.yaml" --out "$TMP/sw" --quiet > "$TMP/swq.out" 2>&1
rc=$?
check "sweep without a launcher and without a working MPI (exit $rc)" test "$rc" -eq 0
check "the sweep's first point == the plain run" same_metrics "$TMP/plain/metrics.csv" "$TMP/sw/seed=5/metrics.csv"
env OMPI_MCA_pml=bogus EXPGRAPH_MPI=1 "$EXPGRAPH" run "$TMP/syn.yaml" --out "$TMP/bogus" --quiet \
  >/dev/null 2>"$TMP/bogus.err"
rc=$?
check "EXPGRAPH_MPI=1 does start MPI (fails with a broken MPI: exit $rc)" test "$rc" -ne 0

check "EXPGRAPH_MPI=1 (MPI in one process) runs" \
  env EXPGRAPH_MPI=1 "$EXPGRAPH" run "$TMP/syn.yaml" --out "$TMP/mpi1" --quiet
check "no MPI == MPI in one process" same_metrics "$TMP/plain/metrics.csv" "$TMP/mpi1/metrics.csv"
check "mpirun -np 2 runs" mpi 2 run "$TMP/syn.yaml" --out "$TMP/np2" --quiet
check "no MPI == mpirun -np 2" same_metrics "$TMP/plain/metrics.csv" "$TMP/np2/metrics.csv"
check "summary says 1 rank without MPI" \
  test "$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="ranks") c=i} NR==2{print $c}' "$TMP/plain/summary.csv")" = 1

# progress output: a sweep prints one line per finished run (i/N, its final test_acc, the
# elapsed time and an ETA), nothing with --quiet; the bar shows "loss -" before the first row
"$EXPGRAPH" sweep "$TMP/sweep.yaml" --out "$TMP/sw2" > "$TMP/sweep.out" 2>&1
for p in 1 2; do
  seed=$((4 + p))
  acc=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="test_acc") c=i} NR==2{printf "%.4f", $c}' "$TMP/sw2/seed=$seed/summary.csv")
  check "sweep line for point $p/2 with its final test_acc ($acc), elapsed and ETA" \
    grep -qE "^\[$p/2\] seed=$seed: done, test_acc $acc \([0-9]+:[0-9]{2}\); sweep [0-9]+:[0-9]{2} elapsed, ETA [0-9]+:[0-9]{2}$" "$TMP/sweep.out"
done
check "sweep --quiet printed nothing" test ! -s "$TMP/swq.out"
if command -v script >/dev/null 2>&1; then
  script -qc "'$EXPGRAPH' run '$TMP/syn.yaml' --set train.log_every=10 --out '$TMP/bar'" /dev/null | tr '\r' '\n' > "$TMP/bar.txt"
  check "progress bar: 'loss -' before the first row" grep -qE '^\[[.#]+\] [1-9]/[0-9]+ ep [0-9.]+ loss - ' "$TMP/bar.txt"
  # (the bar redraws at most 5 times a second, but always at the last iteration)
  check "progress bar: the last iteration shows the last row's loss" grep -qE '^\[#+\] ([0-9]+)/\1 ep [0-9.]+ loss [0-9]+\.[0-9]{4} ' "$TMP/bar.txt"
else
  echo "skipped: the progress bar checks need script(1) for a terminal"
fi
finish
