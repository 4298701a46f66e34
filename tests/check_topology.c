/* check_topology.c - graph families, weights and spectral facts (docs/graphs.md). */
#include "comm.h"
#include "spec.h"
#include "testutil.h"
#include "topology.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int NS[] = {1, 2, 3, 5, 6, 7, 8, 12, 16, 64, 100};
#define NNS ((int)(sizeof NS / sizeof NS[0]))

static eg_graph_spec spec_of(const char *name)
{
    eg_graph_spec g;
    memset(&g, 0, sizeof g);
    int k = EG_KIND_FIND(eg_graph_kinds, name);
    ck_assert_msg(k >= 0, "no graph %s", name);
    g.kind = (eg_graph_kind)k;
    g.p = 0.2;
    return g;
}

/* builds or fails the test */
static eg_topo *mk(const char *name, int n, uint64_t seed)
{
    eg_graph_spec g = spec_of(name);
    eg_topo *t = NULL;
    eg_err err = {0};
    int rc = eg_topo_init(&t, &g, n, seed, &err);
    ck_assert_msg(rc == EG_OK, "%s n=%d: %s", name, n, err.msg);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(eg_topo_nodes(t), n);
    ck_assert_str_eq(eg_topo_name(t), name);
    return t;
}

static int fits(const char *name, int n)
{
    if (!strcmp(name, "hypercube") || !strcmp(name, "onepeer_hypercube"))
        return (n & (n - 1)) == 0;
    if (!strcmp(name, "random_match"))
        return n == 1 || n % 2 == 0;
    return strcmp(name, "file") != 0 && strcmp(name, "schedule") != 0 &&
           strcmp(name, "inner_outer_exp2") != 0; /* need parameters */
}

static int in_peers(const eg_wmat *W, int *doubly);

static double *dense(eg_topo *t, long k)
{
    int n = eg_topo_nodes(t);
    double *W = malloc((size_t)n * n * sizeof *W);
    ck_assert_ptr_nonnull(W);
    eg_topo_dense(t, k, W);
    return W;
}

static int ipow2_ceil_log2(int n)
{
    int t = 0;
    while ((1 << t) < n)
        t++;
    return t;
}

/* C = A B, n x n row-major */
static void matmul(const double *A, const double *B, double *C, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int q = 0; q < n; q++)
                s += A[i * n + q] * B[q * n + j];
            C[i * n + j] = s;
        }
}

/* max |P - J| over entries of the product W(s + len - 1) ... W(s) */
static double product_dev_from_J(eg_topo *t, long s, int len)
{
    int n = eg_topo_nodes(t);
    double *P = dense(t, s), *tmp = malloc((size_t)n * n * sizeof *tmp);
    for (int k = 1; k < len; k++) {
        double *W = dense(t, s + k);
        matmul(W, P, tmp, n);
        memcpy(P, tmp, (size_t)n * n * sizeof *P);
        free(W);
    }
    double dev = 0;
    for (int q = 0; q < n * n; q++)
        dev = fmax(dev, fabs(P[q] - 1.0 / n));
    free(P);
    free(tmp);
    return dev;
}

static eg_topo_stats stats_of(eg_topo *t)
{
    eg_topo_stats st;
    eg_err err = {0};
    int rc = eg_topo_stats_compute(t, &st, &err);
    ck_assert_msg(rc == EG_OK, "stats of %s: %s", eg_topo_name(t), err.msg);
    return st;
}

/* ------------------------------------------------------------------ */

START_TEST(test_every_graph_row_stochastic_sorted)
{
    for (int g = 0; eg_graph_kinds[g].name; g++) {
        const char *name = eg_graph_kinds[g].name;
        for (int a = 0; a < NNS; a++) {
            int n = NS[a];
            if (!fits(name, n))
                continue;
            eg_topo *t = mk(name, n, 7);
            int per = eg_topo_period(t);
            int kmax = per > 0 ? per + 2 : 5;
            int deg = 0;
            for (long k = 0; k < kmax; k++) {
                const eg_wmat *m = eg_topo_weights(t, k);
                ck_assert_int_eq(m->n, n);
                ck_assert_int_eq(m->rowptr[0], 0);
                ck_assert_int_eq(m->rowptr[n], m->nnz);
                ck_assert_int_le(m->nnz, eg_topo_max_nnz(t));
                for (int i = 0; i < n; i++) {
                    double s = 0;
                    int self = 0, d = 0;
                    for (int q = m->rowptr[i]; q < m->rowptr[i + 1]; q++) {
                        ck_assert_int_ge(m->col[q], 0);
                        ck_assert_int_lt(m->col[q], n);
                        if (q > m->rowptr[i])
                            ck_assert_msg(m->col[q] > m->col[q - 1], "%s n=%d row %d unsorted",
                                          name, n, i);
                        ck_assert(m->val[q] >= 0);
                        if (m->col[q] == i)
                            self = 1;
                        else {
                            ck_assert_msg(m->val[q] > 0, "%s stores a zero", name);
                            d++;
                        }
                        s += m->val[q];
                    }
                    ck_assert_msg(self, "%s n=%d row %d has no self entry", name, n, i);
                    ck_assert_msg(fabs(s - 1.0) < 1e-12, "%s n=%d k=%ld row %d sums to %.17g",
                                  name, n, k, i, s);
                    if (d > deg)
                        deg = d;
                }
            }
            if (eg_graph_kinds[g].doubly) /* the kinds table's fact holds */
                for (long k = 0; k < kmax; k++) {
                    int doubly;
                    in_peers(eg_topo_weights(t, k), &doubly);
                    ck_assert_msg(doubly, "%s n=%d W(%ld) is not column-stochastic", name, n, k);
                }
            if (!strcmp(name, "random_peers")) /* a bound: all may send to one node */
                ck_assert_int_le(deg, eg_topo_max_degree(t));
            else
                ck_assert_int_eq(deg, eg_topo_max_degree(t));
            if (n == 1) {
                const eg_wmat *m = eg_topo_weights(t, 0);
                ck_assert_int_eq(m->nnz, 1);
                ck_assert(m->val[0] == 1.0);
            }
            eg_topo_free(t);
        }
    }
}
END_TEST

