/* check_yamltree.c - YAML text -> tree (yamltree.c): syntax errors name where the unclosed
 * construct starts and the dotted key it belongs to, and keep libyaml's problem and place;
 * positions of nodes and keys; flow text and quoting round trips. */
#include "testutil.h"
#include "yamltree.h"

#include <stdlib.h>
#include <string.h>

/* parses text (labelled "S") expecting a syntax error that contains each of want[] */
static void expect_error(const char *text, const char *const *want, int nwant)
{
    eg_err e = {0};
    eg_ynode *n = eg_yaml_parse(text, strlen(text), "S", 1, &e);
    ck_assert_msg(!n, "accepted: %s", text);
    ck_assert_int_eq(e.code, EG_EINPUT);
    for (int i = 0; i < nwant; i++)
        ck_assert_msg(strstr(e.msg, want[i]), "message '%s' lacks '%s'", e.msg, want[i]);
}

START_TEST(test_unclosed_flow_mapping_last_line)
{
    const char *w[] = {"S:3:5: YAML syntax error: the flow mapping {...} of key 'lr' that "
                       "starts here is not closed",
                       "(at 4:1: did not find expected ',' or '}')"};
    expect_error("nodes: 4\ngraph: ring\nlr: {base: 0.1\n", w, 2);
    /* without the final newline too */
    const char *w2[] = {"S:3:5: YAML syntax error: the flow mapping {...} of key 'lr'"};
    expect_error("nodes: 4\ngraph: ring\nlr: {base: 0.1", w2, 1);
}
END_TEST

START_TEST(test_unclosed_nested_flow_sequence)
{
    const char *w[] = {"S:3:11: YAML syntax error: the flow sequence [...] of key "
                       "'model.hidden' that starts here is not closed",
                       "did not find expected ',' or ']'"};
    expect_error("nodes: 4\nmodel:\n  hidden: [16, 8\ngraph: ring\n", w, 2);
    /* inside a sequence of mappings (on one line: the problem's place first) */
    const char *w2[] = {"S:4:21: YAML syntax error: did not find expected ',' or ']', in the flow "
                        "sequence [...] of key 'sweep.points[1].hidden' that starts at 4:16"};
    expect_error("sweep:\n  points:\n    - {hidden: [1]}\n    - {hidden: [2, 3}\n", w2, 1);
}
END_TEST

START_TEST(test_unclosed_quote)
{
    const char *w[] = {"S:2:8: YAML syntax error: the quoted string of key 'output.dir' that "
                       "starts here is not closed",
                       "found unexpected end of stream"};
    expect_error("output:\n  dir: \"runs/x\nnodes: 4\n", w, 2);
    const char *w2[] = {"the quoted string of key 'sweep.graph[1]' that starts here"};
    expect_error("sweep:\n  graph: [ring, 'exp]\n", w2, 1);
    /* a quoted key: no key to name */
    const char *w3[] = {"S:2:1: YAML syntax error: the quoted string that starts here is not closed"};
    expect_error("a: 1\n\"b: 2\n", w3, 1);
}
END_TEST

START_TEST(test_same_line_problem)
{
    /* a missing comma: the problem's place first, then where the mapping starts */
    const char *w[] = {"S:1:18: YAML syntax error: did not find expected ',' or '}', in the "
                       "flow mapping {...} of key 'lr' that starts at 1:5"};
    expect_error("lr: {base: [0.1] gamma: 2}\n", w, 1);
    /* a badly indented block: the block mapping it breaks */
    const char *w2[] = {"S:3:2: YAML syntax error: did not find expected key, in the block "
                        "mapping that starts at 1:1"};
    expect_error("train:\n  iterations: 20\n log_every: 5\n", w2, 1);
    /* contexts without a start worth naming keep libyaml's wording */
    const char *w3[] = {"S:1:5: YAML syntax error: mapping values are not allowed in this context"};
    expect_error("a: b: c: d\n", w3, 1);
    const char *w4[] = {"a tab character"};
    expect_error("a:\n\tb: 1\n", w4, 1);
}
END_TEST

START_TEST(test_tree_positions)
{
    const char *t = "name: x\nmodel:\n  hidden: [16, 8]\n  kind: \"null\"\n";
    eg_err e = {0};
    eg_ynode *root = eg_yaml_parse(t, strlen(t), "S", 1, &e);
    ck_assert_msg(root, "%s", e.msg);
    int idx = -1;
    eg_ynode *model = eg_ymap_get(root, "model", &idx);
    ck_assert(model && model->kind == EG_Y_MAP && idx == 1);
    ck_assert(root->kline[1] == 2 && root->kcol[1] == 1);
    eg_ynode *h = eg_ymap_get(model, "hidden", NULL);
    ck_assert(h && h->kind == EG_Y_SEQ && h->n == 2 && h->line == 3 && h->col == 11);
    ck_assert_str_eq(h->items[1]->str, "8");
    eg_ynode *k = eg_ymap_get(model, "kind", NULL);
    ck_assert(k && k->quoted && !eg_ynode_is_null(k));
    char *f = eg_ynode_to_flow(model);
    ck_assert_str_eq(f, "{hidden: [16, 8], kind: \"null\"}");
    free(f);
    eg_ymap_del(root, "name");
    ck_assert(!eg_ymap_get(root, "name", NULL) && root->n == 1);
    eg_ynode_free(root);
    /* an empty document */
    root = eg_yaml_parse("", 0, "S", 1, &e);
    ck_assert(root && root->kind == EG_Y_MAP && root->n == 0);
    eg_ynode_free(root);
}
END_TEST

START_TEST(test_quote)
{
    char out[64];
    eg_yaml_quote("ring", out, sizeof out);
    ck_assert_str_eq(out, "ring");
    eg_yaml_quote("a, b", out, sizeof out);
    ck_assert_str_eq(out, "\"a, b\"");
    eg_yaml_quote("say \"hi\"\n", out, sizeof out);
    ck_assert_str_eq(out, "\"say \\\"hi\\\"\\n\"");
    /* too small: cut short, still terminated */
    eg_yaml_quote("a, very long value that does not fit", out, 12);
    ck_assert(strlen(out) < 12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("yamltree");
    TCase *tc = tcase_create("yamltree");
    tcase_add_test(tc, test_unclosed_flow_mapping_last_line);
    tcase_add_test(tc, test_unclosed_nested_flow_sequence);
    tcase_add_test(tc, test_unclosed_quote);
    tcase_add_test(tc, test_same_line_problem);
    tcase_add_test(tc, test_tree_positions);
    tcase_add_test(tc, test_quote);
    suite_add_tcase(s, tc);
    return eg_test_run(s);
}
