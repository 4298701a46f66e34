/* check_spec.c - spec parsing: defaults, overrides, resolved YAML round trip, errors with
 * FILE:LINE:COL naming the key, sweeps. */
#include "spec.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[512];

static const char *write_spec(const char *name, const char *text)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char *BASE =
    "seed: 7\n"
    "nodes: 8\n"
    "graph: onepeer_exp\n"
    "algorithm: {name: dmsgd, momentum: 0.8, weight_decay: 1.0e-4}\n"
    "model: {name: mlp, hidden: [64, 32]}\n"
    "data: {name: synthetic, dim: 10, classes: 3, batch_size: 16}\n"
    "train: {iterations: 100, log_every: 10}\n"
    "lr: {base: 0.05, schedule: step, milestones: [1, 2], gamma: 0.5, warmup_epochs: 0.5}\n";

START_TEST(test_good_and_defaults)
{
    const char *p = write_spec("good.yaml", BASE);
    eg_spec s;
    eg_err e = {0};
    ck_assert_int_eq(eg_spec_load(&s, p, NULL, 0, &e), 0);
    ck_assert_str_eq(s.name, "good"); /* the file's stem */
    ck_assert_int_eq(s.nodes, 8);
    ck_assert_uint_eq(s.seed, 7);
    ck_assert_int_eq(s.graph.kind, EG_GRAPH_ONEPEER_EXP);
    ck_assert_int_eq(s.algo.kind, EG_ALGO_DMSGD);
    ck_assert_double_eq_tol(s.algo.momentum, 0.8, 1e-15);
    ck_assert_int_eq(s.algo.nesterov, 0);
    ck_assert_int_eq(s.model.n_hidden, 2);
    ck_assert_int_eq(s.model.hidden[1], 32);
    ck_assert_int_eq(s.data.partition, EG_PART_IID);
    ck_assert_double_eq_tol(s.data.alpha, 0.5, 1e-15);
    ck_assert_int_eq(s.data.batch_size, 16);
    ck_assert_int_eq(s.train.iterations, 100);
    ck_assert_int_eq(s.train.checkpoint_every, 500);
    ck_assert_int_eq(s.lr.n_milestones, 2);
    ck_assert_str_eq(s.out_dir, "runs/good");
    eg_spec_free(&s);
}
END_TEST

START_TEST(test_overrides)
{
    const char *p = write_spec("over.yaml", BASE);
    char *sets[] = {"lr.base=0.2", "graph={name: erdos_renyi, p: 0.5}", "nodes=16",
                    "algorithm.nesterov=true", "model.hidden=[8]", "name=renamed"};
    eg_spec s;
    eg_err e = {0};
    ck_assert_msg(eg_spec_load(&s, p, sets, 6, &e) == 0, "%s", e.msg);
    ck_assert_double_eq_tol(s.lr.base, 0.2, 1e-15);
    ck_assert_int_eq(s.graph.kind, EG_GRAPH_ERDOS_RENYI);
    ck_assert_double_eq_tol(s.graph.p, 0.5, 1e-15);
    ck_assert_int_eq(s.nodes, 16);
    ck_assert_int_eq(s.algo.nesterov, 1);
    ck_assert_int_eq(s.model.n_hidden, 1);
    ck_assert_int_eq(s.model.hidden[0], 8);
    ck_assert_str_eq(s.out_dir, "runs/renamed");
    eg_spec_free(&s);
    /* a sub-key of a section given by name turns it into a mapping */
    char *sets2[] = {"algorithm=dmsgd", "algorithm.momentum=0.5"};
    ck_assert_int_eq(eg_spec_load(&s, p, sets2, 2, &e), 0);
    ck_assert_double_eq_tol(s.algo.momentum, 0.5, 1e-15);
    eg_spec_free(&s);
}
END_TEST

START_TEST(test_roundtrip)
{
    const char *p = write_spec("rt.yaml", BASE);
    eg_spec s, t;
    eg_err e = {0};
    ck_assert_int_eq(eg_spec_load(&s, p, NULL, 0, &e), 0);
    char *y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_nonnull(y);
    const char *q = write_spec("rt2.yaml", y);
    ck_assert_msg(eg_spec_load(&t, q, NULL, 0, &e) == 0, "%s", e.msg);
    char *y2 = eg_spec_to_yaml(&t, &e);
    ck_assert_str_eq(y, y2);
    ck_assert_uint_eq(eg_spec_hash(&s), eg_spec_hash(&t));
    free(y);
    free(y2);
    eg_spec_free(&s);
    eg_spec_free(&t);
}
END_TEST

