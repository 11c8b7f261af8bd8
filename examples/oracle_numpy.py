#!/usr/bin/env python3
"""A hessian-harness gradient oracle in NumPy alone: an MLP with hand-written
gradients (reverse mode) and an exact Hessian-vector product (Pearlmutter's
R-operator, forward-over-reverse by hand), speaking protocol version 1 of
docs/ORACLE.md on standard input/output.

    hessian-harness hvp --model "external:python3 examples/oracle_numpy.py" --policy ... --reference fp64 --out DIR

Options:
    --from DIR        serve the MLP (or softmax regression) of a hessian-harness `hvp`
                      output folder: model.json, params.npy, x.npy, y.npy
                      (otherwise: a seeded 8-16-4 tanh MLP on 64 random samples)
    --dtype float32   compute the loss and gradient in float32 (default float64); the
                      exact HVP is always float64
    --activation NAME tanh | relu | gelu (the built-in model only)

Only NumPy and the standard library are needed. Everything the harness sends and
receives is float64: the float32 mode rounds θ into float32 (exact for the
parameters the harness sends under a policy with param=fp32 or narrower) and sends its
float32 gradient as float64 (exact).
"""
import json
import math
import struct
import sys

import numpy as np

PROTOCOL = "hessian-harness-oracle"


class MLP:
    """z_l = h_{l-1} @ W_l.T + b_l; h_l = act(z_l) except the last layer; mean loss."""

    def __init__(self, widths, activation, loss, x, y, theta):
        self.widths, self.activation, self.loss = widths, activation, loss
        self.x, self.y = x, y
        self.theta = theta
        self.layout = []
        offset = 0
        for i in range(len(widths) - 1):
            for name, shape in ((f"layer{i}.weight", (widths[i + 1], widths[i])), (f"layer{i}.bias", (widths[i + 1],))):
                count = int(np.prod(shape))
                self.layout.append((name, shape, offset, f"layer{i}"))
                offset += count
        self.n = offset
        assert theta.shape == (self.n,)

    def unpack(self, flat):
        return [flat[o:o + int(np.prod(s))].reshape(s) for (_, s, o, _) in self.layout]

    def act(self, z):
        if self.activation == "tanh":
            t = np.tanh(z)
            return t, 1 - t * t, -2 * t * (1 - t * t)
        if self.activation == "relu":
            return np.maximum(z, 0), (z > 0).astype(z.dtype), np.zeros_like(z)
        if self.activation == "gelu":
            erf = np.vectorize(math.erf, otypes=[np.float64])
            phi_big = 0.5 * (1 + erf(z.astype(np.float64) / math.sqrt(2)))
            phi = np.exp(-0.5 * z.astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
            cast = lambda a: a.astype(z.dtype)
            return cast(z * phi_big), cast(phi_big + z * phi), cast(phi * (2 - z.astype(np.float64) ** 2))
        raise ValueError(f"unknown activation {self.activation}")

    def forward(self, params, x):
        ws = params[0::2]
        bs = params[1::2]
        hs, zs = [x], []
        for l, (w, b) in enumerate(zip(ws, bs)):
            z = hs[-1] @ w.T + b
            zs.append(z)
            if l < len(ws) - 1:
                hs.append(self.act(z)[0])
        return hs, zs

    def output_loss(self, logits):
        """The loss and its gradient with respect to the logits (mean over samples)."""
        m, k = logits.shape
        onehot = np.zeros_like(logits)
        onehot[np.arange(m), self.y] = 1
        if self.loss == "ce":
            shift = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(shift)
            s = e.sum(axis=1, keepdims=True)
            p = e / s
            value = float(np.sum(np.log(s[:, 0]) - shift[np.arange(m), self.y])) / m
            return value, (p - onehot) / m, p
        r = logits - onehot
        return float(0.5 * np.sum(r * r)) / m, r / m, None

    def gradient(self, flat, dtype):
        params = self.unpack(flat.astype(dtype))
        x = self.x.astype(dtype)
        hs, zs = self.forward(params, x)
        loss, dz, _ = self.output_loss(zs[-1])
        grads = []
        for l in range(len(zs) - 1, -1, -1):
            w = params[2 * l]
            grads = [dz.T @ hs[l], dz.sum(axis=0)] + grads
            if l > 0:
                dz = (dz @ w) * self.act(zs[l - 1])[1]
        return loss, np.concatenate([g.ravel() for g in grads]).astype(np.float64)

    def hvp(self, flat, vflat):
        """(loss, ∇L, Hv) in float64: the reverse pass and its directional derivative along v."""
        params, vs = self.unpack(flat), self.unpack(vflat)
        ws, bs, vws, vbs = params[0::2], params[1::2], vs[0::2], vs[1::2]
        hs, zs = self.forward(params, self.x)
        # R-forward: Rz_l = Rh_{l-1} W_l^T + h_{l-1} V_l^T + vb_l, Rh_l = act'(z_l) Rz_l
        rhs, rzs = [np.zeros_like(self.x)], []
        for l in range(len(ws)):
            rz = rhs[-1] @ ws[l].T + hs[l] @ vws[l].T + vbs[l]
            rzs.append(rz)
            if l < len(ws) - 1:
                rhs.append(self.act(zs[l])[1] * rz)
        loss, dz, p = self.output_loss(zs[-1])
        m = self.x.shape[0]
        if self.loss == "ce":
            rdz = (p * rzs[-1] - p * np.sum(p * rzs[-1], axis=1, keepdims=True)) / m
        else:
            rdz = rzs[-1] / m
        grads, hvs = [], []
        for l in range(len(ws) - 1, -1, -1):
            grads = [dz.T @ hs[l], dz.sum(axis=0)] + grads
            hvs = [rdz.T @ hs[l] + dz.T @ rhs[l], rdz.sum(axis=0)] + hvs
            if l > 0:
                _, d1, d2 = self.act(zs[l - 1])
                dh = dz @ ws[l]
                rdh = rdz @ ws[l] + dz @ vws[l]
                dz, rdz = dh * d1, rdh * d1 + dh * d2 * rzs[l - 1]
        flat_of = lambda a: np.concatenate([t.ravel() for t in a])
        return loss, flat_of(grads), flat_of(hvs)


def from_folder(folder):
    with open(f"{folder}/model.json") as f:
        d = json.load(f)
    if d.get("type") not in ("mlp", "softmax_regression"):
        raise SystemExit(f"oracle_numpy.py: {folder}/model.json is a '{d.get('type')}' model; this example serves mlp and softmax_regression")
    loss = "ce" if "cross-entropy" in d["loss"] else "mse"
    x = np.load(f"{folder}/{d['data']['x']}").astype(np.float64)
    y = np.load(f"{folder}/{d['data']['y']}").astype(np.int64)
    theta = np.load(f"{folder}/{d['parameters_file']}").astype(np.float64)
    return MLP(d["widths"], d["activation"]["name"], loss, x, y, theta)


def builtin(activation):
    rng = np.random.default_rng(0)
    widths = [8, 16, 4]
    x = rng.standard_normal((64, widths[0]))
    y = rng.integers(0, widths[-1], 64)
    theta = np.concatenate([
        np.concatenate([rng.standard_normal(o * i) / math.sqrt(i), np.zeros(o)])
        for i, o in zip(widths[:-1], widths[1:])])
    return MLP(widths, activation, "ce", x, y, theta)


def main(argv):
    folder, dtype, activation = None, np.float64, "tanh"
    i = 0
    while i < len(argv):
        if argv[i] == "--from":
            folder = argv[i + 1]; i += 2
        elif argv[i] == "--dtype":
            dtype = {"float32": np.float32, "float64": np.float64}[argv[i + 1]]; i += 2
        elif argv[i] == "--activation":
            activation = argv[i + 1]; i += 2
        else:
            raise SystemExit(f"oracle_numpy.py: unknown argument {argv[i]}")
    model = from_folder(folder) if folder else builtin(activation)
    out, inp = sys.stdout.buffer, sys.stdin.buffer

    def send(header, values=None):
        if values is not None:
            header["values"] = int(values.size)
        out.write(json.dumps(header).encode() + b"\n")
        if values is not None:
            out.write(np.ascontiguousarray(values, dtype="<f8").tobytes())
        out.flush()

    send({"protocol": PROTOCOL, "version": 1, "name": "oracle_numpy.py MLP " + "-".join(map(str, model.widths)),
          "dtype": np.dtype(dtype).name, "parameters": model.n, "hvp": True,
          "layout": [{"name": n, "shape": list(s), "block": b} for (n, s, _, b) in model.layout]})
    while True:
        line = inp.readline()
        if not line:
            return
        req = json.loads(line)
        count = req.get("values", 0)
        data = np.frombuffer(inp.read(8 * count), dtype="<f8") if count else None
        op = req.get("op")
        if op == "bye":
            return
        if op == "parameters":
            send({"ok": True}, model.theta)
        elif op == "gradient":
            loss, g = model.gradient(data, dtype)
            send({"ok": True, "loss": loss}, g)
        elif op == "hvp":
            loss, g, hv = model.hvp(data[:model.n], data[model.n:])
            send({"ok": True, "loss": loss}, np.concatenate([g, hv]))
        else:
            send({"ok": False, "error": f"unknown op {op!r}"})


if __name__ == "__main__":
    main(sys.argv[1:])
