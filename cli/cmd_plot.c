/* cmd_plot.c - `expgraph plot`: curves of a metrics column from run directories as a PNG
 * (docs/spec.md#commands).
 *
 *   expgraph plot RUNDIR... --y COL [--x COL] [--log-y] [--agg KEY|none] [--band sd|minmax]
 *                 [--title T] [--width W] [--height H] [--cluster FILE.yaml] -o FILE.png
 *
 * Every run is read (and every error found) before the figure is written.
 */
#include "commands.h"

#include "common.h"
#include "plot.h"
#include "results.h"
#include "retime.h"
#include "schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fontconfig (reached through cairo's font selection) keeps process-lifetime caches that
 * LeakSanitizer reports at exit; they are not leaks of ours. The hook is read only by
 * sanitizer builds (-DEG_SANITIZE=ON) and is inert otherwise. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig\n";
}
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

static void plot_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph plot RUNDIR... --y COL [--x iter|epoch|time_s|bytes_sent] [--log-y]\n"
            "                     [--agg KEY|none] [--band sd|minmax] [--title T] [--width W]\n"
            "                     [--height H] [--cluster FILE.yaml] -o FILE.png\n"
            "\n"
            "Draws one line per run of a metrics.csv column against another into a PNG, with\n"
            "axes, ticks, axis titles and a legend naming each run by the spec keys that\n"
            "differ between the runs (e.g. 'graph=ring, nodes=16'; by directory name when\n"
            "none differ). Runs that differ only in their seed (--agg) are drawn as one mean\n"
            "line with a shaded band, one colour per group.\n"
            "\n"
            "RUNDIR        a run directory (one holding metrics.csv) or a sweep's root (its\n"
            "              run directories are found up to 3 levels down)\n"
            "--y COL       the metrics.csv column to plot (required), e.g. test_acc,\n"
            "              train_loss, consensus\n"
            "--x COL       the x axis: iter (default), epoch, time_s or bytes_sent (any\n"
            "              metrics.csv column works), e.g. time_model_s: the modelled\n"
            "              time on the spec's cluster: (docs/timemodel.md)\n"
            EG_CLUSTER_OPTION_HELP
            "--agg KEY     one curve per group of runs that differ only in KEY: the mean of y\n"
            "              (and of x) over the group's runs on the rows they share (the iter\n"
            "              values at which every run has both cells), legend 'LABEL (n=K)'.\n"
            "              Default: seed, when the runs' seeds differ and some group then has\n"
            "              several runs; none: a line per run.\n"
            "              Two runs with the same keys, KEY included (a repeated run), are an\n"
            "              error naming both, as in `expgraph table`\n"
            "--band B      the shaded band of an aggregated curve: sd (default), the mean\n"
            "              \xC2\xB1 one sample standard deviation (none for a group of one run);\n"
            "              minmax, the smallest to the largest value\n"
            "--log-y       logarithmic y axis (decade ticks); values <= 0 are left out\n"
            "--title T     a title above the plot (default: none)\n"
            "--width W     figure width in pixels (default %d)\n"
            "--height H    figure height in pixels (default %d)\n"
            "-o, --out F   the PNG file to write (required)\n"
            "--help        this text\n"
            "\n"
            "Rows where the y (or x) cell is empty are skipped, so test_acc with eval_every > 0\n"
            "is drawn through its evaluation rows. Runs are ordered (and coloured, tab10) by\n"
            "the differing keys, numerically where the values are numbers.\n"
            "Exit status: 0 ok; 2 bad command line, no run directories, an unknown column, a\n"
            "corrupt metrics.csv (FILE:LINE), nothing to draw, or with --cluster a bad cluster\n"
            "file (FILE:LINE:COL and the key), a run without spec.yaml or whose data cannot be\n"
            "read; 1 the PNG cannot be written.\n"
            "\n"
            "examples:\n"
            "  expgraph plot runs/sweep --y test_acc --x epoch -o acc.png\n"
            "  expgraph plot runs/sweep --y consensus --log-y --title 'consensus, n=16' -o c.png\n"
            "  expgraph plot runs/seeds --y test_acc --x bytes_sent --band minmax -o acc.png\n"
            "  expgraph plot runs/sweep --y test_acc --x time_model_s --cluster slow-net.yaml -o t.png\n"
            "\n"
            "metrics.csv columns:\n",
            EG_PLOT_DEFAULT_WIDTH, EG_PLOT_DEFAULT_HEIGHT);
    eg_metrics_columns_help(f);
}

