/* algo.c - psgd, dsgd, dmsgd, qg_dmsgd, gt, ed, sgp, choco (docs/algorithms.md#updates), with local
 * steps, periodic global averaging and an imperfect network (network.h). */
#include "algo.h"

#include "compress.h"
#include "network.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* choco's copies of x_hat (eg_algo_set_graph). A node's x_hat changes only by its own
 * compressed updates q, and every node that may ever read it (a subscriber: it may receive
 * from the node in some W(k), topology.h eg_topo_reach) must apply every q. Each rank keeps
 * one copy per remote node that any of its nodes may read, and receives each q once. */
typedef struct choco_copies {
    int ready;
    eg_topo_reach reach;    /* who may ever read whom */
    size_t pbytes;          /* one payload (eg_compress_payload_bytes) */
    unsigned char *pay;     /* nlocal payloads: this iteration's q of the local nodes */
    int nrep;               /* remote nodes this rank keeps a copy of, ascending */
    int *rep_node;
    float *rep;             /* nrep x dim: the copies */
    unsigned char *rep_pay; /* nrep payloads received */
    const float **copies;   /* nodes: node j's copy on this rank (NULL: local or none) */
    int nroute;             /* (local node, remote rank) pairs to send to, node-major */
    int *route_node, *route_rank;
    int *sn, *sr, *rn;      /* one exchange's present senders and receives */
    const void **sb;
    void **rb;
    int *nsub;              /* nodes: subscribers of node j (nodes that may read x_hat_j) */
    int *nsub_inter;        /* nodes: of those, on another machine (machines of inter_L) */
    int inter_L;
    int resync;             /* 1 after a resume: the copies are rebuilt before use */
    double pay_bytes, pay_inter; /* the payload bytes of the last exchange; between machines */
} choco_copies;

struct eg_algo {
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
    int max_nnz;   /* the largest W(k) */
    /* communication (eg_algo_set_network) */
    int H;         /* local_steps: an exchange every H iterations */
    long T;        /* global_every: an exact average every T iterations (0: never) */
    int lo;        /* first local node's id */
    uint64_t seed;
    eg_network_spec netspec;
    eg_network *net; /* NULL: a perfect network */
    double msgs_lost;  /* cumulative, over all nodes (the same on every rank) */
    float *lostv;  /* nlocal x 2: msgs_lost as (high, low) 24-bit halves, for checkpoints */
    double *gacc;  /* global averages: dim doubles */
    /* sgp */
    float *w, *wnew;   /* push-sum weights (nlocal) */
    int *outdeg;   /* nodes: out-degree in W(k) (self excluded) */
    eg_wmat rw;    /* the receive-averaging matrix (see exchange_sgp) */
    /* choco */
    float *xhat;   /* the public copy x_hat of each local node */
    eg_compressor cq;
    double gamma_c; /* consensus_step */
    float *cbuf;   /* per thread: 2 x dim scratch (difference, top_k's magnitudes) */
    int ncbuf;
    choco_copies cc;
};

int eg_algo_gossip_vectors(eg_algo_kind k) { return eg_algo_kinds[k].vectors; }

/* sgp: weights (start at 1), out-degrees, the receive-averaging matrix */
static int sgp_alloc(eg_algo *a, int nodes, int max_nnz, eg_err *err)
{
    size_t nl = (size_t)(a->nlocal ? a->nlocal : 1);
    a->w = eg_alloc_floats(nl, err);
    a->wnew = eg_alloc_floats(nl, err);
    a->outdeg = malloc(sizeof(int) * (size_t)nodes);
    a->rw.rowptr = malloc(sizeof(int) * (size_t)(nodes + 1));
    a->rw.col = malloc(sizeof(int) * (size_t)(max_nnz > 0 ? max_nnz : 1));
    a->rw.val = malloc(sizeof(double) * (size_t)(max_nnz > 0 ? max_nnz : 1));
    if (!a->w || !a->wnew || !a->outdeg || !a->rw.rowptr || !a->rw.col || !a->rw.val)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int li = 0; li < a->nlocal; li++)
        a->w[li] = 1.0f;
    return EG_OK;
}

/* choco: x_hat (starts at 0, as in the paper), the compressor, per-thread scratch */
static int choco_alloc(eg_algo *a, const eg_algo_spec *s, eg_err *err)
{
    a->xhat = eg_alloc_floats((size_t)a->nlocal * a->dim + 1, err);
    eg_compress_setup(&a->cq, s->compress, s->ratio, s->levels, a->dim);
    a->gamma_c = s->consensus_step > 0 ? s->consensus_step : 1.0;
    a->ncbuf = omp_get_max_threads();
    a->cbuf = eg_alloc_floats((size_t)a->ncbuf * 2 * a->dim + 1, err);
    return a->xhat && a->cbuf ? EG_OK : EG_ERUN;
}

static void choco_free(choco_copies *cc)
{
    eg_topo_reach_free(&cc->reach);
    free(cc->pay);
    free(cc->rep_node);
    free(cc->rep);
    free(cc->rep_pay);
    free(cc->copies);
    free(cc->route_node);
    free(cc->route_rank);
    free(cc->sn);
    free(cc->sr);
    free(cc->rn);
    free(cc->sb);
    free(cc->rb);
    free(cc->nsub);
    free(cc->nsub_inter);
}

