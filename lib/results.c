/* results.c - reading run directories (see results.h). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include "results.h"

#include "schema.h"
#include "yamltree.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* sections that may be a scalar name or a mapping with name: */
static const char *const NAMED_SECTIONS[] = {"graph", "algorithm", "model", "data", NULL};

/* ---- small helpers ---------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
    size_t l = strlen(s) + 1;
    char *d = malloc(l);
    if (d)
        memcpy(d, s, l);
    return d;
}

static int in_list(const char *const *list, const char *s, size_t len)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], s, len))
            return 1;
    return 0;
}

static int file_exists(const char *dir, const char *name)
{
    char p[EG_PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads a whole file; NUL-terminated, *len without the NUL. EG_EINPUT when unreadable. */
static int slurp(const char *path, char **out, size_t *len, eg_err *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return eg_err_set(err, EG_EINPUT, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
    }
    for (;;) {
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                return eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return eg_err_set(err, EG_EINPUT, "cannot read %s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return EG_OK;
}

/* A CSV reader over a slurped buffer, past a UTF-8 byte-order mark. */
static eg_csv csv_reader(char *buf, size_t len)
{
    eg_csv c = {buf, buf + len, 0};
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        c.p += 3;
    return c;
}

/* The first non-blank line from p (CR dropped), for messages. */
static void first_line(const char *p, const char *end, char *out, size_t len)
{
    const char *q = p;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) {
        if (*q == '\n')
            p = q + 1;
        q++;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (l && p[l - 1] == '\r')
        l--;
    snprintf(out, len, "%.*s", (int)(l < len ? l : len - 1), p);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
        s[--l] = 0;
    return s;
}


/* A normalised copy of a key's value: trimmed; a finite number written with a fraction
 * or exponent becomes %.9g ("0.90000000000000002" -> "0.9", "5.000000" -> "5"). */
static char *norm_value(const char *raw)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", raw);
    char *s = trim(tmp);
    double v;
    if (strpbrk(s, "0123456789") && strpbrk(s, ".eE") && !eg_parse_double(s, &v) && isfinite(v)) {
        char b[64];
        snprintf(b, sizeof b, "%.9g", v);
        return xstrdup(b);
    }
    return xstrdup(s);
}

/* ---- metrics.csv -------------------------------------------------------------------- */

void eg_metrics_free(eg_metrics *m)
{
    if (!m)
        return;
    if (m->cols)
        for (int i = 0; i < m->ncols; i++)
            free(m->cols[i]);
    free(m->cols);
    free(m->val);
    free(m->has);
    free(m->path);
    memset(m, 0, sizeof *m);
}

int eg_metrics_col(const eg_metrics *m, const char *name)
{
    for (int i = 0; i < m->ncols; i++)
        if (!strcmp(m->cols[i], name))
            return i;
    return -1;
}

/* Checks the header record (n fields f, line ln; raw its text) and copies the names. */
static int metrics_header(eg_metrics *m, char **f, int n, int ln, const char *raw, eg_err *err)
{
    const char *path = m->path;
    int ok = n > 0, k = 0;
    for (int i = 0; i < eg_metrics_ncols && ok; i++)
        if (eg_metrics_columns[i].flags & EG_COL_REQUIRED)
            ok = k < n && !strcmp(trim(f[k++]), eg_metrics_columns[i].name);
    if (!ok) {
        char want[512];
        eg_metrics_columns_text(EG_COL_REQUIRED, ",", want, sizeof want);
        return eg_err_set(err, EG_EINPUT,
                          "%s:%d: not a metrics.csv header: expected it to start with %s; got "
                          "'%.200s'",
                          path, ln, want, raw);
    }
    if (!(m->cols = calloc((size_t)n, sizeof(char *))))
        return eg_err_set(err, EG_ERUN, "out of memory");
    m->ncols = n;
    for (int i = 0; i < n; i++) {
        char *name = trim(f[i]);
        if (!*name)
            return eg_err_set(err, EG_EINPUT, "%s:%d: header column %d has no name", path, ln,
                              i + 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->cols[j], name))
                return eg_err_set(err, EG_EINPUT, "%s:%d: header repeats column '%s'", path,
                                  ln, name);
        if (!(m->cols[i] = xstrdup(name)))
            return eg_err_set(err, EG_ERUN, "out of memory");
    }
    return EG_OK;
}

/* Appends one data record (n fields f, line ln); *rcap is the rows allocated. */
static int metrics_add_row(eg_metrics *m, char **f, int n, int ln, long *rcap, eg_err *err)
{
    if (n != m->ncols)
        return eg_err_set(err, EG_EINPUT,
                          "%s:%d: %d fields, but the header has %d (a corrupt or truncated row)",
                          m->path, ln, n, m->ncols);
    if (m->nrows == *rcap) {
        long nc = *rcap ? *rcap * 2 : 64;
        double *nv = realloc(m->val, (size_t)nc * (size_t)m->ncols * sizeof(double));
        if (nv)
            m->val = nv;
        unsigned char *nh = realloc(m->has, (size_t)nc * (size_t)m->ncols);
        if (nh)
            m->has = nh;
        if (!nv || !nh)
            return eg_err_set(err, EG_ERUN, "out of memory");
        *rcap = nc;
    }
    double *row = m->val + (size_t)m->nrows * (size_t)m->ncols;
    unsigned char *has = m->has + (size_t)m->nrows * (size_t)m->ncols;
    for (int i = 0; i < n; i++) {
        char *cell = trim(f[i]);
        has[i] = *cell != 0;
        if (!*cell)
            row[i] = NAN;
        else if (eg_parse_double(cell, &row[i]))
            return eg_err_set(err, EG_EINPUT, "%s:%d: column '%s': '%.60s' is not a number",
                              m->path, ln, m->cols[i], cell);
    }
    m->nrows++;
    return EG_OK;
}

int eg_metrics_read(eg_metrics *m, const char *path, eg_err *err)
{
    memset(m, 0, sizeof *m);
    char *buf = NULL, **f = NULL, raw[512];
    size_t len;
    int fcap = 0, rc, ln = 0, n;
    long rcap = 0;
    if (!(m->path = xstrdup(path)))
        return eg_err_set(err, EG_ERUN, "out of memory");
    if ((rc = slurp(path, &buf, &len, err)))
        return rc;
    eg_csv c = csv_reader(buf, len);
    first_line(c.p, c.end, raw, sizeof raw);
    n = eg_csv_next(&c, &f, &fcap, &ln);
    if (n == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s:1: empty file (no header); expected a metrics.csv",
                        path);
    else if (n == -2)
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    else
        rc = metrics_header(m, f, n, ln, raw, err);
    while (!rc && (n = eg_csv_next(&c, &f, &fcap, &ln)) != 0) {
        if (n == -2)
            rc = eg_err_set(err, EG_ERUN, "out of memory");
        else if (n == -1)
            rc = eg_err_set(err, EG_EINPUT, "%s:%d: unterminated quoted field", path, ln);
        else
            rc = metrics_add_row(m, f, n, ln, &rcap, err);
    }
    free(f);
    free(buf);
    return rc;
}

