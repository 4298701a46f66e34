/* spec.c - YAML spec -> eg_spec: overrides, defaults, validation, resolved YAML, sweeps. */
#include "spec.h"
#include "yamltree.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- locations and errors ---- */

typedef struct ctx {
    const char *file;
    eg_err *err;
    int bare; /* messages without a location (command-line values) */
} ctx;

static void node_where(const char *file, const eg_ynode *n, char *buf, size_t len)
{
    if (!n)
        snprintf(buf, len, "%s", file);
    else if (n->line <= 0)
        snprintf(buf, len, "%s: %s", file, n->src);
    else
        snprintf(buf, len, "%s:%d:%d", n->src ? n->src : file, n->line, n->col);
}

__attribute__((format(printf, 3, 4))) static int fail(ctx *c, const eg_ynode *n, const char *fmt, ...)
{
    char where[EG_PATH_MAX + 128], msg[768];
    node_where(c->file, n, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->bare)
        return eg_err_set(c->err, EG_EINPUT, "%s", msg);
    return eg_err_set(c->err, EG_EINPUT, "%s: %s", where, msg);
}

/* position of a map's key (for unknown-key messages) */
static int fail_key(ctx *c, const eg_ynode *map, int i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_key(ctx *c, const eg_ynode *map, int i, const char *fmt, ...)
{
    eg_ynode tmp = *map->items[i];
    tmp.line = map->kline[i];
    tmp.col = map->kcol[i];
    if (map->items[i]->line <= 0)
        tmp.line = 0;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c, &tmp, "%s", msg);
}

/* ---- typed scalar readers: each names the dotted key in its message ---- */

static int want_scalar(ctx *c, const eg_ynode *n, const char *key, const char *what)
{
    if (n->kind != EG_Y_SCALAR)
        return fail(c, n, "%s must be %s, not a %s", key, what,
                    n->kind == EG_Y_MAP ? "mapping" : "list");
    return 0;
}

static int rd_long(ctx *c, const eg_ynode *n, const char *key, long lo, long hi, long *out)
{
    if (want_scalar(c, n, key, "an integer"))
        return EG_EINPUT;
    long v;
    double d;
    if (eg_parse_long(n->str, &v)) {
        /* accept 1e3 style when integral */
        if (!n->quoted && !eg_parse_double(n->str, &d) && d == floor(d) && fabs(d) < 9e15)
            v = (long)d;
        else
            return fail(c, n, "%s must be an integer, got '%s'", key, n->str);
    }
    if (v < lo)
        return fail(c, n, "%s must be >= %ld, got %ld", key, lo, v);
    if (v > hi)
        return fail(c, n, "%s must be <= %ld, got %ld", key, hi, v);
    *out = v;
    return 0;
}

static int rd_int(ctx *c, const eg_ynode *n, const char *key, long lo, long hi, int *out)
{
    long v;
    int rc = rd_long(c, n, key, lo, hi, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

static int rd_double(ctx *c, const eg_ynode *n, const char *key, double *out)
{
    if (want_scalar(c, n, key, "a number"))
        return EG_EINPUT;
    double v;
    if (n->quoted || eg_parse_double(n->str, &v) || !isfinite(v))
        return fail(c, n, "%s must be a number, got '%s'", key, n->str);
    *out = v;
    return 0;
}

/* a number above a bound: > lo when strict, else >= lo */
static int rd_double_min(ctx *c, const eg_ynode *n, const char *key, double lo, int strict,
                         double *out)
{
    if (rd_double(c, n, key, out))
        return EG_EINPUT;
    if (strict ? !(*out > lo) : !(*out >= lo))
        return fail(c, n, "%s must be %s %g, got %g", key, strict ? ">" : ">=", lo, *out);
    return 0;
}

static int rd_bool(ctx *c, const eg_ynode *n, const char *key, int *out)
{
    if (want_scalar(c, n, key, "true or false"))
        return EG_EINPUT;
    const char *s = n->str;
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "off", "Off", NULL};
    for (int i = 0; yes[i]; i++)
        if (!strcmp(s, yes[i])) {
            *out = 1;
            return 0;
        }
    for (int i = 0; no[i]; i++)
        if (!strcmp(s, no[i])) {
            *out = 0;
            return 0;
        }
    return fail(c, n, "%s must be true or false, got '%s'", key, s);
}

static int rd_str(ctx *c, const eg_ynode *n, const char *key, char *out, size_t len)
{
    if (want_scalar(c, n, key, "a string"))
        return EG_EINPUT;
    if (strlen(n->str) >= len)
        return fail(c, n, "%s is too long (at most %zu characters)", key, len - 1);
    snprintf(out, len, "%s", n->str);
    return 0;
}

static int rd_choice(ctx *c, const eg_ynode *n, const char *key, const char *const *names,
                     char *out, size_t len)
{
    if (want_scalar(c, n, key, "a name"))
        return EG_EINPUT;
    for (int i = 0; names[i]; i++)
        if (!strcmp(n->str, names[i])) {
            snprintf(out, len, "%s", names[i]);
            return 0;
        }
    char known[512] = "";
    for (int i = 0; names[i]; i++) {
        if (i)
            strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, names[i], sizeof known - strlen(known) - 1);
    }
    return fail(c, n, "unknown %s '%s' (known: %s)", key, n->str, known);
}

/* a kind's name (kinds.h table) -> its enum value in *out */
static int rd_kind(ctx *c, const eg_ynode *n, const char *key, const void *table, size_t stride,
                   int *out)
{
    if (want_scalar(c, n, key, "a name"))
        return EG_EINPUT;
    int k = eg_kind_find(table, stride, n->str);
    if (k >= 0) {
        *out = k;
        return 0;
    }
    char known[512];
    eg_kind_list(table, stride, known, sizeof known);
    return fail(c, n, "unknown %s '%s' (known: %s)", key, n->str, known);
}
#define RD_KIND(c, n, key, table, out) rd_kind((c), (n), (key), (table), sizeof(table)[0], (out))

/* paths in a spec are relative to the working directory (as output.dir is) */
static void resolve_path(const ctx *c, const eg_ynode *n, const char *p, char *out, size_t len)
{
    (void)n;
    snprintf(out, len, "%s", p);
}

static int path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* checks that every key of map is one of allowed[] */
static int only_keys(ctx *c, const eg_ynode *map, const char *section, const char *const *allowed)
{
    for (int i = 0; i < map->n; i++) {
        int ok = 0;
        for (int j = 0; allowed[j]; j++)
            if (!strcmp(map->keys[i], allowed[j]))
                ok = 1;
        if (!ok) {
            char known[512] = "";
            for (int j = 0; allowed[j]; j++) {
                if (j)
                    strncat(known, ", ", sizeof known - strlen(known) - 1);
                strncat(known, allowed[j], sizeof known - strlen(known) - 1);
            }
            if (section && *section)
                return fail_key(c, map, i, "unknown key '%s.%s' (%s takes: %s)", section,
                                map->keys[i], section, known);
            return fail_key(c, map, i, "unknown key '%s' (known: %s)", map->keys[i], known);
        }
    }
    return 0;
}

/* a section given as a name or a mapping with a name: key. Returns the map (or NULL when
 * the section is a bare name) and the name node in *name_node. */
static int name_or_map(ctx *c, const eg_ynode *n, const char *key, const eg_ynode **map,
                       const eg_ynode **name_node)
{
    *map = NULL;
    *name_node = NULL;
    if (n->kind == EG_Y_SCALAR) {
        if (eg_ynode_is_null(n))
            return fail(c, n, "%s needs a value (a name or a mapping with name:)", key);
        *name_node = n;
        return 0;
    }
    if (n->kind != EG_Y_MAP)
        return fail(c, n, "%s must be a name or a mapping with name:, not a list", key);
    *map = n;
    *name_node = eg_ymap_get(n, "name", NULL);
    if (!*name_node)
        return fail(c, n, "%s needs a name: key", key);
    return 0;
}

static int rd_int_list(ctx *c, const eg_ynode *n, const char *key, long lo, int *out, int max,
                       int *count)
{
    if (n->kind == EG_Y_SCALAR && !eg_ynode_is_null(n)) {
        *count = 1;
        return rd_int(c, n, key, lo, 1 << 20, &out[0]);
    }
    if (eg_ynode_is_null(n)) {
        *count = 0;
        return 0;
    }
    if (n->kind != EG_Y_SEQ)
        return fail(c, n, "%s must be a list of integers", key);
    if (n->n > max)
        return fail(c, n, "%s has %d entries; at most %d are supported", key, n->n, max);
    for (int i = 0; i < n->n; i++)
        if (rd_int(c, n->items[i], key, lo, 1 << 20, &out[i]))
            return EG_EINPUT;
    *count = n->n;
    return 0;
}

/* ---- sections ---- */

#define norm_names eg_norm_names
#define prec_names eg_precision_names
static const char *const scale_names[] = {"none", "linear", NULL};

/* ---- graphs: a name or a mapping; hierarchical takes an outer graph, schedule phases ---- */

enum { G_TOP, G_PHASE, G_OUTER }; /* where a graph value sits */

