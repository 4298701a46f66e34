#include "testutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run(Suite *s, int fork)
{
    SRunner *sr = srunner_create(s);
    if (!fork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    return (failed == 0 && run > 0) ? EXIT_SUCCESS : EXIT_FAILURE;
}

int eg_test_run(Suite *s) { return run(s, 1); }
int eg_test_run_nofork(Suite *s) { return run(s, 0); }

const char *eg_test_tmpdir(void)
{
    static char buf[512];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/egtestXXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf))
        return NULL;
    return buf;
}
