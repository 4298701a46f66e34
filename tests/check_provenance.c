/* check_provenance.c - run provenance (lib/provenance.c): this machine's facts, their YAML
 * (what `expgraph info` prints), a run's record and the comparison a resume makes with it.
 * One rank, simulated (eg_comm_init_sim): no MPI. */
#include "comm.h"
#include "provenance.h"
#include "spec.h"
#include "testutil.h"
#include "topology.h"
#include "yamltree.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* the scalar at section.key of a parsed document, or NULL */
static const char *yget(const eg_ynode *doc, const char *section, const char *key)
{
    const eg_ynode *s = eg_ymap_get(doc, section, NULL);
    const eg_ynode *v = s ? eg_ymap_get(s, key, NULL) : NULL;
    return v && v->kind == EG_Y_SCALAR ? v->str : NULL;
}

/* replaces the line starting with prefix in path by line */
static void replace_line(const char *path, const char *prefix, const char *line)
{
    char *text = strdup(slurp(path)), out[1 << 16] = "";
    ck_assert_ptr_nonnull(text);
    int found = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        int hit = !strncmp(l, prefix, strlen(prefix));
        found |= hit;
        strcat(out, hit ? line : l);
        strcat(out, "\n");
    }
    free(text);
    ck_assert_msg(found, "no line %s in %s", prefix, path);
    spit(path, out);
}

START_TEST(collect_facts)
{
    setenv("EXPGRAPH_THREADS", "7", 1);
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    eg_prov p;
    eg_prov_collect(&p);
    ck_assert_str_eq(p.version, EG_VERSION);
    ck_assert_str_eq(p.env_threads, "7");
    ck_assert_str_eq(p.env_coretype, "Haswell");
    int a, b, c;
    ck_assert_msg(sscanf(p.onednn, "%d.%d.%d", &a, &b, &c) == 3, "%s", p.onednn);
    ck_assert_ptr_nonnull(strstr(p.mpi, "MPI"));
    ck_assert_ptr_nonnull(strstr(p.openblas, "OpenBLAS"));
    ck_assert_ptr_nonnull(strstr(p.libjpeg, "libjpeg"));
    /* the commit is a hash (with -dirty) or "unknown" outside a checkout */
    ck_assert_msg(!strcmp(p.commit, "unknown") || strspn(p.commit, "0123456789abcdef") == 40,
                  "%s", p.commit);
    ck_assert_str_ne(p.me.cpu, "");
    ck_assert_int_gt(atoi(p.me.cores), 0);
    ck_assert_msg(strchr(p.me.isa_f32, ':') != NULL, "%s", p.me.isa_f32); /* impl:isa */
    ck_assert_msg(strchr(p.me.isa_bf16, ':') != NULL || !strcmp(p.me.isa_bf16, "unavailable"),
                  "%s", p.me.isa_bf16);
    unsetenv("EXPGRAPH_THREADS");
    eg_prov_collect(&p);
    ck_assert_str_eq(p.env_threads, "");
}
END_TEST

/* what `expgraph info` prints is YAML that reads back as the same facts */
START_TEST(write_reads_back)
{
    eg_prov p;
    eg_prov_collect(&p);
    snprintf(p.me.cpu, sizeof p.me.cpu, "CPU: \"x\", model #1"); /* needs quoting */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(eg_prov_write(f, &p), 0);
    fclose(f);
    eg_err err = {0};
    eg_ynode *doc = eg_yaml_parse(text, len, "info", 0, &err);
    ck_assert_msg(doc != NULL, "%s\n%s", err.msg, text);
    ck_assert_str_eq(yget(doc, "expgraph", "version"), p.version);
    ck_assert_str_eq(yget(doc, "expgraph", "commit"), p.commit);
    ck_assert_str_eq(yget(doc, "libraries", "onednn"), p.onednn);
    ck_assert_str_eq(yget(doc, "libraries", "open_mpi"), p.mpi);
    ck_assert_str_eq(yget(doc, "environment", "EXPGRAPH_THREADS"), p.env_threads);
    ck_assert_str_eq(yget(doc, "machine", "cpu"), "CPU: \"x\", model #1");
    ck_assert_str_eq(yget(doc, "machine", "dnnl_isa_f32"), p.me.isa_f32);
    ck_assert_str_eq(yget(doc, "machine", "dnnl_isa_bf16"), p.me.isa_bf16);
    eg_ynode_free(doc);
    free(text);
}
END_TEST

/* a one-rank run's record, resumed unchanged, with a faked record, twice, without a record
 * and with an unreadable one */
