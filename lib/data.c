/* data.c - loading in three steps (eg_data_open: labels and test set; eg_data_read: the
 * rank's training samples; eg_data_normalise), dataset lookup, partitions over nodes and
 * minibatch assembly with augmentation.
 *
 * The format readers live in data_idx.c (mnist, fashion_mnist, idx), data_cifar.c
 * (cifar10, cifar100), data_image.c (image_folder: PNG and JPEG), data_csv.c (csv, digits)
 * and data_synth.c (synthetic); data_stream.c streams an image folder. They hand back raw
 * feature values (8-bit images as bytes, kept so); this file normalises them:
 *  - images (c > 1 or h > 1): per channel, x = (v - mean_c) / std_c;
 *  - flat data (shape 1x1xdim): per feature, x = (v - mean_j) / std_j;
 * mean and std (population) computed in double on the training set only and applied to
 * both splits. A (near-)constant channel or feature (std < 1e-8) is only centred (std := 1),
 * so that a column constant in train cannot blow up in test. For images, the value a raw 0
 * (black) pixel takes in each channel is kept in d->black: the crop augmentation pads with it.
 * Bytes become floats per minibatch (and per evaluation batch) through d->lut, the same
 * expression evaluated once per byte value and channel: the same floats as a float copy.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE), where the OS has it */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef EG_DATA_DIR
#define EG_DATA_DIR "data/cache"
#endif

/* ------------------------------------------------------------------------------------ */
/* memory                                                                                 */

float *eg_data_alloc_floats(size_t n, eg_err *err)
{
    size_t bytes = n * sizeof(float);
    if (n > SIZE_MAX / sizeof(float) / 2) {
        eg_err_set(err, EG_ERUN, "out of memory (%zu floats)", n);
        return NULL;
    }
    /* big arrays (MNIST: 188 MB) on 2 MiB boundaries so that transparent huge pages can
     * back them: first-touch page faults otherwise cost more than reading the files */
    size_t align = bytes >= ((size_t)8 << 20) ? ((size_t)2 << 20) : 64;
    bytes = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, bytes ? bytes : align)) {
        eg_err_set(err, EG_ERUN, "out of memory (%zu floats)", n);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    if (align > 64)
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return p;
}

uint8_t *eg_data_alloc_bytes(size_t n, eg_err *err)
{
    /* as many floats as hold n bytes: the same alignment and huge-page advice */
    return (uint8_t *)eg_data_alloc_floats((n + sizeof(float) - 1) / sizeof(float), err);
}

static long long samples_read_total; /* eg_data_samples_read */

long long eg_data_samples_read(void) { return samples_read_total; }

/* ------------------------------------------------------------------------------------ */
/* locating the named datasets                                                          */

/* files whose presence marks a directory as holding the dataset */
static const char *const idx_markers[] = {
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "train-images.idx3-ubyte",
    "train-images.idx3-ubyte.gz",
    NULL,
};
static const char *const digits_markers[] = {"digits.csv.gz", "digits.csv", NULL};

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_marker(const char *dir, const char *const *markers)
{
    char buf[EG_PATH_MAX + 64];
    for (int i = 0; markers[i]; i++) {
        int n = snprintf(buf, sizeof buf, "%s/%s", dir, markers[i]);
        if (n > 0 && (size_t)n < sizeof buf && is_file(buf))
            return 1;
    }
    return 0;
}

/* The candidate directories for a named dataset, in search order; returns how many.
 * Each cand[i] has room for EG_PATH_MAX bytes. */
static int locate_candidates(eg_data_kind kind, char cand[][EG_PATH_MAX], int max)
{
    int n = 0;
    const eg_data_info *k = &eg_data_kinds[kind];
    const char *env = getenv("EXPGRAPH_DATA");
    if (env && *env && n < max)
        snprintf(cand[n++], EG_PATH_MAX, "%s/%s", env, k->name);
    if (n < max)
        snprintf(cand[n++], EG_PATH_MAX, "%s/%s", EG_DATA_DIR, k->name);
    if (k->fallback && n < max)
        snprintf(cand[n++], EG_PATH_MAX, "%s", k->fallback);
    return n;
}

int eg_data_locate(eg_data_kind kind, char *dir, size_t dirlen)
{
    if ((unsigned)kind > EG_DATA_CSV || !eg_data_kinds[kind].named)
        return -1;
    const char *const *markers =
        eg_data_kinds[kind].format == EG_DFMT_DIGITS ? digits_markers : idx_markers;
    char cand[4][EG_PATH_MAX];
    int n = locate_candidates(kind, cand, 4);
    for (int i = 0; i < n; i++) {
        if (is_dir(cand[i]) && has_marker(cand[i], markers)) {
            if (strlen(cand[i]) >= dirlen)
                return -1;
            strcpy(dir, cand[i]);
            return 0;
        }
    }
    return -1;
}

static int not_found(eg_data_kind kind, eg_err *err)
{
    char cand[4][EG_PATH_MAX];
    int n = locate_candidates(kind, cand, 4);
    char list[3 * 1024] = "";
    size_t used = 0;
    const char *env = getenv("EXPGRAPH_DATA");
    if (!env || !*env)
        used += (size_t)snprintf(list, sizeof list, "$EXPGRAPH_DATA (unset), ");
    for (int i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%.1000s%s", cand[i],
                                 i + 1 < n ? ", " : "");
    return eg_err_set(err, EG_EINPUT,
                      "%s not found (looked in %s); run data/get_data.sh or set data.path",
                      eg_data_kinds[kind].name, list);
}

/* ------------------------------------------------------------------------------------ */
/* normalisation statistics, one sample at a time                                          */

static size_t block_of(const eg_dataset *d)
{
    return d->shape.c == 1 && d->shape.h == 1 ? 1 : (size_t)d->shape.h * (size_t)d->shape.w;
}

