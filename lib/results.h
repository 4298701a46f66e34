/* results.h - reading run directories: metrics.csv, the spec keys of a run (from
 * summary.csv, else spec.yaml, else the sweep's directory name), sweep roots.
 *
 * A run directory is any directory holding metrics.csv. A sweep root is a directory whose
 * subdirectories (recursively, depth <= 3, not descending into run directories) are run
 * directories. Everything here reads files only; nothing prints.
 *
 * summary.csv and metrics.csv are read as RFC 4180 CSV (eg_csv_next), so names and paths
 * holding commas, quotes or line breaks come back intact; which summary.csv columns are
 * spec keys, and which columns metrics.csv must start with, comes from schema.h.
 *
 * A finished run's keys also include summary.csv's provenance columns (schema.h EG_COL_ENV:
 * dnnl_isa, commit, ...): usable as --rows/--cols, but eg_runset_differing and the pivot's
 * clash check ignore them (one experiment may run on several machines).
 *
 * Spec keys are dotted paths as in summary.csv ("nodes", "graph", "graph.p",
 * "algorithm.momentum", ...). The name of a section that may be a scalar or a mapping
 * (graph, algorithm, model, data) is the key itself: "graph.name" is canonicalised to
 * "graph". Numbers are normalised to %.9g ("0.90000000000000002" and "0.9" are equal).
 */
#ifndef EG_RESULTS_H
#define EG_RESULTS_H

#include "common.h"

/* ---- metrics.csv ---------------------------------------------------------------- */

typedef struct eg_metrics {
    char *path;         /* the file read (owned) */
    int ncols;
    char **cols;        /* header names, in file order */
    long nrows;
    double *val;        /* nrows x ncols, row-major; NAN where the cell is empty */
    unsigned char *has; /* nrows x ncols: 1 where the cell was non-empty */
} eg_metrics;

/* Reads a metrics.csv into m (zeroed first; free with eg_metrics_free even on error).
 * Accepts LF or CRLF line ends, a missing final newline, blank lines, RFC 4180 quoted
 * fields, and extra columns after the required ones (schema.h: EG_COL_REQUIRED).
 * Errors (EG_EINPUT, message "FILE:LINE: ..."): unreadable file, empty file, a header
 * that does not start with the required columns or repeats a name, a row with the wrong
 * number of fields, a quote never closed, a cell that is not a number. Out of memory:
 * EG_ERUN. Returns EG_OK on success. */
int eg_metrics_read(eg_metrics *m, const char *path, eg_err *err);
/* Frees what m holds; safe on a zeroed or half-built m and on NULL. */
void eg_metrics_free(eg_metrics *m);
/* Index of column name, or -1. */
int eg_metrics_col(const eg_metrics *m, const char *name);

/* How a run's rows become one number: the last value, the extreme, or "reach": the
 * value of another column (iter, epoch, time_s, bytes_sent) at the first row where a
 * condition on this column holds. */
typedef enum { EG_AGG_FINAL, EG_AGG_MAX, EG_AGG_MIN, EG_AGG_REACH_GE, EG_AGG_REACH_LE } eg_agg;

/* Aggregates column col over the rows where it is non-empty: FINAL = the last such row,
 * MAX / MIN = the extreme (NaN cells are ignored by MAX/MIN). Returns 1 and sets *out
 * when some row has a value, 0 when none does (or col is out of range, or agg is a
 * reach: see eg_metrics_reach). */
int eg_metrics_agg(const eg_metrics *m, int col, eg_agg agg, double *out);

/* Reach: the value of column at in the first row where col is non-empty and
 * col >= thr (ge = 1) or col <= thr (ge = 0), and at is non-empty. Returns 1 and sets
 * *out, or 0 when no row qualifies (or a column is out of range). */
int eg_metrics_reach(const eg_metrics *m, int col, int ge, double thr, int at, double *out);

/* ---- runs ---------------------------------------------------------------------- */