START_TEST(record_and_resume)
{
    eg_graph_spec gs;
    eg_err e = {0};
    ck_assert_int_eq(eg_spec_graph_from_text("ring", &gs, &e), 0);
    eg_topo *t = NULL;
    ck_assert_msg(eg_topo_init(&t, &gs, 4, 1, &e) == 0, "%s", e.msg);
    eg_comm *c = NULL;
    ck_assert_msg(eg_comm_init_sim(&c, 4, 0, 1, 8, 1, t, &e) == 0, "%s", e.msg);
    eg_prov_run *pr = NULL;
    ck_assert_msg(eg_prov_run_init(&pr, c, 0, &e) == 0, "%s", e.msg);
    eg_prov me;
    eg_prov_collect(&me);
    eg_prov_summary s = eg_prov_run_summary(pr);
    ck_assert_str_eq(s.dnnl_isa, me.me.isa_f32);
    ck_assert_str_eq(s.cpu, me.me.cpu);
    ck_assert_str_eq(s.commit, me.commit);
    ck_assert_int_eq(s.hosts, 1);
    char msg[2048];
    ck_assert_int_eq(eg_prov_run_mixed(pr, msg, sizeof msg), 0);

    const char *dir = eg_test_tmpdir();
    char path[1200];
    snprintf(path, sizeof path, "%s/run_info.yaml", dir);
    ck_assert_int_eq(eg_prov_run_write(pr, dir, 1, 2, &e), 0);
    eg_ynode *doc = eg_yaml_parse_file(path, &e);
    ck_assert_msg(doc != NULL, "%s", e.msg);
    ck_assert_str_eq(yget(doc, "machine", "dnnl_isa"), me.me.isa_f32);
    ck_assert_str_eq(yget(doc, "machine", "hosts"), "1");
    ck_assert_str_eq(yget(doc, "run", "threads"), "2");
    const eg_ynode *hosts = eg_ymap_get(doc, "hosts", NULL);
    ck_assert_int_eq(hosts->kind, EG_Y_SEQ);
    ck_assert_int_eq(hosts->n, 1);
    ck_assert_str_eq(eg_ymap_get(hosts->items[0], "host", NULL)->str, me.me.host);
    eg_ynode_free(doc);

    /* the same machine: nothing to say, the record unchanged */
    char before[1 << 16];
    snprintf(before, sizeof before, "%s", slurp(path));
    ck_assert_int_eq(eg_prov_run_resume(pr, dir, 40, 1, 2, msg, sizeof msg, &e), 0);
    ck_assert_str_eq(msg, "");
    ck_assert_str_eq(slurp(path), before);

    /* a record from another oneDNN and CPU */
    replace_line(path, "  onednn: ", "  onednn: 1.0.0");
    replace_line(path, "  cpu: ", "  cpu: Other CPU");
    replace_line(path, "  threads: ", "  threads: 9"); /* threads are not compared */
    eg_prov_run_free(pr);
    ck_assert_int_eq(eg_prov_run_init(&pr, c, 0, &e), 0);
    ck_assert_int_eq(eg_prov_run_resume(pr, dir, 40, 1, 2, msg, sizeof msg, &e), 2);
    char want[512];
    snprintf(want, sizeof want, "onednn 1.0.0 -> %s; cpu Other CPU -> %s", me.onednn, me.me.cpu);
    ck_assert_str_eq(msg, want);
    s = eg_prov_run_summary(pr);
    snprintf(want, sizeof want, "Other CPU | %s", me.me.cpu);
    ck_assert_str_eq(s.cpu, want);
    ck_assert_str_eq(s.dnnl_isa, me.me.isa_f32);
    /* again at 80: a second entry in the one resumed: list; the start's facts kept */
    eg_prov_run_free(pr);
    ck_assert_int_eq(eg_prov_run_init(&pr, c, 0, &e), 0);
    ck_assert_int_eq(eg_prov_run_resume(pr, dir, 80, 1, 2, msg, sizeof msg, &e), 2);
    doc = eg_yaml_parse_file(path, &e);
    ck_assert_msg(doc != NULL, "%s", e.msg);
    ck_assert_str_eq(yget(doc, "libraries", "onednn"), "1.0.0");
    const eg_ynode *res = eg_ymap_get(doc, "resumed", NULL);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(res->kind, EG_Y_SEQ);
    ck_assert_int_eq(res->n, 2);
    ck_assert_str_eq(eg_ymap_get(res->items[0], "iter", NULL)->str, "40");
    ck_assert_str_eq(eg_ymap_get(res->items[1], "iter", NULL)->str, "80");
    ck_assert_ptr_nonnull(strstr(eg_ymap_get(res->items[1], "changed", NULL)->str, "onednn 1.0.0"));
    eg_ynode_free(doc);

    /* no record (a run started by an older expgraph): written now, no difference */
    remove(path);
    ck_assert_int_eq(eg_prov_run_resume(pr, dir, 40, 1, 2, msg, sizeof msg, &e), 0);
    doc = eg_yaml_parse_file(path, &e);
    ck_assert_msg(doc != NULL, "%s", e.msg);
    ck_assert_str_eq(yget(doc, "libraries", "onednn"), me.onednn);
    eg_ynode_free(doc);
    /* an unreadable record: one difference that says so, and a fresh record */
    spit(path, "expgraph: {version: [\n");
    ck_assert_int_eq(eg_prov_run_resume(pr, dir, 40, 1, 2, msg, sizeof msg, &e), 1);
    ck_assert_ptr_nonnull(strstr(msg, "could not be read"));
    doc = eg_yaml_parse_file(path, &e);
    ck_assert_msg(doc != NULL, "%s", e.msg);
    eg_ynode_free(doc);
    /* a directory that cannot be written: an error, not a crash */
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/no/such/dir", dir);
    ck_assert_int_eq(eg_prov_run_write(pr, bad, 1, 2, &e), EG_ERUN);
    ck_assert_ptr_nonnull(strstr(e.msg, "run_info.yaml"));

    eg_prov_run_free(pr);
    eg_prov_run_free(NULL);
    eg_comm_free(c);
    eg_topo_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("provenance");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, collect_facts);
    tcase_add_test(tc, write_reads_back);
    tcase_add_test(tc, record_and_resume);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
