/* cmd_table.c - `expgraph table`: a results table from run directories (docs/spec.md#commands).
 *
 *   expgraph table RUNDIR... [--rows KEY] [--cols KEY] [--metric M] [--at COL]
 *                            [--agg KEY|none] [--vs KEY=VALUE] [--format md|csv|latex]
 *                            [--cluster FILE.yaml]
 *
 * Every run is read (and every error found) before anything is printed.
 */
#include "commands.h"

#include "common.h"
#include "results.h"
#include "retime.h"
#include "schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_MD, FMT_CSV, FMT_LATEX };

static void table_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph table RUNDIR... [--rows KEY] [--cols KEY] [--metric M] [--at COL]\n"
            "                      [--agg KEY|none] [--vs KEY=VALUE] [--format md|csv|latex]\n"
            "                      [--cluster FILE.yaml]\n"
            "\n"
            "Prints one number per table cell from the runs' metrics.csv, laid out by spec keys\n"
            "(e.g. graph x nodes, as in the paper's tables); runs that differ only in their\n"
            "seed are collapsed into mean \xC2\xB1 standard deviation.\n"
            "\n"
            "RUNDIR        a run directory (one holding metrics.csv) or a sweep's root (its\n"
            "              run directories are found up to 3 levels down)\n"
            "--metric M    the metrics.csv column and how a run's rows become one number\n"
            "              (default test_acc):\n"
            "                COL or final:COL  the last row where COL is non-empty\n"
            "                max:COL, min:COL  the largest / smallest value over all rows\n"
            "                reach:COL>=V      the --at value of the first row where COL >= V\n"
            "                reach:COL<=V      ... where COL <= V (losses, consensus); '-' when\n"
            "                                  no row does (e.g. reach:test_acc>=0.88)\n"
            "--at COL      what reach reports: iter (default), epoch, time_s or bytes_sent\n"
            "              (any metrics.csv column: time_model_s, the modelled time on the\n"
            "              spec's cluster:, e.g. --metric reach:test_acc>=0.9 --at time_model_s)\n"
            "--rows KEY    spec key of the rows, as a dotted path (graph, nodes, lr.base,\n"
            "              algorithm.momentum; a unique last part such as momentum works too).\n"
            "              Default: the keys that differ between the runs (apart from --cols\n"
            "              and --agg); one such key gives rows named by its values, several give\n"
            "              rows named 'key=value, key2=value2'; none gives one row per\n"
            "              directory (one row, 'all', when aggregating)\n"
            "--cols KEY    spec key of the columns (default: none, a single column named after\n"
            "              the metric)\n"
            "--agg KEY     collapse the runs of a cell that differ only in KEY into the mean,\n"
            "              the sample standard deviation (n - 1) and the count n of their\n"
            "              values. Default: seed, when the runs' seeds differ, seed is not\n"
            "              --rows or --cols, and some cell then holds several runs; none: no\n"
            "              aggregation (one run per cell)\n"
            "--vs K=V      paired differences to the reference runs, those with K = V (e.g.\n"
            "              --vs graph=exp): each run is paired with the reference run that has\n"
            "              the same value for every other key (seed, nodes, lr.base, ...; K's\n"
            "              sub-keys such as graph.peers and the name aside), and a cell shows\n"
            "              the mean of its runs' differences (cell - reference) with its 95%%\n"
            "              confidence interval, Student t with n - 1 degrees of freedom (n\n"
            "              pairs): md '+0.0123 [+0.0050, +0.0196] *', '*' when the interval\n"
            "              excludes 0; latex likewise; csv columns 'H diff', 'H lo', 'H hi',\n"
            "              'H n', 'H sig' (1 or 0; 'ref' in the reference's cells). Reference\n"
            "              cells show their own mean \xC2\xB1 std marked (ref). A run without a\n"
            "              partner, or a reference run that a cell lacks, is an error naming\n"
            "              them (unpaired)\n"
            EG_CLUSTER_OPTION_HELP
            "--format F    md (default): a Markdown table; csv: full precision (%%.9g), empty\n"
            "              missing cells; latex: a booktabs tabular (\\usepackage{booktabs})\n"
            "--help        this text\n"
            "\n"
            "Keys are read from each run's summary.csv; an unfinished run's from its spec.yaml,\n"
            "else from a directory name of the form key=value,key2=value2. summary.csv's\n"
            "provenance columns are keys too (expgraph_version, commit, dnnl_isa, cpu, hosts:\n"
            "--rows dnnl_isa), but runs that differ only in them are one experiment: they are\n"
            "never rows by default and never clash. Row and column\n"
            "values are sorted numerically when all are numbers (nodes 4, 16, 64), else kept\n"
            "in order of first appearance. A cell without a value shows as '-' (md), an empty\n"
            "cell (csv) or '--' (latex). md and latex print 4 decimals (%%.4f) when every value\n"
            "(every mean) lies in [0.01, 1] or is 0 (accuracies), else 4 significant digits.\n"
            "Aggregated cells: md '0.8913 \xC2\xB1 0.0021', latex '$0.8913 \\pm 0.0021$', csv three\n"
            "columns per table column ('H mean', 'H std', 'H n'); a single value has std '-'\n"
            "(empty in csv) and n = 1; when only k of a cell's m runs have a value (a reach\n"
            "never reached) the mean is over those k and md/latex add '(k/m)'.\n"
            "Two runs that fall into the same cell and differ in a key other than --agg's are\n"
            "an error naming both: add --rows/--cols for that key, or give fewer directories.\n"
            "Exit status: 0 ok; 2 bad command line (an unknown --agg key, a bad reach\n"
            "expression), no run directories, an unknown metric column or key, a corrupt\n"
            "metrics.csv (FILE:LINE), a cell clash, or with --cluster a bad cluster file\n"
            "(FILE:LINE:COL and the key), a run without spec.yaml or whose data cannot be\n"
            "read; 1 an I/O error.\n"
            "\n"
            "examples:\n"
            "  expgraph table runs/sweep --rows graph --cols nodes\n"
            "  expgraph table runs/sweep --rows graph --cols nodes --metric max:test_acc --format latex\n"
            "  expgraph table runs/sweep --rows graph --cols nodes --metric 'reach:test_acc>=0.88' --at epoch\n"
            "  expgraph table runs/a runs/b --metric consensus --format csv\n"
            "  expgraph table runs/sweep --rows graph --cols nodes --vs graph=exp\n"
            "  expgraph table runs/sweep --rows graph --metric 'reach:test_acc>=0.9' --at time_model_s \\\n"
            "      --cluster slow-net.yaml\n"
            "\n"
            "metrics.csv columns:\n");
    eg_metrics_columns_help(f);
}

