/* fuzz_wmat.c - libFuzzer harness for the weight-matrix file graph (lib/topology.c:
 * graph {name: file, path: W.csv} through eg_topo_init, then the W(k) accessors and, for
 * small n, eg_topo_stats_compute with LAPACK).
 *
 * The input is the W.csv file. The node count is the number of data lines the loader will
 * see (lines that are neither blank nor '#' comments), so that the rows get parsed; when
 * there are none, or more than 64, n = 4. A loaded matrix must be row-stochastic with
 * entries >= 0 (the loader's promise): checked here on the dense copy.
 * Seeds: tests/fuzz/corpus/wmat/.
 */
#include "fuzz_common.h"
#include "topology.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int data_lines(const uint8_t *p, size_t n)
{
    int rows = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\n')
            j++;
        size_t k = i;
        while (k < j && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r'))
            k++;
        if (k < j && p[k] != '#')
            rows++;
        i = j + 1;
    }
    return rows;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write("W.csv", data, size);
    int n = data_lines(data, size);
    if (n < 1 || n > 64)
        n = 4;
    eg_graph_spec g;
    memset(&g, 0, sizeof g);
    g.kind = EG_GRAPH_FILE;
    fz_path("W.csv", g.path, sizeof g.path);
    eg_topo *t = NULL;
    eg_err err;
    memset(&err, 0, sizeof err);
    int rc = eg_topo_init(&t, &g, n, 1, &err);
    fz_check_rc(rc, &err, "eg_topo_init(file)");
    if (rc != EG_OK) {
        if (t) {
            fprintf(stderr, "eg_topo_init failed but left *out set\n");
            abort();
        }
        return 0;
    }
    if (eg_topo_nodes(t) != n || eg_topo_period(t) != 1) {
        fprintf(stderr, "file graph: %d nodes, period %d\n", eg_topo_nodes(t), eg_topo_period(t));
        abort();
    }
    double *W = malloc((size_t)n * (size_t)n * sizeof *W);
    if (!W)
        abort();
    eg_topo_dense(t, 0, W);
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int j = 0; j < n; j++) {
            double w = W[(size_t)i * n + j];
            if (!(w >= 0) || !isfinite(w)) {
                fprintf(stderr, "W[%d][%d] = %g after loading\n", i, j, w);
                abort();
            }
            sum += w;
        }
        if (!(fabs(sum - 1.0) <= 1e-6)) {
            fprintf(stderr, "row %d of the loaded W sums to %.17g\n", i, sum);
            abort();
        }
    }
    const eg_wmat *m = eg_topo_weights(t, 7);
    if (!m || m->n != n || m->rowptr[n] != m->nnz) {
        fprintf(stderr, "eg_topo_weights: inconsistent CSR\n");
        abort();
    }
    eg_topo_stats st;
    memset(&err, 0, sizeof err);
    rc = eg_topo_stats_compute(t, &st, &err);
    fz_check_rc(rc, &err, "eg_topo_stats_compute");
    if (rc == EG_OK && (!isfinite(st.rho) || st.rho < -1e-9 || st.degree < 0 || st.degree >= n + 1)) {
        fprintf(stderr, "stats: rho %g degree %d\n", st.rho, st.degree);
        abort();
    }
    free(W);
    eg_topo_free(t);
    return 0;
}
