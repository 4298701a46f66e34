/* data_synth.c - synthetic: a seeded multinomial-logistic (softmax teacher) problem.
 *
 * K = data.classes (default 4) classes, D = data.dim (default 32) features,
 * S = data.samples (default 512) training samples per node, T = data.test_samples
 * (default 2000), h = data.heterogeneity (>= 0), n = nodes.
 *  - global teacher W* (K x D): entries N(0, 1) * 3 / sqrt(D), from stream (SYNTH, 0);
 *  - node i: D_i (K x D, same scale), e_i (K entries, N(0, 1)), then its S samples, all
 *    from stream (SYNTH, 1 + i); its teacher is W_i = W* + h * D_i with class offsets
 *    b_i = h * e_i (b* = 0), so heterogeneity moves both the decision boundaries and the
 *    nodes' label proportions;
 *  - a sample: x ~ N(0, I_D), label ~ softmax(W_i x + b_i) (drawn as the argmax of
 *    W_i x + b_i + Gumbel noise: K draws after the D feature draws);
 *  - training samples are ordered by node: node i owns [i*S, (i+1)*S);
 *  - test sample j (stream (SYNTH, 2^40)) comes from node (j mod n)'s teacher: the uniform
 *    mixture of the nodes' distributions, whose minimiser is the global optimum that
 *    decentralized training targets. With h = 0 every teacher is W*, and neither the
 *    training blocks nor the test set depend on n except through the number of blocks.
 * node_blocks is set when h > 0 (the partition then gives node i its own block); with h = 0
 * the samples are exchangeable and the usual partitions apply. Shape 1x1xD.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_TEST_STREAM (UINT64_C(1) << 40)

static double gumbel(eg_rng *r)
{
    double u = eg_rng_uniform(r);
    if (u < 1e-300)
        u = 1e-300;
    return -log(-log(u));
}

/* Draws x (D floats) and the label from teacher w (K x D) with class offsets b (K). */
static int32_t draw_sample(eg_rng *r, const double *w, const double *b, int K, int D, float *x,
                           double *xd)
{
    for (int j = 0; j < D; j++) {
        xd[j] = eg_rng_normal(r);
        x[j] = (float)xd[j];
    }
    int32_t best = 0;
    double bestv = -INFINITY;
    for (int k = 0; k < K; k++) {
        double z = 0;
        const double *wk = w + (size_t)k * (size_t)D;
        for (int j = 0; j < D; j++)
            z += wk[j] * xd[j];
        z += b[k] + gumbel(r);
        if (z > bestv) {
            bestv = z;
            best = k;
        }
    }
    return best;
}

int eg_data_load_synthetic(eg_dataset *d, const eg_data_spec *s, int nodes, uint64_t seed,
                           eg_err *err)
{
    int D = s->dim > 0 ? s->dim : 32;
    int K = s->classes > 0 ? s->classes : 4;
    int S = s->samples > 0 ? s->samples : 512;
    int T = s->test_samples > 0 ? s->test_samples : 2000;
    double h = s->heterogeneity;
    if (nodes < 1)
        return eg_err_set(err, EG_EINPUT, "nodes must be at least 1 (got %d)", nodes);
    if (K < 2)
        return eg_err_set(err, EG_EINPUT, "data.classes must be at least 2 (got %d)", K);
    if (!(h >= 0) || !isfinite(h))
        return eg_err_set(err, EG_EINPUT, "data.heterogeneity must be >= 0 (got %g)", h);
    if ((int64_t)nodes * S > INT32_MAX / 2 || (int64_t)D * K > (1 << 24) ||
        ((int64_t)nodes * S + T) * D > ((int64_t)1 << 34))
        return eg_err_set(err, EG_EINPUT,
                          "synthetic data of %d nodes x %d samples x %d features is too large",
                          nodes, S, D);
    size_t KD = (size_t)K * (size_t)D;
    double *teach = eg_malloc(((size_t)nodes + 1) * KD * sizeof *teach, err);
    double *bias = eg_calloc((size_t)nodes + 1, (size_t)K * sizeof *bias, err);
    double *xd = eg_malloc((size_t)D * sizeof *xd, err);
    d->shape = (eg_shape){1, 1, D};
    d->dim = D;
    d->classes = K;
    d->n_train = nodes * S;
    d->n_test = T;
    d->x_train = eg_data_alloc_floats((size_t)d->n_train * (size_t)D, err);
    d->x_test = eg_data_alloc_floats((size_t)T * (size_t)D, err);
    d->y_train = eg_malloc((size_t)d->n_train * sizeof *d->y_train, err);
    d->y_test = eg_malloc((size_t)T * sizeof *d->y_test, err);
    if (!teach || !bias || !xd || !d->x_train || !d->x_test || !d->y_train || !d->y_test) {
        free(teach);
        free(bias);
        free(xd);
        return EG_ERUN;
    }
    double scale = 3.0 / sqrt((double)D);
    eg_rng r;
    eg_rng_seed(&r, seed, EG_STREAM_SYNTH, 0);
    double *wstar = teach; /* teach[0] = W*, teach[1 + i] = W_i; bias likewise (b* = 0) */
    for (size_t k = 0; k < KD; k++)
        wstar[k] = scale * eg_rng_normal(&r);
    for (int i = 0; i < nodes; i++) {
        double *wi = teach + (size_t)(1 + i) * KD;
        eg_rng_seed(&r, seed, EG_STREAM_SYNTH, 1 + (uint64_t)i);
        double *bi = bias + (size_t)(1 + i) * (size_t)K;
        for (size_t k = 0; k < KD; k++)
            wi[k] = wstar[k] + h * scale * eg_rng_normal(&r);
        for (int k = 0; k < K; k++)
            bi[k] = h * eg_rng_normal(&r);
        for (int j = 0; j < S; j++) {
            size_t row = (size_t)i * (size_t)S + (size_t)j;
            d->y_train[row] = draw_sample(&r, wi, bi, K, D, d->x_train + row * (size_t)D, xd);
        }
    }
    eg_rng_seed(&r, seed, EG_STREAM_SYNTH, SYNTH_TEST_STREAM);
    for (int j = 0; j < T; j++) {
        size_t t = (size_t)(1 + j % nodes);
        d->y_test[j] = draw_sample(&r, teach + t * KD, bias + t * (size_t)K, K, D,
                                   d->x_test + (size_t)j * (size_t)D, xd);
    }
    free(teach);
    free(bias);
    free(xd);
    d->node_blocks = h > 0;
    snprintf(d->desc, sizeof d->desc,
             "synthetic: %d train (%d nodes x %d) / %d test, 1x1x%d, %d classes, "
             "heterogeneity %g, seed %llu",
             d->n_train, nodes, S, T, D, K, h, (unsigned long long)seed);
    return EG_OK;
}