typedef struct targs {
    char **paths;
    int npaths;
    const char *rows, *cols, *metric, *agg, *at;
    const char *vs; /* --vs KEY=VALUE, or NULL */
    const char *cluster; /* --cluster FILE.yaml, or NULL */
    int format;
    int help;
} targs;


/* --format's value as FMT_*, or -1 (message printed) */
static int parse_format(const char *v)
{
    static const struct {
        const char *name;
        int fmt;
    } names[] = {{"md", FMT_MD}, {"markdown", FMT_MD}, {"csv", FMT_CSV},
                 {"latex", FMT_LATEX}, {"tex", FMT_LATEX}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(v, names[k].name))
            return names[k].fmt;
    eg_cli_error("unknown --format '%s'; use md, csv or latex", v);
    return -1;
}

enum { T_HELP = 1, T_ROWS, T_COLS, T_METRIC, T_AGG, T_AT, T_FORMAT, T_VS, T_CLUSTER };
static const eg_cli_opt TABLE_OPTS[] = {
    {"--help", "-h", 0, T_HELP},     {"--rows", NULL, 1, T_ROWS}, {"--cols", NULL, 1, T_COLS},
    {"--metric", NULL, 1, T_METRIC}, {"--agg", NULL, 1, T_AGG},   {"--at", NULL, 1, T_AT},
    {"--format", NULL, 1, T_FORMAT}, {"--vs", NULL, 1, T_VS},    {"--cluster", NULL, 1, T_CLUSTER},
    {NULL, NULL, 0, 0}};

