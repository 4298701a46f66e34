/* model.c - the architectures (logreg, mlp, cnn, resnet) as op lists for nn.c, on one flat
 * float parameter vector (see model.h).
 *
 * Parameter layout, in op order (nn.h's nn_op offsets):
 *   dense      weight [out][in] row-major (in = C*H*W of a C,H,W input, flattened in that
 *              order as PyTorch does), then bias [out]
 *   conv       weight [oc][ic][k][k] (PyTorch OIHW), then bias [oc] unless a norm follows
 *   batch/group norm   scale [C], then shift [C]
 * logreg = one dense layer; mlp = dense+ReLU per hidden width, then a dense classifier;
 * cnn = blocks of k x k conv ('same' padding k/2, or 'valid': none) (+ norm) + ReLU + 2x2
 *   max-pool (floor), flatten, dense+ReLU per hidden width, classifier; with norm_after_pool
 *   each block is conv (with bias) + ReLU + pool + norm (LeNet-5 with group norm: channels
 *   [6, 16], kernel 5, valid, hidden [120, 84], groups [2, 4] has 44,470 parameters on
 *   1x28x28, 44,426 without its norms);
 * resnet = the CIFAR ResNet of He et al. 2016 (sec. 4.2): 3x3 stem conv (width) + norm + ReLU;
 *   three stages of k = (depth - 2) / 6 basic blocks (conv3x3-norm-ReLU-conv3x3-norm, + shortcut,
 *   ReLU) with width, 2 width, 4 width channels, stride 2 in the first block of stages 2 and 3;
 *   option-A shortcuts (x[:, :, ::2, ::2], extra channels zero); global average pooling;
 *   dense classifier. With norm none its convs have biases.
 * resnet with stem imagenet = torchvision's ResNet v1.5 (resnet18/34/50/101): 7x7 stride-2
 *   conv (width) + norm + ReLU, 3x3 stride-2 max pool (padding 1); four stages of width,
 *   2 width, 4 width, 8 width channels, stride 2 in the first block of stages 2 to 4; basic
 *   blocks ([2,2,2,2] for 18, [3,4,6,3] for 34) or bottleneck blocks (conv1x1-norm-ReLU-
 *   conv3x3(stride)-norm-ReLU-conv1x1(4x)-norm, + shortcut, ReLU; [3,4,6,3] for 50,
 *   [3,4,23,3] for 101); a 1x1 conv (stride) + norm projection shortcut where the shape
 *   changes, identity elsewhere; global average pooling; dense classifier. In op order a
 *   projection block is: main path, projection conv + norm, shortcut gradient (copy), add,
 *   ReLU; the main path's first conv accumulates its input gradient (nn.h's acc).
 * zero_init_residual: the last norm of each residual block gets scale 0 (Goyal et al. 2017).
 * The classifier feeds a softmax cross-entropy averaged over the batch (a loop here).
 *
 * Running statistics (batch norm only): mean[C] then var[C] per batch-norm layer, in op order.
 *
 * Initialisation (unchanged for the older models): Kaiming-uniform with the gain of the
 * nonlinearity that follows, as torch.nn.init.kaiming_uniform_(nonlinearity='relu' /
 * 'linear'): W ~ U(-b, b), b = gain * sqrt(3 / fan_in), gain sqrt(2) for every conv and hidden
 * dense layer, 1 for the classifier; fan_in = in for dense, ic*k*k for conv; weights drawn in
 * layout order, one layer after another; biases 0; norm scales 1 (0 for each block's last
 * norm with zero_init_residual), shifts 0.
 *
 * Flop convention (eg_model_flops_per_sample): convolutions and dense layers only, 2*MACs for
 * the forward, 2*MACs for the weight gradient and 2*MACs for the input gradient of every such
 * layer except one reading the model's input (which needs none): about 6*MACs. Norms,
 * ReLUs, pools, adds and the loss are not counted.
 */
#define _POSIX_C_SOURCE 200809L
#include "model.h"
#include "nn.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* largest per-sample width / dimension accepted */
#define MAX_DIM (1 << 24)
/* evaluation runs in slices of at most this many samples (an evaluation plan shares its
 * activation buffers between layers, so its memory is a few layers' worth per sample) */
#define EVAL_SLICE 256

struct eg_model {
    eg_shape in;
    int classes;
    nn_net net;
    size_t nparams, nstats;
    eg_norm_kind norm;
    int groups;
    int oom;
    char desc[256];
};

/* ---- building blocks (each returns the output tensor; sets m->oom on failure) ---------- */

static int tensor(eg_model *m, int c, int h, int w, int flat)
{
    int t = nn_net_tensor(&m->net, c, h, w, flat, 0);
    if (t < 0)
        m->oom = 1;
    return t < 0 ? 0 : t;
}

static int add_op(eg_model *m, nn_op *op)
{
    op->w_off = m->nparams;
    op->b_off = op->w_off + op->nw;
    m->nparams += op->nw + op->nb;
    if (nn_net_op(&m->net, op) < 0)
        m->oom = 1;
    return op->out;
}

