/* check_common.c - the one number parser (eg_parse_*) and the atomic writer
 * (eg_write_atomic) of common.c. */
#include "common.h"
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(test_parse_long)
{
    long v = 7;
    ck_assert(!eg_parse_long("42", &v) && v == 42);
    ck_assert(!eg_parse_long("-3", &v) && v == -3);
    ck_assert(!eg_parse_long(" 5", &v) && v == 5); /* leading white space, as strtol */
    static const char *bad[] = {"", "x", "5x", "5 ", "1.5", "99999999999999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        ck_assert_msg(eg_parse_long(bad[i], &v) && v == 7, "'%s' accepted", bad[i]);
    }
    ck_assert(eg_parse_long(NULL, &v));
}
END_TEST

START_TEST(test_parse_u64)
{
    uint64_t v = 7;
    ck_assert(!eg_parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    ck_assert(!eg_parse_u64("0", &v) && v == 0);
    static const char *bad[] = {"", "-1", "+1", " 1", "1 ", "18446744073709551616", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        ck_assert_msg(eg_parse_u64(bad[i], &v) && v == 7, "'%s' accepted", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_double)
{
    double v = 7;
    ck_assert(!eg_parse_double("0.25", &v) && v == 0.25);
    ck_assert(!eg_parse_double("-1e-3", &v) && v == -1e-3);
    ck_assert(!eg_parse_double("nan", &v) && isnan(v));
    ck_assert(!eg_parse_double("inf", &v) && isinf(v));
    ck_assert(!eg_parse_double("1e-400", &v) && v >= 0 && v < 1e-300); /* underflow: tiny */
    v = 7;
    ck_assert(eg_parse_double("1e999", &v) && v == 7); /* overflow refused */
    static const char *bad[] = {"", " ", "x", "0.5x", "0.5 ", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(eg_parse_double(bad[i], &v) && v == 7, "'%s' accepted", bad[i]);
    /* eg_parse_number: the overflow reads as inf (for "not a finite number" messages) */
    ck_assert(!eg_parse_number("-1e999", &v) && isinf(v) && v < 0);
    ck_assert(eg_parse_number("half", &v));
}
END_TEST

static int fill_ok(FILE *f, void *ud)
{
    fputs(ud, f);
    return 0;
}

static int fill_fails(FILE *f, void *ud)
{
    fputs("partial", f);
    return ENOSPC;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

START_TEST(test_write_atomic)
{
    const char *dir = eg_test_tmpdir();
    ck_assert(dir);
    char path[600], tmp[620];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    eg_err e = {0};
    ck_assert_int_eq(eg_write_text_atomic(path, "", 1, "first\n", &e), 0);
    ck_assert_str_eq(slurp(path), "first\n");
    ck_assert_int_eq(eg_write_atomic(path, "", 0, fill_ok, "second\n", &e), 0);
    ck_assert_str_eq(slurp(path), "second\n");
    /* a failing fill: the old content stays, no temporary is left, the message says why */
    ck_assert_int_eq(eg_write_atomic(path, "thing ", 0, fill_fails, NULL, &e), EG_ERUN);
    ck_assert_str_eq(slurp(path), "second\n");
    struct stat st;
    ck_assert(stat(tmp, &st) != 0);
    ck_assert_msg(strstr(e.msg, "cannot write thing ") && strstr(e.msg, strerror(ENOSPC)), "%s",
                  e.msg);
    /* a directory that does not exist */
    char nowhere[700];
    snprintf(nowhere, sizeof nowhere, "%s/no/such/file", dir);
    ck_assert_int_eq(eg_write_text_atomic(nowhere, "", 0, "x", &e), EG_ERUN);
    ck_assert_msg(strstr(e.msg, "cannot write"), "%s", e.msg);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("common");
    tcase_add_test(tc, test_parse_long);
    tcase_add_test(tc, test_parse_u64);
    tcase_add_test(tc, test_parse_double);
    tcase_add_test(tc, test_write_atomic);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
