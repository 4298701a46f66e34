/* spec.h - the experiment spec: YAML (libyaml) -> eg_spec, defaults, --set overrides,
 * validation with FILE:LINE:COL messages, the resolved spec written back as YAML,
 * and sweep expansion. docs/spec.md#spec-keys is the contract. */
#ifndef EG_SPEC_H
#define EG_SPEC_H

#include "common.h"
#include "data.h"
#include "model.h"
#include "network.h"
#include "timemodel.h"
#include "topology.h"

#define EG_MAX_MILESTONES 16

typedef struct eg_algo_spec {
    eg_algo_kind kind;   /* kinds.h: psgd | dsgd | dmsgd | qg_dmsgd | gt | ed | gossip | sgp | choco */
    double momentum;     /* [0, 1), default 0.9 (0 for dsgd, gt, ed) */
    double weight_decay; /* >= 0, default 0 */
    int nesterov;        /* default false */
    int weight_decay_norm; /* default true; false: no decay on normalisation and bias params */
    int local_steps;     /* gossip algorithms: local updates between two exchanges, >= 1 (1) */
    long global_every;   /* an exact all-reduce average every T iterations, >= 0 (0: never) */
    eg_compress_kind compress; /* choco: the compressor (EG_COMPRESS_NONE for the others) */
    double ratio;        /* top_k, rand_k: fraction of entries sent, (0, 1] (0.01) */
    int levels;          /* qsgd: quantisation levels, >= 1 (16) */
    double consensus_step; /* choco's gamma, (0, 1] (0.5) */
} eg_algo_spec;

typedef struct eg_train_spec {
    double epochs;          /* default 1 when iterations is not given */
    long iterations;        /* 0 = derived from epochs */
    long log_every;         /* default 50 */
    long eval_every;        /* 0 = at every metrics row */
    long checkpoint_every;  /* default 500 (0 = only at the end) */
    eg_precision precision; /* f32 (default) | bf16; also copied into model.precision */
    int micro_batch;        /* a node's batch runs in micro-batches of this many samples,
                               shared by the rank's threads (default EG_MICRO_BATCH_DEFAULT) */
} eg_train_spec;

/* 32: oneDNN's convolutions on 32 samples run within a few % of their speed on 128 (bench/
 * README.md), and a node's batch of 64 or more then splits for 2+ threads; batches of 32 or
 * fewer (every shipped experiment but one) run whole, exactly as without micro-batches. */
#define EG_MICRO_BATCH_DEFAULT 32

typedef struct eg_lr_spec {
    double base;            /* > 0, default 0.1 */
    int scale_linear;       /* scale: none | linear */
    double warmup_epochs;   /* >= 0, default 0 */
    eg_sched_kind schedule; /* constant (default) | step | cosine */
    double milestones[EG_MAX_MILESTONES];
    int n_milestones;
    double gamma;           /* default 0.1 */
} eg_lr_spec;

typedef struct eg_spec {
    char file[EG_PATH_MAX]; /* where it was read from (for messages) */
    char name[128];
    uint64_t seed;          /* default 1 */
    int nodes;
    eg_graph_spec graph;
    eg_algo_spec algo;
    eg_model_spec model;
    int norm_stats_gossip;  /* model.norm_stats: local (default, 0) | gossip (1) */
    int init_independent;   /* model.init: same (default: every node starts from node 0's draw)
                               | independent (each node draws its own) */
    eg_data_spec data;
    eg_train_spec train;
    eg_lr_spec lr;
    eg_network_spec network; /* network: drop, offline (default 0: a perfect network) */
    eg_cluster_spec cluster; /* cluster: the modelled cluster (on = 0: none; timemodel.h) */
    char out_dir[EG_PATH_MAX]; /* output.dir, default runs/<name> */
    struct eg_ynode *tree;  /* the YAML tree after --set (owned; positions for messages) */
    eg_topo *topo;          /* the graph, built while validating (owned until taken) */
    char **labels;          /* "--set KEY=VALUE" labels the tree's nodes point at (owned) */
    int nlabels;
} eg_spec;

/* Reads FILE, applies the "KEY=VALUE" overrides in sets[0..nsets) (dotted paths; values
 * parsed as YAML scalars, flow sequences or flow mappings), fills defaults and validates
 * every key (types, ranges, names; graph fits nodes; data paths exist). Does not load the
 * dataset. On error returns EG_EINPUT with err->msg "FILE:LINE:COL: message naming the key"
 * (for --set values: "--set KEY: ..."). spec must be freed with eg_spec_free either way. */
int eg_spec_load(eg_spec *spec, const char *file, char *const *sets, int nsets, eg_err *err);
void eg_spec_free(eg_spec *spec);

/* Hands over the topology built while validating (the caller frees it); NULL once taken. */
eg_topo *eg_spec_take_topo(eg_spec *spec);

/* Location prefix "FILE:LINE:COL" of a dotted key in the loaded spec (or "FILE" when the key
 * is absent), for messages about problems found after loading (dataset too small ...). */
void eg_spec_where(const eg_spec *spec, const char *dotted, char *buf, size_t len);

/* The resolved spec as YAML text (malloc'ed, caller frees), every key with its value.
 * The sweep block is omitted. */
char *eg_spec_to_yaml(const eg_spec *spec, eg_err *err);
/* Stable 64-bit hash of the resolved spec (ranks compare it at start-up). */
uint64_t eg_spec_hash(const eg_spec *spec);

/* Parses a graph given as a name or a YAML flow mapping ("ring", "{name: erdos_renyi,
 * p: 0.2}") into g (defaults filled; not checked against a node count). */
int eg_spec_graph_from_text(const char *text, eg_graph_spec *g, eg_err *err);

/* Reads a cluster description (expgraph graph --cluster): a YAML file whose top-level
 * mapping has a cluster: key, or is itself the mapping (nodes_per_host, latency_us, ...).
 * EG_EINPUT with "FILE:LINE:COL: message naming the key" when it is bad. */
int eg_spec_cluster_from_file(const char *path, eg_cluster_spec *cl, eg_err *err);

/* ---- sweeps ---- */
typedef struct eg_sweep {
    int nkeys;
    char **keys;        /* dotted keys, in file order */
    int *nvals;         /* number of values per key */
    char ***vals;       /* vals[k][v]: the value as flow YAML text ("ring", "0.05", "{name: ...}") */
    long npoints;       /* product of nvals */
} eg_sweep;

/* Reads the sweep: block of FILE (after the overrides). EG_EINPUT when it is missing,
 * empty, or names a key the spec does not have. */
int eg_sweep_load(eg_sweep *sw, const char *file, char *const *sets, int nsets, eg_err *err);
void eg_sweep_free(eg_sweep *sw);
/* For point p (0 <= p < npoints, last key fastest): writes the "KEY=VALUE" strings into
 * sets[0..nkeys) (each malloc'ed) and the directory name "k1=v1,k2=v2" into dir. */
int eg_sweep_point(const eg_sweep *sw, long p, char **sets, char *dir, size_t dirlen);

#endif
