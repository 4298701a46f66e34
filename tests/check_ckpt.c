/* check_ckpt.c - checkpoints (ckpt.c) through the real files: a save/load round trip of
 * every field, on the same and on another rank count (simulated ranks: eg_comm_init_sim),
 * generations kept and pruned, and refusals with a clear message: a corrupt byte (CRC), a
 * truncated file, another spec's hash, an unknown format version, missing files. */
#include "algo.h"
#include "ckpt.h"
#include "comm.h"
#include "spec.h"
#include "testutil.h"
#include "topology.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define NODES 7
#define DIM 37
#define MAXSHARD 8
#define NSTATS 5
#define HASH 0x1234abcd5678ef90ULL

static eg_spec SPEC_DMSGD, SPEC_GT;
static eg_topo *RING; /* for the simulated ranks' comms */

/* one rank's part of a run: what a checkpoint saves for nodes [lo, lo + nlocal) */
typedef struct fix {
    eg_algo *a;
    eg_sampler *smp;
    int lo, nlocal;
    int32_t part_off[NODES + 1], part_idx[NODES * MAXSHARD]; /* the partition's shards */
    double loss[NODES];
    long rows;
    eg_ckpt_counters ctr;
} fix;

static int shard_of(int node) { return 3 + node % 5; }

/* the layout for nodes [lo, hi), zeroed */
static void fix_init(fix *f, const eg_spec *s, int lo, int hi)
{
    memset(f, 0, sizeof *f);
    eg_err e = {0};
    ck_assert_msg(eg_algo_init(&f->a, &s->algo, NODES, hi - lo, DIM, 3 * NODES, 0, &e) == 0,
                  "%s", e.msg);
    /* running statistics: a vector of another length than the parameters */
    ck_assert_int_eq(eg_algo_set_stats(f->a, NSTATS, 0, &e), 0);
    f->lo = lo;
    f->nlocal = hi - lo;
    for (int i = 0; i < NODES; i++)
        f->part_off[i + 1] = f->part_off[i] + shard_of(i);
    for (int q = 0; q < f->part_off[NODES]; q++)
        f->part_idx[q] = q;
    eg_partition p = {.nodes = NODES, .offset = f->part_off, .idx = f->part_idx};
    ck_assert_int_eq(eg_sampler_init(&f->smp, &p, lo, f->nlocal, 1, &e), 0);
}

static void fix_free(fix *f)
{
    eg_algo_free(f->a);
    eg_sampler_free(f->smp);
    free(f);
}

/* every field as a function of (seed, node) */
static void fix_fill(fix *f, uint64_t seed)
{
    float *vecs[8];
    const char *names[8];
    size_t lens[8];
    int nv = eg_algo_state(f->a, vecs, names, lens, 8);
    for (int li = 0; li < f->nlocal; li++) {
        int node = f->lo + li;
        eg_rng r;
        eg_rng_seed(&r, seed, 77, (uint64_t)node);
        for (int v = 0; v < nv; v++)
            for (size_t t = 0; t < lens[v]; t++)
                vecs[v][(size_t)li * lens[v] + t] = (float)eg_rng_normal(&r);
        eg_sampler_node sn = eg_sampler_node_state(f->smp, li);
        eg_rng_seed(sn.sample_rng, seed, 78, (uint64_t)node);
        eg_rng_seed(sn.aug_rng, seed, 79, (uint64_t)node);
        for (int q = 0; q < sn.len; q++)
            sn.order[q] = (int32_t)eg_rng_below(&r, 1000);
        *sn.cursor = node * 3 + (int)seed;
        f->loss[li] = node * 1.25 + (double)seed;
    }
    f->ctr.iter = 40 + (long)seed;
    f->rows = 7;
    f->ctr.bytes_sent = 1.5e9;
    f->ctr.train_time = 3.25;
}

static eg_ckpt_state fix_state(fix *f, uint64_t hash)
{
    return (eg_ckpt_state){.spec_hash = hash, .nodes = NODES, .lo = f->lo, .nlocal = f->nlocal,
                           .dim = DIM, .algo = f->a, .sampler = f->smp,
                           .loss_acc = f->loss, .rows_since = &f->rows, .ctr = &f->ctr};
}

