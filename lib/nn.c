/* nn.c - oneDNN plans for the op lists of nn.h: one build function per op kind (the table
 * `builders`), each appending the op's forward steps and, in training plans, its backward
 * steps; a step is one primitive execution (or a running-statistics update). */
#define _POSIX_C_SOURCE 200809L
#include "nn.h"

#include <oneapi/dnnl/dnnl_debug.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define NN_EPS 1e-5f     /* batch / group norm epsilon, as PyTorch */
#define NN_MOMENTUM 0.1f /* running statistics, as PyTorch */
#define NN_MAX_ARGS 12

enum { BIND_PARAMS, BIND_GRAD, BIND_STATS, BIND_X, BIND_N };
enum { PH_CONV = EG_PROF_CONV_GEMM, PH_REORDER = EG_PROF_IM2COL, PH_POOL = EG_PROF_POOL,
       PH_DENSE = EG_PROF_DENSE_GEMM, PH_ELEM = EG_PROF_ELEMWISE };

typedef struct nn_step {
    dnnl_primitive_t p; /* NULL: running-statistics update (the fields below) */
    int narg;
    dnnl_exec_arg_t arg[NN_MAX_ARGS];
    dnnl_memory_t scratch; /* NULL when the primitive needs none */
    int phase;
    double flops;
    const float *bmean, *bvar; /* batch statistics of a batch norm (plan buffers) */
    size_t s_off;
    int c;
    float unbias; /* n / (n - 1), n = values per channel */
    int sk;       /* 0: the above; else a micro-batch batch-norm step (SK_*) on bns[bn], or
                     one of expgraph's own kernels (SK_POOLF and after) on arg[] */
    int bn;
    int shape[4]; /* own kernels: the input's B, H, W, C */
    int relu;     /* own kernels: a ReLU fused after the op (SK_BNF / SK_BNB: bn_mode's mode) */
    int k, pad;   /* SK_CPF / SK_CPB: the convolution's kernel size and padding */
    int bias;     /* SK_CPF / SK_CPB / SK_DENSEF: the op has a bias (its argument is there) */
    int sub[3];   /* SK_BNF in mode 2 / SK_BNB with a pending gradient, when the residual is a
                     stride-2 shortcut: the other tensor's H, W, C (see bn_dims); else 0 */
    int bf16;     /* own kernels: bf16 activations */
    double prof_sec; /* with the work's profile on: time in this step, and its runs */
    long prof_n;
} nn_step;

/* Batch norm in a micro-batch plan (eg_work.split): statistics over the whole node batch,
 * from per-micro-batch sums that nn_split_reduce adds in micro-batch order. Forward: SK_FSUM
 * (sums of x and x^2) ends a segment, SK_FAPPLY (y = x a + b, ReLU) begins the next; backward:
 * SK_BSUM (sums of dy and dy x_hat) ends a segment, SK_BAPPLY (dx) begins the next. NHWC rows
 * of C values, f32 or bf16. */
enum { SK_FSUM = 1, SK_FAPPLY, SK_BSUM, SK_BAPPLY, SK_POOLF, SK_POOLB, SK_CPF, SK_CPB, SK_BNF,
       SK_BNB, SK_DENSEF, SK_C3F, SK_C3B };

typedef struct nn_bnsplit {
    dnnl_memory_t src, dst, dsrc, ddst, scale, shift, dscale, dshift;
    int C, rows, relu, bf16;
    size_t s_off;
    double *s1, *s2;          /* this micro-batch's sums (forward, then backward) */
    float *a, *b, *mean, *rstd; /* whole batch: y = x a + b, a = scale rstd */
    float *k1, *k2;           /* whole batch: mean of dy and of dy x_hat */
    float *row;               /* 3 rows of C floats */
} nn_bnsplit;

typedef struct nn_bind {
    dnnl_memory_t m;
    int base;
    size_t off; /* floats */
} nn_bind;

struct nn_plan {
    int batch, train;
    unsigned long used;
    nn_step *fw, *bw;
    int nfw, nbw, cap_steps;
    int *bw_start; /* op i's backward steps: bw[bw_start[i] .. bw_start[i+1]) */
    nn_step pre_bw; /* f32 loss gradient -> bf16 logits gradient (p == NULL: none) */
    nn_bind *bind;
    int nbind;
    dnnl_memory_t *mem;
    int nmem;
    dnnl_primitive_t *prim;
    int nprim;
    void **buf;
    int nbuf, cap_obj;
    dnnl_memory_t *act, *dif; /* per tensor */
    float *logits, *dlogits;
    size_t scratch;
    /* micro-batch plans only: batch norms, forward segments fw[fseg[i] .. fseg[i + 1]), and
     * the backward in execution order, bwo[bseg[i] .. bseg[i + 1]) */
    nn_bnsplit *bns;
    int nbn;
    int *fseg, nfseg, *bseg, nbseg;
    nn_step *bwo;
};

/* ---- the net ----------------------------------------------------------------------- */

int nn_net_tensor(nn_net *n, int c, int h, int w, int flat, int nchw)
{
    if (n->nt == n->capt) {
        int cap = n->capt ? 2 * n->capt : 16;
        nn_tensor *t = realloc(n->t, (size_t)cap * sizeof *t);
        if (!t)
            return -1;
        n->t = t;
        n->capt = cap;
    }
    n->t[n->nt] = (nn_tensor){c, h, w, flat, nchw};
    return n->nt++;
}

int nn_net_op(nn_net *n, const nn_op *op)
{
    if (n->nop == n->capop) {
        int cap = n->capop ? 2 * n->capop : 16;
        nn_op *o = realloc(n->op, (size_t)cap * sizeof *o);
        if (!o)
            return -1;
        n->op = o;
        n->capop = cap;
    }
    n->op[n->nop] = *op;
    return n->nop++;
}

int nn_net_finish(nn_net *n, eg_err *err)
{
    dnnl_status_t st = dnnl_engine_create(&n->eng, dnnl_cpu, 0);
    if (st != dnnl_success) {
        n->eng = NULL;
        return eg_err_set(err, EG_ERUN, "model: oneDNN has no CPU engine (%s)",
                          dnnl_status2str(st));
    }
    return EG_OK;
}

void nn_net_free(nn_net *n)
{
    if (!n)
        return;
    if (n->eng)
        dnnl_engine_destroy(n->eng);
    free(n->t);
    free(n->op);
    memset(n, 0, sizeof *n);
}

/* ---- threads ------------------------------------------------------------------------- */

void nn_enter(eg_work *w)
{
    w->saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
}

void nn_leave(eg_work *w) { omp_set_num_threads(w->saved_threads); }

/* ---- plan bookkeeping ---------------------------------------------------------------- */

#define DN(call)                                                                            \
    do {                                                                                    \
        dnnl_status_t st_ = (call);                                                         \
        if (st_ != dnnl_success)                                                            \
            return eg_err_set(err, EG_ERUN, "model: oneDNN %s (nn.c:%d): %s", __func__,    \
                              __LINE__, dnnl_status2str(st_));                              \
    } while (0)

static void plan_free(nn_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nprim; i++)
        dnnl_primitive_destroy(p->prim[i]);
    for (int i = 0; i < p->nmem; i++)
        dnnl_memory_destroy(p->mem[i]);
    for (int i = 0; i < p->nbuf; i++)
        free(p->buf[i]);
    free(p->fw);
    free(p->bw);
    free(p->bw_start);
    free(p->bind);
    free(p->mem);
    free(p->prim);
    free(p->buf);
    free(p->act);
    free(p->dif);
    free(p->bns);
    free(p->fseg);
    free(p->bseg);
    free(p->bwo);
    free(p);
}

/* a 64-byte aligned buffer owned by the plan, zeroed (raw: not written, so its pages need no
 * memory until used) */
static void *plan_alloc_raw(nn_plan *p, size_t bytes)
{
    if (p->nbuf == p->cap_obj)
        return NULL;
    void *b = NULL;
    if (posix_memalign(&b, 64, bytes ? bytes : 64))
        return NULL;
    p->buf[p->nbuf++] = b;
    return b;
}

static void *plan_alloc(nn_plan *p, size_t bytes)
{
    void *b = plan_alloc_raw(p, bytes);
    if (b)
        memset(b, 0, bytes);
    return b;
}

/* A memory object owned by the plan: on `handle`, or on a fresh buffer when handle is
 * DNNL_MEMORY_ALLOCATE, or bound on every call to base + off floats when base >= 0. */
static int mem_new(nn_plan *p, const nn_net *n, const dnnl_memory_desc_t *md, void *handle,
                   int base, size_t off, dnnl_memory_t *out, eg_err *err)
{
    if (p->nmem == p->cap_obj || p->nbind == p->cap_obj)
        return eg_err_set(err, EG_ERUN, "model: plan too large");
    if (handle == DNNL_MEMORY_ALLOCATE &&
        !(handle = plan_alloc(p, dnnl_memory_desc_get_size(md))))
        return eg_err_set(err, EG_ERUN, "out of memory (model buffers)");
    DN(dnnl_memory_create(out, md, n->eng, base >= 0 ? DNNL_MEMORY_NONE : handle));
    p->mem[p->nmem++] = *out;
    if (base >= 0)
        p->bind[p->nbind++] = (nn_bind){*out, base, off};
    return EG_OK;
}

static void *mem_ptr(dnnl_memory_t m)
{
    void *h = NULL;
    dnnl_memory_get_data_handle(m, &h);
    return h;
}

static int pd_make(dnnl_primitive_desc_t *pd, const void *desc, const eg_work *w,
                   const_dnnl_primitive_desc_t hint, eg_err *err)
{
    DN(dnnl_primitive_desc_create(pd, desc, w->attr, w->net->eng, hint));
    return EG_OK;
}

/* step lists: forward, backward, and the one step run before the backward (the f32 loss
 * gradient converted to bf16) */
enum { LIST_FW, LIST_BW, LIST_PRE };

/* Appends a step to `list` running the primitive of pd. */
static int step_new(nn_plan *p, const nn_net *n, const_dnnl_primitive_desc_t pd, int list,
                    int phase, double flops, nn_step **out, eg_err *err)
{
    int *cnt = list == LIST_BW ? &p->nbw : &p->nfw;
    if ((list != LIST_PRE && *cnt == p->cap_steps) || p->nprim == p->cap_obj)
        return eg_err_set(err, EG_ERUN, "model: plan too large");
    nn_step *s = list == LIST_PRE ? &p->pre_bw : (list == LIST_BW ? p->bw : p->fw) + (*cnt)++;
    memset(s, 0, sizeof *s);
    DN(dnnl_primitive_create(&s->p, pd));
    p->prim[p->nprim++] = s->p;
    s->phase = phase;
    s->flops = flops;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sz) {
        int rc = mem_new(p, n, smd, DNNL_MEMORY_NONE, -1, 0, &s->scratch, err);
        if (rc)
            return rc;
        if (sz > p->scratch)
            p->scratch = sz;
    }
    *out = s;
    return EG_OK;
}

static void arg(nn_step *s, int a, dnnl_memory_t m)
{
    s->arg[s->narg].arg = a;
    s->arg[s->narg++].memory = m;
}

/* Appends a reorder step src -> dst (both memory objects of the plan) to `list`. */
static int reorder_new(nn_plan *p, const eg_work *w, dnnl_memory_t src, dnnl_memory_t dst,
                       int list, eg_err *err)
{
    const dnnl_memory_desc_t *smd, *dmd;
    dnnl_memory_get_memory_desc(src, &smd);
    dnnl_memory_get_memory_desc(dst, &dmd);
    dnnl_primitive_desc_t pd;
    DN(dnnl_reorder_primitive_desc_create(&pd, smd, w->net->eng, dmd, w->net->eng, w->attr));
    nn_step *s;
    int rc = step_new(p, w->net, pd, list, PH_REORDER, 0, &s, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc)
        return rc;
    arg(s, DNNL_ARG_FROM, src);
    arg(s, DNNL_ARG_TO, dst);
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    return EG_OK;
}

/* ---- memory descriptors -------------------------------------------------------------- */

static dnnl_data_type_t act_dt(const nn_net *n)
{
    return n->prec == EG_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
}

static dnnl_memory_desc_t md_tag(int nd, dnnl_dim_t d0, dnnl_dim_t d1, dnnl_dim_t d2,
                                 dnnl_dim_t d3, dnnl_data_type_t dt, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t d = {d0, d1, d2, d3};
    dnnl_memory_desc_init_by_tag(&md, nd, d, dt, tag);
    return md;
}

/* tensor t of B samples in data type dt, in the activation layout */
static dnnl_memory_desc_t md_tensor(const nn_net *n, int t, int B, dnnl_data_type_t dt)
{
    const nn_tensor *T = &n->t[t];
    if (T->flat)
        return md_tag(2, B, (dnnl_dim_t)T->c * T->h * T->w, 0, 0, dt, dnnl_nc);
    return md_tag(4, B, T->c, T->h, T->w, dt, T->nchw ? dnnl_nchw : dnnl_nhwc);
}

/* a C-vector of floats */
static dnnl_memory_desc_t md_vec(int c) { return md_tag(1, c, 0, 0, 0, dnnl_f32, dnnl_x); }

/* the view x[:, :c] of tensor t's buffer (its first c channels) */
static dnnl_memory_desc_t md_view(const nn_net *n, int t, int B, int c)
{
    const nn_tensor *T = &n->t[t];
    dnnl_memory_desc_t md;
    dnnl_dim_t hw = (dnnl_dim_t)T->h * T->w, chw = hw * T->c;
    dnnl_dims_t d = {B, c, T->h, T->w}, nchw = {chw, hw, T->w, 1},
                nhwc = {chw, 1, (dnnl_dim_t)T->w * T->c, T->c};
    dnnl_memory_desc_init_by_strides(&md, 4, d, act_dt(n), T->nchw ? nchw : nhwc);
    return md;
}

/* ---- op builders --------------------------------------------------------------------- */

typedef struct bctx {
    eg_work *w;
    nn_plan *p;
    const nn_net *n;
    const nn_op *op;
    int B, train;
    dnnl_prop_kind_t fprop;
    dnnl_format_tag_t wtag; /* weights format asked of conv / dense primitives */
    int blk;                /* conv forward: input and output in nChw16c (conv_blocked) */
} bctx;

/* weights of a conv / dense op as stored in the flat vector */
static dnnl_memory_desc_t md_wuser(const bctx *b)
{
    const nn_tensor *ti = &b->n->t[b->op->in], *to = &b->n->t[b->op->out];
    int out = to->c * to->h * to->w;
    if (b->op->kind == NN_CONV)
        return md_tag(4, to->c, ti->c, b->op->k, b->op->k, dnnl_f32, dnnl_oihw);
    if (ti->flat)
        return md_tag(2, out, (dnnl_dim_t)ti->c * ti->h * ti->w, 0, 0, dnnl_f32, dnnl_oi);
    return md_tag(4, out, ti->c, ti->h, ti->w, dnnl_f32, dnnl_oihw);
}

/* which: 0 forward, 1 backward data, 2 backward weights (dw: diff weights descriptor) */
static dnnl_status_t wop_desc(const bctx *b, int which, void *d, const dnnl_memory_desc_t *dw)
{
    const nn_op *op = b->op;
    dnnl_data_type_t dt = act_dt(b->n);
    int logits = op->out == b->n->op[b->n->nop - 1].out; /* f32 forward output */
    dnnl_memory_desc_t src = md_tensor(b->n, op->in, b->B, dt);
    dnnl_memory_desc_t dst = md_tensor(b->n, op->out, b->B, which == 0 && logits ? dnnl_f32 : dt);
    dnnl_memory_desc_t wany, bias = md_vec((int)op->nb), wu = md_wuser(b);
    dnnl_memory_desc_init_by_tag(&wany, wu.ndims, wu.dims, dt, b->wtag);
    const dnnl_memory_desc_t *pb = op->nb ? &bias : NULL;
    if (op->kind == NN_DENSE) {
        if (which == 0)
            return dnnl_inner_product_forward_desc_init(d, b->fprop, &src, &wany, pb, &dst);
        if (which == 1)
            return dnnl_inner_product_backward_data_desc_init(d, &src, &wany, &dst);
        return dnnl_inner_product_backward_weights_desc_init(d, &src, dw, pb, &dst);
    }
    dnnl_dims_t st = {op->stride, op->stride}, pad = {op->pad, op->pad};
    if (which == 0 && b->blk) { /* the same bytes (conv_blocked) */
        dnnl_memory_desc_init_by_tag(&src, 4, src.dims, dt,
                                     b->n->t[op->in].c == 1 ? dnnl_nchw : dnnl_nChw16c);
        dnnl_memory_desc_init_by_tag(&dst, 4, dst.dims, dt, dnnl_nChw16c);
    }
    if (which == 0)
        return dnnl_convolution_forward_desc_init(d, b->fprop, dnnl_convolution_direct, &src,
                                                  &wany, pb, &dst, st, pad, pad);
    if (which == 1)
        return dnnl_convolution_backward_data_desc_init(d, dnnl_convolution_direct, &src, &wany,
                                                        &dst, st, pad, pad);
    return dnnl_convolution_backward_weights_desc_init(d, dnnl_convolution_direct, &src, dw, pb,
                                                       &dst, st, pad, pad);
}

/* the memory holding the weights in the format pd wants: the user's (bound to the flat
 * vector) when equal, `have` when that one already has it, else a new buffer filled by a
 * reorder step */
static int weights_for(bctx *b, const dnnl_memory_desc_t *want, dnnl_memory_t user,
                       dnnl_memory_t have, int bwd, dnnl_memory_t *out, eg_err *err)
{
    const dnnl_memory_desc_t *umd, *hmd;
    dnnl_memory_get_memory_desc(user, &umd);
    if (dnnl_memory_desc_equal(want, umd)) {
        *out = user;
        return EG_OK;
    }
    if (have) {
        dnnl_memory_get_memory_desc(have, &hmd);
        if (dnnl_memory_desc_equal(want, hmd)) {
            *out = have;
            return EG_OK;
        }
    }
    int rc = mem_new(b->p, b->n, want, DNNL_MEMORY_ALLOCATE, -1, 0, out, err);
    return rc ? rc : reorder_new(b->p, b->w, user, *out, bwd, err);
}

static int pd_from(bctx *b, int which, const dnnl_memory_desc_t *dw,
                   const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd, eg_err *err)
{
    union {
        dnnl_convolution_desc_t c;
        dnnl_inner_product_desc_t i;
    } d;
    DN(wop_desc(b, which, &d, dw));
    return pd_make(pd, &d, b->w, hint, err);
}

/* The weights format of a conv / dense op: dense first tries the flat vector's own layout
 * ([out][in], or [out][c][h][w] when the input is NCHW), which needs no reorder of the
 * (large) dense weights and gradient; convolutions (and dense layers whose primitive rejects
 * that) let oneDNN choose, and their weights are reordered on every call. */
static void wtag_choose(bctx *b)
{
    b->wtag = dnnl_format_tag_any;
    if (b->op->kind != NN_DENSE)
        return;
    dnnl_memory_desc_t wu = md_wuser(b);
    dnnl_primitive_desc_t pd;
    eg_err e = {0};
    b->wtag = wu.ndims == 2 ? dnnl_oi : dnnl_oihw;
    if (pd_from(b, 0, NULL, NULL, &pd, &e)) {
        b->wtag = dnnl_format_tag_any;
        return;
    }
    const char *impl = "ref";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    if (strstr(impl, "ref")) /* only the reference kernel takes it: let oneDNN choose */
        b->wtag = dnnl_format_tag_any;
    dnnl_primitive_desc_destroy(pd);
}

/* backward weights: f32 weight gradients where oneDNN allows, else in the compute type and
 * reordered */
