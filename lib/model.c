/* model.c - logreg, mlp and cnn on one flat float parameter vector (see model.h).
 *
 * A model is a list of layers; each layer kind is a pair of kernels (forward, backward)
 * reached through the small table `layer_ops`:
 *   dense  in -> out, optional ReLU          weight [out][in] row-major, then bias [out]
 *   conv   k x k 'same' conv + ReLU + 2x2    weight [oc][ic][k][k] (PyTorch order), then
 *          max-pool (stride 2, floor)        bias [oc]
 * logreg = one dense layer; mlp = dense+ReLU per hidden width, then a dense classifier;
 * cnn = conv blocks, flatten (C, H, W order, as PyTorch), optional dense+ReLU, classifier.
 * The classifier feeds a softmax cross-entropy averaged over the batch.
 *
 * Activations inside a cnn are NHWC (sample, row, column, channel). Each conv is one sgemm
 * per chunk of samples, co[pixels x oc] = col[pixels x k*k*ic] * W'^T, where col is
 *   - for the first layer (input x, NCHW as given): stored transposed, [k*k*ic x pixels], one
 *     row per (c, ky, kx) built from whole shifted image rows (memcpy), so W' = W as stored
 *     and x needs no copy; this layer needs no input gradient, so no col2im;
 *   - for later layers (NHWC input): [pixels x k*k*ic] in (ky, kx, c) order, k runs of k*ic
 *     contiguous floats per row; W' = W permuted to [oc][ky][kx][ic] (a few kB per call; the
 *     weight gradient is permuted back).
 * Pooling reads channel-contiguous NHWC rows; the last block's pooled output is transposed to
 * NCHW so that the flatten order (and so the dense weight layout) matches PyTorch.
 *
 * Speed: per chunk of samples (sized so that its im2col buffer stays in L2), forward runs
 * im2col -> sgemm -> one fused branch-free pass (max over the window, + bias, ReLU, argmax);
 * only the pooled output and a 1-byte argmax per output survive the chunk. Backward rebuilds
 * the chunk's im2col rather than keeping it (29 MB at batch 128 for c32-c64), makes d(conv
 * out) from the argmax in one pass, then dW (+)= d^T col, dcol = d W' into the same buffer,
 * col2im. Chunk boundaries depend only on the layer shape, never on max_batch, so two works
 * give bitwise equal results. No allocation after eg_work_init; the model is read-only.
 *
 * Initialisation (documented choice): Kaiming-uniform with the gain of the nonlinearity
 * that follows, as torch.nn.init.kaiming_uniform_(nonlinearity='relu' / 'linear'):
 * W ~ U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2) for layers followed by ReLU
 * (b = sqrt(6 / fan_in)) and 1 for the classifier (b = sqrt(3 / fan_in)); fan_in = in for
 * dense, ic*k*k for conv. Biases 0.
 *
 * Flop convention (eg_model_flops_per_sample): the GEMM work actually done, 2*MACs for the
 * forward, 2*MACs for the weight gradient and 2*MACs for the input gradient of every layer
 * but the first (which needs none): about 6*MACs. Elementwise work is not counted.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NL (EG_MAX_LAYERS + 2)
/* im2col chunk target: the chunk's col buffer (and its conv output) should stay in L2 */
#ifndef CONV_CHUNK_BYTES
#define CONV_CHUNK_BYTES (512u * 1024u)
#endif
/* largest per-sample width / GEMM dimension accepted (keeps every BLAS int in range) */
#define MAX_DIM (1 << 24)

/* Elementwise loops over channels / features: vectorised when built with -fopenmp or
 * -fopenmp-simd (CMake builds the library with OpenMP). GCC's -O2 cost model leaves loops of
 * unknown trip count scalar otherwise. No reductions are declared, so no reassociation. */
#define EG_SIMD _Pragma("omp simd")

enum { L_DENSE, L_CONV };

typedef struct layer {
    int kind;
    int relu;             /* dense: ReLU after (conv blocks always have one) */
    int in, out;          /* dense: widths */
    int ic, ih, iw, k, oc;/* conv: input ic x ih x iw (NHWC in the work), kernel, out channels */
    int ph, pw;           /* conv: pooled height, width */
    int nchw_out;         /* conv: pooled output written NCHW (last block, feeds flatten) */
    int chunk;            /* conv: samples per im2col chunk */
    size_t w_off, b_off;  /* weights at params + w_off (nw floats), bias at params + b_off */
    size_t nw, nb;
    size_t in_sz, out_sz; /* floats per sample of input and output */
    size_t kk;            /* conv: k*k*ic, the im2col row length */
    double macs;          /* multiply-adds per sample, forward */
} layer;

/* The first layer (transposed im2col) uses conv weights as stored; later layers (row
 * im2col) need [oc][ky][kx][ic], the same as stored when ic == 1. */
static int conv_permuted(const layer *L, int li) { return li > 0 && L->ic > 1; }

struct eg_model {
    eg_shape in;
    int classes;
    int nl;
    layer l[MAX_NL];
    size_t nparams;
    char desc[256];
};

struct eg_work {
    int max_batch;
    float *act[MAX_NL];     /* output of layer i: max_batch x out_sz (layout as above) */
    uint8_t *amax[MAX_NL];  /* conv: argmax (0..3) of each pooled output */
    float *wp[MAX_NL];      /* conv with ic > 1: weights permuted to [oc][ky][kx][ic] */
    float *g0, *g1;         /* activation gradients (ping-pong), max_batch x max out_sz */
    float *col;             /* im2col chunk, later its gradient */
    float *co;              /* conv output chunk (before bias), later its gradient */
    float *ptmp;            /* pooled chunk in NHWC for the last conv block (NCHW output) */
    float *dwp;             /* permuted conv weight gradient */
    double *db;             /* conv bias gradient accumulators, and per chunk in float */
    float *dbf;
    int prof_on;
    double prof_sec[EG_PROF_N], prof_flop[EG_PROF_N];
};

