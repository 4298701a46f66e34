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
#define CKPT_VERSION 1u

typedef struct wbuf {
    FILE *f;
    uLong crc;
    int bad;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->bad)
        return;
    if (fwrite(p, 1, n, w->f) != n) {
        w->bad = errno ? errno : EIO;
        return;
    }
    /* zlib's crc32 takes uInt lengths */
    const unsigned char *b = p;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->crc = crc32(w->crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
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

/* keeps this rank's two newest generations */
static void prune(const char *ck, int rank)
{
    DIR *d = opendir(ck);
    if (!d)
        return;
    long keep1 = -1, keep2 = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        long it;
        int rk;
        char tail[8];
        if (sscanf(e->d_name, "%ld.%d.%7s", &it, &rk, tail) == 3 && rk == rank && !strcmp(tail, "bin")) {
            if (it > keep1) {
                keep2 = keep1;
                keep1 = it;
            } else if (it > keep2 && it != keep1) {
                keep2 = it;
            }
        }
    }
    rewinddir(d);
    while ((e = readdir(d))) {
        long it;
        int rk;
        char tail[8];
        if (sscanf(e->d_name, "%ld.%d.%7s", &it, &rk, tail) == 3 && rk == rank &&
            !strcmp(tail, "bin") && it != keep1 && it != keep2) {
            char f[EG_PATH_MAX + 320];
            snprintf(f, sizeof f, "%s/%s", ck, e->d_name);
            unlink(f);
        }
    }
    closedir(d);
}

