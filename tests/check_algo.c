/* check_algo.c - the algorithms against what theory says (docs/algorithms.md#updates), on a
 * heterogeneous strongly convex problem whose optimum is known in closed form:
 *   f_i(x) = (a_i / 2) ||x - c_i||^2,   x* = sum_i a_i c_i / sum_i a_i.
 * Full-batch gradients, constant step. Single rank (multi-rank runs: tests/e2e). */
#include "algo.h"
#include "comm.h"
#include "compress.h"
#include "network.h"
#include "schedule.h"
#include "testutil.h"
#include "topology.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define N 16
#define D 6

static double A[N], C[N][D], XSTAR[D];

static void problem(void)
{
    eg_rng r;
    eg_rng_seed(&r, 42, 99, 0);
    double sa = 0;
    for (int i = 0; i < N; i++) {
        A[i] = 0.5 + eg_rng_uniform(&r); /* curvatures in [0.5, 1.5) */
        sa += A[i];
        for (int t = 0; t < D; t++)
            C[i][t] = 2.0 * eg_rng_uniform(&r) - 1.0 + (i % 4) * 0.5; /* heterogeneous optima */
    }
    for (int t = 0; t < D; t++) {
        double s = 0;
        for (int i = 0; i < N; i++)
            s += A[i] * C[i][t];
        XSTAR[t] = s / sa;
    }
}

static void grads(eg_algo *a)
{
    for (int i = 0; i < N; i++)
        for (int t = 0; t < D; t++) {
            float x = eg_algo_node_x(a, i)[t];
            eg_algo_grad(a, i, 0)[t] = (float)(A[i] * ((double)x - C[i][t]));
        }
}

/* runs K iterations; returns max over nodes of ||x_i - x*|| */
static double solve(const char *algo, const char *graph, double lr, double beta, long K)
{
    eg_graph_spec gs = {0};
    gs.kind = (eg_graph_kind)EG_KIND_FIND(eg_graph_kinds, graph);
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_msg(eg_topo_init(&t, &gs, N, 1, &e) == 0, "%s", e.msg);
    eg_comm *c = NULL;
    ck_assert_msg(eg_comm_init(&c, N, D, 2, t, &e) == 0, "%s", e.msg);
    eg_algo_spec as = {0};
    as.kind = (eg_algo_kind)EG_KIND_FIND(eg_algo_kinds, algo);
    as.momentum = beta;
    eg_algo *a = NULL;
    ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
    memset(eg_algo_x(a), 0, sizeof(float) * N * D);
    double bytes = 0;
    for (long k = 0; k < K; k++) {
        grads(a);
        ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, k), lr, &bytes, &e), 0);
    }
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double d = 0;
        for (int q = 0; q < D; q++) {
            double v = eg_algo_x(a)[i * D + q] - XSTAR[q];
            d += v * v;
        }
        if (sqrt(d) > worst)
            worst = sqrt(d);
    }
    ck_assert(bytes > 0);
    eg_algo_free(a);
    eg_comm_free(c);
    eg_topo_free(t);
    return worst;
}

static const char *GRAPHS[] = {"ring", "exp", "onepeer_exp"};

START_TEST(test_gt_ed_exact)
{
    double dgt[3], ded[3];
    for (int g = 0; g < 3; g++) {
        dgt[g] = solve("gt", GRAPHS[g], 0.1, 0, 3000);
        ded[g] = solve("ed", GRAPHS[g], 0.1, 0, 3000);
    }
    /* float32 state: the floor is a few 1e-6 of |x*| ~ 2 (measured 0.3e-6 .. 6e-6);
     * dsgd's bias at the same step is ~1e-2 (test below) */
    for (int g = 0; g < 3; g++) {
        ck_assert_msg(dgt[g] < 1e-5, "gt on %s: distance %g", GRAPHS[g], dgt[g]);
        ck_assert_msg(ded[g] < 1e-5, "ed on %s: distance %g", GRAPHS[g], ded[g]);
    }
}
END_TEST

START_TEST(test_dsgd_bias_shrinks)
{
    for (int g = 0; g < 3; g++) {
        double b1 = solve("dsgd", GRAPHS[g], 0.1, 0, 4000);
        double b2 = solve("dsgd", GRAPHS[g], 0.025, 0, 16000);
        double m1 = solve("dmsgd", GRAPHS[g], 0.02, 0.8, 4000);
        double m2 = solve("dmsgd", GRAPHS[g], 0.005, 0.8, 16000);
        /* a real bias (not round-off), and it shrinks with the step */
        ck_assert_msg(b1 > 1e-4, "dsgd on %s: no bias (%g)?", GRAPHS[g], b1);
        ck_assert_msg(b2 < 0.5 * b1, "dsgd on %s: bias %g -> %g", GRAPHS[g], b1, b2);
        ck_assert_msg(m1 > 1e-4, "dmsgd on %s: no bias (%g)?", GRAPHS[g], m1);
        ck_assert_msg(m2 < 0.5 * m1, "dmsgd on %s: bias %g -> %g", GRAPHS[g], m1, m2);
    }
}
END_TEST

START_TEST(test_psgd_is_momentum_sgd)
{
    /* psgd == single-model momentum SGD on the mean gradient */
    const double lr = 0.05, beta = 0.9;
    const long K = 200;
    eg_graph_spec gs = {.kind = EG_GRAPH_RING};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    eg_algo_spec as = {.kind = EG_ALGO_PSGD, .momentum = beta};
    eg_algo *a = NULL;
    ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
    memset(eg_algo_x(a), 0, sizeof(float) * N * D);
    float x[D] = {0}, m[D] = {0};
    double bytes = 0;
    for (long k = 0; k < K; k++) {
        grads(a);
        float gsum[D] = {0};
        for (int i = 0; i < N; i++)
            for (int q = 0; q < D; q++)
                gsum[q] += (float)(A[i] * ((double)x[q] - C[i][q]));
        ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, k), lr, &bytes, &e), 0);
        for (int q = 0; q < D; q++) {
            m[q] = (float)beta * m[q] + gsum[q] * (1.0f / N);
            x[q] -= (float)lr * m[q];
        }
    }
    for (int i = 0; i < N; i++)
        for (int q = 0; q < D; q++)
            ck_assert_msg(fabsf(eg_algo_x(a)[i * D + q] - x[q]) <= 1e-6f * (1 + fabsf(x[q])),
                          "node %d coord %d: %g vs %g", i, q, eg_algo_x(a)[i * D + q], x[q]);
    eg_algo_free(a);
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

