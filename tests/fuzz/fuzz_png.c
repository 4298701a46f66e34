/* fuzz_png.c - libFuzzer harness for the PNG side of image_folder (lib/data_image.c with libpng,
 * through eg_data_load so normalisation runs too).
 *
 * The tree DIR/{train,test}/{a,b}/NN.png holds valid 8x8 gray images (train: 2 per
 * class, test: 1 per class). The first input byte picks the file the rest of the input
 * replaces (b % 4): 0 train/a/00.png (the first image, which fixes the shape),
 * 1 train/a/01.png, 2 train/b/00.png, 3 test/b/00.png.
 * Seeds: tests/fuzz/corpus/png/ (first byte + PNGs of several colour types, depths,
 * interlacing, palettes; make_seeds.py writes them).
 */
#include "fuzz_common.h"
#include "data.h"

#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* a valid 8x8 8-bit gray PNG, pixel values from seed */
static size_t make_png(uint8_t *out, int seed)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t raw[8 * 9];
    for (int y = 0; y < 8; y++) {
        raw[y * 9] = 0;
        for (int x = 0; x < 8; x++)
            raw[y * 9 + 1 + x] = (uint8_t)(seed * 37 + y * 8 + x);
    }
    uint8_t z[256];
    uLongf zlen = sizeof z;
    if (compress(z, &zlen, raw, sizeof raw) != Z_OK)
        abort();
    size_t o = 0;
    memcpy(out, sig, 8);
    o = 8;
    /* IHDR */
    put32(out + o, 13);
    memcpy(out + o + 4, "IHDR", 4);
    put32(out + o + 8, 8);
    put32(out + o + 12, 8);
    out[o + 16] = 8, out[o + 17] = 0, out[o + 18] = 0, out[o + 19] = 0, out[o + 20] = 0;
    put32(out + o + 21, (uint32_t)crc32(0, out + o + 4, 17));
    o += 25;
    /* IDAT */
    put32(out + o, (uint32_t)zlen);
    memcpy(out + o + 4, "IDAT", 4);
    memcpy(out + o + 8, z, zlen);
    put32(out + o + 8 + zlen, (uint32_t)crc32(0, out + o + 4, (uInt)zlen + 4));
    o += 12 + zlen;
    /* IEND */
    put32(out + o, 0);
    memcpy(out + o + 4, "IEND", 4);
    put32(out + o + 8, (uint32_t)crc32(0, (const uint8_t *)"IEND", 4));
    o += 12;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const files[4] = {"train/a/00.png", "train/a/01.png", "train/b/00.png",
                                         "test/b/00.png"};
    static const char *const others[] = {"train/b/01.png", "test/a/00.png", NULL};
    int which = data[0] % 4;
    uint8_t buf[512];
    for (int k = 0; k < 4; k++) {
        if (k == which) {
            fz_write(files[k], data + 1, size - 1);
        } else {
            size_t len = make_png(buf, k);
            fz_write(files[k], buf, len);
        }
    }
    for (int k = 0; others[k]; k++) {
        size_t len = make_png(buf, 10 + k);
        fz_write(others[k], buf, len);
    }
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = EG_DATA_IMAGE_FOLDER; /* png_folder: its old name */
    fz_path("", s.path, sizeof s.path);
    s.path[strlen(s.path) - 1] = 0;
    s.batch_size = 1;
    eg_dataset d;
    int rc = fz_load(&d, &s, "eg_data_load(png_folder)");
    if (rc == EG_OK) {
        if (d.n_train != 4 || d.n_test != 2 || d.classes != 2 || d.dim < 1 ||
            (d.shape.c != 1 && d.shape.c != 3)) {
            fprintf(stderr, "implausible dataset: %d train, %d test, %dx%dx%d, %d classes\n",
                    d.n_train, d.n_test, d.shape.c, d.shape.h, d.shape.w, d.classes);
            abort();
        }
    }
    eg_data_free(&d);
    fz_check_rank(s);
    return 0;
}