static int add_conv(eg_model *m, int in, int k, int stride, int oc, int bias)
{
    const nn_tensor T = m->net.t[in];
    int oh = (T.h + 2 * (k / 2) - k) / stride + 1, ow = (T.w + 2 * (k / 2) - k) / stride + 1;
    nn_op op = {.kind = NN_CONV, .in = in, .k = k, .stride = stride, .pad = k / 2,
                .bias = bias, .gain_relu = 1};
    op.out = tensor(m, oc, oh, ow, 0);
    op.nw = (size_t)oc * T.c * k * k;
    op.nb = bias ? (size_t)oc : 0;
    op.macs = (double)oh * ow * oc * T.c * k * k;
    return add_op(m, &op);
}

static int add_dense(eg_model *m, int in, int out, int relu)
{
    nn_tensor T = m->net.t[in];
    if (!T.flat && !T.nchw && T.h * T.w > 1) { /* NCHW copy: weights used as stored */
        nn_op r = {.kind = NN_REORDER, .in = in};
        r.out = nn_net_tensor(&m->net, T.c, T.h, T.w, 0, 1);
        if (r.out < 0)
            m->oom = 1;
        in = add_op(m, &r);
    }
    size_t fan = (size_t)T.c * T.h * T.w;
    nn_op op = {.kind = NN_DENSE, .in = in, .gain_relu = relu};
    T = m->net.t[in];
    op.out = tensor(m, 1, 1, out, 1);
    op.nw = (size_t)out * fan;
    op.nb = (size_t)out;
    op.macs = (double)out * fan;
    add_op(m, &op);
    if (relu) {
        nn_op r = {.kind = NN_RELU, .in = op.out, .out = op.out};
        add_op(m, &r);
    }
    return op.out;
}

static int add_simple(eg_model *m, nn_kind kind, int in, int out)
{
    nn_op op = {.kind = kind, .in = in, .out = out};
    return add_op(m, &op);
}

/* norm (if any) then ReLU, on a conv output */
static int add_norm_relu(eg_model *m, int in, int relu)
{
    int t = in;
    if (m->norm != EG_NORM_NONE) {
        const nn_tensor T = m->net.t[in];
        nn_op op = {.kind = m->norm == EG_NORM_BATCH ? NN_BN : NN_GN, .in = in,
                    .groups = m->groups, .nw = (size_t)T.c, .nb = (size_t)T.c};
        op.out = t = tensor(m, T.c, T.h, T.w, 0);
        if (op.kind == NN_BN) {
            op.s_off = m->nstats;
            m->nstats += 2 * (size_t)T.c;
            op.relu = relu; /* fused */
            relu = 0;
        }
        add_op(m, &op);
    }
    return relu ? add_simple(m, NN_RELU, t, t) : t;
}

static int check_width(const char *what, int idx, int v, eg_err *err)
{
    if (v < 1 || v > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: %s[%d] = %d must be in [1, %d]", what, idx, v,
                          MAX_DIM);
    return EG_OK;
}

static int check_groups(const eg_model *m, int channels, const char *where, eg_err *err)
{
    if (m->norm == EG_NORM_GROUP && channels % m->groups)
        return eg_err_set(err, EG_EINPUT,
                          "model: group norm with groups = %d does not divide the %d channels "
                          "of %s (choose groups dividing every layer's channels)",
                          m->groups, channels, where);
    return EG_OK;
}

/* ---- architectures ------------------------------------------------------------------- */

static int build_mlp(eg_model *m, const eg_model_spec *s, int logreg, eg_err *err)
{
    int n_hidden = logreg ? 0 : s->n_hidden;
    if (n_hidden < 0 || n_hidden > EG_MAX_LAYERS)
        return eg_err_set(err, EG_EINPUT, "model: mlp has %d hidden layers (allowed: 0 to %d)",
                          n_hidden, EG_MAX_LAYERS);
    int t = tensor(m, 1, 1, m->in.c * m->in.h * m->in.w, 1), rc;
    for (int i = 0; i < n_hidden; i++) {
        if ((rc = check_width("hidden", i, s->hidden[i], err)))
            return rc;
        t = add_dense(m, t, s->hidden[i], 1);
    }
    add_dense(m, t, m->classes, 0);
    return EG_OK;
}

static int check_cnn(const eg_model_spec *s, eg_err *err)
{
    if (s->n_channels < 1 || s->n_channels > EG_MAX_LAYERS)
        return eg_err_set(err, EG_EINPUT,
                          "model: cnn needs 1 to %d conv blocks in channels (got %d)",
                          EG_MAX_LAYERS, s->n_channels);
    if (s->kernel < 1 || (s->kernel % 2 == 0 && !s->valid))
        return eg_err_set(err, EG_EINPUT,
                          "model: cnn kernel = %d must be odd and >= 1 ('same' padding)",
                          s->kernel);
    if (s->kernel > 31)
        return eg_err_set(err, EG_EINPUT, "model: cnn kernel = %d is larger than 31", s->kernel);
    if (s->n_hidden < 0 || s->n_hidden > EG_MAX_LAYERS)
        return eg_err_set(err, EG_EINPUT,
                          "model: cnn takes 0 to %d hidden widths (the dense layers after "
                          "the convolutions), got %d",
                          EG_MAX_LAYERS, s->n_hidden);
    for (int i = 0; i < s->n_hidden; i++)
        if (s->hidden[i] < (s->n_hidden > 1) || s->hidden[i] > MAX_DIM)
            return eg_err_set(err, EG_EINPUT, "model: cnn hidden[%d] = %d must be in [%d, %d]",
                              i, s->hidden[i], s->n_hidden > 1, MAX_DIM);
    if (s->n_block_groups && s->n_block_groups != s->n_channels)
        return eg_err_set(err, EG_EINPUT,
                          "model: cnn groups lists %d values for %d conv blocks (give one per "
                          "block, or a single number)", s->n_block_groups, s->n_channels);
    for (int i = 0; i < s->n_block_groups; i++)
        if (s->block_groups[i] < 1)
            return eg_err_set(err, EG_EINPUT, "model: cnn groups[%d] = %d must be >= 1", i,
                              s->block_groups[i]);
    return EG_OK;
}

