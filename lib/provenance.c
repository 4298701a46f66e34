/* provenance.c - the build, libraries, machine and kernels behind a run (see provenance.h). */
#include "provenance.h"

#include "comm.h"
#if defined(__has_include)
#if __has_include("eg_commit.h")
#include "eg_commit.h" /* EG_COMMIT, generated at build time (cmake/commit.cmake) */
#endif
#endif
#include "yamltree.h"

#include <cairo.h>
#include <cblas.h>
#include <jconfig.h>
#include <oneapi/dnnl/dnnl.h>
#include <png.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#ifndef EG_COMMIT /* built outside CMake (the fuzz harnesses) */
#define EG_COMMIT "unknown"
#endif
#ifndef EG_BUILD_TYPE
#define EG_BUILD_TYPE "unknown"
#endif
#ifndef EG_BUILD_FLAGS
#define EG_BUILD_FLAGS ""
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- this process's facts ---------------------------------------------------------- */

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src && *src ? src : "unknown");
}

/* the first "model name" (x86) or "Model" / "cpu model" line of /proc/cpuinfo */
static void cpu_model(char *out, size_t len)
{
    static const char *keys[] = {"model name", "Model", "cpu model", "Processor"};
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512], best[512] = "";
    int rank = 99;
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        for (int k = 0; k < (int)(sizeof keys / sizeof keys[0]) && k < rank; k++)
            if (!strncmp(line, keys[k], strlen(keys[k])) &&
                strspn(line + strlen(keys[k]), " \t") == (size_t)(colon - line) - strlen(keys[k])) {
                char *v = colon + 1;
                v += strspn(v, " \t");
                v[strcspn(v, "\r\n")] = 0;
                if (*v) {
                    snprintf(best, sizeof best, "%s", v);
                    rank = k;
                }
            }
    }
    if (f)
        fclose(f);
    copy(out, len, best);
}

/* The implementation oneDNN picks for a 3x3 convolution (batch 32, 32 -> 64 channels,
 * 14 x 14, NHWC activations as nn.c lays them out) in data type dt: "brgconv:avx512_core". */
static void conv_impl(dnnl_engine_t eng, dnnl_data_type_t dt, char *out, size_t len)
{
    dnnl_memory_desc_t src, w, b, dst;
    dnnl_dims_t sd = {32, 32, 14, 14}, wd = {64, 32, 3, 3}, bd = {64}, dd = {32, 64, 14, 14};
    dnnl_dims_t st = {1, 1}, pad = {1, 1};
    dnnl_convolution_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    snprintf(out, len, "unavailable");
    if (!eng || dnnl_memory_desc_init_by_tag(&src, 4, sd, dt, dnnl_nhwc) ||
        dnnl_memory_desc_init_by_tag(&w, 4, wd, dt, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&dst, 4, dd, dt, dnnl_nhwc) ||
        dnnl_convolution_forward_desc_init(&d, dnnl_forward_training, dnnl_convolution_direct,
                                           &src, &w, &b, &dst, st, pad, pad) ||
        dnnl_primitive_desc_create(&pd, &d, NULL, eng, NULL))
        return;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(out, len, "%s", impl);
    dnnl_primitive_desc_destroy(pd);
}

static void env_text(char *out, size_t len, const char *name)
{
    const char *v = getenv(name);
    snprintf(out, len, "%s", v ? v : "");
}

