/* check_comm.c - the exchange plan and the gossip combine (comm.c) on 1..4 simulated ranks
 * in one process (eg_comm_init_sim), against a straightforward reference:
 *   - the plan: each rank receives exactly the remote in-neighbours of its rows, in
 *     ascending node order, and what rank r sends to rank q is, in order, what q receives
 *     from r (MPI matches messages per source and tag in posting order);
 *   - the combine: out_i = x_i + sum_{j != i, w_ij != 0, j ascending} w_ij (x_j - x_i) in
 *     float, bitwise, for every graph, rank count, thread count and vector count;
 *   - under a real MPI_Init (1 rank): eg_comm_gossip_multi and the reductions.
 * Multi-rank runs over real MPI are in tests/e2e. */
#include "comm.h"
#include "spec.h"
#include "testutil.h"
#include "topology.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const char *GRAPHS[] = {"ring",      "exp",          "onepeer_exp",
                               "full",      "star",         "torus",
                               "hypercube", "random_match", "{name: erdos_renyi, p: 0.3}",
                               "{name: base, peers: 2}", "{name: random_peers, peers: 2}",
                               "{name: hierarchical, local: 2, outer: onepeer_exp}",
                               "{name: schedule, phases: [{graph: exp, until_iter: 2}, "
                               "{graph: base}]}"};
#define NGRAPHS (int)(sizeof GRAPHS / sizeof GRAPHS[0])
static const int NODES[] = {5, 8, 13};

/* the graph, or NULL when it does not fit n (hypercube, random_match need some n) */
static eg_topo *topo(const char *graph, int n)
{
    eg_graph_spec gs;
    eg_err e = {0};
    ck_assert_msg(eg_spec_graph_from_text(graph, &gs, &e) == 0, "%s: %s", graph, e.msg);
    eg_topo *t = NULL;
    if (eg_topo_init(&t, &gs, n, 3, &e))
        return NULL;
    return t;
}

/* n uniform floats in [-half, half) from the stream (seed, 99, index) */
static void fill_random(float *x, size_t n, uint64_t seed, uint64_t index, double half)
{
    eg_rng rng;
    eg_rng_seed(&rng, seed, 99, index);
    for (size_t q = 0; q < n; q++)
        x[q] = (float)(2.0 * half * eg_rng_uniform(&rng) - half);
}

static int owner(int node, int n, int P)
{
    for (int r = 0; r < P; r++) {
        int lo, hi;
        eg_comm_range(n, P, r, &lo, &hi);
        if (node >= lo && node < hi)
            return r;
    }
    return -1;
}

/* whether rank r (of P) needs node j: some row of r has j as a nonzero in-neighbour */
static int needs(const eg_wmat *W, int n, int P, int r, int j)
{
    for (int i = 0; i < n; i++) {
        if (owner(i, n, P) != r)
            continue;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++)
            if (W->col[e] == j && W->val[e] != 0.0)
                return 1;
    }
    return 0;
}

/* W(k) for the first iterations of a period (at most 3) */
static long iterations(eg_topo *t)
{
    int per = eg_topo_period(t);
    return per < 1 ? 2 : (per < 3 ? per : 3);
}

/* Checks the P ranks' plans for W against each other and against needs(). */
static void check_plans(const char *graph, eg_comm **c, int P, int n, const eg_wmat *W)
{
    eg_comm_xplan pl[4];
    eg_err e = {0};
    for (int r = 0; r < P; r++)
        ck_assert_msg(eg_comm_plan(c[r], W, &pl[r], &e) == 0, "%s", e.msg);
    for (int r = 0; r < P; r++) {
        int want = 0;
        for (int j = 0; j < n; j++)
            want += owner(j, n, P) != r && needs(W, n, P, r, j);
        ck_assert_msg(pl[r].nrecv == want, "%s n=%d P=%d rank %d: receives %d vectors, needs %d",
                      graph, n, P, r, pl[r].nrecv, want);
        for (int s = 0; s < pl[r].nrecv; s++) {
            int j = pl[r].recv_node[s];
            ck_assert_msg(owner(j, n, P) != r && needs(W, n, P, r, j),
                          "%s n=%d P=%d rank %d receives node %d it does not need", graph, n, P,
                          r, j);
            ck_assert_msg(s == 0 || pl[r].recv_node[s - 1] < j,
                          "%s: receives not in ascending node order", graph);
        }
        /* what r sends to q, in order, is what q receives from r */
        for (int q = 0; q < P; q++) {
            int a = 0, b = 0;
            for (;;) {
                while (a < pl[r].nsend && pl[r].send_rank[a] != q)
                    a++;
                while (b < pl[q].nrecv && owner(pl[q].recv_node[b], n, P) != r)
                    b++;
                if (a == pl[r].nsend || b == pl[q].nrecv) {
                    ck_assert_msg(a == pl[r].nsend && b == pl[q].nrecv,
                                  "%s n=%d P=%d: rank %d sends rank %d %s than it receives",
                                  graph, n, P, r, q, a < pl[r].nsend ? "more" : "fewer");
                    break;
                }
                ck_assert_msg(pl[r].send_node[a] == pl[q].recv_node[b],
                              "%s n=%d P=%d: rank %d sends node %d where rank %d expects %d",
                              graph, n, P, r, pl[r].send_node[a], q, pl[q].recv_node[b]);
                a++;
                b++;
            }
        }
    }
}

