/* network.c - lost messages and absent nodes (network.h). */
#include "network.h"

#include <stdlib.h>
#include <string.h>

/* stream tags (common.h): EG_STREAM_DROP for messages, EG_STREAM_OFFLINE for nodes */

/* one uniform draw from the stream (seed, tag, index of a, b, c) */
static double draw(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t key[3] = {a, b, c};
    eg_rng r;
    eg_rng_seed(&r, seed, tag, eg_fnv1a(EG_FNV_INIT, key, sizeof key));
    return eg_rng_uniform(&r);
}

int eg_network_offline(const eg_network_spec *s, uint64_t seed, long k, int i)
{
    return s->offline > 0 && draw(seed, EG_STREAM_OFFLINE, (uint64_t)k, (uint64_t)i, 0) < s->offline;
}

int eg_network_dropped(const eg_network_spec *s, uint64_t seed, long k, int j, int i)
{
    return s->drop > 0 &&
           draw(seed, EG_STREAM_DROP, (uint64_t)k, (uint64_t)j, (uint64_t)i) < s->drop;
}

struct eg_network {
    eg_network_spec spec;
    uint64_t seed;
    int nodes;
    unsigned char *absent; /* nodes: absent in the last applied iteration */
    eg_wmat w;             /* W'(k) */
    int cap;               /* entries w can hold */
};

int eg_network_init(eg_network **out, const eg_network_spec *s, uint64_t seed, int nodes,
                    int max_nnz, eg_err *err)
{
    *out = NULL;
    eg_network *net = eg_calloc(1, sizeof *net, err);
    if (!net)
        return EG_ERUN;
    net->spec = *s;
    net->seed = seed;
    net->nodes = nodes;
    net->cap = max_nnz;
    net->absent = calloc((size_t)nodes, 1);
    net->w.rowptr = malloc(sizeof(int) * (size_t)(nodes + 1));
    net->w.col = malloc(sizeof(int) * (size_t)(max_nnz > 0 ? max_nnz : 1));
    net->w.val = malloc(sizeof(double) * (size_t)(max_nnz > 0 ? max_nnz : 1));
    if (!net->absent || !net->w.rowptr || !net->w.col || !net->w.val) {
        eg_network_free(net);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    *out = net;
    return EG_OK;
}

void eg_network_free(eg_network *net)
{
    if (!net)
        return;
    free(net->absent);
    free(net->w.rowptr);
    free(net->w.col);
    free(net->w.val);
    free(net);
}

int eg_network_absent(const eg_network *net, int i) { return net->absent[i]; }

/* row i of W'(k): the lost entries zeroed, their weight added to the diagonal */
static void apply_row(eg_network *net, const eg_wmat *W, long k, int i, eg_network_count *cnt)
{
    eg_wmat *o = &net->w;
    int diag = -1;
    double moved = 0;
    for (int e = W->rowptr[i]; e < W->rowptr[i + 1]; e++) {
        int j = W->col[e];
        double v = W->val[e];
        o->col[e] = j;
        o->val[e] = v;
        if (j == i) {
            diag = e;
            continue;
        }
        if (v == 0.0)
            continue;
        cnt->sent += !net->absent[j];
        if (net->absent[i] || net->absent[j] || eg_network_dropped(&net->spec, net->seed, k, j, i)) {
            o->val[e] = 0.0;
            moved += v;
            cnt->lost++;
        }
    }
    if (diag >= 0)
        o->val[diag] += moved;
}

const eg_wmat *eg_network_apply(eg_network *net, const eg_wmat *W, long k,
                                eg_network_count *cnt)
{
    eg_network_count c = {0, 0};
    for (int i = 0; i < net->nodes; i++)
        net->absent[i] = (unsigned char)eg_network_offline(&net->spec, net->seed, k, i);
    eg_wmat *o = &net->w;
    o->n = W->n;
    o->nnz = W->nnz;
    memcpy(o->rowptr, W->rowptr, sizeof(int) * (size_t)(W->n + 1));
    for (int i = 0; i < W->n; i++)
        apply_row(net, W, k, i, &c);
    if (cnt)
        *cnt = c;
    return o;
}