START_TEST(test_periods)
{
    eg_topo *t;
    t = mk("exp", 16, 1);
    ck_assert_int_eq(eg_topo_period(t), 1);
    eg_topo_free(t);
    t = mk("onepeer_exp", 16, 1);
    ck_assert_int_eq(eg_topo_period(t), 4);
    eg_topo_free(t);
    t = mk("onepeer_exp", 100, 1);
    ck_assert_int_eq(eg_topo_period(t), 7);
    eg_topo_free(t);
    t = mk("onepeer_exp", 2, 1);
    ck_assert_int_eq(eg_topo_period(t), 1);
    eg_topo_free(t);
    t = mk("onepeer_exp", 1, 1);
    ck_assert_int_eq(eg_topo_period(t), 1);
    eg_topo_free(t);
    t = mk("onepeer_hypercube", 64, 1);
    ck_assert_int_eq(eg_topo_period(t), 6);
    eg_topo_free(t);
    t = mk("random_match", 8, 1);
    ck_assert_int_eq(eg_topo_period(t), 0);
    eg_topo_stats st = stats_of(t);
    ck_assert_int_eq(st.period, 1);
    ck_assert_int_eq(st.degree, 1);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_exp_structure)
{
    /* n = 12, tau = 4: in-neighbours i-1, i-2, i-4, i-8 */
    eg_topo *t = mk("exp", 12, 1);
    ck_assert_int_eq(eg_topo_max_degree(t), 4);
    double *W = dense(t, 0);
    for (int i = 0; i < 12; i++)
        for (int j = 0; j < 12; j++) {
            int d = ((i - j) % 12 + 12) % 12;
            double want = (d == 0 || d == 1 || d == 2 || d == 4 || d == 8) ? 0.2 : 0.0;
            ck_assert(W[i * 12 + j] == want);
        }
    free(W);
    eg_topo_free(t);
    /* sym_exp n = 8: +-1, +-2, +-4 -> 5 distinct neighbours, 1/6 each */
    t = mk("sym_exp", 8, 1);
    ck_assert_int_eq(eg_topo_max_degree(t), 5);
    const eg_wmat *m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 8 * 6);
    for (int q = 0; q < m->nnz; q++)
        ck_assert(m->val[q] == 1.0 / 6.0);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_exp_rho_closed_form)
{
    /* paper: rho(exp) = 1 - 2/(1 + tau) for even n */
    const int ns[] = {2, 4, 6, 8, 10, 12, 16, 30, 64, 100, 128};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        int n = ns[a], tau = ipow2_ceil_log2(n);
        eg_topo *t = mk("exp", n, 1);
        eg_topo_stats st = stats_of(t);
        double want = 1.0 - 2.0 / (1.0 + tau);
        ck_assert_msg(fabs(st.rho - want) < 1e-9, "exp n=%d rho %.17g want %.17g", n, st.rho,
                      want);
        ck_assert(fabs(st.gap - (1 - st.rho)) < 1e-15);
        ck_assert(st.rho_period == st.rho);
        ck_assert_int_eq(st.period, 1);
        ck_assert_int_eq(st.degree, tau);
        eg_topo_free(t);
    }
}
END_TEST

START_TEST(test_ring_rho_closed_form)
{
    /* W = (I + S + S^T)/3 has eigenvalues (1 + 2cos(2 pi m/n))/3. For n >= 3 the largest in
     * modulus besides m = 0 is m = 1 (for odd n the most negative one, m = (n-1)/2, has
     * modulus (2cos(pi/n) - 1)/3, which is smaller since cos(pi/n) >= 1/2). n = 2 gives J. */
    const int ns[] = {3, 4, 5, 6, 7, 8, 9, 12, 16, 33, 100};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        int n = ns[a];
        eg_topo *t = mk("ring", n, 1);
        eg_topo_stats st = stats_of(t);
        double want = 1.0 / 3.0 + (2.0 / 3.0) * cos(2 * 3.14159265358979323846 / n);
        ck_assert_msg(fabs(st.rho - want) < 1e-9, "ring n=%d rho %.17g want %.17g", n, st.rho,
                      want);
        ck_assert_int_eq(st.degree, 2);
        eg_topo_free(t);
    }
    eg_topo *t = mk("ring", 2, 1);
    const eg_wmat *m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 4);
    for (int q = 0; q < 4; q++)
        ck_assert(m->val[q] == 0.5);
    ck_assert(stats_of(t).rho < 1e-12);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_onepeer_exp_exact_averaging)
{
    const int pow2[] = {2, 4, 8, 16, 64};
    for (size_t a = 0; a < sizeof pow2 / sizeof pow2[0]; a++) {
        int n = pow2[a], tau = ipow2_ceil_log2(n);
        eg_topo *t = mk("onepeer_exp", n, 1);
        ck_assert_int_eq(eg_topo_max_degree(t), 1);
        for (long s = 0; s < 3; s++) {
            double dev = product_dev_from_J(t, s, tau);
            ck_assert_msg(dev < 1e-12, "onepeer_exp n=%d from k=%ld: dev %g", n, s, dev);
        }
        eg_topo_stats st = stats_of(t);
        ck_assert_msg(st.rho_period < 1e-12, "n=%d rho_period %g", n, st.rho_period);
        ck_assert_int_eq(st.period, tau);
        ck_assert_int_eq(st.degree, 1);
        if (n > 2) /* W(tau-1) pairs i with i - n/2: not connected, rho = 1 */
            ck_assert(fabs(st.rho - 1.0) < 1e-9);
        eg_topo_free(t);
    }
    const int other[] = {6, 12, 100};
    for (size_t a = 0; a < sizeof other / sizeof other[0]; a++) {
        int n = other[a], tau = ipow2_ceil_log2(n);
        eg_topo *t = mk("onepeer_exp", n, 1);
        double dev = product_dev_from_J(t, 0, tau);
        ck_assert_msg(dev > 1e-3, "onepeer_exp n=%d averaged exactly?", n);
        eg_topo_stats st = stats_of(t);
        ck_assert_msg(st.rho_period > 1e-3, "n=%d rho_period %g", n, st.rho_period);
        eg_topo_free(t);
    }
}
END_TEST

START_TEST(test_hypercube)
{
    const int pow2[] = {2, 4, 8, 16, 64};
    for (size_t a = 0; a < sizeof pow2 / sizeof pow2[0]; a++) {
        int n = pow2[a], tau = ipow2_ceil_log2(n);
        eg_topo *t = mk("hypercube", n, 1);
        eg_topo_stats st = stats_of(t);
        double want = 1.0 - 2.0 / (tau + 1.0);
        ck_assert_msg(fabs(st.rho - want) < 1e-9, "hypercube n=%d rho %.17g want %.17g", n,
                      st.rho, want);
        ck_assert_int_eq(st.degree, tau);
        double *W = dense(t, 0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                int x = i ^ j;
                double w = (x == 0 || (x & (x - 1)) == 0) ? 1.0 / (tau + 1) : 0.0;
                ck_assert(W[i * n + j] == w);
            }
        free(W);
        eg_topo_free(t);

        t = mk("onepeer_hypercube", n, 1);
        ck_assert(product_dev_from_J(t, 0, tau) < 1e-12);
        ck_assert(product_dev_from_J(t, 1, tau) < 1e-12);
        st = stats_of(t);
        ck_assert(st.rho_period < 1e-12);
        ck_assert_int_eq(st.period, tau);
        ck_assert_int_eq(st.degree, 1);
        eg_topo_free(t);
    }
}
END_TEST

static void check_symmetric_doubly_stochastic(eg_topo *t)
{
    int n = eg_topo_nodes(t);
    double *W = dense(t, 0);
    for (int j = 0; j < n; j++) {
        double cs = 0;
        for (int i = 0; i < n; i++) {
            ck_assert_msg(W[i * n + j] == W[j * n + i], "%s n=%d: W[%d][%d] != W[%d][%d]",
                          eg_topo_name(t), n, i, j, j, i);
            cs += W[i * n + j];
        }
        ck_assert_msg(fabs(cs - 1) < 1e-12, "%s n=%d column %d sums to %.17g", eg_topo_name(t),
                      n, j, cs);
    }
    free(W);
}

