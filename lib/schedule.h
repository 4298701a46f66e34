/* schedule.h - learning-rate schedules (docs/spec.md#lr). */
#ifndef EG_SCHEDULE_H
#define EG_SCHEDULE_H

#include "spec.h"

typedef struct eg_sched {
    double peak;          /* base, times nodes when scale is linear */
    double warmup_iters;  /* warm-up length in iterations (fractional epochs allowed) */
    double iters_per_epoch;
    double total_iters;
    eg_sched_kind kind;
    double milestones[EG_MAX_MILESTONES]; /* in epochs */
    int n_milestones;
    double gamma;
} eg_sched;

/* iters_per_epoch > 0; total_iters = the run's length in iterations. */
void eg_sched_init(eg_sched *s, const eg_lr_spec *lr, int nodes, double iters_per_epoch,
                   long total_iters);
/* The learning rate used at iteration k (0-based): linear warm-up from 0 over the first
 * warmup_epochs ((k+1)/W of the peak), then constant, step (times gamma at each milestone
 * epoch reached) or cosine (from the peak at the end of warm-up to 0 at the last iteration). */
double eg_sched_lr(const eg_sched *s, long k);

#endif