/* runs body for each possible in-neighbour j of node i in reach R (all: every j != i) */
#define FOR_READ(R, i, j, body)                                                               \
    do {                                                                                      \
        if ((R)->all) {                                                                       \
            for (int j = 0; j < (R)->n; j++)                                                  \
                if (j != (i)) {                                                               \
                    body;                                                                     \
                }                                                                             \
        } else {                                                                              \
            for (int e_ = (R)->rowptr[i]; e_ < (R)->rowptr[(i) + 1]; e_++) {                  \
                int j = (R)->col[e_];                                                         \
                body;                                                                         \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* subscribers per node (its out-degree in reach) */
static int choco_subscribers(eg_algo *a, eg_err *err)
{
    choco_copies *cc = &a->cc;
    cc->nsub = calloc((size_t)a->nodes, sizeof(int));
    cc->nsub_inter = calloc((size_t)a->nodes, sizeof(int));
    if (!cc->nsub || !cc->nsub_inter)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int i = 0; i < a->nodes; i++)
        FOR_READ(&cc->reach, i, j, cc->nsub[j]++);
    return EG_OK;
}

/* the copies this rank keeps: the remote nodes its nodes may read, ascending */
static int choco_replicas(eg_algo *a, eg_err *err)
{
    choco_copies *cc = &a->cc;
    const int hi = a->lo + a->nlocal;
    cc->copies = calloc((size_t)a->nodes, sizeof *cc->copies);
    cc->rep_node = malloc(sizeof(int) * (size_t)(a->nodes + 1));
    if (!cc->copies || !cc->rep_node)
        return eg_err_set(err, EG_ERUN, "out of memory");
    /* mark the remote nodes read here (any non-NULL pointer), then point each at its copy */
    for (int i = a->lo; i < hi; i++)
        FOR_READ(&cc->reach, i, j, if (j < a->lo || j >= hi) cc->copies[j] = a->xhat);
    cc->nrep = 0;
    for (int j = 0; j < a->nodes; j++)
        if (cc->copies[j])
            cc->rep_node[cc->nrep++] = j;
    size_t nr = (size_t)cc->nrep;
    cc->rep = eg_alloc_floats(nr * a->dim + 1, NULL);
    cc->rep_pay = malloc(nr * cc->pbytes + 1);
    cc->rn = malloc(sizeof(int) * (nr + 1));
    cc->rb = malloc(sizeof(void *) * (nr + 1));
    if (!cc->rep || !cc->rep_pay || !cc->rn || !cc->rb)
        return eg_err_set(err, EG_ERUN, "out of memory: choco keeps a copy of x_hat for each of "
                          "the %d remote nodes this rank's nodes may read (%.1f MB)", cc->nrep,
                          (double)nr * (double)a->dim * sizeof(float) / 1e6);
    for (size_t q = 0; q < nr; q++)
        cc->copies[cc->rep_node[q]] = cc->rep + q * a->dim;
    return EG_OK;
}

/* the (local node, remote rank) pairs, node-major: rank r takes node j's payloads when
 * one of its nodes may read j */
static int choco_routes(eg_algo *a, const eg_comm *c, eg_err *err)
{
    choco_copies *cc = &a->cc;
    const int P = eg_comm_size(c), nl = a->nlocal, hi = a->lo + nl;
    const size_t cap = (size_t)nl * (size_t)P + 1;
    unsigned char *mark = calloc(cap, 1);
    cc->route_node = malloc(sizeof(int) * cap);
    cc->route_rank = malloc(sizeof(int) * cap);
    cc->sn = malloc(sizeof(int) * cap);
    cc->sr = malloc(sizeof(int) * cap);
    cc->sb = malloc(sizeof(void *) * cap);
    cc->pay = malloc((size_t)nl * cc->pbytes + 1);
    int rc = mark && cc->route_node && cc->route_rank && cc->sn && cc->sr && cc->sb && cc->pay
                 ? EG_OK : eg_err_set(err, EG_ERUN, "out of memory");
    for (int r = 0; r < P && !rc; r++) {
        int lo, rhi;
        eg_comm_range(a->nodes, P, r, &lo, &rhi);
        for (int i = lo; i < rhi && r != eg_comm_rank(c); i++)
            FOR_READ(&cc->reach, i, j,
                     if (j >= a->lo && j < hi) mark[(size_t)(j - a->lo) * (size_t)P + (size_t)r] = 1);
    }
    cc->nroute = 0;
    for (size_t q = 0; !rc && q + 1 < cap; q++)
        if (mark[q]) {
            cc->route_node[cc->nroute] = a->lo + (int)(q / (size_t)P);
            cc->route_rank[cc->nroute++] = (int)(q % (size_t)P);
        }
    free(mark);
    return rc;
}

int eg_algo_set_graph(eg_algo *a, eg_topo *t, eg_comm *c, eg_err *err)
{
    if (a->kind != EG_ALGO_CHOCO)
        return EG_OK;
    choco_copies *cc = &a->cc;
    cc->pbytes = eg_compress_payload_bytes(&a->cq);
    int rc = eg_topo_reach_init(&cc->reach, t, err);
    if (!rc)
        rc = choco_subscribers(a, err);
    if (!rc)
        rc = choco_replicas(a, err);
    if (!rc)
        rc = choco_routes(a, c, err);
    if (!rc)
        rc = eg_comm_reserve_payloads(c, cc->nroute + cc->nrep, err);
    cc->ready = !rc;
    return rc;
}

static int algo_alloc(eg_algo *a, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                      int max_nnz, int grad_slots, eg_err *err)
{
    if ((int)s->kind < 0 || s->kind >= EG_ALGO_COUNT)
        return eg_err_set(err, EG_EINPUT, "unknown algorithm kind %d", (int)s->kind);
    a->kind = s->kind;
    a->beta = s->momentum;
    a->wd = s->weight_decay;
    a->nesterov = s->nesterov;
    a->H = s->local_steps > 1 ? s->local_steps : 1;
    a->T = s->global_every > 0 ? s->global_every : 0;
    a->nodes = nodes;
    a->max_nnz = max_nnz;
    a->nlocal = nlocal;
    a->dim = dim;
    a->shared = a->kind == EG_ALGO_PSGD;
    a->g_per_node = a->kind == EG_ALGO_PSGD || grad_slots <= 0;
    size_t blk = (size_t)nlocal * dim;
    size_t gn = a->g_per_node ? (size_t)nlocal : (size_t)grad_slots;
    a->x = eg_alloc_floats(blk, err);
    if (!a->x)
        return EG_ERUN;
    if (a->kind != EG_ALGO_GOSSIP && !(a->g = eg_alloc_floats(gn * dim, err)))
        return EG_ERUN;
    if (a->kind != EG_ALGO_PSGD && !(a->xnew = eg_alloc_floats(blk, err)))
        return EG_ERUN;
    switch (a->kind) {
    case EG_ALGO_PSGD:
        a->gsum = eg_alloc_floats(dim, err);
        if (!a->gsum)
            return EG_ERUN;
        /* fall through */
    case EG_ALGO_DMSGD:
    case EG_ALGO_SGP:
    case EG_ALGO_CHOCO:
        a->m = eg_alloc_floats(blk, err);
        if (!a->m)
            return EG_ERUN;
        break;
    case EG_ALGO_QG_DMSGD:
        a->m = eg_alloc_floats(blk, err);
        a->z = eg_alloc_floats(blk, err);
        if (!a->m || !a->z)
            return EG_ERUN;
        break;
    case EG_ALGO_GT:
        a->y = eg_alloc_floats(blk, err);
        a->ynew = eg_alloc_floats(blk, err);
        a->gprev = eg_alloc_floats(blk, err);
        if (!a->y || !a->ynew || !a->gprev)
            return EG_ERUN;
        break;
    case EG_ALGO_ED:
        a->psi = eg_alloc_floats(blk, err);
        a->wbar.rowptr = malloc(sizeof(int) * (size_t)(nodes + 1));
        a->wbar.col = malloc(sizeof(int) * (size_t)(max_nnz + nodes));
        a->wbar.val = malloc(sizeof(double) * (size_t)(max_nnz + nodes));
        if (!a->psi || !a->wbar.rowptr || !a->wbar.col || !a->wbar.val)
            return eg_err_set(err, EG_ERUN, "out of memory");
        break;
    default:
        break;
    }
    if (a->T > 0 && !(a->gacc = malloc(sizeof(double) * (dim ? dim : 1))))
        return eg_err_set(err, EG_ERUN, "out of memory");
    if (a->kind == EG_ALGO_SGP)
        return sgp_alloc(a, nodes, max_nnz, err);
    if (a->kind == EG_ALGO_CHOCO)
        return choco_alloc(a, s, err);
    return EG_OK;
}

int eg_algo_set_stats(eg_algo *a, size_t nstats, int gossip, eg_err *err)
{
    a->nstats = nstats;
    a->stats_gossip = gossip && a->kind != EG_ALGO_PSGD;
    if (!nstats)
        return EG_OK;
    if (a->gacc && nstats > a->dim) { /* global averages of the statistics */
        free(a->gacc);
        if (!(a->gacc = malloc(sizeof(double) * nstats)))
            return eg_err_set(err, EG_ERUN, "out of memory");
    }
    size_t blk = (size_t)a->nlocal * nstats;
    if (!(a->stats = eg_alloc_floats(blk ? blk : 1, err)))
        return EG_ERUN;
    if (a->stats_gossip && !(a->statsnew = eg_alloc_floats(blk ? blk : 1, err)))
        return EG_ERUN;
    return EG_OK;
}

float *eg_algo_node_stats(eg_algo *a, int li)
{
    return a->stats ? a->stats + (size_t)li * a->nstats : NULL;
}

int eg_algo_set_nodecay(eg_algo *a, const size_t *off, const size_t *len, int n, eg_err *err)
{
    a->n_nodecay = 0;
    if (n <= 0)
        return EG_OK;
    a->nd_off = malloc(sizeof(size_t) * (size_t)n);
    a->nd_len = malloc(sizeof(size_t) * (size_t)n);
    if (!a->nd_off || !a->nd_len)
        return eg_err_set(err, EG_ERUN, "out of memory");
    memcpy(a->nd_off, off, sizeof(size_t) * (size_t)n);
    memcpy(a->nd_len, len, sizeof(size_t) * (size_t)n);
    a->n_nodecay = n;
    return EG_OK;
}

int eg_algo_init(eg_algo **out, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                 int max_nnz, int grad_slots, eg_err *err)
{
    *out = NULL;
    eg_algo *a = eg_calloc(1, sizeof *a, err);
    if (!a)
        return EG_ERUN;
    int rc = algo_alloc(a, s, nodes, nlocal, dim, max_nnz, grad_slots, err);
    if (rc) {
        eg_algo_free(a);
        return rc;
    }
    *out = a;
    return EG_OK;
}

float *eg_algo_x(eg_algo *a) { return a->x; }
int eg_algo_shared(const eg_algo *a) { return a->shared; }
int eg_algo_needs_grad(const eg_algo *a) { return a->kind != EG_ALGO_GOSSIP; }
float *eg_algo_stats(eg_algo *a) { return a->stats; }
size_t eg_algo_nstats(const eg_algo *a) { return a->nstats; }
long eg_algo_round(const eg_algo *a, long k) { return k / a->H; }
double eg_algo_msgs_lost(const eg_algo *a) { return a->msgs_lost; }

/* a resumed run: the steps, and msgs_lost from the checkpointed halves (every node's
 * record holds the run-wide count) */
void eg_algo_set_steps(eg_algo *a, long steps)
{
    a->steps = steps;
    a->cc.resync = 1; /* choco: the copies of remote x_hat are rebuilt before their next use */
    if (a->lostv && a->nlocal > 0)
        a->msgs_lost = (double)a->lostv[0] * 16777216.0 + (double)a->lostv[1];
}

int eg_algo_set_network(eg_algo *a, const eg_network_spec *ns, uint64_t seed, int lo,
                        eg_err *err)
{
    a->seed = seed;
    a->lo = lo;
    a->netspec = *ns;
    if (!eg_network_faulty(ns) || a->kind == EG_ALGO_PSGD)
        return EG_OK;
    if (!(a->lostv = eg_alloc_floats((size_t)a->nlocal * 2 + 1, err)))
        return EG_ERUN;
    return eg_network_init(&a->net, ns, seed, a->nodes, a->max_nnz, err);
}
long eg_algo_steps(const eg_algo *a) { return a->steps; }

float *eg_algo_node_x(eg_algo *a, int li)
{
    return a->x + (a->shared ? 0 : (size_t)li * a->dim);
}

float *eg_algo_grad(eg_algo *a, int li, int slot)
{
    return a->g + (size_t)(a->g_per_node ? li : slot) * a->dim;
}

void eg_algo_sync(eg_algo *a)
{
    if (!a->shared)
        return;
    const size_t d = a->dim;
    for (int i = 1; i < a->nlocal; i++) {
        memcpy(a->x + (size_t)i * d, a->x, d * sizeof(float));
        memcpy(a->m + (size_t)i * d, a->m, d * sizeof(float));
    }
}

void eg_algo_free(eg_algo *a)
{
    if (!a)
        return;
    free(a->x);
    free(a->g);
    free(a->m);
    free(a->y);
    free(a->gprev);
    free(a->psi);
    free(a->z);
    free(a->xnew);
    free(a->ynew);
    free(a->gsum);
    free(a->wbar.rowptr);
    free(a->wbar.col);
    free(a->wbar.val);
    free(a->stats);
    free(a->statsnew);
    free(a->nd_off);
    free(a->nd_len);
    eg_network_free(a->net);
    free(a->lostv);
    free(a->gacc);
    free(a->w);
    free(a->wnew);
    free(a->outdeg);
    free(a->rw.rowptr);
    free(a->rw.col);
    free(a->rw.val);
    free(a->xhat);
    free(a->cbuf);
    choco_free(&a->cc);
    free(a);
}

int eg_algo_state(eg_algo *a, float **vecs, const char **names, size_t *lens, int max)
{
    int n = 0;
    eg_algo_sync(a);
#define ADD(p, nm, ln)                     \
    if ((p) && n < max) {                 \
        vecs[n] = (p);                    \
        lens[n] = (ln);                   \
        names[n++] = (nm);                \
    }
    ADD(a->x, "x", a->dim);
    ADD(a->m, "m", a->dim);
    ADD(a->y, "y", a->dim);
    ADD(a->gprev, "gprev", a->dim);
    ADD(a->psi, "psi", a->dim);
    ADD(a->stats, "stats", a->nstats);
    ADD(a->w, "w", 1);
    ADD(a->xhat, "xhat", a->dim);
    if (a->lostv) {
        float hi = (float)floor(a->msgs_lost / 16777216.0);
        for (int li = 0; li < a->nlocal; li++) {
            a->lostv[2 * li] = hi;
            a->lostv[2 * li + 1] = (float)(a->msgs_lost - (double)hi * 16777216.0);
        }
    }
    ADD(a->lostv, "msgs_lost", 2);
#undef ADD
    return n;
}

static void swap(float **p, float **q)
{
    float *t = *p;
    *p = *q;
    *q = t;
}

/* (I + W) / 2 into a->wbar, keeping ascending columns */
static void make_wbar(eg_algo *a, const eg_wmat *W)
{
    eg_wmat *B = &a->wbar;
    int e2 = 0;
    B->n = W->n;
    /* the same off-diagonal pattern, so the same traffic (machines included) */
    B->local = W->local;
    B->sends = W->sends;
    B->inter = W->inter;
    for (int i = 0; i < W->n; i++) {
        B->rowptr[i] = e2;
        int self_done = 0;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            int j = W->col[e];
            if (!self_done && j > i) {
                B->col[e2] = i;
                B->val[e2++] = 0.5;
                self_done = 1;
            }
            B->col[e2] = j;
            B->val[e2++] = 0.5 * W->val[e] + (j == i ? 0.5 : 0.0);
            if (j == i)
                self_done = 1;
        }
        if (!self_done) {
            B->col[e2] = i;
            B->val[e2++] = 0.5;
        }
    }
    B->rowptr[W->n] = e2;
    B->nnz = e2;
}

/* node li's slice of the elementwise work before the exchange: weight decay, momentum,
 * the vector to send (written over x_i, except for qg_dmsgd, which needs x_i afterwards).
 * Reads and writes only node li's vectors and gradient slot. */
/* g += wd x outside the no-decay ranges: the same float g + wd x the kernels below form,
 * after which they run with wd = 0 (bitwise the same as decaying inside them) */
static void decay_outside(const eg_algo *a, float *restrict g, const float *restrict x, float wd)
{
    size_t t = 0;
    for (int r = 0; r <= a->n_nodecay; r++) {
        size_t end = r < a->n_nodecay ? a->nd_off[r] : a->dim;
        for (; t < end; t++)
            g[t] += wd * x[t];
        if (r < a->n_nodecay)
            t = a->nd_off[r] + a->nd_len[r];
    }
}

/* One node's vectors and this iteration's scalars, for the per-method kernels below (each
 * reads and writes only that node's slices). */
typedef struct node_args {
    float *x, *g, *m, *y, *gprev, *psi, *z;
    size_t d;
    float lr, beta, wd, w; /* w: sgp's push-sum weight */
    int first, nesterov;
} node_args;

/* psgd: the gradient with weight decay (the update itself follows the all-reduce) */
EG_CLONES static void update_psgd(const node_args *n)
{
    float *restrict g = n->g;
    const float *restrict x = n->x;
    if (n->wd != 0.0f)
        for (size_t t = 0; t < n->d; t++)
            g[t] += n->wd * x[t];
}

/* dsgd: x - lr (g + wd x), to be sent */
EG_CLONES static void update_dsgd(const node_args *n)
{
    float *restrict x = n->x;
    const float *restrict g = n->g;
    const float lr = n->lr, wd = n->wd;
    for (size_t t = 0; t < n->d; t++)
        x[t] = x[t] - lr * (g[t] + wd * x[t]);
}

/* dmsgd: m <- beta m + g; x - lr m (Nesterov: x - lr (g + beta m)), to be sent */
EG_CLONES static void update_dmsgd(const node_args *n)
{
    float *restrict x = n->x, *restrict m = n->m;
    const float *restrict g = n->g;
    const float lr = n->lr, beta = n->beta, wd = n->wd;
    if (n->nesterov) {
        for (size_t t = 0; t < n->d; t++) {
            float gt = g[t] + wd * x[t];
            float mt = beta * m[t] + gt;
            m[t] = mt;
            x[t] = x[t] - lr * (gt + beta * mt);
        }
    } else {
        for (size_t t = 0; t < n->d; t++) {
            float mt = beta * m[t] + (g[t] + wd * x[t]);
            m[t] = mt;
            x[t] = x[t] - lr * mt;
        }
    }
}

/* qg_dmsgd: z = x - lr (g + beta m) is sent; x stays (the momentum needs it after) */
EG_CLONES static void update_qg_dmsgd(const node_args *n)
{
    const float *restrict x = n->x, *restrict g = n->g, *restrict m = n->m;
    float *restrict z = n->z;
    const float lr = n->lr, beta = n->beta, wd = n->wd;
    for (size_t t = 0; t < n->d; t++)
        z[t] = x[t] - lr * ((g[t] + wd * x[t]) + beta * m[t]);
}

/* gt: y_k = g_k at k = 0, else (W y_{k-1}) + g_k - g_{k-1}; x - lr y is sent */
EG_CLONES static void update_gt(const node_args *n)
{
    float *restrict x = n->x, *restrict y = n->y, *restrict gp = n->gprev;
    const float *restrict g = n->g;
    const float lr = n->lr, wd = n->wd;
    for (size_t t = 0; t < n->d; t++) {
        float gt = g[t] + wd * x[t];
        float yt = n->first ? gt : y[t] + gt - gp[t];
        gp[t] = gt;
        y[t] = yt;
        x[t] = x[t] - lr * yt;
    }
}

/* ed: psi = x - lr g; phi = psi + x - psi_prev (phi = psi at the start) is sent */
EG_CLONES static void update_ed(const node_args *n)
{
    float *restrict x = n->x, *restrict psi = n->psi;
    const float *restrict g = n->g;
    const float lr = n->lr, wd = n->wd;
    for (size_t t = 0; t < n->d; t++) {
        float xt = x[t];
        float p = xt - lr * (g[t] + wd * xt);
        x[t] = n->first ? p : p + xt - psi[t];
        psi[t] = p;
    }
}

/* sgp: m <- beta m + g (g at z = x here); the numerator w z - lr m (Nesterov: with
 * g + beta m) is pushed */
EG_CLONES static void update_sgp(const node_args *n)
{
    float *restrict x = n->x, *restrict m = n->m;
    const float *restrict g = n->g;
    const float lr = n->lr, beta = n->beta, wd = n->wd, w = n->w;
    for (size_t t = 0; t < n->d; t++) {
        float gt = g[t] + wd * x[t];
        float mt = beta * m[t] + gt;
        m[t] = mt;
        x[t] = w * x[t] - lr * (n->nesterov ? gt + beta * mt : mt);
    }
}

/* the per-node kernel of each method (gossip: none, it uses no gradient; choco's local
 * step is dmsgd's, its compressed gossip follows in the exchange) */
static void (*const node_kernels[])(const node_args *) = {
    [EG_ALGO_PSGD] = update_psgd, [EG_ALGO_DSGD] = update_dsgd, [EG_ALGO_DMSGD] = update_dmsgd,
    [EG_ALGO_QG_DMSGD] = update_qg_dmsgd, [EG_ALGO_GT] = update_gt, [EG_ALGO_ED] = update_ed,
    [EG_ALGO_GOSSIP] = NULL, [EG_ALGO_SGP] = update_sgp, [EG_ALGO_CHOCO] = update_dmsgd,
};

/* what iteration `step` does after the node updates */
enum { MIX_LOCAL, MIX_GOSSIP, MIX_GLOBAL };
static int mode_at(const eg_algo *a, long step)
{
    long k1 = step + 1;
    if (a->T > 0 && k1 % a->T == 0)
        return MIX_GLOBAL;
    return k1 % a->H == 0 ? MIX_GOSSIP : MIX_LOCAL;
}
static int iter_mode(const eg_algo *a) { return mode_at(a, a->steps); }

/* whether node i is absent in iteration `step` (global averages are reliable) */
static int absent_at(const eg_algo *a, long step, int i)
{
    return a->net && mode_at(a, step) != MIX_GLOBAL &&
           eg_network_offline(&a->netspec, a->seed, step, i);
}
/* whether node j is absent in this iteration */
static int absent_node(const eg_algo *a, int j) { return absent_at(a, a->steps, j); }

/* whether local node li is absent */
static int absent(const eg_algo *a, int li) { return absent_node(a, a->lo + li); }

int eg_algo_node_absent(const eg_algo *a, int li) { return absent(a, li); }

long eg_algo_absent_pairs(const eg_algo *a, long nsteps)
{
    long c = 0;
    for (long k = a->steps - nsteps; a->net && k < a->steps; k++)
        for (int i = 0; i < a->nodes; i++)
            c += absent_at(a, k, i);
    return c;
}

void eg_algo_node_update(eg_algo *a, int li, int slot, double lr)
{
    if (!node_kernels[a->kind] || absent(a, li))
        return;
    const size_t off = (size_t)li * a->dim;
    node_args n = {.x = eg_algo_node_x(a, li), .g = eg_algo_grad(a, li, slot), .d = a->dim,
                   .lr = (float)lr, .beta = (float)a->beta, .wd = (float)a->wd,
                   .first = a->steps == 0, .nesterov = a->nesterov,
                   .w = a->w ? a->w[li] : 1.0f};
    float *const state[] = {a->m, a->y, a->gprev, a->psi, a->z};
    float **slot_of[] = {&n.m, &n.y, &n.gprev, &n.psi, &n.z};
    for (size_t v = 0; v < sizeof state / sizeof state[0]; v++)
        *slot_of[v] = state[v] ? state[v] + (a->shared ? 0 : off) : NULL;
    if (a->n_nodecay > 0 && n.wd != 0.0f) {
        decay_outside(a, n.g, n.x, n.wd);
        n.wd = 0.0f;
    }
    node_kernels[a->kind](&n);
}

/* ---- the exchange ---- */

/* how this iteration mixes: its mode, the matrix (W(k), or W'(k) on a faulty network),
 * and the messages sent between distinct nodes */
typedef struct mixer {
    int mode;
    const eg_wmat *W0, *W; /* W(k) as the graph gives it; what arrives */
    double sent;
} mixer;

static double offdiag(const eg_wmat *W)
{
    long off = 0;
    for (int i = 0; i < W->n; i++)
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++)
            off += W->col[e] != i && W->val[e] != 0.0;
    return (double)off;
}

