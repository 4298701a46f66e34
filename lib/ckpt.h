/* ckpt.h - checkpoints: every node's state, written by the rank that owns it.
 *
 * Layout in a run directory:  ckpt/LATEST          text: "<iter> <ranks>\n" (rank 0, last)
 *                             ckpt/<iter>.<r>.bin  rank r's nodes at iteration <iter>
 * A generation is complete once LATEST names it; the previous generation is kept until the
 * next one is complete, so a checkpoint broken half-way leaves the last good one in place.
 * Each file: magic "EGCKPT\0\1", version, spec hash, iteration, node range, then one record
 * per node (node id, its vectors, RNG states, sampler position, loss accumulator), then a
 * CRC-32 of everything before it. Files are written to a temporary name, fsync'ed, renamed.
 * Node records make a checkpoint readable by any number of ranks.
 */
#ifndef EG_CKPT_H
#define EG_CKPT_H

#include "algo.h"
#include "comm.h"
#include "common.h"

typedef struct eg_ckpt_state {
    uint64_t spec_hash;
    int nodes, lo, nlocal;
    size_t dim;
    eg_algo *algo;
    eg_rng *sample_rng, *aug_rng;   /* nlocal each */
    int32_t *perm, *perm_off, *cursor;
    double *loss_acc;
    /* run-wide counters (the same on every rank) */
    long *iter;
    double *bytes_sent, *train_time;
    long *rows_since;
} eg_ckpt_state;

/* whether dir holds a complete checkpoint */
int eg_ckpt_exists(const char *dir);
/* Collective: every rank writes its nodes, then rank 0 publishes the generation. */
int eg_ckpt_save(const char *dir, eg_comm *c, const eg_ckpt_state *st, eg_err *err);
/* Collective: reads the latest generation into st (any rank count). EG_EINPUT when it is
 * corrupt, truncated, from another spec, or missing files, with a message saying so. */
int eg_ckpt_load(const char *dir, eg_comm *c, eg_ckpt_state *st, eg_err *err);
/* removes dir/ckpt entirely (start over) */
void eg_ckpt_remove(const char *dir);
/* Keeps the header and the rows with iter <= last_iter of a metrics.csv. */
int eg_ckpt_truncate_metrics(const char *path, long last_iter, eg_err *err);

#endif
