/* model.h - models on one flat float parameter vector per node.
 *
 * A model (eg_model) is the architecture only: shapes and offsets of each layer's
 * weights inside the flat vector. Parameters, gradients, momentum ... are plain
 * float arrays of eg_model_nparams() entries with the same layout, so gossip,
 * averaging and checkpoints treat them as one vector.
 * Scratch memory for one forward/backward pass lives in an eg_work (one per thread).
 */
#ifndef EG_MODEL_H
#define EG_MODEL_H

#include "common.h"
#include "kinds.h"

#define EG_MAX_LAYERS 8


typedef struct eg_model_spec {
    eg_model_kind kind;          /* kinds.h: logreg | mlp | cnn | resnet */
    int hidden[EG_MAX_LAYERS];   /* mlp: widths of the hidden layers; cnn: widths of the dense
                                    + ReLU layers after the convolutions (a single 0 = none) */
    int n_hidden;
    int channels[EG_MAX_LAYERS]; /* cnn: output channels of each conv + ReLU + 2x2 max-pool block */
    int n_channels;
    int kernel;                  /* cnn: square kernel size (odd with 'same' padding) */
    int valid;                   /* cnn: 1 = 'valid' convolutions (no padding: each side shrinks
                                    by kernel - 1), 0 = 'same' (padding kernel / 2) */
    int norm_after_pool;         /* cnn: 1 = conv (with bias) - pool - ReLU - norm, as LeNet-5
                                    with group norm; 0 = conv - norm - pool - ReLU */
    int block_groups[EG_MAX_LAYERS]; /* cnn group norm: groups of each conv block's norm */
    int n_block_groups;          /* entries of block_groups; 0: every block uses groups */
    int depth;                   /* resnet: 6k+2 (20, 32, 44, 56, 110) */
    int width;                   /* resnet: channels of stage 1 (stages 2, 3: 2x, 4x) */
    eg_norm_kind norm;           /* cnn (default none) and resnet (default batch) */
    int groups;                  /* group norm: groups per layer (default 2) */
    eg_precision precision;      /* train.precision: layer compute in f32 or bf16 (f32
                                    accumulation; parameters and gradients stay f32) */
    int stem;                    /* resnet: EG_STEM_CIFAR (6k+2 family) or EG_STEM_IMAGENET
                                    (torchvision ResNet-18/34/50/101: depth 18, 34, 50, 101,
                                    width = stem channels, default 64) */
    int zero_init_residual;      /* resnet: the last norm scale of each block starts at 0 */
} eg_model_spec;

enum { EG_STEM_CIFAR = 0, EG_STEM_IMAGENET = 1 };

typedef struct eg_shape {
    int c, h, w; /* channels, height, width; flat features: c = 1, h = 1, w = dim */
} eg_shape;

typedef struct eg_model eg_model;
typedef struct eg_work eg_work;

/* Builds the architecture for inputs of shape `in` and `classes` outputs.
 * EG_EINPUT when the spec does not fit (e.g. cnn on an input too small for its pools). */
int eg_model_init(eg_model **out, const eg_model_spec *s, eg_shape in, int classes, eg_err *err);
void eg_model_free(eg_model *m); /* safe on NULL */
size_t eg_model_nparams(const eg_model *m);
/* one line, e.g. "mlp 784-256-10 (203530 params)" */
const char *eg_model_describe(const eg_model *m);
/* floating-point operations of one forward+backward pass per sample (for benchmarks) */
double eg_model_flops_per_sample(const eg_model *m);

/* Seeded Kaiming-uniform initialisation of weights, zero biases; normalisation scales 1 (0 for
 * the last norm of each residual block with zero_init_residual), shifts 0. */
void eg_model_init_params(const eg_model *m, float *params, eg_rng *rng);

/* Running statistics (batch norm): buffers, not parameters. Floats per node; 0 when the
 * model has no batch norm. Layout: for each batch-norm layer in order, mean[C] then var[C]. */
