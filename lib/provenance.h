/* provenance.h - where a run's numbers come from: the build (version, git commit, build type,
 * compiler and flags), the libraries' versions (libyaml, Open MPI, oneDNN, OpenBLAS, libpng,
 * libjpeg-turbo, cairo), each host's CPU model and cores, the kernels oneDNN dispatches there
 * for f32 and bf16 convolutions, and the environment variables that change kernels or threads.
 *
 * `expgraph info` prints these facts (eg_prov_collect + eg_prov_write). A run records them
 * once in its directory's run_info.yaml (eg_prov_run_*: every rank's host, CPU and kernels
 * gathered), the key ones as summary.csv columns (expgraph_version, commit, dnnl_isa, cpu,
 * hosts: schema.h), and `--resume` compares the record with the machine it continues on.
 * Nothing here needs MPI to be initialised except eg_prov_run_init (collective) and nothing
 * prints: warnings come back as text for the caller to show.
 */
#ifndef EG_PROVENANCE_H
#define EG_PROVENANCE_H

#include "common.h"

struct eg_comm;

/* One rank's machine facts (text only, so that ranks can exchange them as bytes). */
typedef struct eg_prov_host {
    char host[128];     /* gethostname */
    char cpu[160];      /* "model name" of /proc/cpuinfo, "unknown" when absent */
    char cores[16];     /* online processors, as text */
    char isa_f32[96];   /* oneDNN's implementation of a 3x3 convolution: "brgconv:avx512_core" */
    char isa_bf16[96];  /* the same in bf16; "unavailable" when oneDNN has none on this CPU */
} eg_prov_host;

/* The facts of this process (build, libraries, environment, its host). */
typedef struct eg_prov {
    char version[32], commit[64], build_type[32], compiler[96], flags[160];
    char libyaml[32], mpi[160], onednn[64], openblas[192], openblas_core[48], libpng[32],
        libjpeg[48], cairo[32];
    char env_coretype[64], env_max_isa[64], env_threads[64]; /* "" when unset */
    eg_prov_host me;
} eg_prov;

/* Fills p with this process's facts. Never fails: an item that cannot be found reads
 * "unknown" (the commit outside a git checkout at build time, a CPU without "model name").
 * Creates a oneDNN CPU engine and two convolution descriptors (a few milliseconds); does not
 * need MPI. */
void eg_prov_collect(eg_prov *p);

/* Writes p as YAML (sections expgraph, libraries, environment, machine) to f: what
 * `expgraph info` prints. Returns 0, or -1 when f is in error. */
int eg_prov_write(FILE *f, const eg_prov *p);

/* ---- a run's record ---- */

typedef struct eg_prov_run eg_prov_run;

/* Collects this rank's facts and gathers every rank's host, CPU and kernels (in rank
 * order). bf16: the run computes in bf16 (its dnnl_isa is the bf16 kernel). Collective over
 * c. Returns EG_OK, or EG_ERUN (out of memory, MPI); *out is NULL on error. */
int eg_prov_run_init(eg_prov_run **out, struct eg_comm *c, int bf16, eg_err *err);
void eg_prov_run_free(eg_prov_run *pr); /* safe on NULL */

/* 1 when the ranks' hosts dispatch different oneDNN kernels (for the run's precision), with
 * msg naming each kernel and its hosts and ranks; 0 (msg "") otherwise. */
int eg_prov_run_mixed(const eg_prov_run *pr, char *msg, size_t len);

/* Writes DIR/run_info.yaml (temporary file + rename): the facts, every host with its ranks,
 * and the run's ranks and threads. Not collective (rank 0 calls it). EG_ERUN on I/O errors. */
int eg_prov_run_write(const eg_prov_run *pr, const char *dir, int ranks, int threads,
                      eg_err *err);

/* A resumed run (rank 0): compares DIR/run_info.yaml with the current facts. Writes to
 * changes what differs in the build, the libraries, the CPU, the kernels or
 * OPENBLAS_CORETYPE / ONEDNN_MAX_CPU_ISA ("onednn 2.6.3 -> 3.1; dnnl_isa_f32
 * brgconv:avx512_core -> jit:avx2") and returns the number of differences; when there are
 * some, appends an entry (iteration, ranks, threads, changes) to the record's `resumed:`
 * list (the record otherwise keeps the start's facts). Host names, cores, Open MPI, libyaml,
 * cairo and EXPGRAPH_THREADS are not compared: they do not change the numbers. A missing
 * record (a run started by an older expgraph) is written now and counts as no difference; an
 * unreadable one is written again and counts as one (changes says so). The summary values
 * (eg_prov_run_summary) then span the record and now ("a | b" where they differ). Returns
 * -1 (err set, EG_ERUN) only when the record cannot be written. */
int eg_prov_run_resume(eg_prov_run *pr, const char *dir, long iter, int ranks, int threads,
                       char *changes, size_t len, eg_err *err);

/* The summary.csv values (schema.h, EG_SUMMARY_ENV_COLUMNS): expgraph version, commit, the
 * run's oneDNN kernel and CPU model (distinct values over hosts, and over the record of a
 * resumed run, joined with " | "), number of distinct hosts. Pointers into pr. */
typedef struct eg_prov_summary {
    const char *version, *commit, *dnnl_isa, *cpu;
    int hosts;
} eg_prov_summary;
eg_prov_summary eg_prov_run_summary(const eg_prov_run *pr);

#endif