static int wop_backward_weights(bctx *b, const_dnnl_primitive_desc_t fpd, eg_err *err)
{
    const nn_op *op = b->op;
    dnnl_memory_desc_t wu = md_wuser(b), dw;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_init_by_tag(&dw, wu.ndims, wu.dims, dnnl_f32, b->wtag);
    int rc = pd_from(b, 2, &dw, fpd, &pd, err);
    if (rc && b->wtag != dnnl_format_tag_any) {
        dnnl_memory_desc_init_by_tag(&dw, wu.ndims, wu.dims, dnnl_f32, dnnl_format_tag_any);
        rc = pd_from(b, 2, &dw, fpd, &pd, err);
    }
    if (rc && b->n->prec == EG_PREC_BF16) {
        dnnl_memory_desc_init_by_tag(&dw, wu.ndims, wu.dims, dnnl_bf16, dnnl_format_tag_any);
        rc = pd_from(b, 2, &dw, fpd, &pd, err);
    }
    if (rc)
        return rc;
    const dnnl_memory_desc_t *dwm = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    dnnl_memory_t gu, gm, gb = NULL;
    nn_step *s;
    double fl = 2.0 * b->B * op->macs;
    int ph = op->kind == NN_CONV ? PH_CONV : PH_DENSE;
    if ((rc = mem_new(b->p, b->n, &wu, NULL, BIND_GRAD, op->w_off, &gu, err)))
        goto out;
    if (dnnl_memory_desc_equal(dwm, &wu))
        gm = gu;
    else if ((rc = mem_new(b->p, b->n, dwm, DNNL_MEMORY_ALLOCATE, -1, 0, &gm, err)))
        goto out;
    if (op->nb) {
        dnnl_memory_desc_t bmd = md_vec((int)op->nb);
        if ((rc = mem_new(b->p, b->n, &bmd, NULL, BIND_GRAD, op->b_off, &gb, err)))
            goto out;
    }
    if ((rc = step_new(b->p, b->n, pd, LIST_BW, ph, fl, &s, err)))
        goto out;
    arg(s, DNNL_ARG_SRC, b->p->act[op->in]);
    arg(s, DNNL_ARG_DIFF_DST, b->p->dif[op->out]);
    arg(s, DNNL_ARG_DIFF_WEIGHTS, gm);
    if (gb)
        arg(s, DNNL_ARG_DIFF_BIAS, gb);
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    if (gm != gu)
        rc = reorder_new(b->p, b->w, gm, gu, LIST_BW, err);
out:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int add_views(bctx *b, dnnl_memory_t dbuf, const dnnl_memory_desc_t *dmd,
                     dnnl_memory_t sbuf, const dnnl_memory_desc_t *smd, int bwd, eg_err *err);

/* backward data into the input's gradient; with op->acc into a buffer of its own, then
 * added to the input's gradient */
static int c3b_own(const bctx *b, const_dnnl_primitive_desc_t pd);
static int build_c3b(bctx *b, dnnl_memory_t wu, dnnl_memory_t dsrc, eg_err *err);

static int wop_backward_data(bctx *b, const_dnnl_primitive_desc_t fpd, dnnl_memory_t wu,
                             dnnl_memory_t wf, eg_err *err)
{
    const nn_op *op = b->op;
    dnnl_primitive_desc_t pd = NULL;
    int rc = pd_from(b, 1, NULL, fpd, &pd, err);
    if (rc)
        return rc;
    dnnl_memory_t wd, dsrc = b->p->dif[op->in];
    const dnnl_memory_desc_t *dmd;
    dnnl_memory_get_memory_desc(dsrc, &dmd);
    nn_step *s;
    const int own = c3b_own(b, pd);
    if ((rc = op->acc ? mem_new(b->p, b->n, dmd, DNNL_MEMORY_ALLOCATE, -1, 0, &dsrc, err)
                      : EG_OK))
        goto out;
    if (own)
        rc = build_c3b(b, wu, dsrc, err);
    else if (!(rc = weights_for(b, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                wu, wf, 1, &wd, err)) &&
             !(rc = step_new(b->p, b->n, pd, LIST_BW, op->kind == NN_CONV ? PH_CONV : PH_DENSE,
                             2.0 * b->B * op->macs, &s, err))) {
        arg(s, DNNL_ARG_DIFF_DST, b->p->dif[op->out]);
        arg(s, DNNL_ARG_WEIGHTS, wd);
        arg(s, DNNL_ARG_DIFF_SRC, dsrc);
        if (s->scratch)
            arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    }
    if (!rc && op->acc)
        rc = add_views(b, b->p->dif[op->in], dmd, dsrc, dmd, 1, err);
out:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int cp_own(const nn_net *n, int i);
static int build_cp(bctx *b, eg_err *err);

/* Whether a convolution's forward may run in oneDNN's blocked layout nChw16c: f32, NHWC, 16
 * output channels and 16 input channels (or one), where nChw16c (nchw for the one-channel
 * input) is the same bytes as NHWC, and an output at most 32 wide. On AVX-512 oneDNN then
 * runs its jit kernel, which gives the NHWC kernel's (brgconv's) results bit for bit and ran
 * ResNet-20's 16-channel stage on 28x28 ~1.25x faster than brgconv (bench_conv --size W:
 * faster alone at every width from 8 to 28) and CIFAR's 32x32 stage ~6% faster in the model
 * (slower alone with warm caches; bench/README.md). build_wop keeps NHWC unless oneDNN picks
 * that kernel. */
static int conv_blocked(const bctx *b)
{
    const nn_op *op = b->op;
    const nn_tensor *ti = &b->n->t[op->in], *to = &b->n->t[op->out];
    return eg_model_conv_blocked && op->kind == NN_CONV && b->n->prec == EG_PREC_F32 &&
           !ti->flat && !ti->nchw && !to->nchw && (ti->c == 16 || ti->c == 1) && to->c == 16 &&
           to->w <= 32 && op->out != b->n->op[b->n->nop - 1].out;
}

/* the memory m (an activation) seen with descriptor md: m itself when equal, else a memory
 * on the same bytes (the same binding, or the same buffer) */
static int mem_as(bctx *b, dnnl_memory_t m, const dnnl_memory_desc_t *md, dnnl_memory_t *out,
                  eg_err *err)
{
    const dnnl_memory_desc_t *mmd;
    dnnl_memory_get_memory_desc(m, &mmd);
    if (dnnl_memory_desc_equal(md, mmd)) {
        *out = m;
        return EG_OK;
    }
    for (int i = 0; i < b->p->nbind; i++)
        if (b->p->bind[i].m == m)
            return mem_new(b->p, b->n, md, NULL, b->p->bind[i].base, b->p->bind[i].off, out,
                           err);
    return mem_new(b->p, b->n, md, mem_ptr(m), -1, 0, out, err);
}

static int split_step(bctx *b, int list, int sk, int bn, eg_err *err);

/* The forward of an f32 dense layer as y^T = W x^T: dnnl_sgemm with the weights (OC x K, the
 * flat vector's [out][in]) as its first operand, into tmp (OC x B), then y = tmp^T + bias.
 * oneDNN's inner product computes y = x W^T with the same gemm kernels in the other
 * orientation; at a training batch much smaller than the layer's width the swapped call ran
 * 1.6x faster (the Fashion CNN's 1568 -> 128 layer at batch 32: 125 -> 78 us, one thread) and,
 * for that shape, gave the same bits. Whether it does depends on the gemm's blocking for the
 * shape, so dense_swapped runs both once on a test input when it plans the layer and keeps the
 * primitive unless every value is equal, bit for bit (equal summation orders give equal bits
 * on any input; different ones differ on a random one). */
static void dense_swapped_fwd(const float *x, const float *w, const float *bias, float *y,
                              float *tmp, int B, int K, int OC)
{
    dnnl_sgemm('N', 'T', OC, B, K, 1.0f, w, K, x, K, 0.0f, tmp, B);
    for (int m = 0; m < B; m++)
        for (int o = 0; o < OC; o++)
            y[(size_t)m * OC + o] = bias ? tmp[(size_t)o * B + m] + bias[o]
                                         : tmp[(size_t)o * B + m];
}

/* SK_DENSEF args: x, weights, [bias,] y, tmp (the bias with s->bias); shape: B, K, OC */
static void dense_own_run(const nn_step *s)
{
    const int nb = s->bias != 0;
    dense_swapped_fwd(mem_ptr(s->arg[0].memory), mem_ptr(s->arg[1].memory),
                      nb ? mem_ptr(s->arg[2].memory) : NULL, mem_ptr(s->arg[2 + nb].memory),
                      mem_ptr(s->arg[3 + nb].memory), s->shape[0], s->shape[1], s->shape[2]);
}

/* whether md is the plain row-major f32 layout of its dims */
static int md_plain(const dnnl_memory_desc_t *md)
{
    if (md->ndims != 2 && md->ndims != 4)
        return 0;
    dnnl_memory_desc_t want;
    return dnnl_memory_desc_init_by_tag(&want, md->ndims, md->dims, dnnl_f32,
                                        md->ndims == 2 ? dnnl_nc : dnnl_nchw) == dnnl_success &&
           dnnl_memory_desc_equal(&want, md);
}

/* An own kernel's forward on a probe's test input: in[0] the source, in[1] the weights, in[2]
 * the bias (NULL: none), out the destination (dst_md's size), dims what the caller passed */
typedef void (*own_fwd)(float *const in[3], float *out, const int dims[4]);

/* fpd's primitive (a forward, or a backward data: then in[0] is the output's gradient and out
 * the input's) and own(dims) on one test input (in [-1, 1), fixed): 1 when every output value
 * is equal, bit for bit. own gets the weights as fpd has them, or reordered into wmd (not
 * NULL). */
static int probe_same(const bctx *b, const_dnnl_primitive_desc_t fpd, int bias,
                      const dnnl_memory_desc_t *wmd, own_fwd own, const int dims[4])
{
    dnnl_prop_kind_t pk = dnnl_forward_training;
    dnnl_primitive_desc_query(fpd, dnnl_query_prop_kind, 0, &pk);
    const int bd = pk == dnnl_backward_data;
    const int q[] = {bd ? DNNL_ARG_DIFF_DST : DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS,
                     bd ? DNNL_ARG_DIFF_SRC : DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};
    const dnnl_query_t qk[] = {bd ? dnnl_query_diff_dst_md : dnnl_query_src_md,
                               dnnl_query_weights_md, dnnl_query_weights_md,
                               bd ? dnnl_query_diff_src_md : dnnl_query_dst_md,
                               dnnl_query_scratchpad_md};
    dnnl_primitive_t prim = NULL, rp = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_memory_t m[5] = {0}, wown = NULL;
    dnnl_exec_arg_t a[5];
    int na = 0, same = 0;
    float *y = NULL;
    if (dnnl_primitive_create(&prim, fpd) != dnnl_success)
        goto out;
    for (int i = 0; i < 5; i++) {
        if (i == 2 && !bias)
            continue;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(fpd, qk[i], i == 2);
        if (!md || !dnnl_memory_desc_get_size(md))
            continue;
        if (dnnl_memory_create(&m[i], md, b->n->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success)
            goto out;
        a[na++] = (dnnl_exec_arg_t){q[i], m[i]};
        if (i == 3 && !(y = malloc(dnnl_memory_desc_get_size(md))))
            goto out;
        if (i == 3 || i == 4)
            continue;
        float *v = mem_ptr(m[i]);
        eg_rng r;
        eg_rng_seed(&r, 1, EG_STREAM_SYNTH, (uint64_t)i);
        for (size_t j = 0; j < dnnl_memory_desc_get_size(md) / sizeof *v; j++)
            v[j] = (float)(2.0 * eg_rng_uniform(&r) - 1.0);
    }
    if (!m[3] || !m[1])
        goto out;
    if (wmd) { /* the test weights reordered for own */
        const dnnl_memory_desc_t *fw = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0);
        if (dnnl_memory_create(&wown, wmd, b->n->eng, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
            dnnl_reorder_primitive_desc_create(&rpd, fw, b->n->eng, wmd, b->n->eng, NULL) !=
                dnnl_success ||
            dnnl_primitive_create(&rp, rpd) != dnnl_success)
            goto out;
    }
    dnnl_status_t st = dnnl_success;
#pragma omp parallel num_threads(1) shared(st)
    {
        omp_set_num_threads(1); /* as run_steps runs them */
        st = dnnl_primitive_execute(prim, b->w->stream, na, a);
        if (st == dnnl_success && rp)
            st = dnnl_primitive_execute(
                rp, b->w->stream, 2,
                (dnnl_exec_arg_t[2]){{DNNL_ARG_FROM, m[1]}, {DNNL_ARG_TO, wown}});
        if (st == dnnl_success)
            st = dnnl_stream_wait(b->w->stream);
        if (st == dnnl_success) {
            float *in[3] = {mem_ptr(m[0]), mem_ptr(wown ? wown : m[1]),
                            bias ? mem_ptr(m[2]) : NULL};
            own(in, y, dims);
        }
    }
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(fpd, qk[3], 0);
    same = st == dnnl_success && !memcmp(y, mem_ptr(m[3]), dnnl_memory_desc_get_size(dmd));
out:
    for (int i = 0; i < 5; i++)
        if (m[i])
            dnnl_memory_destroy(m[i]);
    if (wown)
        dnnl_memory_destroy(wown);
    if (rp)
        dnnl_primitive_destroy(rp);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (prim)
        dnnl_primitive_destroy(prim);
    free(y);
    return same;
}

/* an own kernel's output where it has none (no memory, no AVX-512): NaNs, which no probe
 * takes for oneDNN's values */
static void no_values(float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NAN;
}

/* dims: B, K, OC */
static void dense_probe_own(float *const in[3], float *out, const int dims[4])
{
    float *tmp = malloc((size_t)dims[0] * dims[2] * sizeof *tmp);
    if (!tmp) {
        no_values(out, (size_t)dims[0] * dims[2]);
        return;
    }
    dense_swapped_fwd(in[0], in[1], in[2], out, tmp, dims[0], dims[1], dims[2]);
    free(tmp);
}

/* Whether the forward of dense op b->op runs as dense_swapped_fwd (see there): f32, its
 * weights in the flat vector's layout (user_w), input and output plain row-major, oneDNN's
 * gemm kernel, a batch at most half the layer's width (faster there: bench/README.md), and
 * the same values on probe_same's input. Sets *K and *OC, the layer's input and output
 * sizes, when it does. */
static int dense_swapped(const bctx *b, const_dnnl_primitive_desc_t fpd, int user_w, int *K,
                         int *OC)
{
    const nn_op *op = b->op;
    if (!eg_model_dense_swapped || op->kind != NN_DENSE || b->n->prec != EG_PREC_F32 ||
        !user_w || b->B < 1)
        return 0;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0),
                             *dmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
    const char *impl = "ref";
    dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl);
    if (!smd || !dmd || !md_plain(smd) || !md_plain(dmd) || dmd->ndims != 2 ||
        !strstr(impl, "gemm"))
        return 0;
    const dnnl_dim_t o = dmd->dims[1], k = (dnnl_dim_t)(op->macs / (double)o);
    if (2 * (dnnl_dim_t)b->B > o || k < 1 || k * o != (dnnl_dim_t)op->macs || k > INT32_MAX ||
        !probe_same(b, fpd, op->nb != 0, NULL, dense_probe_own,
                    (int[4]){b->B, (int)k, (int)o, 0}))
        return 0;
    *K = (int)k, *OC = (int)o;
    return 1;
}

/* Appends a step of expgraph's kernel sk to `list`, phase `phase`, the op's flops, shape sh;
 * with ntmp > 0 also a new buffer of ntmp floats, *tmp, for the caller to pass last */
static int own_step(bctx *b, int list, int sk, int phase, const int sh[4], size_t ntmp,
                    dnnl_memory_t *tmp, nn_step **out, eg_err *err)
{
    int rc;
    if (ntmp) {
        dnnl_memory_desc_t tmd = md_tag(1, (dnnl_dim_t)ntmp, 0, 0, 0, dnnl_f32, dnnl_x);
        if ((rc = mem_new(b->p, b->n, &tmd, DNNL_MEMORY_ALLOCATE, -1, 0, tmp, err)))
            return rc;
    }
    if ((rc = split_step(b, list, sk, 0, err)))
        return rc;
    nn_step *s = list == LIST_BW ? &b->p->bw[b->p->nbw - 1] : &b->p->fw[b->p->nfw - 1];
    s->phase = phase;
    s->flops = 2.0 * b->B * b->op->macs;
    memcpy(s->shape, sh, sizeof s->shape);
    *out = s;
    return EG_OK;
}

/* an own forward step's arguments: x, weights, [bias,] y (the bias with s->bias) */
static void own_fwd_args(nn_step *s, dnnl_memory_t src, dnnl_memory_t w, dnnl_memory_t bias,
                         dnnl_memory_t dst)
{
    s->bias = bias != NULL;
    arg(s, 0, src);
    arg(s, 0, w);
    if (bias)
        arg(s, 0, bias);
    arg(s, 0, dst);
}

static int build_dense_swapped(bctx *b, int K, int OC, dnnl_memory_t src, dnnl_memory_t w,
                               dnnl_memory_t bias, dnnl_memory_t dst, eg_err *err)
{
    dnnl_memory_t tmp;
    nn_step *s;
    int rc = own_step(b, LIST_FW, SK_DENSEF, PH_DENSE, (int[4]){b->B, K, OC, 0},
                      (size_t)b->B * OC, &tmp, &s, err);
    if (rc)
        return rc;
    own_fwd_args(s, src, w, bias, dst);
    arg(s, 0, tmp);
    __atomic_fetch_add(&eg_model_swapped_dense, 1, __ATOMIC_RELAXED);
    return EG_OK;
}

static int zmm_ok(void);
static int c3_fits(int C, int W);
static void c3_fwd(float *const in[3], float *out, const int dims[4]);
static void c3_bwd_probe(float *const in[3], float *out, const int dims[4]);

/* whether op b->op is a convolution c3's kernels may run: the knobs, AVX-512, f32, 3x3, stride
 * 1, padding 1, NHWC, as many output channels as input channels, a shape c3_fits takes */
static int c3_shape_ok(const bctx *b)
{
    const nn_op *op = b->op;
    const nn_tensor *ti = &b->n->t[op->in], *to = &b->n->t[op->out];
    return eg_model_conv_own && eg_model_own_kernels == 1 && zmm_ok() && op->kind == NN_CONV &&
           b->n->prec == EG_PREC_F32 && op->k == 3 && op->stride == 1 && op->pad == 1 &&
           !ti->flat && !ti->nchw && !to->nchw && ti->c == to->c && ti->h == to->h &&
           ti->w == to->w && c3_fits(to->c, to->w) && b->B >= 1;
}

/* Whether the forward of conv op b->op, planned as fpd, runs as expgraph's c3_fwd: a 3x3
 * convolution, stride 1, padding 1, of f32 NHWC (or nChw16c at 16 channels: the same bytes)
 * with as many output channels as input channels, in a shape c3_fits takes, on AVX-512, where
 * it gives the same values as oneDNN's primitive on a test input of one image (planned like
 * fpd, with fpd's kernel). Its weights are then reordered into hwio. */
static int c3_own(const bctx *b, const_dnnl_primitive_desc_t fpd, dnnl_memory_desc_t *hwio)
{
    const nn_op *op = b->op;
    const nn_tensor *to = &b->n->t[op->out];
    if (!c3_shape_ok(b) || op->out == b->n->op[b->n->nop - 1].out)
        return 0;
    if (dnnl_memory_desc_init_by_tag(hwio, 4, md_wuser(b).dims, dnnl_f32, dnnl_hwio) !=
        dnnl_success)
        return 0;
    bctx one = *b;
    one.B = 1;
    dnnl_primitive_desc_t pd1;
    eg_err e = {0};
    if (pd_from(&one, 0, NULL, NULL, &pd1, &e))
        return 0;
    const char *impl = "?", *impl1 = "";
    dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_desc_query(pd1, dnnl_query_impl_info_str, 0, &impl1);
    const int same =
        !strcmp(impl, impl1) &&
        probe_same(b, pd1, op->nb != 0, hwio, c3_fwd, (int[4]){1, to->h, to->w, to->c});
    dnnl_primitive_desc_destroy(pd1);
    return same;
}

/* Whether the backward data of conv op b->op, planned as pd, runs as expgraph's c3_bwd_data:
 * c3_own's convolution in a shape c3_fits takes, and the same values as oneDNN's primitive
 * on a test input of one image (planned like pd, with pd's kernel). */
static int c3b_own(const bctx *b, const_dnnl_primitive_desc_t pd)
{
    const nn_op *op = b->op;
    const nn_tensor *to = &b->n->t[op->out];
    if (!c3_shape_ok(b))
        return 0;
    bctx one = *b;
    one.B = 1;
    one.blk = 0;
    dnnl_primitive_desc_t f1 = NULL, pd1 = NULL;
    eg_err e = {0};
    int same = 0;
    if (!pd_from(&one, 0, NULL, NULL, &f1, &e) && !pd_from(&one, 1, NULL, f1, &pd1, &e)) {
        const char *impl = "?", *impl1 = "";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        dnnl_primitive_desc_query(pd1, dnnl_query_impl_info_str, 0, &impl1);
        const dnnl_memory_desc_t oihw = md_wuser(b);
        same = !strcmp(impl, impl1) &&
               probe_same(b, pd1, 0, &oihw, c3_bwd_probe, (int[4]){1, to->h, to->w, to->c});
    }
    if (pd1)
        dnnl_primitive_desc_destroy(pd1);
    if (f1)
        dnnl_primitive_desc_destroy(f1);
    return same;
}

/* SK_C3B: dy -> dsrc with the flat vector's weights wu */
static int build_c3b(bctx *b, dnnl_memory_t wu, dnnl_memory_t dsrc, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *to = &b->n->t[op->out];
    dnnl_memory_t wt;
    nn_step *s;
    int rc = own_step(b, LIST_BW, SK_C3B, PH_CONV, (int[4]){b->B, to->h, to->w, to->c},
                      (size_t)9 * to->c * to->c, &wt, &s, err);
    if (rc)
        return rc;
    arg(s, 0, b->p->dif[op->out]);
    arg(s, 0, wu);
    arg(s, 0, dsrc);
    arg(s, 0, wt);
    __atomic_fetch_add(&eg_model_own_conv_grads, 1, __ATOMIC_RELAXED);
    return EG_OK;
}

static int build_c3(bctx *b, dnnl_memory_t src, dnnl_memory_t w, dnnl_memory_t bias,
                    dnnl_memory_t dst, eg_err *err)
{
    const nn_tensor *to = &b->n->t[b->op->out];
    nn_step *s;
    int rc = own_step(b, LIST_FW, SK_C3F, PH_CONV, (int[4]){b->B, to->h, to->w, to->c}, 0, NULL,
                      &s, err);
    if (rc)
        return rc;
    own_fwd_args(s, src, w, bias, dst);
    __atomic_fetch_add(&eg_model_own_convs, 1, __ATOMIC_RELAXED);
    return EG_OK;
}

/* convolution and inner product: forward; backward weights (+ bias); backward data unless
 * the input is the model's input */
static int build_wop(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    if (cp_own(b->n, (int)(op - b->n->op)))
        return build_cp(b, err);
    dnnl_primitive_desc_t fpd = NULL;
    wtag_choose(b);
    int rc;
    if ((b->blk = conv_blocked(b))) {
        const char *impl = "ref";
        eg_err e = {0};
        if (!pd_from(b, 0, NULL, NULL, &fpd, &e))
            dnnl_primitive_desc_query(fpd, dnnl_query_impl_info_str, 0, &impl);
        if (strncmp(impl, "jit:avx512", 10)) {
            if (fpd)
                dnnl_primitive_desc_destroy(fpd);
            fpd = NULL;
            b->blk = 0;
        }
    }
    if (!fpd && (rc = pd_from(b, 0, NULL, NULL, &fpd, err)))
        return rc;
    dnnl_memory_desc_t wu_md = md_wuser(b);
    dnnl_memory_t wu, wf, bm = NULL, src = b->p->act[op->in], dst = b->p->act[op->out];
    nn_step *s;
    if (b->blk &&
        ((rc = mem_as(b, src, dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0), &src,
                      err)) ||
         (rc = mem_as(b, dst, dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0), &dst,
                      err))))
        goto out;
    dnnl_memory_desc_t hwio;
    const int own = c3_own(b, fpd, &hwio);
    if (b->blk)
        __atomic_fetch_add(&eg_model_blocked_convs, 1, __ATOMIC_RELAXED);
    b->blk = 0; /* the backward passes keep NHWC */
    if ((rc = mem_new(b->p, b->n, &wu_md, NULL, BIND_PARAMS, op->w_off, &wu, err)) ||
        (rc = weights_for(b,
                          own ? &hwio
                              : dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0),
                          wu, NULL, 0, &wf, err)))
        goto out;
    if (op->nb) {
        dnnl_memory_desc_t bmd = md_vec((int)op->nb);
        if ((rc = mem_new(b->p, b->n, &bmd, NULL, BIND_PARAMS, op->b_off, &bm, err)))
            goto out;
    }
    int K, OC;
    if (dense_swapped(b, fpd, wf == wu, &K, &OC)) {
        if ((rc = build_dense_swapped(b, K, OC, src, wf, bm, dst, err)))
            goto out;
    } else if (own) {
        if ((rc = build_c3(b, src, wf, bm, dst, err)))
            goto out;
    } else {
        if ((rc = step_new(b->p, b->n, fpd, LIST_FW, op->kind == NN_CONV ? PH_CONV : PH_DENSE,
                           2.0 * b->B * op->macs, &s, err)))
            goto out;
        arg(s, DNNL_ARG_SRC, src);
        arg(s, DNNL_ARG_WEIGHTS, wf);
        if (bm)
            arg(s, DNNL_ARG_BIAS, bm);
        arg(s, DNNL_ARG_DST, dst);
        if (s->scratch)
            arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    }
    if (b->train && !(rc = wop_backward_weights(b, fpd, err)) && op->in != 0)
        rc = wop_backward_data(b, fpd, wu, wf, err);
out:
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* one batch-normalisation primitive (forward, and its backward in training) on memories
 * src/dst with statistics mean/var; scale/shift/dscale/dshift may be NULL (flags say) */
typedef struct bn_io {
    dnnl_memory_t src, dst, mean, var, scale, shift, dsrc, ddst, dscale, dshift;
    unsigned flags;
    float eps;
    dnnl_prop_kind_t fprop, bprop;
} bn_io;