int eg_metrics_agg(const eg_metrics *m, int col, eg_agg agg, double *out)
{
    if (!m || col < 0 || col >= m->ncols)
        return 0;
    int found = 0;
    double best = 0;
    for (long r = 0; r < m->nrows; r++) {
        size_t k = (size_t)r * (size_t)m->ncols + (size_t)col;
        if (!m->has[k])
            continue;
        double v = m->val[k];
        if (agg != EG_AGG_FINAL && agg != EG_AGG_MAX && agg != EG_AGG_MIN) {
            return 0;
        } else if (agg == EG_AGG_FINAL) {
            best = v;
            found = 1;
        } else if (!isnan(v)) {
            if (!found || (agg == EG_AGG_MAX ? v > best : v < best))
                best = v;
            found = 1;
        }
    }
    if (found)
        *out = best;
    return found;
}

int eg_metrics_reach(const eg_metrics *m, int col, int ge, double thr, int at, double *out)
{
    if (!m || col < 0 || col >= m->ncols || at < 0 || at >= m->ncols)
        return 0;
    for (long r = 0; r < m->nrows; r++) {
        size_t b = (size_t)r * (size_t)m->ncols;
        double v = m->val[b + (size_t)col];
        if (!m->has[b + (size_t)col] || !m->has[b + (size_t)at] || isnan(v))
            continue;
        if (ge ? v >= thr : v <= thr) {
            *out = m->val[b + (size_t)at];
            return 1;
        }
    }
    return 0;
}

/* ---- keys --------------------------------------------------------------------------- */

void eg_results_canon_key(const char *key, char *out, size_t len)
{
    snprintf(out, len, "%s", key);
    size_t l = strlen(out);
    if (l > 5 && !strcmp(out + l - 5, ".name") && in_list(NAMED_SECTIONS, out, l - 5))
        out[l - 5] = 0;
}

/* Adds key = value (both copied; the key canonicalised, the value normalised).
 * A key already present keeps its first value. */
static int run_add_key(eg_rundir *r, const char *key, const char *val)
{
    char ck[256];
    eg_results_canon_key(key, ck, sizeof ck);
    if (eg_rundir_get(r, ck))
        return 0;
    char **nk = realloc(r->keys, (size_t)(r->nkeys + 1) * sizeof(char *));
    if (!nk)
        return -1;
    r->keys = nk;
    char **nv = realloc(r->vals, (size_t)(r->nkeys + 1) * sizeof(char *));
    if (!nv)
        return -1;
    r->vals = nv;
    char *k = xstrdup(ck), *v = norm_value(val);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    r->keys[r->nkeys] = k;
    r->vals[r->nkeys] = v;
    r->nkeys++;
    return 0;
}

const char *eg_rundir_get(const eg_rundir *r, const char *key)
{
    for (int i = 0; i < r->nkeys; i++)
        if (!strcmp(r->keys[i], key))
            return r->vals[i];
    return NULL;
}

int eg_rundir_set_key(eg_rundir *r, const char *key, const char *val)
{
    char ck[256];
    eg_results_canon_key(key, ck, sizeof ck);
    for (int i = 0; i < r->nkeys; i++)
        if (!strcmp(r->keys[i], ck)) {
            char *v = norm_value(val);
            if (!v)
                return EG_ERUN;
            free(r->vals[i]);
            r->vals[i] = v;
            return EG_OK;
        }
    return run_add_key(r, ck, val) ? EG_ERUN : EG_OK;
}

/* The header and the one data row of summary.csv (fields in place in buf). */
typedef struct summary_recs {
    char **hf, **rf;
    int nh, nr, hcap, rcap;
} summary_recs;

static int summary_records(char *buf, size_t len, const char *path, summary_recs *sr,
                           eg_err *err)
{
    eg_csv c = csv_reader(buf, len);
    char **extra = NULL;
    int ecap = 0, ln = 0, hln = 0, rln = 0, rc = EG_OK;
    sr->nh = eg_csv_next(&c, &sr->hf, &sr->hcap, &hln);
    sr->nr = sr->nh > 0 ? eg_csv_next(&c, &sr->rf, &sr->rcap, &rln) : 0;
    int ne = sr->nr > 0 ? eg_csv_next(&c, &extra, &ecap, &ln) : 0;
    free(extra);
    if (sr->nh == -2 || sr->nr == -2 || ne == -2)
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    else if (sr->nh == -1 || sr->nr == -1)
        rc = eg_err_set(err, EG_EINPUT, "%s:%d: unterminated quoted field", path,
                        sr->nh == -1 ? hln : rln);
    else if (sr->nh == 0 || sr->nr == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s:%d: expected a header and one data row", path,
                        c.line ? c.line : 1);
    else if (ne != 0)
        rc = eg_err_set(err, EG_EINPUT, "%s:%d: more than one data row", path, ln);
    else if (sr->nh != sr->nr)
        rc = eg_err_set(err, EG_EINPUT, "%s:%d: %d fields, but the header has %d", path, rln,
                        sr->nr, sr->nh);
    return rc;
}

static int keys_from_summary(eg_rundir *r, const char *path, eg_err *err)
{
    char *buf = NULL;
    size_t len;
    summary_recs sr = {0};
    int rc = slurp(path, &buf, &len, err);
    if (!rc)
        rc = summary_records(buf, len, path, &sr, err);
    for (int i = 0; !rc && i < sr.nh; i++) {
        const char *k = trim(sr.hf[i]);
        if ((eg_summary_is_spec_key(k) || eg_summary_is_env_key(k)) && run_add_key(r, k, sr.rf[i]))
            rc = eg_err_set(err, EG_ERUN, "out of memory");
    }
    if (!rc)
        r->keysrc = EG_KEYS_SUMMARY;
    free(sr.hf);
    free(sr.rf);
    free(buf);
    return rc;
}

/* Flattens a YAML node into dotted keys. Sequences of scalars become space-separated
 * (as summary.csv writes them), other sequences flow text; nulls the empty string. */
static int flatten_yaml(eg_rundir *r, const char *prefix, const eg_ynode *n)
{
    if (n->kind == EG_Y_MAP) {
        for (int i = 0; i < n->n; i++) {
            char key[512];
            if (prefix[0])
                snprintf(key, sizeof key, "%s.%s", prefix, n->keys[i]);
            else
                snprintf(key, sizeof key, "%s", n->keys[i]);
            if (!prefix[0] && (!strcmp(key, "output") || !strcmp(key, "sweep")))
                continue;
            if (flatten_yaml(r, key, n->items[i]))
                return -1;
        }
        return 0;
    }
    if (n->kind == EG_Y_SCALAR)
        return run_add_key(r, prefix, eg_ynode_is_null(n) ? "" : n->str);
    /* sequence */
    int scalars = 1;
    size_t need = 1;
    for (int i = 0; i < n->n; i++) {
        if (n->items[i]->kind != EG_Y_SCALAR)
            scalars = 0;
        else
            need += strlen(n->items[i]->str ? n->items[i]->str : "") + 1;
    }
    char *text;
    if (scalars) {
        text = malloc(need);
        if (!text)
            return -1;
        text[0] = 0;
        for (int i = 0; i < n->n; i++) {
            if (i)
                strcat(text, " ");
            strcat(text, n->items[i]->str ? n->items[i]->str : "");
        }
    } else if (!(text = eg_ynode_to_flow(n))) {
        return -1;
    }
    int rc = run_add_key(r, prefix, text);
    free(text);
    return rc;
}