/* a cnn convolution: k x k, stride 1, padding pad (k / 2 'same', 0 'valid') */
static int add_cnn_conv(eg_model *m, int in, int k, int pad, int oc, int bias)
{
    const nn_tensor T = m->net.t[in];
    int oh = T.h + 2 * pad - k + 1, ow = T.w + 2 * pad - k + 1;
    nn_op op = {.kind = NN_CONV, .in = in, .k = k, .stride = 1, .pad = pad,
                .bias = bias, .gain_relu = 1};
    op.out = tensor(m, oc, oh, ow, 0);
    op.nw = (size_t)oc * T.c * k * k;
    op.nb = bias ? (size_t)oc : 0;
    op.macs = (double)oh * ow * oc * T.c * k * k;
    return add_op(m, &op);
}

static int build_cnn(eg_model *m, const eg_model_spec *s, eg_err *err)
{
    int rc = check_cnn(s, err);
    if (rc)
        return rc;
    eg_shape in = m->in;
    int t = tensor(m, in.c, in.h, in.w, 0), c = in.c, h = in.h, w = in.w;
    int pad = s->valid ? 0 : s->kernel / 2, groups = m->groups;
    for (int i = 0; i < s->n_channels; i++) {
        char where[32];
        snprintf(where, sizeof where, "conv block %d", i + 1);
        m->groups = s->n_block_groups ? s->block_groups[i] : groups; /* this block's norm */
        if ((rc = check_width("channels", i, s->channels[i], err)) ||
            (rc = check_groups(m, s->channels[i], where, err)))
            return rc;
        h += 2 * pad - s->kernel + 1; /* the convolution's output */
        w += 2 * pad - s->kernel + 1;
        if (h < 2 || w < 2)
            return eg_err_set(err, EG_EINPUT,
                              "model: input %dx%dx%d is too small for %d %s %dx%d convolutions "
                              "and 2x2 pools (block %d's convolution would give %dx%d)",
                              in.c, in.h, in.w, s->n_channels, s->valid ? "valid" : "same",
                              s->kernel, s->kernel, i + 1, h, w);
        if ((size_t)s->kernel * s->kernel * c > MAX_DIM || (size_t)s->channels[i] * h * w > MAX_DIM)
            return eg_err_set(err, EG_EINPUT, "model: conv block %d is too large", i + 1);
        /* pool before ReLU: the same values and gradients (max and ReLU commute, the window's
         * first maximum is picked either way), ReLU on a quarter of the values */
        t = add_cnn_conv(m, t, s->kernel, pad, s->channels[i],
                         m->norm == EG_NORM_NONE || s->norm_after_pool);
        if (!s->norm_after_pool)
            t = add_norm_relu(m, t, 0);
        c = s->channels[i];
        h /= 2;
        w /= 2;
        t = add_simple(m, NN_MAXPOOL, t, tensor(m, c, h, w, 0));
        t = add_simple(m, NN_RELU, t, t);
        if (s->norm_after_pool)
            t = add_norm_relu(m, t, 0);
    }
    m->groups = groups;
    for (int i = 0; i < s->n_hidden; i++)
        if (s->hidden[i] > 0)
            t = add_dense(m, t, s->hidden[i], 1);
    add_dense(m, t, m->classes, 0);
    return EG_OK;
}

/* one basic block on tensor x: conv-norm-ReLU-conv-norm, + shortcut, ReLU */
static void mark_zero_init(eg_model *m, int on);

static int add_basic_block(eg_model *m, int x, int co, int stride, int zero)
{
    int bias = m->norm == EG_NORM_NONE;
    nn_op grad = {.kind = NN_ADD_GRAD, .in = x, .aux = x, .stride = stride};
    int gi = m->net.nop;
    add_op(m, &grad); /* output filled in below */
    int t = add_norm_relu(m, add_conv(m, x, 3, stride, co, bias), 1);
    t = add_norm_relu(m, add_conv(m, t, 3, 1, co, bias), 0);
    mark_zero_init(m, zero);
    nn_op add = {.kind = NN_ADD, .in = t, .out = t, .aux = x, .stride = stride};
    add_op(m, &add);
    if (!m->oom)
        m->net.op[gi].out = t;
    return add_simple(m, NN_RELU, t, t);
}

/* marks the norm just added (if the last op is one) for zero_init_residual */
static void mark_zero_init(eg_model *m, int on)
{
    nn_op *op = m->net.nop ? &m->net.op[m->net.nop - 1] : NULL;
    if (on && op && (op->kind == NN_BN || op->kind == NN_GN))
        op->zero_init = 1;
}

/* one torchvision block on tensor x: basic (mid = co) or bottleneck (mid = co / 4); identity
 * shortcut when stride is 1 and x has co channels, else a 1x1 conv (stride) + norm projection */
