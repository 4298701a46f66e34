/* main.c - `expgraph` entry point: dispatches the subcommand table. */
#include "commands.h"
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void eg_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("expgraph: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const eg_command eg_commands[] = {
    {"run", eg_cmd_run, "train one experiment from a spec (an MPI program)"},
    {"sweep", eg_cmd_sweep, "run every point of the spec's sweep: block (or --list them)"},
    {"validate", eg_cmd_validate, "check a spec (and its data) without running or writing"},
    {"graph", eg_cmd_graph, "print mixing-matrix facts (rho, gap, degree) for a graph family"},
    {"table", eg_cmd_table, "results table (md, csv, latex) from run directories"},
    {"plot", eg_cmd_plot, "PNG figure of a metrics column from run directories"},
    {"info", eg_cmd_info, "build, library versions, CPU and oneDNN kernels of this machine"},
};
const int eg_ncommands = (int)(sizeof eg_commands / sizeof eg_commands[0]);

void eg_cli_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph COMMAND [ARGS...]\n"
            "\n"
            "Decentralized deep-training experiments over exponential (and other) graphs.\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < eg_ncommands; i++)
        fprintf(f, "  %-9s %s\n", eg_commands[i].name, eg_commands[i].help);
    fprintf(f,
            "\n"
            "  expgraph COMMAND --help   options of one command (also: expgraph help COMMAND)\n"
            "  expgraph help spec        every key of the spec file, with its default\n"
            "  expgraph --version        print the version (--verbose: expgraph info)\n"
            "\n"
            "examples:\n"
            "  expgraph run experiments/quickstart.yaml\n"
            "  mpirun -np 4 expgraph run experiments/quickstart.yaml --set graph=exp\n"
            "  expgraph graph onepeer_exp --nodes 8,16,32 --format csv\n"
            "  expgraph sweep seeds.yaml && expgraph table runs/seeds --rows graph --cols nodes\n"
            "\n"
            "Installed with `cmake --install`: this text and every command's as a man page\n"
            "(man expgraph), and a bash completion.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        eg_cli_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        eg_cli_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "help"))
        return eg_cmd_help(argc - 1, argv + 1);
    /* hidden: the build generates the man page and the completion with these */
    if (!strcmp(argv[1], "--man"))
        return eg_cli_man(stdout) || fflush(stdout) ? 1 : 0;
    if (!strcmp(argv[1], "--completion")) {
        if (argc != 3 || strcmp(argv[2], "bash")) {
            eg_cli_error("--completion: only 'bash' is supported (expgraph --completion bash)");
            return 2;
        }
        return eg_cli_completion(stdout) || fflush(stdout) ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        if (argc > 2 && !strcmp(argv[2], "--verbose")) /* = expgraph info */
            return eg_cmd_info(1, argv + 1);
        printf("expgraph %s\n", EG_VERSION);
        return 0;
    }
    for (int i = 0; i < eg_ncommands; i++)
        if (!strcmp(argv[1], eg_commands[i].name))
            return eg_commands[i].fn(argc - 1, argv + 1);
    eg_cli_error("unknown command '%s' (see expgraph --help)", argv[1]);
    return 2;
}