/* The vectors sent, as topology.h counts them: one per off-diagonal nonzero of W, or, for a
 * W with machines (hierarchical), W->sends, its two-stage implementation's count (fewer
 * than the nonzeros: a machine's average travels once to each counterpart node, not each
 * of its L nodes' vectors). On a faulty network, the messages whose sender was present
 * (cnt_sent of the nonzeros) are scaled the same way. */
static void make_mixer(eg_algo *a, const eg_wmat *W, mixer *mx)
{
    *mx = (mixer){.mode = iter_mode(a), .W0 = W, .W = W};
    if (mx->mode != MIX_GOSSIP)
        return;
    const double off = offdiag(W);
    const int machines = W->local > 0 && off > 0;
    if (!a->net) {
        mx->sent = machines ? (double)W->sends : off;
        return;
    }
    eg_network_count cnt;
    mx->W = eg_network_apply(a->net, W, a->steps, &cnt);
    mx->sent = machines ? (double)cnt.sent * (double)W->sends / off : (double)cnt.sent;
    a->msgs_lost += (double)cnt.lost;
}

/* bytes sent for nv vectors of dim floats per message (global: a ring all-reduce, in
 * which each node sends 2 (n-1)/n of the vector) */
static double mix_bytes(const eg_algo *a, const mixer *mx, int nv, size_t dim)
{
    if (mx->mode == MIX_GLOBAL)
        return nv * 2.0 * (a->nodes - 1) * (double)dim * sizeof(float);
    return mx->sent * nv * (double)dim * sizeof(float);
}

