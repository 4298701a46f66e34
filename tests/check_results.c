/* check_results.c - reading run directories (results.c) and PNG figures (plot.c). */
#include "plot.h"
#include "results.h"
#include "schema.h"
#include "spec.h"
#include "testutil.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define HDR "iter,epoch,time_s,lr,train_loss,test_loss,test_acc,consensus,bytes_sent"

/* fontconfig's process-lifetime caches (reached through cairo) are not our leaks; read
 * only by sanitizer builds */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig\n";
}
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

/* temporary directories made by a test, removed by cleanup() at its end */
static char made[32][512];
static int nmade;

static const char *tmpdir(void)
{
    const char *d = eg_test_tmpdir();
    ck_assert_ptr_nonnull(d);
    if (nmade < 32)
        snprintf(made[nmade++], sizeof made[0], "%s", d);
    return made[nmade - 1];
}

static void rm_tree(const char *path)
{
    DIR *dh = opendir(path);
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[1024];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(dh);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void cleanup(void)
{
    for (int i = 0; i < nmade; i++)
        rm_tree(made[i]);
    nmade = 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* mkdir -p for paths under a fresh temporary directory */
static void mkdirs(const char *path)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

/* a run directory with a two-row metrics.csv */
static void make_run(const char *root, const char *sub)
{
    char d[1024], f[1100];
    snprintf(d, sizeof d, "%s/%s", root, sub);
    mkdirs(d);
    snprintf(f, sizeof f, "%s/metrics.csv", d);
    write_file(f, HDR "\n10,1,0.1,0.1,1.5,,,0.01,100\n20,2,0.2,0.1,1.2,0.9,0.75,0.005,200\n");
}

static char *tmp_path(const char *dir, const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* ---- metrics.csv ---------------------------------------------------------------- */

START_TEST(metrics_good)
{
    const char *dir = tmpdir();
    ck_assert_ptr_nonnull(dir);
    char *p = tmp_path(dir, "metrics.csv");
    write_file(p, HDR ",node_acc_mean\n"
                  "10,0.5,0.1,0.1,2.0,,,0.5,100,\n"
                  "20,1.0,0.2,0.1,1.0,0.8,0.70,0.25,200,0.69\n"
                  "30,1.5,0.3,0.1,0.9,,,0.125,300,\n"
                  "40,2.0,0.4,0.1,0.8,0.7,0.65,0.0625,400,0.64\n");
    eg_metrics m;
    eg_err err = {0};
    ck_assert_int_eq(eg_metrics_read(&m, p, &err), EG_OK);
    ck_assert_int_eq(m.ncols, 10);
    ck_assert_int_eq((int)m.nrows, 4);
    int acc = eg_metrics_col(&m, "test_acc");
    ck_assert_int_eq(acc, 6);
    ck_assert_int_eq(eg_metrics_col(&m, "node_acc_mean"), 9);
    ck_assert_int_eq(eg_metrics_col(&m, "nosuch"), -1);
    ck_assert_int_eq(m.has[0 * 10 + acc], 0);
    ck_assert(isnan(m.val[0 * 10 + acc]));
    ck_assert_int_eq(m.has[1 * 10 + acc], 1);
    double v = -1;
    ck_assert_int_eq(eg_metrics_agg(&m, acc, EG_AGG_FINAL, &v), 1);
    ck_assert_double_eq(v, 0.65); /* the last non-empty row, not row 3's empty cell */
    ck_assert_int_eq(eg_metrics_agg(&m, acc, EG_AGG_MAX, &v), 1);
    ck_assert_double_eq(v, 0.70);
    ck_assert_int_eq(eg_metrics_agg(&m, eg_metrics_col(&m, "consensus"), EG_AGG_MIN, &v), 1);
    ck_assert_double_eq(v, 0.0625);
    ck_assert_int_eq(eg_metrics_agg(&m, -1, EG_AGG_FINAL, &v), 0);
    eg_metrics_free(&m);
    eg_metrics_free(&m); /* twice is safe */
    eg_metrics_free(NULL);

    /* a header only (a run that just started): no rows, no values, not an error */
    write_file(p, HDR "\n");
    ck_assert_int_eq(eg_metrics_read(&m, p, &err), EG_OK);
    ck_assert_int_eq((int)m.nrows, 0);
    ck_assert_int_eq(eg_metrics_agg(&m, 6, EG_AGG_FINAL, &v), 0);
    eg_metrics_free(&m);
    cleanup();
}
END_TEST

START_TEST(metrics_crlf_no_final_newline)
{
    const char *dir = tmpdir();
    char *p = tmp_path(dir, "metrics.csv");
    write_file(p, "\xEF\xBB\xBF" HDR "\r\n10,1,0.1,0.1,1.5,,,0.01,100\r\n\r\n"
                  "20,2,0.2,0.1,1.2,0.9,0.75,0.005,200");
    eg_metrics m;
    eg_err err = {0};
    ck_assert_msg(eg_metrics_read(&m, p, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq((int)m.nrows, 2);
    ck_assert_int_eq(m.ncols, 9);
    ck_assert_str_eq(m.cols[8], "bytes_sent"); /* no stray \r in the last name */
    double v;
    ck_assert_int_eq(eg_metrics_agg(&m, 8, EG_AGG_FINAL, &v), 1);
    ck_assert_double_eq(v, 200); /* the unterminated last line is read */
    ck_assert_int_eq(eg_metrics_agg(&m, 6, EG_AGG_FINAL, &v), 1);
    ck_assert_double_eq(v, 0.75);
    eg_metrics_free(&m);
    cleanup();
}
END_TEST

/* expects EG_EINPUT with a message containing want */
static void expect_corrupt(const char *text, const char *want)
{
    const char *dir = tmpdir();
    char *p = tmp_path(dir, "metrics.csv");
    write_file(p, text);
    eg_metrics m;
    eg_err err = {0};
    int rc = eg_metrics_read(&m, p, &err);
    ck_assert_int_eq(rc, EG_EINPUT);
    ck_assert_int_eq(err.code, EG_EINPUT);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    ck_assert_msg(strstr(err.msg, p) != NULL, "message '%s' lacks the file name", err.msg);
    eg_metrics_free(&m);
}

START_TEST(metrics_corrupt)
{
    expect_corrupt("", "metrics.csv:1:");
    expect_corrupt("a,b,c\n1,2,3\n", "metrics.csv:1: not a metrics.csv header");
    expect_corrupt("iter,epoch,time_s,lr,train_loss,test_loss,consensus,test_acc,bytes_sent\n",
                   "metrics.csv:1:");
    expect_corrupt(HDR ",test_acc\n", "repeats column 'test_acc'");
    expect_corrupt(HDR "\n10,1,0.1,0.1,1.5,,,0.01,100\n20,2,0.2,0.1,1.2,0.9\n",
                   "metrics.csv:3: 6 fields, but the header has 9");
    expect_corrupt(HDR "\n10,1,0.1,0.1,1.5,,,0.01,100,7\n", "metrics.csv:2: 10 fields");
    expect_corrupt(HDR "\r\n10,1,0.1,0.1,1.5,,,0.01,100\r\n20,2,0.2,0.1,x1.2,,,0.01,100\r\n",
                   "metrics.csv:3: column 'train_loss': 'x1.2' is not a number");
    expect_corrupt(HDR "\n10,1,0.1,0.1,1.5,,0.5abc,0.01,100\n", "metrics.csv:2: column 'test_acc'");
    /* a missing file is an input error too */
    eg_metrics m;
    eg_err err = {0};
    ck_assert_int_eq(eg_metrics_read(&m, "/nonexistent/metrics.csv", &err), EG_EINPUT);
    eg_metrics_free(&m);
    cleanup();
}
END_TEST

/* ---- run directories ------------------------------------------------------------ */

START_TEST(expand_sweep_root)
{
    const char *t = tmpdir();
    char root[512];
    snprintf(root, sizeof root, "%s", t);
    make_run(root, "graph=ring,nodes=8");
    make_run(root, "graph=exp,nodes=16");
    make_run(root, "more/batch/seed=2");         /* depth 3: found */
    make_run(root, "more/batch/deeper/seed=3"); /* depth 4: not */
    make_run(root, "graph=ring,nodes=8/ckpt/inner"); /* inside a run: not descended */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/emptydir", root);
    mkdirs(sub);

    char **dirs = NULL;
    int n = 0;
    eg_err err = {0};
    ck_assert_int_eq(eg_results_expand(root, &dirs, &n, &err), EG_OK);
    ck_assert_int_eq(n, 3);
    char want[3][700];
    snprintf(want[0], sizeof want[0], "%s/graph=exp,nodes=16", root);
    snprintf(want[1], sizeof want[1], "%s/graph=ring,nodes=8", root);
    snprintf(want[2], sizeof want[2], "%s/more/batch/seed=2", root);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(dirs[i], want[i]); /* sorted by path */
    /* a run directory stands for itself (with a trailing slash too) */
    char one[700];
    snprintf(one, sizeof one, "%s/graph=exp,nodes=16/", root);
    ck_assert_int_eq(eg_results_expand(one, &dirs, &n, &err), EG_OK);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(dirs[3], want[0]);
    /* an empty directory adds nothing; a missing path is an input error */
    ck_assert_int_eq(eg_results_expand(sub, &dirs, &n, &err), EG_OK);
    ck_assert_int_eq(n, 4);
    snprintf(sub, sizeof sub, "%s/missing", root);
    ck_assert_int_eq(eg_results_expand(sub, &dirs, &n, &err), EG_EINPUT);
    for (int i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);

    /* runset: an empty directory among the paths is an error; the root loads 3 runs */
    eg_runset rs;
    snprintf(sub, sizeof sub, "%s/emptydir", root);
    char *paths[2] = {root, sub};
    ck_assert_int_eq(eg_runset_load(&rs, paths, 2, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "no run directories") != NULL, "%s", err.msg);
    eg_runset_free(&rs);
    /* the same run reached twice is kept once */
    char *paths2[2] = {root, want[0]};
    ck_assert_int_eq(eg_runset_load(&rs, paths2, 2, &err), EG_OK);
    ck_assert_int_eq(rs.n, 3);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(keys_from_summary)
{
    const char *root = tmpdir();
    make_run(root, "r");
    char p[700];
    snprintf(p, sizeof p, "%s/r/summary.csv", root);
    write_file(p, "name,seed,nodes,graph,graph.p,algorithm,algorithm.momentum,model,"
                  "model.hidden,data,data.batch_size,lr.base,iter,epoch,train_loss,test_acc,"
                  "consensus,wall_s,ranks\r\n"
                  "tiny,1,16,ring,0.2,dmsgd,0.90000000000000002,mlp,256 128,synthetic,8,"
                  "0.1,40,5.000000,0.3,0.82,0.0019,1.4,1\r\n");
    snprintf(p, sizeof p, "%s/r/spec.yaml", root); /* must be ignored: summary wins */
    write_file(p, "nodes: 99\n");
    snprintf(p, sizeof p, "%s/r", root);
    eg_rundir r;
    eg_err err = {0};
    ck_assert_msg(eg_rundir_load(&r, p, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(r.keysrc, EG_KEYS_SUMMARY);
    ck_assert_int_eq(r.finished, 1);
    ck_assert_str_eq(r.name, "r");
    ck_assert_str_eq(eg_rundir_get(&r, "nodes"), "16");
    ck_assert_str_eq(eg_rundir_get(&r, "graph"), "ring");
    ck_assert_str_eq(eg_rundir_get(&r, "graph.p"), "0.2");
    ck_assert_str_eq(eg_rundir_get(&r, "algorithm.momentum"), "0.9");
    ck_assert_str_eq(eg_rundir_get(&r, "model.hidden"), "256 128");
    ck_assert_str_eq(eg_rundir_get(&r, "lr.base"), "0.1");
    /* results are not spec keys */
    ck_assert_ptr_null(eg_rundir_get(&r, "test_acc"));
    ck_assert_ptr_null(eg_rundir_get(&r, "epoch"));
    ck_assert_ptr_null(eg_rundir_get(&r, "wall_s"));
    ck_assert_int_eq((int)r.metrics.nrows, 2);
    eg_rundir_free(&r);
    eg_rundir_free(&r);

    /* a corrupt summary names the file and line */
    snprintf(p, sizeof p, "%s/r/summary.csv", root);
    write_file(p, "name,seed,nodes\ntiny,1\n");
    snprintf(p, sizeof p, "%s/r", root);
    ck_assert_int_eq(eg_rundir_load(&r, p, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "summary.csv:2:") != NULL, "%s", err.msg);
    eg_rundir_free(&r);
    cleanup();
}
END_TEST

START_TEST(keys_from_spec_yaml)
{
    const char *root = tmpdir();
    make_run(root, "graph=erdos_renyi,nodes=32");
    char p[700];
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32/spec.yaml", root);
    write_file(p, "# resolved\n"
                  "name: tiny\n"
                  "seed: 3\n"
                  "nodes: 32\n"
                  "graph:\n  name: erdos_renyi\n  p: 0.20000000000000001\n"
                  "algorithm: dmsgd\n"
                  "model:\n  name: mlp\n  hidden: [256, 128]\n"
                  "data: {name: synthetic, path: null, batch_size: 8}\n"
                  "lr:\n  base: 0.10000000000000001\n  milestones: []\n"
                  "output:\n  dir: runs/tiny\n"
                  "sweep:\n  nodes: [4, 8]\n");
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32", root);
    eg_rundir r;
    eg_err err = {0};
    ck_assert_msg(eg_rundir_load(&r, p, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(r.keysrc, EG_KEYS_SPEC);
    ck_assert_int_eq(r.finished, 0);
    ck_assert_str_eq(eg_rundir_get(&r, "graph"), "erdos_renyi"); /* graph.name -> graph */
    ck_assert_str_eq(eg_rundir_get(&r, "graph.p"), "0.2");
    ck_assert_str_eq(eg_rundir_get(&r, "algorithm"), "dmsgd");
    ck_assert_str_eq(eg_rundir_get(&r, "model"), "mlp");
    ck_assert_str_eq(eg_rundir_get(&r, "model.hidden"), "256 128");
    ck_assert_str_eq(eg_rundir_get(&r, "data"), "synthetic");
    ck_assert_str_eq(eg_rundir_get(&r, "data.path"), "");
    ck_assert_str_eq(eg_rundir_get(&r, "data.batch_size"), "8");
    ck_assert_str_eq(eg_rundir_get(&r, "lr.base"), "0.1");
    ck_assert_str_eq(eg_rundir_get(&r, "lr.milestones"), "");
    ck_assert_str_eq(eg_rundir_get(&r, "seed"), "3");
    ck_assert_ptr_null(eg_rundir_get(&r, "graph.name"));
    ck_assert_ptr_null(eg_rundir_get(&r, "output.dir"));
    ck_assert_ptr_null(eg_rundir_get(&r, "sweep.nodes"));
    eg_rundir_free(&r);

    char ck[64];
    eg_results_canon_key("model.name", ck, sizeof ck);
    ck_assert_str_eq(ck, "model");
    eg_results_canon_key("lr.name", ck, sizeof ck); /* only the named sections */
    ck_assert_str_eq(ck, "lr.name");

    /* a broken spec.yaml is an input error */
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32/spec.yaml", root);
    write_file(p, "nodes: [1, 2\n");
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32", root);
    ck_assert_int_eq(eg_rundir_load(&r, p, &err), EG_EINPUT);
    eg_rundir_free(&r);

    /* neither file: the directory name key=value,... is the last resort */
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32/spec.yaml", root);
    ck_assert_int_eq(remove(p), 0);
    snprintf(p, sizeof p, "%s/graph=erdos_renyi,nodes=32", root);
    ck_assert_int_eq(eg_rundir_load(&r, p, &err), EG_OK);
    ck_assert_int_eq(r.keysrc, EG_KEYS_DIRNAME);
    ck_assert_str_eq(eg_rundir_get(&r, "graph"), "erdos_renyi");
    ck_assert_str_eq(eg_rundir_get(&r, "nodes"), "32");
    eg_rundir_free(&r);
    /* a name that is not key=value gives no keys */
    make_run(root, "plain");
    snprintf(p, sizeof p, "%s/plain", root);
    ck_assert_int_eq(eg_rundir_load(&r, p, &err), EG_OK);
    ck_assert_int_eq(r.nkeys, 0);
    ck_assert_int_eq(r.keysrc, EG_KEYS_NONE);
    eg_rundir_free(&r);
    cleanup();
}
END_TEST

/* eg_rundir_set_key (table/plot --cluster sets the cluster.* keys): canonical key, value
 * normalised as read values are, replaced in place or appended */
START_TEST(rundir_set_key)
{
    eg_rundir r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(eg_rundir_set_key(&r, "graph.name", "ring"), EG_OK);
    ck_assert_str_eq(eg_rundir_get(&r, "graph"), "ring");
    ck_assert_int_eq(eg_rundir_set_key(&r, "cluster.bandwidth_gbps", "25.000000"), EG_OK);
    ck_assert_int_eq(eg_rundir_set_key(&r, "graph", "exp"), EG_OK);
    ck_assert_int_eq(r.nkeys, 2);
    ck_assert_str_eq(eg_rundir_get(&r, "graph"), "exp");
    ck_assert_str_eq(eg_rundir_get(&r, "cluster.bandwidth_gbps"), "25");
    ck_assert_int_eq(eg_rundir_set_key(&r, "cluster.bandwidth_gbps", "0.90000000000000002"), EG_OK);
    ck_assert_str_eq(eg_rundir_get(&r, "cluster.bandwidth_gbps"), "0.9");
    ck_assert_int_eq(r.nkeys, 2);
    eg_rundir_free(&r);
}
END_TEST

/* labels leave out a sub-key a run does not have (graph.peers beside graph=ring), keep one it
 * has, and print '-' for a missing key that is nobody's sub-key */
START_TEST(rundir_label_subkeys)
{
    eg_rundir ring, base;
    memset(&ring, 0, sizeof ring);
    memset(&base, 0, sizeof base);
    ck_assert_int_eq(eg_rundir_set_key(&ring, "graph", "ring"), EG_OK);
    ck_assert_int_eq(eg_rundir_set_key(&base, "graph", "base"), EG_OK);
    ck_assert_int_eq(eg_rundir_set_key(&base, "graph.peers", "1"), EG_OK);
    const char *keys[3] = {"graph", "graph.peers", "nodes"};
    char *lab = eg_rundir_label(&ring, keys, 2);
    ck_assert_str_eq(lab, "graph=ring");
    free(lab);
    lab = eg_rundir_label(&base, keys, 2);
    ck_assert_str_eq(lab, "graph=base, graph.peers=1");
    free(lab);
    lab = eg_rundir_label(&ring, keys, 3);
    ck_assert_str_eq(lab, "graph=ring, nodes=-");
    free(lab);
    const char *sub_first[2] = {"graph.peers", "graph"};
    lab = eg_rundir_label(&ring, sub_first, 2);
    ck_assert_str_eq(lab, "graph=ring");
    free(lab);
    eg_rundir_free(&ring);
    eg_rundir_free(&base);
}
END_TEST

START_TEST(runset_keys_and_order)
{
    const char *root = tmpdir();
    /* directory names only: nodes 4, 16, 64 must sort numerically, graph by appearance */
    const char *subs[] = {"graph=ring,nodes=16", "graph=ring,nodes=4", "graph=ring,nodes=64",
                          "graph=exp,nodes=16"};
    for (int i = 0; i < 4; i++)
        make_run(root, subs[i]);
    char rootc[512];
    snprintf(rootc, sizeof rootc, "%s", root);
    char *paths[1] = {rootc};
    eg_runset rs;
    eg_err err = {0};
    ck_assert_msg(eg_runset_load(&rs, paths, 1, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(rs.n, 4);
    /* path order: exp,16 / ring,16 / ring,4 / ring,64 */
    ck_assert_str_eq(rs.runs[0].name, "graph=exp,nodes=16");
    int nd = 0;
    const char **diff = eg_runset_differing(&rs, &nd);
    ck_assert_int_eq(nd, 2);
    ck_assert_str_eq(diff[0], "graph");
    ck_assert_str_eq(diff[1], "nodes");
    int order[4];
    const char *nodes[1] = {"nodes"};
    eg_runset_order(&rs, nodes, 1, order);
    const char *want[4] = {"4", "16", "16", "64"};
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(eg_rundir_get(&rs.runs[order[i]], "nodes"), want[i]);
    ck_assert_int_eq(order[1], 0); /* ties keep rs order: exp,16 before ring,16 */
    ck_assert_int_eq(order[2], 1);
    eg_runset_order(&rs, diff, 2, order); /* graph (exp first), then nodes numerically */
    ck_assert_str_eq(rs.runs[order[0]].name, "graph=exp,nodes=16");
    ck_assert_str_eq(rs.runs[order[1]].name, "graph=ring,nodes=4");
    ck_assert_str_eq(rs.runs[order[3]].name, "graph=ring,nodes=64");
    char *lab = eg_rundir_label(&rs.runs[order[1]], diff, nd);
    ck_assert_str_eq(lab, "graph=ring, nodes=4");
    free(lab);
    lab = eg_rundir_label(&rs.runs[0], NULL, 0);
    ck_assert_str_eq(lab, "graph=exp,nodes=16");
    free(lab);
    free(diff);

    char key[128];
    ck_assert_int_eq(eg_runset_resolve_key(&rs, "graph.name", key, sizeof key, &err), EG_OK);
    ck_assert_str_eq(key, "graph");
    ck_assert_int_eq(eg_runset_resolve_key(&rs, "nosuch", key, sizeof key, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "nodes") != NULL, "lists the keys: %s", err.msg);
    eg_runset_free(&rs);

    /* suffix match on dotted keys; nothing differs -> NULL */
    const char *r2 = tmpdir();
    make_run(r2, "algorithm.momentum=0.9");
    char r2c[512];
    snprintf(r2c, sizeof r2c, "%s", r2);
    char *p2[1] = {r2c};
    ck_assert_int_eq(eg_runset_load(&rs, p2, 1, &err), EG_OK);
    ck_assert_int_eq(eg_runset_resolve_key(&rs, "momentum", key, sizeof key, &err), EG_OK);
    ck_assert_str_eq(key, "algorithm.momentum");
    ck_assert_ptr_null(eg_runset_differing(&rs, &nd));
    ck_assert_int_eq(nd, 0);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

/* ---- CSV (RFC 4180) and the schema -------------------------------------------------- */

/* fields that need quoting, and some that do not */
static const char *const TRICKY[] = {
    "plain", "a,b", "say \"hi\"", "two\nlines", "cr\r\nlf", "", ",", "\"", "\"\"",
    "/tmp/run dir,1/\"q\"\n/x", "trailing\n", "  spaced  ", "\xC3\xA9t\xC3\xA9,\xE2\x88\x92"};
#define NTRICKY ((int)(sizeof TRICKY / sizeof TRICKY[0]))

/* CSV text: a header "k0,k1,..." then two records of TRICKY, with blank lines between */
static char *tricky_csv(size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < NTRICKY; i++)
        fprintf(f, "%sk%d", i ? "," : "", i);
    fputs("\n\n", f);
    for (int rep = 0; rep < 2; rep++) {
        for (int i = 0; i < NTRICKY; i++) {
            if (i)
                fputc(',', f);
            ck_assert_int_eq(eg_csv_put(f, TRICKY[i]), 0);
        }
        fputs(rep ? "\r\n" : "\n \t\n", f);
    }
    ck_assert_int_eq(fclose(f), 0);
    return text;
}

START_TEST(csv_round_trip)
{
    size_t len;
    char *text = tricky_csv(&len);
    eg_csv c = {text, text + len, 0};
    char **f = NULL;
    int cap = 0, line = 0;
    ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), NTRICKY);
    ck_assert_int_eq(line, 1);
    ck_assert_str_eq(f[NTRICKY - 1], "k12");
    int want_line = 3; /* after the header and a blank line */
    for (int rep = 0; rep < 2; rep++) {
        ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), NTRICKY);
        ck_assert_int_eq(line, want_line);
        for (int i = 0; i < NTRICKY; i++)
            ck_assert_str_eq(f[i], TRICKY[i]);
        want_line += 5 + 1; /* 4 line breaks inside quotes, the record's own, a blank line */
    }
    ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), 0);
    free(text);

    /* quoting: only when needed, quotes doubled */
    char *out = NULL;
    size_t olen;
    FILE *m = open_memstream(&out, &olen);
    eg_csv_put(m, "plain");
    fputc('|', m);
    eg_csv_put(m, "a,\"b\"");
    fputc('|', m);
    eg_csv_put(m, NULL);
    fclose(m);
    ck_assert_str_eq(out, "plain|\"a,\"\"b\"\"\"|");
    free(out);

    /* a quote never closed; text after a closing quote is dropped; CRLF; no final newline */
    char bad[] = "a,\"b\nc";
    c = (eg_csv){bad, bad + strlen(bad), 0};
    ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), -1);
    char odd[] = "\"x\"junk,y\r\nlast";
    c = (eg_csv){odd, odd + strlen(odd), 0};
    ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), 2);
    ck_assert_str_eq(f[0], "x");
    ck_assert_str_eq(f[1], "y");
    ck_assert_int_eq(eg_csv_next(&c, &f, &cap, &line), 1);
    ck_assert_str_eq(f[0], "last");
    ck_assert_int_eq(line, 2);
    free(f);
}
END_TEST

/* the fields of the first two records of a file: counts *nh, *nr; names and values */
static void read_two_records(const char *path, char **text, char ***h, int *nh, char ***r,
                             int *nr)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    *text = buf;
    eg_csv c = {buf, buf + n, 0};
    int hc = 0, rcap = 0, line;
    *h = NULL;
    *r = NULL;
    *nh = eg_csv_next(&c, h, &hc, &line);
    *nr = eg_csv_next(&c, r, &rcap, &line);
}

START_TEST(schema_columns)
{
    char t[512];
    eg_metrics_columns_text(EG_COL_REQUIRED, ",", t, sizeof t);
    ck_assert_str_eq(t, HDR); /* docs/spec.md#metricscsv */
    eg_metrics_columns_text(0, ",", t, sizeof t);
    ck_assert_str_eq(t, HDR ",node_acc_mean,bytes_inter,msgs_lost,time_model_s,val_loss,val_acc");
    ck_assert_ptr_nonnull(eg_metrics_column("consensus"));
    ck_assert_str_eq(eg_metrics_column("test_acc")->title, "test accuracy");
    ck_assert_ptr_null(eg_metrics_column("nosuch"));
    /* summary.csv: spec keys, the final metrics (not time_s, lr), the run's figures */
    int n = eg_summary_ncols();
    /* the spec keys come first (their count grows with the spec), then the final metrics */
    int it = -1;
    for (int i = 0; i < n && it < 0; i++)
        if (!strcmp(eg_summary_column(i)->name, "iter"))
            it = i;
    ck_assert_int_ge(it, 40);
    ck_assert_str_eq(eg_summary_column(0)->name, "name");
    ck_assert_str_eq(eg_summary_column(it + 7)->name, "node_acc_mean");
    ck_assert_str_eq(eg_summary_column(it + 8)->name, "bytes_inter");
    ck_assert_str_eq(eg_summary_column(it + 9)->name, "msgs_lost");
    int has_micro = 0, has_stem = 0, has_val = 0;
    for (int i = 0; i < it; i++) {
        has_micro |= !strcmp(eg_summary_column(i)->name, "train.micro_batch");
        has_stem |= !strcmp(eg_summary_column(i)->name, "model.stem");
        has_val |= !strcmp(eg_summary_column(i)->name, "data.val_fraction");
    }
    ck_assert(has_micro && has_stem && has_val);
    ck_assert_str_eq(eg_summary_column(n - 8)->name, "threads");
    ck_assert_str_eq(eg_summary_column(n - 6)->name, "data_bytes_max");
    ck_assert_ptr_null(eg_summary_column(n));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(eg_summary_column(i)->name, eg_summary_column(j)->name);
    ck_assert_int_eq(eg_summary_is_spec_key("graph.p"), 1);
    ck_assert_int_eq(eg_summary_is_spec_key("model.depth"), 1); /* a key added later */
    ck_assert_int_eq(eg_summary_is_spec_key("train_time_s"), 0);
    ck_assert_int_eq(eg_summary_is_spec_key("test_acc"), 0);
    /* the provenance columns (last): table keys, not spec keys */
    ck_assert_str_eq(eg_summary_column(n - 5)->name, "expgraph_version");
    ck_assert_str_eq(eg_summary_column(n - 1)->name, "hosts");
    ck_assert_int_eq(eg_summary_column(n - 3)->flags, EG_COL_ENV);
    ck_assert_int_eq(eg_summary_is_env_key("dnnl_isa"), 1);
    ck_assert_int_eq(eg_summary_is_env_key("commit"), 1);
    ck_assert_int_eq(eg_summary_is_env_key("dnnl"), 0);
    ck_assert_int_eq(eg_summary_is_env_key("graph"), 0);
    ck_assert_int_eq(eg_summary_is_spec_key("dnnl_isa"), 0);
}
END_TEST

/* val_loss and val_acc: empty where NaN (no validation split) and in rows without an
 * evaluation, written where measured */
START_TEST(schema_val_columns)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    eg_schema_row r = {.iter = 10, .test_acc = 0.5, .val_loss = NAN, .val_acc = NAN,
                       .evaluated = 1, .cluster = EG_COL_VAL};
    ck_assert_int_eq(eg_schema_metrics_row(f, &r), 0);
    r.val_loss = 0.75;
    r.val_acc = 0.625;
    ck_assert_int_eq(eg_schema_metrics_row(f, &r), 0);
    r.evaluated = 0;
    ck_assert_int_eq(eg_schema_metrics_row(f, &r), 0);
    ck_assert_int_eq(fclose(f), 0);
    char *l1 = buf, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    ck_assert_msg(!strncmp(l2 - 3, ",,\n", 3), "%s", buf);        /* NaN: empty */
    ck_assert_msg(!strncmp(l3 - 12, ",0.75,0.625\n", 12), "%s", buf); /* measured */
    ck_assert_msg(!strncmp(l3 + strlen(l3) - 3, ",,\n", 3), "%s", buf); /* no evaluation */
    free(buf);
    /* without a validation split the columns are not written at all */
    f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    r.cluster = 0;
    ck_assert_int_eq(eg_schema_metrics_row(f, &r), 0);
    ck_assert_int_eq(eg_schema_metrics_header(f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(!strstr(buf, ",,\n") && !strstr(buf, "val_"), "%s", buf);
    free(buf);
}
END_TEST

/* Writes metrics.csv (an evaluated row and one without evaluation) and summary.csv for a
 * run called name into dir, through the schema's writers. */
static void write_run_files(const char *dir, const char *name)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/metrics.csv", dir);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    eg_schema_row r1 = {.iter = 10, .epoch = 0.5, .time_s = 0.25, .lr = 0.1, .train_loss = 2,
                        .test_loss = 1.5, .test_acc = 0.25, .consensus = 1e-3,
                        .bytes_sent = 4096, .node_acc_mean = 0.2, .evaluated = 1};
    eg_schema_row r2 = r1;
    r2.iter = 20;
    r2.evaluated = 0;
    ck_assert_int_eq(eg_schema_metrics_header(f), 0);
    ck_assert_int_eq(eg_schema_metrics_row(f, &r1), 0);
    ck_assert_int_eq(eg_schema_metrics_row(f, &r2), 0);
    ck_assert_int_eq(fclose(f), 0);
    eg_spec *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->nodes = 16;
    s->seed = 18446744073709551615ULL; /* printed exactly */
    eg_summary_src src = {.spec = s, .final = r1, .ranks = 1, .threads = 2};
    eg_err err = {0};
    char *text = eg_schema_summary_text(&src, &err);
    ck_assert_ptr_nonnull(text);
    snprintf(p, sizeof p, "%s/summary.csv", dir);
    write_file(p, text);
    free(text);
    free(s);
}

