#!/usr/bin/env bash
# End-to-end: run provenance.
#  - `expgraph info` (and `--version --verbose`) prints the build, the libraries, the
#    environment, the CPU and oneDNN's f32/bf16 kernels, without initialising MPI;
#  - a run directory records them in run_info.yaml (atomically) and the key ones in
#    summary.csv (expgraph_version, commit, dnnl_isa, cpu, hosts), also under mpirun;
#  - ranks that dispatch different kernels (ONEDNN_MAX_CPU_ISA per rank) warn at start;
#  - --resume with a changed record (faked by editing run_info.yaml of a killed run, or
#    really, by capping the ISA) warns naming what changed and continues; an unchanged one
#    does not warn;
#  - `expgraph table --rows dnnl_isa` groups by the new column.
. "$(dirname "$0")/lib.sh"

# the value of KEY (first match, any indentation) in a YAML file, unquoted
yval() { grep -m1 -E "^ *(- )?$1: " "$2" | sed -E "s/^ *(- )?$1: //; s/^\"(.*)\"\$/\\1/"; }
# the value of summary.csv column COL (no quoted commas in the cells read here)
scol() {
  local i
  i=$(head -1 "$2" | tr , '\n' | grep -n -x "$1" | cut -d: -f1)
  [ -n "$i" ] && tail -1 "$2" | cut -d, -f"$i"
}

# ---- expgraph info ----------------------------------------------------------------------
"$EXPGRAPH" info >"$TMP/info.yaml" 2>"$TMP/err"; rc=$?
check "info exits 0 (rc $rc) and prints nothing on stderr" sh -c "[ $rc -eq 0 ] && [ ! -s '$TMP/err' ]"
missing=""
for k in version commit build_type compiler flags libyaml open_mpi onednn openblas openblas_core \
         libpng libjpeg cairo OPENBLAS_CORETYPE ONEDNN_MAX_CPU_ISA EXPGRAPH_THREADS host cpu cores \
         dnnl_isa_f32 dnnl_isa_bf16; do
  grep -q -E "^  $k: " "$TMP/info.yaml" || missing="$missing $k"
done
check "info prints every item (missing:${missing:- none})" test -z "$missing"
empty=""
for k in version commit build_type compiler libyaml open_mpi onednn openblas libpng libjpeg cairo \
         host cpu cores dnnl_isa_f32; do
  v=$(yval "$k" "$TMP/info.yaml")
  { [ -z "$v" ] || [ "$v" = unknown ]; } && [ "$k" != commit ] && empty="$empty $k"
done
check "info: no item empty or unknown (bad:${empty:- none})" test -z "$empty"
check "info: version is --version's" test "expgraph $(yval version "$TMP/info.yaml")" = "$("$EXPGRAPH" --version)"
check "info: oneDNN 2.x or newer ($(yval onednn "$TMP/info.yaml"))" grep -q -E '^  onednn: [0-9]+\.[0-9]+\.[0-9]+$' "$TMP/info.yaml"
check "info: Open MPI's version text" grep -q -E '^  open_mpi: .*Open MPI v[0-9]' "$TMP/info.yaml"
check "info: libjpeg-turbo" grep -q -E '^  libjpeg: .*libjpeg-turbo [0-9]' "$TMP/info.yaml"
check "info: cores is a number" grep -q -E '^  cores: [1-9][0-9]*$' "$TMP/info.yaml"
# the f32 kernel is an implementation name: "jit:avx2", "brgconv:avx512_core", ...
isa=$(yval dnnl_isa_f32 "$TMP/info.yaml")
isa16=$(yval dnnl_isa_bf16 "$TMP/info.yaml")
check "info: dnnl_isa_f32 '$isa' is impl:isa" sh -c "echo '$isa' | grep -q -E '^[a-z0-9_]+:[a-z0-9_]+'"
# the commit the binary was built from (HEAD when built last; -dirty: with local changes)
if [ -n "${EG_SRC:-}" ] && git -C "$EG_SRC" rev-parse HEAD >/dev/null 2>&1; then
  c=$(yval commit "$TMP/info.yaml")
  check "info: commit $c is a commit of the checkout" \
    sh -c "echo '$c' | grep -q -E '^[0-9a-f]{40}(-dirty)?\$' && [ \"\$(git -C '$EG_SRC' cat-file -t '${c%-dirty}')\" = commit ]"
else
  echo "skipped: commit check (no git checkout)"
