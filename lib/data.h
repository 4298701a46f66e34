/* data.h - datasets (in memory, normalised floats) and their partition over nodes. */
#ifndef EG_DATA_H
#define EG_DATA_H

#include "common.h"
#include "kinds.h"
#include "model.h" /* eg_shape */
#include "topology.h" /* EG_PATH_MAX */

enum { EG_AUG_CROP = 1, EG_AUG_FLIP = 2 };

typedef struct eg_data_spec {
    eg_data_kind kind;       /* the dataset (kinds.h: eg_data_kinds) */
    char path[EG_PATH_MAX];  /* idx/image_folder/csv/cifar*: a directory or file; mnist etc.:
                                optional dir */
    int image_size;          /* image_folder: resize the shorter side to this and centre-crop
                                to image_size x image_size (0 = keep the files' size) */
    eg_data_cache cache;     /* image_folder: memory (decode once) | stream (decode per batch) */
    eg_partition_kind partition;
    double alpha;            /* dirichlet concentration (> 0) */
    int batch_size;          /* per node */
    int augment;             /* EG_AUG_* bits */
    double heterogeneity;    /* synthetic: spread of the nodes' own optima (>= 0) */
    /* synthetic problem shape (extension keys data.dim / data.classes / data.samples) */
    int dim;                 /* default 32 */
    int classes;             /* default 4 */
    int samples;             /* training samples per node, default 512 */
    int test_samples;        /* default 2000 */
} eg_data_spec;

typedef struct eg_dataset {
    eg_shape shape;          /* per-sample shape; dim = c*h*w */
    int dim, classes;
    int n_train, n_test;
    float *x_train;          /* n_train x dim, normalised with the training set's per-channel mean/std */
    int32_t *y_train;
    float *x_test;           /* n_test x dim, same normalisation */
    int32_t *y_test;
    float *black;            /* images: shape.c values, what a raw 0 (black) pixel of each channel
                                becomes after the normalisation: the crop augmentation's padding.
                                NULL (flat data, or a dataset built by hand): pad with 0 */
    int node_blocks;         /* synthetic with heterogeneity: sample s belongs to node
                                s / (n_train / nodes); the partition must keep that */
    char desc[256];          /* e.g. "mnist (60000 train, 10000 test, 1x28x28, 10 classes) from DIR" */
} eg_dataset;

/* Loads the dataset the spec names. `nodes` and `seed` are used by synthetic (one block
 * of samples per node, generated from the seed). Errors: EG_EINPUT with a message naming
 * the file and the problem (missing, truncated, not an idx/png/csv file, odd image size,
 * label out of range ...). Not collective: every rank loads the same data. */
int eg_data_load(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed, eg_err *err);
void eg_data_free(eg_dataset *d); /* safe on a zeroed or half-built dataset */

/* Where a named dataset (mnist, fashion_mnist, digits) is looked for when path is null:
 * $EXPGRAPH_DATA, then the build's data/cache, then /usr/share/datasets. Writes the
 * directory found into dir and returns 0, or -1 if none has it. */
int eg_data_locate(eg_data_kind kind, char *dir, size_t dirlen);

typedef struct eg_partition {
    int nodes;
    int32_t *offset;  /* nodes + 1: node i owns idx[offset[i] .. offset[i+1]) */
    int32_t *idx;     /* indices into the training set */
    int classes;
    int32_t *hist;    /* nodes x classes label counts */
} eg_partition;

/* Splits the training set over nodes: iid (seeded shuffle, equal shares), dirichlet
 * (per class, proportions ~ Dir(alpha) over nodes), sorted (label-sorted contiguous shards).
 * EG_EINPUT when a node gets fewer than batch_size samples (the message names the node
 * and its count). Deterministic in (dataset, spec, nodes, seed). */
int eg_partition_make(eg_partition *p, const eg_dataset *d, const eg_data_spec *s, int nodes,
                      uint64_t seed, eg_err *err);
void eg_partition_free(eg_partition *p);
/* Spread of the label histograms: mean over nodes of the total-variation distance between
 * the node's label distribution and the global one (0 = identical, 1 = disjoint). */
double eg_partition_skew(const eg_partition *p);

/* Copies samples idx[0..batch) of the training set into x (batch x dim) and y, applying
 * the augmentations in `augment` (EG_AUG_*) with rng (images of at least 8x8 only; a no-op
 * for flat data, and then rng is not drawn from). Per sample, in this order:
 *  - EG_AUG_CROP: torchvision's RandomCrop(size, padding=4): the image padded with 4 black
 *    pixels (d->black) on every side, then cropped back to H x W at offset (oy, ox), oy then
 *    ox each drawn as eg_rng_below(rng, 9) (uniform in 0..8; 4, 4 is the original image);
 *  - EG_AUG_FLIP: one eg_rng_next draw, its top bit set = mirror left-right (applied after
 *    the crop, as RandomCrop followed by RandomHorizontalFlip). */
void eg_data_fill_batch(const eg_dataset *d, const int32_t *idx, int batch, int augment,
                        eg_rng *rng, float *x, int32_t *y);

/* ---- internals shared by lib/data*.c (not for callers outside data) -------------------
 * Each loader fills shape, dim, classes, n_train, n_test and the four arrays (floats from
 * eg_alloc_floats, labels from malloc) with RAW feature values (pixels 0..255, csv numbers
 * as written); eg_data_load then normalises them and writes desc. On error a loader returns
 * EG_EINPUT/EG_ERUN with err filled and leaves what it allocated in d for eg_data_free. */
int eg_data_load_idx(eg_dataset *d, const char *dir, eg_err *err);       /* data_idx.c */
/* image_folder: PNG and JPEG; image_size > 0 resizes the shorter side and centre-crops */
int eg_data_load_image_folder(eg_dataset *d, const char *dir, int image_size,
                              eg_err *err);                              /* data_image.c */
/* cifar10 (classes 10) and cifar100 (classes 100, fine labels), binary versions */
int eg_data_load_cifar(eg_dataset *d, const char *dir, int classes, eg_err *err); /* data_cifar.c */
int eg_data_load_csv(eg_dataset *d, const char *path, eg_err *err);      /* data_csv.c */
int eg_data_load_digits(eg_dataset *d, const char *path, eg_err *err);   /* data_csv.c */
int eg_data_load_synthetic(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed,
                           eg_err *err);                                 /* data_synth.c */
/* Uninitialised floats for the x arrays, 64-byte aligned (large arrays on 2 MiB boundaries,
 * with transparent huge pages requested where available); free with free(). */
float *eg_data_alloc_floats(size_t n, eg_err *err);                      /* data.c */

#endif
