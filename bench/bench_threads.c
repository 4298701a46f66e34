/* bench_threads.c - threads sharing one node (train.micro_batch) and evaluation on all threads.
 *
 * Measures, in one run (compare the ratios: the machine is shared and noisy):
 *   - one node of resnet-20 (--depth: another CIFAR ResNet, e.g. 56; batch norm, 3x32x32,
 *     batch 128) in f32 and bf16: samples/s of
 *     eg_model_loss_grad on the whole batch (1 thread: how a node trained before micro-batches)
 *     and of eg_model_loss_grad_micro with micro-batches of 16, 32 and 64 on 1 and on 2
 *     threads; the speed-up 2 threads / 1 thread at each micro-batch size;
 *   - evaluation of one model (resnet-20 f32, 3x32x32) on 2,000 test samples in chunks of
 *     EG_EVAL_BATCH, as the runner evaluates x_bar: samples/s on 1 and on 2 threads.
 * Each figure is the best of --reps repetitions of at least --time seconds.
 *
 * usage: bench_threads [--time SECONDS] [--reps N] [--depth D]
 */
#include "common.h"
#include "measure.h"
#include "model.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double g_time = 0.5;
static int g_reps = 3;

enum { B = 128, NEVAL = 2000 };

static void die(const eg_err *err)
{
    fprintf(stderr, "bench_threads: %s\n", err->msg[0] ? err->msg : "out of memory");
    exit(1);
}

typedef struct state {
    float *p, *g, *st, *x, *gbuf;
    int32_t *y;
} state;

static void state_init(state *s, const eg_model *m, int n, int micro)
{
    eg_err err = {0};
    size_t np = eg_model_nparams(m), dim = 3 * 32 * 32;
    int M = (B + micro - 1) / micro;
    s->p = eg_alloc_floats(np, &err);
    s->g = eg_alloc_floats(np, &err);
    s->st = eg_alloc_floats(eg_model_nstats(m) + 1, &err);
    s->gbuf = eg_alloc_floats((size_t)M * np, &err);
    s->x = eg_alloc_floats((size_t)n * dim, &err);
    s->y = malloc((size_t)n * sizeof *s->y);
    if (!s->p || !s->g || !s->st || !s->gbuf || !s->x || !s->y)
        die(&err);
    eg_rng r;
    eg_rng_seed(&r, 3, EG_STREAM_INIT, 0);
    eg_model_init_params(m, s->p, &r);
    eg_model_init_stats(m, s->st);
    for (size_t i = 0; i < (size_t)n * dim; i++)
        s->x[i] = (float)eg_rng_uniform(&r);
    for (int i = 0; i < n; i++)
        s->y[i] = (int32_t)eg_rng_below(&r, 10);
}

static void state_free(state *s)
{
    free(s->p);
    free(s->g);
    free(s->st);
    free(s->gbuf);
    free(s->x);
    free(s->y);
}

/* best samples/s over g_reps timed repetitions of fn(arg) processing `per_call` samples */
typedef void (*call_fn)(void *arg);
static double best_rate(call_fn fn, void *arg, int per_call)
{
    double best = 0;
    fn(arg); /* plans built */
    for (int rep = 0; rep < g_reps; rep++) {
        long it = 0;
        double t0 = eg_now(), t;
        do {
            fn(arg);
            it++;
        } while ((t = eg_now() - t0) < g_time);
        double r = (double)it * per_call / t;
        if (r > best)
            best = r;
    }
    return best;
}

typedef struct job {
    const eg_model *m;
    eg_work **works;
    state *s;
    int micro, threads;
} job;

static void whole_call(void *a)
{
    job *j = a;
    volatile float sink = eg_model_loss_grad(j->m, j->works[0], j->s->p, j->s->st, j->s->x,
                                             j->s->y, B, j->s->g);
    (void)sink;
}

static void micro_call(void *a)
{
    job *j = a;
    volatile float sink =
        eg_model_loss_grad_micro(j->m, j->works, j->threads, j->s->p, j->s->st, j->s->x,
                                 j->s->y, B, j->micro, j->s->g, j->s->gbuf);
    (void)sink;
}

