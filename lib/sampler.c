/* sampler.c - each local node's shard, permutation, cursor and random streams. */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

struct eg_sampler {
    int nlocal;
    eg_rng *sample_rng, *aug_rng; /* nlocal each */
    int32_t *order;               /* the local nodes' shards, concatenated */
    int32_t *off;                 /* nlocal + 1: node li's shard is order[off[li] .. off[li+1]) */
    int32_t *cursor;              /* nlocal */
};

void eg_sampler_free(eg_sampler *s)
{
    if (!s)
        return;
    free(s->sample_rng);
    free(s->aug_rng);
    free(s->order);
    free(s->off);
    free(s->cursor);
    free(s);
}

int eg_sampler_init(eg_sampler **out, const eg_partition *p, int lo, int nlocal, uint64_t seed,
                    eg_err *err)
{
    *out = NULL;
    eg_sampler *s = eg_calloc(1, sizeof *s, err);
    if (!s)
        return EG_ERUN;
    size_t n1 = (size_t)nlocal + 1;
    long total = p->offset[lo + nlocal] - p->offset[lo];
    s->nlocal = nlocal;
    s->sample_rng = calloc(n1, sizeof(eg_rng));
    s->aug_rng = calloc(n1, sizeof(eg_rng));
    s->off = calloc(n1, sizeof(int32_t));
    s->cursor = calloc(n1, sizeof(int32_t));
    s->order = malloc(sizeof(int32_t) * (size_t)(total ? total : 1));
    if (!s->sample_rng || !s->aug_rng || !s->off || !s->cursor || !s->order) {
        eg_sampler_free(s);
        return eg_err_set(err, EG_ERUN, "out of memory");
    }
    for (int li = 0; li < nlocal; li++) {
        int node = lo + li;
        int32_t len = p->offset[node + 1] - p->offset[node];
        s->off[li + 1] = s->off[li] + len;
        memcpy(s->order + s->off[li], p->idx + p->offset[node], sizeof(int32_t) * (size_t)len);
        eg_rng_seed(&s->sample_rng[li], seed, EG_STREAM_SAMPLE, (uint64_t)node);
        eg_rng_seed(&s->aug_rng[li], seed, EG_STREAM_AUGMENT, (uint64_t)node);
        s->cursor[li] = len; /* shuffle before the first batch */
    }
    *out = s;
    return EG_OK;
}

void eg_sampler_next(eg_sampler *s, int li, int batch, int32_t *idx)
{
    int32_t *order = s->order + s->off[li];
    int32_t len = s->off[li + 1] - s->off[li];
    if (s->cursor[li] + batch > len) {
        eg_rng_shuffle(&s->sample_rng[li], order, (size_t)len);
        s->cursor[li] = 0;
    }
    memcpy(idx, order + s->cursor[li], sizeof(int32_t) * (size_t)batch);
    s->cursor[li] += batch;
}

eg_rng *eg_sampler_aug_rng(eg_sampler *s, int li) { return &s->aug_rng[li]; }

eg_sampler_node eg_sampler_node_state(eg_sampler *s, int li)
{
    eg_sampler_node n = {&s->sample_rng[li], &s->aug_rng[li], s->order + s->off[li],
                         s->off[li + 1] - s->off[li], &s->cursor[li]};
    return n;
}