typedef struct pargs {
    char **paths;
    int npaths;
    const char *y, *x, *title, *out, *agg, *band;
    const char *cluster; /* --cluster FILE.yaml, or NULL */
    long width, height;
    int log_y, help, minmax;
} pargs;


/* --width / --height's value; 0, or 2 with the message printed */
static int parse_size(const char *opt, const char *v, long *out)
{
    long n;
    if (eg_parse_long(v, &n) || n < EG_PLOT_MIN_SIZE || n > EG_PLOT_MAX_SIZE) {
        eg_cli_error("%s needs a whole number of pixels in %d..%d (got '%s')", opt,
                     EG_PLOT_MIN_SIZE, EG_PLOT_MAX_SIZE, v);
        return 2;
    }
    *out = n;
    return 0;
}

static int check_required(pargs *a);

enum { P_HELP = 1, P_LOGY, P_Y, P_X, P_AGG, P_BAND, P_OUT, P_TITLE, P_WIDTH, P_HEIGHT, P_CLUSTER };
static const eg_cli_opt PLOT_OPTS[] = {
    {"--help", "-h", 0, P_HELP}, {"--log-y", NULL, 0, P_LOGY},    {"--y", NULL, 1, P_Y},
    {"--x", NULL, 1, P_X},       {"--agg", NULL, 1, P_AGG},       {"--band", NULL, 1, P_BAND},
    {"--out", "-o", 1, P_OUT},   {"--title", NULL, 1, P_TITLE},   {"--width", NULL, 1, P_WIDTH},
    {"--height", NULL, 1, P_HEIGHT}, {"--cluster", NULL, 1, P_CLUSTER}, {NULL, NULL, 0, 0}};

/* what each text option needs, for the message when it is empty */
static const char *const PLOT_NEEDS[] = {
    [P_Y] = "--y needs a metrics column, e.g. test_acc",
    [P_X] = "--x needs iter, epoch, time_s, bytes_sent or time_model_s",
    [P_AGG] = "--agg needs a spec key (e.g. seed) or none",
    [P_BAND] = "--band needs sd or minmax",
    [P_OUT] = "-o needs a file name, e.g. -o figure.png",
    [P_CLUSTER] = "--cluster needs a YAML file holding a cluster: mapping"};

static int parse_args(int argc, char **argv, pargs *a)
{
    memset(a, 0, sizeof *a);
    a->x = "iter";
    a->band = "sd";
    a->width = EG_PLOT_DEFAULT_WIDTH;
    a->height = EG_PLOT_DEFAULT_HEIGHT;
    a->paths = calloc((size_t)argc + 1, sizeof(char *));
    if (!a->paths) {
        eg_cli_error("out of memory");
        return 1;
    }
    const char **dst[] = {[P_Y] = &a->y,       [P_X] = &a->x,     [P_AGG] = &a->agg,
                          [P_BAND] = &a->band, [P_OUT] = &a->out, [P_TITLE] = &a->title,
                          [P_CLUSTER] = &a->cluster};
    const char *v;
    int i = 0, id;
    while ((id = eg_cli_next(argc, argv, &i, PLOT_OPTS, &v)) != EG_CLI_END) {
        if (id == EG_CLI_ARG) {
            a->paths[a->npaths++] = (char *)v;
        } else if (id == EG_CLI_UNKNOWN) {
            eg_cli_error("unknown option '%s' (see expgraph plot --help)", v);
            return 2;
        } else if (id == EG_CLI_MISSING) {
            eg_cli_error("%s needs a value (see expgraph plot --help)", v);
            return 2;
        } else if (id == P_HELP || id == P_LOGY) {
            *(id == P_HELP ? &a->help : &a->log_y) = 1;
        } else if (id == P_WIDTH || id == P_HEIGHT) {
            if (parse_size(id == P_WIDTH ? "--width" : "--height", v,
                           id == P_WIDTH ? &a->width : &a->height))
                return 2;
        } else if (!*v && id != P_TITLE) {
            eg_cli_error("%s", PLOT_NEEDS[id]);
            return 2;
        } else {
            *dst[id] = v;
        }
    }
    return a->help ? 0 : check_required(a);
}

