/* ckpt.c - checkpoint files (see ckpt.h for the layout). */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[8] = {'E', 'G', 'C', 'K', 'P', 'T', 0, 1};
#define CKPT_VERSION 2u
#define CKPT_VERSION_TMODEL 3u /* version 2 + the time model block after the header */

/* The header after MAGIC, in file order (fields are written one by one, native byte order,
 * no padding): the X-macro keeps the writer, the reader and the size in step. */
typedef struct ckhdr {
    uint32_t version;
    uint64_t spec_hash;
    int64_t iter;
    int32_t nodes, lo, hi; /* the writer's node range [lo, hi) */
    uint64_t dim;
    double bytes_sent, train_time;
    int64_t rows_since;
    double bytes_inter; /* version 2 */
} ckhdr;
#define CKHDR_FIELDS(X) \
    X(version) X(spec_hash) X(iter) X(nodes) X(lo) X(hi) X(dim) X(bytes_sent) X(train_time) X(rows_since) \
    X(bytes_inter)
#define CKHDR_SIZE(f) +sizeof(((ckhdr *)0)->f)
#define HDR_BYTES (sizeof MAGIC CKHDR_FIELDS(CKHDR_SIZE))
_Static_assert(HDR_BYTES == 80, "the version-2 header is 80 bytes");
/* a node record starts with node id, vector count, shard size, cursor */
typedef int32_t ckrec[4];

/* zlib's crc32 takes uInt lengths */
static uLong crc_bytes(uLong crc, const unsigned char *b, size_t n)
{
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

typedef struct wbuf {
    FILE *f;
    uLong crc;
    int bad; /* errno of the first failed write */
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->bad)
        return;
    if (fwrite(p, 1, n, w->f) != n) {
        w->bad = errno ? errno : EIO;
        return;
    }
    w->crc = crc_bytes(w->crc, p, n);
}

static int sync_dir(const char *dir)
{
    FILE *d = fopen(dir, "r");
    if (!d)
        return -1;
    fsync(fileno(d));
    fclose(d);
    return 0;
}

int eg_ckpt_exists(const char *dir)
{
    char p[EG_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/ckpt/LATEST", dir);
    struct stat st;
    return stat(p, &st) == 0;
}

void eg_ckpt_remove(const char *dir)
{
    char p[EG_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/ckpt", dir);
    DIR *d = opendir(p);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char f[EG_PATH_MAX + 320];
        snprintf(f, sizeof f, "%s/%s", p, e->d_name);
        unlink(f);
    }
    closedir(d);
    rmdir(p);
}

/* the iteration of a "<iter>.<rank>.bin" file of this rank, or -1 */
static long gen_of(const char *name, int rank)
{
    long it;
    int rk;
    char tail[8];
    if (sscanf(name, "%ld.%d.%7s", &it, &rk, tail) == 3 && rk == rank && !strcmp(tail, "bin"))
        return it;
    return -1;
}

/* keeps this rank's two newest generations */
static void prune(const char *ck, int rank)
{
    DIR *d = opendir(ck);
    if (!d)
        return;
    long keep1 = -1, keep2 = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        long it = gen_of(e->d_name, rank);
        if (it > keep1) {
            keep2 = keep1;
            keep1 = it;
        } else if (it > keep2 && it != keep1) {
            keep2 = it;
        }
    }
    rewinddir(d);
    while ((e = readdir(d))) {
        long it = gen_of(e->d_name, rank);
        if (it >= 0 && it != keep1 && it != keep2) {
            char f[EG_PATH_MAX + 320];
            snprintf(f, sizeof f, "%s/%s", ck, e->d_name);
            unlink(f);
        }
    }
    closedir(d);
}

