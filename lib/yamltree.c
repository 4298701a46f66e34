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

#define MAX_DEPTH 64

/* An open collection. The stack of them names the key a construct belongs to when
 * libyaml gives up (e.g. "model.hidden" for an unclosed [ after hidden:). */
typedef struct yframe {
    size_t line, col; /* 0-based start of the collection (libyaml's mark) */
    int is_map;
    const char *key;  /* map: the key whose value is being read, NULL between entries */
    int item;         /* sequence: index of the item being read */
} yframe;

typedef struct {
    yaml_parser_t p;
    const char *src;
    eg_err *err;
    const char *text; /* the document, for hints */
    size_t len;
    yframe frames[MAX_DEPTH];
    int nframes;
} pstate;

/* libyaml's contexts that name a construct with a start worth pointing at */
enum { KEY_FRAME, KEY_PENDING };
static const struct ycontext {
    const char *libyaml; /* yaml_parser_t.context */
    const char *what;    /* the construct, in the message */
    int closable;        /* an end-of-input problem means "is not closed" */
    int key;             /* KEY_FRAME: the construct is an open collection; KEY_PENDING: a
                          * scalar being read as the value of the innermost key or item */
} ycontexts[] = {
    {"while parsing a flow mapping", "flow mapping {...}", 1, KEY_FRAME},
    {"while parsing a flow sequence", "flow sequence [...]", 1, KEY_FRAME},
    {"while scanning a quoted scalar", "quoted string", 1, KEY_PENDING},
    {"while parsing a quoted scalar", "quoted string", 1, KEY_PENDING}, /* (sic) escapes */
    {"while parsing a block mapping", "block mapping", 0, KEY_FRAME},
    {"while parsing a block collection", "block sequence", 0, KEY_FRAME},
    {"while scanning a block scalar", "block scalar", 0, KEY_PENDING},
};

/* Dotted path of the value frames[0..upto) lead to ("model.hidden", "sweep.graph[2]"). */
static void frame_path(const pstate *ps, int upto, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = 0;
    for (int f = 0; f < upto && o < outlen; f++) {
        const yframe *y = &ps->frames[f];
        if (y->is_map)
            o += (size_t)snprintf(out + o, outlen - o, "%s%s", o ? "." : "", y->key ? y->key : "?");
        else
            o += (size_t)snprintf(out + o, outlen - o, "[%d]", y->item);
    }
}

/* The key the construct starting at mark m belongs to, into out ("" when none is known). */
static void context_key(const pstate *ps, const struct ycontext *cx, const yaml_mark_t *m,
                        char *out, size_t outlen)
{
    out[0] = 0;
    if (cx->key == KEY_FRAME) {
        for (int f = ps->nframes - 1; f >= 0; f--)
            if (ps->frames[f].line == m->line && ps->frames[f].col == m->column) {
                frame_path(ps, f, out, outlen);
                return;
            }
        return;
    }
    /* a scalar: the value of the innermost key (after ':') or item (after '-', '[', ',') */
    int t = ps->nframes - 1;
    if (t < 0 || (ps->frames[t].is_map && !ps->frames[t].key) || m->index > ps->len)
        return;
    size_t i = m->index;
    while (i > 0 && strchr(" \t\r\n", ps->text[i - 1]))
        i--;
    char before = i > 0 ? ps->text[i - 1] : 0;
    if (ps->frames[t].is_map ? before == ':' : (before && strchr("-[,", before)))
        frame_path(ps, t + 1, out, outlen);
}

/* whether nothing but white space follows the problem: libyaml reached the end */
static int at_end(const pstate *ps, size_t index)
{
    for (size_t i = index; i < ps->len; i++)
        if (!strchr(" \t\r\n", ps->text[i]))
            return 0;
    return 1;
}

/* A syntax error naming where the construct libyaml was reading started and which key it
 * belongs to, besides libyaml's own problem and place. */
static int perr_context(pstate *ps, const struct ycontext *cx)
{
    const yaml_parser_t *p = &ps->p;
    const yaml_mark_t *m = &p->problem_mark, *c = &p->context_mark;
    char key[256], of[300] = "";
    context_key(ps, cx, c, key, sizeof key);
    if (*key)
        snprintf(of, sizeof of, " of key '%s'", key);
    const char *problem = p->problem ? p->problem : "?";
    if (cx->closable && (m->line > c->line || at_end(ps, m->index)))
        return eg_err_set(ps->err, EG_EINPUT,
                          "%s:%zu:%zu: YAML syntax error: the %s%s that starts here is not closed "
                          "(at %zu:%zu: %s)",
                          ps->src, c->line + 1, c->column + 1, cx->what, of, m->line + 1,
                          m->column + 1, problem);
    return eg_err_set(ps->err, EG_EINPUT,
                      "%s:%zu:%zu: YAML syntax error: %s, in the %s%s that starts at %zu:%zu",
                      ps->src, m->line + 1, m->column + 1, problem, cx->what, of, c->line + 1,
                      c->column + 1);
}

static int perr(pstate *ps)
{
    const yaml_parser_t *p = &ps->p;
    const yaml_mark_t *m = &p->problem_mark;
    if (ps->text && m->index < ps->len && ps->text[m->index] == '\t')
        return eg_err_set(ps->err, EG_EINPUT,
                          "%s:%zu:%zu: YAML syntax error: a tab character; YAML does not allow "
                          "tabs for indentation, use spaces",
                          ps->src, m->line + 1, m->column + 1);
    for (size_t i = 0; p->context && i < sizeof ycontexts / sizeof ycontexts[0]; i++)
        if (!strcmp(p->context, ycontexts[i].libyaml))
            return perr_context(ps, &ycontexts[i]);
    if (p->context)
        return eg_err_set(ps->err, EG_EINPUT, "%s:%zu:%zu: YAML syntax error: %s %s", ps->src,
                          m->line + 1, m->column + 1, p->problem ? p->problem : "?", p->context);
    return eg_err_set(ps->err, EG_EINPUT, "%s:%zu:%zu: YAML syntax error: %s", ps->src,
                      m->line + 1, m->column + 1, p->problem ? p->problem : "?");
}

