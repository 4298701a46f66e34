/* check_compress.c - choco's wire format (compress.c): for every compressor, the payload
 * eg_compress_encode writes, decoded with eg_compress_decode_add, changes x exactly as
 * x[t] += eg_compress_apply(v)[t] (bitwise, from the same random stream), on vectors with
 * ties, zeros (+0 and -0), negative values, one large entry, and sizes that do not fill
 * whole bytes; the payload has the documented size, is fully written (no stale bytes) and
 * nothing past it; top_k and rand_k touch only the entries they carry; the identity's
 * decode_set reproduces v. The quality of the compressors themselves: check_algo.c. */
#include "compress.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXD 1031
#define GUARD 64

typedef struct qcase {
    eg_compress_kind kind;
    double ratio;
    int levels;
    const char *name;
} qcase;

static const qcase CASES[] = {
    {EG_COMPRESS_TOP_K, 0.05, 0, "top_k 5%"},   {EG_COMPRESS_TOP_K, 0.5, 0, "top_k 50%"},
    {EG_COMPRESS_TOP_K, 1.0, 0, "top_k 100%"},  {EG_COMPRESS_RAND_K, 0.1, 0, "rand_k 10%"},
    {EG_COMPRESS_RAND_K, 1.0, 0, "rand_k 100%"}, {EG_COMPRESS_QSGD, 0, 1, "qsgd 1"},
    {EG_COMPRESS_QSGD, 0, 4, "qsgd 4"},         {EG_COMPRESS_QSGD, 0, 16, "qsgd 16"},
    {EG_COMPRESS_QSGD, 0, 255, "qsgd 255"},     {EG_COMPRESS_SIGN, 0, 0, "sign"},
    {EG_COMPRESS_BF16, 0, 0, "bf16"},
};
#define NCASES (int)(sizeof CASES / sizeof CASES[0])
static const size_t DIMS[] = {1, 7, 9, 64, MAXD};

enum { V_NORMAL, V_TIES, V_ZEROS, V_SPIKE, V_ALLZERO, NVEC };

/* test vector `kind` of d entries: normal draws; ties (a few magnitudes, both signs);
 * mostly zeros (+0 and -0) with some negatives; one large entry among small ones; all +0 */
static void make_vector(float *v, size_t d, int kind, uint64_t seed)
{
    eg_rng r;
    eg_rng_seed(&r, seed, 77, (uint64_t)kind);
    for (size_t t = 0; t < d; t++) {
        double u = eg_rng_uniform(&r), g = eg_rng_normal(&r);
        switch (kind) {
        case V_NORMAL: v[t] = (float)g; break;
        case V_TIES: v[t] = (float)((u < 0.5 ? -1 : 1) * (1 + (int)(4 * eg_rng_uniform(&r))) * 0.25); break;
        case V_ZEROS: v[t] = u < 0.4 ? 0.0f : u < 0.7 ? -0.0f : (float)(-fabs(g)); break;
        case V_SPIKE: v[t] = t == d / 2 ? 1e3f : (float)(1e-3 * g); break;
        default: v[t] = 0.0f; break;
        }
    }
}

/* a base x without -0 (x_hat never holds one): random values and some +0 */
static void make_base(float *x, size_t d, uint64_t seed)
{
    eg_rng r;
    eg_rng_seed(&r, seed, 78, 0);
    for (size_t t = 0; t < d; t++)
        x[t] = eg_rng_uniform(&r) < 0.3 ? 0.0f : (float)eg_rng_normal(&r);
}

static size_t bits_per_level(int levels)
{
    size_t b = 1;
    while ((1L << b) < levels + 1L)
        b++;
    return b;
}

static size_t documented_bytes(const eg_compressor *q)
{
    switch (q->kind) {
    case EG_COMPRESS_TOP_K:
    case EG_COMPRESS_RAND_K: return q->k * 8;
    case EG_COMPRESS_QSGD: return 8 + (q->dim * (1 + bits_per_level(q->levels)) + 7) / 8;
    case EG_COMPRESS_SIGN: return 4 + (q->dim + 7) / 8;
    default: return 2 * q->dim;
    }
}

