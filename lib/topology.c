/* topology.c - graph families -> mixing matrices W(k) (SPEC.md section 3).
 *
 * Every family is built once in eg_topo_init into CSR matrices owned by the eg_topo:
 *  - static graphs: one matrix, returned for every k;
 *  - onepeer_exp / onepeer_hypercube: the tau matrices of one period;
 *  - random_match: one preallocated buffer refilled per k from a generator seeded by
 *    (seed, EG_STREAM_GRAPH, 1000003 + k), so any k can be asked for in any order.
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
    long cur_k;      /* random_match: the k held in mats[0] (-1: none yet) */
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

static int build_structured(eg_topo *t, eg_err *err)
{
    int n = t->n, tau = t->tau, rc = EG_OK;
    edges e = {0};
    int both = 0, rule = RULE_UNIFORM;
    int r = 1, c = n;
    switch (t->kind) {
    case EG_GRAPH_RING:
        for (int i = 0; i < n && !rc; i++) {
            rc = edges_push(&e, i, (int)mod_n(i - 1L, n), err);
            if (!rc)
                rc = edges_push(&e, i, (int)mod_n(i + 1L, n), err);
        }
        break;
    case EG_GRAPH_TORUS:
        grid_shape(n, &r, &c);
        for (int i = 0; i < n && !rc; i++) {
            int y = i / c, x = i % c;
            int nb[4] = {(int)mod_n(y - 1L, r) * c + x, (int)mod_n(y + 1L, r) * c + x,
                         y * c + (int)mod_n(x - 1L, c), y * c + (int)mod_n(x + 1L, c)};
            for (int q = 0; q < 4 && !rc; q++)
                rc = edges_push(&e, i, nb[q], err);
        }
        break;
    case EG_GRAPH_GRID:
        grid_shape(n, &r, &c);
        rule = RULE_MH;
        for (int i = 0; i < n && !rc; i++) {
            int y = i / c, x = i % c;
            if (y > 0)
                rc = edges_push(&e, i, i - c, err);
            if (!rc && y + 1 < r)
                rc = edges_push(&e, i, i + c, err);
            if (!rc && x > 0)
                rc = edges_push(&e, i, i - 1, err);
            if (!rc && x + 1 < c)
                rc = edges_push(&e, i, i + 1, err);
        }
        break;
    case EG_GRAPH_EXP:
        for (int i = 0; i < n && !rc; i++)
            for (int s = 0; s < tau && !rc; s++)
                rc = edges_push(&e, i, (int)mod_n(i - (1L << s), n), err);
        break;
    case EG_GRAPH_SYM_EXP:
        for (int i = 0; i < n && !rc; i++)
            for (int s = 0; s < tau && !rc; s++) {
                rc = edges_push(&e, i, (int)mod_n(i - (1L << s), n), err);
                if (!rc)
                    rc = edges_push(&e, i, (int)mod_n(i + (1L << s), n), err);
            }
        break;
    case EG_GRAPH_HYPERCUBE:
        for (int i = 0; i < n && !rc; i++)
            for (int s = 0; s < tau && !rc; s++)
                rc = edges_push(&e, i, i ^ (1 << s), err);
        break;
    case EG_GRAPH_FULL:
        if ((long)n * n > INT_MAX)
            return eg_err_set(err, EG_EINPUT, "full graph too large: %d nodes (at most 46340)", n);
        for (int i = 0; i < n && !rc; i++)
            for (int j = 0; j < n && !rc; j++)
                if (j != i)
                    rc = edges_push(&e, i, j, err);
        break;
    case EG_GRAPH_STAR:
        both = 1;
        rule = RULE_MH;
        for (int j = 1; j < n && !rc; j++)
            rc = edges_push(&e, 0, j, err);
        break;
    default:
        return eg_err_set(err, EG_ERUN, "internal: build_structured on graph %s", t->name);
    }
    if (!rc)
        rc = wmat_from_edges(&t->mats[0], n, &e, both, rule, err);
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
    char *buf = NULL;
    size_t cap = 0;
    long rows = 0;
    int rc = EG_OK;
    /* pass 1: count the data rows */
    while (getline(&buf, &cap, f) != -1)
        if (!is_blank_or_comment(buf))
            rows++;
    if (ferror(f))
        rc = eg_err_set(err, EG_EINPUT, "cannot read graph file %s", path);
    else if (rows != n)
        rc = eg_err_set(err, EG_EINPUT, "%s: has %ld rows, nodes is %d", path, rows, n);
    double *W = NULL;
    if (!rc) {
        W = eg_malloc((size_t)n * (size_t)n * sizeof *W, err);
        if (!W)
            rc = EG_ERUN;
    }
    /* pass 2: parse and check each row */
    if (!rc) {
        rewind(f);
        long line = 0;
        int r = 0;
        while (!rc && getline(&buf, &cap, f) != -1) {
            line++;
            if (is_blank_or_comment(buf))
                continue;
            chomp(buf);
            if (r >= n)
                break;
            rc = parse_row(path, line, r, n, buf, W + (size_t)r * n, err);
            r++;
        }
        if (!rc && r != n)
            rc = eg_err_set(err, EG_EINPUT, "%s: changed while being read", path);
    }
    free(buf);
    fclose(f);
    if (!rc) {
        long nnz = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                if (W[(size_t)i * n + j] != 0.0 || i == j)
                    nnz++;
        eg_wmat *m = &t->mats[0];
        rc = wmat_alloc(m, n, nnz, err);
        if (!rc) {
            int pos = 0;
            for (int i = 0; i < n; i++) {
                m->rowptr[i] = pos;
                for (int j = 0; j < n; j++) {
                    double v = W[(size_t)i * n + j];
                    if (v != 0.0 || i == j) {
                        m->col[pos] = j;
                        m->val[pos++] = v;
                    }
                }
            }
            m->rowptr[n] = pos;
        }
    }
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
    free(t);
}

