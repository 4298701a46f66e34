/* bench_dnnl.h - what the oneDNN benchmarks (bench_model, bench_conv) share: the check of a
 * oneDNN call, the peak convolution's shape and the timing of a primitive. Define BENCH_NAME
 * (the program's name, for messages) before including it. */
#ifndef BENCH_DNNL_H
#define BENCH_DNNL_H

#include "common.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(call)                                                                            \
    do {                                                                                    \
        if ((call) != dnnl_success) {                                                       \
            fprintf(stderr, BENCH_NAME ": oneDNN call failed: %s\n", #call);                \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

/* the peak: a 3x3 convolution forward, pad 1, batch PEAK_N, PEAK_C -> PEAK_O channels,
 * PEAK_H x PEAK_H */
enum { PEAK_N = 128, PEAK_C = 32, PEAK_O = 64, PEAK_H = 14 };

/* the shortest seconds per execution of p over `reps` timings of at least `secs` seconds */
static inline double bench_exec_best(dnnl_primitive_t p, dnnl_stream_t s, int nargs,
                                     const dnnl_exec_arg_t *args, int reps, double secs)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        long n = 0;
        double t0 = eg_now(), t;
        do {
            CK(dnnl_primitive_execute(p, s, nargs, args));
            n++;
        } while ((t = eg_now() - t0) < secs);
        if (t / n < best)
            best = t / n;
    }
    return best;
}

#endif
