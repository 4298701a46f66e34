/* check_data_real.c - the real datasets this machine may have: MNIST and Fashion-MNIST
 * (data/get_data.sh, or $EXPGRAPH_DATA) and scikit-learn's digits. Everything that can be
 * tested with generated files is in check_data.c.
 *
 * A test that cannot run must not pass: when a dataset is missing its test is not run, the
 * missing ones are named on stderr, and the program exits 77 (CTest's SKIP_RETURN_CODE,
 * set for this test in tests/CMakeLists.txt) once the tests that could run have passed. A
 * failure of one that ran still exits 1.
 */
#include "data.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SKIP_CODE 77

static int load(eg_dataset *d, eg_data_kind kind, eg_err *err)
{
    eg_data_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.partition = EG_PART_IID;
    s.batch_size = 1;
    memset(err, 0, sizeof *err);
    return eg_data_load(d, &s, 1, 1, err);
}

/* per-channel mean/std of the normalised training set: ~0 and ~1 */
static void check_normalised(const eg_dataset *d)
{
    size_t hw = (size_t)d->shape.h * (size_t)d->shape.w;
    for (int c = 0; c < d->shape.c; c++) {
        double s = 0, s2 = 0, n = 0;
        for (int i = 0; i < d->n_train; i++)
            for (size_t p = 0; p < hw; p++) {
                size_t at = (size_t)i * (size_t)d->dim + (size_t)c * hw + p;
                double v = d->u8_train ? d->lut[c * 256 + d->u8_train[at]] : d->x_train[at];
                s += v;
                s2 += v * v;
                n++;
            }
        double mean = s / n, sd = sqrt(s2 / n - mean * mean);
        ck_assert_double_eq_tol(mean, 0.0, 1e-4);
        ck_assert_double_eq_tol(sd, 1.0, 1e-3);
    }
}

static void real_idx(eg_data_kind kind)
{
    eg_dataset d;
    eg_err err;
    double t0 = eg_now();
    const char *name = eg_data_kinds[kind].name;
    ck_assert_msg(load(&d, kind, &err) == EG_OK, "%s", err.msg);
    fprintf(stderr, "check_data_real: %s loaded in %.2f s: %s\n", name, eg_now() - t0, d.desc);
    ck_assert_int_eq(d.n_train, 60000);
    ck_assert_int_eq(d.n_test, 10000);
    ck_assert_int_eq(d.shape.c, 1);
    ck_assert_int_eq(d.shape.h, 28);
    ck_assert_int_eq(d.shape.w, 28);
    ck_assert_int_eq(d.classes, 10);
    long counts[10] = {0};
    for (int i = 0; i < d.n_train; i++)
        counts[d.y_train[i]]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_gt(counts[c], 5000);
    check_normalised(&d);
    eg_data_free(&d);
}

START_TEST(test_mnist) { real_idx(EG_DATA_MNIST); }
END_TEST

START_TEST(test_fashion_mnist) { real_idx(EG_DATA_FASHION_MNIST); }
END_TEST

START_TEST(test_digits)
{
    eg_dataset d;
    eg_err err;
    ck_assert_msg(load(&d, EG_DATA_DIGITS, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(d.n_train + d.n_test, 1797);
    ck_assert_int_eq(d.n_train, 1438);
    ck_assert_int_eq(d.n_test, 359);
    ck_assert_int_eq(d.classes, 10);
    ck_assert_int_eq(d.shape.c, 1);
    ck_assert_int_eq(d.shape.h, 8);
    ck_assert_int_eq(d.shape.w, 8);
    check_normalised(&d);
    eg_data_free(&d);
}
END_TEST

int main(void)
{
    const struct {
        eg_data_kind kind;
        const TTest *test;
        const char *how;
    } sets[] = {
        {EG_DATA_MNIST, test_mnist, "run data/get_data.sh or set EXPGRAPH_DATA"},
        {EG_DATA_FASHION_MNIST, test_fashion_mnist, "run data/get_data.sh or set EXPGRAPH_DATA"},
        {EG_DATA_DIGITS, test_digits, "apt-get install python3-sklearn, or data/get_data.sh"},
    };
    int avail[sizeof sets / sizeof sets[0]];
    int ran = 0, missing = 0;
    char dir[4096];
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        avail[i] = eg_data_locate(sets[i].kind, dir, sizeof dir) == 0;
        if (avail[i]) {
            ran++;
        } else {
            fprintf(stderr, "check_data_real: SKIP %s: not found (%s)\n",
                    eg_data_kinds[sets[i].kind].name,
                    sets[i].how);
            missing++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "check_data_real: no real dataset here; skipped (exit %d)\n", SKIP_CODE);
        return SKIP_CODE;
    }
    Suite *s = suite_create("data_real");
    TCase *tc = tcase_create("real");
    tcase_set_timeout(tc, 120);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (avail[i])
            tcase_add_test(tc, sets[i].test);
    suite_add_tcase(s, tc);
    int rc = eg_test_run(s);
    if (rc != EXIT_SUCCESS)
        return rc;
    if (missing) {
        fprintf(stderr, "check_data_real: %d ran and passed, %d skipped (exit %d)\n", ran, missing,
                SKIP_CODE);
        return SKIP_CODE;
    }
    return EXIT_SUCCESS;
}
