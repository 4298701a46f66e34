/* cmd_run.c - `expgraph run`, `expgraph validate` and `expgraph sweep`. */
#include "commands.h"
#include "comm.h"
#include "run.h"
#include "schema.h"
#include "spec.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct runargs {
    const char *spec;
    char **sets;
    int nsets;
    const char *out;
    int resume, force, quiet, list, help;
} runargs;

static const char *RUN_HELP =
    "usage: expgraph run SPEC.yaml [--set KEY=VALUE]... [--out DIR] [--resume] [--force] [--quiet]\n"
    "\n"
    "Trains one experiment. An MPI program: `expgraph run s.yaml` runs every node in one\n"
    "process; `mpirun -np P expgraph run s.yaml` spreads the spec's nodes over P ranks\n"
    "(P <= nodes). The same spec and seed give the same numbers whatever P is.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a spec key by its dotted path, value parsed as YAML\n"
    "                   (--set lr.base=0.05 --set graph=ring --set 'graph={name: erdos_renyi, p: 0.2}')\n"
    "  --out DIR        output directory (default: the spec's output.dir, runs/<name>)\n"
    "  --resume         continue an interrupted run from its last checkpoint\n"
    "  --force          start over in a directory that already holds a run\n"
    "  --quiet          no progress bar and no summary lines\n"
    "\n"
    "writes DIR/metrics.csv (columns below), DIR/spec.yaml (resolved), DIR/summary.csv,\n"
    "DIR/ckpt/, DIR/run_info.yaml (build, libraries, hosts, oneDNN kernels: expgraph info;\n"
    "--resume warns when they changed).\n"
    "environment: EXPGRAPH_THREADS (threads per rank; default cores / ranks on the host),\n"
    "EXPGRAPH_DATA (dataset directory), EXPGRAPH_MPI=1 (start MPI in a process that no\n"
    "launcher started; by default such a run is one rank without MPI, the same numbers).\n"
    "exit: 0 ok, 1 failure while running, 2 bad spec or command line, 130 interrupted.\n";

static const char *VALIDATE_HELP =
    "usage: expgraph validate SPEC.yaml [--set KEY=VALUE]...\n"
    "\n"
    "Parses and checks everything `run` would check (keys, types, ranges, graph vs nodes,\n"
    "data files, dataset size), writes nothing. Exit 0 when good, 2 with the reason.\n";

static const char *SWEEP_HELP =
    "usage: expgraph sweep SPEC.yaml [--set KEY=VALUE]... [--out DIR] [--list] [--quiet]\n"
    "\n"
    "Expands the spec's sweep: block (dotted key -> list of values) into the cartesian\n"
    "product and runs each point in turn into OUT/<key=value,...>/ (OUT: --out, default the\n"
    "spec's output.dir). Points whose directory holds a finished run are skipped, an\n"
    "interrupted point is resumed. A failing point (e.g. divergence) is reported and the\n"
    "others still run; the exit code is then 1 (2 if every failure was a bad spec).\n"
    "--list prints one `expgraph run ...` command per point\n"
    "instead (for SLURM arrays, GNU parallel or mpirun in a batch script).\n";

enum { O_HELP = 1, O_SET, O_OUT, O_RESUME, O_FORCE, O_QUIET, O_LIST };

static const eg_cli_opt RUN_OPTS[] = {
    {"--help", "-h", 0, O_HELP}, {"--set", NULL, 1, O_SET},       {"--out", NULL, 1, O_OUT},
    {"--resume", NULL, 0, O_RESUME}, {"--force", NULL, 0, O_FORCE}, {"--quiet", NULL, 0, O_QUIET},
    {NULL, NULL, 0, 0}};
static const eg_cli_opt VALIDATE_OPTS[] = {
    {"--help", "-h", 0, O_HELP}, {"--set", NULL, 1, O_SET}, {NULL, NULL, 0, 0}};
/* sweep takes run's options (--resume and --force are accepted, each point decides) */
static const eg_cli_opt SWEEP_OPTS[] = {
    {"--help", "-h", 0, O_HELP}, {"--set", NULL, 1, O_SET},       {"--out", NULL, 1, O_OUT},
    {"--resume", NULL, 0, O_RESUME}, {"--force", NULL, 0, O_FORCE}, {"--quiet", NULL, 0, O_QUIET},
    {"--list", NULL, 0, O_LIST}, {NULL, NULL, 0, 0}};