static int keys_from_spec(eg_rundir *r, const char *path, eg_err *err)
{
    eg_ynode *root = eg_yaml_parse_file(path, err);
    if (!root)
        return err && err->code ? err->code : EG_EINPUT;
    int rc = EG_OK;
    if (root->kind != EG_Y_MAP)
        rc = eg_err_set(err, EG_EINPUT, "%s:%d:%d: a spec must be a mapping of keys", path,
                        root->line, root->col);
    else if (flatten_yaml(r, "", root))
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    else
        r->keysrc = EG_KEYS_SPEC;
    eg_ynode_free(root);
    return rc;
}

/* key=value,key2=value2 (the sweep's directory names); anything else yields no keys.
 * Records the key order in r->namekeys; adds the keys themselves only when add. */
static int keys_from_dirname(eg_rundir *r, int add)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", r->name);
    /* all parts must be key=value with a non-empty key */
    for (char *p = buf; *p;) {
        char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        char *eq = memchr(p, '=', l);
        if (!eq || eq == p)
            return 0;
        p += l + (c ? 1 : 0);
        if (c && !*p)
            return 0;
    }
    if (!buf[0])
        return 0;
    char *save = NULL;
    for (char *part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '=');
        *eq = 0;
        if (add && run_add_key(r, part, eq + 1))
            return -1;
        char **nk = realloc(r->namekeys, (size_t)(r->nnamekeys + 1) * sizeof(char *));
        if (!nk)
            return -1;
        r->namekeys = nk;
        char ck[256];
        eg_results_canon_key(part, ck, sizeof ck);
        if (!(nk[r->nnamekeys] = xstrdup(ck)))
            return -1;
        r->nnamekeys++;
    }
    if (add)
        r->keysrc = EG_KEYS_DIRNAME;
    return 0;
}

/* ---- runs ------------------------------------------------------------------------- */

void eg_rundir_free(eg_rundir *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nkeys; i++) {
        free(r->keys[i]);
        free(r->vals[i]);
    }
    for (int i = 0; i < r->nnamekeys; i++)
        free(r->namekeys[i]);
    free(r->namekeys);
    free(r->keys);
    free(r->vals);
    free(r->dir);
    free(r->name);
    eg_metrics_free(&r->metrics);
    memset(r, 0, sizeof *r);
}

int eg_rundir_load(eg_rundir *r, const char *dir, eg_err *err)
{
    memset(r, 0, sizeof *r);
    char d[EG_PATH_MAX];
    snprintf(d, sizeof d, "%s", dir);
    size_t l = strlen(d);
    while (l > 1 && d[l - 1] == '/')
        d[--l] = 0;
    const char *slash = strrchr(d, '/');
    r->dir = xstrdup(d);
    r->name = xstrdup(slash && slash[1] ? slash + 1 : d);
    if (!r->dir || !r->name)
        return eg_err_set(err, EG_ERUN, "out of memory");
    char p[EG_PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/metrics.csv", d);
    int rc = eg_metrics_read(&r->metrics, p, err);
    if (rc)
        return rc;
    if (keys_from_dirname(r, 0))
        return eg_err_set(err, EG_ERUN, "out of memory");
    r->finished = file_exists(d, "summary.csv");
    if (r->finished) {
        snprintf(p, sizeof p, "%s/summary.csv", d);
        return keys_from_summary(r, p, err);
    }
    if (file_exists(d, "spec.yaml")) {
        snprintf(p, sizeof p, "%s/spec.yaml", d);
        return keys_from_spec(r, p, err);
    }
    if (keys_from_dirname(r, 1))
        return eg_err_set(err, EG_ERUN, "out of memory");
    return EG_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int push_dir(char ***dirs, int *n, const char *d)
{
    char **nd = realloc(*dirs, (size_t)(*n + 1) * sizeof(char *));
    if (!nd)
        return -1;
    *dirs = nd;
    if (!(nd[*n] = xstrdup(d)))
        return -1;
    (*n)++;
    return 0;
}

static int expand_rec(const char *dir, int depth, char ***dirs, int *n, eg_err *err)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return depth == 0 ? eg_err_set(err, EG_EINPUT, "cannot open directory %s: %s", dir,
                                       strerror(errno))
                          : EG_OK; /* an unreadable subdirectory holds no runs we can read */
    int rc = EG_OK;
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[EG_PATH_MAX];
        int w = snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        if (w < 0 || (size_t)w >= sizeof sub)
            continue;
        struct stat st;
        if (stat(sub, &st) || !S_ISDIR(st.st_mode))
            continue;
        if (file_exists(sub, "metrics.csv")) {
            if (push_dir(dirs, n, sub)) {
                rc = eg_err_set(err, EG_ERUN, "out of memory");
                break;
            }
        } else if (depth + 1 < 3 && (rc = expand_rec(sub, depth + 1, dirs, n, err))) {
            break;
        }
    }
    closedir(dh);
    return rc;
}

int eg_results_expand(const char *path, char ***dirs, int *n, eg_err *err)
{
    char d[EG_PATH_MAX];
    snprintf(d, sizeof d, "%s", path);
    size_t l = strlen(d);
    while (l > 1 && d[l - 1] == '/')
        d[--l] = 0;
    struct stat st;
    if (stat(d, &st))
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s is not a directory (give a run directory or a sweep's root)",
                          path);
    if (file_exists(d, "metrics.csv"))
        return push_dir(dirs, n, d) ? eg_err_set(err, EG_ERUN, "out of memory") : EG_OK;
    int first = *n;
    int rc = expand_rec(d, 0, dirs, n, err);
    if (rc)
        return rc;
    if (*n - first > 1)
        qsort(*dirs + first, (size_t)(*n - first), sizeof(char *), cmp_str);
    return EG_OK;
}

void eg_runset_free(eg_runset *rs)
{
    if (!rs)
        return;
    for (int i = 0; i < rs->n; i++)
        eg_rundir_free(&rs->runs[i]);
    free(rs->runs);
    memset(rs, 0, sizeof *rs);
}

int eg_runset_load(eg_runset *rs, char *const *paths, int npaths, eg_err *err)
{
    memset(rs, 0, sizeof *rs);
    char **dirs = NULL, **real = NULL;
    int nd = 0, rc = EG_OK;
    for (int i = 0; i < npaths && !rc; i++) {
        int before = nd;
        rc = eg_results_expand(paths[i], &dirs, &nd, err);
        if (!rc && nd == before)
            rc = eg_err_set(err, EG_EINPUT,
                            "no run directories (with metrics.csv) under %s; give run "
                            "directories or a sweep's root",
                            paths[i]);
    }
    if (rc)
        goto out;
    if (nd == 0) {
        rc = eg_err_set(err, EG_EINPUT, "no run directories given");
        goto out;
    }
    rs->runs = calloc((size_t)nd, sizeof(eg_rundir));
    real = calloc((size_t)nd, sizeof(char *));
    if (!rs->runs || !real) {
        rc = eg_err_set(err, EG_ERUN, "out of memory");
        goto out;
    }
    rs->cap = nd;
    for (int i = 0; i < nd; i++) {
        char rp[PATH_MAX];
        real[i] = xstrdup(realpath(dirs[i], rp) ? rp : dirs[i]);
        if (!real[i]) {
            rc = eg_err_set(err, EG_ERUN, "out of memory");
            goto out;
        }
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = real[j] && !strcmp(real[j], real[i]);
        if (dup)
            continue;
        rc = eg_rundir_load(&rs->runs[rs->n], dirs[i], err);
        rs->n++; /* counted even on error so eg_runset_free frees the half-built run */
        if (rc)
            goto out;
    }
out:
    for (int i = 0; i < nd; i++) {
        free(dirs[i]);
        if (real)
            free(real[i]);
    }
    free(dirs);
    free(real);
    return rc;
}

