/* topology.h - graph families -> mixing matrices W(k) (docs/graphs.md#definitions-and-weights).
 *
 * W(k) is row-stochastic; node i combines x_i <- sum_j W(k)_ij x_j. It is stored
 * as sparse in-neighbour lists (CSR by row), columns sorted ascending, the self
 * weight included as an ordinary entry. Summing in that order makes a gossip
 * step independent of how nodes are spread over ranks.
 */
#ifndef EG_TOPOLOGY_H
#define EG_TOPOLOGY_H

#include "common.h"
#include "kinds.h"

/* A graph without sub-graphs: the outer graph of a hierarchical one, a phase's graph. */
typedef struct eg_graph_leaf {
    eg_graph_kind kind;
    double p;               /* erdos_renyi */
    int peers;              /* base (k), random_peers (s); 0 reads as 1 */
    char path[EG_PATH_MAX]; /* file */
} eg_graph_leaf;

/* One phase of a schedule: its graph (hierarchical: with local and outer) and its end. */
typedef struct eg_graph_phase {
    eg_graph_leaf g;
    int local;              /* g hierarchical: nodes per machine */
    eg_graph_leaf outer;    /* g hierarchical: the graph between machines */
    double until;           /* the phase covers iterations k < until (in iterations or
                             * epochs, see until_epoch); the last phase: 0 (no end) */
    int until_epoch;        /* 1: until counts epochs (eg_topo_set_iters_per_epoch) */
} eg_graph_phase;

#define EG_GRAPH_MAX_PHASES 8

/* What the spec (or the `graph` command) says about the graph. A zeroed struct with only
 * kind set is a valid default for every graph but file and schedule. */
typedef struct eg_graph_spec {
    eg_graph_kind kind;     /* kinds.h: ring, torus, grid, exp, ... (eg_graph_kinds) */
    double p;               /* erdos_renyi edge probability, (0, 1]; default 0.2 */
    char path[EG_PATH_MAX]; /* file: path of an n x n CSV weight matrix */
    int peers;              /* base: k in-peers at most; random_peers: s sends; 0 reads as 1 */
    int local;              /* hierarchical: nodes per machine (divides n); 0 reads as 1;
                             * inner_outer_exp2: the same, >= 3 with n / local >= 2 */
    eg_graph_leaf outer;    /* hierarchical: the graph between machines */
    int nphases;            /* schedule: phases[0..nphases) */
    eg_graph_phase phases[EG_GRAPH_MAX_PHASES];
} eg_graph_spec;

/* Traffic of one gossip over a W (summed over nodes, in vectors): without machines
 * (local == 0) one vector per off-diagonal nonzero, all of it "between machines".
 * Hierarchical W(k) = W_out(k) (x) 11^T/L count as their two-stage implementation would
 * move them: each node sends to the L - 1 others of its machine (the exact average inside
 * it), then the machine average to its counterpart on each machine that takes from its
 * machine: sends = n (L - 1) + L nnz_off(W_out(k)), inter = L nnz_off(W_out(k)).
 * inner_outer_exp2 (local = L, n / L machines): one vector per off-diagonal nonzero,
 * sends = n, inter = the n / L of them that cross machines. */
typedef struct eg_wmat {
    int n;
    int nnz;
    int *rowptr;  /* n + 1 entries */
    int *col;     /* nnz entries, ascending within each row */
    double *val;  /* nnz weights */
    int local;    /* nodes per machine; 0: the graph defines no machines */
    long sends, inter; /* with local > 0: vectors sent in all / between machines */
} eg_wmat;

typedef struct eg_topo eg_topo;

/* Builds the graph for n nodes. seed is the run's seed (erdos_renyi, random_match,
 * random_peers).
 * Errors are EG_EINPUT with a message that names the problem, e.g.
 * "hypercube needs nodes to be a power of two (got 12)" or
 * "W.csv:3: row 2 sums to 0.9 (must be 1 within 1e-9)". *out is NULL on error.
 * Not collective; every rank builds the same graph from the same inputs. */