/* what each value option needs, for the message when it is missing or empty */
static const char *const TABLE_NEEDS[] = {
    [T_ROWS] = "--rows needs a spec key (see --help)",
    [T_COLS] = "--cols needs a spec key (see --help)",
    [T_METRIC] = "--metric needs a column, e.g. test_acc, max:test_acc or reach:test_acc>=0.9",
    [T_AGG] = "--agg needs a spec key (e.g. seed) or none",
    [T_AT] = "--at needs a metrics column: iter, epoch, time_s, bytes_sent or time_model_s",
    [T_FORMAT] = "--format needs md, csv or latex",
    [T_VS] = "--vs needs KEY=VALUE naming the reference, e.g. --vs graph=exp",
    [T_CLUSTER] = "--cluster needs a YAML file holding a cluster: mapping"};

static int parse_args(int argc, char **argv, targs *a)
{
    memset(a, 0, sizeof *a);
    a->metric = "test_acc";
    a->paths = calloc((size_t)argc + 1, sizeof(char *));
    if (!a->paths) {
        eg_cli_error("out of memory");
        return 1;
    }
    const char **dst[] = {[T_ROWS] = &a->rows, [T_COLS] = &a->cols, [T_METRIC] = &a->metric,
                          [T_AGG] = &a->agg,   [T_AT] = &a->at,         [T_VS] = &a->vs,
                          [T_CLUSTER] = &a->cluster};
    const char *v;
    int i = 0, id;
    while ((id = eg_cli_next(argc, argv, &i, TABLE_OPTS, &v)) != EG_CLI_END) {
        if (id == EG_CLI_ARG) {
            a->paths[a->npaths++] = (char *)v;
        } else if (id == EG_CLI_UNKNOWN) {
            eg_cli_error("unknown option '%s' (see expgraph table --help)", v);
            return 2;
        } else if (id == T_HELP) {
            a->help = 1;
        } else if (id == EG_CLI_MISSING) {
            eg_cli_error("%s needs a value (see expgraph table --help)", v);
            return 2;
        } else if (!*v) {
            eg_cli_error("%s", TABLE_NEEDS[id]);
            return 2;
        } else if (id == T_FORMAT) {
            if ((a->format = parse_format(v)) < 0)
                return 2;
        } else {
            *dst[id] = v;
        }
    }
    if (a->help)
        return 0;
    if (a->npaths == 0) {
        eg_cli_error("table: give one or more run directories or a sweep's root (see --help)");
        return 2;
    }
    const char *eq = a->vs ? strchr(a->vs, '=') : NULL;
    if (a->vs && (!eq || eq == a->vs || !eq[1])) {
        eg_cli_error("--vs '%s': give KEY=VALUE naming the reference runs, e.g. --vs graph=exp",
                     a->vs);
        return 2;
    }
    return 0;
}

/* ---- output escaping -------------------------------------------------------------- */

static void put_latex(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': case '%': case '$': case '#': case '_': case '{': case '}':
            fputc('\\', f);
            fputc(*s, f);
            break;
        case '~': fputs("\\textasciitilde{}", f); break;
        case '<': fputs("\\textless{}", f); break;
        case '>': fputs("\\textgreater{}", f); break;
        case '^': fputs("\\textasciicircum{}", f); break;
        case '\\': fputs("\\textbackslash{}", f); break;
        case '\n': case '\r': fputc(' ', f); break; /* a blank line would end the row */
        default: fputc(*s, f);
        }
    }
}

/* md cell text: '|' escaped, a line break (which would end the table row) a space */
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
        *w++ = *p == '\n' || *p == '\r' ? ' ' : *p;
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

/* ---- the renderers ---------------------------------------------------------------- */

/* How numbers look: csv full precision (%.9g); md and latex 4 decimals when every value
 * (every mean, when aggregating) lies in [0.01, 1] or is 0 (accuracies), else 4
 * significant digits. A standard deviation is written like its mean. */
typedef struct numfmt {
    int fixed4, full, format;
} numfmt;

static numfmt number_format(const eg_pivot *p, int format)
{
    numfmt nf = {1, format == FMT_CSV, format};
    for (int i = 0; i < p->nrows * p->ncols; i++)
        if (p->has[i] && !(p->val[i] == 0 || (p->val[i] >= 0.01 && p->val[i] <= 1)))
            nf.fixed4 = 0;
    return nf;
}