/* one argument, as eg_cli_next classified it: 0, or 2 after printing the problem */
static int take_arg(runargs *a, int id, const char *v)
{
    switch (id) {
    case O_HELP: a->help = 1; break;
    case O_SET: a->sets[a->nsets++] = (char *)v; break;
    case O_RESUME: a->resume = 1; break;
    case O_FORCE: a->force = 1; break;
    case O_QUIET: a->quiet = 1; break;
    case O_LIST: a->list = 1; break;
    case O_OUT:
        if (!*v) {
            eg_cli_error("--out needs a directory");
            return 2;
        }
        a->out = v;
        break;
    case EG_CLI_MISSING:
        eg_cli_error("%s", !strcmp(v, "--set") ? "--set needs KEY=VALUE" : "--out needs a directory");
        return 2;
    case EG_CLI_UNKNOWN:
        eg_cli_error("unknown option '%s' (see --help)", v);
        return 2;
    default: /* EG_CLI_ARG */
        if (a->spec) {
            eg_cli_error("one spec file at a time; '%s' is extra", v);
            return 2;
        }
        a->spec = v;
    }
    return 0;
}

/* 0 (a->help when --help was given) or 2 after printing the problem; a->sets is always
 * the caller's to free */
static int parse_args(int argc, char **argv, runargs *a, const eg_cli_opt *opts)
{
    memset(a, 0, sizeof *a);
    a->sets = calloc((size_t)argc + 1, sizeof(char *));
    if (!a->sets)
        return 2;
    const char *v;
    int i = 0, id;
    while ((id = eg_cli_next(argc, argv, &i, opts, &v)) != EG_CLI_END)
        if (take_arg(a, id, v))
            return 2;
    if (a->help)
        return 0;
    if (!a->spec) {
        eg_cli_error("missing SPEC.yaml (see --help)");
        return 2;
    }
    if (a->resume && a->force) {
        eg_cli_error("--resume and --force contradict each other; pick one");
        return 2;
    }
    return 0;
}

static void on_signal(int sig)
{
    /* while inputs are still being read nothing has been written: stop at once;
     * during training, finish the iteration, checkpoint, then stop */
    if (!eg_run_training)
        _exit(130);
    eg_run_stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* past a file-size limit, writes fail with EFBIG and are reported, instead of killing us */
    signal(SIGXFSZ, SIG_IGN);
}

static void print_info(void *ud, const char *line)
{
    (void)ud;
    printf("%s\n", line);
    fflush(stdout);
}

static void print_warn(void *ud, const char *line)
{
    (void)ud;
    fprintf(stderr, "expgraph: warning: %s\n", line);
}

typedef struct bar {
    double last;
    int drawn;
    int tty;    /* draw the bar (stderr is a terminal, not --quiet) */
    double acc; /* the last evaluated test accuracy (< 0: none yet) */
} bar;

static void print_progress(void *ud, const eg_progress *p)
{
    bar *b = ud;
    b->acc = p->test_acc;
    if (!b->tty)
        return;
    double now = eg_now();
    if (p->iter != p->total && now - b->last < 0.2)
        return;
    b->last = now;
    int width = 24, fill = p->total > 0 ? (int)((double)width * p->iter / p->total) : 0;
    char cells[32];
    for (int i = 0; i < width; i++)
        cells[i] = i < fill ? '#' : '.';
    cells[width] = 0;
    double eta = p->iter > 0 ? p->elapsed_s * (double)(p->total - p->iter) / p->iter : 0;
    char acc[32] = "  -   ";
    if (p->test_acc >= 0)
        snprintf(acc, sizeof acc, "%.4f", p->test_acc);
    char loss[32] = "-     "; /* no metrics row yet */
    if (!isnan(p->train_loss))
        snprintf(loss, sizeof loss, "%.4f", p->train_loss);
    fprintf(stderr, "\r[%s] %ld/%ld ep %.2f loss %s acc %s ETA %d:%02d ", cells, p->iter,
            p->total, p->epoch, loss, acc, (int)(eta / 60), (int)eta % 60);
    if (p->iter == p->total)
        fputc('\n', stderr);
    fflush(stderr);
    b->drawn = 1;
}

