/* help.c - `expgraph help [COMMAND|spec]`, and the two texts generated from the help texts
 * at build time: the man page (`expgraph --man`, roff) and the bash completion
 * (`expgraph --completion bash`). Both read every subcommand's --help text by running the
 * subcommand with --help, so the man page and the completion cannot drift from --help.
 */
#include "commands.h"

#include "common.h"
#include "kinds.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The spec file's keys: `expgraph help spec`, and the man page's SPEC FILE section.
 * Every key spec.c accepts belongs here: tests/e2e/install.sh checks the keys of spec.c's
 * only_keys lists and of summary.csv against it. */
static const char *const SPEC_HELP =
    "A spec is a YAML mapping. Every key has a default except nodes, graph, algorithm,\n"
    "model and data. Unknown keys, wrong types and out-of-range values are errors\n"
    "reported as FILE:LINE:COL naming the key. --set KEY=VALUE overrides a key by its\n"
    "dotted path (--set lr.base=0.05, --set 'graph={name: erdos_renyi, p: 0.2}').\n"
    "\n"
    "name: mnist-onepeer        # default: the file's stem\n"
    "seed: 1                    # default 1; sweep it (sweep: {seed: [1, 2, 3]}) and\n"
    "                           # `expgraph table` reports mean +- std over seeds\n"
    "nodes: 16                  # required, >= 1: the decentralized agents\n"
    "graph: onepeer_exp         # required: a name, or a mapping with name: and\n"
    "  name: erdos_renyi        #   (graph names below)\n"
    "  p: 0.2                   # erdos_renyi edge probability, (0, 1], default 0.2\n"
    "  path: W.csv              # file: an n x n row-stochastic matrix (required)\n"
    "  peers: 1                 # base: at most k peers per iteration (Base-(k+1) graph);\n"
    "                           #   random_peers: s random peers per iteration; default 1\n"
    "  local: 4                 # hierarchical: nodes per machine (divides nodes; required)\n"
    "                           #   inner_outer_exp2 (Bluefog's inner-outer one-peer\n"
    "                           #   exponential schedule): nodes per machine, >= 3,\n"
    "                           #   nodes = machines x local, machines >= 2; required\n"
    "  outer: onepeer_exp       # hierarchical: the graph between machines (a name or a\n"
    "                           #   mapping; required)\n"
    "  phases:                  # schedule: [{graph: G, until_epoch: E}, ..., {graph: G}]\n"
    "    - graph: exp           #   a phase's graph (any but a schedule)\n"
    "      until_epoch: 30      #   its end in epochs (or until_iter: iterations);\n"
    "                           #   the last phase has none\n"
    "algorithm:                 # required: a name or a mapping\n"
    "  name: dmsgd              # algorithm names below\n"
    "  momentum: 0.9            # [0, 1); default 0.9 where the algorithm has momentum\n"
    "  weight_decay: 1.0e-4     # >= 0, default 0\n"
    "  nesterov: false          # Nesterov look-ahead for the momentum methods\n"
    "  weight_decay_norm: true  # false: no weight decay on normalisation and bias\n"
    "  local_steps: 1           # gossip algorithms: local updates between exchanges\n"
    "  global_every: 0          # an exact all-reduce average every T iterations (0: never)\n"
    "  compress:                # choco (required): top_k | rand_k (ratio) | qsgd (levels)\n"
    "    name: top_k            #   | sign | bf16; a name or a mapping\n"
    "    ratio: 0.01            # top_k, rand_k: fraction of entries sent, (0, 1]\n"
    "    levels: 16             # qsgd: quantisation levels, >= 1\n"
    "  consensus_step: 0.5      # choco's gamma, (0, 1]\n"
    "model:                     # required: a name or a mapping\n"
    "  name: mlp                # logreg | mlp | cnn | resnet\n"
    "  hidden: [256]            # mlp: hidden widths (default [256]); cnn: the dense\n"
    "                           #   + ReLU layers after the blocks (default [128];\n"
    "                           #   LeNet-5: [120, 84]; [0] or []: none)\n"
    "  channels: [32, 64]       # cnn: conv3x3+ReLU+maxpool2 blocks (default [32, 64])\n"
    "  kernel: 3                # cnn: kernel size (default 3; odd with padding same)\n"
    "  padding: same            # cnn: same (kernel / 2, default) | valid (none: each\n"
    "                           #   conv shrinks a side by kernel - 1)\n"
    "  norm_after: conv         # cnn with a norm: conv (conv-norm-ReLU-pool, the conv\n"
    "                           #   without bias; default) | pool (conv+bias-ReLU-pool-\n"
    "                           #   norm, LeNet-5 with group norm as in BaseGraph)\n"
    "  depth: 20                # resnet: 6k+2 (20, 32, 44, 56, 110), default 20\n"
    "  width: 16                # resnet: channels of stage 1 (default 16)\n"
    "  stem: cifar              # resnet: cifar (6k+2 family) | imagenet (torchvision\n"
    "                           #   ResNet-18/34/50/101: depth 18, 34, 50 (default)\n"
    "                           #   or 101; width = stem channels, default 64)\n"
    "  zero_init_residual: false  # resnet: last norm scale of each block starts at 0\n"
    "  norm: batch              # cnn, resnet: batch | group | none (resnet default\n"
    "                           #   batch, cnn none)\n"
    "  groups: 2                # group norm groups (default 2); cnn: or one per conv\n"
    "                           #   block ([2, 4]: GroupNorm(2, 6), GroupNorm(4, 16))\n"
    "  norm_stats: local        # batch-norm running statistics: local | gossip\n"
    "  init: same               # same (one draw for every node) | independent\n"
    "data:                      # required: a name or a mapping\n"
    "  name: mnist              # mnist | fashion_mnist | digits | cifar10 | cifar100 |\n"
    "                           #   synthetic | idx | image_folder (png_folder) | csv\n"
    "  path: null               # where the format needs one (idx, image_folder, csv)\n"
    "  image_size: null         # image_folder: shorter side resized, centre-cropped\n"
    "  eval_resize: null        # image_folder + image_size: evaluation resizes the shorter\n"
    "                           #   side to this, then centre-crops image_size (default\n"
    "                           #   image_size; round(image_size * 256/224) with\n"
    "                           #   random_resized_crop: 256 for 224)\n"
    "  cache: memory            # image_folder: memory (decode once) | stream (per minibatch)\n"
    "  partition: iid           # iid | dirichlet | sorted\n"
    "  alpha: 0.5               # dirichlet concentration, > 0\n"
    "  batch_size: 32           # per node\n"
    "  augment: []              # images: [crop, flip]; image_folder with image_size also\n"
    "                           #   random_resized_crop (torchvision's RandomResizedCrop:\n"
    "                           #   scale (0.08, 1), ratio (3/4, 4/3), bilinear)\n"
    "  heterogeneity: 0.0       # synthetic: how far apart the nodes' optima are\n"
    "  val_fraction: 0          # [0, 1): held out of each node's shard (a seeded draw\n"
    "                           #   per node, floor(fraction x shard)); metrics.csv's\n"
    "                           #   val_loss, val_acc: x_bar on their union (empty at 0)\n"
    "  dim: 32                  # synthetic: features (32), classes (4), samples per\n"
    "  classes: 4               #   node (512), test_samples (2000)\n"
    "  samples: 512\n"
    "  test_samples: 2000\n"
    "train:\n"
    "  epochs: 1                # default 1; or iterations: N (not both)\n"
    "  iterations: null\n"
    "  log_every: 50            # iterations between metrics.csv rows\n"
    "  eval_every: 0            # iterations between test evaluations (0: every row)\n"
    "  checkpoint_every: 500    # iterations between checkpoints (0: only at the end)\n"
    "  precision: f32           # f32 | bf16 (layer compute; f32 master weights)\n"
    "  micro_batch: 32          # a node's batch runs in micro-batches of this size, shared\n"
    "                           #   by the rank's threads (same numbers for any thread count;\n"
    "                           #   batch norm still uses the whole node batch's statistics)\n"
    "lr:                        # or a number: lr: 0.05\n"
    "  base: 0.1                # > 0\n"
    "  scale: none              # none | linear (base * nodes)\n"
    "  warmup_epochs: 0         # linear warm-up from 0 (fractional epochs allowed)\n"
    "  schedule: constant       # constant | step | cosine\n"
    "  milestones: []           # epochs, for step\n"
    "  gamma: 0.1               # factor at each milestone\n"
    "network:                   # absent: a perfect network (gossip algorithms only)\n"
    "  drop: 0.0                # [0, 1): a message between distinct nodes is lost;\n"
    "                           #   the receiver uses its own vector in its place\n"
    "  offline: 0.0             # [0, 1): a node is absent in an iteration (computes\n"
    "                           #   and sends nothing, keeps its state)\n"
    "cluster:                   # a modelled cluster: adds the metrics.csv column\n"
    "                           #   time_model_s (docs/timemodel.md); absent: no column\n"
    "  nodes_per_host: 1        # nodes i with equal floor(i / nodes_per_host) share a host\n"
    "  latency_us: 10           # required: a message's latency between hosts (us)\n"
    "  bandwidth_gbps: 25       # required: link bandwidth between hosts (Gbit/s), > 0\n"
    "  intra_latency_us: 2      # within a host (default: latency_us)\n"
    "  intra_bandwidth_gbps: 200  # within a host (default: bandwidth_gbps)\n"
    "  samples_per_s: 400       # required: one node's training speed, > 0; or measured:\n"
    "                           #   this run's own gradient time (the slowest rank's, up\n"
    "                           #   to the first metrics row, the first iteration and the\n"
    "                           #   exchanges left out): then the column depends on the\n"
    "                           #   machine and rank count; a number keeps it rank-invariant\n"
    "  straggler:\n"
    "    prob: 0.0              # [0, 1]: a node straggles in an iteration (drawn from\n"
    "                           #   the seed, the iteration and the node)\n"
    "    slowdown: 1            # >= 1: a straggler's compute takes this many times longer\n"
    "output:\n"
    "  dir: runs/NAME           # default runs/<name>\n"
    "sweep:                     # read by `expgraph sweep` only: dotted key -> values,\n"
    "  seed: [1, 2, 3]          #   the cartesian product, one run directory per point\n"
    "  graph: [ring, exp, onepeer_exp]\n";