static void fmt_num(double v, numfmt nf, char *out, size_t len)
{
    if (nf.full)
        snprintf(out, len, "%.9g", v);
    else if (nf.fixed4)
        snprintf(out, len, "%.4f", v);
    else
        snprintf(out, len, "%.4g", v);
}

/* The text of cell (r, c) in buf, or NULL when the cell has no value. Aggregated cells
 * read "mean ± std" (md) or "$mean \pm std$" (latex), std '-' for a single value, and
 * " (k/m)" when only k of the cell's m runs have a value; csv cells hold the mean. */
static const char *cell_text(const eg_pivot *p, int r, int c, numfmt nf, char *buf, size_t len)
{
    int i = r * p->ncols + c;
    if (!p->has[i])
        return NULL;
    char mean[64], sd[64] = "-", part[32] = "";
    fmt_num(p->val[i], nf, mean, sizeof mean);
    if (!p->aggkey || nf.format == FMT_CSV) {
        snprintf(buf, len, "%s", mean);
        return buf;
    }
    if (p->n[i] > 1)
        fmt_num(p->sd[i], nf, sd, sizeof sd);
    if (p->n[i] < p->nruns[i])
        snprintf(part, sizeof part, " (%d/%d)", p->n[i], p->nruns[i]);
    if (nf.format == FMT_LATEX && p->n[i] > 1)
        snprintf(buf, len, "$%s \\pm %s$%s", mean, sd, part);
    else if (nf.format == FMT_LATEX)
        snprintf(buf, len, "$%s \\pm$ --%s", mean, part);
    else
        snprintf(buf, len, "%s \xC2\xB1 %s%s", mean, sd, part);
    return buf;
}

/* a difference with its sign ("+0.0123", "-0.0040") */
static void fmt_signed(double v, numfmt nf, char *out, size_t len)
{
    char t[64];
    fmt_num(v, nf, t, sizeof t);
    snprintf(out, len, "%s%s", t[0] == '-' ? "" : "+", t);
}

/* With --vs: a reference cell reads as cell_text plus " (ref)"; any other cell as the mean
 * difference and its interval, md "+0.0123 [+0.0050, +0.0196] *" ('*': the interval
 * excludes 0; "[-]" for a single pair), latex the same in math mode, csv the mean; " (k/m)"
 * when only k of the cell's m runs form a pair with values. NULL: no value. Without --vs:
 * cell_text. */
static const char *shown_text(const eg_pivot *p, int r, int c, numfmt nf, char *buf, size_t len)
{
    int i = r * p->ncols + c;
    if (!p->vskey)
        return cell_text(p, r, c, nf, buf, len);
    if (p->ref[i]) {
        char t[200];
        if (!cell_text(p, r, c, nf, t, sizeof t))
            return NULL;
        snprintf(buf, len, "%s%s", t, nf.format == FMT_CSV ? "" : " (ref)");
        return buf;
    }
    if (p->dn[i] == 0)
        return NULL;
    char mean[64], lo[64] = "", hi[64] = "", part[32] = "";
    int sig = p->dn[i] > 1 && (p->dlo[i] > 0 || p->dhi[i] < 0);
    fmt_signed(p->dmean[i], nf, mean, sizeof mean);
    if (nf.format == FMT_CSV) {
        snprintf(buf, len, "%s", mean);
        return buf;
    }
    if (p->dn[i] > 1) {
        fmt_signed(p->dlo[i], nf, lo, sizeof lo);
        fmt_signed(p->dhi[i], nf, hi, sizeof hi);
    }
    if (p->dn[i] < p->nruns[i])
        snprintf(part, sizeof part, " (%d/%d)", p->dn[i], p->nruns[i]);
    if (nf.format == FMT_LATEX && p->dn[i] > 1)
        snprintf(buf, len, "$%s\\;[%s, %s]%s$%s", mean, lo, hi, sig ? "^{*}" : "", part);
    else if (nf.format == FMT_LATEX)
        snprintf(buf, len, "$%s$ [--]%s", mean, part);
    else if (p->dn[i] > 1)
        snprintf(buf, len, "%s [%s, %s]%s%s", mean, lo, hi, sig ? " *" : "", part);
    else
        snprintf(buf, len, "%s [-]%s", mean, part);
    return buf;
}