START_TEST(test_metropolis_hastings)
{
    const char *mh[] = {"grid", "star", "erdos_renyi"};
    for (int g = 0; g < 3; g++)
        for (int a = 0; a < NNS; a++) {
            eg_topo *t = mk(mh[g], NS[a], 3);
            check_symmetric_doubly_stochastic(t);
            eg_topo_free(t);
        }
    /* star: hub gives 1/n to everyone; a leaf 1/n to the hub and 1 - 1/n to itself */
    eg_topo *t = mk("star", 5, 1);
    double *W = dense(t, 0);
    for (int j = 0; j < 5; j++)
        ck_assert(fabs(W[j] - 0.2) < 1e-15);
    for (int i = 1; i < 5; i++)
        ck_assert(fabs(W[i * 5 + i] - 0.8) < 1e-15);
    ck_assert_int_eq(eg_topo_max_degree(t), 4);
    free(W);
    eg_topo_free(t);
    /* grid 3 x 4 (n = 12): corner 0 has neighbours 1 (d=3) and 4 (d=3): 1/4 each */
    t = mk("grid", 12, 1);
    W = dense(t, 0);
    ck_assert(W[0 * 12 + 1] == 0.25 && W[0 * 12 + 4] == 0.25 && W[0] == 0.5);
    /* node 5 (row 1, col 1) has degree 4: all edges 1/5, self 1/5 */
    ck_assert(fabs(W[5 * 12 + 5] - 0.2) < 1e-15);
    ck_assert(W[5 * 12 + 6] == 0.2);
    ck_assert(W[0 * 12 + 3] == 0.0); /* no wrap-around */
    free(W);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_torus)
{
    /* 4 x 4: 4 neighbours, 1/5 each */
    eg_topo *t = mk("torus", 16, 1);
    const eg_wmat *m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 16 * 5);
    for (int q = 0; q < m->nnz; q++)
        ck_assert(m->val[q] == 0.2);
    eg_topo_free(t);
    /* 2 x 4: up and down are the same node -> 3 distinct neighbours, 1/4 each */
    t = mk("torus", 8, 1);
    m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 8 * 4);
    for (int q = 0; q < m->nnz; q++)
        ck_assert(m->val[q] == 0.25);
    ck_assert_int_eq(eg_topo_max_degree(t), 3);
    eg_topo_free(t);
    /* prime n: 1 x 7 degenerates to the ring */
    t = mk("torus", 7, 1);
    eg_topo *r = mk("ring", 7, 1);
    double *A = dense(t, 0), *B = dense(r, 0);
    ck_assert(memcmp(A, B, 49 * sizeof *A) == 0);
    free(A);
    free(B);
    eg_topo_free(t);
    eg_topo_free(r);
}
END_TEST

START_TEST(test_full)
{
    eg_topo *t = mk("full", 12, 1);
    eg_topo_stats st = stats_of(t);
    ck_assert(st.rho < 1e-12);
    ck_assert_int_eq(st.degree, 11);
    const eg_wmat *m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 144);
    for (int q = 0; q < 144; q++)
        ck_assert(m->val[q] == 1.0 / 12);
    eg_topo_free(t);
}
END_TEST

static int connected(const eg_wmat *m)
{
    int n = m->n, head = 0, tail = 0;
    int *seen = calloc((size_t)n, sizeof *seen), *queue = malloc((size_t)n * sizeof *queue);
    seen[0] = 1;
    queue[tail++] = 0;
    while (head < tail) {
        int i = queue[head++];
        for (int q = m->rowptr[i]; q < m->rowptr[i + 1]; q++)
            if (!seen[m->col[q]]) {
                seen[m->col[q]] = 1;
                queue[tail++] = m->col[q];
            }
    }
    free(seen);
    free(queue);
    return tail == n;
}

static int same_wmat(const eg_wmat *a, const eg_wmat *b)
{
    return a->n == b->n && a->nnz == b->nnz &&
           !memcmp(a->rowptr, b->rowptr, (a->n + 1) * sizeof(int)) &&
           !memcmp(a->col, b->col, a->nnz * sizeof(int)) &&
           !memcmp(a->val, b->val, a->nnz * sizeof(double));
}

START_TEST(test_erdos_renyi)
{
    const int ns[] = {2, 5, 16, 32, 100};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        int n = ns[a];
        eg_topo *t1 = mk("erdos_renyi", n, 11), *t2 = mk("erdos_renyi", n, 11);
        ck_assert(connected(eg_topo_weights(t1, 0)));
        ck_assert(same_wmat(eg_topo_weights(t1, 0), eg_topo_weights(t2, 0)));
        ck_assert(same_wmat(eg_topo_weights(t1, 0), eg_topo_weights(t1, 17))); /* static */
        if (n >= 16) {
            eg_topo *t3 = mk("erdos_renyi", n, 12);
            ck_assert(connected(eg_topo_weights(t3, 0)));
            ck_assert_msg(!same_wmat(eg_topo_weights(t1, 0), eg_topo_weights(t3, 0)),
                          "seeds 11 and 12 drew the same G(%d, 0.2)", n);
            eg_topo_free(t3);
        }
        eg_topo_free(t1);
        eg_topo_free(t2);
    }
    /* p = 1 is the complete graph (MH weights 1/n) */
    eg_graph_spec g = spec_of("erdos_renyi");
    g.p = 1.0;
    eg_topo *t = NULL;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 9, 1, &err), EG_OK);
    ck_assert_int_eq(eg_topo_max_degree(t), 8);
    const eg_wmat *m = eg_topo_weights(t, 0);
    for (int q = 0; q < m->nnz; q++)
        ck_assert(fabs(m->val[q] - 1.0 / 9) < 1e-15);
    eg_topo_free(t);
    /* hopeless p gives up with a message suggesting a larger p */
    g.p = 1e-6;
    t = NULL;
    ck_assert_int_eq(eg_topo_init(&t, &g, 200, 1, &err), EG_EINPUT);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, "larger p") != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_random_match)
{
    const int n = 16;
    eg_topo *t = mk("random_match", n, 5), *u = mk("random_match", n, 5);
    eg_topo *v = mk("random_match", n, 6);
    eg_wmat saved;
    int diff_k = 0, diff_seed = 0;
    int rowptr[n + 1], col[2 * n];
    double val[2 * n];
    for (long k = 0; k < 40; k++) {
        const eg_wmat *m = eg_topo_weights(t, k);
        ck_assert_int_eq(m->nnz, 2 * n);
        int peer[n];
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(m->rowptr[i + 1] - m->rowptr[i], 2);
            int q = m->rowptr[i];
            ck_assert(m->val[q] == 0.5 && m->val[q + 1] == 0.5);
            peer[i] = m->col[q] == i ? m->col[q + 1] : m->col[q];
            ck_assert_int_ne(peer[i], i);
        }
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(peer[peer[i]], i); /* a perfect matching */
        if (k == 0) {
            memcpy(rowptr, m->rowptr, sizeof rowptr);
            memcpy(col, m->col, sizeof col);
            memcpy(val, m->val, sizeof val);
        } else if (memcmp(col, m->col, sizeof col))
            diff_k = 1;
        if (!same_wmat(m, eg_topo_weights(v, k)))
            diff_seed = 1;
    }
    ck_assert(diff_k);
    ck_assert(diff_seed);
    /* random access: W(0) again, and from a fresh object asked in another order */
    saved.n = n;
    saved.nnz = 2 * n;
    saved.rowptr = rowptr;
    saved.col = col;
    saved.val = val;
    eg_topo_weights(u, 1000000);
    eg_topo_weights(u, 3);
    ck_assert(same_wmat(&saved, eg_topo_weights(u, 0)));
    ck_assert(same_wmat(&saved, eg_topo_weights(t, 0)));
    eg_topo_free(t);
    eg_topo_free(u);
    eg_topo_free(v);
}
END_TEST