fi
EXPGRAPH_THREADS=3 OPENBLAS_CORETYPE=Haswell "$EXPGRAPH" info >"$TMP/info3.yaml"
check "info reports EXPGRAPH_THREADS" grep -q -x '  EXPGRAPH_THREADS: 3' "$TMP/info3.yaml"
check "info reports OPENBLAS_CORETYPE" grep -q -x '  OPENBLAS_CORETYPE: Haswell' "$TMP/info3.yaml"
"$EXPGRAPH" --version --verbose >"$TMP/vv.yaml"
check "--version --verbose prints the same as info" cmp -s "$TMP/info.yaml" "$TMP/vv.yaml"
# info does not initialise MPI: with an MPI transport that does not exist it still works
OMPI_MCA_pml=nosuch "$EXPGRAPH" info >"$TMP/nompi.yaml" 2>"$TMP/err"; rc=$?
check "info works without MPI (rc $rc)" sh -c "[ $rc -eq 0 ] && cmp -s '$TMP/info.yaml' '$TMP/nompi.yaml'"
"$EXPGRAPH" info --bogus >/dev/null 2>"$TMP/err"; rc=$?
check "info --bogus exits 2" sh -c "[ $rc -eq 2 ] && grep -q 'unexpected argument' '$TMP/err'"
check "info --help" sh -c "'$EXPGRAPH' info --help | grep -q 'usage: expgraph info'"
check "expgraph --help lists info" sh -c "'$EXPGRAPH' --help | grep -q '^  info '"

# ---- a run records it --------------------------------------------------------------------
cat > "$TMP/r.yaml" <<'YAML'
name: r
seed: 5
nodes: 8
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9}
model: {name: mlp, hidden: [16]}
data: {name: synthetic, dim: 16, classes: 4, samples: 128, batch_size: 8, heterogeneity: 0.5}
train: {iterations: 120, log_every: 10, eval_every: 30, checkpoint_every: 40}
lr: {base: 0.05, schedule: cosine, warmup_epochs: 1}
YAML
"$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/full" --quiet 2>"$TMP/err"; rc=$?
RI="$TMP/full/run_info.yaml"
check "run exits 0 without warnings (rc $rc)" sh -c "[ $rc -eq 0 ] && ! grep -q warning '$TMP/err'"
check "run wrote run_info.yaml (and no temporary)" sh -c "[ -s '$RI' ] && ! ls '$TMP/full' | grep -q tmp"
missing=""
for k in version commit build_type compiler libyaml open_mpi onednn openblas libpng libjpeg cairo \
         OPENBLAS_CORETYPE EXPGRAPH_THREADS hosts cpu dnnl_isa_f32 dnnl_isa_bf16 dnnl_isa ranks \
         threads precision host cores; do
  grep -q -E "^ *(- )?$k: " "$RI" || missing="$missing $k"
done
check "run_info.yaml holds every fact (missing:${missing:- none})" test -z "$missing"
for k in version commit onednn openblas libjpeg cpu; do
  check "run_info.yaml $k = info's" test "$(yval "$k" "$RI")" = "$(yval "$k" "$TMP/info.yaml")"
done
check "run_info.yaml: dnnl_isa (f32 run) = info's dnnl_isa_f32" test "$(yval dnnl_isa "$RI")" = "$isa"
check "run_info.yaml: host = info's" test "$(yval host "$RI")" = "$(yval host "$TMP/info.yaml")"
check "run_info.yaml: 1 host, rank 0" sh -c "grep -q -x '  hosts: 1' '$RI' && grep -q -x '    ranks: \[0\]' '$RI'"
S="$TMP/full/summary.csv"
check "summary.csv: expgraph_version" test "$(scol expgraph_version "$S")" = "$(yval version "$TMP/info.yaml")"
check "summary.csv: commit" test "$(scol commit "$S")" = "$(yval commit "$TMP/info.yaml")"
check "summary.csv: dnnl_isa = '$isa'" test "$(scol dnnl_isa "$S")" = "$isa"
check "summary.csv: hosts = 1" test "$(scol hosts "$S")" = 1
check "summary.csv: cpu" grep -q -F "$(yval cpu "$TMP/info.yaml")" "$S"

# bf16: the run's kernel is the bf16 one
if [ "$isa16" != unavailable ]; then
  "$EXPGRAPH" run "$TMP/r.yaml" --set train.precision=bf16 --set train.iterations=10 \
    --out "$TMP/bf16" --quiet 2>"$TMP/err"
  check "bf16 run: dnnl_isa = '$isa16'" test "$(scol dnnl_isa "$TMP/bf16/summary.csv")" = "$isa16"