/* ---- timing helpers ---------------------------------------------------------------- */

static inline double prof_start(const eg_work *w) { return w->prof_on ? eg_now() : 0.0; }

static inline void prof_stop(eg_work *w, int phase, double t0, double flops)
{
    if (w->prof_on) {
        w->prof_sec[phase] += eg_now() - t0;
        w->prof_flop[phase] += flops;
    }
}

/* Turns timing on or off and resets the counters; w may be NULL (no-op). */
void eg_work_profile(eg_work *w, int on)
{
    if (!w)
        return;
    w->prof_on = on != 0;
    memset(w->prof_sec, 0, sizeof w->prof_sec);
    memset(w->prof_flop, 0, sizeof w->prof_flop);
}

/* Counters of one phase; w may be NULL (zeros: only the name). NULL for a bad phase. */
const char *eg_work_profile_get(const eg_work *w, int phase, double *sec, double *flops)
{
    static const char *names[EG_PROF_N] = {"conv gemm", "im2col/col2im", "bias+relu+pool",
                                           "dense gemm", "bias/relu/layout", "softmax-xent"};
    if (phase < 0 || phase >= EG_PROF_N)
        return NULL;
    if (sec)
        *sec = w ? w->prof_sec[phase] : 0.0;
    if (flops)
        *flops = w ? w->prof_flop[phase] : 0.0;
    return names[phase];
}

/* ---- building the architecture ----------------------------------------------------- */

static void add_dense(eg_model *m, int in, int out, int relu)
{
    layer *L = &m->l[m->nl++];
    memset(L, 0, sizeof *L);
    L->kind = L_DENSE;
    L->relu = relu;
    L->in = in;
    L->out = out;
    L->nw = (size_t)in * out;
    L->nb = (size_t)out;
    L->in_sz = (size_t)in;
    L->out_sz = (size_t)out;
    L->macs = (double)in * out;
}

static void add_conv(eg_model *m, int ic, int ih, int iw, int k, int oc)
{
    layer *L = &m->l[m->nl++];
    memset(L, 0, sizeof *L);
    L->kind = L_CONV;
    L->relu = 1;
    L->ic = ic;
    L->ih = ih;
    L->iw = iw;
    L->k = k;
    L->oc = oc;
    L->ph = ih / 2;
    L->pw = iw / 2;
    L->kk = (size_t)k * k * ic;
    L->nw = (size_t)oc * L->kk;
    L->nb = (size_t)oc;
    L->in_sz = (size_t)ic * ih * iw;
    L->out_sz = (size_t)oc * L->ph * L->pw;
    L->macs = (double)ih * iw * oc * (double)L->kk;
    size_t per_sample = (size_t)ih * iw * (L->kk + (size_t)oc) * sizeof(float);
    size_t chunk = CONV_CHUNK_BYTES / per_sample;
    if (chunk < 1)
        chunk = 1;
    if (chunk > (size_t)MAX_DIM / ((size_t)ih * iw))
        chunk = (size_t)MAX_DIM / ((size_t)ih * iw);
    L->chunk = (int)(chunk ? chunk : 1);
}

static int check_width(const char *what, int idx, int v, eg_err *err)
{
    if (v < 1 || v > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: %s[%d] = %d must be in [1, %d]", what, idx, v,
                          MAX_DIM);
    return EG_OK;
}

