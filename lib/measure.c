/* measure.c - evaluation, consensus, loss accounting and metrics.csv (see measure.h). */
#include "measure.h"
#include "ckpt.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_BATCH EG_EVAL_BATCH
/* node_acc_mean evaluates every node's own model on this many test samples (every
 * (n_test / NODE_EVAL_SAMPLES)-th one): n full passes over the test set would cost more
 * than the training between two rows */
#define NODE_EVAL_SAMPLES 2000

struct eg_measure {
    eg_measure_env env;
    int rank, nranks;
    double *loss_acc;   /* nlocal: minibatch losses since the last row */
    long *bad_iter;     /* nlocal: first iteration with a non-finite loss, -1 if none */
    long rows_since;    /* iterations since the last row */
    double *acc_d;      /* dim: x_bar in double */
    float *xbar;        /* dim */
    double *acc_s;      /* nstats: the nodes' running statistics summed */
    float *sbar;        /* nstats: their mean, used with x_bar */
    size_t nstats;
    double *node_vals;  /* nodes */
    double *local_vals; /* nlocal */
    double *batch_vals; /* 2 per test batch */
    int n_eval_batches;
    float *sub_x;       /* the node-evaluation subset of the test split */
    float *eval_x;      /* test images held as bytes: per thread, one batch as floats */
    int32_t *sub_y;
    int n_sub;
    float *val_x;       /* env.val: per thread, one batch of held-out samples */
    int32_t *val_y;
    double *val_sums;   /* env.val: nlocal x 2, each local node's loss sum and correct count */
    FILE *csv;          /* rank 0 */
    char csv_path[EG_PATH_MAX + 32];
};

void eg_measure_free(eg_measure *m)
{
    if (!m)
        return;
    if (m->csv)
        fclose(m->csv);
    free(m->loss_acc);
    free(m->bad_iter);
    free(m->acc_d);
    free(m->xbar);
    free(m->acc_s);
    free(m->sbar);
    free(m->node_vals);
    free(m->local_vals);
    free(m->batch_vals);
    free(m->sub_x);
    free(m->eval_x);
    free(m->sub_y);
    free(m->val_x);
    free(m->val_y);
    free(m->val_sums);
    free(m);
}

/* every (n_test / n_sub)-th test sample, for the nodes' own models */
static void take_subset(eg_measure *m)
{
    const eg_dataset *d = m->env.data;
    for (int q = 0; q < m->n_sub; q++) {
        long src = (long)q * d->n_test / m->n_sub;
        float *dst = m->sub_x + (size_t)q * d->dim;
        const float *row = eg_data_test_rows(d, (int)src, 1, dst);
        if (row != dst)
            memcpy(dst, row, sizeof(float) * (size_t)d->dim);
        m->sub_y[q] = d->y_test[src];
    }
}

