/* data.h - datasets (8-bit images kept as bytes, other data as normalised floats; each rank
 * holding only its nodes' training samples) and their partition over nodes. */
#ifndef EG_DATA_H
#define EG_DATA_H

#include "common.h"
#include "kinds.h"
#include "model.h" /* eg_shape */
#include "topology.h" /* EG_PATH_MAX */

/* EG_AUG_RRC: torchvision's RandomResizedCrop(image_size) (image_folder with image_size) */
enum { EG_AUG_CROP = 1, EG_AUG_FLIP = 2, EG_AUG_RRC = 4 };

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
    int eval_resize;         /* image_folder with image_size: the shorter side is resized to this
                                before the centre crop of the test images (and of the training
                                images when they are not random_resized_crop'ed); 0 = image_size */
    double val_fraction;     /* [0, 1): held out of each node's shard for validation */
} eg_data_spec;

/* A decoded image as its file holds it: h x w x c bytes, interleaved (c: 1 gray, 3 RGB). */
typedef struct eg_data_img {
    int w, h, c;
    uint8_t *pix; /* malloc */
} eg_data_img;

typedef struct eg_data_src eg_data_src;
typedef struct eg_data_stream eg_data_stream;

typedef struct eg_dataset {
    eg_shape shape;          /* per-sample shape; dim = c*h*w */
    int dim, classes;
    int n_train, n_test;
    /* The training samples this rank holds (every one after eg_data_load): sample s is row
     * row[s] of u8_train or x_train, or not held when row[s] < 0. row NULL: every sample,
     * row s (a dataset built by hand). */
    int n_held;
    int32_t *row;
    uint8_t *u8_train;       /* 8-bit images: n_held x dim raw bytes (c x h x w); else NULL */
    float *x_train;          /* other data (csv, synthetic, resized image_folder): n_held x dim,
                                normalised with the training set's per-channel mean/std */
    int32_t *y_train;        /* n_train: every sample's label, held or not */
    float *x_test;           /* n_test x dim, same normalisation (every rank holds the test set);
                                NULL for 8-bit images: u8_test, through eg_data_test_rows */
    int32_t *y_test;
    double *mean, *inv;      /* per group (channel, or feature of flat data): the training
                                set's mean and inverse std (one block: free mean) */
    float *lut;              /* 8-bit images: shape.c x 256, the normalised value of each byte
                                in each channel (the float a pixel becomes) */
    float *black;            /* images: shape.c values, what a raw 0 (black) pixel of each channel
                                becomes after the normalisation: the crop augmentation's padding.
                                NULL (flat data, or a dataset built by hand): pad with 0 */
    int node_blocks;         /* synthetic with heterogeneity: sample s belongs to node
                                s / (n_train / nodes); the partition must keep that */
    char desc[256];          /* e.g. "mnist (60000 train, 10000 test, 1x28x28, 10 classes) from DIR" */
    /* ---- loading (eg_data_open .. eg_data_normalise) ---- */
    int is_u8;               /* the loader delivers training samples as bytes */
    uint8_t *u8_test;        /* 8-bit images: the raw test set (n_test x dim bytes) */
    eg_data_src *src;        /* the loader's handle between open and read (files, offsets) */
    const uint8_t *want;     /* during eg_data_read: EG_WANT_* bits per training sample */
    double *shift;           /* groups: the first training sample's first value of each group */
    double *gsum;            /* groups x 2: the shifted sums and sums of squares so far */
    double *gtmp;            /* groups x 2: one sample's */
    double *sstat;           /* fractional values read per rank (resized image_folder) only:
                                n_train x groups x 2, each sample's sums (zero for the samples
                                another rank sums), added in sample order at the end */
    size_t groups;           /* channels (images) or features (flat data) */
    long long samples_read;  /* training samples this rank read from disk or decoded */
    int cache_stream;        /* data.cache: stream: training samples decoded per minibatch */
    int batch_size;          /* per node (the stream's read-ahead) */
    eg_data_stream *stream;  /* data.cache: stream, after eg_data_read (data_stream.c) */
    /* random_resized_crop (image_folder): training samples are cut from the decoded images per
     * minibatch; rrc = image_size, 0 otherwise. The statistics are those of the training
     * images as evaluated (eval_resize + centre crop). img_train: data.cache memory, n_held
     * images (row[s]); streamed: the stream's slots hold images. */
    int rrc, rrc_eval;       /* image_size and eval_resize */
    eg_data_img *img_train;
} eg_dataset;