static int bn_build(bctx *b, const bn_io *io, int with_bwd, nn_step **fstep, eg_err *err)
{
    const dnnl_memory_desc_t *smd;
    dnnl_memory_get_memory_desc(io->src, &smd);
    dnnl_batch_normalization_desc_t d;
    DN(dnnl_batch_normalization_forward_desc_init(&d, io->fprop, smd, io->eps, io->flags));
    dnnl_primitive_desc_t fpd, bpd = NULL;
    int rc = pd_make(&fpd, &d, b->w, NULL, err);
    if (rc)
        return rc;
    nn_step *s;
    dnnl_memory_t ws = NULL; /* fused ReLU in training: its mask */
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (wmd && dnnl_memory_desc_get_size(wmd) &&
        (rc = mem_new(b->p, b->n, wmd, DNNL_MEMORY_ALLOCATE, -1, 0, &ws, err)))
        goto out;
    if ((rc = step_new(b->p, b->n, fpd, LIST_FW, PH_ELEM, 0, &s, err)))
        goto out;
    *fstep = s;
    arg(s, DNNL_ARG_SRC, io->src);
    arg(s, DNNL_ARG_DST, io->dst);
    if (ws)
        arg(s, DNNL_ARG_WORKSPACE, ws);
    arg(s, DNNL_ARG_MEAN, io->mean);
    arg(s, DNNL_ARG_VARIANCE, io->var);
    if (io->scale) {
        arg(s, DNNL_ARG_SCALE, io->scale);
        arg(s, DNNL_ARG_SHIFT, io->shift);
    }
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    if (!with_bwd)
        goto out;
    if ((rc = dnnl_batch_normalization_backward_desc_init(&d, io->bprop, smd, smd, io->eps,
                                                          io->flags)
                  ? EG_ERUN
                  : EG_OK)) {
        eg_err_set(err, rc, "model: oneDNN batch-norm backward descriptor");
        goto out;
    }
    if ((rc = pd_make(&bpd, &d, b->w, fpd, err)) ||
        (rc = step_new(b->p, b->n, bpd, LIST_BW, PH_ELEM, 0, &s, err)))
        goto out;
    arg(s, DNNL_ARG_SRC, io->src);
    arg(s, DNNL_ARG_MEAN, io->mean);
    arg(s, DNNL_ARG_VARIANCE, io->var);
    arg(s, DNNL_ARG_DIFF_DST, io->ddst);
    arg(s, DNNL_ARG_DIFF_SRC, io->dsrc);
    if (ws)
        arg(s, DNNL_ARG_WORKSPACE, ws);
    if (io->scale) {
        arg(s, DNNL_ARG_SCALE, io->scale);
        arg(s, DNNL_ARG_SHIFT, io->shift);
        arg(s, DNNL_ARG_DIFF_SCALE, io->dscale);
        arg(s, DNNL_ARG_DIFF_SHIFT, io->dshift);
    }
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
out:
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* per-channel scale and shift of a norm op, and their gradients in training */
static int norm_affine(bctx *b, bn_io *io, eg_err *err)
{
    const nn_op *op = b->op;
    dnnl_memory_desc_t v = md_vec((int)op->nw);
    int rc;
    if ((rc = mem_new(b->p, b->n, &v, NULL, BIND_PARAMS, op->w_off, &io->scale, err)) ||
        (rc = mem_new(b->p, b->n, &v, NULL, BIND_PARAMS, op->b_off, &io->shift, err)))
        return rc;
    if (b->train &&
        ((rc = mem_new(b->p, b->n, &v, NULL, BIND_GRAD, op->w_off, &io->dscale, err)) ||
         (rc = mem_new(b->p, b->n, &v, NULL, BIND_GRAD, op->b_off, &io->dshift, err))))
        return rc;
    io->flags |= dnnl_use_scale | dnnl_use_shift;
    return EG_OK;
}

static int split_step(bctx *b, int list, int sk, int bn, eg_err *err);
static int zmm_have(void);

/* Whether a residual add's two tensors suit the batch-norm kernels: O, the block's output,
 * and A, its input: the same shape (stride 1), or (stride 2, the option-A shortcut
 * x[:, :, ::2, ::2] zero-padded to O's channels) A twice as large (rounded up) with at most
 * O's channels, a multiple of 16; both NHWC. */
static int res_fits(int stride, const nn_tensor *O, const nn_tensor *A)
{
    if (A->flat || A->nchw || O->flat || O->nchw)
        return 0;
    if (stride == 1)
        return A->c == O->c && A->h == O->h && A->w == O->w;
    return stride == 2 && A->c <= O->c && A->c % 16 == 0 && (A->h + 1) / 2 == O->h &&
           (A->w + 1) / 2 == O->w;
}

/* The mode in which expgraph's batch-norm kernels (bn_own_run) run op i, a batch norm in
 * training on the whole batch (not micro-batches), f32 NHWC, channels a multiple of 16, on a
 * CPU with AVX-512 (where oneDNN runs the kernel whose values bn_own_run gives): 1 with its
 * ReLU, 2 with the residual add (identity or stride-2 shortcut, res_fits) and the ReLU that
 * follow it (both then build no steps of their own), 0 alone; -1 when oneDNN runs it. */
static int bn_mode(const bctx *b, int i)
{
    const nn_net *n = b->n;
    const nn_op *op = &n->op[i];
    if (!eg_model_own_kernels || !b->train || b->w->split || n->prec != EG_PREC_F32 ||
        op->kind != NN_BN || op->in == 0)
        return -1;
    const nn_tensor *T = &n->t[op->in], *O = &n->t[op->out];
    if (T->flat || T->nchw || O->flat || O->nchw || T->c % 16 || !zmm_have())
        return -1; /* oneDNN runs other kernels there (bnorm_tbb_jit), other values */
    if (op->relu)
        return 1;
    if (i + 2 >= n->nop)
        return 0;
    const nn_op *add = op + 1, *r = op + 2;
    const nn_tensor *A = &n->t[add->aux];
    return add->kind == NN_ADD && add->in == op->out && add->out == op->out &&
                   add->aux != op->out && res_fits(add->stride, O, A) && r->kind == NN_RELU &&
                   r->in == op->out && r->out == op->out
               ? 2
               : 0;
}

/* The shortcut's gradient add (NN_ADD_GRAD, dif[x] += dif[t], or for a stride-2 shortcut
 * dif[x][:, :, ::2, ::2] += dif[t][:, :C], zeros added elsewhere) of the block whose
 * input x is batch norm i's output, when that block starts right after the norm (mode 1:
 * the stem) or after its add and ReLU (mode 2: the block before). Between that add and the
 * norm's backward nothing reads or writes dif[x], so the norm's backward adds dif[t] where
 * it reads its output gradient (the same sum) and the add builds no step. Returns the add's
 * op index, or -1. */
static int bn_pending(const bctx *b, int i)
{
    const int mode = bn_mode(b, i), k = i + (mode == 2 ? 3 : 1);
    const nn_net *n = b->n;
    if (mode < 1 || k >= n->nop)
        return -1;
    const nn_op *g = &n->op[k];
    const nn_tensor *X = &n->t[n->op[i].out], *T = &n->t[g->out];
    return g->kind == NN_ADD_GRAD && !g->copy && g->aux == n->op[i].out && g->out != g->aux &&
                   res_fits(g->stride, T, X)
               ? k
               : -1;
}

/* the two steps of a batch norm run by bn_own_run (see there) */
static int bn_own_steps(bctx *b, const bn_io *io, int mode, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *T = &b->n->t[op->in];
    nn_plan *p = b->p;
    dnnl_memory_desc_t smd = md_tag(1, 5 * (dnnl_dim_t)T->c, 0, 0, 0, dnnl_f32, dnnl_x);
    dnnl_memory_t sc;
    int rc = mem_new(p, b->n, &smd, DNNL_MEMORY_ALLOCATE, -1, 0, &sc, err);
    for (int l = 0; l < 2 && !rc; l++) {
        if ((rc = split_step(b, l ? LIST_BW : LIST_FW, l ? SK_BNB : SK_BNF, 0, err)))
            break;
        nn_step *s = l ? &p->bw[p->nbw - 1] : &p->fw[p->nfw - 1];
        s->shape[0] = b->B, s->shape[1] = T->h, s->shape[2] = T->w, s->shape[3] = T->c;
        s->relu = mode;
        const int k = l ? bn_pending(b, (int)(op - b->n->op)) : -1;
        const nn_op *ro = l ? (k >= 0 ? &b->n->op[k] : NULL) : (mode == 2 ? op + 1 : NULL);
        if (ro && ro->stride != 1) {
            const nn_tensor *R = &b->n->t[l ? ro->out : ro->aux];
            s->sub[0] = R->h, s->sub[1] = R->w, s->sub[2] = R->c;
        }
        arg(s, 0, io->src);
        arg(s, 0, io->scale);
        if (!l) {
            arg(s, 0, io->shift);
            arg(s, 0, io->mean);
            arg(s, 0, io->var);
            arg(s, 0, io->dst);
            arg(s, 0, mode == 2 ? p->act[op[1].aux] : io->src);
        } else {
            arg(s, 0, io->mean);
            arg(s, 0, io->var);
            arg(s, 0, io->ddst);
            arg(s, 0, mode == 1 ? io->shift : io->dst);
            arg(s, 0, io->dsrc);
            arg(s, 0, io->dscale);
            arg(s, 0, io->dshift);
            if (k >= 0)
                arg(s, 0, p->dif[b->n->op[k].out]);
        }
        arg(s, 0, sc);
    }
    return rc;
}

/* batch norm: batch statistics (training, then the running-statistics update step) or the
 * running statistics (evaluation); with op->relu the ReLU after it is fused (oneDNN keeps
 * its mask in a workspace for the backward) */
static int build_bn_split(bctx *b, eg_err *err);

static int build_bn(bctx *b, eg_err *err)
{
    if (b->train && b->w->split)
        return build_bn_split(b, err);
    const nn_op *op = b->op;
    const nn_tensor *T = &b->n->t[op->in];
    bn_io io = {.src = b->p->act[op->in], .dst = b->p->act[op->out], .eps = NN_EPS,
                .fprop = b->fprop, .bprop = dnnl_backward};
    dnnl_memory_desc_t v = md_vec(T->c);
    int rc = norm_affine(b, &io, err);
    if (rc)
        return rc;
    if (op->relu)
        io.flags |= dnnl_fuse_norm_relu;
    if (b->train) {
        if ((rc = mem_new(b->p, b->n, &v, DNNL_MEMORY_ALLOCATE, -1, 0, &io.mean, err)) ||
            (rc = mem_new(b->p, b->n, &v, DNNL_MEMORY_ALLOCATE, -1, 0, &io.var, err)))
            return rc;
        io.ddst = b->p->dif[op->out];
        io.dsrc = b->p->dif[op->in];
    } else {
        io.flags |= dnnl_use_global_stats;
        if ((rc = mem_new(b->p, b->n, &v, NULL, BIND_STATS, op->s_off, &io.mean, err)) ||
            (rc = mem_new(b->p, b->n, &v, NULL, BIND_STATS, op->s_off + (size_t)T->c, &io.var,
                          err)))
            return rc;
    }
    nn_step *fs;
    const int mode = bn_mode(b, (int)(op - b->n->op));
    if (mode >= 0)
        rc = bn_own_steps(b, &io, mode, err);
    else
        rc = bn_build(b, &io, b->train, &fs, err);
    if (rc || !b->train)
        return rc;
    if (b->p->nfw == b->p->cap_steps)
        return eg_err_set(err, EG_ERUN, "model: plan too large");
    nn_step *u = &b->p->fw[b->p->nfw++];
    memset(u, 0, sizeof *u);
    u->bmean = mem_ptr(io.mean);
    u->bvar = mem_ptr(io.var);
    u->s_off = op->s_off;
    u->c = T->c;
    double cnt = (double)b->B * T->h * T->w;
    u->unbias = cnt > 1 ? (float)(cnt / (cnt - 1)) : 1.0f;
    u->phase = PH_ELEM;
    return EG_OK;
}

/* a custom step of a micro-batch plan */
static int split_step(bctx *b, int list, int sk, int bn, eg_err *err)
{
    nn_plan *p = b->p;
    int *cnt = list == LIST_BW ? &p->nbw : &p->nfw;
    if (*cnt == p->cap_steps)
        return eg_err_set(err, EG_ERUN, "model: plan too large");
    nn_step *s = (list == LIST_BW ? p->bw : p->fw) + (*cnt)++;
    memset(s, 0, sizeof *s);
    s->sk = sk;
    s->bn = bn;
    s->phase = PH_ELEM;
    return EG_OK;
}

/* batch norm of a micro-batch plan (see nn_bnsplit) */
static int build_bn_split(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    nn_plan *p = b->p;
    const nn_tensor *T = &b->n->t[op->in];
    if (T->flat || T->nchw)
        return eg_err_set(err, EG_ERUN, "model: train.micro_batch: batch norm needs an NHWC "
                                        "tensor");
    if (p->nbn == b->n->nop)
        return eg_err_set(err, EG_ERUN, "model: plan too large");
    bn_io io = {0};
    int rc = norm_affine(b, &io, err);
    if (rc)
        return rc;
    const int C = T->c, j = p->nbn;
    nn_bnsplit *q = &p->bns[p->nbn++];
    *q = (nn_bnsplit){.src = p->act[op->in], .dst = p->act[op->out], .dsrc = p->dif[op->in],
                      .ddst = p->dif[op->out], .scale = io.scale, .shift = io.shift,
                      .dscale = io.dscale, .dshift = io.dshift, .C = C,
                      .rows = b->B * T->h * T->w, .relu = op->relu,
                      .bf16 = b->n->prec == EG_PREC_BF16, .s_off = op->s_off};
    double *d = plan_alloc(p, 2 * (size_t)C * sizeof *d);
    float *f = plan_alloc(p, 9 * (size_t)C * sizeof *f);
    if (!d || !f)
        return eg_err_set(err, EG_ERUN, "out of memory (model buffers)");
    q->s1 = d, q->s2 = d + C;
    q->a = f, q->b = f + C, q->mean = f + 2 * C, q->rstd = f + 3 * C, q->k1 = f + 4 * C;
    q->k2 = f + 5 * C, q->row = f + 6 * C;
    if ((rc = split_step(b, LIST_FW, SK_FSUM, j, err)) ||
        (rc = split_step(b, LIST_FW, SK_FAPPLY, j, err)) ||
        (rc = split_step(b, LIST_BW, SK_BSUM, j, err)))
        return rc;
    return split_step(b, LIST_BW, SK_BAPPLY, j, err);
}

static inline float bf16_load(const uint16_t *h, size_t i)
{
    uint32_t u = (uint32_t)h[i] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* round to nearest even, as oneDNN converts */
static inline uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* row r (C values) of an activation buffer as floats: the buffer itself (f32) or tmp */
static const float *row_in(const void *buf, int bf16, size_t r, int C, float *tmp)
{
    if (!bf16)
        return (const float *)buf + r * (size_t)C;
    const uint16_t *h = (const uint16_t *)buf + r * (size_t)C;
    for (int c = 0; c < C; c++)
        tmp[c] = bf16_load(h, (size_t)c);
    return tmp;
}

static void row_out(void *buf, int bf16, size_t r, int C, const float *v)
{
    if (!bf16) {
        float *o = (float *)buf + r * (size_t)C;
        if (o != v)
            memcpy(o, v, (size_t)C * sizeof *v);
        return;
    }
    uint16_t *h = (uint16_t *)buf + r * (size_t)C;
    for (int c = 0; c < C; c++)
        h[c] = bf16_round(v[c]);
}

/* The kernels of the micro-batch batch norm: rows of C channels, each channel's sums in row
 * order (vector lanes run across channels, so every build computes the same values). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NN_CLONES
#endif

/* AVX-512 versions of some kernels (with BF16 instructions where oneDNN's values need them),
 * picked at run time where the CPU has them; each computes what its portable version computes,
 * operation for operation (check_model compares them) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define NN_ZMM 1
#define NN_ZMM_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

int eg_model_own_kernels = 1;
int eg_model_conv_blocked = 1;
unsigned long eg_model_blocked_convs;
int eg_model_dense_swapped = 1;
unsigned long eg_model_swapped_dense;
int eg_model_conv_own = 1;
unsigned long eg_model_own_convs, eg_model_own_conv_grads;
int eg_model_share_grads = 1;
unsigned long eg_model_shared_grads;
unsigned long eg_model_own_runs;

/* whether the CPU has what the AVX-512 kernels use */
static int zmm_have(void)
{
#ifdef NN_ZMM
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
    }
    return have;
#else
    return 0;
#endif
}

/* whether to run the AVX-512 kernels */
static int zmm_ok(void) { return zmm_have() && eg_model_own_kernels != 2; }

NN_CLONES static void bn_fsum(const void *x, int bf16, size_t rows, int C, double *restrict s1,
                              double *restrict s2, float *restrict tmp)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = row_in(x, bf16, r, C, tmp);
        for (int c = 0; c < C; c++) {
            double v = xr[c];
            s1[c] += v;
            s2[c] += v * v;
        }
    }
}

NN_CLONES static void bn_fapply(const void *x, void *y, int bf16, size_t rows, int C, int relu,
                                const float *restrict a, const float *restrict b,
                                float *restrict t0, float *restrict t1)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = row_in(x, bf16, r, C, t0);
        float *restrict yr = bf16 ? t1 : (float *)y + r * (size_t)C;
        for (int c = 0; c < C; c++) {
            float v = xr[c] * a[c] + b[c];
            yr[c] = relu && !(v > 0.0f) ? 0.0f : v;
        }
        if (bf16)
            row_out(y, bf16, r, C, yr);
    }
}

/* backward, pass 1: the sums of dy and dy x_hat; dy masked by the ReLU (recomputed from x as
 * the forward computed it) */
NN_CLONES static void bn_bsum(const void *x, const void *dy, int bf16, size_t rows, int C,
                              const nn_bnsplit *q, double *restrict s1, double *restrict s2,
                              float *restrict t0, float *restrict t1, float *restrict g)
{
    const float *restrict a = q->a, *restrict b = q->b, *restrict mean = q->mean;
    const float *restrict rstd = q->rstd;
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = row_in(x, bf16, r, C, t0);
        const float *restrict dr = row_in(dy, bf16, r, C, t1);
        if (q->relu)
            for (int c = 0; c < C; c++)
                g[c] = xr[c] * a[c] + b[c] > 0.0f ? dr[c] : 0.0f;
        else
            memcpy(g, dr, (size_t)C * sizeof *g);
        for (int c = 0; c < C; c++) {
            float xh = (xr[c] - mean[c]) * rstd[c];
            s1[c] += (double)g[c];
            s2[c] += (double)(g[c] * xh);
        }
    }
}

/* backward, pass 2: dx = a (dy - k1 - x_hat k2), dy masked as in pass 1 */
NN_CLONES static void bn_bapply(const void *x, const void *dy, void *dx, int bf16, size_t rows,
                                int C, const nn_bnsplit *q, float *restrict t0,
                                float *restrict t1, float *restrict t2)
{
    const float *restrict a = q->a, *restrict b = q->b, *restrict mean = q->mean;
    const float *restrict rstd = q->rstd, *restrict k1 = q->k1, *restrict k2 = q->k2;
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = row_in(x, bf16, r, C, t0);
        const float *restrict dr = row_in(dy, bf16, r, C, t1);
        float *restrict o = bf16 ? t2 : (float *)dx + r * (size_t)C;
        for (int c = 0; c < C; c++) {
            float g = !q->relu || xr[c] * a[c] + b[c] > 0.0f ? dr[c] : 0.0f;
            float xh = (xr[c] - mean[c]) * rstd[c];
            o[c] = a[c] * (g - k1[c] - xh * k2[c]);
        }
        if (bf16)
            row_out(dx, bf16, r, C, o);
    }
}

/* The micro-batch batch norm in AVX-512 when C is a multiple of 16: up to 64 channels per
 * pass over the rows, their sums in registers (the portable loop sets up an inner loop per row
 * of C values and keeps the sums in memory). Per channel the same operations in the same
 * order; bf16 stores round as bf16_round does (no flush of subnormals). */
#ifdef NN_ZMM
NN_ZMM_TARGET static inline __attribute__((always_inline)) __m512 bz_ld(const void *p, const int bf16, size_t i)
{
    if (!bf16)
        return _mm512_loadu_ps((const float *)p + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) void bz_st(void *p, const int bf16, size_t i, __m512 v)
{
    if (!bf16) {
        _mm512_storeu_ps((float *)p + i, v);
        return;
    }
    const __m512i u = _mm512_castps_si512(v), one = _mm512_set1_epi32(1);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(u, _mm512_set1_epi32(0x400000)));
    _mm256_storeu_si256((__m256i *)((uint16_t *)p + i),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
}

/* the halves of 16 floats as doubles */
NN_ZMM_TARGET static inline __m512d bz_lo(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}
NN_ZMM_TARGET static inline __m512d bz_hi(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* dy masked by the ReLU recomputed from x (x a + b > 0) */
NN_ZMM_TARGET static inline __m512 bz_g(__m512 x, __m512 dy, const int relu, const float *a,
                                        const float *b)
{
    if (!relu)
        return dy;
    __m512 v = _mm512_add_ps(_mm512_mul_ps(x, _mm512_loadu_ps(a)), _mm512_loadu_ps(b));
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), dy);
}

/* sums over rows of channels c0 .. c0 + 16 nb: forward (dy == NULL) s1 += x, s2 += x x; backward
 * s1 += g, s2 += g x_hat */
NN_ZMM_TARGET static inline __attribute__((always_inline)) void bz_sum(const void *x, const void *dy, const int bf16,
                                        const int relu, size_t rows, int C, int c0, const int nb,
                                        const nn_bnsplit *q, double *s1, double *s2)
{
    __m512d acc[4][4];
    for (int k = 0; k < nb; k++) {
        acc[k][0] = _mm512_loadu_pd(s1 + c0 + 16 * k);
        acc[k][1] = _mm512_loadu_pd(s1 + c0 + 16 * k + 8);
        acc[k][2] = _mm512_loadu_pd(s2 + c0 + 16 * k);
        acc[k][3] = _mm512_loadu_pd(s2 + c0 + 16 * k + 8);
    }
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < nb; k++) {
            const int c = c0 + 16 * k;
            const size_t o = r * (size_t)C + (size_t)c;
            __m512 v = bz_ld(x, bf16, o), w;
            if (dy) {
                w = bz_g(v, bz_ld(dy, bf16, o), relu, q->a + c, q->b + c);
                __m512 xh = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_loadu_ps(q->mean + c)),
                                          _mm512_loadu_ps(q->rstd + c));
                v = w;
                w = _mm512_mul_ps(w, xh);
            }
            __m512d lo = bz_lo(v), hi = bz_hi(v);
            acc[k][0] = _mm512_add_pd(acc[k][0], lo);
            acc[k][1] = _mm512_add_pd(acc[k][1], hi);
            if (dy) {
                acc[k][2] = _mm512_add_pd(acc[k][2], bz_lo(w));
                acc[k][3] = _mm512_add_pd(acc[k][3], bz_hi(w));
            } else {
                acc[k][2] = _mm512_add_pd(acc[k][2], _mm512_mul_pd(lo, lo));
                acc[k][3] = _mm512_add_pd(acc[k][3], _mm512_mul_pd(hi, hi));
            }
        }
    for (int k = 0; k < nb; k++) {
        _mm512_storeu_pd(s1 + c0 + 16 * k, acc[k][0]);
        _mm512_storeu_pd(s1 + c0 + 16 * k + 8, acc[k][1]);
        _mm512_storeu_pd(s2 + c0 + 16 * k, acc[k][2]);
        _mm512_storeu_pd(s2 + c0 + 16 * k + 8, acc[k][3]);
    }
}