/* ---- keys across runs ------------------------------------------------------------- */

/* Union of all runs' keys in first-appearance order (pointers into the runs). */
static const char **all_keys(const eg_runset *rs, int *n)
{
    int cap = 0;
    for (int i = 0; i < rs->n; i++)
        cap += rs->runs[i].nkeys;
    const char **k = malloc((size_t)(cap ? cap : 1) * sizeof(char *));
    *n = 0;
    if (!k)
        return NULL;
    for (int i = 0; i < rs->n; i++)
        for (int j = 0; j < rs->runs[i].nkeys; j++) {
            const char *key = rs->runs[i].keys[j];
            int seen = 0;
            for (int t = 0; t < *n && !seen; t++)
                seen = !strcmp(k[t], key);
            if (!seen)
                k[(*n)++] = key;
        }
    return k;
}

static int any_has(const eg_runset *rs, const char *key)
{
    for (int i = 0; i < rs->n; i++)
        if (eg_rundir_get(&rs->runs[i], key))
            return 1;
    return 0;
}

int eg_runset_resolve_key(const eg_runset *rs, const char *key, char *out, size_t len,
                          eg_err *err)
{
    char ck[256];
    eg_results_canon_key(key, ck, sizeof ck);
    if (any_has(rs, ck)) {
        snprintf(out, len, "%s", ck);
        return EG_OK;
    }
    int nk;
    const char **keys = all_keys(rs, &nk);
    if (!keys)
        return eg_err_set(err, EG_ERUN, "out of memory");
    const char *match = NULL;
    int nmatch = 0;
    size_t kl = strlen(ck);
    for (int i = 0; i < nk; i++) {
        size_t l = strlen(keys[i]);
        if (l > kl && keys[i][l - kl - 1] == '.' && !strcmp(keys[i] + l - kl, ck)) {
            match = keys[i];
            nmatch++;
        }
    }
    if (nmatch == 1) {
        snprintf(out, len, "%s", match);
        free(keys);
        return EG_OK;
    }
    char list[700] = "";
    size_t o = 0;
    for (int i = 0; i < nk && o < sizeof list - 8; i++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", keys[i]);
        if (w < 0 || (size_t)w >= sizeof list - o) {
            snprintf(list + o, sizeof list - o, ", ...");
            break;
        }
        o += (size_t)w;
    }
    int rc;
    if (nmatch > 1)
        rc = eg_err_set(err, EG_EINPUT, "key '%s' is ambiguous; give its dotted path (keys: %s)",
                        key, list);
    else
        rc = eg_err_set(err, EG_EINPUT, "no run has the spec key '%s'; keys: %s", key,
                        nk ? list : "(none: no summary.csv, spec.yaml or key=value name)");
    free(keys);
    return rc;
}

const char **eg_runset_differing(const eg_runset *rs, int *n)
{
    int nk;
    *n = 0;
    const char **keys = all_keys(rs, &nk);
    if (!keys)
        return NULL;
    int m = 0;
    for (int i = 0; i < nk; i++) {
        const char *first = NULL;
        int differs = eg_summary_is_env_key(keys[i]) ? -1 : 0; /* where, not what: never */
        for (int r = 0; r < rs->n && !differs; r++) {
            const char *v = eg_rundir_get(&rs->runs[r], keys[i]);
            if (!v)
                continue;
            if (!first)
                first = v;
            else if (strcmp(first, v))
                differs = 1;
        }
        if (differs > 0)
            keys[m++] = keys[i];
    }
    if (!m) {
        free(keys);
        return NULL;
    }
    /* keys named in directory names first, in that order (stable otherwise) */
    int front = 0;
    for (int r = 0; r < rs->n; r++)
        for (int j = 0; j < rs->runs[r].nnamekeys; j++)
            for (int i = front; i < m; i++)
                if (!strcmp(keys[i], rs->runs[r].namekeys[j])) {
                    const char *k = keys[i];
                    memmove(keys + front + 1, keys + front, (size_t)(i - front) * sizeof(char *));
                    keys[front++] = k;
                    break;
                }
    *n = m;
    return keys;
}

/* keys[i] is a sub-key (graph.peers) of another key in the list (graph) and this run has no
 * value for it: "graph=ring", not "graph=ring, graph.peers=" beside "graph=base, graph.peers=1" */
static int empty_subkey(const eg_rundir *r, const char *const *keys, int nkeys, int i)
{
    const char *v = eg_rundir_get(r, keys[i]);
    if (v && *v)
        return 0;
    for (int j = 0; j < nkeys; j++) {
        size_t l = strlen(keys[j]);
        if (j != i && !strncmp(keys[i], keys[j], l) && keys[i][l] == '.')
            return 1;
    }
    return 0;
}

char *eg_rundir_label(const eg_rundir *r, const char *const *keys, int nkeys)
{
    if (nkeys <= 0)
        return xstrdup(r->name);
    size_t need = 1;
    for (int i = 0; i < nkeys; i++) {
        const char *v = eg_rundir_get(r, keys[i]);
        need += strlen(keys[i]) + strlen(v ? v : "-") + 3;
    }
    char *s = malloc(need);
    if (!s)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < nkeys; i++) {
        if (empty_subkey(r, keys, nkeys, i))
            continue;
        const char *v = eg_rundir_get(r, keys[i]);
        o += (size_t)snprintf(s + o, need - o, "%s%s=%s", o ? ", " : "", keys[i], v ? v : "-");
    }
    return s;
}

typedef struct sortkey {
    int missing;
    double v; /* the number, or the rank of first appearance */
} sortkey;

static int cmp_runs(const sortkey *a, const sortkey *b, int nkeys)
{
    for (int k = 0; k < nkeys; k++) {
        if (a[k].missing != b[k].missing)
            return a[k].missing - b[k].missing;
        if (a[k].v < b[k].v)
            return -1;
        if (a[k].v > b[k].v)
            return 1;
    }
    return 0;
}

void eg_runset_order(const eg_runset *rs, const char *const *keys, int nkeys, int *order)
{
    int n = rs->n;
    for (int i = 0; i < n; i++)
        order[i] = i;
    if (nkeys <= 0 || n < 2)
        return;
    sortkey *sk = calloc((size_t)n * (size_t)nkeys, sizeof(sortkey));
    if (!sk)
        return; /* keeps rs order */
    for (int k = 0; k < nkeys; k++) {
        int numeric = 1;
        for (int i = 0; i < n && numeric; i++) {
            const char *v = eg_rundir_get(&rs->runs[i], keys[k]);
            double x;
            if (v && (eg_parse_double(v, &x) || isnan(x)))
                numeric = 0;
        }
        for (int i = 0; i < n; i++) {
            sortkey *s = &sk[(size_t)i * (size_t)nkeys + (size_t)k];
            const char *v = eg_rundir_get(&rs->runs[i], keys[k]);
            if (!v) {
                s->missing = 1;
                continue;
            }
            if (numeric) {
                eg_parse_double(v, &s->v);
                continue;
            }
            int first = i;
            for (int j = 0; j < i; j++) {
                const char *w = eg_rundir_get(&rs->runs[j], keys[k]);
                if (w && !strcmp(w, v)) {
                    first = j;
                    break;
                }
            }
            s->v = first;
        }
    }
    /* insertion sort: stable, and run counts are small */
    for (int i = 1; i < n; i++) {
        int x = order[i], j = i - 1;
        while (j >= 0 && cmp_runs(&sk[(size_t)order[j] * (size_t)nkeys],
                                  &sk[(size_t)x * (size_t)nkeys], nkeys) > 0) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = x;
    }
    free(sk);
}