/* each bad input: the message must hold the location and the key */
static void expect_bad(const char *text, const char *must1, const char *must2)
{
    const char *p = write_spec("bad.yaml", text);
    eg_spec s;
    eg_err e = {0};
    int rc = eg_spec_load(&s, p, NULL, 0, &e);
    eg_spec_free(&s);
    ck_assert_msg(rc == EG_EINPUT, "accepted: %s", text);
    ck_assert_msg(strstr(e.msg, "bad.yaml:") != NULL, "no location in '%s'", e.msg);
    ck_assert_msg(strstr(e.msg, must1) != NULL, "'%s' lacks '%s'", e.msg, must1);
    if (must2)
        ck_assert_msg(strstr(e.msg, must2) != NULL, "'%s' lacks '%s'", e.msg, must2);
}

static char *with(const char *from, const char *to)
{
    static char buf[4096];
    const char *at = strstr(BASE, from);
    ck_assert_ptr_nonnull(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - BASE), BASE, to, at + strlen(from));
    return buf;
}

START_TEST(test_bad_inputs)
{
    expect_bad(with("nodes: 8", "nodes: 0"), "bad.yaml:2:8", "nodes");
    expect_bad(with("nodes: 8", "nodes: abc"), "nodes", "integer");
    expect_bad(with("nodes: 8", "nodes: [1]"), "nodes", NULL);
    expect_bad(with("nodes: 8\n", "nodes: 8\nbogus: 1\n"), "unknown key 'bogus'", "bad.yaml:3:1");
    expect_bad(with("momentum: 0.8", "momentum: 1.0"), "algorithm.momentum", "[0, 1)");
    expect_bad(with("momentum: 0.8", "momentun: 0.8"), "algorithm.momentun", NULL);
    expect_bad(with("graph: onepeer_exp", "graph: blob"), "unknown graph 'blob'", NULL);
    expect_bad(with("name: dmsgd", "name: adam"), "unknown algorithm 'adam'", NULL);
    expect_bad(with("name: mlp", "name: transformer"), "unknown model 'transformer'", NULL);
    expect_bad(with("name: synthetic", "name: imagenet"), "unknown data 'imagenet'", NULL);
    expect_bad(with("batch_size: 16", "batch_size: 0"), "data.batch_size", ">= 1");
    expect_bad(with("base: 0.05", "base: 0"), "lr.base", "> 0");
    expect_bad(with("base: 0.05", "base: fast"), "lr.base", "number");
    expect_bad(with("graph: onepeer_exp", "graph: hypercube\nx: 1"), "unknown key 'x'", NULL);
}
END_TEST

START_TEST(test_graph_fit_and_syntax)
{
    expect_bad("nodes: 12\ngraph: hypercube\nalgorithm: dsgd\nmodel: logreg\ndata: synthetic\n",
               "graph hypercube", "power of two");
    expect_bad("nodes: 7\ngraph: random_match\nalgorithm: dsgd\nmodel: logreg\ndata: synthetic\n",
               "random_match", NULL);
    expect_bad("nodes: 8\ngraph: {name: erdos_renyi, p: 1.5}\nalgorithm: dsgd\nmodel: logreg\n"
               "data: synthetic\n", "graph.p", "(0, 1]");
    expect_bad("nodes: 8\ngraph: ring\nalgorithm: dsgd\nmodel: logreg\n", "missing required key 'data'", NULL);
    expect_bad("nodes: 8\ngraph: [ring\n", "YAML syntax error", NULL);
    expect_bad("nodes: 8\nnodes: 9\n", "appears twice", NULL);
    expect_bad("nodes: 8\ngraph: ring\nalgorithm: dsgd\nmodel: logreg\ndata: {name: idx}\n",
               "data.path", NULL);
    expect_bad("nodes: 8\ngraph: ring\nalgorithm: dsgd\nmodel: logreg\n"
               "data: {name: idx, path: /nonexistent/x}\n", "does not exist", NULL);
    expect_bad("nodes: 8\ngraph: ring\nalgorithm: dsgd\nmodel: logreg\ndata: synthetic\n"
               "train: {epochs: 1, iterations: 5}\n", "not both", NULL);
    expect_bad("nodes: 8\ngraph: ring\nalgorithm: dsgd\nmodel: logreg\ndata: synthetic\n"
               "lr: {schedule: step}\n", "milestones", NULL);
}
END_TEST

