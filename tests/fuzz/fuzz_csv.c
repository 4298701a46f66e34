/* fuzz_csv.c - libFuzzer harness for the csv and digits readers (lib/data_csv.c, through
 * eg_data_load so normalisation runs too, then eg_partition_make).
 *
 * The first input byte picks the role of the rest of the input (b & 3):
 *   0: DIR/train.csv next to a valid DIR/test.csv      1: DIR/test.csv next to a valid train.csv
 *   2: a single csv file (data.path is the file)       3: digits.csv for data name digits
 * and, for 0 and 1, whether the file is stored as train.csv.gz / test.csv.gz (b & 4; zlib
 * reads plain text under that name too). When the data loads it is partitioned over
 * 2 nodes (iid, sorted, dirichlet) with batch_size 1.
 * Seeds: tests/fuzz/corpus/csv/.
 */
#include "fuzz_common.h"
#include "data.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char GOOD[] =
    "label,a,b,c\n"
    "0,1.5,2,3\n1,0.5,-2,3e2\n2,4,5,6\n0,7,8,9\n1,1,1,1\n2,0,0,1\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int role = data[0] & 3, gz = (data[0] & 4) != 0;
    static const char *const all[] = {"d/train.csv", "d/train.csv.gz", "d/test.csv",
                                      "d/test.csv.gz", "data.csv", "digits.csv", NULL};
    for (int i = 0; all[i]; i++)
        fz_unlink(all[i]);
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = EG_DATA_CSV;
    s.batch_size = 1;
    s.alpha = 0.5;
    if (role < 2) {
        const char *mine = role == 0 ? (gz ? "d/train.csv.gz" : "d/train.csv")
                                     : (gz ? "d/test.csv.gz" : "d/test.csv");
        const char *other = role == 0 ? "d/test.csv" : "d/train.csv";
        fz_write(mine, data + 1, size - 1);
        fz_write(other, GOOD, sizeof GOOD - 1);
        fz_path("d", s.path, sizeof s.path);
    } else if (role == 2) {
        fz_write("data.csv", data + 1, size - 1);
        fz_path("data.csv", s.path, sizeof s.path);
    } else {
        s.kind = EG_DATA_DIGITS;
        fz_write("digits.csv", data + 1, size - 1);
        fz_path("digits.csv", s.path, sizeof s.path);
    }
    eg_dataset d;
    int rc = fz_load(&d, &s, "eg_data_load(csv)");
    if (rc == EG_OK) {
        fz_check_sizes(&d, 65536);
        /* normalised features must be finite in both splits */
        for (int sp = 0; sp < 2; sp++) {
            const float *x = sp ? d.x_test : d.x_train;
            size_t cnt = (size_t)(sp ? d.n_test : d.n_train) * (size_t)d.dim;
            for (size_t i = 0; i < cnt; i++)
                if (!isfinite(x[i])) {
                    fprintf(stderr, "%s feature %zu is %g after normalisation\n",
                            sp ? "test" : "train", i, (double)x[i]);
                    abort();
                }
        }
        fz_check_partitions(&d, &s);
    }
    eg_data_free(&d);
    fz_check_rank(s);
    return 0;
}
