#!/usr/bin/env bash
# Sharded FD-HVP: time per HVP and peak memory per rank under MPI (N = 1, 2, 4 ranks on this
# machine) against the in-process simulation of N ranks (one process, N threads).
# Usage: bench/shard-hvp.sh [MODEL]   → results/benchmarks/shard-hvp.csv + shard-hvp.manifest.json (needs Open MPI)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-mlp:widths=784-256-256-10,samples=256}"
swift build -c release >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=results/benchmarks/shard-hvp.csv
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
tmp=$(mktemp)
.build/release/hessian-harness bench shard-hvp --model "$MODEL" --reps 1 | head -1 > "$tmp"
for n in 1 2 4; do
  .build/release/hessian-harness bench shard-hvp --model "$MODEL" --shards "$n" --reps 5 | tail -n +2 >> "$tmp"
  mpirun --oversubscribe -np "$n" .build/release/hessian-harness-mpi bench shard-hvp --model "$MODEL" --reps 5 | tail -n +2 >> "$tmp"
done
mv "$tmp" "$out"
dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)notebooks-export')
python3 - "$MODEL" "$start" "$(git rev-parse HEAD)${dirty:+-dirty}" "$(mpirun --version | head -1)" <<'PY' > results/benchmarks/shard-hvp.manifest.json
import json, os, subprocess, sys, datetime
model, start, commit, mpi = sys.argv[1:5]
version = subprocess.run([".build/release/hessian-harness", "version"], capture_output=True, text=True).stdout.strip().splitlines()
print(json.dumps({"tool": "hessian-harness bench/shard-hvp.sh", "tool_version": version[0], "git_commit": commit,
                  "command": ["bench/shard-hvp.sh", model], "parameters": {"model": model, "ranks": "1, 2, 4", "reps": "5",
                  "scheme": "central", "eps": "1e-3", "policy": "fp32 (bench shard-hvp default)"},
                  "seeds": {"model": 0, "v": 0x5DEECE66D}, "library_versions": version[1:], "mpi": mpi,
                  "cores": os.cpu_count(), "start_time": start,
                  "end_time": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=2, sort_keys=True))
PY
cat "$out"
