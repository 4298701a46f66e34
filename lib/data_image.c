/* data_image.c - image_folder (png_folder is its old name): an ImageFolder tree of PNG
 * (libpng) and JPEG (libjpeg-turbo) files, the ImageNet layout.
 *
 *   DIR/train/<class>/<name>.{png,jpg,jpeg}   DIR/test/<class>/<name>.{png,jpg,jpeg}
 *
 * DIR/val/ is taken for DIR/test/ when there is no DIR/test/ (ImageNet's train/ and val/ as
 * unpacked, once val/ is sorted into class folders).
 *
 * Classes are the subdirectories of train/ (names not starting with '.'), sorted by byte
 * value (strcmp); label k is the k-th name. test/ must only hold directories named like a
 * train class (a class may have no test images). Within a class directory the files ending
 * in .png, .jpg or .jpeg (any case) are read in strcmp order; other files and hidden entries
 * are ignored. The format is decided by the file's first bytes (PNG signature or JPEG SOI),
 * not by its name.
 *
 * Pixels: PNG palette images become RGB, gray below 8 bits is expanded, 16-bit is reduced to
 * 8 bits, an alpha channel is dropped (not composited). JPEG: grayscale stays gray, YCbCr and
 * RGB become RGB (libjpeg's default integer IDCT and upsampling: deterministic); CMYK is
 * refused. Gray images give 1 channel, RGB 3. A corrupt or truncated file is an error naming
 * it: libjpeg's fatal errors AND its corrupt-data warnings (e.g. "Premature end of JPEG
 * file", after which libjpeg would fill the rest with grey) are caught (setjmp/longjmp in a
 * custom error manager) and reported, never printed or turned into an exit.
 *
 * Shape:
 *  - image_size 0: every image must have the size and channel count of the first train
 *    image, else EG_EINPUT naming the odd file;
 *  - image_size S: each image is resized so that its shorter side is S (the longer one
 *    becomes floor(S * long / short), as torchvision's Resize(S)) and centre-cropped to
 *    S x S (offset floor((len - S) / 2)). The filter is separable linear interpolation
 *    ("bilinear") with pixel centres at i + 0.5; when shrinking, its support widens by the
 *    shrink factor (a triangle filter over the source pixels, as PIL's antialiased bilinear
 *    resize), so no source pixel is skipped. Taps outside the image are dropped and the rest
 *    renormalised. Computed in double, values kept fractional (not rounded to 8 bits).
 *    The channel count is the first train image's; in an RGB set a gray image is copied to
 *    the three channels (as converting it to RGB would); an RGB image in a gray set is an
 *    error. With eval_resize R (>= S) the shorter side is resized to R instead, then the
 *    centre S x S is kept (torchvision's Resize(R) + CenterCrop(S)).
 *  - random_resized_crop (rrc): every image is RGB (gray ones copied to three channels, as
 *    torchvision's ImageFolder loader converts to RGB); the test images as above (R, S); a
 *    training image is kept decoded (data.cache: memory) or decoded per minibatch (stream)
 *    and eg_data_fill_batch cuts its sample: the window of eg_data_rrc_box resized to S x S
 *    with the same filter (taps outside the window dropped, as PIL's crop + resize). The
 *    normalisation statistics are those of the training images through the evaluation
 *    transform (R, S).
 * Samples are stored channels first (C x H x W) as raw 0..255 values; eg_data_load
 * normalises them per channel.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
/* jpeglib.h needs size_t and FILE declared first */
#include <jerror.h>
#include <jpeglib.h>

#define IMG_MAX_SIDE (1 << 15)           /* width or height */
#define IMG_MAX_PIXELS ((size_t)1 << 25) /* width x height of one decoded image */
#define JPEG_MAX_SCANS 1000              /* a progressive JPEG with more is refused */
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

static int is_image_name(const char *name)
{
    size_t l = strlen(name);
    return (l > 4 && (strcasecmp(name + l - 4, ".png") == 0 ||
                      strcasecmp(name + l - 4, ".jpg") == 0)) ||
           (l > 5 && strcasecmp(name + l - 5, ".jpeg") == 0);
}