/* K steps of `algo` on the test problem with weight decay wd and optional no-decay ranges;
 * the final x of every node into out (N x D) */
static void run_wd(const char *algo, double wd, const size_t *off, const size_t *len, int nr,
                   float *out)
{
    eg_graph_spec gs = {.kind = EG_GRAPH_EXP};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    eg_algo_spec as = {.momentum = 0.5, .weight_decay = wd};
    as.kind = (eg_algo_kind)EG_KIND_FIND(eg_algo_kinds, algo);
    eg_algo *a = NULL;
    ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
    ck_assert_int_eq(eg_algo_set_nodecay(a, off, len, nr, &e), 0);
    for (int i = 0; i < N * D; i++)
        eg_algo_x(a)[i] = 1.0f + 0.01f * (float)i;
    double bytes = 0;
    for (long k = 0; k < 30; k++) {
        grads(a);
        ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, k), 0.05, &bytes, &e), 0);
    }
    memcpy(out, eg_algo_x(a), sizeof(float) * N * D);
    eg_algo_free(a);
    eg_comm_free(c);
    eg_topo_free(t);
}

/* weight_decay_norm: false: coordinates in the no-decay ranges evolve bitwise as without
 * weight decay, the others bitwise as with it (every method works coordinate-wise) */
START_TEST(test_nodecay_ranges)
{
    static const char *algos[] = {"psgd", "dsgd", "dmsgd", "qg_dmsgd", "gt", "ed"};
    const size_t off[2] = {1, 4}, len[2] = {1, 2};
    for (int q = 0; q < 6; q++) {
        float with[N * D], without[N * D], mixed[N * D];
        run_wd(algos[q], 0.1, NULL, NULL, 0, with);
        run_wd(algos[q], 0.0, NULL, NULL, 0, without);
        run_wd(algos[q], 0.1, off, len, 2, mixed);
        for (int i = 0; i < N; i++)
            for (int tt = 0; tt < D; tt++) {
                int exempt = tt == 1 || tt == 4 || tt == 5;
                float want = exempt ? without[i * D + tt] : with[i * D + tt];
                ck_assert_msg(mixed[i * D + tt] == want, "%s node %d coord %d: %.9g != %.9g",
                              algos[q], i, tt, mixed[i * D + tt], want);
            }
        ck_assert_msg(with[0] != without[0], "%s: weight decay had no effect", algos[q]);
    }
}
END_TEST

/* running statistics: local ones stay as the model left them; gossiped ones are mixed with
 * W(k) exactly like a parameter vector, and their bytes count */
START_TEST(test_stats_gossip)
{
    eg_graph_spec gs = {.kind = EG_GRAPH_ONEPEER_EXP};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    for (int gossip = 0; gossip < 2; gossip++) {
        eg_algo_spec as = {.kind = EG_ALGO_DMSGD, .momentum = 0.9};
        eg_algo *a = NULL;
        ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
        const size_t NS = 3;
        ck_assert_int_eq(eg_algo_set_stats(a, NS, gossip, &e), 0);
        memset(eg_algo_x(a), 0, sizeof(float) * N * D);
        float s0[N * 3], want[N * 3];
        for (int i = 0; i < N; i++)
            for (size_t q = 0; q < NS; q++)
                eg_algo_node_stats(a, i)[q] = s0[i * NS + q] = (float)(i * 10 + (int)q);
        double bytes = 0, b_params;
        grads(a);
        ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, 0), 0.1, &bytes, &e), 0);
        b_params = eg_comm_gossip_bytes(eg_topo_weights(t, 0), 1, D);
        if (gossip)
            ck_assert_int_eq(eg_comm_gossip(c, eg_topo_weights(t, 0), s0, want, NS, &e), 0);
        else
            memcpy(want, s0, sizeof want);
        ck_assert_int_eq(memcmp(want, eg_algo_stats(a), sizeof want), 0);
        ck_assert(gossip ? want[0] != s0[0] : 1);
        double extra = gossip ? eg_comm_gossip_bytes(eg_topo_weights(t, 0), 1, NS) : 0;
        ck_assert_msg(bytes == b_params + extra, "bytes %g != %g + %g", bytes, b_params, extra);
        /* the checkpointed state includes the statistics */
        float *vecs[8];
        const char *names[8];
        size_t lens[8];
        int nv = eg_algo_state(a, vecs, names, lens, 8);
        ck_assert_str_eq(names[nv - 1], "stats");
        ck_assert_uint_eq(lens[nv - 1], NS);
        eg_algo_free(a);
    }
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_full_graph_equals_psgd)
{
    double p = solve("psgd", "full", 0.05, 0.9, 300);
    double dm = solve("dmsgd", "full", 0.05, 0.9, 300);
    double ds = solve("dsgd", "full", 0.05, 0.0, 300);
    double ps0 = solve("psgd", "full", 0.05, 0.0, 300);
    ck_assert_msg(fabs(p - dm) < 1e-5, "psgd %g vs dmsgd on full %g", p, dm);
    ck_assert_msg(fabs(ps0 - ds) < 1e-5, "psgd %g vs dsgd on full %g", ps0, ds);
    /* and all of them reach the optimum (exact averaging: no bias) */
    ck_assert_msg(p < 1e-5 && dm < 1e-5, "psgd %g dmsgd %g", p, dm);
}
END_TEST

