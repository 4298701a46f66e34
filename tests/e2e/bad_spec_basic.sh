#!/usr/bin/env bash
# End-to-end: the bad inputs of issue 2 each exit 2 with FILE:LINE:COL naming the key,
# and leave no run directory behind.
. "$(dirname "$0")/lib.sh"

good='name: g
seed: 1
nodes: 4
graph: ring
algorithm: dmsgd
model: logreg
data: {name: synthetic, dim: 8, classes: 3, samples: 64, batch_size: 8}
train: {iterations: 10, log_every: 5}
'
try() { # try NAME EXPECTED-REGEX SPEC-TEXT
  local name=$1 want=$2 text=$3 rc
  printf '%s' "$text" > "$TMP/$name.yaml"
  "$EXPGRAPH" run "$TMP/$name.yaml" --out "$TMP/out-$name" --quiet 2> "$TMP/$name.err"; rc=$?
  if [ "$rc" -eq 2 ] && grep -Eq "^expgraph: .*$want" "$TMP/$name.err" && [ ! -e "$TMP/out-$name" ]; then
    ok "$name: $(head -1 "$TMP/$name.err")"
  else
    bad "$name: rc=$rc, stderr: $(cat "$TMP/$name.err"), dir left: $([ -e "$TMP/out-$name" ] && echo yes || echo no)"
  fi
}
"$EXPGRAPH" run "$TMP/missing.yaml" --quiet 2> "$TMP/m.err"; rc=$?
check "missing spec file: exit 2 naming it" sh -c "[ $rc -eq 2 ] && grep -q 'missing.yaml' '$TMP/m.err'"
try syntax 'syntax.yaml:[0-9]+:[0-9]+: YAML syntax error' "${good}lr: {base: 0.1
"
try unknown_key 'unknown_key.yaml:9:1: unknown key .bogus.' "${good}bogus: 3
"
try wrong_type 'wrong_type.yaml:3:8: nodes must be an integer' "${good/nodes: 4/nodes: four}"
try nodes0 'nodes0.yaml:3:8: nodes must be >= 1' "${good/nodes: 4/nodes: 0}"
try graph_name 'graph_name.yaml:4:8: unknown graph .blob.' "${good/graph: ring/graph: blob}"
try algo_name 'algo_name.yaml:5:12: unknown algorithm .adam.' "${good/algorithm: dmsgd/algorithm: adam}"
try model_name 'model_name.yaml:6:8: unknown model .vgg.' "${good/model: logreg/model: vgg}"
try data_name 'data_name.yaml:7:14: unknown data .cifar.' "${good/name: synthetic/name: cifar}"
try batch_big 'batch_big.yaml:7:.*data.batch_size 100 x nodes 4 needs 400' "${good/batch_size: 8/batch_size: 100}"
hc=${good/graph: ring/graph: hypercube}
try hypercube 'hypercube.yaml:4:8: graph hypercube: .*power of two' "${hc/nodes: 4/nodes: 6}"
finish
