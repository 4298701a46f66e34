/* topology.c - graph families -> mixing matrices W(k) (docs/graphs.md#definitions-and-weights).
 *
 * Every family is built once in eg_topo_init into CSR matrices owned by the eg_topo:
 *  - static graphs: one matrix, returned for every k;
 *  - onepeer_exp / onepeer_hypercube: the tau matrices of one period;
 *  - random_match: one preallocated buffer refilled per k from a generator seeded by
 *    (seed, EG_STREAM_GRAPH, 1000003 + k), so any k can be asked for in any order;
 *    random_peers likewise from (seed, EG_STREAM_GRAPH, 2^40 + k);
 *  - base: the matrices of its sequence (see "base graphs" below);
 *  - hierarchical: the outer graph (sub[0], on n/L nodes) and one buffer refilled per k;
 *  - inner_outer_exp2: one buffer refilled per k (see "inner_outer_exp2" below);
 *  - schedule: one eg_topo per phase (sub[p]); W(k) is phase p's W(k - its first iteration).
 * Undirected/in-neighbour structure is first collected as an edge list, turned into a
 * sorted, de-duplicated adjacency (self removed), and then weighted by one of two rules:
 * uniform over self and the distinct neighbours, or Metropolis-Hastings.
 * The spectral facts (rho, rho_period) use dense n x n copies and LAPACK.
 */
#include "topology.h"

#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>



/* random_match draws W(k) from stream index EG_RM_INDEX0 + k; erdos_renyi attempts use
 * indices 0, 1, ... below it. */
#define EG_RM_INDEX0 1000003ULL
#define EG_ER_MAX_ATTEMPTS 10000
/* stop redrawing erdos_renyi after this many coin flips in total (~ a few seconds) */
#define EG_ER_MAX_FLIPS 1000000000.0
#define EG_FILE_TOL 1e-9
#define EG_RP_INDEX0 (1ULL << 40)
/* base, hierarchical, random_peers: the most weights one W(k) (or base's builder) may hold
 * (~1.5 GB of CSR) */
#define EG_MAX_ENTRIES (1L << 27)

struct eg_topo {
    int kind;
    char name[32];
    int n;
    int tau;         /* ceil(log2 n) */
    uint64_t seed;
    int period;      /* as eg_topo_period */
    int nmat;        /* matrices held in mats */
    eg_wmat *mats;
    int max_degree;
    int max_nnz;
    int32_t *perm;   /* random_match: scratch permutation, n entries */
    long cur_k;      /* random_match, random_peers, hierarchical: the k in mats[0] (-1: none) */
    int peers;       /* base, random_peers */
    int *scratch;    /* random_peers: targets (n * peers), in-degrees and cursors (2n) */
    long *mark, stamp; /* random_peers: sampling marks */
    int local;       /* hierarchical, inner_outer_exp2: nodes per machine */
    int ioe_out, ioe_in; /* inner_outer_exp2: the distances cycled between machines (2^0 ..
                          * 2^(ioe_out - 1)) and inside one (2^0 .. 2^(ioe_in - 1)) */
    int nsub;        /* hierarchical: 1 (the outer graph); schedule: the phases */
    eg_topo **sub;
    eg_graph_phase *phases; /* schedule: the phases as specified */
    long *end;       /* schedule: the first iteration after each phase */
    double ipe;      /* schedule: iterations per epoch */
};

/* ---------------------------------------------------------------- CSR storage */

static void wmat_free(eg_wmat *m)
{
    if (!m)
        return;
    free(m->rowptr);
    free(m->col);
    free(m->val);
    m->rowptr = NULL;
    m->col = NULL;
    m->val = NULL;
}

static int wmat_alloc(eg_wmat *m, int n, long nnz, eg_err *err)
{
    if (nnz > INT_MAX)
        return eg_err_set(err, EG_EINPUT,
                          "graph too large: %ld weights for %d nodes (at most %d)", nnz, n,
                          INT_MAX);
    m->n = n;
    m->nnz = (int)nnz;
    m->rowptr = eg_malloc(((size_t)n + 1) * sizeof *m->rowptr, err);
    m->col = eg_malloc((size_t)nnz * sizeof *m->col, err);
    m->val = eg_malloc((size_t)nnz * sizeof *m->val, err);
    if (!m->rowptr || !m->col || !m->val) {
        wmat_free(m);
        return EG_ERUN;
    }
    return EG_OK;
}

/* ---------------------------------------------------------------- edge lists */

typedef struct edges {
    int *a, *b;
    size_t len, cap;
} edges;

static void edges_free(edges *e)
{
    free(e->a);
    free(e->b);
    e->a = e->b = NULL;
    e->len = e->cap = 0;
}

static int edges_push(edges *e, int a, int b, eg_err *err)
{
    if (e->len == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        int *na = realloc(e->a, cap * sizeof *na);
        if (!na)
            return eg_err_set(err, EG_ERUN, "out of memory (%zu edges)", cap);
        e->a = na;
        int *nb = realloc(e->b, cap * sizeof *nb);
        if (!nb)
            return eg_err_set(err, EG_ERUN, "out of memory (%zu edges)", cap);
        e->b = nb;
        e->cap = cap;
    }
    e->a[e->len] = a;
    e->b[e->len] = b;
    e->len++;
    return EG_OK;
}

static int cmp_int(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    return (a > b) - (a < b);
}

/* Adjacency (CSR, self removed, each row sorted and de-duplicated) from the pairs in e:
 * pair (a, b) means "row a receives from b"; with both set it also means "b from a". */
static int adj_build(int n, const edges *e, int both, int **ptr_out, int **adj_out, eg_err *err)
{
    *ptr_out = NULL;
    *adj_out = NULL;
    size_t total = e->len * (both ? 2 : 1);
    long *cnt = eg_calloc((size_t)n + 1, sizeof *cnt, err);
    int *adj = eg_malloc(total * sizeof *adj, err);
    int *ptr = eg_malloc(((size_t)n + 1) * sizeof *ptr, err);
    if (!cnt || !adj || !ptr) {
        free(cnt);
        free(adj);
        free(ptr);
        return EG_ERUN;
    }
    for (size_t q = 0; q < e->len; q++) {
        if (e->a[q] == e->b[q])
            continue;
        cnt[e->a[q] + 1]++;
        if (both)
            cnt[e->b[q] + 1]++;
    }
    for (int i = 0; i < n; i++)
        cnt[i + 1] += cnt[i];
    /* cnt[i] is now the start of row i; use a moving cursor per row */
    long *cur = eg_malloc((size_t)n * sizeof *cur, err);
    if (!cur) {
        free(cnt);
        free(adj);
        free(ptr);
        return EG_ERUN;
    }
    memcpy(cur, cnt, (size_t)n * sizeof *cur);
    for (size_t q = 0; q < e->len; q++) {
        int a = e->a[q], b = e->b[q];
        if (a == b)
            continue;
        adj[cur[a]++] = b;
        if (both)
            adj[cur[b]++] = a;
    }
    free(cur);
    /* sort and de-duplicate each row, compacting in place */
    long w = 0;
    ptr[0] = 0;
    for (int i = 0; i < n; i++) {
        long s = cnt[i], t = cnt[i + 1];
        qsort(adj + s, (size_t)(t - s), sizeof *adj, cmp_int);
        for (long q = s; q < t; q++)
            if (q == s || adj[q] != adj[q - 1])
                adj[w++] = adj[q];
        if (w > INT_MAX) {
            free(cnt);
            free(adj);
            free(ptr);
            return eg_err_set(err, EG_EINPUT, "graph too large for %d nodes", n);
        }
        ptr[i + 1] = (int)w;
    }
    free(cnt);
    *ptr_out = ptr;
    *adj_out = adj;
    return EG_OK;
}

enum { RULE_UNIFORM, RULE_MH };

/* Weighted CSR from an adjacency: self is inserted at its sorted position.
 * RULE_UNIFORM: 1/(1 + d_i) for self and each neighbour.
 * RULE_MH: w_ij = 1/(1 + max(d_i, d_j)), w_ii = 1 - sum of the others (summed by column). */