START_TEST(schema_round_trip)
{
    const char *root = tmpdir();
    for (int k = 0; k < NTRICKY; k++) {
        if (!TRICKY[k][0] || strchr(TRICKY[k], ' ') == TRICKY[k])
            continue; /* key values are trimmed; an empty name is not a run */
        /* the run directory's own name is tricky too */
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%d,\"%s\"", root, k, TRICKY[k][0] == '/' ? "p" : TRICKY[k]);
        mkdirs(dir);
        write_run_files(dir, TRICKY[k]);
        char p[1200], *text, **h, **r;
        int nh, nr;
        snprintf(p, sizeof p, "%s/summary.csv", dir);
        read_two_records(p, &text, &h, &nh, &r, &nr);
        ck_assert_int_eq(nh, eg_summary_ncols()); /* the 42-fields bug */
        ck_assert_int_eq(nr, nh);
        ck_assert_str_eq(r[0], TRICKY[k]);
        ck_assert_str_eq(r[1], "18446744073709551615");
        free(h);
        free(r);
        eg_rundir run;
        eg_err err = {0};
        ck_assert_msg(eg_rundir_load(&run, dir, &err) == EG_OK, "%s", err.msg);
        ck_assert_int_eq(run.keysrc, EG_KEYS_SUMMARY);
        ck_assert_str_eq(eg_rundir_get(&run, "name"), TRICKY[k]);
        ck_assert_str_eq(eg_rundir_get(&run, "nodes"), "16");
        ck_assert_ptr_null(eg_rundir_get(&run, "test_acc"));
        /* metrics.csv: the evaluation-only cells are empty in the second row */
        const eg_metrics *m = &run.metrics;
        ck_assert_int_eq((int)m->nrows, 2);
        int without_cluster = 0; /* the plain header: no time_model_s, no val_* */
        for (int c = 0; c < eg_metrics_ncols; c++)
            without_cluster += !(eg_metrics_columns[c].flags & (EG_COL_CLUSTER | EG_COL_VAL));
        ck_assert_int_eq(m->ncols, without_cluster);
        ck_assert_int_eq(eg_metrics_col(m, "time_model_s"), -1);
        for (int c = 0, f = 0; c < eg_metrics_ncols; c++) /* f: the file's column */
            if (!(eg_metrics_columns[c].flags & (EG_COL_CLUSTER | EG_COL_VAL)))
                ck_assert_int_eq(m->has[m->ncols + f++],
                                 !(eg_metrics_columns[c].flags & EG_COL_EVAL));
        ck_assert_double_eq(m->val[eg_metrics_col(m, "iter")], 10);
        ck_assert_double_eq(m->val[eg_metrics_col(m, "consensus")], 1e-3);
        ck_assert_double_eq(m->val[m->ncols + eg_metrics_col(m, "bytes_sent")], 4096);
        eg_rundir_free(&run);
    }
    cleanup();
}
END_TEST

