/* run.c - the experiment driver: spec -> (topology, data, model, algorithm, schedule) ->
 * training loop -> metrics.csv, spec.yaml, summary.csv, checkpoints. */
#include "run.h"

#include "algo.h"
#include "ckpt.h"
#include "comm.h"
#include "data.h"
#include "model.h"
#include "schedule.h"
#include "schema.h"
#include "spec.h"
#include "topology.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t eg_run_stop_requested = 0;
volatile int eg_run_training = 0;

#define EVAL_BATCH 250
/* node_acc_mean evaluates every node's own model on this many test samples (every
 * (n_test / NODE_EVAL_SAMPLES)-th one): n full passes over the test set would cost more
 * than the training between two rows */
#define NODE_EVAL_SAMPLES 2000

/* everything one rank holds for one run */
typedef struct runctx {
    eg_spec spec;
    eg_dataset data;
    eg_partition part;
    eg_topo *topo;
    eg_model *model;
    eg_comm *comm;
    eg_algo *algo;
    eg_sched sched;
    int nodes, lo, hi, nlocal, nthreads;
    size_t dim;
    long total_iters;
    double iters_per_epoch;
    /* per local node */
    eg_rng *sample_rng, *aug_rng;
    int32_t *perm;       /* concatenated shards (local nodes) */
    int32_t *perm_off;   /* nlocal + 1 */
    int32_t *cursor;     /* nlocal */
    double *loss_acc;    /* nlocal: minibatch losses since the last row */
    long *bad_iter;      /* nlocal: first iteration with a non-finite loss, -1 if none */
    /* per thread */
    eg_work **work;
    float **xb;
    int32_t **yb;
    /* evaluation buffers */
    double *acc_d;       /* dim */
    float *xbar;         /* dim */
    double *acc_s;       /* nstats: the nodes' running statistics summed */
    float *sbar;         /* nstats: their mean, used with x_bar */
    double *node_vals;   /* nodes * 2 */
    double *local_vals;  /* nlocal * 2 */
    double *batch_vals;  /* nbatches * 2 */
    float *sub_x;        /* the node-evaluation subset of the test split */
    int32_t *sub_y;
    int n_sub;
    int n_eval_batches;
    /* progress */
    long iter;
    double bytes_sent, train_time;
    double bytes_inter; /* EXTENSION (issue 16, h-cli): bytes between machines */
    long rows_since_iters; /* iterations since the last metrics row */
    double last_acc;
    double last_loss;
    /* output */
    char out[EG_PATH_MAX];
    FILE *metrics;
    int rank;
} runctx;

static void ctx_free(runctx *r)
{
    if (r->metrics)
        fclose(r->metrics);
    eg_algo_free(r->algo);
    eg_comm_free(r->comm);
    if (r->work)
        for (int t = 0; t < r->nthreads; t++)
            eg_work_free(r->work[t]);
    if (r->xb)
        for (int t = 0; t < r->nthreads; t++)
            free(r->xb[t]);
    if (r->yb)
        for (int t = 0; t < r->nthreads; t++)
            free(r->yb[t]);
    free(r->work);
    free(r->xb);
    free(r->yb);
    free(r->sample_rng);
    free(r->aug_rng);
    free(r->perm);
    free(r->perm_off);
    free(r->cursor);
    free(r->loss_acc);
    free(r->bad_iter);
    free(r->acc_d);
    free(r->xbar);
    free(r->acc_s);
    free(r->sbar);
    free(r->node_vals);
    free(r->local_vals);
    free(r->batch_vals);
    free(r->sub_x);
    free(r->sub_y);
    eg_model_free(r->model);
    eg_topo_free(r->topo);
    eg_partition_free(&r->part);
    eg_data_free(&r->data);
    eg_spec_free(&r->spec);
}

/* ---- preparation: everything `validate` checks ---- */

