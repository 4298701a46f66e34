/* bench_model.c - forward+backward throughput of the models against the sgemm peak.
 *
 * Measures, in one run (ratios are what to compare on a noisy machine):
 *   - OpenBLAS sgemm GFLOP/s on a large square (N^3, default N = 1024) at 1 and 2 threads;
 *   - eg_model_loss_grad samples/s for mlp 784-256-10 and two cnns on 1x28x28 at batch 32
 *     and 128, with 1 OpenBLAS thread (as in training: one thread per node group) and 2;
 *     GFLOP/s from eg_model_flops_per_sample and the fraction of the 1-thread sgemm peak;
 *   - a per-phase breakdown (conv gemm, im2col, pool, dense gemm, ...) at 1 thread.
 * Each figure is the best of --reps timed repetitions of at least --time seconds (the
 * machine is shared and noisy: best-of estimates what the code can do); the sgemm peak is
 * measured before and after the models, the 1-thread one also briefly before each model
 * figure, and the best figure kept.
 *
 * usage: bench_model [--csv] [--time SECONDS] [--reps N] [--size N]
 */
#include "common.h"
#include "model.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_model {
    const char *label;
    eg_model_spec spec;
} bench_model;

static double g_time = 0.5;
static int g_reps = 5;

/* best sgemm GFLOP/s of `reps` repetitions of at least `secs` seconds each */
static double sgemm_gflops(int n, int threads, int reps, double secs)
{
    eg_err err = {0};
    size_t nn = (size_t)n * n;
    float *a = eg_alloc_floats(nn, &err), *b = eg_alloc_floats(nn, &err),
          *c = eg_alloc_floats(nn, &err);
    if (!a || !b || !c) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        exit(1);
    }
    eg_rng r;
    eg_rng_seed(&r, 1, 0, 0);
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)eg_rng_uniform(&r) - 0.5f;
        b[i] = (float)eg_rng_uniform(&r) - 0.5f;
    }
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        long it = 0;
        double t0 = eg_now(), t;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                        0.0f, c, n);
            it++;
        } while ((t = eg_now() - t0) < secs);
        double gf = 2.0 * n * (double)n * n * it / t / 1e9;
        if (gf > best)
            best = gf;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

typedef struct run {
    double sps;                  /* samples per second, best repetition */
    double sec[EG_PROF_N], flop[EG_PROF_N], total; /* profile of the best profiled repetition */
} run;

static run bench_one(const eg_model *m, int batch, int threads, int profile)
{
    eg_err err = {0};
    eg_work *w = NULL;
    size_t np = eg_model_nparams(m);
    int dim = 784;
    float *p = eg_alloc_floats(np, &err), *g = eg_alloc_floats(np, &err),
          *x = eg_alloc_floats((size_t)batch * dim, &err);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    if (!p || !g || !x || !y || eg_work_init(&w, m, batch, &err)) {
        fprintf(stderr, "bench_model: %s\n", err.msg);
        exit(1);
    }
    eg_rng r;
    eg_rng_seed(&r, 2, EG_STREAM_INIT, 0);
    eg_model_init_params(m, p, &r);
    for (size_t i = 0; i < (size_t)batch * dim; i++)
        x[i] = (float)eg_rng_uniform(&r);
    for (int i = 0; i < batch; i++)
        y[i] = (int32_t)eg_rng_below(&r, 10);
    openblas_set_num_threads(threads);
    volatile float sink = 0;
    for (int i = 0; i < 3; i++)
        sink += eg_model_loss_grad(m, w, p, NULL, x, y, batch, g);
    run res;
    memset(&res, 0, sizeof res);
    for (int rep = 0; rep < g_reps; rep++) {
        long it = 0;
        double t0 = eg_now(), t;
        do {
            sink += eg_model_loss_grad(m, w, p, NULL, x, y, batch, g);
            it++;
        } while ((t = eg_now() - t0) < g_time);
        double sps = (double)it * batch / t;
        if (sps > res.sps)
            res.sps = sps;
    }
    if (profile) { /* the fastest of g_reps profiled repetitions */
        eg_work *wp = w;
        double best = 0;
        for (int rep = 0; rep < g_reps; rep++) {
            eg_work_profile(wp, 1);
            long it = 0;
            double t0 = eg_now(), t;
            do {
                sink += eg_model_loss_grad(m, wp, p, NULL, x, y, batch, g);
                it++;
            } while ((t = eg_now() - t0) < g_time);
            if (it / t > best) {
                best = it / t;
                res.total = t;
                for (int i = 0; i < EG_PROF_N; i++)
                    eg_work_profile_get(wp, i, &res.sec[i], &res.flop[i]);
            }
        }
        eg_work_profile(wp, 0);
    }
    (void)sink;
    eg_work_free(w);
    free(p);
    free(g);
    free(x);
    free(y);
    return res;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_model [--csv] [--time SECONDS] [--reps N] [--size N]\n"
               "  --csv         print CSV (section,model,batch,threads,phase,...) instead of tables\n"
               "  --time S      minimum seconds per timed repetition (default 0.5)\n"
               "  --reps N      timed repetitions per figure, the best is kept (default 5)\n"
               "  --size N      sgemm peak measured on N x N x N (default 1024)\n");
}

