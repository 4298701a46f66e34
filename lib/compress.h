/* compress.h - choco's compression operators Q (algorithm.compress; SPEC.md section 4):
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
/* Bytes of one compressed vector at their real sizes: top_k and rand_k k float values and
 * k int32 indices; qsgd one float norm and 1 + ceil(log2(levels + 1)) bits per entry; sign
 * one float scale and one bit per entry; bf16 two bytes per entry. */
double eg_compress_bytes(const eg_compressor *q);
/* out = Q(v) as a dense vector of dim floats (zeros where nothing is sent). scratch: dim
 * floats (top_k). r: the random stream of this (iteration, node) (rand_k, qsgd). v and out
 * must not alias. No allocation. */
void eg_compress_apply(const eg_compressor *q, const float *v, float *out, float *scratch,
                       eg_rng *r);

#endif