START_TEST(test_set_errors)
{
    const char *p = write_spec("s.yaml", BASE);
    eg_spec s;
    eg_err e = {0};
    char *a[] = {"nodes=0"};
    ck_assert_int_eq(eg_spec_load(&s, p, a, 1, &e), EG_EINPUT);
    ck_assert_msg(strstr(e.msg, "--set nodes=0") && strstr(e.msg, "nodes must be >= 1"), "%s", e.msg);
    eg_spec_free(&s);
    char *b[] = {"novalue"};
    ck_assert_int_eq(eg_spec_load(&s, p, b, 1, &e), EG_EINPUT);
    ck_assert_msg(strstr(e.msg, "KEY=VALUE"), "%s", e.msg);
    eg_spec_free(&s);
    char *c[] = {"graph={name: ring"};
    ck_assert_int_eq(eg_spec_load(&s, p, c, 1, &e), EG_EINPUT);
    eg_spec_free(&s);
    ck_assert_int_eq(eg_spec_load(&s, "/nonexistent/spec.yaml", NULL, 0, &e), EG_EINPUT);
    ck_assert_msg(strstr(e.msg, "/nonexistent/spec.yaml") != NULL, "%s", e.msg);
    eg_spec_free(&s);
}
END_TEST

START_TEST(test_sweep)
{
    char text[4096];
    snprintf(text, sizeof text, "%ssweep:\n  graph: [ring, exp, {name: erdos_renyi, p: 0.5}]\n  nodes: [4, 16]\n", BASE);
    const char *p = write_spec("sw.yaml", text);
    eg_sweep sw;
    eg_err e = {0};
    ck_assert_msg(eg_sweep_load(&sw, p, NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(sw.npoints, 6);
    char *sets[2];
    char d[512];
    ck_assert_int_eq(eg_sweep_point(&sw, 5, sets, d, sizeof d), 0);
    ck_assert_str_eq(sets[0], "graph={name: erdos_renyi, p: 0.5}");
    ck_assert_str_eq(sets[1], "nodes=16");
    ck_assert_msg(strchr(d, ' ') == NULL && strchr(d, '{') == NULL, "dir '%s'", d);
    /* every point loads as a spec */
    eg_spec s;
    ck_assert_msg(eg_spec_load(&s, p, sets, 2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(s.graph.kind, EG_GRAPH_ERDOS_RENYI);
    ck_assert_int_eq(s.nodes, 16);
    eg_spec_free(&s);
    free(sets[0]);
    free(sets[1]);
    ck_assert_int_eq(eg_sweep_point(&sw, 0, sets, d, sizeof d), 0);
    ck_assert_str_eq(d, "graph=ring,nodes=4");
    free(sets[0]);
    free(sets[1]);
    eg_sweep_free(&sw);
    /* no sweep block */
    const char *q = write_spec("nosw.yaml", BASE);
    ck_assert_int_eq(eg_sweep_load(&sw, q, NULL, 0, &e), EG_EINPUT);
    eg_sweep_free(&sw);
}
END_TEST

START_TEST(test_graph_text)
{
    eg_graph_spec g;
    eg_err e = {0};
    ck_assert_int_eq(eg_spec_graph_from_text("ring", &g, &e), 0);
    ck_assert_int_eq(g.kind, EG_GRAPH_RING);
    ck_assert_int_eq(eg_spec_graph_from_text("{name: erdos_renyi, p: 0.3}", &g, &e), 0);
    ck_assert_double_eq_tol(g.p, 0.3, 1e-15);
    ck_assert_int_eq(eg_spec_graph_from_text("nosuch", &g, &e), EG_EINPUT);
    ck_assert_msg(strncmp(e.msg, "unknown graph", 13) == 0, "%s", e.msg);
}
END_TEST


/* issue 17: network, sgp, choco and the communication keys: values, defaults, round trip */
START_TEST(test_network_and_choco)
{
    const char *p = write_spec("net.yaml", BASE);
    char *sets[] = {"algorithm={name: choco, compress: {name: qsgd, levels: 8}, local_steps: 2, global_every: 10}",
                    "network={drop: 0.05, offline: 0.1}"};
    eg_spec s, t;
    eg_err e = {0};
    ck_assert_msg(eg_spec_load(&s, p, sets, 2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(s.algo.kind, EG_ALGO_CHOCO);
    ck_assert_int_eq(s.algo.compress, EG_COMPRESS_QSGD);
    ck_assert_int_eq(s.algo.levels, 8);
    ck_assert_double_eq_tol(s.algo.consensus_step, 0.5, 1e-15); /* default */
    ck_assert_double_eq_tol(s.algo.momentum, 0.9, 1e-15);       /* default on */
    ck_assert_int_eq(s.algo.local_steps, 2);
    ck_assert_int_eq(s.algo.global_every, 10);
    ck_assert_double_eq_tol(s.network.drop, 0.05, 1e-15);
    ck_assert_double_eq_tol(s.network.offline, 0.1, 1e-15);
    char *y = eg_spec_to_yaml(&s, &e);
    const char *q = write_spec("net2.yaml", y);
    ck_assert_msg(eg_spec_load(&t, q, NULL, 0, &e) == 0, "%s", e.msg);
    char *y2 = eg_spec_to_yaml(&t, &e);
    ck_assert_str_eq(y, y2);
    free(y);
    free(y2);
    eg_spec_free(&s);
    eg_spec_free(&t);
    /* absent network and keys: a perfect network, H = 1, T = 0 */
    p = write_spec("net.yaml", BASE); /* write_spec's path buffer is shared */
    ck_assert_int_eq(eg_spec_load(&s, p, NULL, 0, &e), 0);
    ck_assert(s.network.drop == 0 && s.network.offline == 0);
    ck_assert_int_eq(s.algo.local_steps, 1);
    ck_assert_int_eq(s.algo.global_every, 0);
    eg_spec_free(&s);
    char *sets2[] = {"algorithm=sgp", "algorithm.global_every=5"};
    ck_assert_msg(eg_spec_load(&s, p, sets2, 2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(s.algo.kind, EG_ALGO_SGP);
    ck_assert_int_eq(s.algo.global_every, 5);
    eg_spec_free(&s);
    expect_bad("seed: 1\nnodes: 4\ngraph: ring\nalgorithm: {name: choco, compress: {name: top_k, ratio: 2}}\n"
               "model: logreg\ndata: {name: synthetic}\n", ":4:", "algorithm.compress.ratio must be in (0, 1]");
    expect_bad("seed: 1\nnodes: 4\ngraph: ring\nalgorithm: dmsgd\nnetwork: {offline: 1}\n"
               "model: logreg\ndata: {name: synthetic}\n", ":5:", "network.offline must be in [0, 1)");
}
END_TEST

/* model.stem, model.zero_init_residual: defaults, the imagenet depths, bad values with the
 * line of the key, and the round trip through eg_spec_to_yaml */
START_TEST(test_resnet_stem)
{
    const char *head = "seed: 1\nnodes: 4\ngraph: ring\nalgorithm: dmsgd\ndata: synthetic\n";
    char buf[512];
    eg_spec s;
    eg_err e = {0};
    snprintf(buf, sizeof buf, "%smodel: {name: resnet}\n", head);
    ck_assert_msg(eg_spec_load(&s, write_spec("r0.yaml", buf), NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert(s.model.stem == EG_STEM_CIFAR && s.model.depth == 20 && s.model.width == 16 &&
              !s.model.zero_init_residual);
    eg_spec_free(&s);
    snprintf(buf, sizeof buf, "%smodel: {name: resnet, stem: imagenet}\n", head);
    ck_assert_msg(eg_spec_load(&s, write_spec("r1.yaml", buf), NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert(s.model.stem == EG_STEM_IMAGENET && s.model.depth == 50 && s.model.width == 64);
    eg_spec_free(&s);
    snprintf(buf, sizeof buf,
             "%smodel: {name: resnet, stem: imagenet, depth: 101, width: 8, norm: group, "
             "groups: 4, zero_init_residual: true}\n",
             head);
    const char *p = write_spec("r2.yaml", buf);
    ck_assert_msg(eg_spec_load(&s, p, NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert(s.model.stem == EG_STEM_IMAGENET && s.model.depth == 101 && s.model.width == 8 &&
              s.model.zero_init_residual && s.model.norm == EG_NORM_GROUP);
    char *y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(strstr(y, "  stem: imagenet\n"));
    ck_assert_ptr_nonnull(strstr(y, "  zero_init_residual: true\n"));
    eg_spec t;
    ck_assert_msg(eg_spec_load(&t, write_spec("r3.yaml", y), NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert(t.model.stem == EG_STEM_IMAGENET && t.model.depth == 101 && t.model.width == 8 &&
              t.model.zero_init_residual);
    free(y);
    eg_spec_free(&t);
    eg_spec_free(&s);
    char *sets[] = {"model.stem=imagenet", "model.depth=18"};
    snprintf(buf, sizeof buf, "%smodel: {name: resnet, depth: 20}\n", head);
    p = write_spec("r4.yaml", buf);
    ck_assert_msg(eg_spec_load(&s, p, sets, 2, &e) == 0, "%s", e.msg);
    ck_assert(s.model.stem == EG_STEM_IMAGENET && s.model.depth == 18);
    eg_spec_free(&s);
    static const char *const bad[][3] = {
        {"stem: imagenet, depth: 20", "model.depth with stem: imagenet must be 18, 34, 50 or 101",
         ":6:"},
        {"stem: imagenet, depth: 152", "got 152", ":6:"},
        {"depth: 18", "6k+2", "add stem: imagenet"},
        {"stem: vgg", "model.stem", "vgg"},
        {"stem: [imagenet]", "model.stem", ":6:"},
        {"zero_init_residual: maybe", "model.zero_init_residual", "true or false"},
        {"norm: none, zero_init_residual: true", "zero_init_residual needs a norm", ":6:"},
        {"stem: imagenet, width: 1024", "model.width", "512"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%smodel: {name: resnet, %s}\n", head, bad[i][0]);
        expect_bad(buf, bad[i][1], bad[i][2]);
    }
    snprintf(buf, sizeof buf, "%smodel: {name: cnn, stem: imagenet}\n", head);
    expect_bad(buf, "unknown key 'model.stem'", NULL);
}
END_TEST

/* cluster: values, defaults, measured, round trip; absent: nothing in the YAML */
START_TEST(test_cluster)
{
    const char *p = write_spec("cl.yaml", BASE);
    eg_spec s, t;
    eg_err e = {0};
    ck_assert_int_eq(eg_spec_load(&s, p, NULL, 0, &e), 0);
    ck_assert_int_eq(s.cluster.on, 0);
    char *y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_null(strstr(y, "cluster"));
    free(y);
    eg_spec_free(&s);
    char *sets[] = {"cluster={nodes_per_host: 8, latency_us: 10, bandwidth_gbps: 25, "
                    "intra_latency_us: 2, samples_per_s: 400, straggler: {prob: 0.01, slowdown: 4}}",
                    "cluster.bandwidth_gbps=1.5"};
    ck_assert_msg(eg_spec_load(&s, p, sets, 2, &e) == 0, "%s", e.msg);
    ck_assert(s.cluster.on && s.cluster.nodes_per_host == 8);
    ck_assert(s.cluster.latency_us == 10 && s.cluster.bandwidth_gbps == 1.5);
    ck_assert(s.cluster.intra_latency_us == 2 && s.cluster.intra_bandwidth_gbps == 1.5);
    ck_assert(s.cluster.samples_per_s == 400);
    ck_assert(s.cluster.straggler_prob == 0.01 && s.cluster.straggler_slowdown == 4);
    y = eg_spec_to_yaml(&s, &e);
    const char *q = write_spec("cl2.yaml", y);
    ck_assert_msg(eg_spec_load(&t, q, NULL, 0, &e) == 0, "%s", e.msg);
    char *y2 = eg_spec_to_yaml(&t, &e);
    ck_assert_str_eq(y, y2);
    free(y);
    free(y2);
    eg_spec_free(&s);
    eg_spec_free(&t);
    p = write_spec("cl.yaml", BASE);
    char *sets2[] = {"cluster={latency_us: 0, bandwidth_gbps: 1, samples_per_s: measured}"};
    ck_assert_msg(eg_spec_load(&s, p, sets2, 1, &e) == 0, "%s", e.msg);
    ck_assert(s.cluster.on && s.cluster.samples_per_s == 0 && s.cluster.nodes_per_host == 1);
    y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_nonnull(strstr(y, "  samples_per_s: measured\n"));
    free(y);
    eg_spec_free(&s);
    expect_bad("seed: 1\nnodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: logreg\n"
               "data: {name: synthetic}\ncluster: {latency_us: 1, bandwidth_gbps: 1}\n", ":7:",
               "cluster needs cluster.samples_per_s");
    expect_bad("seed: 1\nnodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: logreg\n"
               "data: {name: synthetic}\ncluster:\n  latency_us: 1\n  bandwidth_gbps: 1\n"
               "  samples_per_s: 5\n  straggler: {prob: 0.1, slowdown: 0}\n", ":11:",
               "cluster.straggler.slowdown must be >= 1");
}
END_TEST

/* LeNet-5 with group norm (model.padding, several cnn hidden widths, model.norm_after,
 * per-block groups) and data.val_fraction: parsed, written back, and checked */
START_TEST(test_lenet_and_val_fraction)
{
    const char *text =
        "nodes: 4\ngraph: ring\nalgorithm: dmsgd\n"
        "model: {name: cnn, channels: [6, 16], kernel: 5, padding: valid, hidden: [120, 84],\n"
        "        norm: group, groups: [2, 4], norm_after: pool}\n"
        "data: {name: synthetic, batch_size: 8, val_fraction: 0.1}\n";
    const char *p = write_spec("lenet.yaml", text);
    eg_spec s, t;
    eg_err e = {0};
    ck_assert_msg(eg_spec_load(&s, p, NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(s.model.valid, 1);
    ck_assert_int_eq(s.model.norm_after_pool, 1);
    ck_assert_int_eq(s.model.n_hidden, 2);
    ck_assert_int_eq(s.model.hidden[1], 84);
    ck_assert_int_eq(s.model.n_block_groups, 2);
    ck_assert_int_eq(s.model.block_groups[1], 4);
    ck_assert_double_eq(s.data.val_fraction, 0.1);
    char *y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(strstr(y, "padding: valid"));
    ck_assert_ptr_nonnull(strstr(y, "norm_after: pool"));
    ck_assert_ptr_nonnull(strstr(y, "groups: [2, 4]"));
    ck_assert_ptr_nonnull(strstr(y, "val_fraction: 0.1"));
    const char *q = write_spec("lenet2.yaml", y);
    ck_assert_msg(eg_spec_load(&t, q, NULL, 0, &e) == 0, "%s", e.msg);
    char *y2 = eg_spec_to_yaml(&t, &e);
    ck_assert_str_eq(y, y2);
    free(y);
    free(y2);
    eg_spec_free(&s);
    eg_spec_free(&t);
    /* defaults: same padding, norm after the conv, no hold-out (and nothing written) */
    p = write_spec("cnn.yaml", "nodes: 4\ngraph: ring\nalgorithm: dmsgd\n"
                               "model: {name: cnn, norm: group}\ndata: synthetic\n");
    ck_assert_msg(eg_spec_load(&s, p, NULL, 0, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(s.model.valid, 0);
    ck_assert_int_eq(s.model.norm_after_pool, 0);
    ck_assert_int_eq(s.model.n_block_groups, 0);
    ck_assert_double_eq(s.data.val_fraction, 0);
    y = eg_spec_to_yaml(&s, &e);
    ck_assert_ptr_null(strstr(y, "val_fraction"));
    free(y);
    eg_spec_free(&s);
    /* errors name the key */
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: cnn, padding: full}\n"
               "data: synthetic\n", "model.padding", NULL);
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: cnn, norm: group, "
               "norm_after: relu}\ndata: synthetic\n", "model.norm_after", NULL);
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: cnn, channels: [6, 16], "
               "norm: group, groups: [2]}\ndata: synthetic\n", "model.groups", "2 conv blocks");
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: cnn, hidden: [120, 0]}\n"
               "data: synthetic\n", "model.hidden", NULL);
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: cnn, kernel: 4}\n"
               "data: synthetic\n", "model.kernel", "valid");
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: {name: mlp, padding: valid}\n"
               "data: synthetic\n", "padding", NULL);
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: mlp\n"
               "data: {name: synthetic, val_fraction: 1}\n", "data.val_fraction", "[0, 1)");
    expect_bad("nodes: 4\ngraph: ring\nalgorithm: dmsgd\nmodel: mlp\n"
               "data: {name: synthetic, val_fraction: -0.1}\n", "data.val_fraction", NULL);
}
END_TEST

int main(void)
{
    const char *t = eg_test_tmpdir();
    if (!t)
        return 1;
    snprintf(dir, sizeof dir, "%s", t);
    Suite *s = suite_create("spec");
    TCase *tc = tcase_create("spec");
    tcase_add_test(tc, test_good_and_defaults);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_graph_fit_and_syntax);
    tcase_add_test(tc, test_set_errors);
    tcase_add_test(tc, test_sweep);
    tcase_add_test(tc, test_graph_text);
    tcase_add_test(tc, test_network_and_choco);
    tcase_add_test(tc, test_resnet_stem);
    tcase_add_test(tc, test_cluster);
    tcase_add_test(tc, test_lenet_and_val_fraction);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