/* consensus of random vectors under pure gossip */
static double consensus_after(const char *graph, int n, int iters)
{
    eg_graph_spec gs = {0};
    gs.kind = (eg_graph_kind)EG_KIND_FIND(eg_graph_kinds, graph);
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, n, 1, &e), 0);
    const size_t d = 1000;
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, n, d, 1, t, &e), 0);
    float *x = malloc(sizeof(float) * n * d), *y = malloc(sizeof(float) * n * d);
    eg_rng r;
    eg_rng_seed(&r, 5, 1, 0);
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)eg_rng_normal(&r);
    double c0 = 0, cK = 0;
    for (int pass = 0; pass < 2; pass++) {
        double mean[1000] = {0}, cs = 0, nrm = 0;
        for (int i = 0; i < n; i++)
            for (size_t q = 0; q < d; q++)
                mean[q] += x[i * d + q] / (double)n;
        for (int i = 0; i < n; i++)
            for (size_t q = 0; q < d; q++) {
                double v = x[i * d + q] - mean[q];
                cs += v * v;
                nrm += (double)x[i * d + q] * x[i * d + q];
            }
        if (pass == 0) {
            c0 = cs;
            for (int k = 0; k < iters; k++) {
                ck_assert_int_eq(eg_comm_gossip(c, eg_topo_weights(t, k), x, y, d, &e), 0);
                float *tmp = x;
                x = y;
                y = tmp;
            }
        } else {
            cK = cs;
        }
    }
    free(x);
    free(y);
    eg_comm_free(c);
    eg_topo_free(t);
    return cK / c0;
}

START_TEST(test_onepeer_exact_averaging)
{
    double op = consensus_after("onepeer_exp", 8, 3);
    double ring = consensus_after("ring", 8, 3);
    double ophc = consensus_after("onepeer_hypercube", 8, 3);
    double op6 = consensus_after("onepeer_exp", 6, 3);
    ck_assert_msg(op < 1e-10, "onepeer_exp n=8 after 3: %g", op);
    ck_assert_msg(ophc < 1e-10, "onepeer_hypercube n=8 after 3: %g", ophc);
    ck_assert_msg(ring > 1e-3, "ring n=8 after 3: %g", ring);
    ck_assert_msg(op6 > 1e-6, "onepeer_exp n=6 after 3: %g", op6);
}
END_TEST

START_TEST(test_schedule)
{
    eg_lr_spec l = {.base = 0.1, .warmup_epochs = 1, .gamma = 0.1, .n_milestones = 2,
                    .milestones = {3, 5}};
    l.schedule = EG_SCHED_STEP;
    eg_sched s;
    eg_sched_init(&s, &l, 4, 10, 80);
    ck_assert_double_eq_tol(eg_sched_lr(&s, 0), 0.01, 1e-12);   /* warm-up: 1/10 of the peak */
    ck_assert_double_eq_tol(eg_sched_lr(&s, 9), 0.1, 1e-12);    /* end of warm-up */
    ck_assert_double_eq_tol(eg_sched_lr(&s, 29), 0.1, 1e-12);   /* epoch 2.9 */
    ck_assert_double_eq_tol(eg_sched_lr(&s, 30), 0.01, 1e-12);  /* epoch 3 */
    ck_assert_double_eq_tol(eg_sched_lr(&s, 55), 0.001, 1e-12); /* epoch 5.5 */
    l.scale_linear = 1;
    l.schedule = EG_SCHED_COSINE;
    l.warmup_epochs = 0;
    eg_sched_init(&s, &l, 4, 10, 100);
    ck_assert_double_eq_tol(eg_sched_lr(&s, 0), 0.4, 1e-12);  /* linear scaling: 0.1 x 4 */
    ck_assert_double_eq_tol(eg_sched_lr(&s, 50), 0.2, 1e-12); /* half way */
    ck_assert(eg_sched_lr(&s, 99) < 0.001);
    l.schedule = EG_SCHED_CONSTANT;
    l.scale_linear = 0;
    l.warmup_epochs = 0.5; /* fractional epochs */
    eg_sched_init(&s, &l, 4, 10, 100);
    ck_assert_double_eq_tol(eg_sched_lr(&s, 0), 0.02, 1e-12);
    ck_assert_double_eq_tol(eg_sched_lr(&s, 4), 0.1, 1e-12);
    ck_assert_double_eq_tol(eg_sched_lr(&s, 77), 0.1, 1e-12);
}
END_TEST

START_TEST(test_node_ranges)
{
    /* node i on rank floor(i P / n), contiguous, covering */
    for (int n = 1; n <= 40; n++)
        for (int P = 1; P <= n; P++) {
            int prev = 0;
            for (int r = 0; r < P; r++) {
                int lo, hi;
                eg_comm_range(n, P, r, &lo, &hi);
                ck_assert_int_eq(lo, prev);
                for (int i = lo; i < hi; i++)
                    ck_assert_int_eq((int)((long)i * P / n), r);
                prev = hi;
            }
            ck_assert_int_eq(prev, n);
        }
}
END_TEST

/* The combine (comm.c) on every path: sparse rows (row-major order) and dense rows
 * (block-major), vector lengths around the 16-float runs and the 4096-float blocks, one and
 * two vectors per call, 1 and 3 threads: it equals sum_j w_ij x_j to float rounding, and its
 * bits depend neither on the thread count nor on how many vectors share the call. */
