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
    /* read-ahead (eg_sampler_set_prefetch): a shadow of each node's stream, `ahead` draws
     * ahead of it, whose draws are handed to the hook */
    void (*prefetch)(void *ud, const int32_t *idx, int n);
    void *ud;
    int ahead, batch;
    eg_rng *sh_rng;
    int32_t *sh_order, *sh_cursor, *sh_idx; /* sh_idx: nlocal x batch */
    char *sh_started;
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
    free(s->sh_rng);
    free(s->sh_order);
    free(s->sh_cursor);
    free(s->sh_idx);
    free(s->sh_started);
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

/* the next batch of a stream (rng, shard order, cursor): the next slice, reshuffled (and the
 * cursor reset) when fewer than batch remain */
static void draw(eg_rng *rng, int32_t *order, int32_t len, int32_t *cursor, int batch,
                 int32_t *idx)
{
    if (*cursor + batch > len) {
        eg_rng_shuffle(rng, order, (size_t)len);
        *cursor = 0;
    }
    memcpy(idx, order + *cursor, sizeof(int32_t) * (size_t)batch);
    *cursor += batch;
}

/* node li's shadow: started from its stream's state (so after a checkpoint's restore) and
 * kept `ahead` draws ahead; each shadow draw goes to the hook */
static void read_ahead(eg_sampler *s, int li)
{
    int32_t len = s->off[li + 1] - s->off[li];
    int32_t *order = s->sh_order + s->off[li], *idx = s->sh_idx + (size_t)li * (size_t)s->batch;
    int draws = 1;
    if (!s->sh_started[li]) {
        s->sh_rng[li] = s->sample_rng[li];
        memcpy(order, s->order + s->off[li], sizeof(int32_t) * (size_t)len);
        s->sh_cursor[li] = s->cursor[li];
        s->sh_started[li] = 1;
        draws = s->ahead;
    }
    for (int k = 0; k < draws; k++) {
        draw(&s->sh_rng[li], order, len, &s->sh_cursor[li], s->batch, idx);
        s->prefetch(s->ud, idx, s->batch);
    }
}

void eg_sampler_next(eg_sampler *s, int li, int batch, int32_t *idx)
{
    draw(&s->sample_rng[li], s->order + s->off[li], s->off[li + 1] - s->off[li], &s->cursor[li],
         batch, idx);
    if (s->prefetch && batch == s->batch)
        read_ahead(s, li);
}

int eg_sampler_set_prefetch(eg_sampler *s, void (*fn)(void *ud, const int32_t *idx, int n),
                            void *ud, int ahead, int batch, eg_err *err)
{
    size_t n = (size_t)s->nlocal, total = (size_t)s->off[s->nlocal];
    s->sh_rng = calloc(n + 1, sizeof *s->sh_rng);
    s->sh_order = malloc(sizeof(int32_t) * (total ? total : 1));
    s->sh_cursor = calloc(n + 1, sizeof *s->sh_cursor);
    s->sh_idx = malloc(sizeof(int32_t) * (n ? n : 1) * (size_t)batch);
    s->sh_started = calloc(n + 1, 1);
    if (!s->sh_rng || !s->sh_order || !s->sh_cursor || !s->sh_idx || !s->sh_started)
        return eg_err_set(err, EG_ERUN, "out of memory");
    s->prefetch = fn;
    s->ud = ud;
    s->ahead = ahead;
    s->batch = batch;
    return EG_OK;
}

eg_rng *eg_sampler_aug_rng(eg_sampler *s, int li) { return &s->aug_rng[li]; }

eg_sampler_node eg_sampler_node_state(eg_sampler *s, int li)
{
    eg_sampler_node n = {&s->sample_rng[li], &s->aug_rng[li], s->order + s->off[li],
                         s->off[li + 1] - s->off[li], &s->cursor[li]};
    return n;
}