/* Validates the spec and fills the layer list (shapes only). */
static int build(eg_model *m, const eg_model_spec *s, eg_shape in, int classes, eg_err *err)
{
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return eg_err_set(err, EG_EINPUT, "model: input shape %dx%dx%d must be positive", in.c,
                          in.h, in.w);
    if (classes < 1 || classes > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: classes = %d must be in [1, %d]", classes,
                          MAX_DIM);
    char name[sizeof s->name + 1]; /* s->name need not be terminated */
    memcpy(name, s->name, sizeof s->name);
    name[sizeof s->name] = 0;
    size_t dim = (size_t)in.c * in.h * in.w;
    if (dim > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: input %dx%dx%d has more than %d features",
                          in.c, in.h, in.w, MAX_DIM);
    int rc;
    if (!strcmp(name, "logreg")) {
        add_dense(m, (int)dim, classes, 0);
        return EG_OK;
    }
    if (!strcmp(name, "mlp")) {
        if (s->n_hidden < 0 || s->n_hidden > EG_MAX_LAYERS)
            return eg_err_set(err, EG_EINPUT,
                              "model: mlp has %d hidden layers (allowed: 0 to %d)", s->n_hidden,
                              EG_MAX_LAYERS);
        int prev = (int)dim;
        for (int i = 0; i < s->n_hidden; i++) {
            if ((rc = check_width("hidden", i, s->hidden[i], err)))
                return rc;
            add_dense(m, prev, s->hidden[i], 1);
            prev = s->hidden[i];
        }
        add_dense(m, prev, classes, 0);
        return EG_OK;
    }
    if (!strcmp(name, "cnn")) {
        if (s->n_channels < 1 || s->n_channels > EG_MAX_LAYERS)
            return eg_err_set(err, EG_EINPUT,
                              "model: cnn needs 1 to %d conv blocks in channels (got %d)",
                              EG_MAX_LAYERS, s->n_channels);
        if (s->kernel < 1 || s->kernel % 2 == 0)
            return eg_err_set(err, EG_EINPUT,
                              "model: cnn kernel = %d must be odd and >= 1 ('same' padding)",
                              s->kernel);
        if (s->kernel > 31)
            return eg_err_set(err, EG_EINPUT, "model: cnn kernel = %d is larger than 31",
                              s->kernel);
        if (s->n_hidden < 0 || s->n_hidden > 1)
            return eg_err_set(err, EG_EINPUT,
                              "model: cnn takes at most one hidden width (the dense layer after "
                              "the convolutions), got %d",
                              s->n_hidden);
        int hid = s->n_hidden ? s->hidden[0] : 0;
        if (hid < 0 || hid > MAX_DIM)
            return eg_err_set(err, EG_EINPUT, "model: cnn hidden[0] = %d must be in [0, %d]",
                              hid, MAX_DIM);
        int c = in.c, h = in.h, w = in.w;
        for (int i = 0; i < s->n_channels; i++) {
            if ((rc = check_width("channels", i, s->channels[i], err)))
                return rc;
            if (h < 2 || w < 2)
                return eg_err_set(err, EG_EINPUT,
                                  "model: input %dx%dx%d is too small for %d 2x2 pooling blocks "
                                  "(block %d would get %dx%d)",
                                  in.c, in.h, in.w, s->n_channels, i + 1, h, w);
            if ((size_t)s->kernel * s->kernel * c > MAX_DIM ||
                (size_t)s->channels[i] * h * w > MAX_DIM)
                return eg_err_set(err, EG_EINPUT, "model: conv block %d is too large", i + 1);
            add_conv(m, c, h, w, s->kernel, s->channels[i]);
            c = s->channels[i];
            h /= 2;
            w /= 2;
        }
        m->l[m->nl - 1].nchw_out = 1;
        int prev = c * h * w;
        if (hid > 0) {
            add_dense(m, prev, hid, 1);
            prev = hid;
        }
        add_dense(m, prev, classes, 0);
        return EG_OK;
    }
    return eg_err_set(err, EG_EINPUT, "unknown model '%s' (known: logreg, mlp, cnn)", name);
}

/* Validates s against the input shape and builds the layer list. *out is NULL on error:
 * EG_EINPUT (bad spec: unknown name, kernel even or < 1, widths < 1, too many layers, input too
 * small for the pools, sizes beyond 2^24 per layer) or EG_ERUN (out of memory). The model is
 * read-only afterwards and may be shared between threads. */
int eg_model_init(eg_model **out, const eg_model_spec *s, eg_shape in, int classes, eg_err *err)
{
    *out = NULL;
    eg_model *m = eg_calloc(1, sizeof *m, err);
    if (!m)
        return EG_ERUN;
    int rc = build(m, s, in, classes, err);
    if (rc) {
        free(m);
        return rc;
    }
    m->in = in;
    m->classes = classes;
    size_t off = 0;
    for (int i = 0; i < m->nl; i++) {
        m->l[i].w_off = off;
        off += m->l[i].nw;
        m->l[i].b_off = off;
        off += m->l[i].nb;
    }
    m->nparams = off;
    if (off > (size_t)INT_MAX) {
        free(m);
        return eg_err_set(err, EG_EINPUT, "model: %zu parameters is more than %d", off, INT_MAX);
    }

    char *d = m->desc;
    size_t cap = sizeof m->desc, n = 0;
#define DESC(...)                                                                           \
    do {                                                                                    \
        if (n < cap)                                                                        \
            n += (size_t)snprintf(d + n, cap - n, __VA_ARGS__);                             \
    } while (0)
    if (m->l[0].kind == L_CONV) {
        DESC("cnn %dx%dx%d ", in.c, in.h, in.w);
        for (int i = 0; i < m->nl && m->l[i].kind == L_CONV; i++)
            DESC("%sc%d", i ? "-" : "", m->l[i].oc);
        DESC(" k%d", m->l[0].k);
        if (m->nl >= 2 && m->l[m->nl - 2].kind == L_DENSE)
            DESC(" h%d", m->l[m->nl - 2].out);
        DESC(" -> %d", classes);
    } else {
        DESC("%s %d", strncmp(s->name, "logreg", sizeof s->name) ? "mlp" : "logreg", m->l[0].in);
        for (int i = 0; i < m->nl; i++)
            DESC("-%d", m->l[i].out);
    }
    DESC(" (%zu params)", m->nparams);
#undef DESC
    *out = m;
    return EG_OK;
}

void eg_model_free(eg_model *m) { free(m); }

size_t eg_model_nparams(const eg_model *m) { return m->nparams; }

const char *eg_model_describe(const eg_model *m) { return m->desc; }

/* GEMM flops of one sample's forward + backward: 2*MACs forward, 2*MACs weight gradient,
 * 2*MACs input gradient except for the first layer (elementwise work not counted). */
double eg_model_flops_per_sample(const eg_model *m)
{
    double f = 0.0;
    for (int i = 0; i < m->nl; i++)
        f += (i == 0 ? 4.0 : 6.0) * m->l[i].macs;
    return f;
}

/* W ~ U(-b, b), b = gain * sqrt(3 / fan_in) (gain sqrt(2) before a ReLU, 1 for the classifier),
 * biases 0; draws every weight from rng in layout order, so it is deterministic in rng. */
