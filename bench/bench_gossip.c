/* bench_gossip.c - one gossip combine over all n nodes (eg_comm_gossip) against the memory
 * bandwidth measured in the same run.
 *
 * For each graph (default full, ring, exp, onepeer_exp, torus) and vector size (default
 * 64K, 256K, 1M, 4M floats per node, n = 16 nodes on this one rank) it times
 *   eg_comm_gossip(c, W(k), in, out, dim)     (k = 0, 1, 2, ...: onepeer_exp cycles its W(k))
 * and beside it, over the same n*dim floats, with the same OpenMP threads:
 *   memcpy   out <- in                         counted bytes 2 * n*dim*4 (read + write)
 *   triad    a <- b + s*c  (STREAM-like)       counted bytes 3 * n*dim*4 (2 reads + write)
 * The bandwidth limit BW is the faster of the two, in GB/s (1e9 bytes/s).
 *
 * Bytes a gossip must move (two models, both printed):
 *   sum model  (nnz(W) + n) * dim * 4: the plain sum form x_i <- sum_j W_ij x_j reads, for
 *              every row, its own vector and each in-neighbour's once (nnz(W) vector reads,
 *              the self entry included) and writes one vector per node. This is what a
 *              row-by-row combine must stream from memory when vectors do not fit in cache.
 *   min model  2 * n * dim * 4: every node's vector read once and written once - the floor
 *              for any implementation (one that blocks over the vector so that each source
 *              chunk is read from memory once and reused from cache by every row using it).
 * Reported: time per combine, GB/s under the sum model, and
 *   ratio     = gossip_time / (sum-model bytes / BW)    (1.0 = at the bandwidth limit)
 *   ratio_min = gossip_time / (min-model bytes / BW)
 * Every figure is the best of --reps repetitions of at least --time seconds; kernels are
 * interleaved rep by rep, so a busy moment on the shared machine hits all of them alike.
 *
 * Threads: like `expgraph run`, cores / ranks on this host (EXPGRAPH_THREADS overrides,
 * --threads overrides both), OpenBLAS single-threaded. One MPI rank only.
 *
 * usage: bench_gossip [--csv] [--nodes N] [--dims D,D,...] [--graphs G,G,...]
 *                     [--time S] [--reps N] [--threads T] [--no-rowwise]
 */
#include "comm.h"
#include "common.h"
#include "topology.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 16
#define MAX_PERIOD 16 /* W(k) of one period kept for the row-wise kernel */

static double g_time = 0.3;
static int g_reps = 5;

static int parse_list(const char *s, char items[][32], int max)
{
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len == 0 || len >= 32)
            return -1;
        memcpy(items[n], p, len);
        items[n][len] = 0;
        n++;
        if (!q)
            break;
        p = q + 1;
    }
    return n;
}

/* parallel memcpy: each thread copies one contiguous piece (as a runner thread would) */
static void par_memcpy(float *restrict dst, const float *restrict src, size_t count)
{
#pragma omp parallel
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        size_t lo = count * (size_t)t / (size_t)T, hi = count * (size_t)(t + 1) / (size_t)T;
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof(float));
    }
}

static void triad(float *restrict a, const float *restrict b, const float *restrict c, float s,
                  size_t count)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        a[i] = b[i] + s * c[i];
}

/* ---- the row-wise combine (what lib/comm.c did before it blocked over the vector) ----
 * Same arithmetic as comm.c's combine (difference form x_i + sum_{j != i} w_ij (x_j - x_i),
 * neighbours ascending, float weights), so the results must be bitwise identical, but one
 * row at a time (threads over rows), one pass over the row's output per neighbour. Kept as
 * the baseline the blocked kernel is measured against, and as an independent check of it:
 * each source vector is streamed from memory once per row that reads it (nnz(W) + n vector
 * reads), the "sum model" below. */
#define RW_CHUNK 2048

typedef struct rw {
    int n, *start, *k;  /* per row: first entry in src/w, count (self excluded) */
    int *src;           /* in-neighbour node ids, ascending */
    float *w;
} rw;

