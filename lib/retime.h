/* retime.h - the same runs on another cluster: a run directory's time_model_s column as a
 * training run with a given cluster: section would have written it (expgraph table --cluster,
 * expgraph plot --cluster; docs/timemodel.md, "The same runs on another cluster").
 *
 * CONTRACT. time_model_s is a pure function of the run's spec and the cluster (timemodel.h):
 * W(k) of the graph, nodes, seed (stragglers, network.offline), data.batch_size, the method
 * (psgd, local_steps, global_every) and the message bytes (the model's parameter count, and
 * its running statistics with model.norm_stats: gossip). eg_retime_rundir reads the run's
 * own spec.yaml (eg_spec_load, as `expgraph run` reads a spec), puts the cluster in place of
 * the spec's (if it had one), builds the model for the dataset's shape and classes and the
 * graph with the run's iterations per epoch (the dataset's labels are read, as `run` does,
 * through eg_data_open and eg_partition_make; once per distinct data: section), and steps
 * eg_tmodel_step (eg_tmodel_cfg_from_spec, the same configuration run.c uses) up to the
 * iteration of each metrics.csv row. Each value is rounded through "%.9g", as metrics.csv
 * writes it, so the column equals, bit for bit, what the run with that cluster wrote.
 * Nothing is written to disk. Nothing prints.
 *
 * `samples_per_s: measured` is refused: a run measured its speed on the slowest rank's clock
 * at its first metrics row, which no file of the run directory keeps exactly. */
#ifndef EG_RETIME_H
#define EG_RETIME_H

#include "common.h"
#include "results.h"
#include "timemodel.h"

typedef struct eg_retime eg_retime;

/* Reads the cluster of FILE (a YAML file holding a cluster: mapping, or the bare mapping,
 * as `expgraph graph --cluster`: eg_spec_cluster_from_file). Errors (EG_EINPUT, message
 * "FILE:LINE:COL: ..." naming the key): a missing or unreadable file, no cluster mapping, a
 * bad value, samples_per_s: measured. EG_ERUN: out of memory. *out is NULL on error. */
int eg_retime_init(eg_retime **out, const char *file, eg_err *err);
void eg_retime_free(eg_retime *rt); /* safe on NULL */
/* the cluster read from the file */
const eg_cluster_spec *eg_retime_cluster(const eg_retime *rt);

/* Replaces (or adds, as the last column) r's metrics column time_model_s with the modelled
 * time of each row on the cluster, and sets r's cluster.* keys to the cluster's values (as
 * summary.csv would have them), in memory. Errors (EG_EINPUT, naming the file): r->dir has
 * no spec.yaml; the spec or its data cannot be read (FILE:LINE:COL messages of
 * eg_spec_load); metrics.csv has no iter value in some row: r is then unchanged. EG_ERUN:
 * out of memory (r may hold the new column without the new keys). */
int eg_retime_rundir(eg_retime *rt, eg_rundir *r, eg_err *err);
/* eg_retime_rundir on every run of rs, stopping at the first error. */
int eg_retime_runset(eg_retime *rt, eg_runset *rs, eg_err *err);

#endif