static int add_tv_block(eg_model *m, int x, int mid, int co, int stride, int bottleneck,
                        int zero)
{
    int bias = m->norm == EG_NORM_NONE, proj = stride != 1 || m->net.t[x].c != co, gi = -1, t;
    if (!proj) {
        nn_op grad = {.kind = NN_ADD_GRAD, .in = x, .aux = x, .stride = 1};
        gi = m->net.nop;
        add_op(m, &grad); /* output filled in below */
    }
    int c1 = m->net.nop;
    if (bottleneck) {
        t = add_norm_relu(m, add_conv(m, x, 1, 1, mid, bias), 1);
        t = add_norm_relu(m, add_conv(m, t, 3, stride, mid, bias), 1);
        t = add_norm_relu(m, add_conv(m, t, 1, 1, co, bias), 0);
    } else {
        t = add_norm_relu(m, add_conv(m, x, 3, stride, co, bias), 1);
        t = add_norm_relu(m, add_conv(m, t, 3, 1, co, bias), 0);
    }
    mark_zero_init(m, zero);
    if (m->oom)
        return t;
    if (!proj) {
        m->net.op[gi].out = t;
    } else {
        m->net.op[c1].acc = 1; /* the projection's backward writes x's gradient first */
        int sc = add_norm_relu(m, add_conv(m, x, 1, stride, co, bias), 0);
        nn_op grad = {.kind = NN_ADD_GRAD, .in = t, .out = t, .aux = sc, .stride = 1, .copy = 1};
        add_op(m, &grad);
        x = sc;
    }
    nn_op add = {.kind = NN_ADD, .in = t, .out = t, .aux = x, .stride = 1};
    add_op(m, &add);
    return add_simple(m, NN_RELU, t, t);
}

static int build_resnet_imagenet(eg_model *m, const eg_model_spec *s, eg_err *err)
{
    static const int depths[4] = {18, 34, 50, 101};
    static const int blocks[4][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}};
    int d = -1, rc;
    for (int i = 0; i < 4; i++)
        if (s->depth == depths[i])
            d = i;
    if (d < 0)
        return eg_err_set(err, EG_EINPUT,
                          "model: resnet with stem imagenet needs depth 18, 34, 50 or 101 "
                          "(got %d)",
                          s->depth);
    if (s->width < 1 || s->width > 512)
        return eg_err_set(err, EG_EINPUT,
                          "model: resnet (imagenet stem) width = %d must be in [1, 512]",
                          s->width);
    if (m->in.h < 32 || m->in.w < 32)
        return eg_err_set(err, EG_EINPUT,
                          "model: resnet with stem imagenet needs inputs of at least 32x32 "
                          "(it downsamples by 32), got %dx%dx%d",
                          m->in.c, m->in.h, m->in.w);
    if ((size_t)s->width * m->in.h * m->in.w > 4 * (size_t)MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: resnet on %dx%dx%d is too large", m->in.c,
                          m->in.h, m->in.w);
    if (s->zero_init_residual && m->norm == EG_NORM_NONE)
        return eg_err_set(err, EG_EINPUT, "model: zero_init_residual needs a norm (batch or "
                                          "group)");
    for (int st = 0; st < 4; st++) {
        char where[32];
        snprintf(where, sizeof where, "stage %d", st + 1);
        if ((rc = check_groups(m, s->width << st, where, err)))
            return rc;
    }
    int bott = d >= 2, exp = bott ? 4 : 1;
    int t = tensor(m, m->in.c, m->in.h, m->in.w, 0);
    t = add_norm_relu(m, add_conv(m, t, 7, 2, s->width, m->norm == EG_NORM_NONE), 1);
    const nn_tensor T = m->net.t[t];
    nn_op pool = {.kind = NN_MAXPOOL, .in = t, .k = 3, .stride = 2, .pad = 1};
    pool.out = tensor(m, T.c, (T.h - 1) / 2 + 1, (T.w - 1) / 2 + 1, 0);
    t = add_op(m, &pool);
    for (int st = 0; st < 4; st++)
        for (int b = 0; b < blocks[d][st]; b++)
            t = add_tv_block(m, t, s->width << st, (s->width << st) * exp,
                             st > 0 && b == 0 ? 2 : 1, bott, s->zero_init_residual);
    t = add_simple(m, NN_AVGPOOL, t, tensor(m, (s->width << 3) * exp, 1, 1, 0));
    add_dense(m, t, m->classes, 0);
    return EG_OK;
}

