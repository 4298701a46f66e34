/* fuzz_cifar.c - libFuzzer harness for the cifar10 / cifar100 loader (lib/data_cifar.c,
 * through eg_data_load so normalisation runs too, then eg_partition_make).
 *
 * The data set is a directory holding a valid set of 2-record files: data_batch_1..5.bin
 * and test_batch.bin (CIFAR-10, 3073-byte records), or train.bin and test.bin (CIFAR-100,
 * 3074-byte records). The first input byte b picks the set (b & 8: CIFAR-100) and the file
 * the rest of the input replaces (b & 7, modulo the number of files: 6 or 2); with b & 16
 * the files sit in the archive's own subdirectory (cifar-10-batches-bin/, cifar-100-binary/)
 * of the directory given. When the data loads: 3x32x32, 10 or 100 classes, every label in
 * range, and the partitions over 2 nodes are checked.
 * Seeds: tests/fuzz/corpus/cifar/ (first byte + records, make_seeds.py).
 */
#include "fuzz_common.h"
#include "data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* n valid records of `rec` bytes (label bytes first) into buf */
static size_t records(uint8_t *buf, int n, int label_bytes, int seed)
{
    size_t rec = (size_t)label_bytes + 3072;
    for (int r = 0; r < n; r++) {
        uint8_t *p = buf + (size_t)r * rec;
        if (label_bytes == 2)
            *p++ = (uint8_t)((seed + r) % 20);
        *p++ = (uint8_t)((seed * 3 + r) % (label_bytes == 2 ? 100 : 10));
        for (int k = 0; k < 3072; k++)
            p[k] = (uint8_t)(k * 7 + seed * 13 + r);
    }
    return (size_t)n * rec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char *const c10[6] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
    static const char *const c100[2] = {"train.bin", "test.bin"};
    static uint8_t buf[2 * 3074];
    int hundred = (data[0] & 8) != 0, nested = (data[0] & 16) != 0;
    const char *const *files = hundred ? c100 : c10;
    int nfiles = hundred ? 2 : 6, which = (data[0] & 7) % nfiles;
    const char *sub = nested ? (hundred ? "cifar-100-binary/" : "cifar-10-batches-bin/") : "";
    /* a fresh directory each time: the other layout's files must not be found */
    char rel[128], root[1024];
    fz_path("set", root, sizeof root);
    fz_rm_tree(root);
    for (int k = 0; k < nfiles; k++) {
        snprintf(rel, sizeof rel, "set/%s%s", sub, files[k]);
        if (k == which)
            fz_write(rel, data + 1, size - 1);
        else
            fz_write(rel, buf, records(buf, 2, hundred ? 2 : 1, k));
    }
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = hundred ? EG_DATA_CIFAR100 : EG_DATA_CIFAR10;
    snprintf(s.path, sizeof s.path, "%s", root);
    s.batch_size = 1;
    s.alpha = 0.5;
    eg_dataset d;
    int rc = fz_load(&d, &s, hundred ? "eg_data_load(cifar100)" : "eg_data_load(cifar10)");
    if (rc == EG_OK) {
        fz_check_sizes(&d, hundred ? 100 : 10);
        if (d.shape.c != 3 || d.shape.h != 32 || d.shape.w != 32 || d.classes != (hundred ? 100 : 10) ||
            !d.black) {
            fprintf(stderr, "implausible dataset: %dx%dx%d, %d classes\n", d.shape.c, d.shape.h,
                    d.shape.w, d.classes);
            abort();
        }
        for (int i = 0; i < d.n_train; i++)
            if (d.y_train[i] < 0 || d.y_train[i] >= d.classes) {
                fprintf(stderr, "label %d out of range\n", d.y_train[i]);
                abort();
            }
        fz_check_partitions(&d, &s);
    }
    eg_data_free(&d);
    fz_check_rank(s);
    return 0;
}