void eg_model_init_params(const eg_model *m, float *params, eg_rng *rng)
{
    for (int i = 0; i < m->nl; i++) {
        const layer *L = &m->l[i];
        double fan_in = L->kind == L_CONV ? (double)L->kk : (double)L->in;
        double gain = L->relu ? sqrt(2.0) : 1.0;
        double b = gain * sqrt(3.0 / fan_in);
        float *W = params + L->w_off;
        for (size_t j = 0; j < L->nw; j++)
            W[j] = (float)((2.0 * eg_rng_uniform(rng) - 1.0) * b);
        memset(params + L->b_off, 0, L->nb * sizeof(float));
    }
}

/* ---- scratch ------------------------------------------------------------------------- */

void eg_work_free(eg_work *w)
{
    if (!w)
        return;
    for (int i = 0; i < MAX_NL; i++) {
        free(w->act[i]);
        free(w->amax[i]);
        free(w->wp[i]);
    }
    free(w->g0);
    free(w->g1);
    free(w->col);
    free(w->co);
    free(w->ptmp);
    free(w->dwp);
    free(w->db);
    free(w->dbf);
    free(w);
}

/* All scratch of one thread for batches of up to max_batch (EG_EINPUT outside [1, 2^20],
 * EG_ERUN when out of memory; *out is NULL then). Nothing is allocated after this. */
int eg_work_init(eg_work **out, const eg_model *m, int max_batch, eg_err *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 20))
        return eg_err_set(err, EG_EINPUT, "model: batch size %d must be in [1, %d]", max_batch,
                          1 << 20);
    eg_work *w = eg_calloc(1, sizeof *w, err);
    if (!w)
        return EG_ERUN;
    w->max_batch = max_batch;
    size_t B = (size_t)max_batch, gmax = 0, colmax = 0, comax = 0, wmax = 0, ocmax = 0, ptmax = 0;
    for (int i = 0; i < m->nl; i++) {
        const layer *L = &m->l[i];
        if (L->out_sz > gmax)
            gmax = L->out_sz;
        if (!(w->act[i] = eg_alloc_floats(B * L->out_sz, err)))
            goto fail;
        if (L->kind != L_CONV)
            continue;
        if (!(w->amax[i] = eg_malloc(B * L->out_sz, err)))
            goto fail;
        memset(w->amax[i], 0, B * L->out_sz);
        if (conv_permuted(L, i) && !(w->wp[i] = eg_alloc_floats(L->nw, err)))
            goto fail;
        size_t cs = (size_t)(L->chunk < max_batch ? L->chunk : max_batch);
        size_t px = cs * L->ih * L->iw;
        if (px * L->kk > colmax)
            colmax = px * L->kk;
        if (px * L->oc > comax)
            comax = px * L->oc;
        if (L->nw > wmax)
            wmax = L->nw;
        if ((size_t)L->oc > ocmax)
            ocmax = (size_t)L->oc;
        if (L->nchw_out && cs * L->out_sz > ptmax)
            ptmax = cs * L->out_sz;
    }
    if (!(w->g0 = eg_alloc_floats(B * gmax, err)) || !(w->g1 = eg_alloc_floats(B * gmax, err)))
        goto fail;
    if (colmax) {
        if (!(w->col = eg_alloc_floats(colmax, err)) || !(w->co = eg_alloc_floats(comax, err)) ||
            !(w->dwp = eg_alloc_floats(wmax, err)) || !(w->ptmp = eg_alloc_floats(ptmax, err)) ||
            !(w->db = eg_calloc(ocmax, sizeof(double), err)) ||
            !(w->dbf = eg_alloc_floats(ocmax, err)))
            goto fail;
    }
    *out = w;
    return EG_OK;
fail:
    eg_work_free(w);
    return EG_ERUN;
}

/* ---- dense kernels ------------------------------------------------------------------- */

/* y[B x out] = relu?(x[B x in] W^T + b) */
static void dense_forward(const layer *L, eg_work *w, const float *params, const float *x,
                          float *y, int B)
{
    const float *W = params + L->w_off, *b = params + L->b_off;
    const int out = L->out;
    double t = prof_start(w);
    for (int n = 0; n < B; n++)
        memcpy(y + (size_t)n * out, b, (size_t)out * sizeof(float));
    prof_stop(w, EG_PROF_ELEMWISE, t, 0);
    t = prof_start(w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, L->in, 1.0f, x, L->in, W, L->in,
                1.0f, y, out);
    prof_stop(w, EG_PROF_DENSE_GEMM, t, 2.0 * B * L->macs);
    if (L->relu) {
        t = prof_start(w);
        const size_t len = (size_t)B * out;
        EG_SIMD
        for (size_t i = 0; i < len; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        prof_stop(w, EG_PROF_ELEMWISE, t, 0);
    }
}

/* dy (grad of the output, overwritten by grad of the pre-activation) -> weight and bias
 * grads (overwritten), dx = dy W when dx != NULL. */
static void dense_backward(const layer *L, eg_work *w, const float *params, const float *x,
                           const float *y, float *dy, float *dx, int B, float *grad)
{
    const int out = L->out, in = L->in;
    float *gb = grad + L->b_off;
    double t = prof_start(w);
    memset(gb, 0, (size_t)out * sizeof(float));
    for (int n = 0; n < B; n++) {
        float *restrict d = dy + (size_t)n * out;
        const float *restrict a = y + (size_t)n * out;
        if (L->relu) {
            EG_SIMD
            for (int j = 0; j < out; j++) {
                float dv = d[j];
                d[j] = a[j] > 0.0f ? dv : 0.0f;
            }
        }
        EG_SIMD
        for (int j = 0; j < out; j++)
            gb[j] += d[j];
    }
    prof_stop(w, EG_PROF_ELEMWISE, t, 0);
    t = prof_start(w);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f, dy, out, x, in, 0.0f,
                grad + L->w_off, in);
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, dy, out,
                    params + L->w_off, in, 0.0f, dx, in);
    prof_stop(w, EG_PROF_DENSE_GEMM, t, (dx ? 4.0 : 2.0) * B * L->macs);
}

