/* yamltree.h - a small YAML document tree built with libyaml's event API, keeping the
 * line and column of every node so validation can point at the exact place. */
#ifndef EG_YAMLTREE_H
#define EG_YAMLTREE_H

#include "common.h"

typedef enum { EG_Y_SCALAR, EG_Y_SEQ, EG_Y_MAP } eg_ykind;

typedef struct eg_ynode {
    eg_ykind kind;
    char *str;          /* scalar text */
    int quoted;         /* scalar was quoted (so "null" is a string) */
    int line, col;      /* 1-based position of the node */
    const char *src;    /* file name, or a label such as "--set nodes=3" (not owned) */
    int n, cap;
    struct eg_ynode **items; /* sequence items / mapping values */
    char **keys;             /* mapping keys */
    int *kline, *kcol;       /* mapping keys' positions */
} eg_ynode;

/* Parses one YAML document from text (len bytes, need not be NUL-terminated). src labels
 * every node and must outlive the tree. On a syntax error returns NULL with EG_EINPUT and
 * "SRC:LINE:COL: message"; when libyaml gave up inside a construct (an unclosed {, [ or
 * quote, a badly indented block), the message also names where that construct starts and
 * the dotted key it belongs to, e.g. "SRC:8:5: YAML syntax error: the flow mapping {...} of
 * key 'lr' that starts here is not closed (at 9:1: did not find expected ',' or '}')".
 * Out of memory: NULL with EG_ERUN. An empty document yields an empty map when
 * empty_is_map, else a null scalar. The caller frees the tree with eg_ynode_free. */
eg_ynode *eg_yaml_parse(const char *text, size_t len, const char *src, int empty_is_map,
                        eg_err *err);
/* Reads and parses a file (src = path, which must outlive the tree). Missing, unreadable,
 * binary or > 64 MiB file, or a document that is not a mapping: NULL with EG_EINPUT naming
 * it. */
eg_ynode *eg_yaml_parse_file(const char *path, eg_err *err);
void eg_ynode_free(eg_ynode *n);
eg_ynode *eg_ynode_new(eg_ykind kind, const char *str, const char *src, int line, int col);
/* Adds/replaces key in a map (takes ownership of val). Returns 0 or -1 on OOM. */
int eg_ymap_set(eg_ynode *map, const char *key, eg_ynode *val, int line, int col);
/* Value of key in a map, or NULL; *index gets its position when not NULL. */
eg_ynode *eg_ymap_get(const eg_ynode *map, const char *key, int *index);
/* Removes key from a map (freeing the value). */
void eg_ymap_del(eg_ynode *map, const char *key);
/* A YAML null: plain scalar "", "~", "null", "Null", "NULL". */
int eg_ynode_is_null(const eg_ynode *n);
/* Flow-style text of a node ("ring", "0.05", "{name: erdos_renyi, p: 0.2}", "[8, 16]"),
 * malloc'ed. Scalars that would not read back as the same string are double-quoted. */
char *eg_ynode_to_flow(const eg_ynode *n);
/* Writes s into out (outlen > 0 bytes, always NUL-terminated): as is when it reads back as
 * the same plain YAML scalar, else double-quoted with escapes. No growing: a result longer
 * than outlen is cut short (4 * strlen(s) + 16 bytes always suffice). */
void eg_yaml_quote(const char *s, char *out, size_t outlen);

#endif
