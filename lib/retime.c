/* retime.c - a run directory's time_model_s on another cluster (retime.h holds the contract). */
#include "retime.h"

#include "data.h"
#include "model.h"
#include "spec.h"
#include "topology.h"
#include "yamltree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What the model needs from a dataset: the sample shape, the classes, and the number of
 * training samples the nodes' shards hold (run.c: the partition's offset[nodes] after the
 * validation hold-out), from which the iterations per epoch follow. */
typedef struct data_facts {
    eg_data_spec spec; /* the key: the data section ... */
    int nodes;         /* ... the node count and the seed */
    uint64_t seed;
    eg_shape shape;
    int classes;
    long total;
} data_facts;

struct eg_retime {
    char file[EG_PATH_MAX];
    eg_cluster_spec cl;
    /* the datasets and models met so far (a sweep has few): read once each */
    data_facts *df;
    int ndf;
    struct model_facts {
        eg_model_spec spec;
        eg_shape shape;
        int classes;
        size_t nparams, nstats;
    } *mf;
    int nmf;
};

/* FILE:LINE:COL of cluster.samples_per_s in file, for the message refusing `measured` */
static void speed_where(const char *file, char *out, size_t len)
{
    eg_err e = {0};
    eg_ynode *root = eg_yaml_parse_file(file, &e);
    const eg_ynode *n = root && root->kind == EG_Y_MAP ? eg_ymap_get(root, "cluster", NULL) : NULL;
    if (root && !n)
        n = root;
    const eg_ynode *v = n && n->kind == EG_Y_MAP ? eg_ymap_get(n, "samples_per_s", NULL) : NULL;
    if (v)
        snprintf(out, len, "%s:%d:%d", file, v->line, v->col);
    else
        snprintf(out, len, "%s", file);
    eg_ynode_free(root);
}

int eg_retime_init(eg_retime **out, const char *file, eg_err *err)
{
    *out = NULL;
    eg_cluster_spec cl;
    FILE *f = fopen(file, "r");
    if (!f)
        return eg_err_set(err, EG_EINPUT, "%s: cannot open the cluster file: %s", file,
                          strerror(errno));
    fclose(f);
    int rc = eg_spec_cluster_from_file(file, &cl, err);
    if (rc) {
        /* a file that is not about a cluster at all: say so beside the key's message */
        eg_err e = {0};
        eg_ynode *root = eg_yaml_parse_file(file, &e);
        static const char *const keys[] = {"cluster", "latency_us", "bandwidth_gbps",
                                           "samples_per_s", "nodes_per_host", NULL};
        int about = 0;
        for (int i = 0; root && root->kind == EG_Y_MAP && keys[i]; i++)
            about |= eg_ymap_get(root, keys[i], NULL) != NULL;
        if (root && !about) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            eg_err_set(err, rc, "%s (%s holds no cluster: mapping; give a file with one, as in "
                       "a spec, or the bare mapping)", msg, file);
        }
        eg_ynode_free(root);
        return rc;
    }
    if (!(cl.samples_per_s > 0)) {
        char where[EG_PATH_MAX + 64];
        speed_where(file, where, sizeof where);
        return eg_err_set(err, EG_EINPUT,
                          "%s: cluster.samples_per_s: measured cannot be used with --cluster: a "
                          "run measured its speed on the slowest rank's clock at its first "
                          "metrics row, which its files do not keep exactly; give a number (one "
                          "node's samples per second)",
                          where);
    }
    eg_retime *rt = eg_calloc(1, sizeof *rt, err);
    if (!rt)
        return EG_ERUN;
    snprintf(rt->file, sizeof rt->file, "%s", file);
    rt->cl = cl;
    *out = rt;
    return EG_OK;
}

void eg_retime_free(eg_retime *rt)
{
    if (!rt)
        return;
    free(rt->df);
    free(rt->mf);
    free(rt);
}

const eg_cluster_spec *eg_retime_cluster(const eg_retime *rt) { return &rt->cl; }

/* the dataset facts of spec s: from the cache, or read (eg_data_open, eg_partition_make and
 * the hold-out, as run.c's load_data; the training pixels are not read) */
