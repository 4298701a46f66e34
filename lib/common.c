/* common.c - errors, RNG, parsing helpers. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int eg_err_set(eg_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t eg_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void eg_rng_seed(eg_rng *r, uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t st = seed;
    uint64_t a = splitmix64(&st);
    st = a ^ (stream * 0xd1342543de82ef95ULL);
    uint64_t b = splitmix64(&st);
    st = b ^ (index * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&st);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t eg_rng_next(eg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double eg_rng_uniform(eg_rng *r) { return (double)(eg_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t eg_rng_below(eg_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = eg_rng_next(r);
    while (x >= lim);
    return x % n;
}

double eg_rng_normal(eg_rng *r)
{
    double u1 = eg_rng_uniform(r), u2 = eg_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double eg_rng_gamma_log(eg_rng *r, double shape, double *logv)
{
    if (shape < 1.0) {
        /* boost: G(a) = G(a+1) * U^(1/a). For tiny a the power underflows to 0, so the log
         * is kept too: log G(a) = log G(a+1) + log(U) / a */
        double lg;
        double g = eg_rng_gamma_log(r, shape + 1.0, &lg);
        double u = eg_rng_uniform(r);
        if (u < 1e-300)
            u = 1e-300;
        if (logv)
            *logv = lg + log(u) / shape;
        return g * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = eg_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = eg_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))) {
            if (logv)
                *logv = log(d * v);
            return d * v;
        }
    }
}

void eg_rng_shuffle(eg_rng *r, int32_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)eg_rng_below(r, i);
        int32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

int eg_parse_long(const char *s, long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int eg_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* strtod over the whole string; *overflow = 1 when the value is out of range (+-HUGE_VAL) */
static int parse_double_raw(const char *s, double *out, int *overflow)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end)
        return -1;
    *overflow = errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL);
    *out = v;
    return 0;
}

int eg_parse_double(const char *s, double *out)
{
    double v;
    int overflow;
    if (parse_double_raw(s, &v, &overflow) || overflow)
        return -1;
    *out = v;
    return 0;
}

int eg_parse_number(const char *s, double *out)
{
    int overflow;
    return parse_double_raw(s, out, &overflow);
}

int eg_write_atomic(const char *path, const char *what, int sync,
                    int (*fill)(FILE *f, void *ud), void *ud, eg_err *err)
{
    char tmp[EG_PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return eg_err_set(err, EG_ERUN, "cannot write %s%s: the path is too long", what, path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return eg_err_set(err, EG_ERUN, "cannot write %s%s: %s", what, tmp, strerror(errno));
    errno = 0;
    int e = fill(f, ud);
    if (!e && fflush(f))
        e = errno;
    if (!e && ferror(f))
        e = errno ? errno : EIO;
    if (!e && sync && fsync(fileno(f)))
        e = errno;
    if (fclose(f) && !e)
        e = errno ? errno : EIO;
    if (e) {
        unlink(tmp);
        return eg_err_set(err, EG_ERUN, "cannot write %s%s: %s", what, path,
                          strerror(e > 0 ? e : EIO));
    }
    if (rename(tmp, path)) {
        e = errno;
        unlink(tmp);
        return eg_err_set(err, EG_ERUN, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return EG_OK;
}

static int fill_text(FILE *f, void *ud)
{
    const char *text = ud;
    size_t len = strlen(text);
    return fwrite(text, 1, len, f) == len ? 0 : (errno ? errno : EIO);
}

int eg_write_text_atomic(const char *path, const char *what, int sync, const char *text,
                         eg_err *err)
{
    return eg_write_atomic(path, what, sync, fill_text, (void *)text, err);
}

void *eg_malloc(size_t bytes, eg_err *err)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        eg_err_set(err, EG_ERUN, "out of memory (%zu bytes)", bytes);
    return p;
}

void *eg_calloc(size_t n, size_t size, eg_err *err)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        eg_err_set(err, EG_ERUN, "out of memory (%zu x %zu bytes)", n, size);
    return p;
}

float *eg_alloc_floats(size_t n, eg_err *err)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        eg_err_set(err, EG_ERUN, "out of memory (%zu floats)", n);
        return NULL;
    }
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

double eg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int eg_ceil_log2(long n)
{
    int t = 0;
    while ((1L << t) < n)
        t++;
    return t;
}

int eg_is_pow2(long n) { return n > 0 && (n & (n - 1)) == 0; }

int eg_default_threads(int ranks_on_host)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long nt = cores / (ranks_on_host > 0 ? ranks_on_host : 1), ev;
    const char *env = getenv("EXPGRAPH_THREADS");
    if (env && !eg_parse_long(env, &ev) && ev >= 1 && ev <= 1024)
        nt = ev;
    return nt < 1 ? 1 : (int)nt;
}

/* ---- CSV (RFC 4180) ---- */

int eg_csv_put(FILE *f, const char *s)
{
    if (!s)
        s = "";
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return ferror(f) ? -1 : 0;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
    return ferror(f) ? -1 : 0;
}

/* skips blank lines (spaces, tabs, CR only); returns 0 at the end of the text */
static int csv_skip_blank(eg_csv *c)
{
    while (c->p < c->end) {
        char *q = c->p;
        while (q < c->end && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < c->end && *q != '\n')
            return 1;
        c->p = q < c->end ? q + 1 : c->end;
        c->line++;
    }
    return 0;
}

/* unescapes the quoted field at s in place; returns where scanning goes on (just after the
 * closing quote), or NULL when the quote is never closed */
static char *csv_unquote(eg_csv *c, char *s)
{
    char *r = s + 1, *w = s;
    for (;;) {
        if (r >= c->end)
            return NULL;
        if (*r == '"') {
            if (r + 1 < c->end && r[1] == '"') {
                *w++ = '"';
                r += 2;
                continue;
            }
            *w = 0;
            return r + 1;
        }
        if (*r == '\n')
            c->line++;
        *w++ = *r++;
    }
}

int eg_csv_next(eg_csv *c, char ***fields, int *cap, int *line)
{
    if (!csv_skip_blank(c))
        return 0;
    *line = c->line + 1;
    char *s = c->p;
    for (int n = 0;;) {
        if (n == *cap) {
            int nc = *cap ? *cap * 2 : 16;
            char **nf = realloc(*fields, (size_t)nc * sizeof(char *));
            if (!nf)
                return -2;
            *fields = nf;
            *cap = nc;
        }
        (*fields)[n++] = s;
        char *r = s;
        int quoted = *s == '"';
        if (quoted && !(r = csv_unquote(c, s)))
            return -1;
        while (r < c->end && *r != ',' && *r != '\n')
            r++;
        if (r < c->end && *r == ',') {
            if (!quoted)
                *r = 0;
            s = r + 1;
            continue;
        }
        /* the record's end: a line break or the end of the text */
        if (!quoted && r > s && r[-1] == '\r')
            r[-1] = 0;
        if (!quoted)
            *r = 0;
        c->p = r < c->end ? r + 1 : c->end;
        c->line++;
        return n;
    }
}