static int prepare(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = eg_spec_load(&r->spec, o->spec_file, o->sets, o->nsets, err);
    if (rc)
        return rc;
    eg_spec *s = &r->spec;
    r->nodes = s->nodes;
    r->topo = eg_spec_take_topo(s); /* built once, while validating */
    if ((rc = eg_data_load(&r->data, &s->data, s->nodes, s->seed, err))) {
        char where[EG_PATH_MAX + 64], msg[sizeof err->msg];
        eg_spec_where(s, "data", where, sizeof where);
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_err_set(err, rc, "%s: data: %s", where, msg);
        return rc;
    }
    long need = (long)s->nodes * s->data.batch_size;
    if (r->data.n_train < need) {
        char where[EG_PATH_MAX + 64];
        eg_spec_where(s, "data.batch_size", where, sizeof where);
        return eg_err_set(err, EG_EINPUT,
                          "%s: data.batch_size %d x nodes %d needs %ld training samples; %s has %d "
                          "(lower data.batch_size or nodes)",
                          where, s->data.batch_size, s->nodes, need, s->data.name, r->data.n_train);
    }
    if ((rc = eg_partition_make(&r->part, &r->data, &s->data, s->nodes, s->seed, err))) {
        char where[EG_PATH_MAX + 64], msg[sizeof err->msg];
        eg_spec_where(s, "data.partition", where, sizeof where);
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_err_set(err, rc, "%s: %s", where, msg);
        return rc;
    }
    if ((rc = eg_model_init(&r->model, &s->model, r->data.shape, r->data.classes, err))) {
        char where[EG_PATH_MAX + 64], msg[sizeof err->msg];
        eg_spec_where(s, "model", where, sizeof where);
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_err_set(err, rc, "%s: %s%s", where, strncmp(msg, "model", 5) ? "model: " : "", msg);
        return rc;
    }
    r->dim = eg_model_nparams(r->model);
    long total = r->part.offset[s->nodes];
    r->iters_per_epoch = (double)(total / ((long)s->nodes * s->data.batch_size));
    if (r->iters_per_epoch < 1)
        r->iters_per_epoch = 1;
    r->total_iters = s->train.iterations > 0 ? s->train.iterations
                                             : (long)ceil(s->train.epochs * r->iters_per_epoch - 1e-9);
    if (r->total_iters < 1)
        r->total_iters = 1;
    eg_sched_init(&r->sched, &s->lr, s->nodes, r->iters_per_epoch, r->total_iters);
    eg_topo_set_iters_per_epoch(r->topo, r->iters_per_epoch); /* EXTENSION (issue 16): schedule phases by epoch */
    return EG_OK;
}

/* ---- output files ---- */

