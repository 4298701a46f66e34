/* common.h - error reporting, RNG and small helpers shared by every module.
 *
 * Conventions (see README "Architecture"):
 *  - library functions return EG_OK (0) or a negative code and fill an eg_err;
 *  - EG_EINPUT means "the user's input is bad" (cli maps it to exit 2),
 *    EG_ERUN  means "something failed while running" (exit 1),
 *    EG_EINTR means "stopped by a signal after saving state" (exit 130).
 *  - nothing in lib/ prints to stdout or calls exit().
 */
#ifndef EG_COMMON_H
#define EG_COMMON_H

#include <signal.h> /* sig_atomic_t: run.h's stop flag, set by the CLI's signal handler */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EG_OK 0
#define EG_EINPUT (-2)
#define EG_ERUN (-1)
#define EG_EINTR (-130)

#define EG_VERSION "0.1.0"

/* The one path-length limit: every path buffer is EG_PATH_MAX (+ room for a suffix). */
#define EG_PATH_MAX 4096

/* EG_CLONES: compile a streaming kernel twice, for AVX2 and for the baseline (x86-64-v2),
 * and pick at load time by the CPU (GCC function multi-versioning). "avx2" alone brings no
 * FMA, and element-wise loops are not reassociated, so both clones give bitwise the same
 * results. Off for sanitizer/fuzz builds and compilers without target_clones. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(EG_NO_CLONES) && \
    !defined(__SANITIZE_ADDRESS__)
#define EG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define EG_CLONES
#endif

typedef struct eg_err {
    int code;        /* EG_EINPUT / EG_ERUN / ... (0 when no error) */
    char msg[1024];  /* human-readable, without the "expgraph: " prefix */
} eg_err;

/* Sets err->code and formats err->msg (printf-style); returns code.
 * err may be NULL (then only the code is returned). */