/* One sample's part of the statistics into out (groups x 2): per group, the sum and the sum of squares of its values
 * shifted by the group's first training value K (one pass in double: var = E[(v-K)^2] -
 * E[v-K]^2 loses little as long as K is a typical value; four partial sums per group for
 * speed). Exactly one of u8 and f is non-NULL. */
static void sample_stats(const eg_dataset *d, const uint8_t *u8, const float *f, double *out)
{
    size_t block = block_of(d);
    for (size_t g = 0; g < d->groups; g++) {
        double K = d->shift[g], sm[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
        size_t o = g * block, k = 0;
        if (u8 && K == (double)(int)K) {
            /* bytes and an integer shift: the sums are integers that double holds exactly
             * in any order, so integer sums give the same bits, faster */
            const int Ki = (int)K;
            int64_t si = 0, qi = 0;
            for (k = 0; k < block; k++) {
                int t = (int)u8[o + k] - Ki;
                si += t;
                qi += t * t;
            }
            out[2 * g] = (double)si;
            out[2 * g + 1] = (double)qi;
            continue;
        }
        for (; k + 4 <= block; k += 4)
            for (int u = 0; u < 4; u++) {
                size_t at = o + k + (size_t)u;
                double t = (u8 ? (double)u8[at] : (double)f[at]) - K;
                sm[u] += t;
                q[u] += t * t;
            }
        for (; k < block; k++) {
            double t = (u8 ? (double)u8[o + k] : (double)f[o + k]) - K;
            sm[0] += t;
            q[0] += t * t;
        }
        out[2 * g] = (sm[0] + sm[1]) + (sm[2] + sm[3]);
        out[2 * g + 1] = (q[0] + q[1]) + (q[2] + q[3]);
    }
}

/* One training sample from a reader, as d->want[s] asks: the statistics' shift (sample 0),
 * its statistics, and a copy into the rows this rank holds. */
static int take(eg_dataset *d, int32_t s, const uint8_t *u8, const float *f, eg_err *err)
{
    if (s < 0 || s >= d->n_train || !d->want || !d->want[s])
        return eg_err_set(err, EG_ERUN, "internal: sample %d delivered but not wanted", (int)s);
    uint8_t w = d->want[s];
    size_t block = block_of(d), dim = (size_t)d->dim;
    if (w & EG_WANT_SHIFT)
        for (size_t g = 0; g < d->groups; g++)
            d->shift[g] = u8 ? (double)u8[g * block] : (double)f[g * block];
    if (w & EG_WANT_STATS) {
        double *one = d->sstat ? d->sstat + (size_t)s * d->groups * 2 : d->gtmp;
        sample_stats(d, u8, f, one);
        for (size_t j = 0; !d->sstat && j < d->groups * 2; j++)
            d->gsum[j] += one[j];
    }
    if ((w & EG_WANT_KEEP) && !d->cache_stream && !d->rrc) { /* rrc: the reader keeps images */
        size_t r = (size_t)d->row[s];
        if (u8)
            memcpy(d->u8_train + r * dim, u8, dim);
        else
            memmove(d->x_train + r * dim, f, dim * sizeof *f); /* in place: r <= s */
    }
    if (d->src) {
        samples_read_total++;
        d->samples_read++;
    }
    return EG_OK;
}

size_t eg_data_read_window(size_t rec, size_t n)
{
    size_t all = rec * (n ? n : 1);
    size_t cap = all < EG_DATA_READ_WINDOW ? all : EG_DATA_READ_WINDOW;
    return cap < rec ? rec : cap;
}

int32_t eg_data_read_span(const uint8_t *want, int32_t s, int32_t n, size_t rec, size_t cap)
{
    int32_t last = s;
    for (int32_t t = s + 1; t < n && (size_t)(t + 1 - s) * rec <= cap; t++) {
        if (!want[t])
            continue;
        if ((size_t)(t - last - 1) * rec > EG_DATA_READ_GAP)
            break;
        last = t;
    }
    return last;
}

int eg_data_take_u8(eg_dataset *d, int32_t s, const uint8_t *px, eg_err *err)
{
    return take(d, s, px, NULL, err);
}

int eg_data_take_f(eg_dataset *d, int32_t s, const float *x, eg_err *err)
{
    return take(d, s, NULL, x, err);
}

size_t eg_data_shared_stats(eg_dataset *d, double **buf)
{
    *buf = d->sstat ? d->sstat : d->gsum;
    if (!d->src) /* read whole: every rank summed every sample */
        return 0;
    return d->sstat ? (size_t)d->n_train * d->groups * 2 : d->groups * 2;
}

/* mean and inverse std per group from the summed statistics (per-sample ones in sample
 * order) */
static void stats_of(const eg_dataset *d, double *mean, double *inv)
{
    size_t G = d->groups;
    for (size_t g = 0; g < G; g++) {
        mean[g] = d->gsum[2 * g];
        inv[g] = d->gsum[2 * g + 1];
    }
    for (size_t i = 0; d->sstat && i < (size_t)d->n_train; i++)
        for (size_t g = 0; g < G; g++) {
            mean[g] += d->sstat[(i * G + g) * 2];
            inv[g] += d->sstat[(i * G + g) * 2 + 1];
        }
    double cnt = (double)d->n_train * (double)block_of(d);
    for (size_t g = 0; g < G; g++) {
        double m = mean[g] / cnt, v = inv[g] / cnt - m * m;
        double sd = sqrt(v > 0 ? v : 0);
        mean[g] = m + d->shift[g];
        inv[g] = sd < 1e-8 ? 1.0 : 1.0 / sd;
    }
}

/* x = (v - mean) * inv, in double, rounded to float: the one expression every value takes */
static float norm_value(double v, double mean, double inv) { return (float)((v - mean) * inv); }

/* rows of raw floats (n x dim) normalised in place with the dataset's mean and inverse std */
static void normalise_rows(const eg_dataset *d, float *rows, size_t n)
{
    size_t dim = (size_t)d->dim, block = block_of(d);
    for (size_t i = 0; i < n; i++) {
        float *row = rows + i * dim;
        for (size_t k = 0; k < dim; k++)
            row[k] = norm_value(row[k], d->mean[k / block], d->inv[k / block]);
    }
}

int eg_data_normalise(eg_dataset *d, eg_err *err)
{
    size_t G = d->groups;
    d->mean = eg_calloc(G * 2, sizeof *d->mean, err);
    if (!d->mean)
        return EG_ERUN;
    d->inv = d->mean + G;
    stats_of(d, d->mean, d->inv);
    free(d->sstat);
    d->sstat = NULL;
    int flat = d->shape.c == 1 && d->shape.h == 1;
    if (!flat && !(d->black = eg_malloc(G * sizeof *d->black, err)))
        return EG_ERUN;
    for (size_t g = 0; !flat && g < G; g++)
        d->black[g] = norm_value(0.0, d->mean[g], d->inv[g]); /* a raw 0 pixel */
    if (!d->is_u8) {
        if (d->x_train)
            normalise_rows(d, d->x_train, (size_t)d->n_held);
        if (d->x_test) /* else streamed: normalised per evaluation batch */
            normalise_rows(d, d->x_test, (size_t)d->n_test);
        return EG_OK;
    }
    if (!(d->lut = eg_malloc(G * 256 * sizeof *d->lut, err)))
        return EG_ERUN;
    for (size_t g = 0; g < G; g++)
        for (int v = 0; v < 256; v++)
            d->lut[g * 256 + (size_t)v] = norm_value((double)v, d->mean[g], d->inv[g]);
    return EG_OK;
}

/* n samples of bytes (n x dim) to floats through the lookup table */
static void bytes_to_floats(const eg_dataset *d, const uint8_t *src, size_t n, float *dst)
{
    size_t dim = (size_t)d->dim, block = block_of(d);
    for (size_t i = 0; i < n; i++)
        for (size_t g = 0; g < dim / block; g++) {
            const float *lut = d->lut + g * 256;
            for (size_t k = i * dim + g * block; k < i * dim + (g + 1) * block; k++)
                dst[k] = lut[src[k]];
        }
}

const float *eg_data_test_rows(const eg_dataset *d, int start, int n, float *buf)
{
    size_t at = (size_t)start * (size_t)d->dim;
    if (d->x_test)
        return d->x_test + at;
    if (!d->u8_test) { /* streamed: decoded now */
        for (int i = 0; i < n; i++) {
            eg_err e;
            float *row = buf + (size_t)i * (size_t)d->dim;
            if (!d->src || !d->src->test ||
                d->src->test((eg_dataset *)d, d->src, start + i, row, &e) != EG_OK) {
                if (d->stream)
                    eg_data_stream_fail(d->stream, d->src && d->src->test ? e.msg
                                                                         : "internal: no test set");
                memset(row, 0, (size_t)d->dim * sizeof *row);
            } else {
                normalise_rows(d, row, 1);
            }
        }
        return buf;
    }
    bytes_to_floats(d, d->u8_test + at, (size_t)n, buf);
    return buf;
}

/* ------------------------------------------------------------------------------------ */
/* loading                                                                                */

/* the evaluation's shorter side: data.eval_resize, else round(S * 256 / 224) with
 * random_resized_crop, else image_size (0 without image_size) */
static int data_eval_resize(const eg_data_spec *s)
{
    if (s->eval_resize > 0)
        return s->eval_resize;
    return (s->augment & EG_AUG_RRC) && s->image_size > 0 ? eg_data_default_eval_resize(s->image_size)
                                                          : s->image_size;
}

static int open_format(eg_dataset *d, const eg_data_spec *s, const char *where, int nodes,
                       uint64_t seed, eg_err *err)
{
    const eg_data_info *k = &eg_data_kinds[s->kind];
    switch (k->format) {
    case EG_DFMT_IDX: return eg_data_open_idx(d, where, err);
    case EG_DFMT_DIGITS: return eg_data_load_digits(d, where, err);
    case EG_DFMT_CIFAR: return eg_data_open_cifar(d, where, k->classes, err);
    case EG_DFMT_IMAGES:
        return eg_data_open_image_folder(d, where, s->image_size, data_eval_resize(s),
                                         (s->augment & EG_AUG_RRC) != 0,
                                         s->cache == EG_CACHE_STREAM, err);
    case EG_DFMT_CSV: return eg_data_load_csv(d, where, err);
    default: return eg_data_load_synthetic(d, s, nodes, seed, err);
    }
}

static void describe(eg_dataset *d, const char *name, const char *where)
{
    if (where) {
        /* a very long directory keeps its tail: "(...ache/mnist)" */
        size_t wl = strlen(where);
        const char *tail = wl > 120 ? where + wl - 117 : where;
        snprintf(d->desc, sizeof d->desc,
                 "%.31s: %d train / %d test, %dx%dx%d, %d classes (%s%.120s)", name, d->n_train,
                 d->n_test, d->shape.c, d->shape.h, d->shape.w, d->classes,
                 tail == where ? "" : "...", tail);
    } else if (!d->desc[0]) {
        snprintf(d->desc, sizeof d->desc, "%s: %d train / %d test, %dx%dx%d, %d classes", name,
                 d->n_train, d->n_test, d->shape.c, d->shape.h, d->shape.w, d->classes);
    }
}

int eg_data_open(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed, eg_err *err)
{
    memset(d, 0, sizeof *d);
    char dir[EG_PATH_MAX];
    if ((unsigned)s->kind > EG_DATA_CSV)
        return eg_err_set(err, EG_EINPUT, "unknown data kind %d", (int)s->kind);
    const eg_data_info *k = &eg_data_kinds[s->kind];
    const char *name = k->name;
    const char *where = s->path;
    if (k->format == EG_DFMT_SYNTH) {
        where = NULL;
    } else if (!s->path[0]) {
        if (!k->named)
            return eg_err_set(err, EG_EINPUT, "data.path is required for data.name %s (a %s)",
                              name, k->path_is);
        if (eg_data_locate(s->kind, dir, sizeof dir) != 0)
            return not_found(s->kind, err);
        where = dir;
    }
    int rc = open_format(d, s, where, nodes, seed, err);
    d->batch_size = s->batch_size;
    d->cache_stream = rc == EG_OK && s->cache == EG_CACHE_STREAM && d->src && d->src->sample;
    if (rc == EG_OK && (s->augment & EG_AUG_RRC) && k->format == EG_DFMT_IMAGES && d->src &&
        d->src->image)
        d->rrc = s->image_size, d->rrc_eval = data_eval_resize(s);
    if (rc == EG_OK && (d->n_train < 1 || d->n_test < 1))
        rc = eg_err_set(err, EG_EINPUT, "%s (%s): empty %s set", name, where ? where : "generated",
                        d->n_train < 1 ? "training" : "test");
    if (rc == EG_OK) {
        int flat = d->shape.c == 1 && d->shape.h == 1;
        d->groups = flat ? (size_t)d->dim : (size_t)d->shape.c;
        /* shift, gsum, gtmp: one block */
        d->shift = eg_calloc(d->groups * 5, sizeof *d->shift, err);
        d->gsum = d->shift ? d->shift + d->groups : NULL;
        d->gtmp = d->shift ? d->gsum + 2 * d->groups : NULL;
        /* read per rank, and not all integer sums below 2^53: per-sample sums */
        double sq = (double)d->n_train * (double)block_of(d) * 255.0 * 255.0;
        int per_sample = d->src && (!d->is_u8 || sq >= 9007199254740992.0);
        if (per_sample && d->shift)
            d->sstat = eg_calloc((size_t)d->n_train * d->groups * 2, sizeof *d->sstat, err);
        if (!d->shift || (per_sample && !d->sstat))
            rc = EG_ERUN;
    }
    if (rc == EG_OK && !d->src) { /* read whole */
        samples_read_total += d->n_train;
        d->samples_read = d->n_train;
    }
    if (rc != EG_OK) {
        eg_data_free(d);
        return rc;
    }
    describe(d, name, where);
    return EG_OK;
}

/* want[s] for this rank: its nodes' samples kept and summed, the samples no node owns summed
 * by the rank with stats_rest, sample 0 read by every rank for the shift (p NULL: every sample
 * kept and summed) */
static uint8_t *want_of(const eg_dataset *d, const eg_partition *p, int lo, int hi,
                        int stats_rest, eg_err *err)
{
    uint8_t *want = eg_calloc((size_t)d->n_train, 1, err);
    if (!want)
        return NULL;
    uint8_t *owned = p ? eg_calloc((size_t)d->n_train, 1, err) : NULL;
    if (p && !owned) {
        free(want);
        return NULL;
    }
    for (int i = 0; p && i < p->nodes; i++)
        for (int32_t k = p->offset[i]; k < p->offset[i + 1]; k++) {
            owned[p->idx[k]] = 1;
            if (i >= lo && i < hi)
                want[p->idx[k]] = EG_WANT_KEEP | EG_WANT_STATS;
        }
    for (int32_t s = 0; s < d->n_train; s++)
        if (!p)
            want[s] = EG_WANT_KEEP | EG_WANT_STATS;
        else if (!d->src) /* read whole: every rank sums every sample, in order */
            want[s] |= EG_WANT_STATS;
        else if (!owned[s] && stats_rest)
            want[s] |= EG_WANT_STATS;
    want[0] |= EG_WANT_SHIFT;
    free(owned);
    return want;
}

int eg_data_read(eg_dataset *d, const eg_partition *p, int lo, int hi, int stats_rest,
                 eg_err *err)
{
    uint8_t *want = want_of(d, p, lo, hi, stats_rest, err);
    d->row = want ? eg_malloc((size_t)d->n_train * sizeof *d->row, err) : NULL;
    if (!d->row) {
        free(want);
        return EG_ERUN;
    }
    d->n_held = 0;
    for (int32_t s = 0; s < d->n_train; s++)
        d->row[s] = want[s] & EG_WANT_KEEP ? d->n_held++ : -1;
    size_t bytes = d->cache_stream ? 0 : (size_t)d->n_held * (size_t)d->dim;
    int rc = EG_OK;
    if (d->is_u8 && !d->cache_stream && !(d->u8_train = eg_data_alloc_bytes(bytes, err)))
        rc = EG_ERUN;
    if (!d->is_u8 && d->src && !d->cache_stream && !d->rrc &&
        !(d->x_train = eg_data_alloc_floats(bytes, err)))
        rc = EG_ERUN;
    if (d->rrc && !d->cache_stream &&
        !(d->img_train = eg_calloc(d->n_held ? (size_t)d->n_held : 1, sizeof *d->img_train, err)))
        rc = EG_ERUN;
    d->want = want;
    if (rc == EG_OK && d->src) {
        rc = d->src->read(d, d->src, err);
    } else {
        for (int32_t s = 0; rc == EG_OK && s < d->n_train; s++)
            if (want[s])
                rc = take(d, s, NULL, d->x_train + (size_t)s * (size_t)d->dim, err);
    }
    d->want = NULL;
    free(want);
    /* read whole (csv, digits, synthetic): the rows kept were moved to the front; let go of
     * the rest */
    if (rc == EG_OK && !d->src && d->n_held < d->n_train) {
        size_t keep = (size_t)d->n_held * (size_t)d->dim;
        float *x = eg_data_alloc_floats(keep ? keep : 1, err);
        if (!x)
            return EG_ERUN;
        memcpy(x, d->x_train, keep * sizeof *x);
        free(d->x_train);
        d->x_train = x;
    }
    /* streamed: the read above only summed the statistics; a cache of the next minibatches */
    if (rc == EG_OK && d->cache_stream) {
        long ahead = 2L * (EG_DATA_AHEAD + 1) * (hi > lo ? hi - lo : 1) * d->batch_size;
        rc = eg_data_stream_start(d, ahead > (1 << 20) ? 1 << 20 : (int)ahead, err);
    }
    return rc;
}

size_t eg_data_bytes(const eg_dataset *d)
{
    size_t dim = (size_t)d->dim, held = d->cache_stream ? 0 : (size_t)d->n_held;
    size_t b = d->rrc ? 0 : held * dim * (d->is_u8 ? 1 : sizeof(float)); /* streamed: cache */
    for (size_t i = 0; d->img_train && i < (size_t)d->n_held; i++)
        b += (size_t)d->img_train[i].w * (size_t)d->img_train[i].h * (size_t)d->img_train[i].c;
    b += (size_t)d->n_test * dim * (d->x_test ? sizeof(float) : d->u8_test ? 1 : 0);
    b += ((size_t)d->n_train * 2 + (size_t)d->n_test) * sizeof(int32_t); /* labels, rows */
    if (d->lut)
        b += d->groups * 256 * sizeof(float);
    return b + eg_data_stream_bytes(d->stream);
}

int eg_data_load(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed, eg_err *err)
{
    int rc = eg_data_open(d, s, nodes, seed, err);
    if (rc == EG_OK)
        rc = eg_data_read(d, NULL, 0, 1, 1, err);
    if (rc == EG_OK)
        rc = eg_data_normalise(d, err);
    if (rc != EG_OK)
        eg_data_free(d);
    return rc;
}

void eg_data_free(eg_dataset *d)
{
    if (!d)
        return;
    eg_data_stream_free(d->stream); /* first: its thread decodes through src */
    if (d->src)
        d->src->free(d->src);
    for (int i = 0; d->img_train && i < d->n_held; i++)
        free(d->img_train[i].pix);
    free(d->img_train);
    free(d->x_train);
    free(d->u8_train);
    free(d->row);
    free(d->y_train);
    free(d->x_test);
    free(d->u8_test);
    free(d->y_test);
    free(d->lut);
    free(d->black);
    free(d->shift);
    free(d->sstat);
    free(d->mean); /* and inv, the same block */
    memset(d, 0, sizeof *d); /* nothing dangling: a freed dataset reads as empty */
}

/* ------------------------------------------------------------------------------------ */
/* partitions                                                                             */

void eg_partition_free(eg_partition *p)
{
    if (!p)
        return;
    free(p->offset);
    free(p->idx);
    free(p->hist);
    memset(p, 0, sizeof *p);
}

/* owner[s] in [-1, nodes) for every training sample; builds offsets, idx (ascending
 * within each node) and hist. */
static int build_from_owner(eg_partition *p, const eg_dataset *d, const int32_t *owner, eg_err *err)
{
    int nodes = p->nodes;
    int32_t *count = eg_calloc((size_t)nodes, sizeof *count, err);
    if (!count)
        return EG_ERUN;
    for (int32_t s = 0; s < d->n_train; s++)
        if (owner[s] >= 0) {
            count[owner[s]]++;
            p->hist[(size_t)owner[s] * (size_t)p->classes + (size_t)d->y_train[s]]++;
        }
    p->offset[0] = 0;
    for (int i = 0; i < nodes; i++)
        p->offset[i + 1] = p->offset[i] + count[i];
    for (int i = 0; i < nodes; i++)
        count[i] = p->offset[i];
    for (int32_t s = 0; s < d->n_train; s++)
        if (owner[s] >= 0)
            p->idx[count[owner[s]]++] = s;
    free(count);
    return EG_OK;
}

/* stable counting sort of the training indices by label */
static int32_t *by_label(const eg_dataset *d, int32_t *class_start, eg_err *err)
{
    int32_t *order = eg_malloc((size_t)d->n_train * sizeof *order, err);
    if (!order)
        return NULL;
    for (int c = 0; c <= d->classes; c++)
        class_start[c] = 0;
    for (int32_t s = 0; s < d->n_train; s++)
        class_start[d->y_train[s] + 1]++;
    for (int c = 0; c < d->classes; c++)
        class_start[c + 1] += class_start[c];
    int32_t *pos = eg_malloc((size_t)d->classes * sizeof *pos, err);
    if (!pos) {
        free(order);
        return NULL;
    }
    memcpy(pos, class_start, (size_t)d->classes * sizeof *pos);
    for (int32_t s = 0; s < d->n_train; s++)
        order[pos[d->y_train[s]]++] = s;
    free(pos);
    return order;
}

#define DIRICHLET_TRIES 1000

static int part_dirichlet(const eg_partition *p, const eg_dataset *d, double alpha, eg_rng *r,
                          int32_t *owner, eg_err *err)
{
    int nodes = p->nodes;
    int32_t *class_start = eg_malloc(((size_t)d->classes + 1) * sizeof *class_start, err);
    double *g = eg_malloc((size_t)nodes * 2 * sizeof *g, err);
    int32_t *order = class_start && g ? by_label(d, class_start, err) : NULL;
    if (!order) {
        free(class_start);
        free(g);
        return EG_ERUN;
    }
    double *lg = g + nodes;
    for (int c = 0; c < d->classes; c++) {
        int32_t *cls = order + class_start[c];
        int32_t nc = class_start[c + 1] - class_start[c];
        /* proportions ~ Dir(alpha): normalised Gamma(alpha, 1) draws (drawn even for an
         * empty class, so that one class's size never shifts another's draws) */
        double sum = 0;
        for (int i = 0; i < nodes; i++) {
            g[i] = eg_rng_gamma_log(r, alpha, &lg[i]);
            sum += g[i];
        }
        if (!(sum > 0) || !isfinite(sum)) {
            /* every draw underflowed (alpha << 1): the same draws from their logs, scaled by
             * the largest, so the class goes (almost) all to one node, as Dir(alpha) does */
            double mx = lg[0];
            for (int i = 1; i < nodes; i++)
                if (lg[i] > mx)
                    mx = lg[i];
            sum = 0;
            for (int i = 0; i < nodes; i++) {
                g[i] = exp(lg[i] - mx);
                sum += g[i];
            }
        }
        eg_rng_shuffle(r, cls, (size_t)nc);
        double cum = 0;
        int32_t lo = 0;
        for (int i = 0; i < nodes; i++) {
            cum += g[i];
            int32_t hi = i + 1 == nodes ? nc : (int32_t)llround((double)nc * (cum / sum));
            if (hi > nc)
                hi = nc;
            if (hi < lo)
                hi = lo;
            for (int32_t k = lo; k < hi; k++)
                owner[cls[k]] = i;
            lo = hi;
        }
    }
    free(order);
    free(class_start);
    free(g);
    return EG_OK;
}

int eg_partition_make(eg_partition *p, const eg_dataset *d, const eg_data_spec *s, int nodes,
                      uint64_t seed, eg_err *err)
{
    memset(p, 0, sizeof *p);
    if (nodes < 1)
        return eg_err_set(err, EG_EINPUT, "nodes must be at least 1 (got %d)", nodes);
    int bs = s->batch_size > 0 ? s->batch_size : 1;
    eg_partition_kind kind = s->partition;
    const char *kname = (unsigned)kind <= EG_PART_SORTED ? eg_partition_kinds[kind].name : "?";
    int32_t n = d->n_train;
    int dirichlet = kind == EG_PART_DIRICHLET;
    if ((unsigned)kind > EG_PART_SORTED)
        return eg_err_set(err, EG_EINPUT, "unknown data.partition kind %d", (int)kind);
    if (d->node_blocks && kind != EG_PART_IID)
        return eg_err_set(err, EG_EINPUT,
                          "data.partition %s cannot be used with synthetic data of "
                          "heterogeneity > 0 (each node already owns its own block of samples); "
                          "use partition: iid",
                          kname);
    if (dirichlet && !(s->alpha > 0))
        return eg_err_set(err, EG_EINPUT, "data.alpha must be > 0 for dirichlet (got %g)",
                          s->alpha);
    p->nodes = nodes;
    p->classes = d->classes;
    p->offset = eg_calloc((size_t)nodes + 1, sizeof *p->offset, err);
    p->idx = eg_malloc((size_t)n * sizeof *p->idx, err);
    p->hist = eg_calloc((size_t)nodes * (size_t)d->classes, sizeof *p->hist, err);
    int32_t *owner = eg_malloc((size_t)n * sizeof *owner, err);
    if (!p->offset || !p->idx || !p->hist || !owner) {
        free(owner);
        eg_partition_free(p);
        return EG_ERUN;
    }
    for (int32_t k = 0; k < n; k++)
        owner[k] = -1;

    eg_rng r;
    eg_rng_seed(&r, seed, EG_STREAM_PARTITION, 0);
    int rc = EG_OK;
    int32_t share = n / nodes; /* iid and sorted: equal shares, the remainder unused */
    if (d->node_blocks) {
        if (n % nodes != 0) {
            rc = eg_err_set(err, EG_EINPUT,
                            "the synthetic data has %d samples in per-node blocks, which does "
                            "not divide over %d nodes (it was generated for another count)",
                            (int)n, nodes);
        } else {
            for (int32_t k = 0; k < n; k++)
                owner[k] = k / share;
        }
    } else if (kind == EG_PART_IID) {
        int32_t *perm = eg_malloc((size_t)n * sizeof *perm, err);
        if (!perm) {
            rc = EG_ERUN;
        } else {
            for (int32_t k = 0; k < n; k++)
                perm[k] = k;
            eg_rng_shuffle(&r, perm, (size_t)n);
            for (int32_t k = 0; k < share * nodes; k++)
                owner[perm[k]] = k / share;
            free(perm);
        }
    } else if (kind == EG_PART_SORTED) {
        int32_t *class_start = eg_malloc(((size_t)d->classes + 1) * sizeof *class_start, err);
        int32_t *order = class_start ? by_label(d, class_start, err) : NULL;
        if (!order) {
            rc = EG_ERUN;
        } else {
            for (int32_t k = 0; k < share * nodes; k++)
                owner[order[k]] = k / share;
        }
        free(order);
        free(class_start);
    } else {
        /* Redraw (continuing the same seeded stream) until every node can fill a batch, as
         * federated-learning benchmarks do; give up after DIRICHLET_TRIES draws. */
        int32_t *count = eg_malloc((size_t)nodes * sizeof *count, err);
        if (!count)
            rc = EG_ERUN;
        else if ((long)n < (long)nodes * bs) /* no draw can do it: do not try 1000 times */
            rc = eg_err_set(err, EG_EINPUT,
                            "dirichlet: %d training samples cannot give each of %d nodes "
                            "batch_size %d samples",
                            (int)n, nodes, bs);
        for (int attempt = 0; rc == EG_OK && attempt < DIRICHLET_TRIES; attempt++) {
            for (int32_t k = 0; k < n; k++)
                owner[k] = -1;
            rc = part_dirichlet(p, d, s->alpha, &r, owner, err);
            if (rc)
                break;
            memset(count, 0, (size_t)nodes * sizeof *count);
            for (int32_t k = 0; k < n; k++)
                if (owner[k] >= 0)
                    count[owner[k]]++;
            int32_t least = n;
            for (int i = 0; i < nodes; i++)
                if (count[i] < least)
                    least = count[i];
            if (least >= bs)
                break;
        }
        free(count);
    }
    if (rc == EG_OK)
        rc = build_from_owner(p, d, owner, err);
    free(owner);
    if (rc != EG_OK) {
        eg_partition_free(p);
        return rc;
    }

    /* every node must fill a batch: report the smallest shard (lowest id on ties) */
    int worst = 0;
    for (int i = 1; i < nodes; i++)
        if (p->offset[i + 1] - p->offset[i] < p->offset[worst + 1] - p->offset[worst])
            worst = i;
    int32_t have = p->offset[worst + 1] - p->offset[worst];
    if (have < bs) {
        if (dirichlet)
            eg_err_set(err, EG_EINPUT,
                       "dirichlet(alpha=%g) gave node %d only %d samples, fewer than "
                       "batch_size %d, in each of %d draws; raise data.alpha, lower "
                       "data.batch_size or use fewer nodes",
                       s->alpha, worst, (int)have, bs, DIRICHLET_TRIES);
        else
            eg_err_set(err, EG_EINPUT,
                       "data.batch_size %d is larger than node %d's shard (%d samples); "
                       "lower data.batch_size or use fewer nodes",
                       bs, worst, (int)have);
        eg_partition_free(p);
        return EG_EINPUT;
    }
    return EG_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int eg_partition_hold_out(eg_partition *p, eg_partition *val, const int32_t *y, double frac,
                          int batch_size, uint64_t seed, eg_err *err)
{
    memset(val, 0, sizeof *val);
    int nodes = p->nodes, K = p->classes;
    int32_t total = p->offset[nodes];
    val->nodes = nodes;
    val->classes = K;
    val->offset = eg_calloc((size_t)nodes + 1, sizeof *val->offset, err);
    val->idx = eg_malloc(((size_t)total + 1) * sizeof *val->idx, err);
    val->hist = eg_calloc((size_t)nodes * (size_t)K + 1, sizeof *val->hist, err);
    int32_t *tidx = eg_malloc(((size_t)total + 1) * sizeof *tidx, err);
    int32_t *toff = eg_calloc((size_t)nodes + 1, sizeof *toff, err);
    int32_t *thist = eg_calloc((size_t)nodes * (size_t)K + 1, sizeof *thist, err);
    int32_t *pos = eg_malloc(((size_t)total + 1) * sizeof *pos, err);
    char *held = eg_calloc((size_t)total + 1, 1, err);
    int rc = !val->offset || !val->idx || !val->hist || !tidx || !toff || !thist || !pos ||
                     !held ? EG_ERUN : EG_OK;
    int32_t nv = 0, nt = 0;
    for (int i = 0; i < nodes && !rc; i++) {
        int32_t lo = p->offset[i], len = p->offset[i + 1] - lo;
        int32_t hold = (int32_t)floor(frac * (double)len);
        if (len - hold < batch_size) {
            rc = eg_err_set(err, EG_EINPUT,
                            "data.val_fraction %g holds out %d of node %d's %d samples, "
                            "leaving %d, fewer than batch_size %d; lower data.val_fraction "
                            "or data.batch_size",
                            frac, (int)hold, i, (int)len, (int)(len - hold), batch_size);
            break;
        }
        eg_rng r;
        eg_rng_seed(&r, seed, EG_STREAM_VALSPLIT, (uint64_t)i);
        for (int32_t k = 0; k < len; k++)
            pos[k] = k;
        eg_rng_shuffle(&r, pos, (size_t)len);
        for (int32_t k = 0; k < hold; k++)
            held[lo + pos[k]] = 1;
        for (int32_t k = lo; k < lo + len; k++) {
            int32_t s = p->idx[k];
            if (held[k]) {
                val->idx[nv++] = s;
                val->hist[(size_t)i * K + y[s]]++;
            } else {
                tidx[nt++] = s;
                thist[(size_t)i * K + y[s]]++;
            }
        }
        qsort(val->idx + val->offset[i], (size_t)(nv - val->offset[i]), sizeof *val->idx,
              cmp_i32);
        val->offset[i + 1] = nv;
        toff[i + 1] = nt;
    }
    if (!rc) { /* the training shards: p's arrays replaced */
        memcpy(p->offset, toff, ((size_t)nodes + 1) * sizeof *toff);
        memcpy(p->idx, tidx, (size_t)nt * sizeof *tidx);
        memcpy(p->hist, thist, (size_t)nodes * (size_t)K * sizeof *thist);
    }
    free(tidx);
    free(toff);
    free(thist);
    free(pos);
    free(held);
    if (rc)
        eg_partition_free(val);
    return rc;
}

double eg_partition_skew(const eg_partition *p)
{
    if (!p || p->nodes < 1 || p->classes < 1 || !p->hist)
        return 0.0;
    int K = p->classes;
    double total = 0;
    double *global = calloc((size_t)K, sizeof *global);
    if (!global)
        return 0.0;
    for (int i = 0; i < p->nodes; i++)
        for (int c = 0; c < K; c++)
            global[c] += p->hist[(size_t)i * (size_t)K + (size_t)c];
    for (int c = 0; c < K; c++)
        total += global[c];
    if (total <= 0) {
        free(global);
        return 0.0;
    }
    double sum = 0;
    int used = 0;
    for (int i = 0; i < p->nodes; i++) {
        const int32_t *h = p->hist + (size_t)i * (size_t)K;
        double ni = 0;
        for (int c = 0; c < K; c++)
            ni += h[c];
        if (ni <= 0)
            continue;
        double tv = 0;
        for (int c = 0; c < K; c++)
            tv += fabs(h[c] / ni - global[c] / total);
        sum += 0.5 * tv;
        used++;
    }
    free(global);
    return used ? sum / used : 0.0;
}

/* ------------------------------------------------------------------------------------ */
/* minibatches                                                                            */

/* crop padding on every side: torchvision's RandomCrop(size, padding=4) */
#define CROP_PAD 4

/* One sample, cropped at offset (dy, dx) and maybe mirrored: out[c][i][j] = in[c][i + dy][j' + dx]
 * with j' = W-1-j when flipped, else j; a source outside the image is the padding black[c].
 * The sample is src8 (bytes, through lut) or src (floats). */
static void aug_sample(const eg_dataset *d, const uint8_t *src8, const float *src, int dy, int dx,
                       int flip, float *dst)
{
    const int C = d->shape.c, H = d->shape.h, W = d->shape.w;
    const size_t hw = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++) {
        const float *lut = src8 ? d->lut + (size_t)c * 256 : NULL;
        float *dc = dst + (size_t)c * hw;
        const float pad = d->black ? d->black[c] : 0.0f;
        for (int i = 0; i < H; i++) {
            int si = i + dy;
            float *drow = dc + (size_t)i * (size_t)W;
            if (si < 0 || si >= H) {
                for (int j = 0; j < W; j++)
                    drow[j] = pad;
                continue;
            }
            size_t so = (size_t)c * hw + (size_t)si * (size_t)W;
            for (int j = 0; j < W; j++) {
                int sj = (flip ? W - 1 - j : j) + dx;
                drow[j] = sj < 0 || sj >= W ? pad
                          : lut          ? lut[src8[so + (size_t)sj]]
                                         : src[so + (size_t)sj];
            }
        }
    }
}

/* random_resized_crop (d->rrc): each sample cut from its decoded image, see data.h */
static void fill_batch_rrc(const eg_dataset *d, const int32_t *idx, int batch, int augment,
                           eg_rng *rng, float *x, int32_t *y)
{
    const int S = d->rrc, C = d->shape.c;
    const size_t dim = (size_t)d->dim;
    for (int b = 0; b < batch; b++) {
        float *dst = x + (size_t)b * dim;
        y[b] = d->y_train[idx[b]];
        eg_data_img own = {0};
        const eg_data_img *img = &own;
        if (d->stream)
            eg_data_stream_get_img(d->stream, idx[b], &own); /* a failure: eg_data_error */
        else if (d->img_train && d->row && d->row[idx[b]] >= 0)
            img = &d->img_train[d->row[idx[b]]];
        eg_resample_axis ax[2];
        int flip = 0;
        if (!img->pix) { /* failed to decode: reported by eg_data_error, the run stops */
            memset(dst, 0, dim * sizeof *dst);
            continue;
        }
        if (rng) {
            eg_data_box_axes(eg_data_rrc_box(img->w, img->h, rng), S, ax);
            if (augment & EG_AUG_FLIP)
                flip = (int)(eg_rng_next(rng) >> 63);
        } else {
            eg_data_eval_axes(img->w, img->h, d->rrc_eval, S, ax);
        }
        eg_err e;
        if (eg_data_resample(img, ax, C, S, dst, &e) != EG_OK) {
            if (d->stream)
                eg_data_stream_fail(d->stream, e.msg);
            memset(dst, 0, dim * sizeof *dst);
        } else {
            normalise_rows(d, dst, 1);
        }
        for (int r = 0; flip && r < C * S; r++) { /* mirror left-right */
            float *row = dst + (size_t)r * (size_t)S;
            for (int j = 0; j < S / 2; j++) {
                float t = row[j];
                row[j] = row[S - 1 - j];
                row[S - 1 - j] = t;
            }
        }
        free(own.pix);
    }
}

void eg_data_fill_batch(const eg_dataset *d, const int32_t *idx, int batch, int augment,
                        eg_rng *rng, float *x, int32_t *y)
{
    if (d->rrc) {
        fill_batch_rrc(d, idx, batch, augment, rng, x, y);
        return;
    }
    const int H = d->shape.h, W = d->shape.w;
    const size_t dim = (size_t)d->dim;
    /* augmentation only for images of at least 8x8 */
    int aug = (H >= 8 && W >= 8 && rng) ? augment & (EG_AUG_CROP | EG_AUG_FLIP) : 0;
    /* streamed: each sample's raw values into tmp first (bytes, or floats when resized) */
    void *tmp = d->stream ? malloc(dim * (d->is_u8 ? 1 : sizeof(float))) : NULL;
    if (d->stream && !tmp) {
        eg_data_stream_fail(d->stream, "out of memory for a streamed minibatch");
        memset(x, 0, (size_t)batch * dim * sizeof *x);
        return;
    }
    for (int b = 0; b < batch; b++) {
        size_t r = d->row ? (size_t)d->row[idx[b]] : (size_t)idx[b];
        const uint8_t *src8 = d->u8_train ? d->u8_train + r * dim : NULL;
        /* streamed data has no x_train: no offset on a null pointer (UB; found by fuzz_jpeg) */
        const float *src = src8 || !d->x_train ? NULL : d->x_train + r * dim;
        if (tmp) {
            eg_data_stream_get(d->stream, idx[b], tmp); /* a failure: eg_data_error */
            if (!d->is_u8)
                normalise_rows(d, tmp, 1);
            src8 = d->is_u8 ? tmp : NULL;
            src = d->is_u8 ? NULL : tmp;
        }
        float *dst = x + (size_t)b * dim;
        y[b] = d->y_train[idx[b]];
        if (!aug) {
            if (src)
                memcpy(dst, src, dim * sizeof *dst);
            else
                bytes_to_floats(d, src8, 1, dst);
            continue;
        }
        int dy = 0, dx = 0, flip = 0; /* source = output position + (dy, dx) */
        if (aug & EG_AUG_CROP) {
            dy = (int)eg_rng_below(rng, 2 * CROP_PAD + 1) - CROP_PAD;
            dx = (int)eg_rng_below(rng, 2 * CROP_PAD + 1) - CROP_PAD;
        }
        if (aug & EG_AUG_FLIP)
            flip = (int)(eg_rng_next(rng) >> 63);
        aug_sample(d, src8, src, dy, dx, flip, dst);
    }
    free(tmp);
}