typedef enum {
    EG_KEYS_NONE = 0,  /* nothing to read keys from */
    EG_KEYS_SUMMARY,   /* summary.csv (a finished run) */
    EG_KEYS_SPEC,      /* spec.yaml (an unfinished run) */
    EG_KEYS_DIRNAME    /* the directory name key=value,key2=value2 (last resort) */
} eg_keysrc;

typedef struct eg_rundir {
    char *dir;          /* the run directory as found (owned) */
    char *name;         /* its last path component (owned) */
    int nkeys;
    char **keys;        /* canonical spec keys (owned) */
    char **vals;        /* their values, normalised (owned) */
    eg_keysrc keysrc;
    int nnamekeys;
    char **namekeys;    /* canonical keys of a key=value,... directory name, in order */
    int finished;       /* summary.csv exists */
    eg_metrics metrics;
} eg_rundir;

typedef struct eg_runset {
    int n, cap;
    eg_rundir *runs;
} eg_runset;

/* Canonical form of a spec key: "graph.name" -> "graph" (likewise algorithm, model,
 * data); other keys unchanged. out gets at most len-1 characters. */
void eg_results_canon_key(const char *key, char *out, size_t len);

/* Finds the run directories a path stands for: the path itself when it holds
 * metrics.csv, else every run directory below it (depth <= 3), sorted by path.
 * Appends malloc'ed strings to *dirs (a malloc'ed array, grown; *n updated).
 * A path that does not exist or is not a directory: EG_EINPUT. A directory with no runs
 * below it adds nothing and is not an error here. */
int eg_results_expand(const char *path, char ***dirs, int *n, eg_err *err);

/* Reads one run directory: its metrics.csv and its keys (summary.csv, else spec.yaml,
 * else the directory name). r is zeroed first; free with eg_rundir_free even on error.
 * Errors: a corrupt metrics.csv, summary.csv or spec.yaml (EG_EINPUT naming file:line). */
int eg_rundir_load(eg_rundir *r, const char *dir, eg_err *err);
/* Frees what r holds; safe on a zeroed or half-built r and on NULL. */
void eg_rundir_free(eg_rundir *r);
/* Value of a canonical key in r, or NULL when the run does not have it. */
const char *eg_rundir_get(const eg_rundir *r, const char *key);

/* Sets key (canonicalised) to val (normalised, as read keys are) in r, replacing its value
 * or adding the key at the end. EG_ERUN when out of memory (r unchanged). */
int eg_rundir_set_key(eg_rundir *r, const char *key, const char *val);

/* Expands every path (eg_results_expand) and loads each run once (a run reached twice
 * is kept once, at its first place). rs is zeroed first; free with eg_runset_free even
 * on error. Errors (EG_EINPUT): a missing path; a path with no run directories below it
 * ("no run directories (with metrics.csv) under PATH"); a corrupt run file. */
int eg_runset_load(eg_runset *rs, char *const *paths, int npaths, eg_err *err);
void eg_runset_free(eg_runset *rs);

/* Resolves a user's key against the runs' keys: canonicalises it, and when no run has
 * it, accepts a unique dotted suffix match ("momentum" -> "algorithm.momentum").
 * Writes the canonical key to out. Unknown or ambiguous: EG_EINPUT listing the keys. */
int eg_runset_resolve_key(const eg_runset *rs, const char *key, char *out, size_t len,
                          eg_err *err);

/* The keys whose values differ between runs: first those named in the runs' directory
 * names (a sweep's key=value,... convention) in that order, then the rest in the order of
 * the first run's keys (then of later runs'). A run that lacks a key does not make it differ (finished and
 * unfinished runs describe themselves from different files). Returns a malloc'ed array
 * of pointers into the runs' key strings (valid while rs lives; free only the array)
 * and sets *n; NULL with *n = 0 when nothing differs or on OOM. */
const char **eg_runset_differing(const eg_runset *rs, int *n);

/* A run's label from keys: "graph=ring, nodes=16" (a missing key shows as "key=-");
 * with nkeys == 0, the directory name. Malloc'ed; NULL on OOM. */