/* out[v] = the mixed in[v] for each local node: W'(k) (gossip), the exact average over all
 * nodes (global: summed in node order in double, the same for every P), or a copy (local) */
static int mix(eg_algo *a, eg_comm *c, const mixer *mx, int nv, const float *const *in,
               float *const *out, size_t dim, eg_err *err)
{
    if (mx->mode == MIX_GOSSIP)
        return eg_comm_gossip_multi(c, mx->W, nv, in, out, dim, err);
    for (int v = 0; v < nv; v++) {
        if (mx->mode == MIX_LOCAL) {
            memcpy(out[v], in[v], (size_t)a->nlocal * dim * sizeof(float));
            continue;
        }
        int rc = eg_comm_sum_nodes(c, in[v], dim, a->gacc, err);
        if (rc)
            return rc;
        for (int li = 0; li < a->nlocal; li++)
            for (size_t t = 0; t < dim; t++)
                out[v][(size_t)li * dim + t] = (float)(a->gacc[t] / a->nodes);
    }
    return EG_OK;
}

static int mix1(eg_algo *a, eg_comm *c, const mixer *mx, const float *in, float *out,
                size_t dim, eg_err *err)
{
    return mix(a, c, mx, 1, &in, &out, dim, err);
}

/* psgd: g = (1/n) sum_i g_i (local nodes in order, per element, so the sum does not depend
 * on threads; then an all-reduce over ranks); m <- beta m + g; x <- x - lr m on the one
 * shared model (node 0's copy; eg_algo_sync copies it to the others) */