/* ---- pivot ---------------------------------------------------------------------- */

/* a run directory root/sub whose final test_acc is acc (empty when acc < 0) */
static void make_acc_run(const char *root, const char *sub, double acc)
{
    char d[1024], f[1100], text[400];
    snprintf(d, sizeof d, "%s/%s", root, sub);
    mkdirs(d);
    snprintf(f, sizeof f, "%s/metrics.csv", d);
    if (acc < 0)
        snprintf(text, sizeof text, HDR "\n10,1,0.1,0.1,1.5,,,0.01,100\n");
    else
        snprintf(text, sizeof text, HDR "\n10,1,0.1,0.1,1.5,0.9,0.1,0.01,100\n"
                                       "20,2,0.2,0.1,1.2,0.9,%g,0.005,200\n", acc);
    write_file(f, text);
}

/* a parsed table metric ("test_acc", "max:test_acc", "reach:test_acc>=0.5", ...) */
static eg_metric metric(const char *spec, const char *at)
{
    eg_metric mt;
    eg_err err = {0};
    ck_assert_msg(eg_metric_parse(spec, at, &mt, &err) == EG_OK, "%s: %s", spec, err.msg);
    return mt;
}

/* the test_acc table of rs with a row per graph, seeds aggregated (what `expgraph table RUNS
 * --rows graph` builds) */
