/* schema.h - the columns of metrics.csv and summary.csv (docs/spec.md#metricscsv), defined once.
 *
 * The writer (run.c), the readers (results.c: eg_metrics_read checks the required columns,
 * the summary reader tells spec keys from results), `expgraph table` and `expgraph plot`
 * (column lists, axis titles) and the help texts all take the column names, their order
 * and each column's formatting from the tables here, so a header and its values cannot
 * drift apart. Text cells are quoted as RFC 4180 says (eg_csv_put).
 *
 * HOW TO ADD A COLUMN (one line each):
 *  - metrics.csv: a line X(name, format, flags, axis title, help) in EG_METRICS_COLUMNS
 *    below. It becomes a field `double name` of eg_schema_row, a header name and a
 *    formatted cell; set row.name where the row is filled (run.c). Flag EG_COL_SUMMARY
 *    also puts its final value into summary.csv (after node_acc_mean, before label_skew).
 *  - summary.csv, a spec key such as model.depth: a line X("model.depth", format,
 *    expression over the eg_spec *s) in EG_SUMMARY_SPEC_COLUMNS (schema.c). A run figure:
 *    a field in eg_summary_src and a line in EG_SUMMARY_RUN_COLUMNS (schema.c). A fact of the
 *    build or machine (provenance.h): a line in EG_SUMMARY_ENV_COLUMNS (schema.c); those come
 *    last in summary.csv.
 * New columns go at the end of their list: readers find columns by name, and the first
 * metrics columns are fixed (docs/spec.md#metricscsv; EG_COL_REQUIRED).
 */
#ifndef EG_SCHEMA_H
#define EG_SCHEMA_H

#include "common.h"

struct eg_spec;

/* how a cell is written */
typedef enum {
    EG_COL_TEXT, /* a string (quoted when it holds , " CR or LF) */
    EG_COL_INT,  /* an integer */
    EG_COL_G9,   /* %.9g */
    EG_COL_F0,   /* %.0f */
    EG_COL_F1,   /* %.1f */
    EG_COL_F3,   /* %.3f */
    EG_COL_F6    /* %.6f */
} eg_colfmt;

/* column flags */
enum {
    EG_COL_REQUIRED = 1, /* metrics.csv: among the first columns every reader requires */
    EG_COL_EVAL = 2,     /* metrics.csv: empty in rows without an evaluation */
    EG_COL_SUMMARY = 4,  /* metrics.csv: its final value is also a summary.csv column */
    EG_COL_SPEC = 8,     /* summary.csv: a spec key (dotted path), not a result */
    EG_COL_CLUSTER = 16, /* metrics.csv: written only when the spec has cluster: (the
                            files of runs without one keep their columns, byte for byte) */
    EG_COL_NAN_EMPTY = 32, /* metrics.csv: empty where the value is NaN (val_* without a
                             validation split) */
    EG_COL_VAL = 128,      /* metrics.csv: written only when the spec holds data out for
                              validation (data.val_fraction > 0); like EG_COL_CLUSTER */
    EG_COL_ENV = 64      /* summary.csv: where the run ran (build, kernels, CPU; provenance.h):
                            a table key, but runs differing only in it are one experiment */
};

/* X(name, format, flags, axis title, help) - the columns of metrics.csv, in file order. */
#define EG_METRICS_COLUMNS(X)                                                                  \
    X(iter, EG_COL_INT, EG_COL_REQUIRED | EG_COL_SUMMARY, "iteration", "iterations done")      \
    X(epoch, EG_COL_F6, EG_COL_REQUIRED | EG_COL_SUMMARY, "epoch",                             \
      "iter / iterations per epoch (fractional)")                                              \
    X(time_s, EG_COL_F3, EG_COL_REQUIRED, "training time (s)",                                 \
      "wall seconds of training so far, evaluation excluded")                                  \
    X(lr, EG_COL_G9, EG_COL_REQUIRED, "learning rate", "learning rate of the last iteration")  \
    X(train_loss, EG_COL_G9, EG_COL_REQUIRED | EG_COL_SUMMARY, "training loss",                \
      "mean minibatch loss over nodes and iterations since the last row")                      \
    X(test_loss, EG_COL_G9, EG_COL_REQUIRED | EG_COL_EVAL | EG_COL_SUMMARY, "test loss",       \
      "test loss of the averaged model x_bar")                                                 \
    X(test_acc, EG_COL_G9, EG_COL_REQUIRED | EG_COL_EVAL | EG_COL_SUMMARY, "test accuracy",    \
      "test accuracy of x_bar, a fraction in [0, 1]")                                          \
    X(consensus, EG_COL_G9, EG_COL_REQUIRED | EG_COL_EVAL | EG_COL_SUMMARY,                    \
      "consensus distance", "(1/n) sum_i ||x_i - x_bar||^2")                                   \
    X(bytes_sent, EG_COL_F0, EG_COL_REQUIRED | EG_COL_SUMMARY, "bytes sent",                   \
      "cumulative bytes sent between distinct nodes (choco: each payload once per subscriber)") \
    X(node_acc_mean, EG_COL_G9, EG_COL_EVAL | EG_COL_SUMMARY, "mean node test accuracy",       \
      "mean over nodes of each node's own model's test accuracy")                             \
    X(bytes_inter, EG_COL_F0, EG_COL_SUMMARY, "bytes between machines",                        \
      "cumulative bytes between different machines (= bytes_sent without machines)")         \
    X(msgs_lost, EG_COL_F0, EG_COL_SUMMARY, "messages lost",                                   \
      "cumulative messages lost by the network (network.drop, network.offline)")           \
    X(time_model_s, EG_COL_G9, EG_COL_CLUSTER, "modelled time (s)",                             \
      "modelled wall-clock seconds on the spec's cluster: (docs/timemodel.md); only with cluster:") \
    X(val_loss, EG_COL_G9, EG_COL_EVAL | EG_COL_NAN_EMPTY | EG_COL_VAL, "validation loss",                 \
      "loss of x_bar on the held-out samples (only with data.val_fraction > 0)")             \
    X(val_acc, EG_COL_G9, EG_COL_EVAL | EG_COL_NAN_EMPTY | EG_COL_VAL, "validation accuracy",              \
      "accuracy of x_bar on the held-out samples (only with data.val_fraction > 0)")