/* Lists the entries of dir that are directories (want_dirs) or regular image files,
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
        if (!want_dirs && !is_image_name(e->d_name))
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

/* ---- decoding: one file into 8-bit pixels ----------------------------------------------- */

typedef eg_data_img raw_img; /* c: 1 gray, 3 RGB; pix: h x w x c, interleaved (malloc) */

static int img_check_size(long w, long h, char *msg, size_t len)
{
    if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE ||
        (size_t)w * (size_t)h > IMG_MAX_PIXELS) {
        snprintf(msg, len, "%ldx%ld pixels is not a supported image size (at most %d per side "
                 "and %zu pixels)", w, h, IMG_MAX_SIDE, IMG_MAX_PIXELS);
        return -1;
    }
    return 0;
}

/* -- PNG -- */

typedef struct png_ctx {
    FILE *f;
    uint8_t *pix;
    png_bytep *rows;
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

/* f is positioned after the 8 signature bytes. Returns 0 with img filled, or -1 (msg). */
static int png_decode(FILE *f, raw_img *img, char *msg, size_t msglen)
{
    png_ctx ctx = {f, NULL, NULL, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_err_fn, png_warn_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(msg, msglen, "out of memory in libpng");
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return -1;
    }
    /* after a longjmp only ctx (not a register local) is read */
    if (setjmp(png_jmpbuf(png))) {
        if (!msg[0])
            snprintf(msg, msglen, "not a valid PNG: %s", ctx.msg);
        png_destroy_read_struct(&png, &info, NULL);
        free(ctx.pix);
        free(ctx.rows);
        return -1;
    }
    png_set_read_fn(png, &ctx, png_read_fn);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, IMG_MAX_SIDE, IMG_MAX_SIDE);
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
    long w = (long)png_get_image_width(png, info), h = (long)png_get_image_height(png, info);
    int c = png_get_channels(png, info);
    if (img_check_size(w, h, msg, msglen) != 0)
        png_error(png, msg);
    if ((c != 1 && c != 3) || png_get_rowbytes(png, info) != (size_t)w * (size_t)c)
        png_error(png, "unexpected row size after conversion");
    ctx.pix = malloc((size_t)w * (size_t)h * (size_t)c);
    ctx.rows = malloc((size_t)h * sizeof *ctx.rows);
    if (!ctx.pix || !ctx.rows) {
        snprintf(msg, msglen, "out of memory for a %ldx%ld image", w, h);
        png_error(png, msg);
    }
    for (long i = 0; i < h; i++)
        ctx.rows[i] = ctx.pix + (size_t)i * (size_t)w * (size_t)c;
    png_read_image(png, ctx.rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(ctx.rows);
    *img = (raw_img){(int)w, (int)h, c, ctx.pix};
    return 0;
}

/* -- JPEG -- */

typedef struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first: libjpeg hands back a pointer to it */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX + 64];
    uint8_t *pix;
} jpeg_ctx;

static void jpeg_fail(j_common_ptr ci)
{
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    char m[JMSG_LENGTH_MAX];
    (*ci->err->format_message)(ci, m);
    snprintf(c->msg, sizeof c->msg, "corrupt or truncated JPEG (libjpeg: %s)", m);
    longjmp(c->jb, 1);
}

/* Warnings (level -1) are corrupt data: libjpeg would go on with made-up pixels, so they
 * are errors, except the two about metadata only. Trace messages (level >= 0) are dropped. */
static void jpeg_emit(j_common_ptr ci, int level)
{
    if (level >= 0)
        return;
    int code = ci->err->msg_code;
    if (code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC) {
        ci->err->num_warnings++;
        return;
    }
    jpeg_fail(ci);
}

static void jpeg_silent(j_common_ptr ci) { (void)ci; }

/* A progressive file can hold thousands of tiny scans that take minutes to decode. */
static void jpeg_progress(j_common_ptr ci)
{
    jpeg_ctx *c = (jpeg_ctx *)ci->err;
    if (ci->is_decompressor && ((j_decompress_ptr)ci)->input_scan_number > JPEG_MAX_SCANS) {
        snprintf(c->msg, sizeof c->msg, "corrupt JPEG: more than %d scans", JPEG_MAX_SCANS);
        longjmp(c->jb, 1);
    }
}

