/* check_data.c - datasets (idx, cifar10/100, image_folder with PNG and JPEG, csv, digits,
 * synthetic), partitions and minibatch augmentation. Fixtures are written into a fresh
 * temporary directory; the real MNIST / Fashion-MNIST / digits sets are check_data_real.c's. */
#include "comm.h" /* eg_comm_range: which nodes a rank holds */
#include "data.h"
#include "testutil.h"

#include <math.h>
#include <png.h>
#include <jpeglib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---- fixture helpers ------------------------------------------------------------------ */

static char *cat(char *buf, size_t len, const char *a, const char *b)
{
    int n = snprintf(buf, len, "%s/%s", a, b);
    ck_assert(n > 0 && (size_t)n < len);
    return buf;
}

/* removes a fixture tree (called when a test passed; a failing test leaves it to look at) */
static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dp = opendir(path);
        struct dirent *e;
        char sub[2048];
        while (dp && (e = readdir(dp)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        if (dp)
            closedir(dp);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void mkdir_p(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

static void write_bytes(const char *path, int gz, const void *data, size_t n)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, 0, text, strlen(text));
}

/* an idx file: nd dims, payload of prod(dims) bytes, keep = bytes of payload written */
static void write_idx(const char *path, int gz, int nd, const uint32_t *dims,
                      const uint8_t *payload, size_t keep, uint32_t magic_override)
{
    size_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= dims[k];
    if (keep > n)
        keep = n;
    uint8_t *buf = malloc(4 + 4 * (size_t)nd + keep);
    uint32_t magic = magic_override ? magic_override : 0x00000800u | (uint32_t)nd;
    for (int b = 0; b < 4; b++)
        buf[b] = (uint8_t)(magic >> (24 - 8 * b));
    for (int k = 0; k < nd; k++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * k + b] = (uint8_t)(dims[k] >> (24 - 8 * b));
    memcpy(buf + 4 + 4 * nd, payload, keep);
    write_bytes(path, gz, buf, 4 + 4 * (size_t)nd + keep);
    free(buf);
}

#define IDX_NTR 40
#define IDX_NTE 10
#define IDX_H 5
#define IDX_W 5

static uint8_t idx_pixel(int split, int i, int p)
{
    return (uint8_t)((split * 31 + i * 7 + p * 13) % 256);
}
static uint8_t idx_label(int split, int i) { return (uint8_t)((i + split) % 3); }

/* 40 train / 10 test 5x5 images, 3 classes; suffix ".gz" files when gz */
static void make_idx_set(const char *dir, int gz)
{
    mkdir_p(dir);
    const char *pre[2] = {"train", "t10k"};
    int n[2] = {IDX_NTR, IDX_NTE};
    for (int s = 0; s < 2; s++) {
        uint8_t *img = malloc((size_t)n[s] * IDX_H * IDX_W), *lab = malloc((size_t)n[s]);
        for (int i = 0; i < n[s]; i++) {
            for (int p = 0; p < IDX_H * IDX_W; p++)
                img[i * IDX_H * IDX_W + p] = idx_pixel(s, i, p);
            lab[i] = idx_label(s, i);
        }
        char path[1024];
        uint32_t di[3] = {(uint32_t)n[s], IDX_H, IDX_W}, dl[1] = {(uint32_t)n[s]};
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, pre[s], gz ? ".gz" : "");
        write_idx(path, gz, 3, di, img, (size_t)-1, 0);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, pre[s], gz ? ".gz" : "");
        write_idx(path, gz, 1, dl, lab, (size_t)-1, 0);
        free(img);
        free(lab);
    }
}

static eg_data_spec spec_of(const char *name, const char *path)
{
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    /* the test names datasets as a spec does: through the kinds table (png_folder: the old
     * name of image_folder, mapped as the spec parser maps it) */
    int k = EG_KIND_FIND(eg_data_kinds, name);
    if (k < 0 && !strcmp(name, "png_folder"))
        k = EG_DATA_IMAGE_FOLDER;
    ck_assert_msg(k >= 0, "no data kind %s", name);
    s.kind = (eg_data_kind)k;
    snprintf(s.path, sizeof s.path, "%s", path ? path : "");
    s.partition = EG_PART_IID;
    s.alpha = 0.5;
    s.batch_size = 1;
    return s;
}

/* the samples as the loaders deliver them (every one read, not normalised) */
static int load_raw(eg_dataset *d, const char *name, const char *path, int image_size, eg_err *err)
{
    eg_data_spec s = spec_of(name, path);
    s.image_size = image_size;
    memset(err, 0, sizeof *err);
    int rc = eg_data_open(d, &s, 1, 1, err);
    return rc ? rc : eg_data_read(d, NULL, 0, 1, 1, err);
}

/* training value i (sample i / dim, position i % dim) as a float: the raw byte before
 * eg_data_normalise, the float the model sees after it */
static float train_at(const eg_dataset *d, size_t i)
{
    if (!d->u8_train)
        return d->x_train[i];
    size_t k = i % (size_t)d->dim, block = (size_t)d->shape.h * (size_t)d->shape.w;
    return d->lut ? d->lut[k / block * 256 + d->u8_train[i]] : (float)d->u8_train[i];
}

static float test_at(const eg_dataset *d, size_t i)
{
    if (d->x_test)
        return d->x_test[i];
    size_t k = i % (size_t)d->dim, block = (size_t)d->shape.h * (size_t)d->shape.w;
    return d->lut ? d->lut[k / block * 256 + d->u8_test[i]] : (float)d->u8_test[i];
}

/* per-channel mean/std of the normalised training set: ~0 and ~1 */
static void check_normalised(const eg_dataset *d)
{
    size_t hw = (size_t)d->shape.h * (size_t)d->shape.w;
    for (int c = 0; c < d->shape.c; c++) {
        double s = 0, s2 = 0, n = 0;
        for (int i = 0; i < d->n_train; i++)
            for (size_t p = 0; p < hw; p++) {
                double v = train_at(d, (size_t)i * (size_t)d->dim + (size_t)c * hw + p);
                s += v;
                s2 += v * v;
                n++;
            }
        double mean = s / n, sd = sqrt(s2 / n - mean * mean);
        ck_assert_double_eq_tol(mean, 0.0, 1e-4);
        ck_assert_double_eq_tol(sd, 1.0, 1e-3);
    }
}

static int load(eg_dataset *d, const char *name, const char *path, eg_err *err)
{
    eg_data_spec s = spec_of(name, path);
    memset(err, 0, sizeof *err);
    return eg_data_load(d, &s, 1, 1, err);
}

static void expect_einput(const char *name, const char *path, const char *needle1,
                          const char *needle2)
{
    eg_dataset d;
    eg_err err;
    int rc = load(&d, name, path, &err);
    if (rc != EG_EINPUT || (needle1 && !strstr(err.msg, needle1)) ||
        (needle2 && !strstr(err.msg, needle2)))
        ck_abort_msg("loading %s %s: rc %d, msg '%s' (wanted '%s' and '%s')", name, path, rc,
                     err.msg, needle1 ? needle1 : "", needle2 ? needle2 : "");
    ck_assert_ptr_null(d.x_train);
    eg_data_free(&d);
}

/* ---- idx ---------------------------------------------------------------------------------- */

START_TEST(test_idx_raw_and_gz)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char raw[1024], gzd[1024];
    cat(raw, sizeof raw, tmp, "raw");
    cat(gzd, sizeof gzd, tmp, "gz");
    make_idx_set(raw, 0);
    make_idx_set(gzd, 1);
    eg_dataset a, b;
    eg_err err;
    ck_assert_msg(load(&a, "idx", raw, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(a.n_train, IDX_NTR);
    ck_assert_int_eq(a.n_test, IDX_NTE);
    ck_assert_int_eq(a.shape.c, 1);
    ck_assert_int_eq(a.shape.h, IDX_H);
    ck_assert_int_eq(a.shape.w, IDX_W);
    ck_assert_int_eq(a.dim, IDX_H * IDX_W);
    ck_assert_int_eq(a.classes, 3);
    ck_assert_int_eq(a.node_blocks, 0);
    for (int i = 0; i < IDX_NTR; i++)
        ck_assert_int_eq(a.y_train[i], idx_label(0, i));
    for (int i = 0; i < IDX_NTE; i++)
        ck_assert_int_eq(a.y_test[i], idx_label(1, i));
    check_normalised(&a);
    /* the exact affine map, with mean/std computed here from the raw pixels */
    double s = 0, s2 = 0, n = IDX_NTR * IDX_H * IDX_W;
    for (int i = 0; i < IDX_NTR; i++)
        for (int p = 0; p < IDX_H * IDX_W; p++) {
            s += idx_pixel(0, i, p);
            s2 += (double)idx_pixel(0, i, p) * idx_pixel(0, i, p);
        }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    ck_assert_float_eq_tol(train_at(&a, 3 * a.dim + 7), (idx_pixel(0, 3, 7) - mean) / sd, 1e-5);
    ck_assert_float_eq_tol(test_at(&a, 2 * (size_t)a.dim + 11), (idx_pixel(1, 2, 11) - mean) / sd,
                           1e-5);
    ck_assert_ptr_nonnull(strstr(a.desc, "40 train / 10 test, 1x5x5, 3 classes"));

    ck_assert_msg(load(&b, "idx", gzd, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(b.n_train, IDX_NTR);
    ck_assert_mem_eq(a.u8_train, b.u8_train, IDX_NTR * IDX_H * IDX_W); /* bytes, */
    ck_assert_mem_eq(a.lut, b.lut, 256 * sizeof(float));                /* same floats */
    ck_assert_mem_eq(a.u8_test, b.u8_test, IDX_NTE * IDX_H * IDX_W);
    ck_assert_mem_eq(a.y_test, b.y_test, sizeof(int32_t) * IDX_NTE);
    eg_data_free(&a);
    eg_data_free(&b);
    eg_data_free(&b); /* twice is safe */
    rm_tree(tmp);
}
END_TEST

START_TEST(test_idx_errors)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    uint8_t payload[IDX_NTR * IDX_H * IDX_W] = {0};
    uint32_t di[3] = {IDX_NTR, IDX_H, IDX_W};

    /* truncated raw images file */
    cat(dir, sizeof dir, tmp, "trunc");
    make_idx_set(dir, 0);
    cat(path, sizeof path, dir, "train-images-idx3-ubyte");
    write_idx(path, 0, 3, di, payload, 100, 0);
    expect_einput("idx", dir, path, "truncated");

    /* truncated gzip stream (cut in the middle of the compressed bytes) */
    cat(dir, sizeof dir, tmp, "truncgz");
    make_idx_set(dir, 1);
    cat(path, sizeof path, dir, "train-images-idx3-ubyte.gz");
    {
        FILE *f = fopen(path, "rb");
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        ck_assert_uint_gt(n, 20);
        write_bytes(path, 0, buf, n / 2);
    }
    expect_einput("idx", dir, path, "truncated");

    /* bad magic */
    cat(dir, sizeof dir, tmp, "magic");
    make_idx_set(dir, 0);
    cat(path, sizeof path, dir, "t10k-labels-idx1-ubyte");
    uint32_t dl[1] = {IDX_NTE};
    write_idx(path, 0, 1, dl, payload, (size_t)-1, 0x12345678u);
    expect_einput("idx", dir, path, "not an idx file");

    /* labels file with fewer labels than images */
    cat(dir, sizeof dir, tmp, "count");
    make_idx_set(dir, 0);
    cat(path, sizeof path, dir, "train-labels-idx1-ubyte");
    uint32_t dl2[1] = {IDX_NTR - 1};
    write_idx(path, 0, 1, dl2, payload, (size_t)-1, 0);
    expect_einput("idx", dir, path, "39 labels");

    /* trailing garbage */
    cat(dir, sizeof dir, tmp, "long");
    make_idx_set(dir, 0);
    cat(path, sizeof path, dir, "t10k-labels-idx1-ubyte");
    {
        uint8_t buf[8 + IDX_NTE + 3] = {0, 0, 8, 1, 0, 0, 0, IDX_NTE};
        write_bytes(path, 0, buf, sizeof buf);
    }
    expect_einput("idx", dir, path, "longer than");

    /* a missing file, a missing directory, no path */
    cat(dir, sizeof dir, tmp, "missing");
    make_idx_set(dir, 0);
    cat(path, sizeof path, dir, "t10k-images-idx3-ubyte");
    ck_assert_int_eq(unlink(path), 0);
    expect_einput("idx", dir, dir, "t10k-images-idx3-ubyte");
    cat(dir, sizeof dir, tmp, "nowhere");
    expect_einput("idx", dir, dir, NULL);
    expect_einput("idx", "", "data.path", NULL);
    rm_tree(tmp);
}
END_TEST

START_TEST(test_idx4_channels)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    cat(dir, sizeof dir, tmp, "idx4");
    mkdir_p(dir);
    const char *pre[2] = {"train", "test"}; /* "test-" is accepted for "t10k-" */
    int n[2] = {12, 4};
    for (int s = 0; s < 2; s++) {
        uint8_t img[12 * 2 * 4 * 4], lab[12];
        for (int i = 0; i < n[s]; i++) {
            for (int p = 0; p < 16; p++) {
                img[(i * 2 + 0) * 16 + p] = (uint8_t)(10 + p + i);         /* channel 0: dark */
                img[(i * 2 + 1) * 16 + p] = (uint8_t)(200 + (p * i) % 50); /* channel 1 */
            }
            lab[i] = (uint8_t)(i % 2 ? 4 : 1);
        }
        uint32_t di[4] = {(uint32_t)n[s], 2, 4, 4}, dl[1] = {(uint32_t)n[s]};
        snprintf(path, sizeof path, "%s/%s-images-idx4-ubyte", dir, pre[s]);
        write_idx(path, 0, 4, di, img, (size_t)-1, 0);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, pre[s]);
        write_idx(path, 1, 1, dl, lab, (size_t)-1, 0);
    }
    eg_dataset d;
    eg_err err;
    ck_assert_msg(load(&d, "idx", dir, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.shape.c, 2);
    ck_assert_int_eq(d.shape.h, 4);
    ck_assert_int_eq(d.shape.w, 4);
    ck_assert_int_eq(d.classes, 5); /* max label + 1 */
    check_normalised(&d);           /* per channel: channel 1 is not centred on channel 0 */
    eg_data_free(&d);
    rm_tree(tmp);
}
END_TEST

/* EXPGRAPH_DATA comes first when looking for a named dataset */
START_TEST(test_locate_env)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], found[1024];
    cat(dir, sizeof dir, tmp, "mnist");
    make_idx_set(dir, 1);
    ck_assert_int_eq(setenv("EXPGRAPH_DATA", tmp, 1), 0);
    ck_assert_int_eq(eg_data_locate(EG_DATA_MNIST, found, sizeof found), 0);
    ck_assert_str_eq(found, dir);
    eg_dataset d;
    eg_err err;
    ck_assert_msg(load(&d, "mnist", NULL, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train, IDX_NTR);
    ck_assert_ptr_nonnull(strstr(d.desc, dir));
    eg_data_free(&d);
    ck_assert_int_eq(eg_data_locate(EG_DATA_IDX, found, sizeof found), -1);
    unsetenv("EXPGRAPH_DATA");
    rm_tree(tmp);
}
END_TEST

