#!/usr/bin/env bash
# bench/run.sh - expgraph's benchmark suite (issue 8) in one command.
#
#   bash bench/run.sh [--quick] [--csv FILE] [--build DIR] [--no-build] [--no-torch] [--perf]
#                     [--nice N] [--rounds R] [--only LIST] [--baseline REV]
#
# Prints, and writes as CSV (default bench/results.csv; long format, one figure per row):
#   0. the model benchmark (bench_model): training samples/s and GFLOP/s of mlp, the Fashion
#      CNN and resnet-20 (f32, bf16; 1 and 2 threads) beside the oneDNN convolution peak; with
#      --baseline REV also the quick-start MLP and Fashion CNN training runs of the binary built
#      from git revision REV (e.g. 6005f89~1, before oneDNN), alternating with this one;
#   1. training throughput (samples/s, all nodes together, evaluation excluded) of the
#      quick-start MLP and the Fashion-MNIST CNN, n = 16: psgd, and dmsgd over full, exp,
#      onepeer_exp, ring; on 1 rank x 2 threads (the default on this 2-core machine),
#      1 rank x 1 thread (EXPGRAPH_THREADS=1) and 2 ranks x 1 thread (mpirun -np 2);
#   2. the gossip step alone (bench_gossip) per graph and vector size against memcpy/triad;
#   3. scaling in n (4..256 nodes, 1 rank, MLP, dmsgd on onepeer_exp, exp, ring): time per
#      iteration per node;
#   4. peak memory (max RSS, summed over ranks) beside node-state + dataset bytes;
#   5. the PyTorch reference (bench/torch_ref.py, Debian's python3-torch) and the ratio
#      expgraph / PyTorch on the same workload (skipped with a note when torch is missing);
#      5b (--only whole): the quick start as a whole process (start-up, data, evaluations),
#      wall time beside bench/torch_ref.py --whole at 1 and at 2 threads.
#   --perf adds "where the time goes": perf record of the full quick-start spec.
# Runs use a fixed number of iterations, a metrics row every few iterations and evaluation only
# at the end; the throughput reported is the best window (the machine is shared: best-of
# estimates what the code does when left alone; the whole-run mean is printed beside it).
# --quick: fewer graphs, sizes and iterations (~3 min instead of ~10). --build DIR: use the
# binaries there (default ./build, configured and built first unless --no-build). --nice N:
# run everything at niceness N (e.g. -19 as root on a shared machine; printed in the header).
# --rounds R: repeat the measurements R times (throughput matrix, scaling, torch/expgraph pairs;
# R x the gossip repetitions) and keep each figure's best: steadier on a busy machine.
# --only LIST: just these sections, comma-separated: 0 (model kernels), 1 (throughput and the
# n = 16 peak memory), 2 (gossip), 3 (scaling in n), 5 (PyTorch), perf (where the time goes),
# big (only when named: the paper's ResNet-56, batch 128, and ResNet-50, 3x224x224, batch 32,
# one node on 1 thread, f32 and bf16, beside the same-run oneDNN peak and PyTorch on 1 thread;
# several minutes per round).
# --baseline REV: section 0 also times the binary of git revision REV (built in a temporary
# directory) on the same training runs, alternating with this build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
quick=0; csv="$here/bench/results.csv"; build="$here/build"; do_build=1; torch=1; perf=0; nice_n=""; rounds=1
only=""; baseline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --csv) csv=$2; shift ;;
    --build) build=$2; shift ;;
    --no-build) do_build=0 ;;
    --no-torch) torch=0 ;;
    --perf) perf=1 ;;
    --nice) nice_n=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --only) only=$2; shift ;;
    --baseline) baseline=$2; shift ;;
    -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$csv" in /*) ;; *) csv="$PWD/$csv" ;; esac
# want SECTION: whether --only (a comma-separated list of 0,1,2,3,5,whole,perf,big) asks for it; all
# sections when --only is not given (perf only with --perf)
want() { [ -z "$only" ] || case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for w in ${only//,/ }; do
  case "$w" in 0|1|2|3|5|whole|perf|big) ;; *) echo "run.sh: --only: unknown section '$w' (0,1,2,3,5,whole,perf,big)" >&2; exit 2 ;; esac
done
if [ -n "$nice_n" ] && [ -z "${EG_BENCH_NICED:-}" ]; then
  # a shared machine: run the whole suite (and every process it starts) at niceness N
  # (negative needs root), so that other jobs take less of the cores while it measures
  export EG_BENCH_NICED=1
  exec nice -n "$nice_n" bash "$0" "$@" --csv "$csv" --build "$build" $( [ "$do_build" = 0 ] && echo --no-build ) \
    $( [ "$quick" = 1 ] && echo --quick ) $( [ "$torch" = 0 ] && echo --no-torch ) $( [ "$perf" = 1 ] && echo --perf ) \
    $( [ -n "$only" ] && echo --only "$only" ) $( [ -n "$baseline" ] && echo --baseline "$baseline" ) \
    --rounds "$rounds"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export LC_ALL=C

