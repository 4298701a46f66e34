/* comm.c - node <-> rank mapping, gossip exchange, ordered reductions, byte payloads. */
#include "comm.h"

#include <limits.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eg_comm {
    MPI_Comm comm;       /* MPI_COMM_NULL for a simulated rank (eg_comm_init_sim) */
    int self;            /* no MPI (eg_comm_world_start did not start it): rank 0 of 1 */
    int rank, size, nodes, lo, hi, host_ranks;
    size_t max_dim;
    int max_vecs;
    int max_slots;       /* remote vectors a rank may need in one gossip */
    int max_sends;       /* (local node, rank) pairs a rank may send in one gossip */
    float *recvbuf;      /* max_vecs * max_slots * max_dim */
    MPI_Request *reqs;   /* (max_slots + max_sends) * max_vecs */
    int *owner;          /* nodes */
    long *stamp;         /* nodes: call stamp when node j is needed here */
    int *slot;           /* nodes: its slot in recvbuf */
    long *sendmark;      /* nlocal * size */
    int *rows_local, *rows_remote; /* local rows split by whether they need remote data */
    int nrows_local, nrows_remote;
    /* the exchange plan of the current call (eg_comm_plan) */
    int *recv_node;          /* slot -> the remote node received into it (ascending) */
    int nrecv;
    int *send_node, *send_rank; /* what this rank sends, in posting order */
    int nsend;
    /* the combine's plan, rebuilt every call (nlocal rows x max_vecs vectors) */
    int *plan_src;           /* row -> max_row in-neighbours (local index or -1 - slot) */
    float *plan_w;           /* row -> max_row weights */
    int *plan_k;             /* row -> in-neighbours (self excluded) */
    const float **tsrc;      /* per thread: max_row source pointers of one block */
    int max_row, nthreads_alloc;
    long calls;
    /* eg_comm_combine_copies: each remote node's copy (NULL otherwise: receive slots) */
    const float *const *copies;
    MPI_Request *preqs;      /* eg_comm_payloads: npreqs requests */
    int npreqs;
};

/* Every MPI call goes through one of these two. MPI_TRY returns EG_ERUN from the enclosing
 * function with "MPI error at FILE:LINE: <MPI_Error_string>" in err (err may be NULL).
 * MPI_OR_ABORT is for the few calls in functions without an error path (a rank or size
 * query, a maximum of a time, finalisation): it prints the same on stderr and ends the job
 * with MPI_Abort (docs/reliability.md: fatal means MPI_Abort, never exit on one rank). */
static int mpi_error(int rc, const char *file, int line, eg_err *err)
{
    char s[MPI_MAX_ERROR_STRING] = "";
    int l = 0;
    MPI_Error_string(rc, s, &l);
    return eg_err_set(err, EG_ERUN, "MPI error at %s:%d: %s", file, line, s);
}

#define MPI_TRY(call, err)                                                                    \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        if (rc_ != MPI_SUCCESS)                                                               \
            return mpi_error(rc_, __FILE__, __LINE__, (err));                                \
    } while (0)

#define MPI_OR_ABORT(call)                                                                    \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        if (rc_ != MPI_SUCCESS) {                                                             \
            eg_err e_;                                                                        \
            mpi_error(rc_, __FILE__, __LINE__, &e_);                                          \
            fprintf(stderr, "expgraph: %s\n", e_.msg);                                        \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                     \
        }                                                                                     \
    } while (0)

static int world_mpi(void);

void eg_comm_range(int nodes, int P, int r, int *lo, int *hi)
{
    /* node i on rank floor(i * P / n): rank r owns the i with r*n <= i*P < (r+1)*n */
    *lo = (int)(((long)r * nodes + P - 1) / P);
    *hi = (int)(((long)(r + 1) * nodes + P - 1) / P);
}

/* the communicator, rank, size and host: a duplicate of MPI_COMM_WORLD */
static int comm_setup_mpi(eg_comm *c, eg_err *err)
{
    MPI_TRY(MPI_Comm_dup(MPI_COMM_WORLD, &c->comm), err);
    MPI_TRY(MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN), err);
    MPI_TRY(MPI_Comm_rank(c->comm, &c->rank), err);
    MPI_TRY(MPI_Comm_size(c->comm, &c->size), err);
    MPI_Comm host;
    MPI_TRY(MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host), err);
    int rc = MPI_Comm_size(host, &c->host_ranks);
    int rc2 = MPI_Comm_free(&host);
    MPI_TRY(rc, err);
    MPI_TRY(rc2, err);
    return EG_OK;
}

