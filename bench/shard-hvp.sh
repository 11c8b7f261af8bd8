#!/usr/bin/env bash
# Sharded FD-HVP: time per HVP and peak memory per rank under MPI (N = 1, 2, 4 ranks on this
# machine) against the in-process simulation of N ranks (one process, N threads).
# Usage: bench/shard-hvp.sh [MODEL]   → results/benchmarks/shard-hvp.csv (needs Open MPI)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-mlp:widths=784-256-256-10,samples=256}"
swift build -c release >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=results/benchmarks/shard-hvp.csv
tmp=$(mktemp)
.build/release/hessian-harness bench shard-hvp --model "$MODEL" --reps 1 | head -1 > "$tmp"
for n in 1 2 4; do
  .build/release/hessian-harness bench shard-hvp --model "$MODEL" --shards "$n" --reps 5 | tail -n +2 >> "$tmp"
  mpirun --oversubscribe -np "$n" .build/release/hessian-harness-mpi bench shard-hvp --model "$MODEL" --reps 5 | tail -n +2 >> "$tmp"
done
mv "$tmp" "$out"
cat "$out"
