#!/usr/bin/env python3
"""Refits a scaling run's timings (results/scaling/predictions.csv) with the cost model the
harness used before commit 1a6dfda, to tell a change of model from a change of run.

Previous model, per quantity and family on the rows of role `fit`:
    t = c_gemm*G + c_f*F_o + c_b*B' + c_0, every coefficient free and >= 0,
where B' adds back the FD-HVP passes the old model charged as bytes, 8n(3g + 3) for g
gradients (central and the Lanczos step: 72n), and the pass seconds P are not used. On a
file written by the previous model (no pass_s column) it reproduces that run's fits.
The fit is the harness's: least squares of relative residuals, exhaustive over subsets
for non-negativity. Prints each fit and its held-out ratios, and how many held-out ratios
at >= 1e8 parameters lie within 25%.

Usage: python3 bench/scaling_previous_model.py results/scaling/predictions.csv   (needs numpy)
"""
import collections, csv, itertools, sys
import numpy as np


def nnls_relative(X, t):
    A = X / t[:, None]
    best = None
    for r in range(1, X.shape[1] + 1):
        for S in itertools.combinations(range(X.shape[1]), r):
            As = A[:, S]
            if len(S) > len(t) or np.any(np.abs(As).max(axis=0) == 0):
                continue
            c, *_ = np.linalg.lstsq(As, np.ones(len(t)), rcond=None)
            if np.any(c < 0):
                continue
            sse = ((As @ c - 1) ** 2).sum()
            if best is None or sse < best[0]:
                full = np.zeros(X.shape[1]); full[list(S)] = c; best = (sse, full)
    return best[1]


rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["shards"] == "1"]
groups = collections.OrderedDict()
for r in rows:
    groups.setdefault((r["quantity"], r["family"]), []).append(r)
within = total = 0
for (q, fam), rs in groups.items():
    col = lambda k: np.array([float(r[k]) for r in rs])
    n, t, B = col("parameters"), col("measured_s"), col("bytes")
    fit = np.array([r["role"] == "fit" for r in rs])
    if "pass_s" not in rs[0]:
        pass                          # a file of the previous model: its bytes already hold the passes
    elif q in ("time_hvp_central_s", "time_lanczos_step_s"):
        B = B + 72 * n
    elif q == "time_hvp_forward_s":
        B = B + 48 * n
    X = np.stack([col("gemm_s"), col("other_flops"), B, np.ones(len(t))], 1)
    c = nnls_relative(X[fit], t[fit])
    ratio = X @ c / t
    held = [(n[i], ratio[i]) for i in range(len(t)) if not fit[i]]
    big = [x for m, x in held if m >= 1e8]
    total += len(big); within += sum(abs(x - 1) <= 0.25 for x in big)
    rms = np.sqrt(((ratio - 1)[fit] ** 2).mean())
    print(f"{q:20s} {fam:11s} fit rms {rms:.3f}  c_gemm {c[0]:.2f}  held out: " + " ".join(f"{x:.2f}" for _, x in held))
print(f"held-out ratios at >= 1e8 parameters within 25%: {within}/{total}")