int eg_measure_init(eg_measure **out, const eg_measure_env *env, eg_err *err)
{
    *out = NULL;
    eg_measure *m = eg_calloc(1, sizeof *m, err);
    if (!m)
        return EG_ERUN;
    m->env = *env;
    m->rank = eg_comm_rank(env->comm);
    m->nranks = eg_comm_size(env->comm);
    size_t nl = (size_t)env->nlocal + 1, ns = eg_model_nstats(env->model);
    const eg_dataset *d = env->data;
    m->nstats = ns;
    m->n_eval_batches = (d->n_test + EVAL_BATCH - 1) / EVAL_BATCH;
    m->n_sub = d->n_test < NODE_EVAL_SAMPLES ? d->n_test : NODE_EVAL_SAMPLES;
    m->loss_acc = calloc(nl, sizeof(double));
    m->bad_iter = calloc(nl, sizeof(long));
    m->local_vals = calloc(nl, sizeof(double));
    m->node_vals = calloc((size_t)env->nodes, sizeof(double));
    m->acc_d = calloc(env->dim, sizeof(double));
    m->acc_s = calloc(ns + 1, sizeof(double));
    m->batch_vals = calloc((size_t)m->n_eval_batches * 2 + 2, sizeof(double));
    m->sub_y = malloc(sizeof(int32_t) * (size_t)(m->n_sub ? m->n_sub : 1));
    m->xbar = eg_alloc_floats(env->dim, err);
    m->sbar = eg_alloc_floats(ns + 1, err);
    m->sub_x = eg_alloc_floats((size_t)m->n_sub * (size_t)d->dim, err);
    if (!d->x_test && m->sub_x) /* bytes: each thread converts its batch */
        m->eval_x = eg_alloc_floats((size_t)omp_get_max_threads() * EVAL_BATCH * (size_t)d->dim, err);
    if (!d->x_test && !m->eval_x) {
        eg_measure_free(m);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    if (!m->loss_acc || !m->bad_iter || !m->local_vals || !m->node_vals || !m->acc_d ||
        !m->acc_s || !m->batch_vals || !m->sub_y || !m->xbar || !m->sbar || !m->sub_x) {
        eg_measure_free(m);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    if (env->val) {
        size_t T = (size_t)omp_get_max_threads();
        m->val_x = eg_alloc_floats(T * EVAL_BATCH * (size_t)d->dim, err);
        m->val_y = malloc(T * EVAL_BATCH * sizeof(int32_t));
        m->val_sums = calloc(nl * 2, sizeof(double));
        if (!m->val_x || !m->val_y || !m->val_sums) {
            eg_measure_free(m);
            return eg_err_set(err, EG_ERUN, "out of memory");
        }
    }
    for (int li = 0; li < env->nlocal; li++)
        m->bad_iter[li] = -1;
    take_subset(m);
    *out = m;
    return EG_OK;
}

void eg_measure_add_loss(eg_measure *m, int li, long k, float loss)
{
    m->loss_acc[li] += (double)loss;
    if (!isfinite(loss) && m->bad_iter[li] < 0)
        m->bad_iter[li] = k;
}

void eg_measure_end_iter(eg_measure *m) { m->rows_since++; }
double *eg_measure_losses(eg_measure *m) { return m->loss_acc; }
long *eg_measure_rows_since(eg_measure *m) { return &m->rows_since; }

/* the sum over all nodes, in node order, of one value per local node */
static int sum_nodes(eg_measure *m, double *sum, eg_err *err)
{
    int rc = eg_comm_gather_nodes(m->env.comm, m->local_vals, 1, m->node_vals, err);
    double s = 0;
    for (int i = 0; i < m->env.nodes; i++)
        s += m->node_vals[i];
    *sum = s;
    return rc;
}

int eg_measure_check_divergence(eg_measure *m, eg_err *err)
{
    for (int li = 0; li < m->env.nlocal; li++)
        m->local_vals[li] = (double)m->bad_iter[li];
    int rc = eg_comm_gather_nodes(m->env.comm, m->local_vals, 1, m->node_vals, err);
    if (rc)
        return rc;
    long it = -1, node = -1;
    for (int i = 0; i < m->env.nodes; i++) {
        long b = (long)m->node_vals[i];
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

/* test loss/accuracy of params p (with stats) over the test batches, each rank taking every
 * P-th batch, summed in batch order */
static int eval_split(eg_measure *m, const float *p, const float *stats, double *loss,
                      double *acc, eg_err *err)
{
    const eg_dataset *d = m->env.data;
    int P = m->nranks, rank = m->rank, nb = m->n_eval_batches;
    memset(m->batch_vals, 0, sizeof(double) * (size_t)nb * 2);
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < nb; b++) {
        if (b % P != rank)
            continue;
        int tid = omp_get_thread_num();
        int start = b * EVAL_BATCH, cnt = d->n_test - start;
        if (cnt > EVAL_BATCH)
            cnt = EVAL_BATCH;
        double ls = 0;
        long cor = 0;
        float *buf = m->eval_x ? m->eval_x + (size_t)tid * EVAL_BATCH * (size_t)d->dim : NULL;
        eg_model_eval(m->env.model, m->env.work[tid], p, stats,
                      eg_data_test_rows(d, start, cnt, buf), d->y_test + start, cnt, &ls, &cor);
        m->batch_vals[2 * b] = ls;
        m->batch_vals[2 * b + 1] = (double)cor;
    }
    int rc = eg_comm_allreduce_doubles(m->env.comm, m->batch_vals, (size_t)nb * 2, err);
    if (rc)
        return rc;
    double ls = 0, cor = 0;
    for (int b = 0; b < nb; b++) {
        ls += m->batch_vals[2 * b];
        cor += m->batch_vals[2 * b + 1];
    }
    *loss = ls / d->n_test;
    *acc = cor / d->n_test;
    return EG_OK;
}

/* x_bar (double and float) and consensus (1/n) sum_i ||x_i - x_bar||^2 */
static int average_and_consensus(eg_measure *m, eg_algo *algo, double *consensus, eg_err *err)
{
    const size_t dim = m->env.dim;
    const float *xs = eg_algo_x(algo);
    int rc = eg_comm_sum_nodes(m->env.comm, xs, dim, m->acc_d, err);
    if (rc)
        return rc;
    for (size_t t = 0; t < dim; t++) {
        m->acc_d[t] /= m->env.nodes;
        m->xbar[t] = (float)m->acc_d[t];
    }
    for (int li = 0; li < m->env.nlocal; li++) {
        const float *x = xs + (size_t)li * dim;
        double c = 0;
        for (size_t t = 0; t < dim; t++) {
            double dd = (double)x[t] - m->acc_d[t];
            c += dd * dd;
        }
        m->local_vals[li] = c;
    }
    double cs;
    rc = sum_nodes(m, &cs, err);
    *consensus = cs / m->env.nodes;
    return rc;
}

/* the mean over nodes of the running statistics, used with x_bar */
static int average_stats(eg_measure *m, eg_algo *algo, eg_err *err)
{
    if (m->nstats == 0)
        return EG_OK;
    int rc = eg_comm_sum_nodes(m->env.comm, eg_algo_stats(algo), m->nstats, m->acc_s, err);
    for (size_t t = 0; t < m->nstats && !rc; t++)
        m->sbar[t] = (float)(m->acc_s[t] / m->env.nodes);
    return rc;
}

/* x_bar (m->xbar, m->sbar: call after average_and_consensus and average_stats) on the
 * held-out samples of every node: a local node's samples in batches of EVAL_BATCH on one
 * thread, summed in batch order; then over nodes in node order (NaN without env.val) */
static int eval_held_out(eg_measure *m, eg_measure_vals *v, eg_err *err)
{
    const eg_partition *val = m->env.val;
    const eg_dataset *d = m->env.data;
    v->val_loss = v->val_acc = NAN;
    if (!val || val->offset[val->nodes] == 0)
        return EG_OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int li = 0; li < m->env.nlocal; li++) {
        int tid = omp_get_thread_num(), node = m->env.lo + li;
        float *x = m->val_x + (size_t)tid * EVAL_BATCH * (size_t)d->dim;
        int32_t *y = m->val_y + (size_t)tid * EVAL_BATCH;
        double ls = 0;
        long cor = 0;
        for (int32_t k = val->offset[node]; k < val->offset[node + 1]; k += EVAL_BATCH) {
            int cnt = val->offset[node + 1] - k < EVAL_BATCH ? val->offset[node + 1] - k
                                                              : EVAL_BATCH;
            eg_data_fill_batch(d, val->idx + k, cnt, 0, NULL, x, y);
            eg_model_eval(m->env.model, m->env.work[tid], m->xbar, m->nstats ? m->sbar : NULL,
                          x, y, cnt, &ls, &cor);
        }
        m->val_sums[2 * li] = ls;
        m->val_sums[2 * li + 1] = (double)cor;
    }
    double sum[2];
    for (int k = 0; k < 2; k++) {
        for (int li = 0; li < m->env.nlocal; li++)
            m->local_vals[li] = m->val_sums[2 * li + k];
        int rc = sum_nodes(m, &sum[k], err);
        if (rc)
            return rc;
    }
    double n = (double)val->offset[val->nodes];
    v->val_loss = sum[0] / n;
    v->val_acc = sum[1] / n;
    return EG_OK; /* a streamed sample that failed to decode: the run loop's eg_data_error */
}

/* the mean over nodes of each node's own model's accuracy on the test subset: every (node,
 * chunk) pair is a task for any thread, the chunks' counts added in order */
static int node_accuracy(eg_measure *m, eg_algo *algo, double *acc, eg_err *err)
{
    const size_t dim = m->env.dim, fdim = (size_t)m->env.data->dim;
    const int nc = (m->n_sub + EVAL_BATCH - 1) / EVAL_BATCH, nl = m->env.nlocal;
    long *cnt = calloc((size_t)nl * (size_t)(nc > 0 ? nc : 1), sizeof *cnt);
    if (!cnt)
        return eg_err_set(err, EG_ERUN, "out of memory (evaluation)");
#pragma omp parallel for schedule(dynamic, 1)
    for (int task = 0; task < nl * nc; task++) {
        int tid = omp_get_thread_num(), li = task / nc, start = (task % nc) * EVAL_BATCH;
        int n = m->n_sub - start < EVAL_BATCH ? m->n_sub - start : EVAL_BATCH;
        double ls = 0;
        eg_model_eval(m->env.model, m->env.work[tid], eg_algo_x(algo) + (size_t)li * dim,
                      eg_algo_node_stats(algo, li), m->sub_x + (size_t)start * fdim,
                      m->sub_y + start, n, &ls, &cnt[task]);
    }
    for (int li = 0; li < nl; li++) {
        long cor = 0;
        for (int c = 0; c < nc; c++)
            cor += cnt[(size_t)li * nc + c];
        m->local_vals[li] = (double)cor / m->n_sub;
    }
    free(cnt);
    double s;
    int rc = sum_nodes(m, &s, err);
    *acc = s / m->env.nodes;
    return rc;
}

int eg_measure_row(eg_measure *m, eg_algo *algo, int evaluate, eg_measure_vals *v,
                       eg_err *err)
{
    memset(v, 0, sizeof *v);
    for (int li = 0; li < m->env.nlocal; li++)
        m->local_vals[li] = m->loss_acc[li];
    double tl;
    int rc = sum_nodes(m, &tl, err);
    if (rc)
        return rc;
    /* the mean over the (node, iteration) pairs that computed a loss: absent nodes do not */
    double pairs = (double)m->env.nodes * (double)m->rows_since -
                   (double)eg_algo_absent_pairs(algo, m->rows_since);
    v->train_loss = pairs > 0 ? tl / pairs : NAN;
    memset(m->loss_acc, 0, sizeof(double) * (size_t)m->env.nlocal);
    m->rows_since = 0;
    if (!evaluate)
        return EG_OK;
    v->evaluated = 1;
    eg_algo_sync(algo);
    if ((rc = average_and_consensus(m, algo, &v->consensus, err)) ||
        (rc = average_stats(m, algo, err)) ||
        (rc = eval_split(m, m->xbar, m->nstats ? m->sbar : NULL, &v->test_loss, &v->test_acc, err)))
        return rc;
    if ((rc = eval_held_out(m, v, err)))
        return rc;
    /* identical models with no statistics of their own: each node scores as x_bar does */
    if (v->consensus == 0.0 && m->nstats == 0) {
        v->node_acc = v->test_acc;
        return EG_OK;
    }
    return node_accuracy(m, algo, &v->node_acc, err);
}

int eg_measure_open_csv(eg_measure *m, const char *dir, long resume_iter, eg_err *err)
{
    if (m->rank != 0)
        return EG_OK;
    snprintf(m->csv_path, sizeof m->csv_path, "%s/metrics.csv", dir);
    if (resume_iter > 0) {
        int rc = eg_ckpt_truncate_metrics(m->csv_path, resume_iter, err);
        if (rc)
            return rc;
        if (!(m->csv = fopen(m->csv_path, "a")))
            return eg_err_set(err, EG_ERUN, "cannot open %s: %s", m->csv_path, strerror(errno));
        return EG_OK;
    }
    if (!(m->csv = fopen(m->csv_path, "w")))
        return eg_err_set(err, EG_ERUN, "cannot create %s: %s", m->csv_path, strerror(errno));
    if (eg_schema_metrics_header_cluster(m->csv, (m->env.cluster ? EG_COL_CLUSTER : 0) |
                                                             (m->env.val ? EG_COL_VAL : 0)) || fflush(m->csv))
        return eg_err_set(err, EG_ERUN, "cannot write %s: %s", m->csv_path, strerror(errno));
    return EG_OK;
}

int eg_measure_write_row(eg_measure *m, const eg_schema_row *row, eg_err *err)
{
    if (!m->csv)
        return EG_OK;
    if (eg_schema_metrics_row(m->csv, row) || fflush(m->csv) || ferror(m->csv))
        return eg_err_set(err, EG_ERUN, "cannot write %s: %s", m->csv_path, strerror(errno));
    return EG_OK;
}

int eg_measure_close_csv(eg_measure *m, eg_err *err)
{
    if (!m->csv)
        return EG_OK;
    int bad = fclose(m->csv) != 0;
    m->csv = NULL;
    if (bad)
        return eg_err_set(err, EG_ERUN, "cannot write %s: %s", m->csv_path, strerror(errno));
    return EG_OK;
}
