/* fuzz_jpeg.c - libFuzzer harness for the JPEG side of image_folder (lib/data_image.c with
 * libjpeg-turbo, through eg_data_load so normalisation runs too), and for the resize +
 * centre crop of data.image_size.
 *
 * The tree DIR/{train,test}/{a,b}/NN.jpg holds valid 8x8 JPEGs (train: 2 per class, test:
 * 1 per class). The first input byte b picks the file the rest of the input replaces
 * (b % 4): 0 train/a/00.jpg (the first image, which fixes the shape), 1 train/a/01.jpg,
 * 2 train/b/00.jpg, 3 test/b/00.jpg. b & 4: the other images are RGB (else gray); b & 8:
 * data.image_size 5 (every image resized and centre-cropped; else all must be 8x8);
 * b & 16: data.augment [random_resized_crop, flip] (image_size 5; with b & 64 eval_resize 7),
 * and every training sample is then cut by eg_data_fill_batch from a stream seeded by the
 * input (crop windows of the fuzzed image's size, the bilinear resample, the flip); b & 32:
 * data.cache: stream (decoded per minibatch, through the read-ahead cache; resized: the test
 * set decoded per evaluation too).
 * Besides "no crash": libjpeg must never print or exit (its errors and corrupt-data warnings
 * come back as EG_EINPUT), and a loaded set has the shape asked for.
 * Seeds: tests/fuzz/corpus/jpeg/ (first byte + JPEGs from make_seeds.py's baseline encoder,
 * tests/bad/tinyjpeg.py, and a few shipped libjpeg files: progressive, 4:2:0, restart
 * markers, arithmetic coding).
 */
#include "fuzz_common.h"
#include "data.h"

#include <jpeglib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a valid 8x8 JPEG (gray or RGB) in memory; cached */
static size_t make_jpeg(uint8_t **out, int rgb, int seed)
{
    static unsigned char *cache[2][16];
    static unsigned long len[2][16];
    if (!cache[rgb][seed]) {
        struct jpeg_compress_struct ci;
        struct jpeg_error_mgr jerr;
        ci.err = jpeg_std_error(&jerr);
        jpeg_create_compress(&ci);
        jpeg_mem_dest(&ci, &cache[rgb][seed], &len[rgb][seed]);
        ci.image_width = 8;
        ci.image_height = 8;
        ci.input_components = rgb ? 3 : 1;
        ci.in_color_space = rgb ? JCS_RGB : JCS_GRAYSCALE;
        jpeg_set_defaults(&ci);
        jpeg_set_quality(&ci, 90, TRUE);
        jpeg_start_compress(&ci, TRUE);
        uint8_t row[24];
        while (ci.next_scanline < 8) {
            for (int k = 0; k < 24; k++)
                row[k] = (uint8_t)(seed * 37 + (int)ci.next_scanline * 8 + k);
            JSAMPROW rp = row;
            jpeg_write_scanlines(&ci, &rp, 1);
        }
        jpeg_finish_compress(&ci);
        jpeg_destroy_compress(&ci);
    }
    *out = cache[rgb][seed];
    return (size_t)len[rgb][seed];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const files[4] = {"train/a/00.jpg", "train/a/01.jpg", "train/b/00.jpg",
                                         "test/b/00.jpg"};
    static const char *const others[] = {"train/b/01.jpg", "test/a/00.jpg", NULL};
    int which = data[0] % 4, rgb = (data[0] & 4) != 0, rrc = (data[0] & 16) != 0;
    int resize = (data[0] & 8) || rrc ? 5 : 0;
    uint8_t *img;
    for (int k = 0; k < 4; k++) {
        if (k == which) {
            fz_write(files[k], data + 1, size - 1);
        } else {
            size_t len = make_jpeg(&img, rgb, k);
            fz_write(files[k], img, len);
        }
    }
    for (int k = 0; others[k]; k++) {
        size_t len = make_jpeg(&img, rgb, 10 + k);
        fz_write(others[k], img, len);
    }
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = EG_DATA_IMAGE_FOLDER;
    fz_path("", s.path, sizeof s.path);
    s.path[strlen(s.path) - 1] = 0;
    s.batch_size = 1;
    s.image_size = resize;
    if (rrc) {
        s.augment = EG_AUG_RRC | EG_AUG_FLIP;
        s.eval_resize = (data[0] & 64) ? 7 : 0;
    }
    s.cache = (data[0] & 32) ? EG_CACHE_STREAM : EG_CACHE_MEMORY;
    eg_dataset d;
    int rc = fz_load(&d, &s, "eg_data_load(image_folder)");
    if (rc == EG_OK) {
        int side = resize ? resize : 8;
        if (d.n_train != 4 || d.n_test != 2 || d.classes != 2 || d.shape.h != side ||
            d.shape.w != side || (d.shape.c != 1 && d.shape.c != 3)) {
            fprintf(stderr, "implausible dataset: %d train, %d test, %dx%dx%d, %d classes\n",
                    d.n_train, d.n_test, d.shape.c, d.shape.h, d.shape.w, d.classes);
            abort();
        }
        /* bytes become the lookup table's floats; resized images stay floats (the test set;
         * the training samples are checked as minibatches below) */
        const float *v = d.lut ? d.lut : d.x_test;
        size_t nv = d.lut ? (size_t)d.shape.c * 256 : (size_t)d.n_test * (size_t)d.dim;
        for (size_t k = 0; v && k < nv; k++)
            if (!(v[k] == v[k]) || v[k] > 1e6f || v[k] < -1e6f) {
                fprintf(stderr, "NaN or huge value after normalisation\n");
                abort();
            }
        float t[3 * 8 * 8]; /* a streamed test set (x_test NULL): decoded per evaluation */
        for (int k = 0; !v && k < d.n_test && (size_t)d.dim <= sizeof t / sizeof *t; k++) {
            const float *row = eg_data_test_rows(&d, k, 1, t);
            for (int j = 0; j < d.dim; j++)
                if (!(row[j] == row[j]) || row[j] > 1e6f || row[j] < -1e6f) {
                    fprintf(stderr, "NaN or huge value in a streamed test sample\n");
                    abort();
                }
        }
        /* the minibatches as training sees them (streamed or random_resized_crop: cut now) */
        float x[3 * 8 * 8];
        int32_t y;
        eg_rng r;
        eg_rng_seed(&r, eg_fnv1a(EG_FNV_INIT, data, size), EG_STREAM_AUGMENT, 0);
        for (int32_t k = 0; k < d.n_train && (size_t)d.dim <= sizeof x / sizeof *x; k++) {
            eg_data_fill_batch(&d, &k, 1, s.augment, &r, x, &y);
            for (int j = 0; j < d.dim; j++)
                if (!(x[j] == x[j]) || x[j] > 1e6f || x[j] < -1e6f) {
                    fprintf(stderr, "NaN or huge value in a training minibatch\n");
                    abort();
                }
        }
        eg_err derr;
        if (eg_data_error(&d, &derr) != EG_OK) { /* the files did not change since loading */
            fprintf(stderr, "a streamed decode failed after a good load: %s\n", derr.msg);
            abort();
        }
    }
    eg_data_free(&d);
    fz_check_rank(s);
    return 0;
}