char *eg_rundir_label(const eg_rundir *r, const char *const *keys, int nkeys);

/* Orders runs by the values of keys (the first key first): for each key, numerically
 * when every run's value is a number, else by the order of first appearance in rs;
 * runs lacking a key come last; ties keep rs order. order[] (rs->n entries) receives
 * run indices. */
void eg_runset_order(const eg_runset *rs, const char *const *keys, int nkeys, int *order);

/* ---- metrics across runs, and the pivot of `expgraph table` ------------------------ */

/* A table metric: which column, and how one run's rows become one number. */
typedef struct eg_metric {
    eg_agg agg;
    char col[128];   /* the metrics.csv column */
    double thr;      /* reach: the threshold V */
    char at[64];     /* reach: the column reported (iter by default) */
    char label[300]; /* "test_acc", "max(test_acc)", "iter at test_acc>=0.88" */
} eg_metric;

/* Parses "[final:|max:|min:]COL" or "reach:COL>=V" / "reach:COL<=V" (V a finite number);
 * at names the column a reach reports (NULL or "": iter) and is refused with the other
 * forms. Does not check that the columns exist (eg_runset_has_col). Errors (EG_EINPUT,
 * message without a prefix): an empty column, a reach without >= or <=, a bad V, at
 * given without reach. */
int eg_metric_parse(const char *spec, const char *at, eg_metric *mt, eg_err *err);
/* The metric's value for one run: 1 and *out, or 0 when the run has none (the column
 * missing or empty, or a reach never reached). */
int eg_metric_value(const eg_metrics *m, const eg_metric *mt, double *out);
/* 1 when some run's metrics.csv has the column col. */
int eg_runset_has_col(const eg_runset *rs, const char *col);
/* The columns of m as "iter, epoch, ...", for messages (truncated to len). */
void eg_metrics_col_list(const eg_metrics *m, char *out, size_t len);

/* Runs laid out as a table: rows labelled by row keys, columns by a column key, each
 * cell holding the metric of its run, or, when an aggregation key is given, the mean,
 * sample standard deviation and count over the runs that differ only in that key. */
typedef struct eg_pivot {
    int nrowkeys;
    char **rowkeys;      /* the keys labelling the rows (owned); none: one row per run
                            (one row, "all", when aggregating) */
    char *colkey;        /* the key labelling the columns (owned); NULL: a single column */
    char *aggkey;        /* the key whose runs share a cell (owned); NULL: one run a cell */
    eg_metric metric;
    int nrows, ncols;
    char **rows, **cols; /* labels (owned): a key's value ("(unset)", "(empty)" when the run
                            has none), "k=v, k2=v2" for several row keys, the directory
                            name for none; the single column is the metric's label */
    int *run;            /* nrows x ncols, row-major: the cell's first run, -1 when none */
    int *nruns;          /* nrows x ncols: runs in the cell */
    int *n;              /* nrows x ncols: runs in the cell that have a value */
    unsigned char *has;  /* nrows x ncols: 1 where n > 0 */
    double *val;         /* nrows x ncols: the mean of those values (the value when n = 1) */
    double *sd;          /* nrows x ncols: their sample standard deviation (n - 1), NAN
                            when n < 2 */
    int *cell;           /* rs->n: the cell of each run (row * ncols + col) */
    /* paired differences to a reference (eg_pivot_paired; NULL/0 until then) */
    char *vskey, *vsval; /* the compared key and the reference's value (owned) */
    unsigned char *ref;  /* nrows x ncols: 1 where the cell's runs have vskey = vsval */
    int *dn;             /* nrows x ncols: pairs where both runs have a value */
    double *dmean, *dsd; /* their differences' mean (cell - reference) and sample std */
    double *dlo, *dhi;   /* the 95% Student-t interval of the mean (dn - 1 degrees of
                            freedom); NAN when dn < 2 */
} eg_pivot;

/* The default aggregation key of a table: "seed" when the runs' seeds differ, seed is
 * neither rowkey nor colkey (either may be NULL), and aggregating over it puts two or more
 * runs into some cell (or the layout clashes); else NULL (one run per cell, as without
 * aggregation). */