/* p, path, peers of a graph mapping at key (nodes: the graph's node count, 0: unknown) */
static int graph_params(ctx *c, const eg_ynode *map, const char *key, const eg_graph_info *gi,
                        int nodes, eg_graph_leaf *g)
{
    char k2[160];
    const eg_ynode *v;
    if ((v = eg_ymap_get(map, "p", NULL))) {
        snprintf(k2, sizeof k2, "%s.p", key);
        if (!gi->takes_p)
            return fail(c, v, "%s only applies to erdos_renyi, not %s", k2, gi->name);
        if (rd_double(c, v, k2, &g->p))
            return EG_EINPUT;
        if (!(g->p > 0 && g->p <= 1))
            return fail(c, v, "%s must be in (0, 1], got %g", k2, g->p);
    }
    if ((v = eg_ymap_get(map, "peers", NULL))) {
        snprintf(k2, sizeof k2, "%s.peers", key);
        if (!gi->takes_peers)
            return fail(c, v, "%s only applies to base and random_peers, not %s", k2, gi->name);
        if (rd_int(c, v, k2, 1, 1 << 20, &g->peers))
            return EG_EINPUT;
        if (g->kind == EG_GRAPH_RANDOM_PEERS && nodes > 1 && g->peers > nodes - 1)
            return fail(c, v, "%s must be at most %d (the other nodes%s), got %d", k2, nodes - 1,
                        strcmp(key, "graph.outer") ? "" : ": the outer graph joins machines",
                        g->peers);
    }
    if ((v = eg_ymap_get(map, "path", NULL))) {
        snprintf(k2, sizeof k2, "%s.path", key);
        if (!gi->takes_path)
            return fail(c, v, "%s only applies to graph 'file', not %s", k2, gi->name);
        char tmp[EG_PATH_MAX];
        if (rd_str(c, v, k2, tmp, sizeof tmp))
            return EG_EINPUT;
        resolve_path(c, v, tmp, g->path, sizeof g->path);
        struct stat gst;
        if (stat(g->path, &gst) != 0)
            return fail(c, v, "%s '%s' does not exist", k2, g->path);
        if (!S_ISREG(gst.st_mode))
            return fail(c, v, "%s '%s' is not a regular file%s", k2, g->path,
                        S_ISDIR(gst.st_mode) ? " (it is a directory)" : "");
    }
    return 0;
}

static int graph_value(ctx *c, const eg_ynode *n, const char *key, int where, int nodes,
                       eg_graph_phase *lv, eg_graph_spec *top);

/* graph.phases: [{graph: G, until_epoch: E | until_iter: N}, ..., {graph: G}] into top */
static int graph_phases(ctx *c, const eg_ynode *v, int nodes, eg_graph_spec *top)
{
    if (v->kind != EG_Y_SEQ || v->n < 1)
        return fail(c, v, "graph.phases must be a non-empty list of {graph: G, until_epoch: E} "
                          "mappings (the last without until_epoch)");
    if (v->n > EG_GRAPH_MAX_PHASES)
        return fail(c, v, "graph.phases has %d entries; at most %d are supported", v->n,
                    EG_GRAPH_MAX_PHASES);
    static const char *const keys[] = {"graph", "until_epoch", "until_iter", NULL};
    for (int i = 0; i < v->n; i++) {
        const eg_ynode *it = v->items[i];
        eg_graph_phase *ph = &top->phases[i];
        char k[64], k2[96];
        snprintf(k, sizeof k, "graph.phases[%d]", i);
        if (it->kind != EG_Y_MAP)
            return fail(c, it, "%s must be a mapping {graph: G, until_epoch: E}", k);
        if (only_keys(c, it, k, keys))
            return EG_EINPUT;
        const eg_ynode *gv = eg_ymap_get(it, "graph", NULL);
        if (!gv)
            return fail(c, it, "%s needs a graph: key", k);
        snprintf(k2, sizeof k2, "%s.graph", k);
        if (graph_value(c, gv, k2, G_PHASE, nodes, ph, NULL))
            return EG_EINPUT;
        const eg_ynode *ue = eg_ymap_get(it, "until_epoch", NULL);
        const eg_ynode *ui = eg_ymap_get(it, "until_iter", NULL);
        const eg_ynode *u = ue ? ue : ui;
        snprintf(k2, sizeof k2, "%s.%s", k, ue ? "until_epoch" : "until_iter");
        if (ue && ui)
            return fail(c, ui, "%s: give until_epoch or until_iter, not both", k);
        if (i == v->n - 1 && u)
            return fail(c, u, "%s: the last phase has no end (it runs until training ends); "
                              "remove it", k2);
        if (i < v->n - 1 && !u)
            return fail(c, it, "%s needs until_epoch or until_iter (only the last phase has "
                               "none)", k);
        if (!u)
            continue;
        long it_end = 0;
        ph->until_epoch = ue != NULL;
        if (ue ? rd_double(c, ue, k2, &ph->until) : rd_long(c, ui, k2, 1, 1L << 62, &it_end))
            return EG_EINPUT;
        if (ui)
            ph->until = (double)it_end;
        if (!(ph->until > 0))
            return fail(c, u, "%s must be > 0, got %g", k2, ph->until);
        if (i > 0 && ph->until_epoch == top->phases[i - 1].until_epoch &&
            ph->until <= top->phases[i - 1].until)
            return fail(c, u, "%s must be greater than the previous phase's (%.17g)", k2,
                        top->phases[i - 1].until);
    }
    top->nphases = v->n;
    return 0;
}

/* inner_outer_exp2's local at key: n = machines x local, local >= 3, machines >= 2 */
static int graph_inner_outer(ctx *c, const eg_ynode *n, const eg_ynode *lo, const char *key,
                             int nodes, eg_graph_phase *lv)
{
    char k2[160];
    if (!lo)
        return fail(c, n, "%s inner_outer_exp2 needs local (nodes per machine), e.g. {name: "
                          "inner_outer_exp2, local: 4}", key);
    snprintf(k2, sizeof k2, "%s.local", key);
    if (rd_int(c, lo, k2, 1, 1 << 20, &lv->local))
        return EG_EINPUT;
    if (lv->local < 3)
        return fail(c, lo, "%s must be >= 3 for inner_outer_exp2, got %d (one node per machine "
                           "talks across machines, the others form a ring of at least two)",
                    k2, lv->local);
    if (nodes > 0 && nodes % lv->local)
        return fail(c, lo, "%s must divide nodes (%d nodes, local %d: inner_outer_exp2 needs "
                           "nodes = machines x %d)", k2, nodes, lv->local, lv->local);
    if (nodes > 0 && nodes / lv->local < 2)
        return fail(c, lo, "%s %d leaves %d machine%s for %d nodes: inner_outer_exp2 needs at "
                           "least 2 machines (nodes = machines x local)", k2, lv->local,
                    nodes / lv->local, nodes / lv->local == 1 ? "" : "s", nodes);
    return 0;
}

/* local and outer of a hierarchical graph at key (inner_outer_exp2: local only) */
static int graph_machines(ctx *c, const eg_ynode *n, const eg_ynode *map, const char *key,
                          int nodes, eg_graph_phase *lv)
{
    char k2[160];
    const eg_ynode *lo = map ? eg_ymap_get(map, "local", NULL) : NULL;
    const eg_ynode *ou = map ? eg_ymap_get(map, "outer", NULL) : NULL;
    if (lv->g.kind == EG_GRAPH_INNER_OUTER_EXP2)
        return graph_inner_outer(c, n, lo, key, nodes, lv);
    if (!lo || !ou)
        return fail(c, n, "%s hierarchical needs %s, e.g. {name: hierarchical, local: 4, outer: "
                          "onepeer_exp}", key, !lo ? "local (nodes per machine)" : "outer (the "
                          "graph between machines)");
    snprintf(k2, sizeof k2, "%s.local", key);
    if (rd_int(c, lo, k2, 1, 1 << 20, &lv->local))
        return EG_EINPUT;
    if (nodes > 0 && nodes % lv->local)
        return fail(c, lo, "%s must divide nodes (%d nodes, local %d: machines of %d nodes each "
                           "need nodes = machines x %d)", k2, nodes, lv->local, lv->local,
                    lv->local);
    snprintf(k2, sizeof k2, "%s.outer", key);
    eg_graph_phase *tmp = calloc(1, sizeof *tmp);
    if (!tmp)
        return eg_err_set(c->err, EG_ERUN, "out of memory");
    int rc = graph_value(c, ou, k2, G_OUTER, nodes > 0 ? nodes / lv->local : 0, tmp, NULL);
    if (!rc)
        lv->outer = tmp->g;
    free(tmp);
    return rc;
}

/* A graph value at key (where: G_TOP any graph, G_PHASE any but a schedule, G_OUTER one
 * without sub-graphs) into lv; a schedule's phases into top. nodes: 0 when unknown. */