START_TEST(test_gossip_combine)
{
    static const char *graphs[] = {"ring", "exp", "onepeer_exp", "full", "torus", "hypercube"};
    static const size_t dims[] = {1, 15, 17, 4097, 9001};
    const int n = 16;
    const size_t maxd = 9001;
    float *in = malloc(sizeof(float) * n * maxd * 2), *out1 = malloc(sizeof(float) * n * maxd),
          *out3 = malloc(sizeof(float) * n * maxd), *outm = malloc(sizeof(float) * n * maxd * 2);
    ck_assert(in && out1 && out3 && outm);
    eg_rng r;
    eg_rng_seed(&r, 7, 98, 0);
    for (size_t t = 0; t < (size_t)n * maxd * 2; t++)
        in[t] = (float)(4.0 * eg_rng_uniform(&r) - 2.0);
    int saved = omp_get_max_threads();
    for (int g = 0; g < 6; g++) {
        eg_graph_spec gs = {0};
        gs.kind = (eg_graph_kind)EG_KIND_FIND(eg_graph_kinds, graphs[g]);
        eg_topo *t = NULL;
        eg_err e = {0};
        ck_assert_msg(eg_topo_init(&t, &gs, n, 1, &e) == 0, "%s", e.msg);
        eg_comm *c = NULL;
        ck_assert_msg(eg_comm_init(&c, n, maxd, 2, t, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(eg_comm_set_threads(c, 3, &e), 0);
        const int per = eg_topo_period(t) < 4 ? eg_topo_period(t) : 4;
        for (long k = 0; k < per; k++) {
            const eg_wmat *W = eg_topo_weights(t, k);
            for (int di = 0; di < 5; di++) {
                const size_t d = dims[di];
                const float *in2 = in + (size_t)n * d; /* the second vector of a pair */
                omp_set_num_threads(1);
                ck_assert_int_eq(eg_comm_gossip(c, W, in, out1, d, &e), 0);
                omp_set_num_threads(3);
                ck_assert_int_eq(eg_comm_gossip(c, W, in, out3, d, &e), 0);
                const float *ins[2] = {in2, in};
                float *outs[2] = {outm, outm + (size_t)n * d};
                ck_assert_int_eq(eg_comm_gossip_multi(c, W, 2, ins, outs, d, &e), 0);
                ck_assert_msg(!memcmp(out1, out3, sizeof(float) * n * d),
                              "%s W(%ld) dim %zu: 1 and 3 threads differ", graphs[g], k, d);
                ck_assert_msg(!memcmp(out1, outs[1], sizeof(float) * n * d),
                              "%s W(%ld) dim %zu: 1 and 2 vectors per call differ", graphs[g], k, d);
                for (int i = 0; i < n; i++)
                    for (size_t q = 0; q < d; q++) {
                        double ref = 0, ref2 = 0;
                        for (int x = W->rowptr[i]; x < W->rowptr[i + 1]; x++) {
                            ref += W->val[x] * in[(size_t)W->col[x] * d + q];
                            ref2 += W->val[x] * in2[(size_t)W->col[x] * d + q];
                        }
                        float o = out1[(size_t)i * d + q], o2 = outs[0][(size_t)i * d + q];
                        ck_assert_msg(fabs(o - ref) <= 1e-5 * (1 + fabs(ref)) &&
                                          fabs(o2 - ref2) <= 1e-5 * (1 + fabs(ref2)),
                                      "%s W(%ld) dim %zu row %d [%zu]: %g / %g, expected %g / %g",
                                      graphs[g], k, d, i, q, o, o2, ref, ref2);
                    }
            }
        }
        eg_comm_free(c);
        eg_topo_free(t);
    }
    omp_set_num_threads(saved);
    free(in);
    free(out1);
    free(out3);
    free(outm);
}
END_TEST


/* ---- issue 17: networks, local steps, global averages, sgp, choco ---- */

/* K steps of the algorithm `as` on the test problem over `graph` (NULL topology: the
 * matrix Wfix in every iteration) on network ns (NULL: perfect); the final x (N x D) into
 * xout when not NULL, bytes into *bytes_out when not NULL; returns max_i ||x_i - x*|| */
static double run_spec(const eg_algo_spec *as, const char *graph, const eg_network_spec *ns,
                       double lr, long K, float *xout, double *bytes_out)
{
    eg_graph_spec gs = {.p = 0.3};
    gs.kind = (eg_graph_kind)EG_KIND_FIND(eg_graph_kinds, graph);
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_msg(eg_topo_init(&t, &gs, N, 1, &e) == 0, "%s", e.msg);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    eg_algo *a = NULL;
    ck_assert_msg(eg_algo_init(&a, as, N, N, D, eg_topo_max_nnz(t), 0, &e) == 0, "%s", e.msg);
    if (ns)
        ck_assert_int_eq(eg_algo_set_network(a, ns, 3, 0, &e), 0);
    ck_assert_msg(eg_algo_set_graph(a, t, c, &e) == 0, "%s", e.msg);
    memset(eg_algo_x(a), 0, sizeof(float) * N * D);
    double bytes = 0;
    for (long k = 0; k < K; k++) {
        grads(a);
        const eg_wmat *W = eg_topo_weights(t, eg_algo_round(a, k));
        ck_assert_msg(eg_algo_step(a, c, W, lr, &bytes, &e) == 0, "%s", e.msg);
    }
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double d = 0;
        for (int q = 0; q < D; q++) {
            double v = eg_algo_x(a)[i * D + q] - XSTAR[q];
            d += v * v;
        }
        worst = sqrt(d) > worst ? sqrt(d) : worst;
    }
    if (xout)
        memcpy(xout, eg_algo_x(a), sizeof(float) * N * D);
    if (bytes_out)
        *bytes_out = bytes;
    eg_algo_free(a);
    eg_comm_free(c);
    eg_topo_free(t);
    return worst;
}

static eg_algo_spec spec_of(const char *algo, double beta)
{
    eg_algo_spec as = {.momentum = beta, .local_steps = 1, .compress = EG_COMPRESS_NONE,
                       .ratio = 1, .levels = 16, .consensus_step = 1};
    as.kind = (eg_algo_kind)EG_KIND_FIND(eg_algo_kinds, algo);
    return as;
}

/* drop 0 and offline 0 (and H = 1, T = 0 spelled out) are the perfect network, bit for bit */
START_TEST(test_perfect_network_bitwise)
{
    static const char *algos[] = {"dsgd", "dmsgd", "qg_dmsgd", "gt", "ed"};
    eg_network_spec zero = {0, 0};
    for (int q = 0; q < 5; q++) {
        float x0[N * D], x1[N * D];
        eg_algo_spec as = spec_of(algos[q], 0.5);
        run_spec(&as, "onepeer_exp", NULL, 0.05, 50, x0, NULL);
        run_spec(&as, "onepeer_exp", &zero, 0.05, 50, x1, NULL);
        ck_assert_msg(!memcmp(x0, x1, sizeof x0), "%s: drop 0 changed the numbers", algos[q]);
    }
}
END_TEST

/* W'(k): row-stochastic, the lost entries zeroed with their weight on the diagonal, an
 * absent node's row e_i and column empty; the loss and absence rates are p and q; the same
 * draws for every call (they depend on (seed, k, sender, receiver) only) */
START_TEST(test_network_faults)
{
    eg_graph_spec gs = {.kind = EG_GRAPH_EXP};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_network_spec ns = {.drop = 0.1, .offline = 0.2};
    eg_network *net = NULL, *net2 = NULL;
    ck_assert_int_eq(eg_network_init(&net, &ns, 9, N, eg_topo_max_nnz(t), &e), 0);
    ck_assert_int_eq(eg_network_init(&net2, &ns, 9, N, eg_topo_max_nnz(t), &e), 0);
    long msgs = 0, lost = 0, absent = 0, dropped = 0, present_pairs = 0;
    for (long k = 0; k < 2000; k++) {
        const eg_wmat *W = eg_topo_weights(t, k);
        eg_network_count cnt;
        const eg_wmat *Wp = eg_network_apply(net, W, k, &cnt);
        for (int i = 0; i < N; i++) {
            double sum = 0;
            absent += eg_network_absent(net, i);
            for (int ee = Wp->rowptr[i]; ee < Wp->rowptr[i + 1]; ee++) {
                int j = Wp->col[ee];
                sum += Wp->val[ee];
                if (j == i)
                    continue;
                msgs++;
                int gone = eg_network_absent(net, i) || eg_network_absent(net, j);
                if (gone)
                    ck_assert(Wp->val[ee] == 0.0);
                else {
                    present_pairs++;
                    dropped += Wp->val[ee] == 0.0;
                    ck_assert(Wp->val[ee] == W->val[ee] || Wp->val[ee] == 0.0);
                }
            }
            ck_assert_msg(fabs(sum - 1) < 1e-12, "row %d of W'(%ld) sums to %g", i, k, sum);
        }
        lost += cnt.lost;
        /* the same faults from a second instance and from the pure functions */
        eg_network_count cnt2;
        const eg_wmat *Wq = eg_network_apply(net2, W, k, &cnt2);
        ck_assert(cnt2.lost == cnt.lost && cnt2.sent == cnt.sent);
        ck_assert(!memcmp(Wp->val, Wq->val, sizeof(double) * (size_t)Wp->nnz));
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(eg_network_absent(net, i), eg_network_offline(&ns, 9, k, i));
    }
    double pa = (double)absent / (2000.0 * N), pd = (double)dropped / (double)present_pairs;
    ck_assert_msg(fabs(pa - 0.2) < 0.01, "absence rate %g (q = 0.2)", pa);
    ck_assert_msg(fabs(pd - 0.1) < 0.01, "drop rate %g (p = 0.1)", pd);
    ck_assert_msg(lost > 0 && lost < msgs, "lost %ld of %ld", lost, msgs);
    eg_network_free(net);
    eg_network_free(net2);
    eg_topo_free(t);
}
END_TEST

/* an absent node (network.offline) is told so for its gradient (it computes nothing), never
 * in an iteration with a global average, and the absent (node, iteration) pairs of a window
 * are counted for train_loss */
START_TEST(test_absent_nodes)
{
    eg_graph_spec gs = {.kind = EG_GRAPH_RING};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    eg_algo_spec as = spec_of("dmsgd", 0.5);
    as.global_every = 5;
    eg_network_spec ns = {.offline = 0.3};
    eg_algo *a = NULL;
    ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
    ck_assert_int_eq(eg_algo_set_network(a, &ns, 11, 0, &e), 0);
    long total = 0, window = 0;
    double bytes = 0;
    for (long k = 0; k < 40; k++) {
        for (int i = 0; i < N; i++) {
            int want = (k + 1) % 5 != 0 && eg_network_offline(&ns, 11, k, i);
            ck_assert_int_eq(eg_algo_node_absent(a, i), want);
            total += want;
            window += want && k >= 30;
        }
        grads(a);
        ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, k), 0.05, &bytes, &e), 0);
    }
    ck_assert_int_eq(eg_algo_absent_pairs(a, 40), total);
    ck_assert_int_eq(eg_algo_absent_pairs(a, 10), window);
    ck_assert_msg(total > 0 && total < 40 * N, "absent pairs %ld", total);
    eg_algo_free(a);
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