/* Loads the dataset the spec names, every sample, normalised: eg_data_open, eg_data_read of
 * every sample and eg_data_normalise. `nodes` and `seed` are used by synthetic (one block
 * of samples per node, generated from the seed). Errors: EG_EINPUT with a message naming
 * the file and the problem (missing, truncated, not an idx/png/csv file, odd image size,
 * label out of range ...). Not collective. */
int eg_data_load(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed, eg_err *err);
void eg_data_free(eg_dataset *d); /* safe on a zeroed or half-built dataset */

/* The three steps of loading for a rank that holds only some nodes:
 *  1. eg_data_open: shape, counts, every label (train and test) and the test set; no
 *     training pixels yet (formats read as a whole, csv and synthetic, are read here).
 *  2. the partition (eg_partition_make, from the labels and the seed: the same on every
 *     rank), then eg_data_read with the rank's nodes [lo, hi): reads only the training
 *     samples those nodes own (seeking in raw idx and CIFAR files, streaming gzip once,
 *     decoding only those image files), and computes each read sample's contribution to the
 *     normalisation statistics. The rank with stats_rest also reads, for the statistics
 *     only, the samples no node owns; every rank reads sample 0 (the statistics' shift).
 *  3. the ranks add up what eg_data_shared_stats points to, then eg_data_normalise: the
 *     mean and std of the WHOLE training set, the same floats as one process computes,
 *     whatever the rank count. Bytes: each rank's per-channel sums of (v - K) and (v - K)^2
 *     (K: sample 0's first value, read by every rank) are integers, exact in double (below
 *     2^53: up to 1.3e11 values per channel), so their sum is the same in any order and
 *     equals one process's. Fractional values (resized images): each sample's sums, non-zero
 *     on one rank only, added in sample order. Formats read whole (csv, digits, synthetic):
 *     every rank sums every sample itself, nothing to share. */
int eg_data_open(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed, eg_err *err);
struct eg_partition;
int eg_data_read(eg_dataset *d, const struct eg_partition *p, int lo, int hi, int stats_rest,
                 eg_err *err);
/* what the ranks must add up element-wise (in place) before eg_data_normalise: *buf and the
 * count (0: nothing; the same on every rank) */
size_t eg_data_shared_stats(eg_dataset *d, double **buf);
int eg_data_normalise(eg_dataset *d, eg_err *err);
/* Test samples start .. start+n-1 as the floats the model sees: a pointer into x_test, or,
 * for 8-bit images, buf (n x dim floats) filled through the lookup table, or, for a
 * streamed test set, buf filled by decoding the files (a failure: zeros, kept for
 * eg_data_error). Thread-safe. */
const float *eg_data_test_rows(const eg_dataset *d, int start, int n, float *buf);
/* Bytes of training and test data this rank holds (samples, labels, lookup tables, the
 * stream's cache). */
size_t eg_data_bytes(const eg_dataset *d);

/* data.cache: stream. The sampler tells what comes next: eg_data_prefetch(dataset, idx, n)
 * queues those samples for the read-ahead thread (a hook: dataset is the eg_dataset *;
 * no-op without a stream). EG_DATA_AHEAD minibatches per node are read ahead. */
#define EG_DATA_AHEAD 2
void eg_data_prefetch(void *dataset, const int32_t *idx, int n);
/* EG_ERUN, with the file and training sample named, once a file failed to decode during the
 * run (eg_data_fill_batch then gave zeros for it); EG_OK otherwise. Call after the
 * minibatches of an iteration, before anything is written. Thread-safe. */
int eg_data_error(const eg_dataset *d, eg_err *err);

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
/* data.val_fraction: holds out floor(frac * len) samples of each node's shard (len samples)
 * for validation. Which ones is drawn from the stream (seed, EG_STREAM_VALSPLIT, node): a
 * seeded shuffle of the shard's positions, the first floor(frac * len) held out, so the split
 * depends on (partition, frac, seed) only, never on the rank count. p keeps the rest (in its
 * former order) and its label histogram is recomputed; val gets the held-out samples (nodes,
 * offsets, ascending idx, hist, like a partition; zeroed first, free with
 * eg_partition_free). y: every training label (eg_dataset.y_train). frac 0 leaves p alone and
 * gives val an empty shard per node. Errors: EG_EINPUT when a node keeps fewer than
 * batch_size training samples (naming the node and the counts), EG_ERUN out of memory; p is
 * unchanged on error. */