NN_ZMM_TARGET static void bz_sums(const void *x, const void *dy, int bf16, int relu, size_t rows,
                                  int C, const nn_bnsplit *q, double *s1, double *s2)
{
    for (int c0 = 0; c0 < C; c0 += 64) {
        const int nb = C - c0 >= 64 ? 4 : (C - c0) / 16;
#define BZ(nbk)                                                                             \
    (dy ? (bf16 ? (relu ? bz_sum(x, dy, 1, 1, rows, C, c0, nbk, q, s1, s2)                  \
                        : bz_sum(x, dy, 1, 0, rows, C, c0, nbk, q, s1, s2))                 \
                : (relu ? bz_sum(x, dy, 0, 1, rows, C, c0, nbk, q, s1, s2)                  \
                        : bz_sum(x, dy, 0, 0, rows, C, c0, nbk, q, s1, s2)))                \
        : (bf16 ? bz_sum(x, NULL, 1, 0, rows, C, c0, nbk, q, s1, s2)                        \
                : bz_sum(x, NULL, 0, 0, rows, C, c0, nbk, q, s1, s2)))
        if (nb == 4)
            BZ(4);
        else if (nb == 3)
            BZ(3);
        else if (nb == 2)
            BZ(2);
        else
            BZ(1);
#undef BZ
    }
}

/* forward (dy == NULL): y = x a + b, ReLU; backward: dx = a (g - k1 - x_hat k2) */
NN_ZMM_TARGET static inline void bz_apply_t(const void *x, const void *dy, void *out,
                                            const int bf16, const int relu, size_t rows, int C,
                                            const nn_bnsplit *q)
{
    const __m512 zero = _mm512_setzero_ps();
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < C; c += 16) {
            const size_t o = r * (size_t)C + (size_t)c;
            __m512 v = bz_ld(x, bf16, o), a = _mm512_loadu_ps(q->a + c);
            if (!dy) {
                v = _mm512_add_ps(_mm512_mul_ps(v, a), _mm512_loadu_ps(q->b + c));
                if (relu)
                    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
            } else {
                __m512 g = bz_g(v, bz_ld(dy, bf16, o), relu, q->a + c, q->b + c);
                __m512 xh = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_loadu_ps(q->mean + c)),
                                          _mm512_loadu_ps(q->rstd + c));
                v = _mm512_mul_ps(a, _mm512_sub_ps(_mm512_sub_ps(g, _mm512_loadu_ps(q->k1 + c)),
                                                   _mm512_mul_ps(xh, _mm512_loadu_ps(q->k2 + c))));
            }
            bz_st(out, bf16, o, v);
        }
}

NN_ZMM_TARGET static void bz_apply(const void *x, const void *dy, void *out, int bf16, int relu,
                                   size_t rows, int C, const nn_bnsplit *q)
{
    if (bf16)
        relu ? bz_apply_t(x, dy, out, 1, 1, rows, C, q) : bz_apply_t(x, dy, out, 1, 0, rows, C, q);
    else
        relu ? bz_apply_t(x, dy, out, 0, 1, rows, C, q) : bz_apply_t(x, dy, out, 0, 0, rows, C, q);
}
#endif

static void bn_split_run(const nn_step *s, nn_bnsplit *q)
{
    const int C = q->C;
    const size_t rows = (size_t)q->rows;
    float *t0 = q->row, *t1 = q->row + C, *t2 = q->row + 2 * C;
    const void *x = mem_ptr(q->src);
    if (s->sk == SK_FSUM || s->sk == SK_BSUM)
        memset(q->s1, 0, 2 * (size_t)C * sizeof *q->s1);
#ifdef NN_ZMM
    if (C % 16 == 0 && zmm_ok()) {
        const void *dy = s->sk == SK_BSUM || s->sk == SK_BAPPLY ? mem_ptr(q->ddst) : NULL;
        if (s->sk == SK_FSUM || s->sk == SK_BSUM)
            bz_sums(x, dy, q->bf16, q->relu, rows, C, q, q->s1, q->s2);
        else
            bz_apply(x, dy, mem_ptr(dy ? q->dsrc : q->dst), q->bf16, q->relu, rows, C, q);
        return;
    }
#endif
    if (s->sk == SK_FSUM)
        bn_fsum(x, q->bf16, rows, C, q->s1, q->s2, t0);
    else if (s->sk == SK_FAPPLY)
        bn_fapply(x, mem_ptr(q->dst), q->bf16, rows, C, q->relu, q->a, q->b, t0, t1);
    else if (s->sk == SK_BSUM)
        bn_bsum(x, mem_ptr(q->ddst), q->bf16, rows, C, q, q->s1, q->s2, t0, t1, t2);
    else
        bn_bapply(x, mem_ptr(q->ddst), mem_ptr(q->dsrc), q->bf16, rows, C, q, t0, t1, t2);
}

/* memory for tensor t's activations (dif: gradients) in NCHW: the tensor's own when it is
 * NCHW, else a plan buffer (the caller adds the reorders) */
static int nchw_copy(bctx *b, int t, int dif, const dnnl_memory_desc_t *md, dnnl_memory_t *out,
                     eg_err *err)
{
    if (b->n->t[t].nchw) {
        *out = dif ? b->p->dif[t] : b->p->act[t];
        return EG_OK;
    }
    return mem_new(b->p, b->n, md, DNNL_MEMORY_ALLOCATE, -1, 0, out, err);
}

/* Moves backward step `from` to just after `to` (from < to), shifting those between. */
static void bw_move(nn_plan *p, int from, int to)
{
    nn_step t = p->bw[from];
    memmove(&p->bw[from], &p->bw[from + 1], (size_t)(to - from) * sizeof t);
    p->bw[to] = t;
}

/* Group norm: a batch norm without affine on an NCHW copy viewed as [1, B*G, (C/G)*H, W]
 * (one channel per sample and group: its statistics are over that contiguous (C/G, H, W)
 * block) into xhat, then the per-channel affine as a batch norm with mean 0, variance 1,
 * epsilon 0 on xhat in the tensor's layout. Backward: the affine's, then the normalisation's. */
static int build_gn(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *T = &b->n->t[op->in];
    dnnl_data_type_t dt = act_dt(b->n);
    int G = op->groups, BG = b->B * G, plain = T->nchw;
    dnnl_memory_desc_t full = md_tensor(b->n, op->in, b->B, dt),
                       nchw = md_tag(4, b->B, T->c, T->h, T->w, dt, dnnl_nchw),
                       view = md_tag(4, 1, BG, (dnnl_dim_t)(T->c / G) * T->h, T->w, dt, dnnl_nchw),
                       vg = md_vec(BG), vc = md_vec(T->c);
    bn_io g = {.eps = NN_EPS, .fprop = dnnl_forward_training, .bprop = dnnl_backward_data};
    bn_io a = {.eps = 0.0f, .fprop = b->fprop, .bprop = dnnl_backward,
               .flags = dnnl_use_global_stats, .dst = b->p->act[op->out]};
    dnnl_memory_t x4, xh4, xhat, dxh4 = NULL, dx4 = NULL, dxhat = NULL;
    int rc;
    if ((rc = nchw_copy(b, op->in, 0, &nchw, &x4, err)) ||
        (rc = mem_new(b->p, b->n, &nchw, DNNL_MEMORY_ALLOCATE, -1, 0, &xh4, err)) ||
        (rc = mem_new(b->p, b->n, &view, mem_ptr(x4), -1, 0, &g.src, err)) ||
        (rc = mem_new(b->p, b->n, &view, mem_ptr(xh4), -1, 0, &g.dst, err)) ||
        (rc = mem_new(b->p, b->n, &vg, DNNL_MEMORY_ALLOCATE, -1, 0, &g.mean, err)) ||
        (rc = mem_new(b->p, b->n, &vg, DNNL_MEMORY_ALLOCATE, -1, 0, &g.var, err)) ||
        (rc = mem_new(b->p, b->n, &vc, DNNL_MEMORY_ALLOCATE, -1, 0, &a.mean, err)) ||
        (rc = mem_new(b->p, b->n, &vc, DNNL_MEMORY_ALLOCATE, -1, 0, &a.var, err)) ||
        (rc = norm_affine(b, &a, err)))
        return rc;
    xhat = xh4;
    if (!plain && (rc = mem_new(b->p, b->n, &full, DNNL_MEMORY_ALLOCATE, -1, 0, &xhat, err)))
        return rc;
    float *ones = mem_ptr(a.var);
    for (int c = 0; c < T->c; c++)
        ones[c] = 1.0f;
    a.src = xhat;
    if (b->train) {
        if ((rc = mem_new(b->p, b->n, &full, DNNL_MEMORY_ALLOCATE, -1, 0, &dxhat, err)) ||
            (rc = nchw_copy(b, op->in, 1, &nchw, &dx4, err)))
            return rc;
        dxh4 = dxhat;
        if (!plain && (rc = mem_new(b->p, b->n, &nchw, DNNL_MEMORY_ALLOCATE, -1, 0, &dxh4, err)))
            return rc;
        if ((rc = mem_new(b->p, b->n, &view, mem_ptr(dxh4), -1, 0, &g.ddst, err)) ||
            (rc = mem_new(b->p, b->n, &view, mem_ptr(dx4), -1, 0, &g.dsrc, err)))
            return rc;
        a.ddst = b->p->dif[op->out];
        a.dsrc = dxhat;
    }
    nn_step *fs;
    int bw0 = b->p->nbw;
    if ((!plain && (rc = reorder_new(b->p, b->w, b->p->act[op->in], x4, LIST_FW, err))) ||
        (rc = bn_build(b, &g, b->train, &fs, err)) ||
        (!plain && (rc = reorder_new(b->p, b->w, xh4, xhat, LIST_FW, err))) ||
        (rc = bn_build(b, &a, b->train, &fs, err)))
        return rc;
    if (!b->train)
        return EG_OK;
    /* backward so far: [normalisation, affine]; wanted: affine, (dxhat -> NCHW),
     * normalisation, (dx -> the tensor's layout) */
    if (!plain && ((rc = reorder_new(b->p, b->w, dxhat, dxh4, LIST_BW, err)) ||
                   (rc = reorder_new(b->p, b->w, dx4, b->p->dif[op->in], LIST_BW, err))))
        return rc;
    bw_move(b->p, bw0, plain ? bw0 + 1 : bw0 + 2);
    return EG_OK;
}

static int relu_fused(const nn_net *n, int i);

static int build_relu(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    const int i = (int)(op - b->n->op);
    if (relu_fused(b->n, i) || (i >= 2 && bn_mode(b, i - 2) == 2))
        return EG_OK; /* in the pooling's or the batch norm's kernels */
    dnnl_data_type_t dt = act_dt(b->n);
    dnnl_memory_desc_t md = md_tensor(b->n, op->out, b->B, dt);
    dnnl_eltwise_desc_t d;
    DN(dnnl_eltwise_forward_desc_init(&d, b->fprop, dnnl_eltwise_relu_use_dst_for_bwd, &md, 0, 0));
    dnnl_primitive_desc_t fpd, bpd = NULL;
    int rc = pd_make(&fpd, &d, b->w, NULL, err);
    if (rc)
        return rc;
    nn_step *s;
    if ((rc = step_new(b->p, b->n, fpd, LIST_FW, PH_ELEM, 0, &s, err)))
        goto out;
    arg(s, DNNL_ARG_SRC, b->p->act[op->out]);
    arg(s, DNNL_ARG_DST, b->p->act[op->out]);
    if (!b->train)
        goto out;
    if (dnnl_eltwise_backward_desc_init(&d, dnnl_eltwise_relu_use_dst_for_bwd, &md, &md, 0, 0)) {
        rc = eg_err_set(err, EG_ERUN, "model: oneDNN ReLU backward descriptor");
        goto out;
    }
    if ((rc = pd_make(&bpd, &d, b->w, fpd, err)) ||
        (rc = step_new(b->p, b->n, bpd, LIST_BW, PH_ELEM, 0, &s, err)))
        goto out;
    arg(s, DNNL_ARG_DST, b->p->act[op->out]);
    arg(s, DNNL_ARG_DIFF_DST, b->p->dif[op->out]);
    arg(s, DNNL_ARG_DIFF_SRC, b->p->dif[op->out]);
out:
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* ---- max pooling 2x2, stride 2, NHWC: expgraph's kernels ----------------------------
 * oneDNN's training-mode max pooling zeroes the input gradient in a pass of its own before
 * scattering into it, and the ReLU after the pooling (model.c pools first) costs a pass each
 * way. These do pooling and ReLU in one pass each way, with oneDNN's values bit for bit: the
 * window's first maximum in (kh, kw) order, from -FLT_MAX; the ReLU as max(v, 0); its
 * gradient as dy * (y > 0); the input gradient 0 + g at the maximum (oneDNN adds into the
 * zeroed gradient) and 0 elsewhere. ws keeps the maximum's index (0..3) per output value. */

/* a bf16 value as oneDNN stores a float that is one already (vcvtneps2bf16): subnormals
 * flushed to zero */
static inline uint16_t bf16_keep(uint16_t h) { return (h & 0x7f80u) ? h : (uint16_t)(h & 0x8000u); }

static inline float pool_ld(const void *p, int bf16, size_t i)
{
    return bf16 ? bf16_load(p, i) : ((const float *)p)[i];
}

/* the loops over output pixels: o indexes the output pixel's C values, in[] the window's */
#define POOL_PIXELS(B, H, W, C, ...)                                                        \
    for (int n_ = 0; n_ < (B); n_++)                                                        \
        for (int oh_ = 0; oh_ < (H) / 2; oh_++)                                             \
            for (int ow_ = 0; ow_ < (W) / 2; ow_++) {                                       \
                const size_t o = (((size_t)n_ * ((H) / 2) + oh_) * ((W) / 2) + ow_) * (C);  \
                const size_t i0_ = (((size_t)n_ * (H) + 2 * oh_) * (W) + 2 * ow_) * (C);    \
                const size_t in[4] = {i0_, i0_ + (C), i0_ + (size_t)(W) * (C),              \
                                      i0_ + (size_t)(W) * (C) + (C)};                       \
                __VA_ARGS__                                                                 \
            }

/* A window's pooled value, for these kernels and the fused first layer (cp_run): its first
 * maximum in (kh, kw) order from -FLT_MAX, *arg its index; with the ReLU max(v, 0). */
static inline float win_max(const float v[4], int relu, int *arg)
{
    float m = -FLT_MAX;
    int a = 0;
    for (int j = 0; j < 4; j++)
        if (m < v[j])
            m = v[j], a = j;
    if (relu && !(m > 0.0f))
        m = 0.0f;
    *arg = a;
    return m;
}

/* the gradient a pooled value y passes to its window's maximum: dy * (y > 0) with the ReLU,
 * then 0 + g (oneDNN adds into a zeroed gradient) */
static inline float win_grad(float dy, float y, int relu)
{
    if (relu && !(y > 0.0f))
        dy = dy * 0.0f;
    return 0.0f + dy;
}

static void pool_fwd_sc(const void *x, void *y, uint8_t *ws, int bf16, int B, int H, int W,
                        int C, int relu)
{
    POOL_PIXELS(B, H, W, C, {
        for (int c = 0; c < C; c++) {
            float v[4];
            int k;
            for (int j = 0; j < 4; j++)
                v[j] = pool_ld(x, bf16, in[j] + c);
            float m = win_max(v, relu, &k);
            if (bf16)
                ((uint16_t *)y)[o + c] = bf16_keep(bf16_round(m));
            else
                ((float *)y)[o + c] = m;
            ws[o + c] = (uint8_t)k;
        }
    })
}

static void pool_bwd_sc(const void *dy, const void *y, const uint8_t *ws, void *dx, int bf16,
                        int B, int H, int W, int C, int relu)
{
    POOL_PIXELS(B, H, W, C, {
        for (int c = 0; c < C; c++) {
            float g = win_grad(pool_ld(dy, bf16, o + c), relu ? pool_ld(y, bf16, o + c) : 0.0f,
                               relu);
            for (int j = 0; j < 4; j++) {
                float v = ws[o + c] == j ? g : 0.0f;
                if (bf16)
                    ((uint16_t *)dx)[in[j] + c] = bf16_keep(bf16_round(v));
                else
                    ((float *)dx)[in[j] + c] = v;
            }
        }
    })
}

#ifdef NN_ZMM
/* win_max and win_grad on 16 channels */
NN_ZMM_TARGET static inline __attribute__((always_inline)) __m512 win_max_z(const __m512 v[4], int relu, __m512i *arg)
{
    __m512 m = _mm512_set1_ps(-FLT_MAX);
    __m512i a = _mm512_setzero_si512();
    for (int j = 0; j < 4; j++) {
        __mmask16 gt = _mm512_cmp_ps_mask(m, v[j], _CMP_LT_OS);
        m = _mm512_mask_mov_ps(m, gt, v[j]);
        a = _mm512_mask_mov_epi32(a, gt, _mm512_set1_epi32(j));
    }
    *arg = a;
    return relu ? _mm512_max_ps(m, _mm512_setzero_ps()) : m; /* oneDNN's ReLU: vmaxps(v, 0) */
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) __m512 win_grad_z(__m512 g, __m512 y, int relu)
{
    const __m512 zero = _mm512_setzero_ps();
    if (relu)
        g = _mm512_mask_mov_ps(_mm512_mul_ps(g, zero), _mm512_cmp_ps_mask(y, zero, _CMP_GT_OS),
                               g);
    return _mm512_add_ps(zero, g);
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) __m512 zld(const void *p, int bf16, size_t i, __mmask16 m)
{
    if (!bf16)
        return _mm512_maskz_loadu_ps(m, (const float *)p + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) void zst(void *p, int bf16, size_t i, __mmask16 m, __m512 v)
{
    if (!bf16)
        _mm512_mask_storeu_ps((float *)p + i, m, v);
    else
        _mm256_mask_storeu_epi16((uint16_t *)p + i, m, (__m256i)_mm512_cvtneps_pbh(v));
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) void pool_fwd_z(const void *x, void *y, uint8_t *ws, const int bf16,
                                            int B, int H, int W, const int C, int relu)
{
    POOL_PIXELS(B, H, W, C, {
        for (int c = 0; c < C; c += 16) {
            __mmask16 t = C - c >= 16 ? 0xffff : (__mmask16)((1u << (C - c)) - 1);
            __m512 v[4];
            __m512i k;
            for (int j = 0; j < 4; j++)
                v[j] = zld(x, bf16, in[j] + c, t);
            __m512 m = win_max_z(v, relu, &k);
            zst(y, bf16, o + c, t, m);
            _mm512_mask_cvtepi32_storeu_epi8(ws + o + c, t, k);
        }
    })
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) void pool_bwd_z(const void *dy, const void *y, const uint8_t *ws,
                                            void *dx, const int bf16, int B, int H, int W,
                                            const int C, int relu)
{
    POOL_PIXELS(B, H, W, C, {
        for (int c = 0; c < C; c += 16) {
            __mmask16 t = C - c >= 16 ? 0xffff : (__mmask16)((1u << (C - c)) - 1);
            __m512 g = win_grad_z(zld(dy, bf16, o + c, t),
                                  relu ? zld(y, bf16, o + c, t) : _mm512_setzero_ps(), relu);
            __m512i k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(t, ws + o + c));
            for (int j = 0; j < 4; j++)
                zst(dx, bf16, in[j] + c, t,
                    _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(j)), g));
        }
    })
}

/* specialised for the data type and C = 16 and 32 (the Fashion CNN's) */
NN_ZMM_TARGET static void pool_fwd_zmm(const void *x, void *y, uint8_t *ws, int bf16, int B,
                                       int H, int W, int C, int relu)
{
    if (C == 16)
        bf16 ? pool_fwd_z(x, y, ws, 1, B, H, W, 16, relu)
             : pool_fwd_z(x, y, ws, 0, B, H, W, 16, relu);
    else if (C == 32)
        bf16 ? pool_fwd_z(x, y, ws, 1, B, H, W, 32, relu)
             : pool_fwd_z(x, y, ws, 0, B, H, W, 32, relu);
    else
        bf16 ? pool_fwd_z(x, y, ws, 1, B, H, W, C, relu)
             : pool_fwd_z(x, y, ws, 0, B, H, W, C, relu);
}

NN_ZMM_TARGET static void pool_bwd_zmm(const void *dy, const void *y, const uint8_t *ws,
                                       void *dx, int bf16, int B, int H, int W, int C, int relu)
{
    if (C == 16)
        bf16 ? pool_bwd_z(dy, y, ws, dx, 1, B, H, W, 16, relu)
             : pool_bwd_z(dy, y, ws, dx, 0, B, H, W, 16, relu);
    else if (C == 32)
        bf16 ? pool_bwd_z(dy, y, ws, dx, 1, B, H, W, 32, relu)
             : pool_bwd_z(dy, y, ws, dx, 0, B, H, W, 32, relu);
    else
        bf16 ? pool_bwd_z(dy, y, ws, dx, 1, B, H, W, C, relu)
             : pool_bwd_z(dy, y, ws, dx, 0, B, H, W, C, relu);
}
#endif

/* forward (dy == NULL) or backward: AVX-512 (with BF16) where the CPU has it, else scalar;
 * both give the same bits */
static void pool_run(const void *x, void *y, uint8_t *ws, const void *dy, void *dx, int bf16,
                     const int *d, int relu)
{
    if (dy && (d[1] % 2 || d[2] % 2)) /* the last row or column is in no window */
        memset(dx, 0, (size_t)d[0] * d[1] * d[2] * d[3] * (bf16 ? 2 : 4));
#ifdef NN_ZMM
    if (zmm_ok()) {
        if (dy)
            pool_bwd_zmm(dy, y, ws, dx, bf16, d[0], d[1], d[2], d[3], relu);
        else
            pool_fwd_zmm(x, y, ws, bf16, d[0], d[1], d[2], d[3], relu);
        return;
    }
#endif
    if (dy)
        pool_bwd_sc(dy, y, ws, dx, bf16, d[0], d[1], d[2], d[3], relu);
    else
        pool_fwd_sc(x, y, ws, bf16, d[0], d[1], d[2], d[3], relu);
}

/* ---- the first convolution with its pooling: expgraph's kernels ---------------------
 * When the model's first op is a k x k, stride-1 convolution of a one-channel f32 input
 * into C channels (C a multiple of 16) and the 2x2/2 max pooling above (with its ReLU)
 * follows it, one kernel each way runs both. Forward: the four convolution outputs of a
 * pooling window are computed in registers (channels across the vector) and only the
 * pooled values are stored. Backward: the weight gradient takes one term per pooled value,
 * the window's maximum, the only place the pooling passes a gradient to; the convolution's
 * output and its gradient (four times the pooled size, three quarters zeros) are never
 * written. oneDNN ran this layer far below its peak (one input channel: 9 multiply-adds
 * per output) and the pooling's two passes are memory-bound: together about a quarter of
 * the Fashion CNN's gradient.
 * Values. A convolution output is, in f32 with fused multiply-adds from 0, the sum over
 * (kh, kw) in row order of w x (the padding's zeros add +0, which changes nothing), then
 * + bias; the pooling and the ReLU are the kernels' above (first maximum in (kh, kw) order
 * from -FLT_MAX; max(v, 0)); ws keeps the maximum's index 0..3. The weight gradient of an
 * image sums g x over its pooled values in row order (g: the pooled value's gradient,
 * dy * (y > 0) with the ReLU), fused multiply-adds from 0, the bias gradient sums g; the
 * batch's gradient adds the images' in order. The forward equals oneDNN's here; the
 * gradient's summation order is not oneDNN's, so its last digits differ from a run with
 * eg_model_own_kernels = 0. The AVX-512 and the portable kernels give the same bits.
 * Scratch (floats): the padded image, the weights as [tap][C], the weight gradient as
 * [tap][C] and the bias gradient. */