int main(int argc, char **argv)
{
    int csv = 0;
    long size = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--csv"))
            csv = 1;
        else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            if (eg_parse_double(argv[++i], &g_time) || !(g_time > 0)) {
                fprintf(stderr, "bench_model: --time wants a positive number\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            long v;
            if (eg_parse_long(argv[++i], &v) || v < 1 || v > 1000) {
                fprintf(stderr, "bench_model: --reps wants an integer in [1, 1000]\n");
                return 2;
            }
            g_reps = (int)v;
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &size) || size < 16 || size > 8192) {
                fprintf(stderr, "bench_model: --size wants an integer in [16, 8192]\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    bench_model models[3];
    memset(models, 0, sizeof models);
    models[0].label = "mlp";
    snprintf(models[0].spec.name, sizeof models[0].spec.name, "mlp");
    models[0].spec.hidden[0] = 256;
    models[0].spec.n_hidden = 1;
    for (int k = 1; k < 3; k++) {
        models[k].label = "cnn";
        snprintf(models[k].spec.name, sizeof models[k].spec.name, "cnn");
        models[k].spec.kernel = 3;
        models[k].spec.n_channels = 2;
        models[k].spec.n_hidden = 1;
    }
    models[1].spec.channels[0] = 32;
    models[1].spec.channels[1] = 64;
    models[1].spec.hidden[0] = 128;
    models[2].spec.channels[0] = 16;
    models[2].spec.channels[1] = 32;
    models[2].spec.hidden[0] = 64;
    enum { NM = 3, NB = 2 };
    const int batches[NB] = {32, 128};

    /* Measure everything first, then print. The machine is shared: the 1-thread peak is
     * re-measured (briefly) before every model figure and the best value kept, so that a
     * busy moment during one peak measurement does not inflate every ratio. */
    double peak1 = sgemm_gflops((int)size, 1, g_reps, g_time);
    double peak2 = sgemm_gflops((int)size, 2, g_reps, g_time);
    run r1[NM][NB], r2[NM][NB];
    eg_model *mods[NM];
    for (int k = 0; k < NM; k++) {
        eg_err err = {0};
        if (eg_model_init(&mods[k], &models[k].spec, (eg_shape){1, 28, 28}, 10, &err)) {
            fprintf(stderr, "bench_model: %s\n", err.msg);
            return 1;
        }
        for (int b = 0; b < NB; b++) {
            double pk = sgemm_gflops((int)size, 1, 2, g_time / 2);
            peak1 = pk > peak1 ? pk : peak1;
            r1[k][b] = bench_one(mods[k], batches[b], 1, 1);
            r2[k][b] = bench_one(mods[k], batches[b], 2, 0);
        }
    }
    double p1b = sgemm_gflops((int)size, 1, g_reps, g_time);
    double p2b = sgemm_gflops((int)size, 2, g_reps, g_time);
    peak1 = p1b > peak1 ? p1b : peak1;
    peak2 = p2b > peak2 ? p2b : peak2;
    openblas_set_num_threads(1);

    if (csv) {
        printf("section,model,batch,threads,phase,time_share,samples_per_s,gflops,peak_gflops_1t,"
               "peak_frac\n");
        printf("sgemm,%ldx%ldx%ld,,1,,,,%.2f,%.2f,%.4f\n", size, size, size, peak1, peak1, 1.0);
        printf("sgemm,%ldx%ldx%ld,,2,,,,%.2f,%.2f,%.4f\n", size, size, size, peak2, peak1,
               peak2 / peak1);
        for (int k = 0; k < NM; k++) {
            double fps = eg_model_flops_per_sample(mods[k]);
            const char *d = eg_model_describe(mods[k]);
            for (int b = 0; b < NB; b++) {
                double gf1 = r1[k][b].sps * fps / 1e9, gf2 = r2[k][b].sps * fps / 1e9;
                printf("model,\"%s\",%d,1,,,%.1f,%.2f,%.2f,%.4f\n", d, batches[b], r1[k][b].sps,
                       gf1, peak1, gf1 / peak1);
                printf("model,\"%s\",%d,2,,,%.1f,%.2f,%.2f,%.4f\n", d, batches[b], r2[k][b].sps,
                       gf2, peak1, gf2 / peak1);
                const run *r = &r1[k][b];
                for (int i = 0; i < EG_PROF_N; i++) {
                    double gf = r->sec[i] > 0 ? r->flop[i] / r->sec[i] / 1e9 : 0;
                    printf("phase,\"%s\",%d,1,%s,%.4f,,%.2f,%.2f,%.4f\n", d, batches[b],
                           eg_work_profile_get(NULL, i, NULL, NULL), r->sec[i] / r->total, gf,
                           peak1, gf / peak1);
                }
            }
        }
    } else {
        printf("OpenBLAS %s (core %s)\n", openblas_get_config(), openblas_get_corename());
        printf("sgemm %ldx%ldx%ld: %.1f GFLOP/s on 1 thread, %.1f on 2 (x%.2f)\n\n", size, size,
               size, peak1, peak2, peak2 / peak1);
        printf("%-50s %5s %10s %8s %6s %10s %8s\n", "model (fwd+bwd, eg_model_loss_grad)",
               "batch", "samples/s", "GFLOP/s", "%peak", "samples/s", "GFLOP/s");
        printf("%-50s %5s %26s %19s\n", "", "", "------ 1 OpenBLAS thread", "------ 2 threads");
        for (int k = 0; k < NM; k++) {
            double fps = eg_model_flops_per_sample(mods[k]);
            for (int b = 0; b < NB; b++) {
                double gf1 = r1[k][b].sps * fps / 1e9, gf2 = r2[k][b].sps * fps / 1e9;
                printf("%-50s %5d %10.0f %8.1f %5.1f%% %10.0f %8.1f\n",
                       eg_model_describe(mods[k]), batches[b], r1[k][b].sps, gf1,
                       100 * gf1 / peak1, r2[k][b].sps, gf2);
            }
        }
        printf("\nper-phase breakdown, 1 thread: share of wall time, and for GEMM phases "
               "GFLOP/s and %% of the 1-thread sgemm peak\n");
        printf("%-34s %5s", "model", "batch");
        for (int i = 0; i < EG_PROF_N; i++)
            printf(" %17s", eg_work_profile_get(NULL, i, NULL, NULL));
        printf("\n");
        for (int k = 0; k < NM; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s", eg_model_describe(mods[k]));
            char *paren = strstr(name, " (");
            if (paren)
                *paren = 0;
            for (int b = 0; b < NB; b++) {
                const run *r = &r1[k][b];
                printf("%-34s %5d", name, batches[b]);
                for (int i = 0; i < EG_PROF_N; i++) {
                    char cell[48];
                    double share = 100 * r->sec[i] / r->total;
                    if (r->flop[i] > 0)
                        snprintf(cell, sizeof cell, "%4.1f%% %5.1f %3.0f%%", share,
                                 r->flop[i] / r->sec[i] / 1e9,
                                 100 * r->flop[i] / r->sec[i] / 1e9 / peak1);
                    else
                        snprintf(cell, sizeof cell, "%4.1f%%", share);
                    printf(" %17s", cell);
                }
                printf("\n");
            }
        }
        printf("\nflops per sample = 2*MACs forward + 2*MACs weight grad + 2*MACs input grad "
               "(none for the first layer)\n");
    }
    for (int k = 0; k < NM; k++)
        eg_model_free(mods[k]);
    return 0;
}