static int build_resnet(eg_model *m, const eg_model_spec *s, eg_err *err)
{
    if (s->stem == EG_STEM_IMAGENET)
        return build_resnet_imagenet(m, s, err);
    if (s->stem != EG_STEM_CIFAR)
        return eg_err_set(err, EG_EINPUT, "model: unknown resnet stem %d", s->stem);
    if (s->zero_init_residual && m->norm == EG_NORM_NONE)
        return eg_err_set(err, EG_EINPUT, "model: zero_init_residual needs a norm (batch or "
                                          "group)");
    if (s->depth < 8 || (s->depth - 2) % 6)
        return eg_err_set(err, EG_EINPUT,
                          "model: resnet depth = %d must be 6k+2 with k >= 1 (e.g. 20, 32, 44, "
                          "56, 110)",
                          s->depth);
    if (s->width < 1 || s->width > 4096)
        return eg_err_set(err, EG_EINPUT, "model: resnet width = %d must be in [1, 4096]",
                          s->width);
    int rc, k = (s->depth - 2) / 6;
    for (int st = 0; st < 3; st++) {
        char where[32];
        snprintf(where, sizeof where, "stage %d", st + 1);
        if ((rc = check_groups(m, s->width << st, where, err)))
            return rc;
    }
    if ((size_t)s->width * m->in.h * m->in.w > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: resnet on %dx%dx%d is too large", m->in.c,
                          m->in.h, m->in.w);
    int t = tensor(m, m->in.c, m->in.h, m->in.w, 0);
    t = add_norm_relu(m, add_conv(m, t, 3, 1, s->width, m->norm == EG_NORM_NONE), 1);
    for (int st = 0; st < 3; st++)
        for (int b = 0; b < k; b++)
            t = add_basic_block(m, t, s->width << st, st > 0 && b == 0 ? 2 : 1,
                                s->zero_init_residual);
    t = add_simple(m, NN_AVGPOOL, t, tensor(m, s->width << 2, 1, 1, 0));
    add_dense(m, t, m->classes, 0);
    return EG_OK;
}

static const char *norm_name(eg_norm_kind k)
{
    return k == EG_NORM_BATCH ? "batch-norm" : k == EG_NORM_GROUP ? "group-norm" : "";
}

static void describe(eg_model *m, const eg_model_spec *s)
{
    char *d = m->desc;
    size_t cap = sizeof m->desc, n = 0;
#define DESC(...)                                                                           \
    do {                                                                                    \
        if (n < cap)                                                                        \
            n += (size_t)snprintf(d + n, cap - n, __VA_ARGS__);                             \
    } while (0)
    char norm[32] = "";
    if (m->norm == EG_NORM_GROUP)
        snprintf(norm, sizeof norm, " group-norm(%d)", m->groups);
    else if (m->norm == EG_NORM_BATCH)
        snprintf(norm, sizeof norm, " %s", norm_name(m->norm));
    eg_shape in = m->in;
    if (s->kind == EG_MODEL_RESNET) {
        DESC("resnet-%d%s w%d%s %dx%dx%d -> %d", s->depth,
             s->stem == EG_STEM_IMAGENET ? " imagenet" : "", s->width, norm, in.c, in.h, in.w,
             m->classes);
        if (s->zero_init_residual)
            DESC(" zero-init-residual");
    } else if (s->kind == EG_MODEL_CNN) {
        DESC("cnn %dx%dx%d ", in.c, in.h, in.w);
        for (int i = 0; i < s->n_channels; i++)
            DESC("%sc%d", i ? "-" : "", s->channels[i]);
        DESC(" k%d%s", s->kernel, s->valid ? " valid" : "");
        for (int i = 0; i < s->n_hidden; i++)
            if (s->hidden[i] > 0)
                DESC("%s%d", i ? "-" : " h", s->hidden[i]);
        if (m->norm == EG_NORM_GROUP && s->n_block_groups) {
            DESC(" group-norm(");
            for (int i = 0; i < s->n_block_groups; i++)
                DESC("%s%d", i ? "," : "", s->block_groups[i]);
            DESC(")");
        } else {
            DESC("%s", norm);
        }
        if (m->norm != EG_NORM_NONE && s->norm_after_pool)
            DESC(" after pool");
        DESC(" -> %d", m->classes);
    } else {
        DESC("%s %d", eg_model_kinds[s->kind].name, in.c * in.h * in.w);
        for (int i = 0; i < m->net.nop; i++)
            if (m->net.op[i].kind == NN_DENSE)
                DESC("-%d", m->net.t[m->net.op[i].out].w);
    }
    if (s->precision == EG_PREC_BF16)
        DESC(" bf16");
    DESC(" (%zu params)", m->nparams);
#undef DESC
}

/* Validates the spec and fills the op list (shapes and offsets only). */
static int build(eg_model *m, const eg_model_spec *s, eg_err *err)
{
    eg_shape in = m->in;
    if (in.c < 1 || in.h < 1 || in.w < 1)
        return eg_err_set(err, EG_EINPUT, "model: input shape %dx%dx%d must be positive", in.c,
                          in.h, in.w);
    if (m->classes < 1 || m->classes > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: classes = %d must be in [1, %d]", m->classes,
                          MAX_DIM);
    if ((size_t)in.c * in.h * in.w > MAX_DIM)
        return eg_err_set(err, EG_EINPUT, "model: input %dx%dx%d has more than %d features",
                          in.c, in.h, in.w, MAX_DIM);
    if ((int)s->kind < 0 || s->kind > EG_MODEL_RESNET)
        return eg_err_set(err, EG_EINPUT, "model: unknown model kind %d", (int)s->kind);
    int conv = eg_model_kinds[s->kind].conv;
    if (conv && (s->norm < EG_NORM_NONE || s->norm > EG_NORM_GROUP))
        return eg_err_set(err, EG_EINPUT, "model: unknown norm kind %d", (int)s->norm);
    m->norm = conv ? s->norm : EG_NORM_NONE;
    m->groups = s->groups;
    if (m->norm == EG_NORM_GROUP && s->groups < 1)
        return eg_err_set(err, EG_EINPUT, "model: group norm needs groups >= 1 (got %d)",
                          s->groups);
    m->net.prec = s->precision == EG_PREC_BF16 ? EG_PREC_BF16 : EG_PREC_F32;
    switch (s->kind) {
    case EG_MODEL_LOGREG:
    case EG_MODEL_MLP:
        return build_mlp(m, s, s->kind == EG_MODEL_LOGREG, err);
    case EG_MODEL_CNN:
        return build_cnn(m, s, err);
    case EG_MODEL_RESNET:
        return build_resnet(m, s, err);
    }
    return EG_EINPUT;
}

