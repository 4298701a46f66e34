/* timemodel.h - modelled wall-clock time on a described cluster (the spec's `cluster:`
 * section, docs/timemodel.md): the metrics.csv column time_model_s.
 *
 * CONTRACT. n nodes; node i lives on host floor(i / nodes_per_host). Every rank computes
 * all n nodes' times from the spec and W(k) alone (no communication), so the column is the
 * same for any rank count and after a resume (the vector T is checkpointed).
 *
 *   c_i(k)  compute of node i in iteration k: batch_size / samples_per_s, times `slowdown`
 *           when node i straggles at k: u < prob with u = eg_rng_uniform of the stream
 *           eg_rng_seed(seed, EG_STREAM_STRAGGLER, fnv1a({k, i})) (two uint64_t, from
 *           EG_FNV_INIT); 0 when node i is absent at k (network.offline: it computes and
 *           sends nothing; never on an all-reduce iteration, as in algo.c)
 *   F_i(k)  = T_i(k) + c_i(k)                                   (T_i(0) = 0)
 *   a link  j -> i costs alpha + m * 8 b / beta for m messages of b bytes, with
 *           (alpha, beta) = (intra_latency_us 1e-6, intra_bandwidth_gbps 1e9) when i and j
 *           share a host, else (latency_us 1e-6, bandwidth_gbps 1e9)
 *   gossip  in(i, k) = {j != i : W_ij(k) != 0}, out(i, k) = {j != i : W_ji(k) != 0}, both
 *           without absent nodes; m_i(k) = max(|in(i, k)|, |out(i, k)|);
 *           T_i(k+1) = max_{j in {i} U in(i,k)} F_j(k)
 *                      + max_{links l into or out of i} (alpha_l + m_i(k) 8 b / beta_l)
 *           (the second term is 0 when i has no link). Lost messages (network.drop) are
 *           modelled as delivered: the sender paid for them and the receiver cannot know
 *           sooner than the message would have arrived.
 *   local   an iteration without an exchange (algorithm.local_steps): T_i(k+1) = F_i(k)
 *   all-reduce (psgd every iteration; algorithm.global_every's iterations):
 *           T_i(k+1) = max_j F_j(k) + 2 (n - 1) alpha + 2 (n - 1) / n 8 b / beta for every i,
 *           (alpha, beta) inter-host when n > nodes_per_host, else intra-host
 *   time_model_s(k) = max_i T_i(k).
 * W(k) is the graph's matrix of the gossip round k / local_steps (as the run uses it). */
#ifndef EG_TIMEMODEL_H
#define EG_TIMEMODEL_H

#include "common.h"
#include "network.h"
#include "topology.h"

/* The spec's cluster: section. on = 0: no section (no time_model_s column). */
typedef struct eg_cluster_spec {
    int on;
    int nodes_per_host;          /* >= 1 (default 1) */
    double latency_us;           /* >= 0, between hosts (required) */
    double bandwidth_gbps;       /* > 0, between hosts (required) */
    double intra_latency_us;     /* >= 0 (default: latency_us) */
    double intra_bandwidth_gbps; /* > 0 (default: bandwidth_gbps) */
    double samples_per_s;        /* > 0; 0: `measured` (this run's own speed) */
    double straggler_prob;       /* [0, 1] (default 0) */
    double straggler_slowdown;   /* >= 1 (default 1) */
} eg_cluster_spec;

/* What the model needs besides the cluster. */
typedef struct eg_tmodel_cfg {
    eg_cluster_spec cluster;
    int nodes;
    uint64_t seed;
    int batch_size;
    int allreduce;           /* psgd: an all-reduce in every iteration */
    int local_steps;         /* an exchange every local_steps iterations (>= 1) */
    long global_every;       /* an all-reduce every global_every iterations (0: never) */
    double msg_bytes;        /* b of one gossip message */
    double allreduce_bytes;  /* b of one all-reduce */
    eg_network_spec network; /* absent nodes (offline); drop is not modelled */
} eg_tmodel_cfg;

struct eg_spec;
/* The configuration a run with the spec's cluster: uses (the one place that defines it; run.c
 * and the retiming of expgraph table/plot --cluster call it). nparams: the model's parameter
 * count; nstats: its running statistics (eg_model_nstats; counted only with
 * model.norm_stats: gossip). b = 4 x nparams per gossiped vector (gt: 2; sgp: + 4 bytes of
 * weight) + 4 x nstats; choco: eg_compress_bytes + 4 x nstats; an all-reduce 4 x nparams.
 * Reads s->cluster as it is (the caller may have replaced it). */
void eg_tmodel_cfg_from_spec(eg_tmodel_cfg *cfg, const struct eg_spec *s, size_t nparams,
                             size_t nstats);

typedef struct eg_tmodel eg_tmodel;

/* EG_ERUN when out of memory; EG_EINPUT when the configuration is out of range. The speed
 * is cluster.samples_per_s (0 for `measured`: set it with eg_tmodel_set_speed). */
int eg_tmodel_init(eg_tmodel **out, const eg_tmodel_cfg *cfg, eg_err *err);
void eg_tmodel_free(eg_tmodel *tm); /* safe on NULL */

/* Whether node i straggles in iteration k (a pure function of the arguments). */
int eg_tmodel_straggles(const eg_cluster_spec *cl, uint64_t seed, long k, int i);

/* The per-node speed in samples/s (0: not known yet); setting it makes the model ready. */
double eg_tmodel_speed(const eg_tmodel *tm);
void eg_tmodel_set_speed(eg_tmodel *tm, double samples_per_s);

/* One iteration: T(k) -> T(k+1) for k = eg_tmodel_iter, with W = W(k / local_steps) (only
 * read on gossip iterations; may be NULL otherwise). Needs a speed > 0 (else no-op). */
void eg_tmodel_step(eg_tmodel *tm, const eg_wmat *W);
/* Steps until eg_tmodel_iter reaches upto, asking t for W (so a W pointer t returned
 * before is stale). No-op without a speed. */
void eg_tmodel_advance(eg_tmodel *tm, eg_topo *t, long upto);

/* the iteration T is at, max_i T_i, and the n values T_i (checkpointed) */
long eg_tmodel_iter(const eg_tmodel *tm);
double eg_tmodel_time(const eg_tmodel *tm);
const double *eg_tmodel_times(const eg_tmodel *tm);
int eg_tmodel_nodes(const eg_tmodel *tm);
/* Restores a checkpointed state: T at iteration k (n values), and the speed. */
void eg_tmodel_restore(eg_tmodel *tm, long k, const double *T, double speed);

#endif
