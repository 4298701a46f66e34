/* check_algo.c - the algorithms against what theory says (SPEC.md section 4), on a
 * heterogeneous strongly convex problem whose optimum is known in closed form:
 *   f_i(x) = (a_i / 2) ||x - c_i||^2,   x* = sum_i a_i c_i / sum_i a_i.
 * Full-batch gradients, constant step. Single rank (multi-rank runs: tests/e2e). */
#include "algo.h"
#include "comm.h"
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
    suite_add_tcase(s, tc);
    int rc = eg_test_run_nofork(s); /* no fork: MPI is initialised in this process */
    eg_comm_world_finalize();
    return rc;
}