/* got holds exactly what fix_fill(seed) gives for its nodes */
static void fix_check(fix *got, const eg_spec *s, uint64_t seed)
{
    fix *want = malloc(sizeof *want);
    ck_assert(want);
    fix_init(want, s, got->lo, got->lo + got->nlocal);
    fix_fill(want, seed);
    float *gv[8], *wv[8];
    const char *names[8];
    size_t gl[8], wl[8];
    int nv = eg_algo_state(got->a, gv, names, gl, 8);
    ck_assert_int_eq(eg_algo_state(want->a, wv, names, wl, 8), nv);
    ck_assert_str_eq(names[nv - 1], "stats");
    for (int v = 0; v < nv; v++)
        ck_assert_msg(gl[v] == wl[v] && !memcmp(gv[v], wv[v], sizeof(float) * gl[v] * (size_t)got->nlocal),
                      "vector %s differs", names[v]);
    size_t nl = (size_t)got->nlocal;
    for (size_t li = 0; li < nl; li++) {
        eg_sampler_node g = eg_sampler_node_state(got->smp, (int)li);
        eg_sampler_node w = eg_sampler_node_state(want->smp, (int)li);
        ck_assert(!memcmp(g.sample_rng, w.sample_rng, sizeof(eg_rng)));
        ck_assert(!memcmp(g.aug_rng, w.aug_rng, sizeof(eg_rng)));
        ck_assert(g.len == w.len && !memcmp(g.order, w.order, sizeof(int32_t) * (size_t)g.len));
        ck_assert_int_eq(*g.cursor, *w.cursor);
    }
    ck_assert(!memcmp(got->loss, want->loss, sizeof(double) * nl));
    ck_assert_int_eq(got->ctr.iter, want->ctr.iter);
    ck_assert_int_eq(got->rows, want->rows);
    ck_assert(got->ctr.bytes_sent == want->ctr.bytes_sent &&
              got->ctr.train_time == want->ctr.train_time);
    ck_assert_int_eq(eg_algo_steps(got->a), want->ctr.iter);
    fix_free(want);
}

/* saves fix_fill(seed) for all NODES from P simulated ranks into dir */
static void save_all(const char *dir, const eg_spec *s, int P, uint64_t seed)
{
    /* rank 0 last: its save writes LATEST, which completes the generation */
    for (int r = P - 1; r >= 0; r--) {
        int lo, hi;
        eg_comm_range(NODES, P, r, &lo, &hi);
        fix *f = malloc(sizeof *f);
        ck_assert(f);
        fix_init(f, s, lo, hi);
        fix_fill(f, seed);
        eg_comm *c = NULL;
        eg_err e = {0};
        ck_assert_int_eq(eg_comm_init_sim(&c, NODES, r, P, DIM, 1, RING, &e), 0);
        eg_ckpt_state st = fix_state(f, HASH);
        ck_assert_msg(eg_ckpt_save(dir, c, &st, &e) == 0, "%s", e.msg);
        eg_comm_free(c);
        fix_free(f);
    }
}

/* loads into P simulated ranks' parts; returns the first error (message in *e) */
static int load_all(const char *dir, const eg_spec *s, int P, uint64_t hash, uint64_t seed,
                    int check, eg_err *e)
{
    int rc = 0;
    for (int r = 0; r < P && !rc; r++) {
        int lo, hi;
        eg_comm_range(NODES, P, r, &lo, &hi);
        fix *f = malloc(sizeof *f);
        ck_assert(f);
        fix_init(f, s, lo, hi);
        eg_ckpt_state st = fix_state(f, hash);
        rc = eg_ckpt_load(dir, NULL, &st, e);
        if (!rc && check)
            fix_check(f, s, seed);
        fix_free(f);
    }
    return rc;
}

static void path_of(char *buf, size_t len, const char *dir, long iter, int rank)
{
    snprintf(buf, len, "%s/ckpt/%ld.%d.bin", dir, iter, rank);
}