/* the node mapping and every buffer, sized for the topology's largest W(k) */
static int comm_alloc(eg_comm *c, const eg_topo *topo, eg_err *err)
{
    if (c->size > c->nodes)
        return eg_err_set(err, EG_EINPUT,
                          "%d MPI ranks for %d nodes: run with at most as many ranks as nodes "
                          "(mpirun -np %d or fewer)", c->size, c->nodes, c->nodes);
    eg_comm_range(c->nodes, c->size, c->rank, &c->lo, &c->hi);
    int nlocal = c->hi - c->lo, nodes = c->nodes;
    int maxdeg = eg_topo_max_degree(topo);
    long slots = (long)nlocal * maxdeg;
    c->max_slots = (int)(slots > nodes - nlocal ? nodes - nlocal : slots);
    c->max_sends = nlocal * (c->size - 1);
    c->max_row = maxdeg + 1; /* the longest row: the in-neighbours and self */
    size_t nl1 = (size_t)(nlocal ? nlocal : 1), mr = (size_t)c->max_row;
    size_t ms1 = (size_t)(c->max_slots ? c->max_slots : 1);
    size_t nsend1 = (size_t)(c->max_sends ? c->max_sends : 1);
    c->owner = malloc(sizeof(int) * (size_t)nodes);
    c->stamp = calloc((size_t)nodes, sizeof(long));
    c->slot = malloc(sizeof(int) * (size_t)nodes);
    c->sendmark = calloc(nl1 * (size_t)c->size, sizeof(long));
    c->rows_local = malloc(sizeof(int) * nl1);
    c->rows_remote = malloc(sizeof(int) * nl1);
    c->recv_node = malloc(sizeof(int) * ms1);
    c->send_node = malloc(sizeof(int) * nsend1);
    c->send_rank = malloc(sizeof(int) * nsend1);
    c->nthreads_alloc = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    c->tsrc = malloc(sizeof(float *) * mr * (size_t)c->nthreads_alloc);
    c->plan_src = malloc(sizeof(int) * mr * nl1);
    c->plan_w = malloc(sizeof(float) * mr * nl1);
    c->plan_k = malloc(sizeof(int) * nl1);
    size_t nreq = (size_t)(c->max_slots + c->max_sends) * (size_t)c->max_vecs;
    c->reqs = malloc(sizeof(MPI_Request) * (nreq ? nreq : 1));
    if (c->max_slots > 0)
        c->recvbuf = eg_alloc_floats((size_t)c->max_slots * (size_t)c->max_vecs * c->max_dim, err);
    if (!c->owner || !c->stamp || !c->slot || !c->sendmark || !c->rows_local || !c->rows_remote ||
        !c->recv_node || !c->send_node || !c->send_rank || !c->tsrc || !c->plan_src ||
        !c->plan_w || !c->plan_k || !c->reqs || (c->max_slots > 0 && !c->recvbuf))
        return eg_err_set(err, EG_ERUN, "out of memory for the exchange buffers");
    for (int r = 0; r < c->size; r++) {
        int lo, hi;
        eg_comm_range(nodes, c->size, r, &lo, &hi);
        for (int i = lo; i < hi; i++)
            c->owner[i] = r;
    }
    return EG_OK;
}

static eg_comm *comm_new(int nodes, size_t max_dim, int max_vecs)
{
    eg_comm *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->comm = MPI_COMM_NULL;
    c->nodes = nodes;
    c->max_dim = max_dim;
    c->max_vecs = max_vecs < 1 ? 1 : max_vecs;
    c->host_ranks = 1;
    return c;
}

int eg_comm_init(eg_comm **out, int nodes, size_t max_dim, int max_vecs, const eg_topo *topo,
                 eg_err *err)
{
    *out = NULL;
    eg_comm *c = comm_new(nodes, max_dim, max_vecs);
    if (!c)
        return eg_err_set(err, EG_ERUN, "out of memory");
    int rc = world_mpi() ? comm_setup_mpi(c, err) : EG_OK; /* no MPI: rank 0 of 1 */
    if (!rc) {
        if (!world_mpi())
            c->size = c->self = 1;
        rc = comm_alloc(c, topo, err);
    }
    if (rc) {
        eg_comm_free(c);
        return rc;
    }
    *out = c;
    return EG_OK;
}