START_TEST(test_weights_no_realloc)
{
    const char *names[] = {"exp", "onepeer_exp", "random_match", "onepeer_hypercube"};
    for (int g = 0; g < 4; g++) {
        eg_topo *t = mk(names[g], 16, 1);
        int per = eg_topo_period(t) > 0 ? eg_topo_period(t) : 1;
        /* remember the storage of each W(k) of one period, then ask many more times */
        const eg_wmat *first[16];
        int *rp[16], *cp[16];
        double *vp[16];
        int nz[16];
        for (int k = 0; k < per; k++) {
            first[k] = eg_topo_weights(t, k);
            rp[k] = first[k]->rowptr;
            cp[k] = first[k]->col;
            vp[k] = first[k]->val;
            nz[k] = first[k]->nnz;
        }
        for (long k = 0; k < 200; k++) {
            const eg_wmat *m = eg_topo_weights(t, k);
            int r = (int)(k % per);
            ck_assert_ptr_eq(m, first[r]);
            ck_assert_ptr_eq(m->rowptr, rp[r]);
            ck_assert_ptr_eq(m->col, cp[r]);
            ck_assert_ptr_eq(m->val, vp[r]);
            ck_assert_int_eq(m->nnz, nz[r]);
            ck_assert_int_le(m->nnz, eg_topo_max_nnz(t));
        }
        eg_topo_free(t);
    }
}
END_TEST

static void expect_einput(const char *name, int n, double p, const char *msg_part)
{
    eg_graph_spec g = spec_of(name);
    g.p = p;
    eg_topo *t = (eg_topo *)&g; /* must be reset to NULL */
    eg_err err = {0};
    int rc = eg_topo_init(&t, &g, n, 1, &err);
    ck_assert_msg(rc == EG_EINPUT, "%s n=%d p=%g: rc %d", name, n, p, rc);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, msg_part) != NULL, "message '%s' lacks '%s'", err.msg,
                  msg_part);
}

START_TEST(test_rejections)
{
    eg_graph_spec g = spec_of("hypercube");
    eg_topo *t = NULL;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 12, 1, &err), EG_EINPUT);
    ck_assert_str_eq(err.msg, "hypercube needs nodes to be a power of two (got 12)");
    expect_einput("onepeer_hypercube", 6, 0.2, "power of two (got 6)");
    expect_einput("random_match", 7, 0.2, "even");
    expect_einput("erdos_renyi", 8, 0.0, "p in (0, 1]");
    expect_einput("erdos_renyi", 8, 1.5, "p in (0, 1]");
    expect_einput("erdos_renyi", 8, -0.1, "p in (0, 1]");
    expect_einput("erdos_renyi", 8, NAN, "p in (0, 1]");
    expect_einput("ring", 0, 0.2, "nodes must be >= 1");
    expect_einput("file", 4, 0.2, "needs a path");
}
END_TEST

