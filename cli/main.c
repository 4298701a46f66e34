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

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"run", eg_cmd_run, "train one experiment from a spec (an MPI program)"},
    {"sweep", eg_cmd_sweep, "run every point of the spec's sweep: block (or --list them)"},
    {"validate", eg_cmd_validate, "check a spec (and its data) without running or writing"},
    {"graph", eg_cmd_graph, "print mixing-matrix facts (rho, gap, degree) for a graph family"},
    {"table", eg_cmd_table, "results table (md, csv, latex) from run directories"},
    {"plot", eg_cmd_plot, "PNG figure of a metrics column from run directories"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph COMMAND [ARGS...]\n"
            "\n"
            "Decentralized deep-training experiments over exponential (and other) graphs.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f,
            "\n"
            "  expgraph COMMAND --help   options of one command\n"
            "  expgraph --version        print the version\n"
            "\n"
            "examples:\n"
            "  expgraph run experiments/quickstart.yaml\n"
            "  mpirun -np 4 expgraph run experiments/quickstart.yaml --set graph=exp\n"
            "  expgraph graph onepeer_exp --nodes 8,16,32 --format csv\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("expgraph %s\n", EG_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    eg_cli_error("unknown command '%s' (see expgraph --help)", argv[1]);
    return 2;
}