int eg_comm_init_sim(eg_comm **out, int nodes, int rank, int size, size_t max_dim,
                     int max_vecs, const eg_topo *topo, eg_err *err)
{
    *out = NULL;
    if (size < 1 || rank < 0 || rank >= size)
        return eg_err_set(err, EG_ERUN, "simulated rank %d of %d", rank, size);
    eg_comm *c = comm_new(nodes, max_dim, max_vecs);
    if (!c)
        return eg_err_set(err, EG_ERUN, "out of memory");
    c->rank = rank;
    c->size = size;
    int rc = comm_alloc(c, topo, err);
    if (rc) {
        eg_comm_free(c);
        return rc;
    }
    *out = c;
    return EG_OK;
}

void eg_comm_free(eg_comm *c)
{
    if (!c)
        return;
    free(c->recvbuf);
    free(c->reqs);
    free(c->owner);
    free(c->stamp);
    free(c->slot);
    free(c->sendmark);
    free(c->rows_local);
    free(c->rows_remote);
    free(c->recv_node);
    free(c->send_node);
    free(c->send_rank);
    free(c->tsrc);
    free(c->plan_src);
    free(c->plan_w);
    free(c->plan_k);
    free(c->preqs);
    if (c->comm != MPI_COMM_NULL) {
        int fin = 0;
        MPI_OR_ABORT(MPI_Finalized(&fin));
        if (!fin)
            MPI_OR_ABORT(MPI_Comm_free(&c->comm));
    }
    free(c);
}

int eg_comm_set_threads(eg_comm *c, int nthreads, eg_err *err)
{
    if (nthreads <= c->nthreads_alloc)
        return EG_OK;
    const float **t = realloc(c->tsrc, sizeof(float *) * (size_t)c->max_row * (size_t)nthreads);
    if (!t)
        return eg_err_set(err, EG_ERUN, "out of memory for %d threads' exchange scratch", nthreads);
    c->tsrc = t;
    c->nthreads_alloc = nthreads;
    return EG_OK;
}

int eg_comm_rank(const eg_comm *c) { return c->rank; }
int eg_comm_size(const eg_comm *c) { return c->size; }
int eg_comm_lo(const eg_comm *c) { return c->lo; }
int eg_comm_hi(const eg_comm *c) { return c->hi; }
int eg_comm_host_ranks(const eg_comm *c) { return c->host_ranks; }

/* vectors one gossip over W sends between distinct nodes (topology.h: eg_wmat) */
static double gossip_sends(const eg_wmat *W)
{
    if (W->local > 0)
        return (double)W->sends;
    long off = 0;
    for (int i = 0; i < W->n; i++)
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++)
            if (W->col[e] != i && W->val[e] != 0.0)
                off++;
    return (double)off;
}

double eg_comm_gossip_bytes(const eg_wmat *W, int nv, size_t dim)
{
    return gossip_sends(W) * nv * (double)dim * sizeof(float);
}

double eg_comm_inter_bytes(const eg_wmat *W, double bytes)
{
    if (W->local <= 0)
        return bytes;
    return W->sends > 0 ? bytes * (double)W->inter / (double)W->sends : 0.0;
}

/* One row of the combine on a block of len floats:
 *   o = x + sum_e w[e] (src[e] - x), e = 0..k-1 in order (the neighbours, self excluded).
 * The difference form keeps sum_i x_i (the network average) unbiased in float: with the
 * weights' float rounding, the plain form sum_j w_ij x_j shifts the average by a little
 * every step, which integrating methods (gt, ed) accumulate. The running sum stays in
 * registers for RUN floats at a time (vectorised), and the operations and their order are
 * fixed, so the result does not depend on blocking or threads. */
#define RUN 16
EG_CLONES static void combine_block(float *restrict o, const float *restrict x, const float *const *src,
                          const float *w, int k, size_t len)
{
    if (k == 0) {
        memcpy(o, x, len * sizeof(float));
        return;
    }
    size_t t = 0;
    for (; t + RUN <= len; t += RUN) {
        float acc[RUN];
        const float *restrict s0 = src[0] + t;
        const float w0 = w[0];
        for (int u = 0; u < RUN; u++)
            acc[u] = x[t + u] + w0 * (s0[u] - x[t + u]);
        for (int e = 1; e < k; e++) {
            const float *restrict s = src[e] + t;
            const float we = w[e];
            for (int u = 0; u < RUN; u++)
                acc[u] += we * (s[u] - x[t + u]);
        }
        for (int u = 0; u < RUN; u++)
            o[t + u] = acc[u];
    }
    for (; t < len; t++) {
        float acc = x[t] + w[0] * (src[0][t] - x[t]);
        for (int e = 1; e < k; e++)
            acc += w[e] * (src[e][t] - x[t]);
        o[t] = acc;
    }
}