/* one (compressor, dim, vector): encode/decode against apply */
static void roundtrip(const qcase *c, size_t d, int vk)
{
    static float v[MAXD], out[MAXD], scratch[MAXD], x1[MAXD], x2[MAXD];
    static unsigned char p1[8 * MAXD + 16 + GUARD], p2[8 * MAXD + 16 + GUARD];
    eg_compressor q;
    eg_compress_setup(&q, c->kind, c->ratio, c->levels, d);
    size_t pb = eg_compress_payload_bytes(&q);
    ck_assert_msg(pb == documented_bytes(&q), "%s d=%zu: %zu payload bytes, documented %zu",
                  c->name, d, pb, documented_bytes(&q));
    ck_assert(eg_compress_bytes(&q) == (double)pb);
    make_vector(v, d, vk, 1000 + d);
    eg_rng r1, r2, r3;
    eg_rng_seed(&r1, 5, 9, d * 10 + (size_t)vk);
    r2 = r1;
    r3 = r1;
    eg_compress_apply(&q, v, out, scratch, &r1);
    memset(p1, 0xa5, sizeof p1);
    memset(p2, 0x5a, sizeof p2);
    eg_compress_encode(&q, v, p1, scratch, &r2);
    eg_compress_encode(&q, v, p2, scratch, &r3);
    ck_assert_msg(!memcmp(p1, p2, pb), "%s d=%zu vec %d: payload bytes left unwritten", c->name, d, vk);
    for (size_t b = pb; b < pb + GUARD; b++)
        ck_assert_msg(p1[b] == 0xa5, "%s d=%zu: encode wrote past its %zu bytes", c->name, d, pb);
    make_base(x1, d, d + (size_t)vk);
    memcpy(x2, x1, d * sizeof(float));
    eg_compress_decode_add(&q, p1, x1);
    for (size_t t = 0; t < d; t++)
        x2[t] += out[t];
    ck_assert_msg(!memcmp(x1, x2, d * sizeof(float)), "%s d=%zu vec %d: decode_add differs from "
                  "x += apply(v)", c->name, d, vk);
    if (c->kind == EG_COMPRESS_TOP_K || c->kind == EG_COMPRESS_RAND_K) {
        /* only the carried entries are touched: -0 survives where apply gives 0 */
        for (size_t t = 0; t < d; t++)
            x1[t] = -0.0f;
        eg_compress_decode_add(&q, p1, x1);
        size_t touched = 0;
        for (size_t t = 0; t < d; t++)
            touched += !(x1[t] == 0.0f && signbit(x1[t]));
        ck_assert_msg(touched <= q.k, "%s d=%zu: %zu entries touched, k = %zu", c->name, d, touched, q.k);
    }
    if (eg_compress_identity(&q)) {
        make_base(x1, d, 3);
        eg_compress_decode_set(&q, p1, x1);
        ck_assert_msg(!memcmp(x1, v, d * sizeof(float)), "%s: decode_set is not v", c->name);
    }
}

START_TEST(test_roundtrip_every_compressor)
{
    for (int c = 0; c < NCASES; c++)
        for (size_t di = 0; di < sizeof DIMS / sizeof DIMS[0]; di++)
            for (int vk = 0; vk < NVEC; vk++)
                roundtrip(&CASES[c], DIMS[di], vk);
}
END_TEST

/* the comparison notices a wrong value: one flipped payload bit changes the decoded x */
START_TEST(test_roundtrip_can_fail)
{
    static float v[MAXD], x1[MAXD], x2[MAXD], scratch[MAXD];
    static unsigned char p[8 * MAXD + 16];
    for (int c = 0; c < NCASES; c++) {
        eg_compressor q;
        eg_compress_setup(&q, CASES[c].kind, CASES[c].ratio, CASES[c].levels, MAXD);
        make_vector(v, MAXD, V_NORMAL, 1);
        eg_rng r;
        eg_rng_seed(&r, 1, 2, 3);
        eg_compress_encode(&q, v, p, scratch, &r);
        make_base(x1, MAXD, 4);
        memcpy(x2, x1, sizeof x1);
        eg_compress_decode_add(&q, p, x1);
        /* a value's leading mantissa bit (top_k, rand_k: the first value; bf16: the second
         * entry; sign: the scale), qsgd: its scale's lowest exponent bit */
        if (q.kind == EG_COMPRESS_QSGD)
            p[6] ^= 0x10;
        else
            p[2] ^= 0x40;
        eg_compress_decode_add(&q, p, x2);
        ck_assert_msg(memcmp(x1, x2, sizeof x1) != 0, "%s: a flipped bit went unnoticed", CASES[c].name);
    }
}
END_TEST

/* qsgd keeps the sender's exact values: its scale is a double (a float scale would round
 * some of them differently: levels other than powers of two, so few entries and 16 levels) */
START_TEST(test_qsgd_needs_double_scale)
{
    enum { DIM = 9 };
    float v[DIM], out[DIM], scratch[DIM], x[DIM];
    unsigned char p[8 + DIM * 2];
    eg_compressor q;
    eg_compress_setup(&q, EG_COMPRESS_QSGD, 0, 16, DIM);
    int differ = 0;
    for (uint64_t seed = 0; seed < 50; seed++) {
        make_vector(v, DIM, V_NORMAL, seed);
        eg_rng r1, r2;
        eg_rng_seed(&r1, 3, 3, seed);
        r2 = r1;
        eg_compress_apply(&q, v, out, scratch, &r1);
        eg_compress_encode(&q, v, p, scratch, &r2);
        double scale;
        memcpy(&scale, p, sizeof scale);
        const double sf = (float)scale;
        for (int t = 0; t < DIM; t++)
            differ += (float)(floor(fabs((double)out[t]) / scale + 0.5) * sf) != fabsf(out[t]);
        memset(x, 0, sizeof x);
        eg_compress_decode_add(&q, p, x);
        for (int t = 0; t < DIM; t++)
            ck_assert(x[t] == out[t]);
    }
    ck_assert_msg(differ > 0, "a float scale would have given the same values");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("compress");
    TCase *tc = tcase_create("compress");
    tcase_add_test(tc, test_roundtrip_every_compressor);
    tcase_add_test(tc, test_roundtrip_can_fail);
    tcase_add_test(tc, test_qsgd_needs_double_scale);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