static int rw_init(rw *cd, const eg_wmat *W)
{
    int n = W->n;
    cd->n = n;
    cd->start = malloc(sizeof(int) * (size_t)n);
    cd->k = malloc(sizeof(int) * (size_t)n);
    cd->src = malloc(sizeof(int) * (size_t)(W->nnz + 1));
    cd->w = malloc(sizeof(float) * (size_t)(W->nnz + 1));
    if (!cd->start || !cd->k || !cd->src || !cd->w)
        return -1;
    int e2 = 0;
    for (int i = 0; i < n; i++) {
        cd->start[i] = e2;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++)
            if (W->col[e] != i && W->val[e] != 0.0) {
                cd->src[e2] = W->col[e];
                cd->w[e2++] = (float)W->val[e];
            }
        cd->k[i] = e2 - cd->start[i];
    }
    return 0;
}

static void rw_free(rw *cd)
{
    free(cd->start);
    free(cd->k);
    free(cd->src);
    free(cd->w);
}

static void rw_gossip(const rw *cd, const float *in, float *out, size_t dim)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < cd->n; i++) {
        const int k = cd->k[i], *sj = cd->src + cd->start[i];
        const float *w = cd->w + cd->start[i];
        for (size_t b = 0; b < dim; b += RW_CHUNK) {
            size_t len = dim - b < RW_CHUNK ? dim - b : RW_CHUNK;
            float *restrict o = out + (size_t)i * dim + b;
            const float *restrict x = in + (size_t)i * dim + b;
            if (k == 0) {
                memcpy(o, x, len * sizeof(float));
                continue;
            }
            const float *restrict s0 = in + (size_t)sj[0] * dim + b;
            for (size_t t = 0; t < len; t++)
                o[t] = x[t] + w[0] * (s0[t] - x[t]);
            for (int e = 1; e < k; e++) {
                const float *restrict s = in + (size_t)sj[e] * dim + b;
                const float we = w[e];
                for (size_t t = 0; t < len; t++)
                    o[t] += we * (s[t] - x[t]);
            }
        }
    }
}

enum { K_MEMCPY, K_TRIAD, K_GRAPH0 };

typedef struct ctx {
    eg_comm **comm;
    eg_topo **topo;
    float *in, *out, *c3;
    size_t dim, count;
    long *k;        /* per graph: next W(k) index */
    int ngraphs;    /* kinds K_GRAPH0 + g: the library; K_GRAPH0 + ngraphs + g: row-wise */
    rw *cands;    /* per graph, per W(k) of one period */
    int *period;
} ctx;

/* runs kernel `kind` once; returns nonzero on a gossip error */
static int run_once(ctx *x, int kind, eg_err *err)
{
    if (kind == K_MEMCPY) {
        par_memcpy(x->out, x->in, x->count);
        return 0;
    }
    if (kind == K_TRIAD) {
        triad(x->out, x->in, x->c3, 0.5f, x->count);
        return 0;
    }
    int gi = kind - K_GRAPH0;
    if (gi >= x->ngraphs) { /* the row-wise kernel */
        gi -= x->ngraphs;
        long k = x->k[gi]++;
        rw_gossip(&x->cands[gi * MAX_PERIOD + (int)(k % x->period[gi])], x->in, x->out, x->dim);
        return 0;
    }
    const eg_wmat *W = eg_topo_weights(x->topo[gi], x->k[gi]++);
    return eg_comm_gossip(x->comm[gi], W, x->in, x->out, x->dim, err);
}

/* seconds per call: the mean over one repetition of at least g_time seconds (>= 2 calls) */
static double time_rep(ctx *x, int kind, eg_err *err, int *bad)
{
    long it = 0;
    double t0 = eg_now(), t;
    do {
        if (run_once(x, kind, err)) {
            *bad = 1;
            return 1;
        }
        it++;
    } while ((t = eg_now() - t0) < g_time || it < 2);
    return t / (double)it;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_gossip [--csv] [--nodes N] [--dims D,D,...] [--graphs G,G,...]\n"
            "                    [--time S] [--reps N] [--threads T] [--no-rowwise]\n"
            "  --csv        print CSV instead of a table\n"
            "  --nodes N    nodes, all on this rank (default 16)\n"
            "  --dims L     floats per node vector (default 65536,262144,1048576,4194304)\n"
            "  --graphs L   graphs (default full,ring,exp,onepeer_exp,torus; base has 1 peer,\n"
            "               hierarchical 4 nodes per machine and onepeer_exp between them)\n"
            "  --time S     minimum seconds per timed repetition (default 0.3)\n"
            "  --reps N     repetitions, the best is kept (default 5)\n"
            "  --threads T  OpenMP threads (default: as expgraph run, cores / ranks on the host,\n"
            "               or EXPGRAPH_THREADS)\n"
            "  --no-rowwise  skip the row-wise baseline combine (comm.c before blocking)\n");
}

