/* data_idx.c - idx files (LeCun's MNIST format): mnist, fashion_mnist and generic idx.
 *
 * A directory holds four files, each raw or gzipped (zlib reads both):
 *   train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
 * Also accepted: a '.' instead of the '-' before "idx" (train-images.idx3-ubyte), "test-"
 * instead of "t10k-", and idx4 image files (N x C x H x W, channels first) named *-idx4-ubyte.
 * Images: magic 0x00000803 (N x H x W) or 0x00000804 (N x C x H x W), unsigned bytes;
 * labels: magic 0x00000801 (N), unsigned bytes. classes = max label + 1 over both splits.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct idx_file {
    char path[EG_PATH_MAX + 64];
    gzFile g; /* open after idx_open, positioned at the payload */
    int nd;   /* number of dimensions */
    uint32_t dims[4];
    size_t count; /* product of dims = payload bytes */
} idx_file;

/* Finds the file for split ("train"/"t10k") and kind ("images"/"labels") in dir. */
static int idx_find(const char *dir, int test, int labels, char *out, size_t outlen, eg_err *err)
{
    static const char *const train_pre[] = {"train", NULL};
    static const char *const test_pre[] = {"t10k", "test", NULL};
    static const char *const seps[] = {"-", ".", NULL};
    static const char *const exts[] = {"", ".gz", NULL};
    const char *const *pres = test ? test_pre : train_pre;
    const char *kind = labels ? "labels" : "images";
    int nds[2] = {labels ? 1 : 3, labels ? 0 : 4};
    for (int p = 0; pres[p]; p++)
        for (int n = 0; n < 2 && nds[n]; n++)
            for (int s = 0; seps[s]; s++)
                for (int e = 0; exts[e]; e++) {
                    int len = snprintf(out, outlen, "%s/%s-%s%sidx%d-ubyte%s", dir, pres[p], kind,
                                       seps[s], nds[n], exts[e]);
                    struct stat st;
                    if (len > 0 && (size_t)len < outlen && stat(out, &st) == 0 &&
                        S_ISREG(st.st_mode))
                        return EG_OK;
                }
    struct stat st;
    if (stat(dir, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s is not a directory (an idx dataset is a directory holding "
                          "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                          "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, raw or .gz)",
                          dir);
    return eg_err_set(err, EG_EINPUT,
                      "%s: no %s-%s-idx%d-ubyte (or .gz) found; an idx dataset directory holds "
                      "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte "
                      "and t10k-labels-idx1-ubyte, raw or .gz",
                      dir, test ? "t10k" : "train", kind, labels ? 1 : 3);
}

/* Reads up to n bytes; *got receives how many were read. Returns 0, or -1 on a zlib error
 * (err filled; a gzip stream that ends early is reported as truncated). */
static int gz_read_all(gzFile f, const char *path, void *buf, size_t n, size_t *got, eg_err *err)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(f, (char *)buf + done, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            *got = done;
            if (zerr == Z_BUF_ERROR)
                eg_err_set(err, EG_EINPUT, "%s: truncated (the gzip stream ends early)", path);
            else
                eg_err_set(err, EG_EINPUT, "%s: corrupt gzip data (%s)", path,
                           zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* Opens f->path and reads its header (nd_min <= nd <= nd_max unsigned-byte dimensions);
 * leaves f->g positioned at the payload (closed by idx_close, also on error). */
static int idx_open(idx_file *f, int nd_min, int nd_max, eg_err *err)
{
    errno = 0;
    f->g = gzopen(f->path, "rb");
    if (!f->g)
        return eg_err_set(err, EG_EINPUT, "%s: cannot open (%s)", f->path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(f->g, 1u << 18);
    uint8_t head[4 + 4 * 4];
    size_t got;
    if (gz_read_all(f->g, f->path, head, 4, &got, err) != 0)
        return EG_EINPUT;
    if (got < 4)
        return eg_err_set(err, EG_EINPUT, "%s: truncated (%zu bytes, no idx header)", f->path, got);
    if (head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > 4)
        return eg_err_set(err, EG_EINPUT,
                          "%s: not an idx file (magic number 0x%02x%02x%02x%02x; expected "
                          "0x0000080%d)",
                          f->path, head[0], head[1], head[2], head[3], nd_min);
    if (head[2] != 0x08)
        return eg_err_set(err, EG_EINPUT,
                          "%s: idx element type 0x%02x is not supported (only unsigned bytes, "
                          "0x08)",
                          f->path, head[2]);
    f->nd = head[3];
    if (f->nd < nd_min || f->nd > nd_max)
        return eg_err_set(err, EG_EINPUT, "%s: has %d dimensions, expected %s", f->path, f->nd,
                          nd_min == 1 ? "1 (labels)" : "3 (N x H x W) or 4 (N x C x H x W)");
    if (gz_read_all(f->g, f->path, head + 4, 4 * (size_t)f->nd, &got, err) != 0)
        return EG_EINPUT;
    if (got < 4 * (size_t)f->nd)
        return eg_err_set(err, EG_EINPUT, "%s: truncated (the idx header is incomplete)", f->path);
    f->count = 1;
    for (int k = 0; k < f->nd; k++) {
        const uint8_t *b = head + 4 + 4 * k;
        f->dims[k] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (f->dims[k] > INT32_MAX || (k > 0 && f->dims[k] == 0))
            return eg_err_set(err, EG_EINPUT, "%s: implausible dimension %u in the idx header",
                              f->path, (unsigned)f->dims[k]);
        if (f->dims[k] && f->count > ((size_t)1 << 40) / f->dims[k])
            return eg_err_set(err, EG_EINPUT, "%s: idx header describes more than 2^40 bytes",
                              f->path);
        f->count *= f->dims[k];
    }
    /* a header promising more than the file can hold is a truncated (or hostile) file:
     * refuse it before allocating for it. Raw files must hold the bytes; gzip cannot
     * inflate by more than ~1032:1. */
    struct stat st;
    if (stat(f->path, &st) == 0 && st.st_size >= 0) {
        size_t have = (size_t)st.st_size, hdr = 4 + 4 * (size_t)f->nd;
        int raw = gzdirect(f->g);
        size_t most = raw ? (have > hdr ? have - hdr : 0) : have * 1032 + 4096;
        if (f->count > most)
            return eg_err_set(err, EG_EINPUT,
                              "%s: truncated: the header promises %zu bytes of data (%u items) "
                              "but the file %s %zu",
                              f->path, f->count, (unsigned)f->dims[0],
                              raw ? "holds" : "is a gzip stream of", have);
    }
    return EG_OK;
}

static void idx_close(idx_file *f)
{
    if (f->g)
        gzclose_r(f->g);
    f->g = NULL;
}

/* Reads the payload of an open file in chunks through buf (cap bytes), into xb (bytes) or
 * yi (int32, also tracking the maximum in *maxl); then checks that nothing follows. */
static int idx_payload(idx_file *f, uint8_t *buf, size_t cap, uint8_t *xb, int32_t *yi, int *maxl,
                       eg_err *err)
{
    size_t done = 0, got;
    while (done < f->count) {
        size_t want = f->count - done < cap ? f->count - done : cap;
        if (gz_read_all(f->g, f->path, buf, want, &got, err) != 0)
            return EG_EINPUT;
        if (xb) {
            memcpy(xb + done, buf, got);
        } else {
            int32_t *dst = yi + done;
            for (size_t k = 0; k < got; k++) {
                dst[k] = buf[k];
                if (buf[k] > *maxl)
                    *maxl = buf[k];
            }
        }
        done += got;
        if (got < want)
            return eg_err_set(err, EG_EINPUT,
                              "%s: truncated: the header promises %zu bytes of data (%u items) "
                              "but the file holds %zu",
                              f->path, f->count, (unsigned)f->dims[0], done);
    }
    if (gz_read_all(f->g, f->path, buf, 1, &got, err) != 0)
        return EG_EINPUT;
    if (got)
        return eg_err_set(err, EG_EINPUT,
                          "%s: longer than its idx header says (%u items): not an idx file or "
                          "a wrong header",
                          f->path, (unsigned)f->dims[0]);
    return EG_OK;
}

/* One split: both files found and their headers read and checked against each other. */
static int idx_split(const char *dir, int test, idx_file *img, idx_file *lab, eg_err *err)
{
    int rc = idx_find(dir, test, 0, img->path, sizeof img->path, err);
    if (rc == EG_OK)
        rc = idx_find(dir, test, 1, lab->path, sizeof lab->path, err);
    if (rc == EG_OK)
        rc = idx_open(img, 3, 4, err);
    if (rc == EG_OK)
        rc = idx_open(lab, 1, 1, err);
    if (rc == EG_OK && lab->dims[0] != img->dims[0])
        rc = eg_err_set(err, EG_EINPUT, "%s has %u labels but %s has %u images", lab->path,
                        (unsigned)lab->dims[0], img->path, (unsigned)img->dims[0]);
    return rc;
}

static void shape_of(const idx_file *f, eg_shape *s)
{
    s->c = f->nd == 4 ? (int)f->dims[1] : 1;
    s->h = (int)f->dims[f->nd - 2];
    s->w = (int)f->dims[f->nd - 1];
}

/* the training images, read after the partition: the wanted samples in windows of up to
 * EG_DATA_READ_WINDOW bytes, each window one read (raw files seek to it, gzip streams are
 * inflated once, front to back: gzseek forward) */
typedef struct idx_src {
    eg_data_src base;
    idx_file img; /* path, header */
} idx_src;

static int idx_read(eg_dataset *d, eg_data_src *base, eg_err *err)
{
    idx_src *x = (idx_src *)base;
    idx_file *f = &x->img;
    size_t dim = (size_t)d->dim, hdr = 4 + 4 * (size_t)f->nd, got;
    size_t cap = eg_data_read_window(dim, (size_t)d->n_train);
    uint8_t *buf = eg_malloc(cap, err);
    if (!buf)
        return EG_ERUN;
    int rc = idx_open(f, 3, 4, err);
    for (int32_t s = 0, last; rc == EG_OK && s < d->n_train; s = last + 1) {
        if (!d->want[s]) {
            last = s;
            continue;
        }
        last = eg_data_read_span(d->want, s, d->n_train, dim, cap);
        size_t len = (size_t)(last + 1 - s) * dim;
        if (gzseek(f->g, (z_off_t)(hdr + (size_t)s * dim), SEEK_SET) < 0) {
            rc = eg_err_set(err, EG_EINPUT, "%s: cannot reach sample %d (truncated or corrupt)",
                            f->path, (int)s + 1);
        } else if (gz_read_all(f->g, f->path, buf, len, &got, err) != 0) {
            rc = EG_EINPUT; /* the message names the file */
        } else if (got < len) {
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: truncated: sample %d of %u is cut short (%zu of %zu bytes)",
                            f->path, (int)(s + (int32_t)(got / dim)) + 1, (unsigned)f->dims[0],
                            got % dim, dim);
        } else if (last + 1 == d->n_train && gz_read_all(f->g, f->path, buf, 1, &got, err) == 0 &&
                   got) {
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: longer than its idx header says (%u items): not an idx file or "
                            "a wrong header",
                            f->path, (unsigned)f->dims[0]);
        } else {
            for (int32_t t = s; rc == EG_OK && t <= last; t++)
                if (d->want[t])
                    rc = eg_data_take_u8(d, t, buf + (size_t)(t - s) * dim, err);
        }
    }
    idx_close(f);
    free(buf);
    return rc;
}

static void idx_src_free(eg_data_src *base)
{
    idx_src *x = (idx_src *)base;
    idx_close(&x->img);
    free(x);
}

int eg_data_open_idx(eg_dataset *d, const char *dir, eg_err *err)
{
    idx_file f[4]; /* train images, train labels, test images, test labels */
    memset(f, 0, sizeof f);
    uint8_t *buf = NULL;
    const size_t cap = (size_t)1 << 20;
    int rc = idx_split(dir, 0, &f[0], &f[1], err);
    if (rc == EG_OK)
        rc = idx_split(dir, 1, &f[2], &f[3], err);
    eg_shape tr = {0, 0, 0}, te = {0, 0, 0};
    if (rc == EG_OK) {
        shape_of(&f[0], &tr);
        shape_of(&f[2], &te);
        if (tr.c != te.c || tr.h != te.h || tr.w != te.w)
            rc = eg_err_set(err, EG_EINPUT, "%s holds %dx%dx%d images but %s holds %dx%dx%d",
                            f[2].path, te.c, te.h, te.w, f[0].path, tr.c, tr.h, tr.w);
    }
    if (rc == EG_OK && (size_t)tr.c * (size_t)tr.h * (size_t)tr.w > INT32_MAX)
        rc = eg_err_set(err, EG_EINPUT, "%s: images of %dx%dx%d are too large", f[0].path, tr.c,
                        tr.h, tr.w);
    idx_src *src = NULL;
    if (rc == EG_OK) {
        d->shape = tr;
        d->dim = tr.c * tr.h * tr.w;
        d->n_train = (int)f[0].dims[0];
        d->n_test = (int)f[2].dims[0];
        d->is_u8 = 1;
        d->u8_test = eg_data_alloc_bytes(f[2].count, err);
        d->y_train = eg_malloc((size_t)d->n_train * sizeof *d->y_train, err);
        d->y_test = eg_malloc((size_t)d->n_test * sizeof *d->y_test, err);
        buf = eg_malloc(cap, err);
        src = eg_calloc(1, sizeof *src, err);
        if (!d->u8_test || !d->y_train || !d->y_test || !buf || !src)
            rc = EG_ERUN;
    }
    int maxl = 0;
    if (rc == EG_OK)
        rc = idx_payload(&f[1], buf, cap, NULL, d->y_train, &maxl, err);
    if (rc == EG_OK)
        rc = idx_payload(&f[2], buf, cap, d->u8_test, NULL, NULL, err);
    if (rc == EG_OK)
        rc = idx_payload(&f[3], buf, cap, NULL, d->y_test, &maxl, err);
    if (rc == EG_OK)
        d->classes = maxl + 1;
    for (int k = 0; k < 4; k++)
        idx_close(&f[k]);
    free(buf);
    if (src) {
        src->img = f[0]; /* the path and header; reopened by idx_read */
        src->base.read = idx_read;
        src->base.free = idx_src_free;
        d->src = &src->base;
    }
    return rc;
}