#define CP_MAXK 7 /* up to 7 x 7: the backward keeps k * k vectors of partial sums */

typedef struct cp_dims {
    int B, H, W, C, k, pad, Hp, Wp, PH, PW, relu;
} cp_dims;

static cp_dims cp_dims_of(const nn_step *s)
{
    cp_dims d = {.B = s->shape[0], .H = s->shape[1], .W = s->shape[2], .C = s->shape[3],
                 .k = s->k, .pad = s->pad, .relu = s->relu};
    d.Hp = d.H + 2 * d.pad;
    d.Wp = d.W + 2 * d.pad;
    d.PH = (d.Hp - d.k + 1) / 2;
    d.PW = (d.Wp - d.k + 1) / 2;
    return d;
}

/* image n of x into xp with `pad` zeros around it */
static void cp_pad(const float *x, float *xp, const cp_dims *d, int n)
{
    memset(xp, 0, (size_t)d->Hp * d->Wp * sizeof *xp);
    const float *xi = x + (size_t)n * d->H * d->W;
    for (int h = 0; h < d->H; h++)
        memcpy(xp + (size_t)(h + d->pad) * d->Wp + d->pad, xi + (size_t)h * d->W,
               (size_t)d->W * sizeof *xp);
}

/* the weight gradient from its [tap][C] sums gt into gw ([C][tap], the parameter vector's
 * order), the bias gradient (gt's last C) into gb when there is one */
static void cp_grad_out(const float *gt, float *gw, float *gb, const cp_dims *d)
{
    const int C = d->C, kk = d->k * d->k;
    for (int c = 0; c < C; c++) {
        for (int t = 0; t < kk; t++)
            gw[(size_t)c * kk + t] = gt[(size_t)t * C + c];
        if (gb)
            gb[c] = gt[(size_t)kk * C + c];
    }
}

static void cp_fwd_sc(const float *x, const float *w, const float *bias, float *y, uint8_t *ws,
                      float *xp, const cp_dims *d)
{
    const int k = d->k, C = d->C;
    for (int n = 0; n < d->B; n++) {
        cp_pad(x, xp, d, n);
        for (int ph = 0; ph < d->PH; ph++)
            for (int pw = 0; pw < d->PW; pw++) {
                const size_t o = (((size_t)n * d->PH + ph) * d->PW + pw) * C;
                for (int c = 0; c < C; c++) {
                    float v[4];
                    int a;
                    for (int j = 0; j < 4; j++) {
                        const float *xr =
                            xp + (size_t)(2 * ph + (j >> 1)) * d->Wp + 2 * pw + (j & 1);
                        float acc = 0.0f;
                        for (int kh = 0; kh < k; kh++)
                            for (int kw = 0; kw < k; kw++)
                                acc = fmaf(w[(size_t)c * k * k + kh * k + kw],
                                           xr[(size_t)kh * d->Wp + kw], acc);
                        v[j] = acc + (bias ? bias[c] : 0.0f);
                    }
                    y[o + c] = win_max(v, d->relu, &a);
                    ws[o + c] = (uint8_t)a;
                }
            }
    }
}

static void cp_bwd_sc(const float *dy, const float *y, const uint8_t *ws, const float *x, float *gw,
                      float *gb, float *xp, float *gt, const cp_dims *d)
{
    const int k = d->k, C = d->C, kk = k * k;
    float part[CP_MAXK * CP_MAXK];
    memset(gt, 0, (size_t)(kk + 1) * C * sizeof *gt); /* [tap][C], then the bias's C */
    for (int n = 0; n < d->B; n++) {
        cp_pad(x, xp, d, n);
        for (int c = 0; c < C; c++) {
            float pb = 0.0f;
            for (int t = 0; t < kk; t++)
                part[t] = 0.0f;
            for (int ph = 0; ph < d->PH; ph++)
                for (int pw = 0; pw < d->PW; pw++) {
                    const size_t o = (((size_t)n * d->PH + ph) * d->PW + pw) * C + c;
                    const float g = win_grad(dy[o], y[o], d->relu);
                    const int j = ws[o];
                    const float *xr = xp + (size_t)(2 * ph + (j >> 1)) * d->Wp + 2 * pw + (j & 1);
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++)
                            part[kh * k + kw] =
                                fmaf(g, xr[(size_t)kh * d->Wp + kw], part[kh * k + kw]);
                    pb = pb + g;
                }
            for (int t = 0; t < kk; t++)
                gt[(size_t)t * C + c] = gt[(size_t)t * C + c] + part[t];
            gt[(size_t)kk * C + c] = gt[(size_t)kk * C + c] + pb;
        }
    }
    cp_grad_out(gt, gw, gb, d);
}

#ifdef NN_ZMM
/* k is a constant where inlined from cp_fwd_zmm / cp_bwd_zmm (3: the Fashion CNN's) */
NN_ZMM_TARGET static inline __attribute__((always_inline)) void
cp_fwd_z(const float *x, const float *w, const float *bias, float *y, uint8_t *ws, float *xp,
         float *wt, const cp_dims *d, const int k)
{
    const int C = d->C, kk = k * k, Wp = d->Wp;
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < C; c++)
#pragma GCC unroll 49
        for (int t = 0; t < kk; t++)
            wt[(size_t)t * C + c] = w[(size_t)c * kk + t];
    for (int n = 0; n < d->B; n++) {
        cp_pad(x, xp, d, n);
        for (int cb = 0; cb < C; cb += 16) {
            const __m512 bv = bias ? _mm512_loadu_ps(bias + cb) : zero;
            __m512 wv[CP_MAXK * CP_MAXK];
#pragma GCC unroll 49
            for (int t = 0; t < kk; t++)
                wv[t] = _mm512_loadu_ps(wt + (size_t)t * C + cb);
            for (int ph = 0; ph < d->PH; ph++)
                for (int pw = 0; pw < d->PW; pw++) {
                    const size_t o = (((size_t)n * d->PH + ph) * d->PW + pw) * C + cb;
                    const float *x0 = xp + (size_t)(2 * ph) * Wp + 2 * pw;
                    __m512 acc[4];
#pragma GCC unroll 49
                    for (int j = 0; j < 4; j++)
                        acc[j] = zero;
#pragma GCC unroll 49
                    for (int kh = 0; kh < k; kh++)
#pragma GCC unroll 49
                        for (int kw = 0; kw < k; kw++)
#pragma GCC unroll 49
                            for (int j = 0; j < 4; j++)
                                acc[j] = _mm512_fmadd_ps(
                                    wv[kh * k + kw],
                                    _mm512_set1_ps(x0[(size_t)(kh + (j >> 1)) * Wp + kw + (j & 1)]),
                                    acc[j]);
                    __m512i a;
#pragma GCC unroll 49
                    for (int j = 0; j < 4; j++)
                        acc[j] = _mm512_add_ps(acc[j], bv);
                    _mm512_storeu_ps(y + o, win_max_z(acc, d->relu, &a));
                    _mm512_mask_cvtepi32_storeu_epi8(ws + o, 0xffff, a);
                }
        }
    }
}

NN_ZMM_TARGET static inline __attribute__((always_inline)) void
cp_bwd_z(const float *dy, const float *y, const uint8_t *ws, const float *x, float *gw, float *gb,
         float *xp, float *gt, const cp_dims *d, const int k)
{
    const int C = d->C, kk = k * k, Wp = d->Wp;
    const __m512 zero = _mm512_setzero_ps();
    memset(gt, 0, (size_t)(kk + 1) * C * sizeof *gt);
    for (int n = 0; n < d->B; n++) {
        cp_pad(x, xp, d, n);
        for (int cb = 0; cb < C; cb += 16) {
            __m512 part[CP_MAXK * CP_MAXK], pb = zero;
#pragma GCC unroll 49
            for (int t = 0; t < kk; t++)
                part[t] = zero;
            for (int ph = 0; ph < d->PH; ph++)
                for (int pw = 0; pw < d->PW; pw++) {
                    const size_t o = (((size_t)n * d->PH + ph) * d->PW + pw) * C + cb;
                    const __m512 g =
                        win_grad_z(_mm512_loadu_ps(dy + o), _mm512_loadu_ps(y + o), d->relu);
                    const __m512i a =
                        _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ws + o)));
                    const float *x0 = xp + (size_t)(2 * ph) * Wp + 2 * pw;
#pragma GCC unroll 49
                    for (int j = 0; j < 4; j++) {
                        const __mmask16 mj = _mm512_cmpeq_epi32_mask(a, _mm512_set1_epi32(j));
                        if (!mj)
                            continue;
                        const float *xr = x0 + (size_t)(j >> 1) * Wp + (j & 1);
#pragma GCC unroll 49
                        for (int kh = 0; kh < k; kh++)
#pragma GCC unroll 49
                            for (int kw = 0; kw < k; kw++)
                                part[kh * k + kw] = _mm512_mask3_fmadd_ps(
                                    g, _mm512_set1_ps(xr[(size_t)kh * Wp + kw]), part[kh * k + kw],
                                    mj);
                    }
                    pb = _mm512_add_ps(pb, g);
                }
#pragma GCC unroll 49
            for (int t = 0; t < kk; t++) {
                float *q = gt + (size_t)t * C + cb;
                _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), part[t]));
            }
            float *q = gt + (size_t)kk * C + cb;
            _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), pb));
        }
    }
    cp_grad_out(gt, gw, gb, d);
}

NN_ZMM_TARGET static void cp_fwd_zmm(const float *x, const float *w, const float *bias, float *y,
                                     uint8_t *ws, float *xp, float *wt, const cp_dims *d)
{
    if (d->k == 3)
        cp_fwd_z(x, w, bias, y, ws, xp, wt, d, 3);
    else if (d->k == 5)
        cp_fwd_z(x, w, bias, y, ws, xp, wt, d, 5);
    else
        cp_fwd_z(x, w, bias, y, ws, xp, wt, d, d->k);
}

NN_ZMM_TARGET static void cp_bwd_zmm(const float *dy, const float *y, const uint8_t *ws,
                                     const float *x, float *gw, float *gb, float *xp, float *gt,
                                     const cp_dims *d)
{
    if (d->k == 3)
        cp_bwd_z(dy, y, ws, x, gw, gb, xp, gt, d, 3);
    else if (d->k == 5)
        cp_bwd_z(dy, y, ws, x, gw, gb, xp, gt, d, 5);
    else
        cp_bwd_z(dy, y, ws, x, gw, gb, xp, gt, d, d->k);
}
#endif

/* ---- expgraph's 3x3 convolution of C channels into C ----------------------------------
 * The forward of a 3x3 convolution, stride 1, padding 1, from C f32 channels into C, NHWC,
 * weights in hwio ([kh][kw][ic][oc]), as oneDNN's jit and brgconv kernels sum it: each output
 * vector of 16 channels from zero, one fused multiply-add per tap in the order kh, kw, ic,
 * the taps in the padding skipped, the bias added last. A row is computed in blocks of U
 * outputs, all C output channels (C / 16 vectors) at once: U x C / 16 accumulators and C / 16
 * weight vectors in registers, each input value broadcast once for C / 16 fused
 * multiply-adds. Where it runs (c3_fits): ResNets' 16-channel stage at CIFAR's 32 wide (blocks
 * of 16; oneDNN's jit kernel takes 28 outputs at a time, which leaves a 4-wide tail there) and
 * the 32-channel stage at 14 and 16 wide (blocks of 14 and 8). With the activations not in
 * the cache, as in training, these ran ~20% faster than oneDNN's kernels (bench/README.md);
 * at 28 wide and at 64 channels oneDNN's were the faster. c3_own plans it, with a test input
 * against oneDNN's primitive. */
static int c3_fits(int C, int W)
{
    return (C == 16 && W >= 32 && W % 16 == 0) || (C == 32 && (W == 14 || W == 16));
}

#ifdef NN_ZMM
/* the U outputs of row oh from column ow0; L / R: the block is the row's first / last */
NN_ZMM_TARGET static inline __attribute__((always_inline)) void
c3_blk(const float *x, const float *w, const float *bias, float *y, int H, int W, int oh,
       int ow0, const int C, const int U, const int L, const int R, const int REV)
{
    enum { NBMAX = 2 };
    const int NB = C / 16;
    __m512 acc[NBMAX][16];
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++)
#pragma GCC unroll 16
        for (int j = 0; j < U; j++)
            acc[b][j] = _mm512_setzero_ps();
    const int NIC = REV ? 16 : C; /* REV: the input channels in blocks of 16 */
    for (int cb = 0; cb < (REV ? NB : 1); cb++)
    for (int th = 0; th < 3; th++) {
        const int kh = REV ? 2 - th : th, ih = oh + kh - 1;
        if (ih < 0 || ih >= H)
            continue;
        const float *xr = x + ((size_t)ih * W + ow0 - 1) * C;
#pragma GCC unroll 3
        for (int tw = 0; tw < 3; tw++) {
            const int kw = REV ? 2 - tw : tw;
            const float *wk = w + (size_t)(kh * 3 + kw) * C * C, *xk = xr + kw * C;
#pragma GCC unroll 2
            for (int i = 0; i < NIC; i++) {
                const int ic = 16 * cb + i;
                __m512 wv[NBMAX];
#pragma GCC unroll 2
                for (int b = 0; b < NB; b++)
                    wv[b] = _mm512_loadu_ps(wk + (size_t)ic * C + 16 * b);
#pragma GCC unroll 16
                for (int j = 0; j < U; j++) {
                    if ((L && kw == 0 && j == 0) || (R && kw == 2 && j == U - 1))
                        continue; /* the padding */
                    const __m512 xv = _mm512_set1_ps(xk[j * C + ic]);
#pragma GCC unroll 2
                    for (int b = 0; b < NB; b++)
                        acc[b][j] = _mm512_fmadd_ps(xv, wv[b], acc[b][j]);
                }
            }
        }
    }
    float *yo = y + ((size_t)oh * W + ow0) * C;
#pragma GCC unroll 2
    for (int b = 0; b < NB; b++) {
        const __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * b) : _mm512_setzero_ps();
#pragma GCC unroll 16
        for (int j = 0; j < U; j++)
            _mm512_storeu_ps(yo + j * C + 16 * b, bias ? _mm512_add_ps(acc[b][j], bv) : acc[b][j]);
    }
}

/* one row in blocks of U (U divides W, W / U >= 2; or U == W); REV: the input channels in
 * blocks of 16, each with the taps in the order kh, kw descending (oneDNN's backward data) */
NN_ZMM_TARGET static inline __attribute__((always_inline)) void
c3_row(const float *x, const float *w, const float *bias, float *y, int H, int W, int oh,
       const int C, const int U, const int REV)
{
    if (U == W) {
        c3_blk(x, w, bias, y, H, W, oh, 0, C, U, 1, 1, REV);
        return;
    }
    c3_blk(x, w, bias, y, H, W, oh, 0, C, U, 1, 0, REV);
    for (int ow0 = U; ow0 < W - U; ow0 += U)
        c3_blk(x, w, bias, y, H, W, oh, ow0, C, U, 0, 0, REV);
    c3_blk(x, w, bias, y, H, W, oh, W - U, C, U, 0, 1, REV);
}

/* B images of H x W x C, a shape c3_fits takes; rev: c3_row's REV */
NN_ZMM_TARGET static void c3_fwd_zmm(const float *x, const float *w, const float *bias, float *y,
                                     int B, int H, int W, int C, int rev)
{
    for (int n = 0; n < B; n++) {
        const size_t o = (size_t)n * H * W * C;
        for (int oh = 0; oh < H; oh++)
            if (C == 16 && rev)
                c3_row(x + o, w, bias, y + o, H, W, oh, 16, 16, 1);
            else if (C == 16)
                c3_row(x + o, w, bias, y + o, H, W, oh, 16, 16, 0);
            else if (W == 14 && rev)
                c3_row(x + o, w, bias, y + o, H, W, oh, 32, 14, 1);
            else if (W == 14)
                c3_row(x + o, w, bias, y + o, H, W, oh, 32, 14, 0);
            else if (rev)
                c3_row(x + o, w, bias, y + o, H, W, oh, 32, 8, 1);
            else
                c3_row(x + o, w, bias, y + o, H, W, oh, 32, 8, 0);
    }
}
#endif

/* c3_fwd_zmm where the CPU has AVX-512 (c3_own plans it only there); dims: B, H, W, C */
static void c3_fwd(float *const in[3], float *out, const int dims[4])
{
#ifdef NN_ZMM
    if (zmm_have()) {
        c3_fwd_zmm(in[0], in[1], in[2], out, dims[0], dims[1], dims[2], dims[3], 0);
        return;
    }
#endif
    no_values(out, (size_t)dims[0] * dims[1] * dims[2] * dims[3]); /* not planned so */
    (void)in;
}

/* The input gradient of c3's convolution (c3b_own), as oneDNN's jit backward-data kernel sums
 * it: the forward kernel on dy with the weights flipped and transposed, wt[kh][kw][oc][ic] =
 * w[oc][ic][2 - kh][2 - kw] (w as the flat vector holds it, oihw), the output gradient's
 * channels in blocks of 16, each block's taps in the order kh, kw descending (the original
 * kernel's ascending), one chain of fused multiply-adds across the blocks. dims: B, H, W, C. */
static void c3_bwd_data(const float *dy, const float *w, float *dx, float *wt, const int dims[4])
{
    const int C = dims[3];
    for (int o = 0; o < C; o++)
        for (int i = 0; i < C; i++)
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++)
                    wt[((size_t)(kh * 3 + kw) * C + o) * C + i] =
                        w[(((size_t)o * C + i) * 3 + 2 - kh) * 3 + 2 - kw];
#ifdef NN_ZMM
    if (zmm_have()) {
        c3_fwd_zmm(dy, wt, NULL, dx, dims[0], dims[1], dims[2], C, 1);
        return;
    }
#endif
    no_values(dx, (size_t)dims[0] * dims[1] * dims[2] * C); /* not planned so */
}

/* c3_bwd_data on a probe's input: in[0] dy, in[1] the weights in oihw */
static void c3_bwd_probe(float *const in[3], float *out, const int dims[4])
{
    float *wt = malloc((size_t)9 * dims[3] * dims[3] * sizeof *wt);
    if (wt)
        c3_bwd_data(in[0], in[1], out, wt, dims);
    else
        no_values(out, (size_t)dims[0] * dims[1] * dims[2] * dims[3]);
    free(wt);
}

/* SK_C3F args: x, weights (hwio), [bias,] y (the bias with s->bias); SK_C3B: dy, weights
 * (oihw), dx, wt (9 C^2 floats); shape: B, H, W, C */
static void c3_run(const nn_step *s)
{
    if (s->sk == SK_C3B) {
        c3_bwd_data(mem_ptr(s->arg[0].memory), mem_ptr(s->arg[1].memory),
                    mem_ptr(s->arg[2].memory), mem_ptr(s->arg[3].memory), s->shape);
        return;
    }
    const int nb = s->bias != 0;
    float *in[3] = {mem_ptr(s->arg[0].memory), mem_ptr(s->arg[1].memory),
                    nb ? mem_ptr(s->arg[2].memory) : NULL};
    c3_fwd(in, mem_ptr(s->arg[2 + nb].memory), s->shape);
}

/* SK_CPF args: x, weights, [bias,] y, ws, scratch; SK_CPB: dy, y, ws, x, weight gradient,
 * [bias gradient,] scratch (the bias's with s->bias) */
static void cp_run(const nn_step *s)
{
    const cp_dims d = cp_dims_of(s);
    const int nb = s->bias != 0;
    float *sc = mem_ptr(s->arg[s->narg - 1].memory);
    float *xp = sc, *wt = sc + (size_t)d.Hp * d.Wp;
    if (s->sk == SK_CPF) {
        const float *x = mem_ptr(s->arg[0].memory), *w = mem_ptr(s->arg[1].memory);
        const float *bias = nb ? mem_ptr(s->arg[2].memory) : NULL;
        float *y = mem_ptr(s->arg[2 + nb].memory);
        uint8_t *ws = mem_ptr(s->arg[3 + nb].memory);
#ifdef NN_ZMM
        if (zmm_ok()) {
            cp_fwd_zmm(x, w, bias, y, ws, xp, wt, &d);
            return;
        }
#endif
        cp_fwd_sc(x, w, bias, y, ws, xp, &d);
        return;
    }
    const float *dy = mem_ptr(s->arg[0].memory), *y = mem_ptr(s->arg[1].memory);
    const uint8_t *ws = mem_ptr(s->arg[2].memory);
    const float *x = mem_ptr(s->arg[3].memory);
    float *gw = mem_ptr(s->arg[4].memory);
    float *gb = nb ? mem_ptr(s->arg[5].memory) : NULL;
#ifdef NN_ZMM
    if (zmm_ok()) {
        cp_bwd_zmm(dy, y, ws, x, gw, gb, xp, wt, &d);
        return;
    }
#endif
    cp_bwd_sc(dy, y, ws, x, gw, gb, xp, wt, &d);
}

/* ---- batch norm in training, f32 NHWC, whole batch: expgraph's kernels ----------------
 * oneDNN's batch norm makes two passes for the statistics and one for the output, and the
 * residual block's add and ReLU after the block's second norm make two more; in the
 * backward the ReLU's gradient is a pass of its own before the norm's two. These kernels
 * compute what oneDNN 2.6's batch norm (one thread, NHWC, f32: its jit kernel), binary add
 * and ReLU compute, operation for operation, with the add and the ReLU inside the norm's
 * output pass and the ReLU's gradient inside the norm's first backward pass:
 *   mean = (0 + sum of x in row order from 0) / n, n = (float)B * (float)(H W);
 *   var = (0 + sum in row order from 0 of fma(m, m, s), m = mean - x) / n;
 *   y = fma(x - mean, a, shift), a = scale / sqrt(var + eps); mode 1: ReLU (y > 0 ? y : +0);
 *   mode 2: y + the shortcut's value, then the ReLU (a stride-2 shortcut: + x[b, 2h, 2w, c]
 *   of the block's input for its channels c, nothing added to the zero-padded ones, as
 *   oneDNN's subsampling pooling and sum-reorder into out[:, :C] did);
 * backward, inv = 1 / sqrt(var + eps), g = dy (mode 0), y > 0 ? dy : +0 (mode 1), or
 * dy * (y > 0 ? 1 : 0) written back to dy (mode 2: the ReLU's gradient, which the
 * shortcut's gradient reads later):
 *   a = sum in row order from 0 of fma(-(mean - x), g, a), b = sum of g;
 *   dscale = (0 + a) inv, dshift = 0 + b;
 *   dx = ((g - dshift / n) + (mean - x) ((dscale inv) / n)) inv scale.
 * The ReLU's mask is the output's sign (y > 0 exactly where the value before the ReLU is). In
 * mode 1 the backward computes that value again from x, which it reads anyway: the same
 * operations on the same operands, so the same bits, and y is not read (two passes over a
 * tensor fewer); mode 2 reads y (the value also holds the shortcut's). With a pending shortcut
 * gradient p (bn_pending), dy + p (oneDNN's binary add) replaces dy wherever dy is read; for
 * a stride-2 shortcut p is the block output's gradient at (b, h / 2, w / 2) for even h and
 * w and + 0 elsewhere (oneDNN's pooling backward wrote zeros there, then added them).
 * check_model compares them with oneDNN bit for bit. */