else
  echo "skipped: bf16 kernel check (no bf16 convolution on this CPU)"
fi

# under mpirun: two ranks on one host
mpi 2 run "$TMP/r.yaml" --set train.iterations=20 --out "$TMP/np2" --quiet 2>"$TMP/err"; rc=$?
check "mpirun -np 2: exits 0 (rc $rc)" test "$rc" -eq 0
check "mpirun -np 2: one host with ranks [0, 1]" \
  sh -c "grep -q -x '  hosts: 1' '$TMP/np2/run_info.yaml' && grep -q -x '    ranks: \[0, 1\]' '$TMP/np2/run_info.yaml' && grep -q -x '  ranks: 2' '$TMP/np2/run_info.yaml'"

# ranks with different kernels (one rank capped to an older ISA) warn at start
low=""
for cap in AVX2 SSE41; do
  l=$(ONEDNN_MAX_CPU_ISA=$cap "$EXPGRAPH" info | sed -n 's/^  dnnl_isa_f32: //p' | tr -d '"')
  if [ -n "$l" ] && [ "$l" != "$isa" ]; then low=$cap lowisa=$l; break; fi
done
if [ -n "$low" ]; then
  "$MPIEXEC" --oversubscribe --mca btl self,vader -np 1 -x ONEDNN_MAX_CPU_ISA=$low "$EXPGRAPH" run "$TMP/r.yaml" \
    --set train.iterations=20 --out "$TMP/mixed" --quiet : -np 1 "$EXPGRAPH" run "$TMP/r.yaml" \
    --set train.iterations=20 --out "$TMP/mixed" --quiet 2>"$TMP/err"; rc=$?
  check "mixed kernels: the run completes (rc $rc)" test "$rc" -eq 0
  check "mixed kernels: a warning names both kernels" \
    sh -c "grep -q 'warning: the ranks dispatch different oneDNN f32 kernels' '$TMP/err' && grep -q -F '$lowisa' '$TMP/err' && grep -q -F '$isa' '$TMP/err'"
  check "mixed kernels: summary dnnl_isa '$lowisa | $isa'" test "$(scol dnnl_isa "$TMP/mixed/summary.csv")" = "$lowisa | $isa"
  check "mixed kernels: run_info.yaml lists both rank groups" \
    sh -c "[ \$(grep -c -E '^  - host: ' '$TMP/mixed/run_info.yaml') -eq 2 ]"
else
  echo "skipped: mixed kernels (ONEDNN_MAX_CPU_ISA changes nothing on this CPU)"
fi

# ---- resume ------------------------------------------------------------------------------
# killed, then resumed on the same machine: no warning, the same numbers
EXPGRAPH_KILL_AT=60 "$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/same" --quiet 2>/dev/null
check "killed run left run_info.yaml" test -s "$TMP/same/run_info.yaml"
"$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/same" --quiet --resume 2>"$TMP/err"; rc=$?
check "unchanged resume: exits 0 without a warning (rc $rc)" sh -c "[ $rc -eq 0 ] && ! grep -q warning '$TMP/err'"
check "unchanged resume: no resumed: entry" sh -c "! grep -q '^resumed:' '$TMP/same/run_info.yaml'"
check "unchanged resume: same metrics" same_metrics "$TMP/full/metrics.csv" "$TMP/same/metrics.csv"

# a faked record: another oneDNN version and kernel
EXPGRAPH_KILL_AT=60 "$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/fake" --quiet 2>/dev/null
check "killed at 60: no summary" test ! -e "$TMP/fake/summary.csv"
sed -i -E 's/^  onednn: .*/  onednn: 1.8.0/; s/^  dnnl_isa_f32: .*/  dnnl_isa_f32: "jit:sse41"/' "$TMP/fake/run_info.yaml"
"$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/fake" --quiet --resume 2>"$TMP/err"; rc=$?
check "changed record: the resume continues (rc $rc)" test "$rc" -eq 0
check "changed record: a warning on stderr" grep -q 'expgraph: warning: resuming at iteration 40' "$TMP/err"
check "changed record: it names oneDNN's version" grep -q -F "onednn 1.8.0 -> $(yval onednn "$TMP/info.yaml")" "$TMP/err"
check "changed record: it names the kernel" grep -q -F "dnnl_isa_f32 jit:sse41 -> $isa" "$TMP/err"
check "changed record: nothing else named" sh -c "! grep -q -E 'commit|cpu |openblas' '$TMP/err'"
check "changed record: the run finished (summary.csv)" test -s "$TMP/fake/summary.csv"
check "changed record: metrics complete (kernels did not really change)" same_metrics "$TMP/full/metrics.csv" "$TMP/fake/metrics.csv"
check "changed record: run_info.yaml keeps the start's facts" grep -q -x '  onednn: 1.8.0' "$TMP/fake/run_info.yaml"
check "changed record: run_info.yaml records the resume" \
  sh -c "grep -q '^resumed:' '$TMP/fake/run_info.yaml' && grep -q -x '  - iter: 40' '$TMP/fake/run_info.yaml'"