/* ---- conv kernels -------------------------------------------------------------------- */

/* Row layout, for conv layers after the first (NHWC input): col[(ns*ih*iw) x kk], row
 * (n, y, x) = the k x k x ic patch centred at (y, x), zero outside the image, in (ky, kx, c)
 * order: k runs of k*ic contiguous floats per row. */
static void im2col(const layer *L, const float *in, int ns, float *col)
{
    const int k = L->k, p = k / 2, ic = L->ic, ih = L->ih, iw = L->iw;
    const size_t run = (size_t)k * ic;
    for (int n = 0; n < ns; n++) {
        const float *img = in + (size_t)n * L->in_sz;
        float *d = col + (size_t)n * ih * iw * L->kk;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                const int x0 = x - p;
                const size_t lo = (size_t)(x0 < 0 ? -x0 : 0) * ic;
                const size_t hi = (size_t)(x0 + k > iw ? iw - x0 : k) * ic;
                for (int ky = 0; ky < k; ky++, d += run) {
                    const int yy = y + ky - p;
                    if (yy < 0 || yy >= ih) {
                        memset(d, 0, run * sizeof(float));
                        continue;
                    }
                    /* pixel (yy, x0 + j / ic) for lo <= j < hi */
                    const float *s = img + (size_t)yy * iw * ic + (ptrdiff_t)x0 * ic;
                    if (lo)
                        memset(d, 0, lo * sizeof(float));
                    memcpy(d + lo, s + lo, (hi - lo) * sizeof(float));
                    if (hi < run)
                        memset(d + hi, 0, (run - hi) * sizeof(float));
                }
            }
    }
}

/* Transposed layout, for the first conv layer (NCHW input x, never needs col2im):
 * col[kk x (ns*ih*iw)], row (c, ky, kx) = the image of channel c shifted by (ky-p, kx-p),
 * zero outside. Each row is built from whole image rows (memcpy of iw floats) and the
 * (c, ky, kx) order is the weight's own, so the first layer needs no permutation. */
static void im2col_t(const layer *L, const float *in, int ns, float *col)
{
    const int k = L->k, p = k / 2, ic = L->ic, ih = L->ih, iw = L->iw;
    const size_t P = (size_t)ns * ih * iw;
    for (int c = 0; c < ic; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + (((size_t)c * k + ky) * k + kx) * P;
                const int dx = kx - p;
                const int xlo = dx < 0 ? -dx : 0, xhi = dx > 0 ? iw - dx : iw;
                for (int n = 0; n < ns; n++)
                    for (int y = 0; y < ih; y++) {
                        float *d = row + ((size_t)n * ih + y) * iw;
                        const int yy = y + ky - p;
                        if (yy < 0 || yy >= ih || xhi <= xlo) {
                            memset(d, 0, (size_t)iw * sizeof(float));
                            continue;
                        }
                        const float *s = in + (((size_t)n * ic + c) * ih + yy) * iw;
                        if (xlo)
                            memset(d, 0, (size_t)xlo * sizeof(float));
                        memcpy(d + xlo, s + xlo + dx, (size_t)(xhi - xlo) * sizeof(float));
                        if (xhi < iw)
                            memset(d + xhi, 0, (size_t)(iw - xhi) * sizeof(float));
                    }
            }
}

/* din (ns NHWC images, overwritten) = sum of the patches in dcol (inverse of im2col) */
static void col2im(const layer *L, const float *dcol, int ns, float *din)
{
    const int k = L->k, p = k / 2, ic = L->ic, ih = L->ih, iw = L->iw;
    const size_t run = (size_t)k * ic;
    memset(din, 0, (size_t)ns * L->in_sz * sizeof(float));
    for (int n = 0; n < ns; n++) {
        float *img = din + (size_t)n * L->in_sz;
        const float *d = dcol + (size_t)n * ih * iw * L->kk;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                const int x0 = x - p;
                const size_t lo = (size_t)(x0 < 0 ? -x0 : 0) * ic;
                const size_t hi = (size_t)(x0 + k > iw ? iw - x0 : k) * ic;
                for (int ky = 0; ky < k; ky++, d += run) {
                    const int yy = y + ky - p;
                    if (yy < 0 || yy >= ih)
                        continue;
                    float *restrict s = img + (size_t)yy * iw * ic + (ptrdiff_t)x0 * ic + lo;
                    const float *restrict dd = d + lo;
                    EG_SIMD
                    for (size_t j = 0; j < hi - lo; j++)
                        s[j] += dd[j];
                }
            }
    }
}

/* Pooled output (post-ReLU) and argmax (0..3, first maximum in the order (0,0), (0,1),
 * (1,0), (1,1)) of ns samples, both NHWC, from the raw conv output co (NHWC, before bias).
 * max(v + b) = max(v) + b and max(relu(.)) = relu(max(.)), so bias and ReLU are applied
 * once per pooled output. Branch-free so that it vectorises over the channels. */