static int graph_value(ctx *c, const eg_ynode *n, const char *key, int where, int nodes,
                       eg_graph_phase *lv, eg_graph_spec *top)
{
    const eg_ynode *map, *nm;
    if (name_or_map(c, n, key, &map, &nm))
        return EG_EINPUT;
    int kind;
    if (rd_kind(c, nm, key, eg_graph_kinds, sizeof eg_graph_kinds[0], &kind))
        return EG_EINPUT;
    const eg_graph_info *gi = &eg_graph_kinds[kind];
    if (where == G_PHASE && gi->phases)
        return fail(c, nm, "%s cannot be a schedule (schedules do not nest)", key);
    if (where == G_OUTER && !gi->nestable)
        return fail(c, nm, "%s cannot be %s (an outer graph has no sub-graphs%s)", key, gi->name,
                    gi->machines ? " or machines" : "");
    if (where != G_TOP && nodes > 0 && gi->pow2 && !eg_is_pow2(nodes))
        return fail(c, nm, "%s %s needs a power-of-two node count (it joins %d %s)", key,
                    gi->name, nodes, where == G_OUTER ? "machines" : "nodes");
    if (where != G_TOP && nodes > 16384 && gi->dense)
        return fail(c, nm, "%s %s with %d %s: dense graphs are limited to 16384", key, gi->name,
                    nodes, where == G_OUTER ? "machines" : "nodes");
    if (where != G_TOP && nodes > 1 && kind == EG_GRAPH_RANDOM_MATCH && nodes % 2)
        return fail(c, nm, "%s random_match needs an even node count (it joins %d %s)", key,
                    nodes, where == G_OUTER ? "machines" : "nodes");
    memset(lv, 0, sizeof *lv);
    lv->g.kind = (eg_graph_kind)kind;
    lv->g.p = 0.2;
    lv->g.peers = 1;
    if (map) {
        static const char *const keys[] = {"name", "p", "path", "peers", "local", "outer",
                                           "phases", NULL};
        if (only_keys(c, map, key, keys) || graph_params(c, map, key, gi, nodes, &lv->g))
            return EG_EINPUT;
        const eg_ynode *v;
        if (!gi->machines && ((v = eg_ymap_get(map, "local", NULL)) ||
                              (v = eg_ymap_get(map, "outer", NULL))))
            return fail(c, v, "%s.%s only applies to hierarchical%s, not %s", key,
                        eg_ymap_get(map, "local", NULL) ? "local" : "outer",
                        eg_ymap_get(map, "local", NULL) ? " and inner_outer_exp2" : "", gi->name);
        if (kind == EG_GRAPH_INNER_OUTER_EXP2 && (v = eg_ymap_get(map, "outer", NULL)))
            return fail(c, v, "%s.outer only applies to hierarchical, not %s (its schedule "
                              "between machines is fixed)", key, gi->name);
        if ((v = eg_ymap_get(map, "phases", NULL)) && !gi->phases)
            return fail(c, v, "%s.phases only applies to schedule, not %s", key, gi->name);
    }
    if (gi->takes_path && !lv->g.path[0])
        return fail(c, n, "graph 'file' needs a path: {name: file, path: W.csv}");
    if (gi->machines && graph_machines(c, n, map, key, nodes, lv))
        return EG_EINPUT;
    if (gi->phases) {
        const eg_ynode *ph = map ? eg_ymap_get(map, "phases", NULL) : NULL;
        if (!ph)
            return fail(c, n, "%s schedule needs phases, e.g. {name: schedule, phases: [{graph: "
                              "exp, until_epoch: 30}, {graph: onepeer_exp}]}", key);
        if (graph_phases(c, ph, nodes, top))
            return EG_EINPUT;
    }
    return 0;
}

static int graph_section(ctx *c, const eg_ynode *n, int nodes, eg_spec *s)
{
    eg_graph_phase *lv = calloc(1, sizeof *lv);
    if (!lv)
        return eg_err_set(c->err, EG_ERUN, "out of memory");
    memset(&s->graph, 0, sizeof s->graph);
    int rc = graph_value(c, n, "graph", G_TOP, nodes, lv, &s->graph);
    if (!rc) {
        s->graph.kind = lv->g.kind;
        s->graph.p = lv->g.p;
        s->graph.peers = lv->g.peers;
        memcpy(s->graph.path, lv->g.path, sizeof s->graph.path);
        s->graph.local = lv->local;
        s->graph.outer = lv->outer;
    }
    free(lv);
    return rc;
}

/* a number in an interval: [lo or (lo, and hi] or hi) as the flags say */
static int rd_interval(ctx *c, const eg_ynode *n, const char *key, double lo, int lo_open,
                       double hi, int hi_open, double *out)
{
    if (rd_double(c, n, key, out))
        return EG_EINPUT;
    double v = *out;
    if ((lo_open ? !(v > lo) : !(v >= lo)) || (hi_open ? !(v < hi) : !(v <= hi)))
        return fail(c, n, "%s must be in %c%g, %g%c, got %g", key, lo_open ? '(' : '[', lo, hi,
                    hi_open ? ')' : ']', v);
    return 0;
}

/* algorithm.compress: a name or {name, ratio | levels} (choco only) */
static int compress_keys(ctx *c, const eg_ynode *n, eg_algo_spec *a)
{
    const eg_ynode *map, *nm, *v;
    if (a->kind != EG_ALGO_CHOCO)
        return fail(c, n, "algorithm.compress only applies to choco, not %s",
                    eg_algo_kinds[a->kind].name);
    if (name_or_map(c, n, "algorithm.compress", &map, &nm))
        return EG_EINPUT;
    int kind;
    if (RD_KIND(c, nm, "algorithm.compress", eg_compress_kinds, &kind))
        return EG_EINPUT;
    a->compress = (eg_compress_kind)kind;
    const eg_compress_info *ci = &eg_compress_kinds[kind];
    if (!map)
        return 0;
    static const char *const keys[] = {"name", "ratio", "levels", NULL};
    if (only_keys(c, map, "algorithm.compress", keys))
        return EG_EINPUT;
    if ((v = eg_ymap_get(map, "ratio", NULL)) &&
        (!ci->takes_ratio ? fail(c, v, "algorithm.compress.ratio only applies to top_k and rand_k, not %s", ci->name)
                          : rd_interval(c, v, "algorithm.compress.ratio", 0, 1, 1, 0, &a->ratio)))
        return EG_EINPUT;
    if ((v = eg_ymap_get(map, "levels", NULL)) &&
        (!ci->takes_levels ? fail(c, v, "algorithm.compress.levels only applies to qsgd, not %s", ci->name)
                           : rd_int(c, v, "algorithm.compress.levels", 1, 1 << 20, &a->levels)))
        return EG_EINPUT;
    return 0;
}

/* the communication keys: local_steps, global_every (gossip algorithms), compress and
 * consensus_step (choco) */
static int algo_comm_keys(ctx *c, const eg_ynode *map, eg_algo_spec *a)
{
    const eg_ynode *v;
    const char *name = eg_algo_kinds[a->kind].name;
    int gossip = eg_algo_kinds[a->kind].vectors > 0;
    if ((v = eg_ymap_get(map, "local_steps", NULL)) &&
        rd_int(c, v, "algorithm.local_steps", 1, 1 << 30, &a->local_steps))
        return EG_EINPUT;
    if (v && !gossip && a->local_steps != 1)
        return fail(c, v, "algorithm.local_steps only applies to gossip algorithms, not %s (it "
                          "averages every iteration)", name);
    if ((v = eg_ymap_get(map, "global_every", NULL)) &&
        rd_long(c, v, "algorithm.global_every", 0, 1L << 40, &a->global_every))
        return EG_EINPUT;
    if (v && !gossip && a->global_every != 0)
        return fail(c, v, "algorithm.global_every only applies to gossip algorithms, not %s "
                          "(it averages every iteration)", name);
    if ((v = eg_ymap_get(map, "compress", NULL)) && compress_keys(c, v, a))
        return EG_EINPUT;
    if ((v = eg_ymap_get(map, "consensus_step", NULL))) {
        if (a->kind != EG_ALGO_CHOCO)
            return fail(c, v, "algorithm.consensus_step only applies to choco, not %s", name);
        if (rd_interval(c, v, "algorithm.consensus_step", 0, 1, 1, 0, &a->consensus_step))
            return EG_EINPUT;
    }
    return 0;
}

static void algo_defaults(eg_algo_spec *a, int kind)
{
    a->kind = (eg_algo_kind)kind;
    a->momentum = eg_algo_kinds[kind].momentum ? 0.9 : 0.0;
    a->weight_decay = 0.0;
    a->nesterov = 0;
    a->weight_decay_norm = 1;
    a->local_steps = 1;
    a->global_every = 0;
    a->compress = EG_COMPRESS_NONE;
    a->ratio = 0.01;
    a->levels = 16;
    a->consensus_step = 0.5;
}

