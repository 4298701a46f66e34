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
# loss_falls CSV FACTOR: the last row's train_loss is below FACTOR x the first row's
loss_falls() {
  local first last
  first=$(sed -n 2p "$1" | cut -d, -f5)
  last=$(tail -1 "$1" | cut -d, -f5)
  check "train loss falls ($first -> $last)" awk -v a="$first" -v b="$last" -v f="$2" 'BEGIN{exit !(b < f * a)}'
}
# same_across SPEC REF LABEL: SPEC on P = 2 and 3 ranks, and on one rank with 1 and with 2
# threads, gives REF/metrics.csv (REF: a 1-rank run of SPEC)
same_across() {
  local spec=$1 ref=$2 label=$3 np th
  for np in 2 3; do
    mpi "$np" run "$spec" --out "$TMP/across-p$np" --quiet
    check "$label, P = $np: metrics.csv identical to P = 1" same_metrics "$ref/metrics.csv" "$TMP/across-p$np/metrics.csv"
  done
  for th in 1 2; do
    EXPGRAPH_THREADS=$th "$EXPGRAPH" run "$spec" --out "$TMP/across-th$th" --quiet
    check "$label, 1 rank x $th thread(s): identical to P = 1" same_metrics "$ref/metrics.csv" "$TMP/across-th$th/metrics.csv"
  done
}
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
# quadrant_idx DIR SIZE SEED NTRAIN NTEST: a gzipped idx image set of SIZExSIZE grey images of
# 4 classes whose class is the bright quadrant (a task a small model learns in a few steps)
quadrant_idx() {
  python3 - "$@" <<'PY'
import gzip, os, random, struct, sys
d, S, seed, ntr, nte = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
os.makedirs(d)
rng = random.Random(seed)
def make(n):
    xs, ys = bytearray(), bytearray()
    for _ in range(n):
        c = rng.randrange(4); ys.append(c)
        for y in range(S):
            for x in range(S):
                q = (y >= S // 2) * 2 + (x >= S // 2)
                xs.append(min(255, (150 if q == c else 40) + rng.randrange(60)))
    return xs, ys
for split, n in (("train", ntr), ("t10k", nte)):
    xs, ys = make(n)
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, S, S) + bytes(xs))
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(ys))
PY
}