/* ---- png_folder ------------------------------------------------------------------------------ */

/* color: PNG_COLOR_TYPE_*; pixel value v(x, y, channel) from a seed; depth 8 or 16 */
static void write_png(const char *path, int w, int h, int color, int depth, int seed)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    int ch = color == PNG_COLOR_TYPE_GRAY         ? 1
             : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
             : color == PNG_COLOR_TYPE_RGB        ? 3
                                                  : 4;
    int bpc = depth / 8;
    png_write_info(png, info);
    uint8_t *row = malloc((size_t)w * (size_t)ch * (size_t)bpc);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                int v = (seed * 17 + x * 5 + y * 11 + c * 60) % 256;
                uint8_t *p = row + ((size_t)x * (size_t)ch + (size_t)c) * (size_t)bpc;
                p[0] = (uint8_t)v;
                if (bpc == 2)
                    p[1] = (uint8_t)(255 - v);
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    ck_assert_int_eq(fclose(f), 0);
}

static const char *png_classes[3] = {"cat", "ant", "bee"}; /* sorted: ant bee cat */

static void make_png_tree(const char *dir, int color, int depth)
{
    char sub[1024], path[1100];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 3; k++) {
            snprintf(sub, sizeof sub, "%s/%s/%s", dir, s ? "test" : "train", png_classes[k]);
            mkdir_p(sub);
            for (int i = 0; i < (s ? 4 : 10); i++) {
                snprintf(path, sizeof path, "%s/img%02d.png", sub, 9 - i);
                write_png(path, 6, 6, color, depth, k * 100 + i + s * 50);
            }
        }
    snprintf(path, sizeof path, "%s/train/README.txt", dir); /* ignored */
    write_text(path, "not an image\n");
    snprintf(path, sizeof path, "%s/train/ant/notes.txt", dir); /* ignored */
    write_text(path, "not an image\n");
}

START_TEST(test_png_gray_rgb)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    struct {
        const char *name;
        int color, depth, channels;
    } v[] = {
        {"gray", PNG_COLOR_TYPE_GRAY, 8, 1},
        {"rgb", PNG_COLOR_TYPE_RGB, 8, 3},
        {"rgba", PNG_COLOR_TYPE_RGB_ALPHA, 8, 3},
        {"graya16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 1},
    };
    for (size_t t = 0; t < sizeof v / sizeof v[0]; t++) {
        char dir[1024];
        cat(dir, sizeof dir, tmp, v[t].name);
        make_png_tree(dir, v[t].color, v[t].depth);
        eg_dataset d;
        eg_err err;
        ck_assert_msg(load(&d, "png_folder", dir, &err) == EG_OK, "%s: %s", v[t].name, err.msg);
        ck_assert_int_eq(d.n_train, 30);
        ck_assert_int_eq(d.n_test, 12);
        ck_assert_int_eq(d.classes, 3);
        ck_assert_int_eq(d.shape.c, v[t].channels);
        ck_assert_int_eq(d.shape.h, 6);
        ck_assert_int_eq(d.shape.w, 6);
        /* classes sorted by name: ant = 0 (written as k = 1), bee = 1, cat = 2 */
        for (int i = 0; i < 10; i++) {
            ck_assert_int_eq(d.y_train[i], 0);
            ck_assert_int_eq(d.y_train[10 + i], 1);
            ck_assert_int_eq(d.y_train[20 + i], 2);
        }
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(d.y_test[4 + i], 1);
        check_normalised(&d);
        /* channels first: in each channel, the normalised value grows with x inside a row
         * (the pixel pattern is 5x + ..., mod 256, first sample "ant/img00" = seed 109) */
        int seed = 100 + 9; /* files sorted: img00 was written as i = 9 */
        for (int c = 0; c < d.shape.c; c++) {
            int a = (seed * 17 + 0 * 5 + c * 60) % 256, b = (seed * 17 + 1 * 5 + c * 60) % 256;
            float fa = train_at(&d, (size_t)c * 36 + 0), fb = train_at(&d, (size_t)c * 36 + 1);
            ck_assert_msg((a < b) == (fa < fb), "%s channel %d: order of pixels lost", v[t].name,
                          c);
        }
        eg_data_free(&d);
    }
    rm_tree(tmp);
}
END_TEST

START_TEST(test_png_errors)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1200];

    /* truncated PNG */
    cat(dir, sizeof dir, tmp, "trunc");
    make_png_tree(dir, PNG_COLOR_TYPE_GRAY, 8);
    snprintf(path, sizeof path, "%s/train/bee/img03.png", dir);
    {
        FILE *f = fopen(path, "rb");
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        write_bytes(path, 0, buf, n - 20);
    }
    expect_einput("png_folder", dir, path, NULL);

    /* a text file named .png */
    cat(dir, sizeof dir, tmp, "text");
    make_png_tree(dir, PNG_COLOR_TYPE_GRAY, 8);
    snprintf(path, sizeof path, "%s/test/cat/img07.png", dir);
    write_text(path, "hello, I am not a picture\n");
    expect_einput("png_folder", dir, path, "not a PNG");

    /* an odd-sized image */
    cat(dir, sizeof dir, tmp, "odd");
    make_png_tree(dir, PNG_COLOR_TYPE_GRAY, 8);
    snprintf(path, sizeof path, "%s/train/cat/img05.png", dir);
    write_png(path, 7, 6, PNG_COLOR_TYPE_GRAY, 8, 1);
    expect_einput("png_folder", dir, path, "7x6");

    /* an RGB image among gray ones */
    cat(dir, sizeof dir, tmp, "mixed");
    make_png_tree(dir, PNG_COLOR_TYPE_GRAY, 8);
    snprintf(path, sizeof path, "%s/test/ant/img09.png", dir);
    write_png(path, 6, 6, PNG_COLOR_TYPE_RGB, 8, 1);
    expect_einput("png_folder", dir, path, "RGB");

    /* a test class that train does not have */
    cat(dir, sizeof dir, tmp, "class");
    make_png_tree(dir, PNG_COLOR_TYPE_GRAY, 8);
    snprintf(path, sizeof path, "%s/test/zebra", dir);
    mkdir_p(path);
    expect_einput("png_folder", dir, "zebra", NULL);

    /* no test directory */
    cat(dir, sizeof dir, tmp, "notest");
    snprintf(path, sizeof path, "%s/train/a", dir);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/train/a/x.png", dir);
    write_png(path, 6, 6, PNG_COLOR_TYPE_GRAY, 8, 1);
    snprintf(path, sizeof path, "%s/test", dir);
    expect_einput("png_folder", dir, path, NULL);
    rm_tree(tmp);
}
END_TEST

/* ---- cifar10 / cifar100 ------------------------------------------------------------------ */

/* raw pixel (channel c, row y, column x) of record r of file f */
static uint8_t cifar_px(int f, int r, int c, int y, int x)
{
    return (uint8_t)((f * 41 + r * 13 + c * 71 + y * 5 + x * 3) % 256);
}

/* writes n records; label_bytes 1 (label = lab(f, r)) or 2 (coarse, fine) */
static void write_cifar(const char *path, int f, int n, int label_bytes, const uint8_t *labels,
                        const uint8_t *coarse)
{
    size_t rec = (size_t)label_bytes + 3072;
    uint8_t *buf = malloc(rec * (size_t)(n ? n : 1));
    for (int r = 0; r < n; r++) {
        uint8_t *p = buf + (size_t)r * rec;
        if (label_bytes == 2)
            *p++ = coarse[r];
        *p++ = labels[r];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    *p++ = cifar_px(f, r, c, y, x);
    }
    write_bytes(path, 0, buf, rec * (size_t)n);
    free(buf);
}

static const int c10_counts[6] = {3, 4, 2, 5, 1, 4}; /* data_batch_1..5, test_batch */
static uint8_t c10_label(int f, int r) { return (uint8_t)((f * 3 + r * 7) % 10); }

static void make_cifar10(const char *dir)
{
    mkdir_p(dir);
    char path[1100];
    for (int f = 0; f < 6; f++) {
        uint8_t lab[8];
        for (int r = 0; r < c10_counts[f]; r++)
            lab[r] = c10_label(f, r);
        if (f < 5)
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, f + 1);
        else
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        write_cifar(path, f, c10_counts[f], 1, lab, NULL);
    }
}

