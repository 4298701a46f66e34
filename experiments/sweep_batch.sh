#!/usr/bin/env bash
# A batch-script example: expand a spec's sweep: block with `expgraph sweep --list` and run
# every point under mpirun, a few points at a time (as a SLURM job array or GNU parallel would).
#   experiments/sweep_batch.sh SPEC.yaml [OUT] [RANKS_PER_POINT] [POINTS_AT_ONCE]
# e.g. experiments/sweep_batch.sh experiments/topology/consensus.yaml runs/consensus-mpi 2 1
# On SLURM, the same list feeds a job array:
#   expgraph sweep SPEC.yaml --list > points.txt
#   sbatch --array=1-$(wc -l < points.txt) --ntasks=4 --wrap \
#     'srun --mpi=pmix $(sed -n "${SLURM_ARRAY_TASK_ID}p" points.txt)'
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exe=${EXPGRAPH:-$here/build/expgraph}
spec=${1:?usage: sweep_batch.sh SPEC.yaml [OUT] [RANKS] [AT_ONCE]}
out=${2:-runs/sweep-batch}
ranks=${3:-2}
at_once=${4:-1}
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
# each listed line is "expgraph run SPEC --set ... --out DIR"; swap in the binary and mpirun
"$exe" sweep "$spec" --out "$out" --list |
  sed "s|^expgraph |mpirun -np $ranks --oversubscribe --mca btl self,vader $exe |; s|\$| --quiet|" |
  xargs -P "$at_once" -I{} sh -c '{} || echo "failed: {}" >&2'
"$exe" table "$out" --metric consensus