check "changed record: summary dnnl_isa spans both" test "$(scol dnnl_isa "$TMP/fake/summary.csv")" = "jit:sse41 | $isa"

# a real change: the kernels capped at resume (also a second entry in resumed:)
if [ -n "$low" ]; then
  EXPGRAPH_KILL_AT=60 "$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/real" --quiet 2>/dev/null
  EXPGRAPH_KILL_AT=90 ONEDNN_MAX_CPU_ISA=$low "$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/real" --quiet --resume 2>"$TMP/err"
  check "capped ISA: warns naming the kernel and ONEDNN_MAX_CPU_ISA" \
    sh -c "grep -q -F 'dnnl_isa_f32 $isa -> $lowisa' '$TMP/err' && grep -q 'ONEDNN_MAX_CPU_ISA (unset) -> $low' '$TMP/err'"
  ONEDNN_MAX_CPU_ISA=$low "$EXPGRAPH" run "$TMP/r.yaml" --out "$TMP/real" --quiet --resume 2>"$TMP/err"; rc=$?
  check "capped ISA: a second resume continues and finishes (rc $rc)" sh -c "[ $rc -eq 0 ] && [ -s '$TMP/real/summary.csv' ]"
  check "capped ISA: two entries under resumed:" \
    sh -c "[ \$(grep -c '^  - iter: ' '$TMP/real/run_info.yaml') -eq 2 ] && [ \$(grep -c '^resumed:' '$TMP/real/run_info.yaml') -eq 1 ]"
else
  echo "skipped: resume with a capped ISA"
fi

# ---- tables group by the provenance columns --------------------------------------------
"$EXPGRAPH" table "$TMP/full" "$TMP/fake" --rows dnnl_isa --format csv >"$TMP/t.csv" 2>"$TMP/err"; rc=$?
check "table --rows dnnl_isa: exits 0 (rc $rc) $(cat "$TMP/err")" test "$rc" -eq 0
check "table --rows dnnl_isa: header" test "$(head -1 "$TMP/t.csv")" = "dnnl_isa,test_acc"
check "table --rows dnnl_isa: one row per kernel" \
  sh -c "[ \$(wc -l < '$TMP/t.csv') -eq 3 ] && grep -q -F '$isa,' '$TMP/t.csv' && grep -q -F 'jit:sse41 | $isa,' '$TMP/t.csv'"
"$EXPGRAPH" table "$TMP/full" "$TMP/np2" --rows train.iterations --cols dnnl_isa --format csv >"$TMP/t2.csv" 2>"$TMP/err"; rc=$?
check "table --cols dnnl_isa works (rc $rc: $(head -1 "$TMP/t2.csv"))" \
  sh -c "[ $rc -eq 0 ] && [ \"\$(head -1 '$TMP/t2.csv')\" = 'train.iterations,dnnl_isa=$isa' ] && [ \$(wc -l < '$TMP/t2.csv') -eq 3 ]"
# where a run ran is not what it is: two seeds run on different kernels are averaged over
# seeds by default (one cell, n = 2), not split by dnnl_isa or commit
"$EXPGRAPH" run "$TMP/r.yaml" --set seed=6 --out "$TMP/seed6" --quiet
"$EXPGRAPH" table "$TMP/seed6" "$TMP/fake" --format csv >"$TMP/t3.csv" 2>"$TMP/err"; rc=$?
check "default table: one cell over both seeds (rc $rc: $(tr '\n' ' ' < "$TMP/t3.csv"))" \
  sh -c "[ $rc -eq 0 ] && [ \$(wc -l < '$TMP/t3.csv') -eq 2 ] && tail -1 '$TMP/t3.csv' | grep -q ',2\$'"
finish
