/* ckpt.h - checkpoints: every node's state, written by the rank that owns it.
 *
 * Layout in a run directory:  ckpt/LATEST          text: "<iter> <ranks>\n" (rank 0, last)
 *                             ckpt/<iter>.<r>.bin  rank r's nodes at iteration <iter>
 * A generation is complete once LATEST names it; the previous generation is kept until the
 * next one is complete, so a checkpoint broken half-way leaves the last good one in place.
 * Each file: magic "EGCKPT\0\1", version, spec hash, iteration, node range, then one record
 * per node (node id, its vectors, RNG states, sampler position, loss accumulator), then a
 * CRC-32 of everything before it. Runs with a cluster: section write format version 3: the
 * time model's state (its iteration, speed, node count and T, timemodel.h) right after the
 * header; the others write version 2 as before, and both are read (native byte order: read back on the same kind of machine).
 * Files are written to a temporary name, fsync'ed, renamed (eg_write_atomic).
 * Node records make a checkpoint readable by any number of ranks.
 */
#ifndef EG_CKPT_H
#define EG_CKPT_H

#include "algo.h"
#include "comm.h"
#include "common.h"
#include "sampler.h"
#include "timemodel.h"

/* The run-wide counters a checkpoint carries (the same on every rank). */
typedef struct eg_ckpt_counters {
    long iter;
    double bytes_sent, train_time;
    double bytes_inter; /* bytes between machines (format 2) */
} eg_ckpt_counters;

/* What a checkpoint saves and restores, through each module's own state. */
typedef struct eg_ckpt_state {
    uint64_t spec_hash;
    int nodes, lo, nlocal;
    size_t dim;
    eg_algo *algo;        /* the nodes' vectors (eg_algo_state) */
    eg_sampler *sampler;  /* streams, shard order and cursor per node */
    double *loss_acc;     /* nlocal loss sums since the last row (eg_measure_losses) */
    long *rows_since;     /* iterations since the last row (eg_measure_rows_since) */
    eg_ckpt_counters *ctr;
    eg_tmodel *tmodel;    /* cluster: the time model's T (NULL: none; format 3 when set) */
} eg_ckpt_state;

/* whether dir holds a complete checkpoint */
int eg_ckpt_exists(const char *dir);
/* Collective: every rank writes its nodes (to a temporary name, fsync'ed, renamed), the
 * ranks agree, then rank 0 publishes the generation in LATEST; each rank then keeps its
 * two newest generations. EG_ERUN (the same on every rank) when any rank failed. */
int eg_ckpt_save(const char *dir, eg_comm *c, const eg_ckpt_state *st, eg_err *err);
/* Reads the latest generation into st: this rank's nodes [lo, lo + nlocal), from the files
 * of whatever rank count wrote it (node records make any P readable), and the run-wide
 * counters. Not collective: each rank reads only the files holding its own nodes and c is
 * not used; the caller agrees on the outcome across ranks (eg_comm_world_agree) before
 * acting on it. EG_EINPUT, with a message saying which and what to do, when there is no
 * checkpoint or a file is missing, truncated, corrupt (CRC), of another format version,
 * from another spec (hash, dim or nodes differ) or another iteration; EG_ERUN when out of
 * memory. On an error st may be partly filled. */
int eg_ckpt_load(const char *dir, eg_comm *c, eg_ckpt_state *st, eg_err *err);
/* removes dir/ckpt entirely (start over); not collective */
void eg_ckpt_remove(const char *dir);
/* Keeps the header and the rows with iter <= last_iter of a metrics.csv. */
int eg_ckpt_truncate_metrics(const char *path, long last_iter, eg_err *err);

#endif
