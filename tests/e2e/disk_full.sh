#!/usr/bin/env bash
# End-to-end (issue 7): a run directory on a tiny tmpfs fills up: the run exits 1 with a
# message naming the file and "No space left on device"; the rows written before are intact.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: mounting a tmpfs needs root"; exit 77; }
mkdir -p "$TMP/tiny"
mount -t tmpfs -o size=32k tmpfs "$TMP/tiny" 2>/dev/null || { echo "skip: cannot mount a tmpfs here"; exit 77; }
trap 'umount "$TMP/tiny" 2>/dev/null; rm -rf "$TMP"' EXIT
cat > "$TMP/df.yaml" <<'YAML'
name: df
nodes: 4
graph: ring
algorithm: dmsgd
model: {name: mlp, hidden: [32]}
data: {name: synthetic, dim: 16, classes: 3, samples: 64, batch_size: 8}
train: {iterations: 2000, log_every: 1, eval_every: 100, checkpoint_every: 1000}
YAML
"$EXPGRAPH" run "$TMP/df.yaml" --out "$TMP/tiny/run" --quiet 2> "$TMP/err"; rc=$?
check "full disk: exit 1 (got $rc)" test "$rc" -eq 1
check "message names the file and the cause" grep -q "metrics.csv: No space left on device" "$TMP/err"
check "header and earlier rows intact" awk -F, 'NR==1{ok=($1=="iter")} NR>1 && NR<100 {if ($1 != NR-1) ok=0} END{exit !ok}' "$TMP/tiny/run/metrics.csv"
finish