int eg_partition_hold_out(eg_partition *p, eg_partition *val, const int32_t *y, double frac,
                          int batch_size, uint64_t seed, eg_err *err);
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
 *    the crop, as RandomCrop followed by RandomHorizontalFlip).
 * A random_resized_crop dataset (d->rrc) cuts each sample from its decoded image: the window
 * of eg_data_rrc_box (drawn from rng) resized to image_size x image_size, normalised, then
 * EG_AUG_FLIP as above; rng NULL: the evaluation transform instead. */
void eg_data_fill_batch(const eg_dataset *d, const int32_t *idx, int batch, int augment,
                        eg_rng *rng, float *x, int32_t *y);

/* ---- internals shared by lib/data*.c (not for callers outside data) -------------------
 * eg_data_open calls the format's opener. An opener fills shape, dim, classes, n_train,
 * n_test, y_train (every label), y_test and the test samples as RAW values (pixels 0..255,
 * csv numbers as written): an opener of 8-bit images sets is_u8 and leaves its test set in
 * u8_test (n_test x dim bytes); the others write raw floats to x_test. For the training
 * samples an opener either
 *  - sets d->src to its handle, whose read() delivers the wanted training samples (want[s]
 *    non-zero) in ascending order through eg_data_take_u8 / eg_data_take_f, or
 *  - (formats read whole: csv, digits, synthetic) leaves every raw training sample in
 *    x_train (n_train rows, floats) and d->src NULL.
 * On error an opener returns EG_EINPUT/EG_ERUN with err filled and leaves what it allocated
 * in d for eg_data_free. */
enum { EG_WANT_KEEP = 1, EG_WANT_STATS = 2, EG_WANT_SHIFT = 4 };
struct eg_data_src {
    int (*read)(eg_dataset *d, eg_data_src *src, eg_err *err);
    void (*free)(eg_data_src *src);
    /* streamable formats (image_folder): training sample s alone, raw, into u8 (bytes) or f
     * (floats, when !is_u8); thread-safe. NULL: not streamable */
    int (*sample)(eg_dataset *d, eg_data_src *src, int32_t s, uint8_t *u8, float *f,
                  eg_err *err);
    /* random_resized_crop: training sample s's decoded image into out (out->pix malloc'd,
     * the caller frees it); thread-safe. NULL: not available */
    int (*image)(eg_dataset *d, eg_data_src *src, int32_t s, eg_data_img *out, eg_err *err);
    /* a streamed test set (x_test and u8_test NULL): test sample k, raw floats, into f;
     * thread-safe. NULL: the test set is held */
    int (*test)(eg_dataset *d, eg_data_src *src, int32_t k, float *f, eg_err *err);
};
/* data_stream.c: the cache of decoded samples and its read-ahead thread (slots samples) */
int eg_data_stream_start(eg_dataset *d, int slots, eg_err *err);
void eg_data_stream_free(eg_data_stream *st);
size_t eg_data_stream_bytes(const eg_data_stream *st);
/* sample s's raw values into out (bytes or floats): from the cache, else decoded now;
 * a failure is kept for eg_data_error and out zeroed */
int eg_data_stream_get(eg_data_stream *st, int32_t s, void *out);
void eg_data_stream_fail(eg_data_stream *st, const char *what); /* keeps the first failure */
/* random_resized_crop: sample s's decoded image (a copy, out->pix malloc'd) from the cache,
 * else decoded now; a failure is kept for eg_data_error and out left empty (pix NULL) */
int eg_data_stream_get_img(eg_data_stream *st, int32_t s, eg_data_img *out);
int eg_data_take_u8(eg_dataset *d, int32_t s, const uint8_t *px, eg_err *err);   /* data.c */
/* Coalesced reads of fixed-size records (data.c): a reader reads the wanted samples in
 * windows of at most EG_DATA_READ_WINDOW bytes, one read each, reading through gaps of up
 * to EG_DATA_READ_GAP bytes of samples it does not want (it keeps only the wanted ones).
 * eg_data_read_window: the buffer size for n records of rec bytes (at least one record);
 * eg_data_read_span: the last sample of the window that starts at wanted sample s (s < n). */