const char *eg_pivot_default_agg(const eg_runset *rs, const char *rowkey, const char *colkey);

/* Lays out the runs of rs. rowkey, colkey and aggkey are canonical keys
 * (eg_runset_resolve_key) or NULL. rowkey NULL: the keys that differ between the runs,
 * apart from colkey and aggkey (several give "k=v, k2=v2" labels); colkey NULL: a single
 * column named after the metric; aggkey NULL: one run per cell. Rows and columns follow
 * eg_runset_order of their keys. p is zeroed first; free with eg_pivot_free even on
 * error. Errors: two runs in one cell that differ in a key other than aggkey, or in no
 * key at all (EG_EINPUT naming both directories and the first key that tells them apart);
 * aggkey equal to rowkey or colkey (EG_EINPUT); out of memory (EG_ERUN). */
int eg_pivot_build(eg_pivot *p, const eg_runset *rs, const char *rowkey, const char *colkey,
                   const char *aggkey, const eg_metric *mt, eg_err *err);
/* Frees what p holds; safe on a zeroed or half-built p and on NULL. */
void eg_pivot_free(eg_pivot *p);

/* ---- paired comparisons (`expgraph table --vs KEY=VALUE`) -------------------------- */

/* Student's t distribution with df > 0 degrees of freedom: the distribution function at t,
 * and the quantile q with P(T <= q) = prob for 0 < prob < 1 (NAN for arguments outside
 * these ranges). Computed through the regularised incomplete beta function (continued
 * fraction), the quantile by bisection to 1e-12 relative; t_{0.975,1} = 12.7062,
 * t_{0.975,29} = 2.0452. */
double eg_t_cdf(double t, double df);
double eg_t_quantile(double prob, double df);

/* Turns p (built by eg_pivot_build from rs, with p->aggkey usually "seed") into a paired
 * comparison with the reference: the runs whose canonical key `key` has the value `val`
 * (normalised as run values are). Each other run r is paired with the reference run that
 * has the same value for every key except key itself, its sub-keys (key.*), name, and the
 * keys that are constant along each run's row (along its column when key labels the
 * columns), which the rows compare as they compare key (a psgd row with graph full pairs
 * with the dmsgd row graph=exp): so the seed and the column key pair the runs. A cell's
 * value is
 * then the mean of its runs' differences d = metric(r) - metric(partner), with their
 * sample std and 95% t interval mean +- t_{0.975, dn-1} sd / sqrt(dn) (dn: the pairs
 * where both runs have a value). Reference cells get ref = 1 and no differences.
 * Errors (EG_EINPUT, naming the runs): key is the aggregated key; no run has key = val;
 * a run without a partner; a reference run that no run of a cell with its other keys
 * pairs with (unpaired cells); a cell mixing reference and other runs. EG_ERUN: out of
 * memory. */
int eg_pivot_paired(eg_pivot *p, const eg_runset *rs, const char *key, const char *val,
                    eg_err *err);

/* ---- mean curves over runs (`expgraph plot --agg`) ----------------------------------- */

/* The mean of several runs' curves of ycol against xcol, on the rows they share: the
 * iter values at which every run has a row with both cells non-empty (and finite). At
 * each such iter: the mean x, the mean, sample standard deviation (NAN for one run),
 * minimum and maximum of y. */
typedef struct eg_curve {
    long n;
    double *x, *mean, *sd, *lo, *hi; /* n each (one allocation, owned by x) */
} eg_curve;

/* Builds c from the runs idx[0..nidx-1] of rs. c is zeroed first; free with
 * eg_curve_free. A column missing from a run gives an empty curve (n = 0). Errors: out
 * of memory (EG_ERUN). */
int eg_curve_mean(eg_curve *c, const eg_runset *rs, const int *idx, int nidx,
                  const char *xcol, const char *ycol, eg_err *err);
void eg_curve_free(eg_curve *c);

#endif
