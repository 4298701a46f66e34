/* cmd_graph.c - `expgraph graph`: the mixing-matrix facts of a graph family
 * (docs/graphs.md).
 *
 *   expgraph graph NAME --nodes N[,N...] [--format table|csv|matrix] [--iters K] [--seed S]
 *                       [--cluster FILE.yaml --params P [--batch B]]
 *
 * Every graph is built (and, for table/csv, its statistics computed) before anything is
 * printed, so a bad node count anywhere in the list prints only the error.
 */
#include "commands.h"

#include "common.h"
#include "spec.h"
#include "timemodel.h"
#include "topology.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_TABLE, FMT_CSV, FMT_MATRIX };

static void graph_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph graph NAME --nodes N[,N...] [--format table|csv|matrix]\n"
            "                      [--iters K] [--seed S]\n"
            "                      [--cluster FILE.yaml --params P [--batch B]]\n"
            "\n"
            "Prints the facts of a graph's mixing matrices W(k) for each node count N:\n"
            "  period      1 for static graphs, ceil(log2 N) for onepeer_exp and\n"
            "              onepeer_hypercube, the sequence length for base (its product is\n"
            "              exactly 11^T/N), the outer graph's for hierarchical,\n"
            "              lcm(L, floor(log2(N/L - 1)) + 1, floor(log2(L - 2)) + 1) for\n"
            "              inner_outer_exp2\n"
            "              (random_match, random_peers, schedule: 1, they are aperiodic;\n"
            "              the facts are then those of W(0))\n"
            "  degree      the most peers any node receives from in one iteration\n"
            "  rho         max over k < period of ||W(k) - 11^T/N||_2;  gap = 1 - rho\n"
            "  rho_period  ||W(period-1)...W(0) - 11^T/N||_2 (= rho for static graphs)\n"
            "\n"
            "NAME          a graph name, or a YAML flow mapping such as\n"
            "              '{name: erdos_renyi, p: 0.2}' (p default 0.2),\n"
            "              '{name: file, path: W.csv}', '{name: base, peers: 2}' (peers\n"
            "              default 1), '{name: random_peers, peers: 2}',\n"
            "              '{name: hierarchical, local: 4, outer: onepeer_exp}',\n"
            "              '{name: inner_outer_exp2, local: 4}' (N = machines x 4) or\n"
            "              '{name: schedule, phases: [{graph: exp, until_iter: 100},\n"
            "              {graph: onepeer_exp}]}' (until_epoch counts iterations here).\n"
            "              random_peers is row- but not column-stochastic (a note on\n"
            "              stderr says so). Graphs:\n"
            "             ");
    int col = 13;
    for (int i = 0; eg_graph_kinds[i].name; i++) {
        int w = (int)strlen(eg_graph_kinds[i].name) + 2;
        if (col + w > 79) {
            fprintf(f, "\n             ");
            col = 13;
        }
        fprintf(f, " %s%s", eg_graph_kinds[i].name, eg_graph_kinds[i + 1].name ? "," : "\n");
        col += w;
    }
    fprintf(f,
            "--nodes N,... node counts, comma-separated (required), e.g. 4,8,16,32\n"
            "--format F    table (default): aligned columns, 6 significant digits\n"
            "              csv: header graph,nodes,period,degree,rho,gap,rho_period;\n"
            "                   numbers in %%.9g\n"
            "              matrix: for each N and k < K a line '# NAME nodes=N k=K', then the\n"
            "                   N rows of W(k), comma-separated in %%.17g (row i holds the\n"
            "                   weights node i gives to each node j)\n"
            "--iters K     matrices per N for --format matrix (default: one period;\n"
            "              random_match: 1, a single realisation)\n"
            "--seed S      seed of erdos_renyi, random_match and random_peers (default 1);\n"
            "              with --cluster also of the stragglers\n"
            "--cluster F   a YAML file holding a cluster: mapping as in a spec (nodes_per_host,\n"
            "              latency_us, bandwidth_gbps, ..., samples_per_s a number; see\n"
            "              docs/timemodel.md): table and csv get two more columns,\n"
            "              time_iter_s (a gossip method sending one dense f32 vector of P\n"
            "              parameters over this graph: the modelled time per iteration,\n"
            "              averaged over one period, or over --iters K iterations) and\n"
            "              psgd_iter_s (the same for psgd's ring all-reduce, for reference)\n"
            "--params P    the model's parameter count (required with --cluster)\n"
            "--batch B     one node's batch size for the compute time B / samples_per_s\n"
            "              (default 32)\n"
            "--help        this text\n"
            "\n"
            "table and csv need N <= %d (dense spectral computations).\n"
            "Exit status: 0 ok; 2 bad command line, unknown graph, or a graph that does not\n"
            "fit N (e.g. hypercube with N not a power of two); 1 a failure while computing.\n"
            "\n"
            "examples:\n"
            "  expgraph graph exp --nodes 4,8,16,32,64 --format csv\n"
            "  expgraph graph onepeer_exp --nodes 8 --format matrix\n"
            "  expgraph graph '{name: erdos_renyi, p: 0.3}' --nodes 32 --seed 3\n"
            "  expgraph graph '{name: base, peers: 2}' --nodes 6,12,24,48,100\n"
            "  expgraph graph '{name: hierarchical, local: 4, outer: onepeer_exp}' --nodes 32\n"
            "  expgraph graph '{name: inner_outer_exp2, local: 4}' --nodes 16 --format matrix\n"
            "  expgraph graph onepeer_exp --nodes 16,64,256 --cluster c.yaml --params 270000\n",
            EG_TOPO_STATS_MAX_NODES);
}