void eg_prov_collect(eg_prov *p)
{
    memset(p, 0, sizeof *p);
    copy(p->version, sizeof p->version, EG_VERSION);
    copy(p->commit, sizeof p->commit, EG_COMMIT);
    copy(p->build_type, sizeof p->build_type, EG_BUILD_TYPE);
#if defined(__clang__)
    copy(p->compiler, sizeof p->compiler, "clang " __clang_version__);
#elif defined(__GNUC__)
    copy(p->compiler, sizeof p->compiler, "GCC " __VERSION__);
#else
    copy(p->compiler, sizeof p->compiler, "unknown");
#endif
    snprintf(p->flags, sizeof p->flags, "%s", EG_BUILD_FLAGS);
    copy(p->libyaml, sizeof p->libyaml, yaml_get_version_string());
    eg_comm_library_version(p->mpi, sizeof p->mpi);
    const dnnl_version_t *dv = dnnl_version();
    snprintf(p->onednn, sizeof p->onednn, "%d.%d.%d", dv->major, dv->minor, dv->patch);
    char *cfg = openblas_get_config(), *core = openblas_get_corename();
    copy(p->openblas, sizeof p->openblas, cfg);
    p->openblas[strcspn(p->openblas, "\r\n")] = 0;
    size_t ol = strlen(p->openblas);
    while (ol > 0 && p->openblas[ol - 1] == ' ')
        p->openblas[--ol] = 0;
    copy(p->openblas_core, sizeof p->openblas_core, core);
    copy(p->libpng, sizeof p->libpng, png_get_libpng_ver(NULL));
#ifdef LIBJPEG_TURBO_VERSION
    copy(p->libjpeg, sizeof p->libjpeg, "libjpeg-turbo " STR(LIBJPEG_TURBO_VERSION) " (libjpeg API " STR(JPEG_LIB_VERSION) ")");
#else
    copy(p->libjpeg, sizeof p->libjpeg, "libjpeg API " STR(JPEG_LIB_VERSION));
#endif
    copy(p->cairo, sizeof p->cairo, cairo_version_string());
    env_text(p->env_coretype, sizeof p->env_coretype, "OPENBLAS_CORETYPE");
    env_text(p->env_max_isa, sizeof p->env_max_isa, "ONEDNN_MAX_CPU_ISA");
    if (!p->env_max_isa[0])
        env_text(p->env_max_isa, sizeof p->env_max_isa, "DNNL_MAX_CPU_ISA");
    env_text(p->env_threads, sizeof p->env_threads, "EXPGRAPH_THREADS");

    eg_prov_host *h = &p->me;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1))
        host[0] = 0;
    copy(h->host, sizeof h->host, host);
    cpu_model(h->cpu, sizeof h->cpu);
    snprintf(h->cores, sizeof h->cores, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    dnnl_engine_t eng = NULL;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success)
        eng = NULL;
    conv_impl(eng, dnnl_f32, h->isa_f32, sizeof h->isa_f32);
    conv_impl(eng, dnnl_bf16, h->isa_bf16, sizeof h->isa_bf16);
    if (eng)
        dnnl_engine_destroy(eng);
}

/* ---- the facts as YAML ------------------------------------------------------------- */

/* One fact: its YAML section and key, where its value lives, and whether a change of it
 * between a run's start and a resume is worth a warning (it can change the numbers). */
typedef struct fact {
    const char *section, *key;
    size_t off; /* in eg_prov */
    int compare;
} fact;

#define F_(sec, key, field, cmp) {sec, key, offsetof(eg_prov, field), cmp}
static const fact FACTS[] = {
    F_("expgraph", "version", version, 1),
    F_("expgraph", "commit", commit, 1),
    F_("expgraph", "build_type", build_type, 1),
    F_("expgraph", "compiler", compiler, 1),
    F_("expgraph", "flags", flags, 1),
    F_("libraries", "libyaml", libyaml, 0),
    F_("libraries", "open_mpi", mpi, 0),
    F_("libraries", "onednn", onednn, 1),
    F_("libraries", "openblas", openblas, 1),
    F_("libraries", "openblas_core", openblas_core, 1),
    F_("libraries", "libpng", libpng, 1),
    F_("libraries", "libjpeg", libjpeg, 1),
    F_("libraries", "cairo", cairo, 0),
    F_("environment", "OPENBLAS_CORETYPE", env_coretype, 1),
    F_("environment", "ONEDNN_MAX_CPU_ISA", env_max_isa, 1),
    F_("environment", "EXPGRAPH_THREADS", env_threads, 0),
};
#undef F_
#define NFACTS ((int)(sizeof FACTS / sizeof FACTS[0]))

static const char *fact_value(const eg_prov *p, const fact *f)
{
    return (const char *)p + f->off;
}

/* "  key: value\n" with the value quoted when YAML needs it */
static void put_kv(FILE *f, const char *indent, const char *key, const char *value)
{
    char q[1024];
    eg_yaml_quote(value, q, sizeof q);
    fprintf(f, "%s%s: %s\n", indent, key, q);
}

static void write_facts(FILE *f, const eg_prov *p)
{
    const char *sec = NULL;
    for (int i = 0; i < NFACTS; i++) {
        if (!sec || strcmp(sec, FACTS[i].section))
            fprintf(f, "%s:\n", sec = FACTS[i].section);
        put_kv(f, "  ", FACTS[i].key, fact_value(p, &FACTS[i]));
    }
}