int main(int argc, char **argv)
{
    if (eg_comm_world_init(&argc, &argv)) {
        fprintf(stderr, "bench_gossip: MPI_Init failed\n");
        return 1;
    }
    int csv = 0, threads = 0, rw_on = 1;
    long nodes = 16;
    char dims_s[MAX_ITEMS][32], graphs[MAX_ITEMS][32];
    int ndims = parse_list("65536,262144,1048576,4194304", dims_s, MAX_ITEMS);
    int ngraphs = parse_list("full,ring,exp,onepeer_exp,torus", graphs, MAX_ITEMS);
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        long v;
        if (!strcmp(argv[i], "--csv"))
            csv = 1;
        else if (!strcmp(argv[i], "--no-rowwise"))
            rw_on = 0;
        else if (!strcmp(argv[i], "--nodes") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &nodes) || nodes < 2 || nodes > 4096) {
                fprintf(stderr, "bench_gossip: --nodes wants an integer in [2, 4096]\n");
                rc = 2;
            }
        } else if (!strcmp(argv[i], "--dims") && i + 1 < argc) {
            if ((ndims = parse_list(argv[++i], dims_s, MAX_ITEMS)) < 1) {
                fprintf(stderr, "bench_gossip: --dims wants a comma-separated list\n");
                rc = 2;
            }
        } else if (!strcmp(argv[i], "--graphs") && i + 1 < argc) {
            if ((ngraphs = parse_list(argv[++i], graphs, MAX_ITEMS)) < 1) {
                fprintf(stderr, "bench_gossip: --graphs wants a comma-separated list\n");
                rc = 2;
            }
        } else if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            if (eg_parse_double(argv[++i], &g_time) || !(g_time > 0)) {
                fprintf(stderr, "bench_gossip: --time wants a positive number\n");
                rc = 2;
            }
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &v) || v < 1 || v > 1000) {
                fprintf(stderr, "bench_gossip: --reps wants an integer in [1, 1000]\n");
                rc = 2;
            }
            g_reps = (int)v;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &v) || v < 1 || v > 1024) {
                fprintf(stderr, "bench_gossip: --threads wants an integer in [1, 1024]\n");
                rc = 2;
            }
            threads = (int)v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            eg_comm_world_finalize();
            return 0;
        } else {
            usage(stderr);
            rc = 2;
        }
        if (rc)
            break;
    }
    size_t dims[MAX_ITEMS], maxdim = 0;
    for (int d = 0; d < ndims && !rc; d++) {
        long v;
        if (eg_parse_long(dims_s[d], &v) || v < 1 || v > (1L << 28)) {
            fprintf(stderr, "bench_gossip: bad vector size '%s'\n", dims_s[d]);
            rc = 2;
        } else {
            dims[d] = (size_t)v;
            if (dims[d] > maxdim)
                maxdim = dims[d];
        }
    }
    if (!rc && eg_comm_world_size() != 1) {
        fprintf(stderr, "bench_gossip: run it on one rank (it times the on-rank combine)\n");
        rc = 2;
    }
    if (rc) {
        eg_comm_world_finalize();
        return rc;
    }

    /* threads as the runner sets them: cores / ranks on the host, BLAS single-threaded */
    if (threads == 0)
        threads = eg_default_threads(1); /* one rank */
    omp_set_num_threads(threads);
    openblas_set_num_threads(1);

    eg_err err = {0};
    int n = (int)nodes;
    eg_topo *topo[MAX_ITEMS] = {0};
    eg_comm *comm[MAX_ITEMS] = {0};
    long kidx[MAX_ITEMS] = {0};
    double nnz[MAX_ITEMS];
    static rw cands[MAX_ITEMS * MAX_PERIOD];
    int period[MAX_ITEMS];
    for (int g = 0; g < ngraphs; g++) {
        eg_graph_spec gs;
        memset(&gs, 0, sizeof gs);
        gs.kind = (eg_graph_kind)EG_KIND_FIND(eg_graph_kinds, graphs[g]);
        gs.p = 0.2;
        if (gs.kind == EG_GRAPH_HIERARCHICAL) { /* machines of 4 nodes, onepeer_exp between */
            gs.local = 4;
            gs.outer.kind = EG_GRAPH_ONEPEER_EXP;
        }
        if (eg_topo_init(&topo[g], &gs, n, 1, &err) ||
            eg_comm_init(&comm[g], n, maxdim, 1, topo[g], &err)) {
            fprintf(stderr, "bench_gossip: %s: %s\n", graphs[g], err.msg);
            eg_comm_world_finalize();
            return 2;
        }
        /* mean nnz over one period (the one-peer graphs: every W(k) has the same count) */
        int per = eg_topo_period(topo[g]);
        if (per < 1)
            per = 1;
        double s = 0;
        for (int k = 0; k < per; k++) {
            const eg_wmat *W = eg_topo_weights(topo[g], k);
            for (int e = 0; e < W->nnz; e++)
                s += W->val[e] != 0.0;
        }
        nnz[g] = s / per;
        period[g] = per;
        if (rw_on && per > MAX_PERIOD) {
            fprintf(stderr, "bench_gossip: %s has period %d > %d; use --no-rowwise\n",
                    graphs[g], per, MAX_PERIOD);
            eg_comm_world_finalize();
            return 2;
        }
        for (int k = 0; rw_on && k < per; k++)
            if (rw_init(&cands[g * MAX_PERIOD + k], eg_topo_weights(topo[g], k))) {
                fprintf(stderr, "bench_gossip: out of memory\n");
                eg_comm_world_finalize();
                return 1;
            }
    }
    size_t maxcount = (size_t)n * maxdim;
    float *in = eg_alloc_floats(maxcount, &err), *out = eg_alloc_floats(maxcount, &err),
          *c3 = eg_alloc_floats(maxcount, &err);
    if (!in || !out || !c3) {
        fprintf(stderr, "bench_gossip: %s\n", err.msg);
        eg_comm_world_finalize();
        return 1;
    }
    /* touch the pages with the threads that will use them */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < maxcount; i++) {
        in[i] = (float)((i * 2654435761u) % 1000u) * 1e-3f;
        out[i] = 0;
        c3[i] = 1;
    }

    int nk = K_GRAPH0 + ngraphs * (rw_on ? 2 : 1);
    double best[MAX_ITEMS][K_GRAPH0 + 2 * MAX_ITEMS];
    for (int d = 0; d < ndims; d++) {
        size_t dim = dims[d];
        ctx x = {comm, topo, in, out, c3, dim, (size_t)n * dim, kidx, ngraphs, cands, period};
        int bad = 0;
        for (int kind = 0; kind < nk; kind++) {
            best[d][kind] = INFINITY;
            if (run_once(&x, kind, &err)) /* warm-up */
                bad = 1;
        }
        /* a check that the timed combine does what it says: node 0's row on the static
         * graphs (the difference form equals sum_j W_0j x_j up to float rounding) */
        for (int g = 0; g < ngraphs && !bad; g++) {
            if (eg_topo_period(topo[g]) != 1)
                continue;
            const eg_wmat *W = eg_topo_weights(topo[g], 0);
            if (eg_comm_gossip(comm[g], W, in, out, dim, &err)) {
                bad = 1;
                break;
            }
            for (size_t t = 0; t < dim; t += dim / 7 + 1) {
                double ref = 0;
                for (int e = W->rowptr[0]; e < W->rowptr[1]; e++)
                    ref += W->val[e] * in[(size_t)W->col[e] * dim + t];
                if (fabs(ref - out[t]) > 1e-4 * (1 + fabs(ref))) {
                    fprintf(stderr, "bench_gossip: %s: combine gives %g, expected %g\n",
                            graphs[g], out[t], ref);
                    eg_comm_world_finalize();
                    return 1;
                }
            }
        }
        /* the row-wise combine must give bitwise the library's result, for every W(k) of a period */
        for (int g = 0; g < ngraphs && rw_on && !bad; g++)
            for (int k = 0; k < period[g] && !bad; k++) {
                if (eg_comm_gossip(comm[g], eg_topo_weights(topo[g], k), in, out, dim, &err)) {
                    bad = 1;
                    break;
                }
                rw_gossip(&cands[g * MAX_PERIOD + k], in, c3, dim);
                if (memcmp(out, c3, (size_t)n * dim * sizeof(float))) {
                    fprintf(stderr, "bench_gossip: %s W(%d): the row-wise combine differs from "
                            "the library's\n", graphs[g], k);
                    eg_comm_world_finalize();
                    return 1;
                }
            }
        for (int rep = 0; rep < g_reps && !bad; rep++)
            for (int kind = 0; kind < nk && !bad; kind++) {
                double t = time_rep(&x, kind, &err, &bad);
                if (t < best[d][kind])
                    best[d][kind] = t;
            }
        if (bad) {
            fprintf(stderr, "bench_gossip: %s\n", err.msg);
            eg_comm_world_finalize();
            return 1;
        }
    }

    if (csv)
        printf("nodes,threads,graph,dim,nnz,time_s,bytes_sum,bytes_min,gbps_sum,memcpy_gbps,"
               "triad_gbps,bw_gbps,ratio,ratio_min,rowwise_time_s,rowwise_ratio,rowwise_ratio_min\n");
    else {
        printf("gossip combine (eg_comm_gossip) over n = %d nodes on 1 rank x %d thread%s; "
               "best of %d x >= %.2g s\n",
               n, threads, threads > 1 ? "s" : "", g_reps, g_time);
        printf("bytes: sum model (nnz(W) + n) x dim x 4, min model 2n x dim x 4; BW = "
               "max(memcpy, triad) over n x dim floats, same threads\n");
        printf("ratio = time / (sum bytes / BW), ratio_min = time / (min bytes / BW); 1.0 = "
               "at the bandwidth limit\n");
        if (rw_on)
            printf("rowwise: the row-at-a-time combine comm.c used before blocking over the "
                   "vector (bitwise the same result)\n");
        printf("\n%-12s %9s %6s %10s %8s %8s %8s %8s %6s %9s", "graph", "dim", "nnz",
               "time_ms", "GB/s", "memcpy", "triad", "BW GB/s", "ratio", "ratio_min");
        if (rw_on)
            printf(" %10s %6s %9s", "rw_ms", "ratio", "ratio_min");
        printf("\n");
    }
    for (int d = 0; d < ndims; d++) {
        double N = (double)n * (double)dims[d] * sizeof(float);
        double mc = 2 * N / best[d][K_MEMCPY] / 1e9, tr = 3 * N / best[d][K_TRIAD] / 1e9;
        double bw = mc > tr ? mc : tr;
        for (int g = 0; g < ngraphs; g++) {
            double t = best[d][K_GRAPH0 + g];
            double tc = rw_on ? best[d][K_GRAPH0 + ngraphs + g] : NAN;
            double bsum = (nnz[g] + n) * (double)dims[d] * sizeof(float), bmin = 2 * N;
            double tb_sum = bsum / (bw * 1e9), tb_min = bmin / (bw * 1e9);
            if (csv) {
                printf("%d,%d,%s,%zu,%.6g,%.6e,%.0f,%.0f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,", n,
                       threads, graphs[g], dims[d], nnz[g], t, bsum, bmin, bsum / t / 1e9, mc, tr,
                       bw, t / tb_sum, t / tb_min);
                if (rw_on)
                    printf("%.6e,%.3f,%.3f\n", tc, tc / tb_sum, tc / tb_min);
                else
                    printf(",,\n");
            } else {
                printf("%-12s %9zu %6.0f %10.3f %8.1f %8.1f %8.1f %8.1f %6.2f %9.2f", graphs[g],
                       dims[d], nnz[g], t * 1e3, bsum / t / 1e9, mc, tr, bw, t / tb_sum,
                       t / tb_min);
                if (rw_on)
                    printf(" %10.3f %6.2f %9.2f", tc * 1e3, tc / tb_sum, tc / tb_min);
                printf("\n");
            }
        }
    }
    for (int g = 0; g < ngraphs; g++)
        for (int k = 0; rw_on && k < period[g]; k++)
            rw_free(&cands[g * MAX_PERIOD + k]);
    for (int g = 0; g < ngraphs; g++) {
        eg_comm_free(comm[g]);
        eg_topo_free(topo[g]);
    }
    free(in);
    free(out);
    free(c3);
    eg_comm_world_finalize();
    return 0;
}
