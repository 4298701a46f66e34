/* testutil.h - helpers shared by the Check suites. */
#ifndef EG_TESTUTIL_H
#define EG_TESTUTIL_H
#include <check.h>
/* Runs the suite; returns EXIT_SUCCESS only when every test passed and at least one ran. */
int eg_test_run(Suite *s);
/* The same in this process (CK_NOFORK), for suites that initialised MPI themselves. */
int eg_test_run_nofork(Suite *s);
/* A fresh empty temporary directory (mkdtemp under $TMPDIR or /tmp); static buffer. */
const char *eg_test_tmpdir(void);
#endif