size_t eg_model_nstats(const eg_model *m);
/* Fresh running statistics: means 0, variances 1. No-op when nstats is 0. */
void eg_model_init_stats(const eg_model *m, float *stats);
/* Ranges of the parameter vector that `algorithm.weight_decay_norm: false` exempts from
 * weight decay: normalisation scales and shifts and every bias. Writes up to max (offset,
 * length) pairs in increasing offset order and returns how many there are in all. */
int eg_model_nodecay(const eg_model *m, size_t *off, size_t *len, int max);

/* Scratch for batches of up to max_batch samples: a oneDNN stream, scratchpad and the
 * primitives and buffers of each batch size used (built on its first call). Checks that oneDNN
 * can build every layer (EG_ERUN with its message otherwise). One thread at a time per work. */
int eg_work_init(eg_work **out, const eg_model *m, int max_batch, eg_err *err);
void eg_work_free(eg_work *w); /* safe on NULL; free a model's works before the model */

/* Forward + backward on a batch in training mode. x: batch x (c*h*w) row-major, y: labels
 * in [0, classes). Writes (overwrites, not accumulates) grad = d(mean softmax
 * cross-entropy)/d params and returns the mean loss. Batch norm normalises with the batch's
 * own statistics and updates `stats` in place (momentum 0.1, unbiased batch variance, as
 * PyTorch); stats may be NULL only when eg_model_nstats is 0. Runs on the calling thread
 * only (every oneDNN primitive single-threaded), so results are bitwise the same whatever
 * thread calls it; deterministic for the same inputs. */
float eg_model_loss_grad(const eg_model *m, eg_work *w, const float *params, float *stats,
                         const float *x, const int32_t *y, int batch, float *grad);

/* ---- micro-batches (train.micro_batch) ----
 * A node's batch split into micro-batches of `micro` samples (the last takes the rest), each
 * run on a work of its own by a team of nthreads threads (1: the caller alone, e.g. inside a
 * parallel loop over nodes). Batch norm uses the statistics of the whole batch (reduced from
 * per-micro-batch sums in micro-batch order), so the batch means what it means in
 * eg_model_loss_grad; weight gradients are added in micro-batch order. Bitwise the same for
 * any nthreads (but not bitwise eg_model_loss_grad: other summation orders).
 * works: ceil(batch / micro) works from eg_work_init_micro (at most EG_MICRO_MAX);
 * gbuf: (ceil(batch / micro) - 1) * nparams floats of scratch. Returns the mean loss and
 * overwrites grad, as eg_model_loss_grad (NAN with grad zeroed on the same failures). */
#define EG_MICRO_MAX 4096
int eg_work_init_micro(eg_work **out, const eg_model *m, int micro, eg_err *err);
float eg_model_loss_grad_micro(const eg_model *m, eg_work *const *works, int nthreads,
                               const float *params, float *stats, const float *x,
                               const int32_t *y, int batch, int micro, float *grad, float *gbuf);

/* Forward only, evaluation mode (batch norm uses `stats`; NULL only when nstats is 0):
 * adds the summed loss to *loss_sum and the number of correct argmax predictions to
 * *correct. Single-threaded like eg_model_loss_grad. */
void eg_model_eval(const eg_model *m, eg_work *w, const float *params, const float *stats,
                   const float *x, const int32_t *y, int batch, double *loss_sum, long *correct);

/* ---- optional phase timing (for benchmarks; off by default) ----
 * When enabled on a work, eg_model_loss_grad and eg_model_eval add the wall seconds of each
 * phase, and the convolution / dense flops it performed, to counters in the work. Costs two
 * clock reads per oneDNN primitive while on, one branch while off. (The enum names are
 * historical; eg_work_profile_get returns the current names.) */
