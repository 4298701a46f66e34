/* algo.h - the decentralized algorithms of docs/algorithms.md#updates, one step function each over
 * a rank's block of nodes. Algorithms never call MPI: exchanges go through comm.h.
 *
 * Every gossip algorithm takes algorithm.local_steps H (an exchange in iterations k with
 * (k + 1) % H == 0, W = I in the others), algorithm.global_every T (in iterations with
 * (k + 1) % T == 0 an exact average over all nodes replaces W(k): W = J), and a faulty
 * network (eg_algo_set_network): lost messages give the effective W'(k) of network.h, and
 * absent nodes skip their node update and keep their state. */
#ifndef EG_ALGO_H
#define EG_ALGO_H

#include "comm.h"
#include "network.h"
#include "spec.h"


/* A rank's block of nodes running one algorithm: their parameters, gradient slots and the
 * method's state (momentum, tracking, running statistics). Opaque: use the functions below. */
typedef struct eg_algo eg_algo;

/* Allocates the state for nlocal nodes of dim parameters into *out (NULL on error; x and
 * the state start at zero). max_nnz: the largest W(k). grad_slots: gradient buffers, one
 * per thread that computes gradients (0: one per node, which eg_algo_step needs). */
int eg_algo_init(eg_algo **out, const eg_algo_spec *s, int nodes, int nlocal, size_t dim,
                 int max_nnz, int grad_slots, eg_err *err);
/* The local nodes' parameters, nlocal x dim (node li at li * dim): write them to set the
 * initial point; read them after eg_algo_sync (psgd keeps one live copy in training). */
float *eg_algo_x(eg_algo *a);
/* Whether the method trains one shared model (psgd) rather than one model per node. */
int eg_algo_shared(const eg_algo *a);
/* Whether the method uses gradients (all but the pure-averaging `gossip`). */
int eg_algo_needs_grad(const eg_algo *a);
/* The running statistics of all local nodes, nlocal x nstats (NULL when there are none). */
float *eg_algo_stats(eg_algo *a);
size_t eg_algo_nstats(const eg_algo *a);
/* The network and the ids the method's randomness needs: the run's seed and the first
 * local node's id lo. A faulty network (drop or offline > 0; not for psgd) is simulated
 * from then on (network.h); choco's random compressors draw from (seed, iteration, node).
 * Call once after init. */
int eg_algo_set_network(eg_algo *a, const eg_network_spec *ns, uint64_t seed, int lo,
                        eg_err *err);
/* choco: the x_hat copies this rank keeps of the remote nodes its nodes may read in any
 * W(k) of t (eg_topo_reach; random and other aperiodic graphs: every node), the messages
 * that keep them current (c's node mapping; reserves c's message requests) and every
 * node's subscribers (bytes_sent). Allocates everything the exchange needs, so choco's
 * iterations allocate nothing. Other methods: nothing. Call once after
 * eg_algo_set_network, before the first exchange (choco's exchange fails without it). Not
 * collective. */
int eg_algo_set_graph(eg_algo *a, eg_topo *t, eg_comm *c, eg_err *err);
/* The gossip round of iteration k: k / local_steps (the driver asks the graph for
 * W(round), so that H local steps do not skip the graph's period). */
long eg_algo_round(const eg_algo *a, long k);
/* Messages lost so far (network.h), over all nodes; the same on every rank. */
double eg_algo_msgs_lost(const eg_algo *a);
/* Iterations taken (a resumed run sets it: gt and ed treat their first step apart; it
 * also restores msgs_lost from the loaded state, and makes choco rebuild its copies of the
 * remote x_hat from their owners' (loaded) x_hat, dense, at its next exchange). */
void eg_algo_set_steps(eg_algo *a, long steps);
long eg_algo_steps(const eg_algo *a);
/* Running statistics: nstats floats per node, kept (and checkpointed) with the state;
 * gossip != 0 mixes them with W(k) after each exchange (bytes counted), except for psgd,
 * whose graph is unused (each node keeps its own). Zero-filled; call once after init. */
int eg_algo_set_stats(eg_algo *a, size_t nstats, int gossip, eg_err *err);
float *eg_algo_node_stats(eg_algo *a, int li); /* node li's nstats floats; NULL when none */
/* Parameter ranges weight decay does not touch (algorithm.weight_decay_norm: false):
 * n (offset, length) pairs in increasing order (copied). Call once after init. */
int eg_algo_set_nodecay(eg_algo *a, const size_t *off, const size_t *len, int n, eg_err *err);
/* Where node li's parameters are read during training (psgd: the shared copy; sgp: the
 * de-biased z = x / w, which is also what eg_algo_x holds outside an iteration). */
float *eg_algo_node_x(eg_algo *a, int li);
/* Whether local node li is absent in the current iteration (network.offline): it computes
 * no gradient, sends nothing and keeps its state. */
int eg_algo_node_absent(const eg_algo *a, int li);
/* (node, iteration) pairs absent over the last nsteps iterations, all nodes (the same on
 * every rank: train_loss averages over the present ones). */
long eg_algo_absent_pairs(const eg_algo *a, long nsteps);
/* Where node li's gradient goes when thread slot `slot` computes it. */
float *eg_algo_grad(eg_algo *a, int li, int slot);
/* Makes every local node's copy of x and the state current (psgd keeps one live copy);
 * call before reading x or the state of all nodes (metrics, checkpoints). */
void eg_algo_sync(eg_algo *a);
void eg_algo_free(eg_algo *a); /* safe on NULL and on a half-built one */
/* vectors per gossip (gt: 2) */
int eg_algo_gossip_vectors(eg_algo_kind k);
/* Whether the method keeps each named state vector; fills names, pointers and per-node
 * lengths (floats) of the per-node state a checkpoint must save (x first; vector v of local
 * node li is vecs[v] + li * lens[v]). Returns the count. */
int eg_algo_state(eg_algo *a, float **vecs, const char **names, size_t *lens, int max);

/* Node li's part of an iteration that needs only its own vectors (weight decay, momentum,
 * the vector it sends), given its gradient in eg_algo_grad(a, li, slot). Thread-safe for
 * distinct li and slot; the driver calls it right after node li's gradient, while that is
 * still in cache. */
void eg_algo_node_update(eg_algo *a, int li, int slot, double lr);
/* The rest of the iteration, after eg_algo_node_update on every local node: the exchange
 * (gossip or all-reduce) and what needs the neighbours. Collective. */
int eg_algo_exchange(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes,
                     eg_err *err);
/* Of `bytes`, what the last eg_algo_exchange added to *bytes, those between machines: as
 * eg_comm_inter_bytes(W, bytes) (W: the graph's W(k) of that exchange), except choco's
 * payloads, which count once per subscriber on another machine of W->local nodes (all of
 * them when W defines no machines). */
double eg_algo_inter_bytes(const eg_algo *a, const eg_wmat *W, double bytes);
/* Both: one iteration, given x and g (one slot per node; g at x) of the local nodes:
 * updates x (and the method's state) with learning rate lr and mixing matrix W.
 * *bytes is increased by the traffic between distinct nodes, summed over all nodes.
 * Collective (gossip or all-reduce). */
int eg_algo_step(eg_algo *a, eg_comm *c, const eg_wmat *W, double lr, double *bytes, eg_err *err);

#endif
