"""Side-by-side benchmarks: hessian-harness against the tools researchers would otherwise use.

Run by bench/compare (which builds ours and installs these into a virtual environment).
Rounds interleave ours and theirs on identical problem sizes; every cell is the median over
rounds of each side's own median, and ratio_min/ratio_max the range of the per-round ratios.
One core for both sides (bench/compare runs everything under `taskset -c 0`; OPENBLAS_NUM_THREADS=1). Writes results/benchmarks/compare.csv, machine.md and manifest.json.
"""
import csv, datetime, io, json, os, platform, statistics, subprocess, sys, time
import numpy as np

ROUNDS = int(os.environ.get("HH_BENCH_ROUNDS", "3"))
# Ours is built for this CPU (-target-cpu native), as XLA compiles JAX's functions for the host and
# numpy/ml_dtypes dispatch on the CPU at run time; the portable build (baseline x86-64, SSE2) is
# measured too for the scalar kernels, whose generic loops depend on the vector ISA the compiler may use.
HH = os.environ.get("HH_BENCH_BIN", ".build-native/release/hessian-harness")
HH_PORTABLE = ".build/release/hessian-harness"
MPFR_DOT = ".build/mpfr_dot"

def med(f, trials=7, reps=1):
    f()
    ts = []
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        ts.append((time.perf_counter() - t0) / reps)
    return statistics.median(ts)

# --- theirs ---------------------------------------------------------------------------

def ml_dtypes_elementwise(n=4096, reps=200):
    import ml_dtypes
    rng = np.random.default_rng(1)
    a = rng.standard_normal(n).astype(ml_dtypes.bfloat16); b = rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    out = {}
    out["bf16 add (ns/element)"] = med(lambda: a + b, reps=reps) / n * 1e9
    out["bf16 mul (ns/element)"] = med(lambda: a * b, reps=reps) / n * 1e9
    out["fp32 add numpy (ns/element)"] = med(lambda: af + bf, reps=reps) / n * 1e9
    return out

def gmpy2_dot(n=10000):
    import gmpy2
    gmpy2.get_context().precision = 256
    rng = np.random.default_rng(2)
    a = [gmpy2.mpfr(float(x)) / 3 for x in rng.random(n)]; b = [gmpy2.mpfr(float(x)) / 7 for x in rng.random(n)]
    def dot():
        s = gmpy2.mpfr(0)
        for x, y in zip(a, b):
            s += x * y
        return s
    return {"mpfr256 dot (ns/element)": med(dot, trials=5) / n * 1e9}

def jax_mlp():
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax, jax.numpy as jnp
    jax.config.update("jax_platforms", "cpu")
    rng = np.random.default_rng(3)
    sizes = [784, 256, 256, 10]
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6 / (i + o))
        params += [jnp.asarray(rng.uniform(-lim, lim, (o, i)), jnp.float32), jnp.zeros(o, jnp.float32)]
    x = jnp.asarray(rng.standard_normal((256, 784)), jnp.float32); y = jnp.asarray(rng.integers(0, 10, 256))
    def loss(p):
        h = x
        for k in range(0, len(p) - 2, 2):
            h = jnp.tanh(h @ p[k].T + p[k + 1])
        z = h @ p[-2].T + p[-1]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - z[jnp.arange(256), y])
    g = jax.jit(jax.grad(loss))
    v = [jnp.asarray(rng.uniform(-0.5, 0.5, t.shape), jnp.float32) for t in params]
    hvp = jax.jit(lambda p, v: jax.jvp(jax.grad(loss), (p,), (v,))[1])
    eps = 1e-2
    fd = jax.jit(lambda p, v: [(a - b) / (2 * eps) for a, b in zip(jax.grad(loss)([q + eps * w for q, w in zip(p, v)]),
                                                                    jax.grad(loss)([q - eps * w for q, w in zip(p, v)]))])
    block = lambda r: jax.block_until_ready(r)
    return {"mlp 784-256-256-10 b256 fp32 gradient (s)": med(lambda: block(g(params))),
            "mlp 784-256-256-10 b256 fp32 exact HVP (s)": med(lambda: block(hvp(params, v))),
            "mlp 784-256-256-10 b256 fp32 central FD-HVP (s)": med(lambda: block(fd(params, v)))}

TOPK_DIR = ".build/bench-topk"
TOPK_SPEC, TOPK_SEED, TOPK_K = "mp:n=2000,ratio=0.5", "1", 10

def scipy_eigsh():
    """Top-10 eigenvalues of the same dense Wishart matrix (written by our `hvp` command) by ARPACK."""
    from scipy.sparse.linalg import eigsh
    A = np.load(f"{TOPK_DIR}/A.npy"); exact = np.load(f"{TOPK_DIR}/A_eigenvalues.npy")
    lam = np.sort(exact)[::-1][:TOPK_K]; rho = np.abs(exact).max()
    w = None
    def run():
        nonlocal w
        w, _ = eigsh(A, k=TOPK_K, which="LA", tol=1e-10)
    t = med(run, trials=3)
    return {"top-10 eigenvalues (s)": t, "top-10 max rel err": float(np.max(np.abs(np.sort(w)[::-1] - lam)) / rho)}