/* the names of a kind table joined by sep */
static void kind_names(const void *table, size_t stride, const char *sep, char *out,
                       size_t len)
{
    out[0] = 0;
    for (const char *const *row = table; *row; row = (const char *const *)((const char *)row + stride))
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? sep : "", *row);
}
#define KIND_NAMES(table, sep, out) kind_names((table), sizeof(table)[0], (sep), (out), sizeof(out))

static void print_spec_help(FILE *f)
{
    char g[1024], a[512];
    KIND_NAMES(eg_graph_kinds, ", ", g);
    KIND_NAMES(eg_algo_kinds, ", ", a);
    fprintf(f, "%s\ngraphs: %s\nalgorithms: %s\n", SPEC_HELP, g, a);
}

/* The text command c prints for --help (malloc'ed, NUL-terminated), captured by running
 * it with stdout on a temporary file; NULL when that fails. */
static char *command_help(const eg_command *c)
{
    char *argv[] = {(char *)c->name, "--help", NULL}, *buf = NULL;
    FILE *t = tmpfile();
    int saved = dup(1);
    fflush(stdout);
    if (t && saved >= 0 && dup2(fileno(t), 1) >= 0) {
        c->fn(2, argv);
        fflush(stdout);
        dup2(saved, 1);
        long n = ftell(t) >= 0 ? ftell(t) : 0;
        if ((buf = calloc((size_t)n + 1, 1)) && (fseek(t, 0, SEEK_SET) ||
                                                 fread(buf, 1, (size_t)n, t) != (size_t)n)) {
            free(buf);
            buf = NULL;
        }
    }
    if (saved >= 0)
        close(saved);
    if (t)
        fclose(t);
    return buf;
}

