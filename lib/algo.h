/* algo.h - the decentralized algorithms of SPEC.md section 4, one step function each over
 * a rank's block of nodes. Algorithms never call MPI: exchanges go through comm.h. */
#ifndef EG_ALGO_H
#define EG_ALGO_H

#include "comm.h"
#include "spec.h"

typedef enum {
    EG_ALGO_PSGD,
    EG_ALGO_DSGD,
    EG_ALGO_DMSGD,
    EG_ALGO_QG_DMSGD,
    EG_ALGO_GT,
    EG_ALGO_ED,
    EG_ALGO_GOSSIP, /* extension: pure averaging x <- W x, no gradients ("learning rate 0") */
} eg_algo_kind;

typedef struct eg_algo {
    eg_algo_kind kind;
    double beta, wd;
    int nesterov;
    int nodes, nlocal;
    size_t dim;
    float *x;      /* nlocal x dim: parameters (the driver initialises them). Between the
                    * node updates and the exchange x_i holds the vector node i sends
                    * (x_i - gamma m_i etc.): it is updated in place, saving a stream. */
    float *g;      /* gradient slots (eg_algo_grad): one per node for psgd (summed in node
                    * order) or when asked for; otherwise one per thread, reused node after
                    * node while it is still in cache (the update runs right after it) */
    int g_per_node;
    int shared;    /* psgd: one shared model; only node 0's copy of x and m is live during
                    * training, eg_algo_sync copies it to the others */
    float *m;      /* momentum (psgd, dmsgd, qg_dmsgd) */
    float *y;      /* gt: tracking variable */
    float *gprev;  /* gt: previous gradient */
    float *psi;    /* ed: previous psi */
    float *z;      /* qg_dmsgd: the vector sent (x is needed after the exchange) */
    float *xnew;   /* scratch: the combined result */
    float *ynew;   /* gt: W y */
    float *gsum;   /* psgd: all-reduced gradient (dim) */
    eg_wmat wbar;  /* ed: (I + W) / 2 */
    size_t nstats; /* running statistics per node (batch norm; 0 = none) */
    int stats_gossip; /* 1: stats mixed with W(k) after each exchange; 0: each node's own */
    float *stats;  /* nlocal x nstats */
    float *statsnew; /* gossip scratch */
    size_t *nd_off, *nd_len; /* weight decay skips these parameter ranges (sorted) */
    int n_nodecay;
    long steps;    /* steps taken (gt, ed need to know the first) */
} eg_algo;

/* Allocates the state for nlocal nodes of dim parameters. max_nnz: the largest W(k).
 * grad_slots: gradient buffers, one per thread that computes gradients (0: one per node,
 * which eg_algo_step needs). */
int eg_algo_init(eg_algo *a, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                 int max_nnz, int grad_slots, eg_err *err);
/* Running statistics: nstats floats per node, kept (and checkpointed) with the state;
 * gossip != 0 mixes them with W(k) after each exchange (bytes counted), except for psgd,
 * whose graph is unused (each node keeps its own). Zero-filled; call once after init. */
int eg_algo_set_stats(eg_algo *a, size_t nstats, int gossip, eg_err *err);
float *eg_algo_node_stats(eg_algo *a, int li); /* node li's nstats floats; NULL when none */
/* Parameter ranges weight decay does not touch (algorithm.weight_decay_norm: false):
 * n (offset, length) pairs in increasing order (copied). Call once after init. */
int eg_algo_set_nodecay(eg_algo *a, const size_t *off, const size_t *len, int n, eg_err *err);
/* Where node li's parameters are read during training (psgd: the shared copy). */
float *eg_algo_node_x(eg_algo *a, int li);
/* Where node li's gradient goes when thread slot `slot` computes it. */
float *eg_algo_grad(eg_algo *a, int li, int slot);
/* Makes every local node's copy of x and the state current (psgd keeps one live copy);
 * call before reading x or the state of all nodes (metrics, checkpoints). */
void eg_algo_sync(eg_algo *a);
void eg_algo_free(eg_algo *a); /* safe on a zeroed struct */
/* vectors per gossip (gt: 2) */
int eg_algo_gossip_vectors(eg_algo_kind k);
/* Whether the method keeps each named state vector; fills names, pointers and per-node
 * lengths (floats) of the per-node state a checkpoint must save (x first; vector v of local
 * node li is vecs[v] + li * lens[v]). Returns the count. */
int eg_algo_state(eg_algo *a, float **vecs, const char **names, size_t *lens, int max);

/* Node li's part of an iteration that needs only its own vectors (weight decay, momentum,
 * the vector it sends), given its gradient in eg_algo_grad(a, li, slot). Thread-safe for
 * distinct li and slot; the driver calls it right after node li's gradient, while that is
 * still in cache. */
void eg_algo_node_update(eg_algo *a, int li, int slot, double lr);
/* The rest of the iteration, after eg_algo_node_update on every local node: the exchange
 * (gossip or all-reduce) and what needs the neighbours. Collective. */
int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes,
                     eg_err *err);
/* Both: one iteration, given x and g (one slot per node; g at x) of the local nodes:
 * updates x (and the method's state) with learning rate lr and mixing matrix W.
 * *bytes is increased by the traffic between distinct nodes, summed over all nodes.
 * Collective (gossip or all-reduce). */
int eg_algo_step(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes, eg_err *err);

#endif