/* Validates s against the input shape and builds the op list. *out is NULL on error:
 * EG_EINPUT (bad spec: unknown name, kernel even or < 1, widths < 1, too many layers, input too
 * small for the pools, resnet depth not 6k+2, groups not dividing the channels, sizes beyond
 * 2^24 per layer) or EG_ERUN (out of memory, no oneDNN engine). The model is read-only
 * afterwards and may be shared between threads. */
int eg_model_init(eg_model **out, const eg_model_spec *s, eg_shape in, int classes, eg_err *err)
{
    *out = NULL;
    eg_model *m = eg_calloc(1, sizeof *m, err);
    if (!m)
        return EG_ERUN;
    m->in = in;
    m->classes = classes;
    int rc = build(m, s, err);
    if (!rc && m->oom)
        rc = eg_err_set(err, EG_ERUN, "out of memory (model)");
    if (!rc && m->nparams > (size_t)INT_MAX)
        rc = eg_err_set(err, EG_EINPUT, "model: %zu parameters is more than %d", m->nparams,
                        INT_MAX);
    if (!rc)
        rc = nn_net_finish(&m->net, err);
    if (rc) {
        eg_model_free(m);
        return rc;
    }
    describe(m, s);
    *out = m;
    return EG_OK;
}

void eg_model_free(eg_model *m)
{
    if (!m)
        return;
    nn_net_free(&m->net);
    free(m);
}

size_t eg_model_nparams(const eg_model *m) { return m->nparams; }

const char *eg_model_describe(const eg_model *m) { return m->desc; }

double eg_model_flops_per_sample(const eg_model *m)
{
    double f = 0.0;
    for (int i = 0; i < m->net.nop; i++) {
        const nn_op *op = &m->net.op[i];
        if (op->kind == NN_CONV || op->kind == NN_DENSE)
            f += (op->in == 0 ? 4.0 : 6.0) * op->macs;
    }
    return f;
}

/* W ~ U(-b, b) (see the top of the file); draws every weight from rng in layout order, so it
 * is deterministic in rng. */
void eg_model_init_params(const eg_model *m, float *params, eg_rng *rng)
{
    for (int i = 0; i < m->net.nop; i++) {
        const nn_op *op = &m->net.op[i];
        float *W = params + op->w_off, *b = params + op->b_off;
        if (op->kind == NN_BN || op->kind == NN_GN) {
            for (size_t j = 0; j < op->nw; j++)
                W[j] = op->zero_init ? 0.0f : 1.0f;
            memset(b, 0, op->nb * sizeof(float));
            continue;
        }
        if (op->kind != NN_CONV && op->kind != NN_DENSE)
            continue;
        double fan_in = (double)op->nw / (double)(op->kind == NN_CONV
                                                      ? (size_t)m->net.t[op->out].c
                                                      : (size_t)m->net.t[op->out].w);
        double bound = (op->gain_relu ? sqrt(2.0) : 1.0) * sqrt(3.0 / fan_in);
        for (size_t j = 0; j < op->nw; j++)
            W[j] = (float)((2.0 * eg_rng_uniform(rng) - 1.0) * bound);
        memset(b, 0, op->nb * sizeof(float));
    }
}

size_t eg_model_nstats(const eg_model *m) { return m->nstats; }

void eg_model_init_stats(const eg_model *m, float *stats)
{
    for (int i = 0; i < m->net.nop; i++) {
        const nn_op *op = &m->net.op[i];
        if (op->kind != NN_BN)
            continue;
        size_t c = op->nw;
        for (size_t j = 0; j < c; j++) {
            stats[op->s_off + j] = 0.0f;
            stats[op->s_off + c + j] = 1.0f;
        }
    }
}

/* Biases and norm scales/shifts, adjacent ranges merged. */
int eg_model_nodecay(const eg_model *m, size_t *off, size_t *len, int max)
{
    int n = 0;
    size_t cur_off = 0, cur_len = 0;
    for (int i = 0; i < m->net.nop; i++) {
        const nn_op *op = &m->net.op[i];
        size_t o, l;
        if (op->kind == NN_BN || op->kind == NN_GN) {
            o = op->w_off;
            l = op->nw + op->nb;
        } else if ((op->kind == NN_CONV || op->kind == NN_DENSE) && op->nb) {
            o = op->b_off;
            l = op->nb;
        } else {
            continue;
        }
        if (cur_len && cur_off + cur_len == o) {
            cur_len += l;
            continue;
        }
        if (cur_len) {
            if (n < max) {
                off[n] = cur_off;
                len[n] = cur_len;
            }
            n++;
        }
        cur_off = o;
        cur_len = l;
    }
    if (cur_len) {
        if (n < max) {
            off[n] = cur_off;
            len[n] = cur_len;
        }
        n++;
    }
    return n;
}

/* ---- works --------------------------------------------------------------------------- */