static int exchange_psgd(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                         eg_err *err)
{
    (void)mx;
    const size_t dim = a->dim;
    const float beta = (float)a->beta;
    float *restrict gs = a->gsum;
    const float *g = a->g;
    const int nl = a->nlocal;
#pragma omp parallel for schedule(static) if (dim >= 16384)
    for (size_t b = 0; b < dim; b += 4096) {
        size_t len = dim - b < 4096 ? dim - b : 4096;
        float *restrict o = gs + b;
        if (nl == 0) {
            memset(o, 0, len * sizeof(float));
            continue;
        }
        memcpy(o, g + b, len * sizeof(float));
        for (int i = 1; i < nl; i++) {
            const float *restrict gi = g + (size_t)i * dim + b;
            for (size_t t = 0; t < len; t++)
                o[t] += gi[t];
        }
    }
    int rc = eg_comm_allreduce_floats(c, gs, dim, err);
    if (rc)
        return rc;
    if (a->nlocal > 0) {
        const float inv = 1.0f / (float)a->nodes;
        float *restrict x = a->x, *restrict m = a->m;
        const int nest = a->nesterov;
#pragma omp parallel for schedule(static) if (dim >= 16384)
        for (size_t t = 0; t < dim; t++) {
            float gt = gs[t] * inv;
            float mt = beta * m[t] + gt;
            m[t] = mt;
            x[t] -= lr * (nest ? gt + beta * mt : mt);
        }
    }
    /* ring all-reduce: each node sends 2 (n-1)/n of the vector */
    *bytes += 2.0 * (a->nodes - 1) * (double)a->dim * sizeof(float);
    return EG_OK;
}