static int exit_code(int rc)
{
    switch (rc) {
    case EG_OK:
        return 0;
    case EG_EINPUT:
        return 2;
    case EG_EINTR:
        return 130;
    default:
        return 1;
    }
}

/* one run (or validation); *acc (may be NULL): its last test accuracy, < 0 when none */
static int do_run(const runargs *a, const char *out, int validate, int quiet, int *code,
                  double *acc)
{
    int rank = eg_comm_world_rank();
    bar b = {0, 0, !quiet && isatty(2), -1};
    eg_run_opts o = {
        .spec_file = a->spec, .sets = a->sets, .nsets = a->nsets, .out_dir = out,
        .resume = a->resume, .force = a->force, .validate_only = validate,
        .info = quiet ? NULL : print_info, .warn = print_warn,
        .progress = (b.tty || acc) ? print_progress : NULL, .ud = &b};
    eg_err err = {0};
    int rc = eg_run(&o, &err);
    if (b.drawn && rc)
        fputc('\n', stderr);
    if (rc && (rank == 0 || rc == EG_ERUN))
        eg_cli_error("%s", err.msg);
    *code = exit_code(rc);
    if (acc)
        *acc = b.acc;
    return rc;
}

static void run_help(void)
{
    fputs(RUN_HELP, stdout);
    fputs("metrics.csv columns:\n", stdout);
    eg_metrics_columns_help(stdout);
}

static void validate_help(void) { fputs(VALIDATE_HELP, stdout); }

/* The command line, then MPI: returns -1 to go on, or the exit code when the command ends
 * here (a bad command line, --help, MPI failing to start); a->sets is freed then. */
static int start(int *argc, char ***argv, runargs *a, const eg_cli_opt *opts, void (*help)(void))
{
    int pc = parse_args(*argc, *argv, a, opts);
    eg_err err = {0};
    if (!pc && !a->help && eg_comm_world_start(argc, argv, &err)) {
        eg_cli_error("cannot initialise MPI: %s", err.msg);
        pc = 1;
    }
    if (!pc && !a->help)
        return -1;
    if (!pc)
        help();
    free(a->sets);
    return pc;
}

int eg_cmd_run(int argc, char **argv)
{
    runargs a;
    int code = start(&argc, &argv, &a, RUN_OPTS, run_help);
    if (code >= 0)
        return code;
    install_signals();
    int rc = do_run(&a, a.out, 0, a.quiet, &code, NULL);
    free(a.sets);
    if (rc == EG_ERUN && eg_comm_world_size() > 1)
        eg_comm_abort(1); /* a rank may be stuck in a collective: end the whole job */
    eg_comm_world_finalize();
    return code;
}

int eg_cmd_validate(int argc, char **argv)
{
    runargs a;
    int code = start(&argc, &argv, &a, VALIDATE_OPTS, validate_help);
    if (code >= 0)
        return code;
    a.force = 1; /* an existing run directory is not a spec problem */
    int rc = do_run(&a, NULL, 1, 1, &code, NULL);
    if (rc == EG_OK && eg_comm_world_rank() == 0)
        printf("%s: ok\n", a.spec);
    free(a.sets);
    eg_comm_world_finalize();
    return code;
}

/* shell-quotes s into out when it holds anything but safe characters */
static void shq(const char *s, char *out, size_t len)
{
    int safe = *s != 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/=,+:@", *p))
            safe = 0;
    if (safe) {
        snprintf(out, len, "%s", s);
        return;
    }
    size_t o = 0;
    out[o++] = '\'';
    for (const char *p = s; *p && o + 6 < len; p++) {
        if (*p == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *p;
        }
    }
    out[o++] = '\'';
    out[o] = 0;
}

/* a sweep: the command line, the expanded block, the root directory, and the --set list
 * handed to each point (the command line's, then the point's own sw.nkeys) */
typedef struct sweepctx {
    runargs a;
    eg_sweep sw;
    char **sets;
    char root[EG_PATH_MAX];
} sweepctx;

/* the point's sets: sets[a.nsets ..] for point p (dir: its directory name); 0 or -1 */
static int point_sets(sweepctx *x, long p, char *dir, size_t dirlen)
{
    return eg_sweep_point(&x->sw, p, x->sets + x->a.nsets, dir, dirlen);
}