static void graph_pivot(eg_pivot *p, eg_runset *rs)
{
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    ck_assert_msg(eg_pivot_build(p, rs, "graph", NULL, "seed", &mt, &err) == EG_OK, "%s", err.msg);
}

static void load_root(eg_runset *rs, const char *root)
{
    char rc[512];
    snprintf(rc, sizeof rc, "%s", root);
    char *paths[1] = {rc};
    eg_err err = {0};
    ck_assert_msg(eg_runset_load(rs, paths, 1, &err) == EG_OK, "%s", err.msg);
}

START_TEST(pivot_rows_cols)
{
    const char *root = tmpdir();
    make_acc_run(root, "graph=ring,nodes=4", 0.5);
    make_acc_run(root, "graph=ring,nodes=16", 0.75);
    make_acc_run(root, "graph=exp,nodes=16", 0.875);
    make_acc_run(root, "graph=exp,nodes=64", -1); /* no test_acc at all */
    eg_runset rs;
    load_root(&rs, root);
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt_final = metric("test_acc", NULL), mt_max = metric("max:test_acc", NULL),
              mt_min = metric("min:train_loss", NULL);
    ck_assert_msg(eg_pivot_build(&p, &rs, "graph", "nodes", NULL, &mt_final, &err) ==
                      EG_OK, "%s", err.msg);
    ck_assert_int_eq(p.nrows, 2);
    ck_assert_int_eq(p.ncols, 3);
    ck_assert_str_eq(p.rows[0], "exp"); /* first appearance in path order */
    ck_assert_str_eq(p.rows[1], "ring");
    ck_assert_str_eq(p.cols[0], "4"); /* numeric order */
    ck_assert_str_eq(p.cols[1], "16");
    ck_assert_str_eq(p.cols[2], "64");
    ck_assert_int_eq(p.nrowkeys, 1);
    ck_assert_str_eq(p.rowkeys[0], "graph");
    ck_assert_str_eq(p.colkey, "nodes");
    /* exp x 4: no run; exp x 64: a run without a value */
    ck_assert_int_eq(p.run[0], -1);
    ck_assert_int_eq(p.has[0], 0);
    ck_assert_int_ge(p.run[2], 0);
    ck_assert_int_eq(p.has[2], 0);
    ck_assert_int_eq(p.has[1], 1);
    ck_assert_double_eq(p.val[1], 0.875);
    ck_assert_double_eq(p.val[3], 0.5);
    ck_assert_double_eq(p.val[4], 0.75);
    ck_assert_int_eq(p.run[5], -1);
    eg_pivot_free(&p);
    eg_pivot_free(&p);

    /* default rows: the differing keys, one column named after the metric */
    ck_assert_int_eq(eg_pivot_build(&p, &rs, NULL, NULL, NULL, &mt_max, &err), EG_OK);
    ck_assert_int_eq(p.nrowkeys, 2);
    ck_assert_int_eq(p.nrows, 4);
    ck_assert_int_eq(p.ncols, 1);
    ck_assert_str_eq(p.cols[0], "max(test_acc)");
    ck_assert_str_eq(p.rows[0], "graph=exp, nodes=16");
    ck_assert_str_eq(p.rows[3], "graph=ring, nodes=16");
    ck_assert_double_eq(p.val[3], 0.75);
    eg_pivot_free(&p);
    /* the column key left out of the row keys */
    ck_assert_int_eq(eg_pivot_build(&p, &rs, NULL, "nodes", NULL, &mt_min, &err),
                     EG_OK);
    ck_assert_int_eq(p.nrowkeys, 1);
    ck_assert_str_eq(p.rowkeys[0], "graph");
    ck_assert_double_eq(p.val[1], 1.2);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(pivot_clash)
{
    const char *root = tmpdir();
    make_acc_run(root, "graph=ring,nodes=4", 0.5);
    make_acc_run(root, "graph=ring,nodes=16", 0.75);
    eg_runset rs;
    load_root(&rs, root);
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt_final = metric("test_acc", NULL);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, NULL, &mt_final, &err),
                     EG_EINPUT);
    char want[2048];
    snprintf(want, sizeof want,
             "runs %s/graph=ring,nodes=16 and %s/graph=ring,nodes=4 both fall into the cell "
             "(ring, test_acc); they differ in 'nodes': use it as --rows or --cols, or pass "
             "fewer directories",
             root, root);
    ck_assert_str_eq(err.msg, want);
    eg_pivot_free(&p);
    eg_runset_free(&rs);

    /* the same keys twice (a repeated run) */
    const char *r2 = tmpdir();
    make_acc_run(r2, "a/graph=ring,nodes=4", 0.5);
    make_acc_run(r2, "b/graph=ring,nodes=4", 0.5);
    load_root(&rs, r2);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", "nodes", NULL, &mt_final, &err),
                     EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "both fall into the cell (ring, 4) and have the same spec "
                                  "keys (a repeated run?); pass only one of them") != NULL,
                  "%s", err.msg);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

