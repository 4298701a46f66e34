# Shared by experiments/resnet20/run.sh and converged.sh (sourced; needs $exe and $here).

# made_by SCRIPT RUNDIR...: the provenance lines of a findings file: today, the expgraph
# commit that writes the tables, and the commits that trained the runs (their summary.csv)
made_by() {
  local script=$1 made
  shift
  made=$(for d in "$@"; do [ -e "$d/summary.csv" ] && cat "$d/summary.csv"; done |
    awk -F, '$1 == "name" { for (i = 1; i <= NF; i++) if ($i == "commit") c = i; next }
      c && !seen[$c]++ { printf "%s%s", n++ ? ", " : "", substr($c, 1, 7) }' || true)
  echo "Made on $(date -u +%Y-%m-%d) by expgraph $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "from runs trained by expgraph ${made:-unknown} (summary.csv), with"
  echo "\`$script\`."
}

# acc_tables RUNDIR...: final accuracy of x_bar and of the nodes' own models (mean ± std over
# the seeds), and test_acc paired per seed to all-reduce (graph=full) and to onepeer_exp
acc_tables() {
  echo "Final test accuracy of x_bar and the nodes' own (mean ± std over the seeds):"
  echo
  "$exe" table "$@" --rows graph --metric test_acc
  echo
  "$exe" table "$@" --rows graph --metric node_acc_mean
  echo
  "$exe" table "$@" --rows graph --metric test_acc --vs graph=full
  echo
  "$exe" table "$@" --rows graph --metric test_acc --vs graph=onepeer_exp
  echo
}

# acc_section TITLE RUNDIR...: "## TITLE" and acc_tables, unless there are no runs
acc_section() {
  local title=$1
  shift
  [ -e "${1-}" ] || return 0
  echo "## $title"
  echo
  acc_tables "$@"
}
