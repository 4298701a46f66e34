/* cmd_stubs.c - subcommands not built yet (replaced as they land). */
#include "commands.h"

int eg_cmd_table(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    eg_cli_error("table: not supported yet");
    return 2;
}

int eg_cmd_plot(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    eg_cli_error("plot: not supported yet");
    return 2;
}