static char *write_fixture(const char *dir, const char *name, const char *text)
{
    static char path[4][600];
    static int slot;
    char *p = path[slot++ % 4];
    snprintf(p, 600, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

static int load_file(const char *path, int n, eg_topo **t, eg_err *err)
{
    eg_graph_spec g = spec_of("file");
    snprintf(g.path, sizeof g.path, "%s", path);
    return eg_topo_init(t, &g, n, 1, err);
}

START_TEST(test_file_graph)
{
    const char *dir = eg_test_tmpdir();
    ck_assert_ptr_nonnull(dir);
    eg_topo *t = NULL;
    eg_err err = {0};

    const char *good = "# a 4-node ring, Metropolis weights\n"
                       "0.5, 0.25, 0, 0.25\n"
                       "\n"
                       "0.25,0.5,0.25,0\r\n"
                       "  0 , 0.25 , 0.5 , 0.25\n"
                       "# comment in between\n"
                       "0.25,0,0.25,0.5\n";
    char *p = write_fixture(dir, "good.csv", good);
    ck_assert_msg(load_file(p, 4, &t, &err) == EG_OK, "%s", err.msg);
    ck_assert_str_eq(eg_topo_name(t), "file");
    const eg_wmat *m = eg_topo_weights(t, 0);
    ck_assert_int_eq(m->nnz, 12); /* zeros omitted */
    ck_assert_int_eq(eg_topo_max_degree(t), 2);
    double *W = dense(t, 0);
    ck_assert(W[0] == 0.5 && W[1] == 0.25 && W[2] == 0.0 && W[3] == 0.25);
    ck_assert(W[2 * 4 + 3] == 0.25);
    free(W);
    eg_topo_stats st = stats_of(t);
    ck_assert(fabs(st.rho - 0.5) < 1e-12); /* eigenvalues 1, 0.5, 0.5, 0 */
    eg_topo_free(t);

    /* a zero self weight is kept as an entry */
    p = write_fixture(dir, "swap.csv", "0,1\n1,0\n");
    ck_assert_msg(load_file(p, 2, &t, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(eg_topo_weights(t, 0)->nnz, 4);
    eg_topo_free(t);

    char want[800];
    p = write_fixture(dir, "W.csv", "0.5,0.5,0,0\n0,0.5,0.5,0\n0,0,0.5,0.4\n0.5,0,0,0.5\n");
    ck_assert_int_eq(load_file(p, 4, &t, &err), EG_EINPUT);
    ck_assert_ptr_null(t);
    snprintf(want, sizeof want, "%s:3: row 2 sums to 0.9 (must be 1 within 1e-9)", p);
    ck_assert_str_eq(err.msg, want);

    p = write_fixture(dir, "five.csv", "1,0,0,0\n0,1,0,0\n0,0,1,0\n0,0,0,1\n0,0,0,1\n");
    ck_assert_int_eq(load_file(p, 4, &t, &err), EG_EINPUT);
    snprintf(want, sizeof want, "%s: has 5 rows, nodes is 4", p);
    ck_assert_str_eq(err.msg, want);

    p = write_fixture(dir, "wide.csv", "1,0,0\n0,1,0\n");
    ck_assert_int_eq(load_file(p, 2, &t, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, ":1: row 0 has 3 entries, nodes is 2"), "%s", err.msg);

    p = write_fixture(dir, "neg.csv", "1.5,-0.5\n0.5,0.5\n");
    ck_assert_int_eq(load_file(p, 2, &t, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "neg.csv:1:") && strstr(err.msg, "negative"), "%s", err.msg);

    p = write_fixture(dir, "junk.csv", "# header\n0.5,0.5\n0.5,abc\n");
    ck_assert_int_eq(load_file(p, 2, &t, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "junk.csv:3: cannot parse 'abc'"), "%s", err.msg);

    p = write_fixture(dir, "nan.csv", "nan,0.5\n0.5,0.5\n");
    ck_assert_int_eq(load_file(p, 2, &t, &err), EG_EINPUT);

    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing.csv", dir);
    ck_assert_int_eq(load_file(missing, 2, &t, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
}
END_TEST

START_TEST(test_spectral_norm)
{
    double I[16] = {0}, P[16] = {0};
    for (int i = 0; i < 4; i++) {
        I[i * 4 + i] = 1;
        P[i * 4 + (i + 1) % 4] = 1; /* a cyclic shift: not symmetric */
    }
    ck_assert(fabs(eg_spectral_norm_minus_J(I, 4) - 1) < 1e-12);
    ck_assert(fabs(eg_spectral_norm_minus_J(P, 4) - 1) < 1e-12);
    double one = 1.0;
    ck_assert(fabs(eg_spectral_norm_minus_J(&one, 1)) < 1e-15);
    ck_assert(eg_spectral_norm_minus_J(I, 0) < 0);
}
END_TEST


/* ------------------------------------------------------------------ issue 16 graphs */

static eg_topo *mk_spec(const eg_graph_spec *g, int n, uint64_t seed)
{
    eg_topo *t = NULL;
    eg_err err = {0};
    int rc = eg_topo_init(&t, g, n, seed, &err);
    ck_assert_msg(rc == EG_OK, "%s n=%d: %s", eg_graph_kinds[g->kind].name, n, err.msg);
    return t;
}

static eg_topo *mk_base(int n, int k)
{
    eg_graph_spec g = spec_of("base");
    g.peers = k;
    return mk_spec(&g, n, 1);
}

/* X <- W X for a sparse W and a dense n x n X (tmp: n x n scratch) */
static void apply_sparse(const eg_wmat *W, double *X, double *tmp, int n)
{
    memset(tmp, 0, (size_t)n * n * sizeof *tmp);
    for (int i = 0; i < n; i++)
        for (int q = W->rowptr[i]; q < W->rowptr[i + 1]; q++)
            for (int c = 0; c < n; c++)
                tmp[(size_t)i * n + c] += W->val[q] * X[(size_t)W->col[q] * n + c];
    memcpy(X, tmp, (size_t)n * n * sizeof *X);
}

/* max |W(s+len-1)...W(s) - J| with sparse products (fine for n in the thousands) */
static double sparse_product_dev(eg_topo *t, long s, int len)
{
    int n = eg_topo_nodes(t);
    double *X = calloc((size_t)n * n, sizeof *X), *tmp = malloc((size_t)n * n * sizeof *tmp);
    ck_assert(X && tmp);
    for (int i = 0; i < n; i++)
        X[(size_t)i * n + i] = 1.0;
    for (int k = 0; k < len; k++)
        apply_sparse(eg_topo_weights(t, s + k), X, tmp, n);
    double dev = 0;
    for (size_t q = 0; q < (size_t)n * n; q++)
        dev = fmax(dev, fabs(X[q] - 1.0 / n));
    free(X);
    free(tmp);
    return dev;
}

/* most in-peers (self excluded) of any row, and whether every column sums to 1 */
static int in_peers(const eg_wmat *W, int *doubly)
{
    int deg = 0, n = W->n;
    double *cs = calloc((size_t)n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        int d = 0;
        for (int q = W->rowptr[i]; q < W->rowptr[i + 1]; q++) {
            d += W->col[q] != i;
            cs[W->col[q]] += W->val[q];
        }
        deg = d > deg ? d : deg;
    }
    *doubly = 1;
    for (int j = 0; j < n; j++)
        if (fabs(cs[j] - 1.0) > 1e-12)
            *doubly = 0;
    free(cs);
    return deg;
}

START_TEST(test_base_exact_every_n)
{
    static const int big[] = {100, 125, 243, 256, 1000};
    for (int k = 1; k <= 4; k++)
        for (int a = 0; a < 39 + 5; a++) {
            int n = a < 39 ? a + 2 : big[a - 39];
            if (n == 1000 && k > 3)
                continue;
            eg_topo *t = mk_base(n, k);
            int per = eg_topo_period(t);
            ck_assert_int_ge(per, 1);
            for (int r = 0; r < per; r++) {
                int doubly;
                int d = in_peers(eg_topo_weights(t, r), &doubly);
                ck_assert_msg(d <= k, "base k=%d n=%d W(%d) has %d in-peers", k, n, r, d);
                ck_assert_msg(doubly, "base k=%d n=%d W(%d) not doubly stochastic", k, n, r);
            }
            double dev = sparse_product_dev(t, 0, per);
            ck_assert_msg(dev < 1e-12, "base k=%d n=%d: product deviates %g from J", k, n, dev);
            eg_topo_free(t);
        }
}
END_TEST

START_TEST(test_base_periods_as_paper)
{
    /* k = 1: the construction's lengths (issue 16); k + 1 >= n: one round of averaging */
    static const int n1[] = {2, 6, 12, 25, 100, 4, 3};
    static const int p1[] = {1, 4, 5, 9, 11, 2, 3};
    for (int q = 0; q < 7; q++) {
        eg_topo *t = mk_base(n1[q], 1);
        ck_assert_msg(eg_topo_period(t) == p1[q], "base k=1 n=%d: period %d, want %d", n1[q],
                      eg_topo_period(t), p1[q]);
        eg_topo_free(t);
    }
    eg_topo *t = mk_base(5, 4);
    ck_assert_int_eq(eg_topo_period(t), 1);
    eg_topo_free(t);
    t = mk_base(1, 1);
    ck_assert_int_eq(eg_topo_period(t), 1);
    eg_topo_free(t);
    /* rho_period as `expgraph graph base --nodes 6,12,24,48,100` prints it */
    static const int ns[] = {6, 12, 24, 48, 100};
    for (int q = 0; q < 5; q++) {
        t = mk_base(ns[q], 1);
        eg_topo_stats st = stats_of(t);
        ck_assert_msg(st.rho_period < 1e-14, "n=%d rho_period %g", ns[q], st.rho_period);
        ck_assert_int_eq(st.degree, 1);
        ck_assert(st.doubly);
        eg_topo_free(t);
    }
    /* the check can fail: one period short of the end is not exact */
    t = mk_base(25, 1);
    ck_assert(sparse_product_dev(t, 0, eg_topo_period(t) - 1) > 1e-3);
    eg_topo_free(t);
}
END_TEST

static eg_graph_spec hier_spec(int local, const char *outer)
{
    eg_graph_spec g = spec_of("hierarchical");
    g.local = local;
    g.outer.kind = spec_of(outer).kind;
    g.outer.p = 0.2;
    return g;
}

START_TEST(test_hierarchical_product)
{
    static const int Ls[] = {1, 2, 3, 4};
    for (int a = 0; a < 4; a++) {
        int L = Ls[a], M = 8, n = M * L;
        eg_graph_spec g = hier_spec(L, "onepeer_exp");
        eg_topo *t = mk_spec(&g, n, 1), *o = mk("onepeer_exp", M, 1);
        ck_assert_int_eq(eg_topo_period(t), 3);
        ck_assert_int_eq(eg_topo_max_degree(t), 2 * L - 1);
        for (long k = 0; k < 5; k++) {
            double *W = dense(t, k), *Wo = dense(o, k);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    ck_assert_msg(W[i * n + j] == Wo[(i / L) * M + j / L] / L,
                                  "L=%d k=%ld W[%d][%d]", L, k, i, j);
            free(W);
            free(Wo);
            /* traffic: L - 1 inside each machine, one vector per peer machine */
            const eg_wmat *w = eg_topo_weights(t, k);
            ck_assert_int_eq(w->local, L);
            ck_assert_int_eq(w->inter, (long)n);
            ck_assert_int_eq(w->sends, (long)n * (L - 1) + n);
            double b = eg_comm_gossip_bytes(w, 2, 10);
            ck_assert(b == (double)(n * (L - 1) + n) * 2 * 10 * sizeof(float));
            ck_assert(eg_comm_inter_bytes(w, b) == (double)n * 2 * 10 * sizeof(float));
        }
        /* n / L machines, a power of two: exact after log2(n / L) iterations, not before */
        ck_assert(sparse_product_dev(t, 0, 3) < 1e-15);
        ck_assert(sparse_product_dev(t, 0, 2) > 1e-3);
        eg_topo_free(t);
        eg_topo_free(o);
    }
    /* graphs without machines: every byte is "between machines" */
    eg_topo *r = mk("ring", 6, 1);
    const eg_wmat *w = eg_topo_weights(r, 0);
    ck_assert_int_eq(w->local, 0);
    ck_assert(eg_comm_gossip_bytes(w, 1, 3) == 12.0 * 3 * sizeof(float));
    ck_assert(eg_comm_inter_bytes(w, 12345.0) == 12345.0);
    eg_topo_free(r);
    /* one machine: all traffic inside it */
    eg_graph_spec g = hier_spec(4, "base");
    eg_topo *t = mk_spec(&g, 4, 1);
    w = eg_topo_weights(t, 0);
    ck_assert(eg_comm_inter_bytes(w, eg_comm_gossip_bytes(w, 1, 5)) == 0.0);
    ck_assert_int_eq(w->sends, 12);
    eg_topo_free(t);
}
END_TEST

START_TEST(test_hierarchical_rejects)
{
    eg_graph_spec g = hier_spec(3, "ring");
    eg_topo *t = NULL;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 8, 1, &err), EG_EINPUT);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, "local 3, nodes 8"), "%s", err.msg);
    g = hier_spec(2, "hypercube"); /* 3 machines: not a power of two */
    ck_assert_int_eq(eg_topo_init(&t, &g, 6, 1, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "outer graph on 3 machines"), "%s", err.msg);
    g = hier_spec(2, "ring");
    g.outer.kind = EG_GRAPH_HIERARCHICAL;
    ck_assert_int_eq(eg_topo_init(&t, &g, 8, 1, &err), EG_EINPUT);
}
END_TEST

static eg_graph_spec sched_spec(void)
{
    eg_graph_spec g = spec_of("schedule");
    g.nphases = 3;
    g.phases[0].g.kind = EG_GRAPH_EXP;
    g.phases[0].until = 7; /* iterations 0..6 */
    g.phases[1].g.kind = EG_GRAPH_RING;
    g.phases[1].until = 2.5; /* epochs: with 4 per epoch, iterations 7..9 */
    g.phases[1].until_epoch = 1;
    g.phases[2].g.kind = EG_GRAPH_ONEPEER_EXP;
    return g;
}

START_TEST(test_schedule_switches)
{
    eg_graph_spec g = sched_spec();
    eg_topo *t = mk_spec(&g, 8, 1);
    eg_topo *ex = mk("exp", 8, 1), *ri = mk("ring", 8, 1), *op = mk("onepeer_exp", 8, 1);
    eg_topo_set_iters_per_epoch(t, 4.0);
    ck_assert_int_eq(eg_topo_period(t), 0);
    ck_assert_int_eq(eg_topo_max_degree(t), 3);
    for (long k = 0; k < 20; k++) {
        const eg_wmat *w = eg_topo_weights(t, k);
        const eg_wmat *want = k < 7 ? eg_topo_weights(ex, k)
                              : k < 10 ? eg_topo_weights(ri, k - 7)
                                       : eg_topo_weights(op, k - 10); /* phase's own W(0) first */
        ck_assert_msg(same_wmat(w, want), "schedule k=%ld", k);
    }
    /* any order: W(k) is a function of k (what resuming inside a phase relies on) */
    ck_assert(same_wmat(eg_topo_weights(t, 11), eg_topo_weights(op, 1)));
    ck_assert(same_wmat(eg_topo_weights(t, 3), eg_topo_weights(ex, 0)));
    /* until_epoch before the iterations per epoch are known: one iteration per epoch */
    eg_topo *u = mk_spec(&g, 8, 1);
    ck_assert(same_wmat(eg_topo_weights(u, 7), eg_topo_weights(op, 0)));
    eg_topo_free(u);
    eg_topo_free(t);
    eg_topo_free(ex);
    eg_topo_free(ri);
    eg_topo_free(op);
    /* a schedule cannot nest, and needs phases */
    g.phases[1].g.kind = EG_GRAPH_SCHEDULE;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 8, 1, &err), EG_EINPUT);
    g.nphases = 0;
    ck_assert_int_eq(eg_topo_init(&t, &g, 8, 1, &err), EG_EINPUT);
}
END_TEST