int eg_prov_write(FILE *f, const eg_prov *p)
{
    write_facts(f, p);
    fprintf(f, "machine:\n");
    put_kv(f, "  ", "host", p->me.host);
    put_kv(f, "  ", "cpu", p->me.cpu);
    put_kv(f, "  ", "cores", p->me.cores);
    put_kv(f, "  ", "dnnl_isa_f32", p->me.isa_f32);
    put_kv(f, "  ", "dnnl_isa_bf16", p->me.isa_bf16);
    return ferror(f) ? -1 : 0;
}

/* ---- a run's record ---------------------------------------------------------------- */

#define JOINED 512

struct eg_prov_run {
    eg_prov p;
    int bf16, nranks, nhosts;
    eg_prov_host *rank;                  /* nranks */
    /* distinct values over the hosts (and, after a resume, the record), " | "-joined */
    char cpu[JOINED], isa_f32[JOINED], isa_bf16[JOINED];
    char version[JOINED], commit[JOINED];
};

/* appends v to the " | "-joined list s unless it is there already */
static void join_distinct(char *s, size_t len, const char *v)
{
    size_t vl = strlen(v);
    for (const char *at = s; *at;) {
        const char *end = strstr(at, " | ");
        size_t l = end ? (size_t)(end - at) : strlen(at);
        if (l == vl && !strncmp(at, v, vl))
            return;
        if (!end)
            break;
        at = end + 3;
    }
    size_t o = strlen(s);
    snprintf(s + o, len - o, "%s%s", o ? " | " : "", v);
}

int eg_prov_run_init(eg_prov_run **out, eg_comm *c, int bf16, eg_err *err)
{
    *out = NULL;
    eg_prov_run *pr = eg_calloc(1, sizeof *pr, err);
    if (!pr)
        return EG_ERUN;
    eg_prov_collect(&pr->p);
    pr->bf16 = bf16;
    pr->nranks = eg_comm_size(c);
    pr->rank = eg_calloc((size_t)pr->nranks, sizeof *pr->rank, err);
    int rc = pr->rank ? eg_comm_gather_text(c, (const char *)&pr->p.me, sizeof pr->p.me,
                                            (char *)pr->rank, err)
                      : EG_ERUN;
    if (rc) {
        eg_prov_run_free(pr);
        return rc;
    }
    char hosts[4096] = "";
    for (int r = 0; r < pr->nranks; r++) {
        eg_prov_host *h = &pr->rank[r];
        /* the bytes came from another process: make every field a string */
        h->host[sizeof h->host - 1] = h->cpu[sizeof h->cpu - 1] = 0;
        h->cores[sizeof h->cores - 1] = h->isa_f32[sizeof h->isa_f32 - 1] = 0;
        h->isa_bf16[sizeof h->isa_bf16 - 1] = 0;
        size_t before = strlen(hosts);
        join_distinct(hosts, sizeof hosts, h->host);
        pr->nhosts += strlen(hosts) != before;
        join_distinct(pr->cpu, sizeof pr->cpu, h->cpu);
        join_distinct(pr->isa_f32, sizeof pr->isa_f32, h->isa_f32);
        join_distinct(pr->isa_bf16, sizeof pr->isa_bf16, h->isa_bf16);
    }
    snprintf(pr->version, sizeof pr->version, "%s", pr->p.version);
    snprintf(pr->commit, sizeof pr->commit, "%s", pr->p.commit);
    *out = pr;
    return EG_OK;
}

void eg_prov_run_free(eg_prov_run *pr)
{
    if (!pr)
        return;
    free(pr->rank);
    free(pr);
}

static const char *rank_isa(const eg_prov_run *pr, int r)
{
    return pr->bf16 ? pr->rank[r].isa_bf16 : pr->rank[r].isa_f32;
}

int eg_prov_run_mixed(const eg_prov_run *pr, char *msg, size_t len)
{
    if (len)
        msg[0] = 0;
    if (!strstr(pr->bf16 ? pr->isa_bf16 : pr->isa_f32, " | "))
        return 0;
    size_t o = (size_t)snprintf(msg, len, "the ranks dispatch different oneDNN %s kernels "
                                "(their CPUs or ONEDNN_MAX_CPU_ISA differ):", pr->bf16 ? "bf16" : "f32");
    /* each kernel, then each host running it with its ranks */
    for (int r = 0; r < pr->nranks && o < len; r++) {
        int seen = 0;
        for (int q = 0; q < r && !seen; q++)
            seen = !strcmp(rank_isa(pr, q), rank_isa(pr, r));
        if (seen)
            continue;
        o += (size_t)snprintf(msg + o, len - o, "%s %s on", r ? ";" : "", rank_isa(pr, r));
        for (int q = r; q < pr->nranks && o < len; q++) {
            if (strcmp(rank_isa(pr, q), rank_isa(pr, r)))
                continue;
            o += (size_t)snprintf(msg + o, len - o, " %s (rank %d)", pr->rank[q].host, q);
        }
    }
    if (o < len)
        snprintf(msg + o, len - o, "; the last digits of the numbers then depend on which "
                 "host each node lives on");
    return 1;
}