/* ---- `expgraph help` -------------------------------------------------------------- */

static int md_spec(FILE *f); /* `help spec --markdown`: docs/spec.md (below) */

int eg_cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        eg_cli_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "spec") && argc > 2 && !strcmp(argv[2], "--markdown"))
        return md_spec(stdout) || fflush(stdout) ? 1 : 0;
    if (!strcmp(argv[1], "spec")) {
        print_spec_help(stdout);
        return 0;
    }
    for (int i = 0; i < eg_ncommands; i++)
        if (!strcmp(argv[1], eg_commands[i].name)) {
            char *a[] = {argv[1], "--help", NULL};
            return eg_commands[i].fn(2, a);
        }
    eg_cli_error("help: no command or topic '%s' (commands: see expgraph --help; topic: spec)",
                 argv[1]);
    return 2;
}

/* ---- the man page ------------------------------------------------------------------- */

/* s as roff text lines: backslashes and hyphens escaped, a leading . or ' guarded, the
 * +- sign spelled \(+-, tabs expanded by the no-fill block */
static void roff_text(FILE *f, const char *s)
{
    int bol = 1;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\''))
            fputs("\\&", f);
        bol = *s == '\n';
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else if (!strncmp(s, "\xC2\xB1", 2)) {
            fputs("\\(+-", f);
            s++;
        } else
            fputc(*s, f);
    }
    if (!bol)
        fputc('\n', f);
}

/* a verbatim block (no fill, no adjustment) */
static void roff_block(FILE *f, const char *s)
{
    fputs(".nf\n", f);
    roff_text(f, s);
    fputs(".fi\n", f);
}