enum { EG_DATA_READ_WINDOW = 4 << 20, EG_DATA_READ_GAP = 64 << 10 };
size_t eg_data_read_window(size_t rec, size_t n);
int32_t eg_data_read_span(const uint8_t *want, int32_t s, int32_t n, size_t rec, size_t cap);
int eg_data_take_f(eg_dataset *d, int32_t s, const float *x, eg_err *err);       /* data.c */
int eg_data_open_idx(eg_dataset *d, const char *dir, eg_err *err); /* data_idx.c */
/* image_folder: PNG and JPEG; image_size > 0 resizes the shorter side (to eval_resize, or
 * image_size when 0) and centre-crops image_size (fractional values: floats, is_u8 0);
 * rrc: random_resized_crop (every image made RGB, as torchvision's ImageFolder does; the
 * training samples are cut per minibatch and the source serves src->image); stream
 * (data.cache: stream) with image_size: the test set is streamed too (each file checked
 * once here, decoded again per evaluation through src->test; x_test NULL) */
int eg_data_open_image_folder(eg_dataset *d, const char *dir, int image_size, int eval_resize,
                              int rrc, int stream, eg_err *err);                      /* data_image.c */

/* ---- image geometry (data_image.c; exported for the tests and the fuzz harnesses) ------ */
/* The crop window of torchvision's RandomResizedCrop.get_params(scale (0.08, 1), ratio
 * (3/4, 4/3)) for a w x h image: up to 10 attempts, each drawing the area fraction
 * uniform in [0.08, 1) and the log aspect ratio uniform in [log 3/4, log 4/3) (two
 * eg_rng_uniform draws), the window's sides rounded half to even (Python's round); an
 * attempt that fits draws the top row, then the left column (eg_rng_below, uniform over
 * every position). After 10 misses: the centre crop of the whole image clamped to the ratio
 * range. The window lies inside the image, and h, w >= 1. */
typedef struct eg_crop_box {
    int y, x, h, w;
} eg_crop_box;
eg_crop_box eg_data_rrc_box(int w, int h, eg_rng *rng);
/* One axis of a resample: source pixels [src0, src0 + len) scaled to out pixels, of which
 * [off, off + S) are kept. */
typedef struct eg_resample_axis {
    int src0, len, out, off;
} eg_resample_axis;
/* The evaluation geometry: a w x h image's shorter side resized to R (the longer to
 * floor(R * long / short), torchvision's Resize(R)), then the centre S x S (offset
 * floor((resized - S) / 2)); ax[0] horizontal, ax[1] vertical. R >= S. */
void eg_data_eval_axes(int w, int h, int R, int S, eg_resample_axis ax[2]);
/* The crop box resized to S x S. */
void eg_data_box_axes(eg_crop_box b, int S, eg_resample_axis ax[2]);
/* Resamples img along ax into C x S x S floats (raw 0..255 scale, channels first) with
 * PIL's antialiased bilinear filter (data_image.c, "Shape"); a gray image fills every one of
 * the C channels. EG_ERUN (out of memory) or EG_OK. Thread-safe. */
int eg_data_resample(const eg_data_img *img, const eg_resample_axis ax[2], int C, int S,
                     float *dst, eg_err *err);
/* data.eval_resize's default with random_resized_crop: round(S * 256 / 224) (256 for 224) */
int eg_data_default_eval_resize(int S);
/* cifar10 (classes 10) and cifar100 (classes 100, fine labels), binary versions */
int eg_data_open_cifar(eg_dataset *d, const char *dir, int classes,
                       eg_err *err);                                                     /* data_cifar.c */
int eg_data_load_csv(eg_dataset *d, const char *path, eg_err *err);      /* data_csv.c */
int eg_data_load_digits(eg_dataset *d, const char *path, eg_err *err);   /* data_csv.c */
int eg_data_load_synthetic(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed,
                           eg_err *err);                                 /* data_synth.c */
/* Uninitialised floats for the x arrays, 64-byte aligned (large arrays on 2 MiB boundaries,
 * with transparent huge pages requested where available); free with free(). */
float *eg_data_alloc_floats(size_t n, eg_err *err);                      /* data.c */
/* The same for bytes. */
uint8_t *eg_data_alloc_bytes(size_t n, eg_err *err);                     /* data.c */
/* Training samples read from disk (or decoded) by this process since it started, over
 * every dataset: what tests check a rank's reading against. */
long long eg_data_samples_read(void);

#endif