/* ---- metrics across runs ---------------------------------------------------------- */

/* the reach form "COL>=V" / "COL<=V" (expr after "reach:") into mt */
static int parse_reach(const char *spec, const char *expr, eg_metric *mt, eg_err *err)
{
    const char *op = strstr(expr, ">=");
    const char *le = strstr(expr, "<=");
    if (!op || (le && le < op))
        op = le;
    if (!op || op == expr)
        return eg_err_set(err, EG_EINPUT,
                          "'%s': expected reach:COL>=V or reach:COL<=V (e.g. "
                          "reach:test_acc>=0.88, reach:train_loss<=0.5)",
                          spec);
    size_t l = (size_t)(op - expr);
    if (l >= sizeof mt->col)
        return eg_err_set(err, EG_EINPUT, "'%s': column name too long", spec);
    char c[sizeof mt->col], v[64];
    memcpy(c, expr, l);
    c[l] = 0;
    snprintf(mt->col, sizeof mt->col, "%s", trim(c));
    snprintf(v, sizeof v, "%s", op + 2);
    if (!mt->col[0] || eg_parse_double(trim(v), &mt->thr) || !isfinite(mt->thr))
        return eg_err_set(err, EG_EINPUT,
                          "'%s': expected reach:COL>=V or reach:COL<=V with a column name and "
                          "a finite number V",
                          spec);
    mt->agg = op[0] == '>' ? EG_AGG_REACH_GE : EG_AGG_REACH_LE;
    snprintf(mt->label, sizeof mt->label, "%s at %s%s%.9g", mt->at, mt->col,
             mt->agg == EG_AGG_REACH_GE ? ">=" : "<=", mt->thr);
    return EG_OK;
}

int eg_metric_parse(const char *spec, const char *at, eg_metric *mt, eg_err *err)
{
    static const struct {
        const char *prefix;
        eg_agg agg;
    } forms[] = {{"final:", EG_AGG_FINAL}, {"max:", EG_AGG_MAX}, {"min:", EG_AGG_MIN}};
    memset(mt, 0, sizeof *mt);
    snprintf(mt->at, sizeof mt->at, "%s", at && *at ? at : "iter");
    if (!strncmp(spec, "reach:", 6))
        return parse_reach(spec, spec + 6, mt, err);
    if (at && *at)
        return eg_err_set(err, EG_EINPUT,
                          "--at applies to reach:COL>=V metrics only (got --metric %s)", spec);
    const char *col = spec;
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++)
        if (!strncmp(spec, forms[k].prefix, strlen(forms[k].prefix))) {
            mt->agg = forms[k].agg;
            col = spec + strlen(forms[k].prefix);
        }
    if (!*col || strlen(col) >= sizeof mt->col)
        return eg_err_set(err, EG_EINPUT, "'%s': expected a metrics column, e.g. test_acc or "
                                          "max:test_acc",
                          spec);
    snprintf(mt->col, sizeof mt->col, "%s", col);
    if (mt->agg == EG_AGG_FINAL)
        snprintf(mt->label, sizeof mt->label, "%s", col);
    else
        snprintf(mt->label, sizeof mt->label, "%s(%s)", mt->agg == EG_AGG_MAX ? "max" : "min",
                 col);
    return EG_OK;
}

int eg_metric_value(const eg_metrics *m, const eg_metric *mt, double *out)
{
    int col = eg_metrics_col(m, mt->col);
    if (mt->agg == EG_AGG_REACH_GE || mt->agg == EG_AGG_REACH_LE)
        return eg_metrics_reach(m, col, mt->agg == EG_AGG_REACH_GE, mt->thr,
                                eg_metrics_col(m, mt->at), out);
    return eg_metrics_agg(m, col, mt->agg, out);
}

int eg_runset_has_col(const eg_runset *rs, const char *col)
{
    for (int i = 0; i < rs->n; i++)
        if (eg_metrics_col(&rs->runs[i].metrics, col) >= 0)
            return 1;
    return 0;
}

void eg_metrics_col_list(const eg_metrics *m, char *out, size_t len)
{
    if (len)
        out[0] = 0;
    for (int i = 0; i < m->ncols; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? ", " : "", m->cols[i]);
}

/* ---- pivot: runs into a table of rows x columns ------------------------------------- */

void eg_pivot_free(eg_pivot *p)
{
    if (!p)
        return;
    for (int i = 0; p->rowkeys && i < p->nrowkeys; i++)
        free(p->rowkeys[i]);
    for (int i = 0; p->rows && i < p->nrows; i++)
        free(p->rows[i]);
    for (int i = 0; p->cols && i < p->ncols; i++)
        free(p->cols[i]);
    free(p->rowkeys);
    free(p->colkey);
    free(p->aggkey);
    free(p->rows);
    free(p->cols);
    free(p->run);
    free(p->nruns);
    free(p->n);
    free(p->has);
    free(p->val);
    free(p->sd);
    free(p->cell);
    free(p->vskey);
    free(p->vsval);
    free(p->ref);
    free(p->dn);
    free(p->dmean);
    free(p->dsd);
    free(p->dlo);
    free(p->dhi);
    memset(p, 0, sizeof *p);
}

/* index of s in the labels (*lab, *n), adding it when absent; -1 when out of memory */
static int label_index(char ***lab, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp((*lab)[i], s))
            return i;
    char **nl = realloc(*lab, (size_t)(*n + 1) * sizeof(char *));
    if (!nl)
        return -1;
    *lab = nl;
    if (!(nl[*n] = xstrdup(s)))
        return -1;
    return (*n)++;
}

/* a run's label for a list of keys: one key -> its value ("(unset)", "(empty)"), several
 * -> "k=v, k2=v2", none -> the directory name. Malloc'ed; NULL when out of memory. */
static char *key_label(const eg_rundir *r, const char *const *keys, int nkeys)
{
    if (nkeys == 1) {
        const char *v = eg_rundir_get(r, keys[0]);
        return xstrdup(!v ? "(unset)" : !*v ? "(empty)" : v);
    }
    return eg_rundir_label(r, keys, nkeys);
}

static int same_key(const char *a, const char *b)
{
    return a && b && !strcmp(a, b);
}

/* the keys of the rows: rowkey, else the keys that differ between runs apart from colkey
 * and aggkey */
