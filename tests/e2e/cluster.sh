#!/usr/bin/env bash
# End-to-end (issue 10): expgraph across emulated hosts (experiments/cluster/hosts.sh: one
# network namespace per host, a bridge, TCP only, ranks started through an rsh agent as over
# ssh). Checks: the same metrics.csv (time_s aside) in one process, on 2 ranks in one host
# (shared memory), on 4 hosts x 1 rank and 4 hosts x 2 ranks (TCP); one node per host: the
# hosts' interface counters carry what bytes_sent says, plus framing; SIGKILL of one rank on
# one host ends the job on every host within seconds, naming the rank and host; a host that
# cannot be reached at start is a clear error, not a hang; nothing is left behind; choco
# on 2 hosts moves its compressed payloads (plus framing), not dense vectors (issue 17).
# Skipped (77) without root, iproute2 or network namespaces.
. "$(dirname "$0")/lib.sh"
: "${EG_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
HOSTS="$EG_SRC/experiments/cluster/hosts.sh"
unset EXPGRAPH_THREADS EXPGRAPH_KILL_AT EXPGRAPH_KILL_RANK

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null && command -v tc >/dev/null || skip "iproute2 (ip, tc) not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) not installed"
command -v "$MPIEXEC" >/dev/null || skip "no mpirun"
probe="egprobe$$"
ip netns add "$probe" 2>/dev/null || skip "cannot create a network namespace (ip netns add failed)"
ip netns del "$probe"