/* dsgd, dmsgd, gossip: x holds the vectors to send (updated in place by the node update) */
static int exchange_plain(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                          eg_err *err)
{
    (void)lr;
    if (mx->mode == MIX_LOCAL)
        return EG_OK;
    int rc = mix1(a, c, mx, a->x, a->xnew, a->dim, err);
    if (rc)
        return rc;
    swap(&a->x, &a->xnew);
    *bytes += mix_bytes(a, mx, 1, a->dim);
    return EG_OK;
}

/* qg_dmsgd's momentum on floats [from, from + len): d = (x - x+) / lr; m <- beta m +
 * (1 - beta) d */
static void qg_momentum(eg_algo *a, size_t from, size_t len, float lr)
{
    float *restrict x = a->x + from, *restrict xn = a->xnew + from, *restrict m = a->m + from;
    const float inv = 1.0f / lr, beta = (float)a->beta;
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < len; t++) {
        float d = (x[t] - xn[t]) * inv;
        m[t] = beta * m[t] + (1.0f - beta) * d;
    }
}

/* qg_dmsgd: x+ = W z, then the momentum from x - x+ (absent nodes keep x and m) */
static int exchange_qg(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                       eg_err *err)
{
    const size_t dim = a->dim;
    int rc = mix1(a, c, mx, a->z, a->xnew, dim, err);
    if (rc)
        return rc;
    if (!a->net) {
        qg_momentum(a, 0, (size_t)a->nlocal * dim, lr);
    } else {
        for (int li = 0; li < a->nlocal; li++) {
            if (absent(a, li))
                memcpy(a->xnew + (size_t)li * dim, a->x + (size_t)li * dim, dim * sizeof(float));
            else
                qg_momentum(a, (size_t)li * dim, dim, lr);
        }
    }
    swap(&a->x, &a->xnew);
    *bytes += mix_bytes(a, mx, 1, dim);
    return EG_OK;
}

/* gt: x <- W (x - lr y) (in x now) and y <- W y in one exchange */
static int exchange_gt(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                       eg_err *err)
{
    (void)lr;
    if (mx->mode == MIX_LOCAL)
        return EG_OK;
    const float *in[2] = {a->x, a->y};
    float *out[2] = {a->xnew, a->ynew};
    int rc = mix(a, c, mx, 2, in, out, a->dim, err);
    if (rc)
        return rc;
    swap(&a->x, &a->xnew);
    swap(&a->y, &a->ynew);
    *bytes += mix_bytes(a, mx, 2, a->dim);
    return EG_OK;
}

/* ed: x <- Wbar phi with Wbar = (I + W) / 2 (global: (I + J) / 2) */
static int exchange_ed(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                       eg_err *err)
{
    (void)lr;
    if (mx->mode == MIX_LOCAL)
        return EG_OK;
    int rc;
    if (mx->mode == MIX_GOSSIP) {
        make_wbar(a, mx->W);
        rc = eg_comm_gossip(c, &a->wbar, a->x, a->xnew, a->dim, err);
    } else {
        rc = mix1(a, c, mx, a->x, a->xnew, a->dim, err);
        const size_t blk = (size_t)a->nlocal * a->dim;
        for (size_t t = 0; !rc && t < blk; t++)
            a->xnew[t] = 0.5f * (a->x[t] + a->xnew[t]);
    }
    if (rc)
        return rc;
    swap(&a->x, &a->xnew);
    *bytes += mix_bytes(a, mx, 1, a->dim);
    return EG_OK;
}

/* sgp's gossip, in the row form the exchange computes: every present node j splits its
 * mass evenly over itself and its out-neighbours in W(k) (the i != j with W_ij != 0), so it
 * pushes u_j = (x_j, w_j) / (1 + outdeg_j); node i receives from the cnt_i of them whose
 * messages arrive and sums u_i + sum_j u_j = (1 + cnt_i) x (the row average of rw, whose
 * row i is uniform over i and those cnt_i). A lost message's mass is lost. */