/* the text a printer writes (malloc'ed), or NULL */
static char *printed(void (*print)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return NULL;
    print(m);
    if (fclose(m)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* the synopsis of a help text: its "usage: " line and the indented lines after it */
static void roff_synopsis(FILE *f, const char *h)
{
    const char *u = strstr(h, "usage: ");
    if (!u)
        return;
    u += 7;
    for (const char *e; *u; u = e + 1) {
        for (int k = 0, cont = u[-1] == '\n'; cont && k < 7 && *u == ' '; k++)
            u++; /* continuation lines were indented under "usage: " */
        e = strchr(u, '\n');
        char line[400];
        snprintf(line, sizeof line, "%.*s\n", (int)(e ? e - u : (long)strlen(u)), u);
        roff_text(f, line);
        if (!e || e[1] != ' ')
            break;
    }
}

/* the fixed sections after the generated ones */
static const char *const MAN_TAIL =
    ".SH ENVIRONMENT\n.TP\n.B EXPGRAPH_THREADS\nthreads per rank (default: the host's cores "
    "divided by the ranks on it)\n.TP\n.B EXPGRAPH_DATA\nthe dataset directory (default: the "
    "build's data/cache)\n.SH EXIT STATUS\n0 success; 1 a failure while running; 2 a bad "
    "command line, spec or input (nothing written); 130 interrupted after a checkpoint.\n"
    ".SH SEE ALSO\n\\fBmpirun\\fR(1); the README of the expgraph repository.\n";

int eg_cli_man(FILE *f)
{
    char *usage = printed(eg_cli_usage), *spec = printed(print_spec_help);
    char **helps = calloc((size_t)eg_ncommands, sizeof(char *));
    int rc = !usage || !spec || !helps;
    for (int i = 0; !rc && i < eg_ncommands; i++)
        rc = !(helps[i] = command_help(&eg_commands[i]));
    if (!rc) {
        fprintf(f, ".\\\" expgraph.1 - generated by `expgraph --man` from the --help texts; do "
                   "not edit\n.TH EXPGRAPH 1 \"\" \"expgraph %s\" \"User Commands\"\n.SH NAME\n"
                   "expgraph \\- decentralized deep-training experiments over exponential (and "
                   "other) graphs\n.SH SYNOPSIS\n.nf\n",
                EG_VERSION);
        for (int i = 0; i < eg_ncommands; i++)
            roff_synopsis(f, helps[i]);
        fputs("expgraph help [COMMAND|spec]\nexpgraph \\-\\-help | \\-\\-version\n.fi\n"
              ".SH DESCRIPTION\n", f);
        roff_block(f, usage);
        fputs(".SH COMMANDS\n", f);
        for (int i = 0; i < eg_ncommands; i++) {
            fprintf(f, ".SS expgraph %s\n", eg_commands[i].name);
            roff_block(f, helps[i]);
        }
        fputs(".SH SPEC FILE\n", f);
        roff_block(f, spec);
        fputs(MAN_TAIL, f);
    }
    for (int i = 0; helps && i < eg_ncommands; i++)
        free(helps[i]);
    free(helps);
    free(usage);
    free(spec);
    return rc;
}

/* ---- bash completion ------------------------------------------------------------------ */

/* Appends to out the options named in help text h ("--name" tokens, "-o"), each once. */
static void help_options(const char *h, char *out, size_t len)
{
    out[0] = 0;
    for (const char *p = h; (p = strstr(p, "-")) != NULL;) {
        int dbl = p[1] == '-';
        const char *q = p + (dbl ? 2 : 1);
        if ((p > h && p[-1] != ' ' && p[-1] != '[' && p[-1] != '\n') || !(*q >= 'a' && *q <= 'z')) {
            p++;
            continue;
        }
        while ((*q >= 'a' && *q <= 'z') || *q == '-' || (*q >= '0' && *q <= '9'))
            q++;
        char opt[64];
        snprintf(opt, sizeof opt, "%.*s", (int)(q - p), p);
        size_t l = strlen(opt);
        const char *hit = strstr(out, opt);
        int seen = hit && (hit == out || hit[-1] == ' ') && (hit[l] == ' ' || !hit[l]);
        if ((dbl || l == 2) && !seen)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", opt);
        p = q;
    }
}

/* Writes a bash case arm "CMD:OPT) words" for each "--opt a|b|c" in help text h. */
static void help_choices(FILE *f, const char *cmd, const char *h)
{
    for (const char *p = h; (p = strstr(p, "--")) != NULL; p += 2) {
        const char *q = p + 2;
        while ((*q >= 'a' && *q <= 'z') || *q == '-')
            q++;
        if (*q != ' ' || !strchr(q + 1, '|'))
            continue;
        const char *v = q + 1, *e = v;
        while ((*e >= 'a' && *e <= 'z') || *e == '_' || *e == '|' || (*e >= '0' && *e <= '9'))
            e++;
        if (e == v || !memchr(v, '|', (size_t)(e - v)) || (*e != ']' && *e != ' ' && *e != '\n'))
            continue;
        fprintf(f, "    %s:%.*s) words='", cmd, (int)(q - p), p);
        for (const char *c = v; c < e; c++)
            fputc(*c == '|' ? ' ' : *c, f);
        fputs("' ;;\n", f);
    }
}

/* the spec keys for --set: the scalar spec keys of summary.csv, each with '=' */
static void set_keys(char *out, size_t len)
{
    out[0] = 0;
    for (int i = 0; i < eg_summary_ncols(); i++) {
        const eg_column *c = eg_summary_column(i);
        if (c->flags & EG_COL_SPEC)
            snprintf(out + strlen(out), len - strlen(out), "%s%s=", out[0] ? " " : "", c->name);
    }
}

/* the completion function up to the per-command value lists: subcommands, --set keys and
 * values, graph names, metrics columns */
static void completion_head(FILE *f)
{
    char graphs[1024], algos[512], cols[1024], keys[4096], cmds[256] = "";
    KIND_NAMES(eg_graph_kinds, " ", graphs);
    KIND_NAMES(eg_algo_kinds, " ", algos);
    eg_metrics_columns_text(0, " ", cols, sizeof cols);
    set_keys(keys, sizeof keys);
    for (int i = 0; i < eg_ncommands; i++)
        snprintf(cmds + strlen(cmds), sizeof cmds - strlen(cmds), "%s ", eg_commands[i].name);
    fprintf(f,
            "# bash completion for expgraph - generated by `expgraph --completion bash` from\n"
            "# the --help texts and the graph/algorithm tables; do not edit\n"
            "_expgraph() {\n"
            "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words= opts=\n"
            "  local cmd=${COMP_WORDS[1]} key=\n"
            "  local graphs='%s' algos='%s'\n"
            "  local cols='%s'\n"
            "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
            "    COMPREPLY=($(compgen -W '%shelp --help --version' -- \"$cur\")); return\n"
            "  fi\n"
            "  # --set graph=<TAB>: bash splits at '=', so the key is a word or two back\n"
            "  if [ \"$cur\" = = ]; then key=$prev; cur=; elif [ \"$prev\" = = ]; then key=${COMP_WORDS[COMP_CWORD-2]}; fi\n"
            "  case $key in\n"
            "    graph|graph.name) COMPREPLY=($(compgen -W \"$graphs\" -- \"$cur\")); return ;;\n"
            "    algorithm|algorithm.name) COMPREPLY=($(compgen -W \"$algos\" -- \"$cur\")); return ;;\n"
            "  esac\n"
            "  case $cmd:$prev in\n"
            "    graph:graph) words=$graphs ;;\n"
            "    help:help) words='%sspec' ;;\n"
            "    *:--y|*:--x|*:--at) words=$cols ;;\n"
            "    *:--set) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); compopt -o nospace 2>/dev/null; return ;;\n",
            graphs, algos, cols, cmds, cmds, keys);
}

int eg_cli_completion(FILE *f)
{
    int rc = 0;
    char **helps = calloc((size_t)eg_ncommands, sizeof(char *));
    completion_head(f);
    for (int i = 0; helps && i < eg_ncommands; i++)
        if (!(helps[i] = command_help(&eg_commands[i])))
            rc = 1;
        else
            help_choices(f, eg_commands[i].name, helps[i]);
    fputs("  esac\n"
          "  if [ -n \"$words\" ]; then COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")); return; fi\n"
          "  case $cmd in\n",
          f);
    for (int i = 0; helps && i < eg_ncommands; i++) {
        char opts[1024];
        help_options(helps[i] ? helps[i] : "", opts, sizeof opts);
        if (!strstr(opts, "--help"))
            snprintf(opts + strlen(opts), sizeof opts - strlen(opts), " --help");
        fprintf(f, "    %s) opts='%s' ;;\n", eg_commands[i].name, opts);
        free(helps[i]);
    }
    free(helps);
    fputs("  esac\n"
          "  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); return; fi\n"
          "  COMPREPLY=($(compgen -f -- \"$cur\")); compopt -o filenames 2>/dev/null\n"
          "}\n"
          "complete -F _expgraph expgraph\n",
          f);
    return rc || !helps;
}

