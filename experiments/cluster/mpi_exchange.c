/* mpi_exchange.c - what Open MPI alone takes, without expgraph, for the messages of
 * `timemodel` (the comparison of the modelled and measured time per iteration).
 *
 *   mpicc -O2 -o /tmp/mpi_exchange experiments/cluster/mpi_exchange.c
 *   experiments/cluster/hosts.sh up 2 --rate 100mbit --dir /tmp/h2 && . /tmp/h2/env
 *   $EG_MPIRUN -np 2 --map-by ppr:1:node /tmp/mpi_exchange 814120 20 exchange
 *   $EG_MPIRUN -np 2 --map-by ppr:1:node /tmp/mpi_exchange 814120 20 oneway
 *   $EG_MPIRUN -np 2 --map-by ppr:1:node --mca btl_tcp_links 2 /tmp/mpi_exchange 814120 20 exchange
 *   $EG_MPIRUN -np 4 --map-by ppr:1:node /tmp/mpi_exchange 814120 20 allreduce   (on 4 hosts)
 *   experiments/cluster/hosts.sh down --dir /tmp/h2
 *
 * BYTES per message, N repetitions, each after a barrier; rank 0 prints the median and the
 * minimum seconds of one repetition:
 *   exchange   ranks 2r and 2r+1 send each other BYTES at once (MPI_Irecv, MPI_Isend,
 *              MPI_Waitall: what expgraph's gossip does between two nodes of a pair)
 *   oneway     rank 0 sends BYTES to rank 1, which answers with 1 byte when it has them
 *   allreduce  MPI_Allreduce of BYTES / 4 floats (psgd) over all ranks */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int r, p;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    if (argc != 4 || atoi(argv[1]) < 4 || atoi(argv[2]) < 1 || p < 2) {
        if (r == 0)
            fprintf(stderr, "usage: mpi_exchange BYTES N exchange|oneway|allreduce (>= 2 ranks)\n");
        MPI_Finalize();
        return 2;
    }
    int bytes = atoi(argv[1]), n = atoi(argv[2]);
    const char *mode = argv[3];
    char *s = calloc((size_t)bytes, 1), *d = calloc((size_t)bytes, 1);
    double *t = calloc((size_t)n, sizeof *t);
    if (!s || !d || !t)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < n; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (!strcmp(mode, "exchange")) {
            int peer = r ^ 1;
            if (peer < p) {
                MPI_Request q[2];
                MPI_Irecv(d, bytes, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &q[0]);
                MPI_Isend(s, bytes, MPI_BYTE, peer, 0, MPI_COMM_WORLD, &q[1]);
                MPI_Waitall(2, q, MPI_STATUSES_IGNORE);
            }
        } else if (!strcmp(mode, "oneway")) {
            if (r == 0) {
                MPI_Send(s, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
                MPI_Recv(d, 1, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (r == 1) {
                MPI_Recv(d, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(s, 1, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
            }
        } else {
            MPI_Allreduce(MPI_IN_PLACE, (float *)(void *)s, bytes / 4, MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD);
        }
        t[i] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    if (r == 0)
        printf("%s %d bytes, %d ranks: median %.4f s, min %.4f s\n", mode, bytes, p, t[n / 2], t[0]);
    free(s);
    free(d);
    free(t);
    MPI_Finalize();
    return 0;
}
