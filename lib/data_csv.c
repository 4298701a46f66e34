/* data_csv.c - comma-separated tables: csv (label first) and digits (scikit-learn's
 * digits.csv.gz, label last). Files may be gzipped (zlib reads plain text transparently).
 *
 * csv: data.path is either
 *   - a directory holding train.csv and test.csv (or train.csv.gz / test.csv.gz), or
 *   - one file, split deterministically: data row r (0-based, header excluded) goes to the
 *     test set when r % 5 == 4, to the training set otherwise (an 80/20 split that stays
 *     balanced when the file is sorted by label).
 * Each row: label, then the features, all numbers; the label a non-negative integer
 * (written "3" or "3.0"), at most 65535. An optional header row is detected by its first
 * field not being a number. Blank lines are skipped; fields may carry spaces; "\r\n" is
 * fine. Every row must have as many fields as the first (or as the header). Shape 1x1xdim,
 * classes = max label + 1 over both splits.
 *
 * digits: data.path (or the located directory) holds digits.csv.gz (or digits.csv), or is
 * that file: 1797 rows of 64 pixel values (0..16) and the label last; shape 1x8x8. Split as
 * the single csv file above: every 5th row (r % 5 == 4) is a test sample (359 test,
 * 1438 train).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CSV_MAX_LABEL 65535

typedef struct csv_table {
    float *x; /* n x dim */
    int32_t *y;
    size_t n, cap;
    int dim; /* features per row (fields - 1) */
    int maxlabel;
} csv_table;

typedef struct csv_reader {
    gzFile f;
    const char *path;
    char *buf;
    size_t cap;
    long line;
} csv_reader;

static void table_free(csv_table *t)
{
    free(t->x);
    free(t->y);
    memset(t, 0, sizeof *t);
}

/* Reads the next line into r->buf (without its newline). 1: a line, 0: end of file,
 * <0: error (err filled). */
static int read_line(csv_reader *r, eg_err *err)
{
    size_t len = 0;
    for (;;) {
        if (r->cap - len < 2) {
            size_t ncap = r->cap ? 2 * r->cap : 4096;
            char *nb = realloc(r->buf, ncap);
            if (!nb)
                return eg_err_set(err, EG_ERUN, "out of memory reading %s", r->path);
            r->buf = nb;
            r->cap = ncap;
        }
        r->buf[len] = '\0';
        char *got = gzgets(r->f, r->buf + len,
                           (int)(r->cap - len > (1u << 30) ? (1u << 30) : r->cap - len));
        if (!got) { /* end of file, or an error, with nothing read by this call */
            int zerr;
            const char *msg = gzerror(r->f, &zerr);
            if (zerr == Z_BUF_ERROR)
                return eg_err_set(err, EG_EINPUT, "%s:%ld: truncated (the gzip stream ends early)",
                                  r->path, r->line + 1);
            if (zerr != Z_OK)
                return eg_err_set(err, EG_EINPUT, "%s:%ld: read error (%s)", r->path, r->line + 1,
                                  zerr == Z_ERRNO ? strerror(errno) : msg);
            if (len == 0)
                return 0;
            break;
        }
        len += strlen(r->buf + len);
        if (len > 0 && r->buf[len - 1] == '\n')
            break;
        if (gzeof(r->f))
            break;
        /* gzgets stops at a newline or a full buffer; a shorter string without a newline
         * means a NUL byte hid the rest of the line */
        if (len + 1 < r->cap)
            return eg_err_set(err, EG_EINPUT, "%s:%ld: contains a NUL byte: not a text file",
                              r->path, r->line + 1);
    }
    {
        int zerr;
        gzerror(r->f, &zerr);
        if (zerr == Z_BUF_ERROR)
            return eg_err_set(err, EG_EINPUT, "%s:%ld: truncated (the gzip stream ends early)",
                              r->path, r->line + 1);
    }
    r->line++;
    while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r'))
        r->buf[--len] = '\0';
    return 1;
}

static int count_fields(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* Splits the line in place at commas and trims spaces; fields[k] points into it. */
static int split_fields(char *s, char **fields, int max)
{
    int n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        while (isspace((unsigned char)*s))
            s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char)s[l - 1]))
            s[--l] = '\0';
        if (n < max)
            fields[n] = s;
        n++;
        if (!comma)
            break;
        s = comma + 1;
    }
    return n;
}

static int parse_num(const char *s, double *v)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || end == s || (errno == ERANGE && fabs(x) > 1.0) || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* Reads a whole table. label_last: label in the last column (digits) instead of the first.
 * want_fields: required fields per row (0: from the header or first row); like: the file
 * that fixed want_fields (for the message). */