# --- ours ------------------------------------------------------------------------------

def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

def ours_scalars(binary=HH):
    rows = list(csv.DictReader(io.StringIO(run([binary, "bench", "scalars"]))))
    get = lambda k, t: float(next(r["ns_per_element"] for r in rows if r["kernel"] == k and r["type"] == t))
    return {"bf16 add (ns/element)": get("add", "BFloat16"), "bf16 mul (ns/element)": get("mul", "BFloat16"),
            "fp32 add Swift Float (ns/element)": get("add", "Float"), "fp32 mul Swift Float (ns/element)": get("mul", "Float"),
            "mpfr256 dot (ns/element)": get("dot", "MPFloat<256>.dot")}

def ours_models():
    rows = list(csv.DictReader(io.StringIO(run([HH, "bench", "models"]))))
    sec = lambda prefix: float(next(r["seconds"] for r in rows if r["benchmark"].startswith(prefix)))
    return {"mlp 784-256-256-10 b256 fp32 gradient (s)": sec("mlp 784-256-256-10 batch 256 fp32 gradient"),
            "mlp 784-256-256-10 b256 fp32 exact HVP (s)": sec("mlp 784-256-256-10 batch 256 fp32 exact HVP"),
            "mlp 784-256-256-10 b256 fp32 central FD-HVP (s)": sec("mlp 784-256-256-10 batch 256 fp32 central FD-HVP")}

def ours_topk(tol):
    rows = list(csv.DictReader(io.StringIO(run([HH, "bench", "topk", "--operator", TOPK_SPEC, "--seed", TOPK_SEED, "--k", str(TOPK_K),
                                                "--tol", repr(tol), "--trials", "3"]))))
    return {"top-10 eigenvalues (s)": float(rows[0]["seconds"]), "top-10 max rel err": float(rows[0]["max_rel_err"]),
            "top-10 lanczos steps": float(rows[0]["steps"])}

def c_mpfr():
    out = run([MPFR_DOT, "10000", "7"])
    ns = [float(t) for t in out.replace(",", " ").split() if t.replace(".", "", 1).isdigit()]
    return {"mpfr256 dot (ns/element)": ns[-1]}