/* eg_write_atomic's fill: this rank's file (header, node records, CRC-32) */
static int fill_ckpt(FILE *f, void *ud)
{
    const eg_ckpt_state *st = ud;
    wbuf w = {f, crc32(0L, Z_NULL, 0), 0};
    ckhdr h = {.version = st->tmodel ? CKPT_VERSION_TMODEL : CKPT_VERSION, .spec_hash = st->spec_hash, .iter = st->ctr->iter,
               .nodes = st->nodes, .lo = st->lo, .hi = st->lo + st->nlocal, .dim = st->dim,
               .bytes_sent = st->ctr->bytes_sent, .train_time = st->ctr->train_time,
               .rows_since = *st->rows_since, .bytes_inter = st->ctr->bytes_inter};
    put(&w, MAGIC, sizeof MAGIC);
#define CKHDR_PUT(f) put(&w, &h.f, sizeof h.f);
    CKHDR_FIELDS(CKHDR_PUT)
#undef CKHDR_PUT
    if (st->tmodel) { /* version 3: iteration, speed, node count, T (timemodel.h) */
        int64_t tk = eg_tmodel_iter(st->tmodel);
        double speed = eg_tmodel_speed(st->tmodel);
        int32_t tn = eg_tmodel_nodes(st->tmodel);
        put(&w, &tk, sizeof tk);
        put(&w, &speed, sizeof speed);
        put(&w, &tn, sizeof tn);
        put(&w, eg_tmodel_times(st->tmodel), sizeof(double) * (size_t)tn);
    }
    float *vecs[8];
    const char *names[8];
    size_t lens[8];
    int nv = eg_algo_state(st->algo, vecs, names, lens, 8);
    for (int li = 0; li < st->nlocal; li++) {
        eg_sampler_node sn = eg_sampler_node_state(st->sampler, li);
        ckrec rec = {st->lo + li, nv, sn.len, *sn.cursor};
        put(&w, rec, sizeof rec);
        for (int v = 0; v < nv; v++)
            put(&w, vecs[v] + (size_t)li * lens[v], lens[v] * sizeof(float));
        put(&w, sn.sample_rng, sizeof(eg_rng));
        put(&w, sn.aug_rng, sizeof(eg_rng));
        put(&w, sn.order, sizeof(int32_t) * (size_t)rec[2]);
        put(&w, &st->loss_acc[li], sizeof(double));
    }
    uint32_t crc = (uint32_t)w.crc;
    if (!w.bad && fwrite(&crc, 4, 1, f) != 1)
        w.bad = errno ? errno : EIO;
    return w.bad;
}

/* rank 0: ck/LATEST names the generation (written last: it makes the generation complete) */
static int write_latest(const char *ck, long iter, int ranks, eg_err *err)
{
    char latest[EG_PATH_MAX + 32], text[64];
    snprintf(latest, sizeof latest, "%s/LATEST", ck);
    snprintf(text, sizeof text, "%ld %d\n", iter, ranks);
    int rc = eg_write_text_atomic(latest, "", 1, text, err);
    if (!rc)
        sync_dir(ck);
    return rc;
}

int eg_ckpt_save(const char *dir, eg_comm *c, const eg_ckpt_state *st, eg_err *err)
{
    int rank = eg_comm_rank(c), rc = EG_OK;
    char ck[EG_PATH_MAX + 16], path[EG_PATH_MAX + 64];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    if (mkdir(ck, 0777) && errno != EEXIST)
        rc = eg_err_set(err, EG_ERUN, "cannot create %s: %s", ck, strerror(errno));
    if (!rc) {
        snprintf(path, sizeof path, "%s/%ld.%d.bin", ck, st->ctr->iter, rank);
        rc = eg_write_atomic(path, "checkpoint ", 1, fill_ckpt, (void *)st, err);
    }
    /* publish only when every rank has its file */
    rc = eg_comm_world_agree(rc, err);
    if (rc)
        return rc;
    if (rank == 0)
        rc = write_latest(ck, st->ctr->iter, eg_comm_size(c), err);
    rc = eg_comm_world_agree(rc, err);
    if (!rc)
        prune(ck, rank);
    return rc;
}

static int read_file(const char *path, unsigned char **buf, size_t *len, eg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return eg_err_set(err, EG_EINPUT, "checkpoint file %s is missing: %s", path, strerror(errno));
    long end;
    if (fseek(f, 0, SEEK_END) || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return eg_err_set(err, EG_EINPUT, "cannot read checkpoint %s", path);
    }
    *len = (size_t)end;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        fclose(f);
        return eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
    }
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    if (got != *len) {
        free(*buf);
        *buf = NULL;
        return eg_err_set(err, EG_EINPUT, "cannot read checkpoint %s", path);
    }
    return EG_OK;
}

/* dir/ckpt/LATEST: the generation's iteration and the rank count that wrote it */
static int read_latest(const char *dir, long *iter, int *ranks, eg_err *err)
{
    char latest[EG_PATH_MAX + 32], line[64] = "", tail[2];
    snprintf(latest, sizeof latest, "%s/ckpt/LATEST", dir);
    FILE *lf = fopen(latest, "r");
    if (!lf)
        return eg_err_set(err, EG_EINPUT, "%s: no checkpoint to resume from", dir);
    int ok = fgets(line, sizeof line, lf) != NULL;
    fclose(lf);
    ok = ok && sscanf(line, "%ld %d %1s", iter, ranks, tail) == 2 && *iter >= 0 && *ranks >= 1;
    if (!ok)
        return eg_err_set(err, EG_EINPUT, "%s is corrupt; start over with --force", latest);
    return EG_OK;
}