/* ---- docs/spec.md: `expgraph help spec --markdown` -------------------------------------- */

/* The reference docs/spec.md is this output, committed; tests/e2e/docs.sh regenerates it
 * and fails when the file differs, so it cannot drift from `expgraph help spec`. Every
 * key row comes from SPEC_HELP above (the key, its value there, its comment); the name
 * lists from the kind tables (kinds.c); the files from the column tables (schema.h); the
 * commands from their --help texts. Types are inferred from the value shown, except for
 * the keys in MD_TYPES (whose shown value does not tell the type). */

static const char *const MD_TYPES[][2] = {
    {"name", "string"},          {"lr", "number or mapping"}, {"lr.warmup_epochs", "number"},
    {"train.epochs", "number"},  {"train.iterations", "integer"},
    {"data.path", "path"},       {"data.image_size", "integer"}, {"graph.path", "path"},
    {"output.dir", "path"},      {"algorithm.compress", "name or mapping"},
    {"cluster.latency_us", "number"}, {"cluster.bandwidth_gbps", "number"},
    {"cluster.intra_latency_us", "number"}, {"cluster.intra_bandwidth_gbps", "number"},
    {"cluster.samples_per_s", "number or `measured`"}, {"cluster.straggler.slowdown", "number"},
    {NULL, NULL},
};

/* one key line of SPEC_HELP, parsed */
typedef struct {
    int indent, item; /* column of the key; item: the line starts a list item ("- key:") */
    char key[64], value[128], meaning[1024];
} md_key;