/* eg_topo_reach (who may ever send to whom; choco's subscriptions): exactly the union of
 * W(k)'s off-diagonal nonzeros over k < 200 (more than a period of each), rows ascending
 * without self or duplicates; random graphs, and what holds one, reach every pair */
START_TEST(test_reach)
{
    static const char *graphs[] = {
        "ring", "exp", "onepeer_exp", "star", "torus", "{name: base, peers: 2}", "random_match",
        "{name: random_peers, peers: 2}", "{name: hierarchical, local: 2, outer: onepeer_exp}",
        "{name: hierarchical, local: 2, outer: random_match}",
        "{name: schedule, phases: [{graph: ring, until_iter: 3}, {graph: onepeer_exp}]}",
        "{name: schedule, phases: [{graph: ring, until_iter: 3}, {graph: random_match}]}"};
    static const int ns[] = {4, 8, 12};
    for (size_t g = 0; g < sizeof graphs / sizeof graphs[0]; g++)
        for (int ni = 0; ni < 3; ni++) {
            int n = ns[ni];
            eg_graph_spec gs;
            eg_err e = {0};
            ck_assert_msg(eg_spec_graph_from_text(graphs[g], &gs, &e) == 0, "%s", e.msg);
            eg_topo *t = NULL;
            ck_assert_msg(eg_topo_init(&t, &gs, n, 3, &e) == 0, "%s n=%d: %s", graphs[g], n, e.msg);
            eg_topo_reach r;
            ck_assert_msg(eg_topo_reach_init(&r, t, &e) == 0, "%s", e.msg);
            ck_assert_int_eq(r.n, n);
            ck_assert_msg(r.all == (strstr(graphs[g], "random") != NULL), "%s n=%d: all = %d",
                          graphs[g], n, r.all);
            if (!r.all) {
                char *in_reach = calloc((size_t)n * n, 1), *seen = calloc((size_t)n * n, 1);
                ck_assert(in_reach && seen);
                for (int i = 0; i < n; i++)
                    for (int q = r.rowptr[i]; q < r.rowptr[i + 1]; q++) {
                        int j = r.col[q];
                        ck_assert_msg(j != i && j >= 0 && j < n, "%s: bad column %d in row %d", graphs[g], j, i);
                        ck_assert_msg(q == r.rowptr[i] || r.col[q - 1] < j, "%s: row %d not ascending", graphs[g], i);
                        in_reach[i * n + j] = 1;
                    }
                for (long k = 0; k < 200; k++) {
                    const eg_wmat *W = eg_topo_weights(t, k);
                    for (int i = 0; i < n; i++)
                        for (int q = W->rowptr[i]; q < W->rowptr[i + 1]; q++)
                            if (W->col[q] != i && W->val[q] != 0.0)
                                seen[i * n + W->col[q]] = 1;
                }
                ck_assert_msg(!memcmp(in_reach, seen, (size_t)n * n), "%s n=%d: reach is not the "
                              "union of W(k)", graphs[g], n);
                free(in_reach);
                free(seen);
            } else {
                ck_assert(r.rowptr == NULL && r.col == NULL);
            }
            eg_topo_reach_free(&r);
            eg_topo_reach_free(&r); /* twice: safe */
            eg_topo_free(t);
        }
}
END_TEST