START_TEST(test_cifar10)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], parent[1024];
    cat(dir, sizeof dir, tmp, "c10");
    make_cifar10(dir);
    eg_dataset d;
    eg_err err;
    memset(&d, 0, sizeof d);
    /* raw: records in file order, the 3072 bytes as C x H x W (R plane, G, B; row-major) */
    ck_assert_msg(load_raw(&d, "cifar10", dir, 0, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train, 15);
    ck_assert_int_eq(d.n_test, 4);
    ck_assert_int_eq(d.classes, 10);
    ck_assert_int_eq(d.shape.c, 3);
    ck_assert_int_eq(d.shape.h, 32);
    ck_assert_int_eq(d.shape.w, 32);
    ck_assert_int_eq(d.dim, 3072);
    int s = 0;
    for (int f = 0; f < 5; f++)
        for (int r = 0; r < c10_counts[f]; r++, s++) {
            ck_assert_int_eq(d.y_train[s], c10_label(f, r));
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        ck_assert_float_eq(train_at(&d, (size_t)s * 3072 + (c * 32 + y) * 32 + x),
                                           (float)cifar_px(f, r, c, y, x));
        }
    for (int r = 0; r < 4; r++) {
        ck_assert_int_eq(d.y_test[r], c10_label(5, r));
        /* green channel, row 7, column 30 */
        ck_assert_float_eq(test_at(&d, (size_t)r * 3072 + 1024 + 7 * 32 + 30),
                           (float)cifar_px(5, r, 1, 7, 30));
    }
    eg_data_free(&d);

    /* through eg_data_load: normalised per channel (the channels have different means),
     * the black value is what a raw 0 became; the parent folder layout works too */
    cat(parent, sizeof parent, tmp, "parent");
    char sub[1100];
    cat(sub, sizeof sub, parent, "cifar-10-batches-bin");
    make_cifar10(sub);
    ck_assert_msg(load(&d, "cifar10", parent, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train, 15);
    check_normalised(&d);
    ck_assert_ptr_nonnull(d.black);
    for (int c = 0; c < 3; c++) {
        double sum = 0, sum2 = 0, n = 15 * 1024;
        for (int f = 0, k = 0; f < 5; f++)
            for (int r = 0; r < c10_counts[f]; r++, k++)
                for (int p = 0; p < 1024; p++) {
                    double v = cifar_px(f, r, c, p / 32, p % 32);
                    sum += v;
                    sum2 += v * v;
                }
        double m = sum / n, sd = sqrt(sum2 / n - m * m);
        ck_assert_float_eq_tol(d.black[c], (float)(-m / sd), 1e-5);
        ck_assert_float_eq_tol(train_at(&d, c * 1024 + 33), (float)((cifar_px(0, 0, c, 1, 1) - m) / sd),
                               1e-5);
    }
    ck_assert_ptr_nonnull(strstr(d.desc, "cifar10: 15 train / 4 test, 3x32x32, 10 classes"));
    eg_data_free(&d);
    rm_tree(tmp);
}
END_TEST

START_TEST(test_cifar100)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    cat(dir, sizeof dir, tmp, "cifar-100-binary");
    mkdir_p(dir);
    uint8_t fine[12], coarse[12];
    for (int r = 0; r < 12; r++) {
        fine[r] = (uint8_t)(99 - r * 8);
        coarse[r] = (uint8_t)(r % 20);
    }
    cat(path, sizeof path, dir, "train.bin");
    write_cifar(path, 0, 12, 2, fine, coarse);
    cat(path, sizeof path, dir, "test.bin");
    write_cifar(path, 1, 5, 2, fine + 7, coarse + 7);
    eg_dataset d;
    eg_err err;
    memset(&d, 0, sizeof d);
    ck_assert_msg(load_raw(&d, "cifar100", tmp, 0, &err) == EG_OK, "%s", err.msg); /* parent */
    ck_assert_int_eq(d.n_train, 12);
    ck_assert_int_eq(d.n_test, 5);
    ck_assert_int_eq(d.classes, 100);
    for (int r = 0; r < 12; r++)
        ck_assert_int_eq(d.y_train[r], fine[r]); /* the fine labels */
    for (int r = 0; r < 5; r++)
        ck_assert_int_eq(d.y_test[r], fine[7 + r]);
    /* pixels after the two label bytes: blue, last row, last column */
    ck_assert_float_eq(train_at(&d, 5 * 3072 + 2048 + 31 * 32 + 31), (float)cifar_px(0, 5, 2, 31, 31));
    ck_assert_float_eq(test_at(&d, 2 * 3072), (float)cifar_px(1, 2, 0, 0, 0));
    eg_data_free(&d);
    ck_assert_msg(load(&d, "cifar100", dir, &err) == EG_OK, "%s", err.msg);
    check_normalised(&d);
    eg_data_free(&d);

    /* a fine label of 100, then a coarse label of 20 */
    fine[3] = 100;
    cat(path, sizeof path, dir, "train.bin");
    write_cifar(path, 0, 12, 2, fine, coarse);
    expect_einput("cifar100", dir, path, "record 4 of 12 has fine label 100, outside 0..99");
    fine[3] = 5;
    coarse[11] = 20;
    write_cifar(path, 0, 12, 2, fine, coarse);
    expect_einput("cifar100", dir, path, "record 12 of 12 has coarse label 20");
    /* a CIFAR-10 file given as CIFAR-100: 3073-byte records are not 3074-byte ones */
    coarse[11] = 1;
    write_cifar(path, 0, 12, 1, fine, NULL);
    expect_einput("cifar100", dir, path, "not a whole number of 3074-byte records");
    rm_tree(tmp);
}
END_TEST

static void cut_file(const char *path, long keep_or_minus)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    long keep = keep_or_minus < 0 ? n + keep_or_minus : keep_or_minus;
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    write_bytes(path, 0, buf, (size_t)keep);
    free(buf);
}

START_TEST(test_cifar_errors)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];

    /* a missing batch file is named */
    cat(dir, sizeof dir, tmp, "missing");
    make_cifar10(dir);
    cat(path, sizeof path, dir, "data_batch_4.bin");
    ck_assert_int_eq(unlink(path), 0);
    expect_einput("cifar10", dir, path, "data_batch_1.bin .. data_batch_5.bin and test_batch.bin");
    /* no CIFAR files at all, a directory that does not exist, a file */
    cat(dir, sizeof dir, tmp, "empty");
    mkdir_p(dir);
    cat(path, sizeof path, dir, "data_batch_1.bin");
    expect_einput("cifar10", dir, path, "No such file");
    cat(dir, sizeof dir, tmp, "nowhere");
    expect_einput("cifar10", dir, dir, "No such file");
    cat(dir, sizeof dir, tmp, "missing");
    cat(path, sizeof path, dir, "test_batch.bin");
    expect_einput("cifar10", path, path, "not a directory");

    /* truncated: a record cut short, the expected count named */
    cat(dir, sizeof dir, tmp, "trunc");
    make_cifar10(dir);
    cat(path, sizeof path, dir, "test_batch.bin");
    cut_file(path, -100);
    expect_einput("cifar10", dir, path, "3 records and 2973 bytes; as distributed the file holds 10000 records");
    /* an empty file */
    cut_file(path, 0);
    expect_einput("cifar10", dir, path, "0 bytes is not a whole number of 3073-byte records");

    /* a label of 10 in record 2 of data_batch_2.bin */
    cat(dir, sizeof dir, tmp, "label");
    make_cifar10(dir);
    cat(path, sizeof path, dir, "data_batch_2.bin");
    uint8_t lab[4] = {1, 10, 2, 3};
    write_cifar(path, 1, 4, 1, lab, NULL);
    expect_einput("cifar10", dir, path, "record 2 of 4 has label 10, outside 0..9");
    rm_tree(tmp);
}
END_TEST

/* ---- image_folder: JPEG, mixed, resizing ---------------------------------------------------- */

/* a smooth pattern (JPEG keeps it within a few levels at quality 100) */
static int smooth_px(int x, int y, int c, int seed) { return 30 + (seed * 7 + x * 9 + y * 5 + c * 40) % 180; }

/* comps 1 (gray) or 3 (RGB -> YCbCr 4:4:4); quality 100 */
static void write_jpeg(const char *path, int w, int h, int comps, int seed)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 100, TRUE);
    for (int k = 0; k < ci.num_components; k++)
        ci.comp_info[k].h_samp_factor = ci.comp_info[k].v_samp_factor = 1;
    jpeg_start_compress(&ci, TRUE);
    uint8_t *row = malloc((size_t)w * (size_t)comps);
    while (ci.next_scanline < ci.image_height) {
        int y = (int)ci.next_scanline;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++)
                row[x * comps + c] = (uint8_t)smooth_px(x, y, c, seed);
        JSAMPROW rp = row;
        jpeg_write_scanlines(&ci, &rp, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    ck_assert_int_eq(fclose(f), 0);
}

/* an 8-bit PNG whose pixel is fn(x, y, c) */
static void write_png_fn(const char *path, int w, int h, int comps, int (*fn)(int, int, int, int),
                         int seed)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 comps == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    uint8_t *row = malloc((size_t)w * (size_t)comps);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++)
                row[x * comps + c] = (uint8_t)fn(x, y, c, seed);
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    ck_assert_int_eq(fclose(f), 0);
}

/* DIR/{train,test}/{a,b}/: JPEGs (and, with mixed, every other file a PNG) of w x h */
static void make_jpeg_tree(const char *dir, int comps, int mixed, int w, int h)
{
    char sub[1024], path[1100];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            snprintf(sub, sizeof sub, "%s/%s/%s", dir, s ? "test" : "train", k ? "b" : "a");
            mkdir_p(sub);
            for (int i = 0; i < (s ? 2 : 4); i++) {
                int seed = k * 10 + i + s * 5;
                if (mixed && i % 2) {
                    snprintf(path, sizeof path, "%s/%02d.PNG", sub, i);
                    write_png_fn(path, w, h, comps, smooth_px, seed);
                } else {
                    snprintf(path, sizeof path, "%s/%02d.%s", sub, i, i == 2 ? "jpeg" : "jpg");
                    write_jpeg(path, w, h, comps, seed);
                }
            }
        }
}

START_TEST(test_jpeg_folder)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    for (int v = 0; v < 4; v++) {
        int comps = v % 2 ? 3 : 1, mixed = v >= 2;
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/v%d", tmp, v);
        make_jpeg_tree(dir, comps, mixed, 16, 12);
        eg_dataset d;
        eg_err err;
        memset(&d, 0, sizeof d);
        ck_assert_msg(load_raw(&d, "image_folder", dir, 0, &err) == EG_OK, "%s", err.msg);
        ck_assert_int_eq(d.n_train, 8);
        ck_assert_int_eq(d.n_test, 4);
        ck_assert_int_eq(d.classes, 2);
        ck_assert_int_eq(d.shape.c, comps);
        ck_assert_int_eq(d.shape.h, 12);
        ck_assert_int_eq(d.shape.w, 16);
        /* sample 4 + i is train/b/0i; every pixel within 3 levels of what was written (JPEG
         * at quality 100 without subsampling), PNGs exactly */
        for (int i = 0; i < 4; i++) {
            ck_assert_int_eq(d.y_train[i], 0);
            ck_assert_int_eq(d.y_train[4 + i], 1);
            int seed = 10 + i, png = mixed && i % 2;
            size_t x = (size_t)(4 + i) * (size_t)d.dim;
            float worst = 0;
            for (int c = 0; c < comps; c++)
                for (int y = 0; y < 12; y++)
                    for (int xx = 0; xx < 16; xx++) {
                        float e = fabsf(train_at(&d, x + (size_t)((c * 12 + y) * 16 + xx)) -
                                        (float)smooth_px(xx, y, c, seed));
                        worst = e > worst ? e : worst;
                    }
            ck_assert_msg(worst <= (png ? 0.0f : 3.0f), "variant %d sample %d: off by %g", v, i,
                          (double)worst);
        }
        eg_data_free(&d);
        /* the old name and the new one, through eg_data_load */
        ck_assert_msg(load(&d, v % 2 ? "image_folder" : "png_folder", dir, &err) == EG_OK, "%s",
                      err.msg);
        check_normalised(&d);
        eg_data_free(&d);
    }
    rm_tree(tmp);
}
END_TEST

static int ramp_x(int x, int y, int c, int seed) { return x * 3 + c * 10 + seed * 0 + y * 0; }
static int ramp_y(int x, int y, int c, int seed) { return y * 4 + c + seed * 0 + x * 0; }
static int flat_px(int x, int y, int c, int seed) { return seed + c * 20 + x * 0 + y * 0; }

