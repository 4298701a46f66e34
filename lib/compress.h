/* compress.h - choco's compression operators Q (algorithm.compress; docs/algorithms.md#choco):
 * top_k, rand_k, qsgd, sign, bf16, and what one compressed vector weighs on the wire. */
#ifndef EG_COMPRESS_H
#define EG_COMPRESS_H

#include "common.h"
#include "kinds.h"

typedef struct eg_compressor {
    eg_compress_kind kind;
    size_t dim;
    size_t k;   /* top_k, rand_k: entries kept (round(ratio * dim), at least 1) */
    int levels; /* qsgd */
} eg_compressor;

void eg_compress_setup(eg_compressor *q, eg_compress_kind kind, double ratio, int levels,
                       size_t dim);
/* 1 when Q is the identity (top_k or rand_k keeping every entry) */
int eg_compress_identity(const eg_compressor *q);
/* Bytes of one compressed vector on the wire: the payload eg_compress_encode writes.
 *   top_k, rand_k  k float values, then their k int32 indices (ascending)
 *   qsgd           one double scale ||v|| / (s tau) (a double, not a float: the receivers
 *                  must reproduce the sender's values exactly, and those are rounded from
 *                  this double), then per entry 1 + ceil(log2(levels + 1)) bits (its sign,
 *                  then its level), least significant bit first, rounded up to whole bytes
 *   sign           one float scale ||v||_1 / d, then one bit per entry (1: negative)
 *   bf16           two bytes per entry (the upper half of the rounded float)
 * Fixed per compressor. eg_compress_bytes is the same number as a double. */
size_t eg_compress_payload_bytes(const eg_compressor *q);
double eg_compress_bytes(const eg_compressor *q);
/* out = Q(v) as a dense vector of dim floats (zeros where nothing is sent). scratch: dim
 * floats (top_k). r: the random stream of this (iteration, node) (rand_k, qsgd). v and out
 * must not alias. No allocation. The reference the wire format is tested against. */
void eg_compress_apply(const eg_compressor *q, const float *v, float *out, float *scratch,
                       eg_rng *r);
/* Q(v) as its payload (eg_compress_payload_bytes bytes, any alignment): the same selection,
 * draws from r and values as eg_compress_apply. scratch: dim floats (top_k). No
 * allocation. For the identity (eg_compress_identity) every entry is sent as it is. */
void eg_compress_encode(const eg_compressor *q, const float *v, void *payload, float *scratch,
                        eg_rng *r);
/* x += Q(v) from its payload, touching only the entries it carries (top_k, rand_k) and
 * skipping the zero adds of qsgd: for an x that holds no -0, x ends bitwise equal to
 * x[t] += eg_compress_apply(v)[t] for every t. */
void eg_compress_decode_add(const eg_compressor *q, const void *payload, float *x);
/* top_k / rand_k: x[i] = value for each (value, i) the payload carries (for the identity:
 * x = v exactly, where x + (v - x) may round). */
void eg_compress_decode_set(const eg_compressor *q, const void *payload, float *x);

#endif