/* the record's text: the facts, the machine summary, the run, every host */
/* the same host with the same facts (ranks of one host may differ in their kernels when
 * ONEDNN_MAX_CPU_ISA is set per rank) */
static int same_host(const eg_prov_host *a, const eg_prov_host *b)
{
    return !strcmp(a->host, b->host) && !strcmp(a->cpu, b->cpu) && !strcmp(a->cores, b->cores) &&
           !strcmp(a->isa_f32, b->isa_f32) && !strcmp(a->isa_bf16, b->isa_bf16);
}

typedef struct record_ctx {
    const eg_prov_run *pr;
    int ranks, threads;
} record_ctx;

static int record_fill(FILE *f, void *ud)
{
    const record_ctx *rc = ud;
    const eg_prov_run *pr = rc->pr;
    fprintf(f, "# where this run's numbers come from (written by expgraph run; expgraph info "
               "prints the same facts)\n");
    write_facts(f, &pr->p);
    fprintf(f, "machine:\n");
    fprintf(f, "  hosts: %d\n", pr->nhosts);
    put_kv(f, "  ", "cpu", pr->cpu);
    put_kv(f, "  ", "dnnl_isa_f32", pr->isa_f32);
    put_kv(f, "  ", "dnnl_isa_bf16", pr->isa_bf16);
    put_kv(f, "  ", "dnnl_isa", pr->bf16 ? pr->isa_bf16 : pr->isa_f32);
    fprintf(f, "run:\n  ranks: %d\n  threads: %d\n  precision: %s\n", rc->ranks, rc->threads,
            pr->bf16 ? "bf16" : "f32");
    fprintf(f, "hosts:\n"); /* one entry per host, or per group of its ranks with one CPU and kernels */
    for (int r = 0; r < pr->nranks; r++) {
        int first = 1;
        for (int q = 0; q < r && first; q++)
            first = !same_host(&pr->rank[q], &pr->rank[r]);
        if (!first)
            continue;
        const eg_prov_host *h = &pr->rank[r];
        put_kv(f, "  - ", "host", h->host);
        fprintf(f, "    ranks: [");
        for (int q = r, n = 0; q < pr->nranks; q++)
            if (same_host(&pr->rank[q], h))
                fprintf(f, "%s%d", n++ ? ", " : "", q);
        fprintf(f, "]\n");
        put_kv(f, "    ", "cpu", h->cpu);
        put_kv(f, "    ", "cores", h->cores);
        put_kv(f, "    ", "dnnl_isa_f32", h->isa_f32);
        put_kv(f, "    ", "dnnl_isa_bf16", h->isa_bf16);
    }
    return ferror(f) ? -1 : 0;
}

static void record_path(char *path, size_t len, const char *dir)
{
    snprintf(path, len, "%s/run_info.yaml", dir);
}

int eg_prov_run_write(const eg_prov_run *pr, const char *dir, int ranks, int threads,
                      eg_err *err)
{
    char path[EG_PATH_MAX + 32];
    record_path(path, sizeof path, dir);
    record_ctx ud = {pr, ranks, threads};
    return eg_write_atomic(path, "", 0, record_fill, &ud, err);
}

/* the scalar at section.key of the record, or NULL */
static const char *record_get(const eg_ynode *doc, const char *section, const char *key)
{
    const eg_ynode *s = eg_ymap_get(doc, section, NULL);
    const eg_ynode *v = s && s->kind == EG_Y_MAP ? eg_ymap_get(s, key, NULL) : NULL;
    return v && v->kind == EG_Y_SCALAR ? (v->str ? v->str : "") : NULL;
}

/* appends "what old -> new" to changes when they differ; returns 1 then */
static int differ(char *changes, size_t len, const char *what, const char *old, const char *now)
{
    if (!old || !strcmp(old, now))
        return 0;
    size_t o = strlen(changes);
    snprintf(changes + o, len - o, "%s%s %s -> %s", o ? "; " : "", what,
             *old ? old : "(unset)", *now ? now : "(unset)");
    return 1;
}

