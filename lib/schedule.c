/* schedule.c - learning-rate schedules. */
#include "schedule.h"

#include <math.h>
#include <string.h>

void eg_sched_init(eg_sched *s, const eg_lr_spec *lr, int nodes, double iters_per_epoch,
                   long total_iters)
{
    memset(s, 0, sizeof *s);
    s->peak = lr->base * (lr->scale_linear ? nodes : 1);
    s->iters_per_epoch = iters_per_epoch;
    s->warmup_iters = lr->warmup_epochs * iters_per_epoch;
    s->total_iters = (double)total_iters;
    s->kind = lr->schedule;
    s->n_milestones = lr->n_milestones;
    memcpy(s->milestones, lr->milestones, sizeof s->milestones);
    s->gamma = lr->gamma;
}

double eg_sched_lr(const eg_sched *s, long k)
{
    double it = (double)k;
    if (it < s->warmup_iters)
        return s->peak * (it + 1.0) / ceil(s->warmup_iters);
    double epoch = it / s->iters_per_epoch;
    switch (s->kind) {
    case EG_SCHED_STEP: {
        double lr = s->peak;
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i])
                lr *= s->gamma;
        return lr;
    }
    case EG_SCHED_COSINE: {
        double span = s->total_iters - s->warmup_iters;
        if (span <= 0)
            return s->peak;
        double f = (it - s->warmup_iters) / span;
        if (f > 1)
            f = 1;
        return s->peak * 0.5 * (1.0 + cos(3.14159265358979323846 * f));
    }
    default:
        return s->peak;
    }
}