START_TEST(test_round_trip)
{
    const eg_spec *specs[2] = {&SPEC_DMSGD, &SPEC_GT};
    for (int k = 0; k < 2; k++)
        for (int P = 1; P <= 3; P++)
            for (int Q = 1; Q <= 4; Q++) {
                const char *dir = eg_test_tmpdir();
                ck_assert(dir);
                ck_assert(!eg_ckpt_exists(dir));
                save_all(dir, specs[k], P, 2);
                ck_assert(eg_ckpt_exists(dir));
                eg_err e = {0};
                ck_assert_msg(load_all(dir, specs[k], Q, HASH, 2, 1, &e) == 0,
                              "saved on %d ranks, loaded on %d: %s", P, Q, e.msg);
                eg_ckpt_remove(dir);
                ck_assert(!eg_ckpt_exists(dir));
                rmdir(dir);
            }
}
END_TEST

START_TEST(test_generations)
{
    const char *dir = eg_test_tmpdir();
    char p[4200];
    for (uint64_t seed = 0; seed < 3; seed++) /* iterations 40, 41, 42 */
        save_all(dir, &SPEC_DMSGD, 2, seed);
    struct stat st;
    for (int r = 0; r < 2; r++) {
        path_of(p, sizeof p, dir, 40, r);
        ck_assert_msg(stat(p, &st) != 0, "%s: the oldest generation was not pruned", p);
        path_of(p, sizeof p, dir, 41, r);
        ck_assert_msg(stat(p, &st) == 0, "%s: the previous generation must be kept", p);
    }
    snprintf(p, sizeof p, "%s/ckpt/LATEST", dir);
    FILE *f = fopen(p, "r");
    char line[64] = "";
    ck_assert(f && fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "42 2\n");
    eg_err e = {0};
    ck_assert_msg(load_all(dir, &SPEC_DMSGD, 1, HASH, 2, 1, &e) == 0, "%s", e.msg);
    eg_ckpt_remove(dir);
    rmdir(dir);
}
END_TEST

/* rewrites the file's trailing CRC-32 to match its content */
static void fix_crc(const char *path)
{
    FILE *f = fopen(path, "r+b");
    ck_assert(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    unsigned char *b = malloc((size_t)len);
    ck_assert(b);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_eq(fread(b, 1, (size_t)len, f), len);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4));
    fseek(f, len - 4, SEEK_SET);
    fwrite(&crc, 4, 1, f);
    fclose(f);
    free(b);
}

static void poke(const char *path, long off, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    ck_assert(f);
    fseek(f, off, SEEK_SET);
    ck_assert_int_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

/* one saved generation (iteration 42, one rank), then change, then expect a refusal */
static void expect_refused(const char *what, void (*change)(const char *dir, const char *bin),
                           uint64_t hash, const char *msg)
{
    const char *dir = eg_test_tmpdir();
    char bin[4200];
    save_all(dir, &SPEC_DMSGD, 1, 2);
    path_of(bin, sizeof bin, dir, 42, 0);
    if (change)
        change(dir, bin);
    eg_err e = {0};
    int rc = load_all(dir, &SPEC_DMSGD, 1, hash, 2, 0, &e);
    ck_assert_msg(rc == EG_EINPUT, "%s: load gave %d (%s), expected a refusal", what, rc, e.msg);
    ck_assert_msg(strstr(e.msg, msg), "%s: message '%s' lacks '%s'", what, e.msg, msg);
    eg_ckpt_remove(dir);
    rmdir(dir);
}

static void flip_byte(const char *dir, const char *bin)
{
    unsigned char b = 0x5a;
    poke(bin, 200, &b, 1);
}

static void truncate_half(const char *dir, const char *bin)
{
    struct stat st;
    ck_assert(stat(bin, &st) == 0);
    ck_assert(truncate(bin, st.st_size / 2) == 0);
}

static void truncate_header(const char *dir, const char *bin) { ck_assert(truncate(bin, 30) == 0); }

static void version_4(const char *dir, const char *bin)
{
    uint32_t v = 4; /* 3 is version 2 with the time model (cluster:) */
    poke(bin, 8, &v, 4);
    fix_crc(bin);
}

static void not_a_checkpoint(const char *dir, const char *bin)
{
    poke(bin, 0, "GARBAGE!", 8);
    fix_crc(bin);
}

static void drop_file(const char *dir, const char *bin) { unlink(bin); }

static void drop_latest(const char *dir, const char *bin)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/ckpt/LATEST", dir);
    unlink(p);
}

