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

/* qsgd's bits per level: the fewest that hold 0..levels (at least 1) */
static int qsgd_bits(const eg_compressor *q)
{
    int bits = 1;
    while ((1L << bits) < q->levels + 1L)
        bits++;
    return bits;
}

size_t eg_compress_payload_bytes(const eg_compressor *q)
{
    const size_t d = q->dim;
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
    case EG_COMPRESS_RAND_K:
        return q->k * (sizeof(float) + sizeof(int32_t));
    case EG_COMPRESS_QSGD:
        return sizeof(double) + (d * (size_t)(1 + qsgd_bits(q)) + 7) / 8;
    case EG_COMPRESS_SIGN:
        return sizeof(float) + (d + 7) / 8;
    case EG_COMPRESS_BF16:
        return 2 * d;
    default:
        return d * sizeof(float);
    }
}

double eg_compress_bytes(const eg_compressor *q) { return (double)eg_compress_payload_bytes(q); }

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

/* top_k's threshold: the k-th largest magnitude, and how many entries equal to it are kept
 * (the lowest indices first) */
static float top_k_threshold(const eg_compressor *q, const float *v, float *scratch, size_t *ties)
{
    const size_t d = q->dim;
    for (size_t t = 0; t < d; t++)
        scratch[t] = fabsf(v[t]);
    float thr = kth_largest(scratch, d, q->k);
    size_t above = 0;
    for (size_t t = 0; t < d; t++)
        above += fabsf(v[t]) > thr;
    *ties = q->k - above;
    return thr;
}

/* whether top_k keeps entry m = |v_t| (consumes a tie) */
static int top_k_keeps(float m, float thr, size_t *ties)
{
    return m > thr || (m == thr && *ties > 0 && ((*ties)--, 1));
}

