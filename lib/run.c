/* run.c - the experiment driver: spec -> (topology, data, model, algorithm, schedule) ->
 * training loop -> metrics (metrics.csv), spec.yaml, summary.csv, checkpoints.
 *
 * eg_run is a sequence of steps, each with one way out and each agreed by every rank:
 * check the inputs, claim the output directory, set up (or resume) the state, train,
 * finish. The nodes' sampling lives in sampler.c, measuring and metrics.csv in measure.c,
 * the method's vectors in algo.c; checkpoints go through those modules. */
#include "run.h"

#include "algo.h"
#include "ckpt.h"
#include "comm.h"
#include "compress.h"
#include "data.h"
#include "measure.h"
#include "model.h"
#include "provenance.h"
#include "sampler.h"
#include "schedule.h"
#include "schema.h"
#include "spec.h"
#include "timemodel.h"
#include "topology.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t eg_run_stop_requested = 0;
volatile sig_atomic_t eg_run_training = 0;

/* everything one rank holds for one run */
typedef struct runctx {
    eg_spec spec;
    eg_dataset data;
    eg_partition part;
    eg_partition val;      /* data.val_fraction: each node's held-out samples */
    eg_topo *topo;
    eg_model *model;
    eg_comm *comm;
    eg_algo *algo;
    eg_sched sched;
    eg_sampler *sampler;
    eg_measure *metrics;
    eg_tmodel *tmodel;     /* cluster: the modelled time (NULL without cluster:) */
    int nodes, lo, nlocal, nthreads, rank;
    size_t dim;
    long total_iters;
    double iters_per_epoch;
    uint64_t hash;         /* of the spec and data: the ranks and the checkpoint must match */
    eg_prov_run *prov;     /* where the run runs: build, libraries, hosts, kernels */
    /* per thread */
    eg_work **work;
    float **xb;
    int32_t **yb;
    /* micro-batches (a node's batch larger than train.micro_batch): micro_m works per set,
     * one set per thread when the rank's nodes run in parallel (micro_team == 1), else one
     * set shared by a team of every thread, node after node */
    int micro_m, micro_sets, micro_team;
    eg_work **mwork;
    float **gbuf;
    /* progress */
    eg_ckpt_counters ctr;  /* iterations done, bytes sent, training seconds */
    long start_iter;       /* where this invocation started (resumed runs: > 0) */
    double grad_first;     /* seconds in compute_grads: this invocation's first iteration, */
    double grad_time;      /* and the later ones (samples_per_s: measured) */
    eg_measure_vals last;  /* the last row */
    double last_acc;
    size_t data_bytes_max; /* the training and test data the fullest rank holds */
    long data_held_max;    /* training samples the fullest rank holds */
    int has_ckpt;          /* the output directory holds a checkpoint */
    char out[EG_PATH_MAX];
} runctx;

static void ctx_free(runctx *r)
{
    eg_prov_run_free(r->prov);
    eg_measure_free(r->metrics);
    eg_tmodel_free(r->tmodel);
    eg_sampler_free(r->sampler);
    eg_algo_free(r->algo);
    eg_comm_free(r->comm);
    for (int t = 0; t < r->nthreads; t++) {
        if (r->work)
            eg_work_free(r->work[t]);
        if (r->xb)
            free(r->xb[t]);
        if (r->yb)
            free(r->yb[t]);
    }
    free(r->work);
    free(r->xb);
    free(r->yb);
    for (int i = 0; r->mwork && i < r->micro_sets * r->micro_m; i++)
        eg_work_free(r->mwork[i]);
    for (int i = 0; r->gbuf && i < r->micro_sets; i++)
        free(r->gbuf[i]);
    free(r->mwork);
    free(r->gbuf);
    eg_model_free(r->model);
    eg_topo_free(r->topo);
    eg_partition_free(&r->part);
    eg_partition_free(&r->val);
    eg_data_free(&r->data);
    eg_spec_free(&r->spec);
}

/* ---- preparation: everything `validate` checks ---- */

/* a failed data step's message, prefixed with where the spec says it */
static int data_err(const eg_spec *s, const char *key, const char *pre, int rc, eg_err *err)
{
    char where[EG_PATH_MAX + 64], msg[sizeof err->msg];
    eg_spec_where(s, key, where, sizeof where);
    snprintf(msg, sizeof msg, "%s", err->msg);
    return eg_err_set(err, rc, "%s: %s%s", where, pre, msg);
}

/* The data as this rank needs it (not collective): the labels and the test set, the partition
 * (from the labels and the seed, the same on every rank), then only the training samples of
 * this rank's nodes (plus, on rank 0, those no node owns, for the statistics only). */