if [ "$do_build" = 1 ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target expgraph bench_model bench_gossip >/dev/null
fi
EG="$build/expgraph"
for b in "$EG" "$build/bench/bench_model" "$build/bench/bench_gossip"; do
  [ -x "$b" ] || { echo "run.sh: $b is missing (build first, or drop --no-build)" >&2; exit 1; }
done
TIME=/usr/bin/time
if [ ! -x "$TIME" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "(installing Debian's 'time' package for /usr/bin/time -v)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null || true
  fi
  [ -x "$TIME" ] || { echo "run.sh: /usr/bin/time is missing (apt-get install time); peak memory is skipped"; TIME=""; }
fi
MPIRUN=${MPIEXEC:-mpirun}
PY=/usr/bin/python3
# torch_ok: whether the PyTorch sections can run (else prints why they are skipped)
torch_ok() {
  if [ "$torch" = 0 ]; then
    echo "   skipped (--no-torch)"; return 1
  elif ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "   skipped: PyTorch is not installed for $PY (Debian: apt-get install -y python3-torch, ~1 GB; then rerun)"
    return 1
  fi
}
work=$(mktemp -d "${TMPDIR:-/tmp}/eg-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$here"

# ---- sizes of the run --------------------------------------------------------------------
if [ "$quick" = 1 ]; then
  model_args=(--time 0.1 --reps 1)
  gossip_args=(--dims 262144,1048576 --time 0.1); gossip_reps=2
  mlp_iters=60; mlp_win=10; cnn_iters=12; cnn_win=3
  graphs=(psgd onepeer_exp ring)
  setups=("1 2" "1 1" "2 1")
  scale_nodes=(4 16 64 256); scale_graphs=(onepeer_exp exp ring); scale_samples=16000
  torch_graphs=(onepeer_exp psgd)
  torch_iters_mlp=40; torch_iters_cnn=6; torch_win_cnn=2
else
  model_args=(--time 0.25 --reps 3)
  gossip_args=(--time 0.1); gossip_reps=4
  mlp_iters=300; mlp_win=10; cnn_iters=48; cnn_win=4
  graphs=(psgd full exp onepeer_exp ring)
  setups=("1 2" "1 1" "2 1")
  scale_nodes=(4 8 16 32 64 128 256); scale_graphs=(onepeer_exp exp ring); scale_samples=40000
  torch_graphs=(onepeer_exp ring psgd)
  torch_iters_mlp=150; torch_iters_cnn=24; torch_win_cnn=2
fi

echo "expgraph benchmark suite ($( [ "$quick" = 1 ] && echo quick || echo full )), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: compare ratios within this run)"
if [ "$(nice)" -ge 0 ] && awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v c="$(nproc)" 'BEGIN{exit !(l > c/2)}'; then
  echo "WARNING: the machine is busy (load above $(nproc)/2): other jobs will take cores from these runs, and 2-thread"
  echo "         runs suffer most (a thread waiting at a barrier for a descheduled one). Rerun when it is quiet,"
  echo "         or as root with --nice -19 (the figures in bench/README.md were taken that way)."
fi
rev=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$here" diff --quiet HEAD -- lib cli 2>/dev/null || rev="$rev+local changes in lib/ or cli/"
echo "source: $rev; binaries: $build; niceness $(nice)"
echo "CSV -> $csv"
echo "section,model,graph,algorithm,nodes,ranks,threads,iters,dim,metric,value" > "$csv"
row() { # row SECTION MODEL GRAPH ALGO NODES RANKS THREADS ITERS DIM METRIC VALUE
  local IFS=,; echo "$*" >> "$csv"
}

# summary.csv column by name
col() { awk -F, -v k="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==k) c=i} NR==2{print $c}' "$1/summary.csv"; }

# run_eg OUTDIR RANKS THREADS ITERS WINDOW SPEC [--set ...]: one run of ITERS iterations
# (log in OUTDIR.log) with a metrics row every WINDOW iterations, evaluation only at the end.
# Prints "best_sps mean_sps train_time_s max_rss_kb params":
#   best_sps  samples/s of the fastest WINDOW-iteration window (time_s excludes evaluation):
#             what the code does when the shared machine leaves it alone (best-of, as
#             bench_model and bench_gossip), and
#   mean_sps  iterations x nodes x batch / train_time_s over the whole run (summary.csv);
# RSS summed over ranks; all zeros when the run failed.
run_eg() {
  local out=$1 ranks=$2 threads=$3 iters=$4 win=$5 spec=$6; shift 6
  local rssbase="$work/rss.$(basename "$out")" wrap=() rc=0
  local sets=(--set train.iterations="$iters" --set train.log_every="$win"
              --set train.eval_every="$iters" --set train.checkpoint_every=0)
  [ -n "$TIME" ] && wrap=(sh -c 'exec '"$TIME"' -f %M -o "$0.${OMPI_COMM_WORLD_RANK:-0}" "$@"' "$rssbase")
  if [ "$ranks" = 1 ]; then
    EXPGRAPH_THREADS=$threads "${wrap[@]}" "$EG" run "$spec" "$@" "${sets[@]}" --out "$out" --force \
      > "$out.log" 2>&1 || rc=$?
  else
    "$MPIRUN" -np "$ranks" --mca btl self,vader -x EXPGRAPH_THREADS="$threads" \
      "${wrap[@]}" "$EG" run "$spec" "$@" "${sets[@]}" --out "$out" --force > "$out.log" 2>&1 || rc=$?
  fi
  if [ "$rc" != 0 ] || [ ! -f "$out/summary.csv" ]; then
    echo "run.sh: run failed (exit $rc): $EG run $spec $* ($ranks rank(s) x $threads thread(s)):" >&2
    tail -5 "$out.log" >&2
    echo "0 0 0 0 0"
    return 0
  fi
  local rss=0 f
  for f in "$rssbase".*; do [ -f "$f" ] && rss=$((rss + $(tail -1 "$f"))); done
  local params per best
  params=$(sed -n 's/.*(\([0-9]*\) params).*/\1/p' "$out.log" | head -1)
  per=$(( $(col "$out" nodes) * $(col "$out" data.batch_size) ))
  best=$(awk -F, -v per="$per" 'NR>1 { if (NR>2 && $3>t && $1>i) { s=($1-i)*per/($3-t); if (s>b) b=s }
                                       i=$1; t=$3 } END { printf "%.1f", b }' "$out/metrics.csv")
  echo "$best $(col "$out" samples_per_s) $(col "$out" train_time_s) $rss ${params:-0}"
}

if want 0; then
# ---- 0. model benchmark ------------------------------------------------------------------
echo
echo "== 0. model benchmark (bench_model: eg_model_loss_grad at batch 32, best-of; % of the oneDNN conv peak"
echo "   of the same precision on the same threads; 2 threads = 2 nodes in parallel, each single-threaded)"
"$build/bench/bench_model" --csv "${model_args[@]}" > "$work/model.csv"
# bench_model --csv: section,model,batch,threads,phase,time_share,samples_per_s,gflops,peak_gflops,peak_frac
awk -F, 'NR>1 && $1=="peak"{printf "peak %s: %.1f GFLOP/s on %s thread(s)\n", $2, $8, $4}' "$work/model.csv"
printf "%-60s %7s %10s %8s %6s\n" "model (fwd+bwd, batch 32 per node)" threads samples/s GFLOP/s %peak
awk -F, 'NR>1 && $1=="model"{m=$2; gsub(/"/,"",m); printf "%-60s %7s %10.0f %8.1f %5.1f%%\n", m, $4, $7, $8, 100*$10}' "$work/model.csv"
awk -F, 'NR>1 && $1=="peak"{print "model,"$2",,,,,"$4",,,gflops,"$8}
  NR>1 && $1=="model"{m=$2; gsub(/"/,"",m); print "model,"m",,,,,"$4",,"$3",samples_per_s,"$7; print "model,"m",,,,,"$4",,"$3",gflops,"$8; print "model,"m",,,,,"$4",,"$3",peak_frac,"$10}
  NR>1 && $1=="phase"{m=$2; gsub(/"/,"",m); print "model,"m",,,,,"$4",,"$3",share "$5","$6}' "$work/model.csv" >> "$csv"
if [ -n "$baseline" ]; then
  # the same training runs with the binary of another revision, alternating (ratios in one run)
  echo
  echo "   against $baseline (built in a temporary directory): training samples/s, best window (and whole run), 1 rank x 2 threads,"
  echo "   alternating old and new binaries over $rounds+1 round(s)"
  bdir="$work/baseline"; mkdir -p "$bdir/src"
  if git -C "$here" archive "$baseline" | tar -x -C "$bdir/src" &&
     cmake -S "$bdir/src" -B "$bdir/build" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
     cmake --build "$bdir/build" -j"$(nproc)" --target expgraph >/dev/null; then
    max() { awk -v a="$1" -v b="$2" 'BEGIN{print (b>a)?b:a}'; }
    printf "%-5s %12s %12s %8s   %s\n" model "$baseline" "this" ratio "(whole run: $baseline, this, ratio)"
    for model in mlp cnn; do
      if [ "$model" = mlp ]; then spec=experiments/quickstart.yaml; it=$mlp_iters; win=$mlp_win
      else spec=experiments/fashion/cnn_onepeer.yaml; it=$cnn_iters; win=$cnn_win; fi
      bo=0; bn=0; wo=0; wn=0; failed=0
      for round in $(seq 0 "$rounds"); do
        for which in old new; do
          if [ "$which" = old ]; then EGB="$bdir/build/expgraph"; else EGB="$build/expgraph"; fi
          # the old binary looks for datasets in its own (temporary) source tree: point both
          # at this tree's data/cache
          read -r best whole _ < <(EXPGRAPH_DATA="$here/data/cache" EG="$EGB" \
                                   run_eg "$work/bl-$model-$which" 1 2 "$it" "$win" "$spec")
          awk -v b="$best" 'BEGIN{exit !(b > 0)}' || failed=1
          if [ "$which" = old ]; then bo=$(max "$bo" "$best"); wo=$(max "$wo" "$whole")
          else bn=$(max "$bn" "$best"); wn=$(max "$wn" "$whole"); fi
        done
      done
      if [ "$failed" = 1 ]; then # a failed run is no figure (run_eg named the command)
        printf "%-5s %12s %12s %8s\n" "$model" failed failed -
        continue
      fi
      printf "%-5s %12.0f %12.0f %7.2fx   (%.0f, %.0f, %.2fx)\n" "$model" "$bo" "$bn" \
        "$(awk -v a="$bo" -v b="$bn" 'BEGIN{print b/a}')" "$wo" "$wn" "$(awk -v a="$wo" -v b="$wn" 'BEGIN{print (a>0)?b/a:0}')"
      row baseline "$model" onepeer_exp dmsgd 16 1 2 "$it" "" "samples_per_s_best_window $baseline" "$bo"
      row baseline "$model" onepeer_exp dmsgd 16 1 2 "$it" "" samples_per_s_best_window "$bn"
      row baseline "$model" onepeer_exp dmsgd 16 1 2 "$it" "" "samples_per_s $baseline" "$wo"
      row baseline "$model" onepeer_exp dmsgd 16 1 2 "$it" "" samples_per_s "$wn"
    done
  else
    echo "   skipped: could not build $baseline"
  fi
fi

fi

if want 1; then
# ---- 1 + 4. throughput, n = 16 ---------------------------------------------------------
mnist_bytes=$(( (60000 + 10000) * (784 + 1) ))  # images as uint8 (issue 19) + labels
declare -A SPS MEAN TT RSS PARAMS
# spec args for a "graph" column value: psgd is the all-reduce baseline (graph unused)
graph_sets() {
  if [ "$1" = psgd ]; then echo "--set algorithm.name=psgd --set graph=full"
  else echo "--set algorithm.name=dmsgd --set graph=$1"; fi
}
echo
echo "== 1. training throughput, n = 16, batch 32 per node (samples/s, all nodes together)"
echo "   MLP: experiments/quickstart.yaml, $mlp_iters iterations; CNN: experiments/fashion/cnn_onepeer.yaml, $cnn_iters iterations;"
echo "   best window of $mlp_win (MLP) / $cnn_win (CNN) iterations (time_s excludes evaluation); in brackets the whole-run mean;"
echo "   best of $rounds round(s) over the matrix"
printf "%-5s %-12s %17s %17s %17s %9s %9s\n" model graph "1r x 2t" "1r x 1t" "2r x 1t" "2r/1rx2t" "2r/1rx1t"
# measure: R rounds over the whole matrix (a busy minute then hits one round, not one figure)
for round in $(seq 1 "$rounds"); do
  for model in mlp cnn; do
    if [ "$model" = mlp ]; then spec=experiments/quickstart.yaml; it=$mlp_iters; win=$mlp_win
    else spec=experiments/fashion/cnn_onepeer.yaml; it=$cnn_iters; win=$cnn_win; fi
    for g in "${graphs[@]}"; do
      for su in "${setups[@]}"; do
        set -- $su; R=$1; T=$2
        read -r best mean tt rss np < <(run_eg "$work/tp-$model-$g-$R-$T" "$R" "$T" "$it" "$win" "$spec" $(graph_sets "$g"))
        k="$model,$g,$R,$T"
        if awk -v a="$best" -v b="${SPS[$k]:-0}" 'BEGIN{exit !(a > b)}'; then
          SPS[$k]=$best; MEAN[$k]=$mean; TT[$k]=$tt
        fi
        [ "${RSS[$k]:-0}" -lt "$rss" ] && RSS[$k]=$rss
        [ "$np" != 0 ] && PARAMS[$model]=$np
      done
    done
  done
done
for model in mlp cnn; do
  it=$mlp_iters; [ "$model" = cnn ] && it=$cnn_iters
  for g in "${graphs[@]}"; do
    algo=dmsgd; gname=$g; [ "$g" = psgd ] && { algo=psgd; gname=full; }
    for su in "${setups[@]}"; do
      set -- $su; R=$1; T=$2; k="$model,$g,$R,$T"
      row throughput "$model" "$gname" "$algo" 16 "$R" "$T" "$it" "" samples_per_s_best_window "${SPS[$k]:-0}"
      row throughput "$model" "$gname" "$algo" 16 "$R" "$T" "$it" "" samples_per_s_mean "${MEAN[$k]:-0}"
      row throughput "$model" "$gname" "$algo" 16 "$R" "$T" "$it" "" train_time_s "${TT[$k]:-0}"
      row memory "$model" "$gname" "$algo" 16 "$R" "$T" "$it" "" max_rss_bytes "$(( ${RSS[$k]:-0} * 1024 ))"
    done
    label=$g; [ "$g" = psgd ] && label="psgd(full)"
    cell() { printf "%7.0f (%7.0f)" "${SPS[$model,$g,$1,$2]:-0}" "${MEAN[$model,$g,$1,$2]:-0}"; }
    ratio() { awk -v x="${SPS[$model,$g,$1,$2]:-0}" -v y="${SPS[$model,$g,$3,$4]:-0}" 'BEGIN{printf "%.2fx", (y>0)?x/y:0}'; }
    printf "%-5s %-12s %17s %17s %17s %9s %9s\n" "$model" "$label" "$(cell 1 2)" "$(cell 1 1)" "$(cell 2 1)" \
      "$(ratio 2 1 1 2)" "$(ratio 2 1 1 1)"
  done
done
echo "   1r x 2t: one process, 2 OpenMP threads over the nodes (the default here: cores / ranks);"
echo "   1r x 1t: EXPGRAPH_THREADS=1; 2r x 1t: mpirun -np 2 --mca btl self,vader, 1 thread each."
echo "   Target: CNN 2 ranks >= 1.6x 1 rank. On 2 cores 1r x 2t already uses both, so 2r/1rx2t can be ~1x at best;"
echo "   2r/1rx1t is the scaling from one core to two."

fi

if want 2; then
# ---- 2. gossip step alone ---------------------------------------------------------------
echo
echo "== 2. gossip step alone vs the memory-bandwidth limit (bench_gossip, n = 16, 1 rank x $(nproc) threads)"
"$build/bench/bench_gossip" --csv "${gossip_args[@]}" --reps $(( gossip_reps * rounds )) > "$work/gossip.csv"
printf "%-12s %8s %4s %9s %7s %8s %6s %9s %9s %6s %9s\n" graph dim nnz time_ms GB/s "BW GB/s" ratio ratio_min rw_ms ratio ratio_min
awk -F, 'NR>1{printf "%-12s %8s %4.0f %9.3f %7.1f %8.1f %6.2f %9.2f %9.3f %6.2f %9.2f\n", $3, $4, $5, $6*1e3, $9, $12, $13, $14, $15*1e3, $16, $17}' "$work/gossip.csv"
awk -F, 'NR>1{k="gossip,,"$3",,"$1",1,"$2",,"$4; print k",time_s,"$6; print k",gbps_sum_model,"$9; print k",memcpy_gbps,"$10;
  print k",triad_gbps,"$11; print k",bw_gbps,"$12; print k",ratio,"$13; print k",ratio_min,"$14;
  if ($15 != "") { print k",rowwise_time_s,"$15; print k",rowwise_ratio,"$16; print k",rowwise_ratio_min,"$17 } }' \
  "$work/gossip.csv" >> "$csv"
echo "   bytes (sum model) = (nnz(W) + n) x dim x 4: each row reads self + in-neighbours, writes one vector;"
echo "   BW = max(parallel memcpy, triad) over the same n x dim floats; ratio = time / (bytes / BW), 1 = at the limit;"
echo "   ratio_min: against the floor 2n x dim x 4 (every vector read once, written once)."
echo "   rw: the row-at-a-time combine comm.c used before (checked bitwise equal to the library's). Target: ratio <= 2 for dim >= 1M."

fi

if want 3; then
# ---- 3 + 4. scaling in n -----------------------------------------------------------------
echo
echo "== 3. scaling in n (1 rank x 2 threads, MLP, dmsgd): time per iteration per node (ms, best window), and peak memory"
printf "%-6s" nodes; for g in "${scale_graphs[@]}"; do printf " %12s" "$g"; done
printf " %9s %9s %9s %8s\n" "RSS MB" "need MB" "state MB" "RSS/need"
for n in "${scale_nodes[@]}"; do
  it=$(( scale_samples / (32 * n) )); [ "$it" -lt 12 ] && it=12
  win=$(( it / 6 )); [ "$win" -lt 2 ] && win=2
  printf "%-6s" "$n"
  maxrss=0
  for g in "${scale_graphs[@]}"; do
    bs=0; bm=0
    for round in $(seq 1 "$rounds"); do
      read -r best mean tt rss np < <(run_eg "$work/sc-$n-$g" 1 2 "$it" "$win" experiments/quickstart.yaml \
        --set nodes="$n" --set graph="$g")
      awk -v a="$best" -v b="$bs" 'BEGIN{exit !(a > b)}' && { bs=$best; bm=$mean; }
      [ "$np" != 0 ] && PARAMS[mlp]=$np
      [ "$rss" -gt "$maxrss" ] && maxrss=$rss
    done
    ms=$(awk -v s="$bs" 'BEGIN{printf "%.4f", (s>0)? 1e3*32/s : 0}')
    msm=$(awk -v s="$bm" 'BEGIN{printf "%.4f", (s>0)? 1e3*32/s : 0}')
    printf " %12s" "$ms"
    row scaling mlp "$g" dmsgd "$n" 1 2 "$it" "" ms_per_iter_per_node_best_window "$ms"
    row scaling mlp "$g" dmsgd "$n" 1 2 "$it" "" ms_per_iter_per_node_mean "$msm"
    row memory mlp "$g" dmsgd "$n" 1 2 "$it" "" max_rss_bytes "$((rss * 1024))"
  done
  # dmsgd keeps x and m per node, and the combine writes a third vector
  state=$(( n * ${PARAMS[mlp]:-0} * 4 * 3 ))
  need=$(( state + mnist_bytes ))
  printf " %9.1f %9.1f %9.1f %8.2f\n" "$(awk -v r="$maxrss" 'BEGIN{print r/1024}')" \
    "$(awk -v b="$need" 'BEGIN{print b/1048576}')" "$(awk -v b="$state" 'BEGIN{print b/1048576}')" \
    "$(awk -v r="$maxrss" -v b="$need" 'BEGIN{print r*1024/b}')"
  row memory mlp "" dmsgd "$n" 1 2 "" "" need_bytes "$need"
  row memory mlp "" dmsgd "$n" 1 2 "" "" rss_over_need "$(awk -v r="$maxrss" -v b="$need" 'BEGIN{printf "%.4f", r*1024/b}')"
done
echo "   time per iteration per node = 1e3 x batch / (samples/s); it should stay flat for onepeer_exp, grow like log n for exp."
echo "   need = nodes x params x 4 x 3 vectors (DmSGD keeps x and momentum, and the combine writes a third) + MNIST as bytes (60000+10000) x (784 + 1) (images held as uint8);"
echo "   RSS = max resident set size (/usr/bin/time), the largest of the graphs. Target: RSS/need <= 1.5 at n = 64."

fi

# section 4 reports the RSS of section 1's runs
if want 1; then
echo
echo "== 4. peak memory of the n = 16 runs (MB, summed over ranks; need = node state + dataset, per process)"
printf "%-5s %-12s %9s %9s %9s %9s\n" model graph "1r x 2t" "1r x 1t" "2r x 1t" "need(1r)"
for model in mlp cnn; do
  p=${PARAMS[$model]:-0}
  for g in "${graphs[@]}"; do
    need=$(( 16 * p * 4 * 3 + mnist_bytes ))
    mb() { awk -v r="${RSS[$model,$g,$1,$2]:-0}" 'BEGIN{printf "%.1f", r/1024}'; }
    printf "%-5s %-12s %9s %9s %9s %9.1f\n" "$model" "$g" "$(mb 1 2)" "$(mb 1 1)" "$(mb 2 1)" \
      "$(awk -v b="$need" 'BEGIN{print b/1048576}')"
  done
done
echo "   (2 ranks: each rank holds only its nodes' training samples, but its own test set, libraries and MPI buffers.)"

fi

if want 5; then
# ---- 5. PyTorch reference ----------------------------------------------------------------
echo
echo "== 5. PyTorch reference (bench/torch_ref.py: same models and algorithm, n = 16, batch 32, 2 threads)"
if torch_ok; then
  printf "%-5s %-12s %17s %17s %8s\n" model graph "torch" "expgraph 1r x 2t" "ratio"
  # the ResNet-20 row needs its spec (experiments/fashion/resnet20_onepeer.yaml); torch runs it
  # with grouped (NHWC) and with per-node convolutions and is compared with the faster
  torch_models=(mlp cnn); [ -f experiments/fashion/resnet20_onepeer.yaml ] && torch_models+=(resnet)
  for model in "${torch_models[@]}"; do
    ti=$torch_iters_mlp; tw=$mlp_win; it=$mlp_iters; win=$mlp_win; spec=experiments/quickstart.yaml
    [ "$model" = cnn ] && { ti=$torch_iters_cnn; tw=$torch_win_cnn; it=$cnn_iters; win=$cnn_win; spec=experiments/fashion/cnn_onepeer.yaml; }
    [ "$model" = resnet ] && { ti=$torch_iters_cnn; tw=$torch_win_cnn; it=$cnn_iters; win=$cnn_win; spec=experiments/fashion/resnet20_onepeer.yaml; }
    convs=(grouped_cl); [ "$model" = resnet ] && convs=(grouped_cl loop)
    for g in "${torch_graphs[@]}"; do
      # torch, then expgraph right after it (R times: best of each); the ratio compares runs
      # taken seconds apart
      tbest=0; tmean=0; esps=0; emean=0
      for round in $(seq 1 "$rounds"); do
        for conv in "${convs[@]}"; do
          line=$("$PY" bench/torch_ref.py --model "$model" --graph "$g" --iters "$ti" --window "$tw" --warmup 3 --threads 2 --conv "$conv" --csv) || line=""
          tb=$(echo "$line" | cut -d, -f10); tm=$(echo "$line" | cut -d, -f7)
          awk -v a="${tb:-0}" -v b="$tbest" 'BEGIN{exit !(a > b)}' && { tbest=$tb; tmean=$tm; }
        done
        read -r eb em _ _ _ < <(run_eg "$work/tr-$model-$g" 1 2 "$it" "$win" "$spec" $(graph_sets "$g"))
        awk -v a="$eb" -v b="$esps" 'BEGIN{exit !(a > b)}' && { esps=$eb; emean=$em; }
      done
      ratio=$(awk -v a="$esps" -v b="${tbest:-0}" 'BEGIN{printf "%.2f", (b>0)?a/b:0}')
      printf "%-5s %-12s %7.0f (%7.0f) %7.0f (%7.0f) %7sx\n" "$model" "$g" "${tbest:-0}" "${tmean:-0}" "$esps" "$emean" "$ratio"
      algo=dmsgd; [ "$g" = psgd ] && algo=psgd
      row torch "$model" "$g" "$algo" 16 1 2 "$ti" "" torch_samples_per_s_best_window "${tbest:-0}"
      row torch "$model" "$g" "$algo" 16 1 2 "$ti" "" torch_samples_per_s_mean "${tmean:-0}"
      row torch "$model" "$g" "$algo" 16 1 2 "$it" "" expgraph_samples_per_s_best_window "$esps"
      row torch "$model" "$g" "$algo" 16 1 2 "" "" ratio_expgraph_over_torch "$ratio"
    done
  done
  echo "   samples/s, best window (whole-run mean in brackets); expgraph rerun right after each torch run (1 rank x 2 threads);"
  echo "   torch: torch.set_num_threads(2), stacked per-node parameters, bmm / grouped NHWC convolutions (resnet: the faster"
  echo "   of grouped and per-node convolutions, batch norm per node); psgd in torch ="
  echo "   one model on the 16 x 32 batch. ratio = expgraph / torch (best windows). Target: ratio >= 3."
fi

fi

# ---- 5b. the quick start as a whole process ----------------------------------------------
if want 5 || want whole; then
echo
echo "== 5b. the quick start as a whole process beside PyTorch (bench/torch_ref.py --whole)"
if torch_ok; then
  # the quick start as a whole process: what a user waits for, start-up, dataset loading and
  # evaluations included. PyTorch at 1 and at 2 threads (on these 2 cores it is faster on
  # one), expgraph as the user runs it; R rounds alternating, the median wall of each
  echo "   whole process, experiments/quickstart.yaml (16 nodes, MLP, onepeer_exp, 4 epochs = 468 iterations,"
  echo "   3 evaluations of x_bar and of every node): seconds of wall time, median of $((rounds < 3 ? 3 : rounds)) rounds"
  wall() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || return 1; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'; }
  median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
  w_t1=(); w_t2=(); w_eg=(); w_v=(); failed=
  # timed ARRAY CMD...: one more wall time into ARRAY; a command that fails is named in
  # $failed, and the section then reports no figures (a failed run is not a fast one)
  timed() { local -n arr=$1; local w; shift; w=$(wall "$@") || { failed+=" '$*'"; return 0; }; arr+=("$w"); }
  for round in $(seq 1 $((rounds < 3 ? 3 : rounds))); do
    timed w_t1 "$PY" bench/torch_ref.py --model mlp --whole --threads 1
    timed w_t2 "$PY" bench/torch_ref.py --model mlp --whole --threads 2
    timed w_eg "$EG" run experiments/quickstart.yaml --out "$work/whole" --force --quiet
    timed w_v "$EG" validate experiments/quickstart.yaml
  done
  if [ -n "$failed" ]; then
    echo "   FAILED (no figures from this section; run it by hand to see why):$failed"
  else
    t1=$(median "${w_t1[@]}"); t2=$(median "${w_t2[@]}"); eg=$(median "${w_eg[@]}"); tv=$(median "${w_v[@]}")
    tb=$(awk -v a="$t1" -v b="$t2" 'BEGIN{print (a < b) ? a : b}')
    ratio=$(awk -v t="$tb" -v e="$eg" 'BEGIN{printf "%.2f", (e > 0) ? t / e : 0}')
    printf "   PyTorch 1 thread %6.2f s, 2 threads %6.2f s; expgraph %6.2f s; ratio (faster PyTorch / expgraph) %sx (target 3x)\n" \
      "$t1" "$t2" "$eg" "$ratio"
    printf "   expgraph validate experiments/quickstart.yaml: %.3f s (target under 0.3 s)\n" "$tv"
    row torch_whole mlp "" "" 16 1 2 0 "" expgraph_validate_s "$tv"
    row torch_whole mlp onepeer_exp dmsgd 16 1 1 468 "" torch_whole_s_1thread "$t1"
    row torch_whole mlp onepeer_exp dmsgd 16 1 2 468 "" torch_whole_s_2threads "$t2"
    row torch_whole mlp onepeer_exp dmsgd 16 1 2 468 "" expgraph_whole_s "$eg"
    row torch_whole mlp onepeer_exp dmsgd 16 1 2 468 "" ratio_torch_over_expgraph "$ratio"
  fi
fi
fi

# ---- where the time goes (optional) -------------------------------------------------------
if [ "$perf" = 1 ] || { [ -n "$only" ] && want perf; }; then
  echo
  echo "== where the time goes: perf record of experiments/quickstart.yaml (the full spec, evaluation included)"
  if ! command -v perf >/dev/null; then
    echo "   skipped: perf is not installed"
  else
    perf record -q -F 499 --call-graph dwarf,16384 -o "$work/perf.data" -- \
      "$EG" run experiments/quickstart.yaml --out "$work/perf-run" --force --quiet 2>/dev/null
    echo "   train_time_s $(col "$work/perf-run" train_time_s), wall_s $(col "$work/perf-run" wall_s) (wall - train = set-up + evaluation + checkpoints);"
    echo "   shares of all CPU samples (both threads), inclusive of callees:"
    perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null > "$work/perf-children.txt" || true
    perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null > "$work/perf-dso.txt" || true
    awk -v dso="$work/perf-dso.txt" '
      BEGIN { while ((getline l < dso) > 0) if (l ~ /libgomp/) { split(l, a, " "); sub(/%/, "", a[1]); gomp = a[1] } }
      /^#/ || NF < 3 {next}
      { p=$1; sub(/%/,"",p); v[$4]=p }
      END {
        # symbol[,symbol...]=label: the symbols are alternatives (the AVX2 and baseline clones
        # of a kernel; the OpenMP-outlined combine, whose samples on the worker thread do not
        # pass through eg_comm_gossip_multi) and are added
        n = split("eg_model_loss_grad=gradients (forward + backward; BLAS and model.c)|eg_algo_node_update,eg_algo_node_update.avx2,eg_algo_node_update.default=algorithm update (momentum, the vector to send)|combine_rows._omp_fn.0=gossip (the combine)|eg_data_fill_batch=minibatch assembly|eg_model_eval=evaluation (test set + per-node accuracy)|eg_comm_sum_nodes=consensus and mean model|eg_ckpt_save=checkpoints|eg_alloc_floats=allocation (zeroing the state vectors)", it, "|")
        tot = 0
        for (i = 1; i <= n; i++) {
          split(it[i], kv, "="); m = split(kv[1], syms, ","); x = 0
          for (j = 1; j <= m; j++) x += v[syms[j]] + 0
          tot += x; printf "   %6.1f%%  %s\n", x, kv[2] }
        x = v["eg_data_load"] + 0; if (v["eg_data_load_idx"] + 0 > x) x = v["eg_data_load_idx"] + 0
        tot += x; printf "   %6.1f%%  dataset loading\n", x
        printf "   %6.1f%%  OpenMP waits (libgomp: a thread idle at a barrier or during serial code)\n", gomp; tot += gomp
        printf "   %6.1f%%  other (kernel, MPI start-up, rest)\n", 100 - tot }'  "$work/perf-children.txt"
  fi
fi

if [ -n "$only" ] && want big; then
# ---- big. the paper's models (issue 23) ---------------------------------------------------
echo
echo "== big. the paper's models: ResNet-56 (3x32x32, batch 128), ResNet-50 (imagenet stem, 3x224x224,"
echo "   batch 32); one node's forward + backward on 1 thread, best of $rounds; % of the same-run f32 peak"
"$build/bench/bench_model" --only big --reps "$rounds" --time 0.2 --csv > "$work/big.csv"
awk -F, 'NR>1 && $1=="peak" && $4==1 {printf "peak %s: %.1f GFLOP/s on 1 thread\n", $2, $8}' "$work/big.csv"
f32peak=$(awk -F, 'NR>1 && $1=="peak" && $4==1 && $2 ~ /f32/ {print $8}' "$work/big.csv")
printf "%-62s %10s %8s %10s\n" "model (fwd+bwd, 1 thread)" samples/s GFLOP/s "%f32 peak"
awk -F, -v pk="$f32peak" 'NR>1 && $1=="model"{m=$2; gsub(/"/,"",m); printf "%-62s %10.2f %8.1f %9.1f%%\n", m, $7, $8, 100*$8/pk}' "$work/big.csv"
awk -F, 'NR>1 && $1=="model"{m=$2; gsub(/"/,"",m); print "big,"m",,,1,1,1,,"$3",samples_per_s,"$7; print "big,"m",,,1,1,1,,"$3",gflops,"$8}' "$work/big.csv" >> "$csv"
if [ "$torch" = 1 ] && "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  for m in resnet56 resnet50; do
    for p in f32 bf16; do
      line=$("$PY" "$here/bench/torch_ref.py" --model "$m" --precision "$p" --threads 1 \
               --warmup 1 --iters "$rounds" --csv)
      echo "torch $m $p, 1 thread: $(echo "$line" | cut -d, -f7) samples/s, $(echo "$line" | cut -d, -f8) GFLOP/s"
      row big "torch $m $p" "" "" 1 1 1 "$rounds" "" samples_per_s "$(echo "$line" | cut -d, -f7)"
    done
  done
else
  echo "   PyTorch reference skipped (--no-torch, or torch / torchvision missing for $PY)"
fi
fi

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrote $csv"