/* ---- seeds: mean, std, n; reach; mean curves --------------------------------------- */

/* a run root/sub with keys from summary.csv (seed, graph, nodes) and metrics rows text */
static void make_seed_run(const char *root, const char *sub, int seed, const char *graph,
                          const char *rows)
{
    char d[1024], f[1100], text[2048];
    snprintf(d, sizeof d, "%s/%s", root, sub);
    mkdirs(d);
    snprintf(f, sizeof f, "%s/metrics.csv", d);
    snprintf(text, sizeof text, HDR "\n%s", rows);
    write_file(f, text);
    snprintf(f, sizeof f, "%s/summary.csv", d);
    snprintf(text, sizeof text, "name,seed,nodes,graph,test_acc\nt,%d,4,%s,0\n", seed, graph);
    write_file(f, text);
}

START_TEST(metric_parse_forms)
{
    eg_metric mt;
    eg_err err = {0};
    ck_assert_int_eq(eg_metric_parse("test_acc", NULL, &mt, &err), EG_OK);
    ck_assert_int_eq(mt.agg, EG_AGG_FINAL);
    ck_assert_str_eq(mt.label, "test_acc");
    ck_assert_int_eq(eg_metric_parse("min:train_loss", NULL, &mt, &err), EG_OK);
    ck_assert_int_eq(mt.agg, EG_AGG_MIN);
    ck_assert_str_eq(mt.col, "train_loss");
    ck_assert_int_eq(eg_metric_parse("reach:test_acc>=0.88", NULL, &mt, &err), EG_OK);
    ck_assert_int_eq(mt.agg, EG_AGG_REACH_GE);
    ck_assert_str_eq(mt.col, "test_acc");
    ck_assert_str_eq(mt.at, "iter");
    ck_assert_double_eq(mt.thr, 0.88);
    ck_assert_str_eq(mt.label, "iter at test_acc>=0.88");
    ck_assert_int_eq(eg_metric_parse("reach: consensus <= 1e-3", "bytes_sent", &mt, &err), EG_OK);
    ck_assert_int_eq(mt.agg, EG_AGG_REACH_LE);
    ck_assert_str_eq(mt.col, "consensus");
    ck_assert_str_eq(mt.at, "bytes_sent");
    ck_assert_double_eq(mt.thr, 1e-3);
    static const char *const bad[] = {"reach:test_acc>0.5", "reach:test_acc", "reach:>=0.5",
                                      "reach:test_acc>=", "reach:test_acc>=x",
                                      "reach:test_acc>=inf", "max:", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(eg_metric_parse(bad[i], NULL, &mt, &err) == EG_EINPUT, "%s", bad[i]);
        ck_assert_msg(strstr(err.msg, bad[i]) != NULL, "%s: %s", bad[i], err.msg);
    }
    ck_assert_int_eq(eg_metric_parse("test_acc", "epoch", &mt, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "--at"));
}
END_TEST

START_TEST(metrics_reach)
{
    const char *dir = tmpdir();
    char *p = tmp_path(dir, "metrics.csv");
    /* test_acc empty at rows 1 and 3; the condition first holds at row 4 (epoch 2) */
    write_file(p, HDR "\n"
                  "10,0.5,0.1,0.1,2.0,,,0.5,100\n"
                  "20,1.0,0.2,0.1,1.0,0.8,0.70,0.25,200\n"
                  "30,1.5,0.3,0.1,0.9,,,0.125,300\n"
                  "40,2.0,0.4,0.1,0.8,0.7,0.85,0.0625,400\n"
                  "50,2.5,0.5,0.1,0.7,0.6,0.90,0.03,500\n");
    eg_metrics m;
    eg_err err = {0};
    ck_assert_int_eq(eg_metrics_read(&m, p, &err), EG_OK);
    double v = -1;
    eg_metric mt = metric("reach:test_acc>=0.8", NULL);
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 40); /* hit: the first qualifying row, empty cells skipped */
    mt = metric("reach:test_acc>=0.8", "epoch");
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 2.0); /* --at epoch */
    mt = metric("reach:test_acc>=0.9", "bytes_sent");
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 500); /* reached at the last row, >= is inclusive */
    mt = metric("reach:test_acc>=0.95", NULL);
    v = -1;
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 0); /* never */
    ck_assert_double_eq(v, -1);
    mt = metric("reach:train_loss<=2", "time_s");
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 0.1); /* reached at the first row, <= form */
    mt = metric("reach:consensus<=0.1", NULL);
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 40);
    mt = metric("reach:test_loss<=0.85", NULL);
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 1);
    ck_assert_double_eq(v, 20); /* row 1's empty test_loss is not 0 */
    mt = metric("reach:nosuch>=1", NULL);
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 0);
    ck_assert_int_eq(eg_metrics_agg(&m, 6, EG_AGG_REACH_GE, &v), 0); /* not a reduction */
    eg_metrics_free(&m);
    /* a file with no rows never reaches */
    write_file(p, HDR "\n");
    ck_assert_int_eq(eg_metrics_read(&m, p, &err), EG_OK);
    mt = metric("reach:test_acc>=0", NULL);
    ck_assert_int_eq(eg_metric_value(&m, &mt, &v), 0);
    eg_metrics_free(&m);
    cleanup();
}
END_TEST

/* the mean and sample std of v[0..n-1], computed here directly */
static void direct_mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *sd = sqrt(q / (n - 1));
}

/* seeds that agree exactly: the mean is their value and the std 0, not the rounding error of
 * the sum (0.1 + 0.1 + 0.1 = 0.30000000000000004, / 3 is not 0.1) */