int eg_err_set(eg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- random numbers: xoshiro256** seeded by splitmix64 ----------------
 * Every stream is derived from (seed, stream id, node id) so that results
 * never depend on how nodes are spread over ranks. The state is plain data
 * so checkpoints can save it. */
typedef struct eg_rng {
    uint64_t s[4];
} eg_rng;

/* Seeds r from a run seed, a stream tag (EG_STREAM_*) and an index (node id). */
void eg_rng_seed(eg_rng *r, uint64_t seed, uint64_t stream, uint64_t index);
uint64_t eg_rng_next(eg_rng *r);
/* uniform in [0, 1) with 53 random bits */
double eg_rng_uniform(eg_rng *r);
/* uniform integer in [0, n) without modulo bias; n >= 1 */
uint64_t eg_rng_below(eg_rng *r, uint64_t n);
/* standard normal (Box-Muller, no cached state) */
double eg_rng_normal(eg_rng *r);
/* Gamma(shape, 1), shape > 0 (Marsaglia-Tsang), and its natural log in *logv (when not
 * NULL), which stays finite when the value underflows to 0 (shape << 1) */
double eg_rng_gamma_log(eg_rng *r, double shape, double *logv);
/* Fisher-Yates shuffle of idx[0..n) */
void eg_rng_shuffle(eg_rng *r, int32_t *idx, size_t n);

/* stream tags: one per use, so that adding a use never shifts another */
enum {
    EG_STREAM_INIT = 1,      /* model initialisation, per node */
    EG_STREAM_SAMPLE = 2,    /* minibatch sampling, per node */
    EG_STREAM_PARTITION = 3, /* data partition (index 0) */
    EG_STREAM_GRAPH = 4,     /* random graphs (erdos_renyi, random_match) */
    EG_STREAM_SYNTH = 5,     /* synthetic dataset generation */
    EG_STREAM_AUGMENT = 6,   /* data augmentation, per node */
    EG_STREAM_DROP = 7,      /* network.drop: per (iteration, sender, receiver) */
    EG_STREAM_OFFLINE = 8,   /* network.offline: per (iteration, node) */
    EG_STREAM_COMPRESS = 9,  /* choco's random compressors: per (iteration, node) */
    EG_STREAM_STRAGGLER = 10, /* cluster.straggler (timemodel.c): per (iteration, node) */
    EG_STREAM_VALSPLIT = 11, /* data.val_fraction: the held-out samples, per node */
};

/* 64-bit FNV-1a over bytes, chained from h (start with EG_FNV_INIT) */
#define EG_FNV_INIT 14695981039346656037ULL
uint64_t eg_fnv1a(uint64_t h, const void *data, size_t len);

/* Threads for a rank's OpenMP work: EXPGRAPH_THREADS when set (1..1024), otherwise the
 * host's cores shared by the ranks on it (at least 1). */
int eg_default_threads(int ranks_on_host);

/* ---- numbers and strings ----
 * The one way numbers are read from text (strtol/strtod + endptr + errno, never atoi):
 * the whole string must be the number (leading white space is allowed, as strtol and
 * strtod allow it; nothing may follow). Each returns 0 and sets *out, or -1 and leaves
 * *out alone. */
/* base 10, within long */
int eg_parse_long(const char *s, long *out);
/* digits only (no sign, no white space), within uint64_t */
int eg_parse_u64(const char *s, uint64_t *out);
/* a strtod number; "nan" and "inf" accepted; an overflow (1e999) is refused, an
 * underflow gives the tiny or zero value */
int eg_parse_double(const char *s, double *out);
/* the same, but an overflow is accepted as +-HUGE_VAL (for callers that report
 * "not a finite number" separately from "not a number") */
int eg_parse_number(const char *s, double *out);

/* ---- files ---- */
/* Writes path atomically: fill(f, ud) writes the content into "PATH.tmp" and returns 0, or
 * an errno value (or -1) when it failed; then the file is flushed, checked with ferror,
 * fsync'ed when sync, closed and renamed over path. On any failure the temporary is
 * removed, path is left as it was, and EG_ERUN is returned with "cannot write <what>PATH:
 * reason" (what: a word and a space such as "checkpoint ", or ""). Not collective. */
int eg_write_atomic(const char *path, const char *what, int sync,
                    int (*fill)(FILE *f, void *ud), void *ud, eg_err *err);
/* eg_write_atomic of a NUL-terminated text */
int eg_write_text_atomic(const char *path, const char *what, int sync, const char *text,
                         eg_err *err);
/* malloc that never returns NULL silently: returns NULL and fills err */
void *eg_malloc(size_t bytes, eg_err *err);
void *eg_calloc(size_t n, size_t size, eg_err *err);
/* 64-byte aligned allocation for float vectors (free with free()) */
float *eg_alloc_floats(size_t n, eg_err *err);
/* wall clock seconds (monotonic) */
double eg_now(void);
/* ceil(log2 n) with tau(1) = 0, tau(2) = 1 */
int eg_ceil_log2(long n);
int eg_is_pow2(long n);

/* ---- CSV (RFC 4180) ----
 * The text cells of the CSV files the tool writes (metrics.csv, summary.csv, `table
 * --format csv`) go through eg_csv_put and its readers of them (results.c) through
 * eg_csv_next, so that names and paths with commas, quotes and line breaks round-trip.
 * (`graph --format csv` writes only fixed graph names and numbers.) */

/* Writes s (NULL: empty) as one CSV field: as is, or in double quotes with each inner
 * quote doubled when s holds a comma, a double quote, CR or LF. No separator is written.
 * Returns 0, or -1 when the stream is in error. */
int eg_csv_put(FILE *f, const char *s);

/* A reader over a mutable, NUL-terminated buffer [p, end) holding CSV text. */
typedef struct eg_csv {
    char *p, *end;
    int line; /* lines consumed so far */
} eg_csv;

/* Reads the next record in place: blank lines (only spaces, tabs, CR) are skipped; a field
 * in double quotes may hold commas, "" (one quote) and line breaks; text between a closing
 * quote and the next comma is dropped; a CR before a record's line end is dropped (CRLF).
 * Fields are NUL-terminated in the buffer and listed in *fields (a malloc'ed array grown as
 * needed, *cap its size; free it when done). *line gets the 1-based line the record starts
 * on. Returns the field count (>= 1), 0 at the end of the text, -1 for a quote that is
 * never closed, -2 when out of memory. */
int eg_csv_next(eg_csv *c, char ***fields, int *cap, int *line);

#endif