void eg_work_free(eg_work *w)
{
    if (!w)
        return;
    nn_work_release(w);
    free(w);
}

/* Stream and scratchpad of one thread for batches of up to max_batch (EG_EINPUT outside
 * [1, 2^20]; EG_ERUN when out of memory or when oneDNN cannot build this model: every
 * primitive is created once here, for one sample in both modes, so that later calls can only
 * fail for lack of memory). *out is NULL on error. Plans for each batch size are built on the
 * first call of that size. */
static int work_init(eg_work **out, const eg_model *m, int max_batch, int split, eg_err *err);

int eg_work_init(eg_work **out, const eg_model *m, int max_batch, eg_err *err)
{
    return work_init(out, m, max_batch, 0, err);
}

int eg_work_init_micro(eg_work **out, const eg_model *m, int micro, eg_err *err)
{
    return work_init(out, m, micro, 1, err);
}

static int work_init(eg_work **out, const eg_model *m, int max_batch, int split, eg_err *err)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 20))
        return eg_err_set(err, EG_EINPUT, "model: batch size %d must be in [1, %d]", max_batch,
                          1 << 20);
    eg_work *w = eg_calloc(1, sizeof *w, err);
    if (!w)
        return EG_ERUN;
    w->max_batch = max_batch;
    w->split = split;
    int rc = nn_work_init(w, &m->net, err);
    if (!rc) {
        nn_enter(w);
        if (!nn_plan_get(w, 1, 1, err) || !nn_plan_get(w, 1, 0, err))
            rc = EG_ERUN;
        nn_leave(w);
    }
    if (rc) {
        eg_work_free(w);
        return rc;
    }
    *out = w;
    return EG_OK;
}

/* ---- loss ---------------------------------------------------------------------------- */

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

/* summed loss of B rows; d = the gradient of (that sum / N) w.r.t. the logits, invB = 1/N */
static double xent_grad_sum(const float *logits, const int32_t *y, int B, int C, float invB,
                            float *d)
{
    double lsum = 0.0;
    for (int n = 0; n < B; n++) {
        float *e = d + (size_t)n * C;
        double s = 0.0;
        lsum += xent_row(logits + (size_t)n * C, C, y[n], e, &s, NULL);
        float sc = (float)(1.0 / s) * invB;
        for (int j = 0; j < C; j++)
            e[j] *= sc;
        e[y[n]] -= invB;
    }
    return lsum;
}

/* mean loss of the batch; d = its gradient w.r.t. the logits */
static double xent_grad(const float *logits, const int32_t *y, int B, int C, float *d)
{
    return xent_grad_sum(logits, y, B, C, 1.0f / (float)B, d) / B;
}

static int labels_ok(const int32_t *y, int B, int C)
{
    for (int n = 0; n < B; n++)
        if (y[n] < 0 || y[n] >= C)
            return 0;
    return 1;
}

/* Overwrites grad (nparams floats) and returns the mean loss. Returns NAN with grad zeroed
 * when batch is outside [1, max_batch], a label outside [0, classes), stats NULL for a model
 * with batch norm, or oneDNN fails (out of memory). */
float eg_model_loss_grad(const eg_model *m, eg_work *w, const float *params, float *stats,
                         const float *x, const int32_t *y, int batch, float *grad)
{
    if (batch < 1 || batch > w->max_batch || !labels_ok(y, batch, m->classes) ||
        (m->nstats && !stats)) {
        memset(grad, 0, m->nparams * sizeof(float));
        return NAN;
    }
    eg_err err = {0};
    nn_enter(w);
    nn_plan *p = nn_plan_get(w, batch, 1, &err);
    const float *logits = p ? nn_forward(w, p, params, stats, x, grad, &err) : NULL;
    double loss = NAN;
    if (logits) {
        double t0 = w->prof_on ? eg_now() : 0.0;
        loss = xent_grad(logits, y, batch, m->classes, nn_dlogits(p));
        if (w->prof_on)
            w->prof_sec[EG_PROF_LOSS] += eg_now() - t0;
        if (nn_backward(w, p, &err))
            loss = NAN;
    }
    nn_leave(w);
    if (isnan(loss))
        memset(grad, 0, m->nparams * sizeof(float));
    return (float)loss;
}

/* Micro-batches: M = ceil(batch / micro) plans, one per work, run by a team of nthreads
 * threads, segment by segment (nn.h); weight gradients added in micro-batch order, 64k
 * floats at a time across the team (each element's order fixed), so the result is the same
 * for any nthreads. */
#define GSUM_CHUNK 65536