START_TEST(test_plan)
{
    for (int g = 0; g < NGRAPHS; g++)
        for (int ni = 0; ni < 3; ni++) {
            int n = NODES[ni];
            eg_topo *t = topo(GRAPHS[g], n);
            if (!t)
                continue;
            for (int P = 1; P <= 4; P++) {
                eg_comm *c[4] = {0};
                eg_err e = {0};
                for (int r = 0; r < P; r++)
                    ck_assert_msg(eg_comm_init_sim(&c[r], n, r, P, 8, 1, t, &e) == 0, "%s", e.msg);
                for (long k = 0; k < iterations(t); k++)
                    check_plans(GRAPHS[g], c, P, n, eg_topo_weights(t, k));
                for (int r = 0; r < P; r++)
                    eg_comm_free(c[r]);
            }
            eg_topo_free(t);
        }
}
END_TEST

/* out = the combine, computed the plain way (descending: the order reversed, to show the
 * bitwise comparison notices the order) */
static void reference(const eg_wmat *W, int n, const float *x, float *out, size_t dim,
                      int descending)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *o = out + (size_t)i * dim;
        memcpy(o, xi, dim * sizeof(float));
        int lo = W->rowptr[i], hi = W->rowptr[i + 1];
        for (int q = 0; q < hi - lo; q++) {
            int e = descending ? hi - 1 - q : lo + q, j = W->col[e];
            if (W->val[e] == 0.0 || j == i)
                continue;
            const float w = (float)W->val[e], *xj = x + (size_t)j * dim;
            for (size_t t = 0; t < dim; t++)
                o[t] += w * (xj[t] - xi[t]);
        }
    }
}

