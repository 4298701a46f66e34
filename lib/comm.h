/* comm.h - virtual nodes on MPI ranks. comm.c is the only file that includes mpi.h: run.c,
 * ckpt.c and algo.c reach MPI through the functions below, and the CLI initialises and
 * finalises it with eg_comm_world_start/finalize. A process started without a launcher
 * never initialises MPI: it is rank 0 of 1 through the same code (eg_comm_world_start).
 *
 * A spec's n nodes are logical agents; the P ranks of MPI_COMM_WORLD are workers. Node i
 * lives on rank floor(i * P / n); a rank holds its nodes' vectors in one contiguous block
 * (node lo first). Every collective here sums in a fixed order (by node id) wherever the
 * result must not depend on P. Every MPI call goes through one check: functions that return
 * an int give EG_ERUN with "MPI error at FILE:LINE: ..." in err; the few without an error
 * path (world rank/size/max, finalize, free) print that on stderr and MPI_Abort the job.
 */
#ifndef EG_COMM_H
#define EG_COMM_H

#include "common.h"
#include "topology.h"

typedef struct eg_comm eg_comm;

/* Collective over MPI_COMM_WORLD (a one-rank communicator without MPI when
 * eg_comm_world_start did not start it). Sets up the node mapping and
 * preallocates exchange buffers for vectors of up to max_dim floats and the largest W(k)
 * the topology can produce (max_vecs vectors per call to eg_comm_gossip_multi). */
int eg_comm_init(eg_comm **out, int nodes, size_t max_dim, int max_vecs, const eg_topo *topo,
                 eg_err *err);
void eg_comm_free(eg_comm *c); /* safe on NULL and half-built; not collective */

/* A simulated rank `rank` of `size` (no MPI; tests): the same node mapping, plan and
 * buffers as eg_comm_init would give that rank. Use it with eg_comm_plan and
 * eg_comm_gossip_sim only (the collectives below need MPI). */
int eg_comm_init_sim(eg_comm **out, int nodes, int rank, int size, size_t max_dim,
                     int max_vecs, const eg_topo *topo, eg_err *err);

/* Sizes the combine's per-thread scratch for up to nthreads OpenMP threads (call after
 * omp_set_num_threads, outside the iteration; the combine never uses more threads than this
 * or than the cores/threads seen at eg_comm_init). */
int eg_comm_set_threads(eg_comm *c, int nthreads, eg_err *err);
int eg_comm_rank(const eg_comm *c);
int eg_comm_size(const eg_comm *c);
int eg_comm_lo(const eg_comm *c);     /* first local node */
int eg_comm_hi(const eg_comm *c);     /* one past the last local node */
/* ranks sharing this rank's host (for thread budgeting) */
int eg_comm_host_ranks(const eg_comm *c);

/* One gossip step for nv vectors per node: for each local node i and each v < nv,
 * out[v][(i-lo)*dim ..] = sum_j W_ij in[v][(j-lo)*dim ..], computed in float as
 * x_i + sum_{j != i} W_ij (x_j - x_i) over j ascending (rows are stochastic, so this is the
 * same matrix; the difference form keeps the network average unbiased). Same-rank neighbours are read in place; cross-rank ones travel by non-blocking
 * MPI; rows with only local neighbours are combined while messages are in flight.
 * in and out must not alias. Collective. Returns EG_ERUN on an MPI failure. */
int eg_comm_gossip_multi(eg_comm *c, const eg_wmat *W, int nv, const float *const *in,
                         float *const *out, size_t dim, eg_err *err);
static inline int eg_comm_gossip(eg_comm *c, const eg_wmat *W, const float *in, float *out,
                                 size_t dim, eg_err *err)
{
    return eg_comm_gossip_multi(c, W, 1, &in, &out, dim, err);
}

/* The exchange plan of one gossip over W on this rank (pointers into c, valid until the
 * next call on c): the remote nodes whose vectors it receives, in ascending node order
 * (the order of its receives, one receive slot each), and the (node, rank) pairs it sends,
 * in posting order (node ascending, then rank). Not collective; no MPI. */
typedef struct eg_comm_xplan {
    int nrecv, nsend;
    const int *recv_node;
    const int *send_node, *send_rank;
} eg_comm_xplan;
int eg_comm_plan(eg_comm *c, const eg_wmat *W, eg_comm_xplan *plan, eg_err *err);
/* eg_comm_gossip_multi with the transport simulated (tests, with eg_comm_init_sim): all[v]
 * holds every node's vector v (nodes * dim floats); the plan's receives are copied from it,
 * the local rows read all[v] + lo * dim in place; out as for eg_comm_gossip_multi. Runs the
 * same plan and combine code as the real exchange. Not collective; no MPI. */
int eg_comm_gossip_sim(eg_comm *c, const eg_wmat *W, int nv, const float *const *all,
                       float *const *out, size_t dim, eg_err *err);

/* The combine of eg_comm_gossip (one vector) without messages: local in-neighbours are
 * read from in (this rank's block), remote ones j from copies[j], a copy of node j's vector
 * the caller keeps (copies has one entry per node; NULL where this rank keeps none). out as
 * for eg_comm_gossip, and bitwise what eg_comm_gossip gives when the copies equal the
 * owners' vectors (the same plan and combine). EG_ERUN when a row needs a node without a
 * copy. Not collective; no MPI (works on simulated ranks). */
int eg_comm_combine_copies(eg_comm *c, const eg_wmat *W, const float *in,
                           const float *const *copies, float *out, size_t dim, eg_err *err);