static void sgp_prepare(eg_algo *a, const mixer *mx)
{
    const eg_wmat *W0 = mx->W0, *W = mx->W;
    memset(a->outdeg, 0, sizeof(int) * (size_t)a->nodes);
    for (int i = 0; i < W0->n; i++)
        for (int e = W0->rowptr[i]; e < W0->rowptr[i + 1]; e++)
            if (W0->col[e] != i && W0->val[e] != 0.0)
                a->outdeg[W0->col[e]]++;
    for (int li = 0; li < a->nlocal; li++) {
        if (absent(a, li))
            continue;
        const float inv = 1.0f / (float)(1 + a->outdeg[a->lo + li]);
        float *x = a->x + (size_t)li * a->dim;
        for (size_t t = 0; t < a->dim; t++)
            x[t] *= inv;
        a->w[li] *= inv;
    }
    eg_wmat *R = &a->rw;
    *R = (eg_wmat){.n = W->n, .nnz = W->nnz, .rowptr = R->rowptr, .col = R->col, .val = R->val};
    memcpy(R->rowptr, W->rowptr, sizeof(int) * (size_t)(W->n + 1));
    for (int i = 0; i < W->n; i++) {
        int cnt = 0;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++)
            cnt += W->col[e] != i && W->val[e] != 0.0;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            R->col[e] = W->col[e];
            R->val[e] = W->col[e] == i || W->val[e] != 0.0 ? 1.0 / (1 + cnt) : 0.0;
        }
    }
}

/* node i's received count in rw (after sgp_prepare) */
static int sgp_received(const eg_algo *a, int i)
{
    int cnt = 0;
    for (int e = a->rw.rowptr[i]; e < a->rw.rowptr[i + 1]; e++)
        cnt += a->rw.col[e] != i && a->rw.val[e] != 0.0;
    return cnt;
}

/* sgp: push-sum of (x, w); z = x / w is kept in x (what gradients and evaluation read).
 * Absent nodes keep z and w. Local steps: z = (w z - lr m) / w. */
static int exchange_sgp(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                        eg_err *err)
{
    (void)lr;
    const size_t d = a->dim;
    int rc = EG_OK;
    if (mx->mode == MIX_GOSSIP) {
        sgp_prepare(a, mx);
        rc = eg_comm_gossip(c, &a->rw, a->x, a->xnew, d, err);
        if (!rc)
            rc = eg_comm_gossip(c, &a->rw, a->w, a->wnew, 1, err);
    } else if (mx->mode == MIX_GLOBAL) {
        rc = mix1(a, c, mx, a->x, a->xnew, d, err);
        if (!rc)
            rc = mix1(a, c, mx, a->w, a->wnew, 1, err);
    }
    if (rc)
        return rc;
    for (int li = 0; li < a->nlocal; li++) {
        float *x = (mx->mode == MIX_LOCAL ? a->x : a->xnew) + (size_t)li * d;
        if (mx->mode == MIX_LOCAL) {
            if (!absent(a, li))
                for (size_t t = 0; t < d; t++)
                    x[t] /= a->w[li];
            continue;
        }
        if (mx->mode == MIX_GOSSIP && absent(a, li))
            continue; /* its row is e_i: z and w came through unchanged */
        const float f = mx->mode == MIX_GOSSIP ? (float)(1 + sgp_received(a, a->lo + li)) : 1.0f;
        const float wn = a->wnew[li] * f;
        a->wnew[li] = wn;
        for (size_t t = 0; t < d; t++)
            x[t] = x[t] * f / wn;
    }
    if (mx->mode == MIX_LOCAL)
        return EG_OK;
    swap(&a->x, &a->xnew);
    swap(&a->w, &a->wnew);
    *bytes += mix_bytes(a, mx, 1, d) + mix_bytes(a, mx, 1, 1);
    return EG_OK;
}

/* a copy's update from its payload (the owner's own x_hat update, bitwise) */
static void choco_apply(const eg_algo *a, const void *p, float *xh)
{
    if (eg_compress_identity(&a->cq))
        eg_compress_decode_set(&a->cq, p, xh);
    else
        eg_compress_decode_add(&a->cq, p, xh);
}

/* choco, node li (present): its payload q = Q(x - x_hat) (x holds x - lr m now), and
 * x_hat += q decoded from that payload, as every copy will do. The identity sends x itself
 * and sets x_hat = x (x_hat + (x - x_hat) may round). */
static void choco_encode(eg_algo *a, int li, float *buf)
{
    const size_t d = a->dim;
    float *x = a->x + (size_t)li * d, *xh = a->xhat + (size_t)li * d;
    unsigned char *p = a->cc.pay + (size_t)li * a->cc.pbytes;
    eg_rng r;
    eg_rng_seed(&r, a->seed, EG_STREAM_COMPRESS,
                (uint64_t)a->steps * (uint64_t)a->nodes + (uint64_t)(a->lo + li));
    if (eg_compress_identity(&a->cq)) {
        eg_compress_encode(&a->cq, x, p, buf, &r);
    } else {
        float *diff = buf, *scratch = buf + d;
        for (size_t t = 0; t < d; t++)
            diff[t] = x[t] - xh[t];
        eg_compress_encode(&a->cq, diff, p, scratch, &r);
    }
    choco_apply(a, p, xh); /* the owner's update is its copies' update */
}


/* The payloads of the present local nodes go once to each rank that subscribes; the
 * copies of present remote nodes receive theirs (absence is known everywhere: no receive is
 * posted for an absent sender). A payload is delivered even when network.drop loses the
 * message in W'(k): only its gossip weight is lost (the receiver mixes its own x_hat in its
 * place), the x_hat copies stay those of the owners. */
static int choco_deliver(eg_algo *a, eg_comm *c, eg_err *err)
{
    choco_copies *cc = &a->cc;
    int ns = 0, nr = 0;
    for (int q = 0; q < cc->nroute; q++) {
        int j = cc->route_node[q];
        if (absent_node(a, j))
            continue;
        cc->sn[ns] = j;
        cc->sr[ns] = cc->route_rank[q];
        cc->sb[ns++] = cc->pay + (size_t)(j - a->lo) * cc->pbytes;
    }
    for (int q = 0; q < cc->nrep; q++)
        if (!absent_node(a, cc->rep_node[q])) {
            cc->rn[nr] = cc->rep_node[q];
            cc->rb[nr++] = cc->rep_pay + (size_t)q * cc->pbytes;
        }
    int rc = eg_comm_payloads(c, ns, cc->sn, cc->sr, cc->sb, nr, cc->rn, cc->rb, cc->pbytes, err);
    if (rc)
        return rc;
#pragma omp parallel for schedule(static)
    for (int q = 0; q < cc->nrep; q++)
        if (!absent_node(a, cc->rep_node[q]))
            choco_apply(a, cc->rep_pay + (size_t)q * cc->pbytes, cc->rep + (size_t)q * a->dim);
    return EG_OK;
}

/* after a resume: the copies from the owners' (checkpointed) x_hat, dense, once; derived
 * state, so its bytes are not counted */