START_TEST(test_random_peers)
{
    static const int ss[] = {1, 2, 5};
    for (int a = 0; a < 3; a++) {
        int s = ss[a], n = 12;
        eg_graph_spec g = spec_of("random_peers");
        g.peers = s;
        eg_topo *t = mk_spec(&g, n, 5), *u = mk_spec(&g, n, 5), *v = mk_spec(&g, n, 6);
        int not_doubly = 0, differs = 0;
        for (long k = 0; k < 30; k++) {
            const eg_wmat *w = eg_topo_weights(t, k);
            int *out = calloc((size_t)n, sizeof *out);
            for (int i = 0; i < n; i++) {
                int d = w->rowptr[i + 1] - w->rowptr[i] - 1;
                double sum = 0;
                for (int q = w->rowptr[i]; q < w->rowptr[i + 1]; q++) {
                    ck_assert(w->val[q] == 1.0 / (1 + d));
                    sum += w->val[q];
                    if (w->col[q] != i)
                        out[w->col[q]]++;
                }
                ck_assert(fabs(sum - 1.0) < 1e-12);
            }
            for (int j = 0; j < n; j++) /* each node sent to exactly s distinct others */
                ck_assert_int_eq(out[j], s);
            free(out);
            int doubly;
            in_peers(w, &doubly);
            not_doubly += !doubly;
            double *a1 = dense(t, k), *a2 = dense(v, k);
            differs += memcmp(a1, a2, (size_t)n * n * sizeof *a1) != 0;
            free(a1);
            free(a2);
        }
        ck_assert_msg(not_doubly > 0, "s=%d: never saw a W that is not column-stochastic", s);
        ck_assert_int_gt(differs, 25); /* another seed, other peers */
        /* same W(k) whatever order k is asked in */
        for (long k = 29; k >= 0; k -= 3) {
            double *a1 = dense(u, k), *a2 = dense(t, k);
            ck_assert(!memcmp(a1, a2, (size_t)n * n * sizeof *a1));
            free(a1);
            free(a2);
        }
        eg_topo_free(t);
        eg_topo_free(u);
        eg_topo_free(v);
    }
    eg_graph_spec g = spec_of("random_peers");
    g.peers = 4;
    eg_topo *t = NULL;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 4, 1, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "peers <= nodes - 1"), "%s", err.msg);
}
END_TEST

/* ------------------------------------------------------------------ inner_outer_exp2 */

static eg_topo *mk_ioe(int n, int L)
{
    eg_graph_spec g = spec_of("inner_outer_exp2");
    g.local = L;
    return mk_spec(&g, n, 1);
}

/* Reads the block '# inner_outer_exp2 nodes=N k=K' + N rows from f into W (n x n).
 * 0 on success. */
static int read_ref_block(FILE *f, int n, long k, double *W)
{
    char *line = NULL;
    size_t cap = 0;
    char head[96];
    snprintf(head, sizeof head, "# inner_outer_exp2 nodes=%d k=%ld\n", n, k);
    int rc = getline(&line, &cap, f) < 0 || strcmp(line, head) != 0;
    for (int i = 0; i < n && !rc; i++) {
        rc = getline(&line, &cap, f) < 0;
        char *p = line, *end;
        for (int j = 0; j < n && !rc; j++) {
            W[i * n + j] = strtod(p, &end);
            rc = end == p || *end != (j + 1 < n ? ',' : '\n');
            p = end + 1;
        }
    }
    free(line);
    return rc;
}

/* W(k) against matrices computed independently of this code (tests/inner_outer_exp2_ref.py,
 * from Bluefog's sending rule; committed under tests/data/inner_outer_exp2): entry for entry,
 * with the period the script found by search and the vectors crossing machines */
START_TEST(test_inner_outer_reference)
{
    const char *dir = EG_TEST_DIR "/data/inner_outer_exp2";
    char path[700];
    snprintf(path, sizeof path, "%s/index.csv", dir);
    FILE *idx = fopen(path, "r");
    ck_assert_msg(idx != NULL, "cannot open %s", path);
    char line[200];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, idx));
    ck_assert_str_eq(line, "nodes,local,period,iters,inter\n");
    int n, L, per, iters, inter, pairs = 0;
    while (fscanf(idx, "%d,%d,%d,%d,%d\n", &n, &L, &per, &iters, &inter) == 5) {
        snprintf(path, sizeof path, "%s/n%d_L%d.txt", dir, n, L);
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        eg_topo *t = mk_ioe(n, L);
        ck_assert_int_eq(eg_topo_period(t), per);
        ck_assert_int_eq(eg_topo_max_degree(t), 1);
        ck_assert_int_eq(eg_topo_max_nnz(t), 2 * n);
        double *R = malloc((size_t)n * n * sizeof *R);
        ck_assert_ptr_nonnull(R);
        for (long k = 0; k < iters; k++) {
            ck_assert_msg(read_ref_block(f, n, k, R) == 0, "%s: block k=%ld unreadable", path, k);
            double *W = dense(t, k);
            for (int q = 0; q < n * n; q++)
                ck_assert_msg(W[q] == R[q], "n=%d L=%d k=%ld W[%d][%d] = %g, reference %g", n, L,
                              k, q / n, q % n, W[q], R[q]);
            free(W);
            /* the same matrix asked for out of order, many periods on */
            W = dense(t, k + 37L * per);
            ck_assert(!memcmp(W, R, (size_t)n * n * sizeof *W));
            free(W);
            /* the comparison can fail: the next iteration's W is another matrix */
            W = dense(t, k + 1);
            ck_assert_msg(memcmp(W, R, (size_t)n * n * sizeof *W) != 0, "n=%d L=%d k=%ld", n, L, k);
            free(W);
            const eg_wmat *w = eg_topo_weights(t, k);
            ck_assert_int_eq(w->local, L);
            ck_assert_int_eq(w->sends, n);
            ck_assert_int_eq(w->inter, inter);
            double b = eg_comm_gossip_bytes(w, 2, 10);
            ck_assert(b == (double)n * 2 * 10 * sizeof(float));
            ck_assert(eg_comm_inter_bytes(w, b) == (double)inter * 2 * 10 * sizeof(float));
        }
        char extra[8];
        ck_assert_msg(fgets(extra, sizeof extra, f) == NULL, "%s: more blocks than iters", path);
        fclose(f);
        free(R);
        eg_topo_free(t);
        pairs++;
    }
    fclose(idx);
    ck_assert_int_ge(pairs, 3);
}
END_TEST

