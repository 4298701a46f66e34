/* commands.h - the subcommands of `expgraph`. Each takes argv starting at the
 * subcommand's own name (argv[0] = "graph", ...) and returns the process exit code
 * (0 ok, 1 runtime failure, 2 bad command line or input, 130 interrupted). */
#ifndef EG_COMMANDS_H
#define EG_COMMANDS_H

#include <stdio.h>

int eg_cmd_run(int argc, char **argv);
int eg_cmd_validate(int argc, char **argv);
int eg_cmd_sweep(int argc, char **argv);
int eg_cmd_graph(int argc, char **argv);
int eg_cmd_table(int argc, char **argv);
int eg_cmd_plot(int argc, char **argv);
int eg_cmd_info(int argc, char **argv); /* cmd_info.c: build, libraries, CPU, kernels */

/* `expgraph help [COMMAND|spec]` (help.c) */
int eg_cmd_help(int argc, char **argv);

/* the subcommand table (main.c), in the order of `expgraph --help` */
typedef struct eg_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help; /* one line */
} eg_command;
extern const eg_command eg_commands[];
extern const int eg_ncommands;

/* `expgraph --help`'s text */
void eg_cli_usage(FILE *f);

/* The man page (roff) and the bash completion script, generated from every subcommand's
 * --help text (each subcommand is run with --help, its stdout captured), the usage text,
 * the spec keys text and the graph/algorithm tables (help.c). Return 0, or 1 when a help
 * text could not be captured. */
int eg_cli_man(FILE *f);
int eg_cli_completion(FILE *f);

/* prints "expgraph: <msg>\n" to stderr */
void eg_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One option of a subcommand, for eg_cli_next. A table ends with {NULL}. */
typedef struct eg_cli_opt {
    const char *name;  /* "--set" */
    const char *alias; /* another spelling ("-h", "-o") or NULL */
    int has_value;     /* 1: "--name VALUE" or "--name=VALUE"; 0: a flag, exactly "--name" */
    int id;            /* what eg_cli_next returns for it (> 0) */
} eg_cli_opt;

enum { EG_CLI_END = 0, EG_CLI_ARG = -1, EG_CLI_UNKNOWN = -2, EG_CLI_MISSING = -3 };

/* Steps to the next argument (start with *i = 0; argv[0] is the subcommand) and returns:
 * the option's id, with its value in *val for a value option (*i advanced past a separate
 * value); EG_CLI_ARG for a positional argument ("-" included), in *val; EG_CLI_UNKNOWN for
 * an argument starting with '-' that is no option in opts, in *val; EG_CLI_MISSING for a
 * value option that is the last argument, *val = the option as written; EG_CLI_END after
 * the last argument. Prints nothing: the caller words the errors. */
int eg_cli_next(int argc, char **argv, int *i, const eg_cli_opt *opts, const char **val);

/* The --cluster option of `table` and `plot` (retime.h), one text for both usages. */
#define EG_CLUSTER_OPTION_HELP \
    "--cluster F   the same runs on another cluster: F is a YAML file holding a\n" \
    "              cluster: mapping as in a spec (or the bare mapping; samples_per_s\n" \
    "              must be a number). Each run's time_model_s column is recomputed in\n" \
    "              memory from the run's own spec.yaml as a run with that cluster:\n" \
    "              would have written it (bit for bit), and its cluster.* keys become\n" \
    "              F's; a run whose spec has a cluster: gets F's instead. Nothing on\n" \
    "              disk changes. Needs each run's spec.yaml and its data (the labels\n" \
    "              are read, as expgraph run does; docs/timemodel.md)\n"

#endif