int eg_prov_run_resume(eg_prov_run *pr, const char *dir, long iter, int ranks, int threads,
                       char *changes, size_t len, eg_err *err)
{
    char path[EG_PATH_MAX + 32];
    record_path(path, sizeof path, dir);
    if (len)
        changes[0] = 0;
    if (access(path, F_OK) != 0) /* started by an expgraph without records: record now */
        return eg_prov_run_write(pr, dir, ranks, threads, err) ? -1 : 0;
    eg_err perr = {0};
    eg_ynode *doc = eg_yaml_parse_file(path, &perr);
    if (!doc) {
        snprintf(changes, len, "run_info.yaml could not be read (%s); recorded again", perr.msg);
        return eg_prov_run_write(pr, dir, ranks, threads, err) ? -1 : 1;
    }
    int n = 0;
    for (int i = 0; i < NFACTS; i++)
        if (FACTS[i].compare)
            n += differ(changes, len, FACTS[i].key, record_get(doc, FACTS[i].section, FACTS[i].key),
                        fact_value(&pr->p, &FACTS[i]));
    const char *old_cpu = record_get(doc, "machine", "cpu");
    const char *old_f32 = record_get(doc, "machine", "dnnl_isa_f32");
    const char *old_bf16 = record_get(doc, "machine", "dnnl_isa_bf16");
    n += differ(changes, len, "cpu", old_cpu, pr->cpu);
    n += differ(changes, len, "dnnl_isa_f32", old_f32, pr->isa_f32);
    n += differ(changes, len, "dnnl_isa_bf16", old_bf16, pr->isa_bf16);
    /* the summary spans the record and now (the record's values first) */
    const char *old_version = record_get(doc, "expgraph", "version");
    const char *old_commit = record_get(doc, "expgraph", "commit");
    struct {
        char *dst;
        const char *old;
    } span[] = {{pr->cpu, old_cpu}, {pr->isa_f32, old_f32}, {pr->isa_bf16, old_bf16},
                {pr->version, old_version}, {pr->commit, old_commit}};
    for (size_t k = 0; k < sizeof span / sizeof span[0]; k++)
        if (span[k].old && strcmp(span[k].old, span[k].dst)) {
            char now[JOINED], both[JOINED];
            snprintf(now, sizeof now, "%s", span[k].dst);
            snprintf(both, sizeof both, "%s", span[k].old);
            /* each of now's values after the record's */
            for (char *at = now, *end; at; at = end ? end + 3 : NULL) {
                if ((end = strstr(at, " | ")))
                    *end = 0;
                join_distinct(both, sizeof both, at);
            }
            snprintf(span[k].dst, JOINED, "%s", both);
        }
    const char *old_hosts = record_get(doc, "machine", "hosts");
    long oh = 0;
    if (old_hosts && !eg_parse_long(old_hosts, &oh) && oh > pr->nhosts && oh < 1 << 20)
        pr->nhosts = (int)oh;
    int had_list = eg_ymap_get(doc, "resumed", NULL) != NULL;
    eg_ynode_free(doc);
    if (!n)
        return 0;
    /* the record keeps the start's facts; each resume that changed something is added */
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t tl = 0;
    FILE *m = f ? open_memstream(&text, &tl) : NULL;
    int c, last = '\n';
    while (m && (c = fgetc(f)) != EOF)
        fputc(last = c, m);
    int bad = !f || !m || ferror(f);
    if (f)
        fclose(f);
    if (m) {
        if (last != '\n')
            fputc('\n', m);
        if (!had_list)
            fputs("resumed:\n", m);
        char q[2048];
        eg_yaml_quote(changes, q, sizeof q);
        fprintf(m, "  - iter: %ld\n    ranks: %d\n    threads: %d\n    changed: %s\n", iter,
                ranks, threads, q);
        bad |= ferror(m) != 0;
        bad |= fclose(m) != 0;
    }
    int rc = bad ? eg_err_set(err, EG_ERUN, "cannot read %s to add the resume", path)
                 : eg_write_text_atomic(path, "", 0, text, err);
    free(text);
    return rc ? -1 : n;
}

eg_prov_summary eg_prov_run_summary(const eg_prov_run *pr)
{
    eg_prov_summary s = {pr->version, pr->commit, pr->bf16 ? pr->isa_bf16 : pr->isa_f32,
                         pr->cpu, pr->nhosts};
    return s;
}