HD="$TMP/hosts"
cleanup() {
    [ -f "$HD/state" ] && bash "$HOSTS" down --dir "$HD" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
T0=$(date +%s)

cat > "$TMP/c.yaml" <<'YAML'
name: c
seed: 11
nodes: 8
graph: onepeer_exp
algorithm: {name: dmsgd, momentum: 0.9, weight_decay: 1.0e-4}
model: {name: mlp, hidden: [16]}
data: {name: synthetic, dim: 16, classes: 4, samples: 128, batch_size: 8, heterogeneity: 0.5}
train: {iterations: 100, log_every: 10, eval_every: 20}
lr: {base: 0.05, schedule: cosine, warmup_epochs: 1}
YAML

# ---- references: one process; 2 ranks in one host (shared memory)
check "one process: exits 0" "$EXPGRAPH" run "$TMP/c.yaml" --out "$TMP/p1" --quiet
check "2 ranks in one host (btl self,vader): exits 0" mpi 2 run "$TMP/c.yaml" --out "$TMP/np2" --quiet
check "2 ranks in one host: metrics.csv equals one process" same_metrics "$TMP/p1/metrics.csv" "$TMP/np2/metrics.csv"

# ---- 4 emulated hosts, 2 slots each
if ! bash "$HOSTS" up 4 --slots 2 --dir "$HD" 2>"$TMP/up.err"; then
    cat "$TMP/up.err"
    bad "hosts.sh up 4: could not build the emulated hosts"
    finish; exit
fi
ok "hosts.sh up 4: $(tail -1 "$TMP/up.err" | sed 's/^hosts.sh: //')"
# shellcheck disable=SC1091
. "$HD/env"
check "4 network namespaces eg${EG_HOSTS_ID}h0..h3 exist" \
    test "$(ip netns list | grep -cE "^eg${EG_HOSTS_ID}h[0-3]( |$)")" -eq 4
MR="$EG_MPIRUN"
G="timeout 90"

# 4 hosts x 1 rank: each rank alone on its host, so it gets all cores (2 threads here)
$G "$MR" -np 4 --map-by ppr:1:node --display-map "$EXPGRAPH" run "$TMP/c.yaml" --out "$TMP/h4x1" >"$TMP/h4x1.log" 2>&1
rc=$?
check "4 hosts x 1 rank: exits 0 (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -20 "$TMP/h4x1.log"
check "4 hosts x 1 rank: one rank on each of 4 hosts (display-map)" \
    test "$(grep -cE 'Data for node: .*Num procs: 1$' "$TMP/h4x1.log")" -eq 4
check "4 hosts x 1 rank: expgraph sees 1 rank per host ($(grep -o '[0-9]* ranks x [0-9]* thread' "$TMP/h4x1.log"))" \
    grep -q "on 4 ranks x $(nproc) thread" "$TMP/h4x1.log"
check "4 hosts x 1 rank: metrics.csv equals one process" same_metrics "$TMP/p1/metrics.csv" "$TMP/h4x1/metrics.csv"

# 4 hosts x 2 ranks
$G "$MR" -np 8 --display-map "$EXPGRAPH" run "$TMP/c.yaml" --out "$TMP/h4x2" >"$TMP/h4x2.log" 2>&1
rc=$?
check "4 hosts x 2 ranks: exits 0 (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -20 "$TMP/h4x2.log"
check "4 hosts x 2 ranks: two ranks on each of 4 hosts (display-map)" \
    test "$(grep -cE 'Data for node: .*Num procs: 2$' "$TMP/h4x2.log")" -eq 4
check "4 hosts x 2 ranks: metrics.csv equals one process" same_metrics "$TMP/p1/metrics.csv" "$TMP/h4x2/metrics.csv"

# ---- traffic goes where W(k) says: 4 nodes on 4 hosts, dmsgd on onepeer_exp. The
# difference of the interface counters between a 110- and a 10-iteration run cancels
# start-up and the final evaluation; what is left is 100 iterations of gossip.
bsum() { bash "$HOSTS" counters --dir "$HD" | awk '{s += $3} END {print s}'; }
traffic() { # traffic ITERS OUT -> prints interface tx bytes of the run
    local b0 b1
    b0=$(bsum)
    $G "$MR" -np 4 --map-by ppr:1:node "$EXPGRAPH" run "$TMP/c.yaml" --set nodes=4 \
        --set model.hidden='[256]' --set data.dim=64 --set train.iterations="$1" \
        --set train.log_every=1000 --set train.eval_every=0 --out "$2" --quiet >/dev/null 2>&1 || return 1
    b1=$(bsum)
    echo $((b1 - b0))
}
if tA=$(traffic 10 "$TMP/tA") && tB=$(traffic 110 "$TMP/tB"); then
    bsA=$(tail -1 "$TMP/tA/metrics.csv" | cut -d, -f9)
    bsB=$(tail -1 "$TMP/tB/metrics.csv" | cut -d, -f9)
    ratio=$(awk -v a="$tA" -v b="$tB" -v x="$bsA" -v y="$bsB" 'BEGIN { printf "%.4f", (b - a) / (y - x) }')
    check "one node per host, onepeer_exp: interfaces carried $((tB - tA)) B for bytes_sent $(awk -v x="$bsA" -v y="$bsB" 'BEGIN{printf "%.0f", y - x}') B over 100 iterations (x$ratio, within 1.00..1.10)" \
        awk -v r="$ratio" 'BEGIN { exit !(r >= 1.0 && r <= 1.10) }'
else
    bad "traffic runs on 4 hosts failed"
fi

# ---- choco sends only its compressed payloads across hosts: 2 nodes on 2 hosts x 1 rank,
# ring (each node the other's only subscriber, so bytes_sent is exactly the payload bytes
# between the hosts), top_k 1% of an MLP with 70,660 parameters: 707 values + 707 indices,
# 5,656 bytes per iteration and node, where a dense x_hat would be 282,640. The same
# difference of a 110- and a 10-iteration run as above.
ctraffic() { # ctraffic ITERS OUT -> prints interface tx bytes of the run
    local b0 b1
    b0=$(bsum)
    $G "$MR" -np 2 --map-by ppr:1:node "$EXPGRAPH" run "$TMP/c.yaml" --set nodes=2 --set graph=ring \
        --set 'algorithm={name: choco, momentum: 0.9, compress: {name: top_k, ratio: 0.01}, consensus_step: 0.3}' \
        --set model.hidden='[1024]' --set data.dim=64 --set train.iterations="$1" \
        --set train.log_every=1000 --set train.eval_every=0 --out "$2" --quiet >/dev/null 2>&1 || return 1
    b1=$(bsum)
    echo $((b1 - b0))
}
if cA=$(ctraffic 10 "$TMP/cA") && cB=$(ctraffic 110 "$TMP/cB"); then
    pA=$(tail -1 "$TMP/cA/metrics.csv" | cut -d, -f9)
    pB=$(tail -1 "$TMP/cB/metrics.csv" | cut -d, -f9)
    wire=$((cB - cA)) pay=$(awk -v x="$pA" -v y="$pB" 'BEGIN { printf "%.0f", y - x }')
    dense=$((100 * 2 * 70660 * 4))
    cratio=$(awk -v w="$wire" -v p="$pay" 'BEGIN { printf "%.3f", w / p }')
    echo "choco top_k 1%, 2 hosts x 1 rank, 100 iterations: interfaces $wire B, payloads between hosts $pay B (x$cratio), dense x_hat would be $dense B"
    check "choco top_k 1%: payload bytes between hosts $pay = 100 x 2 x 5656" test "$pay" -eq 1131200
    check "choco top_k 1%: interfaces carried $wire B for $pay B of payloads (x$cratio, within 1.00..1.50)" \
        awk -v r="$cratio" 'BEGIN { exit !(r >= 1.0 && r <= 1.50) }'
    check "choco top_k 1%: interfaces carried $wire B, under a tenth of dense x_hat messages ($dense B)" \
        test "$wire" -lt $((dense / 10))
else
    bad "choco traffic runs on 2 hosts failed"
fi

# ---- SIGKILL of rank 2 (alone on host 2) after iteration 30
EXPGRAPH_KILL_AT=30 EXPGRAPH_KILL_RANK=2 $G "$MR" -np 4 --map-by ppr:1:node \
    "$EXPGRAPH" run "$TMP/c.yaml" --out "$TMP/kill" --quiet >"$TMP/kill.log" 2>&1
rc=$?
tend=$(date +%s.%N)
check "kill rank 2: job fails (rc $rc), not by the timeout guard" test "$rc" -ne 0 -a "$rc" -ne 124
host2=$(sed -n 3p "$EG_HOSTFILE" | cut -d' ' -f1)
msg=$(grep -m1 -E 'rank 2 .*(exited on signal|killed)' "$TMP/kill.log")
check "kill rank 2: message names rank 2 and host $host2: '${msg:-none}'" \
    grep -qE "rank 2 .*on node $host2 .*signal 9" "$TMP/kill.log"
[ -n "$msg" ] || tail -20 "$TMP/kill.log"
# metrics.csv's row 30 is written just before the kill: its mtime dates the kill
if [ -f "$TMP/kill/metrics.csv" ]; then
    dt=$(awk -v a="$(stat -c %.Y "$TMP/kill/metrics.csv")" -v b="$tend" 'BEGIN { printf "%.1f", b - a }')
    check "kill rank 2: whole job ended ${dt} s after the kill (< 10 s)" awk -v d="$dt" 'BEGIN { exit !(d < 10) }'
else
    bad "kill rank 2: no metrics.csv"
fi
sleep 1
left=$(for ns in $EG_HOSTS_NS; do ip netns pids "$ns"; done | wc -l)
check "kill rank 2: no process left on any host ($left)" test "$left" -eq 0

# ---- host 3 unreachable at start (its link down)
bash "$HOSTS" link --dir "$HD" 3 down
t0=$(date +%s)
$G "$MR" -np 4 --map-by ppr:1:node "$EXPGRAPH" run "$TMP/c.yaml" --out "$TMP/unreach" --quiet >"$TMP/unreach.log" 2>&1
rc=$?
dt=$(($(date +%s) - t0))
host3=$(sed -n 4p "$EG_HOSTFILE" | cut -d' ' -f1)
check "host 3 unreachable: fails (rc $rc) in ${dt} s, not by the timeout guard" test "$rc" -ne 0 -a "$rc" -ne 124 -a "$dt" -lt 30
check "host 3 unreachable: message names $host3 and ORTE's launch failure" \
    sh -c "grep -q 'connect to host $host3' '$TMP/unreach.log' && grep -q 'unable to reliably start one or more daemons' '$TMP/unreach.log'"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || tail -20 "$TMP/unreach.log"
bash "$HOSTS" link --dir "$HD" 3 up

# ---- teardown
id=$EG_HOSTS_ID
bash "$HOSTS" down --dir "$HD"
check "hosts.sh down: exits 0, no namespace eg${id}* left" \
    test "$(ip netns list | grep -c "^eg${id}")" -eq 0

# the wrapper: COMMAND's exit status, teardown on success, failure and SIGTERM
bash "$HOSTS" run 2 -- sh -c 'echo "$EG_HOSTS_ID" > "$0"; exit 3' "$TMP/wid" 2>/dev/null
rc=$?
id=$(cat "$TMP/wid" 2>/dev/null)
check "hosts.sh run: passes COMMAND's exit status (3, got $rc)" test "$rc" -eq 3
check "hosts.sh run: tore down its namespaces (eg${id:-?}*)" \
    test -n "$id" -a "$(ip netns list | grep -c "^eg${id:-none}")" -eq 0
bash "$HOSTS" run 3 -- sh -c 'echo "$EG_HOSTS_ID" > "$0"; exec sleep 60' "$TMP/wid2" 2>/dev/null &
wpid=$!
for _ in $(seq 1 50); do [ -s "$TMP/wid2" ] && break; sleep 0.2; done
id=$(cat "$TMP/wid2" 2>/dev/null)
kill -TERM "$wpid"
wait "$wpid"
rc=$?
check "hosts.sh run: SIGTERM exits 143 (got $rc)" test "$rc" -eq 143
check "hosts.sh run: SIGTERM tore down its namespaces (eg${id:-?}*)" \
    test -n "$id" -a "$(ip netns list | grep -c "^eg${id:-none}")" -eq 0

echo "cluster test: $(($(date +%s) - T0)) s"
finish
