/* run.h - the experiment driver: spec in, run directory out (docs/spec.md). */
#ifndef EG_RUN_H
#define EG_RUN_H

#include "common.h"

typedef struct eg_progress {
    long iter, total;
    double epoch, train_loss, test_acc; /* test_acc < 0 when not evaluated yet; train_loss
                                         * NaN before the first metrics row */
    double elapsed_s;                   /* training seconds so far */
} eg_progress;

typedef struct eg_run_opts {
    const char *spec_file;
    char *const *sets;     /* "KEY=VALUE" overrides */
    int nsets;
    const char *out_dir;   /* NULL: the spec's output.dir */
    int resume;            /* continue from the run directory's checkpoint */
    int force;             /* start over in a directory that holds a run */
    int validate_only;     /* check everything run would check, write nothing */
    /* called on rank 0 only; may be NULL */
    void (*info)(void *ud, const char *line);       /* one line for the user (stdout) */
    void (*progress)(void *ud, const eg_progress *p); /* after every iteration */
    void (*warn)(void *ud, const char *line);       /* a warning (stderr), also when quiet */
    void *ud;
} eg_run_opts;

/* Runs (or validates) one experiment. Collective over MPI_COMM_WORLD, which the caller
 * initialised. Returns EG_OK, EG_EINPUT (bad spec/data/command line: nothing written),
 * EG_ERUN (I/O, MPI or divergence; the message names the iteration), or EG_EINTR
 * (SIGINT/SIGTERM: checkpoint saved, logs flushed). The same code on every rank. */
int eg_run(const eg_run_opts *o, eg_err *err);

/* Set by the signal handler the CLI installs; eg_run stops at the next iteration. */
extern volatile sig_atomic_t eg_run_stop_requested;
/* 1 while the training loop runs (the CLI's signal handler stops at once otherwise) */
extern volatile sig_atomic_t eg_run_training;

#endif