typedef struct bn_dims {
    size_t R; /* rows: B H W */
    int B, H, W, C, mode;
    int sH, sW, sC; /* a stride-2 shortcut's other tensor (0: none, or the same shape): mode
                       2's shortcut source, row (b, 2y, 2x) for row (b, y, x), its first sC
                       channels added; the pending gradient, row (b, y / 2, x / 2) for even y
                       and x, + 0 elsewhere */
    float n, eps;
} bn_dims;

/* row (b, y, x) = r of the norm's tensor: the shortcut's row in the forward (mode 2) */
static inline const float *bn_sc_row(const float *sc, const bn_dims *d, size_t r, int b, int y,
                                     int x)
{
    return d->sC ? sc + (((size_t)b * d->sH + 2 * y) * d->sW + 2 * x) * d->sC : sc + r * d->C;
}

/* the pending gradient's row (NULL: none here, + 0) */
static inline const float *bn_p_row(const float *p, const bn_dims *d, size_t r, int b, int y,
                                    int x)
{
    if (!d->sC)
        return p + r * d->C;
    return (y | x) & 1 ? NULL : p + (((size_t)b * d->sH + y / 2) * d->sW + x / 2) * d->sC;
}

/* rows r = (rb, ry, rx) in order */
#define BN_ROWS(d, ...)                                                                     \
    do {                                                                                    \
        size_t r = 0;                                                                       \
        for (int rb = 0; rb < (d)->B; rb++)                                                 \
            for (int ry = 0; ry < (d)->H; ry++)                                             \
                for (int rx = 0; rx < (d)->W; rx++, r++) {                                  \
                    __VA_ARGS__                                                             \
                }                                                                           \
    } while (0)

static bn_dims bn_dims_of(const nn_step *s)
{
    return (bn_dims){.R = (size_t)s->shape[0] * s->shape[1] * s->shape[2], .B = s->shape[0],
                     .H = s->shape[1], .W = s->shape[2], .C = s->shape[3], .mode = s->relu,
                     .sH = s->sub[0], .sW = s->sub[1], .sC = s->sub[2],
                     .n = 1.0f * (float)s->shape[0] * (float)((size_t)s->shape[1] * s->shape[2]),
                     .eps = NN_EPS};
}

static inline float bn_relu(float v) { return v > 0.0f ? v : 0.0f; }

/* the norm's output gradient at i (channel c): dy (+ p, pr: its row, NULL: + 0); in mode 1
 * masked by the ReLU, whose input fma(x - mean, a, shift) is computed again (ys: the shift) */
static inline float bn_dy(const float *dy, const float *p, const float *pr, const float *x,
                          const float *mean, const float *a, const float *ys, size_t i, int c,
                          int mode)
{
    const float g = p ? dy[i] + (pr ? pr[c] : 0.0f) : dy[i];
    return mode == 1 ? (fmaf(x[i] - mean[c], a[c], ys[c]) > 0.0f ? g : 0.0f) : g;
}

/* a = scale / sqrt(var + eps), the forward's */
static void bn_a_sc(const float *scale, const float *var, float *a, const bn_dims *d)
{
    for (int c = 0; c < d->C; c++)
        a[c] = scale[c] / sqrtf(var[c] + d->eps);
}

/* the statistics (mean, var) and y; tmp: 2 C floats */
static void bn_fwd_sc(const float *x, const float *scale, const float *shift, const float *sc,
                      float *y, float *mean, float *var, float *tmp, const bn_dims *d)
{
    const size_t R = d->R;
    const int C = d->C;
    float *acc = tmp, *a = tmp + C;
    for (int c = 0; c < C; c++)
        acc[c] = 0.0f;
    for (size_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[c] = acc[c] + x[r * C + c];
    for (int c = 0; c < C; c++) {
        mean[c] = (0.0f + acc[c]) / d->n;
        acc[c] = 0.0f;
    }
    for (size_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const float m = mean[c] - x[r * C + c];
            acc[c] = fmaf(m, m, acc[c]);
        }
    for (int c = 0; c < C; c++)
        var[c] = (0.0f + acc[c]) / d->n;
    bn_a_sc(scale, var, a, d);
    const int CS = d->sC ? d->sC : C;
    BN_ROWS(d, {
        const float *sr = d->mode == 2 ? bn_sc_row(sc, d, r, rb, ry, rx) : NULL;
        for (int c = 0; c < C; c++) {
            const size_t i = r * C + c;
            float v = fmaf(x[i] - mean[c], a[c], shift[c]);
            if (d->mode == 2 && c < CS)
                v = v + sr[c];
            y[i] = d->mode ? bn_relu(v) : v;
        }
    });
}

/* the gradients: dx, dscale, dshift (and g into dy in mode 2); ys: y (mode 2) or the shift
 * (mode 1); p: the pending shortcut gradient or NULL; tmp: 5 C floats */
static void bn_bwd_sc(const float *x, const float *scale, const float *mean, const float *var,
                      float *dy, const float *p, const float *ys, float *dx, float *dscale,
                      float *dshift, float *tmp, const bn_dims *d)
{
    const int C = d->C;
    float *a = tmp, *b = tmp + C, *inv = tmp + 2 * C, *k = tmp + 3 * C, *ya = tmp + 4 * C;
    for (int c = 0; c < C; c++)
        a[c] = b[c] = 0.0f;
    if (d->mode == 1)
        bn_a_sc(scale, var, ya, d);
    BN_ROWS(d, {
        const float *pr = p ? bn_p_row(p, d, r, rb, ry, rx) : NULL;
        for (int c = 0; c < C; c++) {
            const size_t i = r * C + c;
            float g = bn_dy(dy, p, pr, x, mean, ya, ys, i, c, d->mode);
            if (d->mode == 2)
                dy[i] = g = g * (ys[i] > 0.0f ? 1.0f : 0.0f);
            a[c] = fmaf(-(mean[c] - x[i]), g, a[c]);
            b[c] = b[c] + g;
        }
    });
    for (int c = 0; c < C; c++) {
        inv[c] = 1.0f / sqrtf(var[c] + d->eps);
        dscale[c] = (0.0f + a[c]) * inv[c];
        dshift[c] = 0.0f + b[c];
        k[c] = dscale[c] * inv[c] / d->n;
        b[c] = dshift[c] / d->n;
    }
    BN_ROWS(d, {
        const float *pr = p ? bn_p_row(p, d, r, rb, ry, rx) : NULL;
        for (int c = 0; c < C; c++) {
            const size_t i = r * C + c;
            const float g =
                d->mode == 2 ? dy[i] : bn_dy(dy, p, pr, x, mean, ya, ys, i, c, d->mode);
            const float v = (g - b[c]) + (mean[c] - x[i]) * k[c];
            dx[i] = v * inv[c] * scale[c];
        }
    });
}

#ifdef NN_ZMM
/* the AVX-512 kernels: C a multiple of 16, channels across the vector, the statistics
 * NB blocks of 16 channels at a time. The kernels below are inlined with NB and the mode as
 * constants and their loops over the NB blocks unrolled (BN_UNROLL), so the NB accumulators
 * stay in registers: GCC 12 at -O2 kept them in a stack array otherwise, and every row's
 * sum then waited on a store and a reload (2x the time at 64 channels). The dimensions are
 * read into locals (d is by value): a store through y or dx could alias d's floats, and
 * the row loops reloaded them after every store. */
#define BN_NB 4
#define BN_UNROLL _Pragma("GCC unroll 4")
#define BN_INLINE NN_ZMM_TARGET static inline __attribute__((always_inline))
/* f(args..., m) with m the mode as a constant */
#define BN_BY_MODE(mode, f, ...)                                                             \
    do {                                                                                    \
        switch (mode) {                                                                     \
        case 0: f(__VA_ARGS__, 0); break;                                                   \
        case 1: f(__VA_ARGS__, 1); break;                                                   \
        default: f(__VA_ARGS__, 2); break;                                                  \
        }                                                                                   \
    } while (0)

/* The statistics of NB blocks from c0. Their two passes wait on their sums' dependency chains
 * more than on memory, so they also fetch y's lines for writing (prefetchw, the first half of
 * the rows during the first pass, the second half during the second): the output pass then
 * writes into cached lines instead of reading each from memory first (a 28x28 16-channel
 * norm of a fresh y, alone: 148-158 -> 117-126 us). */
BN_INLINE void bn_stats_zmm_nb(const float *x, float *mean, float *var, float *y,
                               const bn_dims d, int c0, const int NB)
{
    const size_t R = d.R;
    const int C = d.C;
    const __m512 zero = _mm512_setzero_ps(), n = _mm512_set1_ps(d.n);
    __m512 acc[BN_NB], m[BN_NB];
    BN_UNROLL
    for (int j = 0; j < NB; j++)
        acc[j] = zero;
    for (size_t r = 0; r < R; r++) {
        BN_UNROLL
        for (int j = 0; j < NB; j++) {
            acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(x + r * C + c0 + 16 * j));
            if (!(r & 1))
                _mm_prefetch((const char *)(y + r / 2 * C + c0 + 16 * j), _MM_HINT_ET0);
        }
    }
    BN_UNROLL
    for (int j = 0; j < NB; j++) {
        m[j] = _mm512_div_ps(_mm512_add_ps(zero, acc[j]), n);
        _mm512_storeu_ps(mean + c0 + 16 * j, m[j]);
        acc[j] = zero;
    }
    for (size_t r = 0; r < R; r++) {
        BN_UNROLL
        for (int j = 0; j < NB; j++) {
            const __m512 t = _mm512_sub_ps(m[j], _mm512_loadu_ps(x + r * C + c0 + 16 * j));
            acc[j] = _mm512_fmadd_ps(t, t, acc[j]);
            if (!(r & 1))
                _mm_prefetch((const char *)(y + (R / 2 + r / 2) * C + c0 + 16 * j),
                             _MM_HINT_ET0);
        }
    }
    BN_UNROLL
    for (int j = 0; j < NB; j++)
        _mm512_storeu_ps(var + c0 + 16 * j, _mm512_div_ps(_mm512_add_ps(zero, acc[j]), n));
}

/* a = scale / sqrt(var + eps), the forward's */
NN_ZMM_TARGET static void bn_a_zmm(const float *scale, const float *var, float *a,
                                   const bn_dims *d)
{
    const __m512 eps = _mm512_set1_ps(d->eps);
    for (int c = 0; c < d->C; c += 16)
        _mm512_storeu_ps(a + c, _mm512_div_ps(_mm512_loadu_ps(scale + c),
                                              _mm512_sqrt_ps(_mm512_add_ps(
                                                  _mm512_loadu_ps(var + c), eps))));
}

/* the forward's output pass, mode a constant where inlined */
BN_INLINE void bn_out_zmm(const float *x, const float *mean, const float *a,
                          const float *shift, const float *sc, float *y, const bn_dims d,
                          const int mode)
{
    const __m512 zero = _mm512_setzero_ps();
    const int C = d.C, CS = d.sC ? d.sC : C;
    BN_ROWS(&d, {
        const float *sr = mode == 2 ? bn_sc_row(sc, &d, r, rb, ry, rx) : NULL;
        for (int c = 0; c < C; c += 16) {
            const size_t i = r * C + c;
            __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i),
                                                     _mm512_loadu_ps(mean + c)),
                                       _mm512_loadu_ps(a + c), _mm512_loadu_ps(shift + c));
            if (mode == 2 && c < CS)
                v = _mm512_add_ps(v, _mm512_loadu_ps(sr + c));
            if (mode)
                v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
            _mm512_storeu_ps(y + i, v);
        }
    });
}

NN_ZMM_TARGET static void bn_fwd_zmm(const float *x, const float *scale, const float *shift,
                                     const float *sc, float *y, float *mean, float *var,
                                     float *tmp, const bn_dims d)
{
    const int C = d.C;
    for (int c0 = 0; c0 < C; c0 += 16 * BN_NB) {
        switch ((C - c0) / 16) {
        case 1: bn_stats_zmm_nb(x, mean, var, y, d, c0, 1); break;
        case 2: bn_stats_zmm_nb(x, mean, var, y, d, c0, 2); break;
        case 3: bn_stats_zmm_nb(x, mean, var, y, d, c0, 3); break;
        default: bn_stats_zmm_nb(x, mean, var, y, d, c0, 4); break;
        }
    }
    float *a = tmp;
    bn_a_zmm(scale, var, a, &d);
    BN_BY_MODE(d.mode, bn_out_zmm, x, mean, a, shift, sc, y, d);
}

/* mode 1's mask at i from t = mean - x: fnmadd(t, a, shift) = fma(x - mean, a, shift) (x -
 * mean is -(mean - x) exactly, and both round the exact value once), the ReLU's input */
BN_INLINE __mmask16 bn_mask1_zmm(__m512 t, const float *a, const float *ys, int c)
{
    return _mm512_cmp_ps_mask(
        _mm512_fnmadd_ps(t, _mm512_loadu_ps(a + c), _mm512_loadu_ps(ys + c)),
        _mm512_setzero_ps(), _CMP_GT_OQ);
}

/* the backward's sums for NB blocks from c0; NB and mode constants where inlined */
BN_INLINE void bn_bsum_zmm_nb(const float *x, const float *mean, float *dy, const float *p,
                              const float *ys, const float *ya, float *a, float *b,
                              const bn_dims d, int c0, const int NB, const int mode)
{
    const int C = d.C;
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    __m512 sa[BN_NB], sb[BN_NB], m[BN_NB];
    BN_UNROLL
    for (int j = 0; j < NB; j++) {
        sa[j] = sb[j] = zero;
        m[j] = _mm512_loadu_ps(mean + c0 + 16 * j);
    }
    BN_ROWS(&d, {
        const float *pr = p ? bn_p_row(p, &d, r, rb, ry, rx) : NULL;
        BN_UNROLL
        for (int j = 0; j < NB; j++) {
            const size_t i = r * C + c0 + 16 * j;
            const __m512 t = _mm512_sub_ps(m[j], _mm512_loadu_ps(x + i));
            __m512 g = _mm512_loadu_ps(dy + i);
            if (p)
                g = _mm512_add_ps(g, pr ? _mm512_loadu_ps(pr + c0 + 16 * j) : zero);
            if (mode == 1) {
                g = _mm512_maskz_mov_ps(bn_mask1_zmm(t, ya, ys, c0 + 16 * j), g);
            } else if (mode == 2) {
                const __mmask16 k =
                    _mm512_cmp_ps_mask(_mm512_loadu_ps(ys + i), zero, _CMP_GT_OQ);
                g = _mm512_mul_ps(g, _mm512_maskz_mov_ps(k, one));
                _mm512_storeu_ps(dy + i, g);
            }
            sa[j] = _mm512_fnmadd_ps(t, g, sa[j]);
            sb[j] = _mm512_add_ps(sb[j], g);
        }
    });
    BN_UNROLL
    for (int j = 0; j < NB; j++) {
        _mm512_storeu_ps(a + c0 + 16 * j, sa[j]);
        _mm512_storeu_ps(b + c0 + 16 * j, sb[j]);
    }
}

/* the backward's sums over every block, mode a constant where inlined */
BN_INLINE void bn_bsum_zmm(const float *x, const float *mean, float *dy, const float *p,
                           const float *ys, const float *ya, float *a, float *b,
                           const bn_dims d, const int mode)
{
    for (int c0 = 0; c0 < d.C; c0 += 16 * BN_NB) {
        switch ((d.C - c0) / 16) {
        case 1: bn_bsum_zmm_nb(x, mean, dy, p, ys, ya, a, b, d, c0, 1, mode); break;
        case 2: bn_bsum_zmm_nb(x, mean, dy, p, ys, ya, a, b, d, c0, 2, mode); break;
        case 3: bn_bsum_zmm_nb(x, mean, dy, p, ys, ya, a, b, d, c0, 3, mode); break;
        default: bn_bsum_zmm_nb(x, mean, dy, p, ys, ya, a, b, d, c0, 4, mode); break;
        }
    }
}

/* the backward's dx pass, mode a constant where inlined */
BN_INLINE void bn_dx_zmm(const float *x, const float *scale, const float *mean,
                         const float *dy, const float *p, const float *ys, const float *ya,
                         const float *b, const float *inv, const float *k, float *dx,
                         const bn_dims d, const int mode)
{
    const __m512 zero = _mm512_setzero_ps();
    const int C = d.C;
    BN_ROWS(&d, {
        const float *pr = p && mode != 2 ? bn_p_row(p, &d, r, rb, ry, rx) : NULL;
        for (int c = 0; c < C; c += 16) {
            const size_t i = r * C + c;
            const __m512 t = _mm512_sub_ps(_mm512_loadu_ps(mean + c), _mm512_loadu_ps(x + i));
            __m512 g = _mm512_loadu_ps(dy + i);
            if (p && mode != 2)
                g = _mm512_add_ps(g, pr ? _mm512_loadu_ps(pr + c) : zero);
            if (mode == 1)
                g = _mm512_maskz_mov_ps(bn_mask1_zmm(t, ya, ys, c), g);
            __m512 v = _mm512_sub_ps(g, _mm512_loadu_ps(b + c));
            v = _mm512_add_ps(v, _mm512_mul_ps(t, _mm512_loadu_ps(k + c)));
            v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_loadu_ps(inv + c)),
                              _mm512_loadu_ps(scale + c));
            _mm512_storeu_ps(dx + i, v);
        }
    });
}

NN_ZMM_TARGET static void bn_bwd_zmm(const float *x, const float *scale, const float *mean,
                                     const float *var, float *dy, const float *p, const float *ys,
                                     float *dx, float *dscale, float *dshift, float *tmp,
                                     const bn_dims d)
{
    const int C = d.C;
    float *a = tmp, *b = tmp + C, *inv = tmp + 2 * C, *k = tmp + 3 * C, *ya = tmp + 4 * C;
    if (d.mode == 1)
        bn_a_zmm(scale, var, ya, &d);
    BN_BY_MODE(d.mode, bn_bsum_zmm, x, mean, dy, p, ys, ya, a, b, d);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f),
                 eps = _mm512_set1_ps(d.eps), n = _mm512_set1_ps(d.n);
    for (int c = 0; c < C; c += 16) {
        const __m512 iv = _mm512_div_ps(
            one, _mm512_sqrt_ps(_mm512_add_ps(_mm512_loadu_ps(var + c), eps)));
        const __m512 ds = _mm512_mul_ps(_mm512_add_ps(zero, _mm512_loadu_ps(a + c)), iv),
                     dh = _mm512_add_ps(zero, _mm512_loadu_ps(b + c));
        _mm512_storeu_ps(dscale + c, ds);
        _mm512_storeu_ps(dshift + c, dh);
        _mm512_storeu_ps(inv + c, iv);
        _mm512_storeu_ps(k + c, _mm512_div_ps(_mm512_mul_ps(ds, iv), n));
        _mm512_storeu_ps(b + c, _mm512_div_ps(dh, n));
    }
    BN_BY_MODE(d.mode, bn_dx_zmm, x, scale, mean, dy, p, ys, ya, b, inv, k, dx, d);
}
#endif

/* SK_BNF args: x, scale, shift, mean, var, y, the shortcut (mode 2; else x again), scratch;
 * SK_BNB: x, scale, mean, var, dy, y (mode 2) or the shift (mode 1; mode 0: unused), dx,
 * dscale, dshift, [the pending shortcut gradient,] scratch */
static void bn_own_run(const nn_step *s)
{
    const bn_dims d = bn_dims_of(s);
    void *m[11] = {0};
    for (int i = 0; i < s->narg; i++)
        m[i] = mem_ptr(s->arg[i].memory);
    float *tmp = m[s->narg - 1];
    const float *pend = s->sk == SK_BNB && s->narg == 11 ? m[9] : NULL;
#ifdef NN_ZMM
    const int z = zmm_ok() && d.C % 16 == 0;
#endif
    if (s->sk == SK_BNF) {
#ifdef NN_ZMM
        if (z) {
            bn_fwd_zmm(m[0], m[1], m[2], m[6], m[5], m[3], m[4], tmp, d);
            return;
        }
#endif
        bn_fwd_sc(m[0], m[1], m[2], m[6], m[5], m[3], m[4], tmp, &d);
        return;
    }
#ifdef NN_ZMM
    if (z) {
        bn_bwd_zmm(m[0], m[1], m[2], m[3], m[4], pend, m[5], m[6], m[7], m[8], tmp, d);
        return;
    }
#endif
    bn_bwd_sc(m[0], m[1], m[2], m[3], m[4], pend, m[5], m[6], m[7], m[8], tmp, &d);
}

static void own_run(const nn_step *s)
{
    __atomic_fetch_add(&eg_model_own_runs, 1, __ATOMIC_RELAXED);
    if (s->sk == SK_DENSEF) {
        dense_own_run(s);
        return;
    }
    if (s->sk == SK_C3F || s->sk == SK_C3B) {
        c3_run(s);
        return;
    }
    if (s->sk >= SK_BNF) {
        bn_own_run(s);
        return;
    }
    if (s->sk >= SK_CPF) {
        cp_run(s);
        return;
    }
    void *a0 = mem_ptr(s->arg[0].memory), *a1 = mem_ptr(s->arg[1].memory);
    uint8_t *ws = mem_ptr(s->arg[2].memory);
    if (s->sk == SK_POOLF)
        pool_run(a0, a1, ws, NULL, NULL, s->bf16, s->shape, s->relu);
    else
        pool_run(NULL, a1, ws, a0, mem_ptr(s->arg[3].memory), s->bf16, s->shape, s->relu);
}

/* whether op i is a 2x2/2 max pooling of NHWC tensors, run by pool_fwd / pool_bwd */
static int pool_own(const nn_net *n, int i)
{
    const nn_op *op = &n->op[i];
    if (!eg_model_own_kernels)
        return 0;
    const nn_tensor *T = &n->t[op->in], *O = &n->t[op->out];
    return op->kind == NN_MAXPOOL && op->k == 0 && !T->flat && !T->nchw && !O->flat &&
           !O->nchw;
}

/* whether op i is a ReLU fused into the pooling before it */
static int relu_fused(const nn_net *n, int i)
{
    return i > 0 && n->op[i].kind == NN_RELU && n->op[i].in == n->op[i - 1].out &&
           pool_own(n, i - 1);
}