/* local_steps H: bitwise the run that mixes with W = I in the other iterations and with
 * W(k / H) in iterations (k + 1) % H == 0; bytes_sent divided by H */
START_TEST(test_local_steps)
{
    const int H = 3;
    const long K = 30;
    eg_graph_spec gs = {.kind = EG_GRAPH_ONEPEER_EXP};
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &e), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    int rp[N + 1], col[N];
    double val[N];
    for (int i = 0; i < N; i++) {
        rp[i] = i;
        col[i] = i;
        val[i] = 1.0;
    }
    rp[N] = N;
    eg_wmat I = {.n = N, .nnz = N, .rowptr = rp, .col = col, .val = val};
    static const char *algos[] = {"dmsgd", "gt", "qg_dmsgd", "sgp"};
    for (int q = 0; q < 4; q++) {
        eg_algo_spec as = spec_of(algos[q], 0.5), a1 = as;
        as.local_steps = H;
        eg_algo *a = NULL, *b = NULL;
        ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
        ck_assert_int_eq(eg_algo_init(&b, &a1, N, N, D, eg_topo_max_nnz(t), 0, &e), 0);
        memset(eg_algo_x(a), 0, sizeof(float) * N * D);
        memset(eg_algo_x(b), 0, sizeof(float) * N * D);
        double ba = 0, bb = 0, b1 = 0;
        for (long k = 0; k < K; k++) {
            grads(a);
            grads(b);
            ck_assert_int_eq(eg_algo_step(a, c, eg_topo_weights(t, eg_algo_round(a, k)), 0.05, &ba, &e), 0);
            const eg_wmat *W = (k + 1) % H ? &I : eg_topo_weights(t, k / H);
            ck_assert_int_eq(eg_algo_step(b, c, W, 0.05, &bb, &e), 0);
            b1 += eg_comm_gossip_bytes(eg_topo_weights(t, k), eg_algo_gossip_vectors(as.kind), D);
        }
        if (as.kind != EG_ALGO_SGP) /* sgp rescales by its weights, even for W = I */
            ck_assert_msg(!memcmp(eg_algo_x(a), eg_algo_x(b), sizeof(float) * N * D),
                          "%s: H = %d differs from W = I in between", algos[q], H);
        ck_assert_msg(fabs(ba * H - b1) < 1e-6 * b1 + (as.kind == EG_ALGO_SGP ? 4.0 * N * K : 0),
                      "%s: bytes %g x %d != %g", algos[q], ba, H, b1);
        ck_assert(eg_algo_x(a)[0] != 0.0f);
        eg_algo_free(a);
        eg_algo_free(b);
    }
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