/* receive slot s of vector v */
static float *recv_slot(const eg_comm *c, int v, int s, size_t dim)
{
    return c->recvbuf + ((size_t)v * (size_t)c->max_slots + (size_t)s) * dim;
}

/* The combine's plan, per row: its in-neighbours (local index >= 0, or -1 - receive slot;
 * -1 - node when reading copies) and weights, in column order, self excluded (rows are
 * stochastic: the self weight is 1 - sum of the others). Returns the total number of
 * in-neighbours. */
static long row_plan(eg_comm *c, const eg_wmat *W, const int *rows, int nrows)
{
    const int mr = c->max_row;
    long ktot = 0;
    for (int r = 0; r < nrows; r++) {
        int i = rows[r], k = 0;
        float *w = c->plan_w + (size_t)r * (size_t)mr;
        int *src = c->plan_src + (size_t)r * (size_t)mr;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            int j = W->col[e];
            if (W->val[e] == 0.0 || j == i)
                continue;
            w[k] = (float)W->val[e];
            src[k++] = (j >= c->lo && j < c->hi) ? j - c->lo : -1 - (c->copies ? j : c->slot[j]);
        }
        c->plan_k[r] = k;
        ktot += k;
    }
    return ktot;
}

/* The combine for the given local rows and nv vectors (receive slots filled). */
static void combine_rows(eg_comm *c, const eg_wmat *W, const int *rows, int nrows, int nv,
                         const float *const *in, float *const *out, size_t dim)
{
    const int nr = nrows * nv, mr = c->max_row;
    if (nr == 0)
        return;
    const long ktot = row_plan(c, W, rows, nrows);
    /* Work items are (row, vector, block of the vector). Sparse rows (<= 2 in-neighbours on
     * average) go row by row: long sequential streams, which the prefetchers follow, beat
     * the reuse blocking would give. Denser rows go block by block: a block of every source
     * is read from memory once and reused from cache by each row that needs it (traffic
     * ~2 vectors per row instead of degree + 2). Threads take contiguous ranges of items,
     * which balances any row count. 16 KB blocks keep a few dozen sources' blocks in L2. */
    const int rowmajor = ktot <= 2L * nrows;
    const size_t chunk = rowmajor || nr <= 32 ? 4096 : 1024;
    const long nblk = (long)((dim + chunk - 1) / chunk), items = nblk * nr;
    /* at most as many threads as there are scratch lists (eg_comm_set_threads) */
    int nth = omp_get_max_threads();
    if (nth > c->nthreads_alloc)
        nth = c->nthreads_alloc;
#pragma omp parallel for schedule(static) num_threads(nth) if (items > 1 && (size_t)nr * dim >= 16384)
    for (long it = 0; it < items; it++) {
        const long b = rowmajor ? it % nblk : it / nr;
        const int q = (int)(rowmajor ? it / nblk : it % nr), r = q / nv, v = q % nv;
        size_t off = (size_t)b * chunk, len = dim - off < chunk ? dim - off : chunk;
        const float **src = c->tsrc + (size_t)omp_get_thread_num() * (size_t)mr;
        const int li = rows[r] - c->lo, k = c->plan_k[r];
        const int *ps = c->plan_src + (size_t)r * (size_t)mr;
        for (int e = 0; e < k; e++)
            src[e] = (ps[e] >= 0  ? in[v] + (size_t)ps[e] * dim
                      : c->copies ? c->copies[-1 - ps[e]]
                                  : recv_slot(c, v, -1 - ps[e], dim)) + off;
        combine_block(out[v] + (size_t)li * dim + off, in[v] + (size_t)li * dim + off, src,
                      c->plan_w + (size_t)r * (size_t)mr, k, len);
    }
}

