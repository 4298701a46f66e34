/* check_timemodel.c - the time model (timemodel.c, docs/timemodel.md) recomputed by hand,
 * bit for bit, on 4 nodes in 2 hosts of 2: psgd (a ring all-reduce over the inter-host
 * links every iteration) and onepeer_exp (node i hears from i - 2^(k mod 2), both links
 * cross hosts or one does), each without and with stragglers drawn here from the
 * documented stream (seed, EG_STREAM_STRAGGLER, fnv1a({k, i})) - the test asserts that some
 * node straggled, so the draw is exercised; psgd inside one host uses the intra-host link;
 * local steps add no communication; a restored state continues exactly; a model without a
 * speed (`measured`, not yet known) does not move. */
#include "spec.h"
#include "testutil.h"
#include "timemodel.h"

#include <string.h>

enum { N = 4, B = 32, ITERS = 12 };
static const uint64_t SEED = 5;
static const double PARAMS = 1000; /* b = 4 x 1000 bytes */

static eg_tmodel_cfg make_cfg(int allreduce, int nodes_per_host, double prob)
{
    eg_tmodel_cfg c;
    memset(&c, 0, sizeof c);
    c.cluster = (eg_cluster_spec){.on = 1, .nodes_per_host = nodes_per_host, .latency_us = 10,
                                  .bandwidth_gbps = 25, .intra_latency_us = 2,
                                  .intra_bandwidth_gbps = 200, .samples_per_s = 400,
                                  .straggler_prob = prob, .straggler_slowdown = 4};
    c.nodes = N;
    c.seed = SEED;
    c.batch_size = B;
    c.allreduce = allreduce;
    c.local_steps = 1;
    c.msg_bytes = 4 * PARAMS;
    c.allreduce_bytes = 4 * PARAMS;
    return c;
}

/* the documented draw, written out here rather than through eg_tmodel_straggles */
static int straggles(double prob, long k, int i)
{
    uint64_t key[2] = {(uint64_t)k, (uint64_t)i};
    eg_rng r;
    eg_rng_seed(&r, SEED, 10, eg_fnv1a(EG_FNV_INIT, key, sizeof key));
    return eg_rng_uniform(&r) < prob;
}

/* c_i(k) by hand: 32 / 400 s, 4 x that when node i straggles */
static double compute(double prob, long k, int i, int *nstraggle)
{
    double c = 32.0 / 400.0;
    if (prob > 0 && straggles(prob, k, i)) {
        ++*nstraggle;
        return c * 4.0;
    }
    return c;
}

static eg_topo *onepeer(void)
{
    eg_graph_spec g;
    eg_err err = {0};
    ck_assert_int_eq(eg_spec_graph_from_text("onepeer_exp", &g, &err), 0);
    eg_topo *t = NULL;
    ck_assert_msg(eg_topo_init(&t, &g, N, SEED, &err) == 0, "%s", err.msg);
    return t;
}

static void run_psgd(double prob, int nodes_per_host)
{
    eg_tmodel_cfg cfg = make_cfg(1, nodes_per_host, prob);
    eg_tmodel *tm;
    eg_err err = {0};
    ck_assert_int_eq(eg_tmodel_init(&tm, &cfg, &err), 0);
    /* hand: a ring all-reduce, 2 (n - 1) alpha + 2 (n - 1) / n 8 b / beta, on the
     * inter-host link (2 hosts) or the intra-host one (1 host) */
    int intra = nodes_per_host >= N, nstr = 0;
    double alpha = (intra ? 2 : 10) * 1e-6, beta = (intra ? 200 : 25) * 1e9;
    double comm_a = 2.0 * 3 * alpha, comm_b = 2.0 * 3 / 4 * 8.0 * 4000.0 / beta;
    double T = 0;
    for (long k = 0; k < ITERS; k++) {
        double fmax = 0;
        for (int i = 0; i < N; i++) {
            double f = T + compute(prob, k, i, &nstr);
            fmax = f > fmax ? f : fmax;
        }
        T = fmax + comm_a + comm_b;
        eg_tmodel_step(tm, NULL);
        ck_assert_int_eq(eg_tmodel_iter(tm), k + 1);
        ck_assert_msg(eg_tmodel_time(tm) == T, "psgd k=%ld: model %.17g, hand %.17g", k + 1,
                      eg_tmodel_time(tm), T);
        for (int i = 0; i < N; i++)
            ck_assert(eg_tmodel_times(tm)[i] == T);
    }
    if (prob > 0)
        ck_assert_msg(nstr > 0 && nstr < N * ITERS, "the draws gave %d stragglers", nstr);
    eg_tmodel_free(tm);
}