static int mkdir_p(const char *path, eg_err *err)
{
    char tmp[EG_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST)
            return eg_err_set(err, EG_ERUN, "cannot create directory %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) && errno != EEXIST)
        return eg_err_set(err, EG_ERUN, "cannot create directory %s: %s", tmp, strerror(errno));
    return EG_OK;
}

static int file_exists(const char *dir, const char *name)
{
    char p[EG_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* writes text to dir/name through a temporary file and a rename */
static int write_atomic(const char *dir, const char *name, const char *text, eg_err *err)
{
    char path[EG_PATH_MAX + 64], tmp[EG_PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return eg_err_set(err, EG_ERUN, "cannot write %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    int bad = fwrite(text, 1, len, f) != len;
    bad |= fflush(f) != 0;
    bad |= ferror(f) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad) {
        unlink(tmp);
        return eg_err_set(err, EG_ERUN, "cannot write %s: %s", path, strerror(e ? e : EIO));
    }
    if (rename(tmp, path))
        return eg_err_set(err, EG_ERUN, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    return EG_OK;
}

/* ---- per-node sampling ---- */

static void next_batch(runctx *r, int li, int32_t *idx)
{
    int B = r->spec.data.batch_size;
    int32_t *perm = r->perm + r->perm_off[li];
    int len = r->perm_off[li + 1] - r->perm_off[li];
    if (r->cursor[li] + B > len) {
        eg_rng_shuffle(&r->sample_rng[li], perm, (size_t)len);
        r->cursor[li] = 0;
    }
    memcpy(idx, perm + r->cursor[li], sizeof(int32_t) * (size_t)B);
    r->cursor[li] += B;
}

/* ---- set-up of the training state ---- */

/* running statistics (fresh on every node; checkpointed with the state) and the parameter
 * ranges weight decay skips */
static int setup_model_state(runctx *r, eg_err *err)
{
    const eg_spec *s = &r->spec;
    size_t ns = eg_model_nstats(r->model);
    int rc = eg_algo_set_stats(r->algo, ns, s->norm_stats_gossip, err);
    if (rc)
        return rc;
    for (int li = 0; li < r->nlocal; li++)
        eg_model_init_stats(r->model, eg_algo_node_stats(r->algo, li));
    r->acc_s = calloc(ns + 1, sizeof(double));
    r->sbar = eg_alloc_floats(ns + 1, err);
    if (!r->acc_s || !r->sbar)
        return eg_err_set(err, EG_ERUN, "out of memory");
    if (s->algo.weight_decay_norm)
        return EG_OK;
    int n = eg_model_nodecay(r->model, NULL, NULL, 0);
    size_t *off = malloc(sizeof(size_t) * (size_t)(n + 1)), *len = malloc(sizeof(size_t) * (size_t)(n + 1));
    if (!off || !len)
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    else
        rc = eg_algo_set_nodecay(r->algo, off, len, eg_model_nodecay(r->model, off, len, n), err);
    free(off);
    free(len);
    return rc;
}

static int setup_state(runctx *r, eg_err *err)
{
    eg_spec *s = &r->spec;
    int rc;
    int maxv = eg_algo_gossip_vectors(s->algo.kind);
    if (maxv < 1)
        maxv = 1;
    if ((rc = eg_comm_init(&r->comm, s->nodes, r->dim, maxv, r->topo, err)))
        return rc;
    r->rank = eg_comm_rank(r->comm);
    r->lo = eg_comm_lo(r->comm);
    r->hi = eg_comm_hi(r->comm);
    r->nlocal = r->hi - r->lo;
    /* threads: the host's cores shared by the ranks on it; BLAS single-threaded inside */
    int nt = eg_default_threads(eg_comm_host_ranks(r->comm));
    r->nthreads = nt;
    omp_set_num_threads(nt);
    if ((rc = eg_comm_set_threads(r->comm, nt, err)))
        return rc;
    openblas_set_num_threads(1);
    if ((rc = eg_algo_init(&r->algo, &s->algo, s->nodes, r->nlocal, r->dim,
                           eg_topo_max_nnz(r->topo), nt, err)))
        return rc;
    if ((rc = setup_model_state(r, err)))
        return rc;
    int B = s->data.batch_size, maxb = B > EVAL_BATCH ? B : EVAL_BATCH;
    r->work = calloc((size_t)nt, sizeof *r->work);
    r->xb = calloc((size_t)nt, sizeof *r->xb);
    r->yb = calloc((size_t)nt, sizeof *r->yb);
    if (!r->work || !r->xb || !r->yb)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int t = 0; t < nt; t++) {
        if ((rc = eg_work_init(&r->work[t], r->model, maxb, err)))
            return rc;
        r->xb[t] = eg_alloc_floats((size_t)B * (size_t)r->data.dim, err);
        r->yb[t] = malloc(sizeof(int32_t) * (size_t)maxb);
        if (!r->xb[t] || !r->yb[t])
            return eg_err_set(err, EG_ERUN, "out of memory");
    }
    int nl = r->nlocal;
    r->sample_rng = calloc((size_t)nl + 1, sizeof(eg_rng));
    r->aug_rng = calloc((size_t)nl + 1, sizeof(eg_rng));
    r->perm_off = calloc((size_t)nl + 1, sizeof(int32_t));
    r->cursor = calloc((size_t)nl + 1, sizeof(int32_t));
    r->loss_acc = calloc((size_t)nl + 1, sizeof(double));
    r->bad_iter = calloc((size_t)nl + 1, sizeof(long));
    r->local_vals = calloc((size_t)nl * 2 + 2, sizeof(double));
    r->node_vals = calloc((size_t)s->nodes * 2, sizeof(double));
    r->acc_d = calloc(r->dim, sizeof(double));
    r->xbar = eg_alloc_floats(r->dim, err);
    r->n_eval_batches = (r->data.n_test + EVAL_BATCH - 1) / EVAL_BATCH;
    r->n_sub = r->data.n_test < NODE_EVAL_SAMPLES ? r->data.n_test : NODE_EVAL_SAMPLES;
    r->sub_x = eg_alloc_floats((size_t)r->n_sub * (size_t)r->data.dim, err);
    r->sub_y = malloc(sizeof(int32_t) * (size_t)(r->n_sub ? r->n_sub : 1));
    if (!r->sub_x || !r->sub_y)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int q = 0; q < r->n_sub; q++) {
        long src = (long)q * r->data.n_test / r->n_sub;
        memcpy(r->sub_x + (size_t)q * r->data.dim, r->data.x_test + (size_t)src * r->data.dim,
               sizeof(float) * (size_t)r->data.dim);
        r->sub_y[q] = r->data.y_test[src];
    }
    r->batch_vals = calloc((size_t)r->n_eval_batches * 2 + 2, sizeof(double));
    if (!r->sample_rng || !r->aug_rng || !r->perm_off || !r->cursor || !r->loss_acc ||
        !r->bad_iter || !r->local_vals || !r->node_vals || !r->acc_d ||
        !r->xbar || !r->batch_vals)
        return eg_err_set(err, EG_ERUN, "out of memory");
    long tot = 0;
    for (int li = 0; li < nl; li++) {
        r->perm_off[li] = (int32_t)tot;
        int node = r->lo + li;
        tot += r->part.offset[node + 1] - r->part.offset[node];
    }
    r->perm_off[nl] = (int32_t)tot;
    r->perm = malloc(sizeof(int32_t) * (size_t)(tot ? tot : 1));
    if (!r->perm)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int li = 0; li < nl; li++) {
        int node = r->lo + li;
        int len = r->part.offset[node + 1] - r->part.offset[node];
        memcpy(r->perm + r->perm_off[li], r->part.idx + r->part.offset[node],
               sizeof(int32_t) * (size_t)len);
        eg_rng_seed(&r->sample_rng[li], s->seed, EG_STREAM_SAMPLE, (uint64_t)node);
        eg_rng_seed(&r->aug_rng[li], s->seed, EG_STREAM_AUGMENT, (uint64_t)node);
        r->cursor[li] = len; /* shuffle before the first batch */
        r->bad_iter[li] = -1;
    }
    /* initial parameters: node 0's draw everywhere, or one per node */
    for (int li = 0; li < nl; li++) {
        eg_rng ir;
        /* psgd trains one shared model: node 0's draw whatever model.init says */
        int indep = s->init_independent && !eg_algo_shared(r->algo);
        eg_rng_seed(&ir, s->seed, EG_STREAM_INIT, indep ? (uint64_t)(r->lo + li) : 0);
        eg_model_init_params(r->model, eg_algo_x(r->algo) + (size_t)li * r->dim, &ir);
    }
    return EG_OK;
}

/* ---- one training iteration ---- */

static void compute_grads(runctx *r, long k, double lr)
{
    const eg_spec *s = &r->spec;
    const int B = s->data.batch_size;
#pragma omp parallel for schedule(dynamic, 1)
    for (int li = 0; li < r->nlocal; li++) {
        int tid = omp_get_thread_num();
        int32_t idx[B];
        next_batch(r, li, idx);
        eg_data_fill_batch(&r->data, idx, B, s->data.augment, &r->aug_rng[li], r->xb[tid], r->yb[tid]);
        const float *x = eg_algo_node_x(r->algo, li);
        float *g = eg_algo_grad(r->algo, li, tid);
        float loss = eg_model_loss_grad(r->model, r->work[tid], x, eg_algo_node_stats(r->algo, li),
                                        r->xb[tid], r->yb[tid], B, g);
        /* the algorithm's per-node work (weight decay, momentum, the vector to send) while
         * this node's gradient is still in cache */
        eg_algo_node_update(r->algo, li, tid, lr);
        r->loss_acc[li] += (double)loss;
        if (!isfinite(loss) && r->bad_iter[li] < 0)
            r->bad_iter[li] = k;
    }
}

/* ---- evaluation ---- */

/* test loss/accuracy of params p over all test batches this rank handles, summed in batch
 * order over ranks. */
static int eval_model_split(runctx *r, const float *p, const float *stats, double *loss,
                            double *acc, eg_err *err)
{
    int P = eg_comm_size(r->comm), rank = r->rank, nb = r->n_eval_batches;
    memset(r->batch_vals, 0, sizeof(double) * (size_t)nb * 2);
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < nb; b++) {
        if (b % P != rank)
            continue;
        int tid = omp_get_thread_num();
        int start = b * EVAL_BATCH, cnt = r->data.n_test - start;
        if (cnt > EVAL_BATCH)
            cnt = EVAL_BATCH;
        double ls = 0;
        long cor = 0;
        eg_model_eval(r->model, r->work[tid], p, stats, r->data.x_test + (size_t)start * r->data.dim,
                      r->data.y_test + start, cnt, &ls, &cor);
        r->batch_vals[2 * b] = ls;
        r->batch_vals[2 * b + 1] = (double)cor;
    }
    int rc = eg_comm_allreduce_doubles(r->comm, r->batch_vals, (size_t)nb * 2, err);
    if (rc)
        return rc;
    double ls = 0, cor = 0;
    for (int b = 0; b < nb; b++) {
        ls += r->batch_vals[2 * b];
        cor += r->batch_vals[2 * b + 1];
    }
    *loss = ls / r->data.n_test;
    *acc = cor / r->data.n_test;
    return EG_OK;
}

typedef struct rowvals {
    double train_loss, test_loss, test_acc, consensus, node_acc;
    int evaluated;
} rowvals;

static int metrics_row(runctx *r, int evaluate, rowvals *v, eg_err *err)
{
    int rc;
    const int n = r->nodes;
    const size_t dim = r->dim;
    memset(v, 0, sizeof *v);
    /* train loss: per-node sums gathered, added in node order */
    for (int li = 0; li < r->nlocal; li++)
        r->local_vals[li] = r->loss_acc[li];
    if ((rc = eg_comm_gather_nodes(r->comm, r->local_vals, 1, r->node_vals, err)))
        return rc;
    double tl = 0;
    for (int i = 0; i < n; i++)
        tl += r->node_vals[i];
    v->train_loss = r->rows_since_iters > 0 ? tl / ((double)n * (double)r->rows_since_iters) : NAN;
    for (int li = 0; li < r->nlocal; li++)
        r->loss_acc[li] = 0;
    r->rows_since_iters = 0;
    if (!evaluate)
        return EG_OK;
    v->evaluated = 1;
    eg_algo_sync(r->algo);
    /* x_bar in double, summed in node order */
    if ((rc = eg_comm_sum_nodes(r->comm, eg_algo_x(r->algo), dim, r->acc_d, err)))
        return rc;
    for (size_t t = 0; t < dim; t++) {
        r->acc_d[t] /= n;
        r->xbar[t] = (float)r->acc_d[t];
    }
    /* consensus: per node ||x_i - x_bar||^2, then summed in node order */
    for (int li = 0; li < r->nlocal; li++) {
        const float *x = eg_algo_x(r->algo) + (size_t)li * dim;
        double c = 0;
        for (size_t t = 0; t < dim; t++) {
            double d = (double)x[t] - r->acc_d[t];
            c += d * d;
        }
        r->local_vals[li] = c;
    }
    if ((rc = eg_comm_gather_nodes(r->comm, r->local_vals, 1, r->node_vals, err)))
        return rc;
    double cs = 0;
    for (int i = 0; i < n; i++)
        cs += r->node_vals[i];
    v->consensus = cs / n;
    /* x_bar is evaluated with the mean of the nodes' running statistics */
    const size_t ns = eg_algo_nstats(r->algo);
    if (ns > 0) {
        if ((rc = eg_comm_sum_nodes(r->comm, eg_algo_stats(r->algo), ns, r->acc_s, err)))
            return rc;
        for (size_t t = 0; t < ns; t++)
            r->sbar[t] = (float)(r->acc_s[t] / n);
    }
    if ((rc = eval_model_split(r, r->xbar, ns ? r->sbar : NULL, &v->test_loss, &v->test_acc, err)))
        return rc;
    /* each node's own model on the test split */
    if (v->consensus == 0.0 && ns == 0) {
        v->node_acc = v->test_acc;
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int li = 0; li < r->nlocal; li++) {
            int tid = omp_get_thread_num();
            long cor = 0;
            double ls = 0;
            const int ntest = r->n_sub;
            for (int start = 0; start < ntest; start += EVAL_BATCH) {
                int cnt = ntest - start < EVAL_BATCH ? ntest - start : EVAL_BATCH;
                eg_model_eval(r->model, r->work[tid], eg_algo_x(r->algo) + (size_t)li * dim,
                              eg_algo_node_stats(r->algo, li),
                              r->sub_x + (size_t)start * r->data.dim, r->sub_y + start, cnt, &ls,
                              &cor);
            }
            r->local_vals[li] = (double)cor / ntest;
        }
        if ((rc = eg_comm_gather_nodes(r->comm, r->local_vals, 1, r->node_vals, err)))
            return rc;
        double s = 0;
        for (int i = 0; i < n; i++)
            s += r->node_vals[i];
        v->node_acc = s / n;
    }
    return EG_OK;
}

