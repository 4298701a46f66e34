/* commands.h - the subcommands of `expgraph`. Each takes argv starting at the
 * subcommand's own name (argv[0] = "graph", ...) and returns the process exit code
 * (0 ok, 1 runtime failure, 2 bad command line or input, 130 interrupted). */
#ifndef EG_COMMANDS_H
#define EG_COMMANDS_H

int eg_cmd_run(int argc, char **argv);
int eg_cmd_validate(int argc, char **argv);
int eg_cmd_sweep(int argc, char **argv);
int eg_cmd_graph(int argc, char **argv);
int eg_cmd_table(int argc, char **argv);
int eg_cmd_plot(int argc, char **argv);

/* prints "expgraph: <msg>\n" to stderr */
void eg_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* the value of option `opt` at argv[*i], given as "--opt V" (advancing *i) or "--opt=V";
 * NULL when argv[*i] is another option, and then *missing = 1 if it is opt without a value */
const char *eg_cli_opt_val(int argc, char **argv, int *i, const char *opt, int *missing);

#endif
