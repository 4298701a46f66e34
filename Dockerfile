# expgraph in a container (Debian 12): the same setup script as a bare machine.
#   docker build -t expgraph .
#   docker run --rm -v "$PWD/runs:/expgraph/runs" expgraph run experiments/quickstart.yaml
# Apptainer/Singularity: apptainer build expgraph.sif docker-daemon://expgraph:latest
# On a cluster, launch one container per rank with the host's mpirun (Open MPI 4.1 inside
# and outside), e.g. mpirun -np 64 apptainer exec expgraph.sif expgraph run spec.yaml
FROM debian:12
ENV DEBIAN_FRONTEND=noninteractive \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /expgraph
COPY . .
# --install: cmake --install into /usr/local (binary, man page, bash completion)
RUN bash scripts/setup.sh --install && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["expgraph"]
CMD ["--help"]