/* global_every T: after iterations T, 2T, ... every node holds the same vector (the exact
 * mean), and a ring all-reduce's bytes are counted */
START_TEST(test_global_every)
{
    static const char *algos[] = {"dsgd", "dmsgd", "gt", "sgp", "choco"};
    for (int q = 0; q < 5; q++) {
        eg_algo_spec as = spec_of(algos[q], 0.5);
        as.global_every = 7;
        as.compress = EG_COMPRESS_BF16;
        float x[N * D];
        double bytes;
        run_spec(&as, "ring", NULL, 0.05, 14, x, &bytes);
        for (int i = 1; i < N; i++)
            ck_assert_msg(!memcmp(x, x + i * D, sizeof(float) * D), "%s: node %d differs after a global average",
                          algos[q], i);
        eg_algo_spec a0 = as;
        a0.global_every = 0;
        double b0;
        run_spec(&a0, "ring", NULL, 0.05, 14, NULL, &b0);
        ck_assert_msg(bytes != b0, "%s: global averages cost nothing?", algos[q]);
    }
}
END_TEST

/* sgp on a doubly stochastic static graph (ring: out-degree = in-degree, so its column
 * weights are W's) is dsgd with momentum, to float rounding; on a time-varying graph and on an
 * irregular one (erdos_renyi: column- but not row-stochastic push weights) it converges like
 * dsgd: a bias that shrinks with the step */
START_TEST(test_sgp_fixed_point)
{
    eg_algo_spec sg = spec_of("sgp", 0), ds = spec_of("dsgd", 0);
    float xs[N * D], xd[N * D];
    double d_sgp = run_spec(&sg, "ring", NULL, 0.1, 3000, xs, NULL);
    double d_dsgd = run_spec(&ds, "ring", NULL, 0.1, 3000, xd, NULL);
    for (int t = 0; t < N * D; t++)
        ck_assert_msg(fabsf(xs[t] - xd[t]) < 1e-5f, "ring [%d]: sgp %g dsgd %g", t, xs[t], xd[t]);
    ck_assert_msg(fabs(d_sgp - d_dsgd) < 1e-5, "ring: %g vs %g", d_sgp, d_dsgd);
    static const char *graphs[] = {"onepeer_exp", "exp", "erdos_renyi"};
    for (int g = 0; g < 3; g++) {
        double b1 = run_spec(&sg, graphs[g], NULL, 0.1, 4000, NULL, NULL);
        double b2 = run_spec(&sg, graphs[g], NULL, 0.025, 16000, NULL, NULL);
        double d1 = run_spec(&ds, graphs[g], NULL, 0.1, 4000, NULL, NULL);
        fprintf(stderr, "sgp on %s: %g -> %g (dsgd %g)\n", graphs[g], b1, b2, d1);
        ck_assert_msg(b2 < 0.5 * b1, "sgp on %s: distance %g -> %g", graphs[g], b1, b2);
        ck_assert_msg(b1 < 2 * d1, "sgp on %s: distance %g, dsgd's %g", graphs[g], b1, d1);
    }
}
END_TEST

/* pure averaging over a row- but not column-stochastic W (node 0 also hears 5 and 9):
 * plain gossip converges to a weighted average, push-sum (sgp, no gradients) to the mean */
START_TEST(test_push_sum_exact_mean)
{
    int rp[N + 1], col[2 * N + 2];
    double val[2 * N + 2];
    int e = 0;
    for (int i = 0; i < N; i++) {
        rp[i] = e;
        int nb[4] = {i, (i + N - 1) % N, -1, -1}, k = 2;
        if (i == 0) {
            nb[2] = 5;
            nb[3] = 9;
            k = 4;
        }
        /* ascending columns */
        for (int u = 0; u < k; u++)
            for (int v = u + 1; v < k; v++)
                if (nb[v] < nb[u]) {
                    int tmp = nb[u];
                    nb[u] = nb[v];
                    nb[v] = tmp;
                }
        for (int u = 0; u < k; u++) {
            col[e] = nb[u];
            val[e++] = 1.0 / k;
        }
    }
    rp[N] = e;
    eg_wmat W = {.n = N, .nnz = e, .rowptr = rp, .col = col, .val = val};
    eg_graph_spec gs = {.kind = EG_GRAPH_EXP}; /* only sizes the buffers (degree 4) */
    eg_topo *t = NULL;
    eg_err er = {0};
    ck_assert_int_eq(eg_topo_init(&t, &gs, N, 1, &er), 0);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &er), 0);
    double mean[D] = {0};
    for (int i = 0; i < N; i++)
        for (int q = 0; q < D; q++)
            mean[q] += C[i][q] / N;
    double worst[2] = {0, 0};
    for (int push = 0; push < 2; push++) {
        eg_algo_spec as = spec_of(push ? "sgp" : "gossip", 0);
        eg_algo *a = NULL;
        ck_assert_int_eq(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &er), 0);
        for (int i = 0; i < N; i++)
            for (int q = 0; q < D; q++)
                eg_algo_x(a)[i * D + q] = (float)C[i][q];
        double bytes = 0;
        for (long k = 0; k < 400; k++) {
            if (push)
                memset(eg_algo_grad(a, 0, 0), 0, sizeof(float) * N * D);
            ck_assert_int_eq(eg_algo_step(a, c, &W, 0.0, &bytes, &er), 0);
        }
        for (int i = 0; i < N; i++)
            for (int q = 0; q < D; q++)
                worst[push] = fmax(worst[push], fabs(eg_algo_x(a)[i * D + q] - mean[q]));
        eg_algo_free(a);
    }
    ck_assert_msg(worst[1] < 1e-5, "push-sum: %g from the mean", worst[1]);
    ck_assert_msg(worst[0] > 1e-2, "plain gossip reached the mean (%g)? W is not column-stochastic", worst[0]);
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