/* The exchange plan for W (stamp st): local rows split by whether they need remote data;
 * the remote nodes this rank needs, one receive slot each in ascending node order; the
 * (local node, rank) pairs it sends, node-major in ascending order. Pure (no MPI). */
static int make_plan(eg_comm *c, const eg_wmat *W, long st, eg_err *err)
{
    c->nrows_local = c->nrows_remote = c->nrecv = c->nsend = 0;
    for (int i = c->lo; i < c->hi; i++) {
        int remote = 0;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            int j = W->col[e];
            if (W->val[e] == 0.0 || (j >= c->lo && j < c->hi))
                continue;
            remote = 1;
            c->stamp[j] = st;
        }
        if (remote)
            c->rows_remote[c->nrows_remote++] = i;
        else
            c->rows_local[c->nrows_local++] = i;
    }
    if (c->size == 1)
        return EG_OK;
    for (int j = 0; j < c->nodes; j++)
        if (c->stamp[j] == st) {
            if (c->nrecv >= c->max_slots)
                return eg_err_set(err, EG_ERUN, "exchange plan exceeds its buffers (%d slots)",
                                  c->max_slots);
            c->slot[j] = c->nrecv;
            c->recv_node[c->nrecv++] = j;
        }
    /* what others need from this rank */
    for (int i = 0; i < c->nodes; i++) {
        int r = c->owner[i];
        if (r == c->rank)
            continue;
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            int j = W->col[e];
            if (W->val[e] != 0.0 && j >= c->lo && j < c->hi)
                c->sendmark[(size_t)(j - c->lo) * (size_t)c->size + (size_t)r] = st;
        }
    }
    for (int j = c->lo; j < c->hi; j++)
        for (int r = 0; r < c->size; r++)
            if (c->sendmark[(size_t)(j - c->lo) * (size_t)c->size + (size_t)r] == st) {
                c->send_node[c->nsend] = j;
                c->send_rank[c->nsend++] = r;
            }
    return EG_OK;
}

/* Posts the plan's receives and sends (non-blocking); *nreq requests to wait for. MPI keeps
 * the order per (source, tag), so receives go in ascending node order per source. */
static int post_exchange(eg_comm *c, int nv, const float *const *in, size_t dim, int *nreq,
                         eg_err *err)
{
    for (int s = 0; s < c->nrecv; s++) {
        int j = c->recv_node[s];
        for (int v = 0; v < nv; v++)
            MPI_TRY(MPI_Irecv(recv_slot(c, v, s, dim), (int)dim, MPI_FLOAT, c->owner[j],
                              (j % 16384) * 2 + (v & 1), c->comm, &c->reqs[(*nreq)++]),
                    err);
    }
    for (int q = 0; q < c->nsend; q++) {
        int j = c->send_node[q];
        for (int v = 0; v < nv; v++)
            MPI_TRY(MPI_Isend(in[v] + (size_t)(j - c->lo) * dim, (int)dim, MPI_FLOAT,
                              c->send_rank[q], (j % 16384) * 2 + (v & 1), c->comm,
                              &c->reqs[(*nreq)++]),
                    err);
    }
    return EG_OK;
}

static int check_call(const eg_comm *c, int nv, size_t dim, eg_err *err)
{
    if (nv > c->max_vecs || dim > c->max_dim)
        return eg_err_set(err, EG_ERUN, "gossip called with %d vectors of %zu floats; buffers hold %d of %zu",
                          nv, dim, c->max_vecs, c->max_dim);
    return EG_OK;
}

int eg_comm_gossip_multi(eg_comm *c, const eg_wmat *W, int nv, const float *const *in,
                         float *const *out, size_t dim, eg_err *err)
{
    int nreq = 0, rc = check_call(c, nv, dim, err);
    if (!rc)
        rc = make_plan(c, W, ++c->calls, err);
    if (!rc && c->size > 1)
        rc = post_exchange(c, nv, in, dim, &nreq, err);
    if (rc)
        return rc;
    /* overlap: rows with only local in-neighbours while messages travel */
    combine_rows(c, W, c->rows_local, c->nrows_local, nv, in, out, dim);
    if (nreq > 0)
        MPI_TRY(MPI_Waitall(nreq, c->reqs, MPI_STATUSES_IGNORE), err);
    combine_rows(c, W, c->rows_remote, c->nrows_remote, nv, in, out, dim);
    return EG_OK;
}

