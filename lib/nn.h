/* nn.h - the layer engine behind model.c (internal to the library).
 *
 * A network (nn_net) is a list of ops over numbered tensors, built once by model.c and
 * read-only afterwards: tensor 0 is the input, the last op's output the logits; in-place ops
 * (ReLU, the residual add) read and write the same tensor. Every op's forward and backward
 * runs on oneDNN primitives. They live in a plan (one per batch size and mode, created on
 * the first call of that size and kept in the eg_work), with the buffers they work on, so a
 * call allocates nothing after the first of its size. Parameters, gradients and running
 * statistics stay the caller's flat float vectors: each plan binds views into them by offset
 * on every call.
 *
 * Activations are NHWC (a tensor may ask for NCHW), f32 or bf16 (train.precision); the
 * logits are f32 in both. Weights are reordered from the flat f32 vector (dense [out][in], conv
 * [oc][ic][k][k]) into the primitive's format on every call, weight gradients back.
 *
 * Threads: every primitive is created and executed with the calling thread's OpenMP
 * thread count set to 1 (nn_enter / nn_leave), whatever the caller, so results are bitwise the
 * same on any thread; a work (its stream, scratchpad, plans) belongs to one thread at a time.
 * Primitives execute inside a parallel region of one thread of their own: the bare
 * `omp barrier` of some oneDNN kernels (ncsp_bnorm, used by group norm) then binds to that
 * team instead of the caller's, so callers may run any mix of calls from an OpenMP region.
 */
#ifndef EG_NN_H
#define EG_NN_H

#include "common.h"
#include "model.h"

#include <oneapi/dnnl/dnnl.h>

typedef enum {
    NN_CONV,     /* k x k convolution, stride, padding; bias unless a norm follows */
    NN_DENSE,    /* inner product (flattens a C,H,W input in C,H,W order); bias */
    NN_BN,       /* batch norm, per-channel scale (at w_off) and shift (at b_off), + ReLU if relu */
    NN_GN,       /* group norm over (C/G, H, W), per-channel scale and shift */
    NN_RELU,     /* in place (in == out) */
    NN_MAXPOOL,  /* k x k, stride, padding pad (both sides), floor; k = 0: 2x2, stride 2, no pad */
    NN_AVGPOOL,  /* global average pooling to C x 1 x 1 */
    NN_ADD,      /* in place: out[:, :C] += aux[:, :, ::s, ::s] (C = aux's channels) */
    NN_ADD_GRAD, /* backward only, placed before the block: d aux[:, :, ::s, ::s] += d out[:, :C];
                    with copy (a projection shortcut: placed after the projection, before the
                    add): d aux = d out */
    NN_REORDER,  /* layout change: out (NCHW) = in; lets a dense layer use [out][c][h][w] as is */
    NN_NKINDS
} nn_kind;

typedef struct nn_tensor {
    int c, h, w; /* per sample */
    int flat;    /* 2-D (batch x c*h*w): the input of an mlp, dense outputs */
    int nchw;    /* NCHW whatever the net's layout */
} nn_tensor;

typedef struct nn_op {
    nn_kind kind;
    int in, out, aux;    /* tensor ids (aux: the shortcut's source for NN_ADD / NN_ADD_GRAD) */
    int k, stride, pad;  /* conv: kernel, stride, padding (both sides); add: stride */
    int groups;          /* group norm */
    int bias;            /* conv: has a bias */
    int relu;            /* batch norm: a ReLU fused after it (in place on out) */
    int gain_relu;       /* conv/dense: initialised for a ReLU after it (gain sqrt 2) */
    size_t w_off, nw;    /* weights (norm: scale) in the parameter vector */
    size_t b_off, nb;    /* bias (norm: shift) */
    size_t s_off;        /* batch norm: running mean at s_off, variance at s_off + C */
    double macs;         /* conv/dense: multiply-adds per sample, forward */
    int acc;             /* conv: backward data adds into the input's gradient instead of
                            overwriting it (the input has another reader whose backward ran
                            first: a projection shortcut's block input) */
    int copy;            /* add gradient: d aux = d out (aux, of out's shape, has no other
                            reader: a projection shortcut's output) */
    int zero_init;       /* norm: scale initialised to 0 (zero_init_residual) */
} nn_op;

