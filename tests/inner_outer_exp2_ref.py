#!/usr/bin/env python3
"""Reference matrices for the graph inner_outer_exp2, computed independently of expgraph.

Bluefog's inner-outer one-peer exponential schedule (Bluefog-Lib/bluefog,
bluefog/common/topology_util.py, GetInnerOuterExp2DynamicSendRecvRanks; the NeurIPS 2021
exponential-graph code calls it GetInnerOuterExpo2DynamicSendRecvRanks) as its documentation
and behaviour describe it, re-derived here from the SENDER's side:

  world = machines x L ranks, rank = machine * L + local rank. At iteration k (the k-th
  value the per-rank generator yields, k = 0, 1, ...):
  - the local rank o = k mod L of every machine is the one that leaves the machine: it sends
    to local rank o of machine (machine + 2^(k mod (E_out + 1))) mod machines,
    E_out = int(log2(machines - 1));
  - every other local rank r sends inside its machine: step s = 2^(k mod (E_in + 1)),
    E_in = int(log2(L - 2)), one more when the step would reach or pass o
    (s >= (o - r) mod L): target local rank (r + s) mod L.
  Bluefog also tells each rank which rank to receive from; this script checks that those
  statements agree with who actually sent (a receive rule that did not would deadlock).
  The paper's training script then gives each rank the weights self 1/(1 + #received) and
  1/(1 + #received) on each received vector.

Row i of W(k) holds the weights node i gives to each node j (x_i <- sum_j W_ij x_j), the
layout of `expgraph graph NAME --nodes N --format matrix` (%.17g numbers).

Writes, into the directory given (default: tests/data/inner_outer_exp2 next to this script):
  n<N>_L<L>.txt   one block per k < iters: '# inner_outer_exp2 nodes=N k=K' and N rows
  index.csv       nodes,local,period,iters,inter: period = the smallest p with
                  W(k + p) = W(k) for every k looked at (found by search, not a formula);
                  inter = vectors that cross machines per iteration (the same for every k)
Run once; the outputs are committed and read by tests/check_topology.c and
tests/e2e/graph_inner_outer.sh (no Python at test time).
"""
import math
import os
import sys

# (nodes, local) pairs: machines = 2, 3, 4, 8; local = 3, 4, 5, 8
PAIRS = [(8, 4), (16, 4), (12, 3), (9, 3), (15, 5), (32, 4), (24, 8), (6, 3)]


def sends(nodes, local, k):
    """{sender: receiver} at iteration k, from the sending rule."""
    machines = nodes // local
    e_out = int(math.log2(machines - 1))
    e_in = int(math.log2(local - 2))
    o = k % local
    out = {}
    for rank in range(nodes):
        mach, r = divmod(rank, local)
        if r == o:
            hop = 2 ** (k % (e_out + 1))
            out[rank] = ((mach + hop) % machines) * local + r
        else:
            step = 2 ** (k % (e_in + 1))
            if step >= (o - r) % local:
                step += 1
            out[rank] = mach * local + (r + step) % local
    return out


def stated_source(nodes, local, k, rank):
    """The rank Bluefog tells `rank` to receive from at iteration k."""
    machines = nodes // local
    e_out = int(math.log2(machines - 1))
    e_in = int(math.log2(local - 2))
    o = k % local
    mach, r = divmod(rank, local)
    if r == o:
        hop = 2 ** (k % (e_out + 1))
        return ((mach - hop) % machines) * local + r
    step = 2 ** (k % (e_in + 1))
    if step >= (r - o) % local:
        step += 1
    return mach * local + (r - step) % local


def matrix(nodes, local, k):
    snd = sends(nodes, local, k)
    received = {i: [] for i in range(nodes)}
    for s, d in snd.items():
        assert d != s, (nodes, local, k, s)
        received[d].append(s)
    W = [[0.0] * nodes for _ in range(nodes)]
    for i in range(nodes):
        assert received[i] == [stated_source(nodes, local, k, i)], (nodes, local, k, i)
        w = 1.0 / (1 + len(received[i]))
        W[i][i] += w
        for j in received[i]:
            W[i][j] += w
    inter = sum(1 for s, d in snd.items() if s // local != d // local)
    return W, inter


def fmt(x):
    return "0" if x == 0 else repr(x)  # 0.5 -> '0.5', as %.17g prints it


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data", "inner_outer_exp2")
    os.makedirs(out, exist_ok=True)
    rows = ["nodes,local,period,iters,inter"]
    for nodes, local in PAIRS:
        horizon = 400
        mats = [matrix(nodes, local, k) for k in range(horizon)]
        inters = {m[1] for m in mats}
        assert len(inters) == 1, (nodes, local, inters)
        period = next(p for p in range(1, horizon // 2)
                      if all(mats[k][0] == mats[k + p][0] for k in range(horizon - p)))
        iters = max(8, 2 * period)
        with open(os.path.join(out, "n%d_L%d.txt" % (nodes, local)), "w") as f:
            for k in range(iters):
                f.write("# inner_outer_exp2 nodes=%d k=%d\n" % (nodes, k))
                for row in mats[k][0]:
                    f.write(",".join(fmt(x) for x in row) + "\n")
        rows.append("%d,%d,%d,%d,%d" % (nodes, local, period, iters, inters.pop()))
    with open(os.path.join(out, "index.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