START_TEST(test_image_size)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    cat(dir, sizeof dir, tmp, "sizes");
    const char *files[] = {"train/a/0.png", "train/a/1.png", "train/b/2.png", "train/b/3.jpg",
                           "test/a/4.png", "test/b/5.png"};
    for (int k = 0; k < 6; k++) {
        char sub[1100];
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        snprintf(sub, sizeof sub, "%s", path);
        *strrchr(sub, '/') = 0;
        mkdir_p(sub);
    }
    /* 0: 64 wide, 32 high, a horizontal ramp: shrink by 4 to 16x8... then image_size 8 keeps
     *    the centre 8 columns; 1: 16 wide, 32 high, vertical ramp (shrink by 2, crop rows);
     *    2: 4x4 constant (enlarged); 3: a 20x12 RGB JPEG; 4, 5: 8x8 and 9x13 constants */
    snprintf(path, sizeof path, "%s/%s", dir, files[0]);
    write_png_fn(path, 64, 32, 3, ramp_x, 0);
    snprintf(path, sizeof path, "%s/%s", dir, files[1]);
    write_png_fn(path, 16, 32, 1, ramp_y, 0); /* gray in an RGB set */
    snprintf(path, sizeof path, "%s/%s", dir, files[2]);
    write_png_fn(path, 4, 4, 3, flat_px, 77);
    snprintf(path, sizeof path, "%s/%s", dir, files[3]);
    write_jpeg(path, 20, 12, 3, 3);
    snprintf(path, sizeof path, "%s/%s", dir, files[4]);
    write_png_fn(path, 8, 8, 3, flat_px, 5);
    snprintf(path, sizeof path, "%s/%s", dir, files[5]);
    write_png_fn(path, 9, 13, 3, flat_px, 9);

    /* without image_size the sizes clash: the odd file is named (the test set is read
     * first: the training files only once the partition says which this rank needs) */
    char odd[1100];
    snprintf(odd, sizeof odd, "%s/%s", dir, files[4]);
    expect_einput("image_folder", dir, odd, "all images must have the same size");

    eg_dataset d;
    eg_err err;
    memset(&d, 0, sizeof d);
    ck_assert_msg(load_raw(&d, "image_folder", dir, 8, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.shape.c, 3);
    ck_assert_int_eq(d.shape.h, 8);
    ck_assert_int_eq(d.shape.w, 8);
    ck_assert_int_eq(d.n_train, 4);
    ck_assert_int_eq(d.n_test, 2);
    /* sample 0: 64x32 -> 16x8 (factor 4), columns 4..11 kept. Output column i is resized
     * column i + 4, centred on source x = (i + 4.5) * 4 - 0.5; a linear ramp 3x stays
     * linear under the symmetric triangle filter: 3 * (4i + 17.5) (+ 10c) */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 8; y++)
            for (int i = 0; i < 8; i++)
                ck_assert_float_eq_tol(train_at(&d, (c * 8 + y) * 8 + i), 3.0f * (4 * i + 17.5f) + 10 * c,
                                       1e-3);
    /* sample 1: 16x32 gray -> 8x16 (factor 2), rows 4..11 kept, row i centred on source
     * y = (i + 4.5) * 2 - 0.5 -> 4 * (2i + 8.5); the same in all three channels */
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 8; i++)
            for (int x = 0; x < 8; x++)
                ck_assert_float_eq_tol(train_at(&d, 3072 / 16 + (c * 8 + i) * 8 + x),
                                       4.0f * (2 * i + 8.5f), 1e-3);
    /* constants stay constant, enlarged or shrunk */
    const float *s2 = d.x_train + 2 * 192; /* resized: floats */
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 64; p++) {
            ck_assert_float_eq_tol(s2[c * 64 + p], 77.0f + 20 * c, 1e-3);
            ck_assert_float_eq_tol(d.x_test[c * 64 + p], 5.0f + 20 * c, 1e-3);
            ck_assert_float_eq_tol(d.x_test[192 + c * 64 + p], 9.0f + 20 * c, 1e-3);
        }
    eg_data_free(&d);

    /* enlarging: a 4x4 ramp to 8x8 is plain bilinear, edges clamped */
    char up[1024];
    cat(up, sizeof up, tmp, "up");
    snprintf(path, sizeof path, "%s/train/a", up);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/test/a", up);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/train/a/0.png", up);
    write_png_fn(path, 4, 4, 1, ramp_x, 0);
    snprintf(path, sizeof path, "%s/test/a/0.png", up);
    write_png_fn(path, 4, 4, 1, ramp_x, 0);
    ck_assert_msg(load_raw(&d, "image_folder", up, 8, &err) == EG_OK, "%s", err.msg);
    /* output column i samples x = i / 2 - 0.25 (clamped to 0 and 3) of the ramp 3x */
    float want[8] = {0, 0.75f, 2.25f, 3.75f, 5.25f, 6.75f, 8.25f, 9};
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(train_at(&d, 3 * 8 + i), want[i], 1e-4);
    eg_data_free(&d);

    /* an RGB image in a gray set cannot be made gray */
    snprintf(path, sizeof path, "%s/test/a/0.png", up);
    write_png_fn(path, 4, 4, 3, ramp_x, 0);
    eg_data_spec s = spec_of("image_folder", up);
    s.image_size = 8;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(eg_data_load(&d, &s, 1, 1, &err), EG_EINPUT);
    rm_tree(tmp);
}
END_TEST

START_TEST(test_jpeg_errors)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];

    /* truncated in the middle of the image data: libjpeg's "Premature end of JPEG file"
     * warning (it would fill the rest with grey) is an error naming the file */
    cat(dir, sizeof dir, tmp, "trunc");
    make_jpeg_tree(dir, 3, 0, 40, 40);
    snprintf(path, sizeof path, "%s/train/b/01.jpg", dir);
    cut_file(path, 700);
    expect_einput("image_folder", dir, path,
                  "corrupt or truncated JPEG (libjpeg: Premature end of JPEG file)");
    /* cut just before the end-of-image marker: every row decodes, finishing fails */
    cat(dir, sizeof dir, tmp, "noeoi");
    make_jpeg_tree(dir, 1, 0, 16, 16);
    snprintf(path, sizeof path, "%s/test/a/00.jpg", dir);
    cut_file(path, -2);
    expect_einput("image_folder", dir, path, "Premature end of JPEG file");
    /* cut inside the headers */
    cat(dir, sizeof dir, tmp, "header");
    make_jpeg_tree(dir, 1, 0, 16, 16);
    snprintf(path, sizeof path, "%s/train/a/00.jpg", dir);
    cut_file(path, 30);
    expect_einput("image_folder", dir, path, "corrupt or truncated JPEG (libjpeg: ");
    /* garbage after the start-of-image marker */
    cat(dir, sizeof dir, tmp, "corrupt");
    make_jpeg_tree(dir, 3, 1, 16, 16);
    snprintf(path, sizeof path, "%s/test/b/00.jpg", dir);
    {
        uint8_t junk[300];
        junk[0] = 0xFF, junk[1] = 0xD8, junk[2] = 0xFF, junk[3] = 0xDB; /* SOI, DQT */
        for (int k = 4; k < 300; k++)
            junk[k] = (uint8_t)(k * 37 + 11);
        write_bytes(path, 0, junk, sizeof junk);
    }
    expect_einput("image_folder", dir, path, "corrupt or truncated JPEG (libjpeg: ");
    /* a text file named .jpg */
    cat(dir, sizeof dir, tmp, "text");
    make_jpeg_tree(dir, 3, 0, 16, 16);
    snprintf(path, sizeof path, "%s/train/a/02.jpeg", dir);
    write_text(path, "not a picture\n");
    expect_einput("image_folder", dir, path, "not a PNG or JPEG file");
    /* a class with only non-image files */
    cat(dir, sizeof dir, tmp, "noimg");
    make_jpeg_tree(dir, 3, 0, 16, 16);
    snprintf(path, sizeof path, "%s/train/c", dir);
    mkdir_p(path);
    char txt[1200];
    snprintf(txt, sizeof txt, "%s/readme.txt", path);
    write_text(txt, "x\n");
    expect_einput("image_folder", dir, path, "no image files (.png, .jpg, .jpeg)");
    rm_tree(tmp);
}
END_TEST

/* ---- csv ------------------------------------------------------------------------------------- */

START_TEST(test_csv_good)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char path[1024], dir[1024];
    eg_dataset d;
    eg_err err;

    /* a single file with a header: 10 rows -> rows 4 and 9 are the test set */
    cat(path, sizeof path, tmp, "one.csv");
    write_text(path, "label,a,b,c\n"
                     "0, 1.5, 2, 7\n1,2.5,3,7\r\n2,3.5,1e1,7\n0,4,5,7\n1,5,6,7\n"
                     "\n"
                     "2,6,7,7\n0,7,8,7\n1,8,9,7\n2,9,10,7\n1.0,10,11,7\n");
    ck_assert_msg(load(&d, "csv", path, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train, 8);
    ck_assert_int_eq(d.n_test, 2);
    ck_assert_int_eq(d.dim, 3);
    ck_assert_int_eq(d.shape.c, 1);
    ck_assert_int_eq(d.shape.h, 1);
    ck_assert_int_eq(d.shape.w, 3);
    ck_assert_int_eq(d.classes, 3);
    ck_assert_int_eq(d.y_test[0], 1); /* row 4: "1,5,6,7" */
    ck_assert_int_eq(d.y_test[1], 1); /* row 9: "1.0,10,11,7" */
    /* flat data: each feature standardised on its own; a constant one is only centred */
    for (int j = 0; j < 3; j++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < d.n_train; i++) {
            s += d.x_train[i * 3 + j];
            s2 += d.x_train[i * 3 + j] * d.x_train[i * 3 + j];
        }
        ck_assert_double_eq_tol(s / 8, 0.0, 1e-6);
        ck_assert_double_eq_tol(s2 / 8, j == 2 ? 0.0 : 1.0, 1e-5);
    }
    ck_assert_float_eq(d.x_test[2], 0.0f);
    eg_data_free(&d);

    /* the same without header, as train.csv + test.csv.gz in a directory */
    cat(dir, sizeof dir, tmp, "two");
    mkdir_p(dir);
    cat(path, sizeof path, dir, "train.csv");
    write_text(path, "3,1,2\n0,2,3\n1,3,4\n");
    cat(path, sizeof path, dir, "test.csv.gz");
    const char *te = "4,1,1\n2,2,2\n";
    write_bytes(path, 1, te, strlen(te));
    ck_assert_msg(load(&d, "csv", dir, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train, 3);
    ck_assert_int_eq(d.n_test, 2);
    ck_assert_int_eq(d.dim, 2);
    ck_assert_int_eq(d.classes, 5);
    ck_assert_int_eq(d.y_train[0], 3);
    ck_assert_int_eq(d.y_test[0], 4);
    eg_data_free(&d);
    rm_tree(tmp);
}
END_TEST

START_TEST(test_csv_errors)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char path[1024], want[1200];
    struct {
        const char *file, *text, *msg;
    } c[] = {
        {"fields.csv", "1,2,3,4,5\n0,1,2,3,4\n1,2,3,4\n",
         "fields.csv:3: expected 5 fields (as on line 1), got 4"},
        {"hdr.csv", "y,a,b,c,d\n1,2,3,4\n", "hdr.csv:2: expected 5 fields (as on line 1), got 4"},
        {"nan.csv", "1,2,3\n0,1,2\n1,abc,3\n", "nan.csv:3: field 2: 'abc' is not a number"},
        {"empty.csv", "1,2,3\n0,,2\n", "empty.csv:2: field 2 is empty"},
        {"neg.csv", "1,2,3\n-1,1,2\n", "neg.csv:2: label '-1' is not a non-negative integer"},
        {"frac.csv", "1,2,3\n0.5,1,2\n", "frac.csv:2: label '0.5' is not a non-negative integer"},
        {"big.csv", "1,2,3\n100000,1,2\n", "big.csv:2: label 100000 is too large"},
        {"inf.csv", "1,2,3\n1,inf,2\n", "inf.csv:2: field 2: 'inf' is not a number"},
        {"one.csv", "1\n2\n", "one.csv:1: a row needs a label and at least one feature"},
        {"nodata.csv", "label,x\n\n", "nodata.csv: no data rows"},
        {"few.csv", "1,2\n0,1\n", "few.csv: 2 data row(s) are too few"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        cat(path, sizeof path, tmp, c[k].file);
        write_text(path, c[k].text);
        snprintf(want, sizeof want, "%s/%s", tmp, c[k].msg);
        expect_einput("csv", path, want, NULL);
    }
    /* test.csv with another width than train.csv */
    char dir[1024];
    cat(dir, sizeof dir, tmp, "two");
    mkdir_p(dir);
    cat(path, sizeof path, dir, "train.csv");
    write_text(path, "3,1,2\n0,2,3\n");
    cat(path, sizeof path, dir, "test.csv");
    write_text(path, "1,1,1\n0,1\n");
    int wn = snprintf(want, sizeof want, "%s:2: expected 3 fields (as in %s/train.csv), got 2",
                      path, dir);
    ck_assert(wn > 0 && (size_t)wn < sizeof want);
    expect_einput("csv", dir, want, NULL);
    cat(path, sizeof path, dir, "train.csv");
    unlink(path);
    expect_einput("csv", dir, "train.csv and test.csv", NULL);
    cat(path, sizeof path, tmp, "absent.csv");
    expect_einput("csv", path, path, NULL);
    rm_tree(tmp);
}
END_TEST