/* every node's combined vectors from P simulated ranks (nthreads OpenMP threads) */
static void gossip_sim(eg_topo *t, int n, int P, long k, int nv, const float *const *all,
                       float *const *out, size_t dim, int nthreads)
{
    eg_err e = {0};
    for (int r = 0; r < P; r++) {
        eg_comm *c = NULL;
        ck_assert_msg(eg_comm_init_sim(&c, n, r, P, dim, nv, t, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(eg_comm_set_threads(c, nthreads, &e), 0);
        omp_set_num_threads(nthreads);
        int lo = eg_comm_lo(c);
        float *o[2];
        for (int v = 0; v < nv; v++)
            o[v] = out[v] + (size_t)lo * dim;
        ck_assert_msg(eg_comm_gossip_sim(c, eg_topo_weights(t, k), nv, all, o, dim, &e) == 0,
                      "%s", e.msg);
        eg_comm_free(c);
    }
}

START_TEST(test_combine_bitwise)
{
    static const size_t dims[] = {1, 17, 4099};
    const size_t maxd = 4099;
    const int maxn = 13;
    float *x = malloc(sizeof(float) * maxn * maxd * 2), *ref = malloc(sizeof(float) * maxn * maxd * 2);
    float *out = malloc(sizeof(float) * maxn * maxd * 2);
    ck_assert(x && ref && out);
    fill_random(x, (size_t)maxn * maxd * 2, 11, 0, 2.0);
    int saved = omp_get_max_threads();
    for (int g = 0; g < NGRAPHS; g++)
        for (int ni = 0; ni < 3; ni++) {
            int n = NODES[ni];
            eg_topo *t = topo(GRAPHS[g], n);
            if (!t)
                continue;
            for (long k = 0; k < iterations(t); k++)
                for (int di = 0; di < 3; di++) {
                    size_t d = dims[di];
                    const float *all[2] = {x, x + (size_t)n * d};
                    float *outs[2] = {out, out + (size_t)n * d};
                    const eg_wmat *W = eg_topo_weights(t, k);
                    reference(W, n, all[0], ref, d, 0);
                    reference(W, n, all[1], ref + (size_t)n * d, d, 0);
                    for (int P = 1; P <= 4; P++)
                        for (int nv = 1; nv <= 2; nv++) {
                            memset(out, 0xff, sizeof(float) * (size_t)n * d * 2);
                            gossip_sim(t, n, P, k, nv, all, outs, d, P == 2 ? 3 : 1);
                            ck_assert_msg(!memcmp(out, ref, sizeof(float) * (size_t)n * d * (size_t)nv),
                                          "%s n=%d W(%ld) dim %zu P=%d nv=%d: differs from "
                                          "the reference",
                                          GRAPHS[g], n, k, d, P, nv);
                        }
                }
            eg_topo_free(t);
        }
    omp_set_num_threads(saved);
    free(x);
    free(ref);
    free(out);
}
END_TEST

/* the bitwise comparison is not vacuous: summing the same terms in another order changes
 * some bits on a dense graph */
START_TEST(test_combine_check_can_fail)
{
    const int n = 13;
    const size_t d = 257;
    eg_topo *t = topo("full", n);
    ck_assert(t);
    float *x = malloc(sizeof(float) * n * d), *a = malloc(sizeof(float) * n * d),
          *b = malloc(sizeof(float) * n * d);
    ck_assert(x && a && b);
    fill_random(x, (size_t)n * d, 5, 1, 2.0);
    const float *all[1] = {x};
    float *outs[1] = {a};
    gossip_sim(t, n, 3, 0, 1, all, outs, d, 1);
    reference(eg_topo_weights(t, 0), n, x, b, d, 1);
    ck_assert_msg(memcmp(a, b, sizeof(float) * n * d) != 0,
                  "ascending and descending sums agree bit for bit: the check cannot fail");
    eg_topo_free(t);
    free(x);
    free(a);
    free(b);
}
END_TEST

/* eg_comm_combine_copies (choco: remote x_hat read from this rank's copies) is the gossip
 * combine bitwise, whatever the rank count; a row whose neighbour has no copy is refused */
START_TEST(test_combine_copies)
{
    const size_t d = 37;
    const int maxn = 13;
    float *x = malloc(sizeof(float) * maxn * d), *ref = malloc(sizeof(float) * maxn * d);
    float *out = malloc(sizeof(float) * maxn * d);
    const float *copies[13];
    ck_assert(x && ref && out);
    fill_random(x, (size_t)maxn * d, 17, 0, 2.0);
    for (int g = 0; g < NGRAPHS; g++)
        for (int ni = 0; ni < 3; ni++) {
            int n = NODES[ni];
            eg_topo *t = topo(GRAPHS[g], n);
            if (!t)
                continue;
            for (long k = 0; k < iterations(t); k++) {
                const eg_wmat *W = eg_topo_weights(t, k);
                reference(W, n, x, ref, d, 0);
                for (int P = 1; P <= 4; P++) {
                    memset(out, 0xff, sizeof(float) * (size_t)n * d);
                    for (int r = 0; r < P; r++) {
                        eg_comm *c = NULL;
                        eg_err e = {0};
                        ck_assert_msg(eg_comm_init_sim(&c, n, r, P, d, 1, t, &e) == 0, "%s", e.msg);
                        int lo = eg_comm_lo(c), hi = eg_comm_hi(c);
                        for (int j = 0; j < n; j++) /* copies elsewhere than in the block */
                            copies[j] = j >= lo && j < hi ? NULL : x + (size_t)j * d;
                        ck_assert_msg(eg_comm_combine_copies(c, W, x + (size_t)lo * d, copies,
                                                             out + (size_t)lo * d, d, &e) == 0,
                                      "%s", e.msg);
                        eg_comm_free(c);
                    }
                    ck_assert_msg(!memcmp(out, ref, sizeof(float) * (size_t)n * d),
                                  "%s n=%d W(%ld) P=%d: combine from copies differs", GRAPHS[g],
                                  n, k, P);
                }
            }
            eg_topo_free(t);
        }
    eg_topo *t = topo("ring", 4);
    eg_comm *c = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_comm_init_sim(&c, 4, 0, 2, d, 1, t, &e), 0);
    for (int j = 0; j < 4; j++)
        copies[j] = j == 3 ? NULL : x + (size_t)j * d; /* node 0 reads node 3 */
    ck_assert_int_eq(eg_comm_combine_copies(c, eg_topo_weights(t, 0), x, copies, out, d, &e), EG_ERUN);
    ck_assert_msg(strstr(e.msg, "reads node 3"), "%s", e.msg);
    eg_comm_free(c);
    eg_topo_free(t);
    free(x);
    free(ref);
    free(out);
}
END_TEST

START_TEST(test_sim_refuses)
{
    eg_topo *t = topo("ring", 4);
    eg_comm *c = NULL;
    eg_err e = {0};
    ck_assert_int_eq(eg_comm_init_sim(&c, 4, 0, 5, 8, 1, t, &e), EG_EINPUT);
    ck_assert_msg(strstr(e.msg, "5 MPI ranks for 4 nodes"), "%s", e.msg);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(eg_comm_init_sim(&c, 4, 2, 2, 8, 1, t, &e), EG_ERUN);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(eg_comm_init_sim(&c, 4, 0, 1, 8, 1, t, &e), 0);
    float x[4 * 9] = {0}, y[4 * 9];
    const float *all[2] = {x, x};
    float *outs[2] = {y, y};
    /* more than the buffers were sized for */
    ck_assert_int_eq(eg_comm_gossip_sim(c, eg_topo_weights(t, 0), 1, all, outs, 9, &e), EG_ERUN);
    ck_assert_int_eq(eg_comm_gossip_sim(c, eg_topo_weights(t, 0), 2, all, outs, 8, &e), EG_ERUN);
    eg_comm_free(c);
    eg_comm_free(NULL);
    eg_topo_free(t);
}
END_TEST

/* Under MPI_Init with one rank: the real exchange equals the reference, and the reductions
 * are what they say. */
START_TEST(test_mpi_one_rank)
{
    const int n = 8;
    const size_t d = 1001;
    eg_err e = {0};
    ck_assert_int_eq(eg_comm_world_size(), 1);
    ck_assert_int_eq(eg_comm_world_rank(), 0);
    float *x = malloc(sizeof(float) * n * d * 2), *ref = malloc(sizeof(float) * n * d * 2),
          *out = malloc(sizeof(float) * n * d * 2);
    ck_assert(x && ref && out);
    fill_random(x, (size_t)n * d * 2, 2, 0, 1.0);
    for (int g = 0; g < NGRAPHS; g++) {
        eg_topo *t = topo(GRAPHS[g], n);
        ck_assert(t);
        eg_comm *c = NULL;
        ck_assert_msg(eg_comm_init(&c, n, d, 2, t, &e) == 0, "%s", e.msg);
        ck_assert(eg_comm_rank(c) == 0 && eg_comm_size(c) == 1 && eg_comm_lo(c) == 0 &&
                  eg_comm_hi(c) == n && eg_comm_host_ranks(c) >= 1);
        const eg_wmat *W = eg_topo_weights(t, 1);
        const float *in[2] = {x, x + (size_t)n * d};
        float *outs[2] = {out, out + (size_t)n * d};
        ck_assert_int_eq(eg_comm_gossip_multi(c, W, 2, in, outs, d, &e), 0);
        reference(W, n, in[0], ref, d, 0);
        reference(W, n, in[1], ref + (size_t)n * d, d, 0);
        ck_assert_msg(!memcmp(out, ref, sizeof(float) * n * d * 2), "%s: gossip differs",
                      GRAPHS[g]);
        eg_comm_free(c);
        eg_topo_free(t);
    }
    /* reductions on one rank */
    eg_topo *t = topo("ring", n);
    eg_comm *c = NULL;
    ck_assert_int_eq(eg_comm_init(&c, n, d, 1, t, &e), 0);
    double *acc = malloc(sizeof(double) * d);
    ck_assert(acc);
    ck_assert_int_eq(eg_comm_sum_nodes(c, x, d, acc, &e), 0);
    for (size_t q = 0; q < d; q++) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += (double)x[(size_t)i * d + q];
        ck_assert_msg(acc[q] == s, "sum_nodes[%zu] %.17g, expected %.17g", q, acc[q], s);
    }
    double local[2 * 8], gathered[2 * 8];
    for (int i = 0; i < 2 * n; i++)
        local[i] = i * 0.5;
    ck_assert_int_eq(eg_comm_gather_nodes(c, local, 2, gathered, &e), 0);
    ck_assert(!memcmp(local, gathered, sizeof local));
    long v[2] = {3, -4};
    ck_assert_int_eq(eg_comm_max_longs(c, v, 2, &e), 0);
    ck_assert(v[0] == 3 && v[1] == -4);
    int same = 0;
    ck_assert_int_eq(eg_comm_same_u64(c, 42, &same, &e), 0);
    ck_assert_int_eq(same, 1);
    ck_assert(eg_comm_world_max(2.5) == 2.5);
    eg_err ok = {0}, bad = {0};
    ck_assert_int_eq(eg_comm_world_agree(EG_OK, &ok), EG_OK);
    eg_err_set(&bad, EG_EINPUT, "spec is bad");
    ck_assert_int_eq(eg_comm_world_agree(EG_EINPUT, &bad), EG_EINPUT);
    ck_assert_str_eq(bad.msg, "spec is bad");
    free(acc);
    eg_comm_free(c);
    eg_topo_free(t);
    free(x);
    free(ref);
    free(out);
}
END_TEST

