/* yamltree.c - YAML text -> eg_ynode tree (libyaml event API), and back to flow text. */
#include "yamltree.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

eg_ynode *eg_ynode_new(eg_ykind kind, const char *str, const char *src, int line, int col)
{
    eg_ynode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->kind = kind;
    n->src = src;
    n->line = line;
    n->col = col;
    if (str) {
        n->str = strdup(str);
        if (!n->str) {
            free(n);
            return NULL;
        }
    }
    return n;
}

void eg_ynode_free(eg_ynode *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n; i++) {
        eg_ynode_free(n->items[i]);
        if (n->keys)
            free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->kline);
    free(n->kcol);
    free(n->str);
    free(n);
}

static int grow(eg_ynode *n)
{
    if (n->n < n->cap)
        return 0;
    int cap = n->cap ? 2 * n->cap : 8;
    eg_ynode **items = realloc(n->items, (size_t)cap * sizeof *items);
    if (!items)
        return -1;
    n->items = items;
    if (n->kind == EG_Y_MAP) {
        char **keys = realloc(n->keys, (size_t)cap * sizeof *keys);
        if (!keys)
            return -1;
        n->keys = keys;
        int *kl = realloc(n->kline, (size_t)cap * sizeof *kl);
        if (!kl)
            return -1;
        n->kline = kl;
        int *kc = realloc(n->kcol, (size_t)cap * sizeof *kc);
        if (!kc)
            return -1;
        n->kcol = kc;
    }
    n->cap = cap;
    return 0;
}

eg_ynode *eg_ymap_get(const eg_ynode *map, const char *key, int *index)
{
    if (!map || map->kind != EG_Y_MAP)
        return NULL;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) {
            if (index)
                *index = i;
            return map->items[i];
        }
    return NULL;
}

int eg_ymap_set(eg_ynode *map, const char *key, eg_ynode *val, int line, int col)
{
    int idx;
    if (eg_ymap_get(map, key, &idx)) {
        eg_ynode_free(map->items[idx]);
        map->items[idx] = val;
        return 0;
    }
    if (grow(map))
        return -1;
    map->keys[map->n] = strdup(key);
    if (!map->keys[map->n])
        return -1;
    map->kline[map->n] = line;
    map->kcol[map->n] = col;
    map->items[map->n++] = val;
    return 0;
}

void eg_ymap_del(eg_ynode *map, const char *key)
{
    int idx;
    if (!eg_ymap_get(map, key, &idx))
        return;
    eg_ynode_free(map->items[idx]);
    free(map->keys[idx]);
    for (int i = idx + 1; i < map->n; i++) {
        map->items[i - 1] = map->items[i];
        map->keys[i - 1] = map->keys[i];
        map->kline[i - 1] = map->kline[i];
        map->kcol[i - 1] = map->kcol[i];
    }
    map->n--;
}