static void pool_forward(const layer *L, const float *co, const float *bias, int ns, float *out,
                         uint8_t *amax)
{
    const int oc = L->oc, iw = L->iw;
    const size_t rowst = (size_t)iw * oc;
    for (int n = 0; n < ns; n++) {
        const float *img = co + (size_t)n * L->ih * rowst;
        for (int py = 0; py < L->ph; py++)
            for (int px = 0; px < L->pw; px++) {
                const float *restrict a = img + (size_t)(2 * py) * rowst + (size_t)(2 * px) * oc;
                const float *restrict b = a + oc, *restrict c2 = a + rowst,
                                      *restrict d = a + rowst + oc;
                const size_t o = (((size_t)n * L->ph + py) * L->pw + px) * oc;
                float *restrict op = out + o;
                uint8_t *restrict ap = amax + o;
                /* selects on floats only: GCC if-converts and vectorises these */
                EG_SIMD
                for (int c = 0; c < oc; c++) {
                    float v0 = a[c], v1 = b[c], v2 = c2[c], v3 = d[c];
                    float m01 = v1 > v0 ? v1 : v0, m23 = v3 > v2 ? v3 : v2;
                    float i01 = v1 > v0 ? 1.0f : 0.0f, i23 = v3 > v2 ? 3.0f : 2.0f;
                    float i = m23 > m01 ? i23 : i01;
                    float m = (m23 > m01 ? m23 : m01) + bias[c];
                    op[c] = m > 0.0f ? m : 0.0f;
                    ap[c] = (uint8_t)(int)i;
                }
            }
    }
}

/* dco (raw conv output gradient of ns samples, NHWC, overwritten) from the pooled output
 * gradient dout (NHWC): each window's argmax gets dout, masked by the ReLU (out > 0) when out
 * is not NULL, the other three 0. Adds the bias gradient to db (float: the double
 * conversion would keep the loop scalar; the caller moves it to double per chunk). */
static void pool_backward(const layer *L, const float *out, const uint8_t *amax,
                          const float *dout, int ns, float *dco, float *db)
{
    const int oc = L->oc, iw = L->iw;
    const size_t rowst = (size_t)iw * oc;
    if ((L->ih | L->iw) & 1) /* rows / columns outside every window */
        memset(dco, 0, (size_t)ns * L->ih * rowst * sizeof(float));
    for (int n = 0; n < ns; n++) {
        float *img = dco + (size_t)n * L->ih * rowst;
        for (int py = 0; py < L->ph; py++)
            for (int px = 0; px < L->pw; px++) {
                float *restrict a = img + (size_t)(2 * py) * rowst + (size_t)(2 * px) * oc;
                float *restrict b = a + oc, *restrict c2 = a + rowst, *restrict d = a + rowst + oc;
                const size_t o = (((size_t)n * L->ph + py) * L->pw + px) * oc;
                const float *restrict dp = dout + o;
                const uint8_t *restrict ap = amax + o;
                if (out) {
                    const float *restrict op = out + o;
                    EG_SIMD
                    for (int c = 0; c < oc; c++) {
                        float dv = dp[c], ov = op[c], fi = (float)ap[c];
                        float g = ov > 0.0f ? dv : 0.0f;
                        a[c] = fi == 0.0f ? g : 0.0f;
                        b[c] = fi == 1.0f ? g : 0.0f;
                        c2[c] = fi == 2.0f ? g : 0.0f;
                        d[c] = fi == 3.0f ? g : 0.0f;
                        db[c] += g;
                    }
                } else {
                    EG_SIMD
                    for (int c = 0; c < oc; c++) {
                        float g = dp[c], fi = (float)ap[c];
                        a[c] = fi == 0.0f ? g : 0.0f;
                        b[c] = fi == 1.0f ? g : 0.0f;
                        c2[c] = fi == 2.0f ? g : 0.0f;
                        d[c] = fi == 3.0f ? g : 0.0f;
                        db[c] += g;
                    }
                }
            }
    }
}

/* dst[n][c][q] = src[n][q][c] for ns samples of hw pixels x ch channels (NHWC -> NCHW) */
static void nhwc_to_nchw(const float *src, int ns, int hw, int ch, float *dst)
{
    for (int n = 0; n < ns; n++) {
        const float *s = src + (size_t)n * hw * ch;
        float *d = dst + (size_t)n * hw * ch;
        for (int q = 0; q < hw; q++)
            for (int c = 0; c < ch; c++)
                d[(size_t)c * hw + q] = s[(size_t)q * ch + c];
    }
}

/* dst[n][q][c] = src[n][c][q] * (mask[n][c][q] > 0 when mask != NULL) (NCHW -> NHWC) */
static void nchw_to_nhwc(const float *src, const float *mask, int ns, int hw, int ch, float *dst)
{
    for (int n = 0; n < ns; n++) {
        const float *s = src + (size_t)n * hw * ch;
        const float *mk = mask ? mask + (size_t)n * hw * ch : NULL;
        float *d = dst + (size_t)n * hw * ch;
        for (int c = 0; c < ch; c++)
            for (int q = 0; q < hw; q++) {
                float v = s[(size_t)c * hw + q];
                if (mk)
                    v = mk[(size_t)c * hw + q] > 0.0f ? v : 0.0f;
                d[(size_t)q * ch + c] = v;
            }
    }
}

/* Wp[oc][ky][kx][ic] <- W[oc][ic][ky][kx] */
static void permute_weights(const layer *L, const float *W, float *Wp)
{
    const int oc = L->oc, ic = L->ic, kk2 = L->k * L->k;
    for (int o = 0; o < oc; o++) {
        const float *s = W + (size_t)o * L->kk;
        float *d = Wp + (size_t)o * L->kk;
        for (int c = 0; c < ic; c++)
            for (int q = 0; q < kk2; q++)
                d[(size_t)q * ic + c] = s[(size_t)c * kk2 + q];
    }
}