static void bad_latest(const char *dir, const char *bin)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/ckpt/LATEST", dir);
    FILE *f = fopen(p, "w");
    ck_assert(f);
    fputs("forty-two 1\n", f);
    fclose(f);
}

START_TEST(test_refusals)
{
    expect_refused("intact (the check can fail)", NULL, HASH + 1, "belongs to a different spec");
    expect_refused("a corrupt byte", flip_byte, HASH, "corrupt (checksum mismatch)");
    expect_refused("truncated to half", truncate_half, HASH, "corrupt (checksum mismatch)");
    expect_refused("truncated in the header", truncate_header, HASH, "truncated or not a checkpoint");
    expect_refused("format version 4", version_4, HASH,
                   "has format version 4; this expgraph reads versions 2 and 3 only");
    expect_refused("another magic", not_a_checkpoint, HASH, "truncated or not a checkpoint");
    expect_refused("a missing file", drop_file, HASH, "is missing");
    expect_refused("no LATEST", drop_latest, HASH, "no checkpoint to resume from");
    expect_refused("a corrupt LATEST", bad_latest, HASH, "is corrupt; start over with --force");
}
END_TEST

START_TEST(test_truncate_metrics)
{
    const char *dir = eg_test_tmpdir();
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    FILE *f = fopen(p, "w");
    ck_assert(f);
    fputs("iter,epoch\n10,0.1\n20,0.2\n30,0.3\n40,0.", f); /* a partial last line */
    fclose(f);
    eg_err e = {0};
    ck_assert_int_eq(eg_ckpt_truncate_metrics(p, 20, &e), 0);
    f = fopen(p, "r");
    char buf[256] = "";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    ck_assert_str_eq(buf, "iter,epoch\n10,0.1\n20,0.2\n");
    ck_assert_int_eq(eg_ckpt_truncate_metrics(p, 0, &e), 0);
    f = fopen(p, "r");
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    ck_assert_str_eq(buf, "iter,epoch\n");
    unlink(p);
    snprintf(p, sizeof p, "%s/none.csv", dir);
    ck_assert_int_eq(eg_ckpt_truncate_metrics(p, 0, &e), EG_ERUN);
    rmdir(dir);
}
END_TEST

/* a spec from text, through the real parser (whatever eg_algo_spec holds); 0 or -1 */
static int load_spec(eg_spec *s, const char *algo)
{
    const char *dir = eg_test_tmpdir();
    char p[4200];
    snprintf(p, sizeof p, "%s/s.yaml", dir ? dir : "/nonexistent");
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fprintf(f, "nodes: %d\ngraph: ring\nalgorithm: %s\nmodel: logreg\n"
               "data: {name: synthetic, dim: 8, classes: 2, samples: 64, batch_size: 4}\n",
            NODES, algo);
    fclose(f);
    eg_err e = {0};
    int rc = eg_spec_load(s, p, NULL, 0, &e);
    if (rc)
        fprintf(stderr, "check_ckpt: %s\n", e.msg);
    unlink(p);
    rmdir(dir);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (eg_comm_world_init(&argc, &argv)) /* eg_ckpt_save agrees over MPI_COMM_WORLD */
        return 1;
    eg_err e = {0};
    if (load_spec(&SPEC_DMSGD, "dmsgd") || load_spec(&SPEC_GT, "gt") ||
        eg_topo_init(&RING, &SPEC_DMSGD.graph, NODES, 1, &e)) {
        fprintf(stderr, "check_ckpt: cannot set up: %s\n", e.msg);
        return 1;
    }
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("ckpt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_generations);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_truncate_metrics);
    suite_add_tcase(s, tc);
    int rc = eg_test_run_nofork(s); /* no fork: MPI is initialised in this process */
    eg_spec_free(&SPEC_DMSGD);
    eg_spec_free(&SPEC_GT);
    eg_topo_free(RING);
    eg_comm_world_finalize();
    return rc;
}