/* choco: the identity compressor (top_k keeping everything) with consensus_step 1 is dsgd
 * bit for bit; bf16 converges as dsgd does; top_k 50% converges with a smaller step */
START_TEST(test_choco)
{
    eg_algo_spec ch = spec_of("choco", 0), ds = spec_of("dsgd", 0);
    ch.compress = EG_COMPRESS_TOP_K;
    ch.ratio = 1;
    float xc[N * D], xd[N * D];
    run_spec(&ch, "onepeer_exp", NULL, 0.05, 200, xc, NULL);
    run_spec(&ds, "onepeer_exp", NULL, 0.05, 200, xd, NULL);
    ck_assert_msg(!memcmp(xc, xd, sizeof xc), "choco(identity, gamma 1) is not dsgd");
    double d_ds = run_spec(&ds, "ring", NULL, 0.05, 3000, NULL, NULL);
    ch.compress = EG_COMPRESS_BF16;
    double d_bf = run_spec(&ch, "ring", NULL, 0.05, 3000, NULL, NULL);
    ck_assert_msg(fabs(d_bf - d_ds) < 0.01 * d_ds + 1e-3, "bf16 %g vs dsgd %g", d_bf, d_ds);
    ch.compress = EG_COMPRESS_TOP_K;
    ch.ratio = 0.5;
    ch.consensus_step = 0.3;
    double d_tk = run_spec(&ch, "ring", NULL, 0.05, 6000, NULL, NULL);
    ch.compress = EG_COMPRESS_SIGN;
    double d_sg = run_spec(&ch, "ring", NULL, 0.05, 6000, NULL, NULL);
    ch.compress = EG_COMPRESS_QSGD;
    ch.levels = 16;
    double d_q = run_spec(&ch, "ring", NULL, 0.05, 6000, NULL, NULL);
    ck_assert_msg(d_tk < 3 * d_ds, "top_k 50%%: %g (dsgd %g)", d_tk, d_ds);
    ck_assert_msg(d_sg < 5 * d_ds, "sign: %g (dsgd %g)", d_sg, d_ds);
    ck_assert_msg(d_q < 5 * d_ds, "qsgd: %g (dsgd %g)", d_q, d_ds);
}
END_TEST

/* a hierarchical W(k) (L = 2 over onepeer_exp, 8 machines) costs what topology.h says its
 * two-stage implementation sends, W->sends = n (L - 1) + L nnz_off(W_out) = 32 vectors per
 * iteration, not one vector per off-diagonal nonzero of the product (48): for every
 * algorithm but choco, on a perfect network and on drop 0 / offline 0. (Until this test the mixer
 * counted the nonzeros: bytes_sent and bytes_inter 1.5 x too high at L = 2.) */
START_TEST(test_hierarchical_bytes)
{
    eg_graph_spec gs = {.kind = EG_GRAPH_HIERARCHICAL, .local = 2};
    gs.outer.kind = EG_GRAPH_ONEPEER_EXP;
    eg_topo *t = NULL;
    eg_err e = {0};
    ck_assert_msg(eg_topo_init(&t, &gs, N, 1, &e) == 0, "%s", e.msg);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, N, D, 2, t, &e), 0);
    /* choco counts its payloads once per subscriber instead: test_choco_bytes */
    static const char *algos[] = {"dsgd", "dmsgd", "qg_dmsgd", "gt", "ed", "sgp"};
    eg_network_spec zero = {0, 0};
    for (int q = 0; q < 6; q++)
        for (int net = 0; net < 2; net++) {
            eg_algo_spec as = spec_of(algos[q], 0.5);
            eg_algo *a = NULL;
            ck_assert_msg(eg_algo_init(&a, &as, N, N, D, eg_topo_max_nnz(t), 0, &e) == 0, "%s", e.msg);
            if (net)
                ck_assert_int_eq(eg_algo_set_network(a, &zero, 3, 0, &e), 0);
            memset(eg_algo_x(a), 0, sizeof(float) * N * D);
            for (long k = 0; k < 4; k++) {
                const eg_wmat *W = eg_topo_weights(t, k);
                ck_assert_int_eq(W->sends, N * 1 + 2 * (N / 2));
                ck_assert_int_eq(W->inter, 2 * (N / 2));
                double bytes = 0;
                grads(a);
                ck_assert_msg(eg_algo_step(a, c, W, 0.05, &bytes, &e) == 0, "%s", e.msg);
                double want = eg_comm_gossip_bytes(W, eg_algo_gossip_vectors(as.kind), D);
                if (as.kind == EG_ALGO_SGP) /* and the push-sum weight, one float */
                    want += eg_comm_gossip_bytes(W, 1, 1);
                ck_assert_msg(bytes == want, "%s (network %d) k=%ld: bytes %g, want %g (%ld vectors)",
                              algos[q], net, k, bytes, want, W->sends);
                ck_assert(eg_comm_inter_bytes(W, bytes) == want * 0.5);
            }
            eg_algo_free(a);
        }
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

/* choco's bytes: each present node's payload once per subscriber (a node that may read
 * its x_hat in some W(k)): on the ring 2 per node, as many as W(k)'s messages; on
 * onepeer_exp (16 nodes, tau = 4) 4 per node where W(k) has one message per node; absent
 * nodes send nothing. top_k 50% of 6 floats: 3 values + 3 indices = 24 bytes. */