START_TEST(test_psgd)
{
    run_psgd(0, 2);
    run_psgd(0.2, 2);
    run_psgd(0, 4); /* one host: intra-host links */
}
END_TEST

static void run_onepeer(double prob)
{
    eg_tmodel_cfg cfg = make_cfg(0, 2, prob);
    eg_tmodel *tm;
    eg_err err = {0};
    ck_assert_int_eq(eg_tmodel_init(&tm, &cfg, &err), 0);
    eg_topo *t = onepeer();
    /* every node has one in- and one out-link (m = 1); with hop 1, node 0 hears from 3
     * (another host) and sends to 1 (its host): the slowest is inter-host; with hop 2 both
     * links cross hosts. So each node adds the inter-host cost of one message. */
    const double inter = 10 * 1e-6 + 1.0 * 8.0 * 4000.0 / (25 * 1e9);
    double T[N] = {0}, F[N];
    int nstr = 0, differ = 0;
    for (long k = 0; k < ITERS; k++) {
        int hop = 1 << (k % 2);
        const eg_wmat *W = eg_topo_weights(t, k);
        for (int i = 0; i < N; i++) { /* the graph is what the hand computation assumes */
            int j = (i - hop + N) % N;
            ck_assert_int_eq(W->rowptr[i + 1] - W->rowptr[i], 2);
            for (int p = W->rowptr[i]; p < W->rowptr[i + 1]; p++)
                ck_assert(W->col[p] == i || W->col[p] == j);
        }
        for (int i = 0; i < N; i++)
            F[i] = T[i] + compute(prob, k, i, &nstr);
        for (int i = 0; i < N; i++) {
            double fj = F[(i - hop + N) % N];
            T[i] = (F[i] > fj ? F[i] : fj) + inter;
        }
        eg_tmodel_step(tm, W);
        double tmax = 0;
        for (int i = 0; i < N; i++) {
            ck_assert_msg(eg_tmodel_times(tm)[i] == T[i], "onepeer k=%ld node %d: %.17g vs %.17g",
                          k + 1, i, eg_tmodel_times(tm)[i], T[i]);
            tmax = T[i] > tmax ? T[i] : tmax;
            differ |= T[i] != T[0];
        }
        ck_assert(eg_tmodel_time(tm) == tmax);
    }
    if (prob > 0) {
        ck_assert_msg(nstr > 0 && nstr < N * ITERS, "the draws gave %d stragglers", nstr);
        ck_assert_msg(differ, "the stragglers never made the nodes' times differ");
    }
    /* eg_tmodel_advance asks the graph itself: the same values from a restored copy */
    eg_tmodel *tm2;
    ck_assert_int_eq(eg_tmodel_init(&tm2, &cfg, &err), 0);
    eg_tmodel_restore(tm2, eg_tmodel_iter(tm), eg_tmodel_times(tm), eg_tmodel_speed(tm));
    for (int s = 0; s < 5; s++)
        eg_tmodel_step(tm, eg_topo_weights(t, eg_tmodel_iter(tm)));
    eg_tmodel_advance(tm2, t, ITERS + 5);
    for (int i = 0; i < N; i++)
        ck_assert(eg_tmodel_times(tm)[i] == eg_tmodel_times(tm2)[i]);
    eg_tmodel_free(tm2);
    eg_topo_free(t);
    eg_tmodel_free(tm);
}

START_TEST(test_onepeer_exp)
{
    run_onepeer(0);
    run_onepeer(0.25);
}
END_TEST

/* local_steps 3: two iterations of compute only, then an exchange; and `measured` before
 * its speed is known does not move */