static void point_free(sweepctx *x)
{
    for (int k = 0; k < x->sw.nkeys; k++) {
        free(x->sets[x->a.nsets + k]);
        x->sets[x->a.nsets + k] = NULL;
    }
}

/* the sweep's root: --out, else the spec's output.dir (read with the first point);
 * 0 or the exit code after printing the problem */
static int sweep_root(sweepctx *x)
{
    char dir[EG_PATH_MAX];
    if (point_sets(x, 0, dir, sizeof dir)) {
        eg_cli_error("sweep point too long");
        return 2;
    }
    int code = 0;
    if (x->a.out) {
        snprintf(x->root, sizeof x->root, "%s", x->a.out);
    } else {
        eg_err err = {0};
        eg_spec s;
        int rc = eg_spec_load(&s, x->a.spec, x->sets, x->a.nsets + x->sw.nkeys, &err);
        if (rc) {
            eg_cli_error("%s", err.msg);
            code = exit_code(rc);
        } else {
            snprintf(x->root, sizeof x->root, "%s", s.out_dir);
        }
        eg_spec_free(&s);
    }
    point_free(x);
    return code;
}

/* every point must be a valid spec before anything runs: 0 or the exit code */
static int check_points(sweepctx *x)
{
    char dir[EG_PATH_MAX];
    for (long p = 0; p < x->sw.npoints; p++) {
        point_sets(x, p, dir, sizeof dir);
        eg_err err = {0};
        eg_spec s;
        int rc = eg_spec_load(&s, x->a.spec, x->sets, x->a.nsets + x->sw.nkeys, &err);
        eg_spec_free(&s);
        point_free(x);
        if (rc) {
            eg_cli_error("sweep point %s: %s", dir, err.msg);
            return exit_code(rc);
        }
    }
    return 0;
}

/* --list: one `expgraph run` command line per point */
static void list_points(sweepctx *x)
{
    char dir[EG_PATH_MAX], out[EG_PATH_MAX * 2 + 8], q[8192];
    for (long p = 0; p < x->sw.npoints; p++) {
        point_sets(x, p, dir, sizeof dir);
        shq(x->a.spec, q, sizeof q);
        printf("expgraph run %s", q);
        for (int i = 0; i < x->a.nsets + x->sw.nkeys; i++) {
            shq(x->sets[i], q, sizeof q);
            printf(" --set %s", q);
        }
        snprintf(out, sizeof out, "%s/%s", x->root, dir);
        shq(out, q, sizeof q);
        printf(" --out %s%s\n", q, x->a.quiet ? " --quiet" : "");
        point_free(x);
    }
}

typedef struct sweeptally {
    long ran, skipped, failed;
    int code, stop;
    double t0, run_s; /* the sweep's start; seconds spent in the points run */
} sweeptally;

/* s seconds as m:ss, or h:mm:ss from an hour */
static void fmt_dur(double s, char *out, size_t len)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, len, "%ld:%02ld", t / 60, t % 60);
}

/* after point p ran: "[i/N] DIR: done, test_acc A (its time); sweep ELAPSED, ETA E"
 * (ETA: the mean time of the points run so far times the points left) */
static void print_point_done(const sweepctx *x, long p, const char *dir, double acc,
                             double secs, const sweeptally *t)
{
    char a[32] = "-", took[32], el[32], eta[32];
    if (acc >= 0)
        snprintf(a, sizeof a, "%.4f", acc);
    fmt_dur(secs, took, sizeof took);
    fmt_dur(eg_now() - t->t0, el, sizeof el);
    fmt_dur(t->ran > 0 ? t->run_s / (double)t->ran * (double)(x->sw.npoints - p - 1) : 0, eta,
            sizeof eta);
    printf("[%ld/%ld] %s: done, test_acc %s (%s); sweep %s elapsed, ETA %s\n", p + 1,
           x->sw.npoints, dir, a, took, el, eta);
    fflush(stdout);
}

