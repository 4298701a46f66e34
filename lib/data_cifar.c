/* data_cifar.c - cifar10 and cifar100: the binary versions as their authors distribute them
 * (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 binary version" and "CIFAR-100
 * binary version").
 *
 *   cifar10:  DIR/data_batch_1.bin .. DIR/data_batch_5.bin (training), DIR/test_batch.bin;
 *             a record is 1 label byte (0..9) + 3072 pixel bytes.
 *   cifar100: DIR/train.bin, DIR/test.bin; a record is 1 coarse label byte (0..19) + 1 fine
 *             label byte (0..99) + 3072 pixel bytes. The FINE labels are used (100 classes).
 *
 * DIR may also be the parent of the archives' own folder (DIR/cifar-10-batches-bin/ or
 * DIR/cifar-100-binary/). The 3072 pixel bytes are a 3x32x32 image, channel-major (the red
 * plane, then green, then blue; each plane row-major), which is exactly the C x H x W layout
 * of a sample: they are copied as raw 0..255 values and eg_data_load normalises them per
 * channel. A file's record count is its size / record size (the real files hold 10000
 * records each; any whole number is accepted, so that tests can write small sets), but every
 * file of the set must be there.
 *
 * Errors (EG_EINPUT, naming the file): missing file, empty file, size not a whole number of
 * records (a truncated download), a label out of range (naming the record, counted from 1),
 * a read error.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072 /* 3 x 32 x 32 */
#define CIFAR_FILE_RECORDS 10000 /* per file as distributed (batches; CIFAR-100 test) */
#define CIFAR_MAX_FILES 5

typedef struct cifar_kind {
    const char *name;      /* "CIFAR-10" */
    const char *subdir;    /* the archive's folder */
    int label_bytes;       /* 1 or 2; the label used is the last one */
    int classes;           /* 10 or 100 */
    int coarse_classes;    /* cifar100: range of the first label byte (20); 0: none */
    const char *train[CIFAR_MAX_FILES + 1];
    const char *test;
    long train_records;    /* as distributed, for the messages */
    long test_records;
} cifar_kind;

static const cifar_kind cifar10 = {
    "CIFAR-10", "cifar-10-batches-bin", 1, 10, 0,
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
     "data_batch_5.bin", NULL},
    "test_batch.bin", 10000, 10000};
static const cifar_kind cifar100 = {
    "CIFAR-100", "cifar-100-binary", 2, 100, 20, {"train.bin", NULL}, "test.bin", 50000, 10000};

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds the directory holding the set: dir itself or dir/<subdir>, whichever holds the
 * first training file. Fills base (room for EG_PATH_MAX + 64 bytes). */
static int cifar_find(const cifar_kind *k, const char *dir, char *base, size_t len, eg_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s: not a directory (%s is a directory holding %s .. %s, or its "
                          "parent with %s/)",
                          dir, k->name, k->train[0], k->test, k->subdir);
    char probe[EG_PATH_MAX + 128];
    snprintf(probe, sizeof probe, "%s/%s", dir, k->train[0]);
    if (!is_regular(probe)) {
        snprintf(probe, sizeof probe, "%s/%s/%s", dir, k->subdir, k->train[0]);
        if (is_regular(probe)) {
            snprintf(base, len, "%s/%s", dir, k->subdir);
            return EG_OK;
        }
    }
    snprintf(base, len, "%s", dir);
    return EG_OK;
}

