/* timemodel.c - the modelled wall-clock time (timemodel.h holds the recursion). */
#include "timemodel.h"

#include "compress.h"
#include "spec.h"

#include <stdlib.h>
#include <string.h>

struct eg_tmodel {
    eg_tmodel_cfg cfg;
    double speed; /* samples/s of one node; 0: unknown */
    long k;       /* T holds T(k) */
    double *T, *F;
    int *nin, *nout;              /* gossip: in- and out-degree of each node */
    unsigned char *intra, *inter; /* gossip: node has a link within / between hosts */
};

int eg_tmodel_init(eg_tmodel **out, const eg_tmodel_cfg *cfg, eg_err *err)
{
    *out = NULL;
    const eg_cluster_spec *cl = &cfg->cluster;
    if (cfg->nodes < 1 || cl->nodes_per_host < 1 || !(cl->bandwidth_gbps > 0) ||
        !(cl->intra_bandwidth_gbps > 0) || !(cl->latency_us >= 0) ||
        !(cl->intra_latency_us >= 0) || !(cl->samples_per_s >= 0) ||
        !(cl->straggler_prob >= 0 && cl->straggler_prob <= 1) ||
        !(cl->straggler_slowdown >= 1) || cfg->batch_size < 1 || cfg->local_steps < 1)
        return eg_err_set(err, EG_EINPUT, "time model: cluster values out of range");
    eg_tmodel *tm = calloc(1, sizeof *tm);
    size_t n = (size_t)cfg->nodes;
    if (tm) {
        tm->T = calloc(n, sizeof(double));
        tm->F = calloc(n, sizeof(double));
        tm->nin = calloc(n, sizeof(int));
        tm->nout = calloc(n, sizeof(int));
        tm->intra = calloc(n, 1);
        tm->inter = calloc(n, 1);
    }
    if (!tm || !tm->T || !tm->F || !tm->nin || !tm->nout || !tm->intra || !tm->inter) {
        eg_tmodel_free(tm);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    tm->cfg = *cfg;
    tm->speed = cl->samples_per_s;
    *out = tm;
    return EG_OK;
}

void eg_tmodel_free(eg_tmodel *tm)
{
    if (!tm)
        return;
    free(tm->T);
    free(tm->F);
    free(tm->nin);
    free(tm->nout);
    free(tm->intra);
    free(tm->inter);
    free(tm);
}

int eg_tmodel_straggles(const eg_cluster_spec *cl, uint64_t seed, long k, int i)
{
    if (!(cl->straggler_prob > 0))
        return 0;
    uint64_t key[2] = {(uint64_t)k, (uint64_t)i};
    eg_rng r;
    eg_rng_seed(&r, seed, EG_STREAM_STRAGGLER, eg_fnv1a(EG_FNV_INIT, key, sizeof key));
    return eg_rng_uniform(&r) < cl->straggler_prob;
}

double eg_tmodel_speed(const eg_tmodel *tm) { return tm->speed; }
void eg_tmodel_set_speed(eg_tmodel *tm, double samples_per_s) { tm->speed = samples_per_s; }
long eg_tmodel_iter(const eg_tmodel *tm) { return tm->k; }
const double *eg_tmodel_times(const eg_tmodel *tm) { return tm->T; }
int eg_tmodel_nodes(const eg_tmodel *tm) { return tm->cfg.nodes; }

double eg_tmodel_time(const eg_tmodel *tm)
{
    double m = 0;
    for (int i = 0; i < tm->cfg.nodes; i++)
        m = tm->T[i] > m ? tm->T[i] : m;
    return m;
}

void eg_tmodel_restore(eg_tmodel *tm, long k, const double *T, double speed)
{
    tm->k = k;
    memcpy(tm->T, T, sizeof(double) * (size_t)tm->cfg.nodes);
    tm->speed = speed;
}

/* what iteration k does (as algo.c's mode_at) */
enum { TM_LOCAL, TM_GOSSIP, TM_ALLREDUCE };
static int mode_of(const eg_tmodel_cfg *c, long k)
{
    long k1 = k + 1;
    if (c->allreduce || (c->global_every > 0 && k1 % c->global_every == 0))
        return TM_ALLREDUCE;
    return k1 % c->local_steps == 0 ? TM_GOSSIP : TM_LOCAL;
}

/* node i's absence in iteration k (never on an all-reduce iteration) */
static int absent(const eg_tmodel *tm, int mode, long k, int i)
{
    return mode != TM_ALLREDUCE && eg_network_offline(&tm->cfg.network, tm->cfg.seed, k, i);
}

static int host_of(const eg_tmodel *tm, int i) { return i / tm->cfg.cluster.nodes_per_host; }

/* alpha + m 8 b / beta for a link within (intra = 1) or between hosts */
static double link_cost(const eg_cluster_spec *cl, int intra, double m, double b)
{
    double alpha = (intra ? cl->intra_latency_us : cl->latency_us) * 1e-6;
    double beta = (intra ? cl->intra_bandwidth_gbps : cl->bandwidth_gbps) * 1e9;
    return alpha + m * 8.0 * b / beta;
}

void eg_tmodel_step(eg_tmodel *tm, const eg_wmat *W)
{
    if (!(tm->speed > 0))
        return;
    const eg_tmodel_cfg *c = &tm->cfg;
    const eg_cluster_spec *cl = &c->cluster;
    const int n = c->nodes;
    const long k = tm->k;
    const int mode = mode_of(c, k);
    const double c0 = (double)c->batch_size / tm->speed;
    for (int i = 0; i < n; i++) {
        double ci = absent(tm, mode, k, i) ? 0.0 : c0;
        if (ci > 0 && eg_tmodel_straggles(cl, c->seed, k, i))
            ci *= cl->straggler_slowdown;
        tm->F[i] = tm->T[i] + ci;
    }
    if (mode == TM_ALLREDUCE) {
        double fmax = 0;
        for (int i = 0; i < n; i++)
            fmax = tm->F[i] > fmax ? tm->F[i] : fmax;
        int intra = n <= cl->nodes_per_host;
        double alpha = (intra ? cl->intra_latency_us : cl->latency_us) * 1e-6;
        double beta = (intra ? cl->intra_bandwidth_gbps : cl->bandwidth_gbps) * 1e9;
        double t = fmax + 2.0 * (n - 1) * alpha +
                   2.0 * (n - 1) / n * 8.0 * c->allreduce_bytes / beta;
        for (int i = 0; i < n; i++)
            tm->T[i] = t;
    } else if (mode == TM_LOCAL || !W) {
        memcpy(tm->T, tm->F, sizeof(double) * (size_t)n);
    } else {
        memset(tm->nin, 0, sizeof(int) * (size_t)n);
        memset(tm->nout, 0, sizeof(int) * (size_t)n);
        memset(tm->intra, 0, (size_t)n);
        memset(tm->inter, 0, (size_t)n);
        /* the links of W(k) between present nodes: degrees and link kinds */
        for (int i = 0; i < n; i++) {
            if (absent(tm, mode, k, i))
                continue;
            for (int p = W->rowptr[i]; p < W->rowptr[i + 1]; p++) {
                int j = W->col[p];
                if (j == i || W->val[p] == 0 || absent(tm, mode, k, j))
                    continue;
                tm->nin[i]++;
                tm->nout[j]++;
                unsigned char *kind = host_of(tm, i) == host_of(tm, j) ? tm->intra : tm->inter;
                kind[i] = kind[j] = 1;
            }
        }
        /* T_i(k+1): the latest of i and its in-neighbours, plus i's slowest link */
        for (int i = 0; i < n; i++) {
            double t = tm->F[i];
            if (!absent(tm, mode, k, i))
                for (int p = W->rowptr[i]; p < W->rowptr[i + 1]; p++) {
                    int j = W->col[p];
                    if (j != i && W->val[p] != 0 && !absent(tm, mode, k, j) && tm->F[j] > t)
                        t = tm->F[j];
                }
            double m = tm->nin[i] > tm->nout[i] ? tm->nin[i] : tm->nout[i], comm = 0;
            if (tm->intra[i])
                comm = link_cost(cl, 1, m, c->msg_bytes);
            if (tm->inter[i]) {
                double e = link_cost(cl, 0, m, c->msg_bytes);
                comm = e > comm ? e : comm;
            }
            tm->T[i] = t + comm;
        }
    }
    tm->k++;
}

void eg_tmodel_advance(eg_tmodel *tm, eg_topo *t, long upto)
{
    while (tm->speed > 0 && tm->k < upto) {
        const eg_wmat *W = mode_of(&tm->cfg, tm->k) == TM_GOSSIP
                               ? eg_topo_weights(t, tm->k / tm->cfg.local_steps)
                               : NULL;
        eg_tmodel_step(tm, W);
    }
}

void eg_tmodel_cfg_from_spec(eg_tmodel_cfg *cfg, const struct eg_spec *s, size_t nparams,
                             size_t nstats)
{
    const eg_algo_spec *a = &s->algo;
    double stats = s->norm_stats_gossip ? (double)nstats : 0.0;
    double dense = 4.0 * (double)nparams, msg = eg_algo_kinds[a->kind].vectors * dense + 4.0 * stats;
    if (a->kind == EG_ALGO_SGP)
        msg += 4.0;
    if (a->kind == EG_ALGO_CHOCO) {
        eg_compressor q;
        eg_compress_setup(&q, a->compress, a->ratio, a->levels, nparams);
        msg = eg_compress_bytes(&q) + 4.0 * stats;
    }
    *cfg = (eg_tmodel_cfg){.cluster = s->cluster, .nodes = s->nodes, .seed = s->seed,
                           .batch_size = s->data.batch_size,
                           .allreduce = eg_algo_kinds[a->kind].vectors == 0,
                           .local_steps = a->local_steps > 1 ? a->local_steps : 1,
                           .global_every = a->global_every, .msg_bytes = msg,
                           .allreduce_bytes = dense, .network = s->network};
}