/* the metrics.csv row of the current iteration (columns: schema.h) */
static eg_schema_row schema_row(const runctx *r, const rowvals *v, double lr)
{
    eg_schema_row row = {
        .iter = (double)r->iter, .epoch = (double)r->iter / r->iters_per_epoch,
        .time_s = r->train_time, .lr = lr, .train_loss = v->train_loss,
        .test_loss = v->test_loss, .test_acc = v->test_acc, .consensus = v->consensus,
        .bytes_sent = r->bytes_sent, .bytes_inter = r->bytes_inter, .node_acc_mean = v->node_acc, .evaluated = v->evaluated};
    return row;
}

static int write_row(runctx *r, const rowvals *v, double lr, eg_err *err)
{
    if (r->rank != 0)
        return EG_OK;
    eg_schema_row row = schema_row(r, v, lr);
    if (eg_schema_metrics_row(r->metrics, &row) || fflush(r->metrics) || ferror(r->metrics))
        return eg_err_set(err, EG_ERUN, "cannot write %s/metrics.csv: %s", r->out, strerror(errno));
    return EG_OK;
}

static int write_summary(runctx *r, const rowvals *v, double wall, eg_err *err)
{
    const eg_spec *s = &r->spec;
    double samples = (double)r->iter * s->nodes * s->data.batch_size;
    eg_summary_src src = {
        .spec = s, .final = schema_row(r, v, 0), .label_skew = eg_partition_skew(&r->part),
        .train_time_s = r->train_time, .wall_s = wall,
        .samples_per_s = r->train_time > 0 ? samples / r->train_time : 0.0,
        .ranks = eg_comm_size(r->comm), .threads = r->nthreads};
    char *text = eg_schema_summary_text(&src, err);
    if (!text)
        return EG_ERUN;
    int rc = write_atomic(r->out, "summary.csv", text, err);
    free(text);
    return rc;
}