static int algo_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    const eg_ynode *map, *nm;
    if (name_or_map(c, n, "algorithm", &map, &nm))
        return EG_EINPUT;
    int kind;
    if (RD_KIND(c, nm, "algorithm", eg_algo_kinds, &kind))
        return EG_EINPUT;
    algo_defaults(&s->algo, kind);
    int has_mom = eg_algo_kinds[kind].momentum;
    if (map) {
        static const char *const keys[] = {"name", "momentum", "weight_decay", "nesterov",
                                           "weight_decay_norm", "local_steps", "global_every",
                                           "compress", "consensus_step", NULL};
        if (only_keys(c, map, "algorithm", keys))
            return EG_EINPUT;
        const eg_ynode *v;
        if ((v = eg_ymap_get(map, "momentum", NULL))) {
            if (rd_double(c, v, "algorithm.momentum", &s->algo.momentum))
                return EG_EINPUT;
            if (!(s->algo.momentum >= 0 && s->algo.momentum < 1))
                return fail(c, v, "algorithm.momentum must be in [0, 1), got %g", s->algo.momentum);
        }
        if ((v = eg_ymap_get(map, "weight_decay", NULL)) &&
            rd_double_min(c, v, "algorithm.weight_decay", 0, 0, &s->algo.weight_decay))
            return EG_EINPUT;
        if ((v = eg_ymap_get(map, "nesterov", NULL)))
            if (rd_bool(c, v, "algorithm.nesterov", &s->algo.nesterov))
                return EG_EINPUT;
        if ((v = eg_ymap_get(map, "weight_decay_norm", NULL)))
            if (rd_bool(c, v, "algorithm.weight_decay_norm", &s->algo.weight_decay_norm))
                return EG_EINPUT;
        if (algo_comm_keys(c, map, &s->algo))
            return EG_EINPUT;
    }
    if (kind == EG_ALGO_CHOCO && s->algo.compress == EG_COMPRESS_NONE) {
        char known[256];
        EG_KIND_LIST(eg_compress_kinds, known, sizeof known);
        return fail(c, map ? map : n, "algorithm choco needs algorithm.compress (one of: %s), "
                    "e.g. {name: choco, compress: {name: top_k, ratio: 0.01}}", known);
    }
    if (!has_mom) {
        /* dsgd, gt and ed have no momentum buffer: the keys are accepted (sweeps over
         * algorithm.name share them) and have no effect. */
        s->algo.momentum = 0;
        s->algo.nesterov = 0;
    }
    return 0;
}

/* network: {drop, offline}; absent: a perfect network */
static int network_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    s->network.drop = 0;
    s->network.offline = 0;
    if (!n || eg_ynode_is_null(n))
        return 0;
    if (n->kind != EG_Y_MAP)
        return fail(c, n, "network must be a mapping (drop: P, offline: Q)");
    static const char *const keys[] = {"drop", "offline", NULL};
    if (only_keys(c, n, "network", keys))
        return EG_EINPUT;
    const eg_ynode *v;
    if ((v = eg_ymap_get(n, "drop", NULL)) &&
        rd_interval(c, v, "network.drop", 0, 0, 1, 1, &s->network.drop))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "offline", NULL)) &&
        rd_interval(c, v, "network.offline", 0, 0, 1, 1, &s->network.offline))
        return EG_EINPUT;
    if (eg_network_faulty(&s->network) && eg_algo_kinds[s->algo.kind].vectors == 0)
        return fail(c, n, "network faults apply to gossip; %s averages by all-reduce every "
                    "iteration (drop the network: section or use a gossip algorithm)",
                    eg_algo_kinds[s->algo.kind].name);
    return 0;
}

/* groups defaults to 2 when group norm is chosen; 0 (unused) otherwise */
static int model_norm_defaults(eg_model_spec *m)
{
    if (m->norm == EG_NORM_GROUP && m->groups == 0)
        m->groups = 2;
    if (m->norm != EG_NORM_GROUP)
        m->groups = 0;
    return 0;
}

/* model.norm, model.groups, model.norm_stats (cnn and resnet) */
static int model_norm_keys(ctx *c, const eg_ynode *map, eg_spec *s)
{
    eg_model_spec *m = &s->model;
    const eg_ynode *v, *g = eg_ymap_get(map, "groups", NULL), *ns = eg_ymap_get(map, "norm_stats", NULL);
    if ((v = eg_ymap_get(map, "norm", NULL))) {
        char tmp[16];
        if (rd_choice(c, v, "model.norm", norm_names, tmp, sizeof tmp))
            return EG_EINPUT;
        for (int i = 0; norm_names[i]; i++)
            if (!strcmp(tmp, norm_names[i]))
                m->norm = (eg_norm_kind)i;
    }
    if (g) {
        if (m->norm != EG_NORM_GROUP)
            return fail(c, g, "model.groups only applies to norm: group");
        if (rd_int(c, g, "model.groups", 1, 1 << 16, &m->groups))
            return EG_EINPUT;
    }
    if (ns) {
        static const char *const modes[] = {"local", "gossip", NULL};
        char tmp[16];
        if (rd_choice(c, ns, "model.norm_stats", modes, tmp, sizeof tmp))
            return EG_EINPUT;
        s->norm_stats_gossip = !strcmp(tmp, "gossip");
    }
    return model_norm_defaults(m);
}

/* model.depth, model.width (resnet) */
static int resnet_keys(ctx *c, const eg_ynode *map, eg_model_spec *m)
{
    const eg_ynode *v;
    if ((v = eg_ymap_get(map, "depth", NULL))) {
        if (rd_int(c, v, "model.depth", 8, 1000, &m->depth))
            return EG_EINPUT;
        if ((m->depth - 2) % 6)
            return fail(c, v, "model.depth must be 6k+2 (20, 32, 44, 56, 110), got %d", m->depth);
    }
    if ((v = eg_ymap_get(map, "width", NULL)) && rd_int(c, v, "model.width", 1, 4096, &m->width))
        return EG_EINPUT;
    return 0;
}

/* the defaults of each model kind */
static void model_defaults(eg_model_spec *m, eg_model_kind kind)
{
    eg_precision prec = m->precision;
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->precision = prec;
    m->norm = EG_NORM_NONE;
    if (kind == EG_MODEL_MLP) {
        m->hidden[0] = 256;
        m->n_hidden = 1;
    } else if (kind == EG_MODEL_CNN) {
        m->channels[0] = 32;
        m->channels[1] = 64;
        m->n_channels = 2;
        m->kernel = 3;
        m->hidden[0] = 128;
        m->n_hidden = 1;
    } else if (kind == EG_MODEL_RESNET) {
        m->depth = 20;
        m->width = 16;
        m->norm = EG_NORM_BATCH;
    }
}

/* model.hidden, model.channels, model.kernel (mlp and cnn) */
static int layer_keys(ctx *c, const eg_ynode *map, eg_model_spec *m)
{
    const eg_ynode *v;
    int cnn = m->kind == EG_MODEL_CNN;
    if ((v = eg_ymap_get(map, "hidden", NULL)) &&
        rd_int_list(c, v, "model.hidden", cnn ? 0 : 1, m->hidden, cnn ? 1 : EG_MAX_LAYERS,
                    &m->n_hidden))
        return EG_EINPUT;
    if ((v = eg_ymap_get(map, "channels", NULL))) {
        if (rd_int_list(c, v, "model.channels", 1, m->channels, EG_MAX_LAYERS, &m->n_channels))
            return EG_EINPUT;
        if (m->n_channels < 1)
            return fail(c, v, "model.channels needs at least one entry");
    }
    if ((v = eg_ymap_get(map, "kernel", NULL))) {
        if (rd_int(c, v, "model.kernel", 1, 15, &m->kernel))
            return EG_EINPUT;
        if (m->kernel % 2 == 0)
            return fail(c, v, "model.kernel must be odd ('same' padding), got %d", m->kernel);
    }
    return 0;
}

static int model_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    const eg_ynode *map, *nm, *v;
    int kind;
    if (name_or_map(c, n, "model", &map, &nm) || RD_KIND(c, nm, "model", eg_model_kinds, &kind))
        return EG_EINPUT;
    eg_model_spec *m = &s->model;
    const eg_model_info *mi = &eg_model_kinds[kind];
    model_defaults(m, (eg_model_kind)kind);
    s->init_independent = 0;
    s->norm_stats_gossip = 0;
    if (!map)
        return model_norm_defaults(m);
    if (only_keys(c, map, "model", mi->keys))
        return EG_EINPUT;
    if ((v = eg_ymap_get(map, "init", NULL))) {
        static const char *const inits[] = {"same", "independent", NULL};
        char tmp[16];
        if (rd_choice(c, v, "model.init", inits, tmp, sizeof tmp))
            return EG_EINPUT;
        s->init_independent = !strcmp(tmp, "independent");
    }
    if (mi->conv && model_norm_keys(c, map, s))
        return EG_EINPUT;
    if (kind == EG_MODEL_RESNET)
        return resnet_keys(c, map, m);
    return layer_keys(c, map, m);
}

static void data_defaults(eg_data_spec *d, eg_data_kind kind)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->cache = EG_CACHE_MEMORY;
    d->partition = EG_PART_IID;
    d->alpha = 0.5;
    d->batch_size = 32;
    d->dim = 32;
    d->classes = 4;
    d->samples = 512;
    d->test_samples = 2000;
}

/* data.path: must exist (relative to the working directory) */
static int data_path(ctx *c, const eg_ynode *v, const eg_data_info *di, eg_data_spec *d)
{
    char tmp[EG_PATH_MAX];
    if (rd_str(c, v, "data.path", tmp, sizeof tmp))
        return EG_EINPUT;
    if (di->format == EG_DFMT_SYNTH)
        return fail(c, v, "data.path does not apply to the synthetic dataset");
    resolve_path(c, v, tmp, d->path, sizeof d->path);
    if (!path_exists(d->path))
        return fail(c, v, "data.path '%s' does not exist", d->path);
    return 0;
}

static int data_partition(ctx *c, const eg_ynode *v, eg_data_spec *d)
{
    int kind;
    if (RD_KIND(c, v, "data.partition", eg_partition_kinds, &kind))
        return EG_EINPUT;
    d->partition = (eg_partition_kind)kind;
    return 0;
}

