/* network.h - an imperfect network (docs/algorithms.md#what-a-fault-is): lost messages and
 * absent nodes, drawn from streams seeded by (seed, iteration, sender, receiver) and
 * (seed, iteration, node), so the same faults happen for any rank count and on resume.
 *
 * A message j -> i is the off-diagonal entry W_ij != 0 of W(k) (node i reads x_j). It is
 * lost when it is dropped (probability drop), when j is absent (it sends nothing) or when
 * i is absent. The effective matrix W'(k) zeroes the lost entries and folds their weight
 * into the receiver's self weight (a receiver missing a neighbour's vector uses its own),
 * so W' stays row-stochastic; an absent node's row is e_i (it keeps its state). */
#ifndef EG_NETWORK_H
#define EG_NETWORK_H

#include "common.h"
#include "topology.h"

typedef struct eg_network_spec {
    double drop;    /* [0, 1): probability that a message between distinct nodes is lost */
    double offline; /* [0, 1): probability that a node is absent in an iteration */
} eg_network_spec;

/* 1 when the spec describes an imperfect network (drop or offline > 0) */
static inline int eg_network_faulty(const eg_network_spec *s)
{
    return s->drop > 0 || s->offline > 0;
}

/* Whether node i is absent in iteration k (a pure function: no state). */
int eg_network_offline(const eg_network_spec *s, uint64_t seed, long k, int i);
/* Whether the message j -> i is dropped in iteration k (absences aside). */
int eg_network_dropped(const eg_network_spec *s, uint64_t seed, long k, int j, int i);

/* The faults of one iteration for all nodes (every rank computes the whole matrix: the
 * exchange plan needs every row). Storage is allocated once. */
typedef struct eg_network eg_network;
int eg_network_init(eg_network **out, const eg_network_spec *s, uint64_t seed, int nodes,
                    int max_nnz, eg_err *err);
void eg_network_free(eg_network *net); /* safe on NULL */

/* The messages of one iteration: sent (the sender was present) and lost (did not arrive). */
typedef struct eg_network_count {
    long sent, lost;
} eg_network_count;

/* W'(k) from W (same sparsity; lost entries hold 0, their weight moved to the diagonal
 * entry when W has one). Returns a pointer into net's storage, valid until the next call;
 * no allocation. *cnt (may be NULL) receives the message counts over all nodes. */
const eg_wmat *eg_network_apply(eg_network *net, const eg_wmat *W, long k,
                                eg_network_count *cnt);
/* After eg_network_apply: whether node i is absent in that iteration. */
int eg_network_absent(const eg_network *net, int i);

#endif
