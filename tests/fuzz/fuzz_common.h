/* fuzz_common.h - helpers shared by the libFuzzer harnesses in tests/fuzz/ (header-only:
 * each harness is one translation unit linked with the lib/ sources it exercises).
 *
 * Every harness works in a private temporary directory made on first use (one per fuzzing
 * process, so -fork/-jobs are fine) and removed at exit. The loaders take paths, so the
 * fuzz input is written as one file of an otherwise valid data set.
 *
 * Invariants the harnesses check beyond "no crash" (a violation calls abort(), which
 * libFuzzer reports as a crash and saves the input):
 *  - a failing loader fills err.msg with a non-empty message and returns EG_EINPUT or
 *    EG_ERUN, nothing else;
 *  - with EG_FUZZ_STRICT=1 in the environment, EG_ERUN (out of memory) on an input of a few
 *    kilobytes is a failure too, and so is any single allocation above 1 GiB: a bad header
 *    must not make the loader allocate gigabytes.
 */
#ifndef EG_FUZZ_COMMON_H
#define EG_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"
#include "data.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fz_dir[256];

static void fz_rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            char sub[1024];
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                fz_rm_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void fz_cleanup(void)
{
    if (fz_dir[0])
        fz_rm_tree(fz_dir);
}

/* The private directory (made once). */
static const char *fz_tmpdir(void)
{
    if (!fz_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/egfuzz.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(fz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_dir;
}

/* mkdir -p for a path under the private directory */
static void fz_mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
    mkdir(tmp, 0700);
}

/* Writes bytes to dir/rel (parents made). */
static void fz_write(const char *rel, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), rel);
    char *slash = strrchr(path, '/');
    *slash = 0;
    fz_mkdirs(path);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    if (len && fwrite(data, 1, len, f) != len) {
        perror(path);
        abort();
    }
    if (fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static void fz_unlink(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), rel);
    unlink(path);
}

/* Full path of rel under the private directory (static buffer per call site is fine). */
static void fz_path(const char *rel, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", fz_tmpdir(), rel);
}

static int fz_strict(void)
{
    const char *s = getenv("EG_FUZZ_STRICT");
    return s && *s && strcmp(s, "0") != 0;
}

/* Strict mode: any single allocation above 1 GiB is a finding (the harnesses' inputs are
 * at most a few kilobytes; ASan hands out such blocks lazily, so without this check a
 * loader trusting a header's sizes goes unnoticed). Installed from LLVMFuzzerInitialize. */
void __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                               void (*free_hook)(const volatile void *));
static void fz_malloc_hook(const volatile void *p, size_t size)
{
    (void)p;
    if (size > ((size_t)1 << 30)) {
        fprintf(stderr, "strict: an allocation of %zu bytes for a fuzz input of a few KB\n", size);
        abort();
    }
}
static void fz_free_hook(const volatile void *p) { (void)p; }

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (fz_strict())
        __sanitizer_install_malloc_and_free_hooks(fz_malloc_hook, fz_free_hook);
    return 0;
}

/* Checks a library result against the invariants above. */
static void fz_check_rc(int rc, const eg_err *err, const char *what)
{
    if (rc == EG_OK)
        return;
    if (rc != EG_EINPUT && rc != EG_ERUN) {
        fprintf(stderr, "%s: unexpected return code %d (%s)\n", what, rc, err->msg);
        abort();
    }
    if (!err->msg[0] || memchr(err->msg, '\0', sizeof err->msg) == NULL) {
        fprintf(stderr, "%s: error %d without a message\n", what, rc);
        abort();
    }
    if (rc == EG_ERUN && fz_strict()) {
        fprintf(stderr, "%s: EG_ERUN on a small input: %s\n", what, err->msg);
        abort();
    }
}

/* eg_data_load of spec s (2 nodes, seed 1), its result checked by fz_check_rc; `what` names
 * the loader in a failure. Returns the code. */
static int fz_load(eg_dataset *d, const eg_data_spec *s, const char *what)
{
    eg_err err;
    memset(&err, 0, sizeof err);
    int rc = eg_data_load(d, s, 2, 1, &err);
    fz_check_rc(rc, &err, what);
    return rc;
}

/* a loaded dataset has both splits, features and at most max_classes classes */
static void fz_check_sizes(const eg_dataset *d, int max_classes)
{
    if (d->n_train < 1 || d->n_test < 1 || d->dim < 1 || d->classes < 1 || d->classes > max_classes) {
        fprintf(stderr, "implausible dataset: %d train, %d test, dim %d, %d classes\n", d->n_train,
                d->n_test, d->dim, d->classes);
        abort();
    }
}

/* every partition of the loaded dataset over 2 nodes: a clean result or a clean error, and
 * never more samples handed out than there are (s->partition is overwritten) */
static void fz_check_partitions(const eg_dataset *d, eg_data_spec *s)
{
    static const eg_partition_kind parts[] = {EG_PART_IID, EG_PART_SORTED, EG_PART_DIRICHLET};
    for (int p = 0; p < 3; p++) {
        s->partition = parts[p];
        eg_partition part;
        eg_err err;
        memset(&err, 0, sizeof err);
        int prc = eg_partition_make(&part, d, s, 2, 1, &err);
        fz_check_rc(prc, &err, "eg_partition_make");
        if (prc == EG_OK && part.offset[2] > d->n_train) {
            fprintf(stderr, "partition hands out %d of %d samples\n", part.offset[2], d->n_train);
            abort();
        }
        eg_partition_free(&part);
    }
}

/* the per-rank path of spec s: open, a dirichlet partition over 2 nodes, then rank 1 of 2
 * reads node 1's samples (rank 0 would also sum the unowned ones) and normalises: a clean
 * result or a clean error, the rank holding node 1's shard and reading no other sample but
 * sample 0 */
static void fz_check_rank(eg_data_spec s)
{
    eg_dataset d;
    eg_partition p;
    eg_err err;
    memset(&err, 0, sizeof err);
    memset(&p, 0, sizeof p);
    s.partition = EG_PART_DIRICHLET;
    int rc = eg_data_open(&d, &s, 2, 1, &err);
    fz_check_rc(rc, &err, "eg_data_open");
    if (rc == EG_OK && eg_partition_make(&p, &d, &s, 2, 1, &err) == EG_OK) {
        long long before = eg_data_samples_read();
        rc = eg_data_read(&d, &p, 1, 2, 0, &err);
        fz_check_rc(rc, &err, "eg_data_read (rank 1 of 2)");
        long long own = p.offset[2] - p.offset[1], reads = eg_data_samples_read() - before;
        if (rc == EG_OK && (d.n_held != own || (d.src && reads > own + 1))) {
            fprintf(stderr, "rank 1 holds %d and read %lld samples; node 1 owns %lld\n", d.n_held,
                    reads, own);
            abort();
        }
        if (rc == EG_OK) {
            rc = eg_data_normalise(&d, &err);
            fz_check_rc(rc, &err, "eg_data_normalise");
        }
    }
    eg_partition_free(&p);
    eg_data_free(&d);
}

#endif
