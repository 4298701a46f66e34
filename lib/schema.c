/* schema.c - the columns of metrics.csv and summary.csv and their writers (see schema.h). */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "schema.h"

#include "spec.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metrics.csv ------------------------------------------------------------------ */

const eg_column eg_metrics_columns[] = {
#define COLUMN_(name, fmt, flags, title, help) {#name, fmt, flags, title, help},
    EG_METRICS_COLUMNS(COLUMN_)
#undef COLUMN_
};
const int eg_metrics_ncols = (int)(sizeof eg_metrics_columns / sizeof eg_metrics_columns[0]);

/* where each column's value sits in eg_schema_row */
static const size_t METRICS_OFFSET[] = {
#define OFFSET_(name, fmt, flags, title, help) offsetof(eg_schema_row, name),
    EG_METRICS_COLUMNS(OFFSET_)
#undef OFFSET_
};

static double row_value(const eg_schema_row *row, int col)
{
    return *(const double *)((const char *)row + METRICS_OFFSET[col]);
}

const eg_column *eg_metrics_column(const char *name)
{
    for (int i = 0; i < eg_metrics_ncols; i++)
        if (!strcmp(eg_metrics_columns[i].name, name))
            return &eg_metrics_columns[i];
    return NULL;
}

void eg_metrics_columns_text(int flags, const char *sep, char *out, size_t len)
{
    size_t o = 0;
    if (len)
        out[0] = 0;
    for (int i = 0; i < eg_metrics_ncols && o < len; i++)
        if ((eg_metrics_columns[i].flags & flags) == flags)
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? sep : "",
                                  eg_metrics_columns[i].name);
}

void eg_metrics_columns_help(FILE *f)
{
    for (int i = 0; i < eg_metrics_ncols; i++)
        fprintf(f, "  %-14s %s%s\n", eg_metrics_columns[i].name, eg_metrics_columns[i].help,
                eg_metrics_columns[i].flags & EG_COL_EVAL ? " (evaluation rows)" : "");
}

/* ---- cells ------------------------------------------------------------------------ */

/* a cell's value before formatting: text, a signed or unsigned integer, a double, or
 * nothing (an empty cell) */
typedef enum { V_EMPTY, V_TEXT, V_INT, V_UINT, V_REAL } vtype;
typedef struct cellval {
    vtype type;
    const char *s;
    long long i;
    unsigned long long u;
    double d;
} cellval;

static cellval v_text(const char *s) { return (cellval){.type = V_TEXT, .s = s}; }
static cellval v_int(long long i) { return (cellval){.type = V_INT, .i = i}; }
static cellval v_uint(unsigned long long u) { return (cellval){.type = V_UINT, .u = u}; }
static cellval v_real(double d) { return (cellval){.type = V_REAL, .d = d}; }
static cellval v_pass(cellval v) { return v; }

/* the cell value of any scalar expression */
#define CELL(e)                                                                                \
    _Generic((e),                                                                              \
        char *: v_text, const char *: v_text, int: v_int, long: v_int, long long: v_int,       \
        unsigned: v_uint, unsigned long: v_uint, unsigned long long: v_uint, float: v_real,    \
        double: v_real, cellval: v_pass)(e)

/* a value only when cond holds, else an empty cell */
static cellval when_int(int cond, long long i) { return cond ? v_int(i) : (cellval){V_EMPTY}; }
static cellval when_real(int cond, double d) { return cond ? v_real(d) : (cellval){V_EMPTY}; }
static cellval when_text(int cond, const char *t) { return cond ? v_text(t) : (cellval){V_EMPTY}; }

static double as_real(const cellval *v)
{
    return v->type == V_INT ? (double)v->i : v->type == V_UINT ? (double)v->u : v->d;
}