/* Parses "4,8,16" into a malloc'ed array; 0 on success, else prints the problem. */
static int parse_nodes(const char *text, int **out, int *count)
{
    *out = NULL;
    *count = 0;
    size_t len = strlen(text);
    int cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == ',';
    int *v = malloc((size_t)cap * sizeof *v);
    char *copy = malloc(len + 1);
    if (!v || !copy) {
        free(v);
        free(copy);
        eg_cli_error("out of memory");
        return -1;
    }
    memcpy(copy, text, len + 1);
    int n = 0;
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        long x;
        int bad = eg_parse_long(p, &x) || x < 1;
        if (bad)
            eg_cli_error("--nodes: '%s' is not a whole number >= 1 (give e.g. --nodes 4,8,16)",
                         p);
        else if (x > INT_MAX)
            eg_cli_error("--nodes: %s is too large (at most %d)", p, INT_MAX);
        if (bad || x > INT_MAX) {
            free(v);
            free(copy);
            return -1;
        }
        v[n++] = (int)x;
        if (!comma)
            break;
        p = comma + 1;
    }
    free(copy);
    *out = v;
    *count = n;
    return 0;
}

static void print_matrix(eg_topo *t, long k, uint64_t seed, int random)
{
    const eg_wmat *m = eg_topo_weights(t, k);
    int n = m->n;
    printf("# %s nodes=%d k=%ld", eg_topo_name(t), n, k);
    if (random)
        printf(" (one realisation, seed %llu)", (unsigned long long)seed);
    putchar('\n');
    for (int i = 0; i < n; i++) {
        int q = m->rowptr[i], end = m->rowptr[i + 1];
        for (int j = 0; j < n; j++) {
            double w = 0.0;
            if (q < end && m->col[q] == j)
                w = m->val[q++];
            printf(j ? ",%.17g" : "%.17g", w);
        }
        putchar('\n');
    }
}

/* --cluster: the modelled seconds per iteration of each graph (gossip of one dense vector)
 * and of psgd's all-reduce at its node count; NULL without --cluster */
typedef struct tmcols {
    double *gossip, *psgd;
} tmcols;