static int pivot_rowkeys(eg_pivot *p, const eg_runset *rs, const char *rowkey)
{
    int ndiff = 0;
    const char **diff = rowkey ? NULL : eg_runset_differing(rs, &ndiff);
    if (!(p->rowkeys = calloc((size_t)ndiff + 1, sizeof(char *)))) {
        free(diff);
        return -1;
    }
    int rc = 0;
    if (rowkey && !(p->rowkeys[p->nrowkeys++] = xstrdup(rowkey)))
        rc = -1;
    for (int i = 0; i < ndiff && !rc; i++)
        if (!same_key(diff[i], p->colkey) && !same_key(diff[i], p->aggkey))
            if (!(p->rowkeys[p->nrowkeys++] = xstrdup(diff[i])))
                rc = -1;
    free(diff);
    return rc;
}

/* Labels one axis: runs in the order of keys, each run's label (by keys, or fixed when
 * nkeys is 0 and fixed is given) added to (*lab, *n); at[i] gets run i's label index. */
static int pivot_axis(const eg_runset *rs, const char *const *keys, int nkeys,
                      const char *fixed, char ***lab, int *n, int *at)
{
    int *order = calloc((size_t)rs->n, sizeof(int));
    if (!order)
        return -1;
    eg_runset_order(rs, keys, nkeys, order);
    int rc = 0;
    for (int k = 0; k < rs->n && !rc; k++) {
        int i = order[k];
        char *l = fixed ? xstrdup(fixed) : key_label(&rs->runs[i], keys, nkeys);
        if (!l || (at[i] = label_index(lab, n, l)) < 0)
            rc = -1;
        free(l);
    }
    free(order);
    return rc;
}

/* the first key other than except whose values differ between runs a and b, or NULL */
static const char *tell_apart(const eg_rundir *a, const eg_rundir *b, const char *except)
{
    for (int i = 0; i < a->nkeys; i++) {
        const char *v = eg_rundir_get(b, a->keys[i]);
        if (v && strcmp(v, a->vals[i]) && !same_key(a->keys[i], except) &&
            !eg_summary_is_env_key(a->keys[i])) /* one experiment run on two machines */
            return a->keys[i];
    }
    return NULL;
}

/* Checks run r against run o already in its cell (labels rl, cl): with no aggregation
 * key any two runs clash; with one, runs clash unless they differ in it and only in it. */
static int cell_clash(const eg_pivot *p, const eg_rundir *o, const eg_rundir *r,
                      const char *rl, const char *cl, eg_err *err)
{
    const char *k = tell_apart(o, r, p->aggkey);
    if (!k && p->aggkey) {
        const char *va = eg_rundir_get(o, p->aggkey), *vb = eg_rundir_get(r, p->aggkey);
        if (va && vb && strcmp(va, vb))
            return EG_OK;
    }
    if (k)
        return eg_err_set(err, EG_EINPUT,
                          "runs %s and %s both fall into the cell (%s, %s); they differ "
                          "in '%s': use it as --rows or --cols, or pass fewer directories",
                          o->dir, r->dir, rl, cl, k);
    return eg_err_set(err, EG_EINPUT,
                      "runs %s and %s both fall into the cell (%s, %s) and have the same "
                      "spec keys (a repeated run?); pass only one of them",
                      o->dir, r->dir, rl, cl);
}

/* mean and sample standard deviation (n - 1; NAN for n < 2) of v[0..n-1], two passes; equal
 * values give that value and 0 exactly (not the rounding error of s / n, e.g. +-9.5e-16) */
static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    int same = n > 0;
    for (int i = 1; i < n && same; i++)
        same = v[i] == v[0];
    if (same) {
        *mean = v[0];
        *sd = n > 1 ? 0.0 : NAN;
        return;
    }
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : NAN;
}

/* each cell's mean, standard deviation and counts over its runs' values */
static int pivot_stats(eg_pivot *p, const eg_runset *rs, eg_err *err)
{
    double *v = malloc((size_t)(rs->n ? rs->n : 1) * sizeof(double));
    if (!v)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (int c = 0; c < p->nrows * p->ncols; c++) {
        int n = 0;
        for (int i = 0; i < rs->n; i++)
            if (p->cell[i] == c && eg_metric_value(&rs->runs[i].metrics, &p->metric, &v[n]))
                n++;
        p->n[c] = n;
        p->has[c] = n > 0;
        mean_sd(v, n, &p->val[c], &p->sd[c]);
    }
    free(v);
    return EG_OK;
}

/* places every run in its cell (clashes are errors naming both runs), then the stats */
static int pivot_cells(eg_pivot *p, const eg_runset *rs, const int *runrow, const int *runcol,
                       eg_err *err)
{
    size_t nc = (size_t)p->nrows * (size_t)p->ncols + 1;
    p->run = malloc(nc * sizeof(int));
    p->nruns = calloc(nc, sizeof(int));
    p->n = calloc(nc, sizeof(int));
    p->has = calloc(nc, 1);
    p->val = calloc(nc, sizeof(double));
    p->sd = calloc(nc, sizeof(double));
    p->cell = calloc((size_t)rs->n + 1, sizeof(int));
    if (!p->run || !p->nruns || !p->n || !p->has || !p->val || !p->sd || !p->cell)
        return eg_err_set(err, EG_ERUN, "out of memory");
    for (size_t i = 0; i < nc; i++)
        p->run[i] = -1;
    for (int i = 0; i < rs->n; i++) {
        int c = runrow[i] * p->ncols + runcol[i];
        for (int j = 0; j < i; j++)
            if (p->cell[j] == c && cell_clash(p, &rs->runs[j], &rs->runs[i], p->rows[runrow[i]],
                                              p->cols[runcol[i]], err))
                return EG_EINPUT;
        p->cell[i] = c;
        if (p->run[c] < 0)
            p->run[c] = i;
        p->nruns[c]++;
    }
    return pivot_stats(p, rs, err);
}

const char *eg_pivot_default_agg(const eg_runset *rs, const char *rowkey, const char *colkey)
{
    const char *first = NULL;
    int differ = 0;
    if (same_key(rowkey, "seed") || same_key(colkey, "seed"))
        return NULL;
    for (int i = 0; i < rs->n && !differ; i++) {
        const char *v = eg_rundir_get(&rs->runs[i], "seed");
        differ = v && first && strcmp(v, first);
        if (v && !first)
            first = v;
    }
    if (!differ)
        return NULL;
    /* a trial layout: seed is the default only when it puts two runs into one cell (or
     * the layout fails, so that the real one reports the clash with seed left out) */
    eg_pivot p;
    eg_metric mt = {.agg = EG_AGG_FINAL, .col = "iter", .label = "iter"};
    int shared = eg_pivot_build(&p, rs, rowkey, colkey, "seed", &mt, NULL) != EG_OK;
    for (int c = 0; !shared && c < p.nrows * p.ncols; c++)
        shared = p.nruns[c] > 1;
    eg_pivot_free(&p);
    return shared ? "seed" : NULL;
}