static int data_of(eg_retime *rt, const eg_spec *s, const data_facts **out, eg_err *err)
{
    /* synthetic data is generated from the node count and the seed; the partition uses both */
    data_facts key;
    memset(&key, 0, sizeof key);
    key.spec = s->data;
    key.nodes = s->nodes;
    key.seed = s->seed;
    for (int i = 0; i < rt->ndf; i++)
        if (!memcmp(&rt->df[i].spec, &key.spec, sizeof key.spec) && rt->df[i].nodes == key.nodes &&
            rt->df[i].seed == key.seed) {
            *out = &rt->df[i];
            return EG_OK;
        }
    eg_dataset d;
    eg_partition part, val;
    memset(&part, 0, sizeof part);
    memset(&val, 0, sizeof val);
    char where[EG_PATH_MAX + 64];
    const char *at = "data";
    int rc = eg_data_open(&d, &s->data, s->nodes, s->seed, err);
    if (!rc && (rc = eg_partition_make(&part, &d, &s->data, s->nodes, s->seed, err)))
        at = "data.partition";
    if (!rc && s->data.val_fraction > 0 &&
        (rc = eg_partition_hold_out(&part, &val, d.y_train, s->data.val_fraction,
                                    s->data.batch_size, s->seed, err)))
        at = "data.val_fraction";
    if (!rc) {
        key.shape = d.shape;
        key.classes = d.classes;
        key.total = part.offset[s->nodes];
    }
    eg_partition_free(&val);
    eg_partition_free(&part);
    eg_data_free(&d);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_spec_where(s, at, where, sizeof where);
        return eg_err_set(err, rc, "%s: %s", where, msg);
    }
    data_facts *nd = realloc(rt->df, sizeof *nd * (size_t)(rt->ndf + 1));
    if (!nd)
        return eg_err_set(err, EG_ERUN, "out of memory");
    rt->df = nd;
    rt->df[rt->ndf] = key;
    *out = &rt->df[rt->ndf++];
    return EG_OK;
}

/* the model's parameter count and running statistics, from the cache or built */
static int model_of(eg_retime *rt, const eg_spec *s, const data_facts *df, size_t *nparams,
                    size_t *nstats, eg_err *err)
{
    struct model_facts key;
    memset(&key, 0, sizeof key);
    key.spec = s->model;
    key.shape = df->shape;
    key.classes = df->classes;
    for (int i = 0; i < rt->nmf; i++)
        if (!memcmp(&rt->mf[i].spec, &key.spec, sizeof key.spec) &&
            !memcmp(&rt->mf[i].shape, &key.shape, sizeof key.shape) &&
            rt->mf[i].classes == key.classes) {
            *nparams = rt->mf[i].nparams;
            *nstats = rt->mf[i].nstats;
            return EG_OK;
        }
    eg_model *m;
    int rc = eg_model_init(&m, &s->model, df->shape, df->classes, err);
    if (rc) {
        char where[EG_PATH_MAX + 64], msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_spec_where(s, "model", where, sizeof where);
        return eg_err_set(err, rc, "%s: %s", where, msg);
    }
    key.nparams = eg_model_nparams(m);
    key.nstats = eg_model_nstats(m);
    eg_model_free(m);
    struct model_facts *nm = realloc(rt->mf, sizeof *nm * (size_t)(rt->nmf + 1));
    if (!nm)
        return eg_err_set(err, EG_ERUN, "out of memory");
    rt->mf = nm;
    rt->mf[rt->nmf++] = key;
    *nparams = key.nparams;
    *nstats = key.nstats;
    return EG_OK;
}

/* the value as metrics.csv holds it: written with %.9g, read back */
static double as_written(double v)
{
    char b[64];
    double r;
    snprintf(b, sizeof b, "%.9g", v);
    return eg_parse_double(b, &r) ? v : r;
}

/* the modelled time at each row's iteration into t[nrows] */
static int model_rows(const eg_tmodel_cfg *cfg, eg_topo *topo, const eg_metrics *m, int icol,
                      double *t, const char *mpath, eg_err *err)
{
    eg_tmodel *tm = NULL;
    int rc = EG_OK;
    for (long r = 0; !rc && r < m->nrows; r++) {
        double it = m->val[(size_t)r * (size_t)m->ncols + (size_t)icol];
        if (!m->has[(size_t)r * (size_t)m->ncols + (size_t)icol] || !(it >= 0) || it != floor(it)) {
            rc = eg_err_set(err, EG_EINPUT, "%s: data row %ld has no whole iter value", mpath,
                            r + 1);
            break;
        }
        if (tm && eg_tmodel_iter(tm) > (long)it) { /* rows out of order: start again */
            eg_tmodel_free(tm);
            tm = NULL;
        }
        if (!tm && (rc = eg_tmodel_init(&tm, cfg, err)))
            break;
        eg_tmodel_advance(tm, topo, (long)it);
        t[r] = as_written(eg_tmodel_time(tm));
    }
    eg_tmodel_free(tm);
    return rc;
}