/* s without leading and trailing blanks, written to out */
static void md_trim(const char *s, size_t n, char *out, size_t len)
{
    while (n && *s == ' ')
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n'))
        n--;
    snprintf(out, len, "%.*s", (int)n, s);
}

/* appends comment text c (one "# ..." line's text) to a meaning, one blank between */
static void md_append(char *meaning, size_t len, const char *c, size_t n)
{
    char t[512];
    md_trim(c, n, t, sizeof t);
    if (t[0])
        snprintf(meaning + strlen(meaning), len - strlen(meaning), "%s%s", meaning[0] ? " " : "", t);
}

/* Parses the key lines of SPEC_HELP (after its first blank line) into k[] (at most max);
 * returns how many. */
static int md_parse(md_key *k, int max)
{
    const char *p = strstr(SPEC_HELP, "\n\n");
    int n = 0;
    for (p = p ? p + 2 : SPEC_HELP; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *q = p, *end = p + len, *hash = NULL;
        while (q < end && *q == ' ')
            q++;
        for (const char *h = q; h < end; h++)
            if (*h == '#' && (h == q || h[-1] == ' ')) {
                hash = h;
                break;
            }
        if (q < end && *q == '#') { /* a comment continuing the key above */
            if (n)
                md_append(k[n - 1].meaning, sizeof k[0].meaning, q + 1, (size_t)(end - q - 1));
        } else if (q < end && n < max) {
            md_key *m = &k[n];
            memset(m, 0, sizeof *m);
            if ((m->item = q + 1 < end && q[0] == '-' && q[1] == ' '))
                q += 2;
            m->indent = (int)(q - p);
            const char *colon = memchr(q, ':', (size_t)((hash ? hash : end) - q));
            if (colon) {
                md_trim(q, (size_t)(colon - q), m->key, sizeof m->key);
                md_trim(colon + 1, (size_t)((hash ? hash : end) - colon - 1), m->value,
                        sizeof m->value);
                if (hash)
                    md_append(m->meaning, sizeof m->meaning, hash + 1, (size_t)(end - hash - 1));
                n++;
            }
        }
        p = e ? e + 1 : end;
    }
    return n;
}