/* the real digits set is loaded by check_data_real.c; a csv of the wrong width is not digits */
START_TEST(test_digits_wrong_width)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char path[1024];
    cat(path, sizeof path, tmp, "digits.csv");
    write_text(path, "1,2,3\n");
    expect_einput("digits", tmp, "expected 65 fields", NULL);
    rm_tree(tmp);
}
END_TEST

/* ---- synthetic ------------------------------------------------------------------------------- */

static eg_data_spec synth_spec(double het)
{
    eg_data_spec s = spec_of("synthetic", NULL);
    s.heterogeneity = het;
    s.dim = 10;
    s.classes = 4;
    s.samples = 300;
    s.test_samples = 500;
    return s;
}

START_TEST(test_synthetic)
{
    eg_data_spec s0 = synth_spec(0.0), s1 = synth_spec(1.0);
    eg_dataset a, b, c, h;
    eg_err err;
    int nodes = 8;
    ck_assert_int_eq(eg_data_load(&a, &s0, nodes, 7, &err), EG_OK);
    ck_assert_int_eq(eg_data_load(&b, &s0, nodes, 7, &err), EG_OK);
    ck_assert_int_eq(eg_data_load(&c, &s0, nodes, 8, &err), EG_OK);
    ck_assert_int_eq(eg_data_load(&h, &s1, nodes, 7, &err), EG_OK);
    ck_assert_int_eq(a.n_train, nodes * 300);
    ck_assert_int_eq(a.n_test, 500);
    ck_assert_int_eq(a.dim, 10);
    ck_assert_int_eq(a.shape.w, 10);
    ck_assert_int_eq(a.classes, 4);
    ck_assert_int_eq(a.node_blocks, 0);
    ck_assert_int_eq(h.node_blocks, 1);
    size_t nx = (size_t)a.n_train * 10;
    ck_assert_mem_eq(a.x_train, b.x_train, nx * sizeof(float));
    ck_assert_mem_eq(a.y_train, b.y_train, (size_t)a.n_train * sizeof(int32_t));
    ck_assert_mem_eq(a.x_test, b.x_test, 500 * 10 * sizeof(float));
    ck_assert_int_ne(memcmp(a.x_train, c.x_train, nx * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(a.y_train, c.y_train, (size_t)a.n_train * sizeof(int32_t)), 0);
    /* every class occurs */
    int seen[4] = {0};
    for (int i = 0; i < a.n_train; i++)
        seen[a.y_train[i]] = 1;
    ck_assert_int_eq(seen[0] + seen[1] + seen[2] + seen[3], 4);

    /* heterogeneity: same features (same streams), other labels, and the node blocks'
     * label distributions spread apart */
    long differ = 0;
    for (int i = 0; i < a.n_train; i++)
        differ += a.y_train[i] != h.y_train[i];
    ck_assert_int_gt(differ, a.n_train / 5);
    eg_data_spec ps = s0;
    ps.batch_size = 16;
    eg_partition pa, ph;
    /* compare the label histograms of the generating nodes' blocks: h's partition is its
     * blocks; a (heterogeneity 0) is viewed by blocks too by setting node_blocks */
    ck_assert_int_eq(eg_partition_make(&ph, &h, &ps, nodes, 1, &err), EG_OK);
    for (int i = 0; i < nodes; i++) {
        ck_assert_int_eq(ph.offset[i], i * 300);
        ck_assert_int_eq(ph.idx[ph.offset[i]], i * 300);
    }
    a.node_blocks = 1; /* view a's samples by generating node too */
    ck_assert_int_eq(eg_partition_make(&pa, &a, &ps, nodes, 1, &err), EG_OK);
    a.node_blocks = 0;
    double ka = eg_partition_skew(&pa), kh = eg_partition_skew(&ph);
    fprintf(stderr, "check_data: synthetic block skew: heterogeneity 0 -> %.3f, 1 -> %.3f\n", ka,
            kh);
    ck_assert_double_lt(ka, 0.08);
    ck_assert_double_gt(kh, 2 * ka);
    ck_assert_double_gt(kh, 0.08);
    /* with heterogeneity, dirichlet/sorted would break the blocks: refused */
    ps.partition = EG_PART_DIRICHLET;
    eg_partition bad;
    ck_assert_int_eq(eg_partition_make(&bad, &h, &ps, nodes, 1, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "heterogeneity"));
    eg_partition_free(&bad);
    eg_partition_free(&pa);
    eg_partition_free(&ph);
    eg_data_free(&a);
    eg_data_free(&b);
    eg_data_free(&c);
    eg_data_free(&h);
}
END_TEST

/* ---- partitions ------------------------------------------------------------------------------ */

/* labels only (partitions never read features): n samples, y = i % classes */
static eg_dataset label_set(int n, int classes)
{
    eg_dataset d;
    memset(&d, 0, sizeof d);
    d.n_train = n;
    d.classes = classes;
    d.dim = 1;
    d.shape = (eg_shape){1, 1, 1};
    d.y_train = malloc((size_t)n * sizeof *d.y_train);
    for (int i = 0; i < n; i++)
        d.y_train[i] = (int32_t)((i * 7919) % classes);
    return d;
}

static eg_data_spec part_spec(const char *kind, double alpha, int bs)
{
    eg_data_spec s = spec_of("synthetic", NULL);
    s.partition = (eg_partition_kind)EG_KIND_FIND(eg_partition_kinds, kind);
    s.alpha = alpha;
    s.batch_size = bs;
    return s;
}

/* disjoint, ascending within each node, hist consistent; returns number covered */
static int check_partition(const eg_partition *p, const eg_dataset *d)
{
    char *used = calloc((size_t)d->n_train, 1);
    ck_assert_int_eq(p->offset[0], 0);
    for (int i = 0; i < p->nodes; i++) {
        int32_t lo = p->offset[i], hi = p->offset[i + 1];
        ck_assert_int_le(lo, hi);
        long hsum = 0;
        for (int c = 0; c < p->classes; c++)
            hsum += p->hist[i * p->classes + c];
        ck_assert_int_eq(hsum, hi - lo);
        for (int32_t k = lo; k < hi; k++) {
            int32_t s = p->idx[k];
            ck_assert_int_ge(s, 0);
            ck_assert_int_lt(s, d->n_train);
            ck_assert_int_eq(used[s], 0);
            used[s] = 1;
            if (k > lo)
                ck_assert_int_lt(p->idx[k - 1], s);
        }
    }
    int covered = 0;
    for (int s = 0; s < d->n_train; s++)
        covered += used[s];
    free(used);
    return covered;
}

START_TEST(test_partition_iid_sorted)
{
    eg_dataset d = label_set(2000, 10);
    eg_partition p, q;
    eg_err err;
    eg_data_spec s = part_spec("iid", 0, 32);
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 7, 3, &err), EG_OK);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(p.offset[i + 1] - p.offset[i], 2000 / 7);
    ck_assert_int_eq(check_partition(&p, &d), 7 * (2000 / 7));
    ck_assert_double_lt(eg_partition_skew(&p), 0.1);
    /* same seed: same split; another seed: another */
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 7, 3, &err), EG_OK);
    ck_assert_mem_eq(p.idx, q.idx, (size_t)p.offset[7] * sizeof(int32_t));
    eg_partition_free(&q);
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 7, 4, &err), EG_OK);
    ck_assert_int_ne(memcmp(p.idx, q.idx, (size_t)p.offset[7] * sizeof(int32_t)), 0);
    eg_partition_free(&q);
    eg_partition_free(&p);

    s = part_spec("sorted", 0, 32);
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 5, 3, &err), EG_OK);
    ck_assert_int_eq(check_partition(&p, &d), 2000);
    for (int i = 0; i < 5; i++) {
        int ncls = 0;
        for (int c = 0; c < 10; c++)
            ncls += p.hist[i * 10 + c] > 0;
        ck_assert_int_eq(ncls, 2);
    }
    ck_assert_double_eq_tol(eg_partition_skew(&p), 0.8, 1e-9);
    eg_partition_free(&p);
    eg_partition_free(&p); /* twice is safe */
    eg_data_free(&d);
}
END_TEST

/* data.val_fraction: floor(frac x shard) held out of each node's shard, disjoint from what
 * training keeps, together the whole shard; histograms recomputed; the same draw again for
 * the same seed, another for another seed; a node left with less than a batch refused */
START_TEST(test_partition_hold_out)
{
    eg_dataset d = label_set(2000, 10);
    eg_partition p, v, q, w;
    eg_err err;
    eg_data_spec s = part_spec("dirichlet", 0.5, 8);
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 6, 5, &err), EG_OK);
    int32_t len[6];
    for (int i = 0; i < 6; i++)
        len[i] = p.offset[i + 1] - p.offset[i];
    char *in_shard = calloc(2000 * 6, 1);
    for (int i = 0; i < 6; i++)
        for (int32_t k = p.offset[i]; k < p.offset[i + 1]; k++)
            in_shard[p.idx[k] * 6 + i] = 1;
    ck_assert_msg(eg_partition_hold_out(&p, &v, d.y_train, 0.25, 8, 9, &err) == EG_OK, "%s",
                  err.msg);
    ck_assert_int_eq(check_partition(&p, &d) + check_partition(&v, &d), 2000);
    char *seen = calloc(2000, 1);
    for (int i = 0; i < 6; i++) {
        int32_t held = v.offset[i + 1] - v.offset[i];
        ck_assert_int_eq(held, (int32_t)(0.25 * len[i])); /* floor */
        ck_assert_int_eq(p.offset[i + 1] - p.offset[i], len[i] - held);
        for (int32_t k = v.offset[i]; k < v.offset[i + 1]; k++) {
            ck_assert_int_eq(in_shard[v.idx[k] * 6 + i], 1); /* from the node's own shard */
            seen[v.idx[k]] = 1;
        }
        for (int32_t k = p.offset[i]; k < p.offset[i + 1]; k++) {
            ck_assert_int_eq(in_shard[p.idx[k] * 6 + i], 1);
            ck_assert_int_eq(seen[p.idx[k]], 0); /* training and held-out are disjoint */
        }
    }
    /* the same again: the same split; another seed: another */
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 6, 5, &err), EG_OK);
    ck_assert_int_eq(eg_partition_hold_out(&q, &w, d.y_train, 0.25, 8, 9, &err), EG_OK);
    ck_assert_mem_eq(v.idx, w.idx, (size_t)v.offset[6] * sizeof(int32_t));
    ck_assert_mem_eq(p.idx, q.idx, (size_t)p.offset[6] * sizeof(int32_t));
    eg_partition_free(&q);
    eg_partition_free(&w);
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 6, 5, &err), EG_OK);
    ck_assert_int_eq(eg_partition_hold_out(&q, &w, d.y_train, 0.25, 8, 10, &err), EG_OK);
    ck_assert_int_eq(w.offset[6], v.offset[6]);
    ck_assert_int_ne(memcmp(v.idx, w.idx, (size_t)v.offset[6] * sizeof(int32_t)), 0);
    eg_partition_free(&q);
    eg_partition_free(&w);
    /* too much held out: refused, p unchanged */
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 6, 5, &err), EG_OK);
    int32_t before = q.offset[6];
    ck_assert_int_eq(eg_partition_hold_out(&q, &w, d.y_train, 0.999, 8, 9, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "data.val_fraction"));
    ck_assert_int_eq(q.offset[6], before);
    eg_partition_free(&q);
    eg_partition_free(&w);
    free(seen);
    free(in_shard);
    eg_partition_free(&p);
    eg_partition_free(&v);
    eg_data_free(&d);
}
END_TEST