int eg_topo_init(eg_topo **out, const eg_graph_spec *g, int n, uint64_t seed, eg_err *err);
void eg_topo_free(eg_topo *t); /* safe on NULL */

int eg_topo_nodes(const eg_topo *t);
const char *eg_topo_name(const eg_topo *t);
/* The length of W's repeating sequence: 1 for static graphs, tau for onepeer_exp /
 * onepeer_hypercube, the sequence length for base (its product is exactly J), the outer
 * graph's for hierarchical, lcm(L, floor(log2(n/L - 1)) + 1, floor(log2(L - 2)) + 1) for
 * inner_outer_exp2; 0 for random_match, random_peers and schedule (aperiodic). */
int eg_topo_period(const eg_topo *t);
/* Schedules with until_epoch phases: the iterations per epoch (> 0), known once the data
 * is loaded. Call it before training; until then an epoch counts as one iteration. */
void eg_topo_set_iters_per_epoch(eg_topo *t, double iters_per_epoch);
/* the most in-neighbours (self excluded) of any node in any W(k) */
int eg_topo_max_degree(const eg_topo *t);
/* the largest nnz of any W(k) (for sizing buffers) */
int eg_topo_max_nnz(const eg_topo *t);

/* W(k) for iteration k >= 0. Returns a pointer into t's own storage, valid until the
 * next call; no allocation after init (it is called in the training loop). Deterministic:
 * the same (graph, n, seed, k) give the same matrix on every rank and in every run. */
const eg_wmat *eg_topo_weights(eg_topo *t, long k);

/* Who may ever send to whom: the union of the off-diagonal nonzeros of every W(k) the graph
 * can produce (static graphs: their W; periodic ones: one period; a schedule: every phase's,
 * whole periods, whether or not a phase lasts one). all = 1 when that is every ordered pair
 * (random_match, random_peers, a hierarchical graph over one of them, a schedule with such a
 * phase): rowptr and col are then NULL. */
typedef struct eg_topo_reach {
    int n, all;
    int *rowptr;  /* n + 1 */
    int *col;     /* node i's possible in-neighbours, ascending, self excluded */
} eg_topo_reach;
/* Fills *r (allocated; free with eg_topo_reach_free). Calls eg_topo_weights for the
 * period's k, so a pointer it returned before is stale. EG_ERUN when out of memory,
 * EG_EINPUT when the union has more than INT_MAX entries. */
int eg_topo_reach_init(eg_topo_reach *r, eg_topo *t, eg_err *err);
void eg_topo_reach_free(eg_topo_reach *r); /* safe on a zeroed or half-built one */

/* Dense n x n row-major copy of W(k) into W (caller allocates n*n doubles). */
void eg_topo_dense(eg_topo *t, long k, double *W);

/* The facts `expgraph graph` prints (docs/graphs.md#what-expgraph-graph-prints). */
typedef struct eg_topo_stats {
    int period;     /* as eg_topo_period, but 1 for random_match */
    int degree;     /* most peers any node receives from in one iteration (k < period;
                     * aperiodic graphs: in W(0)) */
    double rho;     /* max over k < period of ||W(k) - J||_2 */
    double gap;     /* 1 - rho */
    double rho_period; /* ||W(period-1)...W(0) - J||_2 */
    int doubly;     /* 1: every W(k) looked at is column-stochastic too (within 1e-12) */
} eg_topo_stats;

/* The most nodes eg_topo_stats_compute accepts (it works on dense n x n matrices). */
#define EG_TOPO_STATS_MAX_NODES 4096

/* Computes the stats with LAPACK (eigenvalues for symmetric W - J, singular values
 * otherwise). EG_ERUN on LAPACK failure or out of memory; EG_EINPUT when the graph has
 * more than EG_TOPO_STATS_MAX_NODES nodes. May call eg_topo_weights (random_match: the
 * buffer then holds W(0)). */
int eg_topo_stats_compute(eg_topo *t, eg_topo_stats *st, eg_err *err);

/* ||A - J||_2 for a dense n x n matrix A (row-major), via LAPACK. Returns < 0 on failure. */
double eg_spectral_norm_minus_J(const double *A, int n);

#endif