static void eval_call(void *a)
{
    job *j = a;
    const size_t dim = 3 * 32 * 32;
    const int nb = (NEVAL + EG_EVAL_BATCH - 1) / EG_EVAL_BATCH;
    double ls[64] = {0};
    long ok[64] = {0};
#pragma omp parallel for schedule(dynamic, 1) num_threads(j->threads)
    for (int b = 0; b < nb; b++) {
        int start = b * EG_EVAL_BATCH, cnt = NEVAL - start < EG_EVAL_BATCH ? NEVAL - start
                                                                           : EG_EVAL_BATCH;
        eg_model_eval(j->m, j->works[omp_get_thread_num()], j->s->p, j->s->st,
                      j->s->x + (size_t)start * dim, j->s->y + start, cnt, &ls[b], &ok[b]);
    }
}

static int g_depth = 20;

static eg_model *resnet(eg_precision prec)
{
    eg_model_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.kind = EG_MODEL_RESNET;
    spec.depth = g_depth;
    spec.width = 16;
    spec.norm = EG_NORM_BATCH;
    spec.groups = 2;
    spec.precision = prec;
    eg_model *m;
    eg_err err = {0};
    if (eg_model_init(&m, &spec, (eg_shape){3, 32, 32}, 10, &err))
        die(&err);
    return m;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--time") && i + 1 < argc)
            g_time = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            g_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--depth") && i + 1 < argc)
            g_depth = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_threads [--time SECONDS] [--reps N] [--depth D]\n");
            return 2;
        }
    }
    if (g_time <= 0 || g_reps < 1 || g_depth < 8 || (g_depth - 2) % 6) {
        fprintf(stderr, "bench_threads: --time and --reps must be positive, --depth 6n + 2\n");
        return 2;
    }
    eg_err err = {0};
    printf("one node of resnet-%d (batch norm), 3x32x32, batch %d: samples/s (best of %d x "
           "%.1f s)\n", g_depth, B, g_reps, g_time);
    printf("%-5s %-22s %10s %10s %8s\n", "prec", "path", "1 thread", "2 threads", "2t / 1t");
    static const int micros[] = {16, 32, 64};
    for (int pi = 0; pi < 2; pi++) {
        eg_precision prec = pi ? EG_PREC_BF16 : EG_PREC_F32;
        eg_model *m = resnet(prec);
        state s;
        state_init(&s, m, B, 16);
        eg_work *w0;
        if (eg_work_init(&w0, m, B, &err))
            die(&err);
        job j = {m, &w0, &s, B, 1};
        omp_set_num_threads(1);
        double whole = best_rate(whole_call, &j, B);
        printf("%-5s %-22s %10.0f %10s %8s\n", pi ? "bf16" : "f32", "whole batch", whole, "-",
               "-");
        eg_work_free(w0);
        for (size_t k = 0; k < sizeof micros / sizeof *micros; k++) {
            int mb = micros[k], M = (B + mb - 1) / mb;
            eg_work **ws = calloc((size_t)M, sizeof *ws);
            for (int i = 0; i < M; i++)
                if (!ws || eg_work_init_micro(&ws[i], m, mb, &err))
                    die(&err);
            job jm = {m, ws, &s, mb, 1};
            double r1 = best_rate(micro_call, &jm, B);
            jm.threads = 2;
            double r2 = best_rate(micro_call, &jm, B);
            char label[32];
            snprintf(label, sizeof label, "micro_batch %d (%d)", mb, M);
            printf("%-5s %-22s %10.0f %10.0f %7.2fx\n", pi ? "bf16" : "f32", label, r1, r2,
                   r2 / r1);
            for (int i = 0; i < M; i++)
                eg_work_free(ws[i]);
            free(ws);
        }
        state_free(&s);
        eg_model_free(m);
    }
    eg_model *m = resnet(EG_PREC_F32);
    state s;
    state_init(&s, m, NEVAL, B);
    eg_work *ws[2];
    for (int i = 0; i < 2; i++)
        if (eg_work_init(&ws[i], m, EG_EVAL_BATCH, &err))
            die(&err);
    job j = {m, ws, &s, B, 1};
    double e1 = best_rate(eval_call, &j, NEVAL);
    j.threads = 2;
    double e2 = best_rate(eval_call, &j, NEVAL);
    printf("\nevaluation of one model (resnet-%d f32, %d samples in chunks of %d): samples/s\n",
           g_depth, NEVAL, EG_EVAL_BATCH);
    printf("  1 thread %.0f, 2 threads %.0f: %.2fx\n", e1, e2, e2 / e1);
    for (int i = 0; i < 2; i++)
        eg_work_free(ws[i]);
    state_free(&s);
    eg_model_free(m);
    return 0;
}
