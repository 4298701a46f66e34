/* cmd_table.c - `expgraph table`: a results table from run directories (SPEC.md section 1).
 *
 *   expgraph table RUNDIR... [--rows KEY] [--cols KEY] [--metric [final:|max:|min:]COL]
 *                            [--format md|csv|latex]
 *
 * Every run is read (and every error found) before anything is printed.
 */
#include "commands.h"

#include "common.h"
#include "results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_MD, FMT_CSV, FMT_LATEX };

static void table_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph table RUNDIR... [--rows KEY] [--cols KEY] [--metric COL]\n"
            "                      [--format md|csv|latex]\n"
            "\n"
            "Prints one number per run from its metrics.csv, laid out by spec keys (e.g.\n"
            "graph x nodes, as in the paper's tables).\n"
            "\n"
            "RUNDIR        a run directory (one holding metrics.csv) or a sweep's root (its\n"
            "              run directories are found up to 3 levels down)\n"
            "--metric M    the metrics.csv column and how rows are reduced (default test_acc):\n"
            "                COL or final:COL  the last row where COL is non-empty\n"
            "                max:COL, min:COL  the largest / smallest value over all rows\n"
            "--rows KEY    spec key of the rows, as a dotted path (graph, nodes, lr.base,\n"
            "              algorithm.momentum; a unique last part such as momentum works too).\n"
            "              Default: the keys that differ between the runs (apart from --cols);\n"
            "              one such key gives rows named by its values, several give rows\n"
            "              named 'key=value, key2=value2'; none gives one row per directory\n"
            "--cols KEY    spec key of the columns (default: none, a single column named after\n"
            "              the metric)\n"
            "--format F    md (default): a Markdown table; csv: full precision (%%.9g), empty\n"
            "              missing cells; latex: a booktabs tabular (\\usepackage{booktabs})\n"
            "--help        this text\n"
            "\n"
            "Keys are read from each run's summary.csv; an unfinished run's from its spec.yaml,\n"
            "else from a directory name of the form key=value,key2=value2. Row and column\n"
            "values are sorted numerically when all are numbers (nodes 4, 16, 64), else kept\n"
            "in order of first appearance. A run without a value for the metric shows as '-'\n"
            "(md), an empty cell (csv) or '--' (latex). md and latex print 4 decimals (%%.4f)\n"
            "when every value lies in [0.01, 1] or is 0 (accuracies), else 4 significant\n"
            "digits (%%.4g).\n"
            "Two runs that fall into the same cell are an error naming both: add --rows/--cols\n"
            "for the key that tells them apart, or give fewer directories.\n"
            "Exit status: 0 ok; 2 bad command line, no run directories, an unknown metric\n"
            "column or key, a corrupt metrics.csv (FILE:LINE), or a cell clash; 1 an I/O error.\n"
            "\n"
            "examples:\n"
            "  expgraph table runs/sweep --rows graph --cols nodes\n"
            "  expgraph table runs/sweep --rows graph --cols nodes --metric max:test_acc --format latex\n"
            "  expgraph table runs/a runs/b --metric consensus --format csv\n");
}

typedef struct targs {
    char **paths;
    int npaths;
    const char *rows, *cols, *metric;
    int format;
    int help;
} targs;