/* the top-left cell: the row key, or "run" for none or several */
static const char *corner(const eg_pivot *p)
{
    return p->nrowkeys == 1 ? p->rowkeys[0] : "run";
}

/* a column's heading: "key=value", or the label itself without a column key */
static const char *col_heading(const eg_pivot *p, int c, char *buf, size_t len)
{
    if (!p->colkey)
        return p->cols[c];
    snprintf(buf, len, "%s=%s", p->colkey, p->cols[c]);
    return buf;
}

/* csv with --vs: five columns per table column (diff, lo, hi, n, sig); a reference cell
 * has only n (its runs with a value) and sig 'ref' */
static int render_csv_paired(FILE *out, const eg_pivot *p)
{
    static const char *const part[5] = {"diff", "lo", "hi", "n", "sig"};
    char h[700], one[600];
    eg_csv_put(out, corner(p));
    for (int c = 0; c < p->ncols; c++)
        for (int k = 0; k < 5; k++) {
            fputc(',', out);
            snprintf(h, sizeof h, "%s %s", col_heading(p, c, one, sizeof one), part[k]);
            eg_csv_put(out, h);
        }
    fputc('\n', out);
    for (int r = 0; r < p->nrows; r++) {
        eg_csv_put(out, p->rows[r]);
        for (int c = 0; c < p->ncols; c++) {
            int i = r * p->ncols + c;
            if (p->ref[i])
                fprintf(out, ",,,,%d,ref", p->n[i]);
            else if (p->dn[i] == 0)
                fprintf(out, ",,,,%s,", p->nruns[i] ? "0" : "");
            else if (p->dn[i] == 1)
                fprintf(out, ",%.9g,,,1,0", p->dmean[i]);
            else
                fprintf(out, ",%.9g,%.9g,%.9g,%d,%d", p->dmean[i], p->dlo[i], p->dhi[i],
                        p->dn[i], p->dlo[i] > 0 || p->dhi[i] < 0);
        }
        fputc('\n', out);
    }
    return 0;
}

/* csv: a column per table column, or three (mean, std, n) when aggregating */
static int render_csv(FILE *out, const eg_pivot *p)
{
    static const char *const part[3] = {"mean", "std", "n"};
    if (p->vskey)
        return render_csv_paired(out, p);
    numfmt nf = number_format(p, FMT_CSV);
    int per = p->aggkey ? 3 : 1;
    char h[700], num[64];
    eg_csv_put(out, corner(p));
    for (int c = 0; c < p->ncols; c++)
        for (int k = 0; k < per; k++) {
            fputc(',', out);
            char one[600];
            snprintf(h, sizeof h, "%s%s%s", col_heading(p, c, one, sizeof one),
                     per > 1 ? " " : "", per > 1 ? part[k] : "");
            eg_csv_put(out, h);
        }
    fputc('\n', out);
    for (int r = 0; r < p->nrows; r++) {
        eg_csv_put(out, p->rows[r]);
        for (int c = 0; c < p->ncols; c++) {
            int i = r * p->ncols + c;
            const char *t = cell_text(p, r, c, nf, num, sizeof num);
            fprintf(out, ",%s", t ? t : "");
            if (per > 1 && p->n[i] > 1)
                fprintf(out, ",%.9g", p->sd[i]);
            else if (per > 1)
                fputc(',', out);
            if (per > 1 && p->nruns[i] > 0)
                fprintf(out, ",%d", p->n[i]);
            else if (per > 1)
                fputc(',', out);
        }
        fputc('\n', out);
    }
    return 0;
}