/* data.augment: a list of crop and flip */
static int data_augment(ctx *c, const eg_ynode *v, eg_data_spec *d)
{
    if (v->kind == EG_Y_MAP)
        return fail(c, v, "data.augment must be a list such as [crop, flip]");
    int cnt = v->kind == EG_Y_SEQ ? v->n : 1;
    for (int i = 0; i < cnt; i++) {
        const eg_ynode *it = v->kind == EG_Y_SEQ ? v->items[i] : v;
        static const char *const aug[] = {"crop", "flip", NULL};
        char a[16];
        if (rd_choice(c, it, "data.augment", aug, a, sizeof a))
            return EG_EINPUT;
        d->augment |= !strcmp(a, "crop") ? EG_AUG_CROP : EG_AUG_FLIP;
    }
    return 0;
}

/* data.image_size and data.cache (image_folder) */
static int data_image_keys(ctx *c, const eg_ynode *map, const eg_data_info *di, eg_data_spec *d)
{
    const eg_ynode *v;
    int kind;
    if ((v = eg_ymap_get(map, "image_size", NULL)) && !eg_ynode_is_null(v)) {
        if (di->format != EG_DFMT_IMAGES)
            return fail(c, v, "data.image_size only applies to image_folder, not %s", di->name);
        if (rd_int(c, v, "data.image_size", 1, 4096, &d->image_size))
            return EG_EINPUT;
    }
    if ((v = eg_ymap_get(map, "cache", NULL)) && !eg_ynode_is_null(v)) {
        if (RD_KIND(c, v, "data.cache", eg_cache_kinds, &kind))
            return EG_EINPUT;
        if (di->format != EG_DFMT_IMAGES && kind != EG_CACHE_MEMORY)
            return fail(c, v, "data.cache: stream only applies to image_folder, not %s "
                        "(the other formats are held in memory as bytes or floats)", di->name);
        d->cache = (eg_data_cache)kind;
    }
    return 0;
}

/* data.dim, classes, samples, test_samples (synthetic) */
static int data_synth_keys(ctx *c, const eg_ynode *map, const eg_data_info *di, eg_data_spec *d)
{
    static const char *const synth_keys[] = {"dim", "classes", "samples", "test_samples", NULL};
    int *synth_vals[] = {&d->dim, &d->classes, &d->samples, &d->test_samples};
    long synth_lo[] = {1, 2, 1, 1};
    for (int i = 0; synth_keys[i]; i++) {
        const eg_ynode *v = eg_ymap_get(map, synth_keys[i], NULL);
        if (!v)
            continue;
        char key[64];
        snprintf(key, sizeof key, "data.%s", synth_keys[i]);
        if (di->format != EG_DFMT_SYNTH)
            return fail(c, v, "%s only applies to the synthetic dataset", key);
        if (rd_int(c, v, key, synth_lo[i], 1 << 24, synth_vals[i]))
            return EG_EINPUT;
    }
    return 0;
}

static int data_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    const eg_ynode *map, *nm, *v;
    if (name_or_map(c, n, "data", &map, &nm))
        return EG_EINPUT;
    eg_data_spec *d = &s->data;
    int kind;
    if (nm->kind == EG_Y_SCALAR && !strcmp(nm->str, "png_folder"))
        kind = EG_DATA_IMAGE_FOLDER; /* the old name of image_folder */
    else if (RD_KIND(c, nm, "data", eg_data_kinds, &kind))
        return EG_EINPUT;
    data_defaults(d, (eg_data_kind)kind);
    const eg_data_info *di = &eg_data_kinds[kind];
    static const char *const keys[] = {"name", "path", "partition", "alpha", "batch_size",
                                       "augment", "heterogeneity", "dim", "classes", "samples",
                                       "test_samples", "image_size", "cache", NULL};
    if (map && only_keys(c, map, "data", keys))
        return EG_EINPUT;
    if (map &&
        ((((v = eg_ymap_get(map, "path", NULL)) && !eg_ynode_is_null(v)) && data_path(c, v, di, d)) ||
         ((v = eg_ymap_get(map, "partition", NULL)) && data_partition(c, v, d)) ||
         ((v = eg_ymap_get(map, "alpha", NULL)) && rd_double_min(c, v, "data.alpha", 0, 1, &d->alpha)) ||
         ((v = eg_ymap_get(map, "batch_size", NULL)) &&
          rd_int(c, v, "data.batch_size", 1, 1 << 20, &d->batch_size)) ||
         (((v = eg_ymap_get(map, "augment", NULL)) && !eg_ynode_is_null(v)) && data_augment(c, v, d)) ||
         ((v = eg_ymap_get(map, "heterogeneity", NULL)) &&
          rd_double_min(c, v, "data.heterogeneity", 0, 0, &d->heterogeneity)) ||
         data_image_keys(c, map, di, d) || data_synth_keys(c, map, di, d)))
        return EG_EINPUT;
    if (di->needs_path && !d->path[0])
        return fail(c, n, "data '%s' needs data.path (where the files are)", di->name);
    return 0;
}

static int train_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    eg_train_spec *t = &s->train;
    t->epochs = 1;
    t->iterations = 0;
    t->log_every = 50;
    t->eval_every = 0;
    t->checkpoint_every = 500;
    t->micro_batch = EG_MICRO_BATCH_DEFAULT;
    t->precision = EG_PREC_F32;
    s->model.precision = EG_PREC_F32;
    if (!n)
        return 0;
    if (n->kind != EG_Y_MAP)
        return fail(c, n, "train must be a mapping (epochs:, log_every:, ...)");
    static const char *const keys[] = {"epochs", "iterations", "log_every", "eval_every",
                                       "checkpoint_every", "precision", "micro_batch", NULL};
    if (only_keys(c, n, "train", keys))
        return EG_EINPUT;
    const eg_ynode *v, *ep = eg_ymap_get(n, "epochs", NULL), *it = eg_ymap_get(n, "iterations", NULL);
    if (ep && it)
        return fail(c, it, "give train.epochs or train.iterations, not both");
    if (ep && rd_double_min(c, ep, "train.epochs", 0, 1, &t->epochs))
        return EG_EINPUT;
    if (it && rd_long(c, it, "train.iterations", 1, 1L << 40, &t->iterations))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "log_every", NULL)) &&
        rd_long(c, v, "train.log_every", 1, 1L << 40, &t->log_every))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "eval_every", NULL)) &&
        rd_long(c, v, "train.eval_every", 0, 1L << 40, &t->eval_every))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "checkpoint_every", NULL)) &&
        rd_long(c, v, "train.checkpoint_every", 0, 1L << 40, &t->checkpoint_every))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "micro_batch", NULL)) &&
        rd_int(c, v, "train.micro_batch", 1, 1 << 20, &t->micro_batch))
        return EG_EINPUT;
    if ((v = eg_ymap_get(n, "precision", NULL))) {
        char tmp[8];
        if (rd_choice(c, v, "train.precision", prec_names, tmp, sizeof tmp))
            return EG_EINPUT;
        t->precision = strcmp(tmp, "bf16") ? EG_PREC_F32 : EG_PREC_BF16;
        s->model.precision = t->precision;
    }
    return 0;
}

/* lr.milestones: increasing positive epochs */
static int rd_milestones(ctx *c, const eg_ynode *v, eg_lr_spec *l)
{
    if (v->kind != EG_Y_SEQ)
        return fail(c, v, "lr.milestones must be a list of epochs such as [30, 60, 80]");
    if (v->n > EG_MAX_MILESTONES)
        return fail(c, v, "lr.milestones has %d entries; at most %d are supported", v->n,
                    EG_MAX_MILESTONES);
    for (int i = 0; i < v->n; i++) {
        if (rd_double(c, v->items[i], "lr.milestones", &l->milestones[i]))
            return EG_EINPUT;
        if (!(l->milestones[i] > 0) || (i && l->milestones[i] <= l->milestones[i - 1]))
            return fail(c, v->items[i], "lr.milestones must be positive and increasing");
    }
    l->n_milestones = v->n;
    return 0;
}

static int lr_section(ctx *c, const eg_ynode *n, eg_spec *s)
{
    eg_lr_spec *l = &s->lr;
    *l = (eg_lr_spec){.base = 0.1, .schedule = EG_SCHED_CONSTANT, .gamma = 0.1};
    if (!n)
        return 0;
    if (n->kind == EG_Y_SCALAR) /* lr: 0.05 is shorthand for a constant rate */
        return rd_double_min(c, n, "lr", 0, 1, &l->base);
    if (n->kind != EG_Y_MAP)
        return fail(c, n, "lr must be a mapping (base:, schedule:, ...)");
    static const char *const keys[] = {"base", "scale", "warmup_epochs", "schedule", "milestones",
                                       "gamma", NULL};
    if (only_keys(c, n, "lr", keys))
        return EG_EINPUT;
    const eg_ynode *v;
    char sc[16];
    int sk;
    if (((v = eg_ymap_get(n, "base", NULL)) && rd_double_min(c, v, "lr.base", 0, 1, &l->base)) ||
        ((v = eg_ymap_get(n, "scale", NULL)) && rd_choice(c, v, "lr.scale", scale_names, sc, sizeof sc)) ||
        ((v = eg_ymap_get(n, "warmup_epochs", NULL)) &&
         rd_double_min(c, v, "lr.warmup_epochs", 0, 0, &l->warmup_epochs)) ||
        ((v = eg_ymap_get(n, "schedule", NULL)) && RD_KIND(c, v, "lr.schedule", eg_sched_kinds, &sk)) ||
        ((v = eg_ymap_get(n, "milestones", NULL)) && !eg_ynode_is_null(v) && rd_milestones(c, v, l)) ||
        ((v = eg_ymap_get(n, "gamma", NULL)) && rd_double_min(c, v, "lr.gamma", 0, 1, &l->gamma)))
        return EG_EINPUT;
    if (eg_ymap_get(n, "scale", NULL))
        l->scale_linear = !strcmp(sc, "linear");
    if (eg_ymap_get(n, "schedule", NULL))
        l->schedule = (eg_sched_kind)sk;
    if (l->schedule == EG_SCHED_STEP && l->n_milestones == 0)
        return fail(c, n, "lr.schedule step needs lr.milestones (epochs), e.g. [30, 60]");
    return 0;
}