def main():
    start = datetime.datetime.now(datetime.timezone.utc).isoformat()
    if not os.path.exists(f"{TOPK_DIR}/A.npy"):
        run([HH, "hvp", "--model", f"quadratic:{TOPK_SPEC}", "--seed", TOPK_SEED, "--scheme", "exact", "--out", TOPK_DIR])
    samples = {}
    def add(side, d):
        for k, val in d.items():
            samples.setdefault((side, k), []).append(val)
    for r in range(ROUNDS):
        print(f"round {r + 1}/{ROUNDS}", file=sys.stderr)
        add("ours", ours_scalars()); add("ml_dtypes/numpy", ml_dtypes_elementwise()); add("ours-portable", ours_scalars(HH_PORTABLE))
        add("ours", ours_models()); add("jax", jax_mlp())
        add("c-mpfr", c_mpfr()); add("gmpy2", gmpy2_dot())
        theirs = scipy_eigsh(); add("scipy", theirs)
        add("ours", ours_topk(max(theirs["top-10 max rel err"], 1e-14)))   # at least their accuracy
    m = {k: statistics.median(v) for k, v in samples.items()}
    rows = []
    # One row: ours against a reference (another tool, or ours in another configuration). The
    # ratio and the verdict use the medians; ratio_min/ratio_max span the per-round ratios
    # (each round runs both sides back to back), i.e. how far this VM's drift moves the ratio.
    def pair(bench, a, tool, b, target, limit):
        o, t = m[a], m[b]
        per_round = [x / y for x, y in zip(samples[a], samples[b])]
        rows.append([bench, f"{o:.4g}", tool, f"{t:.4g}", f"{o / t:.3g}", f"{min(per_round):.3g}", f"{max(per_round):.3g}", target,
                     "yes" if limit is None or o <= limit * t else "no"])
    def row(bench, ours_key, tool, their_key, target, limit):
        pair(bench, ("ours", ours_key), tool, (tool, their_key), target, limit)
    row("bf16 add, ns/element (n=4096)", "bf16 add (ns/element)", "ml_dtypes/numpy", "bf16 add (ns/element)", "ours ≤ 0.25× ml_dtypes", 0.25)
    row("bf16 mul, ns/element (n=4096)", "bf16 mul (ns/element)", "ml_dtypes/numpy", "bf16 mul (ns/element)", "ours ≤ 0.25× ml_dtypes", 0.25)
    pair("bf16 add vs Swift Float add, ns/element", ("ours", "bf16 add (ns/element)"), "ours (Float)",
         ("ours", "fp32 add Swift Float (ns/element)"), "≤ 2× Float", 2)
    pair("bf16 add vs Swift Float add, ns/element, portable build (baseline x86-64: SSE2)", ("ours-portable", "bf16 add (ns/element)"),
         "ours (Float, portable build)", ("ours-portable", "fp32 add Swift Float (ns/element)"), "(reference)", None)
    row("MPFloat<256> dot, ns/element (n=10^4)", "mpfr256 dot (ns/element)", "c-mpfr", "mpfr256 dot (ns/element)", "ours ≤ 1.3× C MPFR loop", 1.3)
    row("MPFloat<256> dot, ns/element (n=10^4)", "mpfr256 dot (ns/element)", "gmpy2", "mpfr256 dot (ns/element)", "ours ≤ 0.25× gmpy2", 0.25)
    row("fp32 MLP gradient, s", "mlp 784-256-256-10 b256 fp32 gradient (s)", "jax", "mlp 784-256-256-10 b256 fp32 gradient (s)", "ours ≤ 1.0× JAX", 1.0)
    row("fp32 MLP exact HVP (dual numbers vs jvp(grad)), s", "mlp 784-256-256-10 b256 fp32 exact HVP (s)", "jax", "mlp 784-256-256-10 b256 fp32 exact HVP (s)", "ours ≤ 1.5× JAX jvp(grad)", 1.5)
    row("fp32 MLP central FD-HVP, s", "mlp 784-256-256-10 b256 fp32 central FD-HVP (s)", "jax", "mlp 784-256-256-10 b256 fp32 central FD-HVP (s)", "(reference)", None)
    row(f"top-10 eigenvalues of a dense 2000×2000 Wishart matrix, s (ours: full-reorth Lanczos, {m[('ours', 'top-10 lanczos steps')]:.0f} steps, "
        f"max err {m[('ours', 'top-10 max rel err')]:.1e}; theirs: eigsh tol 1e-10, max err {m[('scipy', 'top-10 max rel err')]:.1e})",
        "top-10 eigenvalues (s)", "scipy", "top-10 eigenvalues (s)", "ours ≤ 1.0× eigsh at equal accuracy", 1.0)
    pair("fp32 MLP central FD-HVP over our gradient", ("ours", "mlp 784-256-256-10 b256 fp32 central FD-HVP (s)"), "ours (gradient)",
         ("ours", "mlp 784-256-256-10 b256 fp32 gradient (s)"), "≤ 2.1", 2.1)
    os.makedirs("results/benchmarks", exist_ok=True)
    # The real model's rows (SmolLM2-135M against PyTorch) come from bench/compare-llm, with their
    # own manifest (manifest-llm.json); kept as they are.
    llm = []
    if os.path.exists("results/benchmarks/compare.csv"):
        with open("results/benchmarks/compare.csv", newline="") as f:
            llm = [r for r in list(csv.reader(f))[1:] if r[0].startswith("SmolLM2-135M")]
    with open("results/benchmarks/compare.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["benchmark", "ours", "tool", "theirs", "ratio_ours_over_theirs", "ratio_min", "ratio_max", "target", "met"]); w.writerows(rows + llm)
    import jax, ml_dtypes, gmpy2, scipy
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    with open("results/benchmarks/machine.md", "w") as f:
        f.write(f"# Machine of results/benchmarks/compare.csv\n\n- CPU: {cpu}, {os.cpu_count()} cores; {platform.platform()}\n"
                f"- rounds: {ROUNDS}, interleaved; everything pinned to one core (taskset -c 0)\n"
                f"- ours: `{run([HH, 'version']).strip().splitlines()[0]}` (release build for this CPU: `-Xswiftc -target-cpu -Xswiftc native`; "
                f"the row marked portable build: the default build, baseline x86-64); "
                f"BLAS: {run([HH, 'version']).strip().splitlines()[-1]}\n"
                f"- theirs: jax {jax.__version__}, ml_dtypes {ml_dtypes.__version__}, gmpy2 {gmpy2.version()}, numpy {np.__version__}, scipy {scipy.__version__}, C loop bench/mpfr_dot.c (cc -O2)\n")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", ":(exclude)notebooks-export"],
                           capture_output=True, text=True).stdout.strip()
    manifest = {"tool": "hessian-harness bench/compare", "tool_version": run([HH, "version"]).strip().splitlines()[0],
                "git_commit": commit + ("-dirty" if dirty else ""), "command": ["bench/compare"] + sys.argv[1:],
                "parameters": {"rounds": str(ROUNDS), "pinning": "taskset -c 0", "ours_build": "release, -target-cpu native (portable build: bf16/Float reference row)", "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", ""),
                               "topk_operator": TOPK_SPEC, "topk_seed": TOPK_SEED, "topk_k": str(TOPK_K)},
                "seeds": {"numpy_default_rng": [1, 2, 3], "topk_operator": int(TOPK_SEED)},
                "versions": {"jax": jax.__version__, "ml_dtypes": ml_dtypes.__version__, "gmpy2": gmpy2.version(),
                             "numpy": np.__version__, "scipy": scipy.__version__},
                "library_versions": run([HH, "version"]).strip().splitlines()[1:],
                "cores": os.cpu_count(), "cpu": cpu, "start_time": start,
                "end_time": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    with open("results/benchmarks/manifest.json", "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True); f.write("\n")
    print("benchmark | ours | tool | theirs | ratio | min | max | target | met")
    for r in rows: print(" | ".join(r))

if __name__ == "__main__":
    main()