/* the type of key i (dotted path) from its value, its children and its meaning */
static const char *md_type(const md_key *k, int n, int i, const char *path)
{
    for (int t = 0; MD_TYPES[t][0]; t++)
        if (!strcmp(MD_TYPES[t][0], path))
            return MD_TYPES[t][1];
    const char *v = k[i].value, *m = k[i].meaning;
    if (i + 1 < n && k[i + 1].indent > k[i].indent) /* it has keys under it */
        return k[i + 1].item ? "list of mappings"
               : v[0] || strstr(m, "a name or a mapping") ? "name or mapping"
                                                          : "mapping";
    if (v[0] == '[')
        return "list";
    if (!strcmp(v, "true") || !strcmp(v, "false"))
        return "bool";
    if (!strcmp(v, "null"))
        return "optional";
    char *e;
    if (strtod(v, &e) != 0.0 || (e != v && !*e))
        return strpbrk(v, ".eE") ? "number" : "integer";
    for (const char *c = v; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return "string";
    return "name";
}

/* writes s for a markdown table cell: | escaped */
static void md_cell(FILE *f, const char *s)
{
    for (; *s; s++)
        fputs(*s == '|' ? "\\|" : (char[2]){*s, 0}, f);
}

/* the markdown list of a kind table's names, each in backticks */
static void md_names(FILE *f, const void *table, size_t stride)
{
    int first = 1;
    for (const char *const *row = table; *row; row = (const char *const *)((const char *)row + stride), first = 0)
        fprintf(f, "%s`%s`", first ? "" : ", ", *row);
}
#define MD_NAMES(f, table) md_names((f), (table), sizeof(table)[0])

static void md_spec_keys(FILE *f)
{
    md_key k[200];
    int n = md_parse(k, 200);
    char path[8][160];
    const char *intro = SPEC_HELP, *blank = strstr(SPEC_HELP, "\n\n");
    fputs("## Spec keys\n\n", f);
    fprintf(f, "%.*s\n\n", (int)(blank - intro), intro);
    fputs("The value column is the value `expgraph help spec` shows: the default where the key "
          "has one, an example where it is required or where the meaning says so. Types are "
          "those of YAML: a *name* is one of the listed words, a *list* a YAML sequence such "
          "as `[1, 2]`, *optional* a key whose default is `null` (absent).\n\n",
          f);
    char prefix[8][168];
    int at[8], depth = -1; /* the open keys: their indents, their children's prefixes */
    for (int i = 0; i < n; i++) {
        while (depth >= 0 && at[depth] >= k[i].indent)
            depth--;
        if (++depth > 7)
            depth = 7;
        at[depth] = k[i].indent;
        snprintf(path[depth], sizeof path[0], "%s%s", depth ? prefix[depth - 1] : "", k[i].key);
        /* the children's prefix: "graph." or, for a list of mappings, "graph.phases[]." */
        snprintf(prefix[depth], sizeof prefix[0], "%s%s.", path[depth],
                 i + 1 < n && k[i + 1].item ? "[]" : "");
        if (depth == 0)
            fprintf(f, "%s### `%s`\n\n| key | type | value | meaning |\n|---|---|---|---|\n",
                    i ? "\n" : "", k[i].key);
        fprintf(f, "| `%s` | %s | ", path[depth], md_type(k, n, i, path[depth]));
        if (k[i].value[0]) {
            fputc('`', f);
            md_cell(f, k[i].value);
            fputc('`', f);
        }
        fputs(" | ", f);
        md_cell(f, k[i].meaning);
        fputs(" |\n", f);
    }
}

static void md_names_section(FILE *f)
{
    fputs("## Names\n\nThe words a spec chooses from, from the tables the spec parser reads "
          "(lib/kinds.c).\n\n### Graphs\n\nDefinitions, weights and spectra: "
          "[graphs.md](graphs.md).\n\n"
          "| graph | W(k) changes with k | nodes | keys besides `name` |\n|---|---|---|---|\n",
          f);
    for (const eg_graph_info *g = eg_graph_kinds; g->name; g++) {
        fprintf(f, "| `%s` | %s | %s | ", g->name, g->time_varying ? "yes" : "no",
                g->pow2 ? "a power of two" : "any");
        const char *keys[] = {g->takes_p ? "`p`" : NULL, g->takes_path ? "`path` (required)" : NULL,
                              g->takes_peers ? "`peers`" : NULL,
                              g->machines ? "`local`, `outer` (required)" : NULL,
                              g->phases ? "`phases` (required)" : NULL};
        int any = 0;
        for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
            if (keys[j])
                fprintf(f, "%s%s", any++ ? ", " : "", keys[j]);
        fputs(any ? " |\n" : "- |\n", f);
    }
    fputs("\n### Algorithms\n\nUpdates and how each takes lost messages and absent nodes: "
          "[algorithms.md](algorithms.md).\n\n"
          "| algorithm | momentum (default 0.9) | vectors a node sends per exchange |\n"
          "|---|---|---|\n",
          f);
    for (const eg_algo_info *a = eg_algo_kinds; a->name; a++)
        fprintf(f, "| `%s` | %s | %s |\n", a->name, a->momentum ? "yes" : "no",
                a->vectors ? (char[2]){(char)('0' + a->vectors), 0} : "all-reduce (no graph)");
    fputs("\n### Compressors\n\n`algorithm.compress` (choco).\n\n| compressor | keys |\n|---|---|\n",
          f);
    for (const eg_compress_info *c = eg_compress_kinds; c->name; c++)
        fprintf(f, "| `%s` | %s |\n", c->name,
                c->takes_ratio ? "`ratio` (default 0.01)" : c->takes_levels ? "`levels` (default 16)" : "-");
    fputs("\n### Models\n\n| model | keys |\n|---|---|\n", f);
    for (const eg_model_info *m = eg_model_kinds; m->name; m++) {
        fprintf(f, "| `%s` | ", m->name);
        for (const char *const *key = m->keys; *key; key++)
            fprintf(f, "%s`%s`", key == m->keys ? "" : ", ", *key);
        fputs(" |\n", f);
    }
    fputs("\n### Datasets\n\nWhere each is found and how to get it: "
          "[data/README.md](../data/README.md).\n\n"
          "| data.name | data.path | samples | classes |\n|---|---|---|---|\n",
          f);
    for (const eg_data_info *d = eg_data_kinds; d->name; d++) {
        fprintf(f, "| `%s` | ", d->name);
        md_cell(f, d->needs_path ? d->path_is : d->named ? "optional (looked up by name)" : "-");
        fprintf(f, " | %s | ", d->images ? "8-bit images" : "feature vectors");
        if (d->classes)
            fprintf(f, "%d |\n", d->classes);
        else if (d->format == EG_DFMT_SYNTH)
            fputs("`data.classes` |\n", f);
        else
            fputs("from the files |\n", f);
    }
    fputs("\n### Other names\n\n- `data.partition`: ", f);
    MD_NAMES(f, eg_partition_kinds);
    fputs("\n- `data.cache`: ", f);
    MD_NAMES(f, eg_cache_kinds);
    fputs("\n- `lr.schedule`: ", f);
    MD_NAMES(f, eg_sched_kinds);
    fputs("\n- `model.norm`: ", f);
    for (int i = 0; eg_norm_names[i]; i++)
        fprintf(f, "%s`%s`", i ? ", " : "", eg_norm_names[i]);
    fputs("\n- `train.precision`: ", f);
    for (int i = 0; eg_precision_names[i]; i++)
        fprintf(f, "%s`%s`", i ? ", " : "", eg_precision_names[i]);
    fputs("\n\n", f);
}

static void md_files_section(FILE *f)
{
    fputs("## Files a run writes\n\n"
          "A run directory (`output.dir`, or `--out`) holds `metrics.csv`, `summary.csv`, "
          "`spec.yaml` (the resolved spec, every default filled in: rerunning it gives the "
          "same numbers), `run_info.yaml` (where the numbers come from: the build, the "
          "libraries' versions, each host's CPU and the oneDNN kernels it dispatches; "
          "`expgraph info` prints the same for this machine, `--resume` warns when they "
          "changed: docs/provenance.md) and `ckpt/` (the last two checkpoint generations, "
          "which `--resume` continues from).\n\n### metrics.csv\n\n"
          "A header, then a row every `train.log_every` iterations and one at the end, "
          "flushed as written. Columns in file order; the first nine are fixed (every "
          "reader requires them), *evaluation* columns are empty in rows without a test "
          "evaluation (`train.eval_every`).\n\n| column | meaning | |\n|---|---|---|\n",
          f);
    for (int i = 0; i < eg_metrics_ncols; i++) {
        const eg_column *c = &eg_metrics_columns[i];
        fprintf(f, "| `%s` | ", c->name);
        md_cell(f, c->help ? c->help : "");
        fprintf(f, " | %s%s%s |\n", c->flags & EG_COL_REQUIRED ? "fixed" : "",
                (c->flags & EG_COL_REQUIRED) && (c->flags & EG_COL_EVAL) ? ", " : "",
                c->flags & EG_COL_EVAL ? "evaluation" : "");
    }
    fputs("\n### summary.csv\n\nOne header and one row: the resolved spec's scalar keys "
          "(dotted paths), the final value of the metrics columns marked so, then the run's "
          "figures (label skew, training and wall seconds, samples/s, ranks, threads, the "
          "data the fullest rank held), then where it ran (`expgraph_version`, `commit`, "
          "`dnnl_isa`: the oneDNN kernel of its precision, `cpu`, `hosts`; values that differ "
          "between hosts joined with ` | `; `expgraph table` can group by them). Its "
          "columns, in file order:\n\n",
          f);
    for (int i = 0; i < eg_summary_ncols(); i++)
        fprintf(f, "%s`%s`", i ? ", " : "", eg_summary_column(i)->name);
    fputs("\n\n", f);
}

static void md_commands_section(FILE *f)
{
    char *usage = printed(eg_cli_usage);
    fprintf(f, "## Commands\n\n```\n%s```\n", usage ? usage : "");
    free(usage);
    for (int i = 0; i < eg_ncommands; i++) {
        char *h = command_help(&eg_commands[i]);
        fprintf(f, "\n### expgraph %s\n\n```\n%s```\n", eg_commands[i].name, h ? h : "");
        free(h);
    }
    fputs("\n## Environment and exit codes\n\n"
          "- `EXPGRAPH_THREADS`: threads per rank (default: the host's cores divided by the "
          "ranks on it).\n"
          "- `EXPGRAPH_DATA`: the dataset directory (default: the build's `data/cache`).\n"
          "- Exit codes: 0 success; 1 a failure while running (I/O, MPI, divergence, naming "
          "the iteration and node); 2 a bad command line, spec or input, with a message "
          "`expgraph: FILE:LINE:COL: ...` naming the key, nothing written; 130 interrupted "
          "by SIGINT or SIGTERM after a checkpoint.\n",
          f);
}

static int md_spec(FILE *f)
{
    fprintf(f, "# expgraph reference: spec keys, names, files, commands%s\n\n"
               "<!-- generated by `expgraph help spec --markdown` (cli/help.c) from the tables "
               "behind `expgraph help spec`, the man page and the completion; do not edit: "
               "run scripts/gen_spec_md.sh (tests/e2e/docs.sh fails when this file differs) "
               "-->\n\n"
               "- [Spec keys](#spec-keys): ",
            "");
    md_key k[200];
    int n = md_parse(k, 200);
    for (int i = 0, first = 1; i < n; i++)
        if (k[i].indent == 0) {
            fprintf(f, "%s[`%s`](#%s)", first ? "" : ", ", k[i].key, k[i].key);
            first = 0;
        }
    fputs("\n- [Names](#names): [graphs](#graphs), [algorithms](#algorithms), "
          "[compressors](#compressors), [models](#models), [datasets](#datasets), "
          "[other names](#other-names)\n"
          "- [Files a run writes](#files-a-run-writes): [metrics.csv](#metricscsv), "
          "[summary.csv](#summarycsv)\n"
          "- [Commands](#commands)",
          f);
    for (int i = 0; i < eg_ncommands; i++)
        fprintf(f, "%s[%s](#expgraph-%s)", i ? ", " : ": ", eg_commands[i].name,
                eg_commands[i].name);
    fputs("\n- [Environment and exit codes](#environment-and-exit-codes)\n\n", f);
    md_spec_keys(f);
    fputc('\n', f);
    md_names_section(f);
    md_files_section(f);
    md_commands_section(f);
    return ferror(f) != 0;
}
