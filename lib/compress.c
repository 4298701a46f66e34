/* compress.c - choco's compression operators (compress.h). */
#include "compress.h"

#include <math.h>
#include <string.h>

void eg_compress_setup(eg_compressor *q, eg_compress_kind kind, double ratio, int levels,
                       size_t dim)
{
    q->kind = kind;
    q->dim = dim;
    double k = floor(ratio * (double)dim + 0.5);
    q->k = k < 1 ? 1 : k > (double)dim ? dim : (size_t)k;
    q->levels = levels < 1 ? 1 : levels;
}

int eg_compress_identity(const eg_compressor *q)
{
    return (q->kind == EG_COMPRESS_TOP_K || q->kind == EG_COMPRESS_RAND_K) && q->k >= q->dim;
}

double eg_compress_bytes(const eg_compressor *q)
{
    const double d = (double)q->dim;
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
    case EG_COMPRESS_RAND_K:
        return (double)q->k * (sizeof(float) + sizeof(int32_t));
    case EG_COMPRESS_QSGD: {
        int bits = 1;
        while ((1L << bits) < q->levels + 1L)
            bits++;
        return sizeof(float) + ceil(d * (1 + bits) / 8.0);
    }
    case EG_COMPRESS_SIGN:
        return sizeof(float) + ceil(d / 8.0);
    case EG_COMPRESS_BF16:
        return 2.0 * d;
    default:
        return d * sizeof(float);
    }
}

/* the k-th largest of a[0..n) (k >= 1), reordering a: quickselect, median-of-three */
static float kth_largest(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi];
        float piv = (x > y) == (y > z) ? y : (x > y) == (x > z) ? z : x;
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > piv)
                i++;
            while (a[j] < piv)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            return a[want];
    }
    return a[want];
}

/* the k largest magnitudes (ties: lowest index first) */
static void top_k(const eg_compressor *q, const float *v, float *out, float *scratch)
{
    const size_t d = q->dim;
    for (size_t t = 0; t < d; t++)
        scratch[t] = fabsf(v[t]);
    float thr = kth_largest(scratch, d, q->k);
    size_t above = 0;
    for (size_t t = 0; t < d; t++)
        above += fabsf(v[t]) > thr;
    size_t ties = q->k - above;
    for (size_t t = 0; t < d; t++) {
        float m = fabsf(v[t]);
        int keep = m > thr || (m == thr && ties > 0 && (ties--, 1));
        out[t] = keep ? v[t] : 0.0f;
    }
}

/* k entries drawn uniformly without replacement (selection sampling), not rescaled */
static void rand_k(const eg_compressor *q, const float *v, float *out, eg_rng *r)
{
    size_t need = q->k, d = q->dim;
    for (size_t t = 0; t < d; t++) {
        int keep = need > 0 && eg_rng_below(r, d - t) < need;
        need -= (size_t)keep;
        out[t] = keep ? v[t] : 0.0f;
    }
}

/* QSGD with s levels and Choco's rescaling by 1 / (1 + min(d / s^2, sqrt(d) / s)) */
static void qsgd(const eg_compressor *q, const float *v, float *out, eg_rng *r)
{
    const size_t d = q->dim;
    const double s = q->levels;
    double nrm = 0;
    for (size_t t = 0; t < d; t++)
        nrm += (double)v[t] * v[t];
    nrm = sqrt(nrm);
    if (nrm == 0) {
        memset(out, 0, d * sizeof(float));
        return;
    }
    double tau = 1 + fmin((double)d / (s * s), sqrt((double)d) / s);
    double scale = nrm / (s * tau);
    for (size_t t = 0; t < d; t++) {
        double lvl = floor(s * fabs((double)v[t]) / nrm + eg_rng_uniform(r));
        out[t] = (float)(copysign(lvl, (double)v[t]) * scale);
    }
}

/* ||v||_1 / d * sign(v) (sign(0) = +) */
static void sign_c(const eg_compressor *q, const float *v, float *out)
{
    const size_t d = q->dim;
    double l1 = 0;
    for (size_t t = 0; t < d; t++)
        l1 += fabs((double)v[t]);
    float sc = (float)(l1 / (double)d);
    for (size_t t = 0; t < d; t++)
        out[t] = v[t] < 0 ? -sc : sc;
}

/* round to nearest even bfloat16 (NaN kept) */
static void bf16_c(const eg_compressor *q, const float *v, float *out)
{
    for (size_t t = 0; t < q->dim; t++) {
        uint32_t u;
        memcpy(&u, &v[t], 4);
        if ((u & 0x7f800000u) != 0x7f800000u)
            u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&out[t], &u, 4);
    }
}

void eg_compress_apply(const eg_compressor *q, const float *v, float *out, float *scratch,
                       eg_rng *r)
{
    if (eg_compress_identity(q)) {
        memcpy(out, v, q->dim * sizeof(float));
        return;
    }
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
        top_k(q, v, out, scratch);
        break;
    case EG_COMPRESS_RAND_K:
        rand_k(q, v, out, r);
        break;
    case EG_COMPRESS_QSGD:
        qsgd(q, v, out, r);
        break;
    case EG_COMPRESS_SIGN:
        sign_c(q, v, out);
        break;
    case EG_COMPRESS_BF16:
        bf16_c(q, v, out);
        break;
    default:
        memcpy(out, v, q->dim * sizeof(float));
        break;
    }
}