START_TEST(test_partition_dirichlet)
{
    eg_dataset d = label_set(2000, 10);
    eg_partition p, q;
    eg_err err;
    eg_data_spec s = part_spec("dirichlet", 0.1, 1);
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 10, 5, &err), EG_OK);
    ck_assert_int_eq(check_partition(&p, &d), 2000); /* dirichlet uses every sample */
    double skew_lo = eg_partition_skew(&p);
    ck_assert_int_eq(eg_partition_make(&q, &d, &s, 10, 5, &err), EG_OK);
    ck_assert_mem_eq(p.offset, q.offset, 11 * sizeof(int32_t));
    ck_assert_mem_eq(p.idx, q.idx, 2000 * sizeof(int32_t));
    eg_partition_free(&q);
    eg_partition_free(&p);

    s.alpha = 100;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 10, 5, &err), EG_OK);
    ck_assert_int_eq(check_partition(&p, &d), 2000);
    double skew_hi = eg_partition_skew(&p);
    fprintf(stderr, "check_data: dirichlet skew: alpha 0.1 -> %.3f, alpha 100 -> %.3f\n", skew_lo,
            skew_hi);
    ck_assert_double_gt(skew_lo, 0.5);
    ck_assert_double_lt(skew_hi, 0.1);
    eg_partition_free(&p);

    /* alpha far below 1: every Gamma draw underflows to 0 in double, yet Dir(alpha) gives
     * each class to (almost) one node; it used to fall back to a uniform split */
    s.alpha = 1e-4;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 5, 5, &err), EG_OK);
    ck_assert_int_eq(check_partition(&p, &d), 2000);
    for (int c = 0; c < 10; c++) {
        int owners = 0;
        for (int i = 0; i < 5; i++) {
            int has = 0;
            for (int32_t k = p.offset[i]; k < p.offset[i + 1]; k++)
                has |= d.y_train[p.idx[k]] == c;
            owners += has;
        }
        ck_assert_msg(owners == 1, "alpha 1e-4: class %d spread over %d nodes", c, owners);
    }
    ck_assert_double_gt(eg_partition_skew(&p), skew_lo);
    eg_partition_free(&p);

    /* a node left with fewer than batch_size samples in every redraw (2000 samples,
     * 20 nodes, batch 100: only an exactly even split would do) */
    s.alpha = 0.1;
    s.batch_size = 100;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 20, 5, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "dirichlet(alpha=0.1) gave node ") &&
                      strstr(err.msg, "fewer than batch_size 100"),
                  "%s", err.msg);
    ck_assert_ptr_null(p.idx);
    eg_partition_free(&p);
    s.alpha = 0;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 10, 5, &err), EG_EINPUT);
    eg_data_free(&d);
}
END_TEST

START_TEST(test_partition_errors)
{
    eg_dataset d = label_set(100, 4);
    eg_partition p;
    eg_err err;
    eg_data_spec s = part_spec("iid", 0, 64);
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 2, 1, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(
        strstr(err.msg, "data.batch_size 64 is larger than node 0's shard (50 samples)"));
    s.batch_size = 10;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 11, 1, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "(9 samples)"));
    s.partition = (eg_partition_kind)7; /* not a kind: refused, not read out of the table */
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 2, 1, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown data.partition kind 7"));
    s.partition = EG_PART_IID;
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 0, 1, &err), EG_EINPUT);
    /* one node takes everything */
    ck_assert_int_eq(eg_partition_make(&p, &d, &s, 1, 1, &err), EG_OK);
    ck_assert_int_eq(p.offset[1], 100);
    ck_assert_double_eq(eg_partition_skew(&p), 0.0);
    eg_partition_free(&p);
    eg_data_free(&d);
}
END_TEST

/* ---- minibatches ------------------------------------------------------------------------------
 */

/* What eg_data_fill_batch must produce for sample `src` with the documented draws:
 * oy, ox = eg_rng_below(9) each (crop), then the top bit of eg_rng_next (flip). */
static void expected_aug(const eg_dataset *d, const float *src, int aug, eg_rng *r, float *out)
{
    int C = d->shape.c, H = d->shape.h, W = d->shape.w;
    int oy = 4, ox = 4, flip = 0;
    if (aug & EG_AUG_CROP) {
        oy = (int)eg_rng_below(r, 9);
        ox = (int)eg_rng_below(r, 9);
    }
    if (aug & EG_AUG_FLIP)
        flip = (int)(eg_rng_next(r) >> 63);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                /* crop of the padded image at (oy, ox), then mirror */
                int pj = flip ? W - 1 - j : j;
                int si = i + oy - 4, sj = pj + ox - 4;
                out[(c * H + i) * W + j] = si < 0 || si >= H || sj < 0 || sj >= W
                                               ? d->black[c]
                                               : src[(c * H + si) * W + sj];
            }
}

START_TEST(test_fill_batch)
{
    enum { N = 6, C = 2, H = 10, W = 12 };
    eg_dataset d;
    memset(&d, 0, sizeof d);
    d.shape = (eg_shape){C, H, W};
    d.dim = C * H * W;
    d.n_train = N;
    d.classes = 3;
    d.x_train = malloc(sizeof(float) * N * C * H * W);
    d.y_train = malloc(sizeof(int32_t) * N);
    d.black = malloc(sizeof(float) * C);
    d.black[0] = -7.5f; /* what a raw 0 pixel became: below every pixel value here */
    d.black[1] = -9.25f;
    for (int i = 0; i < N * C * H * W; i++)
        d.x_train[i] = (float)i; /* every value distinct: positions can be recovered */
    for (int i = 0; i < N; i++)
        d.y_train[i] = i % 3;
    int32_t idx[4] = {5, 0, 3, 3};
    float x[4 * C * H * W], want[C * H * W];
    int32_t y[4];
    eg_rng r, r2;

    /* no augmentation: a plain copy, the rng untouched */
    eg_rng_seed(&r, 1, EG_STREAM_AUGMENT, 0);
    r2 = r;
    eg_data_fill_batch(&d, idx, 4, 0, &r, x, y);
    ck_assert_mem_eq(r.s, r2.s, sizeof r.s);
    for (int b = 0; b < 4; b++) {
        ck_assert_int_eq(y[b], idx[b] % 3);
        ck_assert_mem_eq(x + b * d.dim, d.x_train + idx[b] * d.dim, sizeof(float) * d.dim);
    }

    /* crop, flip and both: bitwise what the documented draws give (RandomCrop(padding=4)
     * with black padding, then the mirror), the rng left where the draws end */
    int augs[3] = {EG_AUG_CROP, EG_AUG_FLIP, EG_AUG_CROP | EG_AUG_FLIP};
    for (int a = 0; a < 3; a++) {
        eg_rng_seed(&r, 2 + (uint64_t)a, EG_STREAM_AUGMENT, 0);
        r2 = r;
        for (int trial = 0; trial < 10; trial++) {
            eg_data_fill_batch(&d, idx, 4, augs[a], &r, x, y);
            for (int b = 0; b < 4; b++) {
                ck_assert_int_eq(y[b], idx[b] % 3);
                expected_aug(&d, d.x_train + idx[b] * d.dim, augs[a], &r2, want);
                ck_assert_mem_eq(x + b * d.dim, want, sizeof want);
            }
            ck_assert_mem_eq(r.s, r2.s, sizeof r.s);
        }
    }

    /* crop alone: every offset 0..8 in both directions shows up; the padding is black
     * (the old edge-repeating crop never produced a value below 0 here) and there is
     * at most 4 pixels of it on a side */
    int seen_dy[9] = {0}, seen_dx[9] = {0}, black_px = 0;
    eg_rng_seed(&r, 9, EG_STREAM_AUGMENT, 0);
    for (int trial = 0; trial < 60; trial++) {
        eg_data_fill_batch(&d, idx, 4, EG_AUG_CROP, &r, x, y);
        for (int b = 0; b < 4; b++) {
            const float *o = x + b * d.dim;
            int found = 0;
            for (int c = 0; c < C; c++)
                for (int i = 0; i < H; i++)
                    for (int j = 0; j < W; j++) {
                        float v = o[(c * H + i) * W + j];
                        if (v < 0) {
                            ck_assert_float_eq(v, d.black[c]);
                            black_px++;
                            continue;
                        }
                        long p = (long)v - (long)idx[b] * d.dim - (long)c * H * W;
                        ck_assert_int_ge(p, 0);
                        ck_assert_int_lt(p, (long)H * W);
                        int dy = (int)(p / W) - i, dx = (int)(p % W) - j;
                        ck_assert_int_le(abs(dy), 4);
                        ck_assert_int_le(abs(dx), 4);
                        if (!found) {
                            seen_dy[dy + 4]++;
                            seen_dx[dx + 4]++;
                            found = 1;
                        }
                    }
        }
    }
    for (int k = 0; k < 9; k++) {
        ck_assert_msg(seen_dy[k] > 0, "row offset %d never drawn", k);
        ck_assert_msg(seen_dx[k] > 0, "column offset %d never drawn", k);
    }
    ck_assert_int_gt(black_px, 1000);

    /* without d.black (a dataset built by hand), the padding is 0 */
    free(d.black);
    d.black = NULL;
    eg_rng_seed(&r, 4, EG_STREAM_AUGMENT, 0);
    int zeros = 0;
    for (int trial = 0; trial < 10; trial++) {
        eg_data_fill_batch(&d, idx + 1, 1, EG_AUG_CROP, &r, x, y); /* sample 0: x[0] = 0 */
        for (int k = 1; k < d.dim; k++)
            zeros += x[k] == 0.0f;
    }
    ck_assert_int_gt(zeros, 0);

    /* flat data: augmentation is a no-op */
    d.shape = (eg_shape){1, 1, d.dim};
    r2 = r;
    eg_data_fill_batch(&d, idx, 4, EG_AUG_CROP | EG_AUG_FLIP, &r, x, y);
    ck_assert_mem_eq(r.s, r2.s, sizeof r.s);
    ck_assert_mem_eq(x, d.x_train + 5 * d.dim, sizeof(float) * d.dim);
    eg_data_free(&d);
}
END_TEST

/* ---- one rank's share: P = 1, 2, 3 ranks of 4 nodes, dirichlet ------------------------- */

#define RANK_NODES 4

/* Loads the set as each of P ranks would (open, partition, read its nodes' samples), sums
 * the statistics as the ranks do, and checks against one process holding everything: the
 * same partition, every held sample's minibatch floats and the test floats bit for bit, and
 * no rank reading more training samples than its nodes own (+ sample 0 for the statistics'
 * shift, + on rank 0 the samples no node owns; csv, read whole: every row). */