int eg_ynode_is_null(const eg_ynode *n)
{
    if (!n)
        return 1;
    if (n->kind != EG_Y_SCALAR || n->quoted)
        return 0;
    const char *s = n->str ? n->str : "";
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* ---- parsing ---- */

typedef struct {
    yaml_parser_t p;
    const char *src;
    eg_err *err;
    int depth;
    const char *text; /* the document, for hints */
    size_t len;
} pstate;

#define MAX_DEPTH 64

static int perr(pstate *ps)
{
    const yaml_parser_t *p = &ps->p;
    const yaml_mark_t *m = &p->problem_mark;
    if (ps->text && m->index < ps->len && ps->text[m->index] == '\t')
        return eg_err_set(ps->err, EG_EINPUT,
                          "%s:%zu:%zu: YAML syntax error: a tab character; YAML does not allow "
                          "tabs for indentation, use spaces",
                          ps->src, m->line + 1, m->column + 1);
    if (p->context)
        return eg_err_set(ps->err, EG_EINPUT, "%s:%zu:%zu: YAML syntax error: %s %s", ps->src,
                          m->line + 1, m->column + 1, p->problem ? p->problem : "?", p->context);
    return eg_err_set(ps->err, EG_EINPUT, "%s:%zu:%zu: YAML syntax error: %s", ps->src,
                      m->line + 1, m->column + 1, p->problem ? p->problem : "?");
}

static eg_ynode *parse_node(pstate *ps, yaml_event_t *ev);

/* parses the node that begins with *ev (already read); consumes through its end */
static eg_ynode *parse_node(pstate *ps, yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: YAML aliases (*name) are not supported in specs",
                   ps->src, line, col);
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
            /* a "\0" escape: C strings would silently cut the value there */
            eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: a string holds a NUL character (\\0)",
                       ps->src, line, col);
            return NULL;
        }
        eg_ynode *n = eg_ynode_new(EG_Y_SCALAR, (const char *)ev->data.scalar.value, ps->src, line, col);
        if (!n) {
            eg_err_set(ps->err, EG_ERUN, "out of memory");
            return NULL;
        }
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                    ev->data.scalar.style != YAML_ANY_SCALAR_STYLE;
        return n;
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (ps->depth >= MAX_DEPTH) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: nested too deeply (more than %d levels)",
                   ps->src, line, col, MAX_DEPTH);
        return NULL;
    }
    if (!is_map && ev->type != YAML_SEQUENCE_START_EVENT) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: unexpected YAML event", ps->src, line, col);
        return NULL;
    }
    eg_ynode *n = eg_ynode_new(is_map ? EG_Y_MAP : EG_Y_SEQ, NULL, ps->src, line, col);
    if (!n) {
        eg_err_set(ps->err, EG_ERUN, "out of memory");
        return NULL;
    }
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&ps->p, &e)) {
            perr(ps);
            eg_ynode_free(n);
            return NULL;
        }
        if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return n;
        }
        if (is_map) {
            int kl = (int)e.start_mark.line + 1, kc = (int)e.start_mark.column + 1;
            if (e.type != YAML_SCALAR_EVENT) {
                eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: mapping keys must be plain words",
                           ps->src, kl, kc);
                yaml_event_delete(&e);
                eg_ynode_free(n);
                return NULL;
            }
            if (memchr(e.data.scalar.value, 0, e.data.scalar.length)) {
                eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: a key holds a NUL character (\\0)",
                           ps->src, kl, kc);
                yaml_event_delete(&e);
                eg_ynode_free(n);
                return NULL;
            }
            char *key = strdup((const char *)e.data.scalar.value);
            yaml_event_delete(&e);
            if (!key) {
                eg_err_set(ps->err, EG_ERUN, "out of memory");
                eg_ynode_free(n);
                return NULL;
            }
            if (eg_ymap_get(n, key, NULL)) {
                eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: key '%s' appears twice", ps->src, kl, kc,
                           key);
                free(key);
                eg_ynode_free(n);
                return NULL;
            }
            yaml_event_t ve;
            if (!yaml_parser_parse(&ps->p, &ve)) {
                perr(ps);
                free(key);
                eg_ynode_free(n);
                return NULL;
            }
            ps->depth++;
            eg_ynode *v = parse_node(ps, &ve);
            ps->depth--;
            yaml_event_delete(&ve);
            if (!v || eg_ymap_set(n, key, v, kl, kc)) {
                if (v)
                    eg_ynode_free(v);
                free(key);
                eg_ynode_free(n);
                return NULL;
            }
            free(key);
        } else {
            ps->depth++;
            eg_ynode *v = parse_node(ps, &e);
            ps->depth--;
            yaml_event_delete(&e);
            if (!v || grow(n)) {
                eg_ynode_free(v);
                eg_ynode_free(n);
                return NULL;
            }
            n->items[n->n++] = v;
        }
    }
}

eg_ynode *eg_yaml_parse(const char *text, size_t len, const char *src, int empty_is_map,
                        eg_err *err)
{
    pstate ps = {.src = src, .err = err, .text = text, .len = len};
    if (!yaml_parser_initialize(&ps.p)) {
        eg_err_set(err, EG_ERUN, "cannot initialise the YAML parser");
        return NULL;
    }
    yaml_parser_set_input_string(&ps.p, (const unsigned char *)text, len);
    eg_ynode *root = NULL;
    int done = 0, failed = 0;
    while (!done && !failed) {
        yaml_event_t e;
        if (!yaml_parser_parse(&ps.p, &e)) {
            perr(&ps);
            failed = 1;
            break;
        }
        switch (e.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (root) {
                eg_err_set(err, EG_EINPUT, "%s:%zu:%zu: a spec holds one YAML document, found a second",
                           src, e.start_mark.line + 1, e.start_mark.column + 1);
                failed = 1;
            }
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            root = parse_node(&ps, &e);
            if (!root)
                failed = 1;
            break;
        }
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&ps.p);
    if (failed) {
        eg_ynode_free(root);
        return NULL;
    }
    if (!root)
        root = eg_ynode_new(empty_is_map ? EG_Y_MAP : EG_Y_SCALAR, empty_is_map ? NULL : "", src, 1, 1);
    return root;
}

