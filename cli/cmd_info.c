/* cmd_info.c - `expgraph info` (and `expgraph --version --verbose`): the build, the
 * libraries, the CPU and the kernels oneDNN dispatches on this machine, as YAML - the facts
 * every run records in its run_info.yaml (provenance.h). Does not initialise MPI.
 *
 *   expgraph info
 */
#include "commands.h"

#include "provenance.h"

#include <stdio.h>
#include <string.h>

static void info_usage(FILE *f)
{
    fprintf(f,
            "usage: expgraph info\n"
            "\n"
            "Prints, as YAML, where the numbers of a run made here would come from:\n"
            "  expgraph     version, git commit (\"-dirty\": built with uncommitted changes;\n"
            "               \"unknown\": not built from a git checkout), build type, compiler\n"
            "               and flags\n"
            "  libraries    libyaml, Open MPI, oneDNN, OpenBLAS (its configuration and the\n"
            "               core it runs as), libpng, libjpeg-turbo, cairo\n"
            "  environment  OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA, EXPGRAPH_THREADS (\"\": unset)\n"
            "  machine      host, CPU model, cores, and the kernel oneDNN dispatches for a 3x3\n"
            "               convolution in f32 and in bf16 (dnnl_isa_f32, dnnl_isa_bf16, e.g.\n"
            "               brgconv:avx512_core_bf16; \"unavailable\": none on this CPU)\n"
            "\n"
            "Every run writes the same facts for each of its hosts into DIR/run_info.yaml, and\n"
            "the key ones into summary.csv (expgraph_version, commit, dnnl_isa, cpu, hosts),\n"
            "which `expgraph table --rows dnnl_isa` can group by. `run --resume` warns when\n"
            "the build, the libraries, the CPU or the kernels differ from the record.\n"
            "\n"
            "options:\n"
            "--help        this text\n"
            "\n"
            "Also: expgraph --version --verbose.\n"
            "Exit status: 0 ok; 1 stdout cannot be written; 2 bad command line.\n");
}

int eg_cmd_info(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            info_usage(stdout);
            return 0;
        }
        eg_cli_error("info: unexpected argument '%s' (see expgraph info --help)", argv[i]);
        return 2;
    }
    eg_prov p;
    eg_prov_collect(&p);
    int bad = eg_prov_write(stdout, &p) != 0;
    if (fflush(stdout) || bad) {
        eg_cli_error("info: cannot write to stdout");
        return 1;
    }
    return 0;
}