/* Structure on shapes the reference files do not hold: each W(k) is (I + P)/2 for a
 * permutation P; local rank k mod L of each machine takes from another machine, everyone
 * else from its own; one period's product mixes (rho_period < 1: the union over a period
 * is connected); reach is the union of W(k) */
START_TEST(test_inner_outer_structure)
{
    for (int L = 3; L <= 9; L++)
        for (int M = 2; M <= 9; M++) {
            int n = M * L;
            eg_topo *t = mk_ioe(n, L);
            int per = eg_topo_period(t);
            ck_assert_int_eq(per % L, 0);
            for (long k = 0; k < 2L * per; k++) {
                const eg_wmat *w = eg_topo_weights(t, k);
                ck_assert_int_eq(w->nnz, 2 * n);
                int *in = calloc((size_t)n, sizeof *in);
                for (int i = 0; i < n; i++) {
                    ck_assert_int_eq(w->rowptr[i], 2 * i);
                    int j = w->col[2 * i] == i ? w->col[2 * i + 1] : w->col[2 * i];
                    ck_assert(j != i && w->val[2 * i] == 0.5 && w->val[2 * i + 1] == 0.5);
                    in[j]++;
                    int across = (i % L) == (int)(k % L);
                    ck_assert_msg((j / L != i / L) == across, "n=%d L=%d k=%ld node %d takes "
                                  "from %d", n, L, k, i, j);
                    if (across)
                        ck_assert_int_eq(j % L, i % L);
                }
                for (int j = 0; j < n; j++) /* each node sent exactly once */
                    ck_assert_int_eq(in[j], 1);
                free(in);
                ck_assert_int_eq(w->inter, M);
            }
            if (n <= 48) {
                eg_topo_stats st = stats_of(t);
                ck_assert_int_eq(st.period, per);
                ck_assert_int_eq(st.degree, 1);
                ck_assert(st.doubly);
                ck_assert_msg(st.rho_period < 1 - 1e-9, "n=%d L=%d rho_period %g", n, L,
                              st.rho_period);
            }
            eg_topo_reach r;
            eg_err e = {0};
            ck_assert_msg(eg_topo_reach_init(&r, t, &e) == 0, "%s", e.msg);
            ck_assert(!r.all);
            char *seen = calloc((size_t)n * n, 1);
            for (long k = 0; k < per; k++) {
                const eg_wmat *w = eg_topo_weights(t, k);
                for (int q = 0; q < w->nnz; q++)
                    if (w->col[q] != q / 2)
                        seen[(q / 2) * n + w->col[q]] = 1;
            }
            int cnt = 0;
            for (int i = 0; i < n; i++)
                for (int q = r.rowptr[i]; q < r.rowptr[i + 1]; q++, cnt++)
                    ck_assert(seen[i * n + r.col[q]]);
            int want = 0;
            for (int q = 0; q < n * n; q++)
                want += seen[q];
            ck_assert_int_eq(cnt, want);
            free(seen);
            eg_topo_reach_free(&r);
            eg_topo_free(t);
        }
}
END_TEST

START_TEST(test_inner_outer_rejects)
{
    static const struct {
        int n, L;
        const char *msg;
    } bad[] = {{8, 2, "needs local (nodes per machine) >= 3 (got 2)"},
               {8, 0, ">= 3 (got 0)"},
               {4, 4, "at least 2 machines (got local 4, nodes 4)"},
               {10, 4, "nodes = machines x local with at least 2 machines (got local 4, nodes 10)"},
               {1, 3, "got local 3, nodes 1"}};
    for (size_t a = 0; a < sizeof bad / sizeof bad[0]; a++) {
        eg_graph_spec g = spec_of("inner_outer_exp2");
        g.local = bad[a].L;
        eg_topo *t = (eg_topo *)&g;
        eg_err err = {0};
        ck_assert_int_eq(eg_topo_init(&t, &g, bad[a].n, 1, &err), EG_EINPUT);
        ck_assert_ptr_null(t);
        ck_assert_msg(strstr(err.msg, bad[a].msg), "n=%d L=%d: %s", bad[a].n, bad[a].L, err.msg);
    }
    /* not an outer graph, and not a schedule's leaf without its local */
    eg_graph_spec g = hier_spec(2, "ring");
    g.outer.kind = EG_GRAPH_INNER_OUTER_EXP2;
    eg_topo *t = NULL;
    eg_err err = {0};
    ck_assert_int_eq(eg_topo_init(&t, &g, 24, 1, &err), EG_EINPUT);
    /* the spec's text form */
    eg_graph_spec gs;
    ck_assert_msg(eg_spec_graph_from_text("{name: inner_outer_exp2, local: 4}", &gs, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(gs.kind, EG_GRAPH_INNER_OUTER_EXP2);
    ck_assert_int_eq(gs.local, 4);
    static const struct {
        const char *text, *msg;
    } bad_text[] = {{"inner_outer_exp2", "needs local"},
                    {"{name: inner_outer_exp2, local: 2}", "must be >= 3"},
                    {"{name: inner_outer_exp2, local: 4, outer: exp}", "outer only applies to hierarchical"},
                    {"{name: hierarchical, local: 4, outer: {name: inner_outer_exp2, local: 3}}",
                     "cannot be inner_outer_exp2"}};
    for (size_t a = 0; a < sizeof bad_text / sizeof bad_text[0]; a++) {
        memset(&err, 0, sizeof err);
        ck_assert_int_ne(eg_spec_graph_from_text(bad_text[a].text, &gs, &err), 0);
        ck_assert_msg(strstr(err.msg, bad_text[a].msg), "%s: %s", bad_text[a].text, err.msg);
    }
}
END_TEST

static Suite *topology_suite(void)
{
    Suite *s = suite_create("topology");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_graph_row_stochastic_sorted);
    tcase_add_test(tc, test_periods);
    tcase_add_test(tc, test_exp_structure);
    tcase_add_test(tc, test_exp_rho_closed_form);
    tcase_add_test(tc, test_ring_rho_closed_form);
    tcase_add_test(tc, test_onepeer_exp_exact_averaging);
    tcase_add_test(tc, test_hypercube);
    tcase_add_test(tc, test_metropolis_hastings);
    tcase_add_test(tc, test_torus);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_erdos_renyi);
    tcase_add_test(tc, test_random_match);
    tcase_add_test(tc, test_weights_no_realloc);
    tcase_add_test(tc, test_rejections);
    tcase_add_test(tc, test_file_graph);
    tcase_add_test(tc, test_spectral_norm);
    tcase_add_test(tc, test_base_exact_every_n);
    tcase_add_test(tc, test_base_periods_as_paper);
    tcase_add_test(tc, test_hierarchical_product);
    tcase_add_test(tc, test_hierarchical_rejects);
    tcase_add_test(tc, test_schedule_switches);
    tcase_add_test(tc, test_random_peers);
    tcase_add_test(tc, test_reach);
    tcase_add_test(tc, test_inner_outer_reference);
    tcase_add_test(tc, test_inner_outer_structure);
    tcase_add_test(tc, test_inner_outer_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return eg_test_run(topology_suite()); }