static int render_latex(FILE *out, const eg_pivot *p)
{
    numfmt nf = number_format(p, FMT_LATEX);
    char num[128];
    fprintf(out, "%% expgraph table: %s; rows %s%s%s%s%s%s\n", p->metric.label, corner(p),
            p->colkey ? ", columns " : "", p->colkey ? p->colkey : "",
            p->aggkey ? "; mean \\pm sample std over " : "", p->aggkey ? p->aggkey : "",
            p->aggkey ? " (n - 1)" : "");
    if (p->vskey)
        fprintf(out, "%% paired differences to %s=%s (cell - reference, paired by the other "
                "keys): mean [95%% Student-t interval, n - 1 d.f.]; ^{*}: the interval excludes 0\n",
                p->vskey, p->vsval);
    fprintf(out, "\\begin{tabular}{l");
    for (int c = 0; c < p->ncols; c++)
        fputc('r', out);
    fprintf(out, "}\n\\toprule\n");
    if (p->colkey) {
        fprintf(out, " & \\multicolumn{%d}{c}{", p->ncols);
        put_latex(out, p->colkey);
        fprintf(out, "} \\\\\n\\cmidrule(lr){2-%d}\n", p->ncols + 1);
    }
    put_latex(out, corner(p));
    for (int c = 0; c < p->ncols; c++) {
        fputs(" & ", out);
        put_latex(out, p->cols[c]);
    }
    fprintf(out, " \\\\\n\\midrule\n");
    for (int r = 0; r < p->nrows; r++) {
        put_latex(out, p->rows[r]);
        for (int c = 0; c < p->ncols; c++) {
            const char *t = shown_text(p, r, c, nf, num, sizeof num);
            fputs(" & ", out);
            fputs(t ? t : "--", out); /* numbers and math: no escaping */
        }
        fprintf(out, " \\\\\n");
    }
    fprintf(out, "\\bottomrule\n\\end{tabular}\n");
    return 0;
}

/* The md table's cells as text, (nrows + 1) x (ncols + 1) with the headings, and each
 * column's width (at least 3). Returns NULL when out of memory (t freed). */
static char **md_cells(const eg_pivot *p, int *w)
{
    int nc = p->ncols + 1, nr = p->nrows + 1, oom = 0;
    numfmt nf = number_format(p, FMT_MD);
    char **t = calloc((size_t)nc * (size_t)nr, sizeof(char *));
    for (int r = 0; r < nr && t && !oom; r++)
        for (int c = 0; c < nc && !oom; c++) {
            char h[600];
            const char *s;
            if (r == 0)
                s = c == 0 ? corner(p) : col_heading(p, c - 1, h, sizeof h);
            else if (c == 0)
                s = p->rows[r - 1];
            else if (!(s = shown_text(p, r - 1, c - 1, nf, h, sizeof h)))
                s = "-";
            if (!(t[r * nc + c] = md_cell(s)))
                oom = 1;
            else if (u8len(t[r * nc + c]) > w[c])
                w[c] = u8len(t[r * nc + c]);
        }
    if (t && !oom)
        return t;
    for (int i = 0; t && i < nc * nr; i++)
        free(t[i]);
    free(t);
    return NULL;
}

static int render_md(FILE *out, const eg_pivot *p)
{
    int nc = p->ncols + 1, nr = p->nrows + 1;
    int *w = calloc((size_t)nc, sizeof(int));
    char **t = w ? md_cells(p, w) : NULL;
    if (!t) {
        free(w);
        eg_cli_error("out of memory");
        return 1;
    }
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
        for (int c = 0; r == 0 && c < nc; c++) {
            fputs(c == 0 ? "| :" : "| ", out);
            for (int k = 0; k < w[c] - 1; k++)
                fputc('-', out);
            fputs(c == 0 ? " " : ": ", out);
        }
        if (r == 0)
            fputs("|\n", out);
    }
    for (int i = 0; i < nc * nr; i++)
        free(t[i]);
    free(t);
    free(w);
    if (p->vskey)
        fprintf(out, "\nPaired differences to %s=%s (cell - reference; runs paired by every "
                "other key): mean [95%% Student-t interval, n - 1 d.f.]; * the interval "
                "excludes 0.\n", p->vskey, p->vsval);
    return 0;
}

/* ---- the command -------------------------------------------------------------------- */

/* the message for a metrics column no run has */
static int no_column(const eg_runset *rs, const char *opt, const char *col)
{
    char list[1024];
    const eg_metrics *m = &rs->runs[0].metrics;
    eg_metrics_col_list(m, list, sizeof list);
    eg_cli_error("%s: no metrics column '%s' in %s; columns: %s", opt, col, m->path, list);
    return 2;
}

/* the key of --rows, --cols or --agg (opt) resolved into out; 0 or 2 (message printed) */
static int resolve_key(const eg_runset *rs, const char *opt, const char *key, char *out,
                       size_t len)
{
    eg_err err = {0};
    if (!eg_runset_resolve_key(rs, key, out, len, &err))
        return 0;
    eg_cli_error("%s: %s", opt, err.msg);
    return 2;
}