static int load_data(runctx *r, eg_err *err)
{
    eg_spec *s = &r->spec;
    int rc = eg_data_open(&r->data, &s->data, s->nodes, s->seed, err);
    if (rc)
        return data_err(s, "data", "data: ", rc, err);
    long need = (long)s->nodes * s->data.batch_size;
    if (r->data.n_train < need) {
        char where[EG_PATH_MAX + 64];
        eg_spec_where(s, "data.batch_size", where, sizeof where);
        return eg_err_set(err, EG_EINPUT,
                          "%s: data.batch_size %d x nodes %d needs %ld training samples; %s has %d "
                          "(lower data.batch_size or nodes)",
                          where, s->data.batch_size, s->nodes, need,
                          eg_data_kinds[s->data.kind].name, r->data.n_train);
    }
    if ((rc = eg_partition_make(&r->part, &r->data, &s->data, s->nodes, s->seed, err)))
        return data_err(s, "data.partition", "", rc, err);
    int lo, hi, rank = eg_comm_world_rank();
    eg_comm_range(s->nodes, eg_comm_world_size(), rank, &lo, &hi);
    if ((rc = eg_data_read(&r->data, &r->part, lo, hi, rank == 0, err)))
        return data_err(s, "data", "data: ", rc, err);
    /* the held-out samples were read with their shards; training keeps the rest */
    if (s->data.val_fraction > 0 &&
        (rc = eg_partition_hold_out(&r->part, &r->val, r->data.y_train, s->data.val_fraction,
                                    s->data.batch_size, s->seed, err)))
        return data_err(s, "data.val_fraction", "", rc, err);
    return EG_OK;
}