/* f is positioned at the start of the file. Returns 0 with img filled, or -1 (msg). */
static int jpeg_decode(FILE *f, raw_img *img, char *msg, size_t msglen)
{
    struct jpeg_decompress_struct ci;
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ci.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_fail;
    ctx.pub.emit_message = jpeg_emit;
    ctx.pub.output_message = jpeg_silent;
    ctx.progress.progress_monitor = jpeg_progress;
    /* after a longjmp only ctx (not a register local) is read */
    if (setjmp(ctx.jb)) {
        snprintf(msg, msglen, "%s", ctx.msg);
        jpeg_destroy_decompress(&ci);
        free(ctx.pix);
        return -1;
    }
    jpeg_create_decompress(&ci);
    ci.progress = &ctx.progress;
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
        snprintf(ctx.msg, sizeof ctx.msg, "CMYK JPEG is not supported (convert it to RGB)");
        longjmp(ctx.jb, 1);
    }
    int gray = ci.jpeg_color_space == JCS_GRAYSCALE;
    ci.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    if (img_check_size((long)ci.image_width, (long)ci.image_height, ctx.msg, sizeof ctx.msg) != 0)
        longjmp(ctx.jb, 1);
    jpeg_start_decompress(&ci);
    long w = (long)ci.output_width, h = (long)ci.output_height;
    int c = ci.output_components;
    if ((c != 1 && c != 3) || img_check_size(w, h, ctx.msg, sizeof ctx.msg) != 0) {
        if (c != 1 && c != 3)
            snprintf(ctx.msg, sizeof ctx.msg, "JPEG with %d colour components", c);
        longjmp(ctx.jb, 1);
    }
    ctx.pix = malloc((size_t)w * (size_t)h * (size_t)c);
    if (!ctx.pix) {
        snprintf(ctx.msg, sizeof ctx.msg, "out of memory for a %ldx%ld image", w, h);
        longjmp(ctx.jb, 1);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = ctx.pix + (size_t)ci.output_scanline * (size_t)w * (size_t)c;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci); /* reads to EOI: a file cut after the last row fails here */
    jpeg_destroy_decompress(&ci);
    *img = (raw_img){(int)w, (int)h, c, ctx.pix};
    return 0;
}

/* Decodes path (PNG or JPEG by its first bytes). Returns 0 with img filled (free img->pix),
 * or -1 with msg filled. */
