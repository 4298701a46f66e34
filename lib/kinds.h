/* kinds.h - the named kinds a spec chooses from: one enum and one table per kind.
 *
 * Each table lists its kinds in enum order as rows {name, facts...} and ends with a row whose
 * name is NULL. The spec parser (spec.c) maps names to enums with eg_kind_find; nothing else
 * compares names. Adding a graph, an algorithm, a model or a dataset is one enum value, one
 * table row (kinds.c) and its implementation.
 */
#ifndef EG_KINDS_H
#define EG_KINDS_H

#include <stddef.h>

/* graphs (docs/graphs.md#definitions-and-weights) */
typedef enum {
    EG_GRAPH_RING,
    EG_GRAPH_TORUS,
    EG_GRAPH_GRID,
    EG_GRAPH_EXP,
    EG_GRAPH_SYM_EXP,
    EG_GRAPH_ONEPEER_EXP,
    EG_GRAPH_HYPERCUBE,
    EG_GRAPH_ONEPEER_HYPERCUBE,
    EG_GRAPH_FULL,
    EG_GRAPH_STAR,
    EG_GRAPH_ERDOS_RENYI,
    EG_GRAPH_RANDOM_MATCH,
    EG_GRAPH_FILE,
    EG_GRAPH_BASE,          /* Base-(k+1) (Takezawa et al., NeurIPS 2023) */
    EG_GRAPH_HIERARCHICAL,  /* machines of `local` nodes, an outer graph between them */
    EG_GRAPH_SCHEDULE,      /* phases of graphs */
    EG_GRAPH_RANDOM_PEERS,  /* s fresh random out-peers per node and iteration */
    EG_GRAPH_INNER_OUTER_EXP2, /* Bluefog's inner-outer one-peer exponential schedule over
                                * machines of `local` nodes */
} eg_graph_kind;

typedef struct eg_graph_info {
    const char *name;
    int time_varying; /* W(k) depends on k */
    int pow2;         /* needs a power-of-two node count */
    int dense;        /* built from a dense n x n matrix: node count limited (spec.c) */
    int takes_p;      /* graph.p applies */
    int takes_path;   /* graph.path applies (and is required) */
    int takes_peers;  /* graph.peers applies (default 1) */
    int machines;     /* graph.local applies (required): it defines machines; hierarchical
                       * also takes graph.outer (required) */
    int phases;       /* graph.phases applies (required) */
    int nestable;     /* may be a hierarchical graph's outer graph (a schedule's phase may be
                       * any graph but a schedule) */
    int doubly;       /* every W(k) is column-stochastic too (file: when its columns are) */
} eg_graph_info;
extern const eg_graph_info eg_graph_kinds[];

/* algorithms (docs/algorithms.md#updates) */
typedef enum {
    EG_ALGO_PSGD,
    EG_ALGO_DSGD,
    EG_ALGO_DMSGD,
    EG_ALGO_QG_DMSGD,
    EG_ALGO_GT,
    EG_ALGO_ED,
    EG_ALGO_GOSSIP, /* extension: pure averaging x <- W x, no gradients ("learning rate 0") */
    EG_ALGO_SGP,    /* stochastic gradient push (push-sum, column-stochastic weights) */
    EG_ALGO_CHOCO,  /* CHOCO-SGD: compressed gossip of x - xhat */
    EG_ALGO_COUNT
} eg_algo_kind;

typedef struct eg_algo_info {
    const char *name;
    int momentum;     /* keeps a momentum buffer (momentum and nesterov apply; default 0.9) */
    int vectors;      /* vectors each node sends per gossip (0: all-reduce, no graph) */
} eg_algo_info;
extern const eg_algo_info eg_algo_kinds[];

/* choco's compressors (algorithm.compress) */
typedef enum {
    EG_COMPRESS_TOP_K,  /* the ratio * dim largest magnitudes (values and int32 indices) */
    EG_COMPRESS_RAND_K, /* ratio * dim entries drawn per (seed, iteration, node) */
    EG_COMPRESS_QSGD,   /* stochastic quantisation to `levels` levels, one float norm */
    EG_COMPRESS_SIGN,   /* ||v||_1 / dim * sign(v): one bit per entry, one float */
    EG_COMPRESS_BF16,   /* rounded to bfloat16: two bytes per entry */
    EG_COMPRESS_NONE    /* not given (an error for choco) */
} eg_compress_kind;

