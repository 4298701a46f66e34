/* algo.c - psgd, dsgd, dmsgd, qg_dmsgd, gt, ed (SPEC.md section 4). */
#include "algo.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"psgd", "dsgd", "dmsgd", "qg_dmsgd", "gt", "ed", "gossip"};

int eg_algo_gossip_vectors(eg_algo_kind k) { return k == EG_ALGO_GT ? 2 : 1; }

int eg_algo_init(eg_algo *a, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                 int max_nnz, eg_err *err)
{
    memset(a, 0, sizeof *a);
    int k = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(s->name, kind_names[i]))
            k = i;
    if (k < 0)
        return eg_err_set(err, EG_EINPUT, "unknown algorithm '%s'", s->name);
    a->kind = (eg_algo_kind)k;
    a->beta = s->momentum;
    a->wd = s->weight_decay;
    a->nesterov = s->nesterov;
    a->nodes = nodes;
    a->nlocal = nlocal;
    a->dim = dim;
    size_t blk = (size_t)nlocal * dim;
    a->x = eg_alloc_floats(blk, err);
    a->g = eg_alloc_floats(blk, err);
    a->z = eg_alloc_floats(blk, err);
    a->xnew = eg_alloc_floats(blk, err);
    if (!a->x || !a->g || !a->z || !a->xnew)
        return EG_ERUN;
    switch (a->kind) {
    case EG_ALGO_PSGD:
        a->gsum = eg_alloc_floats(dim, err);
        if (!a->gsum)
            return EG_ERUN;
        /* fall through */
    case EG_ALGO_DMSGD:
    case EG_ALGO_QG_DMSGD:
        a->m = eg_alloc_floats(blk, err);
        if (!a->m)
            return EG_ERUN;
        break;
    case EG_ALGO_GT:
        a->y = eg_alloc_floats(blk, err);
        a->gprev = eg_alloc_floats(blk, err);
        if (!a->y || !a->gprev)
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
    free(a->gsum);
    free(a->wbar.rowptr);
    free(a->wbar.col);
    free(a->wbar.val);
    memset(a, 0, sizeof *a);
}