static int choco_resync(eg_algo *a, eg_comm *c, eg_err *err)
{
    choco_copies *cc = &a->cc;
    for (int q = 0; q < cc->nroute; q++) {
        cc->sn[q] = cc->route_node[q];
        cc->sr[q] = cc->route_rank[q];
        cc->sb[q] = a->xhat + (size_t)(cc->route_node[q] - a->lo) * a->dim;
    }
    for (int q = 0; q < cc->nrep; q++) {
        cc->rn[q] = cc->rep_node[q];
        cc->rb[q] = cc->rep + (size_t)q * a->dim;
    }
    cc->resync = 0;
    return eg_comm_payloads(c, cc->nroute, cc->sn, cc->sr, cc->sb, cc->nrep, cc->rn, cc->rb,
                            a->dim * sizeof(float), err);
}

/* subscribers of each node on another machine of L nodes */
static void choco_inter_counts(eg_algo *a, int L)
{
    choco_copies *cc = &a->cc;
    memset(cc->nsub_inter, 0, sizeof(int) * (size_t)a->nodes);
    for (int i = 0; i < a->nodes; i++)
        FOR_READ(&cc->reach, i, j, cc->nsub_inter[j] += i / L != j / L);
    cc->inter_L = L;
}

/* bytes: each present node's payload once per subscriber (its x_hat update must reach
 * every node that may read x_hat later, whether or not W(k) mixes them now); between
 * machines: the subscribers on other machines when the graph defines machines */
static void choco_count(eg_algo *a, const mixer *mx, double *bytes)
{
    choco_copies *cc = &a->cc;
    const int L = mx->W0->local;
    if (L > 0 && L != cc->inter_L)
        choco_inter_counts(a, L);
    double subs = 0, inter = 0;
    for (int j = 0; j < a->nodes; j++)
        if (!absent_node(a, j)) {
            subs += cc->nsub[j];
            inter += L > 0 ? cc->nsub_inter[j] : cc->nsub[j];
        }
    cc->pay_bytes = subs * (double)cc->pbytes;
    cc->pay_inter = inter * (double)cc->pbytes;
    *bytes += cc->pay_bytes;
}

/* x <- x + gamma (s - x_hat) for the present local nodes, s = sum_j w_ij x_hat_j in xnew */
static void choco_step(eg_algo *a)
{
    const size_t d = a->dim;
    const float g = (float)a->gamma_c;
    const int exact = g == 1.0f && eg_compress_identity(&a->cq);
    for (int li = 0; li < a->nlocal; li++) {
        if (absent(a, li))
            continue;
        float *x = a->x + (size_t)li * d;
        const float *s = a->xnew + (size_t)li * d, *xh = a->xhat + (size_t)li * d;
        if (exact) /* x_hat = x: x + (s - x) is s (dsgd's combine, bit for bit) */
            memcpy(x, s, d * sizeof(float));
        else
            for (size_t t = 0; t < d; t++)
                x[t] += g * (s[t] - xh[t]);
    }
}

/* choco: compressed gossip; x <- x + gamma (sum_j w_ij x_hat_j - x_hat_i). Only the
 * payloads of q cross ranks (choco_deliver); the combine reads the local x_hat and this
 * rank's copies of the remote ones. Absent nodes send nothing and keep x, x_hat. */
static int exchange_choco(eg_algo *a, eg_comm *c, const mixer *mx, float lr, double *bytes,
                          eg_err *err)
{
    (void)lr;
    const size_t d = a->dim;
    if (mx->mode == MIX_LOCAL)
        return EG_OK;
    if (mx->mode == MIX_GLOBAL) {
        int rc = mix1(a, c, mx, a->x, a->xnew, d, err);
        if (rc)
            return rc;
        swap(&a->x, &a->xnew);
        *bytes += mix_bytes(a, mx, 1, d);
        return EG_OK;
    }
    if (!a->cc.ready)
        return eg_err_set(err, EG_ERUN, "choco: eg_algo_set_graph was not called");
    int rc = a->cc.resync ? choco_resync(a, c, err) : EG_OK;
    if (rc)
        return rc;
#pragma omp parallel for schedule(static) num_threads(a->ncbuf)
    for (int li = 0; li < a->nlocal; li++)
        if (!absent(a, li))
            choco_encode(a, li, a->cbuf + (size_t)omp_get_thread_num() * 2 * d);
    if ((rc = choco_deliver(a, c, err)) ||
        (rc = eg_comm_combine_copies(c, mx->W, a->xhat, a->cc.copies, a->xnew, d, err)))
        return rc;
    choco_step(a);
    choco_count(a, mx, bytes);
    return EG_OK;
}

/* the exchange of each method, after the node updates */
typedef int (*exchange_fn)(eg_algo *, eg_comm *, const mixer *, float, double *, eg_err *);
static const exchange_fn exchange_kernels[] = {
    [EG_ALGO_PSGD] = exchange_psgd, [EG_ALGO_DSGD] = exchange_plain,
    [EG_ALGO_DMSGD] = exchange_plain, [EG_ALGO_QG_DMSGD] = exchange_qg,
    [EG_ALGO_GT] = exchange_gt, [EG_ALGO_ED] = exchange_ed, [EG_ALGO_GOSSIP] = exchange_plain,
    [EG_ALGO_SGP] = exchange_sgp, [EG_ALGO_CHOCO] = exchange_choco,
};

double eg_algo_inter_bytes(const eg_algo *a, const eg_wmat *W, double bytes)
{
    if (a->kind != EG_ALGO_CHOCO)
        return eg_comm_inter_bytes(W, bytes);
    return a->cc.pay_inter + eg_comm_inter_bytes(W, bytes - a->cc.pay_bytes);
}

int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes,
                     eg_err *err)
{
    a->cc.pay_bytes = a->cc.pay_inter = 0;
    mixer mx;
    make_mixer(a, W, &mx);
    int rc = exchange_kernels[a->kind](a, c, &mx, (float)lr, bytes, err);
    if (rc)
        return rc;
    if (a->stats_gossip && a->nstats > 0 && mx.mode != MIX_LOCAL) {
        /* running statistics: mixed like the parameters */
        if ((rc = mix1(a, c, &mx, a->stats, a->statsnew, a->nstats, err)))
            return rc;
        swap(&a->stats, &a->statsnew);
        *bytes += mix_bytes(a, &mx, 1, a->nstats);
    }
    a->steps++;
    return EG_OK;
}

int eg_algo_step(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes, eg_err *err)
{
#pragma omp parallel for schedule(static)
    for (int li = 0; li < a->nlocal; li++)
        eg_algo_node_update(a, li, 0, lr);
    int rc = eg_algo_exchange(a, c, W, lr, bytes, err);
    eg_algo_sync(a);
    return rc;
}