/* eg_comm_payloads over real MPI on one rank, sending to itself: each receive gets its
 * node's bytes; unreserved, or on a simulated rank: refused */
START_TEST(test_payloads_one_rank)
{
    const int n = 4;
    eg_err e = {0};
    eg_topo *t = topo("ring", n);
    eg_comm *c = NULL, *sim = NULL;
    ck_assert_int_eq(eg_comm_init(&c, n, 8, 1, t, &e), 0);
    unsigned char in[3][7], got[3][7];
    const void *sb[3] = {in[0], in[1], in[2]};
    void *rb[3] = {got[0], got[1], got[2]};
    int node[3] = {0, 2, 3}, rank[3] = {0, 0, 0};
    for (int q = 0; q < 3; q++)
        memset(in[q], 10 + q, sizeof in[q]);
    memset(got, 0, sizeof got);
    ck_assert_int_eq(eg_comm_payloads(c, 3, node, rank, sb, 3, node, rb, 7, &e), EG_ERUN);
    ck_assert_int_eq(eg_comm_reserve_payloads(c, 6, &e), 0);
    ck_assert_msg(eg_comm_payloads(c, 3, node, rank, sb, 3, node, rb, 7, &e) == 0, "%s", e.msg);
    ck_assert(!memcmp(in, got, sizeof in));
    ck_assert_int_eq(eg_comm_payloads(c, 0, NULL, NULL, NULL, 0, NULL, NULL, 7, &e), 0);
    ck_assert_int_eq(eg_comm_init_sim(&sim, n, 0, 2, 8, 1, t, &e), 0);
    ck_assert_int_eq(eg_comm_reserve_payloads(sim, 6, &e), 0);
    ck_assert_int_eq(eg_comm_payloads(sim, 1, node, rank, sb, 0, NULL, NULL, 7, &e), EG_ERUN);
    eg_comm_free(sim);
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

int main(int argc, char **argv)
{
    if (eg_comm_world_init(&argc, &argv))
        return 1;
    Suite *s = suite_create("comm");
    TCase *tc = tcase_create("comm");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_plan);
    tcase_add_test(tc, test_combine_bitwise);
    tcase_add_test(tc, test_combine_check_can_fail);
    tcase_add_test(tc, test_combine_copies);
    tcase_add_test(tc, test_sim_refuses);
    tcase_add_test(tc, test_mpi_one_rank);
    tcase_add_test(tc, test_payloads_one_rank);
    suite_add_tcase(s, tc);
    int rc = eg_test_run_nofork(s); /* no fork: MPI is initialised in this process */
    eg_comm_world_finalize();
    return rc;
}