/* the k largest magnitudes (ties: lowest index first) */
static void top_k(const eg_compressor *q, const float *v, float *out, float *scratch)
{
    size_t ties;
    float thr = top_k_threshold(q, v, scratch, &ties);
    for (size_t t = 0; t < q->dim; t++)
        out[t] = top_k_keeps(fabsf(v[t]), thr, &ties) ? v[t] : 0.0f;
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

/* ||v||_2 in double */
static double qsgd_norm(const float *v, size_t d)
{
    double nrm = 0;
    for (size_t t = 0; t < d; t++)
        nrm += (double)v[t] * v[t];
    return sqrt(nrm);
}

/* the value of one level: ||v|| / (s tau), tau = 1 + min(d / s^2, sqrt(d) / s) */
static double qsgd_scale(const eg_compressor *q, double nrm)
{
    const double s = q->levels, d = (double)q->dim;
    double tau = 1 + fmin(d / (s * s), sqrt(d) / s);
    return nrm / (s * tau);
}

/* QSGD with s levels and Choco's rescaling by 1 / (1 + min(d / s^2, sqrt(d) / s)) */
static void qsgd(const eg_compressor *q, const float *v, float *out, eg_rng *r)
{
    const size_t d = q->dim;
    const double s = q->levels;
    double nrm = qsgd_norm(v, d);
    if (nrm == 0) {
        memset(out, 0, d * sizeof(float));
        return;
    }
    double scale = qsgd_scale(q, nrm);
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

/* ---- the wire format (compress.h): encode and decode ---- */

/* a bit stream, least significant bit first */
typedef struct bits_out {
    unsigned char *p;
    uint64_t acc;
    int n;
} bits_out;

static void bits_put(bits_out *w, uint32_t v, int nbits)
{
    w->acc |= (uint64_t)v << w->n;
    for (w->n += nbits; w->n >= 8; w->n -= 8) {
        *w->p++ = (unsigned char)w->acc;
        w->acc >>= 8;
    }
}

static void bits_flush(bits_out *w)
{
    if (w->n > 0)
        *w->p++ = (unsigned char)w->acc;
    w->acc = 0;
    w->n = 0;
}

typedef struct bits_in {
    const unsigned char *p;
    uint64_t acc;
    int n;
} bits_in;

static uint32_t bits_get(bits_in *r, int nbits)
{
    for (; r->n < nbits; r->n += 8)
        r->acc |= (uint64_t)*r->p++ << r->n;
    uint32_t v = (uint32_t)(r->acc & ((1ULL << nbits) - 1));
    r->acc >>= nbits;
    r->n -= nbits;
    return v;
}

/* top_k / rand_k: entry `slot` of k (value, index) pairs: k values, then k indices */
static void put_pair(unsigned char *p, size_t k, size_t slot, float val, size_t idx)
{
    int32_t i = (int32_t)idx;
    memcpy(p + slot * sizeof(float), &val, sizeof val);
    memcpy(p + k * sizeof(float) + slot * sizeof(int32_t), &i, sizeof i);
}

static void get_pair(const unsigned char *p, size_t k, size_t slot, float *val, size_t *idx)
{
    int32_t i;
    memcpy(val, p + slot * sizeof(float), sizeof *val);
    memcpy(&i, p + k * sizeof(float) + slot * sizeof(int32_t), sizeof i);
    *idx = (size_t)i;
}

/* the selection of top_k, rand_k or the identity as (value, index) pairs. Slots left free
 * (top_k on a vector with NaN, whose threshold compares false) carry +0 at index 0, which
 * adds nothing. */
static void encode_sparse(const eg_compressor *q, const float *v, unsigned char *p,
                          float *scratch, eg_rng *r)
{
    const size_t d = q->dim, k = q->k;
    size_t slot = 0;
    if (eg_compress_identity(q)) {
        for (size_t t = 0; t < d; t++)
            put_pair(p, k, slot++, v[t], t);
    } else if (q->kind == EG_COMPRESS_TOP_K) {
        size_t ties;
        float thr = top_k_threshold(q, v, scratch, &ties);
        for (size_t t = 0; t < d && slot < k; t++)
            if (top_k_keeps(fabsf(v[t]), thr, &ties))
                put_pair(p, k, slot++, v[t], t);
    } else {
        size_t need = k;
        for (size_t t = 0; t < d; t++)
            if (need > 0 && eg_rng_below(r, d - t) < need) {
                need--;
                put_pair(p, k, slot++, v[t], t);
            }
    }
    for (; slot < k; slot++)
        put_pair(p, k, slot, 0.0f, 0);
}

/* qsgd: the scale in double (the receiver needs the sender's exact value), then per entry
 * its sign bit and level; a zero vector sends scale 0 and draws nothing (as qsgd() does) */
static void encode_qsgd(const eg_compressor *q, const float *v, unsigned char *p, eg_rng *r)
{
    const size_t d = q->dim;
    const double s = q->levels;
    const int bits = qsgd_bits(q);
    double nrm = qsgd_norm(v, d), scale = nrm == 0 ? 0.0 : qsgd_scale(q, nrm);
    memcpy(p, &scale, sizeof scale);
    bits_out w = {p + sizeof scale, 0, 0};
    const int live = nrm != 0 && isfinite(scale);
    for (size_t t = 0; t < d; t++) {
        uint32_t lvl = 0;
        if (live)
            lvl = (uint32_t)floor(s * fabs((double)v[t]) / nrm + eg_rng_uniform(r));
        bits_put(&w, (uint32_t)(signbit(v[t]) != 0) | lvl << 1, 1 + bits);
    }
    bits_flush(&w);
}

static void encode_sign(const eg_compressor *q, const float *v, unsigned char *p)
{
    const size_t d = q->dim;
    double l1 = 0;
    for (size_t t = 0; t < d; t++)
        l1 += fabs((double)v[t]);
    float sc = (float)(l1 / (double)d);
    memcpy(p, &sc, sizeof sc);
    bits_out w = {p + sizeof sc, 0, 0};
    for (size_t t = 0; t < d; t++)
        bits_put(&w, v[t] < 0, 1);
    bits_flush(&w);
}

/* bf16: the upper half of the rounded float (a NaN stays a NaN) */
static void encode_bf16(const eg_compressor *q, const float *v, unsigned char *p)
{
    for (size_t t = 0; t < q->dim; t++) {
        uint32_t u;
        memcpy(&u, &v[t], 4);
        if ((u & 0x7f800000u) != 0x7f800000u)
            u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        else if (u & 0x007fffffu)
            u |= 0x00400000u;
        uint16_t h = (uint16_t)(u >> 16);
        memcpy(p + 2 * t, &h, 2);
    }
}

void eg_compress_encode(const eg_compressor *q, const float *v, void *payload, float *scratch,
                        eg_rng *r)
{
    unsigned char *p = payload;
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
    case EG_COMPRESS_RAND_K:
        encode_sparse(q, v, p, scratch, r);
        break;
    case EG_COMPRESS_QSGD:
        encode_qsgd(q, v, p, r);
        break;
    case EG_COMPRESS_SIGN:
        encode_sign(q, v, p);
        break;
    case EG_COMPRESS_BF16:
        encode_bf16(q, v, p);
        break;
    default:
        memcpy(p, v, q->dim * sizeof(float));
        break;
    }
}

/* qsgd: x_t += (float)(+-lvl * scale), today's expression (copysign(lvl, v) is +-lvl); level
 * 0 adds +-0, which changes nothing (x never holds -0), and is skipped. A non-finite scale
 * (v held Inf or NaN) makes every entry NaN, as qsgd() does. */
static void decode_qsgd(const eg_compressor *q, const unsigned char *p, float *x)
{
    double scale;
    memcpy(&scale, p, sizeof scale);
    if (!isfinite(scale)) {
        for (size_t t = 0; t < q->dim; t++)
            x[t] += (float)(0.0 * scale);
        return;
    }
    const int bits = qsgd_bits(q);
    bits_in r = {p + sizeof scale, 0, 0};
    for (size_t t = 0; t < q->dim; t++) {
        uint32_t c = bits_get(&r, 1 + bits), lvl = c >> 1;
        if (lvl)
            x[t] += (float)((c & 1u ? -(double)lvl : (double)lvl) * scale);
    }
}

static void decode_sign(const eg_compressor *q, const unsigned char *p, float *x)
{
    float sc;
    memcpy(&sc, p, sizeof sc);
    bits_in r = {p + sizeof sc, 0, 0};
    for (size_t t = 0; t < q->dim; t++)
        x[t] += bits_get(&r, 1) ? -sc : sc;
}

static void decode_bf16(const eg_compressor *q, const unsigned char *p, float *x)
{
    for (size_t t = 0; t < q->dim; t++) {
        uint16_t h;
        memcpy(&h, p + 2 * t, 2);
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        x[t] += f;
    }
}

void eg_compress_decode_add(const eg_compressor *q, const void *payload, float *x)
{
    const unsigned char *p = payload;
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
    case EG_COMPRESS_RAND_K:
        for (size_t s = 0; s < q->k; s++) {
            float val;
            size_t idx;
            get_pair(p, q->k, s, &val, &idx);
            x[idx] += val;
        }
        break;
    case EG_COMPRESS_QSGD:
        decode_qsgd(q, p, x);
        break;
    case EG_COMPRESS_SIGN:
        decode_sign(q, p, x);
        break;
    case EG_COMPRESS_BF16:
        decode_bf16(q, p, x);
        break;
    default:
        for (size_t t = 0; t < q->dim; t++) {
            float f;
            memcpy(&f, p + t * sizeof f, sizeof f);
            x[t] += f;
        }
        break;
    }
}

void eg_compress_decode_set(const eg_compressor *q, const void *payload, float *x)
{
    for (size_t s = 0; s < q->k; s++) {
        float val;
        size_t idx;
        get_pair(payload, q->k, s, &val, &idx);
        x[idx] = val;
    }
}