static int csv_read(const char *path, int label_last, int want_fields, const char *like,
                    csv_table *t, eg_err *err)
{
    memset(t, 0, sizeof *t);
    struct stat st;
    if (stat(path, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return eg_err_set(err, EG_EINPUT, "%s: not a regular file", path);
    csv_reader r = {gzopen(path, "rb"), path, NULL, 0, 0};
    if (!r.f)
        return eg_err_set(err, EG_EINPUT, "%s: cannot open (%s)", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(r.f, 1u << 17);
    int rc = EG_OK, first = 1, nf = want_fields;
    long fixed_at = 0; /* line that fixed the field count */
    char **fields = NULL;
    for (;;) {
        int got = read_line(&r, err);
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 0)
            break;
        if (is_blank(r.buf))
            continue;
        int cnt = count_fields(r.buf);
        /* header: the first non-blank line whose first field is not a number */
        if (first) {
            first = 0;
            char *tmp = strdup(r.buf);
            if (!tmp) {
                rc = eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
                break;
            }
            char *f0[1];
            split_fields(tmp, f0, 1);
            double v;
            int header = parse_num(f0[0], &v) != 0 && f0[0][0] != '\0';
            free(tmp);
            if (header) {
                if (nf && cnt != nf) {
                    rc = eg_err_set(
                        err, EG_EINPUT, "%s:%ld: header has %d fields, expected %d%s%s%s", path,
                        r.line, cnt, nf, like ? " (as in " : "", like ? like : "", like ? ")" : "");
                    break;
                }
                nf = cnt;
                fixed_at = r.line;
                continue;
            }
        }
        if (!nf) {
            nf = cnt;
            fixed_at = r.line;
        }
        if (nf < 2) {
            rc = eg_err_set(err, EG_EINPUT,
                            "%s:%ld: a row needs a label and at least one feature, got %d "
                            "field",
                            path, r.line, nf);
            break;
        }
        if (cnt != nf) {
            if (like)
                rc = eg_err_set(err, EG_EINPUT, "%s:%ld: expected %d fields (as in %s), got %d",
                                path, r.line, nf, like, cnt);
            else if (fixed_at && fixed_at != r.line)
                rc = eg_err_set(err, EG_EINPUT,
                                "%s:%ld: expected %d fields (as on line %ld), got %d", path, r.line,
                                nf, fixed_at, cnt);
            else
                rc = eg_err_set(err, EG_EINPUT, "%s:%ld: expected %d fields, got %d", path, r.line,
                                nf, cnt);
            break;
        }
        if (!fields) { /* first data row */
            t->dim = nf - 1;
            fields = malloc((size_t)nf * sizeof *fields);
            if (!fields) {
                rc = eg_err_set(err, EG_ERUN, "out of memory reading %s", path);
                break;
            }
        }
        if (t->n == t->cap) {
            size_t ncap = t->cap ? 2 * t->cap : 1024;
            float *nx = realloc(t->x, ncap * (size_t)t->dim * sizeof *nx);
            if (nx)
                t->x = nx;
            int32_t *ny = nx ? realloc(t->y, ncap * sizeof *ny) : NULL;
            if (!nx || !ny) {
                rc = eg_err_set(err, EG_ERUN, "out of memory reading %s (%zu rows)", path, t->n);
                break;
            }
            t->y = ny;
            t->cap = ncap;
        }
        split_fields(r.buf, fields, nf);
        int lab_col = label_last ? nf - 1 : 0;
        float *row = t->x + t->n * (size_t)t->dim;
        int k = 0;
        for (int c = 0; c < nf && rc == EG_OK; c++) {
            double v;
            if (parse_num(fields[c], &v) != 0) {
                if (!fields[c][0])
                    rc = eg_err_set(err, EG_EINPUT, "%s:%ld: field %d is empty", path, r.line,
                                    c + 1);
                else
                    rc = eg_err_set(err, EG_EINPUT, "%s:%ld: field %d: '%.40s' is not a number",
                                    path, r.line, c + 1, fields[c]);
            } else if (c == lab_col) {
                if (v < 0 || v != floor(v))
                    rc = eg_err_set(err, EG_EINPUT,
                                    "%s:%ld: label '%.40s' is not a non-negative integer", path,
                                    r.line, fields[c]);
                else if (v > CSV_MAX_LABEL)
                    rc = eg_err_set(err, EG_EINPUT, "%s:%ld: label %.0f is too large (max %d)",
                                    path, r.line, v, CSV_MAX_LABEL);
                else {
                    t->y[t->n] = (int32_t)v;
                    if ((int)v > t->maxlabel)
                        t->maxlabel = (int)v;
                }
            } else {
                if (fabs(v) > 3.0e38)
                    rc = eg_err_set(err, EG_EINPUT, "%s:%ld: field %d: %.40s does not fit a float",
                                    path, r.line, c + 1, fields[c]);
                row[k++] = (float)v;
            }
        }
        if (rc != EG_OK)
            break;
        t->n++;
        if (t->n > INT32_MAX / 2) {
            rc = eg_err_set(err, EG_EINPUT, "%s: too many rows", path);
            break;
        }
    }
    free(fields);
    free(r.buf);
    gzclose_r(r.f);
    if (rc == EG_OK && t->n == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s: no data rows", path);
    if (rc != EG_OK)
        table_free(t);
    return rc;
}

static int alloc_split(eg_dataset *d, int dim, size_t ntr, size_t nte, eg_err *err)
{
    d->dim = dim;
    d->n_train = (int)ntr;
    d->n_test = (int)nte;
    d->x_train = eg_data_alloc_floats(ntr * (size_t)dim, err);
    d->x_test = eg_data_alloc_floats(nte * (size_t)dim, err);
    d->y_train = eg_malloc(ntr * sizeof *d->y_train, err);
    d->y_test = eg_malloc(nte * sizeof *d->y_test, err);
    return d->x_train && d->x_test && d->y_train && d->y_test ? EG_OK : EG_ERUN;
}

/* one table -> train/test, every 5th row (r % 5 == 4) to test */
static int split_table(eg_dataset *d, const csv_table *t, const char *path, eg_err *err)
{
    size_t nte = t->n / 5, ntr = t->n - nte;
    if (nte == 0)
        return eg_err_set(err, EG_EINPUT,
                          "%s: %zu data row(s) are too few to split 80/20 (every 5th row is "
                          "a test sample); give at least 5 rows or a directory with train.csv "
                          "and test.csv",
                          path, t->n);
    int rc = alloc_split(d, t->dim, ntr, nte, err);
    if (rc != EG_OK)
        return rc;
    size_t a = 0, b = 0, dim = (size_t)t->dim;
    for (size_t r = 0; r < t->n; r++) {
        if (r % 5 == 4) {
            memcpy(d->x_test + b * dim, t->x + r * dim, dim * sizeof(float));
            d->y_test[b++] = t->y[r];
        } else {
            memcpy(d->x_train + a * dim, t->x + r * dim, dim * sizeof(float));
            d->y_train[a++] = t->y[r];
        }
    }
    d->classes = t->maxlabel + 1;
    return EG_OK;
}

static int find_in_dir(const char *dir, const char *const *names, char *out, size_t outlen)
{
    for (int i = 0; names[i]; i++) {
        struct stat st;
        int n = snprintf(out, outlen, "%s/%s", dir, names[i]);
        if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode))
            return 0;
    }
    return -1;
}

int eg_data_load_csv(eg_dataset *d, const char *path, eg_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, strerror(errno));
    csv_table tr, te;
    int rc;
    if (!S_ISDIR(st.st_mode)) {
        rc = csv_read(path, 0, 0, NULL, &tr, err);
        if (rc != EG_OK)
            return rc;
        rc = split_table(d, &tr, path, err);
        table_free(&tr);
    } else {
        static const char *const trn[] = {"train.csv", "train.csv.gz", NULL};
        static const char *const ten[] = {"test.csv", "test.csv.gz", NULL};
        char ptr[EG_PATH_MAX + 32], pte[EG_PATH_MAX + 32];
        if (find_in_dir(path, trn, ptr, sizeof ptr) != 0 ||
            find_in_dir(path, ten, pte, sizeof pte) != 0)
            return eg_err_set(err, EG_EINPUT,
                              "%s: a csv directory must hold train.csv and test.csv (or a "
                              "single .csv file as data.path)",
                              path);
        rc = csv_read(ptr, 0, 0, NULL, &tr, err);
        if (rc != EG_OK)
            return rc;
        rc = csv_read(pte, 0, tr.dim + 1, ptr, &te, err);
        if (rc != EG_OK) {
            table_free(&tr);
            return rc;
        }
        rc = alloc_split(d, tr.dim, tr.n, te.n, err);
        if (rc == EG_OK) {
            memcpy(d->x_train, tr.x, tr.n * (size_t)tr.dim * sizeof(float));
            memcpy(d->y_train, tr.y, tr.n * sizeof(int32_t));
            memcpy(d->x_test, te.x, te.n * (size_t)te.dim * sizeof(float));
            memcpy(d->y_test, te.y, te.n * sizeof(int32_t));
            d->classes = (tr.maxlabel > te.maxlabel ? tr.maxlabel : te.maxlabel) + 1;
        }
        table_free(&tr);
        table_free(&te);
    }
    if (rc == EG_OK)
        d->shape = (eg_shape){1, 1, d->dim};
    return rc;
}

int eg_data_load_digits(eg_dataset *d, const char *path, eg_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, strerror(errno));
    char file[EG_PATH_MAX + 32];
    if (S_ISDIR(st.st_mode)) {
        static const char *const names[] = {"digits.csv.gz", "digits.csv", NULL};
        if (find_in_dir(path, names, file, sizeof file) != 0)
            return eg_err_set(err, EG_EINPUT,
                              "%s: no digits.csv.gz; install python3-sklearn (data/get_data.sh) "
                              "or set data.path",
                              path);
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    csv_table t;
    int rc = csv_read(file, 1, 65, NULL, &t, err);
    if (rc != EG_OK) {
        /* a wrong field count here means a wrong file: say what digits should be */
        if (err && strstr(err->msg, "fields"))
            snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                     " (digits rows are 64 pixels and the label)");
        return rc;
    }
    rc = split_table(d, &t, file, err);
    table_free(&t);
    if (rc == EG_OK)
        d->shape = (eg_shape){1, 8, 8};
    return rc;
}
