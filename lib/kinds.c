/* kinds.c - the tables of kinds.h. Rows in enum order; a NULL name ends each table. */
#include "kinds.h"

#include <stdio.h>
#include <string.h>

/* name, time_varying, pow2, dense, takes_p, takes_path, takes_peers, machines, phases,
 * nestable, doubly (hierarchical: time-varying as its outer graph) */
const eg_graph_info eg_graph_kinds[] = {
    [EG_GRAPH_RING] = {"ring", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_TORUS] = {"torus", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_GRID] = {"grid", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_EXP] = {"exp", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_SYM_EXP] = {"sym_exp", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_ONEPEER_EXP] = {"onepeer_exp", 1, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_HYPERCUBE] = {"hypercube", 0, 1, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_ONEPEER_HYPERCUBE] = {"onepeer_hypercube", 1, 1, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_FULL] = {"full", 0, 0, 1, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_STAR] = {"star", 0, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_ERDOS_RENYI] = {"erdos_renyi", 0, 0, 1, 1, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_RANDOM_MATCH] = {"random_match", 1, 0, 0, 0, 0, 0, 0, 0, 1, 1},
    [EG_GRAPH_FILE] = {"file", 0, 0, 1, 0, 1, 0, 0, 0, 1, 0},
    [EG_GRAPH_BASE] = {"base", 1, 0, 0, 0, 0, 1, 0, 0, 1, 1},
    [EG_GRAPH_HIERARCHICAL] = {"hierarchical", 0, 0, 0, 0, 0, 0, 1, 0, 0, 1},
    [EG_GRAPH_SCHEDULE] = {"schedule", 1, 0, 0, 0, 0, 0, 0, 1, 0, 0},
    [EG_GRAPH_RANDOM_PEERS] = {"random_peers", 1, 0, 0, 0, 0, 1, 0, 0, 1, 0},
    [EG_GRAPH_INNER_OUTER_EXP2] = {"inner_outer_exp2", 1, 0, 0, 0, 0, 0, 1, 0, 0, 1},
    {NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

/* name, momentum, vectors */
const eg_algo_info eg_algo_kinds[] = {
    [EG_ALGO_PSGD] = {"psgd", 1, 0},
    [EG_ALGO_DSGD] = {"dsgd", 0, 1},
    [EG_ALGO_DMSGD] = {"dmsgd", 1, 1},
    [EG_ALGO_QG_DMSGD] = {"qg_dmsgd", 1, 1},
    [EG_ALGO_GT] = {"gt", 0, 2},
    [EG_ALGO_ED] = {"ed", 0, 1},
    [EG_ALGO_GOSSIP] = {"gossip", 0, 1},
    [EG_ALGO_SGP] = {"sgp", 1, 1},
    [EG_ALGO_CHOCO] = {"choco", 1, 1},
    {NULL, 0, 0},
};

/* name, takes_ratio, takes_levels */
const eg_compress_info eg_compress_kinds[] = {
    [EG_COMPRESS_TOP_K] = {"top_k", 1, 0},
    [EG_COMPRESS_RAND_K] = {"rand_k", 1, 0},
    [EG_COMPRESS_QSGD] = {"qsgd", 0, 1},
    [EG_COMPRESS_SIGN] = {"sign", 0, 0},
    [EG_COMPRESS_BF16] = {"bf16", 0, 0},
    {NULL, 0, 0},
};

static const char *const logreg_keys[] = {"name", "init", NULL};
static const char *const mlp_keys[] = {"name", "hidden", "init", NULL};
static const char *const cnn_keys[] = {"name", "hidden", "channels", "kernel", "norm", "groups",
                                       "norm_stats", "init", NULL};
static const char *const resnet_keys[] = {"name", "depth", "width", "norm", "groups", "norm_stats",
                                          "init", NULL};

/* name, conv, keys */
const eg_model_info eg_model_kinds[] = {
    [EG_MODEL_LOGREG] = {"logreg", 0, logreg_keys},
    [EG_MODEL_MLP] = {"mlp", 0, mlp_keys},
    [EG_MODEL_CNN] = {"cnn", 1, cnn_keys},
    [EG_MODEL_RESNET] = {"resnet", 1, resnet_keys},
    {NULL, 0, NULL},
};

const eg_name_info eg_sched_kinds[] = {
    [EG_SCHED_CONSTANT] = {"constant"},
    [EG_SCHED_STEP] = {"step"},
    [EG_SCHED_COSINE] = {"cosine"},
    {NULL},
};

/* name, format, needs_path, named, images, classes, fallback, path_is */
const eg_data_info eg_data_kinds[] = {
    [EG_DATA_MNIST] = {"mnist", EG_DFMT_IDX, 0, 1, 1, 0, NULL, "directory of idx files"},
    [EG_DATA_FASHION_MNIST] = {"fashion_mnist", EG_DFMT_IDX, 0, 1, 1, 0,
                               "/usr/share/datasets/fashion-mnist", "directory of idx files"},
    [EG_DATA_DIGITS] = {"digits", EG_DFMT_DIGITS, 0, 1, 0, 0,
                        "/usr/lib/python3/dist-packages/sklearn/datasets/data",
                        "directory with digits.csv.gz"},
    [EG_DATA_CIFAR10] = {"cifar10", EG_DFMT_CIFAR, 1, 0, 1, 10, NULL,
                         "directory of the binary version: data_batch_1.bin .. data_batch_5.bin, "
                         "test_batch.bin"},
    [EG_DATA_CIFAR100] = {"cifar100", EG_DFMT_CIFAR, 1, 0, 1, 100, NULL,
                          "directory of the binary version: train.bin, test.bin"},
    [EG_DATA_SYNTHETIC] = {"synthetic", EG_DFMT_SYNTH, 0, 0, 0, 0, NULL, NULL},
    [EG_DATA_IDX] = {"idx", EG_DFMT_IDX, 1, 0, 1, 0, NULL, "directory"},
    [EG_DATA_IMAGE_FOLDER] = {"image_folder", EG_DFMT_IMAGES, 1, 0, 1, 0, NULL, "directory"},
    [EG_DATA_CSV] = {"csv", EG_DFMT_CSV, 1, 0, 0, 0, NULL,
                     "directory with train.csv and test.csv, or one .csv file"},
    {NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

const eg_name_info eg_partition_kinds[] = {
    [EG_PART_IID] = {"iid"},
    [EG_PART_DIRICHLET] = {"dirichlet"},
    [EG_PART_SORTED] = {"sorted"},
    {NULL},
};

const eg_name_info eg_cache_kinds[] = {
    [EG_CACHE_MEMORY] = {"memory"},
    [EG_CACHE_STREAM] = {"stream"},
    {NULL},
};

const char *const eg_norm_names[] = {"none", "batch", "group", NULL};
const char *const eg_precision_names[] = {"f32", "bf16", NULL};

static const char *row_name(const void *table, size_t stride, int i)
{
    return *(const char *const *)((const char *)table + (size_t)i * stride);
}

int eg_kind_find(const void *table, size_t stride, const char *name)
{
    for (int i = 0; row_name(table, stride, i); i++)
        if (!strcmp(row_name(table, stride, i), name))
            return i;
    return -1;
}

void eg_kind_list(const void *table, size_t stride, char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; row_name(table, stride, i) && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", row_name(table, stride, i));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}