int eg_pivot_build(eg_pivot *p, const eg_runset *rs, const char *rowkey, const char *colkey,
                   const char *aggkey, const eg_metric *mt, eg_err *err)
{
    memset(p, 0, sizeof *p);
    p->metric = *mt;
    if (aggkey && (same_key(aggkey, rowkey) || same_key(aggkey, colkey)))
        return eg_err_set(err, EG_EINPUT, "'%s' cannot both label %s and be aggregated over",
                          aggkey, same_key(aggkey, rowkey) ? "rows" : "columns");
    int *runrow = calloc((size_t)rs->n + 1, sizeof(int));
    int *runcol = calloc((size_t)rs->n + 1, sizeof(int));
    int rc = EG_OK;
    if (!runrow || !runcol || (colkey && !(p->colkey = xstrdup(colkey))) ||
        (aggkey && !(p->aggkey = xstrdup(aggkey))) || pivot_rowkeys(p, rs, rowkey) ||
        pivot_axis(rs, (const char *const *)p->rowkeys, p->nrowkeys,
                   p->nrowkeys == 0 && aggkey ? "all" : NULL, &p->rows, &p->nrows, runrow) ||
        pivot_axis(rs, (const char *const *)&p->colkey, colkey ? 1 : 0,
                   colkey ? NULL : mt->label, &p->cols, &p->ncols, runcol))
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    if (!rc)
        rc = pivot_cells(p, rs, runrow, runcol, err);
    free(runrow);
    free(runcol);
    return rc;
}

/* ---- paired comparisons ------------------------------------------------------------ */

/* continued fraction of the incomplete beta function (modified Lentz), for x < (a+1)/(a+b+2) */
static double beta_cf(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = fabs(d) < tiny ? tiny : d;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        for (int k = 0; k < 2; k++) { /* the even step, then the odd one */
            d = 1 + num * d;
            d = fabs(d) < tiny ? tiny : d;
            c = 1 + num / c;
            c = fabs(c) < tiny ? tiny : c;
            d = 1 / d;
            h *= d * c;
            if (k == 0)
                num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        }
        if (fabs(d * c - 1) < 1e-15)
            break;
    }
    return h;
}

/* the regularised incomplete beta function I_x(a, b), 0 <= x <= 1 */
static double inc_beta(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2))
        return exp(lbt) * beta_cf(a, b, x) / a;
    return 1 - exp(lbt) * beta_cf(b, a, 1 - x) / b;
}

double eg_t_cdf(double t, double df)
{
    if (!(df > 0) || isnan(t))
        return NAN;
    if (isinf(t))
        return t > 0 ? 1 : 0;
    double tail = 0.5 * inc_beta(df / 2, 0.5, df / (df + t * t)); /* P(T > |t|) */
    return t >= 0 ? 1 - tail : tail;
}