int eg_comm_plan(eg_comm *c, const eg_wmat *W, eg_comm_xplan *plan, eg_err *err)
{
    int rc = make_plan(c, W, ++c->calls, err);
    if (rc)
        return rc;
    *plan = (eg_comm_xplan){.nrecv = c->nrecv, .recv_node = c->recv_node, .nsend = c->nsend,
                            .send_node = c->send_node, .send_rank = c->send_rank};
    return EG_OK;
}

int eg_comm_gossip_sim(eg_comm *c, const eg_wmat *W, int nv, const float *const *all,
                       float *const *out, size_t dim, eg_err *err)
{
    int rc = nv < 1 ? eg_err_set(err, EG_ERUN, "gossip of %d vectors", nv) : check_call(c, nv, dim, err);
    if (!rc)
        rc = make_plan(c, W, ++c->calls, err);
    if (rc)
        return rc;
    /* the transport: what the plan's receives would bring */
    for (int s = 0; s < c->nrecv; s++)
        for (int v = 0; v < nv; v++)
            memcpy(recv_slot(c, v, s, dim), all[v] + (size_t)c->recv_node[s] * dim,
                   dim * sizeof(float));
    const float *in[nv];
    for (int v = 0; v < nv; v++)
        in[v] = all[v] + (size_t)c->lo * dim;
    combine_rows(c, W, c->rows_local, c->nrows_local, nv, in, out, dim);
    combine_rows(c, W, c->rows_remote, c->nrows_remote, nv, in, out, dim);
    return EG_OK;
}

int eg_comm_combine_copies(eg_comm *c, const eg_wmat *W, const float *in,
                           const float *const *copies, float *out, size_t dim, eg_err *err)
{
    int rc = check_call(c, 1, dim, err);
    if (rc)
        return rc;
    c->nrows_local = 0;
    for (int i = c->lo; i < c->hi; i++) {
        for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
            int j = W->col[e];
            if (W->val[e] != 0.0 && (j < c->lo || j >= c->hi) && !copies[j])
                return eg_err_set(err, EG_ERUN, "node %d reads node %d, of which rank %d keeps "
                                  "no copy", i, j, c->rank);
        }
        c->rows_local[c->nrows_local++] = i;
    }
    c->copies = copies;
    combine_rows(c, W, c->rows_local, c->nrows_local, 1, &in, &out, dim);
    c->copies = NULL;
    return EG_OK;
}

int eg_comm_reserve_payloads(eg_comm *c, int nmsg, eg_err *err)
{
    if (nmsg <= c->npreqs)
        return EG_OK;
    MPI_Request *r = realloc(c->preqs, sizeof *r * (size_t)nmsg);
    if (!r)
        return eg_err_set(err, EG_ERUN, "out of memory for %d message requests", nmsg);
    c->preqs = r;
    c->npreqs = nmsg;
    return EG_OK;
}

/* the tag of node j's payloads (MPI_TAG_UB is at least 32767) */
static int payload_tag(int j) { return j % 32768; }

/* eg_comm_payloads on the one rank without MPI: every message goes to itself; a receive
 * takes the first send not yet taken with its tag, as MPI matches them */
static int self_payloads(int nsend, const int *send_node, const void *const *send_buf,
                         int nrecv, const int *recv_node, void *const *recv_buf, size_t bytes,
                         eg_err *err)
{
    char *taken = calloc((size_t)(nsend > 0 ? nsend : 1), 1);
    if (!taken)
        return eg_err_set(err, EG_ERUN, "out of memory for %d messages", nsend);
    int rc = EG_OK;
    for (int q = 0; q < nrecv && rc == EG_OK; q++) {
        int k = 0;
        while (k < nsend && (taken[k] || payload_tag(send_node[k]) != payload_tag(recv_node[q])))
            k++;
        if (k == nsend) {
            rc = eg_err_set(err, EG_ERUN, "a payload of node %d is received but never sent",
                            recv_node[q]);
        } else {
            taken[k] = 1;
            memcpy(recv_buf[q], send_buf[k], bytes);
        }
    }
    free(taken);
    return rc;
}