/* G[oc][ic][ky][kx] <- Gp[oc][ky][kx][ic] */
static void unpermute_weights(const layer *L, const float *Gp, float *G)
{
    const int oc = L->oc, ic = L->ic, kk2 = L->k * L->k;
    for (int o = 0; o < oc; o++) {
        const float *s = Gp + (size_t)o * L->kk;
        float *d = G + (size_t)o * L->kk;
        for (int c = 0; c < ic; c++)
            for (int q = 0; q < kk2; q++)
                d[(size_t)c * kk2 + q] = s[(size_t)q * ic + c];
    }
}

/* Conv weights as used by the GEMMs; conv_forward permutes them into the work if needed. */
static const float *conv_weights(const layer *L, eg_work *w, int li, const float *params)
{
    return conv_permuted(L, li) ? w->wp[li] : params + L->w_off;
}

static void conv_forward(const layer *L, eg_work *w, int li, const float *params, const float *x,
                         float *y, int B)
{
    if (conv_permuted(L, li)) {
        double t = prof_start(w);
        permute_weights(L, params + L->w_off, w->wp[li]);
        prof_stop(w, EG_PROF_ELEMWISE, t, 0);
    }
    const float *Wp = conv_weights(L, w, li, params);
    const int hw = L->ih * L->iw;
    for (int s0 = 0; s0 < B; s0 += L->chunk) {
        int ns = B - s0 < L->chunk ? B - s0 : L->chunk;
        double t = prof_start(w);
        if (li == 0)
            im2col_t(L, x + (size_t)s0 * L->in_sz, ns, w->col);
        else
            im2col(L, x + (size_t)s0 * L->in_sz, ns, w->col);
        prof_stop(w, EG_PROF_IM2COL, t, 0);
        t = prof_start(w);
        /* co[P x oc] = col[P x kk] Wp^T, col stored transposed for the first layer */
        cblas_sgemm(CblasRowMajor, li == 0 ? CblasTrans : CblasNoTrans, CblasTrans, ns * hw,
                    L->oc, (int)L->kk, 1.0f, w->col, li == 0 ? ns * hw : (int)L->kk, Wp,
                    (int)L->kk, 0.0f, w->co, L->oc);
        prof_stop(w, EG_PROF_CONV_GEMM, t, 2.0 * ns * L->macs);
        t = prof_start(w);
        float *yc = y + (size_t)s0 * L->out_sz;
        pool_forward(L, w->co, params + L->b_off, ns, L->nchw_out ? w->ptmp : yc,
                     w->amax[li] + (size_t)s0 * L->out_sz);
        if (L->nchw_out)
            nhwc_to_nchw(w->ptmp, ns, L->ph * L->pw, L->oc, yc);
        prof_stop(w, EG_PROF_POOL, t, 0);
    }
}

static void conv_backward(const layer *L, eg_work *w, int li, const float *params,
                          const float *x, const float *y, float *dy, float *dx, int B,
                          float *grad)
{
    const float *Wp = conv_weights(L, w, li, params); /* permuted by conv_forward */
    float *dW = conv_permuted(L, li) ? w->dwp : grad + L->w_off;
    const int hw = L->ih * L->iw, kk = (int)L->kk, oc = L->oc;
    memset(w->db, 0, (size_t)oc * sizeof(double));
    for (int s0 = 0; s0 < B; s0 += L->chunk) {
        int ns = B - s0 < L->chunk ? B - s0 : L->chunk;
        double t = prof_start(w);
        const size_t o = (size_t)s0 * L->out_sz;
        memset(w->dbf, 0, (size_t)oc * sizeof(float));
        if (L->nchw_out) { /* mask by the ReLU while changing the layout */
            nchw_to_nhwc(dy + o, y + o, ns, L->ph * L->pw, L->oc, w->ptmp);
            pool_backward(L, NULL, w->amax[li] + o, w->ptmp, ns, w->co, w->dbf);
        } else {
            pool_backward(L, y + o, w->amax[li] + o, dy + o, ns, w->co, w->dbf);
        }
        for (int c = 0; c < oc; c++)
            w->db[c] += w->dbf[c];
        prof_stop(w, EG_PROF_POOL, t, 0);
        t = prof_start(w);
        if (li == 0)
            im2col_t(L, x + (size_t)s0 * L->in_sz, ns, w->col);
        else
            im2col(L, x + (size_t)s0 * L->in_sz, ns, w->col);
        prof_stop(w, EG_PROF_IM2COL, t, 0);
        t = prof_start(w);
        /* dW[oc x kk] (+)= dco^T col */
        cblas_sgemm(CblasRowMajor, CblasTrans, li == 0 ? CblasTrans : CblasNoTrans, oc, kk,
                    ns * hw, 1.0f, w->co, oc, w->col, li == 0 ? ns * hw : kk,
                    s0 ? 1.0f : 0.0f, dW, kk);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ns * hw, kk, oc, 1.0f, w->co,
                        oc, Wp, kk, 0.0f, w->col, kk);
        prof_stop(w, EG_PROF_CONV_GEMM, t, (dx ? 4.0 : 2.0) * ns * L->macs);
        if (dx) {
            t = prof_start(w);
            col2im(L, w->col, ns, dx + (size_t)s0 * L->in_sz);
            prof_stop(w, EG_PROF_IM2COL, t, 0);
        }
    }
    double t = prof_start(w);
    if (conv_permuted(L, li))
        unpermute_weights(L, w->dwp, grad + L->w_off);
    float *gb = grad + L->b_off;
    for (int c = 0; c < oc; c++)
        gb[c] = (float)w->db[c];
    prof_stop(w, EG_PROF_ELEMWISE, t, 0);
}

/* ---- the layer table ------------------------------------------------------------------ */

