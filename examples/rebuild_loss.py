#!/usr/bin/env python3
"""Rebuilds a model's loss from a hessian-harness `hvp` output folder with NumPy alone,
reading nothing but what model.json describes (its formulas, layout and data files),
and checks the harness's exact Hessian-vector product against it:

    python3 examples/rebuild_loss.py DIR

v·Hv is estimated from the rebuilt loss alone, by second differences along v
(Richardson-extrapolated over two steps), and compared with v·hv_exact.npy. A
model.json that leaves out or misstates anything the loss depends on (a weight, the
attention's head layout, an activation that is not applied) fails the comparison.
Prints one JSON line: type, loss, vhv_rebuilt, vhv_exact, rel_diff.

Types: expsum, quadratic, softmax_regression, mlp, transformer_lm.
"""
import json
import math
import os
import sys

import numpy as np


def tensors(model, theta):
    return {t["name"]: theta[t["offset"]:t["offset"] + int(np.prod(t["shape"]))].reshape(t["shape"])
            for t in model["layout"]}


def log_softmax_ce(logits, labels):
    m = logits.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[..., 0]
    return np.mean(lse - np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0])


def activation(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "gelu":
        return 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    raise SystemExit(f"rebuild_loss.py: activation {name!r} not rebuilt here")


def layer_norm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * g + b


def loss_fn(model, folder):
    kind = model["type"]
    load = lambda name: np.load(os.path.join(folder, name))
    if kind == "expsum":
        w = load(model["w"])
        return lambda th: float(np.sum(w * np.exp(th)))
    if kind == "quadratic":
        b = load(model["b"])
        a = model["A"]
        if "diagonal" in a:
            d = load(a["diagonal"])
            return lambda th: float(0.5 * th @ (d * th) - b @ th)
        A = load(a["dense"])
        return lambda th: float(0.5 * th @ A @ th - b @ th)
    if kind in ("mlp", "softmax_regression"):
        x, y = load(model["data"]["x"]), load(model["data"]["y"])
        layers = len(model["widths"]) - 1
        act = model.get("activation", {}).get("name")
        if kind == "softmax_regression":
            assert "activation" not in model, "softmax regression applies no activation"
        squared = "squared error" in model["loss"]

        def f(th):
            p = tensors(model, th)
            h = x
            for l in range(layers):
                W, bias = [p[t["name"]] for t in model["layout"][2 * l:2 * l + 2]]
                h = h @ W.T + bias
                if l < layers - 1:
                    h = activation(act, h)
            if squared:
                onehot = np.eye(h.shape[1])[y]
                return float(np.mean(0.5 * ((h - onehot) ** 2).sum(axis=1)))
            return float(log_softmax_ce(h, y))
        return f
    if kind == "transformer_lm":
        c = model["config"]
        tokens = load(model["data"]["tokens"])
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        d, H, L = c["width"], c["heads"], c["context"]
        dh = d // H
        mask = np.triu(np.full((L, L), -np.inf), k=1)

        def f(th):
            p = tensors(model, th)
            h = p["embed.tokens"][inputs] + p["embed.positions"][None, :, :]
            for i in range(c["layers"]):
                blk = f"block{i}"
                a = layer_norm(h, p[f"{blk}.ln1.gain"], p[f"{blk}.ln1.bias"])
                q, k, v = (a @ p[f"{blk}.attn.{w}"].T for w in ("wq", "wk", "wv"))
                o = np.empty_like(q)
                for j in range(H):
                    s = slice(j * dh, (j + 1) * dh)
                    sc = q[:, :, s] @ k[:, :, s].transpose(0, 2, 1) / math.sqrt(dh) + mask
                    sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
                    o[:, :, s] = (sc / sc.sum(axis=-1, keepdims=True)) @ v[:, :, s]
                h = h + o @ p[f"{blk}.attn.wo"].T
                m = layer_norm(h, p[f"{blk}.ln2.gain"], p[f"{blk}.ln2.bias"])
                h = h + activation("gelu", m @ p[f"{blk}.mlp.w1"].T + p[f"{blk}.mlp.b1"]) @ p[f"{blk}.mlp.w2"].T + p[f"{blk}.mlp.b2"]
            logits = layer_norm(h, p["final.ln.gain"], p["final.ln.bias"]) @ p["head"].T
            return float(log_softmax_ce(logits, targets))
        return f
    raise SystemExit(f"rebuild_loss.py: model type {kind!r} is not rebuilt here")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    folder = sys.argv[1]
    with open(os.path.join(folder, "model.json")) as fh:
        model = json.load(fh)
    theta = np.load(os.path.join(folder, model["parameters_file"]))
    v = np.load(os.path.join(folder, "v.npy"))
    hv = np.load(os.path.join(folder, "hv_exact.npy"))
    f = loss_fn(model, folder)
    f0 = f(theta)
    # Second differences along v: (f(θ+hv) − 2f(θ) + f(θ−hv))/h² = vᵀHv + O(h²); Richardson
    # over h and h/2 cancels the h² term. Rounding adds ~4u|f|/h².
    h = 1e-2 / max(np.linalg.norm(v), 1e-300)
    d2 = lambda s: (f(theta + s * v) - 2 * f0 + f(theta - s * v)) / (s * s)
    rebuilt = (4 * d2(h / 2) - d2(h)) / 3
    exact = float(v @ hv)
    print(json.dumps({"type": model["type"], "loss": f0, "vhv_rebuilt": rebuilt, "vhv_exact": exact,
                      "rel_diff": abs(rebuilt - exact) / max(abs(exact), 1e-300)}))


if __name__ == "__main__":
    main()