/* the arguments plot cannot do without: run directories, --y and -o; and --band's value */
static int check_required(pargs *a)
{
    if (strcmp(a->band, "sd") && strcmp(a->band, "std") && strcmp(a->band, "minmax")) {
        eg_cli_error("--band needs sd (mean \xC2\xB1 one standard deviation) or minmax, not '%s'",
                     a->band);
        return 2;
    }
    a->minmax = !strcmp(a->band, "minmax");
    if (a->npaths == 0) {
        eg_cli_error("plot: give one or more run directories or a sweep's root (see --help)");
        return 2;
    }
    if (!a->y) {
        eg_cli_error("plot: missing --y COL (the metrics column to draw, e.g. test_acc)");
        return 2;
    }
    if (!a->out) {
        eg_cli_error("plot: missing -o FILE.png (where to write the figure)");
        return 2;
    }
    return 0;
}

/* the axis title of a column: the schema's title for a metrics.csv column, else its name */
static const char *axis_title(const char *col)
{
    const eg_column *c = eg_metrics_column(col);
    return c && c->title ? c->title : col;
}

static int check_column(const eg_runset *rs, const char *col, const char *opt)
{
    if (eg_runset_has_col(rs, col))
        return 0;
    char list[1024];
    const eg_metrics *m = &rs->runs[0].metrics;
    eg_metrics_col_list(m, list, sizeof list);
    eg_cli_error("%s: no metrics column '%s' in %s; columns: %s", opt, col, m->path, list);
    return 2;
}

/* The curves: one series per run in the order of the differing keys, x and y from the
 * rows where both cells are non-empty (all x values, then all y values, in buf); points
 * counts the drawable ones. */
typedef struct curves {
    int n;
    eg_series *ser;
    char **labs;
    double *buf;
    long points;
    eg_curve *mean;  /* --agg: the mean curve of each group (n of them) */
    double *band;    /* --agg: lo and hi of each point, 2 x total */
} curves;

static void curves_free(curves *cv)
{
    for (int k = 0; cv->labs && k < cv->n; k++)
        free(cv->labs[k]);
    for (int k = 0; cv->mean && k < cv->n; k++)
        eg_curve_free(&cv->mean[k]);
    free(cv->mean);
    free(cv->band);
    free(cv->labs);
    free(cv->ser);
    free(cv->buf);
}

/* copies run r's (x, y) rows into s; returns the drawable points */
static long fill_series(const eg_rundir *r, const pargs *a, eg_series *s, double *xs,
                        double *ys)
{
    const eg_metrics *m = &r->metrics;
    int xc = eg_metrics_col(m, a->x), yc = eg_metrics_col(m, a->y);
    long points = 0;
    s->x = xs;
    s->y = ys;
    if (xc < 0 || yc < 0)
        return 0;
    for (long row = 0; row < m->nrows; row++) {
        size_t b = (size_t)row * (size_t)m->ncols;
        if (!m->has[b + (size_t)xc] || !m->has[b + (size_t)yc])
            continue;
        double xv = m->val[b + (size_t)xc], yv = m->val[b + (size_t)yc];
        xs[s->n] = xv;
        ys[s->n] = yv;
        s->n++;
        if (isfinite(xv) && isfinite(yv) && (!a->log_y || yv > 0))
            points++;
    }
    return points;
}

/* Labels each curve by the differing keys; runs with the same label (repeats) get their
 * directory name added. Returns 0, or 1 when out of memory. */