static int img_decode(const char *path, raw_img *img, char *msg, size_t msglen)
{
    memset(img, 0, sizeof *img);
    msg[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msglen, "cannot open (%s)", strerror(errno));
        return -1;
    }
    uint8_t sig[8];
    size_t n = fread(sig, 1, 8, f);
    int rc;
    if (n == 8 && png_sig_cmp(sig, 0, 8) == 0) {
        rc = png_decode(f, img, msg, msglen);
    } else if (n >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF) {
        rewind(f);
        rc = jpeg_decode(f, img, msg, msglen);
    } else {
        snprintf(msg, msglen, "%s", n < 8 && ferror(f) ? "read error" : "not a PNG or JPEG file");
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* ---- resizing --------------------------------------------------------------------------- */

/* The taps of one axis: output i in [0, S) of a resize from `in` to `out` pixels, then a
 * crop starting at `off`, reads source pixels lo[i] .. lo[i] + n[i] - 1 with weights
 * w[i * maxn ..]. */
typedef struct taps {
    int *lo, *n, maxn;
    double *w;
} taps;

static void taps_free(taps *t)
{
    free(t->lo);
    free(t->n);
    free(t->w);
}

static int taps_make(taps *t, int in, int out, int off, int S)
{
    double scale = (double)in / (double)out;
    double support = scale > 1.0 ? scale : 1.0;
    t->maxn = (int)ceil(2.0 * support) + 2;
    t->lo = malloc((size_t)S * sizeof *t->lo);
    t->n = malloc((size_t)S * sizeof *t->n);
    t->w = malloc((size_t)S * (size_t)t->maxn * sizeof *t->w);
    if (!t->lo || !t->n || !t->w)
        return -1;
    for (int i = 0; i < S; i++) {
        double center = ((double)(i + off) + 0.5) * scale - 0.5; /* in source coordinates */
        long a = (long)ceil(center - support), b = (long)floor(center + support);
        if (a < 0)
            a = 0;
        if (b > in - 1)
            b = in - 1;
        double *w = t->w + (size_t)i * (size_t)t->maxn, sum = 0;
        int n = 0;
        long first = -1;
        for (long j = a; j <= b && n < t->maxn; j++) {
            double v = 1.0 - fabs((double)j - center) / support;
            if (v <= 0 && n == 0)
                continue;
            if (first < 0)
                first = j;
            w[n++] = v > 0 ? v : 0;
            sum += v > 0 ? v : 0;
        }
        if (n == 0 || !(sum > 0)) { /* cannot happen for in >= 1; the nearest pixel then */
            first = center < 0 ? 0 : center > in - 1 ? in - 1 : (long)floor(center + 0.5);
            w[0] = 1.0;
            n = 1;
            sum = 1.0;
        }
        for (int k = 0; k < n; k++)
            w[k] /= sum;
        t->lo[i] = (int)first;
        t->n[i] = n;
    }
    return 0;
}

void eg_data_eval_axes(int w, int h, int R, int S, eg_resample_axis ax[2])
{
    int rw, rh; /* the resized size */
    if (w <= h) {
        rw = R;
        rh = (int)((long long)R * h / w);
    } else {
        rh = R;
        rw = (int)((long long)R * w / h);
    }
    ax[0] = (eg_resample_axis){0, w, rw, (rw - S) / 2};
    ax[1] = (eg_resample_axis){0, h, rh, (rh - S) / 2};
}

void eg_data_box_axes(eg_crop_box b, int S, eg_resample_axis ax[2])
{
    ax[0] = (eg_resample_axis){b.x, b.w, S, 0};
    ax[1] = (eg_resample_axis){b.y, b.h, S, 0};
}

int eg_data_default_eval_resize(int S) { return (int)((8LL * S + 3) / 7); } /* round(S*8/7) */

/* torchvision's round(): half to even (nearbyint in the default rounding mode) */
static int round_even(double v) { return (int)nearbyint(v); }

eg_crop_box eg_data_rrc_box(int w, int h, eg_rng *rng)
{
    const double area = (double)w * (double)h;
    const double lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (0.08 + (1.0 - 0.08) * eg_rng_uniform(rng));
        double ratio = exp(lr0 + (lr1 - lr0) * eg_rng_uniform(rng));
        int cw = round_even(sqrt(target * ratio)), ch = round_even(sqrt(target / ratio));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            int y = (int)eg_rng_below(rng, (uint64_t)(h - ch + 1));
            int x = (int)eg_rng_below(rng, (uint64_t)(w - cw + 1));
            return (eg_crop_box){y, x, ch, cw};
        }
    }
    /* the fallback: the central crop, the whole image clamped to the ratio range */
    double in_ratio = (double)w / (double)h;
    int cw = w, ch = h;
    if (in_ratio < 3.0 / 4.0) {
        ch = round_even((double)w / (3.0 / 4.0));
    } else if (in_ratio > 4.0 / 3.0) {
        cw = round_even((double)h * (4.0 / 3.0));
    }
    if (ch > h) /* rounding up past the side (cannot happen for in_ratio < 3/4; kept safe) */
        ch = h;
    if (cw > w)
        cw = w;
    if (ch < 1)
        ch = 1;
    if (cw < 1)
        cw = 1;
    return (eg_crop_box){(h - ch) / 2, (w - cw) / 2, ch, cw};
}