/* Checks the metric's columns and resolves --rows / --cols / --agg into the keys ("" when
 * not given or none; the aggregation key defaults to seed, eg_pivot_default_agg).
 * Returns 0 or the exit code, having printed the message. */
static int resolve_args(const targs *a, const eg_runset *rs, const eg_metric *mt,
                        char keys[3][256])
{
    int reach = mt->agg == EG_AGG_REACH_GE || mt->agg == EG_AGG_REACH_LE;
    if (!eg_runset_has_col(rs, mt->col))
        return no_column(rs, "--metric", mt->col);
    if (reach && !eg_runset_has_col(rs, mt->at))
        return no_column(rs, "--at", mt->at);
    if ((a->rows && resolve_key(rs, "--rows", a->rows, keys[0], 256)) ||
        (a->cols && resolve_key(rs, "--cols", a->cols, keys[1], 256)) ||
        (a->agg && strcmp(a->agg, "none") && resolve_key(rs, "--agg", a->agg, keys[2], 256)))
        return 2;
    if (a->rows && a->cols && !strcmp(keys[0], keys[1])) {
        eg_cli_error("--rows and --cols both name '%s'; pick two different keys", keys[0]);
        return 2;
    }
    for (int k = 0; k < 2 && keys[2][0]; k++)
        if (!strcmp(keys[k], keys[2])) {
            eg_cli_error("--agg and --%s both name '%s'; runs cannot be both %s and averaged "
                         "over it",
                         k ? "cols" : "rows", keys[2], k ? "columns" : "rows");
            return 2;
        }
    if (!a->agg) {
        const char *d = eg_pivot_default_agg(rs, a->rows ? keys[0] : NULL,
                                             a->cols ? keys[1] : NULL);
        snprintf(keys[2], 256, "%s", d ? d : "");
    }
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

/* loads the runs and builds the table; 0 or the exit code (message printed) */
static int build_table(const targs *a, eg_runset *rs, eg_pivot *p)
{
    eg_err err = {0};
    eg_metric mt;
    char keys[3][256] = {"", "", ""};
    int code, rc;
    if (a->at && strncmp(a->metric, "reach:", 6)) {
        eg_cli_error("--at applies to --metric reach:COL>=V only (got --metric %s)", a->metric);
        return 2;
    }
    if (eg_metric_parse(a->metric, a->at, &mt, &err)) {
        eg_cli_error("--metric: %s", err.msg);
        return 2;
    }
    if ((rc = eg_runset_load(rs, a->paths, a->npaths, &err)) ||
        (a->cluster && (rc = retime(rs, a->cluster, &err)))) {
        eg_cli_error("%s", err.msg);
        return rc == EG_EINPUT ? 2 : 1;
    }
    if ((code = resolve_args(a, rs, &mt, keys)))
        return code;
    rc = eg_pivot_build(p, rs, a->rows ? keys[0] : NULL, a->cols ? keys[1] : NULL,
                        keys[2][0] ? keys[2] : NULL, &mt, &err);
    if (!rc && a->vs) {
        char vkey[256], kbuf[256];
        const char *eq = strchr(a->vs, '=');
        snprintf(kbuf, sizeof kbuf, "%.*s", (int)(eq - a->vs), a->vs);
        if ((code = resolve_key(rs, "--vs", kbuf, vkey, sizeof vkey)))
            return code;
        rc = eg_pivot_paired(p, rs, vkey, eq + 1, &err);
    }
    if (rc)
        eg_cli_error("%s", err.msg);
    return rc == EG_OK ? 0 : rc == EG_EINPUT ? 2 : 1;
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
    eg_runset rs = {0};
    eg_pivot p = {0};
    code = build_table(&a, &rs, &p);
    if (!code) {
        static int (*const render[])(FILE *, const eg_pivot *) = {
            [FMT_MD] = render_md, [FMT_CSV] = render_csv, [FMT_LATEX] = render_latex};
        code = render[a.format](stdout, &p);
        if (!code && (fflush(stdout) || ferror(stdout))) {
            eg_cli_error("cannot write the table to standard output");
            code = 1;
        }
    }
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    free(a.paths);
    return code;
}