/* Degree and nnz maxima over the stored matrices. */
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
}

/* See topology.h. On error *out is NULL and err says why (EG_EINPUT for a bad name,
 * parameter or node count, EG_ERUN for out of memory). */
int eg_topo_init(eg_topo **out, const eg_graph_spec *g, int n, uint64_t seed, eg_err *err)
{
    *out = NULL;
    int kind = (int)g->kind;
    if (kind < 0 || kind > EG_GRAPH_FILE)
        return eg_err_set(err, EG_EINPUT, "unknown graph kind %d", kind);
    if (n < 1)
        return eg_err_set(err, EG_EINPUT, "nodes must be >= 1 (got %d)", n);
    if (kind == EG_GRAPH_ERDOS_RENYI && !(g->p > 0.0 && g->p <= 1.0))
        return eg_err_set(err, EG_EINPUT, "erdos_renyi needs p in (0, 1] (got %g)", g->p);
    if (eg_graph_kinds[kind].pow2 && !eg_is_pow2(n))
        return eg_err_set(err, EG_EINPUT, "%s needs nodes to be a power of two (got %d)",
                          eg_graph_kinds[kind].name, n);
    if (kind == EG_GRAPH_RANDOM_MATCH && n > 1 && n % 2)
        return eg_err_set(err, EG_EINPUT,
                          "random_match needs an even number of nodes (got %d)", n);

    eg_topo *t = eg_calloc(1, sizeof *t, err);
    if (!t)
        return EG_ERUN;
    t->kind = kind;
    snprintf(t->name, sizeof t->name, "%s", eg_graph_kinds[kind].name);
    t->n = n;
    t->tau = eg_ceil_log2(n);
    t->seed = seed;
    t->cur_k = -1;
    t->period = 1;
    t->nmat = 1;
    if ((kind == EG_GRAPH_ONEPEER_EXP || kind == EG_GRAPH_ONEPEER_HYPERCUBE) && n > 1) {
        t->period = t->tau;
        t->nmat = t->tau;
    }
    if (kind == EG_GRAPH_RANDOM_MATCH)
        t->period = 0;
    t->mats = eg_calloc((size_t)t->nmat, sizeof *t->mats, err);
    if (!t->mats) {
        eg_topo_free(t);
        return EG_ERUN;
    }

    int rc;
    if (kind == EG_GRAPH_FILE)
        rc = build_file(t, g->path, err); /* checked even for n = 1 */
    else if (n == 1)
        rc = wmat_identity1(&t->mats[0], err);
    else if (kind == EG_GRAPH_ONEPEER_EXP || kind == EG_GRAPH_ONEPEER_HYPERCUBE)
        rc = build_onepeer(t, err);
    else if (kind == EG_GRAPH_ERDOS_RENYI)
        rc = build_erdos_renyi(t, g->p, err);
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

int eg_topo_nodes(const eg_topo *t) { return t->n; }
const char *eg_topo_name(const eg_topo *t) { return t->name; }
int eg_topo_period(const eg_topo *t) { return t->period; }
int eg_topo_max_degree(const eg_topo *t) { return t->max_degree; }
int eg_topo_max_nnz(const eg_topo *t) { return t->max_nnz; }

/* See topology.h. k < 0 is treated as 0. Never allocates. */
const eg_wmat *eg_topo_weights(eg_topo *t, long k)
{
    if (k < 0)
        k = 0;
    if (t->kind == EG_GRAPH_RANDOM_MATCH && t->n > 1) {
        if (k != t->cur_k)
            fill_random_match(t, k);
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
    int rc = EG_OK;
    double rho = 0.0;
    for (int k = 0; k < P && !rc; k++) {
        eg_topo_dense(t, k, A);
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
    st->degree = t->max_degree;
    st->rho = rho;
    st->gap = 1.0 - rho;
    st->rho_period = rho_period;
    return EG_OK;
}