static int load_inputs(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = eg_spec_load(&r->spec, o->spec_file, o->sets, o->nsets, err);
    if (rc)
        return eg_comm_world_agree(rc, err);
    eg_spec *s = &r->spec;
    r->nodes = s->nodes;
    r->topo = eg_spec_take_topo(s); /* built once, while validating */
    /* every rank reaches the agreement: the statistics' sum below is collective */
    rc = eg_comm_world_agree(load_data(r, err), err);
    double *stats;
    size_t nstats = rc ? 0 : eg_data_shared_stats(&r->data, &stats);
    if (!rc)
        rc = eg_comm_world_sum_doubles(stats, nstats, err);
    if (!rc)
        rc = eg_data_normalise(&r->data, err);
    if (!rc) {
        r->data_bytes_max = (size_t)eg_comm_world_max((double)eg_data_bytes(&r->data));
        r->data_held_max = (long)eg_comm_world_max((double)r->data.n_held);
    }
    if (rc)
        return rc;
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

/* ---- step 1: check the inputs (every rank, agreed) ---- */

/* the communicator, and the thread budget: the host's cores shared by the ranks on it,
 * BLAS single-threaded inside */
static int setup_comm(runctx *r, eg_err *err)
{
    const eg_spec *s = &r->spec;
    int maxv = eg_algo_gossip_vectors(s->algo.kind);
    int rc = eg_comm_init(&r->comm, s->nodes, r->dim, maxv < 1 ? 1 : maxv, r->topo, err);
    if (rc)
        return rc;
    r->rank = eg_comm_rank(r->comm);
    r->lo = eg_comm_lo(r->comm);
    r->nlocal = eg_comm_hi(r->comm) - r->lo;
    r->nthreads = eg_default_threads(eg_comm_host_ranks(r->comm));
    omp_set_num_threads(r->nthreads);
    openblas_set_num_threads(1);
    return eg_comm_set_threads(r->comm, r->nthreads, err);
}

/* all ranks run the same spec, graph and data */
static int same_inputs(runctx *r, eg_err *err)
{
    uint64_t h = eg_spec_hash(&r->spec);
    h = eg_fnv1a(h, &r->dim, sizeof r->dim);
    h = eg_fnv1a(h, &r->data.n_train, sizeof r->data.n_train);
    r->hash = h;
    int same = 1, rc = eg_comm_same_u64(r->comm, h, &same, err);
    if (!rc && !same)
        rc = eg_err_set(err, EG_EINPUT,
                        "the ranks disagree on the spec, graph or data (different files or "
                        "--set on different hosts?); every rank must see the same inputs");
    return rc;
}

/* MemAvailable of /proc/meminfo in bytes ($EXPGRAPH_MEMAVAILABLE_KB instead, for tests), or
 * 0 when unknown */
static double mem_available(void)
{
    const char *env = getenv("EXPGRAPH_MEMAVAILABLE_KB");
    if (env && *env)
        return atof(env) * 1024.0;
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024.0;
}

/* An estimate of what this rank needs (its data as loaded; per local node the parameters
 * and the method's vectors: x, its update, the gradient, momentum, and send/receive buffers
 * per gossip vector; per thread a minibatch and as much again for activations: a lower
 * bound for deep models) against its share of the host's available memory; rank 0 warns
 * for the rank that is shortest. Collective. */
static void check_memory(const runctx *r, const eg_run_opts *o)
{
    const eg_spec *s = &r->spec;
    const eg_algo_info *ai = &eg_algo_kinds[s->algo.kind];
    double vecs = 3 + ai->momentum + 2.0 * ai->vectors;
    double per_batch = (double)s->data.batch_size * r->data.dim * sizeof(float);
    double need = (double)eg_data_bytes(&r->data) +
                  (double)r->nlocal * (double)r->dim * sizeof(float) * vecs +
                  (double)r->nthreads * 2.0 * per_batch;
    double avail = mem_available() / eg_comm_host_ranks(r->comm);
    double worst = eg_comm_world_max(avail > 0 ? need / avail : 0);
    double need_max = eg_comm_world_max(need);
    if (r->rank == 0 && worst > 1 && o->warn) {
        char line[512];
        snprintf(line, sizeof line,
                 "this run needs about %.0f MB per rank (data %.0f MB on the fullest rank, node "
                 "state and buffers), more than the %.0f MB of available memory a rank has "
                 "here (MemAvailable / ranks on the host); use more ranks or hosts, or "
                 "data.cache: stream for an image folder",
                 need_max / 1e6, (double)r->data_bytes_max / 1e6, need_max / worst / 1e6);
        o->warn(o->ud, line);
    }
}

static int check_inputs(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = eg_comm_world_agree(load_inputs(r, o, err), err);
    if (!rc)
        rc = eg_comm_world_agree(setup_comm(r, err), err);
    if (!rc)
        rc = eg_comm_world_agree(same_inputs(r, err), err);
    if (!rc)
        check_memory(r, o);
    return rc;
}

/* ---- step 2: claim the output directory ---- */

static int file_exists(const char *dir, const char *name)
{
    char p[EG_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

/* never clobber a run without being asked */
static int claim_output(runctx *r, const eg_run_opts *o, eg_err *err)
{
    const char *out = o->out_dir ? o->out_dir : r->spec.out_dir;
    snprintf(r->out, sizeof r->out, "%s", out);
    int finished = file_exists(out, "summary.csv"), has_metrics = file_exists(out, "metrics.csv");
    int rc = EG_OK;
    r->has_ckpt = eg_ckpt_exists(out);
    if (o->resume && !r->has_ckpt && !finished)
        rc = eg_err_set(err, EG_EINPUT, "%s: nothing to resume (no checkpoint there); drop --resume to start the run", out);
    else if (o->resume && finished && !r->has_ckpt)
        rc = eg_err_set(err, EG_EINPUT, "%s: the run there is finished and has no checkpoint", out);
    else if (!o->resume && !o->force && finished)
        rc = eg_err_set(err, EG_EINPUT, "%s already holds a finished run (summary.csv); use --force to start over or --out for another directory", out);
    else if (!o->resume && !o->force && (r->has_ckpt || has_metrics))
        rc = eg_err_set(err, EG_EINPUT, "%s holds an interrupted run; continue it with --resume or start over with --force", out);
    return eg_comm_world_agree(rc, err);
}

/* ---- step 3: set up the state, or resume it ---- */

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



/* running statistics (fresh on every node; checkpointed with the state) and the parameter
 * ranges weight decay skips */
static int setup_model_state(runctx *r, eg_err *err)
{
    const eg_spec *s = &r->spec;
    size_t ns = eg_model_nstats(r->model);
    int rc = eg_algo_set_stats(r->algo, ns, s->norm_stats_gossip, err);
    if (!rc)
        rc = eg_algo_set_network(r->algo, &s->network, s->seed, r->lo, err);
    if (!rc)
        rc = eg_algo_set_graph(r->algo, r->topo, r->comm, err);
    if (rc)
        return rc;
    for (int li = 0; li < r->nlocal; li++)
        eg_model_init_stats(r->model, eg_algo_node_stats(r->algo, li));
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

/* per thread: a model work (training and evaluation batches) and a minibatch buffer */
static int setup_threads(runctx *r, eg_err *err)
{
    int nt = r->nthreads, B = r->spec.data.batch_size, maxb = B > EG_EVAL_BATCH ? B : EG_EVAL_BATCH;
    r->work = calloc((size_t)nt, sizeof *r->work);
    r->xb = calloc((size_t)nt, sizeof *r->xb);
    r->yb = calloc((size_t)nt, sizeof *r->yb);
    if (!r->work || !r->xb || !r->yb)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int t = 0; t < nt; t++) {
        int rc = eg_work_init(&r->work[t], r->model, maxb, err);
        if (rc)
            return rc;
        r->xb[t] = eg_alloc_floats((size_t)B * (size_t)r->data.dim, err);
        r->yb[t] = malloc(sizeof(int32_t) * (size_t)maxb);
        if (!r->xb[t] || !r->yb[t])
            return eg_err_set(err, EG_ERUN, "out of memory");
    }
    const int mb = r->spec.train.micro_batch;
    if (B <= mb)
        return EG_OK;
    r->micro_m = (B + mb - 1) / mb;
    if (r->micro_m > EG_MICRO_MAX)
        return eg_err_set(err, EG_EINPUT, "train.micro_batch %d splits a batch of %d into more "
                          "than %d micro-batches", mb, B, EG_MICRO_MAX);
    r->micro_team = r->nlocal < nt ? nt : 1;
    r->micro_sets = r->micro_team > 1 ? 1 : nt;
    r->mwork = calloc((size_t)r->micro_sets * r->micro_m, sizeof *r->mwork);
    r->gbuf = calloc((size_t)r->micro_sets, sizeof *r->gbuf);
    if (!r->mwork || !r->gbuf)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int i = 0; i < r->micro_sets * r->micro_m; i++) {
        int rc = eg_work_init_micro(&r->mwork[i], r->model, mb, err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < r->micro_sets; i++)
        if (!(r->gbuf[i] = eg_alloc_floats((size_t)(r->micro_m - 1) * r->dim, err)))
            return EG_ERUN;
    return EG_OK;
}

/* initial parameters: node 0's draw everywhere, or one per node (model.init) */
static void init_params(runctx *r)
{
    for (int li = 0; li < r->nlocal; li++) {
        eg_rng ir;
        /* psgd trains one shared model: node 0's draw whatever model.init says */
        int indep = r->spec.init_independent && !eg_algo_shared(r->algo);
        eg_rng_seed(&ir, r->spec.seed, EG_STREAM_INIT, indep ? (uint64_t)(r->lo + li) : 0);
        eg_model_init_params(r->model, eg_algo_x(r->algo) + (size_t)li * r->dim, &ir);
    }
}

static eg_ckpt_state ckpt_state(runctx *r)
{
    eg_ckpt_state cs = {.spec_hash = r->hash, .nodes = r->nodes, .lo = r->lo,
                        .nlocal = r->nlocal, .dim = r->dim, .algo = r->algo,
                        .sampler = r->sampler, .loss_acc = eg_measure_losses(r->metrics),
                        .rows_since = eg_measure_rows_since(r->metrics), .ctr = &r->ctr,
                        .tmodel = r->tmodel};
    return cs;
}

/* cluster: the time model (timemodel.h); its configuration, b = the bytes one message of
 * this method carries included, from eg_tmodel_cfg_from_spec (also used by table --cluster) */
static int setup_tmodel(runctx *r, eg_err *err)
{
    const eg_spec *s = &r->spec;
    if (!s->cluster.on)
        return EG_OK;
    eg_tmodel_cfg cfg;
    eg_tmodel_cfg_from_spec(&cfg, s, r->dim, eg_model_nstats(r->model));
    return eg_tmodel_init(&r->tmodel, &cfg, err);
}

static int setup_state(runctx *r, const eg_run_opts *o, eg_err *err)
{
    const eg_spec *s = &r->spec;
    int rc;
    if ((rc = eg_algo_init(&r->algo, &s->algo, s->nodes, r->nlocal, r->dim,
                           eg_topo_max_nnz(r->topo), r->nthreads, err)) ||
        (rc = setup_model_state(r, err)) || (rc = setup_threads(r, err)) ||
        (rc = eg_sampler_init(&r->sampler, &r->part, r->lo, r->nlocal, s->seed, err)) ||
        (rc = setup_tmodel(r, err)))
        return rc;
    if (r->data.stream && (rc = eg_sampler_set_prefetch(r->sampler, eg_data_prefetch, &r->data,
                                                        EG_DATA_AHEAD, s->data.batch_size, err)))
        return rc; /* data.cache: stream reads the next minibatches ahead */
    eg_measure_env env = {&r->data, r->model, r->comm, r->work, s->nodes, r->nlocal, r->dim,
                          s->cluster.on, s->data.val_fraction > 0 ? &r->val : NULL, r->lo};
    if ((rc = eg_measure_init(&r->metrics, &env, err)))
        return rc;
    init_params(r);
    if (!(o->resume && r->has_ckpt))
        return EG_OK;
    eg_ckpt_state cs = ckpt_state(r);
    rc = eg_ckpt_load(r->out, r->comm, &cs, err);
    r->start_iter = r->ctr.iter;
    return rc;
}

/* rank 0: the directory, spec.yaml and metrics.csv (new, or cut back to the checkpoint) */
static int open_outputs(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = EG_OK;
    if (r->rank != 0)
        return eg_measure_open_csv(r->metrics, r->out, r->start_iter, err);
    if ((rc = mkdir_p(r->out, err)))
        return rc;
    char *yaml = eg_spec_to_yaml(&r->spec, err), path[EG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/spec.yaml", r->out);
    rc = yaml ? eg_write_text_atomic(path, "", 0, yaml, err) : EG_ERUN;
    free(yaml);
    if (!rc && r->start_iter == 0 && o->force) {
        snprintf(path, sizeof path, "%s/summary.csv", r->out);
        unlink(path);
        eg_ckpt_remove(r->out);
    }
    return rc ? rc : eg_measure_open_csv(r->metrics, r->out, r->start_iter, err);
}

/* run_info.yaml (provenance.h): every host's CPU and kernels gathered (collective); rank 0
 * warns when the hosts dispatch different kernels, and records the facts for a new run or
 * compares the record with this machine for a resumed one (a warning; the run continues) */
static int record_provenance(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = eg_prov_run_init(&r->prov, r->comm, r->spec.train.precision == EG_PREC_BF16, err);
    if (rc || r->rank != 0)
        return rc;
    char msg[2048], line[2400];
    if (eg_prov_run_mixed(r->prov, msg, sizeof msg) && o->warn)
        o->warn(o->ud, msg);
    int P = eg_comm_size(r->comm);
    if (!(o->resume && r->has_ckpt))
        return eg_prov_run_write(r->prov, r->out, P, r->nthreads, err);
    int n = eg_prov_run_resume(r->prov, r->out, r->start_iter, P, r->nthreads, msg, sizeof msg, err);
    if (n > 0 && o->warn) {
        snprintf(line, sizeof line, "resuming at iteration %ld with another build or machine "
                 "than the run's record (%s/run_info.yaml): %s; the run continues, but its "
                 "numbers will not match an uninterrupted run bit for bit", r->start_iter,
                 r->out, msg);
        o->warn(o->ud, line);
    }
    return n < 0 ? EG_ERUN : EG_OK;
}

static int set_up(runctx *r, const eg_run_opts *o, eg_err *err)
{
    int rc = eg_comm_world_agree(setup_state(r, o, err), err);
    rc = rc ? rc : eg_comm_world_agree(open_outputs(r, o, err), err);
    return rc ? rc : eg_comm_world_agree(record_provenance(r, o, err), err);
}

/* ---- step 4: train ---- */

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

/* what runs, where, for how long */
static void announce(const runctx *r, const eg_run_opts *o)
{
    const eg_spec *s = &r->spec;
    int P = eg_comm_size(r->comm), rank = r->rank;
    info(o, rank, "expgraph %s: %s: %d nodes on %d rank%s x %d thread%s, graph %s, %s, %s",
         EG_VERSION, s->name, s->nodes, P, P > 1 ? "s" : "", r->nthreads,
         r->nthreads > 1 ? "s" : "", eg_graph_kinds[s->graph.kind].name,
         eg_algo_kinds[s->algo.kind].name, eg_model_describe(r->model));
    if (eg_algo_shared(r->algo) && s->norm_stats_gossip && eg_algo_nstats(r->algo) > 0)
        info(o, rank, "note: psgd uses no graph, so model.norm_stats: gossip is ignored (each node "
                      "keeps its own running statistics)");
    if (eg_algo_shared(r->algo) && s->init_independent)
        info(o, rank, "note: psgd trains one shared model, so model.init: independent is ignored "
                      "(every node starts from node 0's draw)");
    info(o, rank, "data: %s; partition %s, label skew %.3f (0 = every node sees the global label mix)",
         r->data.desc, eg_partition_kinds[s->data.partition].name, eg_partition_skew(&r->part));
    info(o, rank, "data held: rank 0 %d of %d training samples, %.1f MB with the test set%s; "
         "the fullest rank %ld samples, %.1f MB", r->data.n_held, r->data.n_train,
         (double)eg_data_bytes(&r->data) / 1e6,
         s->data.cache == EG_CACHE_STREAM ? " (streamed: files decoded per batch)" : "",
         r->data_held_max, (double)r->data_bytes_max / 1e6);
    if (r->micro_team > 1)
        info(o, rank, "threads: 1 node at a time x %d threads (micro-batches of %d: %d per node)",
             r->micro_team, s->train.micro_batch, r->micro_m);
    else
        info(o, rank, "threads: %d node%s at a time x 1 thread%s%s",
             r->nlocal < r->nthreads ? r->nlocal : r->nthreads,
             (r->nlocal < r->nthreads ? r->nlocal : r->nthreads) > 1 ? "s" : "",
             r->micro_m ? " (each node's batch in micro-batches of train.micro_batch)" : "",
             r->nlocal < r->nthreads ? "; spare threads idle: the batch fits one micro-batch"
                                     : "");
    info(o, rank, "%ld iterations (%.0f per epoch, batch %d per node) -> %s%s", r->total_iters,
         r->iters_per_epoch, s->data.batch_size, r->out, r->start_iter ? " (resumed)" : "");
}

/* every local node's gradient at its minibatch, and its part of the update */
/* one node's gradient from the minibatch in thread tid's buffers: whole, or in micro-batches
 * (team: threads sharing them; set: whose works and scratch) */
static float node_loss_grad(runctx *r, int li, int tid, int team, int set, float *g)
{
    const int B = r->spec.data.batch_size;
    const float *x = eg_algo_node_x(r->algo, li);
    float *st = eg_algo_node_stats(r->algo, li);
    if (!r->micro_m)
        return eg_model_loss_grad(r->model, r->work[tid], x, st, r->xb[tid], r->yb[tid], B, g);
    return eg_model_loss_grad_micro(r->model, r->mwork + (size_t)set * r->micro_m, team, x, st,
                                    r->xb[tid], r->yb[tid], B, r->spec.train.micro_batch, g,
                                    r->gbuf[set]);
}

/* one node's iteration: its minibatch (drawn even when the node is absent, so the streams
 * stay aligned), its gradient (team threads sharing its micro-batches; tid's buffers) and the
 * algorithm's per-node work (weight decay, momentum, the vector to send) while the gradient
 * is still in cache */
static void node_step(runctx *r, long k, double lr, int li, int tid, int team)
{
    const int B = r->spec.data.batch_size;
    int32_t idx[B];
    eg_sampler_next(r->sampler, li, B, idx);
    eg_data_fill_batch(&r->data, idx, B, r->spec.data.augment, eg_sampler_aug_rng(r->sampler, li),
                       r->xb[tid], r->yb[tid]);
    if (eg_algo_node_absent(r->algo, li))
        return; /* computes nothing */
    float *g = eg_algo_grad(r->algo, li, tid);
    float loss = node_loss_grad(r, li, tid, team, tid, g);
    eg_algo_node_update(r->algo, li, tid, lr);
    eg_measure_add_loss(r->metrics, li, k, loss);
}

static void compute_grads(runctx *r, long k, double lr)
{
    if (r->micro_team > 1) { /* fewer nodes than threads: every thread on each node in turn */
        for (int li = 0; li < r->nlocal; li++)
            node_step(r, k, lr, li, 0, r->micro_team);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int li = 0; li < r->nlocal; li++)
        node_step(r, k, lr, li, omp_get_thread_num(), 1);
}

/* The ranks agree on stopping (a signal reaches them at different iterations), but not in
 * every iteration: that would be a global synchronisation in every step of a sparse graph
 * (and Open MPI allocates in each small all-reduce). Rank 0 proposes the next check ~0.1 s
 * of iterations ahead; a signal is acted on within that. */
typedef struct stop_agreement {
    long next_check, iter_check;
    double t_check;
} stop_agreement;

static int agree_stop(runctx *r, stop_agreement *sa, int *stop, eg_err *err)
{
    *stop = eg_run_stop_requested;
    if (eg_comm_size(r->comm) == 1)
        return EG_OK;
    *stop = 0;
    long it = r->ctr.iter;
    if (it < sa->next_check)
        return EG_OK;
    double now = eg_now();
    long every = 0;
    if (r->rank == 0) {
        double per = (now - sa->t_check) / (double)(it - sa->iter_check);
        every = per > 0 ? (long)(0.1 / per) : 1000;
        every = every < 1 ? 1 : every > 1000 ? 1000 : every;
    }
    long sv[2] = {eg_run_stop_requested, every};
    int rc = eg_comm_max_longs(r->comm, sv, 2, err);
    *stop = (int)sv[0];
    sa->next_check = it + sv[1];
    sa->t_check = now;
    sa->iter_check = it;
    return rc;
}

/* the metrics.csv row of the current iteration (columns: schema.h) */
static eg_schema_row schema_row(const runctx *r, const eg_measure_vals *v, double lr)
{
    eg_schema_row row = {
        .iter = (double)r->ctr.iter, .epoch = (double)r->ctr.iter / r->iters_per_epoch,
        .time_s = r->ctr.train_time, .lr = lr, .train_loss = v->train_loss,
        .test_loss = v->test_loss, .test_acc = v->test_acc, .consensus = v->consensus,
        .bytes_sent = r->ctr.bytes_sent, .bytes_inter = r->ctr.bytes_inter,
        .node_acc_mean = v->node_acc, .msgs_lost = eg_algo_msgs_lost(r->algo),
        .val_loss = v->val_loss, .val_acc = v->val_acc,
        .evaluated = v->evaluated,
        .cluster = (r->tmodel ? EG_COL_CLUSTER : 0) |
                   (r->spec.data.val_fraction > 0 ? EG_COL_VAL : 0),
        .time_model_s = r->tmodel ? eg_tmodel_time(r->tmodel) : 0.0};
    return row;
}

/* a metrics row every log_every iterations and at the end (test metrics every eval_every) */
static int log_row(runctx *r, double lr, int last, eg_err *err)
{
    const eg_train_spec *t = &r->spec.train;
    long it = r->ctr.iter;
    if (!last && it % t->log_every != 0)
        return EG_OK;
    int rc = eg_measure_check_divergence(r->metrics, err);
    if (rc)
        return rc;
    int ev = last || t->eval_every == 0 || it % t->eval_every == 0;
    if ((rc = eg_measure_row(r->metrics, r->algo, ev, &r->last, err)))
        return rc;
    if (r->tmodel && !(eg_tmodel_speed(r->tmodel) > 0)) {
        /* samples_per_s: measured: one node's speed so far, the slowest rank's (agreed), from
         * the gradient computation only: the model adds the exchange itself (train_time
         * holds it too, and would count the network twice). Without the invocation's first
         * iteration (one-time costs: oneDNN primitives, first touches; 100x a later one)
         * unless it is the only one. No gradients (gossip): 1e30 */
        long n = it - r->start_iter - 1;
        double tmax = eg_comm_world_max(n > 0 ? r->grad_time : r->grad_first);
        eg_tmodel_set_speed(r->tmodel, tmax > 0 ? (double)(n > 0 ? n : 1) *
                                                      r->spec.data.batch_size / tmax
                                                : 1e30);
    }
    if (r->tmodel)
        eg_tmodel_advance(r->tmodel, r->topo, it); /* the iterations before the speed was known */
    eg_schema_row row = schema_row(r, &r->last, lr);
    rc = eg_comm_world_agree(eg_measure_write_row(r->metrics, &row, err), err);
    if (!rc && r->last.evaluated)
        r->last_acc = r->last.test_acc;
    return rc;
}

static void report_progress(const runctx *r, const eg_run_opts *o)
{
    if (!o->progress || r->rank != 0)
        return;
    /* a row logged by this invocation yet (log_row: every log_every iterations, the last) */
    const long le = r->spec.train.log_every;
    int rowed = r->ctr.iter == r->total_iters || (le > 0 && r->ctr.iter / le > r->start_iter / le);
    eg_progress p = {r->ctr.iter, r->total_iters, r->ctr.iter / r->iters_per_epoch,
                     rowed ? r->last.train_loss : NAN, r->last_acc > 0 ? r->last_acc : -1,
                     r->ctr.train_time};
    o->progress(o->ud, &p);
}

/* Fault injection (documented in the README, used by the resume tests): EXPGRAPH_KILL_AT=N
 * makes rank EXPGRAPH_KILL_RANK (default 0) SIGKILL itself after iteration N. */
typedef struct fault {
    long kill_at, kill_rank;
} fault;

static fault fault_from_env(void)
{
    fault f = {-1, 0};
    const char *ka = getenv("EXPGRAPH_KILL_AT"), *kr = getenv("EXPGRAPH_KILL_RANK");
    if (ka && eg_parse_long(ka, &f.kill_at))
        f.kill_at = -1;
    if (kr && eg_parse_long(kr, &f.kill_rank))
        f.kill_rank = 0;
    return f;
}

/* one iteration: gradients and local updates, the exchange */
static int step(runctx *r, double lr, eg_err *err)
{
    long k = r->ctr.iter;
    double t0 = eg_now();
    if (eg_algo_needs_grad(r->algo)) {
        compute_grads(r, k, lr);
        *(k == r->start_iter ? &r->grad_first : &r->grad_time) += eg_now() - t0;
        int rc = eg_data_error(&r->data, err); /* a streamed file that failed: nothing written */
        if (rc)
            return rc;
    }
    const eg_wmat *W = eg_topo_weights(r->topo, eg_algo_round(r->algo, k));
    double sent0 = r->ctr.bytes_sent;
    int rc = eg_algo_exchange(r->algo, r->comm, W, lr, &r->ctr.bytes_sent, err);
    r->ctr.bytes_inter += eg_algo_inter_bytes(r->algo, W, r->ctr.bytes_sent - sent0);
    r->ctr.iter++;
    eg_measure_end_iter(r->metrics);
    r->ctr.train_time += eg_now() - t0;
    if (r->tmodel) /* T(k) -> T(k + 1); W is no longer needed */
        eg_tmodel_advance(r->tmodel, r->topo, r->ctr.iter);
    return rc;
}

/* the training loop; *stopped when a signal ended it (after a checkpoint) */
static int train(runctx *r, const eg_run_opts *o, int *stopped, eg_err *err)
{
    const long ck_every = r->spec.train.checkpoint_every;
    const fault f = fault_from_env();
    stop_agreement sa = {r->ctr.iter + 1, r->ctr.iter, eg_now()};
    int rc = EG_OK;
    *stopped = 0;
    eg_run_training = 1;
    while (r->ctr.iter < r->total_iters) {
        double lr = eg_sched_lr(&r->sched, r->ctr.iter);
        int stop, last;
        if ((rc = step(r, lr, err)))
            break;
        last = r->ctr.iter == r->total_iters;
        if ((rc = agree_stop(r, &sa, &stop, err)) || (rc = log_row(r, lr, last, err)))
            break;
        report_progress(r, o);
        if (last || stop || (ck_every > 0 && r->ctr.iter % ck_every == 0)) {
            eg_ckpt_state cs = ckpt_state(r);
            if ((rc = eg_ckpt_save(r->out, r->comm, &cs, err)))
                break;
        }
        if (stop && !last) {
            *stopped = 1;
            break;
        }
        if (r->ctr.iter == f.kill_at && r->rank == f.kill_rank)
            raise(SIGKILL);
    }
    eg_run_training = 0;
    return rc;
}

/* ---- step 5: finish ---- */

static int write_summary(runctx *r, double wall, eg_err *err)
{
    const eg_spec *s = &r->spec;
    double samples = (double)r->ctr.iter * s->nodes * s->data.batch_size;
    eg_summary_src src = {
        .spec = s, .final = schema_row(r, &r->last, 0), .label_skew = eg_partition_skew(&r->part),
        .train_time_s = r->ctr.train_time, .wall_s = wall,
        .samples_per_s = r->ctr.train_time > 0 ? samples / r->ctr.train_time : 0.0,
        .ranks = eg_comm_size(r->comm), .threads = r->nthreads,
        .data_samples_max = r->data_held_max, .data_bytes_max = (double)r->data_bytes_max};
    eg_prov_summary ps = eg_prov_run_summary(r->prov);
    src.expgraph_version = ps.version;
    src.commit = ps.commit;
    src.dnnl_isa = ps.dnnl_isa;
    src.cpu = ps.cpu;
    src.hosts = ps.hosts;
    char *text = eg_schema_summary_text(&src, err), path[EG_PATH_MAX + 32];
    if (!text)
        return EG_ERUN;
    snprintf(path, sizeof path, "%s/summary.csv", r->out);
    int rc = eg_write_text_atomic(path, "", 0, text, err);
    free(text);
    return rc;
}

static int finish(runctx *r, const eg_run_opts *o, int stopped, double wall0, eg_err *err)
{
    const eg_spec *s = &r->spec;
    if (stopped) {
        info(o, r->rank, "interrupted at iteration %ld: checkpoint saved; continue with --resume",
             r->ctr.iter);
        return eg_err_set(err, EG_EINTR, "interrupted at iteration %ld; checkpoint saved in %s "
                          "(continue with: expgraph run ... --resume)", r->ctr.iter, r->out);
    }
    int rc = eg_measure_close_csv(r->metrics, err);
    double wall = eg_comm_world_max(eg_now() - wall0);
    if (!rc && r->rank == 0)
        rc = write_summary(r, wall, err);
    const eg_measure_vals *v = &r->last;
    double t = r->ctr.train_time;
    if (!rc)
        info(o, r->rank, "done: %ld iterations in %.1f s (%.0f samples/s), test_acc %.4f, "
             "test_loss %.4f, consensus %.3g, bytes_sent %.3g; wrote %s/metrics.csv",
             r->ctr.iter, t, t > 0 ? (double)r->ctr.iter * s->nodes * s->data.batch_size / t : 0,
             v->test_acc, v->test_loss, v->consensus, r->ctr.bytes_sent, r->out);
    return rc;
}

/* ---- the run ---- */

int eg_run(const eg_run_opts *o, eg_err *err)
{
    runctx R;
    memset(&R, 0, sizeof R);
    runctx *r = &R;
    double wall0 = eg_now();
    int stopped = 0;
    int rc = check_inputs(r, o, err);
    if (!rc)
        rc = claim_output(r, o, err);
    if (!rc && !o->validate_only) {
        if (!(rc = set_up(r, o, err))) {
            announce(r, o);
            rc = train(r, o, &stopped, err);
        }
        if (!rc)
            rc = finish(r, o, stopped, wall0, err);
    }
    ctx_free(r);
    return rc;
}
