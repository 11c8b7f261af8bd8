#!/usr/bin/env python3
"""A hessian-harness gradient oracle for any torch.nn.Module (protocol version 1 of
docs/ORACLE.md): the loss and gradient by autograd in the model's own dtype
(float32 or bfloat16), the exact HVP in float64 by torch.func (jvp of grad).

    hessian-harness slq --model "external:python3 examples/oracle_torch.py --dtype bfloat16" \\
        --policy param=bf16,compute=fp64,accumulate=fp64,grad=fp64,hvp=fp32,krylov=fp32 --eps auto --out spectrum

To measure your own model, replace `build()`: return the module (with its trained
weights loaded) and a function `loss(module_output, batch) -> scalar` with the batch.
Everything else stays as it is.

Options:
    --dtype float32|bfloat16|float64  the precision of the loss and gradient (default float32)
    --from DIR                the MLP of a hessian-harness `hvp` output folder (model.json,
                              params.npy, x.npy, y.npy): used by the opt-in test that
                              checks this oracle against the harness's own model
    --train STEPS             train the built-in example model for STEPS Adam steps first
"""
import json
import sys

import numpy as np
import torch
from torch.func import functional_call, grad, jvp

PROTOCOL = "hessian-harness-oracle"


def build(args):
    """The module, the loss function and the batch. Replace this with your own model."""
    if args.get("from"):
        return from_folder(args["from"])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.GELU(),
                                torch.nn.Linear(32, 4))
    x = torch.randn(128, 8, dtype=torch.float64)
    teacher = torch.randn(8, 4, dtype=torch.float64)
    y = (x @ teacher).argmax(dim=1)
    model = model.double()
    loss = torch.nn.functional.cross_entropy
    steps = int(args.get("train", 0))
    if steps:
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            loss(model(x), y).backward()
            opt.step()
    return model, loss, (x, y)


def from_folder(folder):
    """The harness's MLP: z_l = h_{l-1} @ W_l.T + b_l, activation between layers, mean loss."""
    with open(f"{folder}/model.json") as f:
        d = json.load(f)
    widths, act = d["widths"], d["activation"]["name"]
    acts = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU}
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(acts[act]())
    model = torch.nn.Sequential(*layers).double()
    theta = torch.from_numpy(np.load(f"{folder}/{d['parameters_file']}"))
    torch.nn.utils.vector_to_parameters(theta, model.parameters())
    x = torch.from_numpy(np.load(f"{folder}/{d['data']['x']}")).double()
    y = torch.from_numpy(np.load(f"{folder}/{d['data']['y']}")).long()
    if "cross-entropy" in d["loss"]:
        loss = torch.nn.functional.cross_entropy
    else:
        k = widths[-1]
        loss = lambda out, y: 0.5 * ((out - torch.nn.functional.one_hot(y, k).to(out.dtype)) ** 2).sum(dim=1).mean()
    return model, loss, (x, y)


def main(argv):
    args = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("--dtype", "--from", "--train"):
            args[argv[i][2:]] = argv[i + 1]; i += 2
        else:
            raise SystemExit(f"oracle_torch.py: unknown argument {argv[i]}")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}[args.get("dtype", "float32")]
    torch.set_num_threads(1)
    model, loss_fn, (x, y) = build(args)
    names = [n for n, _ in model.named_parameters()]
    shapes = [tuple(p.shape) for _, p in model.named_parameters()]
    sizes = [int(np.prod(s)) for s in shapes]
    n = sum(sizes)
    theta0 = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])

    def unflatten(flat, dt):
        out, o = {}, 0
        for name, shape, size in zip(names, shapes, sizes):
            out[name] = flat[o:o + size].reshape(shape).to(dt)
            o += size
        return out

    def loss_at(params, dt):
        return loss_fn(functional_call(model, params, (x.to(dt),)).to(dt), y)

    def gradient(flat):
        params = {k: v.requires_grad_(True) for k, v in unflatten(flat, dtype).items()}
        loss = loss_at(params, dtype)
        gs = torch.autograd.grad(loss, list(params.values()))
        return float(loss.detach()), torch.cat([g.reshape(-1).double() for g in gs])

    def hvp(flat, v):
        params, tangents = unflatten(flat, torch.float64), unflatten(v, torch.float64)
        g = grad(lambda p: loss_at(p, torch.float64))
        gv, hv = jvp(g, (params,), (tangents,))
        loss = float(loss_at(params, torch.float64))
        return loss, torch.cat([gv[k].reshape(-1) for k in names]), torch.cat([hv[k].reshape(-1) for k in names])

    out, inp = sys.stdout.buffer, sys.stdin.buffer

    def send(header, values=None):
        if values is not None:
            header["values"] = int(values.numel())
        out.write(json.dumps(header).encode() + b"\n")
        if values is not None:
            out.write(values.detach().double().contiguous().numpy().astype("<f8").tobytes())
        out.flush()

    send({"protocol": PROTOCOL, "version": 1, "name": f"oracle_torch.py {type(model).__name__}", "dtype": str(dtype).replace("torch.", ""),
          "parameters": n, "hvp": True,
          "layout": [{"name": nm, "shape": list(s) or [1]} for nm, s in zip(names, shapes)]})
    while True:
        line = inp.readline()
        if not line:
            return
        req = json.loads(line)
        count = req.get("values", 0)
        data = torch.from_numpy(np.frombuffer(inp.read(8 * count), dtype="<f8").copy()) if count else None
        op = req.get("op")
        if op == "bye":
            return
        if op == "parameters":
            send({"ok": True}, theta0)
        elif op == "gradient":
            loss, g = gradient(data)
            send({"ok": True, "loss": loss}, g)
        elif op == "hvp":
            loss, g, hv = hvp(data[:n], data[n:])
            send({"ok": True, "loss": loss}, torch.cat([g, hv]))
        else:
            send({"ok": False, "error": f"unknown op {op!r}"})


if __name__ == "__main__":
    main(sys.argv[1:])