enum {
    EG_PROF_CONV_GEMM,  /* "conv": convolution primitives, forward and backward */
    EG_PROF_IM2COL,     /* "reorder": weight, input and layout reorders */
    EG_PROF_POOL,       /* "pool": max / average pooling, forward and backward */
    EG_PROF_DENSE_GEMM, /* "dense": inner-product primitives, forward and backward */
    EG_PROF_ELEMWISE,   /* "norm/relu/add": batch / group norm, ReLU, residual adds */
    EG_PROF_LOSS,       /* "softmax-xent": the loss loop */
    EG_PROF_N
};
/* Turns timing on (on != 0) or off, and resets the counters. */
void eg_work_profile(eg_work *w, int on);
/* Counters of one phase (0 <= phase < EG_PROF_N) since the last reset; returns its name
 * (e.g. "conv gemm"). sec and flops may be NULL. */
const char *eg_work_profile_get(const eg_work *w, int phase, double *sec, double *flops);
/* Prints the same profile per step of each plan of w (the kernel that ran it, its runs, mean
 * time and GFLOP/s, steps in execution order): where a model's time goes, layer by layer. */
void eg_work_profile_steps(const eg_work *w, FILE *f);

/* 1 (the default): the layer engine runs expgraph's own kernels (2x2 max pooling with the
 * ReLU after it, oneDNN's results bit for bit; a first convolution of one f32 channel into
 * 16k channels fused with that pooling, oneDNN's forward, its weight gradient summed in
 * another order; f32 batch norm in training with the ReLU, or the residual add (identity or
 * stride-2 shortcut) and ReLU, after it, and the next block's shortcut gradient, oneDNN's
 * results bit for bit), in
 * AVX-512 where the CPU has it; 2: the same kernels in portable C only, the same bits; 0:
 * oneDNN everywhere. Read when a work builds a plan, or runs one (the kernel variant); the
 * checks set it to compare them.
 * eg_model_own_runs counts the own kernels' runs (all threads), for the checks to see them
 * run. */
extern int eg_model_own_kernels;
extern unsigned long eg_model_own_runs;

/* 1 (the default): the forward of an f32 convolution from 16 channels (or one) into 16 runs
 * in oneDNN's blocked layout nChw16c, the same bytes as NHWC there, where oneDNN picks its
 * jit kernel for it (AVX-512): NHWC's results bit for bit, faster; 0: NHWC. Read when a
 * work builds a plan; the checks set it to compare. eg_model_blocked_convs counts the
 * convolutions planned so. */
extern int eg_model_conv_blocked;
extern unsigned long eg_model_blocked_convs;

/* 1 (the default): the forward of an f32 3x3 convolution, stride 1, from C channels into C
 * in the ResNets' shapes where it was measured faster (16 channels at 32 wide, 32 at 14 and
 * 16 wide), and its input gradient, run expgraph's AVX-512 kernel, where a
 * test input when the plan is built shows it gives oneDNN's values bit for bit; 0: oneDNN's. Read when a work builds a plan; the
 * checks set it to compare. eg_model_own_convs counts the forwards planned so,
 * eg_model_own_conv_grads the input gradients. */
extern int eg_model_conv_own;
extern unsigned long eg_model_own_convs, eg_model_own_conv_grads;

/* 1 (the default): the forward of an f32 dense layer at a training batch at most half its
 * width runs as y^T = W x^T (oneDNN's gemm, the operands swapped), faster there, where a test
 * input when the plan is built shows it gives oneDNN's inner product's values bit for bit;
 * 0: the inner product. Read when a work builds a plan; the checks set it to compare.
 * eg_model_swapped_dense counts the layers planned so. */
extern int eg_model_dense_swapped;
extern unsigned long eg_model_swapped_dense;

/* 1 (the default): a training plan places the activations' gradients whose spans in the
 * backward do not overlap on shared buffers (still in the cache when the next one is written;
 * about half a training plan's memory), the same bits; 2: the same, the shared buffers filled
 * with NaNs when planned (the checks: nothing may read a gradient before the backward writes
 * it); 0: a buffer for each. Read when a work builds a plan; the checks set it to compare. eg_model_shared_grads counts the gradients
 * planned so. */
extern int eg_model_share_grads;
extern unsigned long eg_model_shared_grads;

#endif