static int parse_args(int argc, char **argv, targs *a)
{
    memset(a, 0, sizeof *a);
    a->metric = "test_acc";
    a->paths = calloc((size_t)argc + 1, sizeof(char *));
    if (!a->paths) {
        eg_cli_error("out of memory");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v;
        int missing = 0;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            a->help = 1;
        } else if ((v = eg_cli_opt_val(argc, argv, &i, "--rows", &missing)) || missing) {
            if (missing || !*v) {
                eg_cli_error("--rows needs a spec key (see --help)");
                return 2;
            }
            a->rows = v;
        } else if ((v = eg_cli_opt_val(argc, argv, &i, "--cols", &missing)) || missing) {
            if (missing || !*v) {
                eg_cli_error("--cols needs a spec key (see --help)");
                return 2;
            }
            a->cols = v;
        } else if ((v = eg_cli_opt_val(argc, argv, &i, "--metric", &missing)) || missing) {
            if (missing || !*v) {
                eg_cli_error("--metric needs a column, e.g. test_acc or max:test_acc");
                return 2;
            }
            a->metric = v;
        } else if ((v = eg_cli_opt_val(argc, argv, &i, "--format", &missing)) || missing) {
            if (missing) {
                eg_cli_error("--format needs md, csv or latex");
                return 2;
            }
            if (!strcmp(v, "md") || !strcmp(v, "markdown"))
                a->format = FMT_MD;
            else if (!strcmp(v, "csv"))
                a->format = FMT_CSV;
            else if (!strcmp(v, "latex") || !strcmp(v, "tex"))
                a->format = FMT_LATEX;
            else {
                eg_cli_error("unknown --format '%s'; use md, csv or latex", v);
                return 2;
            }
        } else if (s[0] == '-' && s[1]) {
            eg_cli_error("unknown option '%s' (see expgraph table --help)", s);
            return 2;
        } else {
            a->paths[a->npaths++] = (char *)s;
        }
    }
    if (a->help)
        return 0;
    if (a->npaths == 0) {
        eg_cli_error("table: give one or more run directories or a sweep's root (see --help)");
        return 2;
    }
    return 0;
}

/* ---- output escaping -------------------------------------------------------------- */

static void put_csv(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_latex(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', f);
            fputc(*s, f);
            break;
        case '~': fputs("\\textasciitilde{}", f); break;
        case '^': fputs("\\textasciicircum{}", f); break;
        case '\\': fputs("\\textbackslash{}", f); break;
        default: fputc(*s, f);
        }
    }
}

/* md cell text: '|' escaped */
static char *md_cell(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '|' ? 2 : 1;
    char *o = malloc(n), *w = o;
    if (!o)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            *w++ = '\\';
        *w++ = *p;
    }
    *w = 0;
    return o;
}