START_TEST(pivot_agg_equal_values)
{
    const char *root = tmpdir();
    for (int s = 0; s < 3; s++) {
        char sub[64];
        snprintf(sub, sizeof sub, "seed=%d,graph=ring", s + 1);
        make_seed_run(root, sub, s + 1, "ring", "10,1,0.1,0.1,1.5,0.9,0.1,0.01,100\n");
    }
    eg_runset rs;
    load_root(&rs, root);
    eg_pivot p;
    graph_pivot(&p, &rs);
    ck_assert_int_eq(p.nrows, 1);
    ck_assert_int_eq(p.n[0], 3);
    ck_assert_double_eq(p.val[0], 0.1);
    ck_assert_double_eq(p.sd[0], 0.0);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(pivot_agg_seeds)
{
    const char *root = tmpdir();
    const double ring[3] = {0.81, 0.84, 0.86}, exp_[2] = {0.9, 0.7};
    char rows[256];
    for (int s = 0; s < 3; s++) {
        char sub[64];
        snprintf(rows, sizeof rows, "10,1,0.1,0.1,1.5,0.9,0.5,0.01,100\n20,2,0.2,0.1,1.2,0.9,%.17g,0.005,200\n", ring[s]);
        snprintf(sub, sizeof sub, "seed=%d,graph=ring", s + 1);
        make_seed_run(root, sub, s + 1, "ring", rows);
        if (s < 2) {
            snprintf(rows, sizeof rows, "10,1,0.1,0.1,1.5,0.9,%.17g,0.01,100\n", exp_[s]);
            snprintf(sub, sizeof sub, "seed=%d,graph=exp", s + 1);
            make_seed_run(root, sub, s + 1, "exp", rows);
        }
    }
    make_seed_run(root, "seed=1,graph=full", 1, "full", "10,1,0.1,0.1,1.5,0.9,0.95,0.01,100\n");
    eg_runset rs;
    load_root(&rs, root);
    ck_assert_str_eq(eg_pivot_default_agg(&rs, NULL, NULL), "seed");
    ck_assert_ptr_null(eg_pivot_default_agg(&rs, "seed", NULL));
    ck_assert_ptr_null(eg_pivot_default_agg(&rs, NULL, "seed"));
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    ck_assert_msg(eg_pivot_build(&p, &rs, NULL, NULL, "seed", &mt, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(p.nrowkeys, 1); /* seed is aggregated over, not a row key */
    ck_assert_str_eq(p.rowkeys[0], "graph");
    ck_assert_int_eq(p.nrows, 3);
    ck_assert_int_eq(p.ncols, 1);
    double mean, sd;
    for (int r = 0; r < 3; r++) {
        if (!strcmp(p.rows[r], "ring")) {
            direct_mean_sd(ring, 3, &mean, &sd);
            ck_assert_int_eq(p.n[r], 3);
            ck_assert_double_eq_tol(p.val[r], mean, 1e-15);
            ck_assert_double_eq_tol(p.sd[r], sd, 1e-15);
        } else if (!strcmp(p.rows[r], "exp")) {
            direct_mean_sd(exp_, 2, &mean, &sd);
            ck_assert_int_eq(p.n[r], 2);
            ck_assert_double_eq_tol(p.val[r], 0.8, 1e-15);
            ck_assert_double_eq_tol(p.sd[r], sd, 1e-15);
            ck_assert_double_eq_tol(p.sd[r], sqrt(0.02), 1e-15);
        } else {
            ck_assert_str_eq(p.rows[r], "full"); /* one run: the value, no std, n = 1 */
            ck_assert_int_eq(p.n[r], 1);
            ck_assert_int_eq(p.nruns[r], 1);
            ck_assert_double_eq(p.val[r], 0.95);
            ck_assert(isnan(p.sd[r]));
        }
        ck_assert_int_eq(p.has[r], 1);
    }
    eg_pivot_free(&p);

    /* reach, aggregated: exp never reaches 0.84 in seed 2 -> n = 1 of 2 runs */
    mt = metric("reach:test_acc>=0.84", NULL);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    for (int r = 0; r < 3; r++)
        if (!strcmp(p.rows[r], "exp")) {
            ck_assert_int_eq(p.nruns[r], 2);
            ck_assert_int_eq(p.n[r], 1);
            ck_assert_double_eq(p.val[r], 10);
        } else if (!strcmp(p.rows[r], "ring")) {
            ck_assert_int_eq(p.n[r], 2); /* 0.86 and 0.84 reach it at iter 20, 0.81 not */
            ck_assert_double_eq(p.val[r], 20);
            ck_assert_double_eq(p.sd[r], 0);
        }
    eg_pivot_free(&p);

    /* every seed a row of its own without aggregation; the aggregated key cannot label */
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", "seed", NULL, &mt, &err), EG_OK);
    ck_assert_int_eq(p.ncols, 3);
    eg_pivot_free(&p);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", "seed", "seed", &mt, &err), EG_EINPUT);
    eg_pivot_free(&p);
    /* all runs in one row ("all") when only the aggregated key is left */
    ck_assert_int_eq(eg_pivot_build(&p, &rs, NULL, "graph", "seed", &mt, &err), EG_OK);
    ck_assert_int_eq(p.nrows, 1);
    ck_assert_str_eq(p.rows[0], "all");
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(pivot_agg_clash)
{
    /* runs in one cell that differ in another key than seed still clash, as before */
    const char *root = tmpdir();
    make_seed_run(root, "a", 1, "ring", "10,1,0.1,0.1,1.5,0.9,0.5,0.01,100\n");
    make_seed_run(root, "b", 2, "exp", "10,1,0.1,0.1,1.5,0.9,0.6,0.01,100\n");
    eg_runset rs;
    load_root(&rs, root);
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    /* seeds differ, but every graph has one run: no aggregation by default */
    ck_assert_ptr_null(eg_pivot_default_agg(&rs, NULL, NULL));
    ck_assert_ptr_null(eg_pivot_default_agg(&rs, "graph", NULL));
    /* rows by nodes put both runs into one cell: seed, and the clash names graph */
    ck_assert_str_eq(eg_pivot_default_agg(&rs, "nodes", NULL), "seed");
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "nodes", NULL, "seed", &mt, &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "both fall into the cell (4, test_acc); they differ in "
                                  "'graph'") != NULL,
                  "%s", err.msg);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    /* the same seed twice: a repeated run */
    const char *r2 = tmpdir();
    make_seed_run(r2, "a", 1, "ring", "10,1,0.1,0.1,1.5,0.9,0.5,0.01,100\n");
    make_seed_run(r2, "b", 1, "ring", "10,1,0.1,0.1,1.5,0.9,0.6,0.01,100\n");
    load_root(&rs, r2);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "a repeated run?"));
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

/* Provenance columns (dnnl_isa, cpu) are keys a table can group by, but runs that differ
 * only in them are the same experiment: they never make rows by themselves nor clash. */
START_TEST(pivot_env_keys)
{
    const char *root = tmpdir();
    static const char *isa[] = {"brgconv:avx512_core", "jit:avx2", "brgconv:avx512_core"};
    for (int s = 0; s < 3; s++) {
        char d[1024], f[1100], text[1024];
        snprintf(d, sizeof d, "%s/seed=%d", root, s + 1);
        mkdirs(d);
        snprintf(f, sizeof f, "%s/metrics.csv", d);
        snprintf(text, sizeof text, HDR "\n10,1,0.1,0.1,1.5,0.9,0.%d,0.01,100\n", 5 + s);
        write_file(f, text);
        snprintf(f, sizeof f, "%s/summary.csv", d);
        snprintf(text, sizeof text,
                 "name,seed,nodes,graph,test_acc,expgraph_version,commit,dnnl_isa,cpu,hosts\n"
                 "t,%d,4,ring,0,0.1.0,abc%d,%s,\"CPU, model %d\",1\n", s + 1, s, isa[s], s % 2);
        write_file(f, text);
    }
    eg_runset rs;
    load_root(&rs, root);
    ck_assert_str_eq(eg_rundir_get(&rs.runs[1], "dnnl_isa"), "jit:avx2");
    ck_assert_str_eq(eg_rundir_get(&rs.runs[1], "cpu"), "CPU, model 1");
    int nd = 0;
    const char **diff = eg_runset_differing(&rs, &nd);
    ck_assert_int_eq(nd, 1); /* seed; not commit, dnnl_isa or cpu */
    ck_assert_str_eq(diff[0], "seed");
    free((void *)diff);
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    /* averaged over seeds although the runs ran on other kernels */
    ck_assert_msg(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err) == EG_OK, "%s", err.msg);
    ck_assert_int_eq(p.nrows, 1);
    ck_assert_int_eq(p.n[0], 3);
    eg_pivot_free(&p);
    /* grouped by kernel: two rows */
    char key[256];
    ck_assert_int_eq(eg_runset_resolve_key(&rs, "dnnl_isa", key, sizeof key, &err), EG_OK);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, key, NULL, "seed", &mt, &err), EG_OK);
    ck_assert_int_eq(p.nrows, 2);
    ck_assert_str_eq(p.rows[0], "brgconv:avx512_core");
    ck_assert_int_eq(p.n[0], 2);
    ck_assert_double_eq_tol(p.val[0], 0.6, 1e-12);
    ck_assert_str_eq(p.rows[1], "jit:avx2");
    ck_assert_double_eq_tol(p.val[1], 0.6, 1e-12);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(curve_mean_shared_rows)
{
    const char *root = tmpdir();
    /* seed 1 lacks test_acc at iter 20; seed 2 stops at iter 30: shared rows are 10 and 30 */
    make_seed_run(root, "s1", 1, "ring",
                  "10,1,1,0.1,1.5,0.9,0.5,0.01,100\n20,2,2,0.1,1.2,,,0.005,200\n"
                  "30,3,3,0.1,1.2,0.9,0.7,0.005,300\n40,4,4,0.1,1.2,0.9,0.8,0.005,400\n");
    make_seed_run(root, "s2", 2, "ring",
                  "10,1,3,0.1,1.5,0.9,0.6,0.01,100\n20,2,4,0.1,1.2,0.9,0.65,0.005,200\n"
                  "30,3,5,0.1,1.2,0.9,0.9,0.005,300\n");
    eg_runset rs;
    load_root(&rs, root);
    eg_curve c;
    eg_err err = {0};
    int idx[2] = {0, 1};
    ck_assert_int_eq(eg_curve_mean(&c, &rs, idx, 2, "time_s", "test_acc", &err), EG_OK);
    ck_assert_int_eq((int)c.n, 2);
    ck_assert_double_eq(c.x[0], 2); /* time_s averaged over the runs */
    ck_assert_double_eq(c.x[1], 4);
    ck_assert_double_eq_tol(c.mean[0], 0.55, 1e-15);
    ck_assert_double_eq_tol(c.sd[1], sqrt(0.02), 1e-15);
    ck_assert_double_eq(c.lo[1], 0.7);
    ck_assert_double_eq(c.hi[1], 0.9);
    eg_curve_free(&c);
    /* one run: its own rows, no spread */
    ck_assert_int_eq(eg_curve_mean(&c, &rs, idx, 1, "iter", "test_acc", &err), EG_OK);
    ck_assert_int_eq((int)c.n, 3);
    ck_assert(isnan(c.sd[0]));
    ck_assert_double_eq(c.lo[2], 0.8);
    eg_curve_free(&c);
    ck_assert_int_eq(eg_curve_mean(&c, &rs, idx, 2, "iter", "nosuch", &err), EG_OK);
    ck_assert_int_eq((int)c.n, 0);
    eg_curve_free(&c);
    eg_curve_free(NULL);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

/* ---- ticks ---------------------------------------------------------------------- */

START_TEST(nice_ticks)
{
    double t[64], step;
    int n = eg_plot_nice_ticks(0, 0.83, 6, t, 64, &step);
    ck_assert_double_eq_tol(step, 0.2, 1e-12);
    ck_assert_int_eq(n, 5);
    ck_assert_double_eq_tol(t[0], 0, 1e-12);
    ck_assert_double_eq_tol(t[4], 0.8, 1e-12);

    n = eg_plot_nice_ticks(0, 40, 6, t, 64, &step);
    ck_assert_double_eq(step, 10);
    ck_assert_int_eq(n, 5);

    n = eg_plot_nice_ticks(-1.3, 7.1, 5, t, 64, &step);
    ck_assert_double_eq(step, 2);
    ck_assert_int_eq(n, 4); /* 0 2 4 6 */
    ck_assert_double_eq(t[0], 0);

    n = eg_plot_nice_ticks(1017, 1093, 8, t, 64, &step); /* 10 would need 9 intervals */
    ck_assert_double_eq(step, 20);
    ck_assert_int_eq(n, 4); /* 1020 .. 1080 */
    ck_assert_double_eq(t[0], 1020);
    n = eg_plot_nice_ticks(1017, 1093, 9, t, 64, &step);
    ck_assert_double_eq(step, 10);

    n = eg_plot_nice_ticks(0.00123, 0.00171, 6, t, 64, &step);
    ck_assert_double_eq_tol(step, 1e-4, 1e-18);
    ck_assert_int_eq(n, 5); /* 0.0013 .. 0.0017 */

    /* every step is 1, 2 or 5 times a power of ten, for many ranges */
    for (int i = 1; i < 300; i++) {
        double lo = -i * 0.37, hi = i * i * 1.9 + 0.01;
        n = eg_plot_nice_ticks(lo, hi, 7, t, 64, &step);
        ck_assert_int_ge(n, 2);
        ck_assert_int_le(n, 8);
        double m = step / pow(10, floor(log10(step) + 1e-9));
        ck_assert_msg(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9,
                      "step %g", step);
        ck_assert(t[0] >= lo - 1e-9 && t[n - 1] <= hi + 1e-9);
    }
    ck_assert_int_eq(eg_plot_nice_ticks(1, 1, 5, t, 64, &step), 0);

    int dec;
    n = eg_plot_log_ticks(3e-7, 0.5, 10, t, 64, &dec);
    ck_assert_int_eq(dec, 1);
    ck_assert_int_eq(n, 6); /* 1e-6 .. 1e-1 */
    ck_assert_double_eq_tol(t[0], 1e-6, 1e-20);
    ck_assert_double_eq_tol(t[5], 0.1, 1e-15);
    n = eg_plot_log_ticks(1e-20, 1, 6, t, 64, &dec); /* every m-th decade */
    ck_assert_int_le(n, 6);
    ck_assert_int_ge(n, 4);
    n = eg_plot_log_ticks(0.0015, 0.08, 10, t, 64, &dec); /* under two decades: 1-2-5 */
    ck_assert_int_eq(dec, 0);
    ck_assert_int_eq(n, 5); /* 0.002 0.005 0.01 0.02 0.05 */
    ck_assert_double_eq_tol(t[0], 0.002, 1e-15);

    char b[32];
    eg_plot_format_tick(0.4, 0.2, b, sizeof b);
    ck_assert_str_eq(b, "0.4");
    eg_plot_format_tick(1500, 500, b, sizeof b);
    ck_assert_str_eq(b, "1500");
    eg_plot_format_tick(0.0013, 1e-4, b, sizeof b);
    ck_assert_str_eq(b, "0.0013");
    eg_plot_format_tick(2.5e-6, 5e-7, b, sizeof b);
    ck_assert_str_eq(b, "2.5e-6");
    eg_plot_format_tick(3e9, 1e9, b, sizeof b);
    ck_assert_str_eq(b, "3e9");
    eg_plot_format_tick(-1e-17, 0.1, b, sizeof b);
    ck_assert_str_eq(b, "0.0");
    cleanup();
}
END_TEST

/* ---- figures -------------------------------------------------------------------- */

/* reads a PNG back: size, and the count of non-white pixels and of "blue-ish" ones */
/* the pixels of a PNG as RGBA (malloc'ed), its size in *w x *h */
static unsigned char *read_rgba(const char *path, int *w, int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&img, path) != 0, "%s: %s", path,
                  img.message);
    img.format = PNG_FORMAT_RGBA;
    *w = (int)img.width;
    *h = (int)img.height;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    ck_assert_ptr_nonnull(px);
    ck_assert(png_image_finish_read(&img, NULL, px, 0, NULL) != 0);
    return px;
}