/* puts the column name with values t (every row non-empty) into m: replaced, or added */
static int put_column(eg_metrics *m, const char *name, const double *t, eg_err *err)
{
    int c = eg_metrics_col(m, name);
    if (c < 0) { /* a new last column: the rows laid out again */
        size_t nc = (size_t)m->ncols + 1, nr = (size_t)m->nrows;
        char **cols = realloc(m->cols, sizeof *cols * nc);
        if (cols)
            m->cols = cols;
        char *cname = cols ? malloc(strlen(name) + 1) : NULL;
        double *val = cname ? malloc(sizeof *val * (nr ? nr * nc : 1)) : NULL;
        unsigned char *has = val ? malloc(nr ? nr * nc : 1) : NULL;
        if (!has) {
            free(cname);
            free(val);
            return eg_err_set(err, EG_ERUN, "out of memory");
        }
        strcpy(cname, name);
        for (size_t r = 0; r < nr; r++) {
            memcpy(val + r * nc, m->val + r * (nc - 1), sizeof *val * (nc - 1));
            memcpy(has + r * nc, m->has + r * (nc - 1), nc - 1);
        }
        free(m->val);
        free(m->has);
        m->val = val;
        m->has = has;
        m->cols[nc - 1] = cname;
        m->ncols = (int)nc;
        c = (int)nc - 1;
    }
    for (long r = 0; r < m->nrows; r++) {
        m->val[(size_t)r * (size_t)m->ncols + (size_t)c] = t[r];
        m->has[(size_t)r * (size_t)m->ncols + (size_t)c] = 1;
    }
    return EG_OK;
}

/* the run's cluster.* keys as summary.csv writes them (schema.c) */
static int set_cluster_keys(eg_rundir *r, const eg_cluster_spec *cl)
{
    char b[64];
    int rc = EG_OK;
#define KEY_G9(k, v) (snprintf(b, sizeof b, "%.9g", (v)), eg_rundir_set_key(r, k, b))
    snprintf(b, sizeof b, "%d", cl->nodes_per_host);
    rc = eg_rundir_set_key(r, "cluster.nodes_per_host", b);
    if (!rc)
        rc = KEY_G9("cluster.latency_us", cl->latency_us);
    if (!rc)
        rc = KEY_G9("cluster.bandwidth_gbps", cl->bandwidth_gbps);
    if (!rc)
        rc = KEY_G9("cluster.intra_latency_us", cl->intra_latency_us);
    if (!rc)
        rc = KEY_G9("cluster.intra_bandwidth_gbps", cl->intra_bandwidth_gbps);
    if (!rc)
        rc = KEY_G9("cluster.samples_per_s", cl->samples_per_s);
    if (!rc)
        rc = KEY_G9("cluster.straggler.prob", cl->straggler_prob);
    if (!rc)
        rc = KEY_G9("cluster.straggler.slowdown", cl->straggler_slowdown);
#undef KEY_G9
    return rc;
}

int eg_retime_rundir(eg_retime *rt, eg_rundir *r, eg_err *err)
{
    char path[EG_PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/spec.yaml", r->dir);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s: no such file; --cluster recomputes time_model_s from the run's "
                          "own spec.yaml (written by expgraph run), which this run directory "
                          "lacks",
                          path);
    int icol = eg_metrics_col(&r->metrics, "iter");
    if (icol < 0)
        return eg_err_set(err, EG_EINPUT, "%s: no iter column", r->metrics.path);
    eg_spec s;
    eg_topo *topo = NULL;
    double *t = NULL;
    const data_facts *df = NULL;
    size_t nparams = 0, nstats = 0;
    int rc = eg_spec_load(&s, path, NULL, 0, err);
    if (!rc)
        rc = data_of(rt, &s, &df, err);
    if (rc == EG_EINPUT) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        eg_err_set(err, rc, "%s (--cluster reads the run's spec and data as expgraph run does, "
                   "with paths relative to the working directory)", msg);
    }
    if (!rc)
        rc = model_of(rt, &s, df, &nparams, &nstats, err);
    if (!rc && !(t = malloc(sizeof *t * (size_t)(r->metrics.nrows ? r->metrics.nrows : 1))))
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    if (!rc) {
        /* the graph as the run built it: by epochs with the run's iterations per epoch */
        topo = eg_spec_take_topo(&s);
        double ipe = (double)(df->total / ((long)s.nodes * s.data.batch_size));
        eg_topo_set_iters_per_epoch(topo, ipe < 1 ? 1 : ipe);
        s.cluster = rt->cl;
        eg_tmodel_cfg cfg;
        eg_tmodel_cfg_from_spec(&cfg, &s, nparams, nstats);
        rc = model_rows(&cfg, topo, &r->metrics, icol, t, r->metrics.path, err);
    }
    if (!rc)
        rc = put_column(&r->metrics, "time_model_s", t, err);
    if (!rc && set_cluster_keys(r, &rt->cl))
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    free(t);
    eg_topo_free(topo);
    eg_spec_free(&s);
    return rc;
}

int eg_retime_runset(eg_retime *rt, eg_runset *rs, eg_err *err)
{
    for (int i = 0; i < rs->n; i++) {
        int rc = eg_retime_rundir(rt, &rs->runs[i], err);
        if (rc)
            return rc;
    }
    return EG_OK;
}