/* display width of UTF-8 text (code points) */
static int u8len(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* ---- the table -------------------------------------------------------------------- */

typedef struct labels {
    int n;
    char **s;
} labels;

/* index of s in L, adding it when absent; -1 on OOM */
static int label_index(labels *L, const char *s)
{
    for (int i = 0; i < L->n; i++)
        if (!strcmp(L->s[i], s))
            return i;
    char **ns = realloc(L->s, (size_t)(L->n + 1) * sizeof(char *));
    if (!ns)
        return -1;
    L->s = ns;
    size_t l = strlen(s) + 1;
    if (!(L->s[L->n] = malloc(l)))
        return -1;
    memcpy(L->s[L->n], s, l);
    return L->n++;
}

static void labels_free(labels *L)
{
    for (int i = 0; i < L->n; i++)
        free(L->s[i]);
    free(L->s);
}

/* a run's label for a list of keys: one key -> its value, several -> k=v list, none ->
 * the directory name. Malloc'ed. */
static char *run_key_label(const eg_rundir *r, const char *const *keys, int nkeys)
{
    if (nkeys == 1) {
        const char *v = eg_rundir_get(r, keys[0]);
        const char *t = !v ? "(unset)" : !*v ? "(empty)" : v;
        size_t l = strlen(t) + 1;
        char *s = malloc(l);
        if (s)
            memcpy(s, t, l);
        return s;
    }
    return eg_rundir_label(r, keys, nkeys);
}

/* the first key whose values differ between runs a and b, or NULL */
static const char *tell_apart(const eg_rundir *a, const eg_rundir *b)
{
    for (int i = 0; i < a->nkeys; i++) {
        const char *v = eg_rundir_get(b, a->keys[i]);
        if (v && strcmp(v, a->vals[i]))
            return a->keys[i];
    }
    return NULL;
}

static void fmt_num(double v, int fixed4, int full, char *out, size_t len)
{
    if (full)
        snprintf(out, len, "%.9g", v);
    else if (fixed4)
        snprintf(out, len, "%.4f", v);
    else
        snprintf(out, len, "%.4g", v);
}

int eg_cmd_table(int argc, char **argv)
{
    targs a;
    int code = parse_args(argc, argv, &a);
    if (code || a.help) {
        if (a.help)
            table_usage(stdout);
        free(a.paths);
        return code;
    }
    eg_err err = {0};
    eg_runset rs;
    const char **diff = NULL, **rowkeys = NULL;
    char *lab = NULL;
    int *order = NULL, *runrow = NULL, *runcol = NULL, *cell = NULL, *has = NULL;
    double *val = NULL;
    labels R = {0}, C = {0};
    char rowkey[256] = "", colkey[256] = "";

    int rc = eg_runset_load(&rs, a.paths, a.npaths, &err);
    if (rc) {
        eg_cli_error("%s", err.msg);
        code = rc == EG_EINPUT ? 2 : 1;
        goto done;
    }

    /* the metric */
    eg_agg agg = EG_AGG_FINAL;
    const char *col = a.metric;
    if (!strncmp(col, "final:", 6)) {
        col += 6;
    } else if (!strncmp(col, "max:", 4)) {
        agg = EG_AGG_MAX;
        col += 4;
    } else if (!strncmp(col, "min:", 4)) {
        agg = EG_AGG_MIN;
        col += 4;
    }
    int anycol = 0;
    for (int i = 0; i < rs.n && !anycol; i++)
        anycol = eg_metrics_col(&rs.runs[i].metrics, col) >= 0;
    if (!anycol) {
        char list[1024] = "";
        const eg_metrics *m = &rs.runs[0].metrics;
        for (int i = 0; i < m->ncols; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     m->cols[i]);
        eg_cli_error("no metrics column '%s' in %s; columns: %s (prefix max: or min: to "
                     "reduce over rows)",
                     col, m->path, list);
        code = 2;
        goto done;
    }

    /* rows and columns */
    if (a.rows && eg_runset_resolve_key(&rs, a.rows, rowkey, sizeof rowkey, &err)) {
        eg_cli_error("--rows: %s", err.msg);
        code = 2;
        goto done;
    }
    if (a.cols && eg_runset_resolve_key(&rs, a.cols, colkey, sizeof colkey, &err)) {
        eg_cli_error("--cols: %s", err.msg);
        code = 2;
        goto done;
    }
    if (a.rows && a.cols && !strcmp(rowkey, colkey)) {
        eg_cli_error("--rows and --cols both name '%s'; pick two different keys", rowkey);
        code = 2;
        goto done;
    }
    int ndiff = 0, nrowkeys = 0;
    diff = eg_runset_differing(&rs, &ndiff);
    rowkeys = calloc((size_t)ndiff + 1, sizeof(char *));
    order = calloc((size_t)rs.n, sizeof(int));
    runrow = calloc((size_t)rs.n, sizeof(int));
    runcol = calloc((size_t)rs.n, sizeof(int));
    if (!rowkeys || !order || !runrow || !runcol) {
        eg_cli_error("out of memory");
        code = 1;
        goto done;
    }
    if (a.rows) {
        rowkeys[nrowkeys++] = rowkey;
    } else {
        for (int i = 0; i < ndiff; i++)
            if (!a.cols || strcmp(diff[i], colkey))
                rowkeys[nrowkeys++] = diff[i];
    }
    const char *colkeys[1] = {colkey};
    int ncolkeys = a.cols ? 1 : 0;

    /* row labels in sorted order */
    eg_runset_order(&rs, rowkeys, nrowkeys, order);
    for (int k = 0; k < rs.n; k++) {
        int i = order[k];
        if (!(lab = run_key_label(&rs.runs[i], rowkeys, nrowkeys)) ||
            (runrow[i] = label_index(&R, lab)) < 0) {
            eg_cli_error("out of memory");
            code = 1;
            goto done;
        }
        free(lab);
        lab = NULL;
    }
    /* column labels */
    char metric_name[300];
    if (agg == EG_AGG_FINAL)
        snprintf(metric_name, sizeof metric_name, "%s", col);
    else
        snprintf(metric_name, sizeof metric_name, "%s(%s)", agg == EG_AGG_MAX ? "max" : "min",
                 col);
    eg_runset_order(&rs, colkeys, ncolkeys, order);
    for (int k = 0; k < rs.n; k++) {
        int i = order[k];
        if (ncolkeys) {
            lab = run_key_label(&rs.runs[i], colkeys, 1);
        } else {
            lab = malloc(strlen(metric_name) + 1);
            if (lab)
                strcpy(lab, metric_name);
        }
        if (!lab || (runcol[i] = label_index(&C, lab)) < 0) {
            eg_cli_error("out of memory");
            code = 1;
            goto done;
        }
        free(lab);
        lab = NULL;
    }

    /* cells */
    cell = malloc((size_t)R.n * (size_t)C.n * sizeof(int));
    has = calloc((size_t)R.n * (size_t)C.n, sizeof(int));
    val = calloc((size_t)R.n * (size_t)C.n, sizeof(double));
    if (!cell || !has || !val) {
        eg_cli_error("out of memory");
        code = 1;
        goto done;
    }
    for (int i = 0; i < R.n * C.n; i++)
        cell[i] = -1;
    for (int i = 0; i < rs.n; i++) {
        int c = runrow[i] * C.n + runcol[i];
        if (cell[c] >= 0) {
            const eg_rundir *o = &rs.runs[cell[c]];
            const char *k = tell_apart(o, &rs.runs[i]);
            if (k)
                eg_cli_error("runs %s and %s both fall into the cell (%s, %s); they differ in "
                             "'%s': use it as --rows or --cols, or pass fewer directories",
                             o->dir, rs.runs[i].dir, R.s[runrow[i]], C.s[runcol[i]], k);
            else
                eg_cli_error("runs %s and %s both fall into the cell (%s, %s) and have the "
                             "same spec keys (a repeated run?); pass only one of them",
                             o->dir, rs.runs[i].dir, R.s[runrow[i]], C.s[runcol[i]]);
            code = 2;
            goto done;
        }
        cell[c] = i;
        const eg_metrics *m = &rs.runs[i].metrics;
        has[c] = eg_metrics_agg(m, eg_metrics_col(m, col), agg, &val[c]);
    }

    /* number format */
    int fixed4 = 1, full = a.format == FMT_CSV;
    for (int i = 0; i < R.n * C.n; i++)
        if (has[i] && !(val[i] == 0 || (val[i] >= 0.01 && val[i] <= 1)))
            fixed4 = 0;

    const char *corner = nrowkeys == 1 ? rowkeys[0] : "run";
    FILE *out = stdout;
    char num[64];
    if (a.format == FMT_CSV) {
        put_csv(out, corner);
        for (int c = 0; c < C.n; c++) {
            fputc(',', out);
            if (ncolkeys) {
                char h[600];
                snprintf(h, sizeof h, "%s=%s", colkey, C.s[c]);
                put_csv(out, h);
            } else {
                put_csv(out, C.s[c]);
            }
        }
        fputc('\n', out);
        for (int r = 0; r < R.n; r++) {
            put_csv(out, R.s[r]);
            for (int c = 0; c < C.n; c++) {
                fputc(',', out);
                if (has[r * C.n + c]) {
                    fmt_num(val[r * C.n + c], fixed4, full, num, sizeof num);
                    fputs(num, out);
                }
            }
            fputc('\n', out);
        }
    } else if (a.format == FMT_LATEX) {
        fprintf(out, "%% expgraph table: %s %s; rows %s%s%s\n",
                agg == EG_AGG_FINAL ? "final" : agg == EG_AGG_MAX ? "max" : "min", col, corner,
                ncolkeys ? ", columns " : "", ncolkeys ? colkey : "");
        fprintf(out, "\\begin{tabular}{l");
        for (int c = 0; c < C.n; c++)
            fputc('r', out);
        fprintf(out, "}\n\\toprule\n");
        if (ncolkeys) {
            fprintf(out, " & \\multicolumn{%d}{c}{", C.n);
            put_latex(out, colkey);
            fprintf(out, "} \\\\\n\\cmidrule(lr){2-%d}\n", C.n + 1);
        }
        put_latex(out, corner);
        for (int c = 0; c < C.n; c++) {
            fputs(" & ", out);
            put_latex(out, C.s[c]);
        }
        fprintf(out, " \\\\\n\\midrule\n");
        for (int r = 0; r < R.n; r++) {
            put_latex(out, R.s[r]);
            for (int c = 0; c < C.n; c++) {
                fputs(" & ", out);
                if (has[r * C.n + c]) {
                    fmt_num(val[r * C.n + c], fixed4, 0, num, sizeof num);
                    put_latex(out, num);
                } else {
                    fputs("--", out);
                }
            }
            fprintf(out, " \\\\\n");
        }
        fprintf(out, "\\bottomrule\n\\end{tabular}\n");
    } else {
        /* Markdown: every cell's text first, then padded columns */
        int nc = C.n + 1, nr = R.n + 1;
        char **t = calloc((size_t)nc * (size_t)nr, sizeof(char *));
        int *w = calloc((size_t)nc, sizeof(int));
        int oom = !t || !w;
        for (int r = 0; r < nr && !oom; r++)
            for (int c = 0; c < nc && !oom; c++) {
                char h[600];
                const char *s;
                if (r == 0 && c == 0)
                    s = corner;
                else if (r == 0 && ncolkeys)
                    s = (snprintf(h, sizeof h, "%s=%s", colkey, C.s[c - 1]), h);
                else if (r == 0)
                    s = C.s[c - 1];
                else if (c == 0)
                    s = R.s[r - 1];
                else if (has[(r - 1) * C.n + c - 1])
                    s = (fmt_num(val[(r - 1) * C.n + c - 1], fixed4, 0, h, sizeof h), h);
                else
                    s = "-";
                if (!(t[r * nc + c] = md_cell(s)))
                    oom = 1;
                else if (u8len(t[r * nc + c]) > w[c])
                    w[c] = u8len(t[r * nc + c]);
            }
        if (oom) {
            eg_cli_error("out of memory");
            code = 1;
        } else {
            for (int c = 0; c < nc; c++)
                if (w[c] < 3)
                    w[c] = 3;
            for (int r = 0; r < nr; r++) {
                for (int c = 0; c < nc; c++) {
                    const char *s = t[r * nc + c];
                    int padn = w[c] - u8len(s);
                    /* labels left-aligned, numbers right-aligned */
                    if (c == 0 || r == 0)
                        fprintf(out, "| %s%*s ", s, padn, "");
                    else
                        fprintf(out, "| %*s%s ", padn, "", s);
                }
                fputs("|\n", out);
                if (r == 0) {
                    for (int c = 0; c < nc; c++) {
                        fputs(c == 0 ? "| :" : "| ", out);
                        for (int k = 0; k < w[c] - 1; k++)
                            fputc('-', out);
                        fputs(c == 0 ? " " : ": ", out);
                    }
                    fputs("|\n", out);
                }
            }
        }
        if (t)
            for (int i = 0; i < nc * nr; i++)
                free(t[i]);
        free(t);
        free(w);
        if (code)
            goto done;
    }
    if (fflush(out) || ferror(out)) {
        eg_cli_error("cannot write the table to standard output");
        code = 1;
    }

done:
    free(lab);
    labels_free(&R);
    labels_free(&C);
    free(cell);
    free(has);
    free(val);
    free(order);
    free(runrow);
    free(runcol);
    free(rowkeys);
    free(diff);
    eg_runset_free(&rs);
    free(a.paths);
    return code;
}