/* pixels within tol of colour (r, g, b) in each channel */
static long count_near(const unsigned char *px, int w, int h, int r, int g, int b, int tol)
{
    long n = 0;
    for (long i = 0; i < (long)w * h; i++) {
        const unsigned char *p = px + 4 * i;
        n += abs(p[0] - r) < tol && abs(p[1] - g) < tol && abs(p[2] - b) < tol;
    }
    return n;
}

static void png_stats(const char *path, int *w, int *h, long *ink, long *blue)
{
    unsigned char *px = read_rgba(path, w, h);
    *ink = 0;
    for (long i = 0; i < (long)*w * *h; i++) {
        unsigned char *p = px + 4 * i;
        if (p[0] < 240 || p[1] < 240 || p[2] < 240)
            (*ink)++;
    }
    *blue = count_near(px, *w, *h, 31, 119, 180, 20); /* tab10 blue is (31, 119, 180) */
    free(px);
}

START_TEST(plot_band_png)
{
    const char *dir = tmpdir();
    double x[20], y[20], lo[20], hi[20];
    for (int i = 0; i < 20; i++) {
        x[i] = i;
        y[i] = 0.5 + 0.01 * i;
        lo[i] = y[i] - 0.2;
        hi[i] = y[i] + 0.2;
    }
    eg_series s = {"mean (n=3)", x, y, 20, lo, hi};
    eg_plot_opts o;
    eg_plot_opts_init(&o);
    o.width = 700;
    o.height = 450;
    eg_err err = {0};
    char *p = tmp_path(dir, "band.png");
    ck_assert_msg(eg_plot_png(p, &s, 1, &o, &err) == EG_OK, "%s", err.msg);
    int w, h;
    unsigned char *px = read_rgba(p, &w, &h);
    ck_assert_int_eq(w, 700);
    ck_assert_int_eq(h, 450);
    /* the band: tab10 blue at alpha 0.22 over white, about (206, 225, 238); it spans most
     * of the plot's height (the limits include the band), so a large share of the image */
    long band = count_near(px, w, h, 206, 225, 238, 6);
    free(px);
    ck_assert_msg(band > 700 * 450 / 5, "band pixels: %ld", band);
    /* the same curve without a band has none of that colour */
    s.lo = s.hi = NULL;
    ck_assert_int_eq(eg_plot_png(p, &s, 1, &o, &err), EG_OK);
    px = read_rgba(p, &w, &h);
    long none = count_near(px, w, h, 206, 225, 238, 6);
    free(px);
    ck_assert_msg(none < 400, "band colour without a band: %ld", none);
    cleanup();
}
END_TEST

START_TEST(plot_png)
{
    const char *dir = tmpdir();
    double x[50], y1[50], y2[50];
    for (int i = 0; i < 50; i++) {
        x[i] = i * 10;
        y1[i] = exp(-0.1 * i);
        y2[i] = i % 7 == 3 ? NAN : 0.5 * exp(-0.05 * i); /* empty cells are skipped */
    }
    y2[0] = 0; /* non-positive: left out on a log axis */
    eg_series s[3] = {{"graph=ring, nodes=16", x, y1, 50, NULL, NULL},
                      {"graph=exp, nodes=16", x, y2, 50, NULL, NULL},
                      {"empty", x, y1, 0, NULL, NULL}};
    eg_plot_opts o;
    eg_plot_opts_init(&o);
    ck_assert_int_eq(o.width, 900);
    ck_assert_int_eq(o.height, 560);
    o.xlabel = "iteration";
    o.ylabel = "consensus distance";
    o.title = "title";
    o.log_y = 1;
    eg_err err = {0};
    char *p = tmp_path(dir, "c.png");
    ck_assert_msg(eg_plot_png(p, s, 3, &o, &err) == EG_OK, "%s", err.msg);
    int w, h;
    long ink, blue;
    png_stats(p, &w, &h, &ink, &blue);
    ck_assert_int_eq(w, 900);
    ck_assert_int_eq(h, 560);
    ck_assert_int_gt(ink, 5000); /* axes, text, curves: far from blank */
    ck_assert_int_lt(ink, 900 * 560 / 2); /* and not a filled mess */
    ck_assert_int_gt(blue, 300);          /* the first series is drawn in tab10 blue */
    struct stat st;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    ck_assert_int_ne(stat(tmp, &st), 0); /* no temporary left behind */

    /* another size, linear axis */
    o.width = 640;
    o.height = 400;
    o.log_y = 0;
    o.title = NULL;
    p = tmp_path(dir, "a.png");
    ck_assert_msg(eg_plot_png(p, s, 2, &o, &err) == EG_OK, "%s", err.msg);
    png_stats(p, &w, &h, &ink, &blue);
    ck_assert_int_eq(w, 640);
    ck_assert_int_eq(h, 400);
    ck_assert_int_gt(ink, 3000);
    ck_assert_int_gt(blue, 200);

    /* a single point and a constant series still draw */
    double one_x = 5, one_y = 0.7;
    eg_series s1 = {"only", &one_x, &one_y, 1, NULL, NULL};
    ck_assert_int_eq(eg_plot_png(p, &s1, 1, NULL, &err), EG_OK);

    /* errors */
    o.width = 10;
    ck_assert_int_eq(eg_plot_png(p, s, 2, &o, &err), EG_EINPUT);
    o.width = 640;
    ck_assert_int_eq(eg_plot_png("/nonexistent/dir/x.png", s, 2, &o, &err), EG_ERUN);
    ck_assert_msg(strstr(err.msg, "/nonexistent/dir/x.png") != NULL, "%s", err.msg);
    cleanup();
}
END_TEST

/* ---- paired comparisons (table --vs) ------------------------------------------------ */