int eg_ckpt_save(const char *dir, eg_comm *c, const eg_ckpt_state *st, eg_err *err)
{
    int rank = eg_comm_rank(c), rc = EG_OK;
    char ck[EG_PATH_MAX + 16], path[EG_PATH_MAX + 64], tmp[EG_PATH_MAX + 80];
    snprintf(ck, sizeof ck, "%s/ckpt", dir);
    if (mkdir(ck, 0777) && errno != EEXIST)
        rc = eg_err_set(err, EG_ERUN, "cannot create %s: %s", ck, strerror(errno));
    long iter = *st->iter;
    if (!rc) {
        snprintf(path, sizeof path, "%s/%ld.%d.bin", ck, iter, rank);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            rc = eg_err_set(err, EG_ERUN, "cannot write checkpoint %s: %s", tmp, strerror(errno));
        } else {
            wbuf w = {f, crc32(0L, Z_NULL, 0), 0};
            uint32_t ver = CKPT_VERSION;
            int32_t hdr[3] = {st->nodes, st->lo, st->lo + st->nlocal};
            uint64_t dim = st->dim;
            int64_t it64 = iter, rows = *st->rows_since;
            put(&w, MAGIC, 8);
            put(&w, &ver, 4);
            put(&w, &st->spec_hash, 8);
            put(&w, &it64, 8);
            put(&w, hdr, sizeof hdr);
            put(&w, &dim, 8);
            put(&w, st->bytes_sent, 8);
            put(&w, st->train_time, 8);
            put(&w, &rows, 8);
            float *vecs[8];
            const char *names[8];
            size_t lens[8];
            int nv = eg_algo_state(st->algo, vecs, names, lens, 8);
            for (int li = 0; li < st->nlocal; li++) {
                int32_t rec[4] = {st->lo + li, nv, st->perm_off[li + 1] - st->perm_off[li],
                                  st->cursor[li]};
                put(&w, rec, sizeof rec);
                for (int v = 0; v < nv; v++)
                    put(&w, vecs[v] + (size_t)li * lens[v], lens[v] * sizeof(float));
                put(&w, &st->sample_rng[li], sizeof(eg_rng));
                put(&w, &st->aug_rng[li], sizeof(eg_rng));
                put(&w, st->perm + st->perm_off[li], sizeof(int32_t) * (size_t)rec[2]);
                put(&w, &st->loss_acc[li], sizeof(double));
            }
            uint32_t crc = (uint32_t)w.crc;
            if (!w.bad && fwrite(&crc, 4, 1, f) != 1)
                w.bad = errno ? errno : EIO;
            if (!w.bad && fflush(f))
                w.bad = errno ? errno : EIO;
            if (!w.bad && fsync(fileno(f)))
                w.bad = errno ? errno : EIO;
            if (fclose(f) && !w.bad)
                w.bad = errno ? errno : EIO;
            if (w.bad) {
                unlink(tmp);
                rc = eg_err_set(err, EG_ERUN, "cannot write checkpoint %s: %s", path, strerror(w.bad));
            } else if (rename(tmp, path)) {
                rc = eg_err_set(err, EG_ERUN, "cannot rename %s: %s", tmp, strerror(errno));
            }
        }
    }
    /* publish only when every rank has its file */
    rc = eg_comm_world_agree(rc, err);
    if (rc)
        return rc;
    if (rank == 0) {
        char latest[EG_PATH_MAX + 32], ltmp[EG_PATH_MAX + 48];
        snprintf(latest, sizeof latest, "%s/LATEST", ck);
        snprintf(ltmp, sizeof ltmp, "%s.tmp", latest);
        FILE *f = fopen(ltmp, "w");
        int bad = !f;
        if (f) {
            bad |= fprintf(f, "%ld %d\n", iter, eg_comm_size(c)) < 0;
            bad |= fflush(f) != 0;
            bad |= fsync(fileno(f)) != 0;
            bad |= fclose(f) != 0;
        }
        if (bad || rename(ltmp, latest))
            rc = eg_err_set(err, EG_ERUN, "cannot write %s: %s", latest, strerror(errno ? errno : EIO));
        else
            sync_dir(ck);
    }
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
    if (fseek(f, 0, SEEK_END) || (long)(*len = (size_t)ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return eg_err_set(err, EG_EINPUT, "cannot read checkpoint %s", path);
    }
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

#define HDR_BYTES (8 + 4 + 8 + 8 + 12 + 8 + 8 + 8 + 8)

int eg_ckpt_load(const char *dir, eg_comm *c, eg_ckpt_state *st, eg_err *err)
{
    char latest[EG_PATH_MAX + 32];
    snprintf(latest, sizeof latest, "%s/ckpt/LATEST", dir);
    FILE *lf = fopen(latest, "r");
    long iter;
    int oldP;
    if (!lf)
        return eg_err_set(err, EG_EINPUT, "%s: no checkpoint to resume from", dir);
    int ok = fscanf(lf, "%ld %d", &iter, &oldP) == 2 && iter >= 0 && oldP >= 1;
    fclose(lf);
    if (!ok)
        return eg_err_set(err, EG_EINPUT, "%s is corrupt; start over with --force", latest);
    int cur_file = -1;
    unsigned char *buf = NULL;
    size_t len = 0, pos = 0;
    int rc = EG_OK;
    float *vecs[8];
    const char *names[8];
    size_t lens[8], per_node = 0;
    int nv = eg_algo_state(st->algo, vecs, names, lens, 8);
    for (int v = 0; v < nv; v++)
        per_node += lens[v];
    char path[EG_PATH_MAX + 64];
    for (int li = 0; li < st->nlocal && !rc; li++) {
        int node = st->lo + li;
        int r = 0;
        for (int q = 0; q < oldP; q++) {
            int lo, hi;
            eg_comm_range(st->nodes, oldP, q, &lo, &hi);
            if (node >= lo && node < hi)
                r = q;
        }
        if (r != cur_file) {
            free(buf);
            buf = NULL;
            snprintf(path, sizeof path, "%s/ckpt/%ld.%d.bin", dir, iter, r);
            if ((rc = read_file(path, &buf, &len, err)))
                break;
            cur_file = r;
            if (len < HDR_BYTES + 4 || memcmp(buf, MAGIC, 8)) {
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s is truncated or not a checkpoint", path);
                break;
            }
            uint32_t stored;
            memcpy(&stored, buf + len - 4, 4);
            uLong crc = crc32(0L, Z_NULL, 0);
            for (size_t off = 0; off < len - 4; off += (1u << 30)) {
                size_t n = len - 4 - off > (1u << 30) ? (1u << 30) : len - 4 - off;
                crc = crc32(crc, buf + off, (uInt)n);
            }
            if ((uint32_t)crc != stored) {
                rc = eg_err_set(err, EG_EINPUT,
                                "checkpoint %s is corrupt (checksum mismatch); it was refused. "
                                "The previous checkpoint generation, if any, is still in %s/ckpt; "
                                "start over with --force",
                                path, dir);
                break;
            }
            uint32_t ver;
            uint64_t hash, dim;
            int64_t it64, rows;
            int32_t hdr[3];
            size_t p = 8;
            memcpy(&ver, buf + p, 4); p += 4;
            memcpy(&hash, buf + p, 8); p += 8;
            memcpy(&it64, buf + p, 8); p += 8;
            memcpy(hdr, buf + p, 12); p += 12;
            memcpy(&dim, buf + p, 8); p += 8;
            memcpy(st->bytes_sent, buf + p, 8); p += 8;
            memcpy(st->train_time, buf + p, 8); p += 8;
            memcpy(&rows, buf + p, 8); p += 8;
            if (ver != CKPT_VERSION)
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s has format version %u; this expgraph reads %u",
                                path, ver, CKPT_VERSION);
            else if (hash != st->spec_hash || dim != st->dim || hdr[0] != st->nodes)
                rc = eg_err_set(err, EG_EINPUT,
                                "checkpoint %s belongs to a different spec (changed keys or --set?); "
                                "resume with the same spec, or start over with --force", path);
            else if (it64 != iter)
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s is for iteration %lld, LATEST says %ld",
                                path, (long long)it64, iter);
            *st->iter = iter;
            *st->rows_since = rows;
            pos = p;
        }
        if (rc)
            break;
        /* walk to this node's record */
        for (;;) {
            int32_t rec[4];
            if (pos + sizeof rec > len - 4) {
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s has no record for node %d", path, node);
                break;
            }
            memcpy(rec, buf + pos, sizeof rec);
            size_t need = sizeof rec + (rec[1] == nv ? per_node : 0) * sizeof(float) + 2 * sizeof(eg_rng) +
                          sizeof(int32_t) * (size_t)(rec[2] > 0 ? rec[2] : 0) + sizeof(double);
            if (rec[1] != nv || rec[2] < 0 || pos + need > len - 4) {
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s is inconsistent at node %d", path, rec[0]);
                break;
            }
            if (rec[0] != node) {
                pos += need;
                continue;
            }
            size_t p = pos + sizeof rec;
            for (int v = 0; v < nv; v++) {
                memcpy(vecs[v] + (size_t)li * lens[v], buf + p, lens[v] * sizeof(float));
                p += lens[v] * sizeof(float);
            }
            memcpy(&st->sample_rng[li], buf + p, sizeof(eg_rng));
            p += sizeof(eg_rng);
            memcpy(&st->aug_rng[li], buf + p, sizeof(eg_rng));
            p += sizeof(eg_rng);
            int shard = st->perm_off[li + 1] - st->perm_off[li];
            if (rec[2] != shard) {
                rc = eg_err_set(err, EG_EINPUT, "checkpoint %s: node %d's shard size differs", path, node);
                break;
            }
            memcpy(st->perm + st->perm_off[li], buf + p, sizeof(int32_t) * (size_t)shard);
            p += sizeof(int32_t) * (size_t)shard;
            memcpy(&st->loss_acc[li], buf + p, sizeof(double));
            st->cursor[li] = rec[3];
            pos += need;
            break;
        }
    }
    free(buf);
    if (!rc) {
        st->algo->steps = iter;
        /* nodes with no local entries still need the counters */
        if (st->nlocal == 0)
            *st->iter = iter;
    }
    (void)c;
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
