/* fuzz_idx.c - libFuzzer harness for the idx loader (lib/data_idx.c, through eg_data_load
 * so normalisation runs too, then eg_partition_make).
 *
 * The data set is a directory with the four idx files of a valid 10-train / 5-test set of
 * 8x8 images. The first input byte b picks which file the rest of the input replaces
 * (b & 3: train images, train labels, test images, test labels) and whether it is stored
 * under the ".gz" name (b & 4; zlib reads a plain file under that name too, and a gzip
 * stream when the input is one). With b & 8 the rest replaces both train files: two
 * bytes (big-endian) give the length of the images part, the labels file follows (so
 * that headers can agree with each other, e.g. on a huge sample count).
 * When the data loads, it is partitioned over 2 nodes (iid, sorted and dirichlet) with
 * batch_size 1.
 * Seeds: tests/fuzz/corpus/idx/ (first byte + a valid file).
 */
#include "fuzz_common.h"
#include "data.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

static size_t images(uint8_t *buf, uint32_t n)
{
    uint8_t h[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 8};
    h[4] = (uint8_t)(n >> 24), h[5] = (uint8_t)(n >> 16), h[6] = (uint8_t)(n >> 8), h[7] = (uint8_t)n;
    memcpy(buf, h, 16);
    for (uint32_t i = 0; i < n * 64; i++)
        buf[16 + i] = (uint8_t)(i * 7 + i / 64);
    return 16 + (size_t)n * 64;
}

static size_t labels(uint8_t *buf, uint32_t n)
{
    uint8_t h[8] = {0, 0, 8, 1, 0, 0, 0, 0};
    h[7] = (uint8_t)n;
    memcpy(buf, h, 8);
    for (uint32_t i = 0; i < n; i++)
        buf[8 + i] = (uint8_t)(i % 3);
    return 8 + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 3, gz = (data[0] & 4) != 0, pair = (data[0] & 8) != 0;
    const uint8_t *part[4] = {NULL, NULL, NULL, NULL};
    size_t plen[4] = {0, 0, 0, 0};
    if (pair) {
        if (size < 3)
            return 0;
        size_t l = (size_t)data[1] << 8 | data[2];
        if (l > size - 3)
            l = size - 3;
        part[0] = data + 3, plen[0] = l;
        part[1] = data + 3 + l, plen[1] = size - 3 - l;
    } else {
        part[which] = data + 1, plen[which] = size - 1;
    }
    static uint8_t buf[16 + 10 * 64];
    for (int k = 0; k < 4; k++) {
        char gzname[64];
        snprintf(gzname, sizeof gzname, "%s.gz", names[k]);
        fz_unlink(names[k]);
        fz_unlink(gzname);
        const char *target = gz ? gzname : names[k];
        if (part[k]) {
            fz_write(target, part[k], plen[k]);
        } else {
            uint32_t n = k < 2 ? 10 : 5;
            size_t len = (k & 1) ? labels(buf, n) : images(buf, n);
            fz_write(names[k], buf, len);
        }
    }
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = EG_DATA_IDX;
    fz_path("", s.path, sizeof s.path);
    s.path[strlen(s.path) - 1] = 0; /* drop the trailing '/' */
    s.batch_size = 1;
    s.alpha = 0.5;
    eg_dataset d;
    int rc = fz_load(&d, &s, "eg_data_load(idx)");
    if (rc == EG_OK) {
        fz_check_sizes(&d, 256);
        fz_check_partitions(&d, &s);
    }
    eg_data_free(&d);
    fz_check_rank(s);
    return 0;
}
