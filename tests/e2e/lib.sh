# lib.sh - shared by the end-to-end tests (sourced, not run by CTest: it has no test body).
set -u
: "${EXPGRAPH:?set EXPGRAPH to the expgraph binary}"
: "${MPIEXEC:=mpirun}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/eg-e2e.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
mpi() { # mpi NP ARGS...: expgraph under mpirun on the shared-memory transport
  local np=$1; shift
  "$MPIEXEC" -np "$np" --oversubscribe --mca btl self,vader "$EXPGRAPH" "$@"
}
# metrics.csv without the time_s column (3rd): what must not depend on P or on a restart
strip_time() { cut -d, -f1,2,4- "$1"; }
# same_metrics A B: both exist with rows, and are equal but for time_s
same_metrics() {
  [ -s "$1" ] && [ -s "$2" ] && [ "$(wc -l < "$1")" -gt 1 ] || { echo "missing or empty: $1 $2" >&2; return 1; }
  diff <(strip_time "$1") <(strip_time "$2")
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