static int wmat_from_adj(eg_wmat *m, int n, const int *ptr, const int *adj, int rule,
                         eg_err *err)
{
    int rc = wmat_alloc(m, n, (long)ptr[n] + n, err);
    if (rc)
        return rc;
    int pos = 0;
    for (int i = 0; i < n; i++) {
        int di = ptr[i + 1] - ptr[i];
        double self;
        if (rule == RULE_UNIFORM) {
            self = 1.0 / (1.0 + di);
        } else {
            double s = 0.0;
            for (int q = ptr[i]; q < ptr[i + 1]; q++) {
                int j = adj[q], dj = ptr[j + 1] - ptr[j];
                s += 1.0 / (1.0 + (di > dj ? di : dj));
            }
            self = 1.0 - s;
        }
        m->rowptr[i] = pos;
        int placed = 0;
        for (int q = ptr[i]; q < ptr[i + 1]; q++) {
            int j = adj[q];
            if (!placed && j > i) {
                m->col[pos] = i;
                m->val[pos++] = self;
                placed = 1;
            }
            double wij;
            if (rule == RULE_UNIFORM) {
                wij = self;
            } else {
                int dj = ptr[j + 1] - ptr[j];
                wij = 1.0 / (1.0 + (di > dj ? di : dj));
            }
            m->col[pos] = j;
            m->val[pos++] = wij;
        }
        if (!placed) {
            m->col[pos] = i;
            m->val[pos++] = self;
        }
    }
    m->rowptr[n] = pos;
    return EG_OK;
}

static int wmat_from_edges(eg_wmat *m, int n, const edges *e, int both, int rule, eg_err *err)
{
    int *ptr, *adj;
    int rc = adj_build(n, e, both, &ptr, &adj, err);
    if (rc)
        return rc;
    rc = wmat_from_adj(m, n, ptr, adj, rule, err);
    free(ptr);
    free(adj);
    return rc;
}

/* Row i: self 1/2 and peer(i) 1/2 (peer(i) != i). Used by the one-peer families. */
static void fill_pairs(eg_wmat *m, int n, const int *peer)
{
    for (int i = 0; i < n; i++) {
        int j = peer[i], p = 2 * i;
        m->rowptr[i] = p;
        int lo = i < j ? i : j, hi = i < j ? j : i;
        m->col[p] = lo;
        m->val[p] = 0.5;
        m->col[p + 1] = hi;
        m->val[p + 1] = 0.5;
    }
    m->rowptr[n] = 2 * n;
}

static int wmat_identity1(eg_wmat *m, eg_err *err)
{
    int rc = wmat_alloc(m, 1, 1, err);
    if (rc)
        return rc;
    m->rowptr[0] = 0;
    m->rowptr[1] = 1;
    m->col[0] = 0;
    m->val[0] = 1.0;
    return EG_OK;
}

/* ---------------------------------------------------------------- families */

static long mod_n(long a, long n) { return ((a % n) + n) % n; }

/* torus/grid shape: r the largest divisor of n with r <= sqrt(n), c = n / r */
static void grid_shape(int n, int *r, int *c)
{
    int best = 1;
    for (long q = 1; q * q <= n; q++)
        if (n % q == 0)
            best = (int)q;
    *r = best;
    *c = n / best;
}

/* The static structured graphs: one edge generator each (edges i <- j pushed into e; *both:
 * make each edge symmetric; *rule: how the weights are set), in a table by kind. */
typedef struct edge_gen {
    int n, tau;
    edges *e;
    int both, rule;
} edge_gen;

static int gen_ring(edge_gen *g, eg_err *err)
{
    int rc = EG_OK, n = g->n;
    for (int i = 0; i < n && !rc; i++) {
        rc = edges_push(g->e, i, (int)mod_n(i - 1L, n), err);
        if (!rc)
            rc = edges_push(g->e, i, (int)mod_n(i + 1L, n), err);
    }
    return rc;
}

static int gen_torus(edge_gen *g, eg_err *err)
{
    int rc = EG_OK, r, c;
    grid_shape(g->n, &r, &c);
    for (int i = 0; i < g->n && !rc; i++) {
        int y = i / c, x = i % c;
        int nb[4] = {(int)mod_n(y - 1L, r) * c + x, (int)mod_n(y + 1L, r) * c + x,
                     y * c + (int)mod_n(x - 1L, c), y * c + (int)mod_n(x + 1L, c)};
        for (int q = 0; q < 4 && !rc; q++)
            rc = edges_push(g->e, i, nb[q], err);
    }
    return rc;
}

static int gen_grid(edge_gen *g, eg_err *err)
{
    int rc = EG_OK, r, c;
    grid_shape(g->n, &r, &c);
    g->rule = RULE_MH;
    for (int i = 0; i < g->n && !rc; i++) {
        int y = i / c, x = i % c;
        if (y > 0)
            rc = edges_push(g->e, i, i - c, err);
        if (!rc && y + 1 < r)
            rc = edges_push(g->e, i, i + c, err);
        if (!rc && x > 0)
            rc = edges_push(g->e, i, i - 1, err);
        if (!rc && x + 1 < c)
            rc = edges_push(g->e, i, i + 1, err);
    }
    return rc;
}

static int gen_exp(edge_gen *g, eg_err *err)
{
    int rc = EG_OK;
    for (int i = 0; i < g->n && !rc; i++)
        for (int s = 0; s < g->tau && !rc; s++)
            rc = edges_push(g->e, i, (int)mod_n(i - (1L << s), g->n), err);
    return rc;
}

static int gen_sym_exp(edge_gen *g, eg_err *err)
{
    int rc = EG_OK;
    for (int i = 0; i < g->n && !rc; i++)
        for (int s = 0; s < g->tau && !rc; s++) {
            rc = edges_push(g->e, i, (int)mod_n(i - (1L << s), g->n), err);
            if (!rc)
                rc = edges_push(g->e, i, (int)mod_n(i + (1L << s), g->n), err);
        }
    return rc;
}

static int gen_hypercube(edge_gen *g, eg_err *err)
{
    int rc = EG_OK;
    for (int i = 0; i < g->n && !rc; i++)
        for (int s = 0; s < g->tau && !rc; s++)
            rc = edges_push(g->e, i, i ^ (1 << s), err);
    return rc;
}

static int gen_full(edge_gen *g, eg_err *err)
{
    int rc = EG_OK, n = g->n;
    if ((long)n * n > INT_MAX)
        return eg_err_set(err, EG_EINPUT, "full graph too large: %d nodes (at most 46340)", n);
    for (int i = 0; i < n && !rc; i++)
        for (int j = 0; j < n && !rc; j++)
            if (j != i)
                rc = edges_push(g->e, i, j, err);
    return rc;
}

static int gen_star(edge_gen *g, eg_err *err)
{
    int rc = EG_OK;
    g->both = 1;
    g->rule = RULE_MH;
    for (int j = 1; j < g->n && !rc; j++)
        rc = edges_push(g->e, 0, j, err);
    return rc;
}

static int (*const edge_gens[])(edge_gen *, eg_err *) = {
    [EG_GRAPH_RING] = gen_ring,   [EG_GRAPH_TORUS] = gen_torus,         [EG_GRAPH_GRID] = gen_grid,
    [EG_GRAPH_EXP] = gen_exp,     [EG_GRAPH_SYM_EXP] = gen_sym_exp,     [EG_GRAPH_HYPERCUBE] = gen_hypercube,
    [EG_GRAPH_FULL] = gen_full,   [EG_GRAPH_STAR] = gen_star,
};

static int build_structured(eg_topo *t, eg_err *err)
{
    edges e = {0};
    edge_gen g = {t->n, t->tau, &e, 0, RULE_UNIFORM};
    size_t ng = sizeof edge_gens / sizeof edge_gens[0];
    if ((size_t)t->kind >= ng || !edge_gens[t->kind])
        return eg_err_set(err, EG_ERUN, "internal: build_structured on graph %s", t->name);
    int rc = edge_gens[t->kind](&g, err);
    if (!rc)
        rc = wmat_from_edges(&t->mats[0], t->n, &e, g.both, g.rule, err);
    edges_free(&e);
    return rc;
}