START_TEST(t_quantile_known)
{
    /* printed tables (two-sided 95%: the 0.975 quantile) and closed forms for df 1 and 2 */
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 1), 12.706, 5e-4);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 2), 4.303, 5e-4);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 4), 2.776, 5e-4);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 29), 2.045, 5e-4);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 1), tan(M_PI * 0.475), 1e-9);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 2), sqrt(2 / (4 * 0.975 * 0.025) - 2), 1e-10);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 4), 2.776445105, 1e-8);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 29), 2.045229642, 1e-8);
    ck_assert_double_eq_tol(eg_t_quantile(0.995, 5), 4.032142984, 1e-8);
    ck_assert_double_eq_tol(eg_t_quantile(0.975, 1e6), 1.959966, 1e-5); /* -> normal */
    ck_assert_double_eq_tol(eg_t_quantile(0.025, 4), -2.776445105, 1e-8);
    ck_assert_double_eq(eg_t_quantile(0.5, 3), 0);
    for (double t = -5; t <= 5; t += 0.25) /* df 1: the Cauchy distribution */
        ck_assert_double_eq_tol(eg_t_cdf(t, 1), 0.5 + atan(t) / M_PI, 1e-12);
    ck_assert(isnan(eg_t_quantile(1, 3)));
    ck_assert(isnan(eg_t_quantile(0.975, 0)));
}
END_TEST

/* root/sub: seed, graph and final test_acc acc, nodes 4 */
static void make_pair_run(const char *root, int seed, const char *graph, double acc)
{
    char sub[64], rows[200];
    snprintf(sub, sizeof sub, "graph=%s,seed=%d", graph, seed);
    snprintf(rows, sizeof rows, "10,1,0.1,0.1,1.5,0.9,0.5,0.01,100\n"
                                "20,2,0.2,0.1,1.2,0.9,%.17g,0.005,200\n", acc);
    make_seed_run(root, sub, seed, graph, rows);
}

/* the row of p labelled name */
static int row_of(const eg_pivot *p, const char *name)
{
    for (int r = 0; r < p->nrows; r++)
        if (!strcmp(p->rows[r], name))
            return r;
    ck_abort_msg("no row %s", name);
    return -1;
}

START_TEST(pivot_paired_hand)
{
    const char *root = tmpdir();
    const double ring[3] = {0.80, 0.83, 0.85}, ex[3] = {0.81, 0.82, 0.86},
                 full[3] = {0.90, 0.92, 0.93};
    for (int s = 0; s < 3; s++) {
        make_pair_run(root, s + 1, "ring", ring[s]);
        make_pair_run(root, s + 1, "exp", ex[s]);
        make_pair_run(root, s + 1, "full", full[s]);
    }
    eg_runset rs;
    load_root(&rs, root);
    eg_pivot p;
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    ck_assert_msg(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err) == EG_OK, "%s",
                  err.msg);
    ck_assert_msg(eg_pivot_paired(&p, &rs, "graph", "exp", &err) == EG_OK, "%s", err.msg);
    /* by hand: ring - exp per seed = -0.01, +0.01, -0.01: mean -0.003333, sd 0.011547,
     * half-width t_{0.975,2} 0.011547 / sqrt 3 = 4.302653 x 0.0066667 = 0.028684: the
     * interval [-0.032018, 0.025351] holds 0 */
    int r = row_of(&p, "ring");
    ck_assert_int_eq(p.ref[r], 0);
    ck_assert_int_eq(p.dn[r], 3);
    ck_assert_double_eq_tol(p.dmean[r], -0.0033333333, 1e-9);
    ck_assert_double_eq_tol(p.dsd[r], 0.0115470054, 1e-9);
    ck_assert_double_eq_tol(p.dlo[r], -0.0320176849, 1e-9);
    ck_assert_double_eq_tol(p.dhi[r], 0.0253510182, 1e-9);
    ck_assert(p.dlo[r] < 0 && p.dhi[r] > 0);
    /* full - exp = 0.09, 0.10, 0.07: mean 0.086667, sd 0.015275, half-width 0.037946:
     * [0.048721, 0.124612] excludes 0 */
    r = row_of(&p, "full");
    ck_assert_int_eq(p.dn[r], 3);
    ck_assert_double_eq_tol(p.dmean[r], 0.0866666667, 1e-9);
    ck_assert_double_eq_tol(p.dsd[r], 0.0152752523, 1e-9);
    ck_assert_double_eq_tol(p.dlo[r], 0.0487208363, 1e-9);
    ck_assert_double_eq_tol(p.dhi[r], 0.1246124970, 1e-9);
    r = row_of(&p, "exp");
    ck_assert_int_eq(p.ref[r], 1);
    ck_assert_int_eq(p.dn[r], 0);
    ck_assert_double_eq_tol(p.val[r], (0.81 + 0.82 + 0.86) / 3, 1e-12); /* its own mean */
    eg_pivot_free(&p);
    /* the unpaired means differ from the paired ones' logic: the same cells without --vs
     * have ring's std 0.025, larger than the paired 0.0115 (the seeds' shared part cancels) */
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    ck_assert(p.sd[row_of(&p, "ring")] > 2 * 0.0115470054);
    /* the reference must exist; the compared key cannot be the aggregated one */
    ck_assert_int_eq(eg_pivot_paired(&p, &rs, "graph", "torus", &err), EG_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "graph=torus"));
    eg_pivot_free(&p);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    ck_assert_int_eq(eg_pivot_paired(&p, &rs, "seed", "1", &err), EG_EINPUT);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

START_TEST(pivot_paired_unpaired)
{
    eg_err err = {0};
    eg_metric mt = metric("test_acc", NULL);
    eg_pivot p;
    eg_runset rs;
    /* a run whose seed the reference lacks */
    const char *root = tmpdir();
    for (int s = 1; s <= 2; s++) {
        make_pair_run(root, s, "ring", 0.8);
        make_pair_run(root, s, "exp", 0.9);
    }
    make_pair_run(root, 3, "ring", 0.8);
    load_root(&rs, root);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    ck_assert_int_eq(eg_pivot_paired(&p, &rs, "graph", "exp", &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "unpaired") && strstr(err.msg, "graph=ring,seed=3") &&
                      strstr(err.msg, "seed=3") && strstr(err.msg, "graph=exp"),
                  "%s", err.msg);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
    /* rows that differ in more than the compared key: a psgd row (graph full) pairs with
     * the dmsgd row graph=exp by seed, since algorithm is constant along each row */
    root = tmpdir();
    for (int s = 1; s <= 3; s++) {
        char sub[64], f[1200], text[300];
        make_pair_run(root, s, "exp", 0.80 + 0.01 * s);
        make_pair_run(root, s, "full", 0.90 + 0.02 * s);
        snprintf(sub, sizeof sub, "graph=full,seed=%d", s);
        snprintf(f, sizeof f, "%s/%s/summary.csv", root, sub);
        snprintf(text, sizeof text, "name,seed,nodes,graph,algorithm,test_acc\nt,%d,4,full,psgd,0\n", s);
        write_file(f, text);
        snprintf(sub, sizeof sub, "graph=exp,seed=%d", s);
        snprintf(f, sizeof f, "%s/%s/summary.csv", root, sub);
        snprintf(text, sizeof text, "name,seed,nodes,graph,algorithm,test_acc\nt,%d,4,exp,dmsgd,0\n", s);
        write_file(f, text);
    }
    load_root(&rs, root);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    ck_assert_msg(eg_pivot_paired(&p, &rs, "graph", "exp", &err) == EG_OK, "%s", err.msg);
    int r = row_of(&p, "full");
    ck_assert_int_eq(p.dn[r], 3);
    ck_assert_double_eq_tol(p.dmean[r], 0.12, 1e-12); /* 0.1 + 0.01 s for s = 1, 2, 3 */
    ck_assert_double_eq_tol(p.dsd[r], 0.01, 1e-12);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
    /* a reference seed the cell lacks */
    root = tmpdir();
    for (int s = 1; s <= 2; s++) {
        make_pair_run(root, s, "ring", 0.8);
        make_pair_run(root, s, "exp", 0.9);
    }
    make_pair_run(root, 3, "exp", 0.9);
    load_root(&rs, root);
    ck_assert_int_eq(eg_pivot_build(&p, &rs, "graph", NULL, "seed", &mt, &err), EG_OK);
    ck_assert_int_eq(eg_pivot_paired(&p, &rs, "graph", "exp", &err), EG_EINPUT);
    ck_assert_msg(strstr(err.msg, "unpaired") && strstr(err.msg, "(ring,") &&
                      strstr(err.msg, "graph=exp,seed=3"),
                  "%s", err.msg);
    eg_pivot_free(&p);
    eg_runset_free(&rs);
    cleanup();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("results");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, metrics_good);
    tcase_add_test(tc, metrics_crlf_no_final_newline);
    tcase_add_test(tc, metrics_corrupt);
    tcase_add_test(tc, expand_sweep_root);
    tcase_add_test(tc, keys_from_summary);
    tcase_add_test(tc, keys_from_spec_yaml);
    tcase_add_test(tc, rundir_set_key);
    tcase_add_test(tc, rundir_label_subkeys);
    tcase_add_test(tc, runset_keys_and_order);
    tcase_add_test(tc, csv_round_trip);
    tcase_add_test(tc, schema_columns);
    tcase_add_test(tc, schema_round_trip);
    tcase_add_test(tc, schema_val_columns);
    tcase_add_test(tc, pivot_rows_cols);
    tcase_add_test(tc, pivot_clash);
    tcase_add_test(tc, metric_parse_forms);
    tcase_add_test(tc, metrics_reach);
    tcase_add_test(tc, pivot_agg_seeds);
    tcase_add_test(tc, pivot_agg_equal_values);
    tcase_add_test(tc, pivot_agg_clash);
    tcase_add_test(tc, t_quantile_known);
    tcase_add_test(tc, pivot_paired_hand);
    tcase_add_test(tc, pivot_paired_unpaired);
    tcase_add_test(tc, pivot_env_keys);
    tcase_add_test(tc, curve_mean_shared_rows);
    tcase_add_test(tc, nice_ticks);
    tcase_add_test(tc, plot_png);
    tcase_add_test(tc, plot_band_png);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return eg_test_run(suite());
}