/* Room for nmsg messages (sends + receives) in one eg_comm_payloads call; call at set-up
 * (it allocates). */
int eg_comm_reserve_payloads(eg_comm *c, int nmsg, eg_err *err);
/* Point-to-point byte messages of one size, non-blocking, waited for before returning
 * (choco's compressed x_hat updates, and at a resume its dense x_hat): send_buf[q] goes to
 * rank send_rank[q] with node send_node[q]'s tag; recv_buf[q] receives node recv_node[q]'s
 * message from the rank that owns it. Each list in ascending node order: a tag is the node
 * id mod 32768, and MPI keeps the order per (source, tag), so nodes sharing a tag cannot
 * swap. Every receive needs its send on the owner. Involves only the ranks in the lists (not
 * collective). EG_ERUN on an MPI failure, on a simulated rank (which has no transport), or
 * when bytes > INT_MAX or the messages exceed eg_comm_reserve_payloads. */
int eg_comm_payloads(eg_comm *c, int nsend, const int *send_node, const int *send_rank,
                     const void *const *send_buf, int nrecv, const int *recv_node,
                     void *const *recv_buf, size_t bytes, eg_err *err);

/* Bytes one gossip over W moves between distinct nodes for nv vectors of dim floats
 * (every off-diagonal nonzero is one vector sent; a W with machines, W->local > 0, counts
 * its two-stage traffic, W->sends vectors: topology.h). */
double eg_comm_gossip_bytes(const eg_wmat *W, int nv, size_t dim);
/* Of `bytes` sent by gossips over W, those between different machines: all of them when W
 * defines no machines, bytes * W->inter / W->sends otherwise (exact when bytes is a sum of
 * eg_comm_gossip_bytes over W). */
double eg_comm_inter_bytes(const eg_wmat *W, double bytes);

/* acc[0..dim) = sum over all nodes i (ascending) of block[(i-lo)*dim ..], in double, on
 * every rank: a chain through the ranks in node order, so the result is bitwise the same
 * for every P. Collective. */
int eg_comm_sum_nodes(eg_comm *c, const float *block, size_t dim, double *acc, eg_err *err);

/* Gathers per-node values (k doubles per local node) into all[nodes*k] on every rank.
 * Collective. */
int eg_comm_gather_nodes(eg_comm *c, const double *local, int k, double *all, eg_err *err);

/* Element-wise sum of buf over ranks (in place, float). Result identical on all ranks.
 * Collective (as are the next three). */
int eg_comm_allreduce_floats(eg_comm *c, float *buf, size_t count, eg_err *err);
/* Element-wise sum of doubles over ranks, in place. */
int eg_comm_allreduce_doubles(eg_comm *c, double *buf, size_t count, eg_err *err);
/* Max of a long over ranks. */
int eg_comm_max_longs(eg_comm *c, long *v, int n, eg_err *err); /* element-wise max */
/* 1 when every rank passed the same value, 0 otherwise. */
int eg_comm_same_u64(eg_comm *c, uint64_t v, int *same, eg_err *err);
/* Ends the whole job (all ranks, all hosts) with code; used on fatal errors. */
void eg_comm_abort(int code);

/* Usable without MPI: the node range [lo, hi) of rank r of P. */
void eg_comm_range(int nodes, int P, int r, int *lo, int *hi);

/* Agreement on an error across MPI_COMM_WORLD (before an eg_comm exists): every rank passes
 * its own rc/err; returns the rc of the lowest failing rank on every rank and copies that
 * rank's message into err (EG_OK everywhere when all succeeded). Collective. */
int eg_comm_world_agree(int rc, eg_err *err);
/* rank and size in MPI_COMM_WORLD */
int eg_comm_world_rank(void);
int eg_comm_world_size(void);
/* max of a double over MPI_COMM_WORLD (e.g. a time) */
double eg_comm_world_max(double v);
/* element-wise sum of n doubles over MPI_COMM_WORLD, in place (the data's per-sample
 * normalisation statistics, each non-zero on one rank: exact in any order). Collective. */
int eg_comm_world_sum_doubles(double *buf, size_t n, eg_err *err);
/* Every rank's text (width bytes each, NUL-terminated within) into all[size * width], in
 * rank order, on every rank (run provenance: each rank's host, CPU and kernels). Collective
 * over c. */
int eg_comm_gather_text(eg_comm *c, const char *mine, size_t width, char *all, eg_err *err);
/* The MPI library's version text (MPI_Get_library_version, first line; callable before
 * MPI_Init and without it) into out. */
void eg_comm_library_version(char *out, size_t len);
/* 1 when a launcher (mpirun/mpiexec, srun with PMI or PMIx, hydra) started this process,
 * read from its environment; also when EXPGRAPH_MPI=1 asks for MPI in a single process. */
int eg_comm_launched(void);
/* MPI_Init_thread (funneled) when eg_comm_launched(), for the CLI; otherwise nothing: the
 * process is the only rank, and every function here works without MPI (the world functions
 * answer rank 0 of 1, eg_comm_init gives a one-rank communicator whose collectives are the
 * trivial one-rank ones), with the same results bit for bit. EG_ERUN with MPI's reason in
 * err when MPI_Init_thread returns an error (Open MPI 4 ends the process itself, exit 1,
 * with its own message, on most start-up failures: only under a launcher now). */
int eg_comm_world_start(int *argc, char ***argv, eg_err *err);
int eg_comm_world_init(int *argc, char ***argv); /* eg_comm_world_start, err NULL */
/* MPI_Finalize when MPI was started; nothing otherwise. */
void eg_comm_world_finalize(void);

#endif