static int uf_find(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static int build_erdos_renyi(eg_topo *t, double p, eg_err *err)
{
    int n = t->n;
    edges e = {0};
    int *parent = eg_malloc((size_t)n * sizeof *parent, err);
    if (!parent)
        return EG_ERUN;
    double pairs = 0.5 * (double)n * (double)(n - 1), flips = 0.0;
    int attempt, connected = 0, rc = EG_OK;
    for (attempt = 0; attempt < EG_ER_MAX_ATTEMPTS && !connected; attempt++) {
        if (attempt > 0 && flips + pairs > EG_ER_MAX_FLIPS)
            break;
        eg_rng r;
        eg_rng_seed(&r, t->seed, EG_STREAM_GRAPH, (uint64_t)attempt);
        e.len = 0;
        for (int i = 0; i < n; i++)
            parent[i] = i;
        int comps = n;
        for (int i = 0; i < n && !rc; i++)
            for (int j = i + 1; j < n; j++) {
                if (eg_rng_uniform(&r) < p) {
                    if ((rc = edges_push(&e, i, j, err)))
                        break;
                    int a = uf_find(parent, i), b = uf_find(parent, j);
                    if (a != b) {
                        parent[a] = b;
                        comps--;
                    }
                }
            }
        if (rc)
            break;
        flips += pairs;
        connected = comps == 1;
    }
    free(parent);
    if (!rc && !connected)
        rc = eg_err_set(err, EG_EINPUT,
                        "erdos_renyi with p=%g drew no connected graph on %d nodes in %d "
                        "tries (seed %llu); use a larger p (connectivity needs p above "
                        "about ln(n)/n = %.3g)",
                        p, n, attempt, (unsigned long long)t->seed, log((double)n) / n);
    if (!rc)
        rc = wmat_from_edges(&t->mats[0], n, &e, 1, RULE_MH, err);
    edges_free(&e);
    return rc;
}

static int build_onepeer(eg_topo *t, eg_err *err)
{
    int n = t->n;
    int *peer = eg_malloc((size_t)n * sizeof *peer, err);
    if (!peer)
        return EG_ERUN;
    int rc = EG_OK;
    for (int k = 0; k < t->nmat && !rc; k++) {
        for (int i = 0; i < n; i++)
            peer[i] = t->kind == EG_GRAPH_ONEPEER_EXP ? (int)mod_n(i - (1L << k), n) : i ^ (1 << k);
        rc = wmat_alloc(&t->mats[k], n, 2L * n, err);
        if (!rc)
            fill_pairs(&t->mats[k], n, peer);
    }
    free(peer);
    return rc;
}

/* random_match: W(k) from its own generator; writes t->mats[0] */
static void fill_random_match(eg_topo *t, long k)
{
    int n = t->n;
    eg_rng r;
    eg_rng_seed(&r, t->seed, EG_STREAM_GRAPH, EG_RM_INDEX0 + (uint64_t)k);
    for (int i = 0; i < n; i++)
        t->perm[i] = i;
    eg_rng_shuffle(&r, t->perm, (size_t)n);
    eg_wmat *m = &t->mats[0];
    for (int q = 0; q < n; q += 2) {
        int a = t->perm[q], b = t->perm[q + 1];
        int lo = a < b ? a : b, hi = a < b ? b : a;
        for (int s = 0; s < 2; s++) {
            int row = s ? b : a;
            m->rowptr[row] = 2 * row;
            m->col[2 * row] = lo;
            m->val[2 * row] = 0.5;
            m->col[2 * row + 1] = hi;
            m->val[2 * row + 1] = 0.5;
        }
    }
    m->rowptr[n] = 2 * n;
    t->cur_k = k;
}

/* ---------------------------------------------------------------- base graphs
 *
 * The Base-(k+1) graph of Takezawa, Sato, Bao, Niwa and Yamada (NeurIPS 2023), b = k + 1,
 * built round by round. Pieces:
 *  - hhc(m): for m whose prime factors are all <= b: write m = f_0 f_1 ... (factors taken
 *    greedily from b down to 2, then used smallest first); round r averages each clique of
 *    the f_r nodes that differ only in mixed-radix digit r. After all rounds: exact.
 *  - sbg(N) (the "simple" Base graph): N = sum_l a_l b^p_l (base-b digits, p_0 > p_1 > ...),
 *    groups V_l of a_l b^p_l consecutive nodes. Rounds 0..H-1 (H = len hhc(|V_0|)): each V_l
 *    runs hhc(|V_l|) (cyclically), so it holds its own average. Step s = 0, 1, ...: every
 *    node of V_l, l > s, pairs with one node of each of the a_s subgroups (b^p_s nodes) of
 *    V_s, weights n_s/(N_s a_s) (N_s = |V_s| + |V_s+1| + ...); V_s's unpaired nodes average
 *    in cliques of b; from the step after, V_s's subgroups run hhc(b^p_s), after which V_s
 *    holds the exact average. Length H + 1 + p_0.
 *  - base(n): n = n_pow n_rest with n_pow the largest b-smooth divisor: sbg(n_rest) on each
 *    of the n_pow runs of n_rest consecutive nodes, then hhc(n_pow) across them (nodes
 *    r, r + n_rest, ...), when that is not longer than sbg(n).
 * Each round is at most b entries per row (self included); rows are collected in `rows`. */

#define EG_BASE_MAX_DIGITS 64

typedef struct rows {
    int n, b;
    int *cnt;    /* n */
    int *col;    /* n * b */
    double *val; /* n * b */
} rows;

static void rows_set(rows *r, long i, long j, double w)
{
    int *c = r->col + i * r->b;
    double *v = r->val + i * r->b;
    for (int q = 0; q < r->cnt[i]; q++)
        if (c[q] == j) {
            v[q] = w;
            return;
        }
    c[r->cnt[i]] = (int)j;
    v[r->cnt[i]++] = w;
}

/* factors of m (each in 2..b), smallest-first use order; -1 when m has a prime factor > b */
static int hhc_factors(long m, int b, int *f)
{
    int nf = 0;
    for (int q = b; q >= 2 && m > 1; q--)
        while (m % q == 0) {
            f[nf++] = q;
            m /= q;
        }
    if (m != 1)
        return -1;
    for (int a = 0, z = nf - 1; a < z; a++, z--) {
        int t = f[a];
        f[a] = f[z];
        f[z] = t;
    }
    return nf;
}

static int hhc_len(long m, int b)
{
    int f[EG_BASE_MAX_DIGITS];
    return m == 1 ? 1 : hhc_factors(m, b, f);
}

/* round r (taken modulo the length) of hhc(m) on the nodes off + step x, x < m */
static void hhc_round(rows *R, long m, long off, long step, int r)
{
    int f[EG_BASE_MAX_DIGITS];
    int nf = m == 1 ? 0 : hhc_factors(m, R->b, f);
    if (nf <= 0)
        return;
    r %= nf;
    long stride = 1;
    for (int q = 0; q < r; q++)
        stride *= f[q];
    int fr = f[r];
    for (long x = 0; x < m; x++) {
        if ((x / stride) % fr != 0)
            continue;
        for (int u = 0; u < fr; u++)
            for (int v = 0; v < fr; v++)
                rows_set(R, off + step * (x + u * stride), off + step * (x + v * stride),
                         1.0 / fr);
    }
}

typedef struct sbg {
    long N;
    int b, L, smooth, head, len; /* head: rounds before the first pairing step */
    long start[EG_BASE_MAX_DIGITS], size[EG_BASE_MAX_DIGITS], sub[EG_BASE_MAX_DIGITS];
    int a[EG_BASE_MAX_DIGITS], p[EG_BASE_MAX_DIGITS];
} sbg;

static void sbg_plan(sbg *s, long N, int b)
{
    memset(s, 0, sizeof *s);
    s->N = N;
    s->b = b;
    s->smooth = N == 1 || hhc_len(N, b) > 0;
    if (s->smooth) {
        s->len = hhc_len(N, b);
        return;
    }
    long pw = 1;
    int p = 0;
    while (pw <= N / b) {
        pw *= b;
        p++;
    }
    long rest = N, at = 0;
    for (; pw >= 1; pw /= b, p--)
        if (rest >= pw) {
            int l = s->L++;
            s->a[l] = (int)(rest / pw);
            s->p[l] = p;
            s->sub[l] = pw;
            s->size[l] = s->a[l] * pw;
            s->start[l] = at;
            at += s->size[l];
            rest -= s->size[l];
        }
    s->head = hhc_len(s->size[0], b);
    s->len = s->head + 1 + s->p[0];
}

/* step st: the nodes of V_l, l > st, pair with one node of each subgroup of V_st; V_st's
 * unpaired nodes average in cliques of at most b. top: b scratch entries. */
static void sbg_pair(rows *R, const sbg *s, long off, int st, long *top, int *buf)
{
    long Ns = 0;
    for (int l = st; l < s->L; l++)
        Ns += s->size[l];
    double share = (double)s->size[st] / (double)Ns, w = share / s->a[st];
    for (int g = 0; g < s->a[st]; g++)
        top[g] = s->sub[st] - 1;
    for (int l = s->L - 1; l > st; l--)
        for (long i = off + s->start[l]; i < off + s->start[l] + s->size[l]; i++) {
            for (int g = 0; g < s->a[st]; g++) {
                long j = off + s->start[st] + g * s->sub[st] + top[g]--;
                rows_set(R, i, j, w);
                rows_set(R, j, i, w);
                rows_set(R, j, j, 1.0 - w);
            }
            rows_set(R, i, i, 1.0 - share);
        }
    int nb = 0;
    long left = 0;
    for (int g = 0; g < s->a[st]; g++)
        left += top[g] + 1;
    for (int g = 0; g < s->a[st]; g++)
        for (long x = 0; x <= top[g]; x++) {
            buf[nb++] = (int)(off + s->start[st] + g * s->sub[st] + x);
            if (nb == R->b || nb == left) {
                for (int u = 0; u < nb && nb > 1; u++)
                    for (int v = 0; v < nb; v++)
                        rows_set(R, buf[u], buf[v], 1.0 / nb);
                left -= nb;
                nb = 0;
            }
        }
}

/* round m of sbg(N) on the nodes off .. off + N - 1 */
static void sbg_round(rows *R, const sbg *s, long off, int m, long *top, int *buf)
{
    if (s->smooth) {
        hhc_round(R, s->N, off, 1, m);
        return;
    }
    if (m < s->head) {
        for (int l = 0; l < s->L; l++)
            hhc_round(R, s->size[l], off + s->start[l], 1, m % hhc_len(s->size[l], s->b));
        return;
    }
    int st = m - s->head;
    if (st <= s->L - 2)
        sbg_pair(R, s, off, st, top, buf);
    for (int l = 0; l < s->L; l++) {
        int last = l == s->L - 1;
        if (!(l < st || (last && st >= l)))
            continue;
        int r = last ? st - l : st - l - 1;
        if (s->size[l] < s->b)
            hhc_round(R, s->size[l], off + s->start[l], 1, r);
        else
            for (int g = 0; g < s->a[l]; g++)
                hhc_round(R, s->sub[l], off + s->start[l] + g * s->sub[l], 1, r);
    }
}

typedef struct base_plan {
    int b;
    long npow, nrest; /* npow > 1: the product form */
    sbg whole, part;
    int len;
} base_plan;

static void base_plan_make(base_plan *bp, long n, int b)
{
    bp->b = b;
    long npow = 1, m = n;
    for (int q = 2; q <= b; q++)
        while (m % q == 0) {
            m /= q;
            npow *= q;
        }
    sbg_plan(&bp->whole, n, b);
    bp->len = bp->whole.len;
    bp->npow = 1;
    bp->nrest = n;
    if (npow > 1 && npow < n) {
        sbg_plan(&bp->part, n / npow, b);
        int len = bp->part.len + hhc_len(npow, b);
        if (len <= bp->len) {
            bp->npow = npow;
            bp->nrest = n / npow;
            bp->len = len;
        }
    }
}

/* round m of the base graph into R (rows cleared first, self 1 where a row has nothing) */
static void base_round(rows *R, const base_plan *bp, int m, long *top, int *buf)
{
    memset(R->cnt, 0, (size_t)R->n * sizeof *R->cnt);
    if (bp->npow == 1)
        sbg_round(R, &bp->whole, 0, m, top, buf);
    else if (m < bp->part.len)
        for (long c = 0; c < bp->npow; c++)
            sbg_round(R, &bp->part, c * bp->nrest, m, top, buf);
    else
        for (long c = 0; c < bp->nrest; c++)
            hhc_round(R, bp->npow, c, bp->nrest, m - bp->part.len);
    for (int i = 0; i < R->n; i++)
        if (R->cnt[i] == 0)
            rows_set(R, i, i, 1.0);
}

/* CSR from rows: each row sorted by column (insertion sort: at most b entries) */
static int wmat_from_rows(eg_wmat *w, const rows *R, eg_err *err)
{
    long nnz = 0;
    for (int i = 0; i < R->n; i++)
        nnz += R->cnt[i];
    int rc = wmat_alloc(w, R->n, nnz, err);
    if (rc)
        return rc;
    int pos = 0;
    for (int i = 0; i < R->n; i++) {
        w->rowptr[i] = pos;
        const int *c = R->col + (size_t)i * R->b;
        const double *v = R->val + (size_t)i * R->b;
        for (int q = 0; q < R->cnt[i]; q++) {
            int at = pos + q;
            while (at > pos && w->col[at - 1] > c[q]) {
                w->col[at] = w->col[at - 1];
                w->val[at] = w->val[at - 1];
                at--;
            }
            w->col[at] = c[q];
            w->val[at] = v[q];
        }
        pos += R->cnt[i];
    }
    w->rowptr[R->n] = pos;
    return EG_OK;
}

static int build_base(eg_topo *t, eg_err *err)
{
    int n = t->n;
    int b = (t->peers < n - 1 ? t->peers : n - 1) + 1;
    if ((long)n * b > EG_MAX_ENTRIES)
        return eg_err_set(err, EG_EINPUT, "base with %d nodes and peers %d is too large (nodes "
                          "x (peers + 1) at most %ld)", n, b - 1, EG_MAX_ENTRIES);
    base_plan bp;
    base_plan_make(&bp, n, b);
    t->period = t->nmat = bp.len;
    t->mats = eg_calloc((size_t)t->nmat, sizeof *t->mats, err);
    rows R = {n, b, eg_malloc((size_t)n * sizeof(int), err),
              eg_malloc((size_t)n * b * sizeof(int), err),
              eg_malloc((size_t)n * b * sizeof(double), err)};
    long *top = eg_malloc((size_t)b * sizeof *top, err);
    int *buf = eg_malloc((size_t)b * sizeof *buf, err);
    int rc = t->mats && R.cnt && R.col && R.val && top && buf ? EG_OK : EG_ERUN;
    for (int m = 0; m < t->nmat && !rc; m++) {
        base_round(&R, &bp, m, top, buf);
        rc = wmat_from_rows(&t->mats[m], &R, err);
    }
    free(R.cnt);
    free(R.col);
    free(R.val);
    free(top);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- random peers */

/* random_peers: each node i (ascending) draws s distinct others (Floyd's sampling over the
 * n - 1 others, generator seeded by (seed, EG_STREAM_GRAPH, EG_RP_INDEX0 + k)); row j holds
 * self and the nodes that sent to it, ascending, each 1/(1 + in-degree of j). */
static void fill_random_peers(eg_topo *t, long k)
{
    int n = t->n, s = t->peers;
    eg_rng r;
    eg_rng_seed(&r, t->seed, EG_STREAM_GRAPH, EG_RP_INDEX0 + (uint64_t)k);
    int *tgt = t->scratch, *cnt = t->scratch + (size_t)n * s, *cur = cnt + n;
    memset(cnt, 0, (size_t)n * sizeof *cnt);
    for (int i = 0; i < n; i++) {
        t->stamp++;
        for (int j = n - 1 - s, q = 0; j < n - 1; j++, q++) {
            int v = (int)eg_rng_below(&r, (uint64_t)j + 1);
            if (t->mark[v] == t->stamp)
                v = j;
            t->mark[v] = t->stamp;
            v = v < i ? v : v + 1;
            tgt[(size_t)i * s + q] = v;
            cnt[v]++;
        }
    }
    eg_wmat *m = &t->mats[0];
    int pos = 0;
    for (int j = 0; j < n; j++) {
        m->rowptr[j] = pos;
        cur[j] = pos;
        pos += cnt[j] + 1;
    }
    m->rowptr[n] = pos;
    for (int i = 0; i < n; i++) { /* senders ascending, self in its place */
        m->col[cur[i]] = i;
        m->val[cur[i]++] = 1.0 / (1 + cnt[i]);
        for (int q = 0; q < s; q++) {
            int j = tgt[(size_t)i * s + q];
            m->col[cur[j]] = i;
            m->val[cur[j]++] = 1.0 / (1 + cnt[j]);
        }
    }
    t->cur_k = k;
}

static int build_random_peers(eg_topo *t, eg_err *err)
{
    int n = t->n, s = t->peers;
    if (s > n - 1)
        return eg_err_set(err, EG_EINPUT,
                          "random_peers needs peers <= nodes - 1 (got peers %d, nodes %d)", s, n);
    if ((long)n * (s + 1) > EG_MAX_ENTRIES)
        return eg_err_set(err, EG_EINPUT, "random_peers too large: %d nodes x (%d peers + 1) "
                          "weights (at most %ld)", n, s, EG_MAX_ENTRIES);
    int rc = wmat_alloc(&t->mats[0], n, (long)n * (s + 1), err);
    if (rc)
        return rc;
    t->scratch = eg_malloc(((size_t)n * s + 2 * (size_t)n) * sizeof *t->scratch, err);
    t->mark = eg_calloc((size_t)n, sizeof *t->mark, err);
    if (!t->scratch || !t->mark)
        return EG_ERUN;
    fill_random_peers(t, 0);
    return EG_OK;
}

/* ---------------------------------------------------------------- hierarchical */

/* W(k) = W_out(k) (x) 11^T/L into t->mats[0]; its traffic as topology.h describes */
static void fill_hierarchical(eg_topo *t, long k)
{
    const eg_wmat *o = eg_topo_weights(t->sub[0], k);
    int L = t->local;
    eg_wmat *m = &t->mats[0];
    int pos = 0;
    long off = 0;
    for (int mi = 0; mi < o->n; mi++)
        for (int q = o->rowptr[mi]; q < o->rowptr[mi + 1]; q++)
            off += o->col[q] != mi && o->val[q] != 0.0;
    for (int i = 0; i < t->n; i++) {
        int mi = i / L;
        m->rowptr[i] = pos;
        for (int q = o->rowptr[mi]; q < o->rowptr[mi + 1]; q++)
            for (int l = 0; l < L; l++) {
                m->col[pos] = o->col[q] * L + l;
                m->val[pos++] = o->val[q] / L;
            }
    }
    m->rowptr[t->n] = pos;
    m->nnz = pos;
    m->local = L;
    m->inter = (long)L * off;
    m->sends = (long)t->n * (L - 1) + m->inter;
    t->cur_k = k;
}

/* ---------------------------------------------------------------- inner_outer_exp2 */

/* Bluefog's inner-outer one-peer exponential schedule (Bluefog-Lib/bluefog,
 * bluefog/common/topology_util.py, GetInnerOuterExp2DynamicSendRecvRanks; the paper's code
 * uses it across machines). M = n / L machines of L consecutive nodes: node i is local rank
 * i mod L of machine i / L. At iteration k:
 *  - local rank o = k mod L of every machine talks across machines: it sends to rank o of
 *    machine m + d and receives from rank o of machine m - d (mod M), d = 2^(k mod ioe_out),
 *    ioe_out = floor(log2(M - 1)) + 1;
 *  - the L - 1 other ranks of a machine stand on a ring in local-rank order with o left
 *    out; each sends to the rank d' places ahead on that ring and receives from the one d'
 *    places behind, d' = 2^(k mod ioe_in), ioe_in = floor(log2(L - 2)) + 1 (d' <= L - 2, so
 *    never itself).
 * Every node sends and receives exactly one vector, and weighs itself and what it receives
 * 1/(1 + received) = 1/2 each (the paper's training script). W(k) = (I + P(k)) / 2 for a
 * permutation P(k): doubly stochastic; exactly M vectors cross machines per iteration. The
 * sequence repeats after lcm(L, ioe_out, ioe_in) iterations. */

static int floor_log2(long x) /* x >= 1 */
{
    int e = 0;
    while (x >> (e + 1))
        e++;
    return e;
}

static long gcd_l(long a, long b)
{
    while (b) {
        long r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* the node that node i receives from at iteration k */
static int ioe_source(const eg_topo *t, int i, long k)
{
    const int L = t->local, M = t->n / L, m = i / L, r = i % L;
    const int o = (int)(k % L);
    if (r == o) {
        long d = 1L << (k % t->ioe_out);
        return (int)mod_n(m - d, M) * L + o;
    }
    /* position on the inner ring (o left out): the rank just after o is position 0 */
    long pos = mod_n(r - o - 1, L), d = 1L << (k % t->ioe_in);
    long src = mod_n(pos - d, L - 1);
    return m * L + (int)((o + 1 + src) % L);
}

/* W(k) into t->mats[0] (2n entries), with its traffic: n vectors, M between machines */
static void fill_inner_outer(eg_topo *t, long k)
{
    eg_wmat *m = &t->mats[0];
    int *peer = t->scratch;
    for (int i = 0; i < t->n; i++)
        peer[i] = ioe_source(t, i, k);
    fill_pairs(m, t->n, peer);
    m->nnz = 2 * t->n;
    long inter = 0;
    for (int i = 0; i < t->n; i++)
        inter += peer[i] / t->local != i / t->local;
    m->local = t->local;
    m->sends = t->n;
    m->inter = inter;
    t->cur_k = k;
}

/* ---------------------------------------------------------------- schedules */

/* first iteration after phase p (LONG_MAX for the last) */
static void schedule_ends(eg_topo *t)
{
    for (int p = 0; p < t->nsub; p++) {
        const eg_graph_phase *ph = &t->phases[p];
        if (p == t->nsub - 1)
            t->end[p] = LONG_MAX;
        else {
            double e = ph->until_epoch ? ceil(ph->until * t->ipe - 1e-9) : ph->until;
            t->end[p] = e < 9e18 ? (long)e : LONG_MAX;
        }
    }
}

/* the phase iteration k falls in, and in *start the iteration it began */
static int schedule_phase(const eg_topo *t, long k, long *start)
{
    int p = 0;
    while (p < t->nsub - 1 && k >= t->end[p])
        p++;
    *start = 0; /* the latest end before it (ends may repeat or fall when units mix) */
    for (int q = 0; q < p; q++)
        if (t->end[q] > *start)
            *start = t->end[q];
    return p;
}

/* ---------------------------------------------------------------- file graphs */

static int is_blank_or_comment(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    return *s == '\0' || *s == '#';
}

static void chomp(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
}

/* Parses one data line into row[0..n); on error fills err naming path:line. */
static int parse_row(const char *path, long line, int r, int n, char *s, double *row, eg_err *err)
{
    int ncols = 0;
    char *p = s;
    for (;;) {
        char *end_field = strchr(p, ',');
        if (end_field)
            *end_field = '\0';
        /* trim the field */
        while (*p == ' ' || *p == '\t')
            p++;
        char *q = p + strlen(p);
        while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
            *--q = '\0';
        if (ncols < n) {
            if (*p == '\0')
                return eg_err_set(err, EG_EINPUT, "%s:%ld: row %d, column %d is empty", path,
                                  line, r, ncols);
            double v;
            if (eg_parse_number(p, &v))
                return eg_err_set(err, EG_EINPUT,
                                  "%s:%ld: cannot parse '%s' as a number (row %d, column %d)",
                                  path, line, p, r, ncols);
            if (!isfinite(v)) /* an overflow (1e999) reads as inf */
                return eg_err_set(err, EG_EINPUT,
                                  "%s:%ld: row %d, column %d is not a finite number ('%s')",
                                  path, line, r, ncols, p);
            if (v < 0)
                return eg_err_set(err, EG_EINPUT,
                                  "%s:%ld: row %d, column %d is negative (%s); weights must be "
                                  ">= 0",
                                  path, line, r, ncols, p);
            row[ncols] = v;
        }
        ncols++;
        if (!end_field)
            break;
        p = end_field + 1;
    }
    if (ncols != n)
        return eg_err_set(err, EG_EINPUT, "%s:%ld: row %d has %d entries, nodes is %d", path,
                          line, r, ncols, n);
    double sum = 0.0;
    for (int j = 0; j < n; j++)
        sum += row[j];
    if (!(fabs(sum - 1.0) <= EG_FILE_TOL)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", sum);
        double shown = sum;
        eg_parse_double(buf, &shown);
        if (fabs(shown - 1.0) <= EG_FILE_TOL) /* %.9g rounded it to look fine */
            snprintf(buf, sizeof buf, "%.17g", sum);
        return eg_err_set(err, EG_EINPUT, "%s:%ld: row %d sums to %s (must be 1 within 1e-9)",
                          path, line, r, buf);
    }
    return EG_OK;
}

/* the data rows (not blank, not comments) of the weight file: their count */
static int file_rows(FILE *f, const char *path, int n, eg_err *err)
{
    char *buf = NULL;
    size_t cap = 0;
    long rows = 0;
    while (getline(&buf, &cap, f) != -1)
        if (!is_blank_or_comment(buf))
            rows++;
    free(buf);
    if (ferror(f))
        return eg_err_set(err, EG_EINPUT, "cannot read graph file %s", path);
    if (rows != n)
        return eg_err_set(err, EG_EINPUT, "%s: has %ld rows, nodes is %d", path, rows, n);
    return EG_OK;
}

/* parses and checks the n data rows into the dense W (n x n, row-major) */
static int file_parse(FILE *f, const char *path, int n, double *W, eg_err *err)
{
    char *buf = NULL;
    size_t cap = 0;
    long line = 0;
    int r = 0, rc = EG_OK;
    rewind(f);
    while (!rc && r < n && getline(&buf, &cap, f) != -1) {
        line++;
        if (is_blank_or_comment(buf))
            continue;
        chomp(buf);
        rc = parse_row(path, line, r, n, buf, W + (size_t)r * n, err);
        r++;
    }
    free(buf);
    if (!rc && r != n)
        rc = eg_err_set(err, EG_EINPUT, "%s: changed while being read", path);
    return rc;
}

/* the sparse W of a dense one: the nonzeros and the diagonal, by row */
static int wmat_from_dense(eg_wmat *m, int n, const double *W, eg_err *err)
{
    long nnz = 0;
    for (size_t q = 0; q < (size_t)n * n; q++)
        nnz += W[q] != 0.0 || q / n == q % n;
    int rc = wmat_alloc(m, n, nnz, err), pos = 0;
    for (int i = 0; i < n && !rc; i++) {
        m->rowptr[i] = pos;
        for (int j = 0; j < n; j++) {
            double v = W[(size_t)i * n + j];
            if (v != 0.0 || i == j) {
                m->col[pos] = j;
                m->val[pos++] = v;
            }
        }
    }
    if (!rc)
        m->rowptr[n] = pos;
    return rc;
}

static int build_file(eg_topo *t, const char *path, eg_err *err)
{
    int n = t->n;
    if (!path || !*path)
        return eg_err_set(err, EG_EINPUT,
                          "graph 'file' needs a path, e.g. {name: file, path: W.csv}");
    if ((long)n * n > INT_MAX)
        return eg_err_set(err, EG_EINPUT, "file graph too large: %d nodes", n);
    FILE *f = fopen(path, "r");
    if (!f)
        return eg_err_set(err, EG_EINPUT, "cannot open graph file %s: %s", path,
                          strerror(errno));
    double *W = NULL;
    int rc = file_rows(f, path, n, err);
    if (!rc && !(W = eg_malloc((size_t)n * (size_t)n * sizeof *W, err)))
        rc = EG_ERUN;
    if (!rc)
        rc = file_parse(f, path, n, W, err);
    fclose(f);
    if (!rc)
        rc = wmat_from_dense(&t->mats[0], n, W, err);
    free(W);
    return rc;
}

/* ---------------------------------------------------------------- public API */

void eg_topo_free(eg_topo *t)
{
    if (!t)
        return;
    if (t->mats)
        for (int k = 0; k < t->nmat; k++)
            wmat_free(&t->mats[k]);
    free(t->mats);
    free(t->perm);
    free(t->scratch);
    free(t->mark);
    for (int q = 0; q < t->nsub && t->sub; q++)
        eg_topo_free(t->sub[q]);
    free(t->sub);
    free(t->phases);
    free(t->end);
    free(t);
}

/* Degree and nnz maxima over the stored matrices (random graphs: their bounds). */
static void scan_maxima(eg_topo *t)
{
    t->max_degree = 0;
    t->max_nnz = 0;
    for (int k = 0; k < t->nmat; k++) {
        const eg_wmat *m = &t->mats[k];
        if (m->nnz > t->max_nnz)
            t->max_nnz = m->nnz;
        for (int i = 0; i < m->n; i++) {
            int d = 0;
            for (int q = m->rowptr[i]; q < m->rowptr[i + 1]; q++)
                d += m->col[q] != i;
            if (d > t->max_degree)
                t->max_degree = d;
        }
    }
    if (t->kind == EG_GRAPH_RANDOM_PEERS && t->n > 1)
        t->max_degree = t->n - 1; /* every node may send to the same one */
}

static eg_topo *topo_new(int kind, int n, uint64_t seed, eg_err *err)
{
    eg_topo *t = eg_calloc(1, sizeof *t, err);
    if (!t)
        return NULL;
    t->kind = kind;
    snprintf(t->name, sizeof t->name, "%s", eg_graph_kinds[kind].name);
    t->n = n;
    t->tau = eg_ceil_log2(n);
    t->seed = seed;
    t->cur_k = -1;
    t->period = 1;
    t->nmat = 1;
    t->ipe = 1.0;
    return t;
}

/* the families' own checks of n and their parameters */
static int leaf_check(const eg_graph_leaf *g, int n, eg_err *err)
{
    int kind = (int)g->kind;
    if (kind < 0 || kind > EG_GRAPH_INNER_OUTER_EXP2)
        return eg_err_set(err, EG_EINPUT, "unknown graph kind %d", kind);
    if (eg_graph_kinds[kind].machines || kind == EG_GRAPH_SCHEDULE)
        return eg_err_set(err, EG_EINPUT, "graph %s cannot be nested here",
                          eg_graph_kinds[kind].name);
    if (kind == EG_GRAPH_ERDOS_RENYI && !(g->p > 0.0 && g->p <= 1.0))
        return eg_err_set(err, EG_EINPUT, "erdos_renyi needs p in (0, 1] (got %g)", g->p);
    if (eg_graph_kinds[kind].pow2 && !eg_is_pow2(n))
        return eg_err_set(err, EG_EINPUT, "%s needs nodes to be a power of two (got %d)",
                          eg_graph_kinds[kind].name, n);
    if (kind == EG_GRAPH_RANDOM_MATCH && n > 1 && n % 2)
        return eg_err_set(err, EG_EINPUT,
                          "random_match needs an even number of nodes (got %d)", n);
    if (g->peers < 0)
        return eg_err_set(err, EG_EINPUT, "peers must be >= 1 (got %d)", g->peers);
    return EG_OK;
}

/* a graph without sub-graphs */
static int leaf_init(eg_topo **out, const eg_graph_leaf *g, int n, uint64_t seed, eg_err *err)
{
    *out = NULL;
    int rc = leaf_check(g, n, err);
    if (rc)
        return rc;
    int kind = (int)g->kind;
    eg_topo *t = topo_new(kind, n, seed, err);
    if (!t)
        return EG_ERUN;
    t->peers = g->peers > 0 ? g->peers : 1;
    if ((kind == EG_GRAPH_ONEPEER_EXP || kind == EG_GRAPH_ONEPEER_HYPERCUBE) && n > 1) {
        t->period = t->tau;
        t->nmat = t->tau;
    }
    if ((kind == EG_GRAPH_RANDOM_MATCH || kind == EG_GRAPH_RANDOM_PEERS) && n > 1)
        t->period = 0;
    if (kind != EG_GRAPH_BASE || n == 1) {
        t->mats = eg_calloc((size_t)t->nmat, sizeof *t->mats, err);
        if (!t->mats) {
            eg_topo_free(t);
            return EG_ERUN;
        }
    }
    if (kind == EG_GRAPH_FILE)
        rc = build_file(t, g->path, err); /* checked even for n = 1 */
    else if (n == 1)
        rc = wmat_identity1(&t->mats[0], err);
    else if (kind == EG_GRAPH_ONEPEER_EXP || kind == EG_GRAPH_ONEPEER_HYPERCUBE)
        rc = build_onepeer(t, err);
    else if (kind == EG_GRAPH_ERDOS_RENYI)
        rc = build_erdos_renyi(t, g->p, err);
    else if (kind == EG_GRAPH_BASE)
        rc = build_base(t, err);
    else if (kind == EG_GRAPH_RANDOM_PEERS)
        rc = build_random_peers(t, err);
    else if (kind == EG_GRAPH_RANDOM_MATCH) {
        rc = wmat_alloc(&t->mats[0], n, 2L * n, err);
        if (!rc) {
            t->perm = eg_malloc((size_t)n * sizeof *t->perm, err);
            rc = t->perm ? EG_OK : EG_ERUN;
        }
        if (!rc)
            fill_random_match(t, 0);
    } else
        rc = build_structured(t, err);
    if (rc) {
        eg_topo_free(t);
        return rc;
    }
    scan_maxima(t);
    *out = t;
    return EG_OK;
}

/* hierarchical: n / local machines, the outer graph between them */
static int hier_init(eg_topo **out, int local, const eg_graph_leaf *outer, int n,
                     uint64_t seed, eg_err *err)
{
    *out = NULL;
    int L = local > 0 ? local : 1;
    if (n % L)
        return eg_err_set(err, EG_EINPUT,
                          "hierarchical needs local (nodes per machine) to divide nodes (got "
                          "local %d, nodes %d)", L, n);
    if (!eg_graph_kinds[outer->kind].nestable)
        return eg_err_set(err, EG_EINPUT, "hierarchical: the outer graph cannot be %s",
                          eg_graph_kinds[outer->kind].name);
    eg_topo *t = topo_new(EG_GRAPH_HIERARCHICAL, n, seed, err);
    if (!t)
        return EG_ERUN;
    t->local = L;
    t->sub = eg_calloc(1, sizeof *t->sub, err);
    t->mats = eg_calloc(1, sizeof *t->mats, err);
    int rc = t->sub && t->mats ? EG_OK : EG_ERUN;
    if (!rc) {
        t->nsub = 1;
        eg_err oerr = {0};
        if ((rc = leaf_init(&t->sub[0], outer, n / L, seed, &oerr)))
            eg_err_set(err, rc, "outer graph on %d machines: %s", n / L, oerr.msg);
    }
    long nnz = rc ? 0 : (long)L * L * eg_topo_max_nnz(t->sub[0]);
    if (!rc && nnz > EG_MAX_ENTRIES)
        rc = eg_err_set(err, EG_EINPUT, "hierarchical with %d nodes per machine has %ld "
                        "weights per iteration (at most %ld): use fewer nodes per machine",
                        L, nnz, EG_MAX_ENTRIES);
    if (!rc)
        rc = wmat_alloc(&t->mats[0], n, nnz, err);
    if (rc) {
        eg_topo_free(t);
        return rc;
    }
    t->period = eg_topo_period(t->sub[0]);
    fill_hierarchical(t, 0);
    t->max_degree = L * (eg_topo_max_degree(t->sub[0]) + 1) - 1;
    t->max_nnz = (int)((long)L * L * eg_topo_max_nnz(t->sub[0])); /* wmat_alloc checked it */
    *out = t;
    return EG_OK;
}

/* inner_outer_exp2 (see fill_inner_outer) on n = M x L nodes, L >= 3, M >= 2 (Bluefog's
 * own conditions: it has no inner ring for L <= 2 and no other machine for M = 1) */
static int ioe_init(eg_topo **out, int local, int n, uint64_t seed, eg_err *err)
{
    *out = NULL;
    const char *name = eg_graph_kinds[EG_GRAPH_INNER_OUTER_EXP2].name;
    if (local < 3)
        return eg_err_set(err, EG_EINPUT,
                          "%s needs local (nodes per machine) >= 3 (got %d): one node of each "
                          "machine talks across machines, the others form a ring of at least "
                          "two", name, local);
    if (n % local || n / local < 2)
        return eg_err_set(err, EG_EINPUT,
                          "%s needs nodes = machines x local with at least 2 machines (got "
                          "local %d, nodes %d)", name, local, n);
    eg_topo *t = topo_new(EG_GRAPH_INNER_OUTER_EXP2, n, seed, err);
    if (!t)
        return EG_ERUN;
    t->local = local;
    t->ioe_out = floor_log2(n / local - 1) + 1;
    t->ioe_in = floor_log2(local - 2) + 1;
    long per = local / gcd_l(local, t->ioe_out) * t->ioe_out;
    per = per / gcd_l(per, t->ioe_in) * t->ioe_in;
    t->period = (int)per; /* per < 2^31 x 31 x 31 fits a long; used only when <= INT_MAX */
    int rc = per <= INT_MAX ? EG_OK
                            : eg_err_set(err, EG_EINPUT, "%s with local %d, nodes %d: period "
                                         "%ld is too long", name, local, n, per);
    t->mats = rc ? NULL : eg_calloc(1, sizeof *t->mats, err);
    t->scratch = rc ? NULL : eg_malloc((size_t)n * sizeof *t->scratch, err);
    if (!rc && (!t->mats || !t->scratch))
        rc = EG_ERUN;
    if (!rc)
        rc = wmat_alloc(&t->mats[0], n, 2L * n, err);
    if (rc) {
        eg_topo_free(t);
        return rc;
    }
    fill_inner_outer(t, 0);
    t->max_degree = 1;
    t->max_nnz = 2 * n;
    *out = t;
    return EG_OK;
}

/* a leaf, a hierarchical graph or inner_outer_exp2 */
static int level_init(eg_topo **out, const eg_graph_leaf *g, int local,
                      const eg_graph_leaf *outer, int n, uint64_t seed, eg_err *err)
{
    if (g->kind == EG_GRAPH_HIERARCHICAL)
        return hier_init(out, local, outer, n, seed, err);
    if (g->kind == EG_GRAPH_INNER_OUTER_EXP2)
        return ioe_init(out, local, n, seed, err);
    return leaf_init(out, g, n, seed, err);
}

static int schedule_init(eg_topo **out, const eg_graph_spec *g, int n, uint64_t seed,
                         eg_err *err)
{
    *out = NULL;
    if (g->nphases < 1 || g->nphases > EG_GRAPH_MAX_PHASES)
        return eg_err_set(err, EG_EINPUT, "schedule needs 1 to %d phases (got %d)",
                          EG_GRAPH_MAX_PHASES, g->nphases);
    eg_topo *t = topo_new(EG_GRAPH_SCHEDULE, n, seed, err);
    if (!t)
        return EG_ERUN;
    t->period = 0;
    t->nmat = 0;
    t->sub = eg_calloc((size_t)g->nphases, sizeof *t->sub, err);
    t->phases = eg_malloc((size_t)g->nphases * sizeof *t->phases, err);
    t->end = eg_malloc((size_t)g->nphases * sizeof *t->end, err);
    int rc = t->sub && t->phases && t->end ? EG_OK : EG_ERUN;
    for (int p = 0; p < g->nphases && !rc; p++) {
        const eg_graph_phase *ph = &g->phases[p];
        t->phases[p] = *ph;
        t->nsub = p + 1;
        eg_err perr = {0};
        if (ph->g.kind == EG_GRAPH_SCHEDULE)
            rc = eg_err_set(&perr, EG_EINPUT, "a phase cannot be a schedule");
        else
            rc = level_init(&t->sub[p], &ph->g, ph->local, &ph->outer, n, seed, &perr);
        if (rc)
            eg_err_set(err, rc, "schedule phase %d: %s", p, perr.msg);
        else {
            if (eg_topo_max_degree(t->sub[p]) > t->max_degree)
                t->max_degree = eg_topo_max_degree(t->sub[p]);
            if (eg_topo_max_nnz(t->sub[p]) > t->max_nnz)
                t->max_nnz = eg_topo_max_nnz(t->sub[p]);
        }
    }
    if (rc) {
        eg_topo_free(t);
        return rc;
    }
    schedule_ends(t);
    *out = t;
    return EG_OK;
}

/* See topology.h. On error *out is NULL and err says why (EG_EINPUT for a bad name,
 * parameter or node count, EG_ERUN for out of memory). */
int eg_topo_init(eg_topo **out, const eg_graph_spec *g, int n, uint64_t seed, eg_err *err)
{
    *out = NULL;
    if (n < 1)
        return eg_err_set(err, EG_EINPUT, "nodes must be >= 1 (got %d)", n);
    if ((int)g->kind < 0 || (int)g->kind > EG_GRAPH_INNER_OUTER_EXP2)
        return eg_err_set(err, EG_EINPUT, "unknown graph kind %d", (int)g->kind);
    if (g->kind == EG_GRAPH_SCHEDULE)
        return schedule_init(out, g, n, seed, err);
    eg_graph_leaf *leaf = eg_malloc(sizeof *leaf, err);
    if (!leaf)
        return EG_ERUN;
    leaf->kind = g->kind;
    leaf->p = g->p;
    leaf->peers = g->peers;
    memcpy(leaf->path, g->path, sizeof leaf->path);
    int rc = level_init(out, leaf, g->local, &g->outer, n, seed, err);
    free(leaf);
    return rc;
}

int eg_topo_nodes(const eg_topo *t) { return t->n; }
const char *eg_topo_name(const eg_topo *t) { return t->name; }
int eg_topo_period(const eg_topo *t) { return t->period; }
int eg_topo_max_degree(const eg_topo *t) { return t->max_degree; }
int eg_topo_max_nnz(const eg_topo *t) { return t->max_nnz; }

void eg_topo_set_iters_per_epoch(eg_topo *t, double iters_per_epoch)
{
    if (t->kind != EG_GRAPH_SCHEDULE || !(iters_per_epoch > 0))
        return;
    t->ipe = iters_per_epoch;
    schedule_ends(t);
}

/* See topology.h. k < 0 is treated as 0. Never allocates. */
const eg_wmat *eg_topo_weights(eg_topo *t, long k)
{
    if (k < 0)
        k = 0;
    if (t->kind == EG_GRAPH_SCHEDULE) {
        long start;
        int p = schedule_phase(t, k, &start);
        return eg_topo_weights(t->sub[p], k - start);
    }
    if (t->kind == EG_GRAPH_HIERARCHICAL) {
        long key = t->period > 0 ? k % t->period : k;
        if (key != t->cur_k)
            fill_hierarchical(t, key);
        return &t->mats[0];
    }
    if (t->kind == EG_GRAPH_INNER_OUTER_EXP2) {
        long key = k % t->period;
        if (key != t->cur_k)
            fill_inner_outer(t, key);
        return &t->mats[0];
    }
    if ((t->kind == EG_GRAPH_RANDOM_MATCH || t->kind == EG_GRAPH_RANDOM_PEERS) && t->n > 1) {
        if (k != t->cur_k) {
            if (t->kind == EG_GRAPH_RANDOM_MATCH)
                fill_random_match(t, k);
            else
                fill_random_peers(t, k);
        }
        return &t->mats[0];
    }
    return &t->mats[t->nmat > 1 ? k % t->nmat : 0];
}

/* See topology.h. */
void eg_topo_dense(eg_topo *t, long k, double *W)
{
    const eg_wmat *m = eg_topo_weights(t, k);
    size_t n = (size_t)m->n;
    memset(W, 0, n * n * sizeof *W);
    for (size_t i = 0; i < n; i++)
        for (int q = m->rowptr[i]; q < m->rowptr[i + 1]; q++)
            W[i * n + (size_t)m->col[q]] = m->val[q];
}

/* See topology.h. Allocates n*n doubles of workspace; LAPACKE allocates its own. */
double eg_spectral_norm_minus_J(const double *A, int n)
{
    if (n < 1)
        return -1.0;
    size_t nn = (size_t)n * (size_t)n;
    double *B = malloc(nn * sizeof *B);
    double *s = malloc((size_t)n * sizeof *s);
    if (!B || !s) {
        free(B);
        free(s);
        return -1.0;
    }
    double jn = 1.0 / n;
    int sym = 1;
    for (size_t i = 0; i < (size_t)n && sym; i++)
        for (size_t j = i + 1; j < (size_t)n; j++)
            if (A[i * n + j] != A[j * n + i]) {
                sym = 0;
                break;
            }
    for (size_t q = 0; q < nn; q++)
        B[q] = A[q] - jn;
    double norm = -1.0;
    lapack_int info;
    /* Column-major views B^T: the same matrix when symmetric, the same singular values
     * otherwise, and no transposed copy inside LAPACKE. */
    if (sym) {
        info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'U', n, B, n, s);
        if (info == 0) {
            norm = 0.0;
            for (int q = 0; q < n; q++)
                if (fabs(s[q]) > norm)
                    norm = fabs(s[q]);
        }
    } else {
        info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', n, n, B, n, s, NULL, 1, NULL, 1);
        if (info == 0)
            norm = s[0];
    }
    free(B);
    free(s);
    return norm;
}

/* the most off-diagonal nonzeros in a row of A into *degree (max with its value), and
 * *doubly cleared when a column does not sum to 1 within 1e-12 */
static void dense_facts(const double *A, int n, int *degree, int *doubly)
{
    for (int i = 0; i < n; i++) {
        int d = 0;
        double cs = 0.0;
        for (int j = 0; j < n; j++) {
            d += j != i && A[(size_t)i * n + j] != 0.0;
            cs += A[(size_t)j * n + i];
        }
        if (d > *degree)
            *degree = d;
        if (!(fabs(cs - 1.0) <= 1e-12))
            *doubly = 0;
    }
}

/* See topology.h. */
int eg_topo_stats_compute(eg_topo *t, eg_topo_stats *st, eg_err *err)
{
    int n = t->n;
    if (n > EG_TOPO_STATS_MAX_NODES)
        return eg_err_set(err, EG_EINPUT,
                          "nodes=%d is too many for the spectral statistics (at most %d: "
                          "they use dense n x n matrices)",
                          n, EG_TOPO_STATS_MAX_NODES);
    int P = t->period > 0 ? t->period : 1;
    size_t nn = (size_t)n * (size_t)n;
    double *A = eg_malloc(nn * sizeof *A, err);
    double *prod = P > 1 ? eg_malloc(nn * sizeof *prod, err) : NULL;
    double *tmp = P > 1 ? eg_malloc(nn * sizeof *tmp, err) : NULL;
    if (!A || (P > 1 && (!prod || !tmp))) {
        free(A);
        free(prod);
        free(tmp);
        return EG_ERUN;
    }
    int rc = EG_OK, degree = 0, doubly = 1;
    double rho = 0.0;
    for (int k = 0; k < P && !rc; k++) {
        eg_topo_dense(t, k, A);
        dense_facts(A, n, &degree, &doubly);
        double r = eg_spectral_norm_minus_J(A, n);
        if (r < 0) {
            rc = eg_err_set(err, EG_ERUN, "LAPACK failed on W(%d) of %s with %d nodes", k,
                            t->name, n);
            break;
        }
        if (r > rho)
            rho = r;
        if (P > 1) {
            if (k == 0) {
                memcpy(prod, A, nn * sizeof *A);
            } else { /* prod <- W(k) prod */
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, A, n,
                            prod, n, 0.0, tmp, n);
                double *sw = prod;
                prod = tmp;
                tmp = sw;
            }
        }
    }
    double rho_period = rho;
    if (!rc && P > 1) {
        rho_period = eg_spectral_norm_minus_J(prod, n);
        if (rho_period < 0)
            rc = eg_err_set(err, EG_ERUN, "LAPACK failed on the period product of %s", t->name);
    }
    free(A);
    free(prod);
    free(tmp);
    if (rc)
        return rc;
    st->period = P;
    st->degree = degree;
    st->doubly = doubly;
    st->rho = rho;
    st->gap = 1.0 - rho;
    st->rho_period = rho_period;
    return EG_OK;
}

/* ---------------------------------------------------------------- reach (who may ever send) */

/* whether some W(k) may hold any pair: an aperiodic graph, or a schedule with one */
static int reach_all(const eg_topo *t)
{
    if (t->kind == EG_GRAPH_SCHEDULE) {
        for (int p = 0; p < t->nsub; p++)
            if (reach_all(t->sub[p]))
                return 1;
        return 0;
    }
    return t->period == 0 && t->n > 1;
}

/* the two passes over every W(k): count the off-diagonal nonzeros per row, then list them */
typedef struct reach_acc {
    long *cnt, *cur;
    int *col;
    int fill;
} reach_acc;

static void reach_visit(const eg_wmat *W, reach_acc *a)
{
    for (int i = 0; i < W->n; i++)
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            if (W->col[e] == i || W->val[e] == 0.0)
                continue;
            if (a->fill)
                a->col[a->cur[i]++] = W->col[e];
            else
                a->cnt[i]++;
        }
}

/* every W(k) of t (not aperiodic): one period, or each phase's */
static void reach_walk(eg_topo *t, reach_acc *a)
{
    if (t->kind == EG_GRAPH_SCHEDULE) {
        for (int p = 0; p < t->nsub; p++)
            reach_walk(t->sub[p], a);
        return;
    }
    int P = t->period > 0 ? t->period : 1;
    for (long k = 0; k < P; k++)
        reach_visit(eg_topo_weights(t, k), a);
}

/* sorts and de-duplicates each row of the listed entries into r's CSR */
static void reach_compact(eg_topo_reach *r, const reach_acc *a)
{
    int pos = 0;
    long from = 0;
    for (int i = 0; i < r->n; i++) {
        int *row = a->col + from;
        long len = a->cnt[i];
        qsort(row, (size_t)len, sizeof *row, cmp_int);
        r->rowptr[i] = pos;
        for (long q = 0; q < len; q++)
            if (q == 0 || row[q] != row[q - 1])
                r->col[pos++] = row[q];
        from += len;
    }
    r->rowptr[r->n] = pos;
}

int eg_topo_reach_init(eg_topo_reach *r, eg_topo *t, eg_err *err)
{
    *r = (eg_topo_reach){.n = t->n, .all = reach_all(t)};
    if (r->all)
        return EG_OK;
    reach_acc a = {.cnt = eg_calloc((size_t)t->n, sizeof(long), err),
                   .cur = eg_malloc((size_t)t->n * sizeof(long), err)};
    int rc = a.cnt && a.cur ? EG_OK : EG_ERUN;
    long total = 0;
    if (!rc) {
        reach_walk(t, &a);
        for (int i = 0; i < t->n; i++) {
            a.cur[i] = total;
            total += a.cnt[i];
        }
        if (total > INT_MAX)
            rc = eg_err_set(err, EG_EINPUT, "%s: %ld possible messages (at most %d)", t->name,
                            total, INT_MAX);
    }
    if (!rc) {
        a.col = eg_malloc((size_t)(total ? total : 1) * sizeof(int), err);
        r->rowptr = eg_malloc(((size_t)t->n + 1) * sizeof(int), err);
        r->col = eg_malloc((size_t)(total ? total : 1) * sizeof(int), err);
        rc = a.col && r->rowptr && r->col ? EG_OK : EG_ERUN;
    }
    if (!rc) {
        a.fill = 1;
        reach_walk(t, &a);
        reach_compact(r, &a);
    }
    free(a.cnt);
    free(a.cur);
    free(a.col);
    if (rc)
        eg_topo_reach_free(r);
    return rc;
}

void eg_topo_reach_free(eg_topo_reach *r)
{
    if (!r)
        return;
    free(r->rowptr);
    free(r->col);
    r->rowptr = NULL;
    r->col = NULL;
}