static void file_stem(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, len, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = 0;
}

/* the spec's top-level keys (convert checks them, sweeps may vary any of them but sweep) */
static const char *const TOP_KEYS[] = {"name", "seed", "nodes", "graph", "algorithm", "model",
                                       "data", "train", "lr", "network", "output", "sweep",
                                       NULL};

static int convert(ctx *c, const eg_ynode *root, eg_spec *s)
{
    if (only_keys(c, root, NULL, TOP_KEYS))
        return EG_EINPUT;
    const eg_ynode *v;
    file_stem(c->file, s->name, sizeof s->name);
    if ((v = eg_ymap_get(root, "name", NULL)) && !eg_ynode_is_null(v)) {
        if (rd_str(c, v, "name", s->name, sizeof s->name))
            return EG_EINPUT;
        if (!s->name[0] || strchr(s->name, '/'))
            return fail(c, v, "name must be a non-empty word without '/'");
    }
    s->seed = 1;
    if ((v = eg_ymap_get(root, "seed", NULL))) {
        long seed;
        if (rd_long(c, v, "seed", 0, 1L << 62, &seed))
            return EG_EINPUT;
        s->seed = (uint64_t)seed;
    }
    static const char *const required[] = {"nodes", "graph", "algorithm", "model", "data", NULL};
    for (int i = 0; required[i]; i++)
        if (!eg_ymap_get(root, required[i], NULL))
            return fail(c, root, "missing required key '%s'", required[i]);
    v = eg_ymap_get(root, "nodes", NULL);
    if (rd_int(c, v, "nodes", 1, 1 << 20, &s->nodes))
        return EG_EINPUT;
    if (graph_section(c, eg_ymap_get(root, "graph", NULL), s->nodes, s) ||
        algo_section(c, eg_ymap_get(root, "algorithm", NULL), s) ||
        model_section(c, eg_ymap_get(root, "model", NULL), s) ||
        data_section(c, eg_ymap_get(root, "data", NULL), s) ||
        train_section(c, eg_ymap_get(root, "train", NULL), s) ||
        lr_section(c, eg_ymap_get(root, "lr", NULL), s) ||
        network_section(c, eg_ymap_get(root, "network", NULL), s))
        return EG_EINPUT;
    snprintf(s->out_dir, sizeof s->out_dir, "runs/%s", s->name);
    if ((v = eg_ymap_get(root, "output", NULL)) && !eg_ynode_is_null(v)) {
        if (v->kind != EG_Y_MAP)
            return fail(c, v, "output must be a mapping (dir: ...)");
        static const char *const okeys[] = {"dir", NULL};
        if (only_keys(c, v, "output", okeys))
            return EG_EINPUT;
        const eg_ynode *d = eg_ymap_get(v, "dir", NULL);
        if (d && !eg_ynode_is_null(d) && rd_str(c, d, "output.dir", s->out_dir, sizeof s->out_dir))
            return EG_EINPUT;
    }
    if ((v = eg_ymap_get(root, "sweep", NULL)) && !eg_ynode_is_null(v)) {
        if (v->kind != EG_Y_MAP)
            return fail(c, v, "sweep must be a mapping of dotted keys to lists of values");
        for (int i = 0; i < v->n; i++)
            if (v->items[i]->kind != EG_Y_SEQ || v->items[i]->n == 0)
                return fail(c, v->items[i], "sweep.%s must be a non-empty list of values", v->keys[i]);
    }
    /* the graph must fit the node count */
    const char *gname = eg_graph_kinds[s->graph.kind].name;
    if (eg_graph_kinds[s->graph.kind].dense && s->nodes > 16384)
        return fail(c, eg_ymap_get(root, "graph", NULL),
                    "graph %s with %d nodes: dense graphs are limited to 16384 nodes", gname,
                    s->nodes);
    /* built once: the run takes it over (eg_spec_take_topo) */
    eg_err terr = {0};
    if (eg_topo_init(&s->topo, &s->graph, s->nodes, s->seed, &terr))
        return fail(c, eg_ymap_get(root, "graph", NULL), "graph %s: %s", gname, terr.msg);
    return 0;
}

/* ---- overrides ---- */

/* Applies KEY=VALUE to the tree. label is stored in the nodes (not owned here). */
/* parses a --set value as YAML and marks every node of it as coming from --set (line 0) */
static eg_ynode *set_value(ctx *c, const char *val, const char *label)
{
    eg_err perr = {0};
    eg_ynode *v = eg_yaml_parse(val, strlen(val), label, 0, &perr);
    if (!v) {
        eg_err_set(c->err, EG_EINPUT, "%s: value is not valid YAML: %s", label, perr.msg);
        return NULL;
    }
    eg_ynode *stack[256];
    int sp = 0;
    stack[sp++] = v;
    while (sp) {
        eg_ynode *x = stack[--sp];
        x->line = 0;
        x->col = 0;
        x->src = label;
        for (int i = 0; i < x->n && sp < 256; i++)
            stack[sp++] = x->items[i];
    }
    return v;
}

/* the mapping under key `part` of cur, made when missing (a scalar such as `graph: ring`
 * becomes {name: ring} so that --set graph.p=... can add to it); NULL with err set */
static eg_ynode *set_parent(ctx *c, eg_ynode *cur, const char *part, const char *label)
{
    eg_ynode *child = eg_ymap_get(cur, part, NULL);
    if (!child || eg_ynode_is_null(child)) {
        child = eg_ynode_new(EG_Y_MAP, NULL, label, 0, 0);
        if (!child || eg_ymap_set(cur, part, child, 0, 0))
            goto oom;
        return child;
    }
    if (child->kind == EG_Y_SCALAR) {
        eg_ynode *m = eg_ynode_new(EG_Y_MAP, NULL, child->src, child->line, child->col);
        eg_ynode *nm = eg_ynode_new(EG_Y_SCALAR, child->str, child->src, child->line, child->col);
        if (!m || !nm || eg_ymap_set(m, "name", nm, child->line, child->col)) {
            eg_ynode_free(m);
            eg_ynode_free(nm);
            goto oom;
        }
        eg_ymap_set(cur, part, m, 0, 0);
        return m;
    }
    if (child->kind == EG_Y_MAP)
        return child;
    eg_err_set(c->err, EG_EINPUT, "%s: '%s' is a list, it has no sub-keys", label, part);
    return NULL;
oom:
    eg_err_set(c->err, EG_ERUN, "out of memory");
    return NULL;
}

/* puts v under key `part` of cur; train.epochs and train.iterations exclude each other:
 * setting one on the command line replaces the other from the file */
static int set_leaf(ctx *c, eg_ynode *root, eg_ynode *cur, const char *part, eg_ynode *v)
{
    if (eg_ymap_set(cur, part, v, 0, 0))
        return eg_err_set(c->err, EG_ERUN, "out of memory");
    if (cur != eg_ymap_get(root, "train", NULL))
        return 0;
    const char *other = !strcmp(part, "epochs") ? "iterations"
                        : !strcmp(part, "iterations") ? "epochs" : NULL;
    eg_ynode *o = other ? eg_ymap_get(cur, other, NULL) : NULL;
    if (o && o->line > 0)
        eg_ymap_del(cur, other);
    return 0;
}

/* Applies KEY=VALUE to the tree. label is stored in the nodes (not owned here). */
static int apply_set(ctx *c, eg_ynode *root, const char *set, const char *label)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set)
        return eg_err_set(c->err, EG_EINPUT, "--set %s: expected KEY=VALUE (e.g. --set lr.base=0.05)", set);
    size_t klen = (size_t)(eq - set);
    char key[256];
    if (klen >= sizeof key)
        return eg_err_set(c->err, EG_EINPUT, "--set %s: key too long", set);
    memcpy(key, set, klen);
    key[klen] = 0;
    eg_ynode *v = set_value(c, eq + 1, label), *cur = root;
    if (!v)
        return EG_EINPUT;
    char *save = NULL, *part = strtok_r(key, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        int rc = EG_OK;
        if (!*part)
            rc = eg_err_set(c->err, EG_EINPUT, "%s: empty key part", label);
        else if (!next)
            return set_leaf(c, root, cur, part, v) ? (eg_ynode_free(v), EG_ERUN) : 0;
        else if (!(cur = set_parent(c, cur, part, label)))
            rc = c->err->code ? c->err->code : EG_EINPUT;
        if (rc) {
            eg_ynode_free(v);
            return rc;
        }
        part = next;
    }
    eg_ynode_free(v);
    return eg_err_set(c->err, EG_EINPUT, "%s: empty key", label);
}