/* the next event into *e: 0, or -1 with the syntax error reported */
static int next_event(pstate *ps, yaml_event_t *e)
{
    if (yaml_parser_parse(&ps->p, e))
        return 0;
    perr(ps);
    return -1;
}

static eg_ynode *new_node(pstate *ps, eg_ykind kind, const char *str, int line, int col)
{
    eg_ynode *n = eg_ynode_new(kind, str, ps->src, line, col);
    if (!n)
        eg_err_set(ps->err, EG_ERUN, "out of memory");
    return n;
}

static eg_ynode *parse_node(pstate *ps, const yaml_event_t *ev);

/* parses the node that starts with *e (already read), then deletes *e */
static eg_ynode *parse_child(pstate *ps, yaml_event_t *e)
{
    eg_ynode *v = parse_node(ps, e);
    yaml_event_delete(e);
    return v;
}

static eg_ynode *parse_scalar(pstate *ps, const yaml_event_t *ev, int line, int col)
{
    if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
        /* a "\0" escape: C strings would silently cut the value there */
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: a string holds a NUL character (\\0)", ps->src,
                   line, col);
        return NULL;
    }
    eg_ynode *n = new_node(ps, EG_Y_SCALAR, (const char *)ev->data.scalar.value, line, col);
    if (n)
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE &&
                    ev->data.scalar.style != YAML_ANY_SCALAR_STYLE;
    return n;
}

/* Reads the next key of map: 0 with *key (malloc'ed) and its place set, 1 at the end of the
 * mapping, -1 on an error (reported). */
static int read_key(pstate *ps, const eg_ynode *map, char **key, int *kl, int *kc)
{
    yaml_event_t e;
    if (next_event(ps, &e))
        return -1;
    if (e.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&e);
        return 1;
    }
    *kl = (int)e.start_mark.line + 1;
    *kc = (int)e.start_mark.column + 1;
    const char *bad = NULL;
    if (e.type != YAML_SCALAR_EVENT)
        bad = "mapping keys must be plain words";
    else if (memchr(e.data.scalar.value, 0, e.data.scalar.length))
        bad = "a key holds a NUL character (\\0)";
    *key = bad ? NULL : strdup((const char *)e.data.scalar.value);
    yaml_event_delete(&e);
    if (bad)
        return eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: %s", ps->src, *kl, *kc, bad), -1;
    if (!*key)
        return eg_err_set(ps->err, EG_ERUN, "out of memory"), -1;
    if (eg_ymap_get(map, *key, NULL)) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: key '%s' appears twice", ps->src, *kl, *kc,
                   *key);
        free(*key);
        return -1;
    }
    return 0;
}

static int parse_map_entries(pstate *ps, eg_ynode *n, yframe *fr)
{
    for (;;) {
        char *key;
        int kl, kc, r = read_key(ps, n, &key, &kl, &kc);
        if (r)
            return r > 0 ? 0 : -1;
        yaml_event_t ve;
        eg_ynode *v = NULL;
        fr->key = key;
        if (!next_event(ps, &ve))
            v = parse_child(ps, &ve);
        fr->key = NULL;
        int bad = !v;
        if (v && eg_ymap_set(n, key, v, kl, kc)) {
            eg_ynode_free(v);
            bad = eg_err_set(ps->err, EG_ERUN, "out of memory");
        }
        free(key);
        if (bad)
            return -1;
    }
}

static int parse_seq_items(pstate *ps, eg_ynode *n, yframe *fr)
{
    for (;;) {
        yaml_event_t e;
        fr->item = n->n;
        if (next_event(ps, &e))
            return -1;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            return 0;
        }
        eg_ynode *v = parse_child(ps, &e);
        if (!v)
            return -1;
        if (grow(n)) {
            eg_ynode_free(v);
            return eg_err_set(ps->err, EG_ERUN, "out of memory"), -1;
        }
        n->items[n->n++] = v;
    }
}

static eg_ynode *parse_collection(pstate *ps, const yaml_event_t *ev, int line, int col)
{
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (ps->nframes >= MAX_DEPTH) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: nested too deeply (more than %d levels)",
                   ps->src, line, col, MAX_DEPTH);
        return NULL;
    }
    if (!is_map && ev->type != YAML_SEQUENCE_START_EVENT) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: unexpected YAML event", ps->src, line, col);
        return NULL;
    }
    eg_ynode *n = new_node(ps, is_map ? EG_Y_MAP : EG_Y_SEQ, NULL, line, col);
    if (!n)
        return NULL;
    yframe *fr = &ps->frames[ps->nframes++];
    *fr = (yframe){.line = ev->start_mark.line, .col = ev->start_mark.column, .is_map = is_map};
    int rc = is_map ? parse_map_entries(ps, n, fr) : parse_seq_items(ps, n, fr);
    ps->nframes--;
    if (rc) {
        eg_ynode_free(n);
        return NULL;
    }
    return n;
}

/* parses the node that begins with *ev (already read); consumes through its end */
static eg_ynode *parse_node(pstate *ps, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT) {
        eg_err_set(ps->err, EG_EINPUT, "%s:%d:%d: YAML aliases (*name) are not supported in specs",
                   ps->src, line, col);
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT)
        return parse_scalar(ps, ev, line, col);
    return parse_collection(ps, ev, line, col);
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
        if (next_event(&ps, &e)) {
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
