/* bench_conv.c - ResNet-20's 3x3 convolutions alone, against the convolution peak.
 *
 * Each convolution shape of ResNet-20 on 1x28x28 input at batch 32 (16 -> 16 at 28x28, the
 * stride-2 16 -> 32, 32 -> 32 at 14x14, the stride-2 32 -> 64, 64 -> 64 at 7x7; with --size 32
 * those of a 3x32x32 input, CIFAR's: 32x32, 16x16, 8x8; any multiple of 4), forward,
 * backward data and backward weights, f32, one thread, run over and over on the same memory
 * (warm caches): GFLOP/s with the activations in NHWC (the layout lib/nn.c uses) and in
 * oneDNN's blocked nChw16c, beside the peak bench_model measures (a 3x3 forward, batch 128,
 * 14x14, 32 -> 64, formats oneDNN's choice) in the same run. It answers whether the
 * convolutions themselves, or the time around them, keep a model below the peak
 * (bench/README.md, "ResNet-20 f32 at 85%").
 *
 * usage: bench_conv [--time SECONDS] [--reps N] [--size H]
 */
#define BENCH_NAME "bench_conv"
#include "bench_dnnl.h"
#include "common.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FWD, BWD_DATA, BWD_WEIGHTS };
static const char *const pass_name[] = {"forward", "bwd data", "bwd weights"};

static double g_time = 0.1;
static int g_reps = 5;
static dnnl_engine_t eng;
static dnnl_stream_t strm;

static dnnl_memory_t mem(const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    CK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    return m;
}

/* GFLOP/s (best of g_reps timings of g_time seconds) of one pass of a 3x3 convolution, pad
 * 1, batch N, C -> O channels, H x H input; tag: the activations' format; impl: oneDNN's
 * kernel name */
static double conv_gflops(int N, int C, int O, int H, int stride, dnnl_format_tag_t tag,
                          int pass, const char **impl)
{
    const int OH = (H + 2 - 3) / stride + 1;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t sd = {N, C, H, H}, wd = {O, C, 3, 3}, dd = {N, O, OH, OH};
    dnnl_dims_t st = {stride, stride}, pad = {1, 1};
    CK(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, tag));
    CK(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, tag));
    CK(dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t fpd, pd;
    CK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct,
                                          &src, &wei, NULL, &dst, st, pad, pad));
    CK(dnnl_primitive_desc_create(&fpd, &cd, NULL, eng, NULL));
    pd = fpd;
    if (pass == BWD_DATA) {
        CK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &wei,
                                                    &dst, st, pad, pad));
        CK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, fpd));
    } else if (pass == BWD_WEIGHTS) {
        CK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src,
                                                       &wei, NULL, &dst, st, pad, pad));
        CK(dnnl_primitive_desc_create(&pd, &cd, NULL, eng, fpd));
    }
    CK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, impl));
    dnnl_primitive_t p;
    CK(dnnl_primitive_create(&p, pd));
#define MD(q) dnnl_primitive_desc_query_md(pd, q, 0)
    const int a_src = pass == BWD_DATA ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC;
    const int a_wei = pass == BWD_WEIGHTS ? DNNL_ARG_DIFF_WEIGHTS : DNNL_ARG_WEIGHTS;
    const int a_dst = pass == FWD ? DNNL_ARG_DST : DNNL_ARG_DIFF_DST;
    dnnl_exec_arg_t args[4] = {
        {a_src, mem(MD(pass == BWD_DATA ? dnnl_query_diff_src_md : dnnl_query_src_md))},
        {a_wei, mem(MD(pass == BWD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md))},
        {a_dst, mem(MD(pass == FWD ? dnnl_query_dst_md : dnnl_query_diff_dst_md))},
        {DNNL_ARG_SCRATCHPAD, mem(MD(dnnl_query_scratchpad_md))}};
#undef MD
    for (int i = 0; i < 3; i++)
        CK(dnnl_primitive_execute(p, strm, 4, args));
    const double best = bench_exec_best(p, strm, 4, args, g_reps, g_time);
    for (int i = 0; i < 4; i++)
        dnnl_memory_destroy(args[i].memory);
    dnnl_primitive_destroy(p);
    if (pd != fpd)
        dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(fpd);
    return 2.0 * N * O * OH * OH * C * 9 / best / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_conv [--time SECONDS] [--reps N] [--size H]\n"
               "  --time S   minimum seconds per timed repetition (default 0.1)\n"
               "  --reps N   timed repetitions per figure, the best is kept (default 5)\n"
               "  --size H   the input's height and width, a multiple of 4 in [4, 64]: 28\n"
               "             (Fashion-MNIST, the default), 32 (CIFAR), ...\n");
}

int main(int argc, char **argv)
{
    int size = 28;
    for (int i = 1; i < argc; i++) {
        long v;
        if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &v) || (v < 4 || v > 64 || v % 4)) {
                fprintf(stderr, "bench_conv: --size wants a multiple of 4 in [4, 64]\n");
                return 2;
            }
            size = (int)v;
            continue;
        }
        if (!strcmp(argv[i], "--time") && i + 1 < argc) {
            if (eg_parse_double(argv[++i], &g_time) || !(g_time > 0)) {
                fprintf(stderr, "bench_conv: --time wants a positive number\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            if (eg_parse_long(argv[++i], &v) || v < 1 || v > 1000) {
                fprintf(stderr, "bench_conv: --reps wants an integer in [1, 1000]\n");
                return 2;
            }
            g_reps = (int)v;
        } else {
            usage(strcmp(argv[i], "--help") ? stderr : stdout);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    omp_set_num_threads(1);
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const char *impl;
    const double peak =
        conv_gflops(PEAK_N, PEAK_C, PEAK_O, PEAK_H, 1, dnnl_format_tag_any, FWD, &impl);
    printf("peak: 3x3 forward, batch 128, 14x14, 32 -> 64, f32, 1 thread: %.1f GFLOP/s (%s)\n",
           peak, impl);
    printf("ResNet-20's convolutions (%dx%d input), batch 32, f32, 1 thread, warm caches:\n",
           size, size);
    printf("%-22s %-11s %16s %-24s %16s %s\n", "shape", "pass", "NHWC GFLOP/s", "(kernel)",
           "nChw16c GFLOP/s", "(kernel)");
    const int shapes[][4] = {{16, 16, size, 1},     {16, 32, size, 2},    {32, 32, size / 2, 1},
                             {32, 64, size / 2, 2}, {64, 64, size / 4, 1}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (int pass = FWD; pass <= BWD_WEIGHTS; pass++) {
            const int *s = shapes[k];
            const char *i1, *i2;
            double g1 = conv_gflops(32, s[0], s[1], s[2], s[3], dnnl_nhwc, pass, &i1);
            double g2 = conv_gflops(32, s[0], s[1], s[2], s[3], dnnl_nChw16c, pass, &i2);
            char shape[32];
            snprintf(shape, sizeof shape, "%d -> %d, %dx%d, s%d", s[0], s[1], s[2], s[2], s[3]);
            printf("%-22s %-11s %8.1f (%3.0f%%) %-24s %8.1f (%3.0f%%) %s\n", shape,
                   pass_name[pass], g1, 100 * g1 / peak, i1, g2, 100 * g2 / peak, i2);
        }
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
