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

/* the value of option `opt` at argv[*i], given as "--opt V" (advancing *i) or "--opt=V";
 * NULL when argv[*i] is another option, and then *missing = 1 if it is opt without a value */
const char *eg_cli_opt_val(int argc, char **argv, int *i, const char *opt, int *missing);

/* An option that takes a text value: where the value goes, and the message printed when
 * it is missing or empty (e.g. "--rows needs a spec key (see --help)"). */
typedef struct eg_cli_stropt {
    const char *name;
    const char **dst;
    const char *need;
} eg_cli_stropt;

/* Matches argv[*i] against opts[0..n): 1 when one takes it (*dst set; *i advanced past a
 * separate value), 2 when its value is missing or empty (message printed), 0 when none
 * matches. */
int eg_cli_str_opts(int argc, char **argv, int *i, const eg_cli_stropt *opts, int n);

#endif