eg_ynode *eg_yaml_parse_file(const char *path, eg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        eg_err_set(err, EG_EINPUT, "%s: cannot open spec: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 14, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        if (cap > (64u << 20)) {
            free(buf);
            fclose(f);
            eg_err_set(err, EG_EINPUT, "%s: spec file is larger than 64 MiB", path);
            return NULL;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        free(buf);
        fclose(f);
        eg_err_set(err, EG_EINPUT, "%s: cannot read spec", path);
        return NULL;
    }
    fclose(f);
    if (memchr(buf, 0, len)) {
        free(buf);
        eg_err_set(err, EG_EINPUT, "%s: not a text file (contains NUL bytes)", path);
        return NULL;
    }
    eg_ynode *root = eg_yaml_parse(buf, len, path, 1, err);
    free(buf);
    if (root && root->kind != EG_Y_MAP) {
        eg_err_set(err, EG_EINPUT, "%s:%d:%d: a spec must be a mapping of keys (name:, nodes:, ...)",
                   path, root->line, root->col);
        eg_ynode_free(root);
        return NULL;
    }
    return root;
}

/* ---- emitting flow text ---- */

static int needs_quote(const char *s)
{
    if (!*s)
        return 1;
    if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
        return 1;
    if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
        return !(s[0] == '-' && (isdigit((unsigned char)s[1]) || s[1] == '.'));
    for (const char *p = s; *p; p++) {
        unsigned char u = (unsigned char)*p;
        if (*p == ',' || *p == '[' || *p == ']' || *p == '{' || *p == '}' || *p == '#' ||
            *p == '"' || *p == '\\' || u < 0x20 || u == 0x7f || u >= 0x80)
            return 1;
        if (*p == ':' && (p[1] == ' ' || p[1] == 0))
            return 1;
    }
    if (!strcmp(s, "null") || !strcmp(s, "~") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return 1;
    return 0;
}

void eg_yaml_quote(const char *s, char *out, size_t outlen)
{
    if (!needs_quote(s)) {
        snprintf(out, outlen, "%s", s);
        return;
    }
    size_t o = 0;
    if (o + 1 < outlen)
        out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < outlen; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (*p == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", *p);
        } else if (p[0] == 0xc2 && p[1] == 0x85) { /* NEL */
            o += (size_t)snprintf(out + o, outlen - o, "\\N");
            p++;
        } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            o += (size_t)snprintf(out + o, outlen - o, p[2] == 0xa8 ? "\\L" : "\\P");
            p += 2;
        } else {
            out[o++] = (char)*p;
        }
    }
    if (o + 1 < outlen)
        out[o++] = '"';
    out[o < outlen ? o : outlen - 1] = 0;
}

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *t)
{
    size_t l = strlen(t);
    if (b->oom)
        return;
    if (b->len + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + l + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, t, l + 1);
    b->len += l;
}

static void flow(sbuf *b, const eg_ynode *n)
{
    if (n->kind == EG_Y_SCALAR) {
        if (eg_ynode_is_null(n)) {
            sb_add(b, "null");
            return;
        }
        size_t cap = 4 * strlen(n->str) + 16;
        char *q = malloc(cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        eg_yaml_quote(n->str, q, cap);
        sb_add(b, q);
        free(q);
        return;
    }
    sb_add(b, n->kind == EG_Y_MAP ? "{" : "[");
    for (int i = 0; i < n->n; i++) {
        if (i)
            sb_add(b, ", ");
        if (n->kind == EG_Y_MAP) {
            sb_add(b, n->keys[i]);
            sb_add(b, ": ");
        }
        flow(b, n->items[i]);
    }
    sb_add(b, n->kind == EG_Y_MAP ? "}" : "]");
}

char *eg_ynode_to_flow(const eg_ynode *n)
{
    sbuf b = {0};
    flow(&b, n);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    if (!b.s)
        b.s = strdup("");
    return b.s;
}