typedef struct nn_net {
    nn_tensor *t;
    int nt, capt;
    nn_op *op;
    int nop, capop;
    eg_precision prec;
    dnnl_engine_t eng;  /* CPU engine, shared read-only by every work */
} nn_net;

/* Appends a tensor (returns its id) or an op (returns its index); -1 when out of memory. */
int nn_net_tensor(nn_net *n, int c, int h, int w, int flat, int nchw);
int nn_net_op(nn_net *n, const nn_op *op);
/* Creates the engine. EG_ERUN with a message when oneDNN has no CPU engine. */
int nn_net_finish(nn_net *n, eg_err *err);
/* Frees the lists and the engine; safe on a zeroed or half-built net. */
void nn_net_free(nn_net *n);

typedef struct nn_plan nn_plan;

#define NN_MAX_PLANS 6

struct eg_work {
    const nn_net *net;
    int max_batch;
    dnnl_stream_t stream;
    dnnl_primitive_attr_t attr; /* user scratchpad */
    nn_plan *plan[NN_MAX_PLANS];
    unsigned long tick;
    void *scratch;
    size_t scratch_sz;
    int prof_on;
    double prof_sec[EG_PROF_N], prof_flop[EG_PROF_N];
    int saved_threads;
    int split; /* training plans for micro-batches: batch norm over the whole node batch */
};

/* Stream and attributes of a work (the eg_work itself is allocated by the caller). */
int nn_work_init(eg_work *w, const nn_net *n, eg_err *err);
/* Releases plans, stream, attributes and scratch; the struct itself stays. */
void nn_work_release(eg_work *w);

/* The plan for `batch` samples in training (train = 1) or evaluation mode: cached, or
 * created now (EG_ERUN with a oneDNN message on failure; NULL then). Call between nn_enter
 * and nn_leave. */
nn_plan *nn_plan_get(eg_work *w, int batch, int train, eg_err *err);
/* Forward pass: binds params, stats, x (and grad, in training), runs every op; training
 * updates the batch-norm running statistics in stats. Returns the f32 logits (batch x
 * classes, inside the plan) or NULL on a oneDNN execution error. */
const float *nn_forward(eg_work *w, nn_plan *p, const float *params, float *stats,
                        const float *x, float *grad, eg_err *err);
/* The logits of the last forward of plan p (batch x classes, f32). */
const float *nn_logits(const nn_plan *p);
/* Where the loss gradient (batch x classes, f32) goes before nn_backward. */
float *nn_dlogits(nn_plan *p);
/* Backward pass of the last nn_forward of this training plan: overwrites grad. */
int nn_backward(eg_work *w, nn_plan *p, eg_err *err);

/* Micro-batches (eg_work.split; model.c drives them). A node's batch runs as M micro-batch
 * plans, one per work. The forward and backward are cut into segments at every batch norm:
 * run segment s of every plan (any thread, any order), then nn_split_reduce(plans, M, bw, s)
 * once, which adds the micro-batches' batch-norm sums in plan order and gives every plan the
 * whole batch's statistics (forward: mean, variance, running-statistics update in stats;
 * backward: the sums of dy and dy x_hat, and the norm's scale and shift gradients written to
 * plan 0's gradient, 0 to the others). Results do not depend on which thread runs what. */
int nn_nseg(const nn_plan *p, int bw);
/* Segment seg of the forward; seg 0 binds params, stats, x and grad as nn_forward does. */
int nn_forward_seg(eg_work *w, nn_plan *p, int seg, const float *params, float *stats,
                   const float *x, float *grad, eg_err *err);
/* Segment seg of the backward (segment 0 first: it starts from nn_dlogits). */
int nn_backward_seg(eg_work *w, nn_plan *p, int seg, eg_err *err);
void nn_split_reduce(nn_plan *const *ps, int M, int bw, int seg, float *stats);

/* The per-step profile (with the work's profile on): reset, and printed as a table (step,
 * phase, the kernel that ran it, runs, mean time, GFLOP/s), per plan, steps in execution
 * order. */
void nn_work_prof_reset(eg_work *w);
void nn_work_prof_print(const eg_work *w, FILE *f);

/* Sets the calling thread's OpenMP thread count to 1 (remembered in w) / restores it. */
void nn_enter(eg_work *w);
void nn_leave(eg_work *w);

#endif