static void print_table(eg_topo **topos, const eg_topo_stats *st, int count, const tmcols *tc)
{
    enum { NCOL = 9 };
    static const char *const head[NCOL] = {"graph", "nodes", "period", "degree", "rho",
                                           "gap",   "rho_period", "time_iter_s", "psgd_iter_s"};
    const int ncol = tc->gossip ? NCOL : NCOL - 2;
    char(*cell)[NCOL][40] = calloc((size_t)count, sizeof *cell);
    if (!cell) {
        eg_cli_error("out of memory");
        return;
    }
    int width[NCOL];
    for (int c = 0; c < NCOL; c++)
        width[c] = (int)strlen(head[c]);
    for (int r = 0; r < count; r++) {
        snprintf(cell[r][0], 40, "%s", eg_topo_name(topos[r]));
        snprintf(cell[r][1], 40, "%d", eg_topo_nodes(topos[r]));
        snprintf(cell[r][2], 40, "%d", st[r].period);
        snprintf(cell[r][3], 40, "%d", st[r].degree);
        snprintf(cell[r][4], 40, "%.6g", st[r].rho);
        snprintf(cell[r][5], 40, "%.6g", st[r].gap);
        snprintf(cell[r][6], 40, "%.6g", st[r].rho_period);
        if (tc->gossip) {
            snprintf(cell[r][7], 40, "%.6g", tc->gossip[r]);
            snprintf(cell[r][8], 40, "%.6g", tc->psgd[r]);
        }
        for (int c = 0; c < ncol; c++) {
            int w = (int)strlen(cell[r][c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (int c = 0; c < ncol; c++)
        printf(c == 0 ? "%-*s" : "  %*s", width[c], head[c]);
    putchar('\n');
    for (int r = 0; r < count; r++) {
        for (int c = 0; c < ncol; c++)
            printf(c == 0 ? "%-*s" : "  %*s", width[c], cell[r][c]);
        putchar('\n');
    }
    free(cell);
}

typedef struct gargs {
    const char *name, *nodes, *format, *iters, *seed, *cluster, *params, *batch;
} gargs;

enum { G_HELP = 1, G_NODES, G_FORMAT, G_ITERS, G_SEED, G_CLUSTER, G_PARAMS, G_BATCH };
static const eg_cli_opt GRAPH_OPTS[] = {
    {"--help", "-h", 0, G_HELP},      {"--nodes", NULL, 1, G_NODES}, {"--format", NULL, 1, G_FORMAT},
    {"--iters", NULL, 1, G_ITERS},    {"--seed", NULL, 1, G_SEED},
    {"--cluster", NULL, 1, G_CLUSTER}, {"--params", NULL, 1, G_PARAMS},
    {"--batch", NULL, 1, G_BATCH},    {NULL, NULL, 0, 0}};

/* -1: go on; 0: --help printed; 2: a problem printed */
static int parse_args(int argc, char **argv, gargs *g)
{
    *g = (gargs){.format = "table"};
    const char *v;
    int i = 0, id;
    while ((id = eg_cli_next(argc, argv, &i, GRAPH_OPTS, &v)) != EG_CLI_END) {
        switch (id) {
        case G_HELP: graph_usage(stdout); return 0;
        case G_NODES: g->nodes = v; break;
        case G_FORMAT: g->format = v; break;
        case G_ITERS: g->iters = v; break;
        case G_SEED: g->seed = v; break;
        case G_CLUSTER: g->cluster = v; break;
        case G_PARAMS: g->params = v; break;
        case G_BATCH: g->batch = v; break;
        case EG_CLI_MISSING:
            eg_cli_error("%s needs a value (see expgraph graph --help)", v);
            return 2;
        case EG_CLI_UNKNOWN:
            eg_cli_error("unknown option '%s' for graph (see expgraph graph --help)", v);
            return 2;
        default: /* EG_CLI_ARG */
            if (g->name) {
                eg_cli_error("unexpected argument '%s' after NAME '%s' (see expgraph graph "
                             "--help)",
                             v, g->name);
                return 2;
            }
            g->name = v;
        }
    }
    if (!g->name) {
        eg_cli_error("graph needs a NAME, e.g. expgraph graph exp --nodes 16 (see expgraph "
                     "graph --help)");
        return 2;
    }
    if (!g->nodes) {
        eg_cli_error("graph needs --nodes, e.g. --nodes 16 or --nodes 4,8,16");
        return 2;
    }
    return -1;
}

/* The checked settings: format, iters (0: one period), seed, node counts (malloc'ed).
 * 0, or 2 after printing the problem. */
static int check_args(const gargs *g, int *format, long *iters, uint64_t *seed, int **nodes,
                      int *count)
{
    static const char *const formats[] = {[FMT_TABLE] = "table", [FMT_CSV] = "csv",
                                          [FMT_MATRIX] = "matrix"};
    *format = -1;
    for (int f = 0; f < 3; f++)
        if (!strcmp(g->format, formats[f]))
            *format = f;
    if (*format < 0) {
        eg_cli_error("--format: unknown format '%s' (known: table, csv, matrix)", g->format);
        return 2;
    }
    *iters = 0;
    if (g->iters && (eg_parse_long(g->iters, iters) || *iters < 1)) {
        eg_cli_error("--iters: '%s' is not a whole number >= 1", g->iters);
        return 2;
    }
    *seed = 1;
    if (g->seed && eg_parse_u64(g->seed, seed)) {
        eg_cli_error("--seed: '%s' is not a whole number >= 0", g->seed);
        return 2;
    }
    if (parse_nodes(g->nodes, nodes, count))
        return 2;
    if (*format != FMT_MATRIX)
        for (int r = 0; r < *count; r++)
            if ((*nodes)[r] > EG_TOPO_STATS_MAX_NODES) {
                eg_cli_error("--nodes: %d is too many for --format %s (at most %d: rho needs "
                             "dense n x n matrices); --format matrix has no such limit",
                             (*nodes)[r], g->format, EG_TOPO_STATS_MAX_NODES);
                free(*nodes);
                *nodes = NULL;
                return 2;
            }
    return 0;
}

/* Builds every graph (and its statistics unless with_stats is 0) before anything is
 * printed. 0, or the exit code after printing the problem. */
static int build_all(const eg_graph_spec *g, const int *nodes, int count, uint64_t seed,
                     int with_stats, eg_topo **topos, eg_topo_stats *st)
{
    eg_err err = {0};
    for (int r = 0; r < count; r++) {
        int rc = eg_topo_init(&topos[r], g, nodes[r], seed, &err);
        if (rc) {
            eg_cli_error("%s", err.msg);
            return rc == EG_EINPUT ? 2 : 1;
        }
    }
    for (int r = 0; with_stats && r < count; r++) {
        int rc = eg_topo_stats_compute(topos[r], &st[r], &err);
        if (rc) {
            eg_cli_error("%s", err.msg);
            return rc == EG_EINPUT ? 2 : 1;
        }
    }
    return 0;
}

static int print_all(eg_topo **topos, const eg_topo_stats *st, const int *nodes, int count,
                     int format, long iters, uint64_t seed, int schedule, const tmcols *tc)
{
    if (format == FMT_CSV) {
        printf("graph,nodes,period,degree,rho,gap,rho_period%s\n",
               tc->gossip ? ",time_iter_s,psgd_iter_s" : "");
        for (int r = 0; r < count; r++) {
            printf("%s,%d,%d,%d,%.9g,%.9g,%.9g", eg_topo_name(topos[r]), nodes[r],
                   st[r].period, st[r].degree, st[r].rho, st[r].gap, st[r].rho_period);
            if (tc->gossip)
                printf(",%.9g,%.9g", tc->gossip[r], tc->psgd[r]);
            putchar('\n');
        }
    } else if (format == FMT_TABLE) {
        print_table(topos, st, count, tc);
    } else {
        for (int r = 0; r < count; r++) {
            int period = eg_topo_period(topos[r]);
            int random = period == 0 && !schedule; /* random_match, random_peers */
            long K = iters ? iters : (period > 0 ? period : 1);
            for (long k = 0; k < K; k++)
                print_matrix(topos[r], k, seed, random);
        }
    }
    for (int r = 0; format != FMT_MATRIX && r < count; r++)
        if (!st[r].doubly) {
            fprintf(stderr, "expgraph: note: %s: W(k) is row- but not column-stochastic at %d "
                            "nodes (plain gossip converges to a weighted average, not the "
                            "exact one)\n", eg_topo_name(topos[r]), nodes[r]);
            break;
        }
    if (fflush(stdout) || ferror(stdout)) {
        eg_cli_error("cannot write the output: %s", strerror(errno));
        return 1;
    }
    return 0;
}

/* --cluster FILE --params P [--batch B]: the cluster (a number for samples_per_s), the
 * message bytes and the batch. 0, -1 when --cluster is not given, or 2 after printing. */
static int cluster_args(const gargs *g, int format, eg_tmodel_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    if (!g->cluster) {
        if (g->params || g->batch) {
            eg_cli_error("%s applies with --cluster FILE.yaml only", g->params ? "--params"
                                                                               : "--batch");
            return 2;
        }
        return -1;
    }
    if (format == FMT_MATRIX) {
        eg_cli_error("--cluster applies to --format table and csv");
        return 2;
    }
    long params = 0, batch = 32;
    if (!g->params || eg_parse_long(g->params, &params) || params < 1) {
        eg_cli_error("--cluster needs --params P, the model's parameter count (a whole number "
                     ">= 1)%s%s%s", g->params ? "; got '" : "", g->params ? g->params : "",
                     g->params ? "'" : "");
        return 2;
    }
    if (g->batch && (eg_parse_long(g->batch, &batch) || batch < 1 || batch > INT_MAX)) {
        eg_cli_error("--batch: '%s' is not a whole number >= 1", g->batch);
        return 2;
    }
    eg_err err = {0};
    if (eg_spec_cluster_from_file(g->cluster, &cfg->cluster, &err)) {
        eg_cli_error("%s", err.msg);
        return err.code == EG_ERUN ? 1 : 2;
    }
    if (!(cfg->cluster.samples_per_s > 0)) {
        eg_cli_error("%s: cluster.samples_per_s: measured needs a run to measure; give a number "
                     "(one node's samples per second) for expgraph graph", g->cluster);
        return 2;
    }
    cfg->batch_size = (int)batch;
    cfg->local_steps = 1;
    cfg->msg_bytes = cfg->allreduce_bytes = 4.0 * (double)params;
    return 0;
}

/* the modelled seconds per iteration over K iterations from T = 0 (timemodel.h) */
static int model_time(eg_tmodel_cfg cfg, eg_topo *t, int allreduce, long K, uint64_t seed,
                      double *out)
{
    eg_err err = {0};
    eg_tmodel *tm;
    cfg.nodes = eg_topo_nodes(t);
    cfg.seed = seed;
    cfg.allreduce = allreduce;
    if (eg_tmodel_init(&tm, &cfg, &err)) {
        eg_cli_error("%s", err.msg);
        return 1;
    }
    eg_tmodel_advance(tm, t, K);
    *out = eg_tmodel_time(tm) / (double)K;
    eg_tmodel_free(tm);
    return 0;
}

int eg_cmd_graph(int argc, char **argv)
{
    gargs ga;
    int code = parse_args(argc, argv, &ga);
    if (code >= 0)
        return code;
    int format, *nodes = NULL, count = 0;
    long iters;
    uint64_t seed;
    if (check_args(&ga, &format, &iters, &seed, &nodes, &count))
        return 2;
    eg_tmodel_cfg tcfg;
    int with_cluster = cluster_args(&ga, format, &tcfg);
    if (with_cluster > 0) {
        free(nodes);
        return with_cluster;
    }
    eg_err err = {0};
    eg_graph_spec g;
    if (eg_spec_graph_from_text(ga.name, &g, &err)) {
        eg_cli_error("%s", err.msg);
        free(nodes);
        return err.code == EG_ERUN ? 1 : 2;
    }
    eg_topo **topos = calloc((size_t)count, sizeof *topos);
    eg_topo_stats *st = calloc((size_t)count, sizeof *st);
    code = 0;
    if (!topos || !st) {
        eg_cli_error("out of memory");
        code = 1;
    }
    if (!code)
        code = build_all(&g, nodes, count, seed, format != FMT_MATRIX, topos, st);
    tmcols tc = {NULL, NULL};
    if (!code && with_cluster == 0) {
        tc.gossip = calloc((size_t)count, sizeof(double));
        tc.psgd = calloc((size_t)count, sizeof(double));
        if (!tc.gossip || !tc.psgd) {
            eg_cli_error("out of memory");
            code = 1;
        }
        for (int r = 0; !code && r < count; r++) {
            long K = iters ? iters : (st[r].period > 0 ? st[r].period : 1);
            code = model_time(tcfg, topos[r], 0, K, seed, &tc.gossip[r]);
            if (!code)
                code = model_time(tcfg, topos[r], 1, K, seed, &tc.psgd[r]);
        }
    }
    if (!code)
        code = print_all(topos, st, nodes, count, format, iters, seed,
                         g.kind == EG_GRAPH_SCHEDULE, &tc);
    free(tc.gossip);
    free(tc.psgd);
    if (topos)
        for (int r = 0; r < count; r++)
            eg_topo_free(topos[r]);
    free(topos);
    free(st);
    free(nodes);
    return code;
}