/* writes one cell, preceded by a comma unless it is the first of its line */
static void put_cell(FILE *f, int *first, eg_colfmt fmt, cellval v)
{
    if (!*first)
        fputc(',', f);
    *first = 0;
    if (v.type == V_EMPTY)
        return;
    if (v.type == V_TEXT) {
        eg_csv_put(f, v.s);
        return;
    }
    switch (fmt) {
    case EG_COL_INT:
        if (v.type == V_UINT)
            fprintf(f, "%llu", v.u);
        else
            fprintf(f, "%lld", v.type == V_INT ? v.i : (long long)v.d);
        break;
    case EG_COL_G9: fprintf(f, "%.9g", as_real(&v)); break;
    case EG_COL_F0: fprintf(f, "%.0f", as_real(&v)); break;
    case EG_COL_F1: fprintf(f, "%.1f", as_real(&v)); break;
    case EG_COL_F3: fprintf(f, "%.3f", as_real(&v)); break;
    case EG_COL_F6: fprintf(f, "%.6f", as_real(&v)); break;
    case EG_COL_TEXT: break; /* text values are written above */
    }
}

int eg_schema_metrics_header(FILE *f) { return eg_schema_metrics_header_cluster(f, 0); }

int eg_schema_metrics_header_cluster(FILE *f, int cluster)
{
    for (int i = 0; i < eg_metrics_ncols; i++)
        if (!(eg_metrics_columns[i].flags & (EG_COL_CLUSTER | EG_COL_VAL) & ~cluster))
            fprintf(f, "%s%s", i ? "," : "", eg_metrics_columns[i].name);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

int eg_schema_metrics_row(FILE *f, const eg_schema_row *row)
{
    int first = 1;
    for (int i = 0; i < eg_metrics_ncols; i++) {
        const eg_column *c = &eg_metrics_columns[i];
        if (c->flags & (EG_COL_CLUSTER | EG_COL_VAL) & ~row->cluster)
            continue; /* an optional column this file does not have */
        int empty = ((c->flags & EG_COL_EVAL) && !row->evaluated) ||
                    ((c->flags & EG_COL_NAN_EMPTY) && isnan(row_value(row, i)));
        put_cell(f, &first, c->fmt, empty ? (cellval){V_EMPTY} : v_real(row_value(row, i)));
    }
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}

/* ---- summary.csv ------------------------------------------------------------------ */

/* "256 128": integers joined by spaces, into buf */
static const char *ints_text(char *buf, size_t len, const int *v, int n)
{
    buf[0] = 0;
    for (int i = 0, o = 0; i < n && (size_t)o < len; i++)
        o += snprintf(buf + o, len - (size_t)o, "%s%d", i ? " " : "", v[i]);
    return buf;
}

/* "30 60 80": %g values joined by spaces, into buf */
static const char *reals_text(char *buf, size_t len, const double *v, int n)
{
    buf[0] = 0;
    for (int i = 0, o = 0; i < n && (size_t)o < len; i++)
        o += snprintf(buf + o, len - (size_t)o, "%s%g", i ? " " : "", v[i]);
    return buf;
}

/* cluster.samples_per_s as text: %.9g, "measured", or "" without cluster: */
static const char *cluster_speed_text(char *buf, size_t len, const eg_cluster_spec *c)
{
    if (!c->on)
        snprintf(buf, len, "%s", "");
    else if (c->samples_per_s > 0)
        snprintf(buf, len, "%.9g", c->samples_per_s);
    else
        snprintf(buf, len, "measured");
    return buf;
}

/* X(header, format, value): the spec keys of summary.csv, in file order. The value is an
 * expression over `const eg_spec *s` (with `char tmp[]` as scratch for list texts) of any
 * scalar type, or a cellval (when_int / when_real leave the cell empty). train.iterations
 * and train.epochs are as the spec gave them (the other one stays empty). */
#define EG_SUMMARY_SPEC_COLUMNS(X)                                                             \
    X("name", EG_COL_TEXT, s->name)                                                            \
    X("seed", EG_COL_INT, (unsigned long long)s->seed)                                         \
    X("nodes", EG_COL_INT, s->nodes)                                                           \
    X("graph", EG_COL_TEXT, eg_graph_kinds[s->graph.kind].name)                                \
    X("graph.p", EG_COL_G9, s->graph.p)                                                        \
    X("graph.peers", EG_COL_INT, when_int(eg_graph_kinds[s->graph.kind].takes_peers, s->graph.peers)) \
    X("graph.local", EG_COL_INT, when_int(eg_graph_kinds[s->graph.kind].machines, s->graph.local)) \
    X("graph.outer", EG_COL_TEXT,                                                              \
      s->graph.kind == EG_GRAPH_HIERARCHICAL ? eg_graph_kinds[s->graph.outer.kind].name : "") \
    X("algorithm", EG_COL_TEXT, eg_algo_kinds[s->algo.kind].name)                              \
    X("algorithm.momentum", EG_COL_G9, s->algo.momentum)                                       \
    X("algorithm.weight_decay", EG_COL_G9, s->algo.weight_decay)                               \
    X("algorithm.nesterov", EG_COL_TEXT, s->algo.nesterov ? "true" : "false")                  \
    X("algorithm.weight_decay_norm", EG_COL_TEXT, s->algo.weight_decay_norm ? "true" : "false") \
    X("model", EG_COL_TEXT, eg_model_kinds[s->model.kind].name)                                \
    X("model.hidden", EG_COL_TEXT, ints_text(tmp, sizeof tmp, s->model.hidden, s->model.n_hidden)) \
    X("model.channels", EG_COL_TEXT,                                                           \
      ints_text(tmp, sizeof tmp, s->model.channels, s->model.n_channels))                      \
    X("model.kernel", EG_COL_INT, s->model.kernel)                                             \
    X("model.init", EG_COL_TEXT, s->init_independent ? "independent" : "same")                 \
    X("model.depth", EG_COL_INT, when_int(s->model.depth > 0, s->model.depth))                 \
    X("model.width", EG_COL_INT, when_int(s->model.width > 0, s->model.width))                 \
    X("model.stem", EG_COL_TEXT, s->model.kind != EG_MODEL_RESNET ? ""                         \
                                 : s->model.stem == EG_STEM_IMAGENET ? "imagenet" : "cifar")   \
    X("model.zero_init_residual", EG_COL_TEXT,                                                 \
      s->model.kind != EG_MODEL_RESNET ? "" : s->model.zero_init_residual ? "true" : "false")  \
    X("model.norm", EG_COL_TEXT, eg_norm_names[s->model.norm])                                 \
    X("model.groups", EG_COL_INT, s->model.n_block_groups && s->model.groups > 0               \
      ? v_text(ints_text(tmp, sizeof tmp, s->model.block_groups, s->model.n_block_groups))    \
      : when_int(s->model.groups > 0, s->model.groups))                                       \
    X("model.norm_stats", EG_COL_TEXT, s->norm_stats_gossip ? "gossip" : "local")              \
    X("data", EG_COL_TEXT, eg_data_kinds[s->data.kind].name)                                   \
    X("data.partition", EG_COL_TEXT, eg_partition_kinds[s->data.partition].name)               \
    X("data.alpha", EG_COL_G9, s->data.alpha)                                                  \
    X("data.batch_size", EG_COL_INT, s->data.batch_size)                                       \
    X("data.heterogeneity", EG_COL_G9, s->data.heterogeneity)                                  \
    X("train.iterations", EG_COL_INT, when_int(s->train.iterations > 0, s->train.iterations))  \
    X("train.epochs", EG_COL_G9, when_real(s->train.iterations <= 0, s->train.epochs))         \
    X("train.precision", EG_COL_TEXT, eg_precision_names[s->train.precision])                  \
    X("train.micro_batch", EG_COL_INT, s->train.micro_batch)                                   \
    X("lr.base", EG_COL_G9, s->lr.base)                                                        \
    X("lr.scale", EG_COL_TEXT, s->lr.scale_linear ? "linear" : "none")                         \
    X("lr.warmup_epochs", EG_COL_G9, s->lr.warmup_epochs)                                      \
    X("lr.schedule", EG_COL_TEXT, eg_sched_kinds[s->lr.schedule].name)                         \
    X("lr.milestones", EG_COL_TEXT,                                                            \
      reals_text(tmp, sizeof tmp, s->lr.milestones, s->lr.n_milestones))                       \
    X("lr.gamma", EG_COL_G9, s->lr.gamma)                                                      \
    X("algorithm.local_steps", EG_COL_INT, s->algo.local_steps)                                \
    X("algorithm.global_every", EG_COL_INT, s->algo.global_every)                              \
    X("algorithm.compress", EG_COL_TEXT,                                                       \
      s->algo.kind == EG_ALGO_CHOCO ? eg_compress_kinds[s->algo.compress].name : "")           \
    X("network.drop", EG_COL_G9, s->network.drop)                                              \
    X("network.offline", EG_COL_G9, s->network.offline)                                        \
    X("cluster.nodes_per_host", EG_COL_INT, when_int(s->cluster.on, s->cluster.nodes_per_host)) \
    X("cluster.latency_us", EG_COL_G9, when_real(s->cluster.on, s->cluster.latency_us))        \
    X("cluster.bandwidth_gbps", EG_COL_G9, when_real(s->cluster.on, s->cluster.bandwidth_gbps)) \
    X("cluster.intra_latency_us", EG_COL_G9,                                                   \
      when_real(s->cluster.on, s->cluster.intra_latency_us))                                   \
    X("cluster.intra_bandwidth_gbps", EG_COL_G9,                                               \
      when_real(s->cluster.on, s->cluster.intra_bandwidth_gbps))                               \
    X("cluster.samples_per_s", EG_COL_TEXT, cluster_speed_text(tmp, sizeof tmp, &s->cluster))  \
    X("cluster.straggler.prob", EG_COL_G9, when_real(s->cluster.on, s->cluster.straggler_prob)) \
    X("cluster.straggler.slowdown", EG_COL_G9,                                                 \
      when_real(s->cluster.on, s->cluster.straggler_slowdown)) \
    X("model.padding", EG_COL_TEXT,                                                            \
      when_text(s->model.kind == EG_MODEL_CNN, s->model.valid ? "valid" : "same"))             \
    X("model.norm_after", EG_COL_TEXT,                                                         \
      when_text(s->model.kind == EG_MODEL_CNN && s->model.norm != EG_NORM_NONE,                \
                s->model.norm_after_pool ? "pool" : "conv"))                                   \
    X("data.val_fraction", EG_COL_G9, s->data.val_fraction)

/* X(header, format, value): the run's figures, after the final metrics; the value is an
 * expression over `const eg_summary_src *src`. */
#define EG_SUMMARY_RUN_COLUMNS(X)                                                              \
    X("label_skew", EG_COL_F6, src->label_skew)                                                \
    X("train_time_s", EG_COL_F3, src->train_time_s)                                            \
    X("wall_s", EG_COL_F3, src->wall_s)                                                        \
    X("samples_per_s", EG_COL_F1, src->samples_per_s)                                          \
    X("ranks", EG_COL_INT, src->ranks)                                                         \
    X("threads", EG_COL_INT, src->threads)                                                     \
    X("data_samples_max", EG_COL_INT, src->data_samples_max)                                   \
    X("data_bytes_max", EG_COL_F0, src->data_bytes_max)

/* X(header, format, value): where the run ran (provenance.h), the last columns (after the
 * run's figures, so that a CPU name with a comma cannot shift a naive reader's columns); the
 * value is an expression over `const eg_summary_src *src`. Tables can
 * group by them (`expgraph table --rows dnnl_isa`); run_info.yaml holds the full record. */
#define EG_SUMMARY_ENV_COLUMNS(X)                                                              \
    X("expgraph_version", EG_COL_TEXT, opt_text(src->expgraph_version))                        \
    X("commit", EG_COL_TEXT, opt_text(src->commit))                                            \
    X("dnnl_isa", EG_COL_TEXT, opt_text(src->dnnl_isa))                                        \
    X("cpu", EG_COL_TEXT, opt_text(src->cpu))                                                  \
    X("hosts", EG_COL_INT, when_int(src->hosts > 0, src->hosts))

/* a text cell, empty for NULL */
static cellval opt_text(const char *s) { return s ? v_text(s) : (cellval){V_EMPTY}; }

static const eg_column SUMMARY_SPEC[] = {
#define SPEC_COLUMN_(hdr, fmt, expr) {hdr, fmt, EG_COL_SPEC, NULL, NULL},
    EG_SUMMARY_SPEC_COLUMNS(SPEC_COLUMN_)
#undef SPEC_COLUMN_
};
static const eg_column SUMMARY_RUN[] = {
#define RUN_COLUMN_(hdr, fmt, expr) {hdr, fmt, 0, NULL, NULL},
    EG_SUMMARY_RUN_COLUMNS(RUN_COLUMN_)
#undef RUN_COLUMN_
};
static const eg_column SUMMARY_ENV[] = {
#define ENV_COLUMN_(hdr, fmt, expr) {hdr, fmt, EG_COL_ENV, NULL, NULL},
    EG_SUMMARY_ENV_COLUMNS(ENV_COLUMN_)
#undef ENV_COLUMN_
};
#define NENV ((int)(sizeof SUMMARY_ENV / sizeof SUMMARY_ENV[0]))
#define NSPEC ((int)(sizeof SUMMARY_SPEC / sizeof SUMMARY_SPEC[0]))
#define NRUN ((int)(sizeof SUMMARY_RUN / sizeof SUMMARY_RUN[0]))

static int summary_nmetrics(void)
{
    int n = 0;
    for (int i = 0; i < eg_metrics_ncols; i++)
        n += (eg_metrics_columns[i].flags & EG_COL_SUMMARY) != 0;
    return n;
}

int eg_summary_ncols(void) { return NSPEC + summary_nmetrics() + NRUN + NENV; }

const eg_column *eg_summary_column(int i)
{
    if (i < 0)
        return NULL;
    if (i < NSPEC)
        return &SUMMARY_SPEC[i];
    i -= NSPEC;
    for (int k = 0; k < eg_metrics_ncols; k++)
        if ((eg_metrics_columns[k].flags & EG_COL_SUMMARY) && i-- == 0)
            return &eg_metrics_columns[k];
    if (i < NRUN)
        return &SUMMARY_RUN[i];
    i -= NRUN;
    return i < NENV ? &SUMMARY_ENV[i] : NULL;
}

int eg_summary_is_spec_key(const char *header)
{
    size_t l = strcspn(header, ".");
    for (int i = 0; i < NSPEC; i++) {
        const char *k = SUMMARY_SPEC[i].name;
        if (strcspn(k, ".") == l && !strncmp(k, header, l))
            return 1;
    }
    return 0;
}

int eg_summary_is_env_key(const char *header)
{
    for (int i = 0; i < NENV; i++)
        if (!strcmp(SUMMARY_ENV[i].name, header))
            return 1;
    return 0;
}

static void summary_row(FILE *f, const eg_summary_src *src)
{
    const eg_spec *s = src->spec;
    char tmp[512];
    int first = 1;
#define PUT_(hdr, fmt, expr) put_cell(f, &first, fmt, CELL(expr));
    EG_SUMMARY_SPEC_COLUMNS(PUT_)
    for (int i = 0; i < eg_metrics_ncols; i++)
        if (eg_metrics_columns[i].flags & EG_COL_SUMMARY)
            put_cell(f, &first, eg_metrics_columns[i].fmt, v_real(row_value(&src->final, i)));
    EG_SUMMARY_RUN_COLUMNS(PUT_)
    EG_SUMMARY_ENV_COLUMNS(PUT_)
#undef PUT_
    fputc('\n', f);
}

char *eg_schema_summary_text(const eg_summary_src *src, eg_err *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        eg_err_set(err, EG_ERUN, "out of memory");
        return NULL;
    }
    for (int i = 0, n = eg_summary_ncols(); i < n; i++)
        fprintf(f, "%s%s", i ? "," : "", eg_summary_column(i)->name);
    fputc('\n', f);
    summary_row(f, src);
    int bad = ferror(f) != 0;
    if (fclose(f) || bad) {
        free(text);
        eg_err_set(err, EG_ERUN, "out of memory");
        return NULL;
    }
    return text;
}
