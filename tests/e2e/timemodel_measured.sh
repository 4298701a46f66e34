#!/usr/bin/env bash
# End-to-end: `cluster: samples_per_s: measured` takes one node's speed from the gradient
# computation only, not from train_time (which also holds the exchange, so the model would
# count the network twice; docs/timemodel.md). Checked where the answer is known exactly:
# the gossip algorithm computes no gradients, so its modelled time is the network term
# alone, iter x (alpha + 8 b / beta) for onepeer_exp (one message in and out per node and
# iteration), on 1 and 2 ranks; dmsgd's compute term is > 0, also in a row after the first
# iteration (the speed skips the invocation's first iteration, unless it is the only one).
. "$(dirname "$0")/lib.sh"

cat > "$TMP/g.yaml" <<'YAML'
name: g
seed: 3
nodes: 4
graph: onepeer_exp
algorithm: {name: gossip}
model: {name: mlp, hidden: [12]}
data: {name: synthetic, dim: 12, classes: 3, samples: 64, batch_size: 4}
train: {iterations: 40, log_every: 10, eval_every: 40}
lr: {base: 0.05}
cluster: {latency_us: 1, bandwidth_gbps: 1000, samples_per_s: measured}
YAML
# net_only FILE: every row's time_model_s = iter x (1e-6 + 8 b / 1e12), b = bytes_sent / (4 iter)
net_only() {
  [ -s "$1" ] && awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { it = $c["iter"]; b = $c["bytes_sent"] / (4 * it); want = it * (1e-6 + 8 * b / 1e12)
      got = $c["time_model_s"]; d = got - want; if (d < 0) d = -d
      if (!(b > 0) || d > 1e-6 * want) { printf "iter %d: time_model_s %s, network alone %.9g\n", it, got, want; bad = 1 }
      n++ }
    END { exit bad || n < 4 }' "$1"
}

"$EXPGRAPH" run "$TMP/g.yaml" --out "$TMP/g1" --quiet
check "gossip, measured, 1 rank: time_model_s is the network term alone" net_only "$TMP/g1/metrics.csv"
mpi 2 run "$TMP/g.yaml" --out "$TMP/g2" --quiet
check "gossip, measured, 2 ranks: time_model_s is the network term alone" net_only "$TMP/g2/metrics.csv"

# dmsgd: the same network term plus a compute term > 0 in every row
"$EXPGRAPH" run "$TMP/g.yaml" --set algorithm.name=dmsgd --out "$TMP/d1" --quiet
compute_pos() {
  [ -s "$1" ] && awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { it = $c["iter"]; b = $c["bytes_sent"] / (4 * it); net = it * (1e-6 + 8 * b / 1e12)
      if (!($c["time_model_s"] > net * (1 + 1e-6))) { printf "iter %d: time_model_s %s <= network %.9g\n", it, $c["time_model_s"], net; bad = 1 }
      n++ }
    END { exit bad || n < 4 }' "$1"
}
check "dmsgd, measured: time_model_s = network + a compute term > 0" compute_pos "$TMP/d1/metrics.csv"
# a row after the first iteration: the speed comes from that iteration alone
"$EXPGRAPH" run "$TMP/g.yaml" --set algorithm.name=dmsgd --set train.log_every=1 --set train.iterations=6 --out "$TMP/d2" --quiet
check "dmsgd, measured, a row every iteration: a compute term > 0 from row 1 on" compute_pos "$TMP/d2/metrics.csv"
finish