/* The values of one metrics.csv row: a double per column (integers exactly). */
typedef struct eg_schema_row {
#define EG_SCHEMA_FIELD_(name, fmt, flags, title, help) double name;
    EG_METRICS_COLUMNS(EG_SCHEMA_FIELD_)
#undef EG_SCHEMA_FIELD_
    int evaluated; /* 0: the EG_COL_EVAL cells are left empty */
    int cluster;   /* the optional columns written (as the header has them): EG_COL_CLUSTER
                      and / or EG_COL_VAL bits */
} eg_schema_row;

typedef struct eg_column {
    const char *name;  /* header name */
    eg_colfmt fmt;
    int flags;         /* EG_COL_* */
    const char *title; /* axis title (plots); NULL for summary-only columns */
    const char *help;  /* one line for help texts; NULL for summary-only columns */
} eg_column;

/* ---- metrics.csv ---- */

/* The columns of metrics.csv in file order (eg_metrics_ncols of them). */
extern const eg_column eg_metrics_columns[];
extern const int eg_metrics_ncols;
/* The column called name, or NULL. */
const eg_column *eg_metrics_column(const char *name);
/* The names of the columns that have every flag in flags (0: all columns) joined with
 * sep: ("iter,epoch,...,bytes_sent" for EG_COL_REQUIRED and ","); truncated to len. */
void eg_metrics_columns_text(int flags, const char *sep, char *out, size_t len);
/* Writes the columns to f for help texts, one per line: "  name   help". */
void eg_metrics_columns_help(FILE *f);

/* Writes the header line / one row (with its line end) to f. Returns 0, or -1 when the
 * stream is in error. Does not flush. The header has no optional column (EG_COL_CLUSTER,
 * EG_COL_VAL); eg_schema_metrics_header_cluster(f, opt) has those whose flag is in the bits of
 * opt (rows: row->cluster = opt). */
int eg_schema_metrics_header(FILE *f);
int eg_schema_metrics_header_cluster(FILE *f, int cluster);
int eg_schema_metrics_row(FILE *f, const eg_schema_row *row);

/* ---- summary.csv ---- */

/* What summary.csv holds besides the spec and the final metrics row. */
typedef struct eg_summary_src {
    const struct eg_spec *spec;
    eg_schema_row final; /* the last metrics row, written whether evaluated or not */
    double label_skew, train_time_s, wall_s, samples_per_s;
    int ranks, threads;
    /* provenance (EG_SUMMARY_ENV_COLUMNS, provenance.h); NULL: empty cells */
    const char *expgraph_version, *commit, *dnnl_isa, *cpu;
    int hosts; /* 0: an empty cell */
    long data_samples_max; /* training samples held by the fullest rank */
    double data_bytes_max; /* bytes of data (train and test) the fullest rank holds */
} eg_summary_src;

/* Number of summary.csv columns, and column i (0 <= i < count) in file order. */
int eg_summary_ncols(void);
const eg_column *eg_summary_column(int i);
/* 1 when a summary.csv header names a spec key: its first dotted part is the first part
 * of one of the schema's spec columns (name, seed, nodes, graph, algorithm, ...), so keys
 * added later (model.depth) are recognised in files written by newer versions. */
int eg_summary_is_spec_key(const char *header);
/* 1 when a summary.csv header is one of the provenance columns (EG_COL_ENV: expgraph_version,
 * commit, dnnl_isa, cpu, hosts). */
int eg_summary_is_env_key(const char *header);

/* The text of summary.csv: the header line and one row. Malloc'ed; NULL (err set,
 * EG_ERUN) when out of memory. */
char *eg_schema_summary_text(const eg_summary_src *src, eg_err *err);

#endif
