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
    float *x;      /* nlocal x dim: parameters (the driver initialises them) */
    float *g;      /* nlocal x dim: gradients at x, weight decay included (the driver fills them) */
    float *m;      /* momentum (psgd, dmsgd, qg_dmsgd) */
    float *y;      /* gt: tracking variable; after a step holds W y (combined) */
    float *gprev;  /* gt: previous gradient */
    float *psi;    /* ed: previous psi */
    float *z;      /* scratch: the vector sent */
    float *xnew;   /* scratch: the combined result */
    float *gsum;   /* psgd: all-reduced gradient (dim) */
    eg_wmat wbar;  /* ed: (I + W) / 2 */
    long steps;    /* steps taken (gt, ed need to know the first) */
} eg_algo;

/* Allocates the state for nlocal nodes of dim parameters. max_nnz: the largest W(k). */
int eg_algo_init(eg_algo *a, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                 int max_nnz, eg_err *err);
void eg_algo_free(eg_algo *a); /* safe on a zeroed struct */
/* vectors per gossip (gt: 2) */
int eg_algo_gossip_vectors(eg_algo_kind k);
/* Whether the method keeps each named state vector; fills names/ptrs of the per-node
 * state a checkpoint must save (x first). Returns the count. */
int eg_algo_state(eg_algo *a, float **vecs, const char **names, int max);

/* Node li's part of an iteration that needs only its own vectors (weight decay, momentum,
 * the vector it sends), given g at x. Thread-safe for distinct li; the driver calls it right
 * after node li's gradient, while that is still in cache. */
void eg_algo_node_update(eg_algo *a, int li, double lr);
/* The rest of the iteration, after eg_algo_node_update on every local node: the exchange
 * (gossip or all-reduce) and what needs the neighbours. Collective. */
int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes,
                     eg_err *err);
/* Both: one iteration, given x and g (g at x, weight decay included) of the local nodes:
 * updates x (and the method's state) with learning rate lr and mixing matrix W.
 * *bytes is increased by the traffic between distinct nodes, summed over all nodes.
 * Collective (gossip or all-reduce). */
int eg_algo_step(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes, eg_err *err);

#endif