/* Checks a whole file read into buf: magic, CRC, version, spec, iteration. Sets the
 * run-wide counters from its header; *pos = where the node records start. */
static int check_file(const char *path, const char *dir, const unsigned char *buf, size_t len,
                      long iter, eg_ckpt_state *st, size_t *pos, eg_err *err)
{
    if (len < HDR_BYTES + 4 || memcmp(buf, MAGIC, sizeof MAGIC))
        return eg_err_set(err, EG_EINPUT, "checkpoint %s is truncated or not a checkpoint", path);
    uint32_t stored;
    memcpy(&stored, buf + len - 4, 4);
    if ((uint32_t)crc_bytes(crc32(0L, Z_NULL, 0), buf, len - 4) != stored)
        return eg_err_set(err, EG_EINPUT,
                          "checkpoint %s is corrupt (checksum mismatch); it was refused. "
                          "The previous checkpoint generation, if any, is still in %s/ckpt; "
                          "start over with --force",
                          path, dir);
    ckhdr h;
    size_t p = sizeof MAGIC;
#define CKHDR_GET(f) memcpy(&h.f, buf + p, sizeof h.f), p += sizeof h.f;
    CKHDR_FIELDS(CKHDR_GET)
#undef CKHDR_GET
    if (h.version != CKPT_VERSION && h.version != CKPT_VERSION_TMODEL)
        return eg_err_set(err, EG_EINPUT,
                          "checkpoint %s has format version %u; this expgraph reads versions %u "
                          "and %u only: resume it with the expgraph that wrote it, or start over "
                          "with --force",
                          path, h.version, CKPT_VERSION, CKPT_VERSION_TMODEL);
    if (h.spec_hash != st->spec_hash || h.dim != st->dim || h.nodes != st->nodes)
        return eg_err_set(err, EG_EINPUT,
                          "checkpoint %s belongs to a different spec (changed keys or --set?); "
                          "resume with the same spec, or start over with --force", path);
    if (h.iter != iter)
        return eg_err_set(err, EG_EINPUT, "checkpoint %s is for iteration %lld, LATEST says %ld",
                          path, (long long)h.iter, iter);
    if ((h.version == CKPT_VERSION_TMODEL) != (st->tmodel != NULL))
        return eg_err_set(err, EG_EINPUT,
                          "checkpoint %s was written %s a time model (cluster:) and this run has "
                          "%s; resume with the spec that wrote it, or start over with --force",
                          path, st->tmodel ? "without" : "with", st->tmodel ? "one" : "none");
    if (st->tmodel) { /* the time model block: iteration, speed, node count, T */
        int64_t tk;
        double speed;
        int32_t tn;
        size_t need = sizeof tk + sizeof speed + sizeof tn;
        if (p + need > len - 4)
            return eg_err_set(err, EG_EINPUT, "checkpoint %s is truncated (time model)", path);
        memcpy(&tk, buf + p, sizeof tk);
        memcpy(&speed, buf + p + sizeof tk, sizeof speed);
        memcpy(&tn, buf + p + sizeof tk + sizeof speed, sizeof tn);
        p += need;
        if (tn != eg_tmodel_nodes(st->tmodel) || tk < 0 || tk > h.iter ||
            p + sizeof(double) * (size_t)tn > len - 4)
            return eg_err_set(err, EG_EINPUT, "checkpoint %s: inconsistent time model state", path);
        double *T = malloc(sizeof(double) * (size_t)tn);
        if (!T)
            return eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
        memcpy(T, buf + p, sizeof(double) * (size_t)tn);
        p += sizeof(double) * (size_t)tn;
        eg_tmodel_restore(st->tmodel, (long)tk, T, speed);
        free(T);
    }
    st->ctr->bytes_sent = h.bytes_sent;
    st->ctr->bytes_inter = h.bytes_inter;
    st->ctr->train_time = h.train_time;
    st->ctr->iter = iter;
    *st->rows_since = h.rows_since;
    *pos = p;
    return EG_OK;
}