int eg_comm_payloads(eg_comm *c, int nsend, const int *send_node, const int *send_rank,
                     const void *const *send_buf, int nrecv, const int *recv_node,
                     void *const *recv_buf, size_t bytes, eg_err *err)
{
    if (nsend + nrecv == 0)
        return EG_OK;
    if ((c->comm == MPI_COMM_NULL && !c->self) || nsend + nrecv > c->npreqs || bytes > (size_t)INT_MAX)
        return eg_err_set(err, EG_ERUN, "payload exchange of %d messages of %zu bytes: %s",
                          nsend + nrecv, bytes, c->comm == MPI_COMM_NULL && !c->self ? "no MPI (a simulated rank)"
                          : bytes > (size_t)INT_MAX ? "too large" : "not reserved");
    if (c->self)
        return self_payloads(nsend, send_node, send_buf, nrecv, recv_node, recv_buf, bytes, err);
    int n = 0;
    for (int q = 0; q < nrecv; q++)
        MPI_TRY(MPI_Irecv(recv_buf[q], (int)bytes, MPI_BYTE, c->owner[recv_node[q]],
                          payload_tag(recv_node[q]), c->comm, &c->preqs[n++]), err);
    for (int q = 0; q < nsend; q++)
        MPI_TRY(MPI_Isend(send_buf[q], (int)bytes, MPI_BYTE, send_rank[q],
                          payload_tag(send_node[q]), c->comm, &c->preqs[n++]), err);
    MPI_TRY(MPI_Waitall(n, c->preqs, MPI_STATUSES_IGNORE), err);
    return EG_OK;
}

int eg_comm_sum_nodes(eg_comm *c, const float *block, size_t dim, double *acc, eg_err *err)
{
    if (c->rank == 0)
        memset(acc, 0, dim * sizeof(double));
    else
        MPI_TRY(MPI_Recv(acc, (int)dim, MPI_DOUBLE, c->rank - 1, 7001, c->comm, MPI_STATUS_IGNORE), err);
    for (int i = c->lo; i < c->hi; i++) {
        const float *x = block + (size_t)(i - c->lo) * dim;
        for (size_t t = 0; t < dim; t++)
            acc[t] += (double)x[t];
    }
    if (c->rank + 1 < c->size)
        MPI_TRY(MPI_Send(acc, (int)dim, MPI_DOUBLE, c->rank + 1, 7001, c->comm), err);
    if (c->size > 1)
        MPI_TRY(MPI_Bcast(acc, (int)dim, MPI_DOUBLE, c->size - 1, c->comm), err);
    return EG_OK;
}

int eg_comm_gather_nodes(eg_comm *c, const double *local, int k, double *all, eg_err *err)
{
    if (c->size == 1) {
        memcpy(all, local, sizeof(double) * (size_t)c->nodes * (size_t)k);
        return EG_OK;
    }
    int counts[c->size], displs[c->size];
    for (int r = 0; r < c->size; r++) {
        int lo, hi;
        eg_comm_range(c->nodes, c->size, r, &lo, &hi);
        counts[r] = (hi - lo) * k;
        displs[r] = lo * k;
    }
    MPI_TRY(MPI_Allgatherv(local, (c->hi - c->lo) * k, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE,
                           c->comm),
            err);
    return EG_OK;
}

int eg_comm_allreduce_floats(eg_comm *c, float *buf, size_t count, eg_err *err)
{
    if (c->size > 1)
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, c->comm), err);
    return EG_OK;
}

int eg_comm_allreduce_doubles(eg_comm *c, double *buf, size_t count, eg_err *err)
{
    if (c->size > 1)
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, MPI_SUM, c->comm), err);
    return EG_OK;
}

int eg_comm_max_longs(eg_comm *c, long *v, int n, eg_err *err)
{
    if (c->size > 1)
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_LONG, MPI_MAX, c->comm), err);
    return EG_OK;
}

int eg_comm_same_u64(eg_comm *c, uint64_t v, int *same, eg_err *err)
{
    unsigned long long mn = v, mx = v;
    if (c->size > 1) {
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, c->comm), err);
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->comm), err);
    }
    *same = mn == mx;
    return EG_OK;
}

/* 1 while MPI is initialised and not finalised: the world functions below use it; 0 in
 * a single process started without a launcher (eg_comm_world_init did not start MPI), where
 * they are the trivial one-rank ones. */
static int world_mpi(void)
{
    int inited = 0, fin = 0;
    if (MPI_Initialized(&inited) != MPI_SUCCESS || !inited)
        return 0;
    return MPI_Finalized(&fin) == MPI_SUCCESS && !fin;
}

void eg_comm_abort(int code)
{
    if (!world_mpi())
        exit(code); /* one process, no MPI: nothing else to end */
    MPI_Abort(MPI_COMM_WORLD, code);
}