double eg_t_quantile(double prob, double df)
{
    if (!(df > 0) || !(prob > 0 && prob < 1))
        return NAN;
    if (prob < 0.5)
        return -eg_t_quantile(1 - prob, df);
    if (prob == 0.5)
        return 0;
    double lo = 0, hi = 1;
    while (eg_t_cdf(hi, df) < prob && hi < 1e300)
        hi *= 2;
    for (int i = 0; i < 2000 && hi - lo > 1e-12 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (eg_t_cdf(mid, df) < prob)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* 1 when key is k or one of its sub-keys (graph.peers for graph) */
static int key_or_sub(const char *key, const char *k)
{
    size_t l = strlen(k);
    return !strncmp(key, k, l) && (!key[l] || key[l] == '.');
}

/* the line of cell c along which the reference lies: its row, or its column when the
 * compared key labels the columns */
static int line_of(const eg_pivot *p, int c)
{
    return same_key(p->vskey, p->colkey) ? c % p->ncols : c / p->ncols;
}

/* 1 when every run on line ln (line_of) that has key has the value v */
static int line_constant(const eg_pivot *p, const eg_runset *rs, int ln, const char *key,
                         const char *v)
{
    for (int i = 0; i < rs->n; i++) {
        const char *w = line_of(p, p->cell[i]) == ln ? eg_rundir_get(&rs->runs[i], key) : NULL;
        if (w && strcmp(w, v))
            return 0;
    }
    return 1;
}

/* 1 when runs a and b (indices into rs) pair: every key both have holds the same value,
 * apart from name, the compared key and its sub-keys, except (NULL: none), and the keys
 * each run's line holds constant (a psgd row with graph full pairs with the dmsgd row
 * graph=exp: algorithm, like graph, is what the rows compare) */
static int same_but(const eg_pivot *p, const eg_runset *rs, int a, int b, const char *except)
{
    const eg_rundir *ra = &rs->runs[a], *rb = &rs->runs[b];
    int la = line_of(p, p->cell[a]), lb = line_of(p, p->cell[b]);
    for (int i = 0; i < ra->nkeys; i++) {
        const char *k = ra->keys[i], *v = eg_rundir_get(rb, k);
        if (!v || !strcmp(v, ra->vals[i]) || !strcmp(k, "name") || key_or_sub(k, p->vskey) ||
            same_key(k, except))
            continue;
        if (same_key(k, p->aggkey) || !line_constant(p, rs, la, k, ra->vals[i]) ||
            !line_constant(p, rs, lb, k, v)) /* the aggregated key always pairs */
            return 0;
    }
    return 1;
}

static int is_ref(const eg_rundir *r, const char *key, const char *val)
{
    const char *v = eg_rundir_get(r, key);
    return v && !strcmp(v, val);
}

/* the label of a run for unpaired messages: its directory and aggregated key */
static const char *agg_text(const eg_pivot *p, const eg_rundir *r, char *buf, size_t len)
{
    const char *v = p->aggkey ? eg_rundir_get(r, p->aggkey) : NULL;
    if (v)
        snprintf(buf, len, " (%s=%s)", p->aggkey, v);
    else
        buf[0] = 0;
    return buf;
}

/* partner[i]: the reference run paired with run i (-1 for reference runs); errors name
 * the unpaired runs and cells */
static int pair_runs(const eg_pivot *p, const eg_runset *rs, int *partner, eg_err *err)
{
    const char *key = p->vskey, *val = p->vsval;
    char b1[300], b2[300];
    for (int i = 0; i < rs->n; i++) {
        partner[i] = -1;
        const eg_rundir *r = &rs->runs[i];
        if (is_ref(r, key, val))
            continue;
        for (int j = 0; j < rs->n && partner[i] < 0; j++)
            if (is_ref(&rs->runs[j], key, val) && same_but(p, rs, i, j, NULL) &&
                same_but(p, rs, j, i, NULL))
                partner[i] = j;
        int c = p->cell[i];
        if (partner[i] < 0)
            return eg_err_set(err, EG_EINPUT,
                              "unpaired: run %s%s in the cell (%s, %s) has no run with %s=%s "
                              "and the same other keys to pair with; run the missing "
                              "reference, or leave the run out",
                              r->dir, agg_text(p, r, b1, sizeof b1), p->rows[c / p->ncols],
                              p->cols[c % p->ncols], key, val);
    }
    /* every reference run that matches a cell (but for the aggregated key) pairs with one
     * of its runs */
    for (int c = 0; c < p->nrows * p->ncols; c++) {
        int r0 = p->run[c];
        if (r0 < 0 || p->ref[c])
            continue;
        for (int q = 0; q < rs->n; q++) {
            if (!is_ref(&rs->runs[q], key, val) ||
                !same_but(p, rs, r0, q, p->aggkey) || !same_but(p, rs, q, r0, p->aggkey))
                continue;
            int found = 0;
            for (int i = 0; i < rs->n && !found; i++)
                found = p->cell[i] == c && partner[i] == q;
            if (!found)
                return eg_err_set(err, EG_EINPUT,
                                  "unpaired: the cell (%s, %s) has no run to pair with the "
                                  "reference run %s%s; run it, or leave the reference out",
                                  p->rows[c / p->ncols], p->cols[c % p->ncols],
                                  rs->runs[q].dir, agg_text(p, &rs->runs[q], b2, sizeof b2));
        }
    }
    return EG_OK;
}

/* which cells are reference cells; a cell mixing both kinds of run is an error */
static int mark_ref_cells(eg_pivot *p, const eg_runset *rs, eg_err *err)
{
    int any = 0;
    for (int c = 0; c < p->nrows * p->ncols; c++) {
        int r0 = p->run[c];
        if (r0 < 0)
            continue;
        p->ref[c] = (unsigned char)is_ref(&rs->runs[r0], p->vskey, p->vsval);
        any |= p->ref[c];
        for (int i = 0; i < rs->n; i++)
            if (p->cell[i] == c && is_ref(&rs->runs[i], p->vskey, p->vsval) != p->ref[c])
                return eg_err_set(err, EG_EINPUT,
                                  "runs %s and %s share the cell (%s, %s) but only one has "
                                  "%s=%s: use %s as --rows or --cols",
                                  rs->runs[r0].dir, rs->runs[i].dir, p->rows[c / p->ncols],
                                  p->cols[c % p->ncols], p->vskey, p->vsval, p->vskey);
    }
    if (!any)
        return eg_err_set(err, EG_EINPUT, "--vs: no run has %s=%s (the reference)", p->vskey,
                          p->vsval);
    return EG_OK;
}

int eg_pivot_paired(eg_pivot *p, const eg_runset *rs, const char *key, const char *val,
                    eg_err *err)
{
    if (same_key(key, p->aggkey))
        return eg_err_set(err, EG_EINPUT,
                          "--vs compares along '%s', which is also the aggregated key; "
                          "pair along another key (e.g. --vs graph=exp)", key);
    size_t nc = (size_t)p->nrows * (size_t)p->ncols + 1;
    p->vskey = xstrdup(key);
    p->vsval = norm_value(val);
    p->ref = calloc(nc, 1);
    p->dn = calloc(nc, sizeof(int));
    p->dmean = calloc(nc, sizeof(double));
    p->dsd = calloc(nc, sizeof(double));
    p->dlo = calloc(nc, sizeof(double));
    p->dhi = calloc(nc, sizeof(double));
    int *partner = calloc((size_t)rs->n + 1, sizeof(int));
    double *d = calloc((size_t)rs->n + 1, sizeof(double));
    int rc = EG_OK;
    if (!p->vskey || !p->vsval || !p->ref || !p->dn || !p->dmean || !p->dsd || !p->dlo ||
        !p->dhi || !partner || !d)
        rc = eg_err_set(err, EG_ERUN, "out of memory");
    if (!rc)
        rc = mark_ref_cells(p, rs, err);
    if (!rc)
        rc = pair_runs(p, rs, partner, err);
    for (int c = 0; c < p->nrows * p->ncols && !rc; c++) {
        int n = 0;
        double a, b;
        for (int i = 0; i < rs->n && !p->ref[c]; i++)
            if (p->cell[i] == c && partner[i] >= 0 &&
                eg_metric_value(&rs->runs[i].metrics, &p->metric, &a) &&
                eg_metric_value(&rs->runs[partner[i]].metrics, &p->metric, &b))
                d[n++] = a - b;
        p->dn[c] = n;
        mean_sd(d, n, &p->dmean[c], &p->dsd[c]);
        double half = n > 1 ? eg_t_quantile(0.975, n - 1) * p->dsd[c] / sqrt(n) : NAN;
        p->dlo[c] = p->dmean[c] - half;
        p->dhi[c] = p->dmean[c] + half;
    }
    free(partner);
    free(d);
    return rc;
}

/* ---- mean curves ------------------------------------------------------------------- */

void eg_curve_free(eg_curve *c)
{
    if (!c)
        return;
    free(c->x);
    memset(c, 0, sizeof *c);
}

/* the row of m whose iter is it and whose x and y cells are finite, or -1 (rows are in
 * iter order, so the search starts at *from and moves it on) */
static long shared_row(const eg_metrics *m, int xc, int yc, double it, long *from)
{
    int ic = eg_metrics_col(m, "iter");
    for (long r = *from; ic >= 0 && r < m->nrows; r++) {
        const double *row = m->val + (size_t)r * (size_t)m->ncols;
        if (row[ic] > it)
            break;
        if (row[ic] == it && isfinite(row[xc]) && isfinite(row[yc])) {
            *from = r;
            return r;
        }
    }
    return -1;
}

/* one point of the curve at iter it, from row rows[k] of each run: 1 when every run has
 * the row (c->n advanced), 0 when one lacks it */
static int curve_point(eg_curve *c, const eg_runset *rs, const int *idx, int nidx,
                       const char *xcol, const char *ycol, double it, long *from, double *ys)
{
    double xs = 0;
    for (int k = 0; k < nidx; k++) {
        const eg_metrics *m = &rs->runs[idx[k]].metrics;
        int xc = eg_metrics_col(m, xcol), yc = eg_metrics_col(m, ycol);
        long r = shared_row(m, xc, yc, it, &from[k]);
        if (r < 0)
            return 0;
        xs += m->val[(size_t)r * (size_t)m->ncols + (size_t)xc];
        ys[k] = m->val[(size_t)r * (size_t)m->ncols + (size_t)yc];
    }
    long j = c->n++;
    c->x[j] = xs / nidx;
    mean_sd(ys, nidx, &c->mean[j], &c->sd[j]);
    c->lo[j] = c->hi[j] = ys[0];
    for (int k = 1; k < nidx; k++) {
        c->lo[j] = fmin(c->lo[j], ys[k]);
        c->hi[j] = fmax(c->hi[j], ys[k]);
    }
    return 1;
}

int eg_curve_mean(eg_curve *c, const eg_runset *rs, const int *idx, int nidx,
                  const char *xcol, const char *ycol, eg_err *err)
{
    memset(c, 0, sizeof *c);
    if (nidx <= 0)
        return EG_OK;
    for (int k = 0; k < nidx; k++) {
        const eg_metrics *m = &rs->runs[idx[k]].metrics;
        if (eg_metrics_col(m, xcol) < 0 || eg_metrics_col(m, ycol) < 0)
            return EG_OK;
    }
    const eg_metrics *m0 = &rs->runs[idx[0]].metrics;
    size_t cap = (size_t)m0->nrows + 1;
    long *from = calloc((size_t)nidx, sizeof(long));
    double *ys = calloc((size_t)nidx, sizeof(double));
    c->x = malloc(5 * cap * sizeof(double));
    if (!from || !ys || !c->x) {
        free(from);
        free(ys);
        eg_curve_free(c);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    c->mean = c->x + cap;
    c->sd = c->x + 2 * cap;
    c->lo = c->x + 3 * cap;
    c->hi = c->x + 4 * cap;
    int ic = eg_metrics_col(m0, "iter");
    for (long r = 0; ic >= 0 && r < m0->nrows; r++)
        curve_point(c, rs, idx, nidx, xcol, ycol, m0->val[(size_t)r * (size_t)m0->ncols + (size_t)ic],
                    from, ys);
    free(from);
    free(ys);
    return EG_OK;
}
