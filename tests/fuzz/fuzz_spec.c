/* fuzz_spec.c - libFuzzer harness for the spec reader (lib/yamltree.c, lib/spec.c, and
 * lib/topology.c through the graph-vs-nodes check).
 *
 * The input is a spec file. When its first line is "#set KEY=VALUE" (a YAML comment) that
 * line is also applied as a --set override. For every input:
 *  - eg_spec_load must return EG_OK or an error with a message (never crash);
 *  - when it loads, the resolved spec (eg_spec_to_yaml) must load again and give the same
 *    eg_spec_hash: spec.yaml in a run directory is "enough to rerun it" (docs/spec.md);
 *  - eg_sweep_load on the same file, and up to 16 of its points through eg_spec_load;
 *  - the whole input as a graph text (`expgraph graph NAME`), eg_spec_graph_from_text.
 * Seeds: tests/fuzz/corpus/spec/. Dictionary: tests/fuzz/spec.dict.
 */
#include "fuzz_common.h"
#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512], rpath[512];
    fz_write("spec.yaml", data, size);
    fz_path("spec.yaml", path, sizeof path);
    fz_path("resolved.yaml", rpath, sizeof rpath);

    /* optional --set from a first line "#set KEY=VALUE" */
    char setbuf[512];
    char *sets[1];
    int nsets = 0;
    if (size > 5 && !memcmp(data, "#set ", 5)) {
        size_t l = 0;
        while (5 + l < size && l + 1 < sizeof setbuf && data[5 + l] != '\n' && data[5 + l] != '\0')
            l++;
        memcpy(setbuf, data + 5, l);
        setbuf[l] = 0;
        sets[nsets++] = setbuf;
    }

    eg_err err;
    memset(&err, 0, sizeof err);
    eg_spec s;
    int rc = eg_spec_load(&s, path, sets, nsets, &err);
    fz_check_rc(rc, &err, "eg_spec_load");
    if (rc == EG_OK) {
        eg_err e2;
        memset(&e2, 0, sizeof e2);
        char *y = eg_spec_to_yaml(&s, &e2);
        if (!y) {
            fprintf(stderr, "eg_spec_to_yaml failed: %s\n", e2.msg);
            abort();
        }
        fz_write("resolved.yaml", y, strlen(y));
        eg_spec s2;
        int rc2 = eg_spec_load(&s2, rpath, NULL, 0, &e2);
        if (rc2 != EG_OK) {
            fprintf(stderr, "the resolved spec does not load again: %s\n--- resolved:\n%s", e2.msg,
                    y);
            abort();
        }
        uint64_t h1 = eg_spec_hash(&s), h2 = eg_spec_hash(&s2);
        if (h1 != h2) {
            char *y2 = eg_spec_to_yaml(&s2, &e2);
            fprintf(stderr, "the resolved spec reloads as a different spec\n--- first:\n%s--- second:\n%s",
                    y, y2 ? y2 : "(null)");
            abort();
        }
        eg_spec_free(&s2);
        free(y);
    }
    eg_spec_free(&s);

    /* sweeps */
    eg_sweep sw;
    memset(&err, 0, sizeof err);
    rc = eg_sweep_load(&sw, path, sets, nsets, &err);
    fz_check_rc(rc, &err, "eg_sweep_load");
    if (rc == EG_OK) {
        char **psets = calloc((size_t)(nsets + sw.nkeys + 1), sizeof *psets);
        for (long p = 0; psets && p < sw.npoints && p < 16; p++) {
            char dir[4096];
            for (int i = 0; i < nsets; i++)
                psets[i] = sets[i];
            int prc = eg_sweep_point(&sw, p, psets + nsets, dir, sizeof dir);
            if (prc == EG_OK) {
                eg_spec sp;
                memset(&err, 0, sizeof err);
                int lrc = eg_spec_load(&sp, path, psets, nsets + sw.nkeys, &err);
                fz_check_rc(lrc, &err, "eg_spec_load(sweep point)");
                eg_spec_free(&sp);
            }
            for (int k = 0; k < sw.nkeys; k++) {
                free(psets[nsets + k]);
                psets[nsets + k] = NULL;
            }
        }
        free(psets);
    }
    eg_sweep_free(&sw);

    /* graph text, as on the `expgraph graph` command line */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    eg_graph_spec g;
    memset(&err, 0, sizeof err);
    rc = eg_spec_graph_from_text(text, &g, &err);
    fz_check_rc(rc, &err, "eg_spec_graph_from_text");
    free(text);
    return 0;
}