static void check_ranks_aug(const char *name, const char *dir, int image_size, int read_whole,
                            int augment, eg_data_cache cache)
{
    eg_data_spec s = spec_of(name, dir);
    s.image_size = image_size;
    s.augment = augment;
    s.cache = cache;
    s.partition = EG_PART_DIRICHLET;
    s.alpha = 1.0;
    eg_dataset whole;
    eg_partition pw;
    eg_err err;
    ck_assert_msg(eg_data_load(&whole, &s, RANK_NODES, 3, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(eg_partition_make(&pw, &whole, &s, RANK_NODES, 3, &err), EG_OK);
    size_t dim = (size_t)whole.dim;
    float *xa = malloc(dim * sizeof *xa), *xb = malloc(dim * sizeof *xb);
    for (int P = 1; P <= 3; P++) {
        eg_dataset d[3];
        eg_partition p[3];
        double *sum = NULL, *buf;
        size_t nst = 0;
        for (int r = 0; r < P; r++) {
            long long before = eg_data_samples_read();
            ck_assert_msg(eg_data_open(&d[r], &s, RANK_NODES, 3, &err) == EG_OK, "%s", err.msg);
            ck_assert_int_eq(eg_partition_make(&p[r], &d[r], &s, RANK_NODES, 3, &err), EG_OK);
            ck_assert_mem_eq(p[r].offset, pw.offset, (RANK_NODES + 1) * sizeof(int32_t));
            ck_assert_mem_eq(p[r].idx, pw.idx, (size_t)pw.offset[RANK_NODES] * sizeof(int32_t));
            int lo, hi;
            eg_comm_range(RANK_NODES, P, r, &lo, &hi);
            ck_assert_msg(eg_data_read(&d[r], &p[r], lo, hi, r == 0, &err) == EG_OK, "%s", err.msg);
            long long own = pw.offset[hi] - pw.offset[lo];
            long long rest = r == 0 ? whole.n_train - pw.offset[RANK_NODES] : 0;
            long long reads = eg_data_samples_read() - before;
            ck_assert_int_eq(d[r].n_held, own);
            if (read_whole) /* csv: parsed whole on every rank, only its rows kept */
                own = rest = whole.n_train;
            ck_assert_msg(reads <= own + 1 + rest, "%s P=%d rank %d read %lld samples, owns %lld",
                          name, P, r, reads, own);
            nst = eg_data_shared_stats(&d[r], &buf); /* what the ranks all-reduce */
            if (!sum)
                sum = calloc(nst ? nst : 1, sizeof *sum);
            for (size_t i = 0; i < nst; i++)
                sum[i] += buf[i];
        }
        for (int r = 0; r < P; r++) {
            eg_data_shared_stats(&d[r], &buf);
            memcpy(buf, sum, nst * sizeof *sum);
            ck_assert_int_eq(eg_data_normalise(&d[r], &err), EG_OK);
            for (int32_t k = 0; k < whole.n_test; k++)
                ck_assert_mem_eq(eg_data_test_rows(&d[r], k, 1, xa), eg_data_test_rows(&whole, k, 1, xb),
                                 dim * sizeof(float));
            for (int32_t k = 0; k < whole.n_train; k++) {
                if (d[r].row[k] < 0)
                    continue;
                int32_t y0, y1;
                eg_rng ra, rb;
                eg_rng_seed(&ra, 9, EG_STREAM_AUGMENT, (uint64_t)k);
                rb = ra;
                int aug = augment ? augment : EG_AUG_CROP | EG_AUG_FLIP;
                eg_data_fill_batch(&d[r], &k, 1, aug, &ra, xa, &y0);
                eg_data_fill_batch(&whole, &k, 1, aug, &rb, xb, &y1);
                ck_assert_mem_eq(&ra, &rb, sizeof ra); /* as many draws */
                ck_assert_int_eq(y0, y1);
                ck_assert_msg(!memcmp(xa, xb, dim * sizeof *xa), "%s P=%d rank %d sample %d differs",
                              name, P, r, (int)k);
            }
            eg_partition_free(&p[r]);
            eg_data_free(&d[r]);
        }
        free(sum);
    }
    free(xa);
    free(xb);
    eg_partition_free(&pw);
    eg_data_free(&whole);
}

static void check_ranks(const char *name, const char *dir, int image_size, int read_whole)
{
    check_ranks_aug(name, dir, image_size, read_whole, 0, EG_CACHE_MEMORY);
}

/* the coalesced reads' windows: runs of wanted samples, read through small gaps, cut at a
 * large gap and at the window size */
START_TEST(test_read_span)
{
    enum { N = 4000 };
    static uint8_t want[N];
    const size_t rec = 1000; /* gaps of up to 65 records are read through */
    memset(want, 0, sizeof want);
    for (int s = 10; s < 20; s++)
        want[s] = 1;
    ck_assert_int_eq(eg_data_read_span(want, 10, N, rec, 1 << 20), 19);
    want[19 + 66] = 1; /* a gap of 65 records: read through */
    ck_assert_int_eq(eg_data_read_span(want, 10, N, rec, 1 << 20), 19 + 66);
    want[19 + 66 + 67] = 1; /* then a gap of 66: the window ends before it */
    ck_assert_int_eq(eg_data_read_span(want, 10, N, rec, 1 << 20), 19 + 66);
    ck_assert_int_eq(eg_data_read_span(want, 19 + 66 + 67, N, rec, 1 << 20), 19 + 66 + 67);
    /* the window's size caps it: 5 records of 1000 bytes in 5000 */
    ck_assert_int_eq(eg_data_read_span(want, 10, N, rec, 5000), 14);
    ck_assert_int_eq(eg_data_read_span(want, 10, N, rec, 999), 10);
    /* every sample wanted: windows of cap bytes, the last one cut at n */
    memset(want, 1, sizeof want);
    ck_assert_int_eq(eg_data_read_span(want, 0, N, rec, EG_DATA_READ_WINDOW), N - 1);
    ck_assert_int_eq(eg_data_read_span(want, 0, N, 2000, EG_DATA_READ_WINDOW),
                     EG_DATA_READ_WINDOW / 2000 - 1);
    ck_assert_int_eq(eg_data_read_span(want, N - 3, N, rec, EG_DATA_READ_WINDOW), N - 1);
    ck_assert_uint_eq(eg_data_read_window(rec, 10000), EG_DATA_READ_WINDOW);
    ck_assert_uint_eq(eg_data_read_window(rec, N), (size_t)N * rec);
    ck_assert_uint_eq(eg_data_read_window(rec, 7), 7000);
    ck_assert_uint_eq(eg_data_read_window(rec, 0), rec);
}
END_TEST

START_TEST(test_rank_shares)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024];
    cat(dir, sizeof dir, tmp, "raw");
    make_idx_set(dir, 0);
    check_ranks("idx", dir, 0, 0);
    cat(dir, sizeof dir, tmp, "gz");
    make_idx_set(dir, 1);
    check_ranks("idx", dir, 0, 0);
    cat(dir, sizeof dir, tmp, "c10");
    make_cifar10(dir);
    check_ranks("cifar10", dir, 0, 0);
    cat(dir, sizeof dir, tmp, "jpeg");
    make_jpeg_tree(dir, 3, 1, 16, 12);
    check_ranks("image_folder", dir, 0, 0);
    check_ranks("image_folder", dir, 8, 0); /* resized: floats */
    /* random_resized_crop: decoded images per rank (memory) or per minibatch (stream) */
    check_ranks_aug("image_folder", dir, 8, 0, EG_AUG_RRC | EG_AUG_FLIP, EG_CACHE_MEMORY);
    check_ranks_aug("image_folder", dir, 8, 0, EG_AUG_RRC | EG_AUG_FLIP, EG_CACHE_STREAM);
    char path[1100];
    cat(path, sizeof path, tmp, "flat.csv");
    write_text(path, "label,a,b,c\n"
                     "0,1.5,2,7\n1,2.5,3,7\n2,3.5,1e1,7\n0,4,5,7\n1,5,6,7\n2,6,7.25,7\n"
                     "0,7,8,7\n1,8,9,7\n2,9,10,7\n1,10,11,7\n0,3,3,3\n1,4,4,4\n");
    check_ranks("csv", path, 0, 1); /* read whole, every rank; keeps only its rows */
    rm_tree(tmp);
}
END_TEST

/* ---- random_resized_crop, eval_resize --------------------------------------------------- */

static void check_box(eg_crop_box b, int w, int h)
{
    ck_assert_msg(b.w >= 1 && b.h >= 1 && b.x >= 0 && b.y >= 0 && b.x + b.w <= w && b.y + b.h <= h,
                  "box %d,%d %dx%d outside a %dx%d image", b.x, b.y, b.w, b.h, w, h);
}

START_TEST(test_rrc_box)
{
    eg_rng r;
    eg_rng_seed(&r, 5, EG_STREAM_AUGMENT, 0);
    /* a large square image: (almost) every first attempt fits. Area fraction f ~ U[0.08, 1)
     * and log ratio ~ U[log 3/4, log 4/3); an attempt fails only when f * max(r, 1/r) > 1,
     * i.e. never for f < 3/4: there the accepted fractions stay uniform, so equal-width bins
     * hold equal counts */
    const int N = 40000, W = 1000, H = 1000;
    int bin[3] = {0, 0, 0}, wide = 0, tall = 0;
    double sum_lr = 0, sum_px = 0, sum_py = 0, fmin = 1, fmax = 0;
    int npos = 0;
    for (int i = 0; i < N; i++) {
        eg_crop_box b = eg_data_rrc_box(W, H, &r);
        check_box(b, W, H);
        double f = (double)b.w * b.h / ((double)W * H), ratio = (double)b.w / b.h;
        fmin = f < fmin ? f : fmin;
        fmax = f > fmax ? f : fmax;
        ck_assert_msg(ratio > 0.749 * (1 - 2.0 / b.h) && ratio < 1.334 * (1 + 2.0 / b.w),
                      "ratio %g out of [3/4, 4/3]", ratio);
        if (f >= 0.08 && f < 0.30)
            bin[0]++;
        else if (f >= 0.30 && f < 0.52)
            bin[1]++;
        else if (f >= 0.52 && f < 0.74)
            bin[2]++;
        sum_lr += log(ratio);
        wide += ratio > 1.0;
        tall += ratio < 1.0;
        if (b.w < W && b.h < H) { /* the offsets: uniform over the positions */
            sum_px += (double)b.x / (W - b.w);
            sum_py += (double)b.y / (H - b.h);
            npos++;
        }
    }
    ck_assert_double_ge(fmin, 0.079);
    ck_assert_double_le(fmax, 1.0);
    ck_assert_double_gt(fmax, 0.97);
    /* (a miss redraws, so the accepted fractions below 3/4 are uniform but more than 0.22 /
     * 0.92 of the draws per bin: ~11000 each, sd ~100) */
    double mean_bin = (bin[0] + bin[1] + bin[2]) / 3.0;
    ck_assert_double_gt(mean_bin, N * 0.22 / 0.92);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(fabs(bin[k] - mean_bin) < 400, "bin %d: %d, mean %g", k, bin[k], mean_bin);
    ck_assert_double_lt(fabs(sum_lr / N), 0.01);  /* symmetric in log ratio */
    ck_assert_int_lt(abs(wide - tall), N / 50);
    ck_assert_double_lt(fabs(sum_px / npos - 0.5), 0.01);
    ck_assert_double_lt(fabs(sum_py / npos - 0.5), 0.01);

    /* the fallback after 10 misses, exactly: too tall -> width kept, height w / (3/4)
     * rounded; too wide -> height kept, width h * 4/3 rounded; centred */
    eg_crop_box b = eg_data_rrc_box(1, 1000, &r);
    ck_assert_int_eq(b.w, 1);
    ck_assert_int_eq(b.h, 1); /* round(1.333) */
    ck_assert_int_eq(b.y, 499);
    ck_assert_int_eq(b.x, 0);
    b = eg_data_rrc_box(1000, 10, &r);
    ck_assert_int_eq(b.h, 10);
    ck_assert_int_eq(b.w, 13); /* round(13.33) */
    ck_assert_int_eq(b.x, 493);
    ck_assert_int_eq(b.y, 0);
    b = eg_data_rrc_box(3, 600, &r);
    ck_assert_int_eq(b.w, 3);
    ck_assert_int_eq(b.h, 4); /* round(4.0) */
    ck_assert_int_eq(b.y, 298);
    /* tiny and odd images: always inside */
    int sizes[][2] = {{1, 1}, {2, 1}, {1, 2}, {7, 5}, {3, 4}, {13, 9}, {224, 224}, {500, 375}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        for (int i = 0; i < 2000; i++)
            check_box(eg_data_rrc_box(sizes[k][0], sizes[k][1], &r), sizes[k][0], sizes[k][1]);
    /* deterministic in the stream */
    eg_rng a, c;
    eg_rng_seed(&a, 7, EG_STREAM_AUGMENT, 3);
    c = a;
    for (int i = 0; i < 100; i++) {
        eg_crop_box x = eg_data_rrc_box(37, 91, &a), y = eg_data_rrc_box(37, 91, &c);
        ck_assert_mem_eq(&x, &y, sizeof x);
    }
}
END_TEST

START_TEST(test_resample_hand)
{
    /* 4x4 gray, value a[x] + b[y]; shrinking by 2 with the antialiased triangle filter
     * (support 2 source pixels): output 0 is centred on source 0.5 and reads pixels 0, 1, 2
     * with weights 0.75, 0.75, 0.25 (pixel -1's 0.25 dropped), renormalised: 3/7, 3/7, 1/7;
     * output 1 (centre 2.5) reads 1, 2, 3 with 1/7, 3/7, 3/7 */
    const int a[4] = {0, 70, 140, 210}, bb[4] = {0, 7, 14, 21};
    uint8_t pix[16];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            pix[y * 4 + x] = (uint8_t)(a[x] + bb[y]);
    eg_data_img img = {4, 4, 1, pix};
    eg_resample_axis ax[2] = {{0, 4, 2, 0}, {0, 4, 2, 0}};
    float out[3 * 4];
    eg_err err;
    ck_assert_int_eq(eg_data_resample(&img, ax, 1, 2, out, &err), EG_OK);
    /* x: (3*0 + 3*70 + 140) / 7 = 50, (70 + 3*140 + 3*210) / 7 = 160;
     * y: (3*0 + 3*7 + 14) / 7 = 5, (7 + 3*14 + 3*21) / 7 = 16 */
    float want[4] = {55, 165, 66, 176};
    for (int k = 0; k < 4; k++)
        ck_assert_float_eq_tol(out[k], want[k], 1e-4);
    /* a gray image fills every channel */
    ck_assert_int_eq(eg_data_resample(&img, ax, 3, 2, out, &err), EG_OK);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++)
            ck_assert_float_eq_tol(out[c * 4 + k], want[k], 1e-4);
    /* enlarging 2 -> 3 (support 1): centres -1/6, 1/2, 7/6 read pixel 0 alone, 0 and 1
     * half each, pixel 1 alone. A window (x 1..2, y 2..3) of the same image: the crop of
     * random_resized_crop, taps outside the window dropped */
    eg_resample_axis wx[2] = {{1, 2, 3, 0}, {2, 2, 3, 0}};
    float up[9];
    ck_assert_int_eq(eg_data_resample(&img, wx, 1, 3, up, &err), EG_OK);
    float ux[3] = {70, 105, 140}, uy[3] = {14, 17.5f, 21};
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++)
            ck_assert_float_eq_tol(up[y * 3 + x], ux[x] + uy[y], 1e-4);
    /* RGB: channel c reads channel c; output channels first */
    uint8_t rgb[2 * 2 * 3];
    for (int p = 0; p < 4; p++)
        for (int c = 0; c < 3; c++)
            rgb[p * 3 + c] = (uint8_t)(10 * p + 100 * c);
    eg_data_img im3 = {2, 2, 3, rgb};
    eg_resample_axis same[2] = {{0, 2, 2, 0}, {0, 2, 2, 0}};
    float o3[12];
    ck_assert_int_eq(eg_data_resample(&im3, same, 3, 2, o3, &err), EG_OK);
    for (int c = 0; c < 3; c++)
        for (int p = 0; p < 4; p++)
            ck_assert_float_eq_tol(o3[c * 4 + p], 10 * p + 100 * c, 1e-5);
}
END_TEST

