/* data_png.c - png_folder: an ImageFolder tree read with libpng.
 *
 *   DIR/train/<class>/<name>.png   DIR/test/<class>/<name>.png
 *
 * Classes are the subdirectories of train/ (names not starting with '.'), sorted by byte
 * value (strcmp); label k is the k-th name. test/ must only hold directories named like a
 * train class (a class may have no test images). Within a class directory the files ending
 * in .png (any case) are read in strcmp order; other files and hidden entries are ignored.
 *
 * Pixels: palette images become RGB, gray below 8 bits is expanded, 16-bit is reduced to
 * 8 bits, an alpha channel is dropped (not composited). Gray (and gray+alpha) images give
 * 1 channel, RGB (and RGBA, palette) 3. Every image must have the size and channel count of
 * the first train image, else EG_EINPUT naming the odd file. Samples are stored channels
 * first (C x H x W) as raw 0..255 values; eg_data_load normalises them per channel.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int strlist_add(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_png(const char *name)
{
    size_t l = strlen(name);
    return l > 4 && strcasecmp(name + l - 4, ".png") == 0;
}

/* Lists the entries of dir that are directories (want_dirs) or regular .png files,
 * sorted, hidden names skipped. */
static int list_dir(const char *dir, int want_dirs, strlist *out, eg_err *err)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return eg_err_set(err, EG_EINPUT, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    char full[EG_PATH_MAX + 512];
    int rc = EG_OK;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (!want_dirs && !ends_with_png(e->d_name))
            continue;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
            continue;
        if (strlist_add(out, e->d_name) != 0) {
            rc = eg_err_set(err, EG_ERUN, "out of memory listing %s", dir);
            break;
        }
    }
    closedir(dp);
    if (rc == EG_OK && out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

/* ---- one PNG file ---------------------------------------------------------------------- */

typedef struct png_ctx {
    FILE *f;
    char msg[256];
} png_ctx;

static void png_err_fn(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warn_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings are not errors; lib/ prints nothing */
}

static void png_read_fn(png_structp png, png_bytep out, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (fread(out, 1, n, c->f) != n)
        png_error(png, ferror(c->f) ? "read error" : "truncated (the file ends early)");
}

typedef struct png_shape {
    int w, h, c;
} png_shape;

/* Reads path. Always fills *got (size after the transforms above) when the header is
 * readable. When pix is non-NULL and *got equals *want, reads the pixels (h x w x c,
 * interleaved) into pix through rows (h row pointers). Returns 0 on success, 1 when the
 * size differs from *want (pixels not read), -1 on a bad file (msg filled). */
static int png_read_file(const char *path, const png_shape *want, png_shape *got, uint8_t *pix,
                         png_bytep *rows, char *msg, size_t msglen)
{
    png_ctx ctx;
    ctx.msg[0] = '\0';
    ctx.f = fopen(path, "rb");
    if (!ctx.f) {
        snprintf(msg, msglen, "cannot open (%s)", strerror(errno));
        return -1;
    }
    uint8_t sig[8];
    size_t n = fread(sig, 1, 8, ctx.f);
    if (n < 8 || png_sig_cmp(sig, 0, 8) != 0) {
        snprintf(msg, msglen, n < 8 && ferror(ctx.f) ? "read error" : "not a PNG file");
        fclose(ctx.f);
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(msg, msglen, "out of memory in libpng");
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        fclose(ctx.f);
        return -1;
    }
    /* nothing below changes a local that is read after a longjmp except through ctx/got */
    if (setjmp(png_jmpbuf(png))) {
        snprintf(msg, msglen, "not a valid PNG: %s", ctx.msg);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(ctx.f);
        return -1;
    }
    png_set_read_fn(png, &ctx, png_read_fn);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, 1u << 15, 1u << 15);
    png_read_info(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16)
        png_set_strip_16(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    got->w = (int)png_get_image_width(png, info);
    got->h = (int)png_get_image_height(png, info);
    got->c = png_get_channels(png, info);
    int rc = 0;
    if (got->w != want->w || got->h != want->h || got->c != want->c) {
        rc = 1;
    } else if (pix) {
        if (png_get_rowbytes(png, info) != (size_t)got->w * (size_t)got->c)
            png_error(png, "unexpected row size after conversion");
        for (int i = 0; i < got->h; i++)
            rows[i] = pix + (size_t)i * (size_t)got->w * (size_t)got->c;
        png_read_image(png, rows);
        png_read_end(png, NULL);
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(ctx.f);
    return rc;
}

static const char *chan_name(int c) { return c == 1 ? "gray" : c == 3 ? "RGB" : "?"; }

/* ---- the tree ---------------------------------------------------------------------------- */

typedef struct png_split {
    strlist files; /* full paths, class by class */
    int32_t *labels;
    size_t cap;
} png_split;

static void split_free(png_split *s)
{
    strlist_free(&s->files);
    free(s->labels);
    s->labels = NULL;
}

static int split_add_class(png_split *s, const char *classdir, int32_t label, eg_err *err)
{
    strlist names = {0};
    int rc = list_dir(classdir, 0, &names, err);
    char full[EG_PATH_MAX + 512];
    for (size_t i = 0; rc == EG_OK && i < names.n; i++) {
        snprintf(full, sizeof full, "%s/%s", classdir, names.v[i]);
        if (strlist_add(&s->files, full) != 0) {
            rc = eg_err_set(err, EG_ERUN, "out of memory listing %s", classdir);
            break;
        }
        if (s->files.n > s->cap) {
            size_t ncap = s->cap ? 2 * s->cap : 256;
            int32_t *nl = realloc(s->labels, ncap * sizeof *nl);
            if (!nl) {
                rc = eg_err_set(err, EG_ERUN, "out of memory listing %s", classdir);
                break;
            }
            s->labels = nl;
            s->cap = ncap;
        }
        s->labels[s->files.n - 1] = label;
    }
    strlist_free(&names);
    return rc;
}

/* Reads every file of the split into x (n x dim floats, C x H x W). */
static int read_split(const png_split *s, const png_shape *want, const char *first, float *x,
                      int32_t *y, uint8_t *pix, png_bytep *rows, eg_err *err)
{
    char msg[300];
    size_t hw = (size_t)want->h * (size_t)want->w, dim = hw * (size_t)want->c;
    for (size_t i = 0; i < s->files.n; i++) {
        png_shape got = {0, 0, 0};
        int r = png_read_file(s->files.v[i], want, &got, pix, rows, msg, sizeof msg);
        if (r < 0)
            return eg_err_set(err, EG_EINPUT, "%s: %s", s->files.v[i], msg);
        if (r > 0)
            return eg_err_set(err, EG_EINPUT,
                              "%s: image is %dx%d %s, but %s is %dx%d %s; all images must "
                              "have the same size and channels",
                              s->files.v[i], got.w, got.h, chan_name(got.c), first, want->w,
                              want->h, chan_name(want->c));
        float *dst = x + i * dim;
        for (int c = 0; c < want->c; c++)
            for (size_t p = 0; p < hw; p++)
                dst[(size_t)c * hw + p] = (float)pix[p * (size_t)want->c + (size_t)c];
        y[i] = s->labels[i];
    }
    return EG_OK;
}

int eg_data_load_png_folder(eg_dataset *d, const char *dir, eg_err *err)
{
    char trdir[EG_PATH_MAX + 16], tedir[EG_PATH_MAX + 16], sub[EG_PATH_MAX + 512];
    snprintf(trdir, sizeof trdir, "%s/train", dir);
    snprintf(tedir, sizeof tedir, "%s/test", dir);
    struct stat st;
    if (stat(dir, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s: not a directory (png_folder needs a directory "
                          "with train/ and test/)",
                          dir);
    for (int k = 0; k < 2; k++) {
        const char *p = k ? tedir : trdir;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            return eg_err_set(err, EG_EINPUT,
                              "%s: no such directory (png_folder needs DIR/train/<class>/*.png "
                              "and DIR/test/<class>/*.png)",
                              p);
    }
    strlist classes = {0}, testdirs = {0};
    png_split tr = {0}, te = {0};
    uint8_t *pix = NULL;
    png_bytep *rows = NULL;
    int rc = list_dir(trdir, 1, &classes, err);
    if (rc == EG_OK && classes.n == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s: no class subdirectories", trdir);
    if (rc == EG_OK && classes.n > 65536)
        rc = eg_err_set(err, EG_EINPUT, "%s: %zu classes is too many", trdir, classes.n);
    for (size_t k = 0; rc == EG_OK && k < classes.n; k++) {
        snprintf(sub, sizeof sub, "%s/%s", trdir, classes.v[k]);
        size_t before = tr.files.n;
        rc = split_add_class(&tr, sub, (int32_t)k, err);
        if (rc == EG_OK && tr.files.n == before)
            rc = eg_err_set(err, EG_EINPUT, "%s: no .png files in this class directory", sub);
    }
    if (rc == EG_OK)
        rc = list_dir(tedir, 1, &testdirs, err);
    for (size_t k = 0; rc == EG_OK && k < testdirs.n; k++) {
        char *key = testdirs.v[k];
        char **hit = bsearch(&key, classes.v, classes.n, sizeof *classes.v, cmp_str);
        snprintf(sub, sizeof sub, "%s/%s", tedir, testdirs.v[k]);
        if (!hit)
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: class '%s' is not a class of %s (test/ must use the train "
                            "class names)",
                            sub, testdirs.v[k], trdir);
        else
            rc = split_add_class(&te, sub, (int32_t)(hit - classes.v), err);
    }
    if (rc == EG_OK && te.files.n == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s: no .png files under its class directories", tedir);
    if (rc == EG_OK && (tr.files.n > INT32_MAX / 2 || te.files.n > INT32_MAX / 2))
        rc = eg_err_set(err, EG_EINPUT, "%s: too many images", dir);

    /* the first train image fixes the shape */
    png_shape want = {0, 0, 0};
    if (rc == EG_OK) {
        char msg[300];
        png_shape none = {-1, -1, -1};
        int r = png_read_file(tr.files.v[0], &none, &want, NULL, NULL, msg, sizeof msg);
        if (r < 0)
            rc = eg_err_set(err, EG_EINPUT, "%s: %s", tr.files.v[0], msg);
        else if ((size_t)want.w * (size_t)want.h * (size_t)want.c > (1u << 26))
            rc = eg_err_set(err, EG_EINPUT, "%s: %dx%d images are too large", tr.files.v[0], want.w,
                            want.h);
    }
    if (rc == EG_OK) {
        d->shape = (eg_shape){want.c, want.h, want.w};
        d->dim = want.c * want.h * want.w;
        d->classes = (int)classes.n;
        d->n_train = (int)tr.files.n;
        d->n_test = (int)te.files.n;
        d->x_train = eg_data_alloc_floats(tr.files.n * (size_t)d->dim, err);
        d->x_test = eg_data_alloc_floats(te.files.n * (size_t)d->dim, err);
        d->y_train = eg_malloc(tr.files.n * sizeof *d->y_train, err);
        d->y_test = eg_malloc(te.files.n * sizeof *d->y_test, err);
        pix = eg_malloc((size_t)d->dim, err);
        rows = eg_malloc((size_t)want.h * sizeof *rows, err);
        if (!d->x_train || !d->x_test || !d->y_train || !d->y_test || !pix || !rows)
            rc = EG_ERUN;
    }
    if (rc == EG_OK)
        rc = read_split(&tr, &want, tr.files.v[0], d->x_train, d->y_train, pix, rows, err);
    if (rc == EG_OK)
        rc = read_split(&te, &want, tr.files.v[0], d->x_test, d->y_test, pix, rows, err);
    free(pix);
    free(rows);
    split_free(&tr);
    split_free(&te);
    strlist_free(&classes);
    strlist_free(&testdirs);
    return rc;
}