/* Reads node (local index li) from the records at *pos onwards (skipping others). */
static int read_node(const char *path, const unsigned char *buf, size_t len, size_t *pos,
                     int li, float **vecs, const size_t *lens, int nv, eg_ckpt_state *st,
                     eg_err *err)
{
    const int node = st->lo + li;
    size_t floats = 0; /* per node, all vectors */
    for (int v = 0; v < nv; v++)
        floats += lens[v];
    for (;;) {
        ckrec rec;
        if (*pos + sizeof rec > len - 4)
            return eg_err_set(err, EG_EINPUT, "checkpoint %s has no record for node %d", path, node);
        memcpy(rec, buf + *pos, sizeof rec);
        size_t need = sizeof rec + (rec[1] == nv ? floats : 0) * sizeof(float) +
                      2 * sizeof(eg_rng) + sizeof(int32_t) * (size_t)(rec[2] > 0 ? rec[2] : 0) +
                      sizeof(double);
        if (rec[1] != nv || rec[2] < 0 || *pos + need > len - 4)
            return eg_err_set(err, EG_EINPUT, "checkpoint %s is inconsistent at node %d", path, rec[0]);
        size_t p = *pos + sizeof rec;
        *pos += need;
        if (rec[0] != node)
            continue;
        eg_sampler_node sn = eg_sampler_node_state(st->sampler, li);
        int shard = sn.len;
        for (int v = 0; v < nv; v++) {
            memcpy(vecs[v] + (size_t)li * lens[v], buf + p, lens[v] * sizeof(float));
            p += lens[v] * sizeof(float);
        }
        memcpy(sn.sample_rng, buf + p, sizeof(eg_rng));
        p += sizeof(eg_rng);
        memcpy(sn.aug_rng, buf + p, sizeof(eg_rng));
        p += sizeof(eg_rng);
        if (rec[2] != shard)
            return eg_err_set(err, EG_EINPUT, "checkpoint %s: node %d's shard size differs", path, node);
        memcpy(sn.order, buf + p, sizeof(int32_t) * (size_t)shard);
        p += sizeof(int32_t) * (size_t)shard;
        memcpy(&st->loss_acc[li], buf + p, sizeof(double));
        *sn.cursor = rec[3];
        return EG_OK;
    }
}

/* the rank of oldP that wrote node */
static int writer_of(int node, int nodes, int oldP)
{
    int r = 0;
    for (int q = 0; q < oldP; q++) {
        int lo, hi;
        eg_comm_range(nodes, oldP, q, &lo, &hi);
        if (node >= lo && node < hi)
            r = q;
    }
    return r;
}

int eg_ckpt_load(const char *dir, eg_comm *c, eg_ckpt_state *st, eg_err *err)
{
    (void)c; /* not collective: this rank reads the files holding its own nodes */
    long iter;
    int oldP, rc = read_latest(dir, &iter, &oldP, err), cur_file = -1;
    if (rc)
        return rc;
    unsigned char *buf = NULL;
    size_t len = 0, pos = 0;
    float *vecs[8];
    const char *names[8];
    size_t lens[8];
    int nv = eg_algo_state(st->algo, vecs, names, lens, 8);
    char path[EG_PATH_MAX + 64];
    for (int li = 0; li < st->nlocal && !rc; li++) {
        int r = writer_of(st->lo + li, st->nodes, oldP);
        if (r != cur_file) {
            free(buf);
            buf = NULL;
            snprintf(path, sizeof path, "%s/ckpt/%ld.%d.bin", dir, iter, r);
            cur_file = r;
            rc = read_file(path, &buf, &len, err);
            if (!rc)
                rc = check_file(path, dir, buf, len, iter, st, &pos, err);
        }
        if (!rc)
            rc = read_node(path, buf, len, &pos, li, vecs, lens, nv, st, err);
    }
    free(buf);
    if (!rc) {
        eg_algo_set_steps(st->algo, iter);
        /* nodes with no local entries still need the counters */
        if (st->nlocal == 0)
            st->ctr->iter = iter;
    }
    return rc;
}

int eg_ckpt_truncate_metrics(const char *path, long last_iter, eg_err *err)
{
    FILE *f = fopen(path, "r+");
    if (!f)
        return eg_err_set(err, EG_ERUN, "cannot open %s to resume: %s", path, strerror(errno));
    char line[4096];
    long keep = 0;
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (l == 0 || line[l - 1] != '\n')
            break; /* a partial last line */
        if (!first) {
            long it;
            if (eg_parse_long(strtok(line, ","), &it) || it > last_iter)
                break;
        }
        first = 0;
        keep += (long)l;
    }
    int bad = fflush(f) != 0;
    bad |= ftruncate(fileno(f), keep) != 0;
    bad |= fclose(f) != 0;
    if (bad)
        return eg_err_set(err, EG_ERUN, "cannot truncate %s: %s", path, strerror(errno));
    return EG_OK;
}