typedef struct eg_compress_info {
    const char *name;
    int takes_ratio;  /* compress.ratio applies (and defaults to 0.01) */
    int takes_levels; /* compress.levels applies (and defaults to 16) */
} eg_compress_info;
extern const eg_compress_info eg_compress_kinds[];

/* models (docs/spec.md#model) */
typedef enum { EG_MODEL_LOGREG, EG_MODEL_MLP, EG_MODEL_CNN, EG_MODEL_RESNET } eg_model_kind;

typedef struct eg_model_info {
    const char *name;
    int conv;                /* image models: takes model.norm (and groups, norm_stats) */
    const char *const *keys; /* the keys its model: mapping takes, NULL-terminated */
} eg_model_info;
extern const eg_model_info eg_model_kinds[];

/* learning-rate schedules */
typedef enum { EG_SCHED_CONSTANT, EG_SCHED_STEP, EG_SCHED_COSINE } eg_sched_kind;

typedef struct eg_name_info {
    const char *name;
} eg_name_info;
extern const eg_name_info eg_sched_kinds[];

/* datasets (data.name; docs/spec.md#datasets). png_folder is accepted by the parser as the old
 * name of image_folder and stored as EG_DATA_IMAGE_FOLDER. */
typedef enum {
    EG_DATA_MNIST,
    EG_DATA_FASHION_MNIST,
    EG_DATA_DIGITS,
    EG_DATA_CIFAR10,
    EG_DATA_CIFAR100,
    EG_DATA_SYNTHETIC,
    EG_DATA_IDX,
    EG_DATA_IMAGE_FOLDER,
    EG_DATA_CSV,
} eg_data_kind;

/* how a dataset's files are read (lib/data_*.c) */
typedef enum {
    EG_DFMT_IDX,    /* data_idx.c: idx files, raw or gzip */
    EG_DFMT_DIGITS, /* data_csv.c: scikit-learn's digits.csv(.gz) */
    EG_DFMT_CIFAR,  /* data_cifar.c: the binary version */
    EG_DFMT_IMAGES, /* data_image.c: a folder of PNG and JPEG files */
    EG_DFMT_CSV,    /* data_csv.c */
    EG_DFMT_SYNTH,  /* data_synth.c: generated from the seed */
} eg_data_format;

typedef struct eg_data_info {
    const char *name;
    eg_data_format format;
    int needs_path;        /* data.path is required */
    int named;             /* without data.path, looked up by name in the data directories
                              ($EXPGRAPH_DATA/<name>, the build's data/cache/<name>, fallback) */
    int images;            /* samples are 8-bit images (kept as bytes, normalised per batch) */
    int classes;           /* the format's fixed class count (cifar: 10, 100); 0: from the files */
    const char *fallback;  /* named: a last directory to look in, or NULL */
    const char *path_is;   /* what data.path must be, for messages */
} eg_data_info;
extern const eg_data_info eg_data_kinds[];

/* how the training set is split over nodes (data.partition) */
typedef enum { EG_PART_IID, EG_PART_DIRICHLET, EG_PART_SORTED } eg_partition_kind;
extern const eg_name_info eg_partition_kinds[];

/* where image_folder samples live during a run (data.cache) */
typedef enum { EG_CACHE_MEMORY, EG_CACHE_STREAM } eg_data_cache;
extern const eg_name_info eg_cache_kinds[];

/* normalisation layers and layer precision (model.norm, train.precision): names in enum
 * order, NULL-terminated */
typedef enum { EG_NORM_NONE, EG_NORM_BATCH, EG_NORM_GROUP } eg_norm_kind;
typedef enum { EG_PREC_F32, EG_PREC_BF16 } eg_precision;
extern const char *const eg_norm_names[];      /* none, batch, group */
extern const char *const eg_precision_names[]; /* f32, bf16 */

/* Row index of `name` in a kind table (rows of `stride` bytes, each starting with its
 * const char *name, a NULL name last), or -1 when it has no such row. */
int eg_kind_find(const void *table, size_t stride, const char *name);
#define EG_KIND_FIND(table, name) eg_kind_find((table), sizeof(table)[0], (name))
/* The table's names as "a, b, c" into buf (cut to len). */
void eg_kind_list(const void *table, size_t stride, char *buf, size_t len);
#define EG_KIND_LIST(table, buf, len) eg_kind_list((table), sizeof(table)[0], (buf), (len))

#endif
