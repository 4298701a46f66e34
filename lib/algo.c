/* algo.c - psgd, dsgd, dmsgd, qg_dmsgd, gt, ed (SPEC.md section 4). */
#include "algo.h"

#include <stdlib.h>
#include <string.h>

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
};

int eg_algo_gossip_vectors(eg_algo_kind k) { return eg_algo_kinds[k].vectors; }

static int algo_alloc(eg_algo *a, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                      int max_nnz, int grad_slots, eg_err *err)
{
    if ((int)s->kind < 0 || s->kind > EG_ALGO_GOSSIP)
        return eg_err_set(err, EG_EINPUT, "unknown algorithm kind %d", (int)s->kind);
    a->kind = s->kind;
    a->beta = s->momentum;
    a->wd = s->weight_decay;
    a->nesterov = s->nesterov;
    a->nodes = nodes;
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
    return EG_OK;
}

int eg_algo_set_stats(eg_algo *a, size_t nstats, int gossip, eg_err *err)
{
    a->nstats = nstats;
    a->stats_gossip = gossip && a->kind != EG_ALGO_PSGD;
    if (!nstats)
        return EG_OK;
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
void eg_algo_set_steps(eg_algo *a, long steps) { a->steps = steps; }
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
    float lr, beta, wd;
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

/* the per-node kernel of each method (gossip: none, it uses no gradient) */
static void (*const node_kernels[])(const node_args *) = {
    [EG_ALGO_PSGD] = update_psgd, [EG_ALGO_DSGD] = update_dsgd, [EG_ALGO_DMSGD] = update_dmsgd,
    [EG_ALGO_QG_DMSGD] = update_qg_dmsgd, [EG_ALGO_GT] = update_gt, [EG_ALGO_ED] = update_ed,
    [EG_ALGO_GOSSIP] = NULL,
};

void eg_algo_node_update(eg_algo *a, int li, int slot, double lr)
{
    if (!node_kernels[a->kind])
        return;
    const size_t off = (size_t)li * a->dim;
    node_args n = {.x = eg_algo_node_x(a, li), .g = eg_algo_grad(a, li, slot), .d = a->dim,
                   .lr = (float)lr, .beta = (float)a->beta, .wd = (float)a->wd,
                   .first = a->steps == 0, .nesterov = a->nesterov};
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

int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr_d, double *bytes,
                     eg_err *err)
{
    const size_t blk = (size_t)a->nlocal * a->dim, dim = a->dim;
    const float lr = (float)lr_d, beta = (float)a->beta;
    int rc = EG_OK;
    switch (a->kind) {
    case EG_ALGO_PSGD: {
        /* g = (1/n) sum_i g_i: local nodes in order (per element, so the sum does not
         * depend on threads), then an all-reduce over ranks */
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
        if ((rc = eg_comm_allreduce_floats(c, gs, dim, err)))
            return rc;
        /* the one shared model (node 0's copy; eg_algo_sync copies it to the others) */
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
        break;
    }
    case EG_ALGO_DSGD:
    case EG_ALGO_DMSGD:
    case EG_ALGO_GOSSIP:
        /* x holds the vectors to send (updated in place by eg_algo_node_update) */
        if ((rc = eg_comm_gossip(c, W, a->x, a->xnew, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        *bytes += eg_comm_gossip_bytes(W, 1, a->dim);
        break;
    case EG_ALGO_QG_DMSGD: {
        /* x+ = W z; d = (x - x+) / lr; m <- beta m + (1 - beta) d */
        if ((rc = eg_comm_gossip(c, W, a->z, a->xnew, a->dim, err)))
            return rc;
        float *restrict x = a->x, *restrict xn = a->xnew, *restrict m = a->m;
        const float inv = 1.0f / lr;
#pragma omp parallel for schedule(static)
        for (size_t t = 0; t < blk; t++) {
            float d = (x[t] - xn[t]) * inv;
            m[t] = beta * m[t] + (1.0f - beta) * d;
        }
        swap(&a->x, &a->xnew);
        *bytes += eg_comm_gossip_bytes(W, 1, a->dim);
        break;
    }
    case EG_ALGO_GT: {
        /* x <- W (x - lr y) (in x now) and y <- W y in one exchange */
        const float *in[2] = {a->x, a->y};
        float *out[2] = {a->xnew, a->ynew};
        if ((rc = eg_comm_gossip_multi(c, W, 2, in, out, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        swap(&a->y, &a->ynew);
        *bytes += eg_comm_gossip_bytes(W, 2, a->dim);
        break;
    }
    case EG_ALGO_ED:
        make_wbar(a, W);
        if ((rc = eg_comm_gossip(c, &a->wbar, a->x, a->xnew, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        *bytes += eg_comm_gossip_bytes(&a->wbar, 1, a->dim);
        break;
    }
    if (a->stats_gossip && a->nstats > 0) {
        /* running statistics: mixed with the same W(k) as the parameters */
        if ((rc = eg_comm_gossip(c, W, a->stats, a->statsnew, a->nstats, err)))
            return rc;
        swap(&a->stats, &a->statsnew);
        *bytes += eg_comm_gossip_bytes(W, 1, a->nstats);
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