START_TEST(test_local_steps_and_measured)
{
    eg_tmodel_cfg cfg = make_cfg(0, 2, 0);
    cfg.local_steps = 3;
    eg_tmodel *tm;
    eg_err err = {0};
    ck_assert_int_eq(eg_tmodel_init(&tm, &cfg, &err), 0);
    eg_topo *t = onepeer();
    eg_tmodel_advance(tm, t, 2);
    ck_assert(eg_tmodel_time(tm) == 32.0 / 400.0 + 32.0 / 400.0);
    eg_tmodel_advance(tm, t, 3);
    const double inter = 10 * 1e-6 + 1.0 * 8.0 * 4000.0 / (25 * 1e9);
    ck_assert(eg_tmodel_time(tm) == 32.0 / 400.0 + 32.0 / 400.0 + 32.0 / 400.0 + inter);
    eg_tmodel_free(tm);

    cfg.cluster.samples_per_s = 0; /* measured */
    ck_assert_int_eq(eg_tmodel_init(&tm, &cfg, &err), 0);
    eg_tmodel_advance(tm, t, 4);
    ck_assert_int_eq(eg_tmodel_iter(tm), 0);
    eg_tmodel_set_speed(tm, 400);
    eg_tmodel_advance(tm, t, 2);
    ck_assert_int_eq(eg_tmodel_iter(tm), 2);
    ck_assert(eg_tmodel_time(tm) == 32.0 / 400.0 + 32.0 / 400.0);
    eg_tmodel_free(tm);
    eg_topo_free(t);
}
END_TEST

/* the cluster: section: defaults, `measured`, and a bad key named with file:line */
START_TEST(test_cluster_file)
{
    const char *dir = eg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    FILE *f = fopen(path, "w");
    fputs("cluster:\n  latency_us: 10\n  bandwidth_gbps: 25\n  samples_per_s: measured\n", f);
    fclose(f);
    eg_cluster_spec cl;
    eg_err err = {0};
    ck_assert_msg(eg_spec_cluster_from_file(path, &cl, &err) == 0, "%s", err.msg);
    ck_assert(cl.on && cl.nodes_per_host == 1 && cl.samples_per_s == 0);
    ck_assert(cl.intra_latency_us == 10 && cl.intra_bandwidth_gbps == 25);
    ck_assert(cl.straggler_prob == 0 && cl.straggler_slowdown == 1);
    f = fopen(path, "w");
    fputs("cluster:\n  latency_us: 10\n  bandwidth_gbps: 0\n  samples_per_s: 3\n", f);
    fclose(f);
    ck_assert_int_eq(eg_spec_cluster_from_file(path, &cl, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, ":3:") && strstr(err.msg, "cluster.bandwidth_gbps must be > 0"),
                  "%s", err.msg);
}
END_TEST

/* eg_tmodel_cfg_from_spec (run.c and table/plot --cluster): the bytes of one message by
 * method, the gossiped running statistics, the schedule of exchanges, the cluster as given */
START_TEST(test_cfg_from_spec)
{
    eg_spec s;
    memset(&s, 0, sizeof s);
    s.nodes = N;
    s.seed = SEED;
    s.data.batch_size = B;
    s.cluster = make_cfg(0, 2, 0.25).cluster;
    s.network.offline = 0.5;
    s.algo.kind = EG_ALGO_DMSGD;
    eg_tmodel_cfg c;
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert(c.msg_bytes == 4000 && c.allreduce_bytes == 4000 && !c.allreduce);
    ck_assert(c.nodes == N && c.seed == SEED && c.batch_size == B && c.local_steps == 1);
    ck_assert(c.global_every == 0 && c.network.offline == 0.5);
    ck_assert(!memcmp(&c.cluster, &s.cluster, sizeof c.cluster));
    s.norm_stats_gossip = 1; /* + 4 x 40 bytes of running statistics */
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert_msg(c.msg_bytes == 4160, "%g", c.msg_bytes);
    s.norm_stats_gossip = 0;
    s.algo.kind = EG_ALGO_GT; /* two vectors */
    s.algo.local_steps = 3;
    s.algo.global_every = 7;
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert(c.msg_bytes == 8000 && c.local_steps == 3 && c.global_every == 7);
    s.algo.kind = EG_ALGO_SGP; /* and its weight */
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert_msg(c.msg_bytes == 4004, "%g", c.msg_bytes);
    s.algo.kind = EG_ALGO_PSGD;
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert(c.allreduce && c.allreduce_bytes == 4000);
    s.algo.kind = EG_ALGO_CHOCO; /* top_k 10%: 100 entries of 8 bytes */
    s.algo.compress = EG_COMPRESS_TOP_K;
    s.algo.ratio = 0.1;
    eg_tmodel_cfg_from_spec(&c, &s, 1000, 40);
    ck_assert_msg(c.msg_bytes == 800 && !c.allreduce, "%g", c.msg_bytes);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timemodel");
    TCase *tc = tcase_create("timemodel");
    tcase_add_test(tc, test_psgd);
    tcase_add_test(tc, test_onepeer_exp);
    tcase_add_test(tc, test_local_steps_and_measured);
    tcase_add_test(tc, test_cluster_file);
    tcase_add_test(tc, test_cfg_from_spec);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
