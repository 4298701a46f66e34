/* measure.h - what a run measures (docs/spec.md#metricscsv): the nodes' training losses between
 * two rows, the averaged model x_bar on the test split (with the mean of the nodes' running
 * statistics), consensus, each node's own model (node_acc_mean), divergence; and the run
 * directory's metrics.csv (columns from schema.h). Averages over nodes are summed in node
 * order, so every value is the same for any rank count. */
#ifndef EG_MEASURE_H
#define EG_MEASURE_H

#include "algo.h"
#include "comm.h"
#include "data.h"
#include "model.h"
#include "schema.h"

typedef struct eg_measure eg_measure;

/* test samples per evaluation call: the works the run creates take batches this large */
#define EG_EVAL_BATCH 250

/* What evaluation runs on (borrowed; must outlive the eg_measure). */
typedef struct eg_measure_env {
    const eg_dataset *data;
    const eg_model *model;
    eg_comm *comm;
    eg_work *const *work; /* one per OpenMP thread */
    int nodes, nlocal;
    size_t dim;
    int cluster; /* metrics.csv has the cluster: columns (schema.h EG_COL_CLUSTER) */
    const eg_partition *val; /* data.val_fraction: each node's held-out training samples;
                                NULL: none (val_loss, val_acc NaN) */
    int lo;                  /* the first local node (node lo + li is local node li) */
} eg_measure_env;

/* One row's measured values (train_loss always; the rest when evaluated). */
typedef struct eg_measure_vals {
    double train_loss, test_loss, test_acc, consensus, node_acc;
    double val_loss, val_acc; /* x_bar on the held-out samples; NaN without them */
    int evaluated;
} eg_measure_vals;

int eg_measure_init(eg_measure **out, const eg_measure_env *env, eg_err *err);
void eg_measure_free(eg_measure *m); /* safe on NULL; closes metrics.csv */

/* Local node li's minibatch loss at iteration k (thread-safe for distinct li); a non-finite
 * loss is remembered for eg_measure_check_divergence. */
void eg_measure_add_loss(eg_measure *m, int li, long k, float loss);
/* One more iteration towards the next row's train_loss mean. */
void eg_measure_end_iter(eg_measure *m);
/* Checkpointed state: the local nodes' loss sums since the last row (nlocal), and the
 * iterations since it. */
double *eg_measure_losses(eg_measure *m);
long *eg_measure_rows_since(eg_measure *m);

/* Collective: EG_ERUN naming the first iteration and node whose loss was not finite. */
int eg_measure_check_divergence(eg_measure *m, eg_err *err);
/* Collective: the row at the current state of algo: train_loss since the last row (and
 * resets it); with evaluate, also x_bar's test loss and accuracy, consensus,
 * node_acc_mean and, with env.val, x_bar's loss and accuracy on the union of the nodes'
 * held-out samples (each node's summed in batch order, then over nodes in node order: the
 * same for any rank and thread count) (calls eg_algo_sync). */
int eg_measure_row(eg_measure *m, eg_algo *algo, int evaluate, eg_measure_vals *v,
                       eg_err *err);

/* metrics.csv in dir, on rank 0 (other ranks: no-ops returning EG_OK): a new file with its
 * header when resume_iter is 0, else the existing one cut after row resume_iter and
 * appended to. Rows are flushed as written. */
int eg_measure_open_csv(eg_measure *m, const char *dir, long resume_iter, eg_err *err);
int eg_measure_write_row(eg_measure *m, const eg_schema_row *row, eg_err *err);
int eg_measure_close_csv(eg_measure *m, eg_err *err);

#endif