int eg_algo_state(eg_algo *a, float **vecs, const char **names, int max)
{
    int n = 0;
#define ADD(p, nm)                         \
    if ((p) && n < max) {                 \
        vecs[n] = (p);                    \
        names[n++] = (nm);                \
    }
    ADD(a->x, "x");
    ADD(a->m, "m");
    ADD(a->y, "y");
    ADD(a->gprev, "gprev");
    ADD(a->psi, "psi");
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
 * the vector to send. Reads and writes only node li's vectors. */
void eg_algo_node_update(eg_algo *a, int li, double lr_d)
{
    const size_t d = a->dim, off = (size_t)li * d;
    const float lr = (float)lr_d, beta = (float)a->beta, wd = (float)a->wd;
    float *restrict x = a->x + off, *restrict g = a->g + off, *restrict z = a->z + off;
    const int first = a->steps == 0;
    switch (a->kind) {
    case EG_ALGO_PSGD:
        if (wd != 0.0f)
            for (size_t t = 0; t < d; t++)
                g[t] += wd * x[t];
        break;
    case EG_ALGO_DSGD:
        for (size_t t = 0; t < d; t++)
            z[t] = x[t] - lr * (g[t] + wd * x[t]);
        break;
    case EG_ALGO_DMSGD: {
        float *restrict m = a->m + off;
        if (a->nesterov) {
            for (size_t t = 0; t < d; t++) {
                float gt = g[t] + wd * x[t];
                float mt = beta * m[t] + gt;
                m[t] = mt;
                z[t] = x[t] - lr * (gt + beta * mt);
            }
        } else {
            for (size_t t = 0; t < d; t++) {
                float mt = beta * m[t] + (g[t] + wd * x[t]);
                m[t] = mt;
                z[t] = x[t] - lr * mt;
            }
        }
        break;
    }
    case EG_ALGO_QG_DMSGD: {
        const float *restrict m = a->m + off;
        for (size_t t = 0; t < d; t++)
            z[t] = x[t] - lr * ((g[t] + wd * x[t]) + beta * m[t]);
        break;
    }
    case EG_ALGO_GT: {
        /* y_k = g_k at k = 0, else (W y_{k-1}) + g_k - g_{k-1} */
        float *restrict y = a->y + off, *restrict gp = a->gprev + off;
        for (size_t t = 0; t < d; t++) {
            float gt = g[t] + wd * x[t];
            float yt = first ? gt : y[t] + gt - gp[t];
            gp[t] = gt;
            y[t] = yt;
            z[t] = x[t] - lr * yt;
        }
        break;
    }
    case EG_ALGO_ED: {
        /* psi = x - lr g; phi = psi + x - psi_prev (phi = psi at the start) */
        float *restrict psi = a->psi + off;
        for (size_t t = 0; t < d; t++) {
            float p = x[t] - lr * (g[t] + wd * x[t]);
            z[t] = first ? p : p + x[t] - psi[t];
            psi[t] = p;
        }
        break;
    }
    case EG_ALGO_GOSSIP:
        break;
    }
}

int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr_d, double *bytes,
                     eg_err *err)
{
    const size_t blk = (size_t)a->nlocal * a->dim;
    const float lr = (float)lr_d, beta = (float)a->beta;
    float *restrict x = a->x, *restrict g = a->g, *restrict z = a->z;
    int rc = EG_OK;
    switch (a->kind) {
    case EG_ALGO_PSGD: {
        /* g = (1/n) sum_i g_i: local nodes in order, then an all-reduce over ranks */
        float *restrict gs = a->gsum;
        if (a->nlocal == 0)
            memset(gs, 0, a->dim * sizeof(float));
        else
            memcpy(gs, g, a->dim * sizeof(float));
        for (int i = 1; i < a->nlocal; i++) {
            const float *gi = g + (size_t)i * a->dim;
#pragma omp parallel for schedule(static)
            for (size_t t = 0; t < a->dim; t++)
                gs[t] += gi[t];
        }
        if ((rc = eg_comm_allreduce_floats(c, gs, a->dim, err)))
            return rc;
        const float inv = 1.0f / (float)a->nodes;
        float *restrict m = a->m;
        /* every local copy is identical; update each */
        for (int i = 0; i < a->nlocal; i++) {
            float *xi = x + (size_t)i * a->dim, *mi = m + (size_t)i * a->dim;
#pragma omp parallel for schedule(static)
            for (size_t t = 0; t < a->dim; t++) {
                float gt = gs[t] * inv;
                float mt = beta * mi[t] + gt;
                mi[t] = mt;
                xi[t] -= lr * (a->nesterov ? gt + beta * mt : mt);
            }
        }
        /* ring all-reduce: each node sends 2 (n-1)/n of the vector */
        *bytes += 2.0 * (a->nodes - 1) * (double)a->dim * sizeof(float);
        break;
    }
    case EG_ALGO_DSGD:
    case EG_ALGO_DMSGD:
    case EG_ALGO_GOSSIP:
        if ((rc = eg_comm_gossip(c, W, a->kind == EG_ALGO_GOSSIP ? x : z, a->xnew, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        *bytes += eg_comm_gossip_bytes(W, 1, a->dim);
        break;
    case EG_ALGO_QG_DMSGD: {
        /* x+ = W z; d = (x - x+) / lr; m <- beta m + (1 - beta) d */
        if ((rc = eg_comm_gossip(c, W, z, a->xnew, a->dim, err)))
            return rc;
        float *restrict xn = a->xnew, *restrict m = a->m;
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
        /* x <- W z and y <- W y in one exchange; W y lands in g (free now) */
        const float *in[2] = {z, a->y};
        float *out[2] = {a->xnew, g};
        if ((rc = eg_comm_gossip_multi(c, W, 2, in, out, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        swap(&a->y, &a->g);
        *bytes += eg_comm_gossip_bytes(W, 2, a->dim);
        break;
    }
    case EG_ALGO_ED:
        make_wbar(a, W);
        if ((rc = eg_comm_gossip(c, &a->wbar, z, a->xnew, a->dim, err)))
            return rc;
        swap(&a->x, &a->xnew);
        *bytes += eg_comm_gossip_bytes(&a->wbar, 1, a->dim);
        break;
    }
    a->steps++;
    return EG_OK;
}

int eg_algo_step(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes, eg_err *err)
{
#pragma omp parallel for schedule(static)
    for (int li = 0; li < a->nlocal; li++)
        eg_algo_node_update(a, li, lr);
    return eg_algo_exchange(a, c, W, lr, bytes, err);
}