START_TEST(test_choco_bytes)
{
    eg_algo_spec ch = spec_of("choco", 0);
    ch.compress = EG_COMPRESS_TOP_K;
    ch.ratio = 0.5;
    ch.consensus_step = 0.3;
    const long K = 40;
    double b;
    run_spec(&ch, "ring", NULL, 0.05, K, NULL, &b);
    ck_assert_msg(b == K * N * 2 * 24.0, "ring: %g bytes", b);
    run_spec(&ch, "onepeer_exp", NULL, 0.05, K, NULL, &b);
    ck_assert_msg(b == K * N * 4 * 24.0, "onepeer_exp: %g bytes, expected %g", b, K * N * 4 * 24.0);
    eg_network_spec ns = {0, 0.3};
    run_spec(&ch, "onepeer_exp", &ns, 0.05, K, NULL, &b);
    double want = 0;
    for (long k = 0; k < K; k++)
        for (int j = 0; j < N; j++)
            want += eg_network_offline(&ns, 3, k, j) ? 0 : 4 * 24.0;
    ck_assert_msg(b == want && want < K * N * 4 * 24.0, "offline 0.3: %g bytes, expected %g", b, want);
    ch.compress = EG_COMPRESS_QSGD; /* a double scale and 6 bits per entry */
    run_spec(&ch, "ring", NULL, 0.05, K, NULL, &b);
    ck_assert_msg(b == K * N * 2 * (8.0 + 5), "qsgd: %g bytes", b);
}
END_TEST

/* the compressors: top_k keeps the k largest magnitudes, rand_k k entries, sign one scale,
 * bf16 rounds; their wire sizes */
START_TEST(test_compressors)
{
    enum { DIM = 1000 };
    static float v[DIM], out[DIM], scratch[DIM], mags[DIM];
    eg_rng r;
    eg_rng_seed(&r, 1, 2, 3);
    for (int t = 0; t < DIM; t++)
        v[t] = (float)eg_rng_normal(&r);
    eg_compressor q;
    eg_compress_setup(&q, EG_COMPRESS_TOP_K, 0.05, 0, DIM);
    ck_assert_uint_eq(q.k, 50);
    eg_compress_apply(&q, v, out, scratch, &r);
    for (int t = 0; t < DIM; t++)
        mags[t] = fabsf(v[t]);
    /* the 50th largest magnitude by counting */
    int kept = 0;
    float minkept = INFINITY, maxdropped = 0;
    for (int t = 0; t < DIM; t++) {
        if (out[t] != 0) {
            kept++;
            ck_assert(out[t] == v[t]);
            minkept = fminf(minkept, mags[t]);
        } else {
            maxdropped = fmaxf(maxdropped, mags[t]);
        }
    }
    ck_assert_int_eq(kept, 50);
    ck_assert(minkept >= maxdropped);
    ck_assert(eg_compress_bytes(&q) == 50 * 8.0);
    eg_compress_setup(&q, EG_COMPRESS_RAND_K, 0.1, 0, DIM);
    eg_compress_apply(&q, v, out, scratch, &r);
    kept = 0;
    for (int t = 0; t < DIM; t++)
        kept += out[t] != 0 && (ck_assert(out[t] == v[t]), 1);
    ck_assert_int_eq(kept, 100);
    eg_compress_setup(&q, EG_COMPRESS_SIGN, 0, 0, DIM);
    eg_compress_apply(&q, v, out, scratch, &r);
    for (int t = 0; t < DIM; t++)
        ck_assert(fabsf(out[t]) == fabsf(out[0]) && (out[t] < 0) == (v[t] < 0));
    ck_assert(eg_compress_bytes(&q) == 4 + 125);
    eg_compress_setup(&q, EG_COMPRESS_BF16, 0, 0, DIM);
    eg_compress_apply(&q, v, out, scratch, &r);
    for (int t = 0; t < DIM; t++)
        ck_assert(fabsf(out[t] - v[t]) <= fabsf(v[t]) * (1.0f / 256));
    ck_assert(eg_compress_bytes(&q) == 2000);
    /* qsgd is unbiased up to its 1 / tau rescaling */
    eg_compress_setup(&q, EG_COMPRESS_QSGD, 0, 16, DIM);
    double tau = 1 + fmin(DIM / 256.0, sqrt((double)DIM) / 16), acc = 0;
    for (int rep = 0; rep < 2000; rep++) {
        eg_compress_apply(&q, v, out, scratch, &r);
        acc += out[7];
    }
    ck_assert_msg(fabs(acc / 2000 * tau - v[7]) < 0.05, "qsgd mean %g vs %g", acc / 2000 * tau, v[7]);
    ck_assert(eg_compress_bytes(&q) == 8 + ceil(DIM * 6 / 8.0)); /* a double scale */
}
END_TEST

int main(int argc, char **argv)
{
    eg_comm_world_init(&argc, &argv);
    problem();
    Suite *s = suite_create("algo");
    TCase *tc = tcase_create("algo");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gt_ed_exact);
    tcase_add_test(tc, test_dsgd_bias_shrinks);
    tcase_add_test(tc, test_psgd_is_momentum_sgd);
    tcase_add_test(tc, test_full_graph_equals_psgd);
    tcase_add_test(tc, test_onepeer_exact_averaging);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_node_ranges);
    tcase_add_test(tc, test_gossip_combine);
    tcase_add_test(tc, test_nodecay_ranges);
    tcase_add_test(tc, test_stats_gossip);
    tcase_add_test(tc, test_perfect_network_bitwise);
    tcase_add_test(tc, test_network_faults);
    tcase_add_test(tc, test_absent_nodes);
    tcase_add_test(tc, test_local_steps);
    tcase_add_test(tc, test_global_every);
    tcase_add_test(tc, test_sgp_fixed_point);
    tcase_add_test(tc, test_push_sum_exact_mean);
    tcase_add_test(tc, test_choco);
    tcase_add_test(tc, test_compressors);
    tcase_add_test(tc, test_hierarchical_bytes);
    tcase_add_test(tc, test_choco_bytes);
    suite_add_tcase(s, tc);
    int rc = eg_test_run_nofork(s); /* no fork: MPI is initialised in this process */
    eg_comm_world_finalize();
    return rc;
}