/* Size in records of path, checked: exists, not empty, a whole number of records. */
static int cifar_count(const cifar_kind *k, const char *path, long expect, size_t *records,
                       eg_err *err)
{
    size_t rec = (size_t)k->label_bytes + CIFAR_PIXELS;
    struct stat st;
    if (stat(path, &st) != 0)
        return eg_err_set(err, EG_EINPUT,
                          "%s: %s (a %s set has %s%s%s and %s; get the binary version from "
                          "https://www.cs.toronto.edu/~kriz/cifar.html, see data/README.md)",
                          path, strerror(errno), k->name, k->train[0], k->train[1] ? " .. " : "",
                          k->train[1] ? k->train[4] : "", k->test);
    if (!S_ISREG(st.st_mode))
        return eg_err_set(err, EG_EINPUT, "%s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    if (size == 0 || size % rec != 0)
        return eg_err_set(err, EG_EINPUT,
                          "%s: truncated or not a %s file: %zu bytes is not a whole number of "
                          "%zu-byte records (%zu records and %zu bytes; as distributed the "
                          "file holds %ld records, %ld bytes)",
                          path, k->name, size, rec, size / rec, size % rec, expect,
                          expect * (long)rec);
    if (size / rec > (size_t)INT32_MAX / 4)
        return eg_err_set(err, EG_EINPUT, "%s: %zu records is too many", path, size / rec);
    *records = size / rec;
    return EG_OK;
}

/* Reads `records` records of path: labels into y (checked), pixels into x (records x 3072
 * bytes) unless x is NULL. */
static int cifar_read(const cifar_kind *k, const char *path, size_t records, uint8_t *x, int32_t *y,
                      eg_err *err)
{
    enum { CHUNK = 256 };
    size_t rec = (size_t)k->label_bytes + CIFAR_PIXELS;
    uint8_t *buf = eg_malloc(CHUNK * rec, err);
    if (!buf)
        return EG_ERUN;
    FILE *f = fopen(path, "rb");
    int rc = EG_OK;
    if (!f)
        rc = eg_err_set(err, EG_EINPUT, "%s: %s", path, strerror(errno));
    for (size_t done = 0; rc == EG_OK && done < records;) {
        size_t n = records - done < CHUNK ? records - done : CHUNK;
        size_t got = fread(buf, rec, n, f);
        if (got != n) {
            rc = eg_err_set(err, EG_EINPUT, "%s: %s after %zu of %zu records", path,
                            ferror(f) ? "read error" : "truncated (the file shrank while read)",
                            done + got, records);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const uint8_t *r = buf + i * rec;
            if (k->coarse_classes && r[0] >= k->coarse_classes) {
                rc = eg_err_set(err, EG_EINPUT,
                                "%s: record %zu of %zu has coarse label %d, outside 0..%d "
                                "(not a %s file?)",
                                path, done + i + 1, records, r[0], k->coarse_classes - 1,
                                k->name);
                break;
            }
            int label = r[k->label_bytes - 1];
            if (label >= k->classes) {
                rc = eg_err_set(err, EG_EINPUT,
                                "%s: record %zu of %zu has %slabel %d, outside 0..%d (not a %s "
                                "file?)",
                                path, done + i + 1, records, k->coarse_classes ? "fine " : "",
                                label, k->classes - 1, k->name);
                break;
            }
            y[done + i] = label;
            if (x)
                memcpy(x + (done + i) * CIFAR_PIXELS, r + k->label_bytes, CIFAR_PIXELS);
        }
        done += n;
    }
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

/* the training records, read after the partition: the wanted ones in windows of up to
 * EG_DATA_READ_WINDOW bytes, each window one read */
typedef struct cifar_src {
    eg_data_src base;
    const cifar_kind *k;
    int nfiles;
    char paths[CIFAR_MAX_FILES][EG_PATH_MAX + 128];
    size_t counts[CIFAR_MAX_FILES];
} cifar_src;

static int cifar_read_train(eg_dataset *d, eg_data_src *base, eg_err *err)
{
    cifar_src *c = (cifar_src *)base;
    size_t rec = (size_t)c->k->label_bytes + CIFAR_PIXELS, most = 0;
    for (int i = 0; i < c->nfiles; i++)
        most = c->counts[i] > most ? c->counts[i] : most;
    size_t cap = eg_data_read_window(rec, most);
    uint8_t *buf = eg_malloc(cap, err);
    if (!buf)
        return EG_ERUN;
    int32_t s0 = 0; /* the file's first sample */
    int rc = EG_OK;
    for (int i = 0; rc == EG_OK && i < c->nfiles; s0 += (int32_t)c->counts[i], i++) {
        FILE *f = NULL;
        const uint8_t *want = d->want + s0;
        int32_t n = (int32_t)c->counts[i];
        for (int32_t r = 0, last; rc == EG_OK && r < n; r = last + 1) {
            if (!want[r]) {
                last = r;
                continue;
            }
            last = eg_data_read_span(want, r, n, rec, cap);
            size_t k = (size_t)(last + 1 - r), got = 0;
            if (!f && !(f = fopen(c->paths[i], "rb"))) {
                rc = eg_err_set(err, EG_EINPUT, "%s: %s", c->paths[i], strerror(errno));
            } else if (fseek(f, (long)((size_t)r * rec), SEEK_SET) != 0 ||
                       (got = fread(buf, rec, k, f)) != k) {
                rc = eg_err_set(err, EG_EINPUT, "%s: record %zu of %zu: %s", c->paths[i],
                                (size_t)r + got + 1, c->counts[i],
                                ferror(f) ? "read error" : "truncated (the file shrank)");
            } else {
                for (int32_t t = r; rc == EG_OK && t <= last; t++)
                    if (want[t])
                        rc = eg_data_take_u8(d, s0 + t,
                                             buf + (size_t)(t - r) * rec + c->k->label_bytes, err);
            }
        }
        if (f)
            fclose(f);
    }
    free(buf);
    return rc;
}

static void cifar_src_free(eg_data_src *base) { free(base); }

int eg_data_open_cifar(eg_dataset *d, const char *dir, int classes, eg_err *err)
{
    const cifar_kind *k = classes == 100 ? &cifar100 : &cifar10;
    char base[EG_PATH_MAX + 64];
    int rc = cifar_find(k, dir, base, sizeof base, err);
    if (rc != EG_OK)
        return rc;
    cifar_src *src = eg_calloc(1, sizeof *src, err);
    if (!src)
        return EG_ERUN;
    src->k = k;
    src->base.read = cifar_read_train;
    src->base.free = cifar_src_free;
    d->src = &src->base;
    char test[EG_PATH_MAX + 128];
    size_t ntr = 0, nte = 0;
    for (int i = 0; k->train[i]; i++, src->nfiles++) {
        snprintf(src->paths[i], sizeof src->paths[i], "%s/%s", base, k->train[i]);
        long expect = k->train[1] ? CIFAR_FILE_RECORDS : k->train_records;
        if ((rc = cifar_count(k, src->paths[i], expect, &src->counts[i], err)) != EG_OK)
            return rc;
        ntr += src->counts[i];
    }
    snprintf(test, sizeof test, "%s/%s", base, k->test);
    if ((rc = cifar_count(k, test, k->test_records, &nte, err)) != EG_OK)
        return rc;
    if (ntr > (size_t)INT32_MAX / 4)
        return eg_err_set(err, EG_EINPUT, "%s: %zu training records is too many", base, ntr);

    d->shape = (eg_shape){3, 32, 32};
    d->dim = CIFAR_PIXELS;
    d->classes = k->classes;
    d->n_train = (int)ntr;
    d->n_test = (int)nte;
    d->is_u8 = 1;
    d->u8_test = eg_data_alloc_bytes(nte * CIFAR_PIXELS, err);
    d->y_train = eg_malloc(ntr * sizeof *d->y_train, err);
    d->y_test = eg_malloc(nte * sizeof *d->y_test, err);
    if (!d->u8_test || !d->y_train || !d->y_test)
        return EG_ERUN;
    /* the labels sit between the pixels: reading them streams every training file once */
    size_t at = 0;
    for (int i = 0; i < src->nfiles; i++) {
        if ((rc = cifar_read(k, src->paths[i], src->counts[i], NULL, d->y_train + at, err)))
            return rc;
        at += src->counts[i];
    }
    return cifar_read(k, test, nte, d->u8_test, d->y_test, err);
}