static int label_curves(const eg_runset *rs, const int *order, const char **diff, int ndiff,
                        curves *cv)
{
    for (int k = 0; k < rs->n; k++)
        if (!(cv->labs[k] = eg_rundir_label(&rs->runs[order[k]], diff, ndiff)))
            return 1;
    for (int k = 0; k < rs->n; k++) {
        int dup = 0;
        for (int j = 0; j < rs->n && !dup; j++)
            dup = j != k && !strcmp(cv->labs[j], cv->labs[k]);
        if (dup && ndiff > 0) {
            const char *nm = rs->runs[order[k]].name;
            size_t l = strlen(cv->labs[k]) + strlen(nm) + 4;
            char *t = malloc(l);
            if (!t)
                return 1;
            snprintf(t, l, "%s (%s)", cv->labs[k], nm);
            free(cv->labs[k]);
            cv->labs[k] = t;
        }
    }
    for (int k = 0; k < rs->n; k++)
        cv->ser[k].label = cv->labs[k];
    return 0;
}

/* Builds the curves of every run. Returns 0, or 1 when out of memory (message printed). */
static int build_curves(const eg_runset *rs, const pargs *a, curves *cv)
{
    int ndiff = 0, rc = 1;
    const char **diff = eg_runset_differing(rs, &ndiff);
    int *order = calloc((size_t)rs->n, sizeof(int));
    long total = 0;
    for (int i = 0; i < rs->n; i++)
        total += rs->runs[i].metrics.nrows;
    cv->n = rs->n;
    cv->ser = calloc((size_t)rs->n, sizeof(eg_series));
    cv->labs = calloc((size_t)rs->n, sizeof(char *));
    cv->buf = malloc((size_t)(total ? total : 1) * 2 * sizeof(double));
    if (order && cv->ser && cv->labs && cv->buf) {
        eg_runset_order(rs, diff, ndiff, order);
        long off = 0;
        for (int k = 0; k < rs->n; k++) {
            cv->points += fill_series(&rs->runs[order[k]], a, &cv->ser[k], cv->buf + off,
                                      cv->buf + total + off);
            off += cv->ser[k].n;
        }
        rc = label_curves(rs, order, diff, ndiff, cv);
    }
    if (rc)
        eg_cli_error("out of memory");
    free(order);
    free(diff);
    return rc;
}

/* ---- --agg: one mean curve with a band per group of runs ---------------------------- */

/* group g's curve as series k: the mean line, its band (mean -/+ sd, or min-max) into
 * band, and its label "LABEL (n=K)"; returns the drawable points, -1 when out of memory */
static long group_series(const eg_pivot *p, const eg_runset *rs, const pargs *a, int g,
                         curves *cv, double *band)
{
    int *idx = calloc((size_t)rs->n, sizeof(int)), nidx = 0;
    eg_err err = {0};
    if (!idx)
        return -1;
    for (int i = 0; i < rs->n; i++)
        if (p->cell[i] == g)
            idx[nidx++] = i;
    eg_curve *c = &cv->mean[g];
    int rc = eg_curve_mean(c, rs, idx, nidx, a->x, a->y, &err);
    free(idx);
    size_t l = strlen(p->rows[g]) + 32;
    if (rc || !(cv->labs[g] = malloc(l)))
        return -1;
    snprintf(cv->labs[g], l, "%s (n=%d)", p->rows[g], nidx);
    eg_series *s = &cv->ser[g];
    *s = (eg_series){cv->labs[g], c->x, c->mean, c->n, band, band + c->n};
    long points = 0;
    for (long j = 0; j < c->n; j++) {
        double d = a->minmax ? 0 : c->sd[j];
        band[j] = a->minmax ? c->lo[j] : c->mean[j] - d;
        band[c->n + j] = a->minmax ? c->hi[j] : c->mean[j] + d;
        points += !a->log_y || c->mean[j] > 0;
    }
    return points;
}

/* Groups the runs that differ only in aggkey (the rows of a pivot, which also reports
 * runs that differ in another key) and builds each group's mean curve. Returns 0 or the
 * exit code (message printed). */