int eg_data_resample(const eg_data_img *img, const eg_resample_axis ax[2], int C, int S,
                     float *dst, eg_err *err)
{
    int w = img->w, ic = img->c, y0 = ax[1].src0, nrows = ax[1].len;
    taps tx = {0}, ty = {0};
    double *tmp = NULL;
    int rc = EG_OK;
    if (taps_make(&tx, ax[0].len, ax[0].out, ax[0].off, S) != 0 ||
        taps_make(&ty, ax[1].len, ax[1].out, ax[1].off, S) != 0 ||
        !(tmp = malloc((size_t)nrows * (size_t)S * (size_t)ic * sizeof *tmp))) {
        rc = eg_err_set(err, EG_ERUN, "out of memory resizing a %dx%d image", w, img->h);
    } else {
        /* horizontal: tmp[y][x][c] for every source row y of the window */
        for (int y = 0; y < nrows; y++) {
            const uint8_t *row = img->pix + ((size_t)(y0 + y) * (size_t)w + (size_t)ax[0].src0) *
                                                (size_t)ic;
            double *trow = tmp + (size_t)y * (size_t)S * (size_t)ic;
            for (int x = 0; x < S; x++) {
                const double *wt = tx.w + (size_t)x * (size_t)tx.maxn;
                for (int c = 0; c < ic; c++) {
                    double acc = 0;
                    for (int k = 0; k < tx.n[x]; k++)
                        acc += wt[k] * (double)row[(size_t)(tx.lo[x] + k) * (size_t)ic + (size_t)c];
                    trow[(size_t)x * (size_t)ic + (size_t)c] = acc;
                }
            }
        }
        /* vertical, into C x S x S */
        for (int c = 0; c < C; c++) {
            int sc = ic == 1 ? 0 : c;
            for (int y = 0; y < S; y++) {
                const double *wt = ty.w + (size_t)y * (size_t)ty.maxn;
                float *out = dst + ((size_t)c * (size_t)S + (size_t)y) * (size_t)S;
                for (int x = 0; x < S; x++) {
                    double acc = 0;
                    for (int k = 0; k < ty.n[y]; k++)
                        acc += wt[k] * tmp[((size_t)(ty.lo[y] + k) * (size_t)S + (size_t)x) *
                                               (size_t)ic + (size_t)sc];
                    out[x] = (float)acc;
                }
            }
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return rc;
}

static const char *chan_name(int c) { return c == 1 ? "gray" : c == 3 ? "RGB" : "?"; }

/* ---- the tree ---------------------------------------------------------------------------- */

typedef struct img_split {
    strlist files; /* full paths, class by class */
    int32_t *labels;
    size_t cap;
} img_split;

static void split_free(img_split *s)
{
    strlist_free(&s->files);
    free(s->labels);
    s->labels = NULL;
}

static int split_add_class(img_split *s, const char *classdir, int32_t label, eg_err *err)
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

typedef struct img_shape {
    int c, h, w; /* of every sample */
    int resize;  /* data.image_size: resize + centre-crop to h = w = resize; 0: none */
    int eval;    /* the shorter side before the centre crop (>= resize) */
    int rrc;     /* random_resized_crop: every image RGB; training images kept decoded */
} img_shape;

/* The evaluation transform of a decoded image into C x S x S floats. */
static int eval_floats(const raw_img *img, const img_shape *want, float *f, eg_err *err)
{
    eg_resample_axis ax[2];
    eg_data_eval_axes(img->w, img->h, want->eval, want->resize, ax);
    return eg_data_resample(img, ax, want->c, want->resize, f, err);
}

/* Decodes one file of a resized set (its channels checked against the set's). */
static int decode_raw(const char *path, const img_shape *want, const char *first, raw_img *img,
                      eg_err *err)
{
    char msg[400];
    if (img_decode(path, img, msg, sizeof msg) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, msg);
    if (img->c != want->c && !(img->c == 1 && want->c == 3)) {
        free(img->pix);
        img->pix = NULL;
        return eg_err_set(err, EG_EINPUT,
                          "%s: image is %s, but %s is %s; a gray set cannot hold RGB images",
                          path, chan_name(img->c), first, chan_name(want->c));
    }
    return EG_OK;
}

/* Decodes one file into a sample, C x H x W: bytes into u8 (no resize), or resized floats
 * into f (want->resize). The message names the file; `first` is the image that fixed the
 * shape. */
static int decode_sample(const char *path, const img_shape *want, const char *first, uint8_t *u8,
                         float *f, eg_err *err)
{
    char msg[400];
    size_t hw = (size_t)want->h * (size_t)want->w;
    raw_img img;
    if (want->resize) {
        int rc = decode_raw(path, want, first, &img, err);
        if (rc == EG_OK)
            rc = eval_floats(&img, want, f, err);
        free(img.pix);
        return rc;
    }
    if (img_decode(path, &img, msg, sizeof msg) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", path, msg);
    int rc = EG_OK;
    if (img.w != want->w || img.h != want->h || img.c != want->c) {
        rc = eg_err_set(err, EG_EINPUT,
                        "%s: image is %dx%d %s, but %s is %dx%d %s; all images must have "
                        "the same size and channels (or set data.image_size to resize them)",
                        path, img.w, img.h, chan_name(img.c), first, want->w, want->h,
                        chan_name(want->c));
    } else {
        for (int c = 0; c < want->c; c++)
            for (size_t p = 0; p < hw; p++)
                u8[(size_t)c * hw + p] = img.pix[p * (size_t)want->c + (size_t)c];
    }
    free(img.pix);
    return rc;
}

/* The class directories and file lists of DIR/train and DIR/test. */
static int list_tree(const char *dir, strlist *classes, img_split *tr, img_split *te, eg_err *err)
{
    char trdir[EG_PATH_MAX + 16], tedir[EG_PATH_MAX + 16], sub[EG_PATH_MAX + 512];
    snprintf(trdir, sizeof trdir, "%s/train", dir);
    snprintf(tedir, sizeof tedir, "%s/test", dir);
    struct stat st;
    if (stat(tedir, &st) != 0) { /* ImageNet's name for it */
        snprintf(sub, sizeof sub, "%s/val", dir);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            snprintf(tedir, sizeof tedir, "%s/val", dir);
    }
    if (stat(dir, &st) != 0)
        return eg_err_set(err, EG_EINPUT, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eg_err_set(err, EG_EINPUT,
                          "%s: not a directory (image_folder needs a directory with train/ and "
                          "test/)",
                          dir);
    for (int k = 0; k < 2; k++) {
        const char *p = k ? tedir : trdir;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            return eg_err_set(err, EG_EINPUT,
                              "%s: no such directory (image_folder needs DIR/train/<class>/*.png "
                              "or *.jpg and DIR/test/<class>/... or DIR/val/<class>/...)",
                              p);
    }
    strlist testdirs = {0};
    int rc = list_dir(trdir, 1, classes, err);
    if (rc == EG_OK && classes->n == 0)
        rc = eg_err_set(err, EG_EINPUT, "%s: no class subdirectories", trdir);
    if (rc == EG_OK && classes->n > 65536)
        rc = eg_err_set(err, EG_EINPUT, "%s: %zu classes is too many", trdir, classes->n);
    for (size_t k = 0; rc == EG_OK && k < classes->n; k++) {
        snprintf(sub, sizeof sub, "%s/%s", trdir, classes->v[k]);
        size_t before = tr->files.n;
        rc = split_add_class(tr, sub, (int32_t)k, err);
        if (rc == EG_OK && tr->files.n == before)
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: no image files (.png, .jpg, .jpeg) in this class directory", sub);
    }
    if (rc == EG_OK)
        rc = list_dir(tedir, 1, &testdirs, err);
    for (size_t k = 0; rc == EG_OK && k < testdirs.n; k++) {
        char *key = testdirs.v[k];
        char **hit = bsearch(&key, classes->v, classes->n, sizeof *classes->v, cmp_str);
        snprintf(sub, sizeof sub, "%s/%s", tedir, testdirs.v[k]);
        if (!hit)
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: class '%s' is not a class of %s (test/ must use the train "
                            "class names)",
                            sub, testdirs.v[k], trdir);
        else
            rc = split_add_class(te, sub, (int32_t)(hit - classes->v), err);
    }
    if (rc == EG_OK && te->files.n == 0) {
        strlist flat = {0};
        rc = list_dir(tedir, 0, &flat, err);
        if (rc == EG_OK && flat.n > 0)
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: %zu image files lie directly in this folder; sort them into "
                            "class folders named as in train/ (for ImageNet's validation set: "
                            "the devkit's labels, e.g. the usual valprep.sh)",
                            tedir, flat.n);
        else if (rc == EG_OK)
            rc = eg_err_set(err, EG_EINPUT,
                            "%s: no image files (.png, .jpg, .jpeg) under its class directories",
                            tedir);
        strlist_free(&flat);
    }
    if (rc == EG_OK && (tr->files.n > INT32_MAX / 2 || te->files.n > INT32_MAX / 2))
        rc = eg_err_set(err, EG_EINPUT, "%s: too many images", dir);
    strlist_free(&testdirs);
    return rc;
}

/* the training files: names and labels; decoded when read (memory cache: once, after the
 * partition; stream cache: per minibatch) */
typedef struct img_src {
    eg_data_src base;
    img_split tr;
    img_shape want;
    img_split te; /* a streamed test set's files (else empty) */
} img_src;

static int img_sample(const img_src *x, int32_t s, uint8_t *u8, float *f, eg_err *err)
{
    return decode_sample(x->tr.files.v[s], &x->want, x->tr.files.v[0], u8, f, err);
}

static int img_stream_sample(eg_dataset *d, eg_data_src *base, int32_t s, uint8_t *u8, float *f,
                             eg_err *err)
{
    (void)d;
    return img_sample((const img_src *)base, s, u8, f, err);
}

static int img_stream_image(eg_dataset *d, eg_data_src *base, int32_t s, eg_data_img *out,
                            eg_err *err)
{
    (void)d;
    const img_src *x = (const img_src *)base;
    return decode_raw(x->tr.files.v[s], &x->want, x->tr.files.v[0], out, err);
}

/* random_resized_crop: each wanted image decoded once; its evaluation transform goes to the
 * statistics, the decoded image itself is kept (memory cache) */
static int img_read_train_rrc(eg_dataset *d, img_src *x, eg_err *err)
{
    float *f = eg_malloc((size_t)d->dim * sizeof *f, err);
    int rc = f ? EG_OK : EG_ERUN;
    for (int32_t s = 0; rc == EG_OK && s < d->n_train; s++) {
        if (!d->want[s])
            continue;
        raw_img img = {0};
        rc = decode_raw(x->tr.files.v[s], &x->want, x->tr.files.v[0], &img, err);
        if (rc == EG_OK)
            rc = eval_floats(&img, &x->want, f, err);
        if (rc == EG_OK)
            rc = eg_data_take_f(d, s, f, err);
        if (rc == EG_OK && (d->want[s] & EG_WANT_KEEP) && d->img_train) {
            d->img_train[d->row[s]] = img; /* the dataset owns it now */
            img.pix = NULL;
        }
        free(img.pix);
    }
    free(f);
    return rc;
}

static int img_read_train(eg_dataset *d, eg_data_src *base, eg_err *err)
{
    img_src *x = (img_src *)base;
    if (x->want.rrc)
        return img_read_train_rrc(d, x, err);
    size_t dim = (size_t)d->dim;
    uint8_t *u8 = x->want.resize ? NULL : eg_malloc(dim, err);
    float *f = x->want.resize ? eg_malloc(dim * sizeof *f, err) : NULL;
    int rc = u8 || f ? EG_OK : EG_ERUN;
    for (int32_t s = 0; rc == EG_OK && s < d->n_train; s++) {
        if (!d->want[s])
            continue;
        rc = img_sample(x, s, u8, f, err);
        if (rc == EG_OK)
            rc = u8 ? eg_data_take_u8(d, s, u8, err) : eg_data_take_f(d, s, f, err);
    }
    free(u8);
    free(f);
    return rc;
}

static void img_src_free(eg_data_src *base)
{
    img_src *x = (img_src *)base;
    split_free(&x->tr);
    split_free(&x->te);
    free(x);
}

/* every test file, into the dataset's raw test set (streamed, no test set held: only
 * decoded, so that a bad file stops the run before it trains) */
static int read_test(eg_dataset *d, const img_split *te, const img_shape *want, const char *first,
                     eg_err *err)
{
    size_t dim = (size_t)d->dim;
    int rc = EG_OK;
    for (size_t i = 0; rc == EG_OK && i < te->files.n; i++) {
        if (!d->u8_test && !d->x_test) {
            raw_img img;
            rc = decode_raw(te->files.v[i], want, first, &img, err);
            if (rc == EG_OK)
                free(img.pix);
        } else {
            rc = decode_sample(te->files.v[i], want, first, d->u8_test ? d->u8_test + i * dim : NULL,
                               d->x_test ? d->x_test + i * dim : NULL, err);
        }
        d->y_test[i] = te->labels[i];
    }
    return rc;
}

static int img_test_sample(eg_dataset *d, eg_data_src *base, int32_t k, float *f, eg_err *err)
{
    (void)d;
    const img_src *x = (const img_src *)base;
    return decode_sample(x->te.files.v[k], &x->want, x->tr.files.v[0], NULL, f, err);
}

int eg_data_open_image_folder(eg_dataset *d, const char *dir, int image_size, int eval_resize,
                              int rrc, int stream, eg_err *err)
{
    strlist classes = {0};
    img_split te = {0};
    int test_streamed = stream && image_size > 0;
    img_src *src = eg_calloc(1, sizeof *src, err);
    if (!src)
        return EG_ERUN;
    src->base.read = img_read_train;
    src->base.free = img_src_free;
    src->base.sample = img_stream_sample;
    src->base.image = img_stream_image;
    d->src = &src->base;
    img_split *tr = &src->tr;
    int rc = list_tree(dir, &classes, tr, &te, err);

    /* the first train image fixes the channels, and the size unless image_size is given */
    img_shape *want = &src->want;
    *want = (img_shape){0, 0, 0, image_size > 0 ? image_size : 0, 0, 0};
    want->eval = eval_resize > want->resize ? eval_resize : want->resize;
    want->rrc = rrc && want->resize;
    if (rc == EG_OK && image_size > IMG_MAX_SIDE)
        rc = eg_err_set(err, EG_EINPUT, "data.image_size %d is too large (at most %d)", image_size,
                        IMG_MAX_SIDE);
    if (rc == EG_OK && want->eval > IMG_MAX_SIDE)
        rc = eg_err_set(err, EG_EINPUT, "data.eval_resize %d is too large (at most %d)",
                        want->eval, IMG_MAX_SIDE);
    if (rc == EG_OK && rrc && !want->resize)
        rc = eg_err_set(err, EG_EINPUT, "data.augment random_resized_crop needs data.image_size");
    if (rc == EG_OK) {
        char msg[400];
        raw_img img;
        if (img_decode(tr->files.v[0], &img, msg, sizeof msg) != 0) {
            rc = eg_err_set(err, EG_EINPUT, "%s: %s", tr->files.v[0], msg);
        } else {
            want->c = want->rrc ? 3 : img.c;
            want->h = want->resize ? want->resize : img.h;
            want->w = want->resize ? want->resize : img.w;
            free(img.pix);
            if ((size_t)want->w * (size_t)want->h * (size_t)want->c > ((size_t)1 << 26))
                rc = eg_err_set(err, EG_EINPUT, "%s: %dx%d images are too large%s",
                                tr->files.v[0], want->w, want->h,
                                want->resize ? " (data.image_size)" : "");
        }
    }
    if (rc == EG_OK) {
        d->shape = (eg_shape){want->c, want->h, want->w};
        d->dim = want->c * want->h * want->w;
        d->classes = (int)classes.n;
        d->n_train = (int)tr->files.n;
        d->n_test = (int)te.files.n;
        d->is_u8 = !want->resize;
        if (d->is_u8)
            d->u8_test = eg_data_alloc_bytes(te.files.n * (size_t)d->dim, err);
        else if (!test_streamed)
            d->x_test = eg_data_alloc_floats(te.files.n * (size_t)d->dim, err);
        d->y_train = eg_malloc(tr->files.n * sizeof *d->y_train, err);
        d->y_test = eg_malloc(te.files.n * sizeof *d->y_test, err);
        if ((!d->u8_test && !d->x_test && !test_streamed) || !d->y_train || !d->y_test)
            rc = EG_ERUN;
    }
    if (rc == EG_OK) {
        memcpy(d->y_train, tr->labels, tr->files.n * sizeof *d->y_train);
        rc = read_test(d, &te, want, tr->files.v[0], err);
    }
    if (rc == EG_OK && test_streamed) { /* the files stay with the source */
        src->te = te;
        memset(&te, 0, sizeof te);
        src->base.test = img_test_sample;
    }
    split_free(&te);
    strlist_free(&classes);
    return rc;
}