static int ramp3(int x, int y, int c, int seed) { return 3 * x + 40 * c + seed * 0 + y * 0; }

START_TEST(test_eval_resize_geometry)
{
    /* torchvision's Resize(256) + CenterCrop(224) of common ImageNet shapes */
    eg_resample_axis ax[2];
    eg_data_eval_axes(500, 375, 256, 224, ax);
    ck_assert_int_eq(ax[0].out, 341); /* floor(256 * 500 / 375) */
    ck_assert_int_eq(ax[0].off, 58);
    ck_assert_int_eq(ax[1].out, 256);
    ck_assert_int_eq(ax[1].off, 16);
    ck_assert_int_eq(ax[0].len, 500);
    ck_assert_int_eq(ax[1].len, 375);
    eg_data_eval_axes(375, 500, 256, 224, ax);
    ck_assert_int_eq(ax[0].out, 256);
    ck_assert_int_eq(ax[1].out, 341);
    ck_assert_int_eq(ax[1].off, 58);
    eg_data_eval_axes(300, 300, 256, 224, ax);
    ck_assert_int_eq(ax[0].out, 256);
    ck_assert_int_eq(ax[0].off, 16);
    ck_assert_int_eq(ax[1].off, 16);
    /* the default: round(S * 256 / 224) */
    ck_assert_int_eq(eg_data_default_eval_resize(224), 256);
    ck_assert_int_eq(eg_data_default_eval_resize(32), 37);
    ck_assert_int_eq(eg_data_default_eval_resize(12), 14);
    ck_assert_int_eq(eg_data_default_eval_resize(64), 73);
    ck_assert_int_eq(eg_data_default_eval_resize(1), 1);

    /* through the loader: a 12x8 test image (ramp 3x + 40c) with image_size 4, eval_resize 6:
     * 12x8 -> 9x6 (factor 4/3, filter support 4/3), centre 4x4 at x 2..5, y 1..4. Output
     * column i is centred on source x = (i + 2.5) * 4/3 - 0.5: 2.833 reads pixels 2, 3, 4
     * with weights 3/8, 7/8, 1/8 -> 3 * (2*3 + 3*7 + 4*1) / 11 = 93/11; 4.167 reads 3, 4, 5
     * with 1/8, 7/8, 3/8 -> 138/11; 5.5 reads 5, 6 with 5/8 each -> 16.5; 6.833 reads 6,
     * 7, 8 with 3/8, 7/8, 1/8 -> 225/11. Rows: the image is constant vertically */
    const float col[4] = {93.0f / 11, 138.0f / 11, 16.5f, 225.0f / 11};
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    cat(dir, sizeof dir, tmp, "eval");
    snprintf(path, sizeof path, "%s/train/a", dir);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/val/a", dir); /* ImageNet's name for test/ */
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/train/a/0.png", dir);
    write_png_fn(path, 10, 10, 3, flat_px, 9);
    snprintf(path, sizeof path, "%s/val/a/0.png", dir);
    write_png_fn(path, 12, 8, 3, ramp3, 0);
    for (int rrc = 0; rrc < 2; rrc++) {
        eg_data_spec s = spec_of("image_folder", dir);
        s.image_size = 4;
        s.eval_resize = 6;
        s.augment = rrc ? EG_AUG_RRC : 0;
        eg_dataset d;
        eg_err err;
        memset(&err, 0, sizeof err);
        ck_assert_msg(eg_data_open(&d, &s, 1, 1, &err) == EG_OK, "%s", err.msg);
        ck_assert_int_eq(d.n_test, 1);
        ck_assert_int_eq(d.shape.h, 4);
        ck_assert_int_eq(d.shape.c, 3);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 4; y++)
                for (int i = 0; i < 4; i++)
                    ck_assert_float_eq_tol(d.x_test[(c * 4 + y) * 4 + i], col[i] + 40 * c, 1e-3);
        eg_data_free(&d);
    }
    /* random_resized_crop alone: eval_resize defaults to round(4 * 256 / 224) = 5 */
    eg_data_spec s = spec_of("image_folder", dir);
    s.image_size = 4;
    s.augment = EG_AUG_RRC;
    eg_dataset d;
    eg_err err;
    ck_assert_msg(eg_data_load(&d, &s, 1, 1, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.rrc, 4);
    ck_assert_int_eq(d.rrc_eval, 5);
    eg_data_free(&d);
    rm_tree(tmp);
}
END_TEST

/* random_resized_crop through eg_data_fill_batch: the crop drawn from the node's stream and
 * resized (a constant image stays constant; a ramp stays inside its range and is mirrored
 * by flip); memory and stream caches give the same floats; a gray first image still makes
 * an RGB set (torchvision's ImageFolder converts every image to RGB) */
START_TEST(test_rrc_fill_batch)
{
    const char *tmp = eg_test_tmpdir();
    ck_assert_ptr_nonnull(tmp);
    char dir[1024], path[1100];
    cat(dir, sizeof dir, tmp, "rrc");
    snprintf(path, sizeof path, "%s/train/a", dir);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/test/a", dir);
    mkdir_p(path);
    snprintf(path, sizeof path, "%s/train/a/0.png", dir);
    write_png_fn(path, 30, 20, 1, ramp_x, 0); /* gray first: 3x, 0..87 */
    snprintf(path, sizeof path, "%s/train/a/1.jpg", dir);
    write_jpeg(path, 17, 23, 3, 4);
    snprintf(path, sizeof path, "%s/train/a/2.png", dir);
    write_png_fn(path, 9, 40, 3, flat_px, 50);
    snprintf(path, sizeof path, "%s/test/a/0.png", dir);
    write_png_fn(path, 8, 8, 3, flat_px, 5);
    eg_dataset d[2];
    for (int k = 0; k < 2; k++) {
        eg_data_spec s = spec_of("image_folder", dir);
        s.image_size = 6;
        s.augment = EG_AUG_RRC | EG_AUG_FLIP;
        s.cache = k ? EG_CACHE_STREAM : EG_CACHE_MEMORY;
        eg_err err;
        ck_assert_msg(eg_data_load(&d[k], &s, 1, 1, &err) == EG_OK, "%s", err.msg);
        ck_assert_int_eq(d[k].shape.c, 3);
        ck_assert_int_eq(d[k].dim, 3 * 36);
        ck_assert_int_eq(d[k].rrc, 6);
    }
    ck_assert_ptr_nonnull(d[0].img_train);
    ck_assert_ptr_null(d[1].img_train);
    ck_assert_ptr_nonnull(d[1].stream);
    ck_assert_int_eq(d[0].img_train[0].w, 30); /* kept as decoded */
    ck_assert_int_eq(d[0].img_train[0].c, 1);
    float xa[3 * 36], xb[3 * 36], xc[3 * 36];
    int32_t y;
    int flipped = 0, plain = 0;
    eg_rng ra, rb;
    eg_rng_seed(&ra, 1, EG_STREAM_AUGMENT, 0);
    rb = ra;
    for (int it = 0; it < 200; it++) {
        int32_t k = it % 3;
        eg_rng keep = ra;
        eg_data_fill_batch(&d[0], &k, 1, EG_AUG_RRC | EG_AUG_FLIP, &ra, xa, &y);
        eg_data_fill_batch(&d[1], &k, 1, EG_AUG_RRC | EG_AUG_FLIP, &rb, xb, &y);
        ck_assert_msg(!memcmp(xa, xb, sizeof xa), "memory and stream differ (draw %d)", it);
        ck_assert_mem_eq(&ra, &rb, sizeof ra);
        /* the same box without the flip: the mirror image, or the same */
        eg_rng again = keep;
        eg_data_fill_batch(&d[0], &k, 1, EG_AUG_RRC, &again, xc, &y);
        int same = !memcmp(xa, xc, sizeof xa), mirror = 1;
        for (int r = 0; r < 18; r++)
            for (int j = 0; j < 6; j++)
                mirror &= xa[r * 6 + j] == xc[r * 6 + 5 - j];
        ck_assert_msg(same || mirror, "flip is neither the image nor its mirror");
        if (k == 0) {
            flipped += mirror && !same;
            plain += same && !mirror;
            for (int p = 0; p < 36; p++) { /* gray: three equal channels, in the ramp's range */
                double raw0 = xa[p] / d[0].inv[0] + d[0].mean[0];
                ck_assert_msg(raw0 >= -1e-3 && raw0 <= 87 + 1e-3, "%g outside [0, 87]", raw0);
                for (int c = 1; c < 3; c++)
                    ck_assert_double_eq_tol(xa[c * 36 + p] / d[0].inv[c] + d[0].mean[c], raw0, 1e-3);
            }
        }
        if (k == 2) /* a constant image stays constant */
            for (int c = 0; c < 3; c++)
                for (int p = 1; p < 36; p++)
                    ck_assert_float_eq_tol(xa[c * 36 + p], xa[c * 36], 1e-5);
    }
    ck_assert_int_gt(flipped, 10);
    ck_assert_int_gt(plain, 10);
    /* without a stream of draws: the evaluation transform (eval_resize 7: 30x20 -> 10x7,
     * centre 6x6), the same on both caches */
    int32_t k0 = 0;
    eg_data_fill_batch(&d[0], &k0, 1, EG_AUG_RRC, NULL, xa, &y);
    eg_data_fill_batch(&d[1], &k0, 1, EG_AUG_RRC, NULL, xb, &y);
    ck_assert_mem_eq(xa, xb, sizeof xa);
    /* the streamed set holds no test floats: decoded per evaluation, the same floats */
    ck_assert_ptr_nonnull(d[0].x_test);
    ck_assert_ptr_null(d[1].x_test);
    ck_assert_ptr_null(d[1].u8_test);
    ck_assert_mem_eq(eg_data_test_rows(&d[1], 0, 1, xb), d[0].x_test, sizeof xb);
    ck_assert_int_lt(eg_data_bytes(&d[1]) - eg_data_stream_bytes(d[1].stream),
                     eg_data_bytes(&d[0]));
    eg_data_free(&d[0]);
    eg_data_free(&d[1]);
    rm_tree(tmp);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_idx_raw_and_gz);
    tcase_add_test(tc, test_idx_errors);
    tcase_add_test(tc, test_idx4_channels);
    tcase_add_test(tc, test_locate_env);
    tcase_add_test(tc, test_png_gray_rgb);
    tcase_add_test(tc, test_png_errors);
    tcase_add_test(tc, test_cifar10);
    tcase_add_test(tc, test_cifar100);
    tcase_add_test(tc, test_cifar_errors);
    tcase_add_test(tc, test_jpeg_folder);
    tcase_add_test(tc, test_image_size);
    tcase_add_test(tc, test_jpeg_errors);
    tcase_add_test(tc, test_csv_good);
    tcase_add_test(tc, test_csv_errors);
    tcase_add_test(tc, test_digits_wrong_width);
    tcase_add_test(tc, test_synthetic);
    tcase_add_test(tc, test_partition_iid_sorted);
    tcase_add_test(tc, test_partition_dirichlet);
    tcase_add_test(tc, test_partition_hold_out);
    tcase_add_test(tc, test_partition_errors);
    tcase_add_test(tc, test_fill_batch);
    tcase_add_test(tc, test_read_span);
    tcase_add_test(tc, test_rank_shares);
    tcase_add_test(tc, test_rrc_box);
    tcase_add_test(tc, test_resample_hand);
    tcase_add_test(tc, test_eval_resize_geometry);
    tcase_add_test(tc, test_rrc_fill_batch);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return eg_test_run(data_suite()); }