static int build_mean_curves(const eg_runset *rs, const pargs *a, const char *aggkey,
                             curves *cv)
{
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt;
    int rc = eg_metric_parse(a->y, NULL, &mt, &err);
    if (!rc)
        rc = eg_pivot_build(&p, rs, NULL, NULL, aggkey, &mt, &err);
    if (rc) {
        eg_cli_error("%s", err.msg);
        eg_pivot_free(&p);
        return rc == EG_EINPUT ? 2 : 1;
    }
    long total = 0;
    for (int i = 0; i < rs->n; i++)
        total += rs->runs[i].metrics.nrows;
    cv->n = p.nrows;
    cv->ser = calloc((size_t)p.nrows + 1, sizeof(eg_series));
    cv->labs = calloc((size_t)p.nrows + 1, sizeof(char *));
    cv->mean = calloc((size_t)p.nrows + 1, sizeof(eg_curve));
    cv->band = malloc((size_t)(total ? total : 1) * 2 * sizeof(double));
    rc = !cv->ser || !cv->labs || !cv->mean || !cv->band;
    for (int g = 0, off = 0; g < p.nrows && !rc; g++) {
        long pts = group_series(&p, rs, a, g, cv, cv->band + off);
        rc = pts < 0;
        cv->points += pts > 0 ? pts : 0;
        off += 2 * (int)cv->mean[g].n;
    }
    eg_pivot_free(&p);
    if (rc)
        eg_cli_error("out of memory");
    return rc;
}

/* the aggregation key: --agg's (resolved; "" for none), else seed when the seeds differ */
static int plot_aggkey(const eg_runset *rs, const pargs *a, char *out, size_t len)
{
    eg_err err = {0};
    out[0] = 0;
    if (a->agg && !strcmp(a->agg, "none"))
        return 0;
    if (a->agg && eg_runset_resolve_key(rs, a->agg, out, len, &err)) {
        eg_cli_error("--agg: %s", err.msg);
        return 2;
    }
    const char *d = a->agg ? NULL : eg_pivot_default_agg(rs, NULL, NULL);
    if (d)
        snprintf(out, len, "%s", d);
    return 0;
}

/* --cluster FILE: every run's time_model_s on FILE's cluster (retime.h) */
static int retime(eg_runset *rs, const char *file, eg_err *err)
{
    eg_retime *rt;
    int rc = eg_retime_init(&rt, file, err);
    if (!rc)
        rc = eg_retime_runset(rt, rs, err);
    eg_retime_free(rt);
    return rc;
}

int eg_cmd_plot(int argc, char **argv)
{
    pargs a;
    int code = parse_args(argc, argv, &a);
    if (code || a.help) {
        if (a.help)
            plot_usage(stdout);
        free(a.paths);
        return code;
    }
    eg_err err = {0};
    eg_runset rs;
    curves cv = {0};
    char aggkey[256] = "";
    int rc = eg_runset_load(&rs, a.paths, a.npaths, &err);
    if (!rc && a.cluster)
        rc = retime(&rs, a.cluster, &err);
    if (rc) {
        eg_cli_error("%s", err.msg);
        code = rc == EG_EINPUT ? 2 : 1;
    } else if (!(code = check_column(&rs, a.y, "--y")) &&
               !(code = check_column(&rs, a.x, "--x")) &&
               !(code = plot_aggkey(&rs, &a, aggkey, sizeof aggkey)) &&
               !(code = aggkey[0] ? build_mean_curves(&rs, &a, aggkey, &cv)
                                  : build_curves(&rs, &a, &cv)) &&
               cv.points == 0) {
        eg_cli_error("nothing to draw: no row has both %s and %s%s in any of the %d run(s)",
                     a.x, a.y, a.log_y ? " > 0 (--log-y)" : "", rs.n);
        code = 2;
    }
    if (!code) {
        eg_plot_opts o;
        eg_plot_opts_init(&o);
        o.width = (int)a.width;
        o.height = (int)a.height;
        o.log_y = a.log_y;
        o.title = a.title;
        o.xlabel = axis_title(a.x);
        o.ylabel = axis_title(a.y);
        if ((rc = eg_plot_png(a.out, cv.ser, cv.n, &o, &err))) {
            eg_cli_error("%s", err.msg);
            code = rc == EG_EINPUT ? 2 : 1;
        }
    }
    curves_free(&cv);
    eg_runset_free(&rs);
    free(a.paths);
    return code;
}