/* runs point p (its sets in place) into out unless it finished already */
static void run_point(sweepctx *x, long p, const char *dir, const char *out, sweeptally *t)
{
    int rank = eg_comm_world_rank();
    char probe[EG_PATH_MAX * 2 + 48], ck[EG_PATH_MAX * 2 + 48];
    snprintf(probe, sizeof probe, "%s/summary.csv", out);
    snprintf(ck, sizeof ck, "%s/ckpt/LATEST", out);
    struct stat st;
    int finished = stat(probe, &st) == 0, resumable = stat(ck, &st) == 0;
    if (finished) {
        t->skipped++;
        if (rank == 0 && !x->a.quiet)
            printf("[%ld/%ld] %s: finished already, skipped\n", p + 1, x->sw.npoints, dir);
        return;
    }
    if (rank == 0 && !x->a.quiet)
        printf("[%ld/%ld] %s%s\n", p + 1, x->sw.npoints, dir, resumable ? " (resuming)" : "");
    fflush(stdout);
    runargs pa = x->a;
    pa.sets = x->sets;
    pa.nsets = x->a.nsets + x->sw.nkeys;
    pa.resume = resumable;
    pa.force = !resumable; /* metrics without a checkpoint: an early death, start over */
    int pcode = 0;
    double acc = -1, t0 = eg_now();
    int prc = do_run(&pa, out, 0, x->a.quiet, &pcode, &acc);
    t->ran++;
    t->run_s += eg_now() - t0;
    if (prc == EG_OK && rank == 0 && !x->a.quiet)
        print_point_done(x, p, dir, acc, eg_now() - t0, t);
    /* a point that fails (bad combination, divergence) does not stop the others; an
     * interrupt does */
    if (prc == EG_EINTR) {
        t->code = pcode;
        t->stop = 1;
    } else if (prc != EG_OK) {
        t->failed++;
        if (rank == 0)
            eg_cli_error("sweep point %s failed (see above); continuing", dir);
        if (t->code == 0 || pcode == 1)
            t->code = pcode;
    }
}

/* runs every point in turn (collective): the exit code */
static int run_points(sweepctx *x, int *argc, char ***argv)
{
    eg_err err = {0};
    if (eg_comm_world_start(argc, argv, &err)) {
        eg_cli_error("cannot initialise MPI: %s", err.msg);
        return 1;
    }
    install_signals();
    char dir[EG_PATH_MAX], out[EG_PATH_MAX * 2 + 8];
    sweeptally t = {0};
    t.t0 = eg_now();
    for (long p = 0; p < x->sw.npoints && !t.stop; p++) {
        point_sets(x, p, dir, sizeof dir);
        snprintf(out, sizeof out, "%s/%s", x->root, dir);
        run_point(x, p, dir, out, &t);
        point_free(x);
    }
    if (!t.stop && eg_comm_world_rank() == 0 && (!x->a.quiet || t.failed))
        printf("sweep: %ld points, %ld run, %ld skipped, %ld failed; results under %s\n",
               x->sw.npoints, t.ran, t.skipped, t.failed, x->root);
    eg_comm_world_finalize();
    return t.code;
}

int eg_cmd_sweep(int argc, char **argv)
{
    sweepctx x = {0};
    int code = parse_args(argc, argv, &x.a, SWEEP_OPTS);
    if (code || x.a.help) {
        if (x.a.help)
            fputs(SWEEP_HELP, stdout);
        free(x.a.sets);
        return code;
    }
    eg_err err = {0};
    int rc = eg_sweep_load(&x.sw, x.a.spec, x.a.sets, x.a.nsets, &err);
    if (rc) {
        eg_cli_error("%s", err.msg);
        eg_sweep_free(&x.sw);
        free(x.a.sets);
        return exit_code(rc);
    }
    x.sets = calloc((size_t)(x.a.nsets + x.sw.nkeys + 1), sizeof(char *));
    if (!x.sets) {
        eg_sweep_free(&x.sw);
        free(x.a.sets);
        return 1;
    }
    for (int i = 0; i < x.a.nsets; i++)
        x.sets[i] = x.a.sets[i];
    code = sweep_root(&x);
    if (!code)
        code = check_points(&x);
    if (!code && x.a.list)
        list_points(&x);
    else if (!code)
        code = run_points(&x, &argc, &argv);
    point_free(&x);
    free(x.sets);
    eg_sweep_free(&x.sw);
    free(x.a.sets);
    return code;
}