static int load_tree(eg_spec *spec, const char *file, char *const *sets, int nsets, eg_err *err)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->file, sizeof spec->file, "%s", file);
    spec->tree = eg_yaml_parse_file(file, err);
    if (!spec->tree)
        return EG_EINPUT;
    ctx c = {spec->file, err, 0};
    if (nsets > 0) {
        spec->labels = calloc((size_t)nsets, sizeof *spec->labels);
        if (!spec->labels)
            return eg_err_set(err, EG_ERUN, "out of memory");
    }
    for (int i = 0; i < nsets; i++) {
        size_t l = strlen(sets[i]) + 8;
        spec->labels[i] = malloc(l);
        if (!spec->labels[i])
            return eg_err_set(err, EG_ERUN, "out of memory");
        spec->nlabels = i + 1;
        snprintf(spec->labels[i], l, "--set %s", sets[i]);
        int rc = apply_set(&c, spec->tree, sets[i], spec->labels[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int eg_spec_load(eg_spec *spec, const char *file, char *const *sets, int nsets, eg_err *err)
{
    int rc = load_tree(spec, file, sets, nsets, err);
    if (rc)
        return rc;
    ctx c = {spec->file, err, 0};
    return convert(&c, spec->tree, spec);
}

void eg_spec_free(eg_spec *spec)
{
    if (!spec)
        return;
    eg_ynode_free(spec->tree);
    for (int i = 0; i < spec->nlabels; i++)
        free(spec->labels[i]);
    free(spec->labels);
    eg_topo_free(spec->topo);
    spec->topo = NULL;
    spec->tree = NULL;
    spec->labels = NULL;
    spec->nlabels = 0;
}

void eg_spec_where(const eg_spec *spec, const char *dotted, char *buf, size_t len)
{
    const eg_ynode *n = spec->tree;
    char key[256];
    snprintf(key, sizeof key, "%s", dotted);
    char *save = NULL;
    for (char *p = strtok_r(key, ".", &save); p && n; p = strtok_r(NULL, ".", &save)) {
        const eg_ynode *ch = eg_ymap_get(n, p, NULL);
        if (!ch)
            break;
        n = ch;
    }
    node_where(spec->file, n == spec->tree ? NULL : n, buf, len);
}

/* ---- resolved YAML ---- */

static void ap(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ap(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    if (!*buf)
        return;
    for (;;) {
        va_list a;
        va_start(a, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, a);
        va_end(a);
        if (n < 0)
            return;
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        char *nb = realloc(*buf, *cap * 2 + (size_t)n);
        if (!nb) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = nb;
        *cap = *cap * 2 + (size_t)n;
    }
}

static const char *q(const char *s, char *tmp, size_t len)
{
    eg_yaml_quote(s, tmp, len);
    return tmp;
}

/* a graph without sub-graphs: its name, or a flow mapping with its parameters */
static void leaf_yaml(char **b, size_t *len, size_t *cap, const eg_graph_leaf *g)
{
    const eg_graph_info *gi = &eg_graph_kinds[g->kind];
    char t1[EG_PATH_MAX * 2 + 8];
    if (gi->takes_p)
        ap(b, len, cap, "{name: %s, p: %.17g}", gi->name, g->p);
    else if (gi->takes_path)
        ap(b, len, cap, "{name: %s, path: %s}", gi->name, q(g->path, t1, sizeof t1));
    else if (gi->takes_peers)
        ap(b, len, cap, "{name: %s, peers: %d}", gi->name, g->peers > 0 ? g->peers : 1);
    else
        ap(b, len, cap, "%s", gi->name);
}

/* a leaf or a hierarchical graph */
static void level_yaml(char **b, size_t *len, size_t *cap, const eg_graph_leaf *g, int local,
                       const eg_graph_leaf *outer)
{
    if (!eg_graph_kinds[g->kind].machines) {
        leaf_yaml(b, len, cap, g);
        return;
    }
    if (g->kind == EG_GRAPH_INNER_OUTER_EXP2) {
        ap(b, len, cap, "{name: %s, local: %d}", eg_graph_kinds[g->kind].name, local);
        return;
    }
    ap(b, len, cap, "{name: %s, local: %d, outer: ", eg_graph_kinds[g->kind].name, local);
    leaf_yaml(b, len, cap, outer);
    ap(b, len, cap, "}");
}

/* the graph line's value (flow style; the existing graphs print as they always did) */
static void graph_yaml(char **b, size_t *len, size_t *cap, const eg_graph_spec *g)
{
    if (eg_graph_kinds[g->kind].phases) {
        ap(b, len, cap, "{name: %s, phases: [", eg_graph_kinds[g->kind].name);
        for (int i = 0; i < g->nphases; i++) {
            const eg_graph_phase *ph = &g->phases[i];
            ap(b, len, cap, "%s{graph: ", i ? ", " : "");
            level_yaml(b, len, cap, &ph->g, ph->local, &ph->outer);
            if (i < g->nphases - 1)
                ap(b, len, cap, ", %s: %.17g", ph->until_epoch ? "until_epoch" : "until_iter",
                   ph->until);
            ap(b, len, cap, "}");
        }
        ap(b, len, cap, "]}");
        return;
    }
    eg_graph_leaf *top = malloc(sizeof *top);
    if (!top) {
        free(*b);
        *b = NULL;
        return;
    }
    top->kind = g->kind;
    top->p = g->p;
    top->peers = g->peers;
    memcpy(top->path, g->path, sizeof top->path);
    level_yaml(b, len, cap, top, g->local, &g->outer);
    free(top);
}

/* algorithm.local_steps, global_every; choco's compress and consensus_step */
static void algo_comm_yaml(char **b, size_t *len, size_t *cap, const eg_algo_spec *a)
{
    ap(b, len, cap, "  local_steps: %d\n  global_every: %ld\n", a->local_steps, a->global_every);
    if (a->kind != EG_ALGO_CHOCO)
        return;
    const eg_compress_info *ci = &eg_compress_kinds[a->compress];
    ap(b, len, cap, "  compress: {name: %s", ci->name);
    if (ci->takes_ratio)
        ap(b, len, cap, ", ratio: %.17g", a->ratio);
    if (ci->takes_levels)
        ap(b, len, cap, ", levels: %d", a->levels);
    ap(b, len, cap, "}\n  consensus_step: %.17g\n", a->consensus_step);
}

/* "[a, b, c]" of n ints */
static void ints_yaml(char **b, size_t *len, size_t *cap, const int *v, int n)
{
    ap(b, len, cap, "[");
    for (int i = 0; i < n; i++)
        ap(b, len, cap, "%s%d", i ? ", " : "", v[i]);
    ap(b, len, cap, "]");
}

/* the model: block, with the keys its kind takes */
static void model_yaml(char **b, size_t *len, size_t *cap, const eg_spec *s)
{
    const eg_model_spec *m = &s->model;
    ap(b, len, cap, "model:\n  name: %s\n  init: %s\n", eg_model_kinds[m->kind].name,
       s->init_independent ? "independent" : "same");
    if (m->kind == EG_MODEL_RESNET)
        ap(b, len, cap, "  depth: %d\n  width: %d\n", m->depth, m->width);
    if (m->kind == EG_MODEL_MLP || m->kind == EG_MODEL_CNN) {
        ap(b, len, cap, "  hidden: ");
        ints_yaml(b, len, cap, m->hidden, m->n_hidden);
        ap(b, len, cap, "\n");
    }
    if (m->kind == EG_MODEL_CNN) {
        ap(b, len, cap, "  channels: ");
        ints_yaml(b, len, cap, m->channels, m->n_channels);
        ap(b, len, cap, "\n  kernel: %d\n", m->kernel);
    }
    if (!eg_model_kinds[m->kind].conv)
        return;
    ap(b, len, cap, "  norm: %s\n", norm_names[m->norm]);
    if (m->norm == EG_NORM_GROUP)
        ap(b, len, cap, "  groups: %d\n", m->groups);
    if (m->norm == EG_NORM_BATCH)
        ap(b, len, cap, "  norm_stats: %s\n", s->norm_stats_gossip ? "gossip" : "local");
}

char *eg_spec_to_yaml(const eg_spec *s, eg_err *err)
{
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    if (!b) {
        eg_err_set(err, EG_ERUN, "out of memory");
        return NULL;
    }
    b[0] = 0;
    char t1[EG_PATH_MAX * 2 + 8];
    ap(&b, &len, &cap, "# resolved by expgraph %s: every key with its value\n", EG_VERSION);
    ap(&b, &len, &cap, "name: %s\n", q(s->name, t1, sizeof t1));
    ap(&b, &len, &cap, "seed: %llu\n", (unsigned long long)s->seed);
    ap(&b, &len, &cap, "nodes: %d\n", s->nodes);
    ap(&b, &len, &cap, "graph: ");
    graph_yaml(&b, &len, &cap, &s->graph);
    ap(&b, &len, &cap, "\n");
    ap(&b, &len, &cap, "algorithm:\n  name: %s\n  momentum: %.17g\n  weight_decay: %.17g\n  nesterov: %s\n",
       eg_algo_kinds[s->algo.kind].name, s->algo.momentum, s->algo.weight_decay,
       s->algo.nesterov ? "true" : "false");
    ap(&b, &len, &cap, "  weight_decay_norm: %s\n", s->algo.weight_decay_norm ? "true" : "false");
    algo_comm_yaml(&b, &len, &cap, &s->algo);
    model_yaml(&b, &len, &cap, s);
    const eg_data_spec *d = &s->data;
    ap(&b, &len, &cap, "data:\n  name: %s\n", eg_data_kinds[d->kind].name);
    if (d->path[0])
        ap(&b, &len, &cap, "  path: %s\n", q(d->path, t1, sizeof t1));
    else
        ap(&b, &len, &cap, "  path: null\n");
    if (eg_data_kinds[d->kind].format == EG_DFMT_IMAGES && d->image_size > 0)
        ap(&b, &len, &cap, "  image_size: %d\n", d->image_size);
    if (d->cache != EG_CACHE_MEMORY) /* memory, the default, unwritten: older specs' text */
        ap(&b, &len, &cap, "  cache: %s\n", eg_cache_kinds[d->cache].name);
    ap(&b, &len, &cap, "  partition: %s\n  alpha: %.17g\n  batch_size: %d\n",
       eg_partition_kinds[d->partition].name, d->alpha,
       d->batch_size);
    ap(&b, &len, &cap, "  augment: [%s%s%s]\n", (d->augment & EG_AUG_CROP) ? "crop" : "",
       (d->augment & EG_AUG_CROP) && (d->augment & EG_AUG_FLIP) ? ", " : "",
       (d->augment & EG_AUG_FLIP) ? "flip" : "");
    ap(&b, &len, &cap, "  heterogeneity: %.17g\n", d->heterogeneity);
    if (eg_data_kinds[d->kind].format == EG_DFMT_SYNTH)
        ap(&b, &len, &cap, "  dim: %d\n  classes: %d\n  samples: %d\n  test_samples: %d\n", d->dim,
           d->classes, d->samples, d->test_samples);
    ap(&b, &len, &cap, "train:\n");
    if (s->train.iterations > 0)
        ap(&b, &len, &cap, "  iterations: %ld\n", s->train.iterations);
    else
        ap(&b, &len, &cap, "  epochs: %.17g\n", s->train.epochs);
    ap(&b, &len, &cap, "  log_every: %ld\n  eval_every: %ld\n  checkpoint_every: %ld\n",
       s->train.log_every, s->train.eval_every, s->train.checkpoint_every);
    ap(&b, &len, &cap, "  precision: %s\n", prec_names[s->train.precision]);
    ap(&b, &len, &cap, "  micro_batch: %d\n", s->train.micro_batch);
    ap(&b, &len, &cap, "lr:\n  base: %.17g\n  scale: %s\n  warmup_epochs: %.17g\n  schedule: %s\n",
       s->lr.base, s->lr.scale_linear ? "linear" : "none", s->lr.warmup_epochs,
       eg_sched_kinds[s->lr.schedule].name);
    ap(&b, &len, &cap, "  milestones: [");
    for (int i = 0; i < s->lr.n_milestones; i++)
        ap(&b, &len, &cap, "%s%.17g", i ? ", " : "", s->lr.milestones[i]);
    ap(&b, &len, &cap, "]\n  gamma: %.17g\n", s->lr.gamma);
    ap(&b, &len, &cap, "network:\n  drop: %.17g\n  offline: %.17g\n", s->network.drop,
       s->network.offline);
    ap(&b, &len, &cap, "output:\n  dir: %s\n", q(s->out_dir, t1, sizeof t1));
    if (!b)
        eg_err_set(err, EG_ERUN, "out of memory");
    return b;
}

eg_topo *eg_spec_take_topo(eg_spec *spec)
{
    eg_topo *t = spec->topo;
    spec->topo = NULL;
    return t;
}

uint64_t eg_spec_hash(const eg_spec *spec)
{
    eg_err e;
    char *y = eg_spec_to_yaml(spec, &e);
    if (!y)
        return 0;
    uint64_t h = eg_fnv1a(EG_FNV_INIT, y, strlen(y));
    free(y);
    return h;
}

int eg_spec_graph_from_text(const char *text, eg_graph_spec *g, eg_err *err)
{
    memset(g, 0, sizeof *g);
    eg_ynode *v = eg_yaml_parse(text, strlen(text), "graph", 0, err);
    if (!v)
        return EG_EINPUT;
    /* reuse the spec reader with a throwaway spec; nodes checked by the caller */
    eg_spec s;
    memset(&s, 0, sizeof s);
    ctx c = {"graph", err, 1};
    int rc = graph_section(&c, v, 0, &s);
    eg_ynode_free(v);
    if (rc)
        return rc;
    *g = s.graph;
    return 0;
}

/* ---- sweeps ---- */

/* sweep key k: a list of values under a spec key; its values as flow YAML into sw */
static int sweep_key(ctx *c, const eg_ynode *s, int k, eg_sweep *sw)
{
    const eg_ynode *list = s->items[k];
    if (list->kind != EG_Y_SEQ || list->n == 0)
        return fail(c, list, "sweep.%s must be a non-empty list of values", s->keys[k]);
    char first[64];
    snprintf(first, sizeof first, "%s", s->keys[k]);
    char *dot = strchr(first, '.');
    if (dot)
        *dot = 0;
    int ok = 0;
    for (int i = 0; TOP_KEYS[i]; i++)
        ok |= strcmp(first, TOP_KEYS[i]) == 0 && strcmp(first, "sweep") != 0;
    if (!ok)
        return fail_key(c, s, k, "sweep key '%s' is not a spec key", s->keys[k]);
    sw->keys[k] = strdup(s->keys[k]);
    sw->nvals[k] = list->n;
    sw->vals[k] = calloc((size_t)list->n, sizeof(char *));
    if (!sw->keys[k] || !sw->vals[k])
        return eg_err_set(c->err, EG_ERUN, "out of memory");
    for (int v = 0; v < list->n; v++)
        sw->vals[k][v] = eg_ynode_to_flow(list->items[v]);
    if (sw->npoints > 1000000L / list->n)
        return fail(c, s, "sweep has more than a million points; split it");
    sw->npoints *= list->n;
    return 0;
}

int eg_sweep_load(eg_sweep *sw, const char *file, char *const *sets, int nsets, eg_err *err)
{
    memset(sw, 0, sizeof *sw);
    eg_spec spec;
    int rc = load_tree(&spec, file, sets, nsets, err);
    ctx c = {spec.file, err, 0};
    const eg_ynode *s = rc ? NULL : eg_ymap_get(spec.tree, "sweep", NULL);
    if (rc)
        ;
    else if (!s || eg_ynode_is_null(s) || s->kind != EG_Y_MAP || s->n == 0)
        rc = fail(&c, s, "no sweep: block (add e.g. sweep: {graph: [ring, exp], nodes: [8, 16]})");
    else if (s->n > 64)
        rc = fail(&c, s, "sweep has %d keys; at most 64 are supported", s->n);
    else if (!(sw->keys = calloc((size_t)s->n, sizeof *sw->keys)) ||
             !(sw->nvals = calloc((size_t)s->n, sizeof *sw->nvals)) ||
             !(sw->vals = calloc((size_t)s->n, sizeof *sw->vals)))
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    if (!rc) {
        sw->nkeys = s->n;
        sw->npoints = 1;
    }
    for (int k = 0; !rc && k < sw->nkeys; k++)
        rc = sweep_key(&c, s, k, sw);
    eg_spec_free(&spec);
    return rc;
}

void eg_sweep_free(eg_sweep *sw)
{
    if (!sw)
        return;
    for (int k = 0; k < sw->nkeys; k++) {
        if (sw->keys)
            free(sw->keys[k]);
        if (sw->vals && sw->vals[k]) {
            for (int v = 0; v < sw->nvals[k]; v++)
                free(sw->vals[k][v]);
            free(sw->vals[k]);
        }
    }
    free(sw->keys);
    free(sw->nvals);
    free(sw->vals);
    memset(sw, 0, sizeof *sw);
}

/* directory-safe version of a value: keeps [A-Za-z0-9._-], maps the rest */
static void dir_safe(const char *v, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = v; *p && o + 1 < len; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '+')
            out[o++] = (char)ch;
        else if (ch == ':' || ch == ' ' || ch == '{' || ch == '}' || ch == '"' || ch == '\'' ||
                 ch == '[' || ch == ']')
            continue;
        else
            out[o++] = '_';
    }
    out[o] = 0;
}

int eg_sweep_point(const eg_sweep *sw, long p, char **sets, char *dir, size_t dirlen)
{
    long idx[64];
    long rem = p;
    for (int k = sw->nkeys - 1; k >= 0; k--) {
        idx[k] = rem % sw->nvals[k];
        rem /= sw->nvals[k];
    }
    size_t o = 0;
    dir[0] = 0;
    for (int k = 0; k < sw->nkeys; k++) {
        const char *v = sw->vals[k][idx[k]];
        size_t l = strlen(sw->keys[k]) + strlen(v) + 2;
        sets[k] = malloc(l);
        if (!sets[k])
            return EG_ERUN;
        snprintf(sets[k], l, "%s=%s", sw->keys[k], v);
        char safe[256];
        dir_safe(v, safe, sizeof safe);
        int n = snprintf(dir + o, dirlen - o, "%s%s=%s", k ? "," : "", sw->keys[k], safe);
        if (n < 0 || (size_t)n >= dirlen - o)
            return EG_ERUN;
        o += (size_t)n;
    }
    return 0;
}
