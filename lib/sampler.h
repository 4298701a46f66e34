/* sampler.h - which training samples each local node draws: its shard of the partition in
 * an order reshuffled every pass, a cursor into it, and the node's random streams
 * (shuffling, augmentation), each seeded by (seed, purpose, node id) so that a node draws
 * the same minibatches whatever rank holds it. Checkpointed per node (ckpt.c). */
#ifndef EG_SAMPLER_H
#define EG_SAMPLER_H

#include "common.h"
#include "data.h"

typedef struct eg_sampler eg_sampler;

/* The shards of nodes [lo, lo + nlocal) of partition p; each node shuffles before its first
 * batch. *out is NULL on error (EG_ERUN: out of memory). Not collective. */
int eg_sampler_init(eg_sampler **out, const eg_partition *p, int lo, int nlocal, uint64_t seed,
                    eg_err *err);
void eg_sampler_free(eg_sampler *s); /* safe on NULL */

/* The next `batch` sample indices of local node li into idx: the next slice of its shard,
 * reshuffled (and the cursor reset) when fewer than batch remain. Thread-safe for distinct
 * li. */
void eg_sampler_next(eg_sampler *s, int li, int batch, int32_t *idx);
/* Read-ahead: from now on, each eg_sampler_next of `batch` samples for node li also hands
 * fn the indices node li will draw `ahead` calls later (the first call: the next `ahead`
 * batches), from a copy of the node's stream: the draws themselves are unchanged. For
 * data.cache: stream (fn = eg_data_prefetch). fn must be thread-safe. */
int eg_sampler_set_prefetch(eg_sampler *s, void (*fn)(void *ud, const int32_t *idx, int n),
                            void *ud, int ahead, int batch, eg_err *err);
/* Node li's augmentation stream (crop offsets, flips). */
eg_rng *eg_sampler_aug_rng(eg_sampler *s, int li);

/* Node li's whole state, for checkpoints: its streams, shard order (len entries) and cursor.
 * The pointers are into s and stay valid until eg_sampler_free. */
typedef struct eg_sampler_node {
    eg_rng *sample_rng, *aug_rng;
    int32_t *order;
    int32_t len;
    int32_t *cursor;
} eg_sampler_node;
eg_sampler_node eg_sampler_node_state(eg_sampler *s, int li);

#endif