static eg_ckpt_state ckpt_state(runctx *r, uint64_t hash)
{
    eg_ckpt_state cs = {
        .spec_hash = hash, .nodes = r->nodes, .lo = r->lo, .nlocal = r->nlocal, .dim = r->dim,
        .algo = r->algo, .sample_rng = r->sample_rng, .aug_rng = r->aug_rng, .perm = r->perm,
        .perm_off = r->perm_off, .cursor = r->cursor, .loss_acc = r->loss_acc, .iter = &r->iter,
        .bytes_sent = &r->bytes_sent, .train_time = &r->train_time,
        .rows_since = &r->rows_since_iters, .bytes_inter = &r->bytes_inter};
    return cs;
}

/* ---- the run ---- */

static void info(const eg_run_opts *o, int rank, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void info(const eg_run_opts *o, int rank, const char *fmt, ...)
{
    if (rank != 0 || !o->info)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->info(o->ud, line);
}

static int check_divergence(runctx *r, eg_err *err)
{
    for (int li = 0; li < r->nlocal; li++)
        r->local_vals[li] = (double)r->bad_iter[li];
    int rc = eg_comm_gather_nodes(r->comm, r->local_vals, 1, r->node_vals, err);
    if (rc)
        return rc;
    long it = -1, node = -1;
    for (int i = 0; i < r->nodes; i++) {
        long b = (long)r->node_vals[i];
        if (b >= 0 && (it < 0 || b < it)) {
            it = b;
            node = i;
        }
    }
    if (it < 0)
        return EG_OK;
    return eg_err_set(err, EG_ERUN,
                      "training diverged at iteration %ld: node %ld's loss is not finite (lower "
                      "lr.base, add lr.warmup_epochs, or check the data)", it + 1, node);
}

int eg_run(const eg_run_opts *o, eg_err *err)
{
    runctx R;
    memset(&R, 0, sizeof R);
    runctx *r = &R;
    double wall0 = eg_now();
    int rank = eg_comm_world_rank();
    int rc = prepare(r, o, err);
    /* every rank must agree that the inputs are good */
    rc = eg_comm_world_agree(rc, err);
    if (rc) {
        ctx_free(r);
        return rc;
    }
    /* all ranks run the same spec and graph */
    uint64_t h = eg_spec_hash(&r->spec);
    h = eg_fnv1a(h, &r->dim, sizeof r->dim);
    h = eg_fnv1a(h, &r->data.n_train, sizeof r->data.n_train);
    {
        eg_comm *tmp = NULL;
        rc = eg_comm_init(&tmp, r->spec.nodes, 1, 1, r->topo, err);
        rc = eg_comm_world_agree(rc, err);
        if (rc) {
            eg_comm_free(tmp);
            ctx_free(r);
            return rc;
        }
        int same = 1;
        rc = eg_comm_same_u64(tmp, h, &same, err);
        eg_comm_free(tmp);
        if (!rc && !same)
            rc = eg_err_set(err, EG_EINPUT,
                            "the ranks disagree on the spec, graph or data (different files or "
                            "--set on different hosts?); every rank must see the same inputs");
        if (rc) {
            ctx_free(r);
            return rc;
        }
    }
    const char *out = o->out_dir ? o->out_dir : r->spec.out_dir;
    snprintf(r->out, sizeof r->out, "%s", out);
    /* the output directory: never clobber a run without being asked */
    int finished = file_exists(out, "summary.csv");
    int has_ckpt = eg_ckpt_exists(out);
    int has_metrics = file_exists(out, "metrics.csv");
    if (o->resume && !has_ckpt && !finished)
        rc = eg_err_set(err, EG_EINPUT, "%s: nothing to resume (no checkpoint there); drop --resume to start the run", out);
    else if (o->resume && finished && !has_ckpt)
        rc = eg_err_set(err, EG_EINPUT, "%s: the run there is finished and has no checkpoint", out);
    else if (!o->resume && !o->force && finished)
        rc = eg_err_set(err, EG_EINPUT, "%s already holds a finished run (summary.csv); use --force to start over or --out for another directory", out);
    else if (!o->resume && !o->force && (has_ckpt || has_metrics))
        rc = eg_err_set(err, EG_EINPUT, "%s holds an interrupted run; continue it with --resume or start over with --force", out);
    rc = eg_comm_world_agree(rc, err);
    if (rc || o->validate_only) {
        ctx_free(r);
        return rc;
    }
    if ((rc = setup_state(r, err))) {
        rc = eg_comm_world_agree(rc, err);
        ctx_free(r);
        return rc;
    }
    eg_spec *s = &r->spec;
    /* resume */
    long start_iter = 0;
    if (o->resume && has_ckpt) {
        eg_ckpt_state cs = ckpt_state(r, h);
        rc = eg_ckpt_load(out, r->comm, &cs, err);
        rc = eg_comm_world_agree(rc, err);
        if (rc) {
            ctx_free(r);
            return rc;
        }
        start_iter = r->iter;
    }
    if (rank == 0) {
        if ((rc = mkdir_p(out, err)) == EG_OK) {
            char *yaml = eg_spec_to_yaml(s, err);
            rc = yaml ? write_atomic(out, "spec.yaml", yaml, err) : EG_ERUN;
            free(yaml);
        }
        if (rc == EG_OK) {
            char mp[EG_PATH_MAX + 32];
            snprintf(mp, sizeof mp, "%s/metrics.csv", out);
            if (start_iter > 0) {
                rc = eg_ckpt_truncate_metrics(mp, start_iter, err);
                if (!rc && !(r->metrics = fopen(mp, "a")))
                    rc = eg_err_set(err, EG_ERUN, "cannot open %s: %s", mp, strerror(errno));
            } else {
                if (o->force) {
                    char p2[EG_PATH_MAX + 32];
                    snprintf(p2, sizeof p2, "%s/summary.csv", out);
                    unlink(p2);
                    eg_ckpt_remove(out);
                }
                if (!(r->metrics = fopen(mp, "w")))
                    rc = eg_err_set(err, EG_ERUN, "cannot create %s: %s", mp, strerror(errno));
                else if (eg_schema_metrics_header(r->metrics) || fflush(r->metrics))
                    rc = eg_err_set(err, EG_ERUN, "cannot write %s: %s", mp, strerror(errno));
            }
        }
    }
    rc = eg_comm_world_agree(rc, err);
    if (rc) {
        ctx_free(r);
        return rc;
    }
    info(o, rank, "expgraph %s: %s: %d nodes on %d rank%s x %d thread%s, graph %s, %s, %s",
         EG_VERSION, s->name, s->nodes, eg_comm_size(r->comm), eg_comm_size(r->comm) > 1 ? "s" : "",
         r->nthreads, r->nthreads > 1 ? "s" : "", eg_graph_kinds[s->graph.kind].name,
         eg_algo_kinds[s->algo.kind].name,
         eg_model_describe(r->model));
    if (eg_algo_shared(r->algo) && s->norm_stats_gossip && eg_algo_nstats(r->algo) > 0)
        info(o, rank, "note: psgd uses no graph, so model.norm_stats: gossip is ignored (each node "
                      "keeps its own running statistics)");
    if (eg_algo_shared(r->algo) && s->init_independent)
        info(o, rank, "note: psgd trains one shared model, so model.init: independent is ignored "
                      "(every node starts from node 0's draw)");
    info(o, rank, "data: %s; partition %s, label skew %.3f (0 = every node sees the global label mix)",
         r->data.desc, s->data.partition, eg_partition_skew(&r->part));
    info(o, rank, "%ld iterations (%.0f per epoch, batch %d per node) -> %s%s", r->total_iters,
         r->iters_per_epoch, s->data.batch_size, out, start_iter ? " (resumed)" : "");

    const long log_every = s->train.log_every, eval_every = s->train.eval_every;
    const long ck_every = s->train.checkpoint_every;
    int needs_grad = eg_algo_needs_grad(r->algo);
    /* test hook: EXPGRAPH_KILL_AT=N makes rank EXPGRAPH_KILL_RANK (default 0) SIGKILL itself
     * after iteration N, to test resume-after-kill deterministically */
    long kill_at = -1, kill_rank = 0;
    const char *ka = getenv("EXPGRAPH_KILL_AT"), *kr = getenv("EXPGRAPH_KILL_RANK");
    if (ka && eg_parse_long(ka, &kill_at))
        kill_at = -1;
    if (kr && eg_parse_long(kr, &kill_rank))
        kill_rank = 0;
    rowvals v = {0};
    double lr = eg_sched_lr(&r->sched, r->iter > 0 ? r->iter - 1 : 0);
    eg_run_training = 1;
    int stopped = 0;
    long next_check = r->iter + 1, iter_check = r->iter;
    double t_check = eg_now();
    while (r->iter < r->total_iters) {
        long k = r->iter;
        double t0 = eg_now();
        lr = eg_sched_lr(&r->sched, k);
        if (needs_grad)
            compute_grads(r, k, lr);
        const eg_wmat *W = eg_topo_weights(r->topo, k);
        double sent0 = r->bytes_sent; /* EXTENSION (issue 16): bytes_inter */
        if ((rc = eg_algo_exchange(r->algo, r->comm, W, lr, &r->bytes_sent, err)))
            break;
        r->bytes_inter += eg_comm_inter_bytes(W, r->bytes_sent - sent0);
        r->iter++;
        r->rows_since_iters++;
        r->train_time += eg_now() - t0;
        int last = r->iter == r->total_iters;
        int stop = eg_run_stop_requested;
        if (eg_comm_size(r->comm) > 1) {
            /* the ranks agree on stopping (a signal reaches them at different iterations),
             * not every iteration: that would be a global synchronisation in every step of
             * a sparse graph (and Open MPI allocates in each small all-reduce). Rank 0
             * proposes the next check ~0.1 s of iterations ahead; a signal is acted on
             * within that. */
            stop = 0;
            if (r->iter >= next_check) {
                double now = eg_now();
                long every = 0;
                if (rank == 0) {
                    double per = (now - t_check) / (double)(r->iter - iter_check);
                    every = per > 0 ? (long)(0.1 / per) : 1000;
                    every = every < 1 ? 1 : every > 1000 ? 1000 : every;
                }
                long sv[2] = {eg_run_stop_requested, every};
                if ((rc = eg_comm_max_longs(r->comm, sv, 2, err)))
                    break;
                stop = (int)sv[0];
                next_check = r->iter + sv[1];
                t_check = now;
                iter_check = r->iter;
            }
        }
        if (last || r->iter % log_every == 0) {
            if ((rc = check_divergence(r, err)))
                break;
            int ev = last || eval_every == 0 || (r->iter % eval_every == 0);
            if ((rc = metrics_row(r, ev, &v, err)))
                break;
            rc = write_row(r, &v, lr, err);
            if ((rc = eg_comm_world_agree(rc, err)))
                break;
            if (v.evaluated)
                r->last_acc = v.test_acc;
            r->last_loss = v.train_loss;
        }
        if (o->progress && rank == 0) {
            eg_progress p = {r->iter, r->total_iters, r->iter / r->iters_per_epoch, r->last_loss,
                             r->last_acc > 0 ? r->last_acc : -1, r->train_time};
            o->progress(o->ud, &p);
        }
        if (last || stop || (ck_every > 0 && r->iter % ck_every == 0)) {
            eg_ckpt_state cs = ckpt_state(r, h);
            if ((rc = eg_ckpt_save(out, r->comm, &cs, err)))
                break;
        }
        if (stop && !last) {
            stopped = 1;
            break;
        }
        if (r->iter == kill_at && r->rank == kill_rank)
            raise(SIGKILL);
    }
    eg_run_training = 0;
    if (rc == EG_OK && !stopped) {
        if (r->metrics) {
            int bad = fclose(r->metrics) != 0;
            r->metrics = NULL;
            if (bad)
                rc = eg_err_set(err, EG_ERUN, "cannot write %s/metrics.csv: %s", out, strerror(errno));
        }
        double wall = eg_comm_world_max(eg_now() - wall0);
        if (!rc && rank == 0)
            rc = write_summary(r, &v, wall, err);
        if (!rc)
            info(o, rank, "done: %ld iterations in %.1f s (%.0f samples/s), test_acc %.4f, "
                 "test_loss %.4f, consensus %.3g, bytes_sent %.3g; wrote %s/metrics.csv",
                 r->iter, r->train_time,
                 r->train_time > 0 ? (double)r->iter * s->nodes * s->data.batch_size / r->train_time : 0,
                 v.test_acc, v.test_loss, v.consensus, r->bytes_sent, out);
    }
    if (rc == EG_OK && stopped) {
        info(o, rank, "interrupted at iteration %ld: checkpoint saved; continue with --resume", r->iter);
        rc = eg_err_set(err, EG_EINTR, "interrupted at iteration %ld; checkpoint saved in %s "
                        "(continue with: expgraph run ... --resume)", r->iter, out);
    }
    ctx_free(r);
    return rc;
}