static int build_pool_own(bctx *b, int i, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *T = &b->n->t[op->in];
    nn_plan *p = b->p;
    size_t nout = (size_t)b->B * (T->h / 2) * (T->w / 2) * T->c;
    dnnl_memory_desc_t wmd = md_tag(1, nout ? (dnnl_dim_t)nout : 1, 0, 0, 0, dnnl_u8, dnnl_x);
    dnnl_memory_t ws;
    int rc = mem_new(p, b->n, &wmd, DNNL_MEMORY_ALLOCATE, -1, 0, &ws, err);
    for (int l = 0; l < 1 + (b->train && op->in != 0) && !rc; l++) {
        if ((rc = split_step(b, l ? LIST_BW : LIST_FW, l ? SK_POOLB : SK_POOLF, 0, err)))
            break;
        nn_step *s = l ? &p->bw[p->nbw - 1] : &p->fw[p->nfw - 1];
        s->phase = PH_POOL;
        s->shape[0] = b->B, s->shape[1] = T->h, s->shape[2] = T->w, s->shape[3] = T->c;
        s->relu = i + 1 < b->n->nop && relu_fused(b->n, i + 1);
        s->bf16 = b->n->prec == EG_PREC_BF16;
        arg(s, 0, l ? p->dif[op->out] : p->act[op->in]);
        arg(s, 0, p->act[op->out]);
        arg(s, 0, ws);
        if (l)
            arg(s, 0, p->dif[op->in]);
    }
    return rc;
}

/* whether op i is a convolution run with the pooling after it by cp_run (see there) */
static int cp_own(const nn_net *n, int i)
{
    const nn_op *op = &n->op[i];
    if (i != 0 || op->kind != NN_CONV || op->in != 0 || n->nop < 2 || !pool_own(n, 1) ||
        n->op[1].in != op->out)
        return 0;
    const nn_tensor *T = &n->t[0], *O = &n->t[op->out];
    return n->prec == EG_PREC_F32 && T->c == 1 && !T->flat && op->stride == 1 && op->k >= 1 &&
           op->k <= CP_MAXK && op->pad >= 0 && op->pad < op->k && O->c % 16 == 0 &&
           O->h == T->h + 2 * op->pad - op->k + 1 && O->w == T->w + 2 * op->pad - op->k + 1;
}

static int build_cp(bctx *b, eg_err *err)
{
    const nn_op *op = b->op, *pool = op + 1;
    const nn_tensor *T = &b->n->t[0], *O = &b->n->t[op->out];
    nn_plan *p = b->p;
    const int kk = op->k * op->k, relu = b->n->nop > 2 && relu_fused(b->n, 2);
    const size_t nout = (size_t)b->B * (O->h / 2) * (O->w / 2) * O->c;
    const size_t nsc =
        (size_t)(T->h + 2 * op->pad) * (T->w + 2 * op->pad) + (size_t)(kk + 1) * O->c;
    dnnl_memory_desc_t wmd = md_tag(1, nout ? (dnnl_dim_t)nout : 1, 0, 0, 0, dnnl_u8, dnnl_x);
    dnnl_memory_desc_t smd = md_tag(1, (dnnl_dim_t)nsc, 0, 0, 0, dnnl_f32, dnnl_x);
    dnnl_memory_desc_t wvd = md_tag(1, (dnnl_dim_t)op->nw, 0, 0, 0, dnnl_f32, dnnl_x);
    dnnl_memory_desc_t bvd = md_tag(1, op->nb ? (dnnl_dim_t)op->nb : 1, 0, 0, 0, dnnl_f32, dnnl_x);
    dnnl_memory_t ws, sc, wu, bu = NULL;
    int rc;
    if ((rc = mem_new(p, b->n, &wmd, DNNL_MEMORY_ALLOCATE, -1, 0, &ws, err)) ||
        (rc = mem_new(p, b->n, &smd, DNNL_MEMORY_ALLOCATE, -1, 0, &sc, err)) ||
        (rc = mem_new(p, b->n, &wvd, NULL, BIND_PARAMS, op->w_off, &wu, err)) ||
        (op->nb && (rc = mem_new(p, b->n, &bvd, NULL, BIND_PARAMS, op->b_off, &bu, err))))
        return rc;
    for (int l = 0; l < 1 + b->train; l++) {
        dnnl_memory_t gw = NULL, gb = NULL;
        if (l && ((rc = mem_new(p, b->n, &wvd, NULL, BIND_GRAD, op->w_off, &gw, err)) ||
                  (op->nb && (rc = mem_new(p, b->n, &bvd, NULL, BIND_GRAD, op->b_off, &gb, err)))))
            return rc;
        if ((rc = split_step(b, l ? LIST_BW : LIST_FW, l ? SK_CPB : SK_CPF, 0, err)))
            return rc;
        nn_step *s = l ? &p->bw[p->nbw - 1] : &p->fw[p->nfw - 1];
        s->phase = PH_CONV;
        s->flops = 2.0 * b->B * op->macs;
        s->shape[0] = b->B, s->shape[1] = T->h, s->shape[2] = T->w, s->shape[3] = O->c;
        s->k = op->k, s->pad = op->pad, s->relu = relu, s->bias = op->nb > 0;
        if (!l) {
            arg(s, 0, p->act[0]);
            arg(s, 0, wu);
            if (bu)
                arg(s, 0, bu);
            arg(s, 0, p->act[pool->out]);
            arg(s, 0, ws);
        } else {
            arg(s, 0, p->dif[pool->out]);
            arg(s, 0, p->act[pool->out]);
            arg(s, 0, ws);
            arg(s, 0, p->act[0]);
            arg(s, 0, gw);
            if (gb)
                arg(s, 0, gb);
        }
        arg(s, 0, sc);
    }
    return EG_OK;
}

/* max pooling (NN_MAXPOOL: k x k, stride, pad; k = 0: 2x2/2) or global average pooling
 * (NN_AVGPOOL) */