int eg_comm_world_rank(void)
{
    if (!world_mpi())
        return 0;
    int r = 0;
    MPI_OR_ABORT(MPI_Comm_rank(MPI_COMM_WORLD, &r));
    return r;
}

int eg_comm_world_size(void)
{
    if (!world_mpi())
        return 1;
    int s = 1;
    MPI_OR_ABORT(MPI_Comm_size(MPI_COMM_WORLD, &s));
    return s;
}

double eg_comm_world_max(double v)
{
    if (!world_mpi())
        return v;
    MPI_OR_ABORT(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return v;
}

int eg_comm_world_sum_doubles(double *buf, size_t n, eg_err *err)
{
    if (eg_comm_world_size() == 1)
        return EG_OK;
    for (size_t at = 0; at < n;) {
        int k = n - at > (1u << 26) ? 1 << 26 : (int)(n - at);
        MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf + at, k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), err);
        at += (size_t)k;
    }
    return EG_OK;
}

int eg_comm_world_agree(int rc, eg_err *err)
{
    int size = eg_comm_world_size(), rank = eg_comm_world_rank();
    if (size == 1)
        return rc;
    int first = rc ? rank : size;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), err);
    if (first == size)
        return EG_OK;
    int code = rc;
    MPI_TRY(MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD), err);
    char msg[sizeof err->msg];
    if (rank == first)
        memcpy(msg, err->msg, sizeof msg);
    MPI_TRY(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD), err);
    if (rank != first || first != 0) {
        if (first != 0)
            snprintf(err->msg, sizeof err->msg, "rank %d: %s", first, msg);
        else
            memcpy(err->msg, msg, sizeof msg);
    }
    err->code = code;
    return code;
}

/* the environment variables a launcher sets in the processes it starts: Open MPI's
 * mpirun/mpiexec (OMPI_COMM_WORLD_*), PMIx-based launchers (prterun, srun --mpi=pmix),
 * PMI-1/2 ones (MPICH's hydra, srun --mpi=pmi2) */
static const char *const launcher_vars[] = {
    "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "PMI_SIZE",
    "PMI_FD", "PMI_PORT", "MPI_LOCALNRANKS", NULL};

int eg_comm_launched(void)
{
    const char *force = getenv("EXPGRAPH_MPI");
    if (force && !strcmp(force, "1"))
        return 1;
    for (int i = 0; launcher_vars[i]; i++)
        if (getenv(launcher_vars[i]))
            return 1;
    return 0;
}

int eg_comm_world_start(int *argc, char ***argv, eg_err *err)
{
    int inited = 0, prov = 0;
    MPI_TRY(MPI_Initialized(&inited), err);
    if (inited || !eg_comm_launched())
        return EG_OK; /* no launcher: one process, no MPI (the world functions are trivial) */
    MPI_TRY(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &prov), err);
    MPI_TRY(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), err);
    return EG_OK;
}

int eg_comm_world_init(int *argc, char ***argv) { return eg_comm_world_start(argc, argv, NULL); }

void eg_comm_world_finalize(void)
{
    if (!world_mpi())
        return;
    int inited = 0, fin = 0;
    MPI_OR_ABORT(MPI_Initialized(&inited));
    MPI_OR_ABORT(MPI_Finalized(&fin));
    if (inited && !fin)
        MPI_OR_ABORT(MPI_Finalize());
}

int eg_comm_gather_text(eg_comm *c, const char *mine, size_t width, char *all, eg_err *err)
{
    if (c->size == 1 || c->comm == MPI_COMM_NULL) {
        memcpy(all, mine, width);
        return EG_OK;
    }
    if (width > INT_MAX)
        return eg_err_set(err, EG_ERUN, "eg_comm_gather_text: %zu bytes per rank", width);
    MPI_TRY(MPI_Allgather(mine, (int)width, MPI_CHAR, all, (int)width, MPI_CHAR, c->comm), err);
    return EG_OK;
}

void eg_comm_library_version(char *out, size_t len)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int l = 0;
    if (len == 0)
        return;
    if (MPI_Get_library_version(v, &l) != MPI_SUCCESS || !v[0]) {
        snprintf(out, len, "unknown");
        return;
    }
    v[strcspn(v, "\r\n")] = 0;
    snprintf(out, len, "%s", v);
}