float eg_model_loss_grad_micro(const eg_model *m, eg_work *const *works, int nthreads,
                               const float *params, float *stats, const float *x,
                               const int32_t *y, int batch, int micro, float *grad, float *gbuf)
{
    const int M = micro > 0 ? (batch + micro - 1) / micro : 0, C = m->classes;
    const size_t dim = (size_t)m->in.c * m->in.h * m->in.w, np = m->nparams;
    if (M < 1 || M > EG_MICRO_MAX || !labels_ok(y, batch, C) || (m->nstats && !stats)) {
        memset(grad, 0, np * sizeof(float));
        return NAN;
    }
    nn_plan *plans[EG_MICRO_MAX];
    double lsum[EG_MICRO_MAX] = {0};
    int failed = 0;
    const float invB = 1.0f / (float)batch;
    const size_t nchunk = (np + GSUM_CHUNK - 1) / GSUM_CHUNK;
#pragma omp parallel num_threads(nthreads) shared(failed)
    {
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < M; i++) {
            int Bi = i < M - 1 ? micro : batch - (M - 1) * micro;
            eg_err e = {0};
            nn_enter(works[i]);
            plans[i] = Bi <= works[i]->max_batch ? nn_plan_get(works[i], Bi, 1, &e) : NULL;
            nn_leave(works[i]);
            if (!plans[i]) {
#pragma omp atomic write
                failed = 1;
            }
        }
        const int nf = failed ? 0 : nn_nseg(plans[0], 0);
        for (int sgm = 0; sgm < nf; sgm++) {
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < M; i++) {
                eg_err e = {0};
                float *g = i ? gbuf + (size_t)(i - 1) * np : grad;
                nn_enter(works[i]);
                int rc = nn_forward_seg(works[i], plans[i], sgm, params, stats,
                                        x + (size_t)i * micro * dim, g, &e);
                nn_leave(works[i]);
                if (rc) {
#pragma omp atomic write
                    failed = 1;
                }
            }
#pragma omp single
            if (sgm < nf - 1 && !failed)
                nn_split_reduce(plans, M, 0, sgm, stats);
        }
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < M; i++) {
            if (failed)
                continue;
            int Bi = i < M - 1 ? micro : batch - (M - 1) * micro;
            const float *logits = nn_logits(plans[i]);
            lsum[i] = xent_grad_sum(logits, y + (size_t)i * micro, Bi, C, invB,
                                    nn_dlogits(plans[i]));
        }
        const int nb = failed ? 0 : nn_nseg(plans[0], 1);
        for (int sgm = 0; sgm < nb; sgm++) {
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < M; i++) {
                eg_err e = {0};
                nn_enter(works[i]);
                int rc = nn_backward_seg(works[i], plans[i], sgm, &e);
                nn_leave(works[i]);
                if (rc) {
#pragma omp atomic write
                    failed = 1;
                }
            }
#pragma omp single
            if (sgm < nb - 1 && !failed)
                nn_split_reduce(plans, M, 1, sgm, NULL);
        }
#pragma omp for schedule(static)
        for (size_t k = 0; k < nchunk; k++) {
            size_t lo = k * GSUM_CHUNK, hi = lo + GSUM_CHUNK < np ? lo + GSUM_CHUNK : np;
            for (int i = 1; i < M && !failed; i++) {
                const float *gi = gbuf + (size_t)(i - 1) * np;
                for (size_t t = lo; t < hi; t++)
                    grad[t] += gi[t];
            }
        }
    }
    double loss = 0;
    for (int i = 0; i < M; i++)
        loss += lsum[i];
    loss /= batch;
    if (failed || isnan(loss)) {
        memset(grad, 0, np * sizeof(float));
        return NAN;
    }
    return (float)loss;
}

/* Forward only, evaluation mode; adds to *loss_sum and *correct (ties: the lowest class
 * wins). Runs in slices of at most min(max_batch, EVAL_SLICE) samples. A label out of range,
 * stats NULL for a batch-norm model, or a oneDNN failure adds NAN to the loss. */
void eg_model_eval(const eg_model *m, eg_work *w, const float *params, const float *stats,
                   const float *x, const int32_t *y, int batch, double *loss_sum, long *correct)
{
    const int C = m->classes, slice = w->max_batch < EVAL_SLICE ? w->max_batch : EVAL_SLICE;
    const size_t dim = (size_t)m->in.c * m->in.h * m->in.w;
    if (m->nstats && !stats) {
        *loss_sum += NAN;
        return;
    }
    nn_enter(w);
    for (int s0 = 0; s0 < batch; s0 += slice) {
        int B = batch - s0 < slice ? batch - s0 : slice;
        eg_err err = {0};
        nn_plan *p = nn_plan_get(w, B, 0, &err);
        const float *logits =
            p ? nn_forward(w, p, params, (float *)stats, x + (size_t)s0 * dim, NULL, &err) : NULL;
        if (!logits) {
            *loss_sum += NAN;
            continue;
        }
        double t0 = w->prof_on ? eg_now() : 0.0, ls = 0.0;
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
        if (w->prof_on)
            w->prof_sec[EG_PROF_LOSS] += eg_now() - t0;
    }
    nn_leave(w);
}

/* ---- optional phase timing ------------------------------------------------------------- */

void eg_work_profile(eg_work *w, int on)
{
    if (!w)
        return;
    w->prof_on = on != 0;
    memset(w->prof_sec, 0, sizeof w->prof_sec);
    memset(w->prof_flop, 0, sizeof w->prof_flop);
    nn_work_prof_reset(w);
}

void eg_work_profile_steps(const eg_work *w, FILE *f)
{
    if (w)
        nn_work_prof_print(w, f);
}

const char *eg_work_profile_get(const eg_work *w, int phase, double *sec, double *flops)
{
    static const char *names[EG_PROF_N] = {"conv", "reorder", "pool", "dense", "norm/relu/add",
                                           "softmax-xent"};
    if (phase < 0 || phase >= EG_PROF_N)
        return NULL;
    if (sec)
        *sec = w ? w->prof_sec[phase] : 0.0;
    if (flops)
        *flops = w ? w->prof_flop[phase] : 0.0;
    return names[phase];
}
