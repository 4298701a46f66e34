# Shared by the experiment scripts (sourced; needs $exe, the expgraph binary).

# run_unless_done DIR ARG...: `$exe run ARG... --out DIR`, unless DIR already holds a finished
# run (its summary.csv). A run stopped after its first checkpoint continues from it
# (--resume); anything else in DIR starts over (--force). So a script that was stopped can
# simply be run again.
run_unless_done() {
  local d=$1 how=--force
  shift
  [ -e "$d/summary.csv" ] && return 0
  [ -e "$d/metrics.csv" ] && [ -d "$d/ckpt" ] && how=--resume
  "$exe" run "$@" --out "$d" $how
}