static int build_pool(bctx *b, eg_err *err)
{
    if (b->op - b->n->op == 1 && cp_own(b->n, 0))
        return EG_OK; /* in the convolution's kernels */
    if (pool_own(b->n, (int)(b->op - b->n->op)))
        return build_pool_own(b, (int)(b->op - b->n->op), err);
    const nn_op *op = b->op;
    const nn_tensor *T = &b->n->t[op->in];
    int mx = op->kind == NN_MAXPOOL, mk = op->k ? op->k : 2, ms = op->k ? op->stride : 2,
        mp = op->k ? op->pad : 0;
    dnnl_data_type_t dt = act_dt(b->n);
    dnnl_memory_desc_t src = md_tensor(b->n, op->in, b->B, dt),
                       dst = md_tensor(b->n, op->out, b->B, dt);
    dnnl_dims_t st = {mx ? ms : 1, mx ? ms : 1}, k = {mx ? mk : T->h, mx ? mk : T->w},
                pad = {mx ? mp : 0, mx ? mp : 0};
    dnnl_alg_kind_t alg = mx ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_desc_t d;
    DN(dnnl_pooling_forward_desc_init(&d, b->fprop, alg, &src, &dst, st, k, pad, pad));
    dnnl_primitive_desc_t fpd, bpd = NULL;
    int rc = pd_make(&fpd, &d, b->w, NULL, err);
    if (rc)
        return rc;
    nn_step *s;
    dnnl_memory_t ws = NULL;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (wmd && dnnl_memory_desc_get_size(wmd) &&
        (rc = mem_new(b->p, b->n, wmd, DNNL_MEMORY_ALLOCATE, -1, 0, &ws, err)))
        goto out;
    if ((rc = step_new(b->p, b->n, fpd, LIST_FW, PH_POOL, 0, &s, err)))
        goto out;
    arg(s, DNNL_ARG_SRC, b->p->act[op->in]);
    arg(s, DNNL_ARG_DST, b->p->act[op->out]);
    if (ws)
        arg(s, DNNL_ARG_WORKSPACE, ws);
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    if (!b->train)
        goto out;
    if (dnnl_pooling_backward_desc_init(&d, alg, &src, &dst, st, k, pad, pad)) {
        rc = eg_err_set(err, EG_ERUN, "model: oneDNN pooling backward descriptor");
        goto out;
    }
    if ((rc = pd_make(&bpd, &d, b->w, fpd, err)) ||
        (rc = step_new(b->p, b->n, bpd, LIST_BW, PH_POOL, 0, &s, err)))
        goto out;
    arg(s, DNNL_ARG_DIFF_DST, b->p->dif[op->out]);
    arg(s, DNNL_ARG_DIFF_SRC, b->p->dif[op->in]);
    if (ws)
        arg(s, DNNL_ARG_WORKSPACE, ws);
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
out:
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* pd for dst += src: a binary add when both are the same dense layout (its jit kernel),
 * else a reorder with a sum post-op (dst a channel subset) */
static int add_pd(bctx *b, const dnnl_memory_desc_t *dmd, const dnnl_memory_desc_t *smd,
                  int binary, dnnl_primitive_desc_t *pd, eg_err *err)
{
    if (binary) {
        dnnl_binary_desc_t d;
        DN(dnnl_binary_desc_init(&d, dnnl_binary_add, dmd, smd, dmd));
        return pd_make(pd, &d, b->w, NULL, err);
    }
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t st = dnnl_primitive_attr_clone(&attr, b->w->attr);
    if (st == dnnl_success)
        st = dnnl_post_ops_create(&po);
    if (st == dnnl_success)
        st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(pd, smd, b->n->eng, dmd, b->n->eng, attr);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    DN(st);
    return EG_OK;
}

/* dst (a view with md dmd of dbuf's buffer) += src (view smd of sbuf's), in place */
static int add_views(bctx *b, dnnl_memory_t dbuf, const dnnl_memory_desc_t *dmd,
                     dnnl_memory_t sbuf, const dnnl_memory_desc_t *smd, int bwd, eg_err *err)
{
    dnnl_memory_t dm, sm;
    dnnl_primitive_desc_t pd;
    int binary = dnnl_memory_desc_equal(dmd, smd), rc;
    if ((rc = mem_new(b->p, b->n, dmd, mem_ptr(dbuf), -1, 0, &dm, err)) ||
        (rc = mem_new(b->p, b->n, smd, mem_ptr(sbuf), -1, 0, &sm, err)) ||
        (rc = add_pd(b, dmd, smd, binary, &pd, err)))
        return rc;
    nn_step *s;
    rc = step_new(b->p, b->n, pd, bwd, PH_ELEM, 0, &s, err);
    dnnl_primitive_desc_destroy(pd);
    if (rc)
        return rc;
    if (binary) {
        arg(s, DNNL_ARG_SRC_0, dm);
        arg(s, DNNL_ARG_SRC_1, sm);
        arg(s, DNNL_ARG_DST, dm);
    } else {
        arg(s, DNNL_ARG_FROM, sm);
        arg(s, DNNL_ARG_TO, dm);
    }
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    return EG_OK;
}

/* forward pd of the shortcut's subsampling x[:, :, ::s, ::s] (pooling, 1x1 kernel, stride s)
 * from tensor aux into a dense tensor of md sub */
static int subsample_pd(bctx *b, dnnl_prop_kind_t prop, const dnnl_memory_desc_t *sub,
                        dnnl_primitive_desc_t *pd, eg_err *err)
{
    dnnl_memory_desc_t src = md_tensor(b->n, b->op->aux, b->B, act_dt(b->n));
    dnnl_dims_t st = {b->op->stride, b->op->stride}, k = {1, 1}, pad = {0, 0};
    dnnl_pooling_desc_t d;
    DN(dnnl_pooling_forward_desc_init(&d, prop, dnnl_pooling_avg_exclude_padding, &src, sub, st,
                                      k, pad, pad));
    return pd_make(pd, &d, b->w, NULL, err);
}

/* a step running pd on (a0: m0, a1: m1) */
static int step2(bctx *b, const_dnnl_primitive_desc_t pd, int bwd, int a0, dnnl_memory_t m0,
                 int a1, dnnl_memory_t m1, eg_err *err)
{
    nn_step *s;
    int rc = step_new(b->p, b->n, pd, bwd, PH_ELEM, 0, &s, err);
    if (rc)
        return rc;
    arg(s, a0, m0);
    arg(s, a1, m1);
    if (s->scratch)
        arg(s, DNNL_ARG_SCRATCHPAD, s->scratch);
    return EG_OK;
}

/* Stride-2 shortcut. Forward: sub = x[:, :, ::2, ::2] (pooling), out[:, :C] += sub (reorder
 * with sum). Backward: dsub = dout[:, :C] (reorder), dxs = pooling backward of dsub (zero off
 * the sampled pixels), dx += dxs (binary). */
static int build_add_strided(bctx *b, const dnnl_memory_desc_t *vo, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *to = &b->n->t[op->out], *ta = &b->n->t[op->aux];
    dnnl_data_type_t dt = act_dt(b->n);
    dnnl_memory_desc_t sub = md_tag(4, b->B, ta->c, to->h, to->w, dt,
                                    ta->nchw ? dnnl_nchw : dnnl_nhwc),
                       full = md_tensor(b->n, op->aux, b->B, dt);
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_memory_t tmp, vm, dxs;
    int rc;
    if ((rc = mem_new(b->p, b->n, &sub, DNNL_MEMORY_ALLOCATE, -1, 0, &tmp, err)))
        return rc;
    if (op->kind == NN_ADD) {
        if (!(rc = subsample_pd(b, b->fprop, &sub, &fpd, err)) &&
            !(rc = step2(b, fpd, 0, DNNL_ARG_SRC, b->p->act[op->aux], DNNL_ARG_DST, tmp, err)))
            rc = add_views(b, b->p->act[op->out], vo, tmp, &sub, 0, err);
        goto out;
    }
    if ((rc = mem_new(b->p, b->n, vo, mem_ptr(b->p->dif[op->out]), -1, 0, &vm, err)) ||
        (rc = mem_new(b->p, b->n, &full, DNNL_MEMORY_ALLOCATE, -1, 0, &dxs, err)) ||
        (rc = reorder_new(b->p, b->w, vm, tmp, LIST_BW, err)) ||
        (rc = subsample_pd(b, dnnl_forward_training, &sub, &fpd, err)))
        goto out;
    dnnl_pooling_desc_t d;
    dnnl_dims_t st = {op->stride, op->stride}, k = {1, 1}, pad = {0, 0};
    if (dnnl_pooling_backward_desc_init(&d, dnnl_pooling_avg_exclude_padding, &full, &sub, st, k,
                                        pad, pad)) {
        rc = eg_err_set(err, EG_ERUN, "model: oneDNN shortcut pooling backward descriptor");
        goto out;
    }
    if (!(rc = pd_make(&bpd, &d, b->w, fpd, err)) &&
        !(rc = step2(b, bpd, 1, DNNL_ARG_DIFF_DST, tmp, DNNL_ARG_DIFF_SRC, dxs, err)))
        rc = add_views(b, b->p->dif[op->aux], &full, dxs, &full, 1, err);
out:
    if (bpd)
        dnnl_primitive_desc_destroy(bpd);
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    return rc;
}

/* residual add (forward) and its shortcut gradient (NN_ADD_GRAD, backward); the main
 * branch's gradient passes through in place */
static int build_add(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    const nn_tensor *ta = &b->n->t[op->aux];
    dnnl_memory_desc_t vo = md_view(b->n, op->out, b->B, ta->c),
                       va = md_tensor(b->n, op->aux, b->B, act_dt(b->n));
    if (op->kind == NN_ADD_GRAD && !b->train)
        return EG_OK;
    const int i = (int)(op - b->n->op);
    if ((op->kind == NN_ADD && i >= 1 && bn_mode(b, i - 1) == 2) ||
        (op->kind == NN_ADD_GRAD &&
         ((i >= 1 && bn_pending(b, i - 1) == i) || (i >= 3 && bn_pending(b, i - 3) == i))))
        return EG_OK; /* in the batch norm's kernels */
    if (op->stride != 1)
        return build_add_strided(b, &vo, err);
    if (op->kind == NN_ADD)
        return add_views(b, b->p->act[op->out], &vo, b->p->act[op->aux], &va, 0, err);
    if (op->copy)
        return reorder_new(b->p, b->w, b->p->dif[op->out], b->p->dif[op->aux], LIST_BW, err);
    return add_views(b, b->p->dif[op->aux], &va, b->p->dif[op->out], &vo, 1, err);
}

/* layout change (same shape): reorder forward, and the gradient back */
static int build_reorder(bctx *b, eg_err *err)
{
    const nn_op *op = b->op;
    int rc = reorder_new(b->p, b->w, b->p->act[op->in], b->p->act[op->out], LIST_FW, err);
    if (rc || !b->train || op->in == 0)
        return rc;
    return reorder_new(b->p, b->w, b->p->dif[op->out], b->p->dif[op->in], LIST_BW, err);
}

typedef int (*build_fn)(bctx *b, eg_err *err);
static const build_fn builders[NN_NKINDS] = {
    [NN_CONV] = build_wop,       [NN_DENSE] = build_wop,      [NN_BN] = build_bn,
    [NN_GN] = build_gn,          [NN_RELU] = build_relu,      [NN_MAXPOOL] = build_pool,
    [NN_AVGPOOL] = build_pool,   [NN_ADD] = build_add,        [NN_ADD_GRAD] = build_add,
    [NN_REORDER] = build_reorder,
};

/* ---- plans --------------------------------------------------------------------------- */

/* activation (and gradient) memories of every tensor; the input tensor is the caller's x
 * when the layouts agree, else filled by a reorder step */
/* Evaluation plans keep no activations for a backward pass: tensors whose lifetimes (first
 * write to last read, in op order) do not overlap share buffers (best fit among the free
 * ones). Fills handle[t] for every tensor but the input and the logits. */
static int eval_buffers(const nn_net *n, nn_plan *p, void **handle, eg_err *err)
{
    const int logits = n->op[n->nop - 1].out;
    int *lastuse = calloc((size_t)n->nt, sizeof *lastuse), nfree = 0;
    void **fb = calloc((size_t)n->nt, sizeof *fb);
    size_t *fsz = calloc((size_t)n->nt, sizeof *fsz);
    int rc = lastuse && fb && fsz ? EG_OK : eg_err_set(err, EG_ERUN, "out of memory (model plan)");
    for (int i = 0; i < n->nop && !rc; i++) {
        const nn_op *op = &n->op[i];
        if (op->kind != NN_ADD_GRAD) { /* backward only */
            lastuse[op->in] = lastuse[op->out] = i;
            lastuse[op->aux] = op->kind == NN_ADD ? i : lastuse[op->aux];
        }
    }
    for (int i = 0; i < n->nop && !rc; i++) {
        const nn_op *op = &n->op[i];
        int t = op->out;
        if (op->kind == NN_ADD_GRAD || t == 0 || t == logits || handle[t])
            continue;
        dnnl_memory_desc_t md = md_tensor(n, t, p->batch, act_dt(n));
        size_t need = dnnl_memory_desc_get_size(&md);
        int best = -1;
        for (int f = 0; f < nfree; f++)
            if (fsz[f] >= need && (best < 0 || fsz[f] < fsz[best]))
                best = f;
        if (best >= 0) {
            handle[t] = fb[best];
            fb[best] = fb[--nfree];
            fsz[best] = fsz[nfree];
        } else if (!(handle[t] = plan_alloc(p, need))) {
            rc = eg_err_set(err, EG_ERUN, "out of memory (model buffers)");
            break;
        }
        /* free the buffers whose last reader is this op (the output's own too if unread) */
        const int used[3] = {op->in, op->aux, t};
        for (int u = 0; u < 3; u++) {
            int v = used[u];
            if (v != 0 && v != logits && handle[v] && lastuse[v] == i &&
                (u == 0 || v != used[0]) && (u < 2 || v != used[1])) {
                dnnl_memory_desc_t vmd = md_tensor(n, v, p->batch, act_dt(n));
                fb[nfree] = handle[v];
                fsz[nfree++] = dnnl_memory_desc_get_size(&vmd);
                lastuse[v] = -1; /* released once */
            }
        }
    }
    free(lastuse);
    free(fb);
    free(fsz);
    return rc;
}

static int plan_tensors(eg_work *w, nn_plan *p, eg_err *err)
{
    const nn_net *n = w->net;
    const int B = p->batch, last = n->op[n->nop - 1].out;
    dnnl_data_type_t dt = act_dt(n);
    int rc;
    const nn_tensor *T0 = &n->t[0];
    dnnl_memory_desc_t xmd = T0->flat ? md_tag(2, B, T0->w, 0, 0, dnnl_f32, dnnl_nc)
                                      : md_tag(4, B, T0->c, T0->h, T0->w, dnnl_f32, dnnl_nchw);
    int x_direct = 0;
    void **handle = calloc((size_t)n->nt, sizeof *handle);
    if (!handle)
        return eg_err_set(err, EG_ERUN, "out of memory (model plan)");
    if (!p->train && (rc = eval_buffers(n, p, handle, err))) {
        free(handle);
        return rc;
    }
    for (int t = 0; t < n->nt; t++) {
        dnnl_memory_desc_t md = md_tensor(n, t, B, t == last ? dnnl_f32 : dt);
        /* one channel: NCHW and NHWC are the same bytes, the caller's x serves as it is */
        if (t == 0 && (x_direct = dnnl_memory_desc_equal(&md, &xmd) ||
                                  (dt == dnnl_f32 && !T0->flat && T0->c == 1)))
            rc = mem_new(p, n, &md, NULL, BIND_X, 0, &p->act[0], err);
        else
            rc = mem_new(p, n, &md, handle[t] ? handle[t] : DNNL_MEMORY_ALLOCATE, -1, 0,
                         &p->act[t], err);
        if (rc)
            break;
        if (p->train && t > 0) {
            /* with shared gradients (share_grads) most of these buffers are freed unused:
             * share_grads zeroes the ones that stay */
            md = md_tensor(n, t, B, dt);
            void *h = eg_model_share_grads ? plan_alloc_raw(p, dnnl_memory_desc_get_size(&md))
                                           : DNNL_MEMORY_ALLOCATE;
            if (!h) {
                rc = eg_err_set(err, EG_ERUN, "out of memory (model buffers)");
                break;
            }
            if ((rc = mem_new(p, n, &md, h, -1, 0, &p->dif[t], err)))
                break;
        }
    }
    free(handle);
    if (rc)
        return rc;
    if (!x_direct) {
        dnnl_memory_t xm;
        if ((rc = mem_new(p, n, &xmd, NULL, BIND_X, 0, &xm, err)) ||
            (rc = reorder_new(p, w, xm, p->act[0], LIST_FW, err)))
            return rc;
    }
    p->logits = mem_ptr(p->act[last]);
    if (!p->train)
        return EG_OK;
    if (dt == dnnl_f32) {
        p->dlogits = mem_ptr(p->dif[last]);
        return EG_OK;
    }
    dnnl_memory_desc_t lmd = md_tensor(n, last, B, dnnl_f32);
    dnnl_memory_t lm;
    if ((rc = mem_new(p, n, &lmd, DNNL_MEMORY_ALLOCATE, -1, 0, &lm, err)))
        return rc;
    p->dlogits = mem_ptr(lm);
    return reorder_new(p, w, lm, p->dif[last], LIST_PRE, err);
}

/* Micro-batch plans: the forward and backward (in execution order) cut after every batch
 * norm's sums, where nn_split_reduce combines the micro-batches. */
static int split_segments(eg_work *w, nn_plan *p, eg_err *err)
{
    const nn_net *n = w->net;
    p->fseg = calloc((size_t)p->nbn + 2, sizeof *p->fseg);
    p->bseg = calloc((size_t)p->nbn + 2, sizeof *p->bseg);
    p->bwo = calloc((size_t)p->nbw + 1, sizeof *p->bwo);
    if (!p->fseg || !p->bseg || !p->bwo)
        return eg_err_set(err, EG_ERUN, "out of memory (model plan)");
    p->nfseg = 0;
    for (int i = 0; i < p->nfw; i++)
        if (p->fw[i].sk == SK_FSUM)
            p->fseg[++p->nfseg] = i + 1;
    p->fseg[++p->nfseg] = p->nfw;
    int k = 0;
    if (p->pre_bw.p)
        p->bwo[k++] = p->pre_bw;
    for (int i = n->nop - 1; i >= 0; i--)
        for (int j = p->bw_start[i]; j < p->bw_start[i + 1]; j++)
            p->bwo[k++] = p->bw[j];
    p->nbseg = 0;
    for (int i = 0; i < k; i++)
        if (p->bwo[i].sk == SK_BSUM)
            p->bseg[++p->nbseg] = i + 1;
    p->bseg[++p->nbseg] = k;
    return EG_OK;
}

/* ---- the gradient buffers, shared -------------------------------------------------------
 * A tensor's gradient lives only within the backward: from the step that first writes it
 * (the backward of the last op that reads the tensor) to the last step that reads it (its
 * producer's backward, or a later norm that adds it as a pending shortcut gradient). plan_tensors
 * gives each its own buffer; share_grads then finds each gradient's first and last backward
 * step from the memories the steps use (views included, by address), and places gradients
 * whose spans do not overlap on the same buffer, first fit in the order their spans begin.
 * The backward then writes into buffers that are still in the cache instead of fresh ones each
 * read from memory first, and a training plan needs about half the memory. The same
 * operations on the same values: the same bits (check_model's test_share_grads). Gradients
 * that a forward step touches keep their buffers. */

/* the memories step s uses: its arguments, and a micro-batch norm's */
static int step_mems(const nn_plan *p, const nn_step *s, dnnl_memory_t *out)
{
    int n = 0;
    for (int i = 0; i < s->narg; i++)
        out[n++] = s->arg[i].memory;
    if (s->sk && s->sk < SK_POOLF && p->bns) {
        const nn_bnsplit *q = &p->bns[s->bn];
        const dnnl_memory_t m[] = {q->src,   q->dst,   q->dsrc,   q->ddst,
                                   q->scale, q->shift, q->dscale, q->dshift};
        for (size_t i = 0; i < sizeof m / sizeof *m; i++)
            out[n++] = m[i];
    }
    return n;
}

typedef struct grad_span {
    char *lo, *nu; /* its buffer, and the shared one (NULL: keeps its own) */
    size_t len;
    int first, last; /* backward steps in execution order; first > last: unused */
    int pinned;      /* a forward step uses it */
} grad_span;

/* the span holding address h (0: none) */
static int span_at(const grad_span *g, int nt, const void *h)
{
    const char *c = h;
    for (int t = 1; c && t < nt; t++)
        if (g[t].lo && c >= g[t].lo && c < g[t].lo + g[t].len)
            return t;
    return 0;
}

/* marks the spans that step k's memories overlap */
static void span_mark(const nn_plan *p, const nn_step *s, int k, grad_span *g, int nt)
{
    dnnl_memory_t m[NN_MAX_ARGS + 8];
    const int nm = step_mems(p, s, m);
    for (int i = 0; i < nm; i++) {
        const char *h = m[i] ? mem_ptr(m[i]) : NULL;
        if (!h)
            continue;
        const dnnl_memory_desc_t *md;
        dnnl_memory_get_memory_desc(m[i], &md);
        const size_t sz = dnnl_memory_desc_get_size(md);
        for (int t = 0; t < nt; t++) {
            if (!g[t].lo || h >= g[t].lo + g[t].len || h + sz <= g[t].lo)
                continue;
            if (k < 0)
                g[t].pinned = 1;
            else {
                g[t].first = k < g[t].first ? k : g[t].first;
                g[t].last = k > g[t].last ? k : g[t].last;
            }
        }
    }
}

static int share_grads(const nn_net *n, nn_plan *p, eg_err *err)
{
    const int nt = n->nt;
    grad_span *g = calloc((size_t)nt, sizeof *g);
    int *order = calloc((size_t)nt, sizeof *order), *blk = calloc((size_t)nt, sizeof *blk);
    size_t *blen = calloc((size_t)nt, sizeof *blen);
    if (!g || !order || !blk || !blen) {
        free(g), free(order), free(blk), free(blen);
        return eg_err_set(err, EG_ERUN, "out of memory (model plan)");
    }
    for (int t = 1; t < nt; t++)
        if (p->dif[t]) {
            const dnnl_memory_desc_t *md;
            dnnl_memory_get_memory_desc(p->dif[t], &md);
            g[t] = (grad_span){.lo = mem_ptr(p->dif[t]), .len = dnnl_memory_desc_get_size(md),
                               .first = INT_MAX, .last = -1};
        }
    for (int i = 0; i < p->nfw; i++)
        span_mark(p, &p->fw[i], -1, g, nt);
    int k = 1;
    if (p->pre_bw.p)
        span_mark(p, &p->pre_bw, k++, g, nt);
    for (int i = n->nop - 1; i >= 0; i--)
        for (int j = p->bw_start[i]; j < p->bw_start[i + 1]; j++)
            span_mark(p, &p->bw[j], k++, g, nt);
    /* the caller writes the f32 loss gradient before the backward */
    const int tl = span_at(g, nt, p->dlogits);
    if (tl)
        g[tl].first = 0;
    int no = 0;
    for (int t = 1; t < nt; t++)
        if (g[t].lo && !g[t].pinned && g[t].first <= g[t].last)
            order[no++] = t;
    for (int i = 1; i < no; i++) /* by first step (insertion sort: a few dozen) */
        for (int j = i; j > 0 && g[order[j]].first < g[order[j - 1]].first; j--) {
            const int tmp = order[j];
            order[j] = order[j - 1], order[j - 1] = tmp;
        }
    /* the shared buffers: b holds blen[b] bytes, and blk[b] is the tensor whose span uses
     * it last; first fit, a buffer of the same size before a larger one */
    int nb = 0, rc = EG_OK;
    for (int i = 0; i < no && !rc; i++) {
        grad_span *s = &g[order[i]];
        int best = -1;
        for (int b = 0; b < nb; b++)
            if (g[blk[b]].last < s->first && blen[b] >= s->len &&
                (best < 0 || (blen[best] != s->len && blen[b] < blen[best])))
                best = b;
        if (best < 0) {
            if (!(s->nu = plan_alloc(p, s->len))) {
                rc = eg_err_set(err, EG_ERUN, "out of memory (model buffers)");
                break;
            }
            if (eg_model_share_grads == 2) /* the checks: NaN (f32 and bf16) until written */
                memset(s->nu, 0xff, s->len);
            blen[nb] = s->len;
            best = nb++;
        } else {
            s->nu = g[blk[best]].nu;
        }
        blk[best] = order[i];
    }
    if (!rc) {
        /* every memory on a shared gradient's bytes moves with it (views at their offsets) */
        for (int i = 0; i < p->nmem; i++) {
            char *h = mem_ptr(p->mem[i]);
            const int t = span_at(g, nt, h);
            if (t && g[t].nu)
                dnnl_memory_set_data_handle(p->mem[i], g[t].nu + (h - g[t].lo));
        }
        if (tl && g[tl].nu)
            p->dlogits = (float *)(g[tl].nu + ((char *)p->dlogits - g[tl].lo));
        for (int t = 1; t < nt; t++) {
            if (!g[t].nu) {
                if (g[t].lo)
                    memset(g[t].lo, 0, g[t].len);
                continue;
            }
            for (int b = 0; b < p->nbuf; b++)
                if (p->buf[b] == g[t].lo) {
                    free(p->buf[b]);
                    p->buf[b] = p->buf[--p->nbuf];
                    break;
                }
            __atomic_fetch_add(&eg_model_shared_grads, 1, __ATOMIC_RELAXED);
        }
    }
    free(g), free(order), free(blk), free(blen);
    return rc;
}

static int plan_build(eg_work *w, nn_plan *p, eg_err *err)
{
    const nn_net *n = w->net;
    p->cap_steps = 6 * n->nop + 8;
    p->cap_obj = 24 * n->nop + 4 * n->nt + 16;
    p->fw = calloc((size_t)p->cap_steps, sizeof *p->fw);
    p->bw = calloc((size_t)p->cap_steps, sizeof *p->bw);
    p->bw_start = calloc((size_t)n->nop + 1, sizeof *p->bw_start);
    p->bind = calloc((size_t)p->cap_obj, sizeof *p->bind);
    p->mem = calloc((size_t)p->cap_obj, sizeof *p->mem);
    p->prim = calloc((size_t)p->cap_obj, sizeof *p->prim);
    p->buf = calloc((size_t)p->cap_obj, sizeof *p->buf);
    p->act = calloc((size_t)n->nt, sizeof *p->act);
    p->dif = calloc((size_t)n->nt, sizeof *p->dif);
    if (p->train && w->split)
        p->bns = calloc((size_t)n->nop, sizeof *p->bns);
    if (!p->fw || !p->bw || !p->bw_start || !p->bind || !p->mem || !p->prim || !p->buf ||
        !p->act || !p->dif || (p->train && w->split && !p->bns))
        return eg_err_set(err, EG_ERUN, "out of memory (model plan)");
    int rc = plan_tensors(w, p, err);
    bctx b = {w, p, n, NULL, p->batch, p->train,
              p->train ? dnnl_forward_training : dnnl_forward_inference, dnnl_format_tag_any, 0};
    for (int i = 0; i < n->nop && !rc; i++) {
        b.op = &n->op[i];
        p->bw_start[i] = p->nbw;
        rc = builders[n->op[i].kind](&b, err);
    }
    p->bw_start[n->nop] = p->nbw;
    if (!rc && p->train && w->split)
        rc = split_segments(w, p, err);
    if (!rc && p->train && eg_model_share_grads)
        rc = share_grads(n, p, err);
    if (rc)
        return rc;
    if (p->scratch > w->scratch_sz) {
        void *s = NULL;
        if (posix_memalign(&s, 64, p->scratch))
            return eg_err_set(err, EG_ERUN, "out of memory (oneDNN scratchpad)");
        free(w->scratch);
        w->scratch = s;
        w->scratch_sz = p->scratch;
    }
    return EG_OK;
}

nn_plan *nn_plan_get(eg_work *w, int batch, int train, eg_err *err)
{
    int slot = 0;
    for (int i = 0; i < NN_MAX_PLANS; i++) {
        nn_plan *p = w->plan[i];
        if (p && p->batch == batch && p->train == train) {
            p->used = ++w->tick;
            return p;
        }
        if (!p || (w->plan[slot] && p->used < w->plan[slot]->used))
            slot = i;
        if (!p)
            break;
    }
    plan_free(w->plan[slot]);
    w->plan[slot] = NULL;
    nn_plan *p = calloc(1, sizeof *p);
    if (!p) {
        eg_err_set(err, EG_ERUN, "out of memory (model plan)");
        return NULL;
    }
    p->batch = batch;
    p->train = train;
    if (plan_build(w, p, err)) {
        plan_free(p);
        return NULL;
    }
    p->used = ++w->tick;
    w->plan[slot] = p;
    return p;
}

/* ---- execution ----------------------------------------------------------------------- */

static void stats_update(const nn_step *s, float *stats)
{
    float *rm = stats + s->s_off, *rv = rm + s->c;
    const float keep = 1.0f - NN_MOMENTUM;
    for (int c = 0; c < s->c; c++) {
        rm[c] = keep * rm[c] + NN_MOMENTUM * s->bmean[c];
        rv[c] = keep * rv[c] + NN_MOMENTUM * (s->bvar[c] * s->unbias);
    }
}

/* Runs steps s[0 .. n) in a parallel region of its own with one thread. oneDNN (OpenMP
 * runtime) runs a primitive with one thread inline on the calling thread, without a team of
 * its own; some kernels then still synchronise with a bare `#pragma omp barrier` (ncsp_bnorm
 * computing statistics, which group norm always does; the cache-blocked path of the other
 * batch norms). Such a barrier binds to the innermost enclosing team: called inside the
 * caller's parallel region it would wait for the caller's other threads, which are running
 * other batches or nodes (a deadlock, or threads held in lockstep). The team of one makes it
 * a no-op. The thread count is set again inside, where nthreads-var may take the next value
 * of an OMP_NUM_THREADS list. */
static int run_steps(eg_work *w, nn_step *steps, int n, float *stats, nn_bnsplit *bns,
                     eg_err *err)
{
    dnnl_status_t st = dnnl_success;
#pragma omp parallel num_threads(1) shared(st)
    {
        omp_set_num_threads(1);
        for (int i = 0; i < n && st == dnnl_success; i++) {
            nn_step *s = &steps[i];
            double t0 = w->prof_on ? eg_now() : 0.0;
            if (s->sk >= SK_POOLF) {
                own_run(s);
            } else if (s->sk) {
                bn_split_run(s, &bns[s->bn]);
            } else if (!s->p) {
                stats_update(s, stats);
            } else {
                if (s->scratch)
                    dnnl_memory_set_data_handle(s->scratch, w->scratch);
                st = dnnl_primitive_execute(s->p, w->stream, s->narg, s->arg);
            }
            if (w->prof_on) {
                const double dt = eg_now() - t0;
                w->prof_sec[s->phase] += dt;
                w->prof_flop[s->phase] += s->flops;
                s->prof_sec += dt;
                s->prof_n++;
            }
        }
    }
    if (st != dnnl_success)
        return eg_err_set(err, EG_ERUN, "model: oneDNN primitive execution: %s",
                          dnnl_status2str(st));
    return EG_OK;
}

const float *nn_forward(eg_work *w, nn_plan *p, const float *params, float *stats,
                        const float *x, float *grad, eg_err *err)
{
    void *base[BIND_N] = {(void *)params, grad, stats, (void *)x};
    for (int i = 0; i < p->nbind; i++) {
        const nn_bind *b = &p->bind[i];
        dnnl_memory_set_data_handle(b->m, base[b->base] ? (float *)base[b->base] + b->off : NULL);
    }
    if (run_steps(w, p->fw, p->nfw, stats, p->bns, err))
        return NULL;
    return p->logits;
}

float *nn_dlogits(nn_plan *p) { return p->dlogits; }
const float *nn_logits(const nn_plan *p) { return p->logits; }

int nn_backward(eg_work *w, nn_plan *p, eg_err *err)
{
    int rc;
    if (p->pre_bw.p && (rc = run_steps(w, &p->pre_bw, 1, NULL, NULL, err)))
        return rc;
    for (int i = w->net->nop - 1; i >= 0; i--)
        if ((rc = run_steps(w, p->bw + p->bw_start[i], p->bw_start[i + 1] - p->bw_start[i], NULL,
                            p->bns, err)))
            return rc;
    return EG_OK;
}

/* ---- micro-batches -------------------------------------------------------------------- */

int nn_nseg(const nn_plan *p, int bw) { return bw ? p->nbseg : p->nfseg; }

int nn_forward_seg(eg_work *w, nn_plan *p, int seg, const float *params, float *stats,
                   const float *x, float *grad, eg_err *err)
{
    if (seg == 0) {
        void *base[BIND_N] = {(void *)params, grad, stats, (void *)x};
        for (int i = 0; i < p->nbind; i++) {
            const nn_bind *b = &p->bind[i];
            dnnl_memory_set_data_handle(b->m,
                                        base[b->base] ? (float *)base[b->base] + b->off : NULL);
        }
    }
    return run_steps(w, p->fw + p->fseg[seg], p->fseg[seg + 1] - p->fseg[seg], stats, p->bns,
                     err);
}

int nn_backward_seg(eg_work *w, nn_plan *p, int seg, eg_err *err)
{
    return run_steps(w, p->bwo + p->bseg[seg], p->bseg[seg + 1] - p->bseg[seg], NULL, p->bns,
                     err);
}

void nn_split_reduce(nn_plan *const *ps, int M, int bw, int seg, float *stats)
{
    const nn_plan *p0 = ps[0];
    const nn_step *last = bw ? &p0->bwo[p0->bseg[seg + 1] - 1] : &p0->fw[p0->fseg[seg + 1] - 1];
    const int j = last->bn, C = p0->bns[j].C;
    double N = 0;
    for (int m = 0; m < M; m++)
        N += ps[m]->bns[j].rows;
    const float *gamma = mem_ptr(p0->bns[j].scale), *beta = mem_ptr(p0->bns[j].shift);
    float *rm = stats ? stats + p0->bns[j].s_off : NULL, *rv = rm ? rm + C : NULL;
    for (int c = 0; c < C; c++) {
        double S1 = 0, S2 = 0;
        for (int m = 0; m < M; m++) {
            S1 += ps[m]->bns[j].s1[c];
            S2 += ps[m]->bns[j].s2[c];
        }
        if (!bw) {
            double mean = S1 / N, var = S2 / N - mean * mean;
            float mf = (float)mean, vf = (float)(var > 0 ? var : 0);
            float rstd = 1.0f / sqrtf(vf + NN_EPS), a = gamma[c] * rstd, b = beta[c] - mf * a;
            for (int m = 0; m < M; m++) {
                nn_bnsplit *q = &ps[m]->bns[j];
                q->mean[c] = mf, q->rstd[c] = rstd, q->a[c] = a, q->b[c] = b;
            }
            if (rm) {
                const float keep = 1.0f - NN_MOMENTUM, unbias = N > 1 ? (float)(N / (N - 1)) : 1.0f;
                rm[c] = keep * rm[c] + NN_MOMENTUM * mf;
                rv[c] = keep * rv[c] + NN_MOMENTUM * (vf * unbias);
            }
        } else {
            float k1 = (float)(S1 / N), k2 = (float)(S2 / N);
            for (int m = 0; m < M; m++) {
                nn_bnsplit *q = &ps[m]->bns[j];
                q->k1[c] = k1, q->k2[c] = k2;
                /* the norm's own gradients: the whole batch's, in micro-batch 0's slot (the
                 * caller adds the micro-batches' gradients) */
                ((float *)mem_ptr(q->dscale))[c] = m ? 0.0f : (float)S2;
                ((float *)mem_ptr(q->dshift))[c] = m ? 0.0f : (float)S1;
            }
        }
    }
}

/* ---- works --------------------------------------------------------------------------- */

int nn_work_init(eg_work *w, const nn_net *n, eg_err *err)
{
    w->net = n;
    DN(dnnl_stream_create(&w->stream, n->eng, dnnl_stream_default_flags));
    DN(dnnl_primitive_attr_create(&w->attr));
    DN(dnnl_primitive_attr_set_scratchpad_mode(w->attr, dnnl_scratchpad_mode_user));
    return EG_OK;
}

void nn_work_release(eg_work *w)
{
    for (int i = 0; i < NN_MAX_PLANS; i++) {
        plan_free(w->plan[i]);
        w->plan[i] = NULL;
    }
    if (w->stream)
        dnnl_stream_destroy(w->stream);
    if (w->attr)
        dnnl_primitive_attr_destroy(w->attr);
    free(w->scratch);
    w->stream = NULL;
    w->attr = NULL;
    w->scratch = NULL;
    w->scratch_sz = 0;
}

/* ---- per-step profile ---------------------------------------------------------------- */

static void prof_reset(nn_step *s, int n)
{
    for (int i = 0; i < n; i++)
        s[i].prof_sec = 0, s[i].prof_n = 0;
}

void nn_work_prof_reset(eg_work *w)
{
    for (int k = 0; k < NN_MAX_PLANS; k++) {
        nn_plan *p = w->plan[k];
        if (!p)
            continue;
        prof_reset(p->fw, p->nfw);
        prof_reset(p->bw, p->nbw);
        prof_reset(&p->pre_bw, 1);
        if (p->bwo)
            prof_reset(p->bwo, p->nbw + 1);
    }
}

/* what ran step s: oneDNN's kernel name, or expgraph's kernel */
static const char *step_kernel(const nn_step *s)
{
    static const char *own[] = {
        [SK_FSUM] = "expgraph bn-micro sums",     [SK_FAPPLY] = "expgraph bn-micro apply",
        [SK_BSUM] = "expgraph bn-micro bwd sums", [SK_BAPPLY] = "expgraph bn-micro bwd apply",
        [SK_POOLF] = "expgraph pool",             [SK_POOLB] = "expgraph pool bwd",
        [SK_CPF] = "expgraph conv+pool",          [SK_CPB] = "expgraph conv+pool bwd",
        [SK_BNF] = "expgraph batch norm",         [SK_BNB] = "expgraph batch norm bwd",
        [SK_DENSEF] = "expgraph dense (W x^T)",   [SK_C3F] = "expgraph conv 3x3",
        [SK_C3B] = "expgraph conv 3x3 bwd data"};
    if (s->sk)
        return s->sk < (int)(sizeof own / sizeof *own) && own[s->sk] ? own[s->sk] : "expgraph";
    if (!s->p)
        return "running statistics";
    const_dnnl_primitive_desc_t pd = NULL;
    const char *impl = "?";
    if (dnnl_primitive_get_primitive_desc(s->p, &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return impl;
}

static void prof_print(FILE *f, const char *list, const nn_step *s, int base, int n, double *tot)
{
    for (int i = 0; i < n; i++) {
        if (!s[i].prof_n)
            continue;
        const double us = 1e6 * s[i].prof_sec / (double)s[i].prof_n;
        char gf[16] = "";
        if (s[i].flops > 0)
            snprintf(gf, sizeof gf, "%.1f", s[i].flops / us / 1e3);
        fprintf(f, "  %-8s %4d  %-14s %-28s %6ld %10.1f %8s\n", list, base + i,
                eg_work_profile_get(NULL, s[i].phase, NULL, NULL), step_kernel(&s[i]),
                s[i].prof_n, us, gf);
        *tot += us;
    }
}

void nn_work_prof_print(const eg_work *w, FILE *f)
{
    for (int k = 0; k < NN_MAX_PLANS; k++) {
        const nn_plan *p = w->plan[k];
        long runs = 0;
        for (int i = 0; p && i < p->nfw; i++)
            runs += p->fw[i].prof_n;
        if (!runs)
            continue; /* not run with the profile on */
        double tot = 0;
        fprintf(f, "plan: batch %d, %s%s\n  %-8s %4s  %-14s %-28s %6s %10s %8s\n", p->batch,
                p->train ? "training" : "evaluation", p->bwo ? " (micro-batch)" : "", "list",
                "step", "phase", "kernel", "runs", "us/run", "GFLOP/s");
        prof_print(f, "forward", p->fw, 0, p->nfw, &tot);
        if (p->bwo) {
            prof_print(f, "backward", p->bwo, 0, p->nbw + 1, &tot);
        } else {
            prof_print(f, "pre-bwd", &p->pre_bw, 0, 1, &tot);
            for (int i = w->net->nop - 1; i >= 0; i--) /* in execution order */
                prof_print(f, "backward", p->bw + p->bw_start[i], p->bw_start[i],
                           p->bw_start[i + 1] - p->bw_start[i], &tot);
        }
        fprintf(f, "  sum of the steps' mean times: %.1f us\n", tot);
    }
}