typedef struct layer_ops {
    void (*forward)(const layer *L, eg_work *w, int li, const float *params, const float *x,
                    float *y, int B);
    void (*backward)(const layer *L, eg_work *w, int li, const float *params, const float *x,
                     const float *y, float *dy, float *dx, int B, float *grad);
} layer_ops;

static void dense_forward_op(const layer *L, eg_work *w, int li, const float *params,
                             const float *x, float *y, int B)
{
    (void)li;
    dense_forward(L, w, params, x, y, B);
}

static void dense_backward_op(const layer *L, eg_work *w, int li, const float *params,
                              const float *x, const float *y, float *dy, float *dx, int B,
                              float *grad)
{
    (void)li;
    dense_backward(L, w, params, x, y, dy, dx, B, grad);
}

static const layer_ops ops[] = {
    [L_DENSE] = {dense_forward_op, dense_backward_op},
    [L_CONV] = {conv_forward, conv_backward},
};

static const float *forward(const eg_model *m, eg_work *w, const float *params, const float *x,
                            int B)
{
    const float *in = x;
    for (int i = 0; i < m->nl; i++) {
        ops[m->l[i].kind].forward(&m->l[i], w, i, params, in, w->act[i], B);
        in = w->act[i];
    }
    return in;
}

/* softmax cross-entropy of one row of logits; writes exp(z - max) to e when e != NULL and
 * their sum to *sum */
static double xent_row(const float *z, int C, int label, float *e, double *sum, int *argmax)
{
    int am = 0;
    float mx = z[0];
    for (int j = 1; j < C; j++)
        if (z[j] > mx) {
            mx = z[j];
            am = j;
        }
    double s = 0.0;
    for (int j = 0; j < C; j++) {
        float v = expf(z[j] - mx);
        if (e)
            e[j] = v;
        s += v;
    }
    if (argmax)
        *argmax = am;
    if (sum)
        *sum = s;
    return log(s) - ((double)z[label] - (double)mx);
}

/* Overwrites grad (nparams floats) and returns the mean loss. Returns NAN with grad zeroed
 * when batch is outside [1, max_batch] or a label outside [0, classes). Uses only w as
 * scratch; never changes the OpenBLAS thread count. Bitwise deterministic for the same model
 * shape, inputs, batch and OpenBLAS thread count (chunking does not depend on max_batch). */
float eg_model_loss_grad(const eg_model *m, eg_work *w, const float *params, float *stats,
                         const float *x, const int32_t *y, int batch, float *grad)
{
    (void)stats;
    if (batch < 1 || batch > w->max_batch) {
        memset(grad, 0, m->nparams * sizeof(float));
        return NAN;
    }
    const int C = m->classes, B = batch;
    for (int n = 0; n < B; n++)
        if (y[n] < 0 || y[n] >= C) {
            memset(grad, 0, m->nparams * sizeof(float));
            return NAN;
        }
    const float *logits = forward(m, w, params, x, B);

    double t = prof_start(w);
    float *g = w->g0, *gn = w->g1;
    double lsum = 0.0;
    const float invB = 1.0f / (float)B;
    for (int n = 0; n < B; n++) {
        float *e = g + (size_t)n * C;
        double s = 0.0;
        lsum += xent_row(logits + (size_t)n * C, C, y[n], e, &s, NULL);
        float sc = (float)(1.0 / s) * invB;
        for (int j = 0; j < C; j++)
            e[j] *= sc;
        e[y[n]] -= invB;
    }
    prof_stop(w, EG_PROF_LOSS, t, 0);

    for (int i = m->nl - 1; i >= 0; i--) {
        const float *in = i ? w->act[i - 1] : x;
        ops[m->l[i].kind].backward(&m->l[i], w, i, params, in, w->act[i], g, i ? gn : NULL, B,
                                   grad);
        float *tmp = g;
        g = gn;
        gn = tmp;
    }
    return (float)(lsum / B);
}

/* Forward only; adds to *loss_sum and *correct (ties: the lowest class wins). A batch larger
 * than max_batch is done in slices of max_batch. A label out of range adds NAN to the loss. */
void eg_model_eval(const eg_model *m, eg_work *w, const float *params, const float *stats,
                   const float *x, const int32_t *y, int batch, double *loss_sum, long *correct)
{
    (void)stats;
    const int C = m->classes;
    for (int s0 = 0; s0 < batch; s0 += w->max_batch) {
        int B = batch - s0 < w->max_batch ? batch - s0 : w->max_batch;
        const float *logits = forward(m, w, params, x + (size_t)s0 * m->l[0].in_sz, B);
        double t = prof_start(w);
        double ls = 0.0;
        long ok = 0;
        for (int n = 0; n < B; n++) {
            int label = y[s0 + n], am;
            if (label < 0 || label >= C) {
                ls = NAN;
                continue;
            }
            ls += xent_row(logits + (size_t)n * C, C, label, NULL, NULL, &am);
            ok += am == label;
        }
        *loss_sum += ls;
        *correct += ok;
        prof_stop(w, EG_PROF_LOSS, t, 0);
    }
}

/* ---- interim (until the oneDNN engine lands): no batch norm, biases exempt ---- */
size_t eg_model_nstats(const eg_model *m) { (void)m; return 0; }
void eg_model_init_stats(const eg_model *m, float *stats) { (void)m; (void)stats; }
int eg_model_nodecay(const eg_model *m, size_t *off, size_t *len, int max)
{
    int n = 0;
    for (int i = 0; i < m->nl; i++, n++)
        if (n < max) {
            off[n] = m->l[i].b_off;
            len[n] = m->l[i].nb;
        }
    return n;
}
